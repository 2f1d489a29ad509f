//! Test harness: real nodes on loopback port 0 with temporary data
//! directories, and small ONNX models built in code.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use tokio::sync::oneshot;
use tract_onnx::pb;
use vouch_client::Client;
use vouch_node::{Node, NodeConfig};

/// A node serving on loopback until dropped or stopped.
pub struct TestNode {
    pub node: Arc<Node>,
    /// A client that presents the admin token.
    pub client: Client,
    pub url: String,
    /// The node's admin token.
    pub token: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestNode {
    pub async fn start(config: NodeConfig) -> TestNode {
        let token_file = config.data_dir.join(vouch_node::config::ADMIN_TOKEN_FILE);
        let given = config.admin_token.clone();
        let node = Node::open(config).expect("node opens");
        let token = given.unwrap_or_else(|| {
            std::fs::read_to_string(token_file)
                .expect("the node wrote its admin token")
                .trim()
                .to_string()
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(vouch_node::serve(node.clone(), listener, async move {
            let _ = stopped.await;
        }));
        TestNode {
            node,
            client: Client::new(&url).with_token(Some(token.clone())),
            url,
            token,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub async fn in_dir(dir: &Path) -> TestNode {
        TestNode::start(NodeConfig::new(dir.to_path_buf())).await
    }

    /// Graceful shutdown; returns once the server has drained.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

/// Pushes the iris sample to `t` as `iris`, batches of any size.
pub async fn push_iris(t: &TestNode) -> vouch_api::ModelInfo {
    t.client
        .push_file(
            &models_dir().join("iris.onnx"),
            &vouch_client::PushParams {
                name: "iris".into(),
                input_shapes: vec!["float_input=N,4".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

/// The p2p addresses `t` listens on (with its peer id), to bootstrap from.
pub fn addresses(t: &TestNode) -> Vec<vouch_node::p2p::Address> {
    t.node.p2p().unwrap().addresses()
}

/// Has every one of `nodes` admit every other's operator key.
pub fn admit_all(nodes: &[&TestNode]) {
    for a in nodes {
        for b in nodes {
            a.node.admit(b.node.public_key());
        }
    }
}

/// Polls `check` until it holds, for at most 60 s.
pub async fn eventually(what: &str, check: impl FnMut() -> bool) {
    eventually_within(60, what, check).await
}

/// Polls `check` until it holds, for at most `secs` seconds.
pub async fn eventually_within(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Has `t` fetch model `name` (id `id`) from the peers that announce it,
/// once it has heard of one.
pub async fn replicate_from_peers(t: &TestNode, name: &str, id: &vouch_types::Digest) {
    eventually(&format!("{name}'s providers to be known"), || {
        t.node
            .network_models()
            .get(&id.to_string())
            .is_some_and(|m| !m.providers.is_empty())
    })
    .await;
    t.node.replicate(name, None).await.unwrap();
}

pub fn models_dir() -> PathBuf {
    let dir = vouch_node::samples::models_dir();
    assert!(
        dir.join("iris.onnx").exists(),
        "sample models missing in {}: run scripts/fetch-models.sh",
        dir.display()
    );
    dir
}

fn tensor_type(elem_type: i32, dims: &[i64]) -> Option<pb::TypeProto> {
    use pb::tensor_shape_proto::{Dimension, dimension};
    Some(pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type,
            shape: Some(pb::TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&d| Dimension {
                        value: Some(if d < 0 {
                            dimension::Value::DimParam("N".into())
                        } else {
                            dimension::Value::DimValue(d)
                        }),
                        ..Default::default()
                    })
                    .collect(),
            }),
        })),
        ..Default::default()
    })
}

/// A one-node float model `y = op(x, x)` (or `op(x)` for unary ops) with
/// x of shape [N, 3].
pub fn tiny_model(op: &str, binary: bool) -> Vec<u8> {
    let inputs = if binary {
        vec!["x".to_string(), "x".to_string()]
    } else {
        vec!["x".to_string()]
    };
    let model = pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 17,
        }],
        graph: Some(pb::GraphProto {
            name: "tiny".into(),
            node: vec![pb::NodeProto {
                op_type: op.into(),
                name: "the_op".into(),
                input: inputs,
                output: vec!["y".into()],
                ..Default::default()
            }],
            input: vec![pb::ValueInfoProto {
                name: "x".into(),
                r#type: tensor_type(1, &[-1, 3]),
                ..Default::default()
            }],
            output: vec![pb::ValueInfoProto {
                name: "y".into(),
                r#type: tensor_type(1, &[-1, 3]),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    model.encode_to_vec()
}

pub fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Blob files present under a node's data dir.
pub fn blob_files(data: &Path) -> Vec<PathBuf> {
    fn walk(p: &Path, out: &mut Vec<PathBuf>) {
        if let Ok(rd) = std::fs::read_dir(p) {
            for e in rd.flatten() {
                let path = e.path();
                if path.is_dir() {
                    walk(&path, out)
                } else {
                    out.push(path)
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&data.join("store/blobs"), &mut out);
    out.sort();
    out
}

pub fn tmp_files(data: &Path) -> usize {
    std::fs::read_dir(data.join("store/tmp"))
        .map(|r| r.count())
        .unwrap_or(0)
}

/// A raw peer keyed by `[seed; 32]` that joins through `bootstrap` and
/// announces itself as a free provider, with one slot, of version 1 of
/// model `name` (`id`, `format`): the peers that tests make misbehave.
/// Returns the peer, the requests it receives and its key, once
/// `bootstrap` has heard the announcement (the first publish goes nowhere
/// while the gossip link is still forming, and the swarm's own republish
/// comes 10 s later, so it is published again until it lands).
pub async fn free_provider(
    bootstrap: &TestNode,
    seed: u8,
    (name, id, format): (&str, vouch_types::Digest, &str),
    software: &str,
) -> (
    vouch_node::p2p::P2p,
    vouch_node::p2p::Inbound,
    vouch_types::SecretKey,
) {
    let key = vouch_types::SecretKey::from_bytes(&[seed; 32]);
    let (p2p, inbound) =
        vouch_node::p2p::P2p::start(vouch_node::P2pConfig::loopback(addresses(bootstrap)), &key)
            .await
            .unwrap();
    let offer = vouch_node::p2p::ModelOffer {
        name: name.into(),
        version: "1".into(),
        id: id.to_string(),
        format: format.into(),
    };
    let body = vouch_node::p2p::AnnouncementBody {
        operator: hex::encode(key.public().as_bytes()),
        peer: p2p.peer_id().to_string(),
        http: None,
        models: vec![offer],
        price: 0,
        capacity: 1,
        software: software.into(),
        seq: 0,
        timestamp_ms: 0,
    };
    let peer = p2p.peer_id();
    let heard = || {
        bootstrap
            .node
            .network_models()
            .get(&id.to_string())
            .is_some_and(|m| m.providers.contains(&peer))
    };
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while !heard() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{software}'s announcement never reached its bootstrap node"
        );
        p2p.announce(body.clone()).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    (p2p, inbound, key)
}

/// What a peer that holds model `name` (as `t` has it) answers to the
/// requests that prove it holds the model: its manifest, the chunk table
/// of its file and the chunks. Scripted providers use it to pass a
/// gateway's challenge before they misbehave.
pub struct Holding {
    manifest: Vec<u8>,
    table: Vec<u8>,
    bytes: Vec<u8>,
}

impl Holding {
    pub async fn of(t: &TestNode, name: &str) -> Holding {
        let signed = t.node.find_model(name, None).unwrap().signed;
        let mut manifest = signed.signature.to_bytes().to_vec();
        manifest.extend(signed.manifest.encode());
        let bytes = t
            .client
            .blob(&signed.manifest.files[0].digest)
            .await
            .unwrap();
        let table = vouch_types::blob::BlobHasher::table_of(&bytes).encode();
        Holding {
            manifest,
            table,
            bytes,
        }
    }

    /// Answers `req` when it is one of those requests; otherwise hands it
    /// back.
    pub fn serve(
        &self,
        req: vouch_node::p2p::InboundRequest,
    ) -> Option<vouch_node::p2p::InboundRequest> {
        let Some(body) = self.answer(&req.request.head) else {
            return Some(req);
        };
        let _ = req.reply.send(vouch_node::p2p::Frame {
            head: vouch_node::p2p::Response::Ok,
            body,
        });
        None
    }

    /// The answer to `request`, when it is one of those.
    pub fn answer(&self, request: &vouch_node::p2p::Request) -> Option<Vec<u8>> {
        use vouch_node::p2p::Request;
        use vouch_types::blob::CHUNK_SIZE;
        match request {
            Request::Manifest { .. } => Some(self.manifest.clone()),
            Request::ChunkTable { .. } => Some(self.table.clone()),
            Request::Chunks { indexes, .. } => Some(
                indexes
                    .iter()
                    .flat_map(|&i| {
                        let start = (i as usize * CHUNK_SIZE).min(self.bytes.len());
                        let end = (start + CHUNK_SIZE).min(self.bytes.len());
                        self.bytes[start..end].to_vec()
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}

/// Publishes `bytes` on the disputes topic from `p2p` every 200 ms until
/// `done` holds (a gossip mesh takes a heartbeat to form); fails, saying
/// `what` did not happen, once `deadline` passes.
pub async fn publish_dispute_until(
    p2p: &vouch_node::p2p::P2p,
    bytes: &[u8],
    deadline: tokio::time::Instant,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    while !done() {
        p2p.publish(vouch_node::p2p::Topic::Disputes, bytes.to_vec())
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(tokio::time::Instant::now() < deadline, "{what}");
    }
}

/// The magika sample's input the network tests run: 2048 bytes as i32.
pub fn magika_input() -> vouch_types::TensorMap {
    let data: Vec<u8> = (0..2048i32)
        .flat_map(|i| ((i * 13) % 257).to_le_bytes())
        .collect();
    let mut m = vouch_types::TensorMap::new();
    m.insert(
        "bytes",
        vouch_types::Tensor::new(vouch_types::DType::I32, vec![1, 2048], data).unwrap(),
    );
    m
}

/// What a framer builds from public data alone: an honest receipt and its
/// leaf 0 with its Merkle path (`GET /v1/receipts/{id}/trace/0`), and keys
/// of its own for an "auditor" (whose receipt's trace differs at leaf 0
/// only) and a "referee" (whose verdict agrees with the auditor). The
/// dispute checks offline and names the honest executor faulty.
pub fn framed_dispute(
    honest: &vouch_types::Receipt,
    entry: &vouch_api::TraceEntry,
    auditor: &vouch_types::SecretKey,
    referee: &vouch_types::SecretKey,
) -> vouch_types::dispute::Dispute {
    use vouch_types::dispute::{DISPUTE_VERSION, Dispute, Party, Verdict};
    use vouch_types::merkle::{self, Bisection};
    use vouch_types::{Digest, Kind};
    let fake_leaf = Digest::of(Kind::TraceLeaf, b"framed");
    let climb = |leaf: Digest| {
        let mut nodes = vec![merkle::root(&[leaf])];
        for sib in &entry.path {
            let top = *nodes.last().unwrap();
            nodes.push(merkle::root(&[top, *sib]));
        }
        nodes
    };
    let (real, fake) = (climb(entry.leaf), climb(fake_leaf));
    assert_eq!(*real.last().unwrap(), honest.body.trace.root);
    let mut body = honest.body.clone();
    body.trace.root = *fake.last().unwrap();
    body.node = auditor.public();
    let framed = body.sign(auditor);
    let mut bis = Bisection::new(
        honest.body.trace.len,
        honest.body.trace.root,
        framed.body.trace.len,
        framed.body.trace.root,
    )
    .unwrap();
    let depth = entry.path.len();
    for level in 0..depth {
        let below = depth - 1 - level;
        bis.step(
            (real[below], entry.path[below]),
            (fake[below], entry.path[below]),
        )
        .unwrap();
    }
    let (step, executor_descent, auditor_descent) = bis.finish(entry.leaf, fake_leaf).unwrap();
    Dispute {
        version: DISPUTE_VERSION,
        verdict: Verdict::sign(
            referee,
            &honest.body.model,
            &honest.body.request,
            step,
            fake_leaf,
        ),
        executor: honest.clone(),
        auditor: framed,
        step,
        step_name: None,
        executor_descent,
        auditor_descent,
        faulty: Party::Executor,
    }
}

/// A node of `genesis`'s chain in `dir` (its `operator.key` written
/// there), validating on `ports[i]` and dialing the first validator's
/// port, on the p2p network through `bootstrap`, auditing nothing, its
/// configuration otherwise as `configure` leaves it.
pub async fn validator(
    dir: &Path,
    genesis: &vouch_node::ledger::Genesis,
    (ports, i): (&[u16], usize),
    configure: impl FnOnce(&mut NodeConfig),
    bootstrap: Vec<vouch_node::p2p::Address>,
) -> TestNode {
    use std::time::Duration;
    let first = genesis.operators[0].0;
    let mut config = NodeConfig::new(dir.to_path_buf());
    config.audit_rate = 0.0;
    configure(&mut config);
    let t = TestNode::start(config).await;
    t.node
        .start_chain(vouch_node::ledger::ChainSettings {
            genesis: genesis.clone(),
            listen: format!("127.0.0.1:{}", ports[i]).parse().unwrap(),
            bootstrap: if i == 0 {
                vec![]
            } else {
                vec![(first, format!("127.0.0.1:{}", ports[0]).parse().unwrap())]
            },
            leader_timeout: Duration::from_secs(1),
            empty_block_interval: Duration::from_millis(500),
            redeem_interval: Duration::from_secs(3600),
            own: false,
        })
        .unwrap();
    t.node
        .join(
            vouch_node::P2pConfig::loopback(bootstrap),
            Some(t.url.clone()),
        )
        .await
        .unwrap();
    t
}
