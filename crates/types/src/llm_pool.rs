//! Pooled LLM audits (`docs/llm-audit.md`, Pooling): one executor's
//! generated answers judged together, so that a substitution too faint to
//! fail any one answer under the accelerator rule fails the pool.
//!
//! The statistical rule judges one answer by its count of tokens beyond
//! the tolerance. A substitute whose tokens exceed it at 6.5% where honest
//! accelerators stay within 2.5% passes most 128-token answers, but over a
//! few thousand tokens of the same operator the binomial test tells the
//! rates apart at the same false-positive rate. The pool is
//! what makes that sound:
//!
//! - **Its scope is fixed in advance** ([`PoolScope`]): one executor's
//!   answers of one model whose receipts state an accelerator, stamped in
//!   one window. On a ledger the windows are aligned to the network's
//!   `llm_pool_window_ms`, so nobody picks the window's edges.
//! - **Its order is nobody's choice**: answers rank by a hash of the
//!   window's beacon (the ledger's first beacon after the window ends,
//!   unknown while the executor answered) and the receipt id, and the
//!   pool is the longest prefix of at most [`MAX_RULE_TOKENS`] tokens.
//! - **The executor completes it.** An auditor knows the answers it heard
//!   of; one that left out the answers with few near-ties could frame an
//!   honest executor. So the referee asks the executor for its answers in
//!   scope and judges the union: an honest executor hands over every one,
//!   and the pool the referee judges is then independent of any score, so
//!   an honest executor fails it with probability at most the rule's
//!   `alpha`. A dishonest executor may hand over fewer, which only costs
//!   the test power.
//!
//! A [`PoolDispute`] carries the pool the referee judged (receipts and
//! transcripts), the auditor's and the referee's signed counts
//! ([`PoolVerdict`]), and names the faulty party; [`PoolDispute::check`]
//! re-checks everything that needs no model.

use serde::{Deserialize, Serialize};

use crate::dispute::{DISPUTE_VERSION, DisputeError, Party, Pool, check_parties};
use crate::encode::Sink;
use crate::llm::Transcript;
use crate::llm_rule::{ALPHA, AuditRule, HardwareClass, MAX_RULE_TOKENS};
use crate::receipt::Receipt;
use crate::{Digest, Hasher, Kind, PublicKey, SecretKey, Signature};

/// Which answers a pooled audit judges: the executor's answers of `model`
/// whose receipts state an accelerator, stamped in `[start_ms, end_ms)`,
/// ranked by `beacon`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolScope {
    /// The executor's receipt-signing key.
    pub executor: PublicKey,
    /// The model the receipts name.
    pub model: Digest,
    /// The window's first millisecond (Unix).
    pub start_ms: u64,
    /// The millisecond after its last.
    pub end_ms: u64,
    /// What ranks the answers: on a ledger, the beacon of the first block
    /// at least `beacon_delay_ms` after `end_ms`; without one, zeros.
    #[serde(with = "beacon_hex")]
    pub beacon: [u8; 32],
}

/// One answer of a pool: a receipt and the transcript it signs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    /// The executor's receipt.
    pub receipt: Receipt,
    /// Its transcript.
    pub transcript: Transcript,
}

impl PoolScope {
    /// What identifies the pool regardless of its beacon and answers: it
    /// seeds the referee draw, and a ledger convicts once per key.
    /// `H_receipt("vouch v1 llm pool key\0" || executor || model ||
    /// u64 start_ms || u64 end_ms)`.
    pub fn key(&self) -> Digest {
        let mut h = Hasher::new(Kind::Receipt);
        h.put(b"vouch v1 llm pool key\0");
        h.put(self.executor.as_bytes());
        h.put(self.model.as_bytes());
        h.put_u64(self.start_ms);
        h.put_u64(self.end_ms);
        h.finalize()
    }

    /// An answer's rank: `H_receipt("vouch v1 llm pool rank\0" || beacon
    /// || receipt id)`, compared as bytes.
    pub fn rank(&self, receipt: &Digest) -> Digest {
        let mut h = Hasher::new(Kind::Receipt);
        h.put(b"vouch v1 llm pool rank\0");
        h.put(&self.beacon);
        h.put(receipt.as_bytes());
        h.finalize()
    }

