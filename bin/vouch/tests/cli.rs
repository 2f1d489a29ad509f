//! The `vouch` binary as a user runs it: a real node process, the CLI
//! against it, `verify` offline, and a node killed in the middle of an
//! upload.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_vouch");

fn models_dir() -> PathBuf {
    let dir = vouch_node::samples::models_dir();
    assert!(
        dir.join("iris.onnx").exists(),
        "sample models missing: run scripts/fetch-models.sh"
    );
    dir
}

/// Reads a node's log (its piped stderr) in the background, sending the
/// address each time it says where it listens, or its first lines if the
/// log ends; the log is drained, so the node never blocks on a full pipe.
fn listening(child: &mut Child) -> std::sync::mpsc::Receiver<Result<String, String>> {
    use std::io::BufRead;
    let (said, heard) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        // Lines as bytes: one that is not UTF-8 must not end the reading.
        for line in stderr.split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).into_owned();
            if let Some(at) = line.split(" listening on ").nth(1) {
                let _ = said.send(Ok(at.split_whitespace().next().unwrap_or("").to_string()));
            } else if seen.len() < 50 {
                seen.push(line);
            }
        }
        let _ = said.send(Err(seen.join("\n")));
    });
    heard
}

/// The URL a node next says it listens on (30 s at most).
fn next_listen(heard: &std::sync::mpsc::Receiver<Result<String, String>>) -> String {
    match heard.recv_timeout(Duration::from_secs(30)) {
        Ok(Ok(url)) => url,
        Ok(Err(log)) => panic!("node did not start:\n{log}"),
        Err(_) => panic!("node did not say where it listens within 30 s"),
    }
}

struct NodeProcess {
    child: Child,
    url: String,
    port: u16,
    /// Its admin token, which `vouch` is given as $VOUCH_TOKEN.
    token: Option<String>,
}

impl NodeProcess {
    fn start(data: &Path, port: u16) -> NodeProcess {
        NodeProcess::start_with(data, port, &[])
    }

    /// A node process with extra flags, on `port` (0: any free one; the
    /// node says which it bound, so no other process can take it between
    /// a test choosing it and the node binding it).
    fn start_with(data: &Path, port: u16, extra: &[&str]) -> NodeProcess {
        NodeProcess::start_command("node", data, port, extra)
    }

    /// `vouch COMMAND --listen 127.0.0.1:PORT --data-dir DATA EXTRA…`.
    fn start_command(command: &str, data: &Path, port: u16, extra: &[&str]) -> NodeProcess {
        let mut child = Command::new(BIN)
            .args([
                command,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--data-dir",
            ])
            .arg(data)
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let said = listening(&mut child);
        let url = next_listen(&said);
        let port = url.rsplit(':').next().unwrap().parse().unwrap();
        let token = std::fs::read_to_string(data.join("admin-token"))
            .expect("the node wrote its admin token")
            .trim()
            .to_string();
        NodeProcess {
            child,
            url,
            port,
            token: Some(token),
        }
    }

    fn vouch(&self, args: &[&str]) -> Output {
        self.vouch_in(Path::new("."), args)
    }

    /// `vouch ARGS` against this node, run in directory `dir`.
    fn vouch_in(&self, dir: &Path, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        // Verifying keys the client derives stay out of the user's cache.
        cmd.args(args)
            .env("VOUCH_NODE", &self.url)
            .env(
                "VOUCH_KEYS",
                std::env::temp_dir().join("vouch-cli-test-keys"),
            )
            .env_remove("VOUCH_TOKEN")
            .current_dir(dir);
        if let Some(t) = &self.token {
            cmd.env("VOUCH_TOKEN", t);
        }
        cmd.output().unwrap()
    }

    /// `vouch model push` of the sample file `file` as `name`, with
    /// `extra` flags.
    fn push(&self, file: &str, name: &str, extra: &[&str]) -> Output {
        let path = models_dir().join(file);
        let mut args = vec!["model", "push", path.to_str().unwrap(), "--name", name];
        args.extend(extra);
        self.vouch(&args)
    }

    /// Pushes the iris sample with its batch dimension free; the output.
    fn push_iris(&self) -> String {
        ok(&self.push("iris.onnx", "iris", &["--input-shape", "float_input=N,4"]))
    }

    /// The node's peer address, as `vouch network` prints it.
    fn peer_address(&self) -> String {
        let net: serde_json::Value =
            serde_json::from_str(&ok(&self.vouch(&["network", "--json"]))).unwrap();
        let address = net["listen"][0].as_str().unwrap().to_string();
        assert!(address.contains("/p2p/"), "{address}");
        address
    }

    /// The node's operator key, as `vouch network` shows it (for another
    /// node's `--admit`).
    fn operator(&self) -> String {
        let net: serde_json::Value =
            serde_json::from_str(&ok(&self.vouch(&["network", "--json"]))).unwrap();
        net["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["local"] == true)
            .and_then(|n| n["operator"].as_str())
            .unwrap()
            .to_string()
    }

    /// Waits until a peer of this node announces model `name` (a node
    /// that has just joined hears announcements a moment later).
    fn wait_for_model(&self, name: &str) {
        eventually(&format!("a peer to announce {name}"), || {
            let net: serde_json::Value =
                serde_json::from_str(&ok(&self.vouch(&["network", "--json"]))).ok()?;
            let prefix = format!("{name}@");
            net["nodes"]
                .as_array()?
                .iter()
                .filter(|n| n["local"] == false)
                .flat_map(|n| n["models"].as_array().into_iter().flatten())
                .any(|m| m.as_str().is_some_and(|m| m.starts_with(&prefix)))
                .then_some(())
        });
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for NodeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "command failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: &Output, needle: &str) {
    assert!(!out.status.success(), "command should have failed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "stderr `{err}` lacks `{needle}`");
}

#[test]
fn push_list_show_infer_verify() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(data.path(), 0);
    let iris = models_dir().join("iris.onnx");
    let iris = iris.to_str().unwrap();

    let out = node.push_iris();
    assert!(
        out.contains("iris@1") && out.contains("float_input float32 [N, 4]"),
        "{out}"
    );
    let out = ok(&node.vouch(&["model", "ls"]));
    assert!(out.contains("iris") && out.contains("model:"), "{out}");
    let out = ok(&node.vouch(&["model", "show", "iris", "--json"]));
    let shown: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(shown["versions"], serde_json::json!(["1"]));
    let pulled = work.path().join("pulled.onnx");
    ok(&node.vouch(&["model", "pull", "iris", "-o", pulled.to_str().unwrap()]));
    assert_eq!(
        std::fs::read(&pulled).unwrap(),
        std::fs::read(iris).unwrap()
    );

    let input = work.path().join("in.json");
    std::fs::write(
        &input,
        r#"{"inputs":{"float_input":{"dtype":"float32","shape":[2,4],"data":[5.1,3.5,1.4,0.2,6.7,3.0,5.2,2.3]}}}"#,
    )
    .unwrap();
    let (outp, rcpt) = (work.path().join("out.json"), work.path().join("r.json"));
    let p = |p: &Path| p.to_str().unwrap().to_string();
    let out = node.vouch(&[
        "infer",
        "iris",
        "--input",
        &p(&input),
        "--out",
        &p(&outp),
        "--receipt",
        &p(&rcpt),
    ]);
    let _ = ok(&out);
    // It says which model the receipt names, checked against the name.
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("iris@1 as the node registers it"), "{said}");
    // A receipt for another model than the one required is refused.
    let other = format!("model:{}", "0".repeat(64));
    fails(
        &node.vouch(&["infer", "iris", "--input", &p(&input), "--model-id", &other]),
        "not from the model asked for",
    );
    let outputs: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&outp).unwrap()).unwrap();
    assert_eq!(
        outputs["outputs"]["label"]["data"],
        serde_json::json!([0, 2])
    );

    let out = ok(&node.vouch(&[
        "verify",
        &p(&rcpt),
        "--input",
        &p(&input),
        "--output",
        &p(&outp),
    ]));
    assert!(out.starts_with("ok: rcpt:"), "{out}");
    let receipt: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&rcpt).unwrap()).unwrap();
    let node_key = receipt["node"].as_str().unwrap().to_string();
    ok(&node.vouch(&["verify", &p(&rcpt), "--node-key", &node_key]));
    ok(&node.vouch(&["receipts", "show", receipt["id"].as_str().unwrap()]));

    // A tampered receipt, inputs or outputs: verify exits non-zero and says why.
    let mut tampered = receipt.clone();
    tampered["timestamp_ms"] = serde_json::json!(1);
    let bad = work.path().join("bad.json");
    std::fs::write(&bad, tampered.to_string()).unwrap();
    fails(&node.vouch(&["verify", &p(&bad)]), "a field was altered");
    let other_in = work.path().join("in2.json");
    std::fs::write(
        &other_in,
        std::fs::read_to_string(&input)
            .unwrap()
            .replace("5.1", "5.2"),
    )
    .unwrap();
    fails(
        &node.vouch(&["verify", &p(&rcpt), "--input", &p(&other_in)]),
        "inputs do not match",
    );
    let other_out = work.path().join("out2.json");
    std::fs::write(
        &other_out,
        std::fs::read_to_string(&outp)
            .unwrap()
            .replacen("0,", "1,", 1),
    )
    .unwrap();
    fails(
        &node.vouch(&["verify", &p(&rcpt), "--output", &p(&other_out)]),
        "outputs do not match",
    );
    // The model it names: as the node registers it, or exactly an id.
    let out = node.vouch(&["verify", &p(&rcpt), "--model", "iris@1"]);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(ok(&out).contains("signature and id, model"), "{said}");
    assert!(said.contains("iris@1 as the node registers it"), "{said}");
    let model_id = receipt["model"].as_str().unwrap().to_string();
    ok(&node.vouch(&["verify", &p(&rcpt), "--model-id", &model_id]));
    fails(
        &node.vouch(&["verify", &p(&rcpt), "--model-id", &other]),
        "not from the model asked for",
    );
    let stranger = "ed25519:".to_string() + &"11".repeat(32);
    fails(
        &node.vouch(&["verify", &p(&rcpt), "--node-key", &stranger]),
        "is signed by",
    );

    // Errors from the node reach the user as they were written.
    fails(
        &node.vouch(&["infer", "nosuch", "--input", &p(&input)]),
        "no model `nosuch`",
    );

    // No command prints the private key.
    let key = std::fs::read_to_string(data.path().join("operator.key")).unwrap();
    let ls = node.vouch(&["model", "ls", "--json"]);
    assert!(!String::from_utf8_lossy(&ls.stdout).contains(key.trim()));

    // A model version deleted is gone from the node; `vouch gc` says what
    // it freed (the file stays an hour, for uploads in progress).
    let out = ok(&node.vouch(&["model", "rm", "iris", "--version", "1"]));
    assert!(out.contains("deleted iris@1"), "{out}");
    fails(
        &node.vouch(&["infer", "iris", "--input", &p(&input)]),
        "no model `iris`",
    );
    fails(
        &node.vouch(&["model", "rm", "iris", "--version", "1"]),
        "no model `iris@1`",
    );
    let out = ok(&node.vouch(&["gc"]));
    assert!(out.starts_with("freed 0 blob(s)"), "{out}");
    node.kill();
}

