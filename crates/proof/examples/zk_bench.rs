//! What proving costs: for the MNIST MLP and CNNs that `scripts/mnist-models`
//! trains, the circuit's size, the time to derive its keys, to prove and to
//! verify, and the proof's size; and how the circuit's answers compare with
//! the float model's (tract) on the 2,000 held-out images.
//!
//!   VOUCH_MODELS=~/.cache/vouch/models cargo run -p vouch-proof --example zk_bench [RUNS [MODEL]]
//!
//! RUNS 0 measures the circuit's size and accuracy only (no keys, no proofs).
//! VOUCH_WEIGHT_BITS and VOUCH_ACTIVATION_BITS set the circuit's precision.
//!
//! Prints one JSON object per model. Built with the workspace's dev profile
//! (dependencies and this crate at opt-level 3, `-C target-cpu=native`);
//! nova-snark proves on every core (rayon).

use std::time::Instant;

use vouch_engine::Engine as _;
use vouch_proof::circuit::{Circuit, Layer, Options};
use vouch_proof::snark::{Keys, prove, verify};
use vouch_types::tensor::{Tensor, TensorMap};

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

fn argmax(v: &[f64]) -> usize {
    (0..v.len()).fold(0, |m, i| if v[i] > v[m] { i } else { m })
}

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let dir = std::path::PathBuf::from(std::env::var("VOUCH_MODELS").expect("set VOUCH_MODELS"));
    let test = std::fs::read(dir.join("mnist-test.u8")).expect("run scripts/mnist-models");
    let images: Vec<(usize, Vec<f32>)> = test
        .chunks_exact(785)
        .map(|c| {
            (
                c[0] as usize,
                c[1..].iter().map(|&p| p as f32 / 255.0).collect(),
            )
        })
        .collect();
    let only = std::env::args().nth(2);
    // Precision: VOUCH_WEIGHT_BITS and VOUCH_ACTIVATION_BITS (defaults 16, 24).
    let bits = |var: &str, default: u32| {
        std::env::var(var).map_or(default, |v| v.parse().expect("a number of bits"))
    };
    let options = Options {
        input_range: 1.0,
        weight_bits: bits("VOUCH_WEIGHT_BITS", vouch_proof::circuit::WEIGHT_BITS),
        activation_bits: bits(
            "VOUCH_ACTIVATION_BITS",
            vouch_proof::circuit::ACTIVATION_BITS,
        ),
    };
    for (name, shape) in [
        ("mnist-mlp", vec![1u64, 784]),
        ("mnist-cnn", vec![1, 1, 28, 28]),
        ("mnist-cnn-wide", vec![1, 1, 28, 28]),
    ] {
        if only.as_deref().is_some_and(|m| m != name) {
            continue;
        }
        let bytes = std::fs::read(dir.join(format!("{name}.onnx"))).unwrap();
        let t = Instant::now();
        let circuit = Circuit::compile(&bytes, &options).unwrap();
        let compile_s = t.elapsed().as_secs_f64();
        let parameters: usize = circuit
            .layers
            .iter()
            .map(|l| match l {
                Layer::Dense { weights, bias, .. } | Layer::Conv { weights, bias, .. } => {
                    weights.len() + bias.len()
                }
                _ => 0,
            })
            .sum();
        let zero = circuit.synthesize(&vec![0; circuit.input_len()]).unwrap();
        // RUNS 0: the circuit's size and accuracy only, no keys or proofs.
        let t = Instant::now();
        let keys = (runs > 0).then(|| Keys::setup(&circuit).unwrap());
        let keys_s = t.elapsed().as_secs_f64();

        let (mut prove_s, mut verify_ms, mut size) = (Vec::new(), Vec::new(), 0);
        if let Some(keys) = &keys {
            let vk = keys.verifying_key();
            for (_, pixels) in images.iter().take(runs) {
                let x = circuit.quantize_input(pixels).unwrap();
                let t = Instant::now();
                let proof = prove(keys, &circuit, &x).unwrap();
                prove_s.push(t.elapsed().as_secs_f64());
                size = proof.snark.len();
                for _ in 0..5 {
                    let t = Instant::now();
                    verify(vk, &x, &proof).unwrap();
                    verify_ms.push(t.elapsed().as_secs_f64() * 1e3);
                }
            }
        }

        let engine = vouch_engine::onnx::OnnxEngine::default();
        let model = engine.load(&bytes, &Default::default()).unwrap();
        let (mut agree, mut right_float, mut right_circuit, mut worst) = (0, 0, 0, 0f64);
        let t = Instant::now();
        for (label, pixels) in &images {
            let mut inputs = TensorMap::new();
            inputs.insert("input", Tensor::from_f32(shape.clone(), pixels).unwrap());
            let float = model
                .run(&inputs, false)
                .unwrap()
                .outputs
                .get("logits")
                .unwrap()
                .to_f64_vec();
            let ours: Vec<f64> = circuit
                .dequantize(
                    &circuit
                        .evaluate(&circuit.quantize_input(pixels).unwrap())
                        .unwrap(),
                )
                .iter()
                .map(|&v| v as f64)
                .collect();
            worst = ours
                .iter()
                .zip(&float)
                .fold(worst, |w, (a, b)| w.max((a - b).abs()));
            agree += usize::from(argmax(&ours) == argmax(&float));
            right_float += usize::from(argmax(&float) == *label);
            right_circuit += usize::from(argmax(&ours) == *label);
        }
        let eval_ms = t.elapsed().as_secs_f64() * 1e3 / images.len() as f64;
        let n = images.len() as f64;
        println!(
            "{}",
            serde_json::json!({
                "model": name,
                "parameters": parameters,
                "constraints": zero.constraints.len(),
                "nonzeros": zero.nonzeros(),
                "variables": zero.aux.len() + zero.inputs.len() + zero.outputs.len(),
                "circuit_bytes": circuit.encode().len(),
                "compile_s": compile_s,
                "keys_s": keys_s,
                "prove_s_median": median(prove_s.clone()),
                "prove_s": prove_s,
                "verify_ms_median": median(verify_ms),
                "proof_bytes": size,
                "images": images.len(),
                "argmax_agreement": agree as f64 / n,
                "accuracy_float": right_float as f64 / n,
                "accuracy_circuit": right_circuit as f64 / n,
                "largest_logit_error": worst,
                "error_bound": circuit.error_bound,
                "weight_bits": options.weight_bits,
                "activation_bits": options.activation_bits,
                "float_and_circuit_eval_ms_per_image": eval_ms,
            })
        );
    }
}
