//! Durable state of a node: content-addressed blobs on disk and a redb
//! registry of models, blob chunk tables, receipts and trace leaves.
//!
//! Blobs are written to `tmp/` and renamed into `blobs/` only once complete
//! and synced, so a crash never leaves a visible partial blob; `tmp/` is
//! emptied on open. Every read of a blob re-hashes it against its chunk
//! table: a corrupted file is reported, never returned.
//!
//! Blobs fetched from peers arrive chunk by chunk into `partial/` through a
//! [`PartialBlob`], which checks every chunk against a chunk table already
//! checked against the blob digest, and survives restarts so a fetch
//! resumes where it stopped.
//!
//! This crate knows nothing of HTTP, engines or the network.

mod blobs;
mod gc;
mod receipts;
mod registry;

pub use blobs::{BlobWriter, PartialBlob};
pub use gc::{Collected, Retention};
pub use registry::ModelRecord;

use std::fs::{self};
use std::io::{self};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, TableDefinition, WriteTransaction,
};
use vouch_types::Digest;

const MODELS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("models");
const MODEL_IDS: TableDefinition<&[u8], (&str, &str)> = TableDefinition::new("model_ids");
const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
const RECEIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("receipts");
const TRACES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("traces");
const EVIDENCE: TableDefinition<u64, &[u8]> = TableDefinition::new("evidence");
const VOUCHERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("vouchers");

/// What went wrong in the store. Each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A filesystem operation failed (disk full, permissions, ...).
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// Where.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The registry database failed.
    #[error("registry database: {0}")]
    Db(String),
    /// Reading or writing the registry database's file failed (a full
    /// disk); the store opens it again before the next transaction.
    #[error("registry database: {0}")]
    RegistryIo(io::Error),
    /// A blob on disk no longer matches its digest.
    #[error(
        "blob {digest} is corrupted on disk ({detail}); it will not be served: push the model again to repair it"
    )]
    Corrupt {
        /// The blob.
        digest: Digest,
        /// What did not match.
        detail: String,
    },
    /// A blob is not in this store.
    #[error("blob {0} is not stored on this node")]
    MissingBlob(Digest),
    /// A stored record could not be decoded.
    #[error("stored record {what} is unreadable: {detail}")]
    Record {
        /// Which record.
        what: String,
        /// Why.
        detail: String,
    },
    /// A chunk index past the end of a blob.
    #[error("blob {digest} has {chunks} chunks; chunk {index} does not exist")]
    NoSuchChunk {
        /// The blob.
        digest: Digest,
        /// The index asked for.
        index: u64,
        /// How many chunks it has.
        chunks: u64,
    },
    /// Bytes offered for a blob do not match what its digest commits to.
    #[error("rejected: {0}")]
    BadChunk(String),
    /// A name and version is already taken by other content.
    #[error("model {name}@{version} already exists with id {existing}; push under a new --version")]
    VersionTaken {
        /// Name.
        name: String,
        /// Version.
        version: String,
        /// The id already registered.
        existing: Digest,
    },
}

fn db_err(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        redb::Error::Io(e) => StoreError::RegistryIo(e),
        redb::Error::PreviousIo => StoreError::RegistryIo(io::Error::other(
            "an earlier write failed; the database is being opened again, retry",
        )),
        e => StoreError::Db(e.to_string()),
    }
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The registry's file under the store's directory.
const REGISTRY: &str = "registry.redb";
/// After an I/O error, the registry is opened again at most this often.
const REOPEN_EVERY: Duration = Duration::from_secs(1);
/// How long reopening waits for transactions still holding the old handle.
const REOPEN_WAIT: Duration = Duration::from_secs(2);

/// Which opening of the registry a write went to. Receipts written
/// without a sync ([`Store::put_receipts`]) are durable once a
/// [`Store::flush`] succeeds in the same epoch. The registry is opened
/// again, in a new epoch, after an I/O error, and what the old epoch had not
/// made durable is gone.
pub type Epoch = u64;

