//! Requests and answers on long-lived streams.
//!
//! A request takes an idle stream to its peer from a pool (or opens one),
//! writes one [`Frame`], reads one back, and returns the stream to the
//! pool. After the first request to a peer, a request costs one frame
//! each way and nothing else: no stream to open and negotiate, no
//! per-request timers, and no trip through the swarm's task on either
//! side. The stream's task on the answering side hands each request to
//! the node and writes its answer.
//!
//! A stream idle for [`POOL_IDLE`] is dropped by the asker; one idle for
//! [`SERVE_IDLE`] is closed by the answerer. A request whose stream closes
//! before any answer arrives (a pooled stream the peer has just closed,
//! or a new one the peer had no room for) is sent again on a new stream:
//! the peer has not answered it, so it has not acted on it.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::{AsyncReadExt, FutureExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use libp2p_stream::{Control, IncomingStreams, OpenStreamError};
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::rpc::{self, Frame, Request, Response, buffers};
use crate::{InboundRequest, P2pError, PeerTable};

/// An idle pooled stream older than this is dropped rather than reused.
pub(crate) const POOL_IDLE: Duration = Duration::from_secs(30);
/// The answering side closes a stream no request has come on for this
/// long (longer than [`POOL_IDLE`], so the asker lets go first).
const SERVE_IDLE: Duration = Duration::from_secs(60);
/// Idle streams kept per peer.
const POOL_PER_PEER: usize = 16;
/// Requests in flight to one peer; more wait their turn. With the idle
/// streams, well under the [`rpc::MAX_STREAMS`] a peer takes from one
/// asker, so that streams the asker has just let go of and the peer has
/// not yet seen close leave room.
const BUSY_PER_PEER: usize = 32;
/// Tries for one request, when the peer closes streams without answering.
const TRIES: usize = 3;
/// Wait before the second try; longer before each later one.
const RETRY_AFTER: Duration = Duration::from_millis(25);

/// The asking side: streams by peer.
pub(crate) struct Pool {
    control: Control,
    protocol: StreamProtocol,
    peers: Mutex<HashMap<PeerId, Streams>>,
}

/// The streams to one peer.
struct Streams {
    /// Open and waiting for a request, newest last.
    idle: Vec<(Stream, Instant)>,
    /// One permit per request allowed in flight.
    busy: Arc<Semaphore>,
}

impl Default for Streams {
    fn default() -> Streams {
        Streams {
            idle: Vec::new(),
            busy: Arc::new(Semaphore::new(BUSY_PER_PEER)),
        }
    }
}

/// How one exchange on a stream failed.
enum Failed {
    /// The stream closed before any of the answer arrived: the peer did
    /// not take the request.
    Unanswered(io::Error),
    /// Anything else.
    Broken(io::Error),
}

impl Pool {
    pub(crate) fn new(control: Control) -> Pool {
        Pool {
            control,
            protocol: StreamProtocol::new(rpc::PROTOCOL),
            peers: Mutex::default(),
        }
    }

