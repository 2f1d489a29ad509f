//! Disputes: an auditor's re-execution disagrees with an executor's
//! receipt. The two bisect their trace commitments to the first step whose
//! inputs agree (every earlier leaf is proven equal) and whose outputs
//! differ; a referee, neither of them, recomputes that step's leaf and
//! signs what it found. A [`Dispute`] holds all of it and
//! [`Dispute::check`] re-checks it offline: both receipts, the bisection,
//! and the referee's signature, and names the faulty party.
//!
//! A generated answer is disputed differently ([`LlmDispute`]): its trace
//! is one leaf per token, and whether a token is right is a tolerance
//! check by teacher forcing rather than an equality of leaves. The auditor
//! signs the first token its check rejects ([`TokenVerdict`]); a referee
//! runs the same check on the same transcript and signs what it finds; the
//! record carries the executor's receipt and transcript, so anyone holding
//! the model can run the check a third time.

use serde::{Deserialize, Serialize};

use crate::Signature;
use crate::digest::{Digest, Hasher, Kind};
use crate::encode::Sink;
use crate::keys::{PublicKey, SecretKey};
use crate::llm::Transcript;
use crate::merkle::{self, BisectError, Descent};
use crate::receipt::{Receipt, ReceiptError};
use crate::tensor::TensorMap;

/// Dispute record format version.
pub const DISPUTE_VERSION: u8 = 1;

/// How many operators at the head of a dispute's [`referee_draw`] may
/// referee it: the auditor asks them in order, so up to two may be offline.
pub const REFEREE_DRAW: usize = 3;

/// Who a draw runs over and what seeds it beside the receipt: the
/// operators that may be drawn (their signing keys) with their weights,
/// and a beacon.
///
/// On a ledger the weights are the operators' bonded stake and the beacon
/// is the randomness of the first block at least `beacon_delay_ms` after
/// the receipt's timestamp (`vouch_ledger::Ledger::draw_pool`): when the
/// executor signed, that block did not exist, so no choice of its (a
/// nonce, a timestamp, an output) lets it steer who audits or referees
/// its answer. A client refuses a receipt stamped far from its own clock
/// ([`crate::receipt::MAX_CLOCK_SKEW_MS`]), so an executor cannot backdate
/// one to a beacon it already knows. Without a ledger every admitted
/// operator weighs 1 and there is no beacon: the executor cannot pick the
/// auditor's key, but it can grind its receipt.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pool {
    /// The operators that may be drawn, by signing key, each with its
    /// weight (0 weighs nothing and is never drawn).
    pub weights: std::collections::BTreeMap<PublicKey, u64>,
    /// Randomness from a ledger block after the receipt, if any.
    pub beacon: Option<[u8; 32]>,
}

impl Pool {
    /// Every key in `admitted` with weight 1, and no beacon.
    pub fn uniform<'a>(admitted: impl IntoIterator<Item = &'a PublicKey>) -> Pool {
        Pool {
            weights: admitted.into_iter().map(|k| (*k, 1)).collect(),
            beacon: None,
        }
    }

    /// Whether `key` may be drawn.
    pub fn admits(&self, key: &PublicKey) -> bool {
        self.weights.get(key).is_some_and(|w| *w > 0)
    }

    /// The same pool restricted to `keys`.
    pub fn only(&self, keys: impl Fn(&PublicKey) -> bool) -> Pool {
        Pool {
            weights: self
                .weights
                .iter()
                .filter(|(k, _)| keys(k))
                .map(|(k, w)| (*k, *w))
                .collect(),
            beacon: self.beacon,
        }
    }
}

/// The order in which the operators of `pool` (the parties left out) may
/// referee a dispute over receipt `executor_receipt` raised by `auditor`:
/// a draw weighted by the pool's weights (`docs/ledger.md`, Draws), seeded
/// by the receipt, the auditor and the pool's beacon. Neither party picks
/// its referee.
pub fn referee_draw(
    executor_receipt: &Digest,
    executor: &PublicKey,
    auditor: &PublicKey,
    pool: &Pool,
) -> Vec<PublicKey> {
    draw(
        b"vouch v2 referee draw\0",
        executor_receipt,
        Some(auditor),
        pool,
        |k| k != executor && k != auditor,
    )
}

/// How many operators at the head of a receipt's [`auditor_draw`] may
/// audit it: only they receive its inputs, outputs or transcript.
pub const AUDITOR_DRAW: usize = 3;

/// The order in which the operators of `pool` (admitted operators serving
/// the model; the executor left out) may audit receipt `receipt`: a draw
/// weighted by the pool's weights, seeded by the receipt and the pool's
/// beacon. The executor hands a request's data to the first
/// [`AUDITOR_DRAW`] only, so a user's inputs reach a few auditors rather
/// than any peer that asks, and each of them audits it with the network's
/// sampling rate.
pub fn auditor_draw(receipt: &Digest, executor: &PublicKey, pool: &Pool) -> Vec<PublicKey> {
    draw(b"vouch v2 auditor draw\0", receipt, None, pool, |k| {
        k != executor
    })
}

