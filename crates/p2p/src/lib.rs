//! The Vouch peer-to-peer layer.
//!
//! Every node runs one libp2p swarm: TCP + noise + yamux, identify (peers
//! learn each other's listen addresses), Kademlia (peer routing; provider
//! records keyed by model id come with replication) and gossipsub, on which
//! nodes publish signed [`Announcement`]s, and requests and answers on
//! [`rpc::PROTOCOL`] (manifests, blob chunks, pins, inferences, audits) on
//! long-lived streams that carry one request after another, so a request
//! to a peer asked before costs one frame each way. Kademlia also holds
//! provider records keyed by model id. The swarm runs on its own task;
//! [`P2p`] is the handle the node keeps: it reads the peer table, sends
//! commands and requests; requests from peers arrive on [`Inbound`]. A
//! node with no bootstrap peers works alone.
//!
//! The libp2p identity is the operator's ed25519 key, so a peer id names an
//! operator and gossipsub's message signatures bind every announcement to
//! the peer that published it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use libp2p::gossipsub::{self, IdentTopic, MessageAuthenticity};
use libp2p::kad::{self, store::MemoryStore};
use libp2p::multiaddr::Protocol;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{NetworkBehaviour, SwarmEvent};
use libp2p::{
    Multiaddr, PeerId, StreamProtocol, Swarm, SwarmBuilder, identify, identity, noise, tcp, yamux,
};
use tokio::sync::{mpsc, oneshot};
use vouch_types::{Digest, PublicKey, SecretKey};

pub mod announce;
pub mod batch;
pub mod rpc;
mod streams;
pub mod uptime;

pub use announce::{Announcement, AnnouncementBody, AnnouncementError, ModelOffer};
pub use libp2p::{Multiaddr as Address, PeerId as Peer};
pub use rpc::{Frame, Request, Response};
pub use uptime::Uptime;

/// The identify protocol version of Vouch nodes.
const PROTOCOL_VERSION: &str = "/vouch/1";
/// The Kademlia protocol of Vouch nodes (a DHT of its own, not IPFS's).
const KAD_PROTOCOL: &str = "/vouch/kad/1";
/// How often a node re-publishes its announcement.
const ANNOUNCE_EVERY: Duration = Duration::from_secs(10);
/// How long a message on a batched topic ([`Topic::batched`]) waits for
/// others to travel with.
const BATCH_WINDOW: Duration = Duration::from_millis(200);

/// What went wrong starting or driving the swarm.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum P2pError {
    /// The listen or bootstrap address is unusable.
    #[error("p2p address {addr}: {detail}")]
    Address {
        /// The address.
        addr: String,
        /// Why.
        detail: String,
    },
    /// libp2p refused to start.
    #[error("starting the p2p swarm: {0}")]
    Start(String),
    /// The swarm task has stopped.
    #[error("the p2p swarm has stopped")]
    Stopped,
    /// A request to a peer failed before an answer came back.
    #[error("request to peer {peer} failed: {detail}")]
    Request {
        /// The peer.
        peer: PeerId,
        /// Why (dial failure, timeout, connection closed, ...).
        detail: String,
    },
}

/// How a node joins the network.
#[derive(Clone, Debug)]
pub struct P2pConfig {
    /// Where to listen, e.g. `/ip4/127.0.0.1/tcp/0`.
    pub listen: Multiaddr,
    /// Peers to connect to first; each must end in `/p2p/<peer id>`.
    pub bootstrap: Vec<Multiaddr>,
    /// Gossip topics heard from the start, besides announcements, which
    /// every node hears. [`P2p::subscribe`] joins or leaves one later.
    pub topics: Vec<Topic>,
    /// Connections peers may open to this node at once (beyond them a new
    /// one is refused), and connections handshaking at once.
    pub max_incoming: u32,
    /// Connections with any one peer at once (a bulk fetch opens two).
    pub max_per_peer: u32,
}

impl P2pConfig {
    /// Listens on `listen`, dials `bootstrap`, hears every topic.
    pub fn new(listen: Multiaddr, bootstrap: Vec<Multiaddr>) -> P2pConfig {
        P2pConfig {
            listen,
            bootstrap,
            topics: Topic::ALL.to_vec(),
            max_incoming: 256,
            max_per_peer: 8,
        }
    }

    /// [`P2pConfig::new`] on loopback TCP, on a port the system picks.
    pub fn loopback(bootstrap: Vec<Multiaddr>) -> P2pConfig {
        let any_port = Multiaddr::empty()
            .with(Protocol::Ip4(std::net::Ipv4Addr::LOCALHOST))
            .with(Protocol::Tcp(0));
        P2pConfig::new(any_port, bootstrap)
    }
}

