//! Signed node announcements: who runs this node (operator key), where to
//! reach it, what it serves, at what price and capacity, and which
//! software. Gossiped on [`TOPIC`]; every node keeps the newest one per
//! peer.
//!
//! The signature covers the exact body bytes (JSON text) behind a domain
//! prefix, so a verifier never re-serializes anything. The peer id of a
//! Vouch node is derived from its operator key, so an announcement must
//! also come from the peer it names.

use serde::{Deserialize, Serialize};
use vouch_types::{PublicKey, SecretKey, Signature};

/// The gossipsub topic of node announcements.
pub const TOPIC: &str = "vouch/announce/1";

/// What the signature covers: this prefix, then the body bytes.
const DOMAIN: &[u8] = b"vouch v1 announcement\0";

/// Largest announcement accepted, in bytes.
pub const MAX_ANNOUNCEMENT_BYTES: usize = 64 << 10;

/// A model a node serves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelOffer {
    /// Registry name.
    pub name: String,
    /// Registry version.
    pub version: String,
    /// Model id (`model:<hex>`).
    pub id: String,
    /// Storage format (`onnx`, `gguf`); empty when not stated.
    #[serde(default)]
    pub format: String,
}

/// What a node says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnouncementBody {
    /// Operator public key, hex.
    pub operator: String,
    /// libp2p peer id (derived from the operator key).
    pub peer: String,
    /// The node's HTTP API, when it serves one.
    pub http: Option<String>,
    /// Models served.
    pub models: Vec<ModelOffer>,
    /// Price per inference, in the ledger's smallest unit.
    pub price: u64,
    /// Inferences the node runs at once.
    pub capacity: u32,
    /// Software name and version, e.g. `vouch 0.1.0`.
    pub software: String,
    /// Increases with every announcement from this node.
    pub seq: u64,
    /// Unix time in milliseconds when it was signed.
    pub timestamp_ms: u64,
}

/// A signed announcement as it travels.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Announcement {
    /// The body's JSON text, exactly as signed.
    pub body: String,
    /// ed25519 signature by the operator key, hex.
    pub signature: String,
}

/// Why an announcement was rejected.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum AnnouncementError {
    /// Not JSON of the right shape.
    #[error("malformed announcement: {0}")]
    Malformed(String),
    /// Larger than [`MAX_ANNOUNCEMENT_BYTES`].
    #[error("announcement is {0} bytes; at most {MAX_ANNOUNCEMENT_BYTES} are accepted")]
    TooLarge(usize),
    /// The signature does not verify under the operator key.
    #[error("announcement signature does not verify under operator {0}")]
    BadSignature(String),
    /// The body names another peer than the one that sent it.
    #[error("announcement names peer {named} but came from {sender}")]
    WrongPeer {
        /// Peer named in the body.
        named: String,
        /// Peer that published it.
        sender: String,
    },
}

impl Announcement {
    /// Signs `body` with the operator key.
    pub fn sign(body: &AnnouncementBody, key: &SecretKey) -> Announcement {
        let body = serde_json::to_string(body).expect("announcement bodies serialize");
        let signature = key.sign(&signed_bytes(&body));
        Announcement {
            body,
            signature: hex_encode(&signature.to_bytes()),
        }
    }

    /// Encodes for the wire.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("announcements serialize")
    }

    /// Decodes and verifies an announcement received from `sender` (a peer
    /// id as text); returns the body and the operator key.
    pub fn verify(
        bytes: &[u8],
        sender: &str,
    ) -> Result<(AnnouncementBody, PublicKey), AnnouncementError> {
        if bytes.len() > MAX_ANNOUNCEMENT_BYTES {
            return Err(AnnouncementError::TooLarge(bytes.len()));
        }
        let malformed = |e: &dyn std::fmt::Display| AnnouncementError::Malformed(e.to_string());
        let a: Announcement = serde_json::from_slice(bytes).map_err(|e| malformed(&e))?;
        let body: AnnouncementBody = serde_json::from_str(&a.body).map_err(|e| malformed(&e))?;
        let operator = hex_decode::<32>(&body.operator)
            .and_then(|b| PublicKey::from_bytes(&b).ok())
            .ok_or_else(|| malformed(&"operator is not a hex ed25519 public key"))?;
        let signature = hex_decode::<64>(&a.signature)
            .map(|b| Signature::from_bytes(&b))
            .ok_or_else(|| malformed(&"signature is not 64 hex bytes"))?;
        if !operator.verify(&signed_bytes(&a.body), &signature) {
            return Err(AnnouncementError::BadSignature(body.operator));
        }
        if body.peer != sender {
            return Err(AnnouncementError::WrongPeer {
                named: body.peer,
                sender: sender.to_string(),
            });
        }
        Ok((body, operator))
    }
}

fn signed_bytes(body: &str) -> Vec<u8> {
    [DOMAIN, body.as_bytes()].concat()
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != 2 * N || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(key: &SecretKey, peer: &str) -> AnnouncementBody {
        AnnouncementBody {
            operator: hex_encode(key.public().as_bytes()),
            peer: peer.into(),
            http: Some("http://127.0.0.1:8080".into()),
            models: vec![ModelOffer {
                name: "iris".into(),
                version: "1".into(),
                id: "model:00".into(),
                format: String::new(),
            }],
            price: 3,
            capacity: 2,
            software: "vouch 0.1.0".into(),
            seq: 1,
            timestamp_ms: 5,
        }
    }

    #[test]
    fn signed_announcements_verify_and_tampered_ones_do_not() {
        let key = SecretKey::from_bytes(&[9; 32]);
        let a = Announcement::sign(&body(&key, "peerA"), &key);
        let (b, op) = Announcement::verify(&a.to_bytes(), "peerA").unwrap();
        assert_eq!(b, body(&key, "peerA"));
        assert_eq!(op, key.public());

        let mut t = a.clone();
        t.body = t.body.replace("\"price\":3", "\"price\":0");
        assert!(matches!(
            Announcement::verify(&t.to_bytes(), "peerA"),
            Err(AnnouncementError::BadSignature(_))
        ));
        assert!(matches!(
            Announcement::verify(&a.to_bytes(), "peerB"),
            Err(AnnouncementError::WrongPeer { .. })
        ));
        let other = SecretKey::from_bytes(&[1; 32]);
        let forged = Announcement {
            body: a.body.clone(),
            signature: Announcement::sign(&body(&key, "peerA"), &other).signature,
        };
        assert!(Announcement::verify(&forged.to_bytes(), "peerA").is_err());
        assert!(Announcement::verify(b"not json", "peerA").is_err());
        assert!(Announcement::verify(&vec![b' '; MAX_ANNOUNCEMENT_BYTES + 1], "p").is_err());
    }
}
