//! The node on the peer-to-peer network: it answers peers' requests from
//! its store, announces what it serves, and replicates models from peers.
//!
//! Replication is verified streaming: the manifest is checked against the
//! model id and its signature, the chunk table against the blob digest in
//! the manifest, and every chunk against the table before it is written
//! ([`vouch_store::PartialBlob`]). Chunks come from every provider at once;
//! a provider that sends a bad chunk is dropped from the fetch and its
//! record says so; a fetch that stops resumes from the chunks on disk.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use vouch_api::{FetchProgress, NetworkNode, NetworkNodes, PeerRecordJson, PinStatus};
use vouch_p2p::rpc::{MAX_CHUNKS_PER_REQUEST, buffers};
use vouch_p2p::{
    AnnouncementBody, Frame, Inbound, InboundRequest, ModelOffer, P2p, P2pConfig, Peer, Request,
    Response, Topic,
};
use vouch_store::{ModelRecord, PartialBlob};
use vouch_types::blob::{CHUNK_SIZE, ChunkTable};
use vouch_types::concentration::nakamoto_coefficient;
use vouch_types::{Digest, Kind, Manifest, Signature, SignedManifest, TensorMap};

use crate::error::NodeError;
use crate::service::{Node, blocking};

/// Chunk requests in flight per provider during a fetch.
const PER_PROVIDER: usize = 4;
/// Chunks asked for in one request (fewer, larger messages move faster).
const BATCH: usize = 8;
/// Connections to each provider during a fetch: the fetch's request
/// streams land on them at random ([`P2p::connect_many`]), so encryption
/// mostly runs on two cores at each end (a single connection moves
/// 0.6-0.8x a raw loopback copy on two cores, two move 0.9-1.0x).
const FETCH_CONNECTIONS: usize = 2;
/// How long a fetch waits for the extra connections before it starts on
/// the ones it has.
const CONNECT_WAIT: Duration = Duration::from_secs(2);
/// Failed requests after which a provider is dropped from a fetch.
const MAX_FAILURES: u32 = 3;
/// Bytes stored after which a fetch starts writing them to disk while the
/// rest arrive.
const FLUSH_BYTES: u64 = 16 << 20;

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
    http: Option<String>,
    records: Mutex<BTreeMap<Peer, PeerRecord>>,
    fetches: Mutex<HashMap<Digest, Fetch>>,
    /// Replica counts asked for by pins, by model id.
    pins: Mutex<HashMap<Digest, u64>>,
    /// Requests hedged with a second provider.
    pub(crate) hedges: std::sync::atomic::AtomicU64,
    /// Inputs and outputs kept for auditors.
    pub(crate) retained: Mutex<crate::audit::Retained<(TensorMap, TensorMap)>>,
    /// Transcripts of generated answers kept for auditors.
    pub(crate) transcripts: Mutex<crate::audit::Retained<vouch_types::llm::Transcript>>,
    /// Generations peers started here and read in turns.
    pub(crate) sessions: crate::llm_net::Sessions,
    /// Disputes already counted.
    pub(crate) disputes_seen: crate::audit::Seen,
    /// Receipts heard on the gossip topic, so each is drawn for audit once.
    pub(crate) receipts_heard: crate::audit::Seen,
    /// Receipts clients reported here and this node gossiped, once each.
    pub(crate) receipts_reported: crate::audit::Seen,
    /// Disputed LLM receipts this node re-checked itself, once each.
    pub(crate) rechecked: crate::audit::Seen,
    /// Whether a provider proved it holds a model (`Node::holding`), and
    /// when it was challenged.
    proven: Mutex<HashMap<(Peer, Digest), (bool, std::time::Instant)>>,
    /// The publisher of each network model whose manifest this node
    /// fetched and checked (`Node::trusted_network_model`).
    publishers: Mutex<HashMap<Digest, vouch_types::PublicKey>>,
    /// The audit rate now (f64 bits), from the configuration until changed.
    pub(crate) audit_rate: std::sync::atomic::AtomicU64,
}

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

    fn set_fetch(&self, id: Digest, f: impl FnOnce(&mut Fetch)) {
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

impl Node {
    pub(crate) fn network(&self) -> Result<&Arc<Network>, NodeError> {
        self.network.get().ok_or_else(|| {
            NodeError::Unavailable(
                "this node is not on a network: start it with --p2p-listen (and --bootstrap)"
                    .into(),
            )
        })
    }

    /// The p2p handle, when the node has joined a network.
    pub fn p2p(&self) -> Option<&P2p> {
        self.network.get().map(|n| &n.p2p)
    }

    /// Joins the network: starts the swarm with the operator key, answers
    /// peers' requests, and announces the models this node serves. `http`
    /// is the URL of this node's API, announced to peers.
    pub async fn join(
        self: &Arc<Node>,
        mut config: P2pConfig,
        http: Option<String>,
    ) -> Result<(), NodeError> {
        // Receipts are heard only while this node audits
        // (`Node::hear_receipts`).
        if !self.audits_at(self.config.audit_rate) {
            config.topics.retain(|&t| t != Topic::Receipts);
        }
        let (p2p, inbound) = vouch_p2p::P2p::start(config, &self.key)
            .await
            .map_err(|e| NodeError::Unavailable(e.to_string()))?;
        let network = Arc::new(Network {
            p2p,
            http,
            records: Mutex::default(),
            fetches: Mutex::default(),
            pins: Mutex::default(),
            hedges: Default::default(),
            retained: Mutex::default(),
            transcripts: Mutex::default(),
            sessions: Default::default(),
            disputes_seen: Mutex::default(),
            receipts_heard: Mutex::default(),
            receipts_reported: Mutex::default(),
            rechecked: Mutex::default(),
            publishers: Mutex::default(),
            proven: Mutex::default(),
            audit_rate: self.config.audit_rate.to_bits().into(),
        });
        let gossip = network.p2p.take_gossip();
        if self.network.set(network).is_err() {
            return Err(NodeError::Conflict("this node has already joined".into()));
        }
        tokio::spawn(serve_peers(Arc::downgrade(self), inbound));
        if let Some(gossip) = gossip {
            tokio::spawn(crate::audit::serve_gossip(Arc::downgrade(self), gossip));
        }
        self.announce().await;
        Ok(())
    }

    /// Publishes this node's announcement and provider records (after
    /// joining, and whenever its models change).
    pub(crate) async fn announce(&self) {
        let Some(network) = self.network.get() else {
            return;
        };
        let models: Vec<ModelRecord> = self.store.list_models().unwrap_or_default();
        let body = AnnouncementBody {
            operator: hex::encode(self.key.public().as_bytes()),
            peer: network.p2p.peer_id().to_string(),
            http: network.http.clone(),
            models: models
                .iter()
                .map(|r| ModelOffer {
                    name: r.signed.manifest.name.clone(),
                    version: r.signed.manifest.version.clone(),
                    id: r.id().to_string(),
                    format: r.signed.manifest.format.name().to_string(),
                })
                .collect(),
            price: self.config.price,
            capacity: self.config.workers as u32,
            software: format!("vouch {}", env!("CARGO_PKG_VERSION")),
            seq: 0,
            timestamp_ms: 0,
        };
        let _ = network.p2p.announce(body).await;
        for r in &models {
            let _ = network.p2p.provide(r.id()).await;
        }
    }

    /// The evidence this node has recorded (quorum disagreements), oldest
    /// first, as JSON.
    pub fn evidence(&self) -> Result<Vec<serde_json::Value>, NodeError> {
        Ok(self
            .store
            .evidence()?
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect())
    }

    /// What this node has recorded about each peer it dealt with.
    pub fn peer_records(&self) -> BTreeMap<Peer, PeerRecord> {
        self.network
            .get()
            .map(|n| n.records.lock().unwrap_or_else(|e| e.into_inner()).clone())
            .unwrap_or_default()
    }

    /// Models announced by peers (not this node), by id.
    pub fn network_models(&self) -> BTreeMap<String, NetworkModel> {
        let mut out: BTreeMap<String, NetworkModel> = BTreeMap::new();
        let Some(network) = self.network.get() else {
            return out;
        };
        for (peer, info) in network.p2p.peers() {
            let Some((body, _)) = info.announcement else {
                continue;
            };
            for offer in body.models {
                out.entry(offer.id.clone())
                    .or_insert_with(|| NetworkModel {
                        offer,
                        providers: BTreeSet::new(),
                    })
                    .providers
                    .insert(peer);
            }
        }
        out
    }

    /// The models called `name` (at `version`, when given) that peers
    /// announce, oldest version first (numeric versions by number).
    fn offers_named(&self, name: &str, version: Option<&str>) -> Vec<NetworkModel> {
        let mut offers: Vec<NetworkModel> = self
            .network_models()
            .into_values()
            .filter(|m| m.offer.name == name && version.is_none_or(|v| m.offer.version == v))
            .collect();
        offers.sort_by_key(|m| {
            let v = &m.offer.version;
            (v.parse::<u64>().ok(), v.clone())
        });
        offers
    }

    /// The newest model called `name` (at `version`, when given) that peers
    /// announce and that an operator this node admits published. Any peer
    /// can announce `NAME@999999`; a name is only as good as its
    /// publisher, which the manifest names (fetched from a provider and
    /// checked against the id, once per id).
    pub(crate) async fn trusted_network_model(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<NetworkModel, NodeError> {
        let candidates = self.offers_named(name, version);
        if candidates.is_empty() {
            return Err(not_announced(name, version));
        }
        let which = version.map_or(name.to_string(), |v| format!("{name}@{v}"));
        let network = self.network()?;
        let admitted = self.admitted();
        let mut others = Vec::new();
        for m in candidates.into_iter().rev() {
            let Ok(id) = m.offer.id.parse::<Digest>() else {
                continue;
            };
            match publisher_of(network, id, &m.providers).await {
                Ok(publisher) if admitted.contains(&publisher) => return Ok(m),
                Ok(publisher) => others.push(format!(
                    "{name}@{} published by {publisher}",
                    m.offer.version
                )),
                Err(e) => others.push(format!("{name}@{} ({e})", m.offer.version)),
            }
        }
        Err(NodeError::NotFound(format!(
            "no operator this node admits published `{which}`; peers announce {}: admit a publisher you trust with --admit KEY",
            others.join(", ")
        )))
    }

    /// `providers` of model `id` (in the order given) that proved they
    /// hold it. Announcing a model is free; a provider is used only once it
    /// answered a challenge: a chunk of the model file drawn by this node,
    /// checked against the chunk table and manifest it also sent (which are
    /// checked against the id). The first [`CHALLENGES_AT_ONCE`] providers
    /// not yet proven are challenged together; a success is kept, a failure
    /// for [`PROOF_RETRY`].
    pub(crate) async fn holding(
        &self,
        network: &Arc<Network>,
        id: Digest,
        providers: Vec<Peer>,
    ) -> Vec<Peer> {
        let known = |p: &Peer| {
            network
                .proven
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&(*p, id))
                .filter(|(ok, at)| *ok || at.elapsed() < PROOF_RETRY)
                .map(|(ok, _)| *ok)
        };
        let unknown: Vec<Peer> = providers
            .iter()
            .filter(|p| known(p).is_none())
            .take(CHALLENGES_AT_ONCE)
            .copied()
            .collect();
        let outcomes = futures_util::future::join_all(
            unknown
                .iter()
                .map(|&peer| async move { (peer, challenge(network, peer, id).await) }),
        )
        .await;
        for (peer, outcome) in outcomes {
            if let Err(e) = &outcome {
                tracing::warn!(%peer, model = %id, error = %e, "a provider did not prove it holds the model");
            }
            network
                .proven
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((peer, id), (outcome.is_ok(), std::time::Instant::now()));
        }
        providers
            .into_iter()
            .filter(|p| known(p) == Some(true))
            .collect()
    }

    /// The progress of fetching model `id` from peers, if this node started one.
    pub fn fetch_status(&self, id: &Digest) -> Option<Fetch> {
        let network = self.network.get()?;
        network
            .fetches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id)
            .cloned()
    }

    /// Fetches model `name` (the given version, or the newest announced)
    /// from peers, checks it, loads it and registers it. Returns its id.
    pub async fn replicate(&self, name: &str, version: Option<&str>) -> Result<Digest, NodeError> {
        if let Ok(record) = self.find_model(name, version) {
            return Ok(record.id());
        }
        let model = self.trusted_network_model(name, version).await?;
        let id: Digest =
            model.offer.id.parse().map_err(|e| {
                NodeError::BadRequest(format!("a peer announced a bad model id: {e}"))
            })?;
        self.fetch_model(id).await?;
        Ok(id)
    }

    /// Fetches model `id` from the peers that provide it.
    pub async fn fetch_model(&self, id: Digest) -> Result<ModelRecord, NodeError> {
        if let Some(record) = self.store.model_by_id(&id)? {
            return Ok(record);
        }
        let network = self.network()?.clone();
        let mut providers: BTreeSet<Peer> = self
            .network_models()
            .remove(&id.to_string())
            .map(|m| m.providers)
            .unwrap_or_default();
        providers.remove(&network.p2p.peer_id());
        // Announcements name providers at once; the DHT is the fallback
        // for models no announcement this node heard lists.
        if providers.is_empty()
            && let Ok(found) = network.p2p.providers(id).await
        {
            providers.extend(found);
            providers.remove(&network.p2p.peer_id());
        }
        if providers.is_empty() {
            return Err(NodeError::NotFound(format!(
                "no peer provides model {id}; is any node serving it connected?"
            )));
        }
        let providers: Vec<Peer> = providers.into_iter().collect();
        {
            let mut fetches = network.fetches.lock().unwrap_or_else(|e| e.into_inner());
            if fetches
                .get(&id)
                .is_some_and(|f| matches!(f.state, FetchState::Fetching | FetchState::Loading))
            {
                return Err(NodeError::Conflict(format!(
                    "model {id} is already being fetched; watch it with `vouch model pin`"
                )));
            }
            fetches.insert(
                id,
                Fetch {
                    name: String::new(),
                    version: String::new(),
                    total_bytes: 0,
                    done_bytes: 0,
                    state: FetchState::Fetching,
                },
            );
        }
        let result = self.fetch_into_store(&network, id, &providers).await;
        network.set_fetch(id, |f| {
            f.state = match &result {
                Ok(_) => FetchState::Done,
                Err(e) => FetchState::Failed(e.to_string()),
            }
        });
        if result.is_ok() {
            self.announce().await;
        }
        result
    }

    async fn fetch_into_store(
        &self,
        network: &Network,
        id: Digest,
        providers: &[Peer],
    ) -> Result<ModelRecord, NodeError> {
        let signed = fetch_manifest(network, id, providers).await?;
        let manifest = signed.manifest.clone();
        if manifest.file("model").is_none() {
            return Err(NodeError::InvalidModel(format!(
                "the manifest of {id} names no `model` file"
            )));
        }
        network.set_fetch(id, |f| {
            f.name = manifest.name.clone();
            f.version = manifest.version.clone();
            f.total_bytes = manifest.files.iter().map(|file| file.size).sum();
        });
        // Every file the manifest names (the model, and its tokenizer when
        // it has one), one after another.
        let mut done = 0;
        for file in &manifest.files {
            if !self.store.has_blob(&file.digest)? {
                let table = fetch_table(network, file.digest, file.size, providers).await?;
                self.fetch_chunks(network, (id, done), file.digest, table, providers)
                    .await
                    .map_err(|e| match e {
                        NodeError::DiskFull(m) => NodeError::DiskFull(format!(
                            "{m}; the chunks fetched so far stay in the store's partial/ directory, so the next try resumes (delete them to give the fetch up)"
                        )),
                        e => e,
                    })?;
            }
            done += file.size;
            network.set_fetch(id, |f| f.done_bytes = done);
        }
        network.set_fetch(id, |f| f.state = FetchState::Loading);
        let (store, engines) = (self.store.clone(), self.engines.clone());
        let (record, model) = self
            .compute(move || {
                let model = engines.load(&store, &manifest)?;
                Ok((store.put_model(signed, crate::service::now_ms())?, model))
            })
            .await?;
        self.cache.insert(record.id(), model);
        tracing::info!(model = %record.signed.manifest.name, %id, "model replicated from peers");
        Ok(record)
    }

    /// Fetches the missing chunks of a blob from every provider at once
    /// (`base`: bytes of the model's files fetched before this one, for
    /// progress).
    async fn fetch_chunks(
        &self,
        network: &Network,
        (id, base): (Digest, u64),
        blob: Digest,
        table: ChunkTable,
        providers: &[Peer],
    ) -> Result<(), NodeError> {
        let store = self.store.clone();
        let connect = providers.iter().map(|&peer| {
            tokio::time::timeout(
                CONNECT_WAIT,
                network.p2p.connect_many(peer, FETCH_CONNECTIONS),
            )
        });
        let (partial, _) = futures_util::join!(
            blocking(move || store.partial_blob(&blob, table)),
            futures_util::future::join_all(connect)
        );
        let partial = partial?;
        network.set_fetch(id, |f| f.done_bytes = base + partial.bytes_present());
        let mut queue: VecDeque<u64> = partial.missing().into();
        let partial = Arc::new(partial);
        // (peer, transport failures, requests in flight)
        let mut live: Vec<(Peer, u32, usize)> = providers.iter().map(|p| (*p, 0, 0)).collect();
        // Chunks a provider said it cannot supply: never asked of it again.
        let mut refused: HashSet<(Peer, u64)> = HashSet::new();
        // Requests in flight and answers being checked and written: an
        // answer is checked on the blocking pool while the next requests
        // already go out.
        let mut pending: FuturesUnordered<BoxFuture<'_, ChunkEvent>> = FuturesUnordered::new();
        // Bytes stored since the last flush started, and whether one runs.
        let (mut unflushed, mut flushing) = (0u64, false);
        loop {
            if unflushed >= FLUSH_BYTES && !flushing {
                let partial = partial.clone();
                (unflushed, flushing) = (0, true);
                pending.push(Box::pin(async move {
                    ChunkEvent::Flushed(blocking(move || partial.flush()).await)
                }));
            }
            // Hand out batches of chunks round-robin to the providers with
            // room, so every provider serves a share.
            let mut handed = true;
            while handed {
                handed = false;
                let with_room = live.iter().filter(|(_, _, b)| *b < PER_PROVIDER).count();
                let batch = queue.len().div_ceil(with_room.max(1)).clamp(1, BATCH);
                for (peer, _, busy) in live.iter_mut().filter(|(_, _, b)| *b < PER_PROVIDER) {
                    let mut indexes = Vec::with_capacity(batch);
                    let mut i = 0;
                    while i < queue.len() && indexes.len() < batch {
                        if refused.contains(&(*peer, queue[i])) {
                            i += 1;
                        } else {
                            indexes.extend(queue.remove(i));
                        }
                    }
                    if indexes.is_empty() {
                        continue;
                    }
                    *busy += 1;
                    handed = true;
                    let (p2p, peer) = (network.p2p.clone(), *peer);
                    pending.push(Box::pin(async move {
                        let asked = Frame::new(Request::Chunks {
                            blob,
                            indexes: indexes.clone(),
                        });
                        let got = p2p.request(peer, asked).await;
                        ChunkEvent::Answer(peer, indexes, got)
                    }));
                }
            }
            // Nothing pending: done, or no provider left for what is missing.
            let Some(event) = pending.next().await else {
                if queue.is_empty() {
                    break;
                }
                let missing: Vec<String> = queue.iter().map(u64::to_string).collect();
                return Err(NodeError::Unavailable(format!(
                    "no provider could supply chunks [{}] of {blob}: each one failed, refused them or sent bad data; the chunks fetched so far are kept and the next try resumes",
                    missing.join(", ")
                )));
            };
            let (peer, indexes, got) = match event {
                ChunkEvent::Answer(peer, indexes, got) => {
                    if let Some((_, _, busy)) = live.iter_mut().find(|(p, _, _)| *p == peer) {
                        *busy -= 1;
                    }
                    (peer, indexes, got)
                }
                ChunkEvent::Flushed(flushed) => {
                    flushing = false;
                    flushed?;
                    continue;
                }
                ChunkEvent::Checked(peer, indexes, checked) => {
                    let (stored, bad) = checked?;
                    let bytes: u64 = stored.iter().map(|(_, len)| len).sum();
                    unflushed += bytes;
                    network.record(peer, |r| r.chunks_ok += stored.len() as u64);
                    network.set_fetch(id, |f| f.done_bytes += bytes);
                    let rest = &indexes[stored.len()..];
                    match bad {
                        None => {
                            // What did not arrive, this provider does not hold.
                            for &index in rest {
                                refused.insert((peer, index));
                                queue.push_back(index);
                            }
                        }
                        Some(why) => {
                            tracing::warn!(%peer, %why, "peer sent a bad chunk; dropping it from this fetch");
                            network.record(peer, |r| r.bad_data += 1);
                            queue.extend(rest);
                            live.retain(|(p, _, _)| *p != peer);
                        }
                    }
                    continue;
                }
            };
            match got {
                Ok(Frame {
                    head: Response::Ok,
                    body,
                }) => {
                    // Split the answer into the chunks asked for, in order,
                    // and check each; a short answer holds a prefix.
                    let partial = partial.clone();
                    pending.push(Box::pin(async move {
                        let asked = indexes.clone();
                        let checked = blocking(move || {
                            let checked = check_chunks(&partial, &asked, &body);
                            buffers::give(body);
                            checked
                        })
                        .await;
                        ChunkEvent::Checked(peer, indexes, checked)
                    }));
                }
                Ok(Frame {
                    head: Response::Error { code, message },
                    ..
                }) => {
                    tracing::debug!(%peer, ?indexes, %code, %message, "peer refused chunks");
                    network.record(peer, |r| r.failures += 1);
                    for &index in &indexes {
                        refused.insert((peer, index));
                        queue.push_back(index);
                    }
                }
                other => {
                    let why = match other {
                        Err(e) => e.to_string(),
                        Ok(_) => "an unknown answer".into(),
                    };
                    tracing::debug!(%peer, ?indexes, %why, "chunk request failed");
                    network.record(peer, |r| r.failures += 1);
                    queue.extend(indexes);
                    if let Some(i) = live.iter().position(|(p, _, _)| *p == peer) {
                        live[i].1 += 1;
                        if live[i].1 >= MAX_FAILURES {
                            live.remove(i);
                        }
                    }
                }
            }
        }
        drop(pending);
        let store = self.store.clone();
        let partial = Arc::into_inner(partial).expect("no chunk is being checked");
        blocking(move || partial.finish(&store)).await?;
        Ok(())
    }

    /// Asks up to `count` connected peers that do not serve model `id` to
    /// fetch it. Returns the peers that accepted.
    pub async fn ask_replicas(&self, id: Digest, count: usize) -> Vec<Peer> {
        let Ok(network) = self.network() else {
            return vec![];
        };
        let candidates: Vec<Peer> = network
            .p2p
            .peers()
            .into_iter()
            .filter(|(_, info)| {
                info.connected()
                    && info.announcement.as_ref().is_some_and(|(body, _)| {
                        !body.models.iter().any(|m| m.id == id.to_string())
                    })
            })
            .map(|(peer, _)| peer)
            .collect();
        let mut accepted = Vec::new();
        for peer in candidates {
            if accepted.len() >= count {
                break;
            }
            match ask(network, peer, Frame::new(Request::Replicate { id })).await {
                Ok(_) => accepted.push(peer),
                Err(e) => tracing::info!(%peer, error = %e, "peer did not take the replica"),
            }
        }
        accepted
    }

    /// Pins model `name` (the given version, or the newest known): this
    /// node fetches it from peers in the background if it lacks it, and
    /// asks peers to fetch it until `replicas` nodes serve it. Returns
    /// where it stands now; [`pin_status`](Node::pin_status) follows it.
    pub async fn pin(
        self: &Arc<Node>,
        name: &str,
        version: Option<&str>,
        replicas: u64,
    ) -> Result<PinStatus, NodeError> {
        self.network()?;
        let (id, local) = self.resolve(name, version).await?;
        if !local {
            let node = self.clone();
            tokio::spawn(async move {
                if let Err(e) = node.fetch_model(id).await {
                    tracing::warn!(%id, error = %e, "pinned model not fetched");
                }
            });
        }
        let status = self.status_of(id, local)?;
        let more = replicas.saturating_sub(status.providers.len() as u64 + u64::from(!local));
        if more > 0 {
            let node = self.clone();
            tokio::spawn(async move {
                let accepted = node.ask_replicas(id, more as usize).await;
                tracing::info!(%id, asked = more, accepted = accepted.len(), "asked peers to replicate");
            });
        }
        self.network()?
            .pins
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(id, replicas);
        self.status_of(id, local)
    }

    /// Where model `name` stands: served here, being fetched, and by how
    /// many nodes.
    pub async fn pin_status(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<PinStatus, NodeError> {
        let (id, local) = self.resolve(name, version).await?;
        self.status_of(id, local)
    }

    /// The model id `name` resolves to here or on the network (only to a
    /// model an admitted operator published), and whether this node
    /// serves it.
    async fn resolve(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<(Digest, bool), NodeError> {
        match self.find_model(name, version) {
            Ok(record) => Ok((record.id(), true)),
            Err(_) => Ok((self.resolve_remote(name, version).await?, false)),
        }
    }

    /// Where model `id` stands (`local`: this node serves it).
    fn status_of(&self, id: Digest, local: bool) -> Result<PinStatus, NodeError> {
        let (name, version) = match self.store.model_by_id(&id)? {
            Some(r) => (r.signed.manifest.name, r.signed.manifest.version),
            None => {
                let offer = self
                    .network_models()
                    .remove(&id.to_string())
                    .map(|m| m.offer)
                    .ok_or_else(|| NodeError::NotFound(format!("no peer announces {id} now")))?;
                (offer.name, offer.version)
            }
        };
        let mut providers: BTreeSet<String> = self
            .network_models()
            .remove(&id.to_string())
            .map(|m| m.providers.iter().map(|p| p.to_string()).collect())
            .unwrap_or_default();
        let network = self.network.get();
        if let (true, Some(n)) = (local, network) {
            providers.insert(n.p2p.peer_id().to_string());
        }
        let fetch = self.fetch_status(&id).map(|f| FetchProgress {
            total_bytes: f.total_bytes,
            done_bytes: f.done_bytes,
            state: match f.state {
                FetchState::Fetching => "fetching",
                FetchState::Loading => "loading",
                FetchState::Done => "done",
                FetchState::Failed(_) => "failed",
            }
            .into(),
            error: match f.state {
                FetchState::Failed(e) => Some(e),
                _ => None,
            },
        });
        let wanted = network
            .and_then(|n| {
                n.pins
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .get(&id)
                    .copied()
            })
            .unwrap_or(1);
        Ok(PinStatus {
            id,
            name,
            version,
            local,
            fetch,
            providers: providers.into_iter().collect(),
            wanted,
        })
    }

    /// This node and the peers it knows, with what each serves and this
    /// node's record of it.
    pub fn network_nodes(&self) -> Result<NetworkNodes, NodeError> {
        let network = self.network()?;
        let records = self.peer_records();
        let served: Vec<u64> = records.values().map(|r| r.served).collect();
        let requests: u64 = served.iter().sum();
        let share = |peer: &Peer| {
            let served = records.get(peer).map_or(0, |r| r.served);
            if requests == 0 {
                0.0
            } else {
                served as f64 / requests as f64
            }
        };
        let json_record = |peer: &Peer| {
            let r = records.get(peer).cloned().unwrap_or_default();
            PeerRecordJson {
                chunks_ok: r.chunks_ok,
                bad_data: r.bad_data,
                failures: r.failures,
                served: r.served,
                latency_us: r.latency_us,
                disagreements: r.disagreements,
                audits_passed: r.audits_passed,
                audits_failed: r.audits_failed,
                refused: r.refused,
                withheld: r.withheld,
            }
        };
        let me = network.p2p.peer_id();
        let mut nodes = vec![NetworkNode {
            peer: me.to_string(),
            operator: Some(self.key.public().to_string()),
            http: network.http.clone(),
            connected: true,
            share: share(&me),
            local: true,
            models: self
                .store
                .list_models()?
                .iter()
                .map(|r| format!("{}@{}", r.signed.manifest.name, r.signed.manifest.version))
                .collect(),
            price: self.config.price,
            capacity: self.config.workers as u32,
            software: format!("vouch {}", env!("CARGO_PKG_VERSION")),
            record: json_record(&me),
        }];
        for (peer, info) in network.p2p.peers() {
            let connected = info.connected();
            let body = info.announcement.map(|(body, key)| (body, key.to_string()));
            nodes.push(NetworkNode {
                peer: peer.to_string(),
                operator: body.as_ref().map(|(_, k)| k.clone()),
                http: body.as_ref().and_then(|(b, _)| b.http.clone()),
                connected,
                share: share(&peer),
                local: false,
                models: body
                    .as_ref()
                    .map(|(b, _)| {
                        b.models
                            .iter()
                            .map(|m| format!("{}@{}", m.name, m.version))
                            .collect()
                    })
                    .unwrap_or_default(),
                price: body.as_ref().map_or(0, |(b, _)| b.price),
                capacity: body.as_ref().map_or(0, |(b, _)| b.capacity),
                software: body.map(|(b, _)| b.software).unwrap_or_default(),
                record: json_record(&peer),
            });
        }
        Ok(NetworkNodes {
            listen: network
                .p2p
                .addresses()
                .iter()
                .map(|a| a.to_string())
                .collect(),
            nodes,
            requests,
            nakamoto_coefficient: nakamoto_coefficient(&served),
            hedged: network.hedges.load(std::sync::atomic::Ordering::Relaxed),
        })
    }

    /// Answers one request from a peer.
    async fn answer(self: &Arc<Node>, peer: Peer, request: Frame<Request>) -> Frame<Response> {
        let Frame {
            head: request,
            body,
        } = request;
        let result = match request {
            Request::Manifest { id } => self.store.model_by_id(&id).map_err(NodeError::from).and_then(|r| {
                let r = r.ok_or_else(|| NodeError::NotFound(format!("no model {id} here")))?;
                let mut body = r.signed.signature.to_bytes().to_vec();
                body.extend(r.signed.manifest.encode());
                Ok(body)
            }),
            Request::ChunkTable { blob } => self
                .store
                .chunk_table(&blob)
                .map(|t| t.encode())
                .map_err(NodeError::from),
            Request::Chunks { indexes, .. } if indexes.len() > MAX_CHUNKS_PER_REQUEST => {
                Err(NodeError::BadRequest(format!(
                    "{} chunks asked at once; at most {MAX_CHUNKS_PER_REQUEST} are served per request",
                    indexes.len()
                )))
            }
            Request::Chunks { blob, indexes } => {
                let store = self.store.clone();
                let data = buffers::take(indexes.len() * CHUNK_SIZE);
                blocking(move || store.read_chunks(&blob, &indexes, data)).await
            }
            Request::Replicate { id } if self.config.accept_pins => {
                let node = self.clone();
                tokio::spawn(async move {
                    if let Err(e) = node.fetch_model(id).await {
                        tracing::warn!(%id, %peer, error = %e, "replicating for a peer failed");
                    }
                });
                Ok(Vec::new())
            }
            Request::Infer {
                model,
                nonce,
                quorum,
            } => self.answer_infer(model, nonce, quorum, &body).await,
            Request::Generate { model } => self.answer_generate(peer, model, &body).await,
            Request::GenerateEvents { ref session } => {
                self.answer_generate_events(peer, session).await
            }
            Request::GenerateCancel { ref session } => self.cancel_generation(peer, session),
            Request::Transcript { receipt } => self
                .hand_over(peer, &receipt)
                .and_then(|()| self.retained_transcript(&receipt)),
            Request::RefereeTokens { receipt } => self.referee_tokens(receipt, &body).await,
            ref audit @ (Request::Inputs { .. }
            | Request::Outputs { .. }
            | Request::TraceChildren { .. }
            | Request::TraceLeaf { .. }
            | Request::Referee { .. }) => self.answer_audit(peer, audit, &body).await,
            Request::Replicate { .. } => Err(NodeError::Unavailable(
                "this node does not replicate on request; its operator can start it with --accept-pins".into(),
            )),
            other => Err(NodeError::BadRequest(format!("unsupported request {other:?}"))),
        };
        match result {
            Ok(body) => Frame {
                head: Response::Ok,
                body,
            },
            Err(e) => Response::error(e.code(), e.to_string()),
        }
    }
}

/// What happened to one request of a fetch.
enum ChunkEvent {
    /// A provider answered a request for these chunks (or failed to).
    Answer(Peer, Vec<u64>, Result<Frame<Response>, vouch_p2p::P2pError>),
    /// An answer was checked: the chunks stored, with their lengths (a
    /// prefix of those asked for), and why the rest were not, when a
    /// chunk did not check out.
    Checked(Peer, Vec<u64>, Result<StoredChunks, NodeError>),
    /// The chunks stored before a flush started are on disk.
    Flushed(Result<(), NodeError>),
}

/// Chunks stored with their lengths, and why the answer stopped short.
type StoredChunks = (Vec<(u64, u64)>, Option<String>);

/// Splits an answer into the chunks asked for, in order, and checks and
/// writes each; a short answer holds a prefix.
fn check_chunks(
    partial: &PartialBlob,
    asked: &[u64],
    body: &[u8],
) -> Result<StoredChunks, vouch_store::StoreError> {
    let (mut at, mut stored) = (0, Vec::new());
    for &index in asked {
        let len = partial.chunk_len(index);
        let Some(piece) = body.get(at..at + len) else {
            break;
        };
        match partial.put_chunk(index, piece) {
            Ok(()) => stored.push((index, len as u64)),
            Err(vouch_store::StoreError::BadChunk(why)) => return Ok((stored, Some(why))),
            Err(e) => return Err(e),
        }
        at += len;
    }
    let misaligned = (at != body.len()).then(|| {
        format!(
            "an answer of {} bytes does not end on a chunk boundary",
            body.len()
        )
    });
    Ok((stored, misaligned))
}

/// Answers peers' requests until the swarm stops or the node is dropped.
async fn serve_peers(node: std::sync::Weak<Node>, mut inbound: Inbound) {
    while let Some(InboundRequest {
        peer,
        request,
        reply,
    }) = inbound.recv().await
    {
        let Some(node) = node.upgrade() else { return };
        tokio::spawn(async move {
            let answer = node.answer(peer, request).await;
            let _ = reply.send(answer);
        });
    }
}

/// Asks `peer` and returns the body of an `Ok` answer.
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

/// The error for a model name (and version) no peer announces.
fn not_announced(name: &str, version: Option<&str>) -> NodeError {
    let which = version.map_or(name.to_string(), |v| format!("{name}@{v}"));
    NodeError::NotFound(format!(
        "no peer announces model `{which}`; check the name with `vouch network`, or push it to a node first"
    ))
}

/// Who published model `id`: its manifest's publisher, fetched once from
/// `providers` (checked against the id) and remembered.
async fn publisher_of(
    network: &Network,
    id: Digest,
    providers: &BTreeSet<Peer>,
) -> Result<vouch_types::PublicKey, NodeError> {
    let known = network
        .publishers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&id)
        .copied();
    if let Some(publisher) = known {
        return Ok(publisher);
    }
    let providers: Vec<Peer> = providers.iter().copied().collect();
    let publisher = fetch_manifest(network, id, &providers)
        .await?
        .manifest
        .publisher;
    network
        .publishers
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, publisher);
    Ok(publisher)
}

