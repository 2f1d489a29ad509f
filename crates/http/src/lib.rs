//! A Vouch node's HTTP layer, on top of the network layer
//! (`vouch-network`) and the local service (`vouch-service`): the API
//! routes ([`http::router`]), the OpenAI-compatible API, the chat UI, the
//! OpenAPI document, Prometheus metrics, and the guard in front of the
//! operator's routes. It talks to the layers below only through their
//! public APIs, and [`serve`] runs the router on a listener.

#![recursion_limit = "256"]

pub mod error;
pub mod guard;
pub mod http;
pub mod openai;
pub mod openapi;

use std::future::Future;
use std::sync::Arc;

use vouch_network::Node;

/// Serves the HTTP API on `listener` until `shutdown` resolves, then drains
/// in-flight requests and makes the store durable.
pub async fn serve(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Answers go out as soon as they are written, not after the client's
    // delayed ACK.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
    });
    let result = axum::serve(listener, http::router(node.clone()))
        .with_graceful_shutdown(shutdown)
        .await;
    // The receipt log makes receipts durable every second by itself; this
    // is the last of them.
    node.flush().await;
    result
}
