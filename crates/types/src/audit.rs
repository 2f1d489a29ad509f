//! Audit reports: a drawn auditor's signed statement that it re-ran an
//! executor's receipt and the answer passed. The auditors' pool pays audits
//! from these reports (`docs/ledger.md`, Paying audits), so what it pays
//! for is an audit a named operator signed for a receipt it was drawn to
//! audit, never a count an operator claims.

use serde::{Deserialize, Serialize};

use crate::dispute::{AUDITOR_DRAW, Pool, auditor_draw};
use crate::encode::Sink;
use crate::receipt::{Receipt, ReceiptError};
use crate::{Digest, Hasher, Kind, PublicKey, SecretKey, Signature};

/// The version of [`AuditReport`] this code writes and reads.
pub const AUDIT_REPORT_VERSION: u8 = 1;

/// An auditor's report that executor receipt `receipt` passed its audit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Format version ([`AUDIT_REPORT_VERSION`]).
    pub version: u8,
    /// The executor's receipt, whole (the ledger checks its signature,
    /// price and time).
    pub receipt: Receipt,
    /// The auditor's receipt-signing key.
    pub auditor: PublicKey,
    /// What the auditor's own run gave: the `out:` digest of its outputs
    /// (within the model's class of the receipt's), or the receipt's own
    /// output where a teacher-forced check confirmed the transcript.
    pub output: Digest,
    /// When the auditor signed, in Unix milliseconds.
    pub timestamp_ms: u64,
    /// ed25519 signature by `auditor` over [`AuditReport::message`].
    #[serde(with = "crate::receipt::sig_hex")]
    pub signature: Signature,
}

/// Why an audit report does not check out.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum AuditReportError {
    /// A version this code does not know.
    #[error("audit report version {0} is not supported (this code knows version 1)")]
    Version(u8),
    /// The executor's receipt does not verify.
    #[error("the executor's receipt: {0}")]
    Receipt(ReceiptError),
    /// The auditor's signature does not verify.
    #[error("the auditor's signature does not verify over the report")]
    Signature,
    /// The auditor signed the receipt itself.
    #[error("the auditor {0} is the executor: nobody audits its own receipt")]
    OwnReceipt(String),
    /// The auditor was not drawn to audit the receipt.
    #[error(
        "{0} is not among the first {AUDITOR_DRAW} of the receipt's auditor draw: only drawn auditors are paid"
    )]
    NotDrawn(String),
}

impl AuditReport {
    /// What the auditor signs: `H_receipt("vouch v1 audit report\0" ||
    /// receipt id || out digest || u64 timestamp_ms)`.
    pub fn message(receipt: &Digest, output: &Digest, timestamp_ms: u64) -> Digest {
        let mut h = Hasher::new(Kind::Receipt);
        h.put(b"vouch v1 audit report\0");
        h.put(receipt.as_bytes());
        h.put(output.as_bytes());
        h.put_u64(timestamp_ms);
        h.finalize()
    }

    /// `key`'s report that `receipt` passed, its own run giving `output`.
    pub fn sign(key: &SecretKey, receipt: Receipt, output: Digest, timestamp_ms: u64) -> Self {
        let signature = key.sign(Self::message(&receipt.id, &output, timestamp_ms).as_bytes());
        AuditReport {
            version: AUDIT_REPORT_VERSION,
            receipt,
            auditor: key.public(),
            output,
            timestamp_ms,
            signature,
        }
    }

    /// Checks everything that needs no ledger: the version, the executor's
    /// receipt, the auditor's signature, and that the auditor is not the
    /// executor.
    pub fn check(&self) -> Result<(), AuditReportError> {
        if self.version != AUDIT_REPORT_VERSION {
            return Err(AuditReportError::Version(self.version));
        }
        self.receipt.verify().map_err(AuditReportError::Receipt)?;
        let msg = Self::message(&self.receipt.id, &self.output, self.timestamp_ms);
        if !self.auditor.verify(msg.as_bytes(), &self.signature) {
            return Err(AuditReportError::Signature);
        }
        if self.auditor == self.receipt.body.node {
            return Err(AuditReportError::OwnReceipt(self.auditor.to_string()));
        }
        Ok(())
    }

