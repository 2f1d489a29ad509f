//! The MNIST MLP that `scripts/mnist-models` trains: compiled to a circuit,
//! run, proved and verified; every tampered part of a proof is rejected;
//! the quantized model agrees with the float model; models outside the
//! covered operators are refused with what is missing; a dispute over a
//! proven answer convicts exactly what the executor signed.

use std::path::PathBuf;

use vouch_proof::ProofError;
use vouch_proof::circuit::{Circuit, Layer, Options};
use vouch_proof::dispute::{DisputeError, ProofDispute};
use vouch_proof::snark::{Keys, VerifyingKey, prove, verify};
use vouch_types::tensor::{Tensor, TensorMap};

fn models() -> PathBuf {
    PathBuf::from(std::env::var("VOUCH_MODELS").expect(
        "VOUCH_MODELS must name the models directory (scripts/fetch-models.sh and scripts/mnist-models fill it)",
    ))
}

/// The MLP's circuit, for pixels in [0, 1].
fn circuit() -> Circuit {
    Circuit::compile(
        &mlp(),
        &Options {
            input_range: 1.0,
            ..Default::default()
        },
    )
    .unwrap()
}

fn mlp() -> Vec<u8> {
    std::fs::read(models().join("mnist-mlp.onnx"))
        .expect("mnist-mlp.onnx: run scripts/mnist-models")
}

/// The CNN's bytes, and its circuit at full precision for pixels in [0, 1].
fn cnn() -> (Vec<u8>, Circuit) {
    let bytes = std::fs::read(models().join("mnist-cnn.onnx"))
        .expect("mnist-cnn.onnx: run scripts/mnist-models");
    let options = Options {
        input_range: 1.0,
        ..Default::default()
    };
    let circuit = Circuit::compile(&bytes, &options).unwrap();
    (bytes, circuit)
}

/// The float model's logits (tract) for one image of `shape`.
fn float_logits(model: &dyn vouch_engine::LoadedModel, shape: &[u64], pixels: &[f32]) -> Vec<f64> {
    let mut inputs = TensorMap::new();
    inputs.insert("input", Tensor::from_f32(shape.to_vec(), pixels).unwrap());
    let out = model.run(&inputs, false).unwrap().outputs;
    out.get("logits").unwrap().to_f64_vec()
}

/// The held-out images: (label, pixels as the model takes them, in [0, 1]).
fn test_set() -> Vec<(u8, Vec<f32>)> {
    let bytes = std::fs::read(models().join("mnist-test.u8"))
        .expect("mnist-test.u8: run scripts/mnist-models");
    assert_eq!(bytes.len() % 785, 0);
    bytes
        .chunks_exact(785)
        .map(|c| (c[0], c[1..].iter().map(|&p| p as f32 / 255.0).collect()))
        .collect()
}

fn argmax(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |best, i| if v[i] > v[best] { i } else { best })
}