/// The CLI finds a node's admin token where the user would: in $VOUCH_TOKEN
/// or in the node's data directory (--data-dir); without it, an operator
/// action is refused with the way to fix it, and inference still works.
#[test]
fn operator_token_from_the_data_dir() {
    let data = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(data.path(), 0);
    let iris = models_dir().join("iris.onnx");
    let vouch = |pre: &[&std::ffi::OsStr], args: &[&str]| {
        Command::new(BIN)
            .args(pre)
            .args(args)
            .env("VOUCH_NODE", &node.url)
            .env_remove("VOUCH_TOKEN")
            // No default data directory with a token in it.
            .env("HOME", home.path())
            .env_remove("XDG_DATA_HOME")
            .output()
            .unwrap()
    };
    let push = [
        "model",
        "push",
        iris.to_str().unwrap(),
        "--name",
        "iris",
        "--input-shape",
        "float_input=N,4",
    ];
    let out = vouch(&[], &push);
    fails(&out, "admin-token");
    fails(&out, "401");
    let out = vouch(&["--token".as_ref(), "not-the-token".as_ref()], &push);
    fails(&out, "is not this node's admin token");
    ok(&vouch(
        &["--data-dir".as_ref(), data.path().as_os_str()],
        &push,
    ));
    // Public: listing and inference need no token.
    let out = ok(&vouch(&[], &["model", "ls"]));
    assert!(out.contains("iris") && out.contains("model:"), "{out}");
}

#[test]
fn unreachable_node_is_explained() {
    let out = Command::new(BIN)
        .args(["model", "ls"])
        .env("VOUCH_NODE", "http://127.0.0.1:9")
        .output()
        .unwrap();
    fails(&out, "is `vouch up` running?");
}

#[test]
fn a_node_killed_mid_upload_leaves_no_partial_blob() {
    let data = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(data.path(), 0);
    let port = node.port;
    let model = std::fs::read(models_dir().join("silero-vad.onnx")).unwrap();

    // Send the headers and half the body, then kill -9 the node.
    let mut stream = TcpStream::connect(("127.0.0.1", node.port)).unwrap();
    write!(
        stream,
        "POST /v1/hub/models?name=silero HTTP/1.1\r\nhost: localhost\r\nauthorization: Bearer {}\r\ncontent-type: application/octet-stream\r\ncontent-length: {}\r\n\r\n",
        node.token.as_deref().unwrap(),
        model.len()
    )
    .unwrap();
    stream.write_all(&model[..model.len() / 2]).unwrap();
    stream.flush().unwrap();
    let tmp = data.path().join("store/tmp");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_dir(&tmp).map(|r| r.count()).unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "upload never reached the disk");
        std::thread::sleep(Duration::from_millis(20));
    }
    node.kill();
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest);

    // Restart: the partial upload is gone, nothing was registered, and the
    // same upload now succeeds.
    let node = NodeProcess::start(data.path(), port);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
    let blobs = data.path().join("store/blobs");
    assert_eq!(std::fs::read_dir(&blobs).unwrap().count(), 0);
    let out = ok(&node.vouch(&["model", "ls"]));
    assert!(out.contains("no models"), "{out}");
    ok(&node.push("silero-vad.onnx", "silero", &[]));
    node.kill();
}

/// One iris request, for `vouch infer iris --input`.
const IRIS_REQUEST: &str =
    r#"{"inputs":{"float_input":{"dtype":"float32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}}}"#;

/// Runs `check` until it returns Some, for at most 120 s.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The vouch CLI with `args` against the node at `url`, the data
/// directory `data` (its admin token) and `work` as the working directory.
fn vouch_at(data: &Path, work: &Path, url: &str, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .env("VOUCH_NODE", url)
        .current_dir(work)
        .output()
        .unwrap()
}

/// Held by each test that runs a local network of several node processes
/// with LLMs ([`up_network`]) for as long as it runs, so that two such
/// networks never share a 2-core machine: run together, a quorum's receipt
/// reached its client 7 s after it was signed, past the 5 s freshness
/// window the client rightly enforces.
/// Taken first, so that it is released last, after the network's processes.
fn one_network_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static NETWORK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    NETWORK.lock().unwrap_or_else(|e| e.into_inner())
}

