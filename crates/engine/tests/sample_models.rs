//! Loads and runs every sample model through the engine (the product's own
//! loading code). The models come from `scripts/fetch-models.sh`.

use std::path::PathBuf;

use vouch_engine::onnx::OnnxEngine;
use vouch_engine::{Engine, LoadOptions, check_inputs};
use vouch_types::{DType, Dim, Tensor, TensorMap, merkle};

fn models_dir() -> PathBuf {
    let dir = std::env::var_os("VOUCH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| dirs_home().join(".cache/vouch/models"));
    assert!(
        dir.join("iris.onnx").exists(),
        "sample models missing in {}: run scripts/fetch-models.sh",
        dir.display()
    );
    dir
}

fn dirs_home() -> PathBuf {
    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
}

fn load(file: &str, options: LoadOptions) -> std::sync::Arc<dyn vouch_engine::LoadedModel> {
    let bytes = std::fs::read(models_dir().join(file)).unwrap();
    OnnxEngine::new()
        .load(&bytes, &options)
        .unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn run_checked(model: &dyn vouch_engine::LoadedModel, inputs: &TensorMap) -> TensorMap {
    check_inputs(model.schema(), inputs).unwrap();
    let exec = model.run(inputs, true).unwrap();
    assert_eq!(exec.leaves.len(), model.steps().len());
    assert!(!exec.leaves.is_empty());
    // Tracing is deterministic and does not change outputs.
    let again = model.run(inputs, false).unwrap();
    assert_eq!(again.outputs, exec.outputs);
    assert!(again.leaves.is_empty());
    let third = model.run(inputs, true).unwrap();
    assert_eq!(merkle::root(&third.leaves), merkle::root(&exec.leaves));
    exec.outputs
}

#[test]
fn iris_with_shape_override_and_zipmap_output() {
    let mut options = LoadOptions::default();
    options.input_shapes.insert(
        "float_input".into(),
        vec![Dim::Symbol("N".into()), Dim::Fixed(4)],
    );
    let model = load("iris.onnx", options);
    let names: Vec<&str> = model
        .schema()
        .outputs
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["label", "probabilities"]);
    let mut inputs = TensorMap::new();
    inputs.insert(
        "float_input",
        Tensor::from_f32(vec![2, 4], &[5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]).unwrap(),
    );
    let out = run_checked(&*model, &inputs);
    let label = out.get("label").unwrap();
    assert_eq!(label.dtype(), DType::I64);
    assert_eq!(label.to_f64_vec(), [0.0, 2.0]);
    let probs = out.get("probabilities").unwrap();
    assert_eq!(probs.shape(), [2, 3]);
}

/// Iris declares its input as `[3, 2]` (a wrong shape its exporter
/// wrote; the model reads 4 features). It loads as declared, and a request
/// of its real shape is refused with the declared shape and the override
/// that fixes it (the old test asserted a refusal at load only if there
/// was one, and there never was).
#[test]
fn iris_declared_shape_is_refused_at_request_time_with_a_hint() {
    let model = load("iris.onnx", LoadOptions::default());
    let mut inputs = TensorMap::new();
    inputs.insert(
        "float_input",
        Tensor::from_f32(vec![1, 4], &[6.7, 3.0, 5.2, 2.3]).unwrap(),
    );
    let msg = vouch_engine::check_inputs(model.schema(), &inputs)
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("[3, 2]") && msg.contains("--input-shape float_input="),
        "{msg}"
    );
}

#[test]
fn magika_runs() {
    let mut options = LoadOptions::default();
    options
        .input_shapes
        .insert("bytes".into(), vec![Dim::Fixed(1), Dim::Fixed(2048)]);
    let model = load("magika.onnx", options);
    let mut inputs = TensorMap::new();
    let data: Vec<u8> = (0..2048i32)
        .flat_map(|i| (if i < 20 { 65 + i } else { 256 }).to_le_bytes())
        .collect();
    inputs.insert(
        "bytes",
        Tensor::new(DType::I32, vec![1, 2048], data).unwrap(),
    );
    let out = run_checked(&*model, &inputs);
    assert_eq!(out.get("target_label").unwrap().shape(), [1, 214]);
}

#[test]
fn minilm_int8_runs() {
    let model = load("minilm-int8.onnx", LoadOptions::default());
    let ids = [101i64, 7592, 2088, 102];
    let mut inputs = TensorMap::new();
    inputs.insert("input_ids", Tensor::from_i64(vec![1, 4], &ids).unwrap());
    inputs.insert(
        "attention_mask",
        Tensor::from_i64(vec![1, 4], &[1; 4]).unwrap(),
    );
    inputs.insert(
        "token_type_ids",
        Tensor::from_i64(vec![1, 4], &[0; 4]).unwrap(),
    );
    let out = run_checked(&*model, &inputs);
    assert_eq!(out.get("last_hidden_state").unwrap().shape(), [1, 4, 384]);
}

#[test]
fn paraphrase_minilm_runs() {
    let model = load("paraphrase-minilm-l3.onnx", LoadOptions::default());
    let names: Vec<String> = model
        .schema()
        .inputs
        .iter()
        .map(|s| s.name.clone())
        .collect();
    let mut inputs = TensorMap::new();
    for name in &names {
        let v: &[i64] = if name == "input_ids" {
            &[101, 7592, 2088, 102]
        } else if name.contains("mask") {
            &[1; 4]
        } else {
            &[0; 4]
        };
        inputs.insert(name.clone(), Tensor::from_i64(vec![1, 4], v).unwrap());
    }
    run_checked(&*model, &inputs);
}

#[test]
fn silero_runs() {
    let model = load("silero-vad.onnx", LoadOptions::default());
    let mut inputs = TensorMap::new();
    let audio: Vec<f32> = (0..512).map(|i| (i as f32 * 0.05).sin() * 0.3).collect();
    inputs.insert("input", Tensor::from_f32(vec![1, 512], &audio).unwrap());
    inputs.insert("sr", Tensor::from_i64(vec![], &[16000]).unwrap());
    inputs.insert(
        "state",
        Tensor::from_f32(vec![2, 1, 128], &[0.0; 256]).unwrap(),
    );
    let out = run_checked(&*model, &inputs);
    assert_eq!(out.get("output").unwrap().shape(), [1, 1]);
}