#[test]
fn a_proof_verifies_and_every_tampered_part_is_rejected() {
    let circuit = circuit();
    assert_eq!(circuit.input.shape, vec![1, 784]);
    assert_eq!(circuit.output.shape, vec![1, 10]);
    assert!(matches!(
        circuit.layers[..],
        [Layer::Dense { .. }, Layer::Relu { .. }, Layer::Dense { .. }]
    ));
    let keys = Keys::setup(&circuit).unwrap();
    let images = test_set();
    let x = circuit.quantize_input(&images[0].1).unwrap();
    let proof = prove(&keys, &circuit, &x).unwrap();
    let vk = keys.verifying_key();
    verify(vk, &x, &proof).unwrap();
    // The stated outputs are the circuit's.
    assert_eq!(proof.outputs, circuit.synthesize(&x).unwrap().outputs);

    // Another output.
    let mut bad = proof.clone();
    bad.outputs[3] += 1;
    assert!(matches!(verify(vk, &x, &bad), Err(ProofError::Invalid(_))));
    // Another input.
    let mut other = x.clone();
    other[400] += 1;
    assert!(matches!(
        verify(vk, &other, &proof),
        Err(ProofError::Invalid(_))
    ));
    // Each byte of the proof, one after another, in a spread of positions.
    for i in (0..proof.snark.len()).step_by(proof.snark.len() / 24) {
        let mut bad = proof.clone();
        bad.snark[i] ^= 1;
        assert!(
            verify(vk, &x, &bad).is_err(),
            "a proof with byte {i} flipped verified"
        );
    }
    let mut cut = proof.clone();
    cut.snark.truncate(cut.snark.len() - 1);
    assert!(verify(vk, &x, &cut).is_err());
    // Another model: one weight changed gives another circuit, whose key
    // rejects this proof.
    let mut changed = circuit.clone();
    if let Layer::Dense { weights, .. } = &mut changed.layers[2] {
        weights[5] += 1;
    }
    let other_keys = Keys::setup(&changed).unwrap();
    assert!(matches!(
        verify(other_keys.verifying_key(), &x, &proof),
        Err(ProofError::Invalid(_))
    ));
    // The proof of the changed model states its own outputs and verifies
    // under its own key only.
    let theirs = prove(&other_keys, &changed, &x).unwrap();
    verify(other_keys.verifying_key(), &x, &theirs).unwrap();
    assert!(verify(vk, &x, &theirs).is_err());
    // A proof of one image does not verify for another.
    let y = circuit.quantize_input(&images[1].1).unwrap();
    assert!(verify(vk, &y, &proof).is_err());
}

#[test]
fn the_circuit_agrees_with_the_float_model_and_its_error_bound_holds() {
    let bytes = mlp();
    let circuit = circuit();
    let engine = vouch_engine::onnx::OnnxEngine::default();
    let model = vouch_engine::Engine::load(&engine, &bytes, &Default::default()).unwrap();
    let images = test_set();
    assert_eq!(images.len(), 2000);
    let (mut agree, mut right_float, mut right_circuit, mut worst) = (0, 0, 0, 0f64);
    for (label, pixels) in &images {
        let float = float_logits(&*model, &[1, 784], pixels);
        let x = circuit.quantize_input(pixels).unwrap();
        let ours = circuit.dequantize(&circuit.synthesize(&x).unwrap().outputs);
        let float32: Vec<f32> = float.iter().map(|&v| v as f32).collect();
        for (a, b) in ours.iter().zip(&float) {
            worst = worst.max((*a as f64 - b).abs());
        }
        agree += usize::from(argmax(&ours) == argmax(&float32));
        right_float += usize::from(argmax(&float32) == *label as usize);
        right_circuit += usize::from(argmax(&ours) == *label as usize);
    }
    let n = images.len() as f64;
    eprintln!(
        "argmax agreement {:.4}, accuracy float {:.4} circuit {:.4}, largest logit error {worst:.3e} (bound {:.3e})",
        agree as f64 / n,
        right_float as f64 / n,
        right_circuit as f64 / n,
        circuit.error_bound
    );
    assert!(agree as f64 / n >= 0.995, "agreement {agree} of {n}");
    assert!(right_float.abs_diff(right_circuit) as f64 / n <= 0.005);
    // The stated bound holds (it also covers the float model's own float32
    // rounding, which it leaves out, many times over here).
    assert!(
        worst <= circuit.error_bound,
        "{worst} > {}",
        circuit.error_bound
    );
    assert!(
        circuit.error_bound < 0.5,
        "a loose bound: {}",
        circuit.error_bound
    );
}

#[test]
fn inputs_outside_the_circuit_are_refused_with_what_to_change() {
    let circuit = circuit();
    let e = circuit.quantize_input(&[0.0; 783]).unwrap_err().to_string();
    assert!(
        e.contains("needs 784 values") && e.contains("got 783"),
        "{e}"
    );
    let mut x = vec![0.0; 784];
    x[7] = f32::NAN;
    let e = circuit.quantize_input(&x).unwrap_err().to_string();
    assert!(e.contains("element 7") && e.contains("finite"), "{e}");
    x[7] = 1e6;
    let e = circuit.quantize_input(&x).unwrap_err().to_string();
    assert!(e.contains("within ±1"), "{e}");
}

