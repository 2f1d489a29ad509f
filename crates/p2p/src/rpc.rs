//! The request-response protocol nodes use to ask each other for things:
//! manifests, blob chunk tables and chunks (replication), pins,
//! inferences and generations (routing), and what audits need.
//!
//! On the wire a message is a [`Frame`]: a small JSON head and a raw byte
//! body, `u32 LE head length || head JSON || u64 LE body length || body`.
//! A stream carries one request and its answer at a time, and many in
//! turn (the `streams` module). Chunks travel as raw bytes, not as JSON
//! arrays.
//! Sizes are bounded before anything is allocated, and the body is read
//! into a buffer of its announced size.

use std::io;
use std::sync::{Mutex, PoisonError};

use futures_util::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use vouch_types::Digest;

/// The protocol name.
pub const PROTOCOL: &str = "/vouch/rpc/2";

/// Largest head accepted, bytes.
const MAX_HEAD_BYTES: u32 = 64 << 10;
/// Largest message accepted (head and body), bytes: a blob chunk and room
/// for inference inputs and outputs. With [`MAX_STREAMS`] streams, one
/// peer can make this node buffer at most 1 GiB.
pub const MAX_FRAME_BYTES: u64 = 16 << 20;

/// Streams one peer may have open to this node at once (each carries one
/// request at a time).
pub const MAX_STREAMS: usize = 64;

/// Most chunks one [`Request::Chunks`] may ask for (a frame holds them).
pub const MAX_CHUNKS_PER_REQUEST: usize = 8;

/// One message: a typed head and raw bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame<H> {
    /// What the message is.
    pub head: H,
    /// Its payload (a chunk, an encoded manifest, ...); often empty.
    pub body: Vec<u8>,
}

impl<H> Frame<H> {
    /// A frame with no body.
    pub fn new(head: H) -> Frame<H> {
        Frame {
            head,
            body: Vec::new(),
        }
    }
}

/// What one node asks another.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Request {
    /// The signed manifest of a model (body of the answer: signature
    /// bytes, then the canonical manifest bytes).
    Manifest {
        /// Model id.
        id: Digest,
    },
    /// The chunk table of a blob (body: its storage encoding).
    ChunkTable {
        /// Blob digest.
        blob: Digest,
    },
    /// Chunks of a blob (body: their bytes back to back, in the order
    /// asked). A node answers the longest prefix of them it holds, so the
    /// asker tells from the body's length which arrived; one that holds
    /// none answers an error.
    Chunks {
        /// Blob digest.
        blob: Digest,
        /// Chunk indexes, at most [`MAX_CHUNKS_PER_REQUEST`].
        indexes: Vec<u64>,
    },
    /// Fetch this model from the network and serve it.
    Replicate {
        /// Model id.
        id: Digest,
    },
    /// Run a model (body: the canonical tensor-map encoding of the inputs;
    /// answer body: `u32 LE receipt length || receipt || outputs`, or with
    /// `proof`, `u32 LE receipt length || receipt || u32 LE bundle length
    /// || bundle (JSON) || outputs`).
    Infer {
        /// Model id.
        model: Digest,
        /// The client's nonce, bound into the receipt.
        nonce: String,
        /// The asker cross-checks this answer in a quorum, so the executor
        /// need not offer it to sampled audits.
        #[serde(default)]
        quorum: bool,
        /// Run the model's circuit and prove the answer (`verify: "proof"`):
        /// the answer carries the proof and the model's manifest.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        proof: bool,
        /// The asking node's payment, where this node charges: a voucher
        /// it signed for this node's operator (`Voucher::to_header`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voucher: Option<String>,
    },
    /// The inputs of a receipt this node signed, while it retains them
    /// (answer body: canonical tensor map).
    Inputs {
        /// Receipt id.
        receipt: Digest,
    },
    /// The outputs of a receipt this node signed, while it retains them.
    Outputs {
        /// Receipt id.
        receipt: Digest,
    },
    /// The roots of the two halves of the trace subtree over leaves
    /// `[lo, hi)` of a receipt (answer body: 64 bytes), for bisection.
    TraceChildren {
        /// Receipt id.
        receipt: Digest,
        /// First leaf.
        lo: u64,
        /// One past the last leaf.
        hi: u64,
    },
    /// One trace leaf of a receipt (answer body: 32 bytes).
    TraceLeaf {
        /// Receipt id.
        receipt: Digest,
        /// Leaf index.
        index: u64,
    },
    /// Act as referee: run the model on the inputs in the body and sign the
    /// leaf of trace step `step` (answer body: a verdict as JSON).
    Referee {
        /// Model id.
        model: Digest,
        /// The disputed step.
        step: u64,
    },
    /// Start generating text with a language model (body: the generation
    /// request as JSON; answer body: the session and the canonical request
    /// as JSON). The events are read with [`Request::GenerateEvents`].
    Generate {
        /// Model id.
        model: Digest,
        /// The asking node's payment, as for [`Request::Infer`].
        #[serde(default, skip_serializing_if = "Option::is_none")]
        voucher: Option<String>,
    },
    /// What the asking node pays this one per request, and the least its
    /// next voucher must carry (answer body: the `PaymentState` JSON of
    /// `GET /v1/payments/{asker's key}`).
    PaymentState,
    /// The next events of a generation this peer started here (answer
    /// body: a JSON list, waiting until at least one is ready; the last
    /// holds the receipt or the error).
    GenerateEvents {
        /// The session [`Request::Generate`] answered.
        session: String,
    },
    /// Stop a generation this peer started here (its client went away).
    GenerateCancel {
        /// The session [`Request::Generate`] answered.
        session: String,
    },
    /// The transcript of a generated answer this node signed, while it
    /// retains it (answer body: JSON).
    Transcript {
        /// Receipt id.
        receipt: Digest,
    },
    /// Act as referee for a generated answer: check the transcript in the
    /// body (JSON `{"receipt", "transcript"}`) by teacher forcing and sign
    /// the outcome (answer body: a token verdict as JSON).
    RefereeTokens {
        /// Receipt id.
        receipt: Digest,
    },
    /// The generated answers this node signed within a pooled audit's
    /// scope, for its drawn auditors and their referees (body: the scope,
    /// on whose behalf, and the receipts the asker knows, as JSON; answer
    /// body: the answers as JSON, the pool's selection of them).
    PoolAnswers {
        /// The pool's key (`vouch_types::llm_pool::PoolScope::key`).
        pool: Digest,
    },
    /// Act as referee for a pooled audit: count the pool in the body,
    /// completed by the executor's answers, and sign the count (answer
    /// body: the answers counted and the verdict, as JSON).
    RefereePool {
        /// The pool's key.
        pool: Digest,
    },
}

