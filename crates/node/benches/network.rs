//! Network benchmarks, each a ratio against a baseline measured in the same
//! run, with real nodes (real libp2p swarms on loopback, real stores on
//! disk, real models) in this process:
//!
//! - replication throughput between two nodes against a raw loopback TCP
//!   copy of the same file into a synced file;
//! - added latency of one routing hop (a gateway forwarding to a provider)
//!   against the provider answering itself;
//! - CPU of `quorum:3` against a single execution;
//! - CPU with audits at a 5% sampling rate against no audits;
//! - time for 10 nodes to discover each other and every sample model.
//!
//! Prints Markdown; writes JSON to `$VOUCH_BENCH_OUT` if set. Run through
//! `scripts/bench-network`.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vouch_node::route::Verify;
use vouch_node::{FetchState, Node, NodeConfig, P2pConfig, samples};
use vouch_types::{DType, Tensor, TensorMap};

/// mimalloc, as in the `vouch` binary: peer messages carry bodies of up
/// to 8 MiB, which glibc's malloc hands back to the kernel and faults in
/// again on every message (see `docs/benchmarks.md`, replication).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn p2p(bootstrap: Vec<vouch_node::p2p::Address>) -> P2pConfig {
    P2pConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        bootstrap,
    }
}

async fn node(dir: &Path, bootstrap: Vec<vouch_node::p2p::Address>, audit_rate: f64) -> Arc<Node> {
    let mut config = NodeConfig::new(dir.to_path_buf());
    config.audit_rate = audit_rate;
    let node = Node::open(config).unwrap();
    node.join(p2p(bootstrap), None).await.unwrap();
    node
}

fn addrs(n: &Node) -> Vec<vouch_node::p2p::Address> {
    n.p2p().unwrap().addresses()
}

async fn push(node: &Node, name: &str) -> vouch_types::Digest {
    let sample = samples::SAMPLES.iter().find(|s| s.name == name).unwrap();
    samples::push_file(
        node,
        &samples::models_dir().join(sample.file),
        sample.options(),
    )
    .await
    .unwrap()
    .id()
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn providers(n: &Node, id: vouch_types::Digest, count: usize) {
    until("providers", || {
        n.network_models()
            .get(&id.to_string())
            .is_some_and(|m| m.providers.len() >= count)
    })
    .await;
}

/// CPU seconds this process has used (user + system), from /proc.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    // Fields after the command name (which is in parentheses).
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap();
    ticks / 100.0
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn magika_input(seed: i32) -> TensorMap {
    let data: Vec<u8> = (0..2048i32)
        .flat_map(|i| ((i * 13 + seed) % 257).to_le_bytes())
        .collect();
    let mut m = TensorMap::new();
    m.insert(
        "bytes",
        Tensor::new(DType::I32, vec![1, 2048], data).unwrap(),
    );
    m
}

fn iris_input() -> TensorMap {
    let mut m = TensorMap::new();
    m.insert(
        "float_input",
        Tensor::from_f32(vec![1, 4], &[5.1, 3.5, 1.4, 0.2]).unwrap(),
    );
    m
}

/// Copies `data` over a loopback TCP connection into a synced file.
async fn raw_copy(data: Arc<Vec<u8>>, dir: &Path) -> Duration {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let path = dir.join("raw-copy");
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(&data).await.unwrap();
    });
    let (mut s, _) = listener.accept().await.unwrap();
    let mut file = tokio::fs::File::create(&path).await.unwrap();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = s.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        file.write_all(&buf[..n]).await.unwrap();
    }
    file.sync_all().await.unwrap();
    sender.await.unwrap();
    start.elapsed()
}

