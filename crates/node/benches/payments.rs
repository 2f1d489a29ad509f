//! What paying by voucher adds to a request: the same iris request, from
//! the same `vouch_client` code, to two real nodes on loopback in this
//! process that differ only in price (0 and 1), each validating a ledger
//! chain of its own on which the clients hold escrow. On the paid side one
//! client signs a voucher per request and the node checks it (signature,
//! amount, escrow) and takes it; another pays [`AHEAD`] requests with each
//! voucher, which it sends again until they are spent (the node checks a
//! voucher's signature once); on the free side none of this happens. The
//! three sides take turns request by request, so drift affects all alike.
//!
//! Prints p50 and p99 of each side and their ratio; run through
//! `scripts/bench-payments`.

use std::time::{Duration, Instant};

use vouch_api::{InferRequest, JsonTensor};
use vouch_client::{Client, PushParams};
use vouch_node::ledger::{ChainSettings, Genesis, Offer, Params, Tx, TxBody, Voucher};
use vouch_node::{Node, NodeConfig};
use vouch_types::{SecretKey, Tensor};

/// Requests each voucher of the paying-ahead client pays for.
const AHEAD: u64 = 64;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A node at `price` serving iris on loopback, with a chain of its own on
/// which `client` deposited escrow; returns its URL.
async fn node(dir: &std::path::Path, price: u64, clients: &[&SecretKey]) -> String {
    let mut config = NodeConfig::new(dir.to_path_buf());
    config.price = price;
    let node = Node::open(config).unwrap();
    let operator = node.public_key();
    node.start_chain(ChainSettings {
        genesis: Genesis {
            chain_id: format!("bench-{price}"),
            params: Params::default(),
            accounts: std::iter::once((operator, 1_000_000))
                .chain(clients.iter().map(|c| (c.public(), 1 << 40)))
                .collect(),
            operators: vec![(operator, 100_000, Offer::default())],
        },
        listen: "127.0.0.1:0".parse().unwrap(),
        bootstrap: vec![],
        leader_timeout: Duration::from_secs(1),
        empty_block_interval: Duration::from_millis(500),
        redeem_interval: Duration::from_secs(2),
        own: false,
    })
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let token = std::fs::read_to_string(dir.join(vouch_node::config::ADMIN_TOKEN_FILE)).unwrap();
    tokio::spawn(vouch_node::serve(
        node.clone(),
        listener,
        std::future::pending(),
    ));
    Client::new(&url)
        .with_token(Some(token.trim().to_string()))
        .push_file(
            &vouch_node::samples::models_dir().join("iris.onnx"),
            &PushParams {
                name: "iris".into(),
                input_shapes: vec!["float_input=N,4".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let chain = node.chain().unwrap();
    for client in clients {
        let id = chain
            .submit(
                Tx::sign(
                    &format!("bench-{price}"),
                    client,
                    0,
                    TxBody::Deposit { amount: 1 << 39 },
                )
                .encode(),
            )
            .unwrap();
        while chain.outcome(&id).is_none() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        chain.outcome(&id).unwrap().1.unwrap();
    }
    // Kept alive by the server task.
    std::mem::forget(node);
    url
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let rounds: usize = std::env::var("VOUCH_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let key = SecretKey::from_bytes(&[5; 32]);
        let ahead_key = SecretKey::from_bytes(&[7; 32]);
        let (d0, d1) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let free = Client::new(&node(d0.path(), 0, &[&key]).await);
        let paid_url = node(d1.path(), 1, &[&key, &ahead_key]).await;
        let paid = Client::new(&paid_url).with_payer(key.clone(), None);
        let ahead = Client::new(&paid_url)
            .with_payer(ahead_key, None)
            .paying_ahead(AHEAD);
        let mut inputs = std::collections::BTreeMap::new();
        inputs.insert(
            "float_input".to_string(),
            JsonTensor(Tensor::from_f32(vec![1, 4], &[5.1, 3.5, 1.4, 0.2]).unwrap()),
        );
        let request = InferRequest {
            inputs,
            nonce: Some("bench".into()),
            verify: None,
        };
        // Warm both (plans, connections, the payer's first look-up).
        let clients = [&free, &paid, &ahead];
        for _ in 0..100 {
            for c in clients {
                c.infer("iris", None, &request).await.unwrap();
            }
        }
        let mut times: [Vec<f64>; 3] = Default::default();
        for i in 0..rounds {
            // Each side goes first, second and third in turn.
            for k in 0..3 {
                let side = (i + k) % 3;
                let t = Instant::now();
                let answer = clients[side].infer("iris", None, &request).await.unwrap();
                let ms = t.elapsed().as_secs_f64() * 1e3;
                assert_eq!(answer.receipt.body.price, u64::from(side > 0));
                times[side].push(ms);
            }
        }
        let [f, p, a] = &mut times;
        let (f50, p50, a50) = (percentile(f, 0.5), percentile(p, 0.5), percentile(a, 0.5));
        let (f99, p99, a99) = (percentile(f, 0.99), percentile(p, 0.99), percentile(a, 0.99));
        println!("iris over HTTP, {rounds} requests per side, interleaved:");
        println!("| side | p50 ms | p99 ms | p50 / price 0 | p99 / price 0 |");
        println!("|---|---|---|---|---|");
        println!("| price 0 (no voucher) | {f50:.3} | {f99:.3} | 1.000x | 1.000x |");
        println!(
            "| price 1, a voucher signed and checked per request | {p50:.3} | {p99:.3} | {:.3}x | {:.3}x |",
            p50 / f50,
            p99 / f99
        );
        println!(
            "| price 1, a voucher per {AHEAD} requests, sent again until spent | {a50:.3} | {a99:.3} | {:.3}x | {:.3}x |",
            a50 / f50,
            a99 / f99
        );
        println!(
            "added at p50: {:.1} us per request with a voucher each, {:.1} us paying ahead",
            (p50 - f50) * 1e3,
            (a50 - f50) * 1e3
        );
        // The two signature operations the paid side adds, timed alone.
        let operator = SecretKey::from_bytes(&[6; 32]).public();
        let n = 2000;
        let t = Instant::now();
        let vouchers: Vec<Voucher> = (0..n)
            .map(|i| Voucher::sign("bench", &key, &operator, i))
            .collect();
        let sign = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        let t = Instant::now();
        assert!(vouchers.iter().all(|v| v.verify("bench", &operator)));
        let verify = t.elapsed().as_secs_f64() * 1e6 / n as f64;
        println!(
            "of which ed25519 alone: the client's signature {sign:.1} us, the node's check {verify:.1} us (mean of {n})"
        );
    });
}
