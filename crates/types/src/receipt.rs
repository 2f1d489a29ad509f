//! Receipt v1: what a node signs for every answer.
//!
//! The receipt id is `H_receipt(canonical body)`; the signature is ed25519
//! by the node key over the 32 id bytes. Checking a receipt needs nothing but
//! the receipt (and, to bind it to data, the inputs and outputs). Byte layout
//! and test vectors: `docs/receipts.md`.

use ed25519_dalek::Signature;
use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Kind};
use crate::encode::{DecodeError, Reader, Sink};
use crate::keys::{PublicKey, SecretKey};
use crate::tensor::TensorMap;

/// Receipt format version written by this code.
pub const RECEIPT_VERSION: u8 = 1;
/// Longest client nonce accepted, in bytes.
pub const MAX_NONCE_BYTES: usize = 256;
/// How old a fresh receipt may be when it reaches its first receiver (the
/// gateway that routed the request, or the client the executor answered
/// directly): an executor signs its answer and sends it. On a ledger,
/// audits and referees are drawn with the beacon of a block
/// `beacon_delay_ms` (more than this and [`MAX_CLOCK_SKEW_MS`]) after the
/// timestamp, so an executor that could backdate its receipts further
/// could pick a beacon it already knows (`docs/receipts.md`, Draws).
pub const MAX_RECEIPT_AGE_MS: u64 = 5_000;
/// How far ahead of its first receiver's clock a fresh receipt may be
/// stamped: clocks differ a little.
pub const MAX_CLOCK_SKEW_MS: u64 = 1_000;

/// The Merkle root over the execution trace and its leaf count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceCommitment {
    /// `trace:` root (see [`crate::merkle`]).
    pub root: Digest,
    /// Number of leaves (executed steps).
    pub len: u64,
}

/// Which engine ran the model, pinned by version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngineInfo {
    /// Engine name, e.g. `tract-onnx`.
    pub name: String,
    /// Engine version, e.g. `0.23.9`.
    pub version: String,
}

/// The engine name of answers a node relayed from an external server
/// (an OpenAI-compatible API): the operator vouches for the transcript,
/// but nothing attests which model produced it.
pub const UNATTESTED: &str = "external-unattested";

impl EngineInfo {
    /// Whether this names an external, unattested engine ([`UNATTESTED`]).
    pub fn is_unattested(&self) -> bool {
        self.name == UNATTESTED
    }
}

/// How re-executions of this model compare.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "lowercase")]
pub enum Determinism {
    /// Bit-identical across nodes: compare digests.
    Exact,
    /// Floating point: compare tensors elementwise within a relative
    /// tolerance `rtol` (|a-b| <= rtol * max(1, |a|, |b|)).
    Tolerant {
        /// The relative tolerance.
        rtol: f64,
    },
}

impl Determinism {
    /// Whether two values agree under this class.
    pub fn close(&self, a: f64, b: f64) -> bool {
        match self {
            Determinism::Exact => a.to_bits() == b.to_bits() || a == b,
            Determinism::Tolerant { rtol } => {
                (a.is_nan() && b.is_nan()) || (a - b).abs() <= rtol * 1f64.max(a.abs()).max(b.abs())
            }
        }
    }
}

/// Everything a receipt states, before it is signed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReceiptBody {
    /// Format version (1).
    pub version: u8,
    /// `model:` id of the model that ran.
    pub model: Digest,
    /// `in:` digest of the request's inputs.
    pub request: Digest,
    /// `out:` digest of the outputs.
    pub output: Digest,
    /// Trace commitment.
    pub trace: TraceCommitment,
    /// Engine and version.
    pub engine: EngineInfo,
    /// Determinism class of this model on this engine.
    pub determinism: Determinism,
    /// Sampling seed, where the engine samples.
    pub seed: Option<u64>,
    /// The executing node's operator key.
    pub node: PublicKey,
    /// The client's nonce (at most 256 bytes), echoed so a client can tell a
    /// fresh receipt from a replayed one.
    pub nonce: String,
    /// Unix time in milliseconds when the node signed.
    pub timestamp_ms: u64,
    /// Price charged, in the ledger's smallest unit (0 on a local node).
    pub price: u64,
}

/// A signed receipt, as served in JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    /// `rcpt:` id: the digest of the canonical body.
    pub id: Digest,
    /// The signed statement.
    #[serde(flatten)]
    pub body: ReceiptBody,
    /// ed25519 signature over the id bytes by `body.node`, 128 hex digits.
    #[serde(with = "sig_hex")]
    pub signature: Signature,
}