/// How many providers of a model [`Node::holding`] challenges at once.
const CHALLENGES_AT_ONCE: usize = 8;

/// How long a provider that failed its challenge waits before another (a
/// failure may be the network's, not the provider's).
const PROOF_RETRY: std::time::Duration = std::time::Duration::from_secs(10);

/// Has `peer` prove it holds model `id`: its manifest (checked against the
/// id), the chunk table of the model's first file (checked against the
/// manifest's digest) and one chunk of it drawn here with the OS's
/// randomness (checked against the table).
async fn challenge(network: &Network, peer: Peer, id: Digest) -> Result<(), NodeError> {
    let signed = fetch_manifest(network, id, &[peer]).await?;
    let Some(file) = signed.manifest.files.first() else {
        return Ok(());
    };
    let table = fetch_table(network, file.digest, file.size, &[peer]).await?;
    if table.chunks.is_empty() {
        return Ok(());
    }
    let mut draw = [0u8; 8];
    getrandom::fill(&mut draw).map_err(|e| NodeError::Internal(format!("drawing a chunk: {e}")))?;
    let index = u64::from_le_bytes(draw) % table.chunks.len() as u64;
    let body = ask(
        network,
        peer,
        Frame::new(Request::Chunks {
            blob: file.digest,
            indexes: vec![index],
        }),
    )
    .await?;
    let want = (file.size - index * CHUNK_SIZE as u64).min(CHUNK_SIZE as u64) as usize;
    if body.len() != want || Digest::of(Kind::BlobChunk, &body) != table.chunks[index as usize] {
        network.record(peer, |r| r.bad_data += 1);
        return Err(NodeError::Unavailable(format!(
            "{peer} answered chunk {index} of {} with bytes that are not the model's",
            file.digest
        )));
    }
    Ok(())
}