    /// The digest a verdict signs for the pool of receipts `ids`, in rank
    /// order: `H_receipt("vouch v1 llm pool\0" || key || beacon || u64
    /// count || ids)`.
    pub fn digest(&self, ids: &[Digest]) -> Digest {
        let mut h = Hasher::new(Kind::Receipt);
        h.put(b"vouch v1 llm pool\0");
        h.put(self.key().as_bytes());
        h.put(&self.beacon);
        h.put_u64(ids.len() as u64);
        for id in ids {
            h.put(id.as_bytes());
        }
        h.finalize()
    }

    /// Why `answer` is not in scope, if it is not: its receipt or its
    /// transcript does not verify, or another executor, model, hardware
    /// class or time.
    pub fn admits(&self, answer: &Answer) -> Result<(), String> {
        let r = &answer.receipt;
        answer
            .transcript
            .verify(r)
            .map_err(|e| format!("receipt {}: {e}", r.id))?;
        let b = &r.body;
        if b.node != self.executor {
            return Err(format!(
                "receipt {} is signed by {}, not the pool's executor {}",
                r.id, b.node, self.executor
            ));
        }
        if b.model != self.model {
            return Err(format!(
                "receipt {} names model {}, not the pool's {}",
                r.id, b.model, self.model
            ));
        }
        if HardwareClass::of(&b.engine) != HardwareClass::Accelerator {
            return Err(format!(
                "receipt {} states no accelerator (engine `{}`): CPU answers are judged strictly, one at a time",
                r.id, b.engine.version
            ));
        }
        if !(self.start_ms..self.end_ms).contains(&b.timestamp_ms) {
            return Err(format!(
                "receipt {} is stamped {}, outside the pool's window [{}, {})",
                r.id, b.timestamp_ms, self.start_ms, self.end_ms
            ));
        }
        Ok(())
    }

    /// The pool of `answers`: those in scope, each once, in rank order,
    /// the longest prefix of at most [`MAX_RULE_TOKENS`] tokens.
    pub fn select(&self, answers: impl IntoIterator<Item = Answer>) -> Vec<Answer> {
        let mut ranked: Vec<(Digest, Answer)> = answers
            .into_iter()
            .filter(|a| self.admits(a).is_ok())
            .map(|a| (self.rank(&a.receipt.id), a))
            .collect();
        ranked.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
        ranked.dedup_by(|(a, _), (b, _)| a == b);
        let mut tokens = 0;
        ranked
            .into_iter()
            .map(|(_, a)| a)
            .take_while(|a| {
                tokens += a.transcript.tokens.len();
                tokens <= MAX_RULE_TOKENS
            })
            .collect()
    }

    /// Checks that `ids` are distinct and in rank order.
    fn check_order(&self, ids: &[Digest]) -> Result<(), String> {
        let ranks: Vec<Digest> = ids.iter().map(|id| self.rank(id)).collect();
        if ranks.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()) {
            Ok(())
        } else {
            Err("the pool's receipts are not distinct and in rank order".into())
        }
    }
}

/// The rule a pool verdict applies, in the ledger's units: the tolerance
/// and the honest exceedance rate, in parts per million.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolRule {
    /// Per-token tolerance, ppm.
    pub tolerance_ppm: u64,
    /// Honest rate of tokens beyond it, ppm.
    pub exceed_ppm: u64,
}

impl PoolRule {
    /// The rule in ppm, rounded, from an [`AuditRule`].
    pub fn of(rule: &AuditRule) -> PoolRule {
        PoolRule::rates(rule.tolerance, rule.exceed_rate)
    }

    /// The rule in ppm, rounded, from a per-token tolerance and an honest
    /// rate of tokens beyond it.
    pub fn rates(tolerance: f64, exceed_rate: f64) -> PoolRule {
        PoolRule {
            tolerance_ppm: (tolerance * 1e6).round() as u64,
            exceed_ppm: (exceed_rate * 1e6).round() as u64,
        }
    }