/// The order in which the operators of `pool` (on a ledger: the staked
/// operators but the dispute's three parties, with the beacon of the block
/// after the appeal) sit on the panel that judges an appeal of the
/// conviction on receipt `receipt`; the ledger seats the first
/// `appeal_panel`.
pub fn appeal_draw(receipt: &Digest, pool: &Pool) -> Vec<PublicKey> {
    draw(b"vouch v2 appeal draw\0", receipt, None, pool, |_| true)
}

/// The order in which the operators of `pool` (on a ledger: the staked
/// operators serving the model, weighted by stake) join a quorum a gateway
/// forms, seeded by `seed`, randomness private to the gateway: no
/// executor can tell whether, or with whom, it will sit on a quorum, and
/// many small operators weigh no more than one with the same stake.
pub fn quorum_draw(seed: &[u8; 32], pool: &Pool) -> Vec<PublicKey> {
    let seed = Digest::from_bytes(Kind::Receipt, *seed);
    draw(b"vouch v2 quorum draw\0", &seed, None, pool, |_| true)
}

/// The keys of `pool` that `eligible` accepts, in the order of a weighted
/// draw without replacement: round `i` takes
/// `u = H_receipt(domain || receipt || salt || beacon || u64 i)` (salt and
/// beacon where present), reads its first 16 bytes as a little-endian
/// u128, and picks the key whose cumulative weight range, in key order,
/// holds `u mod (total weight left)`; the picked key leaves the pool.
/// Integers only, so every platform draws the same order.
fn draw(
    domain: &[u8],
    receipt: &Digest,
    salt: Option<&PublicKey>,
    pool: &Pool,
    eligible: impl Fn(&PublicKey) -> bool,
) -> Vec<PublicKey> {
    let mut left: Vec<(PublicKey, u64)> = pool
        .weights
        .iter()
        .filter(|(k, w)| **w > 0 && eligible(k))
        .map(|(k, w)| (*k, *w))
        .collect();
    let mut total: u128 = left.iter().map(|(_, w)| u128::from(*w)).sum();
    let mut order = Vec::with_capacity(left.len());
    let mut round = 0u64;
    while !left.is_empty() {
        let mut h = Hasher::new(Kind::Receipt);
        h.put(domain);
        h.put(receipt.as_bytes());
        if let Some(salt) = salt {
            h.put(salt.as_bytes());
        }
        if let Some(beacon) = &pool.beacon {
            h.put(beacon);
        }
        h.put(&round.to_le_bytes());
        let u = u128::from_le_bytes(h.finalize().as_bytes()[..16].try_into().expect("16 bytes"));
        let mut at = u % total;
        let i = left
            .iter()
            .position(|(_, w)| {
                let w = u128::from(*w);
                if at < w {
                    true
                } else {
                    at -= w;
                    false
                }
            })
            .expect("the point falls within the total weight");
        let (key, weight) = left.remove(i);
        total -= u128::from(weight);
        order.push(key);
        round += 1;
    }
    order
}

/// Checks that a dispute's verdict comes from parties that count: the
/// auditor and the referee are in the pool (admitted or, on a ledger,
/// staked operators), and the referee is one of the first
/// [`REFEREE_DRAW`] of the [`referee_draw`] over it. Anyone can mint
/// keys, so a dispute between strangers proves nothing without this (or a
/// re-execution by whoever counts it).
pub fn check_parties(
    executor_receipt: &Digest,
    executor: &PublicKey,
    auditor: &PublicKey,
    referee: &PublicKey,
    pool: &Pool,
) -> Result<(), DisputeError> {
    for (role, key) in [("auditor", auditor), ("referee", referee)] {
        if !pool.admits(key) {
            return Err(DisputeError::NotAdmitted(role, key.to_string()));
        }
    }
    let draw = referee_draw(executor_receipt, executor, auditor, pool);
    if !draw.iter().take(REFEREE_DRAW).any(|k| k == referee) {
        return Err(DisputeError::NotDrawn(referee.to_string()));
    }
    Ok(())
}

/// Who computed a disputed step wrongly, by the leaf a third computation
/// of it gave: the executor when it matches the auditor's leaf, the
/// auditor when it matches the executor's, neither (`None`) otherwise.
pub fn faulty_by_leaf(leaf: &Digest, executor: &Descent, auditor: &Descent) -> Option<Party> {
    if *leaf == auditor.leaf {
        Some(Party::Executor)
    } else if *leaf == executor.leaf {
        Some(Party::Auditor)
    } else {
        None
    }
}

