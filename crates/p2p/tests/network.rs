//! Real swarms on loopback: discovery through a bootstrap peer, signed
//! announcements gossiped to everyone, DHT peer routing, and a peer that
//! vanishes.

use std::time::Duration;

use tokio::sync::mpsc;
use vouch_p2p::{
    AnnouncementBody, Frame, Gossip, Inbound, ModelOffer, P2p, P2pConfig, Request, Response, Topic,
    peer_id_of,
};
use vouch_types::{Digest, Kind, SecretKey};

async fn node(seed: u8, bootstrap: Vec<vouch_p2p::Address>) -> (P2p, SecretKey) {
    let (p2p, key, _inbound) = node_with_inbound(seed, bootstrap).await;
    (p2p, key)
}

async fn node_with_inbound(
    seed: u8,
    bootstrap: Vec<vouch_p2p::Address>,
) -> (P2p, SecretKey, Inbound) {
    let key = SecretKey::from_bytes(&[seed; 32]);
    let (p2p, inbound) = P2p::start(P2pConfig::loopback(bootstrap), &key)
        .await
        .unwrap();
    let body = AnnouncementBody {
        operator: key
            .public()
            .as_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
        peer: p2p.peer_id().to_string(),
        http: Some(format!("http://127.0.0.1:{}", 9000 + u16::from(seed))),
        models: vec![ModelOffer {
            name: format!("model-{seed}"),
            version: "1".into(),
            id: format!("model:{seed:064x}"),
            format: String::new(),
        }],
        price: u64::from(seed),
        capacity: 2,
        software: "vouch test".into(),
        seq: 0,
        timestamp_ms: 0,
    };
    p2p.announce(body).await.unwrap();
    (p2p, key, inbound)
}

/// Answers chunk requests with the first index asked, repeated `len`
/// times; anything else is refused.
fn answer_chunks(mut inbound: Inbound, len: usize) {
    tokio::spawn(async move {
        while let Some(req) = inbound.recv().await {
            let answer = match req.request.head {
                Request::Chunks { indexes, .. } => Frame {
                    head: Response::Ok,
                    body: vec![indexes[0] as u8; len],
                },
                _ => Response::error("unsupported", "only chunks here"),
            };
            let _ = req.reply.send(answer);
        }
    });
}

/// Polls `check` until it holds, for at most 30 s.
async fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_find_each_other_through_one_bootstrap_peer() {
    let (a, _) = node(1, vec![]).await;
    let boot = a.addresses();
    let (b, kb) = node(2, boot.clone()).await;
    let (c, kc) = node(3, boot).await;
    let nodes = [&a, &b, &c];

    // Everyone hears everyone's signed announcement, B and C only through A.
    eventually("announcements from every peer", || {
        nodes.iter().all(|n| {
            let peers = n.peers();
            nodes
                .iter()
                .filter(|m| m.peer_id() != n.peer_id())
                .all(|m| {
                    peers
                        .get(&m.peer_id())
                        .is_some_and(|p| p.announcement.is_some())
                })
        })
    })
    .await;
    let seen = c.peers();
    let (body, operator) = seen[&b.peer_id()].announcement.clone().unwrap();
    assert_eq!(operator, kb.public());
    assert_eq!(peer_id_of(&kc.public()), c.peer_id());
    assert_eq!(body.models[0].name, "model-2");
    assert_eq!(body.price, 2);

    // The DHT routes C to B.
    let addrs = c.find_peer(b.peer_id()).await.unwrap();
    assert!(
        addrs.iter().any(|a| b
            .addresses()
            .iter()
            .any(|ba| ba.to_string().starts_with(&a.to_string()))),
        "C found {addrs:?}, B listens on {:?}",
        b.addresses()
    );

    // B vanishes: the others see the connection go.
    let b_id = b.peer_id();
    drop(b);
    eventually("B's connections to close", || {
        [&a, &c]
            .iter()
            .all(|n| n.peers().get(&b_id).is_none_or(|p| !p.connected()))
    })
    .await;
}