    /// The count of tokens beyond the tolerance, among `tokens`, that
    /// fails a pool ([`AuditRule::threshold`] at [`ALPHA`]).
    pub fn threshold(&self, tokens: u64) -> u64 {
        let rule = AuditRule {
            tolerance: self.tolerance_ppm as f64 / 1e6,
            exceed_rate: self.exceed_ppm as f64 / 1e6,
            hard: f64::INFINITY,
            alpha: ALPHA,
        };
        rule.threshold(tokens as usize) as u64
    }
}

/// A party's signed count over a pool: of `tokens` generated tokens,
/// `exceed` scored beyond the rule's tolerance on its own re-run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolVerdict {
    /// Who counted.
    pub signer: PublicKey,
    /// [`PoolScope::digest`] of the answers counted.
    pub pool: Digest,
    /// Tokens counted.
    pub tokens: u64,
    /// Tokens beyond the tolerance.
    pub exceed: u64,
    /// The rule applied.
    pub rule: PoolRule,
    /// ed25519 signature by `signer` over [`PoolVerdict::message`].
    #[serde(with = "crate::receipt::sig_hex")]
    pub signature: Signature,
}

impl PoolVerdict {
    /// What is signed: `H_receipt("vouch v1 llm pool verdict\0" || pool ||
    /// u64 tokens || u64 exceed || u64 tolerance_ppm || u64 exceed_ppm)`.
    pub fn message(pool: &Digest, tokens: u64, exceed: u64, rule: PoolRule) -> Digest {
        let mut h = Hasher::new(Kind::Receipt);
        h.put(b"vouch v1 llm pool verdict\0");
        h.put(pool.as_bytes());
        h.put_u64(tokens);
        h.put_u64(exceed);
        h.put_u64(rule.tolerance_ppm);
        h.put_u64(rule.exceed_ppm);
        h.finalize()
    }

    /// `key`'s count.
    pub fn sign(key: &SecretKey, pool: Digest, tokens: u64, exceed: u64, rule: PoolRule) -> Self {
        let signature = key.sign(Self::message(&pool, tokens, exceed, rule).as_bytes());
        PoolVerdict {
            signer: key.public(),
            pool,
            tokens,
            exceed,
            rule,
            signature,
        }
    }

    /// Whether the signature is the signer's.
    pub fn verifies(&self) -> bool {
        let msg = Self::message(&self.pool, self.tokens, self.exceed, self.rule);
        self.signer.verify(msg.as_bytes(), &self.signature)
    }

    /// Whether the count fails the pool under the verdict's rule.
    pub fn fails(&self) -> bool {
        self.exceed >= self.rule.threshold(self.tokens)
    }
}

/// A pooled audit in dispute: the auditor's count over the pool it knew
/// failed the rule; the referee counted the pool completed by the
/// executor's answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PoolDispute {
    /// Format version ([`DISPUTE_VERSION`]).
    pub version: u8,
    /// Which answers.
    pub scope: PoolScope,
    /// The receipts the auditor counted, in rank order.
    pub accused: Vec<Digest>,
    /// The auditor's count over `accused`.
    pub auditor: PoolVerdict,
    /// The pool the referee counted, in rank order.
    pub answers: Vec<Answer>,
    /// The referee's count over `answers`.
    pub referee: PoolVerdict,
    /// Which party the referee's count finds faulty.
    pub faulty: Party,
}

/// Why a pooled dispute does not check out.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum PoolDisputeError {
    /// What every dispute kind checks.
    #[error(transparent)]
    Dispute(#[from] DisputeError),
    /// The scope, the pool or a count is wrong.
    #[error("{0}")]
    Pool(String),
}

impl PoolDispute {
    /// [`check_parties`] for this dispute: the referee drawn by the pool's
    /// key.
    pub fn check_parties(&self, pool: &Pool) -> Result<(), DisputeError> {
        check_parties(
            &self.scope.key(),
            &self.scope.executor,
            &self.auditor.signer,
            &self.referee.signer,
            pool,
        )
    }

