//! Every covered operator in one small model built here (Conv with padding
//! and stride, Relu, MaxPool, AveragePool, Reshape, MatMul, Add, Gemm),
//! proved end to end, its outputs compared with tract's float model; and
//! the trained CNN's circuit, checked constraint by constraint.

use prost::Message;
use tract_onnx::pb;
use vouch_engine::Engine as _;
use vouch_proof::circuit::{Circuit, Layer, Options};
use vouch_proof::snark::{Keys, prove, verify};
use vouch_types::tensor::{Tensor, TensorMap};

fn tensor_type(dims: &[i64]) -> Option<pb::TypeProto> {
    use pb::tensor_shape_proto::{Dimension, dimension};
    Some(pb::TypeProto {
        value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
            elem_type: 1,
            shape: Some(pb::TensorShapeProto {
                dim: dims
                    .iter()
                    .map(|&d| Dimension {
                        value: Some(dimension::Value::DimValue(d)),
                        ..Default::default()
                    })
                    .collect(),
            }),
        })),
        ..Default::default()
    })
}

fn floats(name: &str, dims: &[i64], seed: u32) -> pb::TensorProto {
    let n: i64 = dims.iter().product();
    // Deterministic values in [-1, 1).
    let data = (0..n as u32)
        .map(|i| {
            ((i.wrapping_mul(2654435761)
                .wrapping_add(seed.wrapping_mul(40503))
                >> 8)
                % 2000) as f32
                / 1000.0
                - 1.0
        })
        .collect();
    pb::TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: 1,
        float_data: data,
        ..Default::default()
    }
}

fn ints(name: &str, values: &[i64]) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: vec![values.len() as i64],
        data_type: 7,
        int64_data: values.to_vec(),
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: 7,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn node(
    op: &str,
    inputs: &[&str],
    output: &str,
    attributes: Vec<pb::AttributeProto>,
) -> pb::NodeProto {
    pb::NodeProto {
        op_type: op.into(),
        name: output.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        attribute: attributes,
        ..Default::default()
    }
}

