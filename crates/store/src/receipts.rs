//! Receipts, their trace leaves, and evidence records.

use redb::{Durability, ReadableTable, ReadableTableMetadata};
use vouch_types::{Digest, Kind, Receipt};

use crate::{EVIDENCE, Epoch, RECEIPTS, Store, StoreError, TRACES, VOUCHERS, db_err};

impl Store {
    /// Records receipts and the trace leaves behind their commitments, in
    /// one transaction, and returns the epoch it went to.
    ///
    /// The commit is not synced: receipts are visible at once and reach the
    /// disk with the next [`flush`](Store::flush) in the same epoch (the
    /// node's receipt log flushes every second). The client already holds
    /// the signed receipt; a power cut loses at most the node's copy of the
    /// last second, and an I/O error loses what this epoch had not flushed
    /// (the receipt log writes it again).
    pub fn put_receipts<'a>(
        &self,
        batch: impl IntoIterator<Item = (&'a Receipt, &'a [Digest])>,
    ) -> Result<Epoch, StoreError> {
        self.write(Durability::None, |txn| {
            let mut receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
            let mut traces = txn.open_table(TRACES).map_err(db_err)?;
            let mut flat = Vec::new();
            for (receipt, leaves) in batch {
                let key = receipt.id.as_bytes().as_slice();
                receipts
                    .insert(key, receipt.to_bytes().as_slice())
                    .map_err(db_err)?;
                flat.clear();
                flat.extend(leaves.iter().flat_map(|d| *d.as_bytes()));
                traces.insert(key, flat.as_slice()).map_err(db_err)?;
            }
            Ok(())
        })
        .map(|((), epoch)| epoch)
    }
    /// Makes every earlier commit of the current epoch durable, and
    /// returns that epoch.
    pub fn flush(&self) -> Result<Epoch, StoreError> {
        self.write(Durability::Immediate, |_| Ok(()))
            .map(|((), epoch)| epoch)
    }
    /// A stored receipt.
    pub fn receipt(&self, id: &Digest) -> Result<Option<Receipt>, StoreError> {
        let txn = self.read()?;
        let receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
        let Some(row) = receipts.get(id.as_bytes().as_slice()).map_err(db_err)? else {
            return Ok(None);
        };
        Receipt::from_bytes(row.value())
            .map(Some)
            .map_err(|e| StoreError::Record {
                what: id.to_string(),
                detail: e.to_string(),
            })
    }
    /// The trace leaves stored with a receipt.
    pub fn trace_leaves(&self, id: &Digest) -> Result<Option<Vec<Digest>>, StoreError> {
        let txn = self.read()?;
        let traces = txn.open_table(TRACES).map_err(db_err)?;
        let Some(row) = traces.get(id.as_bytes().as_slice()).map_err(db_err)? else {
            return Ok(None);
        };
        let leaves = row
            .value()
            .chunks_exact(32)
            .map(|c| {
                let mut b = [0u8; 32];
                b.copy_from_slice(c);
                Digest::from_bytes(Kind::TraceLeaf, b)
            })
            .collect();
        Ok(Some(leaves))
    }
    /// Appends a piece of evidence (an opaque record the node encodes:
    /// disagreeing receipts, dispute verdicts), keeping the newest `keep`
    /// records (at least this one); returns its sequence number.
    pub fn put_evidence(&self, record: &[u8], keep: u64) -> Result<u64, StoreError> {
        self.write(Durability::Immediate, |txn| {
            let mut table = txn.open_table(EVIDENCE).map_err(db_err)?;
            let seq = table
                .last()
                .map_err(db_err)?
                .map_or(0, |(k, _)| k.value() + 1);
            table.insert(seq, record).map_err(db_err)?;
            while table.len().map_err(db_err)? > keep.max(1) {
                table.pop_first().map_err(db_err)?;
            }
            Ok(seq)
        })
        .map(|(seq, _)| seq)
    }
    /// Every piece of evidence, oldest first.
    pub fn evidence(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(EVIDENCE).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            out.push(row.map_err(db_err)?.1.value().to_vec());
        }
        Ok(out)
    }
    /// Up to `limit` evidence records after sequence number `after` (from
    /// the oldest when `None`), with their sequence numbers, oldest first.
    pub fn evidence_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(EVIDENCE).map_err(db_err)?;
        let start = after.map_or(0, |a| a.saturating_add(1));
        let mut out = Vec::new();
        if after == Some(u64::MAX) {
            return Ok(out);
        }
        for row in table.range(start..).map_err(db_err)?.take(limit) {
            let (k, v) = row.map_err(db_err)?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }
    /// Keeps the newest payment voucher held from each client: `(client
    /// key bytes, voucher bytes)`, each replacing the client's earlier one.
    /// Synced: a voucher is money the operator has not redeemed yet.
    pub fn put_vouchers(&self, vouchers: &[(Vec<u8>, Vec<u8>)]) -> Result<(), StoreError> {
        self.write(Durability::Immediate, |txn| {
            let mut table = txn.open_table(VOUCHERS).map_err(db_err)?;
            for (client, voucher) in vouchers {
                table
                    .insert(client.as_slice(), voucher.as_slice())
                    .map_err(db_err)?;
            }
            Ok(())
        })
        .map(|_| ())
    }
    /// Every voucher [`put_vouchers`](Store::put_vouchers) kept (its bytes).
    pub fn vouchers(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(VOUCHERS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in table.iter().map_err(db_err)? {
            out.push(row.map_err(db_err)?.1.value().to_vec());
        }
        Ok(out)
    }
    /// Number of stored receipts.
    pub fn receipt_count(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
        receipts.len().map_err(db_err)
    }
}