    /// Checks that the auditor is among the first [`AUDITOR_DRAW`] of the
    /// receipt's [`auditor_draw`] over `pool` (on a ledger: the staked
    /// operators that declare the model, with the receipt's beacon).
    pub fn check_drawn(&self, pool: &Pool) -> Result<(), AuditReportError> {
        let drawn = auditor_draw(&self.receipt.id, &self.receipt.body.node, pool);
        if drawn.iter().take(AUDITOR_DRAW).any(|k| *k == self.auditor) {
            Ok(())
        } else {
            Err(AuditReportError::NotDrawn(self.auditor.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::receipt::{Determinism, EngineInfo, ReceiptBody, TraceCommitment};

    fn receipt(key: &SecretKey) -> Receipt {
        ReceiptBody {
            version: 1,
            model: Digest::of(Kind::Model, b"m"),
            request: Digest::of(Kind::Input, b"in"),
            output: Digest::of(Kind::Output, b"out"),
            trace: TraceCommitment {
                root: Digest::of(Kind::TraceNode, b"t"),
                len: 1,
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
            price: 7,
        }
        .sign(key)
    }

    #[test]
    fn a_report_checks_and_every_tampering_fails() {
        let (executor, auditor) = (
            SecretKey::from_bytes(&[1; 32]),
            SecretKey::from_bytes(&[2; 32]),
        );
        let r = receipt(&executor);
        let out = r.body.output;
        let report = AuditReport::sign(&auditor, r.clone(), out, 5);
        assert_eq!(report.check(), Ok(()));
        let json = serde_json::to_string(&report).unwrap();
        assert_eq!(serde_json::from_str::<AuditReport>(&json).unwrap(), report);

        let mut t = report.clone();
        t.timestamp_ms += 1;
        assert_eq!(t.check(), Err(AuditReportError::Signature));
        let mut t = report.clone();
        t.output = Digest::of(Kind::Output, b"other");
        assert_eq!(t.check(), Err(AuditReportError::Signature));
        let mut t = report.clone();
        t.receipt.body.price = 1_000;
        assert!(matches!(t.check(), Err(AuditReportError::Receipt(_))));
        let mut t = report.clone();
        t.version = 2;
        assert_eq!(t.check(), Err(AuditReportError::Version(2)));
        // Another receipt under the same signature.
        let mut t = report.clone();
        t.receipt = receipt(&SecretKey::from_bytes(&[9; 32]));
        assert_eq!(t.check(), Err(AuditReportError::Signature));

        let own = AuditReport::sign(&executor, r, out, 5);
        assert!(matches!(own.check(), Err(AuditReportError::OwnReceipt(_))));
    }

    #[test]
    fn only_the_first_drawn_auditors_are_paid() {
        let executor = SecretKey::from_bytes(&[1; 32]);
        let r = receipt(&executor);
        let keys: Vec<SecretKey> = (10..18u8)
            .map(|i| SecretKey::from_bytes(&[i; 32]))
            .collect();
        let pool = Pool {
            weights: keys.iter().map(|k| (k.public(), 10)).collect(),
            beacon: Some([3; 32]),
        };
        let drawn = auditor_draw(&r.id, &r.body.node, &pool);
        let mut paid = 0;
        for k in &keys {
            let report = AuditReport::sign(k, r.clone(), r.body.output, 2);
            let at = drawn.iter().position(|d| *d == k.public()).unwrap();
            match report.check_drawn(&pool) {
                Ok(()) => {
                    assert!(at < AUDITOR_DRAW);
                    paid += 1;
                }
                Err(AuditReportError::NotDrawn(_)) => assert!(at >= AUDITOR_DRAW),
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(paid, AUDITOR_DRAW);
    }
}