/// [1,2,9,9] -> Conv(2->3, 3x3, pad 1, stride 2) -> Relu -> MaxPool 2
/// (stride 1) -> AveragePool 2 (stride 2) -> Reshape [1, 12] -> MatMul(12x4)
/// -> Add -> Relu -> Gemm(4->2, transB).
fn every_layer() -> Vec<u8> {
    let graph = pb::GraphProto {
        name: "layers".into(),
        node: vec![
            node(
                "Conv",
                &["x", "cw", "cb"],
                "c",
                vec![
                    attr_ints("pads", &[1, 1, 1, 1]),
                    attr_ints("strides", &[2, 2]),
                    attr_ints("kernel_shape", &[3, 3]),
                ],
            ),
            node("Relu", &["c"], "r", vec![]),
            node(
                "MaxPool",
                &["r"],
                "m",
                vec![
                    attr_ints("kernel_shape", &[2, 2]),
                    attr_ints("strides", &[1, 1]),
                ],
            ),
            node(
                "AveragePool",
                &["m"],
                "a",
                vec![
                    attr_ints("kernel_shape", &[2, 2]),
                    attr_ints("strides", &[2, 2]),
                ],
            ),
            node("Reshape", &["a", "shape"], "f", vec![]),
            node("MatMul", &["f", "mw"], "mm", vec![]),
            node("Add", &["mm", "mb"], "ma", vec![]),
            node("Relu", &["ma"], "mr", vec![]),
            node(
                "Gemm",
                &["mr", "gw", "gb"],
                "y",
                vec![pb::AttributeProto {
                    name: "transB".into(),
                    r#type: 2,
                    i: 1,
                    ..Default::default()
                }],
            ),
        ],
        initializer: vec![
            floats("cw", &[3, 2, 3, 3], 1),
            floats("cb", &[3], 2),
            ints("shape", &[1, -1]),
            floats("mw", &[12, 4], 3),
            floats("mb", &[4], 4),
            floats("gw", &[2, 4], 5),
            floats("gb", &[2], 6),
        ],
        input: vec![pb::ValueInfoProto {
            name: "x".into(),
            r#type: tensor_type(&[1, 2, 9, 9]),
            ..Default::default()
        }],
        output: vec![pb::ValueInfoProto {
            name: "y".into(),
            r#type: tensor_type(&[1, 2]),
            ..Default::default()
        }],
        ..Default::default()
    };
    pb::ModelProto {
        ir_version: 8,
        opset_import: vec![pb::OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(graph),
        ..Default::default()
    }
    .encode_to_vec()
}

#[test]
fn every_covered_operator_proves_and_matches_the_float_model() {
    let bytes = every_layer();
    let circuit = Circuit::compile(
        &bytes,
        &Options {
            input_range: 4.0,
            ..Default::default()
        },
    )
    .unwrap();
    let kinds: Vec<&str> = circuit.layers.iter().map(Layer::kind).collect();
    // The model's Relu before its max pool: the circuit pools first (the
    // same integers, a quarter of the Relus).
    assert_eq!(
        kinds,
        [
            "conv", "maxpool", "relu", "avgpool", "dense", "add", "relu", "dense"
        ]
    );
    assert_eq!(circuit.output.shape, vec![1, 2]);
    let model = vouch_engine::onnx::OnnxEngine::default()
        .load(&bytes, &Default::default())
        .unwrap();
    let keys = Keys::setup(&circuit).unwrap();
    for seed in 0..4u32 {
        let x: Vec<f32> = (0..162u32)
            .map(|i| ((i * 7 + seed * 13) % 17) as f32 / 4.0 - 2.0)
            .collect();
        let mut inputs = TensorMap::new();
        inputs.insert("x", Tensor::from_f32(vec![1, 2, 9, 9], &x).unwrap());
        let float = model
            .run(&inputs, false)
            .unwrap()
            .outputs
            .get("y")
            .unwrap()
            .to_f64_vec();
        let q = circuit.quantize_input(&x).unwrap();
        let r = circuit.synthesize(&q).unwrap();
        assert_eq!(r.unsatisfied(), None);
        assert_eq!(r.outputs, circuit.evaluate(&q).unwrap());
        let ours = circuit.dequantize(&r.outputs);
        for (a, b) in ours.iter().zip(&float) {
            assert!(
                (*a as f64 - b).abs() <= circuit.error_bound,
                "{ours:?} vs {float:?} (bound {})",
                circuit.error_bound
            );
        }
        let proof = prove(&keys, &circuit, &q).unwrap();
        verify(keys.verifying_key(), &q, &proof).unwrap();
        let mut lie = proof.clone();
        lie.outputs[1] -= 1;
        assert!(verify(keys.verifying_key(), &q, &lie).is_err());
    }
}

#[test]
fn unsupported_attributes_are_named() {
    let mut model = pb::ModelProto::decode(every_layer().as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    graph.node[0].attribute.push(pb::AttributeProto {
        name: "group".into(),
        r#type: 2,
        i: 2,
        ..Default::default()
    });
    let e = Circuit::from_onnx(&model.encode_to_vec())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("Conv `c`") && e.contains("grouped convolutions"),
        "{e}"
    );
    let mut model = pb::ModelProto::decode(every_layer().as_slice()).unwrap();
    let graph = model.graph.as_mut().unwrap();
    graph.node[6].input = vec!["mm".into(), "mm".into()];
    let e = Circuit::from_onnx(&model.encode_to_vec())
        .unwrap_err()
        .to_string();
    assert!(e.contains("adds two computed tensors"), "{e}");
}

/// The CNN of `scripts/mnist-models`: its circuit holds for an image, and
/// agrees with the float model on held-out images (`examples/zk_bench.rs`
/// proves it and checks all 2,000).
#[test]
fn the_trained_cnn_circuit_holds_and_agrees_with_the_float_model() {
    let dir = std::path::PathBuf::from(std::env::var("VOUCH_MODELS").expect("VOUCH_MODELS"));
    let bytes = std::fs::read(dir.join("mnist-cnn.onnx"))
        .expect("mnist-cnn.onnx: run scripts/mnist-models");
    let test = std::fs::read(dir.join("mnist-test.u8")).unwrap();
    let circuit = Circuit::compile(
        &bytes,
        &Options {
            input_range: 1.0,
            ..Default::default()
        },
    )
    .unwrap();
    let model = vouch_engine::onnx::OnnxEngine::default()
        .load(&bytes, &Default::default())
        .unwrap();
    let argmax = |v: &[f64]| (0..v.len()).fold(0, |m, i| if v[i] > v[m] { i } else { m });
    let mut agree = 0;
    let n = 300;
    for (k, image) in test.chunks_exact(785).take(n).enumerate() {
        let pixels: Vec<f32> = image[1..].iter().map(|&p| p as f32 / 255.0).collect();
        let q = circuit.quantize_input(&pixels).unwrap();
        let outputs = if k == 0 {
            let r = circuit.synthesize(&q).unwrap();
            assert_eq!(r.unsatisfied(), None, "the CNN's constraints do not hold");
            assert!(r.constraints.len() > 100_000);
            r.outputs
        } else {
            circuit.evaluate(&q).unwrap()
        };
        let ours: Vec<f64> = circuit
            .dequantize(&outputs)
            .iter()
            .map(|&v| v as f64)
            .collect();
        let mut inputs = TensorMap::new();
        inputs.insert(
            "input",
            Tensor::from_f32(vec![1, 1, 28, 28], &pixels).unwrap(),
        );
        let float = model
            .run(&inputs, false)
            .unwrap()
            .outputs
            .get("logits")
            .unwrap()
            .to_f64_vec();
        for (a, b) in ours.iter().zip(&float) {
            assert!((a - b).abs() <= circuit.error_bound);
        }
        agree += usize::from(argmax(&ours) == argmax(&float));
    }
    assert!(agree as f64 >= 0.995 * n as f64, "{agree} of {n}");
}