/// What a node knows about one peer.
#[derive(Clone, Debug, Default)]
pub struct PeerInfo {
    /// Addresses the peer listens on (from identify).
    pub addrs: Vec<Multiaddr>,
    /// How many connections are open now (more than one while a bulk
    /// transfer spreads over several, see [`P2p::connect_many`]).
    pub connections: usize,
    /// The newest verified announcement, and the operator key it names.
    pub announcement: Option<(AnnouncementBody, PublicKey)>,
    /// When anything was last heard from the peer.
    pub last_seen: Option<Instant>,
    /// The minutes of the last day its announcements came in.
    pub uptime: Uptime,
}

impl PeerInfo {
    /// Whether a connection is open now.
    pub fn connected(&self) -> bool {
        self.connections > 0
    }
}

type PeerTable = Arc<RwLock<BTreeMap<PeerId, PeerInfo>>>;

/// Whether any peer subscribes to each of [`Topic::ALL`] (kept by the
/// swarm's task, read by publishers).
type Audience = Arc<[AtomicBool; Topic::ALL.len()]>;

type Reply = Result<Frame<Response>, P2pError>;

enum Command {
    Announce(AnnouncementBody),
    Dial(Multiaddr, oneshot::Sender<Result<(), P2pError>>),
    Connections(PeerId, usize, oneshot::Sender<usize>),
    FindPeer(PeerId, oneshot::Sender<Vec<Multiaddr>>),
    Provide(Digest),
    Providers(Digest, oneshot::Sender<HashSet<PeerId>>),
    Publish(Topic, Vec<u8>),
    Subscribe(Topic, bool),
    Block(PeerId, bool),
}

/// A request from a peer, waiting for this node's answer.
#[derive(Debug)]
pub struct InboundRequest {
    /// Who asks.
    pub peer: PeerId,
    /// What it asks.
    pub request: Frame<Request>,
    /// Where the answer goes; dropping it answers with an error.
    pub reply: oneshot::Sender<Frame<Response>>,
}

/// Requests from peers, in arrival order. While nobody takes them (the
/// receiver is dropped), peers get an `unavailable` error.
pub type Inbound = mpsc::Receiver<InboundRequest>;

/// Gossip topics besides announcements: signed receipts executors publish
/// (auditors sample them) and dispute records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// `vouch/receipts/2`: receipts in their compact binary form, in
    /// batches ([`batch`]).
    Receipts,
    /// `vouch/disputes/1`: dispute records as JSON.
    Disputes,
}

impl Topic {
    /// Every topic.
    pub const ALL: [Topic; 2] = [Topic::Receipts, Topic::Disputes];

    /// This topic's place in [`Topic::ALL`].
    const fn index(self) -> usize {
        self as usize
    }

    /// The gossipsub topic name.
    pub const fn name(self) -> &'static str {
        match self {
            Topic::Receipts => "vouch/receipts/2",
            Topic::Disputes => "vouch/disputes/1",
        }
    }

    /// Whether messages on this topic travel in batches, each published
    /// message waiting up to `BATCH_WINDOW` (200 ms) for others. Receipts are
    /// small and audits are not urgent: an executor answering a hundred
    /// requests a second would otherwise pay a signature, and every peer a
    /// signature check, a decryption and a wake-up, per receipt and per
    /// hop (most of what one small request cost in CPU; see
    /// `docs/benchmarks.md`). Receivers get the items one by one.
    pub const fn batched(self) -> bool {
        matches!(self, Topic::Receipts)
    }
}

/// A gossiped message on a [`Topic`], with the peer that published it
/// (gossipsub signs messages, so the publisher is authenticated).
#[derive(Clone, Debug)]
pub struct Gossip {
    /// The topic.
    pub topic: Topic,
    /// The publisher.
    pub source: PeerId,
    /// The payload.
    pub data: Vec<u8>,
}

/// The handle to a running swarm. Dropping every clone stops it.
#[derive(Clone)]
pub struct P2p {
    local: PeerId,
    listening: Vec<Multiaddr>,
    peers: PeerTable,
    commands: mpsc::Sender<Command>,
    gossip: Arc<std::sync::Mutex<Option<mpsc::Receiver<Gossip>>>>,
    audience: Audience,
    requests: Arc<streams::Pool>,
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    identify: identify::Behaviour,
    kad: kad::Behaviour<MemoryStore>,
    gossipsub: gossipsub::Behaviour,
    streams: libp2p_stream::Behaviour,
    blocks: libp2p::allow_block_list::Behaviour<libp2p::allow_block_list::BlockedPeers>,
    limits: libp2p::connection_limits::Behaviour,
}