    /// Re-checks everything that can be checked without the model: every
    /// answer in scope, its transcript the one its receipt signs, the pool
    /// in rank order within [`MAX_RULE_TOKENS`] tokens, the referee's
    /// token count, both signatures over the pools they name, one rule for
    /// both, an auditor's count that fails it, three distinct parties; and
    /// returns the faulty party: the executor when the referee's count
    /// also fails the pool, the auditor when it passes.
    pub fn check(&self) -> Result<Party, PoolDisputeError> {
        let bad = |why: String| PoolDisputeError::Pool(why);
        if self.version != DISPUTE_VERSION {
            return Err(DisputeError::Version(self.version).into());
        }
        let s = &self.scope;
        if s.end_ms <= s.start_ms {
            return Err(bad(format!(
                "the window [{}, {}) is empty",
                s.start_ms, s.end_ms
            )));
        }
        if self.answers.is_empty() {
            return Err(bad("the referee's pool holds no answer".into()));
        }
        for a in &self.answers {
            s.admits(a).map_err(bad)?;
        }
        let ids: Vec<Digest> = self.answers.iter().map(|a| a.receipt.id).collect();
        s.check_order(&ids).map_err(bad)?;
        s.check_order(&self.accused)
            .map_err(|e| bad(format!("the auditor's pool: {e}")))?;
        let tokens: u64 = self
            .answers
            .iter()
            .map(|a| a.transcript.tokens.len() as u64)
            .sum();
        if tokens > MAX_RULE_TOKENS as u64 {
            return Err(bad(format!(
                "the pool holds {tokens} tokens, more than the {MAX_RULE_TOKENS} a pool may"
            )));
        }
        let (a, r) = (&self.auditor, &self.referee);
        if a.signer == s.executor {
            return Err(DisputeError::AuditorIsExecutor(a.signer.to_string()).into());
        }
        if r.signer == s.executor || r.signer == a.signer {
            return Err(DisputeError::RefereeIsParty(r.signer.to_string()).into());
        }
        if a.pool != s.digest(&self.accused) || !a.verifies() {
            return Err(DisputeError::BadAccusation(a.signer.to_string()).into());
        }
        if r.pool != s.digest(&ids) || !r.verifies() {
            return Err(DisputeError::BadVerdict(r.signer.to_string()).into());
        }
        if r.tokens != tokens {
            return Err(bad(format!(
                "the referee counted {} tokens; its pool holds {tokens}",
                r.tokens
            )));
        }
        if a.rule != r.rule {
            return Err(bad(format!(
                "the auditor applied {:?}, the referee {:?}: one pool, one rule",
                a.rule, r.rule
            )));
        }
        if !a.fails() {
            return Err(DisputeError::NoAccusation.into());
        }
        let faulty = if r.fails() {
            Party::Executor
        } else {
            Party::Auditor
        };
        if faulty != self.faulty {
            return Err(DisputeError::Faulty {
                claimed: self.faulty,
                found: faulty,
            }
            .into());
        }
        Ok(faulty)
    }
}