/// Who computed the disputed step wrongly.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Party {
    /// The node that signed the receipt under audit.
    Executor,
    /// The node that re-executed it.
    Auditor,
}

/// A referee's signed statement of the leaf it computed for the disputed
/// step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Verdict {
    /// The referee's operator key.
    pub referee: PublicKey,
    /// The leaf the referee computed at the disputed step.
    pub leaf: Digest,
    /// ed25519 signature over [`Verdict::message`].
    #[serde(with = "crate::receipt::sig_hex")]
    pub signature: Signature,
}

impl Verdict {
    /// What a referee signs: a domain-separated digest of the model, the
    /// request, the step and the leaf it computed.
    pub fn message(model: &Digest, request: &Digest, step: u64, leaf: &Digest) -> Digest {
        let mut h = Hasher::new(Kind::Receipt);
        h.put(b"vouch v1 verdict\0");
        h.put(model.as_bytes());
        h.put(request.as_bytes());
        h.put_u64(step);
        h.put(leaf.as_bytes());
        h.finalize()
    }

    /// Signs the leaf `key` computed for `step` of `model` on `request`.
    pub fn sign(
        key: &SecretKey,
        model: &Digest,
        request: &Digest,
        step: u64,
        leaf: Digest,
    ) -> Verdict {
        let msg = Verdict::message(model, request, step, &leaf);
        Verdict {
            referee: key.public(),
            leaf,
            signature: key.sign(msg.as_bytes()),
        }
    }
}

/// Everything needed to re-check a dispute offline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dispute {
    /// Format version ([`DISPUTE_VERSION`]).
    pub version: u8,
    /// The receipt under audit.
    pub executor: Receipt,
    /// The auditor's receipt for its re-execution of the same request.
    pub auditor: Receipt,
    /// The disputed step (the first leaf where the traces differ).
    pub step: u64,
    /// The step's name in the engine's plan, when known (informative).
    #[serde(default)]
    pub step_name: Option<String>,
    /// What the executor revealed during the bisection.
    pub executor_descent: Descent,
    /// What the auditor revealed.
    pub auditor_descent: Descent,
    /// The referee's verdict.
    pub verdict: Verdict,
    /// Which party the verdict finds faulty.
    pub faulty: Party,
}

