//! Blobs: content-addressed files, re-hashed against their chunk table on
//! every read; written through a [`BlobWriter`] (complete and synced before
//! they appear) or fetched chunk by chunk into a [`PartialBlob`].

use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use redb::Durability;
use vouch_types::blob::{BlobHasher, CHUNK_SIZE, ChunkTable};
use vouch_types::{Digest, Kind};

use crate::{BLOBS, Store, StoreError, db_err, io_err};

impl Store {
    pub(crate) fn blob_path(&self, digest: &Digest) -> PathBuf {
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
        let (file, table, _) = self.open_blob(digest)?;
        let chunks = table.chunks.len() as u64;
        if let Some(&index) = indexes.iter().find(|&&i| i >= chunks) {
            return Err(StoreError::NoSuchChunk {
                digest: *digest,
                index,
                chunks,
            });
        }
        let corrupt = |detail: String| StoreError::Corrupt {
            digest: *digest,
            detail,
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
