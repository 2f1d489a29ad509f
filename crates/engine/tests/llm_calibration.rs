//! The LLM audit's calibration corpus (`tests/data/llm-calibration.json`,
//! written by `scripts/llm-calibrate`), re-checked: every stored answer is
//! audited again by the reference engine and must get the stored scores,
//! every honest answer (and every answer of other kernels) passes the
//! network's default rule, and each stored
//! decision of the rule is what `vouch_types::llm_rule` decides now.

use std::path::PathBuf;

use vouch_engine::Engine;
use vouch_engine::gguf::GgufEngine;
use vouch_engine::llm::replay;
use vouch_types::Schema;
use vouch_types::llm::{LlmRequest, Sampling};
use vouch_types::llm_rule::{ALPHA, AuditRule};

fn models_dir() -> PathBuf {
    std::env::var_os("VOUCH_MODELS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/vouch/models")
        })
}

/// The network's default rule (the ledger's `llm_exceed_ppm` and
/// `llm_hard_ppm`) at the corpus's tolerance.
fn default_rule(tolerance: f64) -> AuditRule {
    AuditRule {
        tolerance,
        exceed_rate: 0.025,
        hard: 0.1,
        alpha: ALPHA,
    }
}

#[test]
fn every_stored_answer_scores_as_stored_and_honest_ones_pass() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("tests/data/llm-calibration.json")).unwrap(),
    )
    .unwrap();
    let tolerance = corpus["tolerance"].as_f64().unwrap();
    let model = GgufEngine::default()
        .load_path(
            &models_dir().join(corpus["model"].as_str().unwrap()),
            &Schema::default(),
        )
        .unwrap();
    let lm = model.language().unwrap();
    let prompts: Vec<String> = serde_json::from_value(corpus["prompts"].clone()).unwrap();
    let strict = AuditRule::strict(tolerance);
    let (mut honest, mut kernel, mut attacks) = (0, 0, 0);
    for a in corpus["answers"].as_array().unwrap() {
        let sampling: Sampling = serde_json::from_value(a["sampling"].clone()).unwrap();
        let prompt = &prompts[a["prompt"].as_u64().unwrap() as usize];
        let request = LlmRequest::completion(
            lm.render_chat(
                &[vouch_engine::llm::ChatMessage::text("user", prompt)],
                None,
            )
            .unwrap(),
            corpus["max_tokens"].as_u64().unwrap() as u32,
            sampling,
        );
        let tokens: Vec<u32> = serde_json::from_value(a["tokens"].clone()).unwrap();
        let checked = replay(lm, &request, &tokens, &[], &strict).unwrap();
        let mut stored = vec![0.0; tokens.len()];
        for s in a["scores"].as_array().unwrap() {
            stored[s[0].as_u64().unwrap() as usize] = s[1].as_f64().unwrap_or(f64::INFINITY);
        }
        let what = format!("{} prompt {}", a["variant"], a["prompt"]);
        assert_eq!(checked.scores, stored, "{what}: the scores changed");
        let decision = default_rule(tolerance).decide(&checked.scores);
        let stored = &a["decision"];
        assert_eq!(
            (
                decision.exceed as u64,
                decision.threshold as u64,
                decision.hard_at.map(|i| i as u64),
                decision.pass
            ),
            (
                stored["exceed"].as_u64().unwrap(),
                stored["threshold"].as_u64().unwrap(),
                stored["hard_at"].as_u64(),
                stored["pass"].as_bool().unwrap()
            ),
            "{what}: the rule decides otherwise now"
        );
        match a["kind"].as_str().unwrap() {
            "honest" => {
                honest += 1;
                assert!(
                    decision.pass,
                    "{what}: an honest answer fails: {decision:?}"
                );
            }
            // Other kernels than the reference's (flash attention off):
            // honest answers with a few near-ties, which the accelerator
            // rule forgives.
            "kernel" => {
                kernel += 1;
                assert!(
                    decision.pass,
                    "{what}: an answer of other kernels fails: {decision:?}"
                );
            }
            _ => attacks += 1,
        }
    }
    assert_eq!((honest, kernel, attacks), (80, 16, 136));
}

/// Each variant's answers in the corpus as one pool
/// (`vouch_types::llm_pool`, `docs/llm-audit.md`, Pooling), counted from
/// the stored scores: every honest pool passes, and the pool fails for
/// each attack that changes more tokens than honest accelerators do
/// (the Q5_0 substitute among them, which fails only 4 of its 16 answers
/// alone). `tests/python/test_llm_rule.py` derives the same table from
/// the spec.
#[test]
fn pooled_answers_fail_for_every_attack_beyond_honest_noise() {
    use vouch_types::llm_pool::PoolRule;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let corpus: serde_json::Value = serde_json::from_slice(
        &std::fs::read(root.join("tests/data/llm-calibration.json")).unwrap(),
    )
    .unwrap();
    let tolerance = corpus["tolerance"].as_f64().unwrap();
    let rule = PoolRule::of(&default_rule(tolerance));
    let mut pools: std::collections::BTreeMap<String, (u64, u64)> = Default::default();
    for a in corpus["answers"].as_array().unwrap() {
        let beyond = a["scores"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s[1].as_f64().unwrap_or(f64::INFINITY) > tolerance)
            .count() as u64;
        let pool = pools
            .entry(a["variant"].as_str().unwrap().into())
            .or_default();
        pool.0 += a["tokens"].as_array().unwrap().len() as u64;
        pool.1 += beyond;
    }
    let expected = [
        ("reference", 1907, 0, 84, false),
        ("threads-1", 1907, 0, 84, false),
        ("ubatch-1", 1907, 0, 84, false),
        ("ubatch-128", 1907, 0, 84, false),
        ("batched-4", 1907, 0, 84, false),
        ("flash-off", 1870, 1, 83, false),
        ("temperature-1.2", 1856, 940, 83, true),
        ("seed", 931, 186, 50, true),
        ("edit-1", 1633, 5, 75, false),
        ("edit-4", 1592, 30, 74, false),
        ("edit-16", 1694, 141, 77, true),
        ("runner-up", 2018, 1305, 88, true),
        ("substitute-q8_0", 1895, 1, 84, false),
        ("substitute-q5_0", 1684, 109, 77, true),
        ("substitute-q4_0", 1749, 318, 79, true),
    ];
    assert_eq!(pools.len(), expected.len());
    for (variant, tokens, beyond, threshold, fails) in expected {
        let (n, k) = pools[variant];
        let c = rule.threshold(n);
        assert_eq!(
            (n, k, c, k >= c),
            (tokens, beyond, threshold, fails),
            "{variant}"
        );
    }
}