async fn bench(out: &mut serde_json::Value) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |name: &str| {
        let d = tmp.path().join(name);
        std::fs::create_dir_all(&d).unwrap();
        d
    };
    let runs: usize = std::env::var("VOUCH_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);

    // Replication: the largest sample, into a fresh node each run.
    let a = node(&dir("a"), vec![], 0.0).await;
    let big = "paraphrase-minilm-l3";
    let id = push(&a, big).await;
    let sample = samples::SAMPLES.iter().find(|s| s.name == big).unwrap();
    let bytes = Arc::new(std::fs::read(samples::models_dir().join(sample.file)).unwrap());
    let size = bytes.len() as f64;
    let (mut raw, mut fetch, mut total) = (vec![], vec![], vec![]);
    // Every measurement starts from the same disk state: each file is
    // deleted once measured (a synced file still holds page cache that
    // the next write competes with), and raw copy and fetch take turns
    // going first.
    for run in 0..runs {
        for fetch_first in [run % 2 == 1, run % 2 == 0] {
            if !fetch_first {
                let into = dir(&format!("raw{run}"));
                raw.push(raw_copy(bytes.clone(), &into).await.as_secs_f64());
                std::fs::remove_dir_all(into).unwrap();
                continue;
            }
            let into = dir(&format!("b{run}"));
            let b = node(&into, addrs(&a), 0.0).await;
            providers(&b, id, 1).await;
            let start = Instant::now();
            // The fetch ends when the blob is in place, synced like the
            // raw copy's file; then the model is loaded.
            let watcher = {
                let b = b.clone();
                tokio::spawn(async move {
                    loop {
                        if let Some(f) = b.fetch_status(&id)
                            && matches!(f.state, FetchState::Loading | FetchState::Done)
                        {
                            return Instant::now();
                        }
                        tokio::time::sleep(Duration::from_micros(500)).await;
                    }
                })
            };
            b.replicate(big, None).await.unwrap();
            let end = Instant::now();
            let fetched = watcher.await.unwrap().min(end);
            fetch.push((fetched - start).as_secs_f64());
            total.push((end - start).as_secs_f64());
            drop(b);
            std::fs::remove_dir_all(into).unwrap();
        }
    }
    let (raw, fetch, total) = (median(&mut raw), median(&mut fetch), median(&mut total));
    let mbs = |t: f64| size / t / 1e6;
    println!(
        "| replication ({big}, {:.1} MB) | MB/s | ratio to raw copy |",
        size / 1e6
    );
    println!("|---|---|---|");
    println!(
        "| raw loopback TCP copy into a synced file | {:.0} | 1.00x |",
        mbs(raw)
    );
    println!(
        "| verified chunked fetch from a peer (blob in place) | {:.0} | {:.2}x |",
        mbs(fetch),
        raw / fetch
    );
    println!(
        "| whole replication (fetch + engine load + register) | {:.0} | {:.2}x |",
        mbs(total),
        raw / total
    );
    out["replication"] =
        json!({"model": big, "bytes": size, "raw_s": raw, "fetch_s": fetch, "total_s": total});
    if std::env::var("VOUCH_BENCH_ONLY").is_ok_and(|only| only == "replication") {
        return;
    }

    // One routing hop: a gateway with no model forwards to the provider.
    let g = node(&dir("g"), addrs(&a), 0.0).await;
    let iris = push(&a, "iris").await;
    providers(&g, iris, 1).await;
    let n: usize = std::env::var("VOUCH_BENCH_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(400);
    let (mut direct, mut hop) = (vec![], vec![]);
    for _ in 0..20 {
        a.route("iris", None, iris_input(), None, Verify::Receipt)
            .await
            .unwrap();
        g.route("iris", None, iris_input(), None, Verify::Receipt)
            .await
            .unwrap();
    }
    for _ in 0..n {
        let t = Instant::now();
        a.route("iris", None, iris_input(), None, Verify::Receipt)
            .await
            .unwrap();
        direct.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        g.route("iris", None, iris_input(), None, Verify::Receipt)
            .await
            .unwrap();
        hop.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (d, h) = (median(&mut direct), median(&mut hop));
    println!("\n| routing (iris, {n} requests each, interleaved) | p50 ms |\n|---|---|");
    println!("| provider answers itself | {d:.3} |");
    println!("| gateway -> provider (one libp2p hop, answer checked) | {h:.3} |");
    println!("| **added by the hop** | **{:.3}** |", h - d);
    out["routing"] = json!({"direct_p50_ms": d, "hop_p50_ms": h, "added_ms": h - d, "requests": n});

    // Quorum and audits on magika: three providers, and an auditor that
    // samples 5% of A's receipts once it serves the model too.
    let magika = push(&a, "magika").await;
    let b = node(&dir("qb"), addrs(&a), 0.0).await;
    let c = node(&dir("qc"), addrs(&a), 0.0).await;
    let auditor = node(&dir("audit"), addrs(&a), 0.05).await;
    for x in [&b, &c] {
        providers(x, magika, 1).await;
        x.replicate("magika", None).await.unwrap();
    }
    providers(&a, magika, 2).await;
    providers(&auditor, magika, 1).await;
    let m: usize = std::env::var("VOUCH_BENCH_CPU_REQUESTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    let cpu_of = |verify: Verify| {
        let a = a.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let start = cpu_seconds();
            for i in 0..m {
                a.route("magika", None, magika_input(i as i32), None, verify)
                    .await
                    .unwrap();
            }
            // Let sampled audits finish.
            tokio::time::sleep(Duration::from_millis(1000)).await;
            cpu_seconds() - start
        }
    };
    // The same nodes and gossip in every measurement; blocks with and
    // without the auditor's sampling alternate so drift hits both alike.
    auditor.replicate("magika", None).await.unwrap();
    let (mut single, mut quorum, mut audited_cpu) = (0.0, 0.0, 0.0);
    let before = |n: &Node| {
        n.peer_records()
            .get(&a.peer_id())
            .map_or(0, |r| r.audits_passed)
    };
    let mut audited = 0;
    for _ in 0..4 {
        auditor.set_audit_rate(0.0).unwrap();
        single += cpu_of(Verify::Receipt).await;
        quorum += cpu_of(Verify::Quorum(3)).await;
        auditor.set_audit_rate(0.05).unwrap();
        let seen = before(&auditor);
        audited_cpu += cpu_of(Verify::Receipt).await;
        audited += before(&auditor) - seen;
    }
    let m = m * 4;
    println!(
        "\n| verification (magika, {m} requests per row from one client, in alternating blocks) | CPU s (all nodes) | ratio to one execution |\n|---|---|---|"
    );
    println!("| receipt (one execution) | {single:.2} | 1.00x |");
    println!("| quorum:3 | {quorum:.2} | {:.2}x |", quorum / single);
    println!(
        "| receipt + audits at 5% ({audited} of {m} re-executed) | {audited_cpu:.2} | {:.2}x |",
        audited_cpu / single
    );
    out["verification"] = json!({"requests": m, "single_cpu_s": single, "quorum3_cpu_s": quorum,
        "audit5_cpu_s": audited_cpu, "audited": audited});

    // Discovery: 10 nodes, every sample announced by the first.
    let d0 = node(&dir("d0"), vec![], 0.0).await;
    let imported = samples::import(&d0, &samples::models_dir()).await;
    let ids: Vec<String> = imported
        .iter()
        .map(|n| d0.find_model(n, None).unwrap().id().to_string())
        .collect();
    let start = Instant::now();
    let mut nodes = vec![d0.clone()];
    for i in 1..10 {
        nodes.push(node(&dir(&format!("d{i}")), addrs(&d0), 0.0).await);
    }
    until("10 nodes to know each other and every model", || {
        nodes.iter().all(|n| {
            let peers = n.p2p().unwrap().peers();
            let announced = peers.values().filter(|p| p.announcement.is_some()).count();
            let models = n.network_models();
            announced >= 9
                && (n.peer_id() == d0.peer_id() || ids.iter().all(|id| models.contains_key(id)))
        })
    })
    .await;
    let discovery = start.elapsed().as_secs_f64();
    println!(
        "\n| discovery | seconds |\n|---|---|\n| 10 nodes joined through one bootstrap peer: all peers and all {} sample models known everywhere | {discovery:.2} |",
        ids.len()
    );
    out["discovery"] = json!({"nodes": 10, "models": ids.len(), "seconds": discovery});
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut out = json!({});
    rt.block_on(bench(&mut out));
    if let Some(path) = std::env::var_os("VOUCH_BENCH_OUT") {
        std::fs::write(path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    }
}