/// Asks each provider in turn for the signed manifest of `id` until one
/// sends a manifest that hashes to `id` under a valid signature.
pub(crate) async fn fetch_manifest(
    network: &Network,
    id: Digest,
    providers: &[Peer],
) -> Result<SignedManifest, NodeError> {
    let mut why = Vec::new();
    for &peer in providers {
        let checked = match ask(network, peer, Frame::new(Request::Manifest { id })).await {
            Ok(body) => decode_manifest(&body, id),
            Err(e) => Err(e.to_string()),
        };
        match checked {
            Ok(signed) => return Ok(signed),
            Err(e) => {
                network.record(peer, |r| r.failures += 1);
                why.push(format!("{peer}: {e}"));
            }
        }
    }
    Err(NodeError::Unavailable(format!(
        "no provider sent a valid manifest for {id} ({})",
        why.join("; ")
    )))
}

fn decode_manifest(body: &[u8], id: Digest) -> Result<SignedManifest, String> {
    let sig: [u8; 64] = body
        .get(..64)
        .and_then(|s| s.try_into().ok())
        .ok_or("a manifest answer shorter than a signature")?;
    let manifest = Manifest::decode(&body[64..]).map_err(|e| e.to_string())?;
    let signed = SignedManifest {
        manifest,
        signature: Signature::from_bytes(&sig),
    };
    if signed.manifest.id() != id {
        return Err(format!(
            "the manifest sent is {}, not {id}",
            signed.manifest.id()
        ));
    }
    if !signed.verify() {
        return Err("the manifest's signature does not verify".into());
    }
    Ok(signed)
}

/// Asks each provider in turn for the chunk table of `blob` until one sends
/// a table that hashes to `blob`.
async fn fetch_table(
    network: &Network,
    blob: Digest,
    size: u64,
    providers: &[Peer],
) -> Result<ChunkTable, NodeError> {
    for &peer in providers {
        if let Ok(body) = ask(network, peer, Frame::new(Request::ChunkTable { blob })).await {
            match ChunkTable::decode(&body) {
                Ok(t) if t.root() == blob && t.size == size => return Ok(t),
                _ => network.record(peer, |r| r.bad_data += 1),
            }
        } else {
            network.record(peer, |r| r.failures += 1);
        }
    }
    Err(NodeError::Unavailable(format!(
        "no provider sent the chunk table of {blob}"
    )))
}