#[test]
fn models_outside_the_covered_operators_are_refused_with_the_missing_ones() {
    let iris = std::fs::read(models().join("iris.onnx")).unwrap();
    let e = Circuit::from_onnx(&iris).unwrap_err();
    let ProofError::Unsupported(text) = &e else {
        panic!("{e:?}")
    };
    assert!(text.contains("LinearClassifier"), "{text}");
    assert!(text.contains("covered: Gemm, MatMul"), "{text}");
    let vad = std::fs::read(models().join("silero-vad.onnx")).unwrap();
    let e = Circuit::from_onnx(&vad).unwrap_err().to_string();
    assert!(e.contains("operators a proof does not cover"), "{e}");
    assert!(Circuit::from_onnx(b"not a model").is_err());
}

#[test]
fn a_circuit_reads_back_as_written() {
    let circuit = circuit();
    let bytes = circuit.encode();
    assert_eq!(Circuit::decode(&bytes).unwrap(), circuit);
    assert_eq!(
        self::circuit().encode(),
        bytes,
        "compiling is deterministic"
    );
    assert!(Circuit::decode(&bytes[..bytes.len() - 2]).is_err());
    // A circuit from elsewhere that could not run is refused, not run.
    let hostile = |change: &dyn Fn(&mut Circuit)| {
        let mut c = circuit.clone();
        change(&mut c);
        Circuit::decode(&c.encode()).unwrap_err().to_string()
    };
    let e = hostile(&|c| {
        if let Layer::Dense { weights, .. } = &mut c.layers[0] {
            weights.pop();
        }
    });
    assert!(
        e.contains("not a valid circuit") && e.contains("dense layer"),
        "{e}"
    );
    let e = hostile(&|c| {
        for layer in &mut c.layers {
            match layer {
                Layer::Dense { weights, .. } => weights.iter_mut().for_each(|w| *w = i64::MAX),
                Layer::Relu { drop } => *drop = 0,
                _ => {}
            }
        }
    });
    assert!(e.contains("outgrow"), "{e}");
    let e = hostile(&|c| c.output.shape = vec![1, 11]);
    assert!(e.contains("10 outputs"), "{e}");
    let e = hostile(&|c| c.layers.swap(0, 2));
    assert!(e.contains("not a valid circuit"), "{e}");
}

