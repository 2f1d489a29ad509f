//! A node's network state, and the bounded memories it keeps (receipts
//! seen, data retained for auditors, generations peers started here).
//! The operations on it are `impl Node` blocks in the modules beside this
//! one; this module depends on none of them.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use vouch_p2p::{Frame, ModelOffer, P2p, Peer, Request, Response, Topic};
use vouch_service::error::NodeError;
use vouch_service::llm::LlmEvent;
use vouch_types::{Digest, TensorMap};

/// What this node has seen of one operator (itself included); the router
/// ranks providers by it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerRecord {
    /// Chunks the peer sent that checked out.
    pub chunks_ok: u64,
    /// Chunks, tables or answers the peer sent that did not check out.
    pub bad_data: u64,
    /// Requests to the peer that failed or were refused.
    pub failures: u64,
    /// Inferences it ran for requests this node handled.
    pub served: u64,
    /// Smoothed latency of its inference answers, microseconds (0: none yet).
    pub latency_us: u64,
    /// Quorums in which its answer was outside the majority.
    pub disagreements: u64,
    /// Audits of its receipts that agreed, and disputes it won.
    pub audits_passed: u64,
    /// Disputes a referee found it faulty in.
    pub audits_failed: u64,
    /// Requests it refused as the client's fault that another operator
    /// then served.
    pub refused: u64,
    /// Audits of its receipts for which it did not hand over the inputs or
    /// transcript while it had to keep them (a lost audit).
    pub withheld: u64,
}

impl PeerRecord {
    /// Folds one answer's latency into the smoothed latency (1/8 weight).
    pub(crate) fn observe_latency(&mut self, us: u64) {
        self.latency_us = if self.latency_us == 0 {
            us
        } else {
            (self.latency_us * 7 + us) / 8
        };
    }
}

/// Where a model fetch stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FetchState {
    /// Chunks are arriving.
    Fetching,
    /// Every file is stored and synced; the engine is loading the model.
    Loading,
    /// Stored, loaded and registered.
    Done,
    /// Gave up; the message says why and what to do.
    Failed(String),
}

/// Progress of fetching one model from peers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fetch {
    /// Model name and version.
    pub name: String,
    /// Model version.
    pub version: String,
    /// Bytes of the model file.
    pub total_bytes: u64,
    /// Bytes present and checked so far.
    pub done_bytes: u64,
    /// State.
    pub state: FetchState,
}

/// The node's network state.
pub(crate) struct Network {
    pub(crate) p2p: P2p,
    pub(crate) http: Option<String>,
    pub(crate) records: Mutex<BTreeMap<Peer, PeerRecord>>,
    pub(crate) fetches: Mutex<HashMap<Digest, Fetch>>,
    /// Replica counts asked for by pins, by model id.
    pub(crate) pins: Mutex<HashMap<Digest, u64>>,
    /// Requests hedged with a second provider.
    pub(crate) hedges: std::sync::atomic::AtomicU64,
    /// Inputs and outputs kept for auditors.
    pub(crate) retained: Mutex<Retained<(TensorMap, TensorMap)>>,
    /// Transcripts of generated answers kept for auditors.
    pub(crate) transcripts: Mutex<Retained<vouch_types::llm::Transcript>>,
    /// Other executors' LLM receipts that state an accelerator, heard
    /// on the gossip topic, for pooled audits (`llm_pool`).
    pub(crate) pool_heard: Mutex<Retained<vouch_types::Receipt>>,
    /// Pools this node considered auditing (once their beacon was in), by
    /// key, once each.
    pub(crate) pools_audited: Seen,
    /// Generations peers started here and read in turns.
    pub(crate) sessions: Sessions,
    /// Disputes already counted.
    pub(crate) disputes_seen: Seen,
    /// Receipts heard on the gossip topic, so each is drawn for audit once.
    pub(crate) receipts_heard: Seen,
    /// Receipts clients reported here and this node gossiped, once each.
    pub(crate) receipts_reported: Seen,
    /// Disputed LLM receipts this node re-checked itself, once each.
    pub(crate) rechecked: Seen,
    /// Whether a provider proved it holds a model (`Node::holding`), and
    /// when it was challenged.
    pub(crate) proven: Mutex<HashMap<(Peer, Digest), (bool, std::time::Instant)>>,
    /// The publisher of each network model whose manifest this node
    /// fetched and checked (`Node::trusted_network_model`).
    pub(crate) publishers: Mutex<HashMap<Digest, vouch_types::PublicKey>>,
    /// The audit rate now (f64 bits), from the configuration until changed.
    pub(crate) audit_rate: std::sync::atomic::AtomicU64,
    /// The outcomes of the last audits this node ran, newest last
    /// (`Node::trace`).
    pub(crate) audits: Mutex<std::collections::VecDeque<(Digest, String)>>,
}

