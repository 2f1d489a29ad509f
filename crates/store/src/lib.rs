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

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use redb::{
    Database, Durability, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition, WriteTransaction,
};
use vouch_types::blob::{BlobHasher, CHUNK_SIZE, ChunkTable};
use vouch_types::encode::{Reader, Sink};
use vouch_types::{Digest, Kind, Manifest, Receipt, Signature, SignedManifest};

const MODELS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("models");
const MODEL_IDS: TableDefinition<&[u8], (&str, &str)> = TableDefinition::new("model_ids");
const BLOBS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("blobs");
const RECEIPTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("receipts");
const TRACES: TableDefinition<&[u8], &[u8]> = TableDefinition::new("traces");
const EVIDENCE: TableDefinition<u64, &[u8]> = TableDefinition::new("evidence");

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

/// A model registered in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelRecord {
    /// The signed manifest.
    pub signed: SignedManifest,
    /// Registration order (monotonic per store): the newest version wins.
    pub seq: u64,
    /// When it was registered, Unix milliseconds.
    pub created_ms: u64,
}

impl ModelRecord {
    /// The model id.
    pub fn id(&self) -> Digest {
        self.signed.manifest.id()
    }

    fn encode(&self) -> Vec<u8> {
        let manifest = self.signed.manifest.encode();
        let mut b = Vec::with_capacity(manifest.len() + 80);
        b.put_u64(self.seq);
        b.put_u64(self.created_ms);
        b.put(&self.signed.signature.to_bytes());
        b.put(&manifest);
        b
    }