/// A node that lies: it signs a receipt for outputs other than the
/// circuit's and ships them with a proof of the true ones (or the true
/// receipt with a proof of other outputs). Its receipt is well signed and
/// commits to what it ships; only the proof gives it away.
#[test]
fn a_lying_node_is_caught_by_the_proof_alone_and_disputed_on_what_it_signed() {
    use vouch_proof::bundle::{self, Bundle, CIRCUIT_ROLE};
    use vouch_types::{
        Determinism, FileEntry, Kind, Manifest, ModelFormat, ReceiptBody, SecretKey,
    };
    let circuit = circuit();
    let circuit_bytes = circuit.encode();
    let key = SecretKey::from_bytes(&[7; 32]);
    let manifest = Manifest {
        name: "mnist".into(),
        version: "1".into(),
        format: ModelFormat::Onnx,
        files: vec![FileEntry {
            role: CIRCUIT_ROLE.into(),
            digest: bundle::circuit_digest(&circuit_bytes),
            size: circuit_bytes.len() as u64,
        }],
        schema: Default::default(),
        license: String::new(),
        publisher: key.public(),
    };
    let keys = Keys::setup(&circuit).unwrap();
    let pixels = test_set()[0].1.clone();
    let x = circuit.quantize_input(&pixels).unwrap();
    let mut inputs = TensorMap::new();
    inputs.insert("input", Tensor::from_f32(vec![1, 784], &pixels).unwrap());
    let signed = |proof: &vouch_proof::Proof| {
        let outputs = bundle::output_map(&circuit, &proof.outputs);
        let receipt = ReceiptBody {
            version: 1,
            model: manifest.id(),
            request: inputs.digest(Kind::Input),
            output: outputs.digest(Kind::Output),
            trace: bundle::commitment(proof),
            engine: bundle::engine_info(),
            determinism: Determinism::Exact,
            seed: None,
            node: key.public(),
            nonce: String::new(),
            timestamp_ms: 1,
            price: 0,
        }
        .sign(&key);
        let b = Bundle {
            manifest: manifest.encode(),
            circuit: bundle::circuit_digest(&circuit_bytes),
            proof: proof.clone(),
        };
        (receipt, b, outputs)
    };
    // The evidence a client or gateway files against each answer
    // (`vouch_proof::dispute`).
    let dispute = |receipt: &vouch_types::Receipt, b: &Bundle, outputs: &TensorMap| {
        ProofDispute::new(
            receipt.clone(),
            b.clone(),
            circuit_bytes.clone(),
            &inputs,
            outputs,
        )
    };
    let honest = prove(&keys, &circuit, &x).unwrap();
    let (receipt, b, outputs) = signed(&honest);
    vouch_proof::check(&receipt, &b, &circuit_bytes, &inputs, &outputs, None).unwrap();
    let fair = dispute(&receipt, &b, &outputs);
    assert_eq!(fair.check(), Err(DisputeError::Checks));
    // Another logit, raised: the digit the node wants you to see.
    let mut lie = honest.clone();
    lie.outputs[4] += 1 << 40;
    let (receipt, b, outputs) = signed(&lie);
    let e = vouch_proof::check(&receipt, &b, &circuit_bytes, &inputs, &outputs, None).unwrap_err();
    assert!(matches!(e, ProofError::Invalid(_)), "{e}");
    assert!(e.to_string().contains("the proof does not verify"), "{e}");
    let why = dispute(&receipt, &b, &outputs).check().unwrap();
    assert!(why.contains("the proof does not verify"), "{why}");
    // A proof of another image, passed off as this one's.
    let other = circuit.quantize_input(&test_set()[1].1).unwrap();
    let theirs = prove(&keys, &circuit, &other).unwrap();
    let (receipt, b, outputs) = signed(&theirs);
    assert!(vouch_proof::check(&receipt, &b, &circuit_bytes, &inputs, &outputs, None).is_err());
    assert!(dispute(&receipt, &b, &outputs).check().is_ok());
    // The honest proof, with outputs signed that it does not state.
    let (mut receipt, b, _) = signed(&honest);
    let mut shown = bundle::output_map(&circuit, &lie.outputs);
    receipt.body.output = shown.digest(Kind::Output);
    let receipt = receipt.body.sign(&key);
    let why = dispute(&receipt, &b, &shown).check().unwrap();
    assert!(
        why.contains("not what the proof's integer outputs"),
        "{why}"
    );

    // Evidence the executor did not sign convicts no one: each part of an
    // honest answer's record changed.
    let not = |d: ProofDispute| match d.check() {
        Err(DisputeError::NotEvidence(why)) => why,
        other => panic!("{other:?}"),
    };
    let (receipt, b, outputs) = signed(&honest);
    shown.insert("extra", Tensor::from_f32(vec![1], &[0.0]).unwrap());
    assert!(not(dispute(&receipt, &b, &shown)).contains("the outputs"));
    let mut forged = dispute(&receipt, &b, &outputs);
    forged.bundle.proof = lie.clone();
    assert!(not(forged).contains("commits to another proof"));
    let mut forged = dispute(&receipt, &b, &outputs);
    forged.inputs = {
        let mut other = TensorMap::new();
        other.insert(
            "input",
            Tensor::from_f32(vec![1, 784], &test_set()[1].1).unwrap(),
        );
        other.encode()
    };
    assert!(not(forged).contains("the inputs"));
    let mut forged = dispute(&receipt, &b, &outputs);
    forged.circuit = Circuit::compile(
        &mlp(),
        &Options {
            input_range: 2.0,
            ..Default::default()
        },
    )
    .unwrap()
    .encode();
    assert!(not(forged).contains("the model's manifest names"));
    let mut forged = dispute(&receipt, &b, &outputs);
    forged.receipt.body.timestamp_ms += 1;
    assert!(not(forged).contains("the receipt"));
    // A proof of another engine version is not judged by this one.
    let mut body = receipt.body.clone();
    body.engine.version = "circuit-1+spartan-nova-snark-0.75".into();
    let old = dispute(&body.sign(&key), &b, &outputs);
    assert!(not(old).contains("judges vouch-proof"));
    // The record travels as JSON, as a ledger transaction carries it.
    let json = serde_json::to_vec(&fair).unwrap();
    assert_eq!(serde_json::from_slice::<ProofDispute>(&json).unwrap(), fair);
}