/// Why a dispute does not check out.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum DisputeError {
    /// A format version this code does not know.
    #[error("dispute version {0} is not supported (this verifier knows version 1)")]
    Version(u8),
    /// One of the receipts does not verify.
    #[error("the {0:?}'s receipt does not verify: {1}")]
    Receipt(Party, ReceiptError),
    /// The receipts are not for the same model and request.
    #[error("the receipts are for different {0}")]
    Mismatch(&'static str),
    /// The inputs given are not the request's.
    #[error("the inputs given are not the ones both receipts name: {0}")]
    Inputs(ReceiptError),
    /// The bisection does not replay.
    #[error("the bisection does not replay: {0}")]
    Bisection(#[from] BisectError),
    /// The recorded step is not where the bisection ends.
    #[error("the bisection ends at step {found}, the dispute names step {claimed}")]
    Step {
        /// Where the record says.
        claimed: u64,
        /// Where the replay ends.
        found: u64,
    },
    /// The referee is one of the parties.
    #[error("the referee {0} is a party to the dispute")]
    RefereeIsParty(String),
    /// The verdict's signature does not verify.
    #[error("the verdict is not signed by referee {0}")]
    BadVerdict(String),
    /// The referee's leaf matches neither party.
    #[error("the referee's leaf matches neither party: the dispute is unresolved")]
    Unresolved,
    /// An LLM transcript is not the one the executor's receipt signs.
    #[error("the transcript is not the one the executor's receipt signs: {0}")]
    Transcript(String),
    /// A token verdict is about another receipt.
    #[error("the {0}'s verdict is about receipt {1}, not the executor's")]
    VerdictReceipt(&'static str, String),
    /// The auditor's verdict accuses no token.
    #[error("the auditor's verdict names no failing token: there is nothing in dispute")]
    NoAccusation,
    /// The auditor's verdict is not signed by its key.
    #[error("the auditor's verdict is not signed by {0}")]
    BadAccusation(String),
    /// The auditor audited its own receipt.
    #[error("the auditor {0} signed the receipt it audits")]
    AuditorIsExecutor(String),
    /// A party is not an admitted operator.
    #[error(
        "the {0} {1} is not an admitted operator: its word proves nothing (re-execute the disputed step to settle it)"
    )]
    NotAdmitted(&'static str, String),
    /// The referee is not one the draw picks.
    #[error("the referee {0} is not among the first operators the dispute's draw picks")]
    NotDrawn(String),
    /// The record names the other party than the verdict does.
    #[error("the record says the {claimed:?} is faulty; the verdict says the {found:?}")]
    Faulty {
        /// What the record says.
        claimed: Party,
        /// What the verdict shows.
        found: Party,
    },
}

impl Dispute {
    /// [`check_parties`] for this dispute.
    pub fn check_parties(&self, pool: &Pool) -> Result<(), DisputeError> {
        check_parties(
            &self.executor.id,
            &self.executor.body.node,
            &self.auditor.body.node,
            &self.verdict.referee,
            pool,
        )
    }

    /// [`faulty_by_leaf`] for this dispute's two descents.
    pub fn faulty_by_leaf(&self, leaf: &Digest) -> Option<Party> {
        faulty_by_leaf(leaf, &self.executor_descent, &self.auditor_descent)
    }

    /// Re-checks everything offline and returns the faulty party. Given
    /// `inputs`, also checks both receipts name them.
    pub fn check(&self, inputs: Option<&TensorMap>) -> Result<Party, DisputeError> {
        if self.version != DISPUTE_VERSION {
            return Err(DisputeError::Version(self.version));
        }
        let (e, a) = (&self.executor, &self.auditor);
        e.verify()
            .map_err(|err| DisputeError::Receipt(Party::Executor, err))?;
        a.verify()
            .map_err(|err| DisputeError::Receipt(Party::Auditor, err))?;
        if e.body.model != a.body.model {
            return Err(DisputeError::Mismatch("models"));
        }
        if e.body.request != a.body.request {
            return Err(DisputeError::Mismatch("requests"));
        }
        if e.body.engine != a.body.engine {
            return Err(DisputeError::Mismatch("engines"));
        }
        if let Some(inputs) = inputs {
            e.verify_inputs(inputs).map_err(DisputeError::Inputs)?;
        }
        if a.body.trace.len != e.body.trace.len {
            return Err(BisectError::Lengths(e.body.trace.len, a.body.trace.len).into());
        }
        let found = merkle::first_difference(
            e.body.trace.len,
            e.body.trace.root,
            &self.executor_descent,
            a.body.trace.root,
            &self.auditor_descent,
        )?;
        if found != self.step {
            return Err(DisputeError::Step {
                claimed: self.step,
                found,
            });
        }
        let v = &self.verdict;
        if v.referee == e.body.node || v.referee == a.body.node {
            return Err(DisputeError::RefereeIsParty(v.referee.to_string()));
        }
        let msg = Verdict::message(&e.body.model, &e.body.request, self.step, &v.leaf);
        if !v.referee.verify(msg.as_bytes(), &v.signature) {
            return Err(DisputeError::BadVerdict(v.referee.to_string()));
        }
        let faulty = self
            .faulty_by_leaf(&v.leaf)
            .ok_or(DisputeError::Unresolved)?;
        if faulty != self.faulty {
            return Err(DisputeError::Faulty {
                claimed: self.faulty,
                found: faulty,
            });
        }
        Ok(faulty)
    }
}

/// An operator's signed result of a teacher-forced check of an LLM
/// receipt's transcript: the first generated token that fails, or none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenVerdict {
    /// The checking operator's key.
    pub signer: PublicKey,
    /// The receipt checked.
    pub receipt: Digest,
    /// The first generated token (0-based) the check rejects; `None`:
    /// every token passes.
    pub failed_at: Option<u64>,
    /// Why, in words (signed with the rest).
    pub reason: String,
    /// ed25519 signature over [`TokenVerdict::message`].
    #[serde(with = "crate::receipt::sig_hex")]
    pub signature: Signature,
}

impl TokenVerdict {
    /// What is signed: `H_receipt("vouch v1 token verdict\0" || receipt ||
    /// u8 failed || u64 failed_at (0 when none) || str reason)`.
    pub fn message(receipt: &Digest, failed_at: Option<u64>, reason: &str) -> Digest {
        let mut h = Hasher::new(Kind::Receipt);
        h.put(b"vouch v1 token verdict\0");
        h.put(receipt.as_bytes());
        h.put(&[u8::from(failed_at.is_some())]);
        h.put_u64(failed_at.unwrap_or(0));
        h.put_str(reason);
        h.finalize()
    }

    /// Signs the outcome of `key`'s check of `receipt`.
    pub fn sign(
        key: &SecretKey,
        receipt: &Digest,
        failed_at: Option<u64>,
        reason: String,
    ) -> TokenVerdict {
        let msg = TokenVerdict::message(receipt, failed_at, &reason);
        TokenVerdict {
            signer: key.public(),
            receipt: *receipt,
            failed_at,
            reason,
            signature: key.sign(msg.as_bytes()),
        }
    }

    /// Whether the signature is the signer's.
    pub fn verifies(&self) -> bool {
        let msg = TokenVerdict::message(&self.receipt, self.failed_at, &self.reason);
        self.signer.verify(msg.as_bytes(), &self.signature)
    }
}

