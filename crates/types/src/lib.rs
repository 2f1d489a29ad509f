//! The core objects of Vouch: domain-separated digests, canonical tensor
//! encodings, model manifests, trace commitments and signed receipts.
//!
//! Everything here is pure data and pure functions: no files, sockets,
//! clocks or randomness. Any language can re-implement these encodings from
//! `docs/receipts.md`; the test vectors there are produced by this crate.

pub mod audit;
pub mod blob;
pub mod concentration;
pub mod digest;
pub mod dispute;
pub mod encode;
pub mod keys;
pub mod llm;
pub mod llm_pool;
pub mod llm_rule;
pub mod manifest;
pub mod merkle;
pub mod quorum;
pub mod receipt;
pub mod tensor;

pub use digest::{Digest, Hasher, Kind};
pub use ed25519_dalek::Signature;
pub use keys::{PublicKey, SecretKey};
pub use manifest::{Dim, FileEntry, Manifest, ModelFormat, Schema, SignedManifest, TensorSpec};
pub use receipt::{Determinism, EngineInfo, Receipt, ReceiptBody, ReceiptError, TraceCommitment};
pub use tensor::{DType, Tensor, TensorMap};
