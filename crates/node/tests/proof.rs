//! Proven answers through real nodes: a provable model replicated to a
//! second node on a libp2p network; an answer proved over HTTP and checked
//! with the circuit file the manifest names; an auditor re-running the
//! circuit; inputs a circuit does not take refused with what to change.

mod common;

use common::{TestNode, addresses, admit_all, models_dir, replicate_from_peers};
use vouch_api::{InferRequest, JsonTensor};
use vouch_client::{ClientError, PushParams};
use vouch_node::audit::AuditOutcome;
use vouch_node::{NodeConfig, P2pConfig};
use vouch_types::{Tensor, TensorMap};

async fn networked(dir: &std::path::Path, bootstrap: Vec<vouch_node::p2p::Address>) -> TestNode {
    let mut config = NodeConfig::new(dir.to_path_buf());
    config.audit_rate = 0.0;
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
    let mlp = models_dir().join("mnist-mlp.onnx");
    let info = a
        .client
        .push_file(
            &mlp,
            &PushParams {
                name: "mnist".into(),
                provable: Some(1.0),
                ..Default::default()
            },
        )
        .await
        .unwrap();
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
    let iris = models_dir().join("iris.onnx");
    a.client
        .push_file(
            &iris,
            &PushParams {
                name: "iris".into(),
                input_shapes: vec!["float_input=N,4".into()],
                ..Default::default()
            },
        )
        .await
        .unwrap();
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
        message.contains("a proof is made where the model is served"),
        "{message}"
    );
    b.stop().await;
    a.stop().await;
}