/// The libp2p peer id of an operator key: the key's protobuf encoding
/// (type Ed25519, then its 32 bytes) under the identity multihash, built
/// from the bytes (libp2p's own way decompresses the curve point first,
/// which costs more than the rest of checking a peer's answer).
pub fn peer_id_of(key: &PublicKey) -> PeerId {
    let mut encoded = [0u8; 36];
    encoded[..4].copy_from_slice(&[0x08, 0x01, 0x12, 0x20]);
    encoded[4..].copy_from_slice(key.as_bytes());
    libp2p::multihash::Multihash::wrap(0x00, &encoded)
        .ok()
        .and_then(|hash| PeerId::from_multihash(hash).ok())
        .expect("36 bytes fit an identity multihash")
}

/// The operator key a peer id names ([`peer_id_of`] backwards); `None`
/// for a peer id that is not an ed25519 key's.
pub fn key_of_peer(peer: &PeerId) -> Option<PublicKey> {
    let bytes = peer.to_bytes();
    let key = bytes.strip_prefix(&[0x00, 0x24, 0x08, 0x01, 0x12, 0x20][..])?;
    let key: [u8; 32] = key.try_into().ok()?;
    PublicKey::from_bytes(&key).ok()
}

fn keypair(key: &SecretKey) -> identity::Keypair {
    identity::Keypair::ed25519_from_bytes(key.to_bytes())
        .expect("a 32-byte ed25519 seed is a libp2p ed25519 key")
}

impl P2p {
    /// Starts the swarm, listens, dials the bootstrap peers, and returns
    /// once the listen address is bound, with the stream of requests peers
    /// send this node.
    pub async fn start(config: P2pConfig, key: &SecretKey) -> Result<(P2p, Inbound), P2pError> {
        let local_key = keypair(key);
        let local = local_key.public().to_peer_id();
        let (max_incoming, max_per_peer) = (config.max_incoming.max(1), config.max_per_peer.max(2));
        let mut swarm = SwarmBuilder::with_existing_identity(local_key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| P2pError::Start(e.to_string()))?
            .with_behaviour(|key| {
                let identify = identify::Behaviour::new(identify::Config::new(
                    PROTOCOL_VERSION.into(),
                    key.public(),
                ));
                let mut kad_config = kad::Config::new(libp2p::StreamProtocol::new(KAD_PROTOCOL));
                kad_config.set_query_timeout(Duration::from_secs(10));
                let mut kad = kad::Behaviour::with_config(
                    key.public().to_peer_id(),
                    MemoryStore::new(key.public().to_peer_id()),
                    kad_config,
                );
                kad.set_mode(Some(kad::Mode::Server));
                let gossip_config = gossipsub::ConfigBuilder::default()
                    .heartbeat_interval(Duration::from_millis(500))
                    .max_transmit_size(announce::MAX_ANNOUNCEMENT_BYTES)
                    .validation_mode(gossipsub::ValidationMode::Strict)
                    .build()
                    .map_err(|e| e.to_string())?;
                let gossipsub = gossipsub::Behaviour::new(
                    MessageAuthenticity::Signed(key.clone()),
                    gossip_config,
                )?;
                Ok(Behaviour {
                    identify,
                    kad,
                    gossipsub,
                    streams: libp2p_stream::Behaviour::new(),
                    blocks: Default::default(),
                    limits: libp2p::connection_limits::Behaviour::new(
                        libp2p::connection_limits::ConnectionLimits::default()
                            .with_max_established_incoming(Some(max_incoming))
                            .with_max_pending_incoming(Some(max_incoming.div_ceil(4)))
                            .with_max_established_per_peer(Some(max_per_peer)),
                    ),
                })
            })
            .map_err(|e| P2pError::Start(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(60)))
            .build();

        for topic in std::iter::once(announce::TOPIC).chain(config.topics.iter().map(|t| t.name()))
        {
            swarm
                .behaviour_mut()
                .gossipsub
                .subscribe(&IdentTopic::new(topic))
                .map_err(|e| P2pError::Start(e.to_string()))?;
        }
        swarm
            .listen_on(config.listen.clone())
            .map_err(|e| P2pError::Address {
                addr: config.listen.to_string(),
                detail: e.to_string(),
            })?;
        let mut listening = Vec::new();
        while listening.is_empty() {
            match swarm.next().await {
                Some(SwarmEvent::NewListenAddr { address, .. }) => listening.push(address),
                Some(SwarmEvent::ListenerError { error, .. })
                | Some(SwarmEvent::ListenerClosed {
                    reason: Err(error), ..
                }) => {
                    return Err(P2pError::Address {
                        addr: config.listen.to_string(),
                        detail: error.to_string(),
                    });
                }
                Some(_) => {}
                None => return Err(P2pError::Stopped),
            }
        }
        for addr in &config.bootstrap {
            let Some(Protocol::P2p(peer)) = addr.iter().last() else {
                return Err(P2pError::Address {
                    addr: addr.to_string(),
                    detail: "a bootstrap address must end in /p2p/<peer id>".into(),
                });
            };
            swarm.behaviour_mut().kad.add_address(&peer, addr.clone());
            if let Err(e) = swarm.dial(addr.clone()) {
                tracing::warn!(%addr, error = %e, "dialing a bootstrap peer failed");
            }
        }

        let peers: PeerTable = Arc::default();
        let (commands, rx) = mpsc::channel(64);
        let (inbound_tx, inbound) = mpsc::channel(256);
        let (gossip_tx, gossip) = mpsc::channel(1024);
        let mut control = swarm.behaviour().streams.new_control();
        let incoming = control
            .accept(StreamProtocol::new(rpc::PROTOCOL))
            .map_err(|e| P2pError::Start(e.to_string()))?;
        tokio::spawn(streams::serve(incoming, inbound_tx, peers.clone()));
        let requests = Arc::new(streams::Pool::new(control));
        tokio::spawn(sweep(Arc::downgrade(&requests)));
        let audience = Audience::default();
        tokio::spawn(drive(
            swarm,
            rx,
            (gossip_tx, audience.clone()),
            peers.clone(),
            key.clone(),
            !config.bootstrap.is_empty(),
        ));
        let p2p = P2p {
            local,
            listening,
            peers,
            commands,
            gossip: Arc::new(std::sync::Mutex::new(Some(gossip))),
            audience,
            requests,
        };
        Ok((p2p, inbound))
    }

