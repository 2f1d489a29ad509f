//! Blob digests: a file is cut into 1 MiB chunks, each chunk hashed on its
//! own, and the blob digest commits to the size, the chunk size and the
//! ordered chunk digests. A peer can therefore send the chunk list first
//! (checked against the blob digest) and then each chunk checked on arrival.
//!
//! `blob = H_blob(size u64 || chunk_size u32 || chunk_0 || chunk_1 || ...)`,
//! `chunk_i = H_chunk(bytes of chunk i)`; an empty blob has no chunks.

use crate::digest::{Digest, Hasher, Kind};
use crate::encode::{DecodeError, Reader, Sink};

/// Bytes per chunk (the last chunk may be shorter).
pub const CHUNK_SIZE: usize = 1 << 20;

/// The chunk table of a blob: its size and each chunk's digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChunkTable {
    /// Total bytes.
    pub size: u64,
    /// One digest per chunk, in order.
    pub chunks: Vec<Digest>,
}

impl ChunkTable {
    /// The blob digest this table commits to.
    pub fn root(&self) -> Digest {
        let mut h = Hasher::new(Kind::Blob);
        h.put_u64(self.size);
        h.put_u32(CHUNK_SIZE as u32);
        for c in &self.chunks {
            h.put(c.as_bytes());
        }
        h.finalize()
    }

    /// Number of chunks a blob of `size` bytes has.
    pub fn chunk_count(size: u64) -> u64 {
        size.div_ceil(CHUNK_SIZE as u64)
    }

    /// Storage form: size, then the chunk digests.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::with_capacity(8 + 32 * self.chunks.len());
        b.put_u64(self.size);
        for c in &self.chunks {
            b.put(c.as_bytes());
        }
        b
    }

    /// Reads the storage form, checking the chunk count fits the size.
    pub fn decode(bytes: &[u8]) -> Result<ChunkTable, DecodeError> {
        let mut r = Reader::new(bytes);
        let size = r.u64()?;
        let n = ChunkTable::chunk_count(size);
        if n != (r.remaining() / 32) as u64 || !r.remaining().is_multiple_of(32) {
            return Err(DecodeError::Invalid(format!(
                "a blob of {size} bytes has {n} chunks; the table holds {} bytes of digests",
                r.remaining()
            )));
        }
        let chunks = (0..n)
            .map(|_| r.array().map(|b| Digest::from_bytes(Kind::BlobChunk, b)))
            .collect::<Result<_, _>>()?;
        r.finish()?;
        Ok(ChunkTable { size, chunks })
    }
}

/// Hashes a blob streamed in pieces of any size.
#[derive(Clone)]
pub struct BlobHasher {
    chunk: Hasher,
    in_chunk: usize,
    table: ChunkTable,
}

impl Default for BlobHasher {
    fn default() -> Self {
        BlobHasher {
            chunk: Hasher::new(Kind::BlobChunk),
            in_chunk: 0,
            table: ChunkTable {
                size: 0,
                chunks: Vec::new(),
            },
        }
    }
}

impl BlobHasher {
    /// Starts an empty blob.
    pub fn new() -> BlobHasher {
        BlobHasher::default()
    }

    /// Feeds the next bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let take = (CHUNK_SIZE - self.in_chunk).min(data.len());
            self.chunk.update(&data[..take]);
            self.in_chunk += take;
            self.table.size += take as u64;
            data = &data[take..];
            if self.in_chunk == CHUNK_SIZE {
                self.table.chunks.push(self.chunk.finalize());
                self.chunk = Hasher::new(Kind::BlobChunk);
                self.in_chunk = 0;
            }
        }
    }

    /// Bytes seen so far.
    pub fn size(&self) -> u64 {
        self.table.size
    }

    /// Finishes: the chunk table (whose root is the blob digest).
    pub fn finish(mut self) -> ChunkTable {
        if self.in_chunk > 0 {
            self.table.chunks.push(self.chunk.finalize());
        }
        self.table
    }

    /// The chunk table of `data` in one call.
    pub fn table_of(data: &[u8]) -> ChunkTable {
        let mut h = BlobHasher::new();
        h.update(data);
        h.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chunking_is_independent_of_write_sizes() {
        let data: Vec<u8> = (0..(CHUNK_SIZE * 2 + 17))
            .map(|i| (i % 251) as u8)
            .collect();
        let whole = BlobHasher::table_of(&data);
        assert_eq!(whole.chunks.len(), 3);
        let mut h = BlobHasher::new();
        for piece in data.chunks(65_537) {
            h.update(piece);
        }
        assert_eq!(h.finish(), whole);
        assert_eq!(ChunkTable::decode(&whole.encode()).unwrap(), whole);
        assert_eq!(BlobHasher::table_of(&[]).chunks.len(), 0);
    }

    proptest! {
        #[test]
        fn table_round_trips(size in 0u64..(5 * CHUNK_SIZE as u64), seed in any::<u8>()) {
            let n = ChunkTable::chunk_count(size);
            let t = ChunkTable {
                size,
                chunks: (0..n).map(|i| Digest::of(Kind::BlobChunk, &[seed, i as u8])).collect(),
            };
            prop_assert_eq!(ChunkTable::decode(&t.encode()).unwrap(), t);
        }
    }
}
