//! The statistical rule of LLM audits (`docs/llm-audit.md`): whether a
//! generated answer is what the model its receipt names produces, allowing
//! for the honest differences between machines.
//!
//! Each generated token gets a **score** from the auditor's recomputed
//! logits: [`crate::llm::tolerance_needed`], the smallest relative logit
//! perturbation under which our sampler, with the committed seed and
//! parameters, picks the claimed token (0: it picks it outright; infinite:
//! not even at [`crate::llm::MAX_TOLERANCE`]). An honest answer from other
//! hardware has a few near-tie tokens with small scores; a substituted
//! model, another temperature or seed, or edited tokens give many scores
//! above the tolerance, or one far above.
//!
//! The rule: the answer fails when any token scores above the hard bound,
//! or when the number of tokens above the tolerance reaches the threshold
//! at which `n` honest tokens, each above the tolerance with the calibrated
//! probability `exceed_rate` independently, would get that many with
//! probability at most `alpha`. With `exceed_rate` 0 the threshold is 1:
//! the strict check, where exact answers stay exact.

use serde::{Deserialize, Serialize};

use crate::receipt::EngineInfo;

/// The hardware class a receipt states for its answer, by its engine's
/// version: `+BACKEND` after the version names an accelerator
/// (`llama-cpp-2 0.1.160 +CUDA`); none, the CPU. Honest CPU answers are
/// exact across machines, accelerators' are not (`docs/llm-audit.md`), so
/// each class has its rule. A receipt may claim an accelerator it does not
/// have, but that only buys the accelerator rule, the looser one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HardwareClass {
    /// CPUs.
    Cpu,
    /// GPUs and other accelerators.
    Accelerator,
}

impl HardwareClass {
    /// The class `engine` states.
    pub fn of(engine: &EngineInfo) -> HardwareClass {
        match engine.version.rsplit_once(" +") {
            Some((_, backend)) if !backend.is_empty() && !backend.eq_ignore_ascii_case("cpu") => {
                HardwareClass::Accelerator
            }
            _ => HardwareClass::Cpu,
        }
    }
}

/// The rule's parameters (network parameters on a ledger).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRule {
    /// Per-token tolerance: a token scoring at most this passes alone.
    pub tolerance: f64,
    /// The honest rate of tokens scoring above `tolerance`, as calibrated
    /// (at most [`MAX_EXCEED_RATE`]).
    pub exceed_rate: f64,
    /// A token scoring above this fails the answer alone.
    pub hard: f64,
    /// The false-positive rate per honest answer the threshold allows.
    pub alpha: f64,
}

/// The largest honest exceedance rate the rule takes: with it, the
/// binomial tail of answers up to [`MAX_RULE_TOKENS`] tokens is computed
/// without underflow.
pub const MAX_EXCEED_RATE: f64 = 0.05;

/// The longest answer whose threshold is computed exactly; a longer one is
/// judged in windows of this many tokens.
pub const MAX_RULE_TOKENS: usize = 8_192;

/// The false-positive rate the network's rule allows: one honest answer in
/// a million.
pub const ALPHA: f64 = 1e-6;

/// What the rule says of one answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Tokens scored.
    pub tokens: usize,
    /// Tokens scoring above the tolerance.
    pub exceed: usize,
    /// The count of such tokens that fails the answer (per window of
    /// [`MAX_RULE_TOKENS`]).
    pub threshold: usize,
    /// The first token scoring above the hard bound, if any.
    pub hard_at: Option<usize>,
    /// The first token scoring above the tolerance, if any.
    pub first_exceed: Option<usize>,
    /// Whether the answer passes.
    pub pass: bool,
}

impl AuditRule {
    /// The strict rule: every token within `tolerance`.
    pub fn strict(tolerance: f64) -> AuditRule {
        AuditRule {
            tolerance,
            exceed_rate: 0.0,
            hard: tolerance,
            alpha: ALPHA,
        }
    }

    /// The smallest count `c ≥ 1` of tokens above the tolerance, among `n`,
    /// whose probability for an honest answer, `P[Binomial(n, exceed_rate)
    /// ≥ c]`, is at most `alpha`: reaching it fails the answer. Computed
    /// with additions, multiplications and divisions only, so every
    /// platform (and the Python reference) gets the same count.
    pub fn threshold(&self, n: usize) -> usize {
        let n = n.min(MAX_RULE_TOKENS);
        let p = self.exceed_rate.clamp(0.0, MAX_EXCEED_RATE);
        if p == 0.0 || n == 0 {
            return 1;
        }
        // pmf(0) = (1 - p)^n by squaring; pmf(i + 1) = pmf(i) (n - i) p
        // / ((i + 1) (1 - p)).
        let q = 1.0 - p;
        let mut pmf0 = 1.0;
        let (mut base, mut e) = (q, n);
        while e > 0 {
            if e & 1 == 1 {
                pmf0 *= base;
            }
            base *= base;
            e >>= 1;
        }
        let mut pmf = Vec::with_capacity(n + 1);
        pmf.push(pmf0);
        for i in 0..n {
            let next = pmf[i] * (n - i) as f64 * p / ((i + 1) as f64 * q);
            pmf.push(next);
        }
        // The upper tails, smallest terms first.
        let mut tail = 0.0;
        let mut threshold = n + 1;
        for c in (1..=n).rev() {
            tail += pmf[c];
            if tail > self.alpha {
                break;
            }
            threshold = c;
        }
        threshold
    }

