//! Disputes: an auditor's re-execution disagrees with an executor's
//! receipt. The two bisect their trace commitments to the first step whose
//! inputs agree (every earlier leaf is proven equal) and whose outputs
//! differ; a referee, neither of them, recomputes that step's leaf and
//! signs what it found. A [`Dispute`] holds all of it and
//! [`Dispute::check`] re-checks it offline: both receipts, the bisection,
//! and the referee's signature, and names the faulty party.

use serde::{Deserialize, Serialize};

use crate::Signature;
use crate::digest::{Digest, Hasher, Kind};
use crate::encode::Sink;
use crate::keys::{PublicKey, SecretKey};
use crate::merkle::{self, BisectError, Descent};
use crate::receipt::{Receipt, ReceiptError};
use crate::tensor::TensorMap;

/// Dispute record format version.
pub const DISPUTE_VERSION: u8 = 1;

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
        let faulty = if v.leaf == self.auditor_descent.leaf {
            Party::Executor
        } else if v.leaf == self.executor_descent.leaf {
            Party::Auditor
        } else {
            return Err(DisputeError::Unresolved);
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
}