mod beacon_hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(b: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(b))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut b = [0u8; 32];
        hex::decode_to_slice(s.as_ref(), &mut b)
            .map_err(|_| serde::de::Error::custom("a beacon is 64 hex digits"))?;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::{Finish, LlmRequest, Sampling};
    use crate::receipt::{Determinism, EngineInfo, ReceiptBody, TraceCommitment};

    fn keys() -> [SecretKey; 3] {
        [1u8, 2, 3].map(|b| SecretKey::from_bytes(&[b; 32]))
    }

    fn scope() -> PoolScope {
        PoolScope {
            executor: keys()[0].public(),
            model: Digest::of(Kind::Model, b"llm"),
            start_ms: 1_000,
            end_ms: 2_000,
            beacon: [9; 32],
        }
    }

    /// Answer `i` of `n` tokens by `key`, stamped `at`, stating `engine`.
    fn answer(key: &SecretKey, i: u64, n: usize, at: u64, engine: &str) -> Answer {
        let transcript = Transcript {
            request: LlmRequest::completion(
                format!("question {i}"),
                n as u32,
                Sampling {
                    temperature: 0.0,
                    top_p: 1.0,
                    top_k: 0,
                    seed: i,
                },
            ),
            tokens: vec![11; n],
            texts: vec!["a".into(); n],
            finish_reason: Finish::Length,
            logprobs: vec![],
        };
        let receipt = ReceiptBody {
            version: 1,
            model: Digest::of(Kind::Model, b"llm"),
            request: transcript.request.digest(),
            output: transcript.chain().output(Finish::Length),
            trace: TraceCommitment {
                root: Digest::of(Kind::TraceNode, b"t"),
                len: n as u64,
            },
            engine: EngineInfo {
                name: "llama.cpp".into(),
                version: engine.into(),
            },
            determinism: Determinism::Tolerant { rtol: 1e-3 },
            seed: Some(i),
            node: key.public(),
            nonce: String::new(),
            timestamp_ms: at,
            price: 0,
        }
        .sign(key);
        Answer {
            receipt,
            transcript,
        }
    }

    const GPU: &str = "llama-cpp-2 0.1.160 +CUDA";

    fn rule() -> PoolRule {
        PoolRule {
            tolerance_ppm: 20_000,
            exceed_ppm: 25_000,
        }
    }

    /// A dispute over 8 answers of 128 tokens: the auditor counted the
    /// first 6 with `accused` beyond the tolerance; the referee all 8 with
    /// `found`.
    fn dispute(accused: u64, found: u64) -> PoolDispute {
        let [ke, ka, kr] = keys();
        let s = scope();
        let answers = s.select((0..8).map(|i| answer(&ke, i, 128, 1_000 + i, GPU)));
        assert_eq!(answers.len(), 8);
        let ids: Vec<Digest> = answers.iter().map(|a| a.receipt.id).collect();
        let auditor = PoolVerdict::sign(&ka, s.digest(&ids[..6]), 6 * 128, accused, rule());
        let referee = PoolVerdict::sign(&kr, s.digest(&ids), 8 * 128, found, rule());
        let faulty = if referee.fails() {
            Party::Executor
        } else {
            Party::Auditor
        };
        PoolDispute {
            version: DISPUTE_VERSION,
            scope: s,
            accused: ids[..6].to_vec(),
            auditor,
            answers,
            referee,
            faulty,
        }
    }

    #[test]
    fn the_pool_is_the_answers_in_scope_in_rank_order_within_the_token_cap() {
        let [ke, ka, _] = keys();
        let s = scope();
        let mut given: Vec<Answer> = (0..80)
            .map(|i| answer(&ke, i, 128, 1_000 + i * 10, GPU))
            .collect();
        // Out of scope, each for one reason.
        given.push(answer(&ka, 100, 128, 1_500, GPU));
        given.push(answer(&ke, 101, 128, 1_500, "llama-cpp-2 0.1.160"));
        given.push(answer(&ke, 102, 128, 2_000, GPU));
        given.push(answer(&ke, 103, 128, 999, GPU));
        let mut wrong_model = answer(&ke, 104, 128, 1_500, GPU);
        wrong_model.receipt.body.model = Digest::of(Kind::Model, b"other");
        wrong_model.receipt = wrong_model.receipt.body.clone().sign(&ke);
        given.push(wrong_model);
        // The same answer twice.
        given.push(given[0].clone());
        for a in &given[80..85] {
            assert!(s.admits(a).is_err());
        }
        let pool = s.select(given.clone());
        // 8,192 tokens: 64 answers of 128.
        assert_eq!(pool.len(), MAX_RULE_TOKENS / 128);
        let ranks: Vec<Digest> = pool.iter().map(|a| s.rank(&a.receipt.id)).collect();
        assert!(ranks.windows(2).all(|w| w[0].as_bytes() < w[1].as_bytes()));
        // The order is the beacon's, not the order given.
        given.reverse();
        assert_eq!(s.select(given.clone()), pool);
        let other = PoolScope {
            beacon: [10; 32],
            ..s
        };
        assert_ne!(other.select(given), pool);
    }

    #[test]
    fn a_pooled_dispute_checks_and_names_whom_the_referee_finds_faulty() {
        // c(768) and c(1024) at 2.5%.
        let (c6, c8) = (rule().threshold(768), rule().threshold(1024));
        assert!(c6 > 19 && c8 > c6, "{c6} {c8}");
        let d = dispute(c6, c8);
        assert_eq!(d.check(), Ok(Party::Executor));
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<PoolDispute>(&json).unwrap(), d);
        // The completed pool passes: the auditor is faulty.
        let d = dispute(c6, c8 - 1);
        assert_eq!(d.check(), Ok(Party::Auditor));
        // An accusation that does not fail the rule accuses nothing.
        assert_eq!(
            dispute(c6 - 1, c8).check(),
            Err(DisputeError::NoAccusation.into())
        );
    }

    #[test]
    fn every_tampering_with_a_pooled_dispute_is_refused() {
        let (c6, c8) = (rule().threshold(768), rule().threshold(1024));
        let good = dispute(c6, c8);
        let [ke, ka, kr] = keys();
        let fails = |f: &dyn Fn(&mut PoolDispute)| {
            let mut d = good.clone();
            f(&mut d);
            d.check().expect_err("tampered")
        };
        // The claimed party.
        fails(&|d| d.faulty = Party::Auditor);
        // The counts, under the same signatures.
        fails(&|d| d.referee.exceed -= 1);
        fails(&|d| d.auditor.exceed += 1);
        fails(&|d| d.referee.tokens += 1);
        // A count by another referee over another pool.
        fails(&|d| {
            let ids: Vec<Digest> = d.answers[1..].iter().map(|a| a.receipt.id).collect();
            d.referee = PoolVerdict::sign(&kr, d.scope.digest(&ids), 7 * 128, c8, rule());
        });
        // The referee's count of tokens, re-signed.
        fails(&|d| {
            d.referee = PoolVerdict::sign(&kr, d.referee.pool, 8 * 128 + 1, c8, rule());
        });
        // An answer dropped, swapped or edited.
        fails(&|d| {
            d.answers.pop();
        });
        fails(&|d| d.answers.swap(0, 1));
        fails(&|d| d.answers[3].transcript.tokens[0] = 12);
        fails(&|d| d.answers[3] = answer(&ke, 50, 128, 1_500, GPU));
        // A CPU answer in the pool.
        fails(&|d| d.answers[3] = answer(&ke, 3, 128, 1_003, "llama-cpp-2 0.1.160"));
        // Another window or executor: the receipts fall outside it.
        fails(&|d| d.scope.end_ms = 1_004);
        fails(&|d| d.scope.executor = ka.public());
        // Another beacon: the order and both digests change.
        fails(&|d| d.scope.beacon = [1; 32]);
        // The auditor's pool.
        fails(&|d| d.accused.swap(0, 1));
        fails(&|d| {
            d.accused.pop();
        });
        // Two rules.
        fails(&|d| {
            let r = PoolRule {
                exceed_ppm: 10_000,
                ..rule()
            };
            d.referee = PoolVerdict::sign(&kr, d.referee.pool, 8 * 128, c8, r);
        });
        // The parties: the executor counting its own pool, one party twice.
        fails(&|d| {
            d.auditor = PoolVerdict::sign(&ke, d.auditor.pool, 768, c6, rule());
        });
        fails(&|d| {
            d.referee = PoolVerdict::sign(&ka, d.referee.pool, 1024, c8, rule());
        });
        fails(&|d| d.version = 2);
        assert_eq!(good.check(), Ok(Party::Executor));
    }

    #[test]
    fn the_pool_threshold_tells_a_faint_substitute_from_honest_hardware() {
        // At 2.5% honest and 6.5% for the Q5_0 substitute
        // (`docs/llm-audit.md`), one 128-token answer cannot tell them
        // apart, a pool of a few thousand tokens can.
        let r = rule();
        let c128 = r.threshold(128);
        assert!(c128 as f64 > 0.065 * 128.0, "{c128}");
        let c4096 = r.threshold(4096);
        assert!((c4096 as f64) < 0.065 * 4096.0 * 0.8, "{c4096}");
        assert!((c4096 as f64) > 0.025 * 4096.0, "{c4096}");
    }
}
