//! Serving the router on a listener, with the limits a public server
//! needs: at most `max_connections` at once and `max_connections_per_ip`
//! from any one address (one more is answered 503 and closed, so a flood
//! of slow clients cannot exhaust the node's file descriptors, make new
//! connections hang, or take every slot from one address), a deadline for a request's
//! headers (slow-header clients are dropped), an idle timeout on request
//! bodies (a stalled upload ends) and a minimum body rate (a trickled one
//! ends too). Shutdown stops accepting, lets
//! requests in flight finish, then flushes the receipt log.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::sync::Semaphore;
use tower_http::timeout::RequestBodyTimeoutLayer;
use vouch_network::Node;

/// Serves the HTTP API on `listener` until `shutdown` resolves, then drains
/// in-flight requests and makes the store durable.
pub async fn serve(
    node: Arc<Node>,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let config = node.config();
    let max = config.max_connections.max(1);
    let per_ip_max = config.max_connections_per_ip.max(1);
    let per_ip: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>> = Arc::default();
    let (header_timeout, body_idle) = (config.header_timeout, config.body_idle_timeout);
    let slots = Arc::new(Semaphore::new(max));
    let router = crate::http::router(node.clone());
    let min_rate = config.min_body_rate;
    let service = tower::ServiceBuilder::new()
        .map_request(move |req: hyper::Request<hyper::body::Incoming>| {
            req.map(|b| crate::rate::MinRate::new(b, min_rate))
        })
        .layer(RequestBodyTimeoutLayer::new(body_idle))
        .service(router);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little
                    // rather than spin; the connections in flight go on.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Answers go out as soon as they are written, not after the
        // client's delayed ACK.
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "TCP_NODELAY not set");
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            node.metrics().http("-", "(refused: connection limit)", 503);
            tokio::spawn(refuse(
                tcp,
                format!(
                    "this node serves {max} connections at once and all are taken; retry shortly (operators: --max-connections)"
                ),
            ));
            continue;
        };
        let Some(from) = PerIp::take(&per_ip, peer.ip(), per_ip_max) else {
            node.metrics()
                .http("-", "(refused: per-address connection limit)", 503);
            tokio::spawn(refuse(
                tcp,
                format!(
                    "this node serves {per_ip_max} connections at once from one address, and {} has them all; retry shortly (operators: --max-connections-per-ip)",
                    peer.ip()
                ),
            ));
            continue;
        };
        let service = TowerToHyperService::new(service.clone());
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let _slot = (slot, from);
            let mut builder = hyper::server::conn::http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout);
            let conn = builder.serve_connection(TokioIo::new(tcp), service);
            let mut conn = std::pin::pin!(conn);
            tokio::select! {
                result = conn.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!(%peer, error = %e, "connection ended");
                    }
                    return;
                }
                _ = stopped.wait_for(|s| *s) => {}
            }
            conn.as_mut().graceful_shutdown();
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended at shutdown");
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    // Every connection holds a slot until it ends: all of them back means
    // every request in flight was answered.
    let _ = slots.acquire_many(max as u32).await;
    // The receipt log makes receipts durable every second by itself; this
    // is the last of them.
    node.flush().await;
    Ok(())
}

/// One connection counted against its address while it lives.
struct PerIp {
    counts: Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
    ip: IpAddr,
}

impl PerIp {
    /// Counts a connection from `ip`, unless it has `max` already.
    fn take(
        counts: &Arc<std::sync::Mutex<HashMap<IpAddr, usize>>>,
        ip: IpAddr,
        max: usize,
    ) -> Option<PerIp> {
        let mut map = counts.lock().unwrap_or_else(|e| e.into_inner());
        let n = map.entry(ip).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PerIp {
            counts: counts.clone(),
            ip,
        })
    }
}

impl Drop for PerIp {
    fn drop(&mut self) {
        let mut map = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Answers a connection beyond a limit with 503 (saying which) and closes
/// it: after reading the request's head (for at most a second and 8 KiB),
/// so that the client, which writes its request first, reads the answer.
async fn refuse(mut tcp: tokio::net::TcpStream, why: String) {
    use tokio::io::AsyncReadExt;
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while head.len() < 8192 && !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match tcp.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let body = serde_json::json!({"error": {"code": "unavailable", "message": why}}).to_string();
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let _ = tcp.write_all(response.as_bytes()).await;
        let _ = tcp.shutdown().await;
    })
    .await;
}