/// A node files a failing proof only where the ledger would judge it:
/// answers of this engine version, over circuits of at most
/// `MAX_JUDGED_CONSTRAINTS` (the MLP is within it, the CNN is not).
#[test]
fn only_disputes_the_ledger_would_judge_are_judgeable() {
    use vouch_proof::dispute::{MAX_JUDGED_CONSTRAINTS, judgeable};
    let ours = vouch_proof::bundle::engine_info();
    assert_eq!(judgeable(&ours, &circuit()), Ok(()));
    let (_, cnn) = cnn();
    assert!(cnn.constraints().unwrap() > MAX_JUDGED_CONSTRAINTS);
    let e = judgeable(&ours, &cnn).unwrap_err();
    assert!(
        e.contains("disputes are judged over circuits of at most"),
        "{e}"
    );
    let mut other = ours.clone();
    other.version.push_str("-other");
    let e = judgeable(&other, &circuit()).unwrap_err();
    assert!(e.contains("this verifier judges"), "{e}");
}

#[test]
fn a_kept_verifying_key_checks_what_a_derived_one_does() {
    let circuit = circuit();
    let keys = Keys::setup(&circuit).unwrap();
    let x = circuit.quantize_input(&test_set()[0].1).unwrap();
    let proof = prove(&keys, &circuit, &x).unwrap();
    let t = std::time::Instant::now();
    let derived = VerifyingKey::derive(&circuit).unwrap();
    let derive_ms = t.elapsed().as_secs_f64() * 1e3;
    let bytes = derived.to_bytes();
    let t = std::time::Instant::now();
    let kept = VerifyingKey::from_bytes(&bytes).unwrap();
    let read_ms = t.elapsed().as_secs_f64() * 1e3;
    let t = std::time::Instant::now();
    verify(&kept, &x, &proof).unwrap();
    let verify_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "verifying key: derived in {derive_ms:.1} ms, {} bytes, read back in {read_ms:.1} ms; verified in {verify_ms:.1} ms",
        bytes.len()
    );
    // What it rejects, it rejects as the derived key does.
    let mut bad = proof.clone();
    bad.outputs[0] += 1;
    assert!(verify(&kept, &x, &bad).is_err());
    // Bytes that are not a key, or a key cut short, are refused, not
    // misread.
    assert!(matches!(
        VerifyingKey::from_bytes(b"not a key"),
        Err(ProofError::Model(_))
    ));
    assert!(VerifyingKey::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(VerifyingKey::from_bytes(&longer).is_err());
    // The generators are kept uncompressed, the last one last: one that is
    // not a point of the curve is refused.
    let mut moved = bytes.clone();
    let y = moved.len() - 32;
    moved[y] ^= 1;
    let Err(ProofError::Model(e)) = VerifyingKey::from_bytes(&moved) else {
        panic!("a generator off the curve was read");
    };
    assert!(e.contains("does not decode"), "{e}");
    // A count of generators (the field before them) that no file holds is
    // refused, not computed with.
    let head = bytes
        .windows(12)
        .rposition(|w| w == b"PEDERSEN_KEY")
        .unwrap();
    for count in [1u64 << 60, 1 << 63, 2048] {
        let mut claimed = bytes.clone();
        claimed[head - 8..head].copy_from_slice(&count.to_le_bytes());
        let Err(ProofError::Model(e)) = VerifyingKey::from_bytes(&claimed) else {
            panic!("a key claiming {count} generators was read");
        };
        assert!(e.contains("do not hold"), "{e}");
    }
}