    fn decode(bytes: &[u8]) -> Result<ModelRecord, String> {
        let mut r = Reader::new(bytes);
        let seq = r.u64().map_err(|e| e.to_string())?;
        let created_ms = r.u64().map_err(|e| e.to_string())?;
        let sig: [u8; 64] = r.array().map_err(|e| e.to_string())?;
        let rest = r.take(r.remaining()).map_err(|e| e.to_string())?;
        let manifest = Manifest::decode(rest).map_err(|e| e.to_string())?;
        Ok(ModelRecord {
            signed: SignedManifest {
                manifest,
                signature: Signature::from_bytes(&sig),
            },
            seq,
            created_ms,
        })
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
        };
        store.write(Durability::Immediate, |txn| {
            txn.open_table(MODELS).map_err(db_err)?;
            txn.open_table(MODEL_IDS).map_err(db_err)?;
            txn.open_table(BLOBS).map_err(db_err)?;
            txn.open_table(RECEIPTS).map_err(db_err)?;
            txn.open_table(TRACES).map_err(db_err)?;
            txn.open_table(EVIDENCE).map_err(db_err)?;
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

    fn blob_path(&self, digest: &Digest) -> PathBuf {
        let hex = digest.to_hex();
        self.root.join("blobs").join(&hex[..2]).join(hex)
    }

    /// Starts writing a new blob; nothing is visible until
    /// [`BlobWriter::commit`].
    pub fn blob_writer(&self) -> Result<BlobWriter<'_>, StoreError> {
        let mut name = [0u8; 16];
        getrandom::fill(&mut name).map_err(|e| StoreError::Io {
            action: "drawing a temporary name",
            path: self.root.clone(),
            source: io::Error::other(e.to_string()),
        })?;
        let path = self.root.join("tmp").join(hex::encode(name));
        let file = File::create(&path).map_err(io_err("creating", &path))?;
        Ok(BlobWriter {
            store: self,
            file: Some(file),
            path,
            hasher: BlobHasher::new(),
        })
    }

    /// Stores `data` as a blob.
    pub fn put_blob(&self, data: &[u8]) -> Result<(Digest, u64), StoreError> {
        let mut w = self.blob_writer()?;
        w.write(data)?;
        w.commit()
    }

    /// The chunk table of a stored blob.
    pub fn chunk_table(&self, digest: &Digest) -> Result<ChunkTable, StoreError> {
        let txn = self.read()?;
        let table = txn.open_table(BLOBS).map_err(db_err)?;
        let row = table.get(digest.as_bytes().as_slice()).map_err(db_err)?;
        let row = row.ok_or(StoreError::MissingBlob(*digest))?;
        ChunkTable::decode(row.value()).map_err(|e| StoreError::Record {
            what: digest.to_string(),
            detail: e.to_string(),
        })
    }

    /// Whether the blob is registered.
    pub fn has_blob(&self, digest: &Digest) -> Result<bool, StoreError> {
        match self.chunk_table(digest) {
            Ok(_) => Ok(true),
            Err(StoreError::MissingBlob(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Reads chunk `index` of a stored blob, re-hashed against its table.
    pub fn read_chunk(&self, digest: &Digest, index: u64) -> Result<Vec<u8>, StoreError> {
        self.read_chunks(digest, &[index], Vec::new())
    }

    /// Reads chunks of a stored blob back to back, in the order given, each
    /// re-hashed against the blob's table, into `data` (emptied first; a
    /// server passes a buffer it reuses).
    pub fn read_chunks(
        &self,
        digest: &Digest,
        indexes: &[u64],
        mut data: Vec<u8>,
    ) -> Result<Vec<u8>, StoreError> {
        let table = self.chunk_table(digest)?;
        let chunks = table.chunks.len() as u64;
        if let Some(&index) = indexes.iter().find(|&&i| i >= chunks) {
            return Err(StoreError::NoSuchChunk {
                digest: *digest,
                index,
                chunks,
            });
        }
        let path = self.blob_path(digest);
        let corrupt = |detail: String| StoreError::Corrupt {
            digest: *digest,
            detail,
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(corrupt("the file is missing".into()));
            }
            Err(e) => return Err(io_err("opening", &path)(e)),
        };
        let total = indexes.iter().map(|&i| chunk_span(&table, i).1).sum();
        // Read straight into the answer's spare capacity (no zeroing first).
        data.clear();
        data.reserve(total);
        for &index in indexes {
            let (offset, len) = chunk_span(&table, index);
            let at = data.len();
            let read = (&file)
                .seek(io::SeekFrom::Start(offset))
                .and_then(|_| (&file).take(len as u64).read_to_end(&mut data));
            match read {
                Ok(n) if n == len => {}
                Ok(n) => return Err(corrupt(format!("chunk {index} is cut short at {n} bytes"))),
                Err(e) => return Err(corrupt(format!("chunk {index} cannot be read: {e}"))),
            }
            if Digest::of(Kind::BlobChunk, &data[at..]) != table.chunks[index as usize] {
                return Err(corrupt(format!("chunk {index} does not match its digest")));
            }
        }
        Ok(data)
    }

    /// Starts or resumes fetching the blob `table` describes. The table
    /// must hash to `digest`; chunks already on disk from an earlier try
    /// are re-checked and kept.
    pub fn partial_blob(
        &self,
        digest: &Digest,
        table: ChunkTable,
    ) -> Result<PartialBlob, StoreError> {
        if table.root() != *digest {
            return Err(StoreError::BadChunk(format!(
                "the chunk table offered for {digest} hashes to {}",
                table.root()
            )));
        }
        let path = self.root.join("partial").join(digest.to_hex());
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err("opening", &path))?;
        let on_disk = file.metadata().map_err(io_err("reading", &path))?.len();
        let mut have = vec![false; table.chunks.len()];
        let mut buf = vec![0u8; CHUNK_SIZE];
        for (i, want) in table.chunks.iter().enumerate() {
            let (offset, len) = chunk_span(&table, i as u64);
            if offset + len as u64 > on_disk {
                break;
            }
            if file.read_exact_at(&mut buf[..len], offset).is_ok()
                && Digest::of(Kind::BlobChunk, &buf[..len]) == *want
            {
                have[i] = true;
            }
        }
        file.set_len(table.size).map_err(io_err("sizing", &path))?;
        Ok(PartialBlob {
            digest: *digest,
            table,
            file,
            path,
            have: have.into_iter().map(AtomicBool::new).collect(),
        })
    }

    /// Opens a stored blob's file after checking its size.
    fn open_blob(&self, digest: &Digest) -> Result<(File, ChunkTable, PathBuf), StoreError> {
        let table = self.chunk_table(digest)?;
        let path = self.blob_path(digest);
        let corrupt = |detail: String| StoreError::Corrupt {
            digest: *digest,
            detail,
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(corrupt("the file is missing".into()));
            }
            Err(e) => return Err(io_err("opening", &path)(e)),
        };
        let len = file.metadata().map_err(io_err("reading", &path))?.len();
        if len != table.size {
            return Err(corrupt(format!(
                "{len} bytes on disk, {} expected",
                table.size
            )));
        }
        Ok((file, table, path))
    }

    /// Reads a blob's chunks into `buf` and checks each against the table,
    /// then the table against the digest. A `buf` that holds the whole blob
    /// receives it; a smaller one (one chunk) is reused for every chunk.
    fn check_chunks(
        digest: &Digest,
        table: &ChunkTable,
        file: &mut File,
        path: &Path,
        buf: &mut [u8],
    ) -> Result<(), StoreError> {
        let whole = buf.len() >= table.size as usize;
        let corrupt = |detail: String| StoreError::Corrupt {
            digest: *digest,
            detail,
        };
        for (i, want) in table.chunks.iter().enumerate() {
            let n = (table.size as usize - i * CHUNK_SIZE).min(CHUNK_SIZE);
            let at = if whole { i * CHUNK_SIZE } else { 0 };
            let chunk = &mut buf[at..at + n];
            file.read_exact(chunk).map_err(io_err("reading", path))?;
            if Digest::of(Kind::BlobChunk, chunk) != *want {
                return Err(corrupt(format!("chunk {i} does not match its digest")));
            }
        }
        if table.root() != *digest {
            return Err(corrupt(
                "the chunk table does not match the blob digest".into(),
            ));
        }
        Ok(())
    }

    /// Re-hashes a stored blob chunk by chunk (without holding it in
    /// memory) and returns the path of its file, for engines that map
    /// model files rather than read them.
    pub fn verified_path(&self, digest: &Digest) -> Result<PathBuf, StoreError> {
        let (mut file, table, path) = self.open_blob(digest)?;
        let mut buf = vec![0u8; CHUNK_SIZE.min(table.size as usize)];
        Store::check_chunks(digest, &table, &mut file, &path, &mut buf)?;
        Ok(path)
    }

    /// Reads a whole blob, re-hashing every chunk against its table.
    pub fn read_blob(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        let (mut file, table, path) = self.open_blob(digest)?;
        let mut data = vec![0u8; table.size as usize];
        Store::check_chunks(digest, &table, &mut file, &path, &mut data)?;
        Ok(data)
    }

    /// Registers a model. Pushing identical content again is a no-op that
    /// returns the existing record; other content under a taken
    /// name and version is refused.
    pub fn put_model(
        &self,
        signed: SignedManifest,
        now_ms: u64,
    ) -> Result<ModelRecord, StoreError> {
        let m = &signed.manifest;
        let id = m.id();
        self.write(Durability::Immediate, |txn| {
            let mut models = txn.open_table(MODELS).map_err(db_err)?;
            if let Some(existing) = models
                .get((m.name.as_str(), m.version.as_str()))
                .map_err(db_err)?
            {
                let existing =
                    ModelRecord::decode(existing.value()).map_err(|detail| StoreError::Record {
                        what: m.name.clone(),
                        detail,
                    })?;
                if existing.id() == id {
                    return Ok(existing);
                }
                return Err(StoreError::VersionTaken {
                    name: m.name.clone(),
                    version: m.version.clone(),
                    existing: existing.id(),
                });
            }
            let seq = models
                .iter()
                .map_err(db_err)?
                .filter_map(|row| row.ok())
                .filter_map(|(_, v)| ModelRecord::decode(v.value()).ok())
                .map(|r| r.seq + 1)
                .max()
                .unwrap_or(0);
            let record = ModelRecord {
                signed: signed.clone(),
                seq,
                created_ms: now_ms,
            };
            models
                .insert(
                    (m.name.as_str(), m.version.as_str()),
                    record.encode().as_slice(),
                )
                .map_err(db_err)?;
            let mut ids = txn.open_table(MODEL_IDS).map_err(db_err)?;
            ids.insert(
                id.as_bytes().as_slice(),
                (m.name.as_str(), m.version.as_str()),
            )
            .map_err(db_err)?;
            Ok(record)
        })
        .map(|(record, _)| record)
    }

    /// Every registered model, every version, in registration order.
    pub fn list_models(&self) -> Result<Vec<ModelRecord>, StoreError> {
        let txn = self.read()?;
        let models = txn.open_table(MODELS).map_err(db_err)?;
        let mut out = Vec::new();
        for row in models.iter().map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            let record = ModelRecord::decode(v.value()).map_err(|detail| StoreError::Record {
                what: format!("{}@{}", k.value().0, k.value().1),
                detail,
            })?;
            out.push(record);
        }
        out.sort_by_key(|r| r.seq);
        Ok(out)
    }

    /// A model by name: the given version, or the newest one registered.
    pub fn find_model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Option<ModelRecord>, StoreError> {
        let txn = self.read()?;
        let models = txn.open_table(MODELS).map_err(db_err)?;
        let decode = |k: (&str, &str), v: &[u8]| {
            ModelRecord::decode(v).map_err(|detail| StoreError::Record {
                what: format!("{}@{}", k.0, k.1),
                detail,
            })
        };
        if let Some(version) = version {
            return match models.get((name, version)).map_err(db_err)? {
                Some(v) => decode((name, version), v.value()).map(Some),
                None => Ok(None),
            };
        }
        // Every version of `name`: keys sort by name, then version.
        let mut newest: Option<ModelRecord> = None;
        for row in models.range((name, "")..).map_err(db_err)? {
            let (k, v) = row.map_err(db_err)?;
            if k.value().0 != name {
                break;
            }
            let record = decode(k.value(), v.value())?;
            if newest.as_ref().is_none_or(|n| record.seq > n.seq) {
                newest = Some(record);
            }
        }
        Ok(newest)
    }

    /// A model by id.
    pub fn model_by_id(&self, id: &Digest) -> Result<Option<ModelRecord>, StoreError> {
        let txn = self.read()?;
        let ids = txn.open_table(MODEL_IDS).map_err(db_err)?;
        let Some(row) = ids.get(id.as_bytes().as_slice()).map_err(db_err)? else {
            return Ok(None);
        };
        let (name, version) = row.value();
        let (name, version) = (name.to_string(), version.to_string());
        // No transaction held while taking another: reopening the registry
        // waits for every old one to end.
        drop((row, ids, txn));
        self.find_model(&name, Some(&version))
    }

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

    /// Number of stored receipts.
    pub fn receipt_count(&self) -> Result<u64, StoreError> {
        let txn = self.read()?;
        let receipts = txn.open_table(RECEIPTS).map_err(db_err)?;
        receipts.len().map_err(db_err)
    }
}

/// Where chunk `index` of a blob starts, and its length.
fn chunk_span(table: &ChunkTable, index: u64) -> (u64, usize) {
    let offset = index * CHUNK_SIZE as u64;
    (
        offset,
        (table.size - offset).min(CHUNK_SIZE as u64) as usize,
    )
}

/// A blob arriving chunk by chunk from peers, in `partial/` until every
/// chunk is there and checked. Nothing unchecked is ever written. Chunks
/// can be checked and written from several threads at once.
#[derive(Debug)]
pub struct PartialBlob {
    digest: Digest,
    table: ChunkTable,
    file: File,
    path: PathBuf,
    have: Vec<AtomicBool>,
}

impl PartialBlob {
    /// The blob's chunk table.
    pub fn table(&self) -> &ChunkTable {
        &self.table
    }

