//! The cost of the node path against raw in-process tract, measured in one
//! run on the same inputs:
//!
//! - `raw`: plain tract (`into_optimized().into_runnable().run()`), no Vouch code;
//! - `engine`: the Vouch engine without the trace, and with it (trace ratio);
//! - `node`: a real node on loopback: HTTP + JSON + schema check + trace +
//!   receipt signing + receipt log, timed from a reqwest client; and the
//!   same with the tensors as numpy's `.npz` both ways (`vouch_api::npz`);
//! - throughput of the node with 1, 2, 4 and 8 concurrent clients.
//!
//! Prints a Markdown table and writes JSON to `$VOUCH_BENCH_OUT` if set.
//! Run through `scripts/bench`, which also times onnxruntime on the same
//! inputs. Interleaves the variants so drift affects all equally.

use std::time::{Duration, Instant};

use serde_json::json;
use tract_onnx::prelude::*;
use vouch_api::{InferRequest, JsonTensor};
use vouch_engine::onnx::OnnxEngine;
use vouch_engine::{Engine, LoadedModel};
use vouch_node::{Node, NodeConfig, samples};
use vouch_types::{DType, Tensor as VTensor, TensorMap};

/// mimalloc, as in the `vouch` binary: peer messages carry bodies of up
/// to 8 MiB, which glibc's malloc hands back to the kernel and faults in
/// again on every message (see `docs/benchmarks.md`, replication).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

// The inputs `scripts/bench_ort.py` builds, shared with the engine's
// examples.
#[path = "../../engine/examples/inputs/mod.rs"]
mod inputs;
use inputs::inputs_for;

fn to_tract(t: &VTensor) -> TValue {
    let dt = match t.dtype() {
        DType::F32 => f32::datum_type(),
        DType::I64 => i64::datum_type(),
        DType::I32 => i32::datum_type(),
        other => panic!("unexpected {other}"),
    };
    let shape: Vec<usize> = t.shape().iter().map(|&d| d as usize).collect();
    let mut out = Tensor::zero_dt(dt, &shape).unwrap();
    out.as_bytes_mut().copy_from_slice(t.data());
    out.into_tvalue()
}

/// Plain tract, as a user of tract would write it.
fn raw_plan(sample: &samples::Sample) -> Arc<TypedRunnableModel> {
    let mut model = tract_onnx::onnx()
        .model_for_path(samples::models_dir().join(sample.file))
        .unwrap();
    for (input, dims) in sample.options().input_shapes {
        let ix = model
            .input_outlets()
            .unwrap()
            .iter()
            .position(|o| model.node(o.node).name == input)
            .unwrap();
        let shape: TVec<TDim> = dims
            .iter()
            .map(|d| match d {
                vouch_types::Dim::Fixed(n) => TDim::from(*n as i64),
                vouch_types::Dim::Symbol(s) => model.symbols.sym(s).into(),
            })
            .collect();
        let dt = model.input_fact(ix).unwrap().datum_type;
        let mut fact = InferenceFact::shape(shape);
        if let Some(dt) = tract_onnx::tract_hir::infer::Factoid::concretize(&dt) {
            fact = fact.with_datum_type(dt);
        }
        model.set_input_fact(ix, fact).unwrap();
    }
    if sample.name == "iris" {
        // Plain tract cannot load the ZipMap output: take the tensor feeding it.
        let outlets: Vec<OutletId> = ["label", "probability_tensor_normalized"]
            .iter()
            .map(|label| {
                model
                    .find_outlet_label(label)
                    .expect("iris names its tensors")
            })
            .collect();
        model.select_output_outlets(&outlets).unwrap();
    }
    let typed = model.into_typed().unwrap().into_optimized().unwrap();
    tract_onnx::tract_core::plan::SimplePlan::new(typed).unwrap()
}

/// The JSON body of an inference request.
fn request_body(inputs: &TensorMap, nonce: Option<&str>) -> Vec<u8> {
    serde_json::to_vec(&InferRequest {
        inputs: inputs
            .iter()
            .map(|(k, t)| (k.to_string(), JsonTensor(t.clone())))
            .collect(),
        nonce: nonce.map(str::to_string),
        verify: None,
    })
    .unwrap()
}

