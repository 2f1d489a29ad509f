//! Throughput of MiniLM (int8) at batch 8 × 128 tokens through the Vouch
//! engine with its trace, as a node runs it, with 1 and with N clients (N:
//! the cores), each client a thread sending one request after another:
//! as the engine chooses (a lone run splits its matrix products over every
//! core when that is the faster for the model) and with one thread per
//! run. Prints one JSON line
//! (`scripts/bench-threads` interleaves it with onnxruntime's side).
//!
//!   VOUCH_MODELS=DIR cargo run --example onnx_throughput [-- SECONDS]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use vouch_engine::onnx::{OnnxModel, with_threads};
use vouch_engine::{LoadOptions, LoadedModel};
use vouch_types::{DType, Tensor, TensorMap};

const ROWS: u64 = 8;
const SEQ: u64 = 128;

/// The inputs `scripts/bench_ort.py` gives MiniLM, in 8 rows.
fn inputs() -> TensorMap {
    let ids: Vec<i64> = (0..ROWS)
        .flat_map(|_| {
            (0..SEQ as i64).map(|i| match i {
                0 => 101,
                i if i == SEQ as i64 - 1 => 102,
                i => 1000 + (i * 37) % 20_000,
            })
        })
        .collect();
    let col = |v: &[i64]| {
        Tensor::new(
            DType::I64,
            vec![ROWS, SEQ],
            v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        )
        .unwrap()
    };
    let mut m = TensorMap::new();
    m.insert("input_ids".to_string(), col(&ids));
    m.insert("attention_mask".to_string(), col(&vec![1; ids.len()]));
    m.insert("token_type_ids".to_string(), col(&vec![0; ids.len()]));
    m
}

/// Requests per second from `clients` threads for `budget`, each run
/// with `threads` (`None`: the engine's own choice).
fn throughput(
    model: &OnnxModel,
    inputs: &TensorMap,
    clients: usize,
    threads: Option<usize>,
    budget: Duration,
) -> f64 {
    let start = Instant::now();
    let done: usize = std::thread::scope(|s| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let mut n = 0;
                    while start.elapsed() < budget {
                        let run = || model.run(inputs, true).unwrap();
                        std::hint::black_box(match threads {
                            Some(t) => with_threads(t, run),
                            None => run(),
                        });
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    done as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .map_or(5.0, |s| s.parse().expect("SECONDS is a number"));
    let budget = Duration::from_secs_f64(seconds);
    let dir = PathBuf::from(std::env::var_os("VOUCH_MODELS").expect("set VOUCH_MODELS"));
    let bytes = std::fs::read(dir.join("minilm-int8.onnx")).expect("run scripts/fetch-models.sh");
    let model = OnnxModel::load(&bytes, &LoadOptions::default()).unwrap();
    let inputs = inputs();
    let cores = vouch_engine::onnx::threads();
    for _ in 0..2 {
        model.run(&inputs, true).unwrap();
    }
    let mut out = serde_json::Map::new();
    for (name, clients, threads) in [
        ("1 client, the engine's choice", 1, None),
        ("1 client, 1 thread", 1, Some(1)),
        ("N clients, the engine's choice", cores, None),
        ("N clients, 1 thread each", cores, Some(1)),
    ] {
        let rps = throughput(&model, &inputs, clients, threads, budget);
        out.insert(name.into(), serde_json::json!(rps));
    }
    out.insert("cores".into(), serde_json::json!(cores));
    println!("{}", serde_json::Value::Object(out));
}