    /// This node's peer id.
    pub fn peer_id(&self) -> PeerId {
        self.local
    }

    /// Addresses this node listens on, each ending in `/p2p/<peer id>`.
    pub fn addresses(&self) -> Vec<Multiaddr> {
        self.listening
            .iter()
            .map(|a| a.clone().with(Protocol::P2p(self.local)))
            .collect()
    }

    /// A snapshot of the peer table.
    pub fn peers(&self) -> BTreeMap<PeerId, PeerInfo> {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Publishes this node's announcement now and every few seconds after.
    pub async fn announce(&self, body: AnnouncementBody) -> Result<(), P2pError> {
        self.commands
            .send(Command::Announce(body))
            .await
            .map_err(|_| P2pError::Stopped)
    }

    /// Connects to a peer at `addr`.
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), P2pError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Dial(addr, tx))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)?
    }

    /// Opens connections to `peer` until there are `n` (each with its own
    /// noise session and task), and waits until they are up or a dial
    /// fails. Each new request stream goes on one of the peer's
    /// connections picked at random (libp2p-stream), so a bulk transfer
    /// with several requests in flight mostly spreads over them and
    /// encrypts and decrypts on several cores (not always: four streams
    /// land on one of two connections one time in eight). Returns how
    /// many connections there are.
    pub async fn connect_many(&self, peer: PeerId, n: usize) -> Result<usize, P2pError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Connections(peer, n, tx))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }

    /// Sends `request` to `peer` and waits for its answer (dialing it if
    /// needed, after asking the DHT for its address when this node has
    /// only heard of it through gossip; requests time out after 30 s).
    /// Requests to a peer reuse the streams earlier ones went on.
    pub async fn request(&self, peer: PeerId, request: Frame<Request>) -> Reply {
        let known = self
            .peers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&peer)
            .is_some_and(|p| p.connected() || !p.addrs.is_empty());
        if !known {
            self.find_peer(peer).await?;
        }
        self.requests.request(peer, request, &self.peers).await
    }

    /// Takes the stream of gossip on [`Topic`]s (once; later calls get
    /// `None`). Messages arriving while nobody holds it, or while it is
    /// full, are dropped.
    pub fn take_gossip(&self) -> Option<mpsc::Receiver<Gossip>> {
        self.gossip.lock().unwrap_or_else(|e| e.into_inner()).take()
    }

    /// Cuts this node off from `peer` (closing any connection and refusing
    /// new ones) until [`unblock`](P2p::unblock): an operator's ban, and a
    /// network partition in tests.
    pub async fn block(&self, peer: PeerId) -> Result<(), P2pError> {
        self.requests.sweep(Some(peer), true);
        self.commands
            .send(Command::Block(peer, true))
            .await
            .map_err(|_| P2pError::Stopped)
    }

    /// Lifts a [`block`](P2p::block) and dials the peer again.
    pub async fn unblock(&self, peer: PeerId) -> Result<(), P2pError> {
        self.commands
            .send(Command::Block(peer, false))
            .await
            .map_err(|_| P2pError::Stopped)
    }

    /// Publishes `data` on `topic` to every subscribed peer (within
    /// `BATCH_WINDOW` (200 ms) on a [batched](Topic::batched) topic). A message
    /// that cannot go (no subscribed peer; larger than
    /// [`batch::MAX_BATCH_BYTES`] on a batched topic) is dropped, one
    /// nobody subscribes to before it reaches the swarm's task.
    pub async fn publish(&self, topic: Topic, data: Vec<u8>) -> Result<(), P2pError> {
        if !self.audience[topic.index()].load(Ordering::Relaxed) {
            return Ok(());
        }
        self.commands
            .send(Command::Publish(topic, data))
            .await
            .map_err(|_| P2pError::Stopped)
    }

    /// Subscribes to `topic`, or leaves it: peers stop sending this node
    /// its messages, and stop relaying them through it. A node starts
    /// subscribed to [`P2pConfig::topics`].
    pub async fn subscribe(&self, topic: Topic, on: bool) -> Result<(), P2pError> {
        self.commands
            .send(Command::Subscribe(topic, on))
            .await
            .map_err(|_| P2pError::Stopped)
    }

    /// Publishes a provider record for `key` (a model id) in the DHT.
    pub async fn provide(&self, key: Digest) -> Result<(), P2pError> {
        self.commands
            .send(Command::Provide(key))
            .await
            .map_err(|_| P2pError::Stopped)
    }

    /// Asks the DHT which peers provide `key` (a model id).
    pub async fn providers(&self, key: Digest) -> Result<HashSet<PeerId>, P2pError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::Providers(key, tx))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }

    /// Asks the DHT for a peer's addresses.
    pub async fn find_peer(&self, peer: PeerId) -> Result<Vec<Multiaddr>, P2pError> {
        let (tx, rx) = oneshot::channel();
        self.commands
            .send(Command::FindPeer(peer, tx))
            .await
            .map_err(|_| P2pError::Stopped)?;
        rx.await.map_err(|_| P2pError::Stopped)
    }
}

