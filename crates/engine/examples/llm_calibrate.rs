//! Builds the LLM audit's calibration corpus (`docs/llm-audit.md`): answers
//! of the sample LLM generated on this machine by engines configured as
//! honest operators may run them (thread counts, `ubatch` sizes, several
//! sequences batched together), with other kernels (flash attention off),
//! and by each attack `vouch node --fault`
//! offers, each scored token by token by the reference auditor (the
//! default engine's teacher-forced replay).
//!
//!   VOUCH_MODELS=DIR cargo run --example llm_calibrate -- OUT.json
//!
//! (`scripts/llm-calibrate` runs it and writes tests/data/llm-calibration.json.)
//! The test suite re-audits every stored answer and checks the scores and
//! the rule's decisions (`crates/engine/tests/llm_calibration.rs`,
//! `tests/python/test_llm_rule.py`).

mod common;

use std::path::PathBuf;
use std::sync::Arc;

use serde_json::json;
use vouch_engine::gguf::{GgufEngine, Quantization, quantize};
use vouch_engine::llm::{LlmFault, replay};
use vouch_engine::{Engine, LoadedModel};
use vouch_types::Schema;
use vouch_types::llm::{LlmRequest, Sampling};

use common::{chat_request, generate};
use vouch_types::llm_rule::{ALPHA, AuditRule};

/// One way of producing answers: an honest engine configuration or an
/// attack.
struct Variant {
    name: &'static str,
    kind: &'static str,
    engine: GgufEngine,
    /// One request at a time (else all at once, batched by the engine).
    solo: bool,
    fault: Option<LlmFault>,
    /// The model that generates (a substitute's, for that attack).
    file: PathBuf,
}

/// The sample LLM's file in `VOUCH_MODELS`.
const MODEL: &str = "smollm2-135m-instruct.q4_1.gguf";
/// Tokens per answer.
const MAX_TOKENS: u32 = 128;
/// The per-token tolerance the scores are stated against.
const TOLERANCE: f64 = 0.02;

const PROMPTS: [&str; 8] = [
    "What is the capital of France?",
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "List five fruits and their colours.",
    "Why is the sky blue?",
    "Give me three tips for learning a new language.",
    "Describe a sunrise over the sea.",
    "What does a compiler do?",
];

fn samplings() -> [Sampling; 2] {
    [
        Sampling::default(),
        Sampling {
            temperature: 0.8,
            top_p: 0.95,
            top_k: 40,
            seed: 7,
        },
    ]
}

fn load(engine: &GgufEngine, path: &std::path::Path) -> Arc<dyn LoadedModel> {
    engine
        .load_path(path, &Schema::default())
        .expect("the sample LLM loads")
}

