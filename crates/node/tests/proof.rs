//! Proven answers through real nodes: a provable model replicated to a
//! second node on a libp2p network; an answer proved over HTTP and checked
//! with the circuit file the manifest names; an auditor re-running the
//! circuit; inputs a circuit does not take refused with what to change; a
//! gateway that catches a provider's failing proof and files it on the
//! ledger, which slashes the provider.

mod common;

use common::{TestNode, addresses, admit_all, eventually, models_dir, replicate_from_peers};
use vouch_api::{InferRequest, JsonTensor};
use vouch_client::{ClientError, PushParams};
use vouch_node::audit::AuditOutcome;
use vouch_node::{NodeConfig, P2pConfig};
use vouch_types::{SecretKey, Tensor, TensorMap};

async fn networked(dir: &std::path::Path, bootstrap: Vec<vouch_node::p2p::Address>) -> TestNode {
    networked_with(dir, bootstrap, |_| {}).await
}

/// A node with no sampled audits, `tune`d, joined through `bootstrap`.
async fn networked_with(
    dir: &std::path::Path,
    bootstrap: Vec<vouch_node::p2p::Address>,
    tune: impl FnOnce(&mut NodeConfig),
) -> TestNode {
    let mut config = NodeConfig::new(dir.to_path_buf());
    config.audit_rate = 0.0;
    tune(&mut config);
    let t = TestNode::start(config).await;
    t.node
        .join(P2pConfig::loopback(bootstrap), Some(t.url.clone()))
        .await
        .unwrap();
    t
}

/// Held-out image `i` of `scripts/mnist-models`, pixels in [0, 1].
fn image(i: usize) -> Vec<f32> {
    let bytes = std::fs::read(models_dir().join("mnist-test.u8"))
        .expect("mnist-test.u8 missing: run scripts/mnist-models");
    bytes[i * 785 + 1..(i + 1) * 785]
        .iter()
        .map(|&p| p as f32 / 255.0)
        .collect()
}

fn request(pixels: &[f32], shape: Vec<u64>, verify: &str) -> InferRequest {
    let mut inputs = std::collections::BTreeMap::new();
    inputs.insert(
        "input".to_string(),
        JsonTensor(Tensor::from_f32(shape, pixels).unwrap()),
    );
    InferRequest {
        inputs,
        nonce: Some("proof-test".into()),
        verify: Some(verify.into()),
    }
}

/// Pushes the MNIST MLP to `t` as `mnist`, provable for pixels in [0, 1].
async fn push_mnist(t: &TestNode) -> vouch_api::ModelInfo {
    t.client
        .push_file(
            &models_dir().join("mnist-mlp.onnx"),
            &PushParams {
                name: "mnist".into(),
                provable: Some(1.0),
                ..Default::default()
            },
        )
        .await
        .unwrap()
}