/// A disputed LLM answer: the executor's receipt and transcript, the
/// auditor's signed accusation and the referee's signed check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LlmDispute {
    /// Format version ([`DISPUTE_VERSION`]).
    pub version: u8,
    /// The receipt under audit.
    pub executor: Receipt,
    /// The transcript it signs.
    pub transcript: Transcript,
    /// The auditor's verdict: the first token its check rejects.
    pub auditor: TokenVerdict,
    /// The referee's verdict on the same transcript.
    pub referee: TokenVerdict,
    /// Which party the referee's verdict finds faulty.
    pub faulty: Party,
}

impl LlmDispute {
    /// [`check_parties`] for this dispute.
    pub fn check_parties(&self, pool: &Pool) -> Result<(), DisputeError> {
        check_parties(
            &self.executor.id,
            &self.executor.body.node,
            &self.auditor.signer,
            &self.referee.signer,
            pool,
        )
    }

    /// Re-checks everything that can be checked without the model (the
    /// receipt, that the transcript is the one it signs, both signed
    /// verdicts and that the referee is a third operator) and returns the
    /// faulty party: the executor when the referee's check also rejects a
    /// token, the auditor when it passes them all.
    pub fn check(&self) -> Result<Party, DisputeError> {
        if self.version != DISPUTE_VERSION {
            return Err(DisputeError::Version(self.version));
        }
        let e = &self.executor;
        e.verify()
            .map_err(|err| DisputeError::Receipt(Party::Executor, err))?;
        self.transcript
            .verify(e)
            .map_err(DisputeError::Transcript)?;
        let (a, r) = (&self.auditor, &self.referee);
        for (role, v) in [("auditor", a), ("referee", r)] {
            if v.receipt != e.id {
                return Err(DisputeError::VerdictReceipt(role, v.receipt.to_string()));
            }
        }
        if a.signer == e.body.node {
            return Err(DisputeError::AuditorIsExecutor(a.signer.to_string()));
        }
        if a.failed_at.is_none() {
            return Err(DisputeError::NoAccusation);
        }
        if !a.verifies() {
            return Err(DisputeError::BadAccusation(a.signer.to_string()));
        }
        if r.signer == e.body.node || r.signer == a.signer {
            return Err(DisputeError::RefereeIsParty(r.signer.to_string()));
        }
        if !r.verifies() {
            return Err(DisputeError::BadVerdict(r.signer.to_string()));
        }
        let faulty = if r.failed_at.is_some() {
            Party::Executor
        } else {
            Party::Auditor
        };
        if faulty != self.faulty {
            return Err(DisputeError::Faulty {
                claimed: self.faulty,
                found: faulty,
            });
        }
        Ok(faulty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{Bisection, children, root};
    use crate::receipt::{Determinism, EngineInfo, ReceiptBody, TraceCommitment};

    fn leaves(n: usize, wrong_from: usize) -> Vec<Digest> {
        (0..n)
            .map(|i| {
                let tag = if i >= wrong_from { 0xee } else { 0 };
                Digest::of(Kind::TraceLeaf, &[i as u8, tag])
            })
            .collect()
    }

    fn receipt(key: &SecretKey, leaves: &[Digest]) -> Receipt {
        ReceiptBody {
            version: 1,
            model: Digest::of(Kind::Model, b"m"),
            request: Digest::of(Kind::Input, b"in"),
            output: Digest::of(
                Kind::Output,
                &[leaves.len() as u8, leaves[leaves.len() - 1].as_bytes()[0]],
            ),
            trace: TraceCommitment {
                root: root(leaves),
                len: leaves.len() as u64,
            },
            engine: EngineInfo {
                name: "tract-onnx".into(),
                version: "0.23.9".into(),
            },
            determinism: Determinism::Exact,
            seed: None,
            node: key.public(),
            nonce: String::new(),
            timestamp_ms: 1,
            price: 0,
        }
        .sign(key)
    }

    /// A dispute between a lying executor and an honest auditor, refereed
    /// by a third key that computed `referee_leaf`.
    fn dispute(referee_leaf: impl Fn(&[Digest], &[Digest], usize) -> Digest) -> Dispute {
        let (ke, ka, kr) = (
            SecretKey::from_bytes(&[1; 32]),
            SecretKey::from_bytes(&[2; 32]),
            SecretKey::from_bytes(&[3; 32]),
        );
        let (lying, honest) = (leaves(13, 6), leaves(13, 99));
        let (e, a) = (receipt(&ke, &lying), receipt(&ka, &honest));
        let mut bis = Bisection::new(13, e.body.trace.root, 13, a.body.trace.root).unwrap();
        while let Some((lo, hi)) = bis.next() {
            let (lo, hi) = (lo as usize, hi as usize);
            bis.step(
                children(&lying, lo, hi).unwrap(),
                children(&honest, lo, hi).unwrap(),
            )
            .unwrap();
        }
        let i = bis.index() as usize;
        let (step, de, da) = bis.finish(lying[i], honest[i]).unwrap();
        let verdict = Verdict::sign(
            &kr,
            &e.body.model,
            &e.body.request,
            step,
            referee_leaf(&lying, &honest, i),
        );
        Dispute {
            version: DISPUTE_VERSION,
            executor: e,
            auditor: a,
            step,
            step_name: None,
            executor_descent: de,
            auditor_descent: da,
            verdict,
            faulty: Party::Executor,
        }
    }

    #[test]
    fn an_honest_referee_names_the_liar_and_every_tampering_fails() {
        let d = dispute(|_, honest, i| honest[i]);
        assert_eq!(d.step, 6);
        assert_eq!(d.check(None), Ok(Party::Executor));
        // Survives JSON.
        let back: Dispute = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back.check(None), Ok(Party::Executor));

        let mut t = d.clone();
        t.faulty = Party::Auditor;
        assert!(matches!(t.check(None), Err(DisputeError::Faulty { .. })));
        let mut t = d.clone();
        t.step = 5;
        assert!(matches!(t.check(None), Err(DisputeError::Step { .. })));
        let mut t = d.clone();
        t.verdict.leaf = t.executor_descent.leaf;
        assert!(matches!(t.check(None), Err(DisputeError::BadVerdict(_))));
        let mut t = d.clone();
        t.auditor_descent.levels[0].1 = Digest::of(Kind::TraceNode, b"x");
        assert!(matches!(t.check(None), Err(DisputeError::Bisection(_))));
        let mut t = d.clone();
        t.executor.body.price = 9;
        assert!(matches!(
            t.check(None),
            Err(DisputeError::Receipt(Party::Executor, _))
        ));
        let mut t = d.clone();
        t.verdict = Verdict::sign(
            &SecretKey::from_bytes(&[1; 32]),
            &d.executor.body.model,
            &d.executor.body.request,
            d.step,
            d.auditor_descent.leaf,
        );
        assert!(matches!(
            t.check(None),
            Err(DisputeError::RefereeIsParty(_))
        ));
        let mut t = d.clone();
        t.version = 2;
        assert!(matches!(t.check(None), Err(DisputeError::Version(2))));
    }

    #[test]
    fn a_referee_that_agrees_with_the_executor_faults_the_auditor() {
        let mut d = dispute(|lying, _, i| lying[i]);
        assert!(matches!(d.check(None), Err(DisputeError::Faulty { .. })));
        d.faulty = Party::Auditor;
        assert_eq!(d.check(None), Ok(Party::Auditor));
        let d = dispute(|_, _, _| Digest::of(Kind::TraceLeaf, b"neither"));
        assert_eq!(d.check(None), Err(DisputeError::Unresolved));
    }

    /// A framer mints its own auditor and referee keys: the dispute checks
    /// offline, but its parties are not admitted; with admitted parties,
    /// only a referee the draw picks counts.
    #[test]
    fn only_admitted_parties_and_a_drawn_referee_count() {
        let d = dispute(|_, honest, i| honest[i]);
        let (e, a, r) = (d.executor.body.node, d.auditor.body.node, d.verdict.referee);
        assert_eq!(d.check(None), Ok(Party::Executor));
        assert!(matches!(
            d.check_parties(&Pool::default()),
            Err(DisputeError::NotAdmitted("auditor", _))
        ));
        assert!(matches!(
            d.check_parties(&Pool::uniform(&[e, a])),
            Err(DisputeError::NotAdmitted("referee", _))
        ));
        let three = Pool::uniform(&[e, a, r]);
        assert_eq!(d.check_parties(&three), Ok(()));
        // A weight of 0 is not admitted.
        let mut zero = three.clone();
        zero.weights.insert(r, 0);
        assert!(matches!(
            d.check_parties(&zero),
            Err(DisputeError::NotAdmitted("referee", _))
        ));
        // Among many admitted operators, the referee must be drawn.
        let mut many = three.clone();
        many.weights
            .extend((10u8..40).map(|b| (SecretKey::from_bytes(&[b; 32]).public(), 1)));
        let draw = referee_draw(&d.executor.id, &e, &a, &many);
        assert_eq!(draw.len(), many.weights.len() - 2);
        assert!(!draw.contains(&e) && !draw.contains(&a));
        let at = draw.iter().position(|k| *k == r).unwrap();
        assert_eq!(d.check_parties(&many).is_ok(), at < REFEREE_DRAW);
        // The draw depends on the receipt, the auditor and the beacon.
        let other = referee_draw(&Digest::of(Kind::Receipt, b"other"), &e, &a, &many);
        assert_ne!(draw, other);
        let other = referee_draw(&d.executor.id, &e, &r, &many);
        assert_ne!(draw[..5], other[..5]);
        let beaconed = Pool {
            beacon: Some([7; 32]),
            ..many.clone()
        };
        assert_ne!(draw, referee_draw(&d.executor.id, &e, &a, &beaconed));
    }

    fn keys(n: u8) -> Vec<PublicKey> {
        (1..=n)
            .map(|b| SecretKey::from_bytes(&[b; 32]).public())
            .collect()
    }

    #[test]
    fn the_auditor_draw_leaves_out_the_executor_and_varies_by_receipt() {
        let keys = keys(19);
        let pool = Pool::uniform(&keys);
        let r1 = Digest::of(Kind::Receipt, b"one");
        let r2 = Digest::of(Kind::Receipt, b"two");
        let d1 = auditor_draw(&r1, &keys[0], &pool);
        assert_eq!(d1.len(), keys.len() - 1);
        assert!(!d1.contains(&keys[0]));
        // The same inputs give the same order, in any order of candidates.
        assert_eq!(
            d1,
            auditor_draw(&r1, &keys[0], &Pool::uniform(keys.iter().rev()))
        );
        assert_ne!(
            d1[..AUDITOR_DRAW],
            auditor_draw(&r2, &keys[0], &pool)[..AUDITOR_DRAW]
        );
    }

    /// The first drawn is drawn in proportion to weight: over 6,000
    /// receipts, an operator with 6 of 10 units of stake comes first about
    /// 60% of the time, one with 1 unit about 10%, and one with none never.
    #[test]
    fn draws_follow_stake() {
        let keys = keys(5);
        let mut pool = Pool {
            weights: keys.iter().copied().zip([0u64, 6, 2, 1, 1]).collect(),
            beacon: Some([3; 32]),
        };
        let executor = SecretKey::from_bytes(&[99; 32]).public();
        let mut first = std::collections::BTreeMap::<PublicKey, u32>::new();
        let n: u32 = 6_000;
        for i in 0..n {
            let receipt = Digest::of(Kind::Receipt, &i.to_le_bytes());
            let order = auditor_draw(&receipt, &executor, &pool);
            assert_eq!(order.len(), 4, "the weightless operator is never drawn");
            *first.entry(order[0]).or_default() += 1;
        }
        let share = |k: usize| f64::from(first.get(&keys[k]).copied().unwrap_or(0)) / f64::from(n);
        assert_eq!(share(0), 0.0);
        assert!((share(1) - 0.6).abs() < 0.03, "{}", share(1));
        assert!((share(2) - 0.2).abs() < 0.03, "{}", share(2));
        assert!((share(3) - 0.1).abs() < 0.02, "{}", share(3));
        // Huge stakes do not overflow.
        pool.weights = keys.iter().map(|k| (*k, u64::MAX)).collect();
        let order = auditor_draw(&Digest::of(Kind::Receipt, b"x"), &executor, &pool);
        assert_eq!(order.len(), 5);
    }

    /// A quorum's members come in a different order for each seed, each
    /// operator first about as often as its share of the stake.
    #[test]
    fn quorum_draws_follow_stake_and_the_seed() {
        let keys = keys(3);
        let pool = Pool {
            weights: keys.iter().copied().zip([1u64, 1, 2]).collect(),
            beacon: None,
        };
        let mut first = [0u32; 3];
        for i in 0..4_000u32 {
            let mut seed = [0u8; 32];
            seed[..4].copy_from_slice(&i.to_le_bytes());
            let order = quorum_draw(&seed, &pool);
            assert_eq!(order.len(), 3);
            first[keys.iter().position(|k| *k == order[0]).unwrap()] += 1;
        }
        let share = |i: usize| f64::from(first[i]) / 4_000.0;
        assert!((share(2) - 0.5).abs() < 0.03, "{first:?}");
        assert!((share(0) - 0.25).abs() < 0.03, "{first:?}");
    }

    /// An executor that grinds its receipt (here: its timestamp) until the
    /// draw without a beacon hands its audit to an accomplice succeeds at
    /// once; the same receipts under a beacon it could not know when it
    /// signed are audited by the accomplice only as often as its stake
    /// says.
    #[test]
    fn grinding_a_receipt_does_not_steer_a_beaconed_draw() {
        let keys = keys(6);
        let (executor, accomplice) = (keys[0], keys[1]);
        let open = Pool::uniform(&keys);
        let mut ground = Vec::new();
        let mut tries = 0u64;
        while ground.len() < 300 {
            tries += 1;
            let receipt = Digest::of(Kind::Receipt, &tries.to_le_bytes());
            if auditor_draw(&receipt, &executor, &open)[0] == accomplice {
                ground.push(receipt);
            }
        }
        // A fifth of the tries: grinding is cheap.
        assert!(tries < 300 * 10);
        let beaconed = Pool {
            beacon: Some(*Digest::of(Kind::Receipt, b"a later block").as_bytes()),
            ..open
        };
        let still = ground
            .iter()
            .filter(|r| auditor_draw(r, &executor, &beaconed)[0] == accomplice)
            .count();
        assert!(still < 300 * 3 / 10, "{still} of 300");
    }
}

#[cfg(test)]
mod llm_tests {
    use super::*;
    use crate::llm::{Finish, LlmRequest, Sampling};
    use crate::receipt::{Determinism, EngineInfo, ReceiptBody, TraceCommitment};

