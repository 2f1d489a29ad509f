//! Where a sample ONNX model's time goes in the Vouch engine, step by step
//! of its plan, on one thread (issue 29). Prints the slowest steps first.
//!
//!   VOUCH_MODELS=DIR cargo run --example onnx_profile -- MODEL [RUNS]

use vouch_engine::LoadOptions;
use vouch_engine::onnx::{OnnxModel, set_threads};

mod inputs;

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("MODEL (magika, minilm-int8, ...)");
    let runs: usize = args.next().map_or(200, |s| s.parse().expect("RUNS"));
    let file = inputs::MODELS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .expect("a sample model");
    let dir = std::path::PathBuf::from(std::env::var("VOUCH_MODELS").expect("VOUCH_MODELS"));
    let bytes = std::fs::read(dir.join(file)).expect("the sample model");
    let options: LoadOptions = inputs::options(&name);
    let model = OnnxModel::load(&bytes, &options).unwrap();
    set_threads(1);
    let steps = model.profile(&inputs::inputs_for(&name), runs).unwrap();
    let total: f64 = steps.iter().map(|s| s.micros).sum();
    println!("{name}: {total:.1} us a run over {} steps", steps.len());
    for s in steps.iter().take(40) {
        println!(
            "{:9.1} us {:5.1}%  {:<28} {:<44} {}",
            s.micros,
            s.micros / total * 100.0,
            s.op,
            s.name,
            s.shapes
        );
    }
}