/// Why a receipt does not check out. Each says what disagrees.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ReceiptError {
    /// The version is not one this code knows.
    #[error("receipt version {0} is not supported (this verifier knows version 1)")]
    Version(u8),
    /// A digest field holds a digest of another kind.
    #[error("field `{field}` must be a `{expected}:` digest, got `{found}:`")]
    WrongKind {
        /// The field.
        field: &'static str,
        /// The prefix wanted.
        expected: &'static str,
        /// The prefix found.
        found: &'static str,
    },
    /// The nonce is too long.
    #[error("nonce is {0} bytes; at most 256 are allowed")]
    NonceTooLong(usize),
    /// The tolerance is not a finite non-negative number.
    #[error("determinism tolerance must be a finite number >= 0")]
    BadTolerance,
    /// A fresh receipt's timestamp is too far from its receiver's clock.
    #[error(
        "the receipt is stamped {stamped} ms since the epoch, this clock says {now}: a fresh receipt may be at most {MAX_RECEIPT_AGE_MS} ms old and {MAX_CLOCK_SKEW_MS} ms ahead (the executor's clock is wrong, or it backdated the receipt)"
    )]
    Stale {
        /// The receipt's timestamp.
        stamped: u64,
        /// The receiver's clock.
        now: u64,
    },
    /// The id does not match the body: some field was changed.
    #[error("receipt id {claimed} does not match its contents ({computed}): a field was altered")]
    IdMismatch {
        /// The id in the receipt.
        claimed: Digest,
        /// The id of the body as received.
        computed: Digest,
    },
    /// The signature is not the node key's over the id.
    #[error("signature is not valid for node key {0}")]
    BadSignature(String),
    /// The inputs given are not the ones the receipt names.
    #[error(
        "inputs do not match the receipt: receipt says {receipt}, these inputs hash to {actual}"
    )]
    InputMismatch {
        /// Digest in the receipt.
        receipt: Digest,
        /// Digest of the given inputs.
        actual: Digest,
    },
    /// The outputs given are not the ones the receipt names.
    #[error(
        "outputs do not match the receipt: receipt says {receipt}, these outputs hash to {actual}"
    )]
    OutputMismatch {
        /// Digest in the receipt.
        receipt: Digest,
        /// Digest of the given outputs.
        actual: Digest,
    },
}

impl ReceiptBody {
    /// The canonical bytes the id commits to.
    pub fn encode(&self) -> Vec<u8> {
        let mut s = Vec::with_capacity(256);
        s.put_u8(self.version);
        s.put(self.model.as_bytes());
        s.put(self.request.as_bytes());
        s.put(self.output.as_bytes());
        s.put(self.trace.root.as_bytes());
        s.put_u64(self.trace.len);
        s.put_str(&self.engine.name);
        s.put_str(&self.engine.version);
        match self.determinism {
            Determinism::Exact => s.put_u8(0),
            Determinism::Tolerant { rtol } => {
                s.put_u8(1);
                s.put_f64(rtol);
            }
        }
        match self.seed {
            None => s.put_u8(0),
            Some(seed) => {
                s.put_u8(1);
                s.put_u64(seed);
            }
        }
        s.put(self.node.as_bytes());
        s.put_str(&self.nonce);
        s.put_u64(self.timestamp_ms);
        s.put_u64(self.price);
        s
    }

    /// Decodes canonical body bytes.
    pub fn decode(bytes: &[u8]) -> Result<ReceiptBody, DecodeError> {
        let mut r = Reader::new(bytes);
        let body = ReceiptBody::read(&mut r)?;
        r.finish()?;
        Ok(body)
    }

    fn read(r: &mut Reader<'_>) -> Result<ReceiptBody, DecodeError> {
        let version = r.u8()?;
        let model = Digest::from_bytes(Kind::Model, r.array()?);
        let request = Digest::from_bytes(Kind::Input, r.array()?);
        let output = Digest::from_bytes(Kind::Output, r.array()?);
        let root = Digest::from_bytes(Kind::TraceNode, r.array()?);
        let len = r.u64()?;
        let engine = EngineInfo {
            name: r.str()?,
            version: r.str()?,
        };
        let at = r.offset();
        let determinism = match r.u8()? {
            0 => Determinism::Exact,
            1 => Determinism::Tolerant { rtol: r.f64()? },
            tag => {
                return Err(DecodeError::BadTag {
                    what: "determinism",
                    tag,
                    offset: at,
                });
            }
        };
        let at = r.offset();
        let seed = match r.u8()? {
            0 => None,
            1 => Some(r.u64()?),
            tag => {
                return Err(DecodeError::BadTag {
                    what: "seed",
                    tag,
                    offset: at,
                });
            }
        };
        let node =
            PublicKey::from_bytes(&r.array()?).map_err(|e| DecodeError::Invalid(e.to_string()))?;
        Ok(ReceiptBody {
            version,
            model,
            request,
            output,
            trace: TraceCommitment { root, len },
            engine,
            determinism,
            seed,
            node,
            nonce: r.str()?,
            timestamp_ms: r.u64()?,
            price: r.u64()?,
        })
    }