/// One inference request over HTTP with a body of `kind` (asking for an
/// answer of that kind too); the response body.
async fn infer(client: &reqwest::Client, url: &str, (kind, body): (&str, &[u8])) -> bytes::Bytes {
    let r = client
        .post(url)
        .header("content-type", kind)
        .header("accept", kind)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    r.bytes().await.unwrap()
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn iterations(one: Duration) -> usize {
    let budget = Duration::from_millis(
        std::env::var("VOUCH_BENCH_MS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(3000),
    );
    ((budget.as_secs_f64() / one.as_secs_f64().max(1e-6)) as usize).clamp(20, 5000)
}

fn main() {
    // `VOUCH_BENCH_ONNX_THREADS=N`: what `vouch node --onnx-threads N`
    // sets (0, the default: a run alone may split over every core).
    if let Some(n) = std::env::var("VOUCH_BENCH_ONNX_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        vouch_engine::onnx::set_threads(n);
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let data = tempfile::tempdir().unwrap();
    let node = Node::open(NodeConfig::new(data.path().to_path_buf())).unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let imported = rt.block_on(samples::import(&node, &samples::models_dir()));
    assert_eq!(
        imported.len(),
        samples::SAMPLES.len(),
        "run scripts/fetch-models.sh first"
    );
    let server = rt.spawn(vouch_node::serve(
        node.clone(),
        listener,
        std::future::pending(),
    ));
    let client = reqwest::Client::new();

    let only: Option<String> = std::env::var("VOUCH_BENCH_MODELS").ok();
    let mut results = Vec::new();
    println!(
        "| model | raw tract p50 ms | engine no trace | engine + trace | node (HTTP+receipt+trace) p50 ms | node/raw | added p50 ms | trace ratio | node, .npz p50 ms | node JSON / engine + trace | node .npz / engine + trace |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for sample in samples::SAMPLES {
        // The node path against raw tract is for ONNX models; language
        // models have their own benchmark (scripts/bench-llm).
        let onnx = sample.file.ends_with(".onnx");
        if !onnx
            || only
                .as_deref()
                .is_some_and(|o| !o.split(',').any(|m| m == sample.name))
        {
            continue;
        }
        let inputs = inputs_for(sample.name);
        let plan = raw_plan(sample);
        let raw_inputs: TVec<TValue> = {
            let names: Vec<String> = plan
                .model()
                .input_outlets()
                .unwrap()
                .iter()
                .map(|o| plan.model().node(o.node).name.clone())
                .collect();
            names
                .iter()
                .map(|n| to_tract(inputs.get(n).unwrap()))
                .collect()
        };
        let engine_model: Arc<dyn LoadedModel> = {
            let bytes = std::fs::read(samples::models_dir().join(sample.file)).unwrap();
            OnnxEngine::new()
                .load(
                    &bytes,
                    &vouch_engine::LoadOptions {
                        input_shapes: sample.options().input_shapes,
                    },
                )
                .unwrap()
        };
        let body = request_body(&inputs, Some("bench"));
        let npz_body = vouch_api::npz::write_npz(&inputs, &[]);
        let infer_url = format!("{url}/v1/infer/{}", sample.name);
        let npz_url = format!("{infer_url}?nonce=bench");

        let time_raw = || {
            let t = Instant::now();
            plan.run(raw_inputs.clone()).unwrap();
            t.elapsed().as_secs_f64()
        };
        let time_engine = |trace: bool| {
            let t = Instant::now();
            engine_model.run(&inputs, trace).unwrap();
            t.elapsed().as_secs_f64()
        };
        let time_node = || {
            let t = Instant::now();
            let resp = rt.block_on(infer(&client, &infer_url, ("application/json", &body)));
            let parsed: vouch_api::InferResponse = serde_json::from_slice(&resp).unwrap();
            std::hint::black_box(parsed);
            t.elapsed().as_secs_f64()
        };
        // The same request as .npz both ways, read as a client reads it:
        // the arrays, and the receipt from vouch.json.
        let time_npz = || {
            let t = Instant::now();
            let resp = rt.block_on(infer(&client, &npz_url, (vouch_api::npz::NPZ, &npz_body)));
            let (outputs, rest) = vouch_api::npz::read_npz(&resp, usize::MAX).unwrap();
            let parsed: vouch_api::InferResponse = serde_json::from_slice(&rest[0].1).unwrap();
            std::hint::black_box((outputs, parsed));
            t.elapsed().as_secs_f64()
        };
        // warm up
        for _ in 0..3 {
            time_raw();
            time_engine(false);
            time_engine(true);
            time_node();
            time_npz();
        }
        // The engine's own time inside the node (its
        // `vouch_inference_seconds` histogram) over the rounds: what the
        // node path adds beyond it is HTTP, the tensors' encodings and the
        // receipt.
        let in_node = |name: &str| {
            let text = node.metrics().render(&[]);
            let read = |what: &str| {
                // The model's label is its name and version.
                let key = format!("vouch_inference_seconds_{what}{{model=\"{name}");
                text.lines()
                    .filter(|l| l.starts_with(key.as_str()))
                    .find_map(|l| l.rsplit_once(' '))
                    .and_then(|(_, v)| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            (read("sum"), read("count"))
        };
        let n = iterations(Duration::from_secs_f64(time_node() + time_raw()));
        let before = in_node(sample.name);
        let (mut raw, mut eng, mut traced, mut nodet, mut npzt) =
            (vec![], vec![], vec![], vec![], vec![]);
        // At least 30 interleaved rounds: fewer leave the ratios to the
        // host's noise.
        for _ in 0..(n / 2).max(30) {
            raw.push(time_raw());
            eng.push(time_engine(false));
            traced.push(time_engine(true));
            nodet.push(time_node());
            npzt.push(time_npz());
        }
        let after = in_node(sample.name);
        let inside_ms = (after.0 - before.0) / (after.1 - before.1).max(1.0) * 1e3;
        let (r, e, tr, nd, nz) = (
            percentile(&mut raw, 0.5) * 1e3,
            percentile(&mut eng, 0.5) * 1e3,
            percentile(&mut traced, 0.5) * 1e3,
            percentile(&mut nodet, 0.5) * 1e3,
            percentile(&mut npzt, 0.5) * 1e3,
        );
        println!(
            "| {} | {r:.3} | {e:.3} | {tr:.3} | {nd:.3} | {:.3}x | {:.3} | {:.3}x | {nz:.3} | {:.3}x | {:.3}x |",
            sample.name,
            nd / r,
            nd - r,
            tr / e,
            nd / tr,
            nz / tr
        );
        eprintln!(
            "{}: the engine inside the node took {inside_ms:.3} ms a request (mean), against {tr:.3} ms (p50) for engine + trace alone",
            sample.name
        );
        results.push(json!({"model": sample.name, "raw_ms": r, "engine_ms": e, "engine_trace_ms": tr, "node_ms": nd, "node_npz_ms": nz, "engine_in_node_mean_ms": inside_ms, "samples": raw.len(), "trace_steps": engine_model.steps().len()}));
    }

    // Throughput with concurrent clients.
    let tp_model =
        std::env::var("VOUCH_BENCH_THROUGHPUT_MODEL").unwrap_or_else(|_| "minilm-int8".into());
    let body = request_body(&inputs_for(&tp_model), None);
    let infer_url = format!("{url}/v1/infer/{tp_model}");
    println!(
        "\n| {tp_model}: concurrent clients | requests/s | p50 ms | p99 ms |\n|---|---|---|---|"
    );
    let mut throughput = Vec::new();
    for clients in [1usize, 2, 4, 8] {
        let window = Duration::from_millis(
            std::env::var("VOUCH_BENCH_MS")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(3000),
        );
        let (count, mut lat) = rt.block_on(async {
            let start = Instant::now();
            let mut tasks = Vec::new();
            for _ in 0..clients {
                let (client, url, body) = (client.clone(), infer_url.clone(), body.clone());
                tasks.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    while start.elapsed() < window {
                        let t = Instant::now();
                        infer(&client, &url, ("application/json", &body)).await;
                        lat.push(t.elapsed().as_secs_f64());
                    }
                    lat
                }));
            }
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            (all.len() as f64 / start.elapsed().as_secs_f64(), all)
        });
        let (p50, p99) = (
            percentile(&mut lat, 0.5) * 1e3,
            percentile(&mut lat, 0.99) * 1e3,
        );
        println!("| {clients} | {count:.1} | {p50:.2} | {p99:.2} |");
        throughput.push(json!({"clients": clients, "rps": count, "p50_ms": p50, "p99_ms": p99}));
    }
    if let Some(path) = std::env::var_os("VOUCH_BENCH_OUT") {
        let out = json!({"models": results, "throughput": {"model": tp_model, "runs": throughput}, "workers": node.config().workers});
        std::fs::write(path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    }
    server.abort();
}