/// Drops idle request streams as they age (see [`streams::POOL_IDLE`]),
/// until the pool is gone.
async fn sweep(pool: std::sync::Weak<streams::Pool>) {
    let mut every = tokio::time::interval(streams::POOL_IDLE / 2);
    loop {
        every.tick().await;
        let Some(pool) = pool.upgrade() else { return };
        pool.sweep(None, false);
    }
}

/// Peers not connected and not heard from for this long are forgotten.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// The most peers the table keeps: beyond them the least recently heard
/// of those not connected are forgotten first.
const MAX_PEERS: usize = 10_000;

/// Forgets peers that are gone: not connected and silent for
/// [`FORGET_AFTER`], and beyond [`MAX_PEERS`] the longest silent of those
/// not connected, so that peer ids minted by the thousand cannot grow the
/// table without end.
fn prune(peers: &PeerTable, now: Instant) {
    let mut peers = peers.write().unwrap_or_else(|e| e.into_inner());
    peers.retain(|_, p| {
        p.connected()
            || p.last_seen
                .is_some_and(|t| now.saturating_duration_since(t) < FORGET_AFTER)
    });
    if peers.len() > MAX_PEERS {
        let mut idle: Vec<(Option<Instant>, PeerId)> = peers
            .iter()
            .filter(|(_, p)| !p.connected())
            .map(|(id, p)| (p.last_seen, *id))
            .collect();
        idle.sort();
        for (_, id) in idle.into_iter().take(peers.len() - MAX_PEERS) {
            peers.remove(&id);
        }
    }
}

/// Notes that `peer` was heard from now, and updates its entry with `f`.
fn heard(peers: &PeerTable, peer: PeerId, f: impl FnOnce(&mut PeerInfo)) {
    let mut peers = peers.write().unwrap_or_else(|e| e.into_inner());
    let info = peers.entry(peer).or_default();
    info.last_seen = Some(Instant::now());
    f(info);
}