    /// The receipt id.
    pub fn id(&self) -> Digest {
        Digest::of(Kind::Receipt, &self.encode())
    }

    /// Signs the body with the node key. The key must be `self.node`'s.
    pub fn sign(self, key: &SecretKey) -> Receipt {
        debug_assert_eq!(
            key.public(),
            self.node,
            "a receipt is signed by the node it names"
        );
        let id = self.id();
        let signature = key.sign(id.as_bytes());
        Receipt {
            id,
            body: self,
            signature,
        }
    }

    fn check_fields(&self) -> Result<(), ReceiptError> {
        if self.version != RECEIPT_VERSION {
            return Err(ReceiptError::Version(self.version));
        }
        for (field, d, kind) in [
            ("model", self.model, Kind::Model),
            ("request", self.request, Kind::Input),
            ("output", self.output, Kind::Output),
            ("trace.root", self.trace.root, Kind::TraceNode),
        ] {
            if d.kind() != kind {
                return Err(ReceiptError::WrongKind {
                    field,
                    expected: kind.prefix(),
                    found: d.kind().prefix(),
                });
            }
        }
        if self.nonce.len() > MAX_NONCE_BYTES {
            return Err(ReceiptError::NonceTooLong(self.nonce.len()));
        }
        if let Determinism::Tolerant { rtol } = self.determinism
            && !(rtol.is_finite() && rtol >= 0.0)
        {
            return Err(ReceiptError::BadTolerance);
        }
        Ok(())
    }
}

impl Receipt {
    /// Checks that a receipt just received from its executor was signed
    /// just now by the clock `now_ms` of its receiver: at most
    /// [`MAX_RECEIPT_AGE_MS`] before, at most [`MAX_CLOCK_SKEW_MS`] after.
    pub fn check_fresh(&self, now_ms: u64) -> Result<(), ReceiptError> {
        let stamped = self.body.timestamp_ms;
        if stamped.saturating_add(MAX_RECEIPT_AGE_MS) < now_ms
            || stamped > now_ms.saturating_add(MAX_CLOCK_SKEW_MS)
        {
            return Err(ReceiptError::Stale {
                stamped,
                now: now_ms,
            });
        }
        Ok(())
    }

    /// Checks the format, that the id matches the body, and the signature.
    pub fn verify(&self) -> Result<(), ReceiptError> {
        self.body.check_fields()?;
        let computed = self.body.id();
        if computed != self.id {
            return Err(ReceiptError::IdMismatch {
                claimed: self.id,
                computed,
            });
        }
        if !self.body.node.verify(self.id.as_bytes(), &self.signature) {
            return Err(ReceiptError::BadSignature(self.body.node.to_string()));
        }
        Ok(())
    }

    /// Checks the receipt and that it names exactly these inputs.
    pub fn verify_inputs(&self, inputs: &TensorMap) -> Result<(), ReceiptError> {
        let actual = inputs.digest(Kind::Input);
        if actual != self.body.request {
            return Err(ReceiptError::InputMismatch {
                receipt: self.body.request,
                actual,
            });
        }
        Ok(())
    }

    /// Checks that the receipt names exactly these outputs.
    pub fn verify_outputs(&self, outputs: &TensorMap) -> Result<(), ReceiptError> {
        let actual = outputs.digest(Kind::Output);
        if actual != self.body.output {
            return Err(ReceiptError::OutputMismatch {
                receipt: self.body.output,
                actual,
            });
        }
        Ok(())
    }

    /// Compact storage form: canonical body then the 64 signature bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = self.body.encode();
        b.extend_from_slice(&self.signature.to_bytes());
        b
    }

    /// Reads the storage form (the id is recomputed, not trusted).
    pub fn from_bytes(bytes: &[u8]) -> Result<Receipt, DecodeError> {
        let mut r = Reader::new(bytes);
        let body = ReceiptBody::read(&mut r)?;
        let signature = Signature::from_bytes(&r.array()?);
        r.finish()?;
        Ok(Receipt {
            id: body.id(),
            body,
            signature,
        })
    }
}