    /// Indexes of the chunks still missing.
    pub fn missing(&self) -> Vec<u64> {
        (0..self.have.len() as u64)
            .filter(|&i| !self.has(i))
            .collect()
    }

    /// The length of chunk `index` (the last one may be short).
    pub fn chunk_len(&self, index: u64) -> usize {
        chunk_span(&self.table, index).1
    }

    /// Bytes of the chunks already present.
    pub fn bytes_present(&self) -> u64 {
        (0..self.have.len() as u64)
            .filter(|&i| self.has(i))
            .map(|i| chunk_span(&self.table, i).1 as u64)
            .sum()
    }

    fn has(&self, index: u64) -> bool {
        self.have[index as usize].load(Ordering::Acquire)
    }

    /// Checks chunk `index` against the table and writes it. A chunk that
    /// does not match is refused with [`StoreError::BadChunk`] and nothing
    /// is written.
    pub fn put_chunk(&self, index: u64, data: &[u8]) -> Result<(), StoreError> {
        let Some(want) = self.table.chunks.get(index as usize) else {
            return Err(StoreError::NoSuchChunk {
                digest: self.digest,
                index,
                chunks: self.table.chunks.len() as u64,
            });
        };
        let (offset, len) = chunk_span(&self.table, index);
        if data.len() != len || Digest::of(Kind::BlobChunk, data) != *want {
            return Err(StoreError::BadChunk(format!(
                "chunk {index} of {} ({} bytes) does not match its digest",
                self.digest,
                data.len()
            )));
        }
        self.file
            .write_all_at(data, offset)
            .map_err(io_err("writing", &self.path))?;
        self.have[index as usize].store(true, Ordering::Release);
        Ok(())
    }