#[test]
fn a_pool_moved_before_its_relu_gives_the_same_integers_for_fewer_constraints() {
    let (_, circuit) = cnn();
    let order: Vec<&str> = circuit.layers.iter().map(Layer::kind).collect();
    assert_eq!(
        order,
        [
            "conv", "maxpool", "relu", "conv", "maxpool", "relu", "dense"
        ]
    );
    // The model's own order: each Relu before its pool.
    let mut as_written = circuit.clone();
    as_written.layers.swap(1, 2);
    as_written.layers.swap(4, 5);
    let (mut ours, mut theirs) = (0, 0);
    for (_, pixels) in test_set().iter().take(40) {
        let x = circuit.quantize_input(pixels).unwrap();
        let a = circuit.synthesize(&x).unwrap();
        let b = as_written.synthesize(&x).unwrap();
        assert_eq!(a.outputs, b.outputs);
        assert_eq!(a.unsatisfied(), None);
        (ours, theirs) = (a.constraints.len(), b.constraints.len());
    }
    eprintln!("constraints: {ours} pooled first, {theirs} as written");
    assert!(ours * 3 < theirs * 2, "{ours} against {theirs}");
}

#[test]
fn fewer_bits_make_a_smaller_circuit_within_its_stated_bound() {
    let (cnn, full) = cnn();
    let options = Options {
        input_range: 1.0,
        weight_bits: 10,
        activation_bits: 15,
    };
    let compact = Circuit::compile(&cnn, &options).unwrap();
    assert_eq!(compact.options(), options);
    let size = |c: &Circuit| {
        c.synthesize(&vec![0; c.input_len()])
            .unwrap()
            .constraints
            .len()
    };
    // Under 2^18: Spartan's padded size, and so its time, halves.
    assert!(size(&compact) < 1 << 18, "{}", size(&compact));
    assert!(size(&full) > 1 << 18);
    assert!(compact.error_bound > full.error_bound);
    let engine = vouch_engine::onnx::OnnxEngine::default();
    let model = vouch_engine::Engine::load(&engine, &cnn, &Default::default()).unwrap();
    let (mut agree, mut worst) = (0, 0f64);
    let images = test_set();
    for (_, pixels) in images.iter().take(200) {
        let float = float_logits(&*model, &[1, 1, 28, 28], pixels);
        let ours = compact.dequantize(
            &compact
                .evaluate(&compact.quantize_input(pixels).unwrap())
                .unwrap(),
        );
        for (a, b) in ours.iter().zip(&float) {
            worst = worst.max((*a as f64 - b).abs());
        }
        let float32: Vec<f32> = float.iter().map(|&v| v as f32).collect();
        agree += usize::from(argmax(&ours) == argmax(&float32));
    }
    assert!(agree >= 199, "argmax agreement {agree} of 200");
    assert!(
        worst <= compact.error_bound,
        "{worst} > {}",
        compact.error_bound
    );
    // A circuit file from before the choice existed reads as the defaults.
    let mut old: serde_json::Value = serde_json::from_slice(&full.encode()).unwrap();
    let fields = old.as_object_mut().unwrap();
    fields.remove("weight_bits");
    fields.remove("activation_bits");
    let read = Circuit::decode(&serde_json::to_vec(&old).unwrap()).unwrap();
    assert_eq!(read, full);
    // A version 1 file (another constraint system for the same layers) is
    // refused, not proved or checked under this one.
    old["version"] = 1.into();
    let err = Circuit::decode(&serde_json::to_vec(&old).unwrap()).unwrap_err();
    assert!(
        err.to_string()
            .contains("circuit version 1 (this code knows 2)"),
        "{err}"
    );
    // Out of range: refused with what to give.
    let few = Options {
        activation_bits: 7,
        ..options
    };
    let err = Circuit::compile(&cnn, &few).unwrap_err().to_string();
    assert!(err.contains("7 activation bits: give 8 to 24"), "{err}");
}