pub(crate) mod sig_hex {
    use ed25519_dalek::Signature;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(sig: &Signature, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(sig.to_bytes()))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Signature, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut b = [0u8; 64];
        hex::decode_to_slice(s.as_ref(), &mut b)
            .map_err(|_| serde::de::Error::custom("signature must be 128 hex digits"))?;
        Ok(Signature::from_bytes(&b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;
    use proptest::prelude::*;

    fn key() -> SecretKey {
        SecretKey::from_bytes(&[7u8; 32])
    }

    fn body(nonce: String, seed: Option<u64>, det: Determinism) -> ReceiptBody {
        let mut inputs = TensorMap::new();
        inputs.insert("x", Tensor::from_f32(vec![1, 2], &[1.0, 2.0]).unwrap());
        ReceiptBody {
            version: RECEIPT_VERSION,
            model: Digest::of(Kind::Model, b"m"),
            request: inputs.digest(Kind::Input),
            output: Digest::of(Kind::Output, b"o"),
            trace: TraceCommitment {
                root: Digest::of(Kind::TraceNode, b"t"),
                len: 3,
            },
            engine: EngineInfo {
                name: "tract-onnx".into(),
                version: "0.23.9".into(),
            },
            determinism: det,
            seed,
            node: key().public(),
            nonce,
            timestamp_ms: 1_700_000_000_000,
            price: 0,
        }
    }

    proptest! {
        #[test]
        fn receipt_round_trips(nonce in ".{0,40}", seed in proptest::option::of(any::<u64>()),
                               rtol in proptest::option::of(0.0f64..1.0)) {
            let det = rtol.map_or(Determinism::Exact, |rtol| Determinism::Tolerant { rtol });
            let r = body(nonce, seed, det).sign(&key());
            prop_assert!(r.verify().is_ok());
            prop_assert_eq!(&Receipt::from_bytes(&r.to_bytes()).unwrap(), &r);
            prop_assert_eq!(ReceiptBody::decode(&r.body.encode()).unwrap(), r.body.clone());
            let json = serde_json::to_string(&r).unwrap();
            let back: Receipt = serde_json::from_str(&json).unwrap();
            prop_assert_eq!(&back, &r);
            prop_assert!(back.verify().is_ok());
        }

        #[test]
        fn decoding_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Receipt::from_bytes(&bytes);
        }
    }

    /// Changing any one field of the JSON makes verification fail.
    #[test]
    fn every_field_is_bound() {
        let r = body("n".into(), Some(5), Determinism::Tolerant { rtol: 1e-4 }).sign(&key());
        let json = serde_json::to_value(&r).unwrap();
        let other = Digest::of(Kind::Model, b"other").to_hex();
        let edits: Vec<(&str, serde_json::Value)> = vec![
            ("version", 2.into()),
            ("model", format!("model:{other}").into()),
            ("request", format!("in:{other}").into()),
            ("output", format!("out:{other}").into()),
            (
                "trace",
                serde_json::json!({"root": format!("trace:{other}"), "len": 3}),
            ),
            (
                "trace",
                serde_json::json!({"root": r.body.trace.root, "len": 4}),
            ),
            (
                "engine",
                serde_json::json!({"name": "tract-onnx", "version": "0.23.8"}),
            ),
            ("determinism", serde_json::json!({"class": "exact"})),
            ("seed", 6.into()),
            ("seed", serde_json::Value::Null),
            (
                "node",
                SecretKey::from_bytes(&[8; 32]).public().to_string().into(),
            ),
            ("nonce", "m".into()),
            ("timestamp_ms", 1.into()),
            ("price", 1.into()),
            ("id", format!("rcpt:{other}").into()),
            ("signature", hex::encode([0u8; 64]).into()),
        ];
        for (field, value) in edits {
            let mut j = json.clone();
            j[field] = value;
            let tampered: Receipt = serde_json::from_value(j).unwrap();
            assert!(
                tampered.verify().is_err(),
                "changing {field} went unnoticed"
            );
        }
    }

    #[test]
    fn binds_inputs_and_outputs() {
        let r = body(String::new(), None, Determinism::Exact).sign(&key());
        let mut inputs = TensorMap::new();
        inputs.insert("x", Tensor::from_f32(vec![1, 2], &[1.0, 2.0]).unwrap());
        assert!(r.verify_inputs(&inputs).is_ok());
        inputs.insert("x", Tensor::from_f32(vec![2, 1], &[1.0, 2.0]).unwrap());
        assert!(matches!(
            r.verify_inputs(&inputs),
            Err(ReceiptError::InputMismatch { .. })
        ));
        assert!(matches!(
            r.verify_outputs(&inputs),
            Err(ReceiptError::OutputMismatch { .. })
        ));
    }
}