/// Audit outcomes a node keeps for `vouch trace`, at most.
pub(crate) const KEPT_AUDITS: usize = 10_000;

impl Network {
    /// Gossips `receipt` to the auditors (executors and the gateways that
    /// routed a request alike); nothing is sent while nobody audits.
    pub(crate) async fn gossip_receipt(&self, receipt: &vouch_types::Receipt) {
        let _ = self.p2p.publish(Topic::Receipts, receipt.to_bytes()).await;
    }

    pub(crate) fn record(&self, peer: Peer, f: impl FnOnce(&mut PeerRecord)) {
        f(self
            .records
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(peer)
            .or_default());
    }

    pub(crate) fn set_fetch(&self, id: Digest, f: impl FnOnce(&mut Fetch)) {
        if let Some(fetch) = self
            .fetches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&id)
        {
            f(fetch);
        }
    }
}

/// A model a peer announced, with the peers that announced it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NetworkModel {
    /// The offer (name, version, id).
    pub offer: ModelOffer,
    /// Peers announcing it.
    pub providers: BTreeSet<Peer>,
}

/// Bytes of inputs and outputs an executor keeps for auditors.
const RETAIN_BYTES: usize = 256 << 20;

/// What an executor keeps for auditors (inputs and outputs, or an LLM
/// transcript) by receipt id, newest last, bounded by age and bytes.
pub(crate) struct Retained<V> {
    entries: HashMap<Digest, (Instant, Arc<V>, usize)>,
    order: VecDeque<Digest>,
    bytes: usize,
}

impl<V> Default for Retained<V> {
    fn default() -> Retained<V> {
        Retained {
            entries: HashMap::new(),
            order: VecDeque::new(),
            bytes: 0,
        }
    }
}

impl<V> Retained<V> {
    pub(crate) fn insert(&mut self, id: Digest, value: V, bytes: usize, window: Duration) {
        self.bytes += bytes;
        if let Some((_, _, old)) = self
            .entries
            .insert(id, (Instant::now(), Arc::new(value), bytes))
        {
            self.bytes -= old;
        }
        self.order.push_back(id);
        while let Some(oldest) = self.order.front().copied() {
            let expired = self
                .entries
                .get(&oldest)
                .is_none_or(|(at, ..)| at.elapsed() > window);
            if !expired && self.bytes <= RETAIN_BYTES {
                break;
            }
            self.order.pop_front();
            if let Some((_, _, b)) = self.entries.remove(&oldest) {
                self.bytes -= b;
            }
        }
    }

    pub(crate) fn get(&self, id: &Digest, window: Duration) -> Option<Arc<V>> {
        self.entries
            .get(id)
            .filter(|(at, ..)| at.elapsed() <= window)
            .map(|(_, v, _)| v.clone())
    }

    /// Every entry still within `window`.
    pub(crate) fn live(&self, window: Duration) -> Vec<(Digest, Arc<V>)> {
        self.entries
            .iter()
            .filter(|(_, (at, ..))| at.elapsed() <= window)
            .map(|(id, (_, v, _))| (*id, v.clone()))
            .collect()
    }
}

/// Digests a node has seen (receipts heard, receipts disputed), bounded:
/// beyond its capacity the oldest are forgotten, so a flood of gossip
/// cannot grow it without end.
pub(crate) struct Recent {
    set: HashSet<Digest>,
    order: VecDeque<Digest>,
    cap: usize,
}

impl Default for Recent {
    fn default() -> Recent {
        Recent {
            set: HashSet::new(),
            order: VecDeque::new(),
            cap: 1 << 16,
        }
    }
}

impl Recent {
    /// Adds `d`; false when it was there already.
    pub(crate) fn insert(&mut self, d: Digest) -> bool {
        if !self.set.insert(d) {
            return false;
        }
        self.order.push_back(d);
        if self.order.len() > self.cap
            && let Some(old) = self.order.pop_front()
        {
            self.set.remove(&old);
        }
        true
    }
}

/// Receipts already disputed (so an answer is counted against once), or
/// already heard (so a receipt gossiped twice is drawn once).
pub(crate) type Seen = Mutex<Recent>;

/// Generations one peer may have running here at once.
pub(crate) const SESSIONS_PER_PEER: usize = 8;

/// A generation no peer has read for this long is dropped, which stops it.
const SESSION_IDLE: Duration = Duration::from_secs(120);

/// The generations peers started on this node, by session id.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<String, Session>>);

type Events = Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<LlmEvent>>>;

struct Session {
    peer: Peer,
    events: Events,
    read: Instant,
}