#[tokio::test]
async fn a_node_without_peers_works_alone_and_bad_bootstrap_addresses_are_refused() {
    let (alone, _) = node(7, vec![]).await;
    assert!(alone.peers().is_empty());
    assert!(!alone.addresses().is_empty());
    let key = SecretKey::from_bytes(&[8; 32]);
    let err = P2p::start(
        P2pConfig::loopback(vec!["/ip4/127.0.0.1/tcp/1".parse().unwrap()]),
        &key,
    )
    .await
    .err()
    .expect("a bootstrap address without /p2p/ is refused");
    assert!(err.to_string().contains("/p2p/<peer id>"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_answer_requests_and_find_providers() {
    let (a, _, inbound) = node_with_inbound(11, vec![]).await;
    answer_chunks(inbound, 2 << 20);
    let (b, _) = node(12, a.addresses()).await;
    let (c, _) = node(13, a.addresses()).await;
    let blob = Digest::of(Kind::Blob, b"blob");

    let got = b
        .request(
            a.peer_id(),
            Frame::new(Request::Chunks {
                blob,
                indexes: vec![5],
            }),
        )
        .await
        .unwrap();
    assert_eq!(got.head, Response::Ok);
    assert_eq!(got.body, vec![5u8; 2 << 20]);
    let refused = b
        .request(a.peer_id(), Frame::new(Request::ChunkTable { blob }))
        .await
        .unwrap();
    assert!(matches!(refused.head, Response::Error { code, .. } if code == "unsupported"));
    // C dropped its inbound stream: it answers, with an error.
    let unavailable = b
        .request(
            c.peer_id(),
            Frame::new(Request::Chunks {
                blob,
                indexes: vec![0],
            }),
        )
        .await
        .unwrap();
    assert!(matches!(unavailable.head, Response::Error { code, .. } if code == "unavailable"));

    // A provider record published by B is found by C through the DHT.
    let model = Digest::of(Kind::Model, b"m");
    b.provide(model).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if c.providers(model).await.unwrap().contains(&b.peer_id()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "C never found B as a provider"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A peer that is gone: a clear error, not a hang.
    let a_id = a.peer_id();
    drop(a);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let err = b
        .request(
            a_id,
            Frame::new(Request::Chunks {
                blob,
                indexes: vec![1],
            }),
        )
        .await;
    assert!(err.is_err(), "a vanished peer answered: {err:?}");
}

/// Asks `to` for chunk `index` of a made-up blob and returns the body.
async fn chunk(from: &P2p, to: vouch_p2p::Peer, index: u64) -> Vec<u8> {
    let blob = Digest::of(Kind::Blob, b"blob");
    let got = from
        .request(
            to,
            Frame::new(Request::Chunks {
                blob,
                indexes: vec![index],
            }),
        )
        .await
        .unwrap_or_else(|e| panic!("request {index}: {e}"));
    assert_eq!(got.head, Response::Ok, "request {index}");
    got.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_requests_is_answered_and_a_restarted_peer_is_reached_again() {
    let (a, _, inbound) = node_with_inbound(15, vec![]).await;
    answer_chunks(inbound, 100);
    let (b, _) = node(16, a.addresses()).await;
    let a_id = a.peer_id();

    // More requests at once than streams a peer may open: each gets its
    // own answer; those over the limit wait their turn.
    let burst = (0..150u64).map(|i| {
        let b = b.clone();
        async move { (i, chunk(&b, a_id, i).await) }
    });
    for (i, body) in futures_util::future::join_all(burst).await {
        assert_eq!(body, vec![i as u8; 100], "request {i} got another's answer");
    }
    // Answered in turn on the streams the burst left open.
    for i in 0..20 {
        assert_eq!(chunk(&b, a_id, i).await, vec![i as u8; 100]);
    }

    // A restarts (same key, new port) and dials B: B's idle streams to
    // it are dead, and its next request goes on a new one.
    drop(a);
    eventually("A's connection to close", || {
        b.peers().get(&a_id).is_none_or(|p| !p.connected())
    })
    .await;
    let (a, _, inbound) = node_with_inbound(15, b.addresses()).await;
    answer_chunks(inbound, 100);
    eventually("the restarted A to connect", || {
        b.peers().get(&a.peer_id()).is_some_and(|p| p.connected())
    })
    .await;
    assert_eq!(chunk(&b, a_id, 7).await, vec![7u8; 100]);
}

/// The next gossip `got` delivers, within 10 s.
async fn next_gossip(got: &mut mpsc::Receiver<Gossip>) -> Gossip {
    tokio::time::timeout(Duration::from_secs(10), got.recv())
        .await
        .expect("no gossip within 10 s")
        .expect("the gossip stream ended")
}

/// Publishes `data` on `topic` from `from` every `every` until `got`
/// delivers something (a mesh or a new subscription takes a heartbeat or
/// two to reach the publisher), failing with `what` after `deadline`.
async fn publish_until_heard(
    (from, got): (&P2p, &mut mpsc::Receiver<Gossip>),
    (topic, data): (Topic, &[u8]),
    every: Duration,
    deadline: tokio::time::Instant,
    what: &str,
) -> Gossip {
    loop {
        from.publish(topic, data.to_vec()).await.unwrap();
        if let Ok(Some(g)) = tokio::time::timeout(every, got.recv()).await {
            return g;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gossip_on_receipt_and_dispute_topics_reaches_peers() {
    let (a, _) = node(21, vec![]).await;
    let (b, _) = node(22, a.addresses()).await;
    let mut got = b.take_gossip().unwrap();
    assert!(b.take_gossip().is_none(), "the gossip stream is taken once");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let g = publish_until_heard(
        (&a, &mut got),
        (Topic::Disputes, b"d"),
        Duration::from_millis(300),
        deadline,
        "no gossip arrived",
    )
    .await;
    assert_eq!(g.topic, Topic::Disputes);
    assert_eq!(g.source, a.peer_id());
    assert_eq!(g.data, b"d");
    // Receipts travel in batches; each arrives on its own, in order.
    let receipts: Vec<Vec<u8>> = (0..50u8).map(|i| vec![i; 300]).collect();
    for r in &receipts {
        a.publish(Topic::Receipts, r.clone()).await.unwrap();
    }
    for r in &receipts {
        let g = next_gossip(&mut got).await;
        assert_eq!(
            (g.topic, g.source, &g.data),
            (Topic::Receipts, a.peer_id(), r)
        );
    }
    // More than one batch holds: they split and all arrive.
    let big = vec![7u8; vouch_p2p::batch::MAX_BATCH_BYTES / 3];
    for _ in 0..4 {
        a.publish(Topic::Receipts, big.clone()).await.unwrap();
    }
    for _ in 0..4 {
        assert_eq!(next_gossip(&mut got).await.data, big);
    }
    // A receipt too large for any batch is dropped; the next one goes.
    let oversized = vec![1u8; vouch_p2p::batch::MAX_BATCH_BYTES];
    a.publish(Topic::Receipts, oversized).await.unwrap();
    a.publish(Topic::Receipts, b"after".to_vec()).await.unwrap();
    assert_eq!(next_gossip(&mut got).await.data, b"after");
    // Once B leaves the receipts topic, A's receipts no longer reach it;
    // disputes still do.
    b.subscribe(Topic::Receipts, false).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        // Until A has heard B leave: a receipt still arriving is drained.
        a.publish(Topic::Receipts, b"late".to_vec()).await.unwrap();
        a.publish(Topic::Disputes, b"marker".to_vec())
            .await
            .unwrap();
        let mut receipts = 0;
        let g = loop {
            let g = next_gossip(&mut got).await;
            if g.topic == Topic::Disputes {
                break g;
            }
            receipts += 1;
        };
        assert_eq!(g.data, b"marker");
        // The batch window is 200 ms: a receipt sent before the marker
        // arrives after it, if at all.
        if receipts == 0
            && tokio::time::timeout(Duration::from_millis(600), got.recv())
                .await
                .is_err()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "B still gets receipts"
        );
    }
    b.subscribe(Topic::Receipts, true).await.unwrap();
    let g = publish_until_heard(
        (&a, &mut got),
        (Topic::Receipts, b"again"),
        Duration::from_millis(500),
        deadline,
        "B gets no receipts after subscribing again",
    )
    .await;
    assert_eq!(
        (g.topic, g.data.as_slice()),
        (Topic::Receipts, &b"again"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_hears_only_the_topics_it_starts_with() {
    let (a, _) = node(23, vec![]).await;
    let mut config = P2pConfig::loopback(a.addresses());
    config.topics = vec![Topic::Disputes];
    let (c, _inbound) = P2p::start(config, &SecretKey::from_bytes(&[24; 32]))
        .await
        .unwrap();
    let mut got = c.take_gossip().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut heard = Vec::new();
    loop {
        a.publish(Topic::Receipts, b"receipt".to_vec())
            .await
            .unwrap();
        a.publish(Topic::Disputes, b"dispute".to_vec())
            .await
            .unwrap();
        if let Ok(Some(g)) = tokio::time::timeout(Duration::from_millis(300), got.recv()).await {
            heard.push(g.topic);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no dispute arrived");
    }
    // Receipts wait up to 200 ms in a batch: anything still on its way
    // arrives within 600 ms.
    while let Ok(Some(g)) = tokio::time::timeout(Duration::from_millis(600), got.recv()).await {
        heard.push(g.topic);
    }
    assert!(heard.iter().all(|&t| t == Topic::Disputes), "{heard:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_takes_requests_over_several_connections() {
    let (a, _, inbound) = node_with_inbound(21, vec![]).await;
    answer_chunks(inbound, 1 << 20);
    let (b, _) = node(22, a.addresses()).await;
    let a_id = a.peer_id();
    eventually("B connected to A", || {
        b.peers().get(&a_id).is_some_and(|p| p.connected())
    })
    .await;

    // A second connection is opened once; asking again dials nothing.
    assert_eq!(b.connect_many(a_id, 2).await.unwrap(), 2);
    assert_eq!(b.connect_many(a_id, 2).await.unwrap(), 2);
    assert_eq!(b.connect_many(a_id, 1).await.unwrap(), 2);
    let b_id = b.peer_id();
    eventually("A sees both connections", || {
        a.peers().get(&b_id).is_some_and(|p| p.connections == 2)
    })
    .await;

    // Requests in flight together, on streams over both, all answered
    // right.
    let answers = futures_util::future::join_all((0..8u64).map(|i| chunk(&b, a_id, i))).await;
    for (i, body) in answers.into_iter().enumerate() {
        assert_eq!(body, vec![i as u8; 1 << 20]);
    }

    // A peer nobody knows an address for: an answer at once, no hang.
    let stranger = peer_id_of(&SecretKey::from_bytes(&[99; 32]).public());
    assert_eq!(b.connect_many(stranger, 2).await.unwrap(), 0);
    // A peer that is gone: the dials fail and the call returns.
    drop(a);
    eventually("B saw A go", || {
        b.peers().get(&a_id).is_some_and(|p| !p.connected())
    })
    .await;
    let left = tokio::time::timeout(Duration::from_secs(20), b.connect_many(a_id, 2))
        .await
        .expect("connect_many to a vanished peer returns");
    assert_eq!(left.unwrap(), 0);
}

/// A node takes at most `max_incoming` connections from peers: beyond
/// them a new peer's connection is refused (its request fails, saying so,
/// rather than the node's file descriptors running out), and once a
/// connected peer leaves, the newcomer gets in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_connections_beyond_its_limit() {
    let key = SecretKey::from_bytes(&[90; 32]);
    let mut config = P2pConfig::loopback(vec![]);
    config.max_incoming = 2;
    let (host, inbound) = P2p::start(config, &key).await.unwrap();
    answer_chunks(inbound, 4);
    let h = host.peer_id();
    let addrs = host.addresses();
    let (a, _) = node(91, addrs.clone()).await;
    eventually("A to connect", || {
        host.peers()
            .get(&a.peer_id())
            .is_some_and(|p| p.connected())
    })
    .await;
    let (b, _) = node(92, addrs.clone()).await;
    eventually("B to connect", || {
        host.peers()
            .get(&b.peer_id())
            .is_some_and(|p| p.connected())
    })
    .await;
    assert_eq!(chunk(&a, h, 1).await, vec![1; 4]);
    // A third peer is refused.
    let (c, _) = node(93, addrs.clone()).await;
    let ask = || {
        c.request(
            h,
            Frame::new(Request::Chunks {
                blob: Digest::of(Kind::Blob, b"blob"),
                indexes: vec![3],
            }),
        )
    };
    let refused = ask().await;
    assert!(
        refused.is_err(),
        "a connection beyond the limit was taken: {refused:?}"
    );
    assert!(
        host.peers().values().filter(|p| p.connected()).count() <= 2,
        "{:?}",
        host.peers()
    );
    // A leaves; C gets in.
    drop(a);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(f) = ask().await {
            assert_eq!(f.body, vec![3; 4]);
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "C never got in");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(b);
}