impl Request {
    /// How long the asked peer has to answer. Most requests are a lookup or
    /// one model run: 30 s. A referee's count of a generated answer or of a
    /// pooled audit teacher-forces up to thousands of tokens (a pool holds
    /// up to 8,192), and a busy CPU node takes minutes for that, so those
    /// wait longer before the asker gives up on the referee.
    pub fn answer_within(&self) -> std::time::Duration {
        std::time::Duration::from_secs(match self {
            Request::RefereeTokens { .. } => 120,
            Request::RefereePool { .. } => 300,
            _ => 30,
        })
    }
}

/// How a request went.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Response {
    /// Done; the body holds the answer.
    Ok,
    /// Refused or failed.
    Error {
        /// A stable code, e.g. `not_found`.
        code: String,
        /// What went wrong.
        message: String,
    },
}

impl Response {
    /// An error response.
    pub fn error(code: &str, message: impl Into<String>) -> Frame<Response> {
        Frame::new(Response::Error {
            code: code.into(),
            message: message.into(),
        })
    }
}

/// Large message bodies are kept for reuse once done with: touching a
/// fresh multi-megabyte buffer costs a page fault and a zeroed page for
/// every page, about as much as moving the bytes through it. Replication
/// moves 8 MiB answers; the buffers circle between the store, the codec
/// and the check.
pub mod buffers {
    use super::*;

    /// Smaller buffers are not kept (the allocator reuses them well).
    const MIN_BYTES: usize = 1 << 20;
    /// Most bytes kept across all buffers.
    const KEPT_BYTES: usize = 64 << 20;

    static KEPT: Mutex<Vec<Vec<u8>>> = Mutex::new(Vec::new());

    /// An empty buffer with room for at least `capacity` bytes: a kept one
    /// when one is large enough.
    pub fn take(capacity: usize) -> Vec<u8> {
        if capacity >= MIN_BYTES {
            let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(i) = kept.iter().position(|b| b.capacity() >= capacity) {
                return kept.swap_remove(i);
            }
        }
        Vec::with_capacity(capacity)
    }

    /// Hands back a buffer no longer needed; it is kept if it is large and
    /// there is room.
    pub fn give(mut buf: Vec<u8>) {
        let size = buf.capacity();
        if !(MIN_BYTES..=MAX_FRAME_BYTES as usize).contains(&size) {
            return;
        }
        buf.clear();
        let mut kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.iter().map(Vec::capacity).sum::<usize>() + size <= KEPT_BYTES {
            kept.push(buf);
        }
    }