/// `vouch up --nodes N` with `args`, in `data` with the sample models in
/// `models`: the process (killed on drop) and each node's URL, in node
/// order, as the nodes say where they listen.
fn up_network(data: &Path, models: &Path, n: usize, args: &[&str]) -> (KillOnDrop, Vec<String>) {
    let mut child = KillOnDrop(
        Command::new(BIN)
            .args(["up", "--nodes", &n.to_string()])
            .args(args)
            .args([
                // Each node binds a port of its own (0: any free one) and
                // says which: no port is chosen by the test and raced for.
                "--listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(data)
            .arg("--models")
            .arg(models)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    use std::io::BufRead;
    let (said, heard) = std::sync::mpsc::channel();
    let stderr = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let kept = log.clone();
    // Read the nodes' addresses, then keep draining the log so that
    // the process never blocks on a full pipe.
    std::thread::spawn(move || {
        // Lines as bytes: a log line that is not UTF-8 must not end
        // the reading (the pipe would fill and block the nodes).
        for line in stderr.split(b'\n').map_while(Result::ok) {
            let line = String::from_utf8_lossy(&line).into_owned();
            if let Some(rest) = line.strip_prefix("node ")
                && let Some((i, rest)) = rest.split_once(": ")
                && let Ok(i) = i.parse::<usize>()
                && let Some(url) = rest.split_whitespace().next()
                && url.starts_with("http://")
            {
                let _ = said.send((i, url.to_string()));
            }
            let mut kept = kept.lock().unwrap();
            if kept.len() < 400 && !line.contains("DEBUG") {
                kept.push(line);
            }
        }
    });
    // Each node is a process of its own: they say where they listen in
    // any order.
    let mut urls = vec![String::new(); n];
    for _ in 0..n {
        let Ok((i, url)) = heard.recv_timeout(Duration::from_secs(120)) else {
            panic!(
                "vouch up did not say where each node listens ({urls:?}); its log:\n{}",
                log.lock().unwrap().join("\n")
            );
        };
        urls[i] = url;
    }
    (child, urls)
}

#[test]
fn up_with_four_nodes_replicates_samples_and_a_quorum_catches_the_faulty_one() {
    let _turn = one_network_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let models = models_dir();
    let (mut child, urls) = up_network(
        data.path(),
        &models,
        4,
        &["--fault", "perturb", "--audit-rate", "1"],
    );
    let vouch = |url: &str, args: &[&str]| vouch_at(data.path(), work.path(), url, args);
    // Where node 0's evidence first lists a record of `kind` that found
    // the executor faulty.
    let executor_dispute = |kind: &str| {
        let out = vouch(&urls[0], &["evidence", "--json"]);
        let records: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).unwrap_or_default();
        records
            .iter()
            .position(|r| r["kind"] == kind && r["dispute"]["faulty"] == "executor")
    };
    // Every node ends up serving iris, replicated from node 0.
    for url in &urls {
        eventually("iris on every node", || {
            let out = vouch(url, &["model", "ls"]);
            (out.status.success() && String::from_utf8_lossy(&out.stdout).contains("iris"))
                .then_some(())
        });
    }
    // A pin waits, with progress on stderr, until all 4 nodes serve the
    // model.
    let out = ok(&vouch(
        &urls[1],
        &[
            "model",
            "pin",
            "magika",
            "--replicas",
            "4",
            "--timeout",
            "120",
        ],
    ));
    assert!(
        out.contains("magika@1") && out.contains("served by 4 node(s)"),
        "{out}"
    );
    let input = work.path().join("in.json");
    std::fs::write(&input, IRIS_REQUEST).unwrap();
    let out = vouch(
        &urls[0],
        &[
            "infer", "iris", "--input", "in.json", "--verify", "quorum:4", "--out", "out.json",
        ],
    );
    let _ = ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("quorum: 3 of 4 operators agreed; dissent from ed25519:"),
        "{err}"
    );
    let net = ok(&vouch(&urls[0], &["network", "--json"]));
    let net: serde_json::Value = serde_json::from_str(&net).unwrap();
    assert_eq!(net["nodes"].as_array().unwrap().len(), 4, "{net}");
    let dissenters = net["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["record"]["disagreements"] == 1)
        .count();
    assert_eq!(dissenters, 1, "{net}");
    // One quorum:4 request: each of the four operators served one, so it
    // takes three of them to hold a majority of the requests.
    assert_eq!(net["nakamoto_coefficient"], 3, "{net}");
    let table = ok(&vouch(&urls[0], &["network"]));
    assert!(
        table.contains("* this node") && table.contains("Nakamoto coefficient"),
        "{table}"
    );

    // The faulty node answers on its own; the others audit every receipt,
    // bisect, have the third node referee, and keep the dispute.
    let _ = ok(&vouch(&urls[3], &["infer", "iris", "--input", "in.json"]));
    let n = eventually("a dispute against the faulty node", || {
        executor_dispute("dispute")
    });
    let listed = ok(&vouch(&urls[0], &["evidence"]));
    assert!(
        listed.contains("dispute") && listed.contains("faulty executor"),
        "{listed}"
    );
    // The nodes are the validators of one chain: the dispute went to it.
    // The faulty node judges its own answer right (its re-run has the same
    // fault) and appeals; the panel, the one operator that is no party,
    // re-runs the step on the inputs the appellant hands it and upholds
    // the conviction. Every node's ledger shows the faulty operator
    // slashed twice (10% of its stake, then 10% of the rest), the others
    // not.
    let ruling = eventually("the appeal decided", || {
        let out = vouch(&urls[0], &["ledger", "disputes"]);
        let d: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        let settled = d["settled"].as_array()?.first()?.clone();
        Some((settled, d))
    });
    assert_eq!(ruling.0["ruling"], "upheld", "{}", ruling.1);
    let faulty_operator = net["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["record"]["disagreements"] == 1)
        .unwrap()["operator"]
        .as_str()
        .unwrap()
        .to_string();
    for url in &urls {
        let slashed = eventually("the faulty operator slashed on every node", || {
            let out = vouch(url, &["ledger", "operators"]);
            let ops: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
            let faulty = ops
                .iter()
                .find(|o| o["operator"] == faulty_operator.as_str())?;
            (faulty["slashed"] == 19_000).then_some(ops)
        });
        assert_eq!(slashed.len(), 4, "{slashed:?}");
        for o in &slashed {
            if o["operator"] != faulty_operator.as_str() {
                assert_eq!(o["slashed"], 0, "{o}");
            } else {
                assert_eq!(o["stake"], 81_000, "{o}");
            }
        }
    }
    // `vouch trace` tells the disputed request's story: its executor's
    // record, the dispute, the conviction.
    let records: Vec<serde_json::Value> =
        serde_json::from_slice(&vouch(&urls[0], &["evidence", "--json"]).stdout).unwrap();
    let disputed = records[n]["dispute"]["executor"]["id"].as_str().unwrap();
    let story = ok(&vouch(&urls[0], &["trace", disputed]));
    assert!(
        story.contains(&format!(
            "executor  {}",
            records[n]["dispute"]["executor"]["node"].as_str().unwrap()
        )) && story.contains("slashed 19000")
            && story.contains("evidence  dispute: faulty executor")
            && story.contains("ledger    convicted"),
        "{story}"
    );
    fails(
        &vouch(&urls[0], &["trace", &format!("rcpt:{}", "0".repeat(64))]),
        "knows nothing of receipt",
    );
    let _ = ok(&vouch(
        &urls[0],
        &[
            "evidence",
            "--dispute",
            &n.to_string(),
            "--out",
            "dispute.json",
        ],
    ));
    // It checks offline, but that alone establishes nothing: anyone can
    // mint the auditor's and the referee's keys.
    let out = vouch(
        &urls[0],
        &["verify-dispute", "dispute.json", "--input", "in.json"],
    );
    fails(&out, "nothing here establishes its verdict");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("the dispute checks"),
        "{out:?}"
    );
    // Established by the operators the user admits (the four nodes'), or
    // by re-running the disputed step on an honest node.
    let operators: Vec<String> = net["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["operator"].as_str().unwrap().to_string())
        .collect();
    let mut admit = vec!["verify-dispute", "dispute.json", "--input", "in.json"];
    for k in &operators {
        admit.extend(["--admit", k.as_str()]);
    }
    let out = ok(&vouch(&urls[0], &admit));
    assert!(
        out.contains("dispute verified: established by admitted parties")
            && out.contains("Executor"),
        "{out}"
    );
    // Or by the node's ledger: the parties staked there, the referee the
    // one its stake-weighted draw with the receipt's beacon picks.
    let out = ok(&vouch(
        &urls[0],
        &[
            "verify-dispute",
            "dispute.json",
            "--input",
            "in.json",
            "--ledger",
        ],
    ));
    assert!(
        out.contains("established by admitted parties")
            && out.contains("staked on the node's ledger")
            && out.contains("Executor"),
        "{out}"
    );
    let out = ok(&vouch(
        &urls[0],
        &[
            "verify-dispute",
            "dispute.json",
            "--input",
            "in.json",
            "--replay",
        ],
    ));
    assert!(
        out.contains("established by re-execution") && out.contains("Executor"),
        "{out}"
    );
    // With admitted keys it is offline: no node needed.
    let out = Command::new(BIN)
        .args(&admit)
        .args(["--node", "http://127.0.0.1:1"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let _ = ok(&out);
    // Tampered copies are refused with the reason.
    let original: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("dispute.json")).unwrap()).unwrap();
    for (field, value, reason) in [
        ("faulty", serde_json::json!("auditor"), "says the"),
        ("step", serde_json::json!(0), "bisection"),
    ] {
        let mut t = original.clone();
        t[field] = value;
        std::fs::write(work.path().join("t.json"), t.to_string()).unwrap();
        fails(&vouch(&urls[0], &["verify-dispute", "t.json"]), reason);
    }
    let mut t = original.clone();
    t["verdict"]["leaf"] = t["executor_descent"]["leaf"].clone();
    std::fs::write(work.path().join("t.json"), t.to_string()).unwrap();
    fails(
        &vouch(&urls[0], &["verify-dispute", "t.json"]),
        "not signed by referee",
    );

    // LLMs too: the faulty node signs runner-up tokens; `vouch chat`
    // checks the receipt and transcript (they are consistent: only
    // re-execution can tell), and the auditors' teacher forcing does.
    eventually("the LLM on the faulty node", || {
        let out = vouch(&urls[3], &["model", "ls"]);
        String::from_utf8_lossy(&out.stdout)
            .contains("smollm2-135m")
            .then_some(())
    });
    let out = vouch(
        &urls[3],
        &[
            "chat",
            "smollm2-135m",
            "What is the capital of France?",
            "--max-tokens",
            "8",
            "--out",
            "answer.json",
        ],
    );
    let _ = ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("verified: signed by"),
        "{out:?}"
    );
    let n = eventually("an LLM dispute against the faulty node", || {
        executor_dispute("llm_dispute")
    });
    let listed = ok(&vouch(&urls[0], &["evidence"]));
    assert!(listed.contains("llm dispute"), "{listed}");
    let _ = ok(&vouch(
        &urls[0],
        &["evidence", "--dispute", &n.to_string(), "--out", "llm.json"],
    ));
    fails(
        &vouch(&urls[0], &["verify-dispute", "llm.json"]),
        "nothing here establishes its verdict",
    );
    let mut admit = vec!["verify-dispute", "llm.json"];
    for k in &operators {
        admit.extend(["--admit", k.as_str()]);
    }
    let out = ok(&vouch(&urls[0], &admit));
    assert!(
        out.contains("dispute verified") && out.contains("Executor is faulty"),
        "{out}"
    );
    let out = ok(&vouch(
        &urls[0],
        &["verify-dispute", "llm.json", "--replay"],
    ));
    assert!(
        out.contains("established by re-execution") && out.contains("Executor is faulty"),
        "{out}"
    );
    let mut t: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("llm.json")).unwrap()).unwrap();
    t["faulty"] = serde_json::json!("auditor");
    std::fs::write(work.path().join("t.json"), t.to_string()).unwrap();
    fails(&vouch(&urls[0], &["verify-dispute", "t.json"]), "says the");
    // A quorum of the four names the faulty node.
    let out = vouch(
        &urls[0],
        &[
            "chat",
            "smollm2-135m",
            "What is the capital of France?",
            "--max-tokens",
            "8",
            "--verify",
            "quorum:4",
        ],
    );
    let _ = ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("quorum: 3 of 4 operators agreed; dissent from peer"),
        "{err}"
    );
    // Any node answers for the model; an honest one passes `--replay`.
    let out = vouch(
        &urls[0],
        &[
            "chat",
            "smollm2-135m",
            "Say hi.",
            "--max-tokens",
            "4",
            "--out",
            "hi.json",
        ],
    );
    let _ = ok(&out);
    let out = ok(&vouch(&urls[0], &["verify", "hi.json", "--replay"]));
    assert!(
        out.starts_with("ok: rcpt:") && out.contains("every token by teacher forcing"),
        "{out}"
    );
    // Reported to another node of the network, which gossips it once.
    let out = ok(&vouch(&urls[1], &["verify", "hi.json", "--report"]));
    assert!(out.contains("gossiped to the network's auditors"), "{out}");
    let out = ok(&vouch(&urls[1], &["verify", "hi.json", "--report"]));
    assert!(out.contains("reported there before"), "{out}");
    // An edited answer fails the replay (its transcript no longer matches
    // the receipt, and the tokens fail the check).
    let mut edited: serde_json::Value =
        serde_json::from_slice(&std::fs::read(work.path().join("hi.json")).unwrap()).unwrap();
    edited["vouch"]["transcript"]["texts"][0] = serde_json::json!(" Bye");
    std::fs::write(work.path().join("bye.json"), edited.to_string()).unwrap();
    let out = vouch(&urls[0], &["verify", "bye.json", "--replay"]);
    assert!(!out.status.success(), "an edited answer passed: {out:?}");
    // A structured answer from the faulty node (node 3: its fault ignores
    // the request's schema) verifies offline, since it signed what it sent,
    // and fails the replay, which names the token the schema forbids.
    let schema = r#"{"type": "object", "properties": {"colour": {"type": "string", "maxLength": 12}}, "required": ["colour"], "additionalProperties": false}"#;
    std::fs::write(work.path().join("colour.schema.json"), schema).unwrap();
    let chat = |url: &str, out: &str| {
        vouch(
            url,
            &[
                "chat",
                "smollm2-135m",
                "Give a colour as JSON.",
                "--max-tokens",
                "16",
                "--json-schema",
                "colour.schema.json",
                "--out",
                out,
            ],
        )
    };
    // From an honest node: JSON that obeys the schema, and the replay passes.
    let text = ok(&chat(&urls[0], "colour.json"));
    let answer: serde_json::Value = serde_json::from_str(text.trim()).expect(&text);
    assert!(answer["colour"].is_string(), "{text}");
    let _ = ok(&vouch(&urls[1], &["verify", "colour.json", "--replay"]));
    let _ = ok(&chat(&urls[3], "schema.json"));
    let _ = ok(&vouch(&urls[0], &["verify", "schema.json"]));
    let out = vouch(&urls[0], &["verify", "schema.json", "--replay"]);
    fails(&out, "not allowed by the request's constraint");
    // The nodes are processes of `vouch up`'s: stopped, it stops them and
    // waits for them, and no node outlives it.
    let pid = child.0.id().to_string();
    ok(&Command::new("kill").args(["-TERM", &pid]).output().unwrap());
    let status = eventually("vouch up to stop", || child.0.try_wait().unwrap());
    assert!(status.success(), "{status}");
    for url in &urls {
        eventually("every node to stop with vouch up", || {
            (!vouch(url, &["model", "ls"]).status.success()).then_some(())
        });
    }
}