    /// Sends `request` to `peer` and reads its answer (within
    /// [`Request::answer_within`]).
    pub(crate) async fn request(
        &self,
        peer: PeerId,
        request: Frame<Request>,
        peers: &PeerTable,
    ) -> Result<Frame<Response>, P2pError> {
        let failed = |detail: String| P2pError::Request { peer, detail };
        let busy = self.lock().entry(peer).or_default().busy.clone();
        let within = request.head.answer_within();
        let result = tokio::time::timeout(within, async {
            let _turn = busy.acquire().await.expect("never closed");
            let mut tries = 0;
            loop {
                tries += 1;
                let mut stream = match self.checkout(peer) {
                    Some(stream) => stream,
                    None => self.open(peer).await.map_err(|e| failed(e.to_string()))?,
                };
                match exchange(&mut stream, &request).await {
                    Ok(answer) => {
                        crate::heard(peers, peer, |_| {});
                        self.checkin(peer, stream);
                        return Ok(answer);
                    }
                    Err(Failed::Unanswered(e)) if tries < TRIES => {
                        tracing::debug!(%peer, error = %e, "a stream closed unanswered; asking again");
                        // A connection that is closing still takes new
                        // streams until the swarm has seen it close: give
                        // it that moment before picking one again.
                        tokio::time::sleep(RETRY_AFTER * tries as u32).await;
                    }
                    Err(Failed::Unanswered(e)) => {
                        return Err(failed(format!(
                            "the peer closed {TRIES} streams without answering (busy, or it cannot read the request): {e}"
                        )));
                    }
                    Err(Failed::Broken(e)) => return Err(failed(e.to_string())),
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(failed(format!("no answer within {} s", within.as_secs())))
        });
        buffers::give(request.body);
        result
    }

    async fn open(&self, peer: PeerId) -> Result<Stream, String> {
        match self
            .control
            .clone()
            .open_stream(peer, self.protocol.clone())
            .await
        {
            Ok(stream) => Ok(stream),
            Err(OpenStreamError::UnsupportedProtocol(p)) => Err(format!(
                "the peer does not speak {p}: it runs another version of the node software"
            )),
            Err(e) => Err(e.to_string()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PeerId, Streams>> {
        self.peers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// An idle stream to `peer` that is still open, if there is one.
    fn checkout(&self, peer: PeerId) -> Option<Stream> {
        let mut peers = self.lock();
        let streams = &mut peers.get_mut(&peer)?.idle;
        while let Some((mut stream, since)) = streams.pop() {
            if since.elapsed() < POOL_IDLE && open(&mut stream) {
                return Some(stream);
            }
        }
        None
    }

    fn checkin(&self, peer: PeerId, stream: Stream) {
        let mut peers = self.lock();
        let streams = &mut peers.entry(peer).or_default().idle;
        if streams.len() < POOL_PER_PEER {
            streams.push((stream, Instant::now()));
        }
    }

    /// Drops the idle streams to `peer` (all peers when `None`) that are
    /// older than [`POOL_IDLE`], or all of them with `all`: a connection
    /// with no streams left can close when idle.
    pub(crate) fn sweep(&self, peer: Option<PeerId>, all: bool) {
        self.lock().retain(|p, streams| {
            if peer.is_none_or(|peer| peer == *p) {
                streams
                    .idle
                    .retain(|(_, since)| !all && since.elapsed() < POOL_IDLE);
            }
            // A peer some request holds the permits of keeps them.
            !streams.idle.is_empty() || Arc::strong_count(&streams.busy) > 1
        });
    }
}

/// Whether an idle stream is still open: reading it would wait (an idle
/// stream has nothing to read; a closed one reads its end at once).
fn open(stream: &mut Stream) -> bool {
    let mut byte = [0u8; 1];
    stream.read(&mut byte).now_or_never().is_none()
}

/// Writes `request` and reads the answer.
async fn exchange(
    stream: &mut Stream,
    request: &Frame<Request>,
) -> Result<Frame<Response>, Failed> {
    rpc::write_frame(stream, request)
        .await
        .map_err(Failed::Unanswered)?;
    let mut len = [0u8; 4];
    stream
        .read_exact(&mut len)
        .await
        .map_err(Failed::Unanswered)?;
    rpc::read_frame_after(stream, u32::from_le_bytes(len))
        .await
        .map_err(Failed::Broken)
}

/// The answering side: takes every stream peers open on the protocol and
/// answers the requests that come on it, at most [`rpc::MAX_STREAMS`]
/// streams per peer at once.
pub(crate) async fn serve(
    mut incoming: IncomingStreams,
    inbound: mpsc::Sender<InboundRequest>,
    peers: PeerTable,
) {
    let open: Arc<Mutex<HashMap<PeerId, usize>>> = Arc::default();
    while let Some((peer, stream)) = incoming.next().await {
        let Some(slot) = Slot::take(&open, peer) else {
            tracing::debug!(%peer, "a peer opened too many streams; one was dropped");
            continue;
        };
        tokio::spawn(serve_stream(
            peer,
            stream,
            inbound.clone(),
            peers.clone(),
            slot,
        ));
    }
}

/// One of a peer's [`rpc::MAX_STREAMS`] streams, given back when dropped.
struct Slot {
    open: Arc<Mutex<HashMap<PeerId, usize>>>,
    peer: PeerId,
}

impl Slot {
    fn take(open: &Arc<Mutex<HashMap<PeerId, usize>>>, peer: PeerId) -> Option<Slot> {
        let mut counts = open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(peer).or_default();
        if *n >= rpc::MAX_STREAMS {
            return None;
        }
        *n += 1;
        Some(Slot {
            open: open.clone(),
            peer,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = counts.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.peer);
            }
        }
    }
}

async fn serve_stream(
    peer: PeerId,
    mut stream: Stream,
    inbound: mpsc::Sender<InboundRequest>,
    peers: PeerTable,
    _slot: Slot,
) {
    let unavailable = || Response::error("unavailable", "this node is not answering requests now");
    loop {
        let request = match tokio::time::timeout(SERVE_IDLE, rpc::read_frame(&mut stream)).await {
            Err(_) => return,
            Ok(Err(e)) => {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    tracing::debug!(%peer, error = %e, "an unreadable request; closing its stream");
                }
                return;
            }
            Ok(Ok(request)) => request,
        };
        crate::heard(&peers, peer, |_| {});
        let (reply, answer) = oneshot::channel();
        let answer = match inbound.try_send(InboundRequest {
            peer,
            request,
            reply,
        }) {
            Ok(()) => answer.await.unwrap_or_else(|_| unavailable()),
            Err(_) => unavailable(),
        };
        if let Err(e) = rpc::write_frame(&mut stream, &answer).await {
            tracing::debug!(%peer, error = %e, "answering a peer failed");
            return;
        }
        buffers::give(answer.body);
    }
}