/// The node's durable state under one directory.
pub struct Store {
    root: PathBuf,
    /// The registry; `None` once an I/O error closed it, until reopened.
    /// After an I/O error (a full disk) redb refuses every transaction
    /// until the database is opened again: [`Store::write`] closes it,
    /// [`Store::db`] opens it again.
    db: RwLock<Option<(Arc<Database>, Epoch)>>,
    /// The latest epoch, and the last failed attempt to open the registry
    /// again: when, and why.
    reopened: Mutex<(Epoch, Option<(Instant, String)>)>,
    /// The registered models as last read, and the registry generation
    /// they were read at (`registry`): every request looks its model up,
    /// and reading and decoding the record (its publisher's key included)
    /// each time cost tens of microseconds.
    models: registry::Cache,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("root", &self.root).finish()
    }
}

impl Store {
    /// Opens (creating if needed) the store in `dir`, and discards any
    /// partial uploads a crash left in `tmp/`.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        for sub in ["blobs", "tmp", "partial"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(io_err("creating", &p))?;
        }
        let tmp = dir.join("tmp");
        for entry in fs::read_dir(&tmp).map_err(io_err("listing", &tmp))? {
            let entry = entry.map_err(io_err("listing", &tmp))?;
            let _ = fs::remove_file(entry.path());
        }
        let path = dir.join(REGISTRY);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::Db(format!(
                "{} is open in another process (another node on this data directory?); stop it or use another data directory",
                path.display()
            )),
            e => {
                let why = match db_err(e) {
                    StoreError::RegistryIo(e) if e.kind() == io::ErrorKind::StorageFull => {
                        return StoreError::RegistryIo(e);
                    }
                    StoreError::RegistryIo(e) => e.to_string(),
                    StoreError::Db(why) => why,
                    other => other.to_string(),
                };
                StoreError::Db(format!(
                    "{} cannot be opened ({why}); if it is damaged, move it aside to start with an empty registry (blobs stay; push or pin the models again)",
                    path.display()
                ))
            }
        })?;
        let store = Store {
            root: dir.to_path_buf(),
            db: RwLock::new(Some((Arc::new(db), 0))),
            reopened: Mutex::new((0, None)),
            models: registry::Cache::default(),
        };
        store.write(Durability::Immediate, |txn| {
            txn.open_table(MODELS).map_err(db_err)?;
            txn.open_table(MODEL_IDS).map_err(db_err)?;
            txn.open_table(BLOBS).map_err(db_err)?;
            txn.open_table(RECEIPTS).map_err(db_err)?;
            txn.open_table(TRACES).map_err(db_err)?;
            txn.open_table(EVIDENCE).map_err(db_err)?;
            txn.open_table(VOUCHERS).map_err(db_err)?;
            Ok(())
        })?;
        Ok(store)
    }
    /// The registry, opened again if an I/O error closed it (at most once
    /// per [`REOPEN_EVERY`]; until then, the last failure).
    fn db(&self) -> Result<(Arc<Database>, Epoch), StoreError> {
        if let Some(open) = self
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            return Ok(open.clone());
        }
        let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(open) = slot.as_ref() {
            return Ok(open.clone());
        }
        let mut reopened = self.reopened.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, why)) = &reopened.1
            && at.elapsed() < REOPEN_EVERY
        {
            return Err(StoreError::RegistryIo(io::Error::other(why.clone())));
        }
        // Transactions begun before the error may still hold the file.
        let deadline = Instant::now() + REOPEN_WAIT;
        let opened = loop {
            match Database::create(self.root.join(REGISTRY)) {
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5));
                }
                other => break other.map_err(db_err),
            }
        };
        let db = match opened {
            Ok(db) => Arc::new(db),
            Err(e) => {
                reopened.1 = Some((Instant::now(), e.to_string()));
                return Err(e);
            }
        };
        *reopened = (reopened.0 + 1, None);
        tracing::info!(path = %self.root.join(REGISTRY).display(), "registry database opened again after an I/O error");
        let open = (db, reopened.0);
        *slot = Some(open.clone());
        Ok(open)
    }
    /// A read transaction on the registry.
    fn read(&self) -> Result<ReadTransaction, StoreError> {
        self.db()?.0.begin_read().map_err(db_err)
    }
    /// Runs `f` in a write transaction with `durability` and commits it.
    /// An I/O error (a full disk) closes the registry, so that the next
    /// transaction opens it again and works once there is room.
    /// Returns `f`'s value and the epoch the transaction went to.
    fn write<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<(T, Epoch), StoreError> {
        let (db, epoch) = self.db()?;
        let result = (|| {
            let mut txn = db.begin_write().map_err(db_err)?;
            txn.set_durability(durability).map_err(db_err)?;
            let value = f(&txn)?;
            txn.commit().map_err(db_err)?;
            Ok((value, epoch))
        })();
        if let Err(StoreError::RegistryIo(e)) = &result {
            tracing::warn!(error = %e, "closing the registry database after an I/O error");
            let mut slot = self.db.write().unwrap_or_else(PoisonError::into_inner);
            if slot
                .as_ref()
                .is_some_and(|(open, _)| Arc::ptr_eq(open, &db))
            {
                *slot = None;
            }
        }
        result
    }
    /// The directory this store lives in.
    pub fn root(&self) -> &Path {
        &self.root
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_types::blob::CHUNK_SIZE;
    use vouch_types::manifest::{FileEntry, ModelFormat, Schema};
    use vouch_types::{Manifest, SecretKey, SignedManifest};

    fn manifest(name: &str, version: &str, blob: Digest, size: u64) -> SignedManifest {
        let key = SecretKey::from_bytes(&[1; 32]);
        Manifest {
            name: name.into(),
            version: version.into(),
            format: ModelFormat::Onnx,
            files: vec![FileEntry {
                role: "model".into(),
                digest: blob,
                size,
            }],
            schema: Schema::default(),
            license: String::new(),
            publisher: key.public(),
        }
        .sign(&key)
    }

    #[test]
    fn evidence_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        for i in 0..5u8 {
            assert_eq!(store.put_evidence(&[i], 3).unwrap(), u64::from(i));
        }
        assert_eq!(store.evidence().unwrap(), vec![vec![2], vec![3], vec![4]]);
        store.put_evidence(&[5], 0).unwrap();
        assert_eq!(store.evidence().unwrap(), vec![vec![5]]);
    }

    #[test]
    fn a_registry_in_use_or_unreadable_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("another node on this data directory?"),
            "{err}"
        );
        drop(store);
        fs::write(dir.path().join(REGISTRY), [7u8; 4096]).unwrap();
        let err = Store::open(dir.path()).unwrap_err().to_string();
        assert!(
            err.contains("cannot be opened") && err.contains("move it aside"),
            "{err}"
        );
    }

    #[test]
    fn blobs_round_trip_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(CHUNK_SIZE + 5)).map(|i| i as u8).collect();
        let (d, size) = Store::open(dir.path()).unwrap().put_blob(&data).unwrap();
        assert_eq!(size, data.len() as u64);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.read_blob(&d).unwrap(), data);
    }

    #[test]
    fn corruption_is_reported_not_served() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d, _) = store.put_blob(b"hello world").unwrap();
        let path = store.blob_path(&d);
        fs::write(&path, b"hello w0rld").unwrap();
        assert!(matches!(
            store.read_blob(&d),
            Err(StoreError::Corrupt { .. })
        ));
        fs::write(&path, b"short").unwrap();
        assert!(matches!(
            store.read_blob(&d),
            Err(StoreError::Corrupt { .. })
        ));
        fs::remove_file(&path).unwrap();
        assert!(matches!(
            store.read_blob(&d),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn abandoned_writes_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut w = store.blob_writer().unwrap();
        w.write(b"partial").unwrap();
        let tmp = w.temp_path().to_path_buf();
        assert!(tmp.exists());
        drop(w);
        assert!(!tmp.exists());
        // A crash (no drop) leaves the temp file; reopening removes it.
        let mut w = store.blob_writer().unwrap();
        w.write(b"partial").unwrap();
        let tmp = w.temp_path().to_path_buf();
        std::mem::forget(w);
        drop(store);
        let _store = Store::open(dir.path()).unwrap();
        assert!(!tmp.exists());
        assert_eq!(fs::read_dir(dir.path().join("blobs")).unwrap().count(), 0);
    }

    /// A store holding one blob of `len` patterned bytes: the peer a
    /// partial blob's chunks come from.
    fn source_blob(len: usize) -> (tempfile::TempDir, Store, Vec<u8>, Digest) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..len as u64)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let (digest, _) = store.put_blob(&data).unwrap();
        (dir, store, data, digest)
    }

    #[test]
    fn partial_blobs_check_every_chunk_and_resume() {
        let (_src_dir, src, data, digest) = source_blob(3 * CHUNK_SIZE + 100);
        let table = src.chunk_table(&digest).unwrap();
        assert_eq!(src.read_chunk(&digest, 3).unwrap(), &data[3 * CHUNK_SIZE..]);
        assert_eq!(
            src.read_chunks(&digest, &[3, 0], Vec::new()).unwrap(),
            [&data[3 * CHUNK_SIZE..], &data[..CHUNK_SIZE]].concat()
        );
        assert!(matches!(
            src.read_chunk(&digest, 4),
            Err(StoreError::NoSuchChunk { chunks: 4, .. })
        ));

        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // A table that does not hash to the digest is refused.
        let mut forged = table.clone();
        forged.chunks.swap(0, 1);
        assert!(matches!(
            store.partial_blob(&digest, forged),
            Err(StoreError::BadChunk(_))
        ));
        let p = store.partial_blob(&digest, table.clone()).unwrap();
        assert_eq!(p.missing(), vec![0, 1, 2, 3]);
        // A wrong chunk is refused and nothing is marked present.
        let mut bad = src.read_chunk(&digest, 1).unwrap();
        bad[10] ^= 1;
        assert!(matches!(p.put_chunk(1, &bad), Err(StoreError::BadChunk(_))));
        assert!(matches!(
            p.put_chunk(0, &src.read_chunk(&digest, 1).unwrap()),
            Err(StoreError::BadChunk(_))
        ));
        for i in [1, 3] {
            p.put_chunk(i, &src.read_chunk(&digest, i).unwrap())
                .unwrap();
        }
        assert!(matches!(p.finish(&store), Err(StoreError::BadChunk(_))));
        assert!(!store.has_blob(&digest).unwrap());
        // A restart: the fetch resumes with the chunks already checked.
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let p = store.partial_blob(&digest, table).unwrap();
        assert_eq!(p.missing(), vec![0, 2]);
        assert_eq!(p.bytes_present(), (CHUNK_SIZE + 100) as u64);
        for i in p.missing() {
            p.put_chunk(i, &src.read_chunk(&digest, i).unwrap())
                .unwrap();
        }
        assert_eq!(p.finish(&store).unwrap(), digest);
        assert_eq!(store.read_blob(&digest).unwrap(), data);
        assert_eq!(fs::read_dir(dir.path().join("partial")).unwrap().count(), 0);
    }

    #[test]
    fn partial_blobs_take_chunks_from_several_threads() {
        let (_src_dir, src, data, digest) = source_blob(6 * CHUNK_SIZE + 7);
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let p = store
            .partial_blob(&digest, src.chunk_table(&digest).unwrap())
            .unwrap();
        std::thread::scope(|s| {
            for start in 0..3u64 {
                let (p, src) = (&p, &src);
                s.spawn(move || {
                    for i in (start..7).step_by(3) {
                        p.put_chunk(i, &src.read_chunk(&digest, i).unwrap())
                            .unwrap();
                    }
                });
            }
        });
        assert!(p.missing().is_empty());
        assert_eq!(p.finish(&store).unwrap(), digest);
        assert_eq!(store.read_blob(&digest).unwrap(), data);
    }

    #[test]
    fn models_register_list_and_refuse_conflicts() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d1, s1) = store.put_blob(b"one").unwrap();
        let (d2, s2) = store.put_blob(b"two").unwrap();
        let a = store.put_model(manifest("m", "1", d1, s1), 10).unwrap();
        assert_eq!(store.put_model(manifest("m", "1", d1, s1), 11).unwrap(), a);
        assert!(matches!(
            store.put_model(manifest("m", "1", d2, s2), 12),
            Err(StoreError::VersionTaken { .. })
        ));
        let b = store.put_model(manifest("m", "2", d2, s2), 13).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.list_models().unwrap(), vec![a.clone(), b.clone()]);
        assert_eq!(store.find_model("m", None).unwrap(), Some(b.clone()));
        assert_eq!(store.find_model("m", Some("1")).unwrap(), Some(a.clone()));
        assert_eq!(store.model_by_id(&a.id()).unwrap(), Some(a));
        assert!(store.find_model("x", None).unwrap().is_none());
        assert!(b.signed.verify());
    }

    /// Lookups come from the cached registry, which every write that
    /// changes the models replaces: a lookup after a push or a delete sees
    /// it, and the cache is the registry's content.
    #[test]
    fn cached_lookups_follow_every_push_and_delete() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d1, s1) = store.put_blob(b"one").unwrap();
        let (d2, s2) = store.put_blob(b"two").unwrap();
        assert!(store.find_model("m", None).unwrap().is_none());
        let a = store.put_model(manifest("m", "1", d1, s1), 10).unwrap();
        assert_eq!(store.find_model("m", None).unwrap(), Some(a.clone()));
        let b = store.put_model(manifest("m", "2", d2, s2), 11).unwrap();
        assert_eq!(store.find_model("m", None).unwrap(), Some(b.clone()));
        assert_eq!(store.model_by_id(&b.id()).unwrap(), Some(b.clone()));
        // A refused push changes nothing.
        assert!(store.put_model(manifest("m", "2", d1, s1), 12).is_err());
        assert_eq!(store.find_model("m", Some("2")).unwrap(), Some(b.clone()));
        store.delete_model("m", "2").unwrap().unwrap();
        assert_eq!(store.find_model("m", None).unwrap(), Some(a.clone()));
        assert!(store.model_by_id(&b.id()).unwrap().is_none());
        assert_eq!(store.list_models().unwrap(), store.read_models().unwrap());
        assert_eq!(store.list_models().unwrap(), vec![a]);
    }

    #[test]
    fn deleting_a_model_lets_gc_free_its_blob_and_nothing_in_use() {
        use std::time::{Duration, SystemTime};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d1, s1) = store.put_blob(b"one").unwrap();
        let (d2, s2) = store.put_blob(b"two").unwrap();
        let (fresh, _) = store.put_blob(b"an upload for a push in progress").unwrap();
        store.put_model(manifest("m", "1", d1, s1), 10).unwrap();
        let b = store.put_model(manifest("m", "2", d2, s2), 11).unwrap();
        let keep_fresh = Retention {
            blob_grace: Duration::from_secs(3600),
            partial_age: Duration::from_secs(3600),
            receipts_before_ms: None,
        };
        // Nothing is unused and old: nothing goes.
        let now = SystemTime::now();
        assert_eq!(
            store.collect(keep_fresh, now).unwrap(),
            Collected::default()
        );
        assert!(store.delete_model("m", "7").unwrap().is_none());
        let gone = store.delete_model("m", "1").unwrap().unwrap();
        assert_eq!(gone.signed.manifest.version, "1");
        assert_eq!(store.find_model("m", None).unwrap(), Some(b.clone()));
        assert!(store.model_by_id(&gone.id()).unwrap().is_none());
        // Within the grace period the unused blobs stay; after it they go,
        // and the blob version 2 uses stays.
        assert_eq!(store.collect(keep_fresh, now).unwrap().blobs, 0);
        let later = now + Duration::from_secs(7200);
        let freed = store.collect(keep_fresh, later).unwrap();
        assert_eq!((freed.blobs, freed.blob_bytes), (2, 3 + 32), "{freed:?}");
        assert!(!store.has_blob(&d1).unwrap() && !store.has_blob(&fresh).unwrap());
        assert_eq!(store.read_blob(&d2).unwrap(), b"two");
        // A stopped fetch is given up once old.
        std::fs::write(dir.path().join("partial").join("abc"), b"xyz").unwrap();
        let freed = store.collect(keep_fresh, later).unwrap();
        assert_eq!((freed.partials, freed.partial_bytes), (1, 3));
    }
}