/// The swarm's event loop: runs until every [`P2p`] handle is dropped.
async fn drive(
    mut swarm: Swarm<Behaviour>,
    mut commands: mpsc::Receiver<Command>,
    (gossip, audience): (mpsc::Sender<Gossip>, Audience),
    peers: PeerTable,
    key: SecretKey,
    bootstrap: bool,
) {
    let mut state = Driver {
        topic: IdentTopic::new(announce::TOPIC),
        key,
        peers,
        announcement: None,
        finds: HashMap::new(),
        provider_queries: HashMap::new(),
        connecting: Vec::new(),
        gossip,
        audience,
        bootstrapped: !bootstrap,
        batches: HashMap::new(),
    };
    let mut tick = tokio::time::interval(ANNOUNCE_EVERY);
    // Armed while a batch waits: it fires BATCH_WINDOW after the first
    // message that found no batch waiting.
    let flush = tokio::time::sleep(Duration::ZERO);
    tokio::pin!(flush);
    loop {
        tokio::select! {
            () = &mut flush, if state.waiting() => state.flush(&mut swarm),
            command = commands.recv() => match command {
                None => return,
                Some(Command::Announce(body)) => {
                    state.announcement = Some(body);
                    state.republish(&mut swarm);
                }
                Some(Command::Dial(addr, reply)) => {
                    let result = swarm.dial(addr.clone()).map_err(|e| P2pError::Address {
                        addr: addr.to_string(),
                        detail: e.to_string(),
                    });
                    let _ = reply.send(result);
                }
                Some(Command::Connections(peer, n, reply)) => {
                    let have = state.connections(peer);
                    if have >= n {
                        let _ = reply.send(have);
                        continue;
                    }
                    let mut dialing = 0;
                    for _ in have..n {
                        let dial = DialOpts::peer_id(peer).condition(PeerCondition::Always).build();
                        match swarm.dial(dial) {
                            Ok(()) => dialing += 1,
                            Err(e) => tracing::debug!(%peer, error = %e, "opening another connection failed"),
                        }
                    }
                    if dialing == 0 {
                        let _ = reply.send(have);
                    } else {
                        state.connecting.push((peer, n, reply));
                    }
                }
                Some(Command::FindPeer(peer, reply)) => {
                    let id = swarm.behaviour_mut().kad.get_closest_peers(peer);
                    state.finds.insert(id, (peer, reply));
                }
                Some(Command::Provide(key)) => {
                    let key = kad::RecordKey::new(key.as_bytes());
                    if let Err(e) = swarm.behaviour_mut().kad.start_providing(key) {
                        tracing::warn!(error = %e, "provider record not stored");
                    }
                }
                Some(Command::Block(peer, true)) => {
                    swarm.behaviour_mut().blocks.block_peer(peer);
                }
                Some(Command::Block(peer, false)) => {
                    swarm.behaviour_mut().blocks.unblock_peer(peer);
                    if let Err(e) = swarm.dial(peer) {
                        tracing::debug!(%peer, error = %e, "redialing an unblocked peer failed");
                    }
                }
                Some(Command::Publish(topic, data)) if topic.batched() => {
                    let armed = state.waiting();
                    let batch = state.batches.entry(topic).or_default();
                    if !batch.fits(&data) && !batch.is_empty() {
                        publish(&mut swarm, topic, batch.take());
                    }
                    if !batch.fits(&data) {
                        tracing::warn!(topic = topic.name(), bytes = data.len(), "a message too large for a gossip batch was dropped");
                        continue;
                    }
                    batch.push(&data);
                    if !armed {
                        flush.as_mut().reset(tokio::time::Instant::now() + BATCH_WINDOW);
                    }
                }
                Some(Command::Publish(topic, data)) => publish(&mut swarm, topic, data),
                Some(Command::Subscribe(topic, on)) => {
                    let topic = IdentTopic::new(topic.name());
                    let gossipsub = &mut swarm.behaviour_mut().gossipsub;
                    if on {
                        if let Err(e) = gossipsub.subscribe(&topic) {
                            tracing::warn!(%topic, error = %e, "subscribing failed");
                        }
                    } else {
                        gossipsub.unsubscribe(&topic);
                    }
                }
                Some(Command::Providers(key, reply)) => {
                    let id = swarm.behaviour_mut().kad.get_providers(kad::RecordKey::new(key.as_bytes()));
                    state.provider_queries.insert(id, (HashSet::new(), reply));
                }
            },
            _ = tick.tick() => {
                state.republish(&mut swarm);
                prune(&state.peers, Instant::now());
            }
            event = swarm.select_next_some() => state.handle(&mut swarm, event),
        }
    }
}

