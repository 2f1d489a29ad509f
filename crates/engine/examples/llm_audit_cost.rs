//! What the LLM audit's check costs beyond its forward pass
//! (`docs/llm-audit.md`, Cost): for greedy and sampled answers of the
//! sample LLM, the teacher-forced pass alone (logits computed, nothing
//! checked) against the whole audit (`replay`: every token scored, the
//! rule applied), interleaved, each timed the same way on the same thread.
//!
//!   VOUCH_MODELS=DIR cargo run --example llm_audit_cost [-- ROUNDS]

mod common;

use std::path::PathBuf;
use std::time::Instant;

use vouch_engine::Engine;
use vouch_engine::gguf::GgufEngine;
use vouch_engine::llm::replay;
use vouch_types::Schema;
use vouch_types::llm::{Sampling, tolerance_needed};

use common::{chat_request, generate};
use vouch_types::llm_rule::{ALPHA, AuditRule};

const PROMPTS: [&str; 4] = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle works.",
    "Describe a sunrise over the sea.",
    "What does a compiler do?",
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .map_or(5, |r| r.parse().expect("ROUNDS is a number"));
    let dir = PathBuf::from(std::env::var_os("VOUCH_MODELS").expect("set VOUCH_MODELS"));
    let engine = GgufEngine::default();
    let model = engine
        .load_path(
            &dir.join("smollm2-135m-instruct.q4_1.gguf"),
            &Schema::default(),
        )
        .unwrap();
    let lm = model.language().unwrap();
    let rule = AuditRule {
        tolerance: 0.02,
        exceed_rate: 0.025,
        hard: 0.1,
        alpha: ALPHA,
    };
    println!(
        "build: dev profile (opt-level 1; vouch-engine, vouch-types (the scores) and dependencies 3), target-cpu=native; threads {}, ubatch {}",
        engine.threads, engine.ubatch
    );
    for (kind, sampling) in [
        ("greedy", Sampling::default()),
        (
            "sampled",
            Sampling {
                temperature: 0.8,
                top_p: 0.95,
                top_k: 40,
                seed: 7,
            },
        ),
        (
            "top-p only",
            Sampling {
                temperature: 0.8,
                top_p: 0.95,
                top_k: 0,
                seed: 7,
            },
        ),
        (
            "temperature only",
            Sampling {
                temperature: 1.0,
                top_p: 1.0,
                top_k: 0,
                seed: 7,
            },
        ),
    ] {
        // Each round's time over all answers, each answer's rounds interleaved.
        let (mut forward, mut audit) = (vec![0.0; rounds], vec![0.0; rounds]);
        let mut scores = vec![0.0; rounds];
        let mut tokens_total = 0;
        for p in PROMPTS {
            let r = chat_request(lm, p, 128, sampling.clone());
            let tokens = generate(lm, std::slice::from_ref(&r), None).remove(0);
            tokens_total += tokens.len();
            let prompt = lm.tokenize(&r.prompt);
            let mut all = prompt.clone();
            all.extend_from_slice(&tokens);
            // The logits once more, kept, to time the scores alone.
            let mut kept = Vec::new();
            lm.score(&all, prompt.len() - 1..all.len() - 1, &mut |_, logits| {
                kept.push(logits.to_vec());
            })
            .unwrap();
            for round in 0..rounds {
                let t = Instant::now();
                for (step, logits) in kept.iter().enumerate() {
                    std::hint::black_box(tolerance_needed(
                        logits,
                        &r.sampling,
                        step as u64,
                        tokens[step],
                    ));
                }
                scores[round] += t.elapsed().as_secs_f64() / PROMPTS.len() as f64;
                let t = Instant::now();
                let mut sink = 0.0f32;
                lm.score(&all, prompt.len() - 1..all.len() - 1, &mut |_, logits| {
                    sink += logits[0];
                })
                .unwrap();
                std::hint::black_box(sink);
                forward[round] += t.elapsed().as_secs_f64() / PROMPTS.len() as f64;
                let t = Instant::now();
                let checked = replay(lm, &r, &tokens, &[], &rule).unwrap();
                audit[round] += t.elapsed().as_secs_f64() / PROMPTS.len() as f64;
                assert!(checked.decision.pass);
            }
        }
        let (f, a, c) = (median(forward), median(audit), median(scores));
        println!(
            "{kind:>16}: {} answers, {tokens_total} tokens; per answer, the median round of {rounds}, interleaved: forward pass {:.1} ms, whole audit {:.1} ms, the scores alone {:.2} ms; the check beyond the forward pass: {:.1}% of the audit (the scores alone: {:.1}%)",
            PROMPTS.len(),
            f * 1e3,
            a * 1e3,
            c * 1e3,
            100.0 * (a - f).max(0.0) / a,
            100.0 * c / a
        );
    }
}
