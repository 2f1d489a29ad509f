//! Disputes reach the ledger: three nodes that are also the three
//! validators of one chain, each operator staked; one signs wrong answers.
//! The auditor's dispute, settled by the referee the draw over the staked
//! operators picks, goes to the chain as a transaction, and every
//! validator's ledger slashes the liar, rewards the auditor and burns the
//! rest, once. An operator without stake serves where no staked one does,
//! and the answer says so, until a vote closes admission. Then a vote
//! retires the release they run, and they stop routing to each other.

mod common;

use common::{
    TestNode, addresses, eventually, framed_dispute, magika_input, models_dir, validator,
};
use vouch_node::ledger::{Genesis, Offer, Params, TxBody};
use vouch_node::{NodeConfig, P2pConfig, samples};
use vouch_types::SecretKey;

const FUNDS: u64 = 1_000_000;
const STAKE: u64 = 100_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dispute_goes_to_the_ledger_and_every_validator_slashes_the_liar_once() {
    use vouch_engine::Fault;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let keys: Vec<SecretKey> = (0..3u8)
        .map(|i| SecretKey::from_bytes(&[30 + i; 32]))
        .collect();
    for (dir, key) in dirs.iter().zip(&keys) {
        std::fs::write(dir.path().join("operator.key"), hex::encode(key.to_bytes())).unwrap();
    }
    let operators: Vec<_> = keys.iter().map(SecretKey::public).collect();
    let genesis = Genesis {
        chain_id: "slashing-test".into(),
        params: Params {
            voting_period: 8,
            timelock: 0,
            ..Params::default()
        },
        accounts: operators.iter().map(|k| (*k, FUNDS)).collect(),
        operators: operators
            .iter()
            .map(|k| (*k, STAKE, Offer::default()))
            .collect(),
    };
    // The validators' ports are named in each other's settings, so they
    // are chosen here, below the ephemeral range.
    let ports = vouch_node::ledger::local_ports(3).unwrap();
    let start = |i: usize, fault: Option<Fault>, bootstrap: Vec<vouch_node::p2p::Address>| {
        validator(
            dirs[i].path(),
            &genesis,
            (&ports, i),
            move |c| c.fault = fault,
            bootstrap,
        )
    };
    let auditor = start(0, None, vec![]).await;
    let liar = start(
        1,
        Some(Fault {
            // magika's second layer norm: far enough in to bisect, and
            // a change there moves the answer beyond the tolerance.
            step: Some(17),
            llm: None,
        }),
        addresses(&auditor),
    )
    .await;
    let referee = start(2, None, addresses(&auditor)).await;
    let nodes = [&auditor, &liar, &referee];
    // Admission is stake: every node admits the three staked operators,
    // and nobody else, with no --admit.
    for n in nodes {
        assert_eq!(
            n.node.admitted(),
            operators.iter().copied().collect(),
            "admission follows the ledger's stake"
        );
        assert!(
            !n.node
                .is_admitted(&SecretKey::from_bytes(&[99; 32]).public())
        );
    }
    let sample = samples::SAMPLES
        .iter()
        .find(|s| s.name == "magika")
        .unwrap();
    let id = samples::push_file(
        &auditor.node,
        &models_dir().join(sample.file),
        sample.options(),
    )
    .await
    .unwrap()
    .id();
    for n in [&liar, &referee] {
        common::replicate_from_peers(n, "magika", &id).await;
    }
    eventually("both peers to serve magika", || {
        auditor
            .node
            .network_models()
            .get(&id.to_string())
            .is_some_and(|m| m.providers.len() == 2)
    })
    .await;

    let answer = liar
        .node
        .route("magika", None, magika_input(), None, Default::default())
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
    assert_eq!(dispute.verdict.referee, operators[2]);

    // Every validator's ledger: the liar lost 10% of its stake. Its node
    // judges its own answer right (its re-run has the same fault) and
    // appeals, but with three operators nobody is left to sit on a panel:
    // once the panel's time runs out the conviction stands, the auditor
    // gets half of the stake taken and the rest is burned.
    let slash = STAKE / 10;
    for n in nodes {
        let chain = n.node.chain().unwrap().clone();
        eventually("the dispute to be applied", || {
            chain.read(|l| l.disputed(&answer.receipt.id))
        })
        .await;
        eventually("the conviction to be final", || {
            chain.read(|l| !l.rulings().is_empty())
        })
        .await;
        chain.read(|l| {
            assert_eq!(
                l.rulings()[0],
                (
                    answer.receipt.id,
                    vouch_node::ledger::appeal::Ruling::Undecided
                )
            );
            let liar_op = &l.operators()[&operators[1]];
            assert_eq!((liar_op.stake, liar_op.slashed), (STAKE - slash, slash));
            assert_eq!(l.operators()[&operators[0]].slashed, 0);
            assert_eq!(l.account(&operators[0]).balance, FUNDS + slash / 2);
            assert_eq!(l.burned(), slash - slash / 2);
            assert_eq!(l.supply() + l.burned(), 3 * FUNDS + 3 * STAKE);
        });
    }
    // The liar's node says so to its operator's monitoring.
    let metrics = |url: String| async move {
        reqwest::get(format!("{url}/metrics"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let liar_metrics = metrics(liar.url.clone()).await;
    assert!(
        liar_metrics.contains(&format!("\nvouch_operator_slashed {slash}\n"))
            && liar_metrics.contains("\nvouch_operator_stake_below_minimum 0\n")
            && liar_metrics.contains("\nvouch_operator_validator 1\n"),
        "{liar_metrics}"
    );
    let auditor_metrics = metrics(auditor.url.clone()).await;
    assert!(
        auditor_metrics.contains("\nvouch_operator_slashed 0\n"),
        "{auditor_metrics}"
    );
    // The same dispute again, from anyone: refused, nothing slashed twice.
    let record = serde_json::to_vec(&*dispute).unwrap();
    let err = referee
        .node
        .submit_own(TxBody::Dispute { record })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("convicted on already"), "{err}");
    auditor.node.chain().unwrap().read(|l| {
        assert_eq!(l.operators()[&operators[1]].slashed, slash);
    });

    // An operator without stake (a node on the network, not on the
    // ledger) serves where no staked one does, and the answer says so; a
    // vote closing admission (`open_admission` 0) ends that.
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger = {
        let mut config = NodeConfig::new(stranger_dir.path().to_path_buf());
        config.audit_rate = 0.0;
        let t = TestNode::start(config).await;
        t.node
            .join(
                P2pConfig::loopback(addresses(&auditor)),
                Some(t.url.clone()),
            )
            .await
            .unwrap();
        t
    };
    // It trusts the auditor's operator as a publisher, and serves iris,
    // which the auditor publishes and then stops serving.
    stranger.node.admit(operators[0]);
    let iris = samples::SAMPLES.iter().find(|s| s.name == "iris").unwrap();
    let iris_id = samples::push_file(&auditor.node, &models_dir().join(iris.file), iris.options())
        .await
        .unwrap()
        .id();
    common::replicate_from_peers(&stranger, "iris", &iris_id).await;
    auditor.node.delete_model("iris", "1").await.unwrap();
    eventually("the referee to hear only the stranger serve iris", || {
        referee
            .node
            .network_models()
            .get(&iris_id.to_string())
            .is_some_and(|m| m.providers == [stranger.node.peer_id()].into())
    })
    .await;
    let mut input = vouch_types::TensorMap::new();
    input.insert(
        "float_input",
        vouch_types::Tensor::from_f32(vec![1, 4], &[5.1, 3.5, 1.4, 0.2]).unwrap(),
    );
    let request = vouch_api::InferRequest {
        inputs: vouch_api::from_map(input),
        nonce: None,
        verify: None,
    };
    let served = referee.client.infer("iris", None, &request).await.unwrap();
    let executed = served.executed_by.unwrap();
    assert_eq!(executed.operator, stranger.node.public_key());
    assert_eq!(executed.admitted, Some(false), "the answer says so");
    // The same vote widens LLM audits' tolerance, which every node
    // applies (the engine's 0.02 until then).
    assert_eq!(referee.node.service().llm_tolerance(), Some(0.02));
    let close = TxBody::Propose {
        changes: vec![
            ("open_admission".into(), 0),
            ("llm_tolerance_ppm".into(), 30_000),
        ],
        spends: vec![],
        releases: vec![],
    };
    pass(&auditor, [&auditor, &liar], close).await;
    eventually("admission to close on the referee's ledger", || {
        referee
            .node
            .chain()
            .unwrap()
            .read(|l| l.params().open_admission == 0)
    })
    .await;
    for n in [&auditor, &liar, &referee] {
        eventually("the LLM tolerance to follow the vote", || {
            n.node.service().llm_tolerance() == Some(0.03)
        })
        .await;
    }
    let refused = referee.client.infer("iris", None, &request).await;
    assert!(
        refused.is_err(),
        "an unstaked operator served with admission closed: {:?}",
        refused.map(|r| r.executed_by)
    );
    stranger.stop().await;

    // A vote that allows only another release retires the one these nodes
    // run: a node without the model no longer routes to its peers, and
    // each says so in /healthz.
    auditor.node.delete_model("magika", "1").await.unwrap();
    auditor
        .node
        .route("magika", None, magika_input(), None, Default::default())
        .await
        .expect("routed to a peer while the release is allowed");
    let elsewhere = TxBody::Propose {
        changes: vec![],
        spends: vec![],
        releases: vec![("99.0.0".into(), [0; 32], true)],
    };
    pass(&auditor, [&auditor, &liar], elsewhere).await;
    let mine = vouch_node::network::SOFTWARE;
    for n in [&auditor, &liar, &referee] {
        eventually("the release to be retired on every node", || {
            !n.node.release_allowed(mine)
        })
        .await;
        let health: serde_json::Value = reqwest::get(format!("{}/healthz", n.url))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["release_allowed"], false, "{health}");
        let m = metrics(n.url.clone()).await;
        assert!(m.contains("\nvouch_release_allowed 0\n"), "{m}");
    }
    let refused = auditor
        .node
        .route("magika", None, magika_input(), None, Default::default())
        .await;
    assert!(refused.is_err(), "routed to a peer on a retired release");
    for n in [auditor, liar, referee] {
        n.stop().await;
    }
}

/// `proposer` proposes `body`, and `voters`, two thirds of the stake (a
/// third is not a quorum), vote yes at once.
async fn pass(proposer: &TestNode, voters: [&TestNode; 2], body: TxBody) {
    proposer.node.submit_own(body).await.unwrap();
    let id = proposer
        .node
        .chain()
        .unwrap()
        .read(|l| l.proposals().len() as u64 - 1);
    let vote = TxBody::Vote {
        proposal: id,
        yes: true,
    };
    let (a, b) = tokio::join!(
        voters[0].node.submit_own(vote.clone()),
        voters[1].node.submit_own(vote.clone())
    );
    a.unwrap();
    b.unwrap();
}

/// Two staked operators frame an honest executor: from its public receipt
/// and trace entry they build a dispute whose "auditor" computed another
/// leaf and whose "referee" (the draw's pick, since it is one of the
/// operators the draw can pick) agrees, and submit it; the ledger convicts
/// and takes the executor's stake. The executor's node judges its own
/// answer right and appeals; the panel the next block draws (the two
/// operators that are no party) fetch the inputs from it, re-run the step,
/// and overturn the conviction: the executor's stake comes back with the
/// framers' slashed stake as its reward, on every validator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_framed_executor_appeals_and_the_panel_overturns_its_conviction() {
    use vouch_types::dispute::Party;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    // Three honest operators run the nodes and validate; two framers have
    // half their stake (so they do not validate, with max_validators 3)
    // and run nothing.
    let keys: Vec<SecretKey> = (0..5u8)
        .map(|i| SecretKey::from_bytes(&[40 + i; 32]))
        .collect();
    for (dir, key) in dirs.iter().zip(&keys) {
        std::fs::write(dir.path().join("operator.key"), hex::encode(key.to_bytes())).unwrap();
    }
    let operators: Vec<_> = keys.iter().map(SecretKey::public).collect();
    let (ka, kr) = (&keys[3], &keys[4]);
    let genesis = Genesis {
        chain_id: "appeal-test".into(),
        params: Params {
            max_validators: 3,
            ..Params::default()
        },
        accounts: operators.iter().map(|k| (*k, FUNDS)).collect(),
        operators: operators
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, if i < 3 { STAKE } else { STAKE / 2 }, Offer::default()))
            .collect(),
    };
    let ports = vouch_node::ledger::local_ports(3).unwrap();
    let executor = validator(dirs[0].path(), &genesis, (&ports, 0), |_| {}, vec![]).await;
    let p1 = validator(
        dirs[1].path(),
        &genesis,
        (&ports, 1),
        |_| {},
        addresses(&executor),
    )
    .await;
    let p2 = validator(
        dirs[2].path(),
        &genesis,
        (&ports, 2),
        |_| {},
        addresses(&executor),
    )
    .await;
    let nodes = [&executor, &p1, &p2];
    let iris = samples::SAMPLES.iter().find(|s| s.name == "iris").unwrap();
    let id = samples::push_file(
        &executor.node,
        &models_dir().join(iris.file),
        iris.options(),
    )
    .await
    .unwrap()
    .id();
    for n in [&p1, &p2] {
        common::replicate_from_peers(n, "iris", &id).await;
    }
    let mut input = vouch_types::TensorMap::new();
    input.insert(
        "float_input",
        vouch_types::Tensor::from_f32(vec![1, 4], &[5.1, 3.5, 1.4, 0.2]).unwrap(),
    );
    let honest = executor
        .node
        .route("iris", None, input, None, Default::default())
        .await
        .unwrap()
        .receipt;
    assert_eq!(honest.body.node, operators[0]);
    let entry = executor.client.trace_entry(&honest.id, 0).await.unwrap();

    // The frame: the honest trace with another leaf 0 under the framing
    // auditor's receipt, and the framing referee's verdict for that leaf.
    let dispute = framed_dispute(&honest, &entry, ka, kr);
    assert_eq!(dispute.check(None), Ok(Party::Executor));

    // Submitted by the framing auditor once the receipt's beacon block is
    // there: the ledger convicts.
    let chain = executor.node.chain().unwrap().clone();
    eventually("the receipt's beacon block", || {
        chain.read(|l| l.beacon_after(honest.body.timestamp_ms).is_ok())
    })
    .await;
    let tx = chain.read(|l| {
        vouch_node::ledger::Tx::sign(
            l.chain_id(),
            ka,
            l.account(&ka.public()).nonce,
            TxBody::Dispute {
                record: serde_json::to_vec(&dispute).unwrap(),
            },
        )
    });
    let tx_id = chain.submit(tx.encode()).unwrap();
    eventually("the framed dispute to be applied", || {
        chain.outcome(&tx_id).is_some()
    })
    .await;
    let (_, outcome) = chain.outcome(&tx_id).unwrap();
    assert!(outcome.is_ok(), "{outcome:?}");

    // The executor appeals, the panel overturns, on every validator.
    let slash = STAKE / 10;
    for n in nodes {
        let chain = n.node.chain().unwrap().clone();
        eventually("the appeal decided", || {
            chain.read(|l| !l.rulings().is_empty())
        })
        .await;
        chain.read(|l| {
            assert_eq!(
                l.rulings()[0],
                (honest.id, vouch_node::ledger::appeal::Ruling::Overturned)
            );
            let e = &l.operators()[&operators[0]];
            assert_eq!((e.stake, e.slashed), (STAKE, 0));
            for framer in [3, 4] {
                assert_eq!(l.operators()[&operators[framer]].slashed, slash / 2);
            }
            // Half of each framer's slashed stake to the executor.
            assert_eq!(l.account(&operators[0]).balance, FUNDS + slash / 2);
            assert_eq!(l.supply() + l.burned(), 5 * FUNDS + 3 * STAKE + STAKE);
        });
    }
    for n in [executor, p1, p2] {
        n.stop().await;
    }
}