impl Sessions {
    /// Whether `peer` may start another generation here: fewer than
    /// [`SESSIONS_PER_PEER`] of its own still run (those left unread are
    /// dropped first), so that one peer cannot take every slot and the
    /// whole queue of a model.
    pub(crate) fn room_for(&self, peer: Peer) -> Result<(), NodeError> {
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.read.elapsed() < SESSION_IDLE);
        let mine = sessions.values().filter(|s| s.peer == peer).count();
        if mine >= SESSIONS_PER_PEER {
            return Err(NodeError::Unavailable(format!(
                "{mine} generations of yours run here already, the most one peer may have; read or cancel one first"
            )));
        }
        Ok(())
    }

    /// Keeps a new generation for `peer` (checked with
    /// [`Sessions::room_for`] first), dropping those left unread.
    pub(crate) fn open(
        &self,
        peer: Peer,
        events: mpsc::UnboundedReceiver<LlmEvent>,
    ) -> Result<String, NodeError> {
        self.room_for(peer)?;
        let mut b = [0u8; 16];
        let _ = getrandom::fill(&mut b);
        let id = hex::encode(b);
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        sessions.insert(
            id.clone(),
            Session {
                peer,
                events: Arc::new(tokio::sync::Mutex::new(events)),
                read: Instant::now(),
            },
        );
        Ok(id)
    }

    /// The events of `peer`'s session `id`.
    pub(crate) fn events(&self, peer: Peer, id: &str) -> Result<Events, NodeError> {
        let mut sessions = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match sessions.get_mut(id) {
            Some(s) if s.peer == peer => {
                s.read = Instant::now();
                Ok(s.events.clone())
            }
            _ => Err(NodeError::NotFound(format!(
                "no generation {id} of yours runs here (it ended, or was dropped after {} s unread)",
                SESSION_IDLE.as_secs()
            ))),
        }
    }

    pub(crate) fn close(&self, id: &str) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).remove(id);
    }
}

/// Asks `peer` and returns the body of its `Ok` answer; an error answer
/// or a failed request is `Unavailable`, saying which.
pub(crate) async fn ask(
    network: &Network,
    peer: Peer,
    request: Frame<Request>,
) -> Result<Vec<u8>, NodeError> {
    match network.p2p.request(peer, request).await {
        Ok(Frame {
            head: Response::Ok,
            body,
        }) => Ok(body),
        Ok(Frame {
            head: Response::Error { code, message },
            ..
        }) => Err(NodeError::Unavailable(format!(
            "{peer} refused: {code}: {message}"
        ))),
        Ok(_) => Err(NodeError::Unavailable(format!(
            "{peer} sent an unknown answer"
        ))),
        Err(e) => Err(NodeError::Unavailable(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(b: u8) -> Peer {
        vouch_p2p::peer_id_of(&vouch_types::SecretKey::from_bytes(&[b; 32]).public())
    }

    #[test]
    fn a_session_is_read_only_by_the_peer_that_started_it() {
        let sessions = Sessions::default();
        let (_tx, rx) = mpsc::unbounded_channel();
        let id = sessions.open(peer(1), rx).unwrap();
        assert_eq!(id.len(), 32);
        assert!(sessions.events(peer(1), &id).is_ok());
        let e = sessions.events(peer(2), &id).err().unwrap();
        assert_eq!(e.code(), "not_found", "{e}");
        assert!(sessions.events(peer(1), "guess").is_err());
        sessions.close(&id);
        assert!(sessions.events(peer(1), &id).is_err());
    }

    #[test]
    fn one_peer_may_run_only_so_many_generations() {
        let sessions = Sessions::default();
        let mut kept = Vec::new();
        for _ in 0..SESSIONS_PER_PEER {
            let (tx, rx) = mpsc::unbounded_channel();
            kept.push(tx);
            sessions.open(peer(1), rx).unwrap();
        }
        let (_tx, rx) = mpsc::unbounded_channel();
        let e = sessions.open(peer(1), rx).unwrap_err();
        assert_eq!(e.code(), "unavailable", "{e}");
        assert!(e.to_string().contains("read or cancel one"), "{e}");
        // Another peer is not held back by the first.
        let (_tx, rx) = mpsc::unbounded_channel();
        let id = sessions.open(peer(2), rx).unwrap();
        // One closed, the first peer may start another.
        sessions.close(&id);
        let first = sessions
            .0
            .lock()
            .unwrap()
            .iter()
            .find(|(_, s)| s.peer == peer(1))
            .map(|(k, _)| k.clone())
            .unwrap();
        sessions.close(&first);
        let (_tx, rx) = mpsc::unbounded_channel();
        assert!(sessions.open(peer(1), rx).is_ok());
    }
}
