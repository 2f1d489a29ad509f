//! The inputs each sample ONNX model is timed with: the same ones
//! `scripts/bench_ort.py` gives onnxruntime. Shared by the engine's
//! examples and the node's `node_path` bench (which uses only part).
#![allow(dead_code)]

use vouch_engine::LoadOptions;
use vouch_types::{DType, Dim, Tensor, TensorMap};

/// The sample models, by the names `scripts/bench_ort.py` uses.
pub(crate) const MODELS: &[(&str, &str)] = &[
    ("magika", "magika.onnx"),
    ("minilm-int8", "minilm-int8.onnx"),
    ("paraphrase-minilm-l3", "paraphrase-minilm-l3.onnx"),
    ("silero-vad", "silero-vad.onnx"),
    ("iris", "iris.onnx"),
];

/// The input shapes the node's samples are pushed with where the file's
/// own are wrong or do not plan (`vouch_service::samples`).
pub(crate) fn options(name: &str) -> LoadOptions {
    let mut o = LoadOptions::default();
    match name {
        "magika" => {
            o.input_shapes
                .insert("bytes".into(), vec![Dim::Fixed(1), Dim::Fixed(2048)]);
        }
        "iris" => {
            o.input_shapes.insert(
                "float_input".into(),
                vec![Dim::Symbol("N".into()), Dim::Fixed(4)],
            );
        }
        _ => {}
    }
    o
}

/// Inputs per sample: the same ones `scripts/bench_ort.py` builds.
pub(crate) fn inputs_for(name: &str) -> TensorMap {
    let mut m = TensorMap::new();
    match name {
        "iris" => {
            m.insert(
                "float_input",
                Tensor::from_f32(vec![1, 4], &[5.1, 3.5, 1.4, 0.2]).unwrap(),
            );
        }
        "magika" => {
            let data: Vec<u8> = (0..2048i32)
                .flat_map(|i| ((i * 7) % 257).to_le_bytes())
                .collect();
            m.insert(
                "bytes",
                Tensor::new(DType::I32, vec![1, 2048], data).unwrap(),
            );
        }
        "minilm-int8" | "paraphrase-minilm-l3" => {
            let seq = 128;
            let ids: Vec<i64> = (0..seq)
                .map(|i| {
                    if i == 0 {
                        101
                    } else if i == seq - 1 {
                        102
                    } else {
                        1000 + (i * 37) % 20000
                    }
                })
                .collect();
            m.insert(
                "input_ids",
                Tensor::from_i64(vec![1, seq as u64], &ids).unwrap(),
            );
            m.insert(
                "attention_mask",
                Tensor::from_i64(vec![1, seq as u64], &vec![1; seq as usize]).unwrap(),
            );
            if name == "minilm-int8" {
                m.insert(
                    "token_type_ids",
                    Tensor::from_i64(vec![1, seq as u64], &vec![0; seq as usize]).unwrap(),
                );
            }
        }
        "silero-vad" => {
            let audio: Vec<f32> = (0..512).map(|i| (i as f32 * 0.17).sin() * 0.3).collect();
            m.insert("input", Tensor::from_f32(vec![1, 512], &audio).unwrap());
            m.insert("sr", Tensor::from_i64(vec![], &[16000]).unwrap());
            m.insert(
                "state",
                Tensor::from_f32(vec![2, 1, 128], &[0.0; 256]).unwrap(),
            );
        }
        other => panic!("no inputs for {other}"),
    }
    m
}
