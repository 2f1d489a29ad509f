//! One request at a time through the Vouch engine on one thread, without
//! and with its trace: the median time per run of each sample ONNX model,
//! each timed in a loop of its own as `scripts/bench_ort.py` times
//! onnxruntime. Prints one JSON line (`scripts/bench-ort` interleaves it
//! with onnxruntime's side).
//!
//!   VOUCH_MODELS=DIR cargo run --example onnx_latency [-- MS [MODEL...]]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use vouch_engine::Engine;
use vouch_engine::onnx::{OnnxEngine, set_threads};
use vouch_types::TensorMap;

mod inputs;

/// The median of runs repeated for `budget` (at least 20), in ms.
fn p50(budget: Duration, mut run: impl FnMut()) -> (f64, usize) {
    for _ in 0..3 {
        run();
    }
    let mut times = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || times.len() < 20 {
        let t = Instant::now();
        run();
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2] * 1e3, times.len())
}

fn main() {
    let mut args = std::env::args().skip(1);
    let budget = Duration::from_millis(args.next().map_or(3000, |s| s.parse().expect("MS")));
    let names: Vec<String> = args.collect();
    let dir = std::path::PathBuf::from(std::env::var("VOUCH_MODELS").expect("VOUCH_MODELS"));
    // One thread per run, as onnxruntime's side is set.
    set_threads(1);
    let mut out = BTreeMap::new();
    for (name, file) in inputs::MODELS {
        if !names.is_empty() && !names.iter().any(|n| n == name) {
            continue;
        }
        let bytes = std::fs::read(dir.join(file)).expect("the sample model");
        let model = OnnxEngine::new()
            .load(&bytes, &inputs::options(name))
            .unwrap();
        let inputs: TensorMap = inputs::inputs_for(name);
        let (engine, n) = p50(budget, || {
            model.run(&inputs, false).unwrap();
        });
        let (traced, m) = p50(budget, || {
            model.run(&inputs, true).unwrap();
        });
        out.insert(
            name.to_string(),
            serde_json::json!({"engine_ms": engine, "engine_trace_ms": traced, "samples": n + m}),
        );
    }
    println!("{}", serde_json::Value::from_iter(out));
}
