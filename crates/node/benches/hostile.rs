//! `/healthz` under hostile load, against the same node unloaded, in one
//! run: a real node on loopback with the sample models, probed with
//! `/healthz` while nothing else runs (baseline), then while at once:
//!
//! - clients send the largest embeddings requests the limits allow
//!   (2,048 texts each), back to back;
//! - uploads without the admin token trickle a byte every half second
//!   into `POST /v1/hub/blobs` (more of them than the node takes
//!   connections), and half as many inference requests trickle their
//!   bodies into `POST /v1/infer/iris` (public);
//! - downloads of the 98 MB GGUF are opened and never read;
//! - chat completions are started and abandoned after their first bytes.
//!
//! Prints p50/p99/max of `/healthz` in both phases, the ratio, the
//! process's resident memory before and at the end, and what the hostile
//! clients got (answers, refusals). Writes JSON to `$VOUCH_BENCH_OUT` if
//! set. Run through `scripts/bench-hostile`. Bounded: `VOUCH_BENCH_PROBES`
//! probes per phase (default 200, 20 ms apart).

use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::AsyncWriteExt;
use vouch_node::{Node, NodeConfig, samples};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `n` probes of `/healthz`, each on a fresh connection from 127.0.0.2 (a
/// client that arrives while the node is loaded), 20 ms apart; latencies in ms,
/// sorted. A probe that fails counts as its time to fail.
async fn probe(url: &str, n: usize) -> (Vec<f64>, usize) {
    let mut times = Vec::with_capacity(n);
    let mut failed = 0;
    for _ in 0..n {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            // From another address than the hostile clients (all on
            // 127.0.0.1), as an honest client elsewhere would be.
            .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let t = Instant::now();
        let ok = client
            .get(format!("{url}/healthz"))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        times.push(t.elapsed().as_secs_f64() * 1e3);
        failed += usize::from(!ok);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    times.sort_by(f64::total_cmp);
    (times, failed)
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    let probes: usize = std::env::var("VOUCH_BENCH_PROBES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let config = NodeConfig::new(data.path().to_path_buf());
    let (max_connections, max_inputs) = (config.max_connections, config.max_embedding_inputs);
    let node = Node::open(config).unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let url = format!("http://{addr}");
    let imported = rt.block_on(samples::import(&node, &samples::models_dir()));
    assert_eq!(
        imported.len(),
        samples::SAMPLES.len(),
        "run scripts/fetch-models.sh first"
    );
    let gguf = node
        .find_model("smollm2-135m", None)
        .unwrap()
        .signed
        .manifest
        .files[0]
        .digest;
    let _server = rt.spawn(vouch_node::serve(
        node.clone(),
        listener,
        std::future::pending(),
    ));
    let _keep: &Node = &node;

    rt.block_on(async {
        // Warm the models the load uses.
        let http = reqwest::Client::new();
        let _ = http
            .post(format!("{url}/v1/embeddings"))
            .json(&json!({"model": "minilm-int8", "input": "warm up"}))
            .send()
            .await;
        let rss_before = rss_mib();
        let (calm, calm_failed) = probe(&url, probes).await;

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let counts = std::sync::Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::<String, u64>::new()));
        let count = {
            let counts = counts.clone();
            move |what: String| *counts.lock().unwrap().entry(what).or_default() += 1
        };
        let mut tasks = Vec::new();
        // Huge embeddings batches.
        for _ in 0..2 {
            let (url, stop, count) = (url.clone(), stop.clone(), count.clone());
            tasks.push(tokio::spawn(async move {
                let texts: Vec<String> = (0..max_inputs).map(|i| format!("text number {i} of a very large batch")).collect();
                let http = reqwest::Client::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = http
                        .post(format!("{url}/v1/embeddings"))
                        .json(&json!({"model": "minilm-int8", "input": texts}))
                        .send()
                        .await;
                    count(format!("embeddings {}", r.map_or("error".to_string(), |r| r.status().as_u16().to_string())));
                }
            }));
        }
        // Slow bodies: uploads without the token, more than the node
        // takes connections, and half as many public inference requests.
        let slow = |path: &'static str, n: usize, what: &'static str| {
            (0..n)
                .map(|_| {
                    let (stop, count) = (stop.clone(), count.clone());
                    tokio::spawn(async move {
                        let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
                            count(format!("{what}: connect failed"));
                            return;
                        };
                        let head = format!(
                            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
                        );
                        if tcp.write_all(head.as_bytes()).await.is_err() {
                            count(format!("{what}: cut off"));
                            return;
                        }
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            if tcp.write_all(b" ").await.is_err() {
                                count(format!("{what}: cut off"));
                                return;
                            }
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                        count(format!("{what}: held to the end"));
                    })
                })
                .collect::<Vec<_>>()
        };
        tasks.extend(slow("/v1/hub/blobs", max_connections + 32, "slow upload without the token"));
        tasks.extend(slow("/v1/infer/iris", max_connections / 2, "slow inference body"));
        // Unread downloads of the GGUF.
        let mut unread = Vec::new();
        for _ in 0..30 {
            if let Ok(r) = reqwest::get(format!("{url}/v1/hub/blobs/{gguf}")).await {
                count(format!("unread download {}", r.status().as_u16()));
                unread.push(r);
            }
        }
        // Chats abandoned after their first bytes.
        for _ in 0..2 {
            let (url, stop, count) = (url.clone(), stop.clone(), count.clone());
            tasks.push(tokio::spawn(async move {
                let http = reqwest::Client::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let r = http
                        .post(format!("{url}/v1/chat/completions"))
                        .json(&json!({"model": "smollm2-135m", "stream": true, "max_tokens": 200,
                                      "messages": [{"role": "user", "content": "Tell me a long story."}]}))
                        .send()
                        .await;
                    if let Ok(mut r) = r {
                        count(format!("abandoned chat {}", r.status().as_u16()));
                        let _ = r.chunk().await;
                    }
                }
            }));
        }
        // Let the load build up, then probe.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (loaded, loaded_failed) = probe(&url, probes).await;
        let rss_loaded = rss_mib();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        drop(unread);
        for t in tasks {
            t.abort();
        }
        let counts = counts.lock().unwrap().clone();
        println!("| /healthz ({probes} probes, fresh connection each) | p50 ms | p99 ms | max ms | failed |");
        println!("|---|---|---|---|---|");
        println!("| node idle | {:.2} | {:.2} | {:.2} | {calm_failed} |", pct(&calm, 0.5), pct(&calm, 0.99), calm[calm.len() - 1]);
        println!("| under hostile load | {:.2} | {:.2} | {:.2} | {loaded_failed} |", pct(&loaded, 0.5), pct(&loaded, 0.99), loaded[loaded.len() - 1]);
        println!();
        println!("p99 under load / idle: {:.2}x; resident memory {rss_before:.0} MiB before the load, {rss_loaded:.0} MiB under it (the whole bench process: node and hostile clients)", pct(&loaded, 0.99) / pct(&calm, 0.99));
        println!();
        println!("| hostile client outcome | count |");
        println!("|---|---|");
        for (k, v) in &counts {
            println!("| {k} | {v} |");
        }
        if let Ok(path) = std::env::var("VOUCH_BENCH_OUT") {
            let out = json!({
                "probes": probes,
                "idle_ms": {"p50": pct(&calm, 0.5), "p99": pct(&calm, 0.99), "max": calm[calm.len() - 1], "failed": calm_failed},
                "loaded_ms": {"p50": pct(&loaded, 0.5), "p99": pct(&loaded, 0.99), "max": loaded[loaded.len() - 1], "failed": loaded_failed},
                "rss_mib": {"before": rss_before, "loaded": rss_loaded},
                "hostile": counts,
                "limits": {"max_connections": max_connections, "max_embedding_inputs": max_inputs},
            });
            std::fs::write(path, serde_json::to_vec_pretty(&out).unwrap()).unwrap();
        }
    });
}
