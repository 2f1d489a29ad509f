//! A chain block: the ledger's block with the digest of its parent. The
//! consensus engine orders digests; blocks travel beside them.
//!
//! Bytes (all integers little-endian): the parent's digest (32), the height
//! (u64), the proposer's time in milliseconds since the Unix epoch (u64),
//! the transaction count (u32), then each transaction as its length (u32)
//! and its signed bytes. A block's digest is SHA-256 of those bytes.

use commonware_cryptography::{Hasher, Sha256, sha256::Digest};
use vouch_ledger::tx::MAX_TX_BYTES;

/// The most transactions a block may carry.
pub const MAX_BLOCK_TXS: usize = 1_000;
/// The most bytes a block may take.
pub const MAX_BLOCK_BYTES: usize = 4 << 20;
/// The bytes before a block's transactions.
pub const HEADER_BYTES: usize = 52;

/// A block as the chain carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBlock {
    /// The digest of the block it extends (the genesis digest for the
    /// first).
    pub parent: Digest,
    /// One more than its parent's.
    pub height: u64,
    /// Milliseconds since the Unix epoch, as its proposer stamped them;
    /// later than its parent's.
    pub time_ms: u64,
    /// Signed ledger transactions, in order.
    pub txs: Vec<Vec<u8>>,
}

/// Why bytes are not a block.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockDecodeError {
    /// Larger than [`MAX_BLOCK_BYTES`].
    #[error("a block of {0} bytes is larger than the {MAX_BLOCK_BYTES} allowed")]
    TooLarge(usize),
    /// More than [`MAX_BLOCK_TXS`] transactions.
    #[error("a block of {0} transactions carries more than the {MAX_BLOCK_TXS} allowed")]
    TooManyTxs(usize),
    /// A transaction larger than the ledger allows.
    #[error("a transaction of {0} bytes is larger than the {MAX_TX_BYTES} allowed")]
    TxTooLarge(usize),
    /// The bytes end early or run on.
    #[error("the block's bytes are truncated or have trailing bytes")]
    Truncated,
}

impl ChainBlock {
    /// The canonical bytes.
    pub fn encode(&self) -> Vec<u8> {
        let len = HEADER_BYTES + self.txs.iter().map(|t| 4 + t.len()).sum::<usize>();
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&self.parent.0);
        out.extend_from_slice(&self.height.to_le_bytes());
        out.extend_from_slice(&self.time_ms.to_le_bytes());
        out.extend_from_slice(&(self.txs.len() as u32).to_le_bytes());
        for tx in &self.txs {
            out.extend_from_slice(&(tx.len() as u32).to_le_bytes());
            out.extend_from_slice(tx);
        }
        out
    }

    /// Reads canonical bytes, within the bounds above.
    pub fn decode(bytes: &[u8]) -> Result<ChainBlock, BlockDecodeError> {
        if bytes.len() > MAX_BLOCK_BYTES {
            return Err(BlockDecodeError::TooLarge(bytes.len()));
        }
        let mut at = 0;
        let mut take = |n: usize| -> Result<&[u8], BlockDecodeError> {
            let end = at + n;
            let slice = bytes.get(at..end).ok_or(BlockDecodeError::Truncated)?;
            at = end;
            Ok(slice)
        };
        let parent = Digest(take(32)?.try_into().expect("32 bytes"));
        let height = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let time_ms = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        if count > MAX_BLOCK_TXS {
            return Err(BlockDecodeError::TooManyTxs(count));
        }
        let mut txs = Vec::with_capacity(count);
        for _ in 0..count {
            let len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
            if len > MAX_TX_BYTES {
                return Err(BlockDecodeError::TxTooLarge(len));
            }
            txs.push(take(len)?.to_vec());
        }
        if at != bytes.len() {
            return Err(BlockDecodeError::Truncated);
        }
        Ok(ChainBlock {
            parent,
            height,
            time_ms,
            txs,
        })
    }

    /// SHA-256 of the canonical bytes: what consensus orders.
    pub fn digest(&self) -> Digest {
        Sha256::hash(&[&self.encode()])
    }

    /// The block as the ledger's state machine applies it.
    pub fn ledger_block(&self) -> vouch_ledger::Block {
        vouch_ledger::Block {
            height: self.height,
            time_ms: self.time_ms,
            txs: self.txs.clone(),
        }
    }
}

/// The payload consensus starts from: SHA-256 of the chain id and the
/// genesis state root, so that chains with other genesis states never
/// agree on a block.
pub fn genesis_digest(chain_id: &str, state_root: &[u8; 32]) -> Digest {
    Sha256::hash(&[b"vouch chain genesis v1\0", chain_id.as_bytes(), state_root])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_round_trip_and_bad_bytes_are_refused() {
        let block = ChainBlock {
            parent: genesis_digest("t", &[7; 32]),
            height: 3,
            time_ms: 1_700_000_000_000,
            txs: vec![vec![1, 2, 3], vec![], vec![9; 300]],
        };
        let bytes = block.encode();
        assert_eq!(ChainBlock::decode(&bytes).unwrap(), block);
        assert_ne!(block.digest(), genesis_digest("t", &[7; 32]));
        assert_eq!(
            ChainBlock::decode(&bytes[..bytes.len() - 1]),
            Err(BlockDecodeError::Truncated)
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            ChainBlock::decode(&longer),
            Err(BlockDecodeError::Truncated)
        );
        let mut many = bytes.clone();
        many[48..52].copy_from_slice(&(MAX_BLOCK_TXS as u32 + 1).to_le_bytes());
        assert_eq!(
            ChainBlock::decode(&many),
            Err(BlockDecodeError::TooManyTxs(MAX_BLOCK_TXS + 1))
        );
        let mut huge = bytes[..52].to_vec();
        huge[48..52].copy_from_slice(&1u32.to_le_bytes());
        huge.extend_from_slice(&(MAX_TX_BYTES as u32 + 1).to_le_bytes());
        assert_eq!(
            ChainBlock::decode(&huge),
            Err(BlockDecodeError::TxTooLarge(MAX_TX_BYTES + 1))
        );
        assert_eq!(
            ChainBlock::decode(&vec![0; MAX_BLOCK_BYTES + 1]),
            Err(BlockDecodeError::TooLarge(MAX_BLOCK_BYTES + 1))
        );
    }
}
