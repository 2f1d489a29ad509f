//! Nodes on a real libp2p network on loopback: verified replication with a
//! lying peer, pins that ask peers for replicas, and the network view.

mod common;

use std::time::Duration;

use common::{TestNode, models_dir};
use vouch_node::p2p::{AnnouncementBody, Frame, ModelOffer, P2p, Request, Response};
use vouch_node::{NodeConfig, P2pConfig, samples};
use vouch_types::{Kind, SecretKey, Tensor, TensorMap};

fn p2p_config(bootstrap: Vec<vouch_node::p2p::Address>) -> P2pConfig {
    P2pConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
        bootstrap,
    }
}

/// A node on loopback that has joined the network through `bootstrap`.
async fn joined(
    dir: &std::path::Path,
    bootstrap: Vec<vouch_node::p2p::Address>,
    accept_pins: bool,
) -> TestNode {
    let mut config = NodeConfig::new(dir.to_path_buf());
    config.accept_pins = accept_pins;
    let t = TestNode::start(config).await;
    t.node
        .join(p2p_config(bootstrap), Some(t.url.clone()))
        .await
        .unwrap();
    t
}

fn addresses(t: &TestNode) -> Vec<vouch_node::p2p::Address> {
    t.node.p2p().unwrap().addresses()
}

async fn push_sample(t: &TestNode, name: &str) -> vouch_types::Digest {
    let sample = samples::SAMPLES.iter().find(|s| s.name == name).unwrap();
    samples::push_file(&t.node, &models_dir().join(sample.file), sample.options())
        .await
        .unwrap()
        .id()
}