fn main() {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: llm_calibrate OUT.json"),
    );
    let dir = PathBuf::from(std::env::var_os("VOUCH_MODELS").expect("set VOUCH_MODELS"));
    let path = dir.join(MODEL);
    let reference = GgufEngine::default();
    let auditor = load(&reference, &path);
    let alm = auditor.language().expect("a language model");
    let requests: Vec<(usize, LlmRequest)> = PROMPTS
        .iter()
        .enumerate()
        .flat_map(|(i, p)| samplings().map(|s| (i, chat_request(alm, p, MAX_TOKENS, s))))
        .collect();

    // Substitutes: the same weights quantized otherwise by llama.cpp.
    let scratch = std::env::temp_dir().join(format!("vouch-calibrate-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap();
    let substitutes: Vec<(&str, PathBuf)> = [
        ("substitute-q8_0", Quantization::Q8_0),
        ("substitute-q5_0", Quantization::Q5_0),
        ("substitute-q4_0", Quantization::Q4_0),
    ]
    .into_iter()
    .map(|(name, q)| {
        let out = scratch.join(format!("{name}.gguf"));
        quantize(&path, &out, q).expect("llama.cpp quantizes the sample");
        (name, out)
    })
    .collect();
    let honest = |threads: usize, ubatch: usize| GgufEngine {
        threads,
        batch_threads: threads,
        ubatch,
        ..GgufEngine::default()
    };
    let variant = |name, kind, engine, solo, fault| Variant {
        name,
        kind,
        engine,
        solo,
        fault,
        file: path.clone(),
    };
    let attack = |name, fault| variant(name, "attack", reference.clone(), false, Some(fault));
    let mut variants = vec![
        variant("reference", "honest", reference.clone(), true, None),
        variant(
            "threads-1",
            "honest",
            honest(1, reference.ubatch),
            true,
            None,
        ),
        variant(
            "ubatch-1",
            "honest",
            honest(reference.threads, 1),
            true,
            None,
        ),
        variant(
            "ubatch-128",
            "honest",
            honest(reference.threads, 128),
            true,
            None,
        ),
        variant("batched-4", "honest", reference.clone(), false, None),
        // Not a setting nodes offer (other kernels, other logits): the
        // kernel variation of a device without flash attention, which the
        // accelerator rule must forgive.
        variant(
            "flash-off",
            "kernel",
            GgufEngine {
                flash_attention: Some(false),
                ..reference.clone()
            },
            true,
            None,
        ),
        attack("temperature-1.2", LlmFault::Temperature(1.2)),
        attack("seed", LlmFault::Seed),
        attack("edit-1", LlmFault::Edit(1)),
        attack("edit-4", LlmFault::Edit(4)),
        attack("edit-16", LlmFault::Edit(16)),
        attack("runner-up", LlmFault::RunnerUpFrom(0)),
    ];
    for (name, file) in substitutes {
        variants.push(Variant {
            file,
            ..variant(name, "attack", reference.clone(), false, None)
        });
    }
    let strict = AuditRule::strict(TOLERANCE);
    // The network's default rule, whose decisions the corpus records.
    let rule = AuditRule {
        tolerance: TOLERANCE,
        exceed_rate: 0.025,
        hard: 0.1,
        alpha: ALPHA,
    };
    let mut answers = Vec::new();
    for Variant {
        name,
        kind,
        engine,
        solo,
        fault,
        file,
    } in variants
    {
        let model = load(&engine, &file);
        let lm = model.language().expect("a language model");
        let reqs: Vec<LlmRequest> = requests
            .iter()
            .map(|(_, r)| r.clone())
            // Another seed changes nothing of a greedy answer.
            .filter(|r| !(matches!(fault, Some(LlmFault::Seed)) && r.sampling.greedy()))
            .collect();
        let tokens: Vec<Vec<u32>> = if solo {
            reqs.iter()
                .flat_map(|r| generate(lm, std::slice::from_ref(r), fault))
                .collect()
        } else {
            generate(lm, &reqs, fault)
        };
        for (r, tokens) in reqs.iter().zip(tokens) {
            let prompt = requests
                .iter()
                .find(|(_, q)| q == r)
                .map(|(i, _)| *i)
                .expect("one of the prompts");
            let checked = replay(alm, r, &tokens, &[], &strict).expect("the audit runs");
            let scores: Vec<serde_json::Value> = checked
                .scores
                .iter()
                .enumerate()
                .filter(|(_, s)| **s > 0.0)
                .map(|(i, s)| json!([i, if s.is_finite() { json!(s) } else { json!(null) }]))
                .collect();
            eprintln!(
                "{name:>16} prompt {prompt} {}: {} tokens, {} beyond {TOLERANCE}, closest call {:.4}",
                if r.sampling.greedy() {
                    "greedy "
                } else {
                    "sampled"
                },
                tokens.len(),
                checked.beyond,
                checked.tolerance
            );
            let d = rule.decide(&checked.scores);
            answers.push(json!({
                "variant": name,
                "kind": kind,
                "prompt": prompt,
                "sampling": r.sampling,
                "tokens": tokens,
                "scores": scores,
                "decision": {"exceed": d.exceed, "threshold": d.threshold, "hard_at": d.hard_at, "pass": d.pass},
            }));
        }
    }
    let corpus = json!({
        "model": MODEL,
        "generator": "crates/engine/examples/llm_calibrate.rs",
        "tolerance": TOLERANCE,
        "rule": {"exceed_rate": rule.exceed_rate, "hard": rule.hard, "alpha": rule.alpha},
        "max_tokens": MAX_TOKENS,
        "engine": {
            "threads": reference.threads,
            "ubatch": reference.ubatch,
        },
        "prompts": PROMPTS,
        "answers": answers,
    });
    std::fs::write(&out, serde_json::to_string(&corpus).unwrap() + "\n").unwrap();
    let _ = std::fs::remove_dir_all(&scratch);
    eprintln!("wrote {}", out.display());
}
