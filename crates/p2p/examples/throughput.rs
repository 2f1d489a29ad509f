//! The transport's ceiling: request throughput of 1 MiB bodies
//! between two swarms on loopback (TCP + noise + yamux + the rpc frame
//! codec), over one and two connections, with 1 to 16 requests in flight.
//! `docs/benchmarks.md` compares replication against it.
//!
//! `cargo run --profile dev -p vouch-p2p --example throughput`

use std::time::Instant;

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use vouch_p2p::{Frame, P2p, P2pConfig, Request, Response};
use vouch_types::{Digest, Kind, SecretKey};

/// mimalloc, as in the `vouch` binary: peer messages carry bodies of up
/// to 8 MiB, which glibc's malloc hands back to the kernel and faults in
/// again on every message (see `docs/benchmarks.md`, replication).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let config = P2pConfig::loopback;
    let (a, mut inbound) = P2p::start(config(vec![]), &SecretKey::from_bytes(&[1; 32]))
        .await
        .expect("swarm a");
    tokio::spawn(async move {
        let body = vec![7u8; 1 << 20];
        while let Some(r) = inbound.recv().await {
            let _ = r.reply.send(Frame {
                head: Response::Ok,
                body: body.clone(),
            });
        }
    });
    let (b, _) = P2p::start(config(a.addresses()), &SecretKey::from_bytes(&[2; 32]))
        .await
        .expect("swarm b");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let blob = Digest::of(Kind::Blob, b"x");
    let n = 128;
    for (connections, inflight) in [1, 2].into_iter().flat_map(|c| [(c, 1), (c, 4), (c, 16)]) {
        let open = b.connect_many(a.peer_id(), connections).await;
        assert_eq!(open.ok(), Some(connections), "connections to a");
        let start = Instant::now();
        let mut pending = FuturesUnordered::new();
        let (mut sent, mut done) = (0, 0);
        while done < n {
            while sent < n && pending.len() < inflight {
                let (b, peer) = (b.clone(), a.peer_id());
                pending.push(async move {
                    b.request(
                        peer,
                        Frame::new(Request::Chunks {
                            blob,
                            indexes: vec![0],
                        }),
                    )
                    .await
                    .expect("an answer")
                    .body
                    .len()
                });
                sent += 1;
            }
            pending.next().await;
            done += 1;
        }
        let mb = n as f64 * (1 << 20) as f64 / 1e6;
        println!(
            "{connections} connection(s), {inflight:>2} in flight: {:.0} MB/s",
            mb / start.elapsed().as_secs_f64()
        );
    }
}