/// A child process killed when the test ends, passing or not.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `vouch up --nodes 3 --fault llm-substitute=FILE`: node 2 generates
/// with the sample LLM re-quantized to Q4_0 by llama.cpp while its
/// receipts name the sample. The client's own check passes (the receipt
/// and transcript agree), the other nodes audit every answer under the
/// ledger's default statistical rule, dispute it, and every node's ledger
/// slashes node 2's operator.
#[test]
fn up_with_three_nodes_catches_a_substituted_llm_and_slashes_its_operator() {
    let _turn = one_network_at_a_time();
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let models = models_dir();
    let substitute = work.path().join("q4_0.gguf");
    vouch_engine::gguf::quantize(
        &models.join("smollm2-135m-instruct.q4_1.gguf"),
        &substitute,
        vouch_engine::gguf::Quantization::Q4_0,
    )
    .unwrap();
    let fault = format!("llm-substitute={}", substitute.display());
    let (_child, urls) = up_network(
        data.path(),
        &models,
        3,
        &["--fault", &fault, "--audit-rate", "1"],
    );
    let vouch = |url: &str, args: &[&str]| vouch_at(data.path(), work.path(), url, args);
    let net: serde_json::Value =
        serde_json::from_str(&ok(&vouch(&urls[2], &["network", "--json"]))).unwrap();
    let faulty = net["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["local"] == true)
        .unwrap()["operator"]
        .as_str()
        .unwrap()
        .to_string();
    for url in &urls {
        eventually("the LLM on every node", || {
            let out = vouch(url, &["model", "ls"]);
            String::from_utf8_lossy(&out.stdout)
                .contains("smollm2-135m")
                .then_some(())
        });
    }
    // An answer gossiped before the gossip mesh formed reaches no auditor:
    // ask again every few seconds until one is disputed.
    let mut asked = 0;
    eventually("an LLM dispute against the substituting node", || {
        if asked % 30 == 0 {
            let out = vouch(
                &urls[2],
                &[
                    "chat",
                    "smollm2-135m",
                    "Write a short story about a lighthouse keeper.",
                    "--max-tokens",
                    "128",
                ],
            );
            let _ = ok(&out);
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("verified: signed by"),
                "{out:?}"
            );
        }
        asked += 1;
        let out = vouch(&urls[0], &["evidence", "--json"]);
        let records: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).unwrap_or_default();
        records
            .iter()
            .find(|r| r["kind"] == "llm_dispute" && r["dispute"]["faulty"] == "executor")
            .map(|r| {
                r["dispute"]["auditor"]["reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
    });
    // Every node's ledger slashes the substituting operator, and only it.
    for url in &urls {
        eventually("the slash on every ledger", || {
            let out = vouch(url, &["ledger", "operators"]);
            let ops: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).ok()?;
            let slashed: Vec<&str> = ops
                .iter()
                .filter(|o| o["slashed"].as_u64().unwrap_or(0) > 0)
                .map(|o| o["operator"].as_str().unwrap_or_default())
                .collect();
            (slashed == [faulty.as_str()]).then_some(())
        });
    }
}

#[test]
fn two_node_processes_join_and_one_pins_the_others_model() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let work = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(da.path(), 0);
    a.push_iris();
    let bootstrap = a.peer_address();
    // B takes a model by name only from a publisher it admits, and runs
    // ONNX models on one thread (A: over every core); their answers agree.
    let admit = a.operator();
    let b = NodeProcess::start_with(
        db.path(),
        0,
        &[
            "--bootstrap",
            &bootstrap,
            "--audit-rate",
            "0",
            "--admit",
            &admit,
            "--onnx-threads",
            "1",
        ],
    );
    b.wait_for_model("iris");
    let out = ok(&b.vouch(&["model", "pin", "iris", "--timeout", "60"]));
    assert!(
        out.contains("iris@1") && out.contains("served by 2 node(s)"),
        "{out}"
    );
    std::fs::write(work.path().join("in.json"), IRIS_REQUEST).unwrap();
    let infer = |node: &NodeProcess| {
        node.vouch_in(
            work.path(),
            &["infer", "iris", "--input", "in.json", "--receipt", "r.json"],
        )
    };
    let from_b = ok(&infer(&b));
    let from_a = ok(&infer(&a));
    assert_eq!(from_a, from_b, "the replica answers as the original does");
    // A bad bootstrap address is refused with the fix.
    let out = Command::new(BIN)
        .args(["node", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(work.path().join("c"))
        .args(["--bootstrap", "/ip4/127.0.0.1/tcp/1"])
        .output()
        .unwrap();
    fails(&out, "/p2p/<peer id>");
}

/// A `vouch node` on a disk of its own that can fill: a `size`-limited
/// tmpfs in a user and mount namespace (`unshare -rm`), restarted by the
/// namespace's shell whenever it exits, so that it comes back on the same
/// disk.
struct SmallDisk {
    /// The namespace's shell (the node runs under it).
    node: NodeProcess,
    /// Where the tmpfs is mounted, inside the namespace.
    dir: PathBuf,
    /// Each address the node says it listens on, start and restarts.
    heard: std::sync::mpsc::Receiver<Result<String, String>>,
    /// The port the shell starts the node on (0 at first).
    _port: tempfile::NamedTempFile,
}

impl SmallDisk {
    /// None where this machine does not allow unprivileged namespaces. The
    /// node first binds any free port; it comes back on that one after a
    /// restart (the shell reads it from a file).
    fn start(dir: &Path, size: &str, extra: &[&str]) -> Option<SmallDisk> {
        let allowed = Command::new("unshare")
            .args(["-rm", "true"])
            .status()
            .is_ok_and(|s| s.success());
        if !allowed {
            return None;
        }
        let port_file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(port_file.path(), "0").unwrap();
        let script = r#"dir=$0 size=$1 port=$2; shift 2
mount -t tmpfs -o "size=$size" tmpfs "$dir" || exit 1
while :; do "$@" --listen "127.0.0.1:$(cat "$port")" --data-dir "$dir"; sleep 0.2; done"#;
        let mut shell = Command::new("unshare")
            .args(["-rm", "sh", "-c", script])
            .arg(dir)
            .arg(size)
            .arg(port_file.path())
            .args([BIN, "node"])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let heard = listening(&mut shell);
        // Built before waiting, so that a node that never starts is
        // stopped all the same.
        let mut disk = SmallDisk {
            node: NodeProcess {
                child: shell,
                url: String::new(),
                port: 0,
                token: None,
            },
            dir: dir.to_path_buf(),
            heard,
            _port: port_file,
        };
        disk.node.url = next_listen(&disk.heard);
        disk.node.port = disk.node.url.rsplit(':').next().unwrap().parse().unwrap();
        std::fs::write(disk._port.path(), disk.node.port.to_string()).unwrap();
        // The token is on the namespace's disk, out of sight from here.
        let token = disk.inside(r#"cat "$dir/admin-token""#);
        assert!(token.status.success(), "reading the admin token: {token:?}");
        disk.node.token = Some(String::from_utf8(token.stdout).unwrap().trim().to_string());
        Some(disk)
    }

    /// Runs `cmd` inside the node's namespace, where its disk is mounted
    /// (at `$dir`).
    fn inside(&self, cmd: &str) -> Output {
        let node = self.node_pid().expect("the node runs");
        Command::new("nsenter")
            .args(["-t", &node.to_string(), "-U", "-m"])
            .args(["--preserve-credentials", "sh", "-c", cmd])
            .env("dir", &self.dir)
            .output()
            .unwrap()
    }

    /// The node's process, under the namespace's shell.
    fn node_pid(&self) -> Option<u32> {
        let out = Command::new("pgrep")
            .args(["-P", &self.node.child.id().to_string(), "vouch"])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// Stops the node gracefully (SIGTERM) and waits for it to be back.
    fn restart(&self) {
        let old = self.node_pid().expect("the node runs");
        Command::new("kill")
            .args(["-TERM", &old.to_string()])
            .status()
            .unwrap();
        let url = next_listen(&self.heard);
        assert_eq!(url, self.node.url, "the node came back on another address");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // The shell first, so that it does not start the node again.
        let node = self.node_pid();
        let _ = self.node.child.kill();
        if let Some(pid) = node {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
    }
}

#[test]
fn a_disk_that_fills_is_refused_clearly_and_loses_no_receipt() {
    let da = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let a = NodeProcess::start(da.path(), 0);
    a.push_iris();
    ok(&a.push("minilm-int8.onnx", "minilm", &[]));
    let bootstrap = a.peer_address();
    let admit = a.operator();
    // B's disk holds iris and its registry, not minilm (23 MB).
    let db = tempfile::tempdir().unwrap();
    let Some(b) = SmallDisk::start(
        db.path(),
        "12m",
        &[
            "--bootstrap",
            &bootstrap,
            "--audit-rate",
            "0",
            "--admit",
            &admit,
        ],
    ) else {
        // Not a silent pass: a machine that cannot run it fails it.
        panic!(
            "this test needs unprivileged user and mount namespaces (`unshare -rm`), which this machine refuses"
        );
    };
    b.node.wait_for_model("iris");
    ok(&b.node.vouch(&["model", "pin", "iris", "--timeout", "60"]));
    std::fs::write(work.path().join("in.json"), IRIS_REQUEST).unwrap();
    let infer = || {
        b.node
            .vouch_in(work.path(), &["infer", "iris", "--input", "in.json"])
    };
    let receipt_id = |out: &Output| {
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let id = err
            .split_whitespace()
            .find(|w| w.starts_with("rcpt:"))
            .unwrap_or_else(|| panic!("no receipt id in {err}"));
        id.to_string()
    };
    let mut issued: Vec<String> = (0..5).map(|_| receipt_id(&infer())).collect();

    // Replicating minilm fills the disk: the fetch fails and says why.
    let out = b.node.vouch(&["model", "pin", "minilm", "--timeout", "60"]);
    fails(&out, "No space left on device");
    fails(&out, "free disk space and retry");
    fails(&out, "so the next try resumes");
    // With the disk full, every answer either carries a receipt the node
    // keeps or is refused as disk_full (507), and within seconds (the
    // first flush that fails) requests are refused.
    let mut refused = 0;
    let deadline = Instant::now() + Duration::from_secs(20);
    while refused < 3 {
        assert!(
            Instant::now() < deadline,
            "the node never refused with a full disk"
        );
        let out = infer();
        if out.status.success() {
            issued.push(receipt_id(&out));
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(
                err.contains("disk_full, HTTP 507") && err.contains("free disk space"),
                "{err}"
            );
            refused += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    // Other requests are still answered; an upload is refused the same way.
    let out = ok(&b.node.vouch(&["model", "ls"]));
    assert!(out.contains("iris"), "{out}");
    let push_silero = || b.node.push("silero-vad.onnx", "silero", &[]);
    fails(
        &push_silero(),
        "free disk space and retry (disk_full, HTTP 507)",
    );

    // The operator frees space (the partial replica): the node answers
    // again without a restart.
    let freed = b.inside(r#"rm "$dir"/store/partial/* && df -k "$dir""#);
    assert!(freed.status.success(), "{freed:?}");
    let df = String::from_utf8_lossy(&freed.stdout);
    assert!(df.contains("tmpfs"), "{df}");
    let answered = eventually("answers after the disk was freed", || {
        let out = infer();
        out.status.success().then(|| receipt_id(&out))
    });
    issued.push(answered);
    ok(&push_silero());

    // Every receipt handed out survives a restart.
    b.restart();
    for id in &issued {
        ok(&b.node.vouch(&["receipts", "show", id]));
    }
}

/// `vouch up` runs a ledger chain of its own, its operator funded, staked
/// and validating: blocks are made, a transfer signed with the operator's
/// key is applied and shows in both accounts, a transaction that is not
/// one is refused with the reason, `vouch verify --ledger` tells a
/// registered operator's receipt from a stranger's, and after a restart
/// (with other flags) the chain goes on from where it was.
#[test]
fn vouch_up_runs_a_ledger_chain_that_applies_transfers_and_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let no_models = tempfile::tempdir().unwrap();
    let models = no_models.path().to_str().unwrap();
    let node = NodeProcess::start_command("up", data.path(), 0, &["--models", models]);
    let status = |node: &NodeProcess| -> serde_json::Value {
        serde_json::from_str(&ok(&node.vouch(&["ledger", "status"]))).unwrap()
    };
    let first = status(&node);
    let operator = node.operator();
    assert_eq!(
        first["validators"][0]["operator"],
        operator.as_str(),
        "{first}"
    );
    assert!(
        first["chain_id"]
            .as_str()
            .unwrap()
            .starts_with("vouch-local-"),
        "{first}"
    );
    let payee = "ed25519:ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
    let out = ok(&node.vouch(&[
        "transfer",
        payee,
        "250",
        "--key",
        data.path().join("operator.key").to_str().unwrap(),
    ]));
    let done: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(done["balance"], 1_000_000 - 250, "{done}");
    // The block that applied it lists it, signed by the operator.
    let at = done["height"].as_u64().unwrap().to_string();
    let block: serde_json::Value =
        serde_json::from_str(&ok(&node.vouch(&["ledger", "block", &at]))).unwrap();
    let listed = block["txs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == done["id"])
        .unwrap_or_else(|| panic!("{block}"));
    assert_eq!(
        (&listed["kind"], &listed["signer"], &listed["ok"]),
        (&"transfer".into(), &operator.as_str().into(), &true.into()),
        "{block}"
    );
    let account = |node: &NodeProcess, key: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&node.vouch(&["ledger", "account", key]))).unwrap()
    };
    assert_eq!(account(&node, payee)["balance"], 250);
    let height = status(&node)["height"].as_u64().unwrap();
    assert!(height >= 1, "no block");

    // Not a transaction: refused, saying why; the chain serves on.
    let url = format!("{}/v1/ledger/tx", node.url);
    let out = Command::new("curl")
        .args(["-s", "-X", "POST", "-H", "content-type: application/json"])
        .args(["-d", r#"{"tx": "00ff"}"#, &url])
        .output()
        .unwrap();
    let refused = String::from_utf8_lossy(&out.stdout);
    assert!(refused.contains("invalid_input"), "{refused}");
    let ops: serde_json::Value =
        serde_json::from_str(&ok(&node.vouch(&["ledger", "operators"]))).unwrap();
    assert_eq!(ops[0]["stake"], 100_000, "{ops}");
    assert_eq!(ops[0]["keys"][0]["key"], operator.as_str(), "{ops}");

    // An action the ledger rejects is reported as rejected, with its
    // reason, though its block applied it; the balance is untouched.
    let key = data.path().join("operator.key");
    let key = key.to_str().unwrap();
    let out = node.vouch(&["transfer", payee, "999999999", "--key", key]);
    fails(&out, "rejected in block");
    assert_eq!(account(&node, &operator)["balance"], 1_000_000 - 250);
    // Deposit into escrow, stake, unstake.
    ok(&node.vouch(&["deposit", "100", "--key", key]));
    assert_eq!(account(&node, &operator)["escrow"], 100);
    ok(&node.vouch(&["stake", "50", "--key", key]));
    ok(&node.vouch(&["unstake", "20", "--key", key]));
    let ops: serde_json::Value =
        serde_json::from_str(&ok(&node.vouch(&["ledger", "operators"]))).unwrap();
    assert_eq!(ops[0]["stake"], 100_030, "{ops}");
    assert_eq!(ops[0]["unbonding"][0]["amount"], 20, "{ops}");
    assert_eq!(
        account(&node, &operator)["balance"],
        1_000_000 - 250 - 100 - 50,
        "the unbonded 20 returns only after the unbonding delay"
    );

    // `vouch verify --ledger`: a receipt this operator signed names a
    // registered key; one from a node that is no operator there does not.
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in.json");
    std::fs::write(&input, IRIS_REQUEST).unwrap();
    let receipt = |n: &NodeProcess, name: &str| {
        let path = work.path().join(name);
        n.push_iris();
        ok(&n.vouch(&[
            "infer",
            "iris",
            "--input",
            input.to_str().unwrap(),
            "--receipt",
            path.to_str().unwrap(),
        ]));
        path
    };
    let ours = receipt(&node, "ours.json");
    let out = node.vouch(&["verify", ours.to_str().unwrap(), "--ledger", &node.url]);
    assert!(ok(&out).contains("registered operator"), "{out:?}");
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = NodeProcess::start(stranger_dir.path(), 0);
    let theirs = receipt(&stranger, "theirs.json");
    fails(
        &node.vouch(&["verify", theirs.to_str().unwrap(), "--ledger", &node.url]),
        "is not a key of any operator registered on chain",
    );
    drop(stranger);

    // Restarted, with another price even: the same chain goes on.
    drop(node);
    let node =
        NodeProcess::start_command("up", data.path(), 0, &["--models", models, "--price", "3"]);
    let again = status(&node);
    assert_eq!(again["chain_id"], first["chain_id"]);
    assert!(again["height"].as_u64().unwrap() >= height, "{again}");
    assert_eq!(account(&node, payee)["balance"], 250);
}

/// `vouch up --price`: a request without a voucher is refused with 402 and
/// what to do; a client funded by a transfer deposits into escrow and pays
/// with `vouch infer --pay`; more than its escrow is refused; the node
/// redeems what it took, and the operator's balance grows by exactly that
/// less the fee split's other shares, across a restart too.
#[test]
fn vouch_up_with_a_price_is_paid_by_voucher_and_redeems_exactly_what_it_took() {
    let data = tempfile::tempdir().unwrap();
    let no_models = tempfile::tempdir().unwrap();
    let models = no_models.path().to_str().unwrap();
    let flags = ["--models", models, "--price", "100", "--redeem-secs", "1"];
    let node = NodeProcess::start_command("up", data.path(), 0, &flags);
    node.push_iris();
    let work = tempfile::tempdir().unwrap();
    let input = work.path().join("in.json");
    std::fs::write(&input, IRIS_REQUEST).unwrap();
    let input = input.to_str().unwrap();
    let operator = node.operator();
    let operator_key = data.path().join("operator.key");
    let operator_key = operator_key.to_str().unwrap();
    let client_key = work.path().join("client.key");
    std::fs::write(&client_key, hex::encode([42u8; 32])).unwrap();
    let client = vouch_types::SecretKey::from_bytes(&[42u8; 32])
        .public()
        .to_string();
    let client_key = client_key.to_str().unwrap();
    let account = |node: &NodeProcess, key: &str| -> serde_json::Value {
        serde_json::from_str(&ok(&node.vouch(&["ledger", "account", key]))).unwrap()
    };

    fails(
        &node.vouch(&["infer", "iris", "--input", input]),
        "payment_required",
    );
    ok(&node.vouch(&["transfer", &client, "1000", "--key", operator_key]));
    ok(&node.vouch(&["deposit", "250", "--key", client_key]));
    let start = account(&node, &operator)["balance"].as_u64().unwrap();
    let receipt = work.path().join("receipt.json");
    for _ in 0..2 {
        ok(&node.vouch(&[
            "infer",
            "iris",
            "--input",
            input,
            "--pay",
            client_key,
            "--receipt",
            receipt.to_str().unwrap(),
        ]));
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&receipt).unwrap()).unwrap();
        assert_eq!(r["price"], 100, "{r}");
    }
    fails(
        &node.vouch(&["infer", "iris", "--input", input, "--pay", client_key]),
        "insufficient_funds",
    );
    fails(
        &node.vouch(&[
            "infer",
            "iris",
            "--input",
            input,
            "--pay",
            client_key,
            "--max-price",
            "99",
        ]),
        "over the limit",
    );
    let balance_reaches = |node: &NodeProcess, want: u64| {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let got = account(node, &operator)["balance"].as_u64().unwrap();
            if got == want {
                return;
            }
            assert!(
                Instant::now() < deadline && got < want,
                "the operator's balance is {got}, want {want}"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    // The 200 settled, less the auditors' pool's and the treasury's 5% each.
    balance_reaches(&node, start + 180);
    assert_eq!(account(&node, &client)["escrow"], 50);
    let ops: serde_json::Value =
        serde_json::from_str(&ok(&node.vouch(&["ledger", "operators"]))).unwrap();
    assert_eq!(ops[0]["price"], 100, "{ops}");

    let economics: serde_json::Value =
        serde_json::from_str(&ok(&node.vouch(&["ledger", "economics"]))).unwrap();
    assert_eq!(
        (
            &economics["fees"],
            &economics["treasury"],
            &economics["auditors_pool"]
        ),
        (&200.into(), &10.into(), &10.into()),
        "{economics}"
    );
    // Restarted: the client pays on from what was settled.
    drop(node);
    let node = NodeProcess::start_command("up", data.path(), 0, &flags);
    ok(&node.vouch(&["deposit", "100", "--key", client_key]));
    ok(&node.vouch(&["infer", "iris", "--input", input, "--pay", client_key]));
    balance_reaches(&node, start + 180 + 90);
    assert_eq!(account(&node, &client)["escrow"], 50);
}

/// Four validators as four `vouch node` processes with one genesis file:
/// they make the same blocks and apply a transfer; with one killed the
/// others go on; with two killed they halt; the two restarted, all four go
/// on and agree on the state; one whose chain is wiped catches up from its
/// peers.
#[test]
fn four_validator_processes_go_on_with_one_down_halt_with_two_and_resume() {
    let dirs: Vec<tempfile::TempDir> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let keys: Vec<String> = (0..4u8)
        .map(|i| {
            let seed = [i + 11; 32];
            std::fs::write(
                dirs[i as usize].path().join("operator.key"),
                hex::encode(seed),
            )
            .unwrap();
            vouch_types::SecretKey::from_bytes(&seed)
                .public()
                .to_string()
        })
        .collect();
    let work = tempfile::tempdir().unwrap();
    let mut args = vec!["genesis", "--chain-id", "test-four"];
    args.extend(keys.iter().map(String::as_str));
    let genesis = ok(&Command::new(BIN).args(&args).output().unwrap());
    let genesis_file = work.path().join("genesis.json");
    std::fs::write(&genesis_file, genesis).unwrap();
    // The validators' transport ports are named in each other's flags, so
    // they are chosen here, below the ephemeral range (no node binding port
    // 0 meanwhile can take one).
    let ports = vouch_node::ledger::local_ports(4).unwrap();
    let start = |i: usize| {
        let listen = format!("127.0.0.1:{}", ports[i]);
        let boot = format!("{}@127.0.0.1:{}", keys[0], ports[0]);
        let mut extra = vec![
            "--genesis",
            genesis_file.to_str().unwrap(),
            "--chain-listen",
            &listen,
            "--chain-block-secs",
            "1",
        ];
        if i > 0 {
            extra.extend(["--chain-bootstrap", boot.as_str()]);
        }
        NodeProcess::start_with(dirs[i].path(), 0, &extra)
    };
    let mut nodes: Vec<Option<NodeProcess>> = (0..4).map(|i| Some(start(i))).collect();
    let status = |n: &NodeProcess| -> serde_json::Value {
        serde_json::from_str(&ok(&n.vouch(&["ledger", "status"]))).unwrap()
    };
    let height = |n: &NodeProcess| status(n)["height"].as_u64().unwrap();
    let live = |nodes: &[Option<NodeProcess>]| -> Vec<u64> {
        nodes.iter().flatten().map(height).collect()
    };
    let wait = |nodes: &[Option<NodeProcess>], what: &str, f: &dyn Fn(&[u64]) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let h = live(nodes);
            if f(&h) {
                return h;
            }
            assert!(Instant::now() < deadline, "{what}: heights {h:?}");
            std::thread::sleep(Duration::from_millis(250));
        }
    };
    wait(&nodes, "blocks on all four", &|h| h.iter().all(|&x| x >= 2));
    let first = status(nodes[0].as_ref().unwrap());
    assert_eq!(first["validators"].as_array().unwrap().len(), 4, "{first}");

    // A transfer given to one validator is applied everywhere.
    let payee = "ed25519:ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c";
    let key1 = dirs[1].path().join("operator.key");
    ok(&nodes[1].as_ref().unwrap().vouch(&[
        "transfer",
        payee,
        "70",
        "--key",
        key1.to_str().unwrap(),
    ]));
    let balance = |n: &NodeProcess| -> serde_json::Value {
        serde_json::from_str::<serde_json::Value>(&ok(&n.vouch(&["ledger", "account", payee])))
            .unwrap()["balance"]
            .clone()
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    while nodes.iter().flatten().any(|n| balance(n) != 70) {
        assert!(
            Instant::now() < deadline,
            "the transfer did not reach every validator"
        );
        std::thread::sleep(Duration::from_millis(250));
    }

    // One down: the other three go on.
    nodes[3] = None;
    let at = live(&nodes).into_iter().max().unwrap();
    wait(&nodes, "blocks with three validators", &|h| {
        h.iter().all(|&x| x >= at + 3)
    });

    // Two down: no block.
    nodes[2] = None;
    std::thread::sleep(Duration::from_secs(3));
    let stalled = live(&nodes);
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        live(&nodes),
        stalled,
        "blocks were made with two of four validators down"
    );

    // Both back: all four go on, from the same chain.
    nodes[2] = Some(start(2));
    nodes[3] = Some(start(3));
    let top = stalled.into_iter().max().unwrap();
    wait(&nodes, "blocks after two validators returned", &|h| {
        h.iter().all(|&x| x >= top + 3)
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let states: Vec<serde_json::Value> = nodes.iter().flatten().map(status).collect();
        if states.iter().all(|s| s["height"] == states[0]["height"]) {
            for s in &states {
                assert_eq!(s["state_root"], states[0]["state_root"], "{states:?}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the validators never stood at one height"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    for n in nodes.iter().flatten() {
        assert_eq!(balance(n), 70);
    }

    // A validator whose chain is wiped fetches it from its peers.
    nodes[3] = None;
    std::fs::remove_file(dirs[3].path().join("chain.redb")).unwrap();
    std::fs::remove_dir_all(dirs[3].path().join("chain")).unwrap();
    let top = live(&nodes).into_iter().max().unwrap();
    nodes[3] = Some(start(3));
    let wiped = nodes[3].as_ref().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    while height(wiped) < top {
        assert!(
            Instant::now() < deadline,
            "the wiped validator did not catch up"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    assert_eq!(balance(wiped), 70);
}

/// A data directory holding a chain of the node's own made from another
/// genesis (as an older vouch's `vouch up` made it): `vouch node
/// --genesis` refuses it, saying so; `vouch up` sets it aside and starts
/// its chain anew.
#[test]
fn a_chain_from_another_genesis_is_refused_by_vouch_node_and_set_aside_by_vouch_up() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let no_models = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("operator.key"), hex::encode([77u8; 32])).unwrap();
    let key = vouch_types::SecretKey::from_bytes(&[77u8; 32])
        .public()
        .to_string();
    let genesis = |id: &str| {
        let file = work.path().join(format!("{id}.json"));
        let out = ok(&Command::new(BIN)
            .args(["genesis", "--chain-id", id, &key])
            .output()
            .unwrap());
        std::fs::write(&file, out).unwrap();
        file.to_str().unwrap().to_string()
    };
    let older = genesis("older");
    let node = NodeProcess::start_with(
        data.path(),
        0,
        &[
            "--genesis",
            &older,
            "--chain-listen",
            "127.0.0.1:0",
            "--chain-block-secs",
            "1",
        ],
    );
    eventually("a block on the older chain", || {
        let s: serde_json::Value =
            serde_json::from_str(&ok(&node.vouch(&["ledger", "status"]))).ok()?;
        (s["height"].as_u64()? >= 1).then_some(())
    });
    drop(node);

    let newer = genesis("newer");
    let mut refused = Command::new(BIN)
        .arg("--data-dir")
        .arg(data.path())
        .args(["node", "--listen", "127.0.0.1:0", "--genesis", &newer])
        .args(["--chain-listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = eventually("vouch node to refuse the chain", || {
        refused.try_wait().unwrap()
    });
    let mut err = String::new();
    refused
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(
        !status.success() && err.contains("starts from another genesis"),
        "{err}"
    );

    let up = NodeProcess::start_command(
        "up",
        data.path(),
        0,
        &["--models", no_models.path().to_str().unwrap()],
    );
    let s: serde_json::Value = serde_json::from_str(&ok(&up.vouch(&["ledger", "status"]))).unwrap();
    assert!(
        s["chain_id"].as_str().unwrap().starts_with("vouch-local-"),
        "{s}"
    );
    let aside: Vec<_> = std::fs::read_dir(data.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("chain-old-"))
        .collect();
    assert_eq!(aside.len(), 1, "the older chain was not set aside");
    assert!(aside[0].path().join("chain.redb").exists());
}

/// Governance through the CLI on `vouch up`'s chain: `vouch propose` prints
/// the proposal, a bad one is refused saying why, `vouch vote` weighs the
/// operator's stake, and after the vote and the timelock the new audit
/// rate is in force on the ledger and applied by the node, with no
/// restart.
#[test]
fn a_parameter_voted_on_the_ledger_takes_effect_on_the_running_node() {
    let data = tempfile::tempdir().unwrap();
    let no_models = tempfile::tempdir().unwrap();
    let node = NodeProcess::start_command(
        "up",
        data.path(),
        0,
        &[
            "--models",
            no_models.path().to_str().unwrap(),
            "--chain-block-secs",
            "1",
        ],
    );
    let key = data.path().join("operator.key");
    let key = key.to_str().unwrap();
    let params = || -> serde_json::Value {
        serde_json::from_str(&ok(&node.vouch(&["ledger", "params"]))).unwrap()
    };
    let before = params();
    assert_eq!(before["audit_rate_ppm"], 50_000, "{before}");
    assert_eq!(before["voting_period"], 6, "{before}");
    fails(
        &node.vouch(&["propose", "--set", "slash_bp=20000", "--key", key]),
        "slash_bp = 20000 is out of bounds",
    );
    fails(
        &node.vouch(&["propose", "--set", "admin=1"]),
        "no parameter `admin`",
    );
    let proposal: serde_json::Value = serde_json::from_str(
        ok(&node.vouch(&["propose", "--set", "audit_rate_ppm=250000", "--key", key])).trim(),
    )
    .unwrap();
    assert_eq!(proposal["status"], "voting", "{proposal}");
    let id = proposal["id"].as_u64().unwrap().to_string();
    ok(&node.vouch(&["vote", &id, "yes", "--key", key]));
    let health = |node: &NodeProcess| -> serde_json::Value {
        let out = Command::new("curl")
            .args(["-s", &format!("{}/healthz", node.url)])
            .output()
            .unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    };
    eventually("the change to take effect on the node", || {
        (params()["audit_rate_ppm"] == 250_000 && health(&node)["audit_rate"] == 0.25).then_some(())
    });
    let listed: serde_json::Value =
        serde_json::from_str(&ok(&node.vouch(&["ledger", "proposals"]))).unwrap();
    assert_eq!(listed[0]["status"], "activated", "{listed}");
    assert_eq!(listed[0]["tally"]["yes"], 100_000, "{listed}");
    // A vote once the count is done is refused, with the reason.
    fails(
        &node.vouch(&["vote", &id, "no", "--key", key]),
        "vote ended",
    );

    // The operator proposes and votes through its node from elsewhere,
    // with the admin token and no key file: the node signs.
    let elsewhere = tempfile::tempdir().unwrap();
    let token = std::fs::read_to_string(data.path().join("admin-token")).unwrap();
    let remote = |token: Option<&str>, args: &[&str]| {
        let mut c = Command::new(BIN);
        c.arg("--data-dir")
            .arg(elsewhere.path())
            .args(args)
            .env("VOUCH_NODE", &node.url)
            .env_remove("VOUCH_TOKEN")
            .current_dir(elsewhere.path());
        if let Some(t) = token {
            c.env("VOUCH_TOKEN", t.trim());
        }
        c.output().unwrap()
    };
    fails(
        &remote(
            None,
            &["propose", "--set", "audit_rate_ppm=300000", "--by-node"],
        ),
        "this is an operator action",
    );
    let proposal: serde_json::Value = serde_json::from_str(
        ok(&remote(
            Some(&token),
            &["propose", "--set", "audit_rate_ppm=300000", "--by-node"],
        ))
        .trim(),
    )
    .unwrap();
    assert_eq!(proposal["proposer"], health(&node)["node"], "{proposal}");
    let id = proposal["id"].as_u64().unwrap().to_string();
    ok(&remote(Some(&token), &["vote", &id, "yes", "--by-node"]));
    eventually("the change voted through the node", || {
        (params()["audit_rate_ppm"] == 300_000).then_some(())
    });
    // The node signs governance only: a deposit of its funds is refused.
    let deposit: String = vouch_node::ledger::TxBody::Deposit { amount: 1 }
        .encode()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let out = Command::new("curl")
        .args([
            "-s",
            "-H",
            &format!("Authorization: Bearer {}", token.trim()),
            "-H",
            "content-type: application/json",
            "-d",
            &format!(r#"{{"body": "{deposit}"}}"#),
            &format!("{}/v1/ledger/operator-tx", node.url),
        ])
        .output()
        .unwrap();
    let answer = String::from_utf8_lossy(&out.stdout);
    assert!(
        answer.contains("signs only governance transactions"),
        "{answer}"
    );
}

/// The first held-out MNIST image (`scripts/mnist-models`) as a request.
fn mnist_request(work: &Path) -> PathBuf {
    let bytes = std::fs::read(models_dir().join("mnist-test.u8"))
        .expect("mnist-test.u8 missing: run scripts/mnist-models");
    let pixels: Vec<f32> = bytes[1..785].iter().map(|&p| p as f32 / 255.0).collect();
    let request = serde_json::json!({"inputs": {"input": {"dtype": "float32", "shape": [1, 784], "data": pixels}}});
    let path = work.join("in.json");
    std::fs::write(&path, request.to_string()).unwrap();
    path
}

/// `vouch up` imports the provable sample it finds among its models (the
/// MNIST MLP that `scripts/mnist-models` trains, which `scripts/up` runs)
/// and answers `verify: proof` with it out of the box.
#[test]
fn vouch_up_serves_the_provable_sample() {
    let (data, work, models) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    std::fs::copy(
        models_dir().join("mnist-mlp.onnx"),
        models.path().join("mnist-mlp.onnx"),
    )
    .expect("mnist-mlp.onnx missing: run scripts/mnist-models");
    let node = NodeProcess::start_command(
        "up",
        data.path(),
        0,
        &["--models", models.path().to_str().unwrap()],
    );
    let input = mnist_request(work.path());
    let out = node.vouch_in(
        work.path(),
        &[
            "infer",
            "mnist",
            "--input",
            input.to_str().unwrap(),
            "--verify",
            "proof",
        ],
    );
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        err.contains("proof verified in") && err.contains("model mnist's circuit"),
        "{err}"
    );
}

/// `vouch model push --provable` compiles the MNIST MLP to a circuit (and
/// refuses iris, naming the operator a proof does not cover); `vouch infer
/// --verify proof` gets an answer with a proof and checks it; once the node
/// is gone, `vouch verify --proof` checks it again offline, with no model
/// file, and refuses a changed output, a changed proof and the circuit of
/// another model; a failing proof the node signed becomes evidence for
/// the ledger (`--dispute`), checked offline by `vouch verify-dispute`.
#[test]
fn a_proven_answer_is_checked_offline_with_no_node_and_no_model_file() {
    let data = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let node = NodeProcess::start(data.path(), 0);
    let mlp = models_dir().join("mnist-mlp.onnx");
    let mlp = mlp.to_str().unwrap();
    ok(&node.vouch(&[
        "model",
        "push",
        mlp,
        "--name",
        "mnist",
        "--provable",
        "--input-range",
        "1",
    ]));
    let iris = models_dir().join("iris.onnx");
    fails(
        &node.vouch(&[
            "model",
            "push",
            iris.to_str().unwrap(),
            "--name",
            "iris",
            "--provable",
        ]),
        "operators a proof does not cover: LinearClassifier",
    );
    // The same model without --provable: a proof is refused with what to do.
    ok(&node.vouch(&["model", "push", mlp, "--name", "plain"]));
    let input = mnist_request(work.path());
    let input = input.to_str().unwrap();
    fails(
        &node.vouch_in(
            work.path(),
            &["infer", "plain", "--input", input, "--verify", "proof"],
        ),
        "pushed without --provable",
    );
    // The same model, provable for a wider range: another circuit.
    ok(&node.vouch(&["model", "push", mlp, "--name", "wide", "--provable"]));
    let infer = |name: &str, tag: &str| {
        let out = node.vouch_in(
            work.path(),
            &[
                "infer",
                name,
                "--input",
                input,
                "--verify",
                "proof",
                "--out",
                &format!("out{tag}.json"),
                "--receipt",
                &format!("receipt{tag}.json"),
                "--proof",
                &format!("proof{tag}.json"),
                "--circuit",
                &format!("circuit{tag}.json"),
            ],
        );
        ok(&out);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            err.contains("proof verified in") && err.contains(&format!("model {name}")),
            "{err}"
        );
    };
    infer("mnist", "");
    infer("wide", "-wide");
    node.kill();

    // Offline: the node is gone and nothing here holds the model.
    let run = |args: &[&str]| {
        Command::new(BIN)
            .args(args)
            .env("VOUCH_NODE", "http://127.0.0.1:9")
            .env("VOUCH_KEYS", work.path().join("keys"))
            .current_dir(work.path())
            .output()
            .unwrap()
    };
    let verify =
        |args: &[&str]| run(&[&["verify", "receipt.json", "--input", input][..], args].concat());
    let checked = |how: &str| {
        let out = verify(&[
            "--output",
            "out.json",
            "--proof",
            "proof.json",
            "--circuit",
            "circuit.json",
        ]);
        let stdout = ok(&out);
        assert!(
            stdout.contains("proof)") && stdout.contains("inputs, outputs"),
            "{stdout}"
        );
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            err.contains("checked a proof in") && err.contains(how),
            "{err}"
        );
    };
    // The first check derives the circuit's key and keeps it; the next
    // reads it back; a kept key that does not read is derived again.
    checked("key derived in");
    checked("key read back in");
    let keys: Vec<_> = std::fs::read_dir(work.path().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let mut mangled = std::fs::read(&keys[0]).unwrap();
    mangled.truncate(mangled.len() / 2);
    std::fs::write(&keys[0], mangled).unwrap();
    checked("key derived in");
    checked("key read back in");
    // The circuit of another model (the same file, provable over another
    // range): the manifest names another circuit.
    fails(
        &verify(&[
            "--output",
            "out.json",
            "--proof",
            "proof.json",
            "--circuit",
            "circuit-wide.json",
        ]),
        "the model's manifest names",
    );
    // Another answer's proof for this receipt.
    fails(
        &verify(&[
            "--output",
            "out.json",
            "--proof",
            "proof-wide.json",
            "--circuit",
            "circuit.json",
        ]),
        "the bundle's manifest is model",
    );
    // A changed output.
    let mut out: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("out.json")).unwrap())
            .unwrap();
    let v = out["outputs"]["logits"]["data"][2].as_f64().unwrap();
    out["outputs"]["logits"]["data"][2] = (v + 1.0).into();
    std::fs::write(work.path().join("out-changed.json"), out.to_string()).unwrap();
    fails(
        &verify(&[
            "--output",
            "out-changed.json",
            "--proof",
            "proof.json",
            "--circuit",
            "circuit.json",
        ]),
        "outputs",
    );
    // A changed proof: one of its stated outputs, then one byte of the proof.
    let mut proof: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("proof.json")).unwrap())
            .unwrap();
    let mut changed = proof.clone();
    let n: i128 = changed["proof"]["outputs"][0]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    changed["proof"]["outputs"][0] = (n + 1).to_string().into();
    std::fs::write(work.path().join("proof-changed.json"), changed.to_string()).unwrap();
    fails(
        &verify(&[
            "--output",
            "out.json",
            "--proof",
            "proof-changed.json",
            "--circuit",
            "circuit.json",
        ]),
        "another proof",
    );
    let snark = proof["proof"]["snark"].as_str().unwrap().to_string();
    let mid = snark.len() / 2;
    let flipped = if &snark[mid..mid + 1] == "A" {
        "B"
    } else {
        "A"
    };
    proof["proof"]["snark"] = format!("{}{flipped}{}", &snark[..mid], &snark[mid + 1..]).into();
    std::fs::write(work.path().join("proof-flipped.json"), proof.to_string()).unwrap();
    fails(
        &verify(&[
            "--output",
            "out.json",
            "--proof",
            "proof-flipped.json",
            "--circuit",
            "circuit.json",
        ]),
        "proof",
    );
    fails(
        &verify(&["--proof", "proof.json"]),
        "needs --input, --output and --circuit",
    );
    // A changed proof is no evidence against the node: its receipt
    // commits to another.
    fails(
        &verify(&[
            "--output",
            "out.json",
            "--proof",
            "proof-changed.json",
            "--circuit",
            "circuit.json",
            "--dispute",
            "no-dispute.json",
        ]),
        "no dispute written",
    );
    assert!(!work.path().join("no-dispute.json").exists());
    // The node's own key signs the flipped proof: a proven answer that
    // does not check, which `--dispute` turns into evidence that
    // `vouch verify-dispute` checks offline.
    let key = vouch_node::keyfile::load(&data.path().join("operator.key")).unwrap();
    let lie: vouch_proof::Bundle = serde_json::from_value(proof.clone()).unwrap();
    let mut receipt: vouch_types::Receipt =
        serde_json::from_str(&std::fs::read_to_string(work.path().join("receipt.json")).unwrap())
            .unwrap();
    receipt.body.trace = vouch_proof::bundle::commitment(&lie.proof);
    let receipt = receipt.body.sign(&key);
    std::fs::write(
        work.path().join("receipt-lie.json"),
        serde_json::to_vec(&receipt).unwrap(),
    )
    .unwrap();
    fails(
        &run(&[
            "verify",
            "receipt-lie.json",
            "--input",
            input,
            "--output",
            "out.json",
            "--proof",
            "proof-flipped.json",
            "--circuit",
            "circuit.json",
            "--dispute",
            "dispute.json",
        ]),
        "vouch dispute dispute.json",
    );
    let stdout = ok(&run(&["verify-dispute", "dispute.json"]));
    assert!(
        stdout.contains("the dispute checks") && stdout.contains(&key.public().to_string()),
        "{stdout}"
    );
}