    /// Bytes kept now.
    #[cfg(test)]
    pub(super) fn kept_bytes() -> usize {
        let kept = KEPT.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter().map(Vec::capacity).sum()
    }
}

/// Reads one frame.
pub(crate) async fn read_frame<H: DeserializeOwned, T: AsyncRead + Unpin>(
    io: &mut T,
) -> io::Result<Frame<H>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    read_frame_after(io, u32::from_le_bytes(len)).await
}

/// Reads the rest of a frame whose head length, `head_len`, has been read.
pub(crate) async fn read_frame_after<H: DeserializeOwned, T: AsyncRead + Unpin>(
    io: &mut T,
    head_len: u32,
) -> io::Result<Frame<H>> {
    if head_len > MAX_HEAD_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame head of {head_len} bytes; at most {MAX_HEAD_BYTES} are accepted"),
        ));
    }
    let mut head = vec![0u8; head_len as usize];
    io.read_exact(&mut head).await?;
    let head = serde_json::from_slice(&head)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("frame head: {e}")))?;
    let mut len = [0u8; 8];
    io.read_exact(&mut len).await?;
    let body_len = u64::from_le_bytes(len);
    if body_len > MAX_FRAME_BYTES - u64::from(head_len) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {body_len} body bytes; at most {MAX_FRAME_BYTES} are accepted"),
        ));
    }
    let mut body = buffers::take(body_len as usize);
    body.resize(body_len as usize, 0);
    io.read_exact(&mut body).await?;
    Ok(Frame { head, body })
}

/// Writes one frame and flushes it.
pub(crate) async fn write_frame<H: Serialize, T: AsyncWrite + Unpin>(
    io: &mut T,
    frame: &Frame<H>,
) -> io::Result<()> {
    let head = serde_json::to_vec(&frame.head).map_err(io::Error::other)?;
    let mut start = Vec::with_capacity(head.len() + 12);
    start.extend((head.len() as u32).to_le_bytes());
    start.extend(&head);
    start.extend((frame.body.len() as u64).to_le_bytes());
    io.write_all(&start).await?;
    io.write_all(&frame.body).await?;
    io.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::io::Cursor;
    use vouch_types::Kind;

    async fn round_trip<H>(frame: Frame<H>)
    where
        H: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug + Clone,
    {
        let mut buf = Cursor::new(Vec::new());
        write_frame(&mut buf, &frame).await.unwrap();
        buf.set_position(0);
        let back: Frame<H> = read_frame(&mut buf).await.unwrap();
        assert_eq!(back, frame);
    }

    #[test]
    fn large_buffers_are_reused_and_what_is_kept_is_bounded() {
        // An odd size no other test asks for.
        let size = (5 << 20) + 7;
        let mut buf = buffers::take(size);
        assert!(buf.is_empty() && buf.capacity() >= size);
        buf.extend_from_slice(b"old bytes");
        let at = buf.as_ptr();
        buffers::give(buf);
        let again = buffers::take(size);
        assert_eq!(again.as_ptr(), at, "the buffer given back is reused");
        assert!(again.is_empty(), "a reused buffer comes back empty");
        // Small buffers are not kept; large ones up to the bound.
        for _ in 0..32 {
            buffers::give(Vec::with_capacity(8 << 20));
            buffers::give(Vec::with_capacity(1000));
        }
        assert!(buffers::kept_bytes() <= 64 << 20);
        assert!(buffers::kept_bytes() >= 56 << 20);
    }

    #[tokio::test]
    async fn frames_round_trip() {
        let blob = Digest::of(Kind::Blob, b"x");
        round_trip(Frame::new(Request::Chunks {
            blob,
            indexes: vec![7, 2],
        }))
        .await;
        round_trip(Frame {
            head: Response::Ok,
            body: (0..3000u32).map(|i| i as u8).collect(),
        })
        .await;
        round_trip(Response::error("not_found", "no such blob")).await;
    }

    #[tokio::test]
    async fn oversized_and_garbage_frames_are_refused() {
        for bytes in [
            (MAX_HEAD_BYTES + 1).to_le_bytes().to_vec(),
            vec![3, 0, 0, 0, b'x', b'y', b'z'],
            vec![9, 0, 0, 0, b'{'],
            // A body longer than the limit is refused before it is read.
            [
                &2u32.to_le_bytes()[..],
                b"{}",
                &(MAX_FRAME_BYTES).to_le_bytes(),
            ]
            .concat(),
            // A body shorter than announced.
            [&2u32.to_le_bytes()[..], b"{}", &10u64.to_le_bytes(), b"abc"].concat(),
        ] {
            let mut io = Cursor::new(bytes);
            assert!(read_frame::<Request, _>(&mut io).await.is_err());
        }
    }
}
