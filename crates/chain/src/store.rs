//! Applied blocks on disk: one redb table, height → the block's bytes.
//! The ledger's state is not stored: it is the genesis state with every
//! stored block applied again, in order, when the validator starts
//! (simple and exact; snapshots come when chains grow long).

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::block::{BlockDecodeError, ChainBlock};

const BLOCKS: TableDefinition<u64, &[u8]> = TableDefinition::new("blocks");

/// Why the chain's store cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The database failed (disk full, permissions, corruption).
    #[error("the chain store at {path}: {detail}")]
    Db {
        /// The file.
        path: String,
        /// The database's complaint.
        detail: String,
    },
    /// The stored chain was made from another genesis.
    #[error(
        "the chain stored in {path} starts from another genesis (another genesis file, or the chain an older vouch made for itself): move it aside to start this one"
    )]
    OtherGenesis {
        /// The file.
        path: String,
    },
    /// A stored block is not a block, or does not follow the one before.
    #[error(
        "the chain store is corrupt at height {height}: {detail} (move the file aside and the validator fetches the chain from its peers)"
    )]
    Corrupt {
        /// Where.
        height: u64,
        /// What.
        detail: String,
    },
}

/// The chain's database.
pub(crate) struct Store {
    db: Database,
    path: String,
}

impl Store {
    pub(crate) fn open(path: &Path) -> Result<Store, StoreError> {
        let shown = path.display().to_string();
        let err = |e: &dyn std::fmt::Display| StoreError::Db {
            path: shown.clone(),
            detail: e.to_string(),
        };
        let db = Database::create(path).map_err(|e| err(&e))?;
        let txn = db.begin_write().map_err(|e| err(&e))?;
        txn.open_table(BLOCKS).map_err(|e| err(&e))?;
        txn.commit().map_err(|e| err(&e))?;
        Ok(Store { db, path: shown })
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            detail: e.to_string(),
        }
    }

    /// Every stored block, in height order from 1, checked to follow each
    /// other.
    pub(crate) fn blocks(&self) -> Result<Vec<ChainBlock>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(BLOCKS).map_err(|e| self.err(e))?;
        let mut out: Vec<ChainBlock> = Vec::new();
        for row in table.iter().map_err(|e| self.err(e))? {
            let (height, bytes) = row.map_err(|e| self.err(e))?;
            let height = height.value();
            let corrupt = |detail: String| StoreError::Corrupt { height, detail };
            let block = ChainBlock::decode(bytes.value())
                .map_err(|e: BlockDecodeError| corrupt(e.to_string()))?;
            if block.height != height || height != out.len() as u64 + 1 {
                return Err(corrupt(format!(
                    "found block {} where block {} belongs",
                    block.height,
                    out.len() + 1
                )));
            }
            if let Some(prev) = out.last()
                && block.parent != prev.digest()
            {
                return Err(corrupt("the block does not name the one before it".into()));
            }
            out.push(block);
        }
        Ok(out)
    }

    /// The bytes of up to `count` stored blocks from height `start` on, in
    /// order (fewer where the store ends).
    pub(crate) fn range(&self, start: u64, count: u64) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(|e| self.err(e))?;
        let table = txn.open_table(BLOCKS).map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for row in table
            .range(start..start.saturating_add(count))
            .map_err(|e| self.err(e))?
        {
            out.push(row.map_err(|e| self.err(e))?.1.value().to_vec());
        }
        Ok(out)
    }

    /// Writes applied blocks, durably, in one transaction.
    pub(crate) fn append(&self, blocks: &[&ChainBlock]) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(|e| self.err(e))?;
        {
            let mut table = txn.open_table(BLOCKS).map_err(|e| self.err(e))?;
            for block in blocks {
                table
                    .insert(block.height, block.encode().as_slice())
                    .map_err(|e| self.err(e))?;
            }
        }
        txn.commit().map_err(|e| self.err(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::sha256::Digest;

    fn block(parent: Digest, height: u64) -> ChainBlock {
        ChainBlock {
            parent,
            height,
            time_ms: height,
            txs: vec![],
        }
    }

    /// Rows that are not blocks, are out of place, or do not name the
    /// block before them are refused with the height and the reason.
    #[test]
    fn stored_blocks_are_checked_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("chain.redb")).unwrap();
        let first = block(Digest([1; 32]), 1);
        let second = block(first.digest(), 2);
        store.append(&[&first, &second]).unwrap();
        assert_eq!(store.blocks().unwrap(), vec![first.clone(), second.clone()]);
        assert_eq!(store.range(2, 10).unwrap(), vec![second.encode()]);
        assert_eq!(store.range(1, 1).unwrap(), vec![first.encode()]);
        assert!(store.range(3, 10).unwrap().is_empty());

        let write = |height: u64, bytes: &[u8]| {
            let txn = store.db.begin_write().unwrap();
            txn.open_table(BLOCKS)
                .unwrap()
                .insert(height, bytes)
                .unwrap();
            txn.commit().unwrap();
        };
        let refused = |want: &str| {
            let err = store.blocks().unwrap_err().to_string();
            assert!(err.contains(want), "{err}");
        };
        write(2, &block(Digest([9; 32]), 2).encode());
        refused("corrupt at height 2: the block does not name the one before it");
        write(2, b"not a block");
        refused("corrupt at height 2");
        write(2, &block(first.digest(), 3).encode());
        refused("found block 3 where block 2 belongs");
    }
}
