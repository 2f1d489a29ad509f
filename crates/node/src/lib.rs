//! A Vouch node: the model hub, the inference service that signs a receipt
//! for every answer, and the HTTP API in front of them.
//!
//! [`Node`] is the service (no HTTP): it owns the store, the engines, the
//! operator key, the loaded-model cache and the blocking pool inference runs
//! on. [`http::router`] maps the public API onto it, and [`serve`] runs that
//! router on a listener until a shutdown future resolves.
//!
//! Only this crate (and the CLI) knows HTTP. Peer-to-peer networking
//! ([`network`], over `vouch-p2p`) attaches to [`Node`] beside the HTTP API,
//! not inside it; the ledger will too.

#![recursion_limit = "256"]

pub mod audit;
pub mod cache;
pub mod config;
pub mod error;
pub mod external;
pub mod guard;
pub mod http;
pub mod keyfile;
pub mod llm;
mod llm_net;
pub use llm_net::LlmQuorum;
pub mod metrics;
pub mod network;
pub mod openai;
pub mod openapi;
mod receipt_log;
pub mod route;
pub mod samples;
pub mod service;

pub use config::{DEFAULT_LLM_UBATCH, NodeConfig};
pub use error::NodeError;
pub use network::{Fetch, FetchState, NetworkModel, PeerRecord};
pub use service::{Node, PushOptions};
pub use vouch_p2p::{self as p2p, P2pConfig};

use std::future::Future;
use std::sync::Arc;

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