    fn keys() -> [SecretKey; 3] {
        [1u8, 2, 3].map(|b| SecretKey::from_bytes(&[b; 32]))
    }

    /// An executor's answer, an auditor's accusation at token 1 and a
    /// referee's verdict (`referee_fails`: whether its check fails too).
    fn dispute(referee_fails: bool) -> LlmDispute {
        let [ke, ka, kr] = keys();
        let transcript = Transcript {
            request: LlmRequest::completion(
                "The capital of France is",
                3,
                Sampling {
                    temperature: 0.0,
                    top_p: 1.0,
                    top_k: 0,
                    seed: 7,
                },
            ),
            tokens: vec![11, 12, 13],
            texts: vec![" Paris".into(), ".".into(), String::new()],
            finish_reason: Finish::Length,
            logprobs: vec![],
        };
        let executor = ReceiptBody {
            version: 1,
            model: Digest::of(Kind::Model, b"llm"),
            request: transcript.request.digest(),
            output: transcript.chain().output(Finish::Length),
            trace: TraceCommitment {
                root: Digest::of(Kind::TraceNode, b"t"),
                len: 3,
            },
            engine: EngineInfo {
                name: "llama.cpp".into(),
                version: "x".into(),
            },
            determinism: Determinism::Tolerant { rtol: 1e-3 },
            seed: Some(7),
            node: ke.public(),
            nonce: String::new(),
            timestamp_ms: 1,
            price: 0,
        }
        .sign(&ke);
        let auditor =
            TokenVerdict::sign(&ka, &executor.id, Some(1), "token 1: not the argmax".into());
        let referee = if referee_fails {
            TokenVerdict::sign(&kr, &executor.id, Some(1), "token 1: not the argmax".into())
        } else {
            TokenVerdict::sign(&kr, &executor.id, None, String::new())
        };
        LlmDispute {
            version: DISPUTE_VERSION,
            executor,
            transcript,
            auditor,
            referee,
            faulty: if referee_fails {
                Party::Executor
            } else {
                Party::Auditor
            },
        }
    }

