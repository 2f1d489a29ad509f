//! ed25519 keys. A [`SecretKey`] never prints its bytes: `Debug` shows only
//! the public half.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

/// Why a key could not be read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyError {
    /// Not `ed25519:` followed by 64 hex digits.
    #[error("a public key looks like `ed25519:<64 hex digits>`")]
    Format,
    /// The bytes are not a valid curve point.
    #[error("the bytes are not a valid ed25519 public key")]
    Invalid,
}

/// An ed25519 public key, printed as `ed25519:<hex>`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Parses 32 raw bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_bytes(bytes)
            .map(PublicKey)
            .map_err(|_| KeyError::Invalid)
    }

    /// The raw 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    /// Checks a signature over `msg` (strict: rejects malleable forms:
    /// small-order keys and nonce points, a non-canonical scalar, and a
    /// non-canonical encoding of the nonce point, the one form that
    /// `verify_strict` lets through and RFC 8032 verification does not).
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        canonical_point(sig.r_bytes()) && self.0.verify_strict(msg, sig).is_ok()
    }
}

/// Whether a compressed Edwards point encodes its y coordinate below the
/// field prime 2^255 - 19 (bit 255 is the sign of x). The only encodings
/// at or above it have every bit of y set but those of the lowest byte,
/// and that byte at least 0xed.
fn canonical_point(b: &[u8; 32]) -> bool {
    !(b[0] >= 0xed && b[1..31].iter().all(|&x| x == 0xff) && b[31] & 0x7f == 0x7f)
}

/// Ordered by the key's bytes (for sets of operators).
impl Ord for PublicKey {
    fn cmp(&self, other: &PublicKey) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl PartialOrd for PublicKey {
    fn partial_cmp(&self, other: &PublicKey) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ed25519:{}", hex::encode(self.as_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<PublicKey, KeyError> {
        let hex_part = s.strip_prefix("ed25519:").ok_or(KeyError::Format)?;
        let mut b = [0u8; 32];
        if hex_part.len() != 64 {
            return Err(KeyError::Format);
        }
        hex::decode_to_slice(hex_part, &mut b).map_err(|_| KeyError::Format)?;
        PublicKey::from_bytes(&b)
    }
}

impl serde::Serialize for PublicKey {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for PublicKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<PublicKey, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// An ed25519 signing key.
#[derive(Clone)]
pub struct SecretKey(SigningKey);

impl SecretKey {
    /// A key from its 32-byte seed.
    pub fn from_bytes(seed: &[u8; 32]) -> SecretKey {
        SecretKey(SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, for storing in a 0600 key file. Never print it.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        self.0.sign(msg)
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretKey({})", self.public())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_non_canonical_nonce_points_are_refused() {
        let key = SecretKey::from_bytes(&[3; 32]);
        let sig = key.sign(b"message");
        assert!(key.public().verify(b"message", &sig));
        assert!(!key.public().verify(b"massage", &sig));
        let mut bytes = sig.to_bytes();
        bytes[40] ^= 1;
        assert!(
            !key.public()
                .verify(b"message", &Signature::from_bytes(&bytes))
        );

        // y = p - 1 is canonical; p, p + 1 and 2^255 - 1 are not, with
        // either sign bit.
        let y = |low: u8, top: u8| {
            let mut b = [0xff; 32];
            (b[0], b[31]) = (low, top);
            b
        };
        assert!(canonical_point(&y(0xec, 0x7f)));
        assert!(canonical_point(&y(0xec, 0xff)));
        assert!(canonical_point(&[0; 32]));
        for (low, top) in [(0xed, 0x7f), (0xee, 0x7f), (0xff, 0x7f), (0xed, 0xff)] {
            assert!(!canonical_point(&y(low, top)), "{low:x} {top:x}");
        }
        // Any signature's own nonce point is canonical.
        assert!(canonical_point(sig.r_bytes()));
    }
}
