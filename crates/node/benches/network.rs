//! Network benchmarks, each a ratio against a baseline measured in the same
//! run, with real nodes (real libp2p swarms on loopback, real stores on
//! disk, real models) in this process:
//!
//! - replication throughput between two nodes against a raw loopback TCP
//!   copy of the same file into a synced file;
//! - added latency of one routing hop (a gateway forwarding to a provider)
//!   against the provider answering itself;
//! - CPU of `quorum:3` against a single execution;
//! - CPU with audits at a 5% sampling rate against no audits (the auditor
//!   in a process of its own, so its share is measured apart);
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

async fn node(dir: &Path, bootstrap: Vec<vouch_node::p2p::Address>, audit_rate: f64) -> Arc<Node> {
    let mut config = NodeConfig::new(dir.to_path_buf());
    config.audit_rate = audit_rate;
    let node = Node::open(config).unwrap();
    node.join(P2pConfig::loopback(bootstrap), None)
        .await
        .unwrap();
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

/// Reads the CPU time this process and, given its id, the auditor's
/// process have used so far, to the nanosecond: the sum over their
/// threads' `schedstat` files under /proc (a process's `stat` counts in
/// 10 ms ticks, too coarse for windows of a few requests). A thread of its
/// own does the reading and leaves itself out, so that reading costs
/// nothing measured. A thread that exits loses what it used since the
/// last reading; a node's threads live as long as the run.
struct Meter {
    ask: std::sync::mpsc::Sender<std::sync::mpsc::Sender<[f64; 2]>>,
}

impl Meter {
    fn start(auditor: Option<u32>) -> Meter {
        let (ask, asks) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<[f64; 2]>>();
        std::thread::spawn(move || {
            let me = std::fs::read_link("/proc/thread-self").unwrap();
            let me = me.file_name().unwrap().to_owned();
            let mut last = std::collections::HashMap::new();
            let mut used = [0u64; 2];
            for reply in asks {
                for (i, pid) in [Some(std::process::id()), auditor].into_iter().enumerate() {
                    let Some(pid) = pid else { continue };
                    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).unwrap();
                    for task in tasks.flatten().filter(|t| i == 1 || t.file_name() != me) {
                        let ns = std::fs::read_to_string(task.path().join("schedstat"))
                            .ok()
                            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok());
                        if let Some(ns) = ns {
                            let before = last.insert((i, task.file_name()), ns).unwrap_or(0);
                            used[i] += ns.saturating_sub(before);
                        }
                    }
                }
                let _ = reply.send(used.map(|ns| ns as f64 / 1e9));
            }
        });
        Meter { ask }
    }

    /// Seconds of CPU used so far: [this process, the auditor's].
    fn read(&self) -> [f64; 2] {
        let (reply, answer) = std::sync::mpsc::channel();
        self.ask.send(reply).unwrap();
        answer.recv().unwrap()
    }

    /// Seconds of CPU both processes used while `work` ran: [this
    /// process, the auditor's].
    async fn measure(&self, work: impl std::future::Future<Output = ()>) -> [f64; 2] {
        let start = self.read();
        work.await;
        let end = self.read();
        [end[0] - start[0], end[1] - start[1]]
    }
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