    #[test]
    fn the_referee_decides_and_every_tampering_fails() {
        let d = dispute(true);
        assert_eq!(d.check(), Ok(Party::Executor));
        let back: LlmDispute = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
        assert_eq!(back.check(), Ok(Party::Executor));
        assert_eq!(dispute(false).check(), Ok(Party::Auditor));

        let mut t = d.clone();
        t.faulty = Party::Auditor;
        assert!(matches!(t.check(), Err(DisputeError::Faulty { .. })));
        let mut t = d.clone();
        t.transcript.texts[0] = " Lyon".into();
        assert!(matches!(t.check(), Err(DisputeError::Transcript(_))));
        let mut t = d.clone();
        t.referee.failed_at = None;
        assert!(matches!(t.check(), Err(DisputeError::BadVerdict(_))));
        let mut t = d.clone();
        t.auditor.failed_at = Some(2);
        assert!(matches!(t.check(), Err(DisputeError::BadAccusation(_))));
        let [ke, ka, _] = keys();
        let mut t = d.clone();
        t.auditor = TokenVerdict::sign(&ka, &d.executor.id, None, String::new());
        assert_eq!(t.check(), Err(DisputeError::NoAccusation));
        let mut t = d.clone();
        t.referee = TokenVerdict::sign(&ka, &d.executor.id, Some(1), String::new());
        assert!(matches!(t.check(), Err(DisputeError::RefereeIsParty(_))));
        let mut t = d.clone();
        t.auditor = TokenVerdict::sign(&ke, &d.executor.id, Some(1), String::new());
        assert!(matches!(t.check(), Err(DisputeError::AuditorIsExecutor(_))));
        let mut t = d.clone();
        t.referee = TokenVerdict::sign(
            &keys()[2],
            &Digest::of(Kind::Receipt, b"other"),
            Some(1),
            String::new(),
        );
        assert!(matches!(
            t.check(),
            Err(DisputeError::VerdictReceipt("referee", _))
        ));
        let mut t = d.clone();
        t.executor.body.price = 5;
        assert!(matches!(
            t.check(),
            Err(DisputeError::Receipt(Party::Executor, _))
        ));
    }
}
