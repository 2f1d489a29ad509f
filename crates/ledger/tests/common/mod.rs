//! Helpers the ledger's integration tests share: keys by a byte, and
//! blocks of transactions signed with the signers' next nonces.
#![allow(unreachable_pub)]

use vouch_ledger::{Block, Ledger, Tx, TxBody, TxOutcome};
use vouch_types::{PublicKey, SecretKey};

/// The key whose seed is 32 copies of `b`.
pub fn key(b: u8) -> SecretKey {
    SecretKey::from_bytes(&[b; 32])
}

/// Its public key.
pub fn pk(b: u8) -> PublicKey {
    key(b).public()
}

/// Applies the next block on `chain`, with `txs` (signer byte, body) each
/// signed with its signer's next nonce; the outcomes.
pub fn block(chain: &str, l: &mut Ledger, txs: Vec<(u8, TxBody)>) -> Vec<TxOutcome> {
    let mut nonces = std::collections::BTreeMap::new();
    let bytes = txs
        .into_iter()
        .map(|(s, body)| {
            let n = nonces.entry(s).or_insert_with(|| l.account(&pk(s)).nonce);
            let tx = Tx::sign(chain, &key(s), *n, body).encode();
            *n += 1;
            tx
        })
        .collect();
    let height = l.height() + 1;
    l.apply_block(&Block {
        height,
        time_ms: height,
        txs: bytes,
    })
    .unwrap()
}

/// A rejected outcome's error, as text.
pub fn err(o: &TxOutcome) -> String {
    o.as_ref().unwrap_err().to_string()
}