struct Driver {
    topic: IdentTopic,
    key: SecretKey,
    peers: PeerTable,
    announcement: Option<AnnouncementBody>,
    finds: HashMap<kad::QueryId, (PeerId, oneshot::Sender<Vec<Multiaddr>>)>,
    provider_queries: HashMap<kad::QueryId, (HashSet<PeerId>, oneshot::Sender<HashSet<PeerId>>)>,
    /// Callers of [`P2p::connect_many`] waiting for connections.
    connecting: Vec<(PeerId, usize, oneshot::Sender<usize>)>,
    gossip: mpsc::Sender<Gossip>,
    audience: Audience,
    bootstrapped: bool,
    /// Messages on batched topics waiting to be sent.
    batches: HashMap<Topic, batch::Batch>,
}

/// Publishes `data` on `topic` now.
fn publish(swarm: &mut Swarm<Behaviour>, topic: Topic, data: Vec<u8>) {
    if let Err(e) = swarm
        .behaviour_mut()
        .gossipsub
        .publish(IdentTopic::new(topic.name()), data)
    {
        // No subscribed peer yet, or a duplicate: nothing to deliver.
        tracing::debug!(topic = topic.name(), error = %e, "gossip not published");
    }
}

impl Driver {
    /// Whether a message waits in a batch.
    fn waiting(&self) -> bool {
        self.batches.values().any(|b| !b.is_empty())
    }

    /// Sends every waiting batch.
    fn flush(&mut self, swarm: &mut Swarm<Behaviour>) {
        for (&topic, batch) in &mut self.batches {
            if !batch.is_empty() {
                publish(swarm, topic, batch.take());
            }
        }
    }

    fn republish(&mut self, swarm: &mut Swarm<Behaviour>) {
        let Some(body) = self.announcement.as_mut() else {
            return;
        };
        body.seq += 1;
        body.timestamp_ms = now_ms();
        let bytes = Announcement::sign(body, &self.key).to_bytes();
        if let Err(e) = swarm
            .behaviour_mut()
            .gossipsub
            .publish(self.topic.clone(), bytes)
        {
            tracing::debug!(error = %e, "announcement not published");
        }
    }

    /// Notes which topics some peer subscribes to now.
    fn count_audience(&self, swarm: &Swarm<Behaviour>) {
        for topic in Topic::ALL {
            let hash = IdentTopic::new(topic.name()).hash();
            let heard = swarm
                .behaviour()
                .gossipsub
                .all_peers()
                .any(|(_, topics)| topics.contains(&&hash));
            self.audience[topic.index()].store(heard, Ordering::Relaxed);
        }
    }

