//! Domain-separated BLAKE3 digests.
//!
//! Every digest is BLAKE3 in key-derivation mode with a context string per
//! kind, so a model digest can never be confused with an output digest even
//! over identical bytes. Printed as `<prefix>:<64 lowercase hex>`.

use std::fmt;
use std::str::FromStr;

/// What a digest commits to. Each kind has its own BLAKE3 derive-key context.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Kind {
    /// A model id: the digest of the canonical manifest bytes.
    Model,
    /// A request: the canonical encoding of the named input tensors.
    Input,
    /// A response: the canonical encoding of the named output tensors.
    Output,
    /// A trace leaf: one graph node's outputs during execution.
    TraceLeaf,
    /// An inner node of the trace Merkle tree (and its root).
    TraceNode,
    /// A receipt id: the digest of the canonical receipt body.
    Receipt,
    /// A blob: the root over a file's size and chunk digests.
    Blob,
    /// One chunk of a blob.
    BlobChunk,
    /// The element bytes of one tensor in a trace leaf.
    TensorData,
    /// A link of the hash chain over a generated token stream.
    Chain,
    /// A signed checkpoint of a token stream.
    Checkpoint,
}

impl Kind {
    /// All kinds, for tests and documentation.
    pub const ALL: [Kind; 11] = [
        Kind::Model,
        Kind::Input,
        Kind::Output,
        Kind::TraceLeaf,
        Kind::TraceNode,
        Kind::Receipt,
        Kind::Blob,
        Kind::BlobChunk,
        Kind::TensorData,
        Kind::Chain,
        Kind::Checkpoint,
    ];

    /// The BLAKE3 derive-key context string for this kind.
    pub const fn context(self) -> &'static str {
        match self {
            Kind::Model => "vouch v1 model",
            Kind::Input => "vouch v1 input",
            Kind::Output => "vouch v1 output",
            Kind::TraceLeaf => "vouch v1 trace leaf",
            Kind::TraceNode => "vouch v1 trace node",
            Kind::Receipt => "vouch v1 receipt",
            Kind::Blob => "vouch v1 blob",
            Kind::BlobChunk => "vouch v1 blob chunk",
            Kind::TensorData => "vouch v1 tensor data",
            Kind::Chain => "vouch v1 stream chain",
            Kind::Checkpoint => "vouch v1 stream checkpoint",
        }
    }

    /// The short prefix used when printing a digest of this kind.
    pub const fn prefix(self) -> &'static str {
        match self {
            Kind::Model => "model",
            Kind::Input => "in",
            Kind::Output => "out",
            Kind::TraceLeaf => "leaf",
            Kind::TraceNode => "trace",
            Kind::Receipt => "rcpt",
            Kind::Blob => "blob",
            Kind::BlobChunk => "chunk",
            Kind::TensorData => "tdata",
            Kind::Chain => "chain",
            Kind::Checkpoint => "ckpt",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.prefix() == prefix)
    }
}

/// A 32-byte BLAKE3 digest tagged with what it commits to.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    kind: Kind,
    bytes: [u8; 32],
}

impl Digest {
    /// Wraps raw bytes known to be a digest of `kind`.
    pub const fn from_bytes(kind: Kind, bytes: [u8; 32]) -> Digest {
        Digest { kind, bytes }
    }

    /// Hashes `data` in one go.
    pub fn of(kind: Kind, data: &[u8]) -> Digest {
        let mut h = Hasher::new(kind);
        h.update(data);
        h.finalize()
    }

    /// What this digest commits to.
    pub const fn kind(&self) -> Kind {
        self.kind
    }

    /// The raw 32 bytes.
    pub const fn as_bytes(&self) -> &[u8; 32] {
        &self.bytes
    }

    /// Lowercase hex of the raw bytes, without the kind prefix.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// Parses `<prefix>:<hex>` and checks the prefix is `kind`'s.
    pub fn parse_kind(kind: Kind, s: &str) -> Result<Digest, DigestParseError> {
        let d: Digest = s.parse()?;
        if d.kind != kind {
            return Err(DigestParseError::WrongKind {
                expected: kind.prefix(),
                found: d.kind.prefix(),
            });
        }
        Ok(d)
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind.prefix(), self.to_hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a printed digest could not be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum DigestParseError {
    /// No `prefix:` part.
    #[error("a digest looks like `model:<64 hex digits>`; this one has no `kind:` prefix")]
    MissingPrefix,
    /// The prefix names no kind.
    #[error(
        "unknown digest kind `{0}`: expected one of model, in, out, leaf, trace, rcpt, blob, chunk"
    )]
    UnknownKind(String),
    /// The prefix names another kind than the one expected here.
    #[error("expected a `{expected}:` digest, got a `{found}:` one")]
    WrongKind {
        /// The prefix wanted.
        expected: &'static str,
        /// The prefix found.
        found: &'static str,
    },
    /// The hex part is not 64 lowercase hex digits.
    #[error("a digest has exactly 64 lowercase hex digits after the prefix")]
    BadHex,
}

impl FromStr for Digest {
    type Err = DigestParseError;

    fn from_str(s: &str) -> Result<Digest, DigestParseError> {
        let (prefix, hex_part) = s.split_once(':').ok_or(DigestParseError::MissingPrefix)?;
        let kind = Kind::from_prefix(prefix)
            .ok_or_else(|| DigestParseError::UnknownKind(prefix.into()))?;
        if hex_part.len() != 64 || hex_part.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(DigestParseError::BadHex);
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(hex_part, &mut bytes).map_err(|_| DigestParseError::BadHex)?;
        Ok(Digest { kind, bytes })
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An incremental domain-separated hasher.
#[derive(Clone)]
pub struct Hasher {
    kind: Kind,
    inner: blake3::Hasher,
}

impl Hasher {
    /// Starts a digest of `kind`.
    pub fn new(kind: Kind) -> Hasher {
        Hasher {
            kind,
            inner: blake3::Hasher::new_derive_key(kind.context()),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) -> &mut Hasher {
        self.inner.update(data);
        self
    }

    /// Finishes the digest.
    pub fn finalize(&self) -> Digest {
        Digest {
            kind: self.kind,
            bytes: *self.inner.finalize().as_bytes(),
        }
    }
}

impl crate::encode::Sink for Hasher {
    fn put(&mut self, bytes: &[u8]) {
        self.inner.update(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_separate_domains() {
        let a = Digest::of(Kind::Input, b"x");
        let b = Digest::of(Kind::Output, b"x");
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn prints_and_parses() {
        for kind in Kind::ALL {
            let d = Digest::of(kind, b"abc");
            let s = d.to_string();
            assert!(s.starts_with(&format!("{}:", kind.prefix())));
            assert_eq!(s.parse::<Digest>().unwrap(), d);
            assert_eq!(Digest::parse_kind(kind, &s).unwrap(), d);
        }
    }

    #[test]
    fn rejects_bad_strings() {
        let good = Digest::of(Kind::Model, b"m").to_string();
        assert_eq!(
            "abc".parse::<Digest>(),
            Err(DigestParseError::MissingPrefix)
        );
        assert!(matches!(
            "zz:00".parse::<Digest>(),
            Err(DigestParseError::UnknownKind(_))
        ));
        assert_eq!("model:00".parse::<Digest>(), Err(DigestParseError::BadHex));
        assert_eq!(
            good.to_uppercase()
                .replace("MODEL", "model")
                .parse::<Digest>(),
            Err(DigestParseError::BadHex)
        );
        assert!(matches!(
            Digest::parse_kind(Kind::Output, &good),
            Err(DigestParseError::WrongKind { .. })
        ));
    }
}
