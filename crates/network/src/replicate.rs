//! Replication and pins: fetching a model from the peers that provide it.
//!
//! Replication is verified streaming: the manifest is checked against the
//! model id and its signature, the chunk table against the blob digest in
//! the manifest, and every chunk against the table before it is written
//! ([`vouch_store::PartialBlob`]). Chunks come from every provider at once;
//! a provider that sends a bad chunk is dropped from the fetch and its
//! record says so; a fetch that stops resumes from the chunks on disk.

use std::collections::{BTreeSet, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;
use vouch_api::{FetchProgress, PinStatus};
use vouch_p2p::rpc::buffers;
use vouch_p2p::{Frame, Peer, Request, Response};
use vouch_store::{ModelRecord, PartialBlob};
use vouch_types::Digest;
use vouch_types::blob::ChunkTable;

use crate::node::Node;
use crate::providers::{fetch_manifest, fetch_table};
use crate::state::{Fetch, FetchState};
use crate::state::{Network, ask};
use vouch_service::error::NodeError;
use vouch_service::service::blocking;

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

impl Node {
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
        if let Some(record) = self.store().model_by_id(&id)? {
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
            if !self.store().has_blob(&file.digest)? {
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
        let (store, engines) = (self.store().clone(), self.engines().clone());
        let (record, model) = self
            .compute(move || {
                let model = engines.load(&store, &manifest)?;
                Ok((
                    store.put_model(signed, vouch_service::service::now_ms())?,
                    model,
                ))
            })
            .await?;
        self.cache().insert(record.id(), model);
        tracing::info!(model = %record.signed.manifest.name, %id, "model replicated from peers");
        Ok(record)
    }
    /// Blob `digest` (`size` bytes) from this node's store, fetched from
    /// `peers` first when the store lacks it (chunk by chunk, each checked
    /// against the digest).
    pub(crate) async fn fetch_blob(
        &self,
        network: &Network,
        digest: Digest,
        size: u64,
        peers: &[Peer],
    ) -> Result<Vec<u8>, NodeError> {
        if !self.store().has_blob(&digest)? {
            let table = fetch_table(network, digest, size, peers).await?;
            self.fetch_chunks(network, (digest, 0), digest, table, peers)
                .await?;
        }
        let store = self.store().clone();
        blocking(move || store.read_blob(&digest)).await
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
        let store = self.store().clone();
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
        let store = self.store().clone();
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
        let (name, version) = match self.store().model_by_id(&id)? {
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