    /// Judges an answer by its tokens' scores.
    pub fn decide(&self, scores: &[f64]) -> Decision {
        let above = |s: f64| s > self.tolerance;
        let hard_at = scores
            .iter()
            .position(|s| *s > self.hard.max(self.tolerance));
        let first_exceed = scores.iter().position(|s| above(*s));
        let mut fails = hard_at.is_some();
        // Longer answers are judged a window at a time; every window but
        // the last is whole, with the first's threshold.
        let first = scores.len().min(MAX_RULE_TOKENS);
        let threshold = self.threshold(first);
        let mut exceed = 0;
        for window in scores.chunks(MAX_RULE_TOKENS) {
            let here = window.iter().filter(|s| above(**s)).count();
            let c = if window.len() == first {
                threshold
            } else {
                self.threshold(window.len())
            };
            fails |= here >= c;
            exceed += here;
        }
        Decision {
            tokens: scores.len(),
            exceed,
            threshold,
            hard_at,
            first_exceed,
            pass: !fails,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(exceed_rate: f64) -> AuditRule {
        AuditRule {
            tolerance: 0.02,
            exceed_rate,
            hard: 0.1,
            alpha: ALPHA,
        }
    }

    /// The exact binomial tail, for comparison, by logs.
    fn tail(n: usize, p: f64, c: usize) -> f64 {
        let ln_choose =
            |k: usize| -> f64 { (1..=k).map(|i| ((n - k + i) as f64 / i as f64).ln()).sum() };
        (c..=n)
            .map(|k| (ln_choose(k) + k as f64 * p.ln() + (n - k) as f64 * (1.0 - p).ln()).exp())
            .sum()
    }

    #[test]
    fn the_hardware_class_is_read_from_the_engine_version() {
        let class = |v: &str| {
            HardwareClass::of(&EngineInfo {
                name: "llama.cpp".into(),
                version: v.into(),
            })
        };
        assert_eq!(class("llama-cpp-2 0.1.160"), HardwareClass::Cpu);
        assert_eq!(class("llama-cpp-2 0.1.160 +CPU"), HardwareClass::Cpu);
        assert_eq!(
            class("llama-cpp-2 0.1.160 +CUDA"),
            HardwareClass::Accelerator
        );
        assert_eq!(class("llama-cpp-2 0.1.160 +"), HardwareClass::Cpu);
    }

    #[test]
    fn the_threshold_is_the_smallest_count_with_a_tail_within_alpha() {
        assert_eq!(rule(0.0).threshold(128), 1, "strict");
        for (n, p) in [
            (128, 0.02),
            (128, 0.05),
            (512, 0.01),
            (8_192, 0.05),
            (1, 0.05),
        ] {
            let c = rule(p).threshold(n);
            assert!(c > 1);
            if c <= n {
                assert!(tail(n, p, c) <= ALPHA * 1.000_001, "n {n} p {p} c {c}");
            }
            assert!(tail(n, p, c - 1) > ALPHA * 0.999_999, "n {n} p {p} c {c}");
        }
        // 2% honest exceedances: 128 tokens allow a handful.
        let c = rule(0.02).threshold(128);
        assert!((10..=16).contains(&c), "{c}");
    }

    #[test]
    fn an_answer_fails_on_a_hard_score_or_too_many_above_the_tolerance() {
        let r = rule(0.02);
        let c = r.threshold(128);
        let mut scores = vec![0.0; 128];
        for s in scores.iter_mut().take(c - 1) {
            *s = 0.05;
        }
        let d = r.decide(&scores);
        assert!(d.pass, "{d:?}");
        assert_eq!(
            (d.exceed, d.first_exceed, d.hard_at),
            (c - 1, Some(0), None)
        );
        scores[c - 1] = 0.05;
        assert!(!r.decide(&scores).pass);
        let mut one = vec![0.0; 128];
        one[7] = 0.11;
        let d = r.decide(&one);
        assert_eq!((d.pass, d.hard_at), (false, Some(7)));
        one[7] = f64::INFINITY;
        assert!(!r.decide(&one).pass);
        // The strict rule: one token above the tolerance fails.
        let strict = AuditRule::strict(0.02);
        let mut near = vec![0.0; 128];
        near[3] = 0.021;
        assert!(!strict.decide(&near).pass);
        near[3] = 0.02;
        assert!(strict.decide(&near).pass);
    }
}