    /// Answers the [`P2p::connect_many`] callers waiting on `peer` for
    /// which `done` holds, with the connections there are.
    fn connected(&mut self, peer: PeerId, done: impl Fn(usize) -> bool) {
        let have = self.connections(peer);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.connecting)
            .into_iter()
            .partition(|(p, want, _)| *p == peer && done(*want));
        self.connecting = waiting;
        for (_, _, reply) in ready {
            let _ = reply.send(have);
        }
    }

    fn connections(&self, peer: PeerId) -> usize {
        let peers = self.peers.read().unwrap_or_else(|e| e.into_inner());
        peers.get(&peer).map_or(0, |p| p.connections)
    }

    fn peer(&self, peer: PeerId, f: impl FnOnce(&mut PeerInfo)) {
        heard(&self.peers, peer, f);
    }

    fn handle(&mut self, swarm: &mut Swarm<Behaviour>, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                num_established,
                ..
            } => {
                let n = num_established.get() as usize;
                self.peer(peer_id, |p| p.connections = n);
                self.connected(peer_id, |want| n >= want);
                if !self.bootstrapped {
                    self.bootstrapped = swarm.behaviour_mut().kad.bootstrap().is_ok();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                ..
            } => {
                self.peer(peer_id, |p| p.connections = num_established as usize);
                self.count_audience(swarm);
            }
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                ..
            } => self.connected(peer, |_| true),
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                ..
            })) => {
                if info.protocol_version != PROTOCOL_VERSION {
                    return;
                }
                for addr in &info.listen_addrs {
                    swarm
                        .behaviour_mut()
                        .kad
                        .add_address(&peer_id, addr.clone());
                }
                self.peer(peer_id, |p| p.addrs = info.listen_addrs.clone());
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Subscribed {
                topic,
                ..
            })) if topic == self.topic.hash() => {
                // A newcomer: tell it who we are without waiting for the tick.
                self.republish(swarm);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                gossipsub::Event::Subscribed { .. } | gossipsub::Event::Unsubscribed { .. },
            )) => self.count_audience(swarm),
            SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(gossipsub::Event::Message {
                message,
                ..
            })) => {
                let Some(source) = message.source else { return };
                if let Some(topic) = Topic::ALL
                    .into_iter()
                    .find(|t| message.topic == IdentTopic::new(t.name()).hash())
                {
                    let items = if topic.batched() {
                        match batch::split(&message.data) {
                            Ok(items) => items,
                            Err(e) => {
                                tracing::warn!(peer = %source, topic = topic.name(), error = %e, "rejected a gossip batch");
                                return;
                            }
                        }
                    } else {
                        vec![message.data.as_slice()]
                    };
                    for item in items {
                        let data = item.to_vec();
                        let _ = self.gossip.try_send(Gossip {
                            topic,
                            source,
                            data,
                        });
                    }
                    return;
                }
                match Announcement::verify(&message.data, &source.to_string()) {
                    Ok((body, operator)) => self.peer(source, |p| {
                        let newer = p.announcement.as_ref().is_none_or(|(old, _)| {
                            body.seq > old.seq || body.timestamp_ms > old.timestamp_ms
                        });
                        if newer {
                            p.announcement = Some((body, operator));
                            p.uptime.heard(uptime::now_minute());
                        }
                    }),
                    Err(e) => {
                        tracing::warn!(peer = %source, error = %e, "rejected an announcement")
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetProviders(result),
                step,
                ..
            })) => {
                let Some((found, _)) = self.provider_queries.get_mut(&id) else {
                    return;
                };
                if let Ok(kad::GetProvidersOk::FoundProviders { providers, .. }) = result {
                    found.extend(providers);
                }
                if step.last {
                    let (found, reply) = self.provider_queries.remove(&id).expect("present");
                    let _ = reply.send(found);
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                id,
                result: kad::QueryResult::GetClosestPeers(result),
                step,
                ..
            })) => {
                let peers = match result {
                    Ok(ok) => ok.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                for p in &peers {
                    for addr in &p.addrs {
                        swarm
                            .behaviour_mut()
                            .kad
                            .add_address(&p.peer_id, addr.clone());
                    }
                }
                if let Some((wanted, _)) = self.finds.get(&id) {
                    let found = peers
                        .iter()
                        .find(|p| p.peer_id == *wanted)
                        .map(|p| p.addrs.clone());
                    if found.is_some() || step.last {
                        let (_, reply) = self.finds.remove(&id).expect("present");
                        let _ = reply.send(found.unwrap_or_default());
                    }
                }
            }
            _ => {}
        }
    }
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_ids_are_libp2ps_own() {
        for seed in [0u8, 1, 7, 200] {
            let key = SecretKey::from_bytes(&[seed; 32]);
            let libp2p = identity::ed25519::PublicKey::try_from_bytes(key.public().as_bytes())
                .map(|k| identity::PublicKey::from(k).to_peer_id())
                .unwrap();
            assert_eq!(peer_id_of(&key.public()), libp2p);
            assert_eq!(keypair(&key).public().to_peer_id(), libp2p);
            assert_eq!(key_of_peer(&libp2p), Some(key.public()));
        }
        assert_eq!(key_of_peer(&PeerId::random()), None);
    }

    #[test]
    fn silent_peers_are_forgotten_and_the_table_is_bounded() {
        let peers: PeerTable = Arc::default();
        let id = |b: u8| peer_id_of(&SecretKey::from_bytes(&[b; 32]).public());
        let now = Instant::now();
        {
            let mut t = peers.write().unwrap();
            t.insert(
                id(1),
                PeerInfo {
                    last_seen: Some(now),
                    ..PeerInfo::default()
                },
            );
            t.insert(
                id(2),
                PeerInfo {
                    last_seen: Some(now),
                    connections: 1,
                    ..PeerInfo::default()
                },
            );
            t.insert(id(3), PeerInfo::default());
        }
        // An hour and more later: the silent, unconnected peers go; the
        // connected one stays.
        prune(&peers, now + FORGET_AFTER + Duration::from_secs(1));
        assert_eq!(
            peers.read().unwrap().keys().copied().collect::<Vec<_>>(),
            vec![id(2)]
        );
        // Ids minted by the thousand: the table keeps MAX_PEERS.
        {
            let mut t = peers.write().unwrap();
            for i in 0..(MAX_PEERS + 50) {
                let key = SecretKey::from_bytes(&{
                    let mut s = [7u8; 32];
                    s[..8].copy_from_slice(&(i as u64).to_le_bytes());
                    s
                });
                t.insert(
                    peer_id_of(&key.public()),
                    PeerInfo {
                        last_seen: Some(now),
                        ..PeerInfo::default()
                    },
                );
            }
        }
        prune(&peers, now);
        let t = peers.read().unwrap();
        assert_eq!(t.len(), MAX_PEERS);
        assert!(t.contains_key(&id(2)), "a connected peer is never dropped");
    }
}