    /// Writes the chunks stored so far to disk (while later ones still
    /// arrive, so that [`finish`](PartialBlob::finish) has less to sync).
    pub fn flush(&self) -> Result<(), StoreError> {
        self.file.sync_data().map_err(io_err("syncing", &self.path))
    }

    /// Once every chunk is present: syncs the file, moves it into
    /// `blobs/` and records its chunk table.
    pub fn finish(self, store: &Store) -> Result<Digest, StoreError> {
        let missing = self.missing();
        if !missing.is_empty() {
            return Err(StoreError::BadChunk(format!(
                "{} of {} chunks of {} are still missing",
                missing.len(),
                self.have.len(),
                self.digest
            )));
        }
        self.file
            .sync_all()
            .map_err(io_err("syncing", &self.path))?;
        store.install(&self.path, &self.table)?;
        Ok(self.digest)
    }
}

/// A blob being written. Dropped without [`commit`](BlobWriter::commit), it
/// leaves nothing behind.
pub struct BlobWriter<'a> {
    store: &'a Store,
    file: Option<File>,
    path: PathBuf,
    hasher: BlobHasher,
}

impl BlobWriter<'_> {
    /// Appends bytes.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        self.hasher.update(data);
        let file = self
            .file
            .as_mut()
            .expect("the file is present until commit");
        file.write_all(data).map_err(io_err("writing", &self.path))
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.hasher.size()
    }

    /// The temporary file being written (for engines that validate it
    /// before it is committed).
    pub fn temp_path(&self) -> &Path {
        &self.path
    }

    /// Syncs the file, moves it into place and records its chunk table.
    pub fn commit(mut self) -> Result<(Digest, u64), StoreError> {
        let file = self.file.take().expect("the file is present until commit");
        file.sync_all().map_err(io_err("syncing", &self.path))?;
        drop(file);
        let table = std::mem::take(&mut self.hasher).finish();
        self.store.install(&self.path, &table)?;
        Ok((table.root(), table.size))
    }
}

impl Store {
    /// Moves a complete, synced file into `blobs/` and records its chunk
    /// table.
    fn install(&self, from: &Path, table: &ChunkTable) -> Result<(), StoreError> {
        let digest = table.root();
        let dest = self.blob_path(&digest);
        let dir = dest.parent().expect("blob paths have a parent");
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        fs::rename(from, &dest).map_err(io_err("moving into place", &dest))?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        self.write(Durability::Immediate, |txn| {
            let mut blobs = txn.open_table(BLOBS).map_err(db_err)?;
            blobs
                .insert(digest.as_bytes().as_slice(), table.encode().as_slice())
                .map_err(db_err)?;
            Ok(())
        })
        .map(drop)
    }
}

impl Drop for BlobWriter<'_> {
    fn drop(&mut self) {
        if self.file.is_some() {
            let _ = fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vouch_types::SecretKey;
    use vouch_types::manifest::{FileEntry, ModelFormat, Schema};

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
}