fn api_error<T: std::fmt::Debug>(r: Result<T, ClientError>) -> (u16, String) {
    match r {
        Err(ClientError::Api {
            status, message, ..
        }) => (status, message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proven_answer_checks_with_the_circuit_and_an_auditor_reruns_it() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = networked(da.path(), vec![]).await;
    let info = push_mnist(&a).await;
    let b = networked(db.path(), addresses(&a)).await;
    admit_all(&[&a, &b]);
    replicate_from_peers(&b, "mnist", &info.id).await;

    // Proved at A, checked here with the circuit fetched by its digest.
    let pixels = image(0);
    let answer = a
        .client
        .infer("mnist", None, &request(&pixels, vec![1, 784], "proof"))
        .await
        .unwrap();
    let bundle = answer.proof.clone().expect("a proof");
    assert_eq!(answer.receipt.body.engine.name, "vouch-proof");
    let circuit = a.client.blob(&bundle.circuit).await.unwrap();
    let mut inputs = TensorMap::new();
    inputs.insert("input", Tensor::from_f32(vec![1, 784], &pixels).unwrap());
    let outputs = vouch_api::to_map(answer.outputs.clone());
    let checked =
        vouch_proof::check(&answer.receipt, &bundle, &circuit, &inputs, &outputs, None).unwrap();
    assert_eq!(checked.manifest.name, "mnist");
    // B proves the same answer from its replica: same circuit, same outputs.
    let again = b
        .client
        .infer("mnist", None, &request(&pixels, vec![1, 784], "proof"))
        .await
        .unwrap();
    assert_eq!(again.outputs, answer.outputs);
    assert_eq!(again.proof.unwrap().circuit, bundle.circuit);
    // The float model (tract) answers the plain request with the same argmax.
    let plain = a
        .client
        .infer("mnist", None, &request(&pixels, vec![1, 784], "receipt"))
        .await
        .unwrap();
    assert_eq!(plain.receipt.body.engine.name, "tract-onnx");
    let argmax = |o: &vouch_api::JsonTensors| {
        let v = o["logits"].0.to_f64_vec();
        (0..v.len()).fold(0, |m, i| if v[i] > v[m] { i } else { m })
    };
    assert_eq!(argmax(&plain.outputs), argmax(&answer.outputs));

    // A keeps the proof: fetched later by the receipt's id, it is the one
    // the answer carried.
    assert_eq!(
        a.client.receipt_proof(&answer.receipt.id).await.unwrap(),
        bundle
    );
    let (status, message) = api_error(a.client.receipt_proof(&plain.receipt.id).await);
    assert_eq!(status, 404, "{message}");
    assert!(message.contains("no proof kept"), "{message}");

    // B audits A's proven receipt by re-running the circuit: it passes.
    let outcome = b
        .node
        .audit(answer.receipt.clone(), a.node.peer_id())
        .await
        .unwrap();
    assert!(matches!(outcome, AuditOutcome::Passed(_)), "{outcome:?}");

    // What a circuit does not take, refused with what to change.
    let (status, message) = api_error(
        a.client
            .infer(
                "mnist",
                None,
                &request(&pixels[..392], vec![1, 392], "proof"),
            )
            .await,
    );
    assert_eq!(status, 400, "{message}");
    assert!(
        message.contains("shape [1, 392]") && message.contains("[1, 784]"),
        "{message}"
    );
    let mut bright = pixels.clone();
    bright[300] = 3.0;
    let (status, message) = api_error(
        a.client
            .infer("mnist", None, &request(&bright, vec![1, 784], "proof"))
            .await,
    );
    assert_eq!(status, 400, "{message}");
    assert!(
        message.contains("element 300 is 3") && message.contains("within ±1"),
        "{message}"
    );
    // The same input over the plain path still runs (the float model takes it).
    a.client
        .infer("mnist", None, &request(&bright, vec![1, 784], "receipt"))
        .await
        .unwrap();
    // A model pushed without --provable: a proof names what it lacks.
    common::push_iris(&a).await;
    let mut flowers = std::collections::BTreeMap::new();
    flowers.insert(
        "float_input".to_string(),
        JsonTensor(Tensor::from_f32(vec![1, 4], &[5.1, 3.5, 1.4, 0.2]).unwrap()),
    );
    let asked = InferRequest {
        inputs: flowers,
        nonce: None,
        verify: Some("proof".into()),
    };
    let (status, message) = api_error(a.client.infer("iris", None, &asked).await);
    assert_eq!(status, 422, "{message}");
    assert!(
        message.contains("iris@1 is not provable") && message.contains("LinearClassifier"),
        "{message}"
    );
    let (_, message) = api_error(
        a.client
            .infer("nothing", None, &request(&pixels, vec![1, 784], "proof"))
            .await,
    );
    assert!(
        message.contains("no model `nothing`") && message.contains("on the network"),
        "{message}"
    );
    b.stop().await;
    a.stop().await;
}

/// A gateway without the model routes `verify: "proof"` to a provider and
/// checks the proof before it answers, with the circuit the manifest
/// names (fetched by digest from the model's providers). A provider that
/// signs changed outputs with a proof that does not cover them is caught
/// by the proof alone, marked, and the next provider answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_routes_a_proof_catches_a_provider_whose_proof_fails_and_the_ledger_slashes_it() {
    use vouch_node::ledger::{Genesis, Offer, Params};
    use vouch_node::p2p::{Frame, Request, Response};
    const FUNDS: u64 = 1_000_000;
    const STAKE: u64 = 100_000;
    let (da, dg) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // The provider and the gateway validate one chain; the liar (the raw
    // peer keyed [61; 32] below) is a staked operator with half their
    // stake, so it is admitted but does not validate.
    let (ka, kg) = (
        SecretKey::from_bytes(&[40; 32]),
        SecretKey::from_bytes(&[41; 32]),
    );
    let liar_op = SecretKey::from_bytes(&[61; 32]).public();
    for (dir, key) in [(&da, &ka), (&dg, &kg)] {
        std::fs::write(dir.path().join("operator.key"), hex::encode(key.to_bytes())).unwrap();
    }
    let genesis = Genesis {
        chain_id: "proof-test".into(),
        params: Params {
            max_validators: 2,
            ..Params::default()
        },
        accounts: [ka.public(), kg.public(), liar_op]
            .iter()
            .map(|k| (*k, FUNDS))
            .collect(),
        operators: vec![
            (ka.public(), STAKE, Offer::default()),
            (kg.public(), STAKE, Offer::default()),
            (liar_op, STAKE / 2, Offer::default()),
        ],
    };
    let ports = vouch_node::ledger::local_ports(2).unwrap();
    // The honest provider is expensive, so the gateway asks the liar first.
    let a = common::validator(da.path(), &genesis, (&ports, 0), |c| c.price = 1, vec![]).await;
    let info = push_mnist(&a).await;
    let pixels = image(3);
    let mut inputs = TensorMap::new();
    inputs.insert("input", Tensor::from_f32(vec![1, 784], &pixels).unwrap());
    // Asked of the node itself (over HTTP, it charges).
    let honest = a
        .node
        .route(
            "mnist",
            None,
            inputs.clone(),
            None,
            vouch_node::route::Verify::Proof,
        )
        .await
        .unwrap();
    let bundle = honest.proof.clone().unwrap();
    let circuit =
        vouch_proof::Circuit::decode(&a.client.blob(&bundle.circuit).await.unwrap()).unwrap();

    // The liar: holds the model (passes the gateway's challenge), and
    // answers a proof request with its own receipt over outputs one step
    // off in one logit, the honest proof's outputs changed to match.
    let (liar, mut inbound, key) =
        common::free_provider(&a, 61, ("mnist", info.id, "onnx"), "lying prover").await;
    let (liar_peer, liar_addresses) = (liar.peer_id(), liar.addresses());
    let holding = common::Holding::of(&a, "mnist").await;
    // The receipts of its lies.
    let lies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let told = lies.clone();
    let (honest_body, liar_key) = (honest.receipt.body.clone(), key.clone());
    tokio::spawn(async move {
        let _liar = liar;
        while let Some(req) = inbound.recv().await {
            let Some(req) = holding.serve(req) else {
                continue;
            };
            let Request::Infer {
                nonce, proof: true, ..
            } = &req.request.head
            else {
                continue;
            };
            let mut lie = bundle.clone();
            lie.proof.outputs[3] += 1 << 10;
            let outputs = vouch_proof::bundle::output_map(&circuit, &lie.proof.outputs);
            let mut body = honest_body.clone();
            body.node = liar_key.public();
            body.nonce = nonce.clone();
            body.timestamp_ms = vouch_node::service::now_ms();
            body.output = outputs.digest(vouch_types::Kind::Output);
            body.trace = vouch_proof::bundle::commitment(&lie.proof);
            let receipt = body.sign(&liar_key);
            told.lock().unwrap().push(receipt.id);
            let receipt = receipt.to_bytes();
            let lie = serde_json::to_vec(&lie).unwrap();
            let mut answer = (receipt.len() as u32).to_le_bytes().to_vec();
            answer.extend(&receipt);
            answer.extend((lie.len() as u32).to_le_bytes());
            answer.extend(&lie);
            answer.extend(outputs.encode());
            let _ = req.reply.send(Frame {
                head: Response::Ok,
                body: answer,
            });
        }
    });

    assert_eq!(key.public(), liar_op);
    let g = common::validator(
        dg.path(),
        &genesis,
        (&ports, 1),
        |_| {},
        [addresses(&a), liar_addresses].concat(),
    )
    .await;
    // Admission is stake: the liar is admitted with no --admit.
    assert!(g.node.is_admitted(&liar_op));
    // The gateway pays the honest provider from its escrow (the liar
    // asks nothing).
    let (g_chain, a_chain) = (
        g.node.chain().unwrap().clone(),
        a.node.chain().unwrap().clone(),
    );
    let deposit = g_chain.read(|l| {
        vouch_node::ledger::Tx::sign(
            l.chain_id(),
            &kg,
            l.account(&kg.public()).nonce,
            vouch_node::ledger::TxBody::Deposit { amount: 1_000 },
        )
        .encode()
    });
    g_chain.submit(deposit).unwrap();
    eventually("the provider seeing the gateway's deposit", || {
        a_chain.read(|l| l.account(&kg.public()).escrow) == 1_000
    })
    .await;
    common::eventually("both providers announced", || {
        g.node
            .network_models()
            .get(&info.id.to_string())
            .is_some_and(|m| m.providers.len() == 2)
    })
    .await;
    let mut asking = request(&pixels, vec![1, 784], "proof");
    asking.nonce = Some("routed".into());
    let answer = g.client.infer("mnist", None, &asking).await.unwrap();
    assert_eq!(answer.receipt.body.node, a.node.public_key());
    assert_eq!(vouch_api::to_map(answer.outputs.clone()), honest.outputs);
    let routed = answer.proof.clone().expect("the routed answer's proof");
    // The gateway fetched the circuit to check the proof: a client checks
    // it too, with the circuit from the gateway.
    let bytes = g.client.blob(&routed.circuit).await.unwrap();
    vouch_proof::check(
        &answer.receipt,
        &routed,
        &bytes,
        &inputs,
        &vouch_api::to_map(answer.outputs.clone()),
        None,
    )
    .unwrap();
    let lies = lies.lock().unwrap().clone();
    assert!(!lies.is_empty(), "the liar was never asked");
    assert!(
        g.node.peer_records()[&liar_peer].bad_data >= 1,
        "the liar's failing proof was not marked"
    );
    // The gateway filed each failing proof on the ledger
    // (`vouch_proof::ProofDispute`): every validator verified it and
    // slashed the liar for each lie, once, the gateway rewarded with half
    // of what was taken, with no referee and no appeal.
    let (mut stake, mut slashed) = (STAKE / 2, 0);
    for _ in &lies {
        let take = stake / 10;
        (stake, slashed) = (stake - take, slashed + take);
    }
    for n in [&a, &g] {
        let chain = n.node.chain().unwrap().clone();
        eventually("the proof disputes to be applied", || {
            chain.read(|l| lies.iter().all(|r| l.disputed(r)))
        })
        .await;
        chain.read(|l| {
            let liar = &l.operators()[&liar_op];
            assert_eq!((liar.stake, liar.slashed), (stake, slashed));
            assert_eq!(l.account(&kg.public()).balance, FUNDS - 1_000 + slashed / 2);
            assert_eq!(l.operators()[&ka.public()].slashed, 0);
            assert!(lies.iter().all(|r| {
                l.rulings()
                    .contains(&(*r, vouch_node::ledger::appeal::Ruling::Final))
            }));
        });
    }
    g.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_circuit_of_fewer_bits_proves_and_replicas_prove_with_it() {
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = networked(da.path(), vec![]).await;
    let compact = |weight_bits, activation_bits| PushParams {
        name: "mnist-compact".into(),
        provable: Some(1.0),
        weight_bits: Some(weight_bits),
        activation_bits: Some(activation_bits),
        ..Default::default()
    };
    let path = models_dir().join("mnist-mlp.onnx");
    // Out of range, or without provable: refused with what to give.
    let (status, message) = api_error(a.client.push_file(&path, &compact(2, 15)).await);
    assert_eq!(status, 422, "{message}");
    assert!(message.contains("2 weight bits: give 4 to 16"), "{message}");
    let plain = PushParams {
        provable: None,
        ..compact(10, 15)
    };
    let (status, message) = api_error(a.client.push_file(&path, &plain).await);
    assert_eq!(status, 400, "{message}");
    assert!(message.contains("give provable too"), "{message}");

    let info = a.client.push_file(&path, &compact(10, 15)).await.unwrap();
    let b = networked(db.path(), addresses(&a)).await;
    admit_all(&[&a, &b]);
    replicate_from_peers(&b, "mnist-compact", &info.id).await;
    let pixels = image(0);
    let proven = |t: &TestNode| {
        let client = t.client.clone();
        let req = request(&pixels, vec![1, 784], "proof");
        async move { client.infer("mnist-compact", None, &req).await.unwrap() }
    };
    let answer = proven(&a).await;
    let bundle = answer.proof.clone().expect("a proof");
    let circuit = a.client.blob(&bundle.circuit).await.unwrap();
    let parsed = vouch_proof::Circuit::decode(&circuit).unwrap();
    assert_eq!((parsed.weight_bits, parsed.activation_bits), (10, 15));
    let full = vouch_proof::Circuit::compile(
        &std::fs::read(&path).unwrap(),
        &vouch_proof::circuit::Options {
            input_range: 1.0,
            ..Default::default()
        },
    )
    .unwrap();
    let constraints = |c: &vouch_proof::Circuit| {
        c.synthesize(&vec![0; c.input_len()])
            .unwrap()
            .constraints
            .len()
    };
    assert!(constraints(&parsed) < constraints(&full));
    let mut inputs = TensorMap::new();
    inputs.insert("input", Tensor::from_f32(vec![1, 784], &pixels).unwrap());
    let outputs = vouch_api::to_map(answer.outputs.clone());
    vouch_proof::check(&answer.receipt, &bundle, &circuit, &inputs, &outputs, None).unwrap();
    // The replica compiles the model again with the circuit's own options
    // and proves the same answer with the same circuit.
    let again = proven(&b).await;
    assert_eq!(again.outputs, answer.outputs);
    assert_eq!(again.proof.unwrap().circuit, bundle.circuit);
}