/// A fresh directory `name` under the bench's temporary directory.
fn dir(tmp: &Path, name: &str) -> std::path::PathBuf {
    let d = tmp.join(name);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A count from the environment variable `var`, or `default`.
fn env_count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// Replication: the largest sample from `a` into a fresh node each run.
async fn replication(tmp: &Path, a: &Arc<Node>) -> serde_json::Value {
    let dir = |name: &str| dir(tmp, name);
    let runs = env_count("VOUCH_BENCH_RUNS", 3);
    let big = "paraphrase-minilm-l3";
    let id = push(a, big).await;
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
            let b = node(&into, addrs(a), 0.0).await;
            b.admit(a.public_key());
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
    json!({"model": big, "bytes": size, "raw_s": raw, "fetch_s": fetch, "total_s": total})
}

/// One routing hop: a gateway with no model forwards to the provider `a`.
async fn routing(tmp: &Path, a: &Arc<Node>) -> serde_json::Value {
    let g = node(&dir(tmp, "g"), addrs(a), 0.0).await;
    g.admit(a.public_key());
    let iris = push(a, "iris").await;
    providers(&g, iris, 1).await;
    let n = env_count("VOUCH_BENCH_REQUESTS", 400);
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
    // CPU per request (both nodes), in alternating blocks.
    let meter = Meter::start(None);
    let (mut direct_cpu, mut hop_cpu) = (0.0, 0.0);
    for _ in 0..4 {
        for (via, cpu) in [(a, &mut direct_cpu), (&g, &mut hop_cpu)] {
            *cpu += meter
                .measure(async {
                    for _ in 0..n {
                        via.route("iris", None, iris_input(), None, Verify::Receipt)
                            .await
                            .unwrap();
                    }
                })
                .await[0];
        }
    }
    let per = |cpu: f64| cpu / (4 * n) as f64 * 1e6;
    let (d, h) = (median(&mut direct), median(&mut hop));
    println!(
        "\n| routing (iris, {n} requests each, interleaved) | p50 ms | CPU µs per request (all nodes, {} each) |\n|---|---|---|",
        4 * n
    );
    println!(
        "| provider answers itself | {d:.3} | {:.0} |",
        per(direct_cpu)
    );
    println!(
        "| gateway -> provider (one libp2p hop, answer checked) | {h:.3} | {:.0} |",
        per(hop_cpu)
    );
    println!(
        "| **added by the hop** | **{:.3}** | **{:.0}** |",
        h - d,
        per(hop_cpu - direct_cpu)
    );
    json!({"direct_p50_ms": d, "hop_p50_ms": h, "added_ms": h - d, "requests": n,
        "direct_cpu_us": per(direct_cpu), "hop_cpu_us": per(hop_cpu)})
}

/// The auditor, in a process of its own as on a real network, so that
/// its CPU is measured apart from the executors' (the process re-runs
/// this bench as `VOUCH_BENCH_AUDITOR`; see [`auditor_main`]).
struct Auditor {
    child: std::process::Child,
    replies: std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
}

impl Auditor {
    /// Starts the auditor, joined through `a`, serving `model`, sampling
    /// none of `a`'s receipts until told to.
    fn start(a: &Node, model: vouch_types::Digest) -> Auditor {
        use std::io::BufRead;
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .env("VOUCH_BENCH_AUDITOR", addrs(a)[0].to_string())
            .env("VOUCH_BENCH_MODEL", model.to_string())
            .env("VOUCH_BENCH_EXECUTOR", a.peer_id().to_string())
            .env("VOUCH_BENCH_PUBLISHER", a.public_key().to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let replies = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let mut auditor = Auditor { child, replies };
        // `ready KEY`: the executor admits the auditor, or it would not
        // hand it the inputs of the receipts it audits.
        let ready = auditor.reply();
        let key = ready
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("the auditor said {ready:?}"));
        a.admit(key.parse().unwrap());
        auditor
    }

    fn reply(&mut self) -> String {
        tokio::task::block_in_place(|| self.replies.next().unwrap().unwrap())
    }

    /// Sends `command` and returns the auditor's one-line answer.
    fn ask(&mut self, command: &str) -> String {
        use std::io::Write;
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{command}").unwrap();
        stdin.flush().unwrap();
        self.reply()
    }

    /// Receipts of the executor's that the auditor has audited and passed.
    fn passed(&mut self) -> u64 {
        self.ask("passed").parse().unwrap()
    }
}

impl Drop for Auditor {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The auditor process: joins through `$VOUCH_BENCH_AUDITOR`, replicates
/// `$VOUCH_BENCH_MODEL`, says `ready`, then answers one line per command
/// on stdin: `rate R` sets its sampling rate, `passed` counts the audits
/// of `$VOUCH_BENCH_EXECUTOR` that passed.
fn auditor_main(rt: &tokio::runtime::Runtime, bootstrap: &str) {
    use std::io::BufRead;
    let env = |var: &str| std::env::var(var).unwrap();
    let model: vouch_types::Digest = env("VOUCH_BENCH_MODEL").parse().unwrap();
    let executor: vouch_node::p2p::Peer = env("VOUCH_BENCH_EXECUTOR").parse().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let auditor = rt.block_on(async {
        let auditor = node(tmp.path(), vec![bootstrap.parse().unwrap()], 0.0).await;
        auditor.admit(env("VOUCH_BENCH_PUBLISHER").parse().unwrap());
        providers(&auditor, model, 1).await;
        auditor.replicate("magika", None).await.unwrap();
        auditor
    });
    println!("ready {}", auditor.public_key());
    for line in std::io::stdin().lock().lines() {
        let line = line.unwrap();
        match line.split_once(' ') {
            Some(("rate", r)) => {
                rt.block_on(auditor.set_audit_rate(r.parse().unwrap()))
                    .unwrap();
                println!("ok");
            }
            _ if line == "passed" => {
                let records = auditor.peer_records();
                println!("{}", records.get(&executor).map_or(0, |r| r.audits_passed));
            }
            _ => panic!("unknown auditor command {line:?}"),
        }
    }
}

/// Time left at the end of each measured window for work a request leaves
/// behind (its receipts written by the receipt log's thread) to finish
/// inside it.
const SETTLE: Duration = Duration::from_millis(20);

/// CPU of verification on magika, all nodes together: one execution,
/// `quorum:3` across three providers, and an auditor (its own process)
/// that samples 5% of `a`'s receipts.
async fn verification(tmp: &Path, a: &Arc<Node>) -> serde_json::Value {
    let magika = push(a, "magika").await;
    let b = node(&dir(tmp, "qb"), addrs(a), 0.0).await;
    let c = node(&dir(tmp, "qc"), addrs(a), 0.0).await;
    for x in [&b, &c] {
        // The quorum's members admit one another.
        x.admit(a.public_key());
        a.admit(x.public_key());
        providers(x, magika, 1).await;
        x.replicate("magika", None).await.unwrap();
    }
    let mut auditor = Auditor::start(a, magika);
    providers(a, magika, 3).await;
    let meter = Meter::start(Some(auditor.child.id()));
    let m = env_count("VOUCH_BENCH_CPU_REQUESTS", 1000);
    let window = env_count("VOUCH_BENCH_CPU_WINDOW", 10).max(1);
    let requests = async |verify: Verify, first: usize, count: usize| {
        for i in first..first + count {
            a.route("magika", None, magika_input(i as i32), None, verify)
                .await
                .unwrap();
        }
    };
    // One execution against quorum:3 in windows of `window` requests that
    // take turns (and turns going first), so that a shared host's drift,
    // which moves a row by several percent over seconds, hits both alike.
    // While the auditor samples nothing, nobody subscribes to receipts and
    // executors gossip none: this is a network without audits.
    assert_eq!(auditor.ask("rate 0"), "ok");
    let (mut single, mut quorum) = (0.0, 0.0);
    for w in 0..m / window {
        let mut rows = [
            (Verify::Receipt, &mut single),
            (Verify::Quorum(3), &mut quorum),
        ];
        if w % 2 == 1 {
            rows.reverse();
        }
        for (verify, cpu) in rows {
            let used = meter
                .measure(async {
                    requests(verify, w * window, window).await;
                    tokio::time::sleep(SETTLE).await;
                })
                .await;
            *cpu += used[0] + used[1];
        }
    }
    let m = m / window * window;
    // Audits: blocks with and without the auditor's sampling alternate. A
    // block ends a second after its last request, once sampled audits are
    // done.
    let blocks = env_count("VOUCH_BENCH_CPU_BLOCKS", 4).max(1);
    let per_block = m / blocks;
    let (mut plain, mut audited_cpu, mut audited) = (0.0, 0.0, 0);
    let (mut auditor_idle, mut auditor_busy) = (0.0, 0.0);
    for block in 0..blocks {
        for (rate, cpu, auditor_cpu) in [
            (0.0, &mut plain, &mut auditor_idle),
            (0.05, &mut audited_cpu, &mut auditor_busy),
        ] {
            assert_eq!(auditor.ask(&format!("rate {rate}")), "ok");
            let seen = auditor.passed();
            tokio::time::sleep(Duration::from_millis(300)).await;
            let used = meter
                .measure(async {
                    requests(Verify::Receipt, block * per_block, per_block).await;
                    tokio::time::sleep(Duration::from_millis(1000)).await;
                })
                .await;
            (*cpu, *auditor_cpu) = (*cpu + used[0] + used[1], *auditor_cpu + used[1]);
            audited += auditor.passed() - seen;
        }
    }
    let n = per_block * blocks;
    // The sample is a random draw (binomial: 50 ± 7 of 1000), so the total
    // row moves with it. The auditor's own process measures what an audit
    // costs it; scaled to exactly 5% of the requests, that is the expected
    // cost of the sampling rate.
    let per_request = plain / n as f64;
    let per_audit = (auditor_busy - auditor_idle) / audited.max(1) as f64;
    let at_rate = 1.0 + 0.05 * per_audit / per_request;
    // An audit's whole cost: the auditor's re-execution and the executor's
    // side (gossiping receipts, handing over inputs), every process's CPU.
    let per_audit_both = (audited_cpu - plain) / audited.max(1) as f64;
    let at_rate_both = 1.0 + 0.05 * per_audit_both / per_request;
    println!(
        "\n| verification (magika, one client; CPU of all nodes from /proc schedstat) | CPU s | ratio |\n|---|---|---|"
    );
    println!(
        "| receipt (one execution), {m} requests in windows of {window} taking turns with quorum:3 | {single:.2} | 1.00x |"
    );
    println!(
        "| quorum:3, {m} requests | {quorum:.2} | {:.2}x |",
        quorum / single
    );
    println!(
        "| receipt, {n} requests in {blocks} blocks while the auditor samples none | {plain:.2} | 1.00x |"
    );
    println!(
        "| receipt + audits at 5%, {n} requests in {blocks} blocks taking turns with those ({audited} re-executed) | {audited_cpu:.2} | {:.3}x |",
        audited_cpu / plain
    );
    println!(
        "| the auditor's process: {auditor_idle:.2} s sampling none, {auditor_busy:.2} s sampling 5% = {:.1} ms per audit ({:.1} ms per request); at exactly 5% | | {at_rate:.3}x |",
        per_audit * 1e3,
        per_request * 1e3
    );
    println!(
        "| auditor plus executor (every process): {:.1} ms per audit; at exactly 5% | | {at_rate_both:.3}x |",
        per_audit_both * 1e3
    );
    json!({"requests": m, "window": window, "single_cpu_s": single, "quorum3_cpu_s": quorum,
        "audit_requests": n, "plain_cpu_s": plain,
        "audit5_cpu_s": audited_cpu, "audited": audited,
        "auditor_cpu_s": {"sampling_none": auditor_idle, "sampling_5pct": auditor_busy},
        "audit_cpu_ms": per_audit * 1e3, "request_cpu_ms": per_request * 1e3,
        "audit5_expected_ratio": at_rate,
        "audit_cpu_ms_auditor_and_executor": per_audit_both * 1e3,
        "audit5_expected_ratio_auditor_and_executor": at_rate_both})
}

/// Discovery: 10 nodes, every sample announced by the first.
async fn discovery(tmp: &Path) -> serde_json::Value {
    let d0 = node(&dir(tmp, "d0"), vec![], 0.0).await;
    let imported = samples::import(&d0, &samples::models_dir()).await;
    let ids: Vec<String> = imported
        .iter()
        .map(|n| d0.find_model(n, None).unwrap().id().to_string())
        .collect();
    let start = Instant::now();
    let mut nodes = vec![d0.clone()];
    for i in 1..10 {
        nodes.push(node(&dir(tmp, &format!("d{i}")), addrs(&d0), 0.0).await);
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
    json!({"nodes": 10, "models": ids.len(), "seconds": discovery})
}

/// Runs the sections named in `$VOUCH_BENCH_ONLY` (comma-separated:
/// replication, routing, verification, discovery), or all of them.
async fn bench(out: &mut serde_json::Value) {
    let only = std::env::var("VOUCH_BENCH_ONLY").ok();
    let wanted = |section: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|s| s.trim() == section))
    };
    let tmp = tempfile::tempdir().unwrap();
    let a = node(&dir(tmp.path(), "a"), vec![], 0.0).await;
    if wanted("replication") {
        out["replication"] = replication(tmp.path(), &a).await;
    }
    if wanted("routing") {
        out["routing"] = routing(tmp.path(), &a).await;
    }
    if wanted("verification") {
        out["verification"] = verification(tmp.path(), &a).await;
    }
    if wanted("discovery") {
        out["discovery"] = discovery(tmp.path()).await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if let Ok(bootstrap) = std::env::var("VOUCH_BENCH_AUDITOR") {
        return auditor_main(&rt, &bootstrap);
    }
    let mut out = json!({});
    rt.block_on(bench(&mut out));
    if let Some(path) = std::env::var_os("VOUCH_BENCH_OUT") {
        std::fs::write(path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    }
}
