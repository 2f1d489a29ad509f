//! Deleting: a model version unregistered, and garbage collection of what
//! nothing needs any more (blobs no model names, fetches that stopped long
//! ago, receipts past their retention).

use std::collections::HashSet;
use std::fs;
use std::time::{Duration, SystemTime};

use redb::{Durability, ReadableTable};
use vouch_types::{Digest, Kind, Receipt};

use crate::registry::ModelRecord;
use crate::{BLOBS, MODEL_IDS, MODELS, RECEIPTS, Store, StoreError, TRACES, db_err, io_err};

/// What [`Store::collect`] may delete.
#[derive(Clone, Copy, Debug)]
pub struct Retention {
    /// A blob no model names is kept this long after it was written (an
    /// upload for a push still being made is not collected under it).
    pub blob_grace: Duration,
    /// A fetch from peers untouched this long is given up.
    pub partial_age: Duration,
    /// Receipts (and their trace leaves) signed before this, Unix
    /// milliseconds, are deleted; `None` keeps every receipt.
    pub receipts_before_ms: Option<u64>,
}

/// What a garbage collection freed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Collected {
    /// Blobs deleted.
    pub blobs: u64,
    /// Their bytes.
    pub blob_bytes: u64,
    /// Stopped fetches deleted.
    pub partials: u64,
    /// Their bytes.
    pub partial_bytes: u64,
    /// Receipts deleted (with their trace leaves).
    pub receipts: u64,
}

impl Store {
    /// Unregisters model `name` at `version` and returns its record, or
    /// `None` when there is no such version. Its blobs stay until
    /// [`Store::collect`] finds no model naming them.
    pub fn delete_model(
        &self,
        name: &str,
        version: &str,
    ) -> Result<Option<ModelRecord>, StoreError> {
        let Some(record) = self.find_model(name, Some(version))? else {
            return Ok(None);
        };
        let id = record.id();
        let removed = self.write(Durability::Immediate, |txn| {
            let mut models = txn.open_table(MODELS).map_err(db_err)?;
            models.remove((name, version)).map_err(db_err)?;
            let mut ids = txn.open_table(MODEL_IDS).map_err(db_err)?;
            ids.remove(id.as_bytes().as_slice()).map_err(db_err)?;
            Ok(())
        });
        self.models.changed();
        removed?;
        Ok(Some(record))
    }

    /// Deletes what nothing needs any more, per `retention`, as of `now`.
    pub fn collect(&self, retention: Retention, now: SystemTime) -> Result<Collected, StoreError> {
        let mut out = Collected::default();
        // Blobs no registered model names, written before the grace period.
        let used: HashSet<Digest> = self
            .list_models()?
            .iter()
            .flat_map(|r| r.signed.manifest.files.iter().map(|f| f.digest))
            .collect();
        let stored: Vec<Digest> = {
            let txn = self.read()?;
            let blobs = txn.open_table(BLOBS).map_err(db_err)?;
            let mut all = Vec::new();
            for row in blobs.iter().map_err(db_err)? {
                let (k, _) = row.map_err(db_err)?;
                if let Ok(bytes) = <[u8; 32]>::try_from(k.value()) {
                    all.push(Digest::from_bytes(Kind::Blob, bytes));
                }
            }
            all
        };
        let old = |meta: &fs::Metadata, age: Duration| {
            meta.modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|d| d >= age)
        };
        for digest in stored.into_iter().filter(|d| !used.contains(d)) {
            let path = self.blob_path(&digest);
            let meta = fs::metadata(&path).ok();
            if meta.as_ref().is_some_and(|m| !old(m, retention.blob_grace)) {
                continue;
            }
            self.write(Durability::Immediate, |txn| {
                let mut blobs = txn.open_table(BLOBS).map_err(db_err)?;
                blobs.remove(digest.as_bytes().as_slice()).map_err(db_err)?;
                Ok(())
            })?;
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err("deleting", &path)(e)),
            }
            out.blobs += 1;
            out.blob_bytes += meta.map_or(0, |m| m.len());
        }
        // Fetches from peers that stopped long ago.
        let partial = self.root().join("partial");
        for entry in fs::read_dir(&partial).map_err(io_err("listing", &partial))? {
            let entry = entry.map_err(io_err("listing", &partial))?;
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_file() && old(&meta, retention.partial_age) {
                let path = entry.path();
                fs::remove_file(&path).map_err(io_err("deleting", &path))?;
                out.partials += 1;
                out.partial_bytes += meta.len();
            }
        }
        // Receipts past their retention, with their trace leaves.
        if let Some(before) = retention.receipts_before_ms {
            let expired: Vec<[u8; 32]> = {
                let txn = self.read()?;
                let receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
                let mut ids = Vec::new();
                for row in receipts.iter().map_err(db_err)? {
                    let (k, v) = row.map_err(db_err)?;
                    let stale = Receipt::from_bytes(v.value())
                        .map(|r| r.body.timestamp_ms < before)
                        .unwrap_or(false);
                    if let (true, Ok(id)) = (stale, <[u8; 32]>::try_from(k.value())) {
                        ids.push(id);
                    }
                }
                ids
            };
            for batch in expired.chunks(1024) {
                self.write(Durability::Immediate, |txn| {
                    let mut receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
                    let mut traces = txn.open_table(TRACES).map_err(db_err)?;
                    for id in batch {
                        receipts.remove(id.as_slice()).map_err(db_err)?;
                        traces.remove(id.as_slice()).map_err(db_err)?;
                    }
                    Ok(())
                })?;
                out.receipts += batch.len() as u64;
            }
        }
        Ok(out)
    }
}
