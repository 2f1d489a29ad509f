//! Nodes on a real libp2p network on loopback: verified replication with a
//! lying peer, pins that ask peers for replicas, and the network view.

mod common;

use std::time::Duration;

use common::{
    Holding, TestNode, addresses, admit_all, eventually, free_provider, magika_input, models_dir,
    publish_dispute_until,
};
use vouch_api::InferRequest;
use vouch_node::p2p::{Frame, P2p, Peer, Request, Response};
use vouch_node::{NodeConfig, P2pConfig, samples};
use vouch_types::{Kind, SecretKey, Tensor, TensorMap};

/// A node on loopback that has joined the network through `bootstrap`,
/// configured by `configure` (background audits are off unless it turns
/// them on: the tests that want audits ask for them).
async fn networked(
    dir: &std::path::Path,
    bootstrap: Vec<vouch_node::p2p::Address>,
    configure: impl FnOnce(&mut NodeConfig),
) -> TestNode {
    let mut config = NodeConfig::new(dir.to_path_buf());
    config.audit_rate = 0.0;
    configure(&mut config);
    let t = TestNode::start(config).await;
    t.node
        .join(P2pConfig::loopback(bootstrap), Some(t.url.clone()))
        .await
        .unwrap();
    t
}

async fn joined(
    dir: &std::path::Path,
    bootstrap: Vec<vouch_node::p2p::Address>,
    accept_pins: bool,
) -> TestNode {
    networked(dir, bootstrap, |c| c.accept_pins = accept_pins).await
}

/// Fetches model `name` (id `id`) onto each of `nodes` from their peers.
async fn replicate_to(nodes: &[&TestNode], id: vouch_types::Digest, name: &str) {
    for n in nodes {
        wait_for_providers(n, id, 1).await;
        n.node.replicate(name, None).await.unwrap();
    }
}

async fn push_sample(t: &TestNode, name: &str) -> vouch_types::Digest {
    let sample = samples::SAMPLES.iter().find(|s| s.name == name).unwrap();
    samples::push_file(&t.node, &models_dir().join(sample.file), sample.options())
        .await
        .unwrap()
        .id()
}