/// Polls `check` until it holds, for at most 60 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn magika_input() -> TensorMap {
    let data: Vec<u8> = (0..2048i32)
        .flat_map(|i| ((i * 13) % 257).to_le_bytes())
        .collect();
    let mut m = TensorMap::new();
    m.insert(
        "bytes",
        Tensor::new(vouch_types::DType::I32, vec![1, 2048], data).unwrap(),
    );
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_checks_every_chunk_and_drops_a_lying_peer() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    let id = push_sample(&a, "magika").await;

    // A liar announces the same model and answers every chunk request with
    // bytes of the right length that are not the model.
    let liar_key = SecretKey::from_bytes(&[99; 32]);
    let (liar, mut inbound) = P2p::start(p2p_config(addresses(&a)), &liar_key)
        .await
        .unwrap();
    liar.announce(AnnouncementBody {
        operator: hex::encode(liar_key.public().as_bytes()),
        peer: liar.peer_id().to_string(),
        http: None,
        models: vec![ModelOffer {
            name: "magika".into(),
            version: "1".into(),
            id: id.to_string(),
        }],
        price: 0,
        capacity: 1,
        software: "liar".into(),
        seq: 0,
        timestamp_ms: 0,
    })
    .await
    .unwrap();
    let lies = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let told = lies.clone();
    tokio::spawn(async move {
        while let Some(req) = inbound.recv().await {
            let answer = match req.request.head {
                Request::Chunk { .. } => {
                    told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Frame {
                        head: Response::Ok,
                        body: vec![0u8; vouch_types::blob::CHUNK_SIZE],
                    }
                }
                _ => Response::error("not_found", "no"),
            };
            let _ = req.reply.send(answer);
        }
    });

    let c = joined(dirs[1].path(), addresses(&a), false).await;
    let liar_id = liar.peer_id();
    eventually("C to see A and the liar offer magika", || {
        c.node
            .network_models()
            .get(&id.to_string())
            .is_some_and(|m| m.providers.len() == 2 && m.providers.contains(&liar_id))
    })
    .await;

    assert_eq!(c.node.replicate("magika", None).await.unwrap(), id);
    assert!(
        lies.load(std::sync::atomic::Ordering::SeqCst) >= 1,
        "the liar was never asked"
    );
    let record = &c.node.peer_records()[&liar_id];
    assert!(record.bad_data >= 1, "{record:?}");
    let fetch = c.node.fetch_status(&id).unwrap();
    assert_eq!(fetch.state, vouch_node::FetchState::Done);
    assert_eq!(fetch.done_bytes, fetch.total_bytes);

    // C serves the replicated model: same outputs as A, its own receipt.
    let from_a = a
        .node
        .infer("magika", None, magika_input(), None)
        .await
        .unwrap();
    let from_c = c
        .node
        .infer("magika", None, magika_input(), None)
        .await
        .unwrap();
    assert_eq!(
        from_c.outputs.digest(Kind::Output),
        from_a.outputs.digest(Kind::Output)
    );
    assert_eq!(from_c.receipt.body.model, id);
    assert_eq!(from_c.receipt.body.node, c.node.public_key());
    from_c.receipt.verify().unwrap();

    // C now announces it too, and survives a restart with it.
    eventually("A to see C offer magika", || {
        a.node
            .network_models()
            .get(&id.to_string())
            .is_some_and(|m| m.providers.contains(&c.node.p2p().unwrap().peer_id()))
    })
    .await;
    c.stop().await;
    let c = TestNode::in_dir(dirs[1].path()).await;
    assert_eq!(c.node.find_model("magika", None).unwrap().id(), id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_fetches_here_and_asks_peers_for_replicas() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    let id = push_sample(&a, "iris").await;
    let b = joined(dirs[1].path(), addresses(&a), true).await;
    let c = joined(dirs[2].path(), addresses(&a), true).await;
    let d = joined(dirs[3].path(), addresses(&a), false).await;
    eventually("B to hear of iris and of C", || {
        let peers = b.node.p2p().unwrap().peers();
        b.node.network_models().contains_key(&id.to_string())
            && peers
                .get(&c.node.p2p().unwrap().peer_id())
                .is_some_and(|p| p.connected && p.announcement.is_some())
    })
    .await;

    // Over HTTP: B lacks iris, fetches it, and asks one more peer.
    let status = b.client.pin("iris", None, 3).await.unwrap();
    assert_eq!(status.id, id);
    assert_eq!(status.wanted, 3);
    let client = b.client.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        let s = client.pin_status("iris", None).await.unwrap();
        if s.local && s.providers.len() >= 3 {
            break s;
        }
        assert!(tokio::time::Instant::now() < deadline, "pin stalled: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status.fetch.unwrap().state, "done");
    // C accepted; D does not replicate for others.
    assert_eq!(c.node.find_model("iris", None).unwrap().id(), id);
    assert!(d.node.find_model("iris", None).is_err());

    // The network view names every node and what it serves.
    let nodes = b.client.network_nodes().await.unwrap();
    assert!(nodes.nodes[0].local);
    assert_eq!(nodes.nodes.len(), 4, "{nodes:?}");
    let a_peer = a.node.p2p().unwrap().peer_id().to_string();
    let a_view = nodes.nodes.iter().find(|n| n.peer == a_peer).unwrap();
    assert_eq!(a_view.models, vec!["iris@1".to_string()]);
    assert_eq!(a_view.http.as_deref(), Some(a.url.as_str()));
    // iris is one chunk, and only A had it when B started fetching.
    assert_eq!(a_view.record.chunks_ok, 1, "{a_view:?}");
}

#[tokio::test]
async fn without_a_network_pins_say_how_to_join() {
    let dir = tempfile::tempdir().unwrap();
    let t = TestNode::in_dir(dir.path()).await;
    let err = t.client.pin("iris", None, 2).await.unwrap_err().to_string();
    assert!(err.contains("--p2p-listen"), "{err}");
    let err = t.client.network_nodes().await.unwrap_err().to_string();
    assert!(err.contains("--p2p-listen"), "{err}");
    // An unknown model on a joined node: a clear 404.
    let n = joined(dir.path().join("n").as_path(), vec![], false).await;
    let err = n.client.pin("nope", None, 1).await.unwrap_err().to_string();
    assert!(err.contains("no peer announces model `nope`"), "{err}");
}