/// Runs `name` on `inputs` through `t`'s router at the default level.
async fn run(
    t: &TestNode,
    name: &str,
    inputs: TensorMap,
) -> Result<vouch_node::route::Routed, vouch_node::NodeError> {
    t.node
        .route(name, None, inputs, None, Default::default())
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replication_checks_every_chunk_and_drops_a_lying_peer() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    let id = push_sample(&a, "magika").await;

    // A liar announces the same model and answers every chunk request with
    // bytes of the right length that are not the model.
    let (liar, mut inbound, _) = free_provider(&a, 99, ("magika", id, ""), "liar").await;
    let lies = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let told = lies.clone();
    tokio::spawn(async move {
        while let Some(req) = inbound.recv().await {
            let answer = match req.request.head {
                Request::Chunks { indexes, .. } => {
                    told.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Frame {
                        head: Response::Ok,
                        body: vec![0u8; vouch_types::blob::CHUNK_SIZE * indexes.len()],
                    }
                }
                _ => Response::error("not_found", "no"),
            };
            let _ = req.reply.send(answer);
        }
    });

    let c = joined(dirs[1].path(), addresses(&a), false).await;
    // C takes `magika` only from a publisher it admits.
    c.node.admit(a.node.public_key());
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
    admit_all(&[&a, &b, &c, &d]);
    // B meets C directly rather than when discovery gets to it.
    b.node
        .p2p()
        .unwrap()
        .dial(addresses(&c)[0].clone())
        .await
        .unwrap();
    eventually("B to hear of iris and of C", || {
        let peers = b.node.p2p().unwrap().peers();
        b.node.network_models().contains_key(&id.to_string())
            && peers
                .get(&c.node.p2p().unwrap().peer_id())
                .is_some_and(|p| p.connected() && p.announcement.is_some())
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

fn iris_input() -> TensorMap {
    let mut m = TensorMap::new();
    m.insert(
        "float_input",
        Tensor::from_f32(vec![2, 4], &[5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]).unwrap(),
    );
    m
}

/// A raw libp2p peer that announces model `id` at price 0 and, asked to
/// run it, either vanishes (its swarm stops mid-request) or never answers.
async fn bad_provider(
    seed: u8,
    bootstrap: &TestNode,
    id: vouch_types::Digest,
    vanish: bool,
) -> Peer {
    let (p2p, mut inbound, _) =
        free_provider(bootstrap, seed, ("iris", id, ""), "bad provider").await;
    let peer = p2p.peer_id();
    let holding = Holding::of(bootstrap, "iris").await;
    tokio::spawn(async move {
        let mut p2p = Some(p2p);
        let mut held = Vec::new();
        while let Some(req) = inbound.recv().await {
            // It holds the model: it passes the gateway's challenge.
            let Some(req) = holding.serve(req) else {
                continue;
            };
            if matches!(req.request.head, Request::Infer { .. }) {
                if vanish {
                    p2p.take(); // the swarm stops: every connection closes
                } else {
                    held.push(req.reply); // never answered
                }
            }
        }
    });
    peer
}

async fn wait_for_providers(t: &TestNode, id: vouch_types::Digest, n: usize) {
    eventually("providers to be announced", || {
        t.node
            .network_models()
            .get(&id.to_string())
            .is_some_and(|m| m.providers.len() >= n)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routing_fails_over_when_a_provider_vanishes_and_hedges_a_silent_one() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // A is honest but expensive, so the router tries the free bad providers first.
    let a = networked(dirs[0].path(), vec![], |c| c.price = 1_000_000).await;
    let id = push_sample(&a, "iris").await;
    let g = joined(dirs[1].path(), addresses(&a), false).await;
    // G admits them all: the bad providers are admitted operators gone bad.
    g.node.admit(a.node.public_key());
    for seed in [41, 42] {
        g.node.admit(SecretKey::from_bytes(&[seed; 32]).public());
    }

    let vanishing = bad_provider(41, &a, id, true).await;
    wait_for_providers(&g, id, 2).await;
    let routed = g
        .node
        .route(
            "iris",
            None,
            iris_input(),
            Some("n1".into()),
            Default::default(),
        )
        .await
        .unwrap();
    let a_peer = a.node.peer_id();
    assert_eq!(routed.executor, a_peer);
    assert_eq!(routed.route, vec![g.node.peer_id(), a_peer]);
    routed.receipt.verify().unwrap();
    routed.receipt.verify_inputs(&iris_input()).unwrap();
    routed.receipt.verify_outputs(&routed.outputs).unwrap();
    assert_eq!(routed.receipt.body.nonce, "n1");
    assert_eq!(routed.receipt.body.price, 1_000_000);
    let records = g.node.peer_records();
    assert!(records[&vanishing].failures >= 1, "{records:?}");
    assert_eq!(records[&a_peer].served, 1);

    // A silent provider: the router hedges with A instead of waiting.
    let silent = bad_provider(42, &a, id, false).await;
    eventually("G to see the silent provider", || {
        g.node
            .network_models()
            .get(&id.to_string())
            .is_some_and(|m| m.providers.contains(&silent))
    })
    .await;
    let routed = run(&g, "iris", iris_input()).await.unwrap();
    assert_eq!(routed.executor, a_peer);
    assert!(g.node.network_nodes().unwrap().hedged >= 1);

    // Over HTTP: the response names the executor and the route.
    let body = InferRequest {
        inputs: vouch_api::from_map(iris_input()),
        nonce: Some("http".into()),
        verify: None,
    };
    let resp = g.client.infer("iris", None, &body).await.unwrap();
    let executed = resp.executed_by.unwrap();
    assert_eq!(executed.peer, a_peer.to_string());
    assert_eq!(executed.operator, a.node.public_key());
    assert_eq!(executed.admitted, Some(true), "G admits A");
    assert_eq!(resp.route.len(), 2);
    resp.receipt.verify().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quorum_outvotes_a_lying_executor_and_records_the_evidence() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    let id = push_sample(&a, "iris").await;
    let b = joined(dirs[1].path(), addresses(&a), false).await;
    let liar = auditing(
        dirs[2].path(),
        addresses(&a),
        0.0,
        Some(vouch_node::service::Fault::default()),
    )
    .await;
    let g = joined(dirs[3].path(), addresses(&a), false).await;
    for t in [&b, &liar, &g] {
        t.node.admit(a.node.public_key());
    }
    replicate_to(&[&b, &liar], id, "iris").await;
    wait_for_providers(&g, id, 3).await;
    // Until g admits them, the replicas are strangers to it: no quorum.
    let err = quorum_error(&g, "quorum:3").await;
    assert!(
        err.contains("2 more serve it but are not admitted"),
        "{err}"
    );
    admit_all(&[&a, &b, &liar, &g]);

    // Alone, the liar's answer is well-formed and signed: only re-execution catches it.
    let lie = liar
        .node
        .infer("iris", None, iris_input(), None)
        .await
        .unwrap();
    lie.receipt.verify().unwrap();

    let body = InferRequest {
        inputs: vouch_api::from_map(iris_input()),
        nonce: Some("q".into()),
        verify: Some("quorum:3".into()),
    };
    let resp = g.client.infer("iris", None, &body).await.unwrap();
    let quorum = resp.quorum.clone().unwrap();
    assert_eq!((quorum.wanted, quorum.agreed), (3, 2));
    assert_eq!(quorum.dissent.len(), 1);
    assert_eq!(quorum.dissent[0].operator, liar.node.public_key());
    assert_eq!(resp.receipts.len(), 3);
    for r in &resp.receipts {
        r.verify().unwrap();
        r.verify_inputs(&iris_input()).unwrap();
        assert_eq!(r.body.model, id);
    }
    // The answer is the honest one.
    let honest = a
        .node
        .infer("iris", None, iris_input(), None)
        .await
        .unwrap();
    assert_eq!(
        vouch_api::to_map(resp.outputs).digest(Kind::Output),
        honest.outputs.digest(Kind::Output)
    );
    assert_ne!(resp.receipt.body.node, liar.node.public_key());
    // The router remembers, and the evidence names every receipt.
    let records = g.node.peer_records();
    assert_eq!(records[&liar.node.peer_id()].disagreements, 1);
    let evidence = g.node.evidence().unwrap();
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0]["kind"], "quorum_disagreement");
    assert_eq!(evidence[0]["receipts"].as_array().unwrap().len(), 3);

    // A node that serves the model counts itself in the quorum.
    let routed = a
        .node
        .route(
            "iris",
            None,
            iris_input(),
            None,
            "quorum:3".parse().unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(routed.quorum.unwrap().agreed, 2);
    assert_eq!(routed.receipt.body.node, a.node.public_key());
    assert_eq!(routed.route[0], a.node.peer_id());
    // More operators than serve it: a clear error with the fix.
    let err = quorum_error(&g, "quorum:5").await;
    assert!(err.contains("--replicas 5"), "{err}");
}

/// Why `t` refuses iris at `verify` (e.g. `quorum:3`).
async fn quorum_error(t: &TestNode, verify: &str) -> String {
    t.node
        .route("iris", None, iris_input(), None, verify.parse().unwrap())
        .await
        .unwrap_err()
        .to_string()
}

/// A node on the network with the given audit rate and fault.
async fn auditing(
    dir: &std::path::Path,
    bootstrap: Vec<vouch_node::p2p::Address>,
    audit_rate: f64,
    fault: Option<vouch_node::service::Fault>,
) -> TestNode {
    networked(dir, bootstrap, |c| {
        c.audit_rate = audit_rate;
        c.fault = fault;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_bisects_to_the_faulty_step_and_a_referee_names_the_liar() {
    use vouch_engine::{Engine, Fault};
    use vouch_types::dispute::Party;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let fault = Fault {
        // magika's second layer norm: far enough in to bisect, and a
        // change there moves the answer beyond the tolerance (its logits'
        // maximum, step 20, only shifts the softmax).
        step: Some(17),
        llm: None,
    };
    let auditor = auditing(dirs[0].path(), vec![], 0.0, None).await;
    let id = push_sample(&auditor, "magika").await;
    let liar = auditing(dirs[1].path(), addresses(&auditor), 0.0, Some(fault)).await;
    let referee = auditing(dirs[2].path(), addresses(&auditor), 0.0, None).await;
    admit_all(&[&auditor, &liar, &referee]);
    replicate_to(&[&liar, &referee], id, "magika").await;
    wait_for_providers(&auditor, id, 2).await;

    // The liar answers a request itself: a signed receipt, gossiped, with
    // the inputs retained for auditors.
    let answer = liar
        .node
        .route(
            "magika",
            None,
            magika_input(),
            Some("audit me".into()),
            Default::default(),
        )
        .await
        .unwrap();
    let outcome = auditor
        .node
        .audit(answer.receipt.clone(), liar.node.peer_id())
        .await
        .unwrap();
    let vouch_node::audit::AuditOutcome::Disputed(dispute) = outcome else {
        panic!("expected a dispute, got {outcome:?}");
    };
    assert_eq!(dispute.faulty, Party::Executor);
    assert_eq!(dispute.check(Some(&magika_input())), Ok(Party::Executor));
    assert_eq!(dispute.verdict.referee, referee.node.public_key());

    // The step named is exactly where the engine perturbed the liar's run.
    let sample = samples::SAMPLES
        .iter()
        .find(|s| s.name == "magika")
        .unwrap();
    let bytes = std::fs::read(models_dir().join(sample.file)).unwrap();
    let engine = vouch_engine::onnx::OnnxEngine::new();
    let model = engine
        .load(
            &bytes,
            &vouch_engine::LoadOptions {
                input_shapes: sample.options().input_shapes,
            },
        )
        .unwrap();
    let honest = model.run(&magika_input(), true).unwrap().leaves;
    let faulty = model
        .run_faulty(&magika_input(), true, fault)
        .unwrap()
        .leaves;
    let first = honest
        .iter()
        .zip(&faulty)
        .position(|(a, b)| a != b)
        .unwrap();
    assert!(first >= 17);
    assert_eq!(dispute.step, first as u64);
    assert_eq!(
        dispute.step_name.as_deref(),
        Some(model.steps()[first].as_str())
    );

    // Every node hears of it, re-checks it, and counts it against the liar.
    let liar_peer = liar.node.peer_id();
    for n in [&auditor, &referee] {
        eventually("the dispute to be recorded", || {
            n.node
                .peer_records()
                .get(&liar_peer)
                .is_some_and(|r| r.audits_failed == 1)
        })
        .await;
    }
    let evidence = referee.node.evidence().unwrap();
    assert!(
        evidence.iter().any(|e| e["kind"] == "dispute"),
        "{evidence:?}"
    );

    // An honest receipt passes its audit.
    let honest_answer = run(&referee, "magika", magika_input()).await.unwrap();
    let outcome = auditor
        .node
        .audit(honest_answer.receipt, referee.node.peer_id())
        .await
        .unwrap();
    assert!(
        matches!(outcome, vouch_node::audit::AuditOutcome::Passed(_)),
        "{outcome:?}"
    );
    assert_eq!(
        auditor.node.peer_records()[&referee.node.peer_id()].audits_passed,
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auditors_sample_gossiped_receipts_on_their_own() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // Two honest auditors that check every receipt; a liar that executes.
    let a = auditing(dirs[0].path(), vec![], 1.0, None).await;
    let id = push_sample(&a, "iris").await;
    let b = auditing(dirs[1].path(), addresses(&a), 1.0, None).await;
    let liar = auditing(
        dirs[2].path(),
        addresses(&a),
        0.0,
        Some(vouch_node::service::Fault::default()),
    )
    .await;
    admit_all(&[&a, &b, &liar]);
    replicate_to(&[&b, &liar], id, "iris").await;
    wait_for_providers(&a, id, 2).await;
    wait_for_providers(&b, id, 2).await;
    let liar_peer = liar.node.peer_id();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    // Gossip meshes take a heartbeat to form: answer until an audit lands.
    loop {
        run(&liar, "iris", iris_input()).await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let caught = [&a, &b].iter().all(|n| {
            n.node
                .peer_records()
                .get(&liar_peer)
                .is_some_and(|r| r.audits_failed >= 1)
        });
        if caught {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit caught the liar"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_gateway_says_so_and_serves_again_once_healed() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    let id = push_sample(&a, "iris").await;
    let b = joined(dirs[1].path(), addresses(&a), false).await;
    let g = joined(dirs[2].path(), addresses(&a), false).await;
    admit_all(&[&a, &b, &g]);
    replicate_to(&[&b], id, "iris").await;
    wait_for_providers(&g, id, 2).await;
    let route = || run(&g, "iris", iris_input());
    route().await.unwrap();

    // Partition: G is cut off from both providers.
    let p2p = g.node.p2p().unwrap();
    let (pa, pb) = (a.node.peer_id(), b.node.peer_id());
    p2p.block(pa).await.unwrap();
    p2p.block(pb).await.unwrap();
    eventually("G's connections to close", || {
        let peers = p2p.peers();
        [pa, pb]
            .iter()
            .all(|p| peers.get(p).is_none_or(|i| !i.connected()))
    })
    .await;
    let err = route().await.unwrap_err();
    assert_eq!(err.code(), "unavailable", "{err}");
    assert!(err.to_string().contains("every provider"), "{err}");
    // The providers still serve on their side of the partition.
    run(&a, "iris", iris_input()).await.unwrap();

    // Heal: G reconnects and routes again.
    p2p.unblock(pa).await.unwrap();
    p2p.unblock(pb).await.unwrap();
    eventually("G to reconnect", || {
        let peers = p2p.peers();
        [pa, pb]
            .iter()
            .any(|p| peers.get(p).is_some_and(|i| i.connected()))
    })
    .await;
    let routed = route().await.unwrap();
    assert!([pa, pb].contains(&routed.executor));
    routed.receipt.verify().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_operator_takes_more_than_its_share_cap_while_others_can_serve() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    let id = push_sample(&a, "iris").await;
    let b = joined(dirs[1].path(), addresses(&a), false).await;
    let g = networked(dirs[2].path(), addresses(&a), |c| c.max_share = 0.6).await;
    admit_all(&[&a, &b, &g]);
    replicate_to(&[&b], id, "iris").await;
    wait_for_providers(&g, id, 2).await;
    for _ in 0..60 {
        run(&g, "iris", iris_input()).await.unwrap();
    }
    let nodes = g.node.network_nodes().unwrap();
    assert_eq!(nodes.requests, 60);
    let shares: Vec<f64> = nodes.nodes.iter().map(|n| n.share).collect();
    // Ranking alone would send everything to the faster provider; the cap
    // holds each to about 60% (the cap applies from the 10th request on).
    assert!(shares.iter().all(|s| *s <= 0.62), "shares {shares:?}");
    assert!(
        shares.iter().filter(|s| **s > 0.3).count() == 2,
        "shares {shares:?}"
    );
    // The fewest operators that together ran more than half the requests:
    // one when the faster provider reached its cap, two on an even split
    // (timing decides which).
    let most = shares.iter().copied().fold(0.0, f64::max);
    let expected = if most > 0.5 { 1 } else { 2 };
    assert_eq!(nodes.nakamoto_coefficient, expected, "{nodes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupted_fetch_resumes_with_the_chunks_already_checked() {
    use vouch_types::blob::{BlobHasher, CHUNK_SIZE};
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    let id = push_sample(&a, "magika").await;
    let record = a.node.find_model("magika", None).unwrap();
    let sample = samples::SAMPLES
        .iter()
        .find(|s| s.name == "magika")
        .unwrap();
    let bytes = std::fs::read(models_dir().join(sample.file)).unwrap();
    let table = BlobHasher::table_of(&bytes);
    assert_eq!(table.chunks.len(), 4);

    // P has the manifest, the table and only the first two chunks.
    let (p, mut inbound, _) = free_provider(&a, 77, ("magika", id, ""), "half a model").await;
    let (manifest, table_bytes) = (
        [
            record.signed.signature.to_bytes().to_vec(),
            record.signed.manifest.encode(),
        ]
        .concat(),
        table.encode(),
    );
    tokio::spawn(async move {
        while let Some(req) = inbound.recv().await {
            let ok = |body: Vec<u8>| Frame {
                head: Response::Ok,
                body,
            };
            let answer = match req.request.head {
                Request::Manifest { .. } => ok(manifest.clone()),
                Request::ChunkTable { .. } => ok(table_bytes.clone()),
                // The longest prefix of the chunks asked that P holds.
                Request::Chunks { indexes, .. } if indexes[0] < 2 => ok(indexes
                    .iter()
                    .take_while(|&&i| i < 2)
                    .flat_map(|&i| {
                        let start = i as usize * CHUNK_SIZE;
                        bytes[start..(start + CHUNK_SIZE).min(bytes.len())].to_vec()
                    })
                    .collect()),
                _ => Response::error("unavailable", "not here"),
            };
            let _ = req.reply.send(answer);
        }
    });

    // C can reach only P: the fetch stops with half the chunks on disk.
    let c = joined(dirs[1].path(), addresses(&a), false).await;
    c.node.admit(a.node.public_key());
    wait_for_providers(&c, id, 2).await;
    let c_p2p = c.node.p2p().unwrap();
    let a_peer = a.node.peer_id();
    c_p2p.dial(p.addresses()[0].clone()).await.unwrap();
    eventually("C to connect to P", || {
        c_p2p
            .peers()
            .get(&p.peer_id())
            .is_some_and(|i| i.connected())
    })
    .await;
    c_p2p.block(a_peer).await.unwrap();
    let err = c.node.replicate("magika", None).await.unwrap_err();
    assert!(err.to_string().contains("fetched so far are kept"), "{err}");
    let stopped = c.node.fetch_status(&id).unwrap();
    assert_eq!(
        stopped.done_bytes,
        2 * CHUNK_SIZE as u64,
        "{stopped:?} {:?}",
        c.node.peer_records()
    );
    assert!(c.node.find_model("magika", None).is_err());

    // Healed, the next try asks only for the two missing chunks.
    c_p2p.unblock(a_peer).await.unwrap();
    eventually("C to reconnect to A", || {
        c_p2p.peers().get(&a_peer).is_some_and(|i| i.connected())
    })
    .await;
    assert_eq!(c.node.replicate("magika", None).await.unwrap(), id);
    assert_eq!(c.node.peer_records()[&a_peer].chunks_ok, 2);
    assert_eq!(
        c.node
            .infer("magika", None, magika_input(), None)
            .await
            .unwrap()
            .receipt
            .body
            .model,
        id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_dispute_counts_against_its_sender_not_the_accused() {
    let dir = tempfile::tempdir().unwrap();
    let a = joined(dir.path(), vec![], false).await;
    let key = SecretKey::from_bytes(&[55; 32]);
    let (forger, _inbound) = P2p::start(P2pConfig::loopback(addresses(&a)), &key)
        .await
        .unwrap();
    // A receipt signed by A, and a "dispute" accusing it with made-up reveals.
    let honest = a.node.p2p().unwrap().peer_id();
    let id = push_sample(&a, "iris").await;
    let receipt = run(&a, "iris", iris_input()).await.unwrap().receipt;
    let leaf = vouch_types::Digest::of(Kind::TraceLeaf, b"made up");
    let forged = vouch_types::dispute::Dispute {
        version: vouch_types::dispute::DISPUTE_VERSION,
        executor: receipt.clone(),
        auditor: receipt,
        step: 0,
        step_name: None,
        executor_descent: vouch_types::merkle::Descent {
            levels: vec![],
            leaf,
        },
        auditor_descent: vouch_types::merkle::Descent {
            levels: vec![],
            leaf,
        },
        verdict: vouch_types::dispute::Verdict::sign(&key, &id, &id, 0, leaf),
        faulty: vouch_types::dispute::Party::Executor,
    };
    let bytes = serde_json::to_vec(&forged).unwrap();
    let forger_peer = forger.peer_id();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // Publish until the gossip mesh carries it to A.
    publish_dispute_until(
        &forger,
        &bytes,
        deadline,
        "A never judged the dispute",
        || {
            a.node
                .peer_records()
                .get(&forger_peer)
                .is_some_and(|r| r.bad_data > 0)
        },
    )
    .await;
    assert_eq!(
        a.node
            .peer_records()
            .get(&honest)
            .map_or(0, |r| r.audits_failed),
        0
    );
    assert!(
        a.node
            .evidence()
            .unwrap()
            .iter()
            .all(|e| e["kind"] != "dispute")
    );
}

/// A framer needs only public data: an honest receipt, its leaf 0 and
/// Merkle path (`GET /v1/receipts/{id}/trace/0`), and two keys of its own
/// for an "auditor" and a "referee". The dispute it builds checks offline,
/// but no node counts it: its parties are not admitted. The same dispute
/// between admitted operators with a referee the draw does not pick is not
/// counted either; with the drawn referee it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_framed_from_public_data_is_counted_nowhere() {
    use vouch_types::dispute::{Dispute, Party, referee_draw};
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    push_sample(&a, "iris").await;
    let b = joined(dirs[1].path(), addresses(&a), false).await;
    admit_all(&[&a, &b]);
    let honest = run(&a, "iris", iris_input()).await.unwrap().receipt;
    let entry = a.client.trace_entry(&honest.id, 0).await.unwrap();

    // The framer's keys: one for the swarm and the "auditor", one for the
    // "referee".
    let (ka, kr) = (
        SecretKey::from_bytes(&[71; 32]),
        SecretKey::from_bytes(&[72; 32]),
    );
    let frame = |auditor: &SecretKey, referee: &SecretKey| -> Dispute {
        common::framed_dispute(&honest, &entry, auditor, referee)
    };
    let forged = frame(&ka, &kr);
    // Offline, it checks: only admission tells it from a real one.
    assert_eq!(forged.check(Some(&iris_input())), Ok(Party::Executor));

    let (forger, _inbound) = P2p::start(P2pConfig::loopback(addresses(&a)), &ka)
        .await
        .unwrap();
    // Publishes `d` until both nodes have judged `n` disputes unproven.
    let publish_until_judged = |d: Dispute, n: u64| {
        let (forger, bytes) = (&forger, serde_json::to_vec(&d).unwrap());
        let nodes = [&a, &b];
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
            publish_dispute_until(
                forger,
                &bytes,
                deadline,
                "the nodes never judged the dispute",
                || {
                    nodes
                        .iter()
                        .all(|t| t.node.metrics().disputes("unproven") >= n)
                },
            )
            .await;
        }
    };
    publish_until_judged(forged, 1).await;
    let unchanged = |t: &TestNode| {
        let records = t.node.peer_records();
        let r = records.get(&a.node.peer_id()).cloned().unwrap_or_default();
        assert_eq!((r.audits_failed, r.audits_passed), (0, 0));
        assert!(t.node.evidence().unwrap().is_empty());
        assert_eq!(t.node.metrics().disputes("counted"), 0);
    };
    unchanged(&a);
    unchanged(&b);

    // Admitted parties, but a referee the draw does not pick: a third
    // admitted operator ranks first for this receipt and auditor.
    let others: Vec<SecretKey> = (80u8..90)
        .map(|i| SecretKey::from_bytes(&[i; 32]))
        .collect();
    let mut admitted = a.node.admitted();
    admitted.insert(ka.public());
    admitted.extend(others.iter().map(|k| k.public()));
    let draw = referee_draw(
        &honest.id,
        &honest.body.node,
        &ka.public(),
        &vouch_types::dispute::Pool::uniform(&admitted),
    );
    let pick = |k: &vouch_types::PublicKey| others.iter().find(|o| o.public() == *k);
    let drawn = draw.iter().find_map(pick).unwrap();
    let undrawn = draw[vouch_types::dispute::REFEREE_DRAW..]
        .iter()
        .find_map(pick)
        .unwrap();
    for t in [&a, &b] {
        t.node.admit(ka.public());
        for k in &others {
            t.node.admit(k.public());
        }
    }
    publish_until_judged(frame(&ka, undrawn), 2).await;
    unchanged(&a);
    unchanged(&b);

    // With the drawn referee, admitted operators' word counts (that is
    // what admission means until stake backs it), once per receipt.
    let admitted_dispute = frame(&ka, drawn);
    let bytes = serde_json::to_vec(&admitted_dispute).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    publish_dispute_until(
        &forger,
        &bytes,
        deadline,
        "the admitted dispute was never counted",
        || {
            [&a, &b]
                .iter()
                .all(|t| t.node.metrics().disputes("counted") >= 1)
        },
    )
    .await;
    // Another wording of the same accusation counts nothing more.
    let mut again = admitted_dispute.clone();
    again.step_name = Some("reworded".into());
    let bytes = serde_json::to_vec(&again).unwrap();
    publish_dispute_until(
        &forger,
        &bytes,
        deadline,
        "the second accusation was never judged",
        || {
            [&a, &b]
                .iter()
                .all(|t| t.node.metrics().disputes("duplicate") >= 1)
        },
    )
    .await;
    for t in [&a, &b] {
        assert_eq!(t.node.peer_records()[&a.node.peer_id()].audits_failed, 1);
        assert_eq!(t.node.metrics().disputes("counted"), 1);
    }
}

/// A scripted operator: a raw libp2p peer keyed by `[seed; 32]` that
/// announces iris (`id`) and answers every run with `answer`, under a
/// receipt it signs (shaped like `template`) that claims `class`. Like an
/// honest executor, it hands over the inputs and outputs it kept when an
/// auditor asks. Returns its peer id and key.
async fn lying_provider(
    seed: u8,
    bootstrap: &TestNode,
    template: &vouch_types::Receipt,
    answer: TensorMap,
    class: vouch_types::Determinism,
) -> (Peer, vouch_types::PublicKey) {
    scripted_provider(seed, bootstrap, template, (answer, class), false, 0).await
}

/// [`lying_provider`], refusing every auditor's request when `withhold`,
/// and stamping its receipts `backdate_ms` before its clock.
async fn scripted_provider(
    seed: u8,
    bootstrap: &TestNode,
    template: &vouch_types::Receipt,
    (answer, class): (TensorMap, vouch_types::Determinism),
    withhold: bool,
    backdate_ms: u64,
) -> (Peer, vouch_types::PublicKey) {
    use std::collections::HashMap;
    let id = template.body.model;
    let (p2p, mut inbound, key) = free_provider(bootstrap, seed, ("iris", id, ""), "liar").await;
    let (peer, public) = (p2p.peer_id(), key.public());
    let template = template.clone();
    let holding = Holding::of(bootstrap, "iris").await;
    tokio::spawn(async move {
        let _p2p = p2p;
        let mut kept: HashMap<vouch_types::Digest, (TensorMap, TensorMap)> = HashMap::new();
        while let Some(req) = inbound.recv().await {
            // It holds the model: it passes the gateway's challenge.
            let Some(req) = holding.serve(req) else {
                continue;
            };
            let ok = |body: Vec<u8>| Frame {
                head: Response::Ok,
                body,
            };
            let reply = match &req.request.head {
                Request::Infer { nonce, .. } => {
                    let Ok(inputs) = TensorMap::decode(&req.request.body) else {
                        continue;
                    };
                    let mut body = template.body.clone();
                    body.request = inputs.digest(Kind::Input);
                    body.output = answer.digest(Kind::Output);
                    body.determinism = class;
                    body.node = public;
                    body.nonce = nonce.clone();
                    body.timestamp_ms = now_ms() - backdate_ms;
                    let receipt = body.sign(&key);
                    kept.insert(receipt.id, (inputs, answer.clone()));
                    let r = receipt.to_bytes();
                    let mut out = (r.len() as u32).to_le_bytes().to_vec();
                    out.extend_from_slice(&r);
                    out.extend_from_slice(&answer.encode());
                    ok(out)
                }
                Request::Inputs { .. } | Request::Outputs { .. } if withhold => {
                    Response::error("not_found", "gone, sorry")
                }
                Request::Inputs { receipt } => match kept.get(receipt) {
                    Some((i, _)) => ok(i.encode()),
                    None => Response::error("not_found", "no such receipt"),
                },
                Request::Outputs { receipt } => match kept.get(receipt) {
                    Some((_, o)) => ok(o.encode()),
                    None => Response::error("not_found", "no such receipt"),
                },
                _ => Response::error("unavailable", "a liar does not do that"),
            };
            let _ = req.reply.send(reply);
        }
    });
    (peer, public)
}

/// `outputs` with every number moved: a wrong answer of the right shape.
fn falsified(outputs: &TensorMap) -> TensorMap {
    let mut out = TensorMap::new();
    for (name, t) in outputs.iter() {
        let v = t.to_f64_vec();
        let moved = match t.dtype() {
            vouch_types::DType::F32 => {
                let v: Vec<f32> = v.iter().map(|x| *x as f32 + 0.5).collect();
                Tensor::from_f32(t.shape().to_vec(), &v).unwrap()
            }
            _ => {
                let v: Vec<i64> = v.iter().map(|x| (*x as i64 + 1) % 3).collect();
                Tensor::from_i64(t.shape().to_vec(), &v).unwrap()
            }
        };
        out.insert(name, moved);
    }
    out
}

/// An admitted operator that lies and claims a tolerance wide enough to
/// make any answer agree: the quorum holds it to the model's own class
/// (from the manifest), so it is the dissenter even when it answers first,
/// and its receipt fails its audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_tolerance_buys_nothing_in_quorums_or_audits() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    let id = push_sample(&a, "iris").await;
    let b = joined(dirs[1].path(), addresses(&a), false).await;
    let g = joined(dirs[2].path(), addresses(&a), false).await;
    admit_all(&[&a, &b, &g]);
    replicate_to(&[&b], id, "iris").await;
    let honest = a
        .node
        .infer("iris", None, iris_input(), None)
        .await
        .unwrap();
    let loose = vouch_types::Determinism::Tolerant { rtol: 1e300 };
    let (liar, liar_key) =
        lying_provider(61, &a, &honest.receipt, falsified(&honest.outputs), loose).await;
    admit_all(&[&a, &b, &g]);
    for t in [&a, &b, &g] {
        t.node.admit(liar_key);
    }
    wait_for_providers(&g, id, 3).await;

    let body = InferRequest {
        inputs: vouch_api::from_map(iris_input()),
        nonce: Some("q".into()),
        verify: Some("quorum:3".into()),
    };
    let resp = g.client.infer("iris", None, &body).await.unwrap();
    let quorum = resp.quorum.clone().unwrap();
    assert_eq!((quorum.wanted, quorum.agreed), (3, 2), "{quorum:?}");
    assert_eq!(quorum.dissent.len(), 1);
    assert_eq!(quorum.dissent[0].operator, liar_key);
    assert_ne!(resp.receipt.body.node, liar_key);
    assert_eq!(
        vouch_api::to_map(resp.outputs).digest(Kind::Output),
        honest.outputs.digest(Kind::Output)
    );
    assert_eq!(g.node.peer_records()[&liar].disagreements, 1);

    // Its receipt, audited: the tolerance it claims is not the one used.
    let lie = resp
        .receipts
        .iter()
        .find(|r| r.body.node == liar_key)
        .unwrap()
        .clone();
    assert_eq!(lie.body.determinism, loose);
    let outcome = a.node.audit(lie, liar).await.unwrap();
    assert!(
        !matches!(outcome, vouch_node::audit::AuditOutcome::Passed(_)),
        "{outcome:?}"
    );
}

/// Five sybil peer ids agree on a wrong answer. Not admitted, they cannot
/// join a quorum at all; admitted, they still cannot outvote a node that
/// ran the model itself: it answers no quorum rather than theirs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sybils_cannot_outvote_a_node_that_ran_it_itself() {
    let dir = tempfile::tempdir().unwrap();
    let a = joined(dir.path(), vec![], false).await;
    let id = push_sample(&a, "iris").await;
    let honest = a
        .node
        .infer("iris", None, iris_input(), None)
        .await
        .unwrap();
    let wrong = falsified(&honest.outputs);
    let class = honest.receipt.body.determinism;
    let mut sybils = Vec::new();
    for seed in 62..67 {
        sybils.push(lying_provider(seed, &a, &honest.receipt, wrong.clone(), class).await);
    }
    wait_for_providers(&a, id, 5).await;
    let quorum = |n: &str| {
        a.node
            .route("iris", None, iris_input(), None, n.parse().unwrap())
    };
    let err = quorum("quorum:3").await.unwrap_err().to_string();
    assert!(
        err.contains("5 more serve it but are not admitted"),
        "{err}"
    );

    for (_, key) in &sybils {
        a.node.admit(*key);
    }
    for n in ["quorum:3", "quorum:5"] {
        let err = quorum(n).await.unwrap_err();
        assert!(matches!(err, vouch_node::NodeError::NoQuorum(_)), "{err}");
        assert!(
            err.to_string()
                .contains("does not take other operators' word over its own run"),
            "{err}"
        );
    }
    let records = a.node.peer_records();
    for (peer, _) in &sybils {
        assert!(records[peer].disagreements >= 1, "{records:?}");
    }
    assert_eq!(
        records
            .get(&a.node.peer_id())
            .map_or(0, |r| r.disagreements),
        0
    );
}

/// A peer that answers every run of a model it announces with
/// `bad_request`, as if every client's request were wrong: without
/// failover it would block the model for every gateway that ranks it first.
/// The gateway asks the next provider and marks the refuser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_refuses_every_request_is_failed_over_and_marked() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // A is honest but expensive, so the router tries the free refuser first.
    let a = networked(dirs[0].path(), vec![], |c| c.price = 1_000_000).await;
    let id = push_sample(&a, "iris").await;
    let g = joined(dirs[1].path(), addresses(&a), false).await;
    let (p2p, mut inbound, key) = free_provider(&a, 68, ("iris", id, ""), "refuser").await;
    let refuser = p2p.peer_id();
    let asked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = asked.clone();
    let holding = Holding::of(&a, "iris").await;
    tokio::spawn(async move {
        let _p2p = p2p;
        while let Some(req) = inbound.recv().await {
            // It holds the model (it passes the challenge), but refuses to run it.
            let Some(req) = holding.serve(req) else {
                continue;
            };
            if matches!(req.request.head, Request::Infer { .. }) {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let _ = req.reply.send(Response::error(
                "bad_request",
                "your request is wrong (it is not)",
            ));
        }
    });
    admit_all(&[&a, &g]);
    g.node.admit(key.public());
    wait_for_providers(&g, id, 2).await;

    // Every request is answered by A; until the refuser has been asked
    // (G reaches it once it has its address and its proof).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut served = 0;
    while served < 3 || asked.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        let routed = run(&g, "iris", iris_input()).await.unwrap();
        assert_eq!(routed.executor, a.node.peer_id(), "request {served}");
        served += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "G never asked the refuser"
        );
    }
    let records = g.node.peer_records();
    assert!(records[&refuser].refused >= 1, "{records:?}");
    assert_eq!(records[&a.node.peer_id()].served, served);
    // Marked, it ranks after the honest provider.
    assert_eq!(
        g.node
            .network_nodes()
            .unwrap()
            .nodes
            .iter()
            .find(|n| n.peer == refuser.to_string())
            .unwrap()
            .record
            .refused,
        records[&refuser].refused
    );
}

/// An executor that stamps its receipts a minute early, to sign under a
/// ledger beacon it already knows and so choose its auditors and referees:
/// its answer is right, but the gateway refuses the stale receipt as a lie,
/// fails over to an honest provider and marks the backdater.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backdated_receipt_is_refused_and_its_executor_failed_over() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // A is honest but expensive, so the router tries the free backdater first.
    let a = networked(dirs[0].path(), vec![], |c| c.price = 1_000_000).await;
    let id = push_sample(&a, "iris").await;
    let g = joined(dirs[1].path(), addresses(&a), false).await;
    let honest = a
        .node
        .infer("iris", None, iris_input(), None)
        .await
        .unwrap();
    let class = honest.receipt.body.determinism;
    let (backdater, key) = scripted_provider(
        69,
        &a,
        &honest.receipt,
        (honest.outputs.clone(), class),
        false,
        60_000,
    )
    .await;
    admit_all(&[&a, &g]);
    g.node.admit(key);
    wait_for_providers(&g, id, 2).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let marked = || {
        g.node
            .peer_records()
            .get(&backdater)
            .map_or(0, |r| r.bad_data)
    };
    let mut served = 0;
    while served < 3 || marked() == 0 {
        let routed = run(&g, "iris", iris_input()).await.unwrap();
        assert_eq!(routed.executor, a.node.peer_id(), "request {served}");
        served += 1;
        assert!(
            tokio::time::Instant::now() < deadline,
            "G never asked the backdater"
        );
    }
    // The client's own check refuses such a receipt too.
    let mut stale = honest.receipt.clone();
    stale.body.timestamp_ms = now_ms() - 60_000;
    let err = stale.check_fresh(now_ms()).unwrap_err().to_string();
    assert!(err.contains("backdated"), "{err}");
    assert!(
        honest
            .receipt
            .check_fresh(honest.receipt.body.timestamp_ms + 500)
            .is_ok()
    );
}

/// An auditor that checks every receipt and serves iris (at `price`), a
/// second node, and a scripted executor (key `seed`) that answers honestly
/// but never gossips its receipts and refuses auditors its inputs. Both
/// nodes admit all three and have heard the executor's offer.
struct Withholding {
    auditor: TestNode,
    other: TestNode,
    /// Iris's model id.
    id: vouch_types::Digest,
    /// The executor's peer id.
    peer: Peer,
    /// The auditor's own honest answer, which the executor copies.
    honest: vouch_node::service::Answer,
}

async fn withholding(dirs: &[tempfile::TempDir], seed: u8, price: u64) -> Withholding {
    let auditor = networked(dirs[0].path(), vec![], |c| {
        c.audit_rate = 1.0;
        c.price = price;
    })
    .await;
    let id = push_sample(&auditor, "iris").await;
    let other = joined(dirs[1].path(), addresses(&auditor), false).await;
    let honest = auditor
        .node
        .infer("iris", None, iris_input(), None)
        .await
        .unwrap();
    let class = honest.receipt.body.determinism;
    let (peer, key) = scripted_provider(
        seed,
        &auditor,
        &honest.receipt,
        (honest.outputs.clone(), class),
        true,
        0,
    )
    .await;
    admit_all(&[&auditor, &other]);
    auditor.node.admit(key);
    other.node.admit(key);
    for t in [&auditor, &other] {
        eventually("the withholding executor's offer to be heard", || {
            t.node
                .network_models()
                .get(&id.to_string())
                .is_some_and(|m| m.providers.contains(&peer))
        })
        .await;
    }
    Withholding {
        auditor,
        other,
        id,
        peer,
        honest,
    }
}

/// An executor that never gossips its receipts and refuses to hand over a
/// request's inputs: the gateway that routed the request gossips the
/// receipt, and the auditor drawn for it counts the refusal as a lost
/// audit. A stranger asking an honest executor for a user's inputs is
/// refused: they go only to the receipt's drawn auditors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_executor_that_withholds_inputs_loses_the_audit() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    // The auditor serves the model at a price, so G routes to the free
    // withholder.
    let Withholding {
        auditor,
        other: g,
        peer: withholder,
        ..
    } = withholding(&dirs, 69, 1_000_000).await;
    // G routes to the withholder until an audit lands (gossip meshes take
    // a heartbeat to form).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let routed = run(&g, "iris", iris_input()).await.unwrap();
        if routed.executor == withholder
            && auditor
                .node
                .peer_records()
                .get(&withholder)
                .is_some_and(|r| r.withheld >= 1)
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no audit counted the withheld inputs: {:?}",
            auditor.node.peer_records().get(&withholder)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let evidence = auditor.node.evidence().unwrap();
    assert!(
        evidence.iter().any(|e| e["kind"] == "withheld"),
        "{evidence:?}"
    );

    // A stranger asks the honest executor for the inputs it keeps.
    let receipt = run(&auditor, "iris", iris_input()).await.unwrap().receipt;
    let stranger_key = SecretKey::from_bytes(&[70; 32]);
    let (stranger, _inbound) = P2p::start(P2pConfig::loopback(addresses(&auditor)), &stranger_key)
        .await
        .unwrap();
    let answer = stranger
        .request(
            auditor.node.peer_id(),
            Frame::new(Request::Inputs {
                receipt: receipt.id,
            }),
        )
        .await
        .unwrap();
    match answer.head {
        Response::Error { code, message } => {
            assert_eq!(code, "forbidden", "{message}");
            assert!(message.contains("auditors its draw picks"), "{message}");
        }
        other => panic!("a stranger got the inputs: {other:?}"),
    }
}

/// An executor answers a client directly, never gossips the receipt and
/// refuses auditors its inputs. The client reports the receipt to a node of
/// the network: the drawn auditor, reported to, audits it at once; a
/// bystander, reported to, gossips it and the auditor hears it there. Both
/// ways the executor loses the audit. Reports that do not check are refused
/// and say why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_a_client_reports_is_audited_though_its_executor_kept_it_quiet() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let Withholding {
        auditor,
        other: bystander,
        id,
        peer: quiet,
        honest,
    } = withholding(&dirs, 73, 0).await;
    // The client: a peer of its own that asks the executor directly.
    let (client, _inbound) = P2p::start(
        P2pConfig::loopback(addresses(&auditor)),
        &SecretKey::from_bytes(&[74; 32]),
    )
    .await
    .unwrap();
    let mut asked = 0;
    let mut ask = || {
        asked += 1;
        let (client, nonce) = (&client, format!("direct-{asked}"));
        async move {
            let answer = client
                .request(
                    quiet,
                    Frame {
                        head: Request::Infer {
                            model: id,
                            nonce,
                            quorum: false,
                            proof: false,
                            voucher: None,
                        },
                        body: iris_input().encode(),
                    },
                )
                .await
                .unwrap();
            assert!(matches!(answer.head, Response::Ok), "{:?}", answer.head);
            let len = u32::from_le_bytes(answer.body[..4].try_into().unwrap()) as usize;
            vouch_types::Receipt::from_bytes(&answer.body[4..4 + len]).unwrap()
        }
    };
    let withheld = || {
        auditor
            .node
            .peer_records()
            .get(&quiet)
            .map_or(0, |r| r.withheld)
    };

    // Reported to its drawn auditor: audited there, at once.
    let receipt = ask().await;
    let reported = auditor.client.report_receipt(&receipt).await.unwrap();
    assert!(reported.gossiped && reported.audited_here, "{reported:?}");
    eventually("the auditor to count the lost audit", || withheld() == 1).await;
    let again = auditor.client.report_receipt(&receipt).await.unwrap();
    assert!(!again.gossiped && !again.audited_here, "{again:?}");
    assert_eq!(withheld(), 1);

    // Reported to a bystander that serves nothing: it gossips the receipt,
    // and the auditor hears it (until the gossip mesh forms, a report can
    // find nobody to send to: report the next answer).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while withheld() < 2 {
        let receipt = ask().await;
        let reported = bystander.client.report_receipt(&receipt).await.unwrap();
        assert!(reported.gossiped && !reported.audited_here, "{reported:?}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "no auditor heard the reported receipts"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // A forged signature, a model nobody serves: refused, saying why.
    let mut forged = ask().await;
    forged.body.output = honest.receipt.body.request;
    let err = bystander.client.report_receipt(&forged).await.unwrap_err();
    assert!(err.to_string().contains("does not verify"), "{err}");
    let stranger = SecretKey::from_bytes(&[75; 32]);
    let mut body = receipt.body.clone();
    body.model = vouch_types::Digest::of(Kind::Model, b"a model nobody serves");
    body.node = stranger.public();
    let err = bystander
        .client
        .report_receipt(&body.sign(&stranger))
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("neither served here nor announced"),
        "{err}"
    );
}

/// Any peer can announce `iris@999999`. A name resolves only to a model an
/// admitted operator published: the gateway routes `iris` to the honest
/// publisher's version, says why it passes over the stranger's, and
/// replicates by name the same way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_version_from_an_untrusted_publisher_is_not_routed_to() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = joined(dirs[0].path(), vec![], false).await;
    let id = push_sample(&a, "iris").await;
    // The stranger is a real node that published its own "iris" (another
    // model: magika's bytes) at version 999999.
    let m = joined(dirs[1].path(), addresses(&a), false).await;
    let magika = samples::SAMPLES
        .iter()
        .find(|s| s.name == "magika")
        .unwrap();
    let mut options = magika.options();
    options.name = "iris".into();
    options.version = Some("999999".into());
    let fake = samples::push_file(&m.node, &models_dir().join(magika.file), options)
        .await
        .unwrap()
        .id();
    let g = joined(dirs[2].path(), addresses(&a), false).await;
    g.node.admit(a.node.public_key());
    eventually("G to hear both", || {
        let models = g.node.network_models();
        models.contains_key(&id.to_string()) && models.contains_key(&fake.to_string())
    })
    .await;
    let routed = run(&g, "iris", iris_input()).await.unwrap();
    assert_eq!(routed.receipt.body.model, id);
    assert_eq!(routed.executor, a.node.peer_id());
    // Asked for exactly that version, it refuses and says why.
    let err = g
        .node
        .route(
            "iris",
            Some("999999"),
            iris_input(),
            None,
            Default::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("no operator this node admits published `iris@999999`")
            && err.contains(&m.node.public_key().to_string())
            && err.contains("--admit"),
        "{err}"
    );
    // Replicated, pinned and looked up by name: the admitted publisher's
    // model; the stranger's version is refused there too.
    assert_eq!(g.node.pin_status("iris", None).await.unwrap().id, id);
    let err = g.node.pin_status("iris", Some("999999")).await.unwrap_err();
    assert!(err.to_string().contains("--admit"), "{err}");
    assert_eq!(g.node.replicate("iris", None).await.unwrap(), id);
}

/// Announcing a model is free: a peer that announces iris, hands out its
/// (public) manifest and chunk table, but cannot produce the chunk a
/// gateway draws, is never sent a request, though it is free and admitted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_that_does_not_hold_the_model_is_not_routed_to() {
    let dirs: Vec<_> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
    let a = networked(dirs[0].path(), vec![], |c| c.price = 1_000_000).await;
    let id = push_sample(&a, "iris").await;
    let g = joined(dirs[1].path(), addresses(&a), false).await;
    let (p2p, mut inbound, key) = free_provider(&a, 79, ("iris", id, ""), "pretender").await;
    let pretender = p2p.peer_id();
    let holding = Holding::of(&a, "iris").await;
    let runs = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counted = runs.clone();
    tokio::spawn(async move {
        let _p2p = p2p;
        while let Some(req) = inbound.recv().await {
            let body = match &req.request.head {
                Request::Chunks { indexes, .. } => vec![0u8; indexes.len() * 670],
                Request::Infer { .. } => {
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    continue;
                }
                other => match holding.answer(other) {
                    Some(body) => body,
                    None => continue,
                },
            };
            let _ = req.reply.send(Frame {
                head: Response::Ok,
                body,
            });
        }
    });
    g.node.admit(a.node.public_key());
    g.node.admit(key.public());
    wait_for_providers(&g, id, 2).await;
    for _ in 0..3 {
        let routed = run(&g, "iris", iris_input()).await.unwrap();
        assert_eq!(routed.executor, a.node.peer_id());
    }
    assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert!(g.node.peer_records()[&pretender].bad_data >= 1);
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}
