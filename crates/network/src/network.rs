//! The node on the peer-to-peer network: it joins, announces what it
//! serves, answers peers' requests from its store, and says what it knows
//! of its peers (records, shares, evidence).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use vouch_api::{NetworkNode, NetworkNodes, PeerRecordJson};
use vouch_p2p::rpc::{MAX_CHUNKS_PER_REQUEST, buffers};
use vouch_p2p::{
    AnnouncementBody, Frame, Inbound, InboundRequest, ModelOffer, P2p, P2pConfig, Peer, Request,
    Response, Topic,
};
use vouch_store::ModelRecord;
use vouch_types::blob::CHUNK_SIZE;
use vouch_types::concentration::nakamoto_coefficient;

use crate::node::Node;
use crate::state::Network;
pub use crate::state::{Fetch, FetchState, NetworkModel, PeerRecord};
use vouch_service::error::NodeError;
use vouch_service::service::blocking;

/// The software a node announces itself as running: `vouch VERSION`, the
/// name the ledger's release votes are checked against.
pub const SOFTWARE: &str = concat!("vouch ", env!("CARGO_PKG_VERSION"));

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
        if !self.audits_at(self.config().audit_rate) {
            config.topics.retain(|&t| t != Topic::Receipts);
        }
        let (p2p, inbound) = vouch_p2p::P2p::start(config, self.key())
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
            pool_heard: Mutex::default(),
            pools_audited: Mutex::default(),
            sessions: Default::default(),
            disputes_seen: Mutex::default(),
            receipts_heard: Mutex::default(),
            receipts_reported: Mutex::default(),
            rechecked: Mutex::default(),
            publishers: Mutex::default(),
            proven: Mutex::default(),
            audit_rate: self.config().audit_rate.to_bits().into(),
            audits: Mutex::default(),
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
        let models: Vec<ModelRecord> = self.store().list_models().unwrap_or_default();
        let body = AnnouncementBody {
            operator: hex::encode(self.key().public().as_bytes()),
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
            price: self.config().price,
            capacity: self.config().workers as u32,
            software: SOFTWARE.into(),
            seq: 0,
            timestamp_ms: 0,
        };
        let _ = network.p2p.announce(body).await;
        for r in &models {
            let _ = network.p2p.provide(r.id()).await;
        }
    }
    /// The evidence this node has recorded (quorum disagreements,
    /// disputes, lost audits), oldest first, as JSON.
    pub fn evidence(&self) -> Result<Vec<serde_json::Value>, NodeError> {
        Ok(self
            .store()
            .evidence()?
            .iter()
            .filter_map(|b| serde_json::from_slice(b).ok())
            .collect())
    }

    /// Up to `limit` evidence records after sequence number `after`, each
    /// with its `seq`, oldest first, and the `after` of the next page when
    /// there may be one.
    pub fn evidence_page(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<(Vec<serde_json::Value>, Option<u64>), NodeError> {
        let rows = self.store().evidence_page(after, limit)?;
        let next = (rows.len() == limit)
            .then(|| rows.last().map(|(seq, _)| *seq))
            .flatten();
        let records = rows
            .into_iter()
            .filter_map(|(seq, b)| {
                let mut v: serde_json::Value = serde_json::from_slice(&b).ok()?;
                v.as_object_mut()?.insert("seq".into(), seq.into());
                Some(v)
            })
            .collect();
        Ok((records, next))
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
            operator: Some(self.key().public().to_string()),
            http: network.http.clone(),
            connected: true,
            share: share(&me),
            local: true,
            models: self
                .store()
                .list_models()?
                .iter()
                .map(|r| format!("{}@{}", r.signed.manifest.name, r.signed.manifest.version))
                .collect(),
            price: self.config().price,
            capacity: self.config().workers as u32,
            software: SOFTWARE.into(),
            record: json_record(&me),
            uptime: None,
        }];
        let now = vouch_p2p::uptime::now_minute();
        for (peer, info) in network.p2p.peers() {
            let connected = info.connected();
            let (minutes_seen, minutes_observed) = info.uptime.minutes(now);
            let uptime = (minutes_observed > 0).then(|| vouch_api::UptimeJson {
                minutes_seen,
                minutes_observed,
                ratio: minutes_seen as f64 / minutes_observed as f64,
            });
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
                uptime,
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
            Request::Manifest { id } => self.store().model_by_id(&id).map_err(NodeError::from).and_then(|r| {
                let r = r.ok_or_else(|| NodeError::NotFound(format!("no model {id} here")))?;
                let mut body = r.signed.signature.to_bytes().to_vec();
                body.extend(r.signed.manifest.encode());
                Ok(body)
            }),
            Request::ChunkTable { blob } => self
                .store()
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
                let store = self.store().clone();
                let data = buffers::take(indexes.len() * CHUNK_SIZE);
                blocking(move || store.read_chunks(&blob, &indexes, data)).await
            }
            Request::Replicate { id } if self.config().accept_pins => {
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
                proof,
                ref voucher,
            } => {
                let ask = match (proof, quorum) {
                    (true, _) => crate::route::Ask::Proof,
                    (false, true) => crate::route::Ask::Quorum,
                    (false, false) => crate::route::Ask::One,
                };
                self.answer_infer(model, nonce, ask, voucher.as_deref(), &body)
                    .await
            }
            Request::Generate { model, ref voucher } => {
                self.answer_generate(peer, model, voucher.as_deref(), &body)
                    .await
            }
            Request::PaymentState => self.answer_payment_state(peer),
            Request::GenerateEvents { ref session } => {
                self.answer_generate_events(peer, session).await
            }
            Request::GenerateCancel { ref session } => self.cancel_generation(peer, session),
            Request::Transcript { receipt } => self
                .hand_over(peer, &receipt)
                .await
                .and_then(|()| self.retained_transcript(&receipt)),
            Request::RefereeTokens { receipt } => self.referee_tokens(receipt, &body).await,
            Request::PoolAnswers { pool } => self.answer_pool(peer, pool, &body).await,
            Request::RefereePool { pool } => self.referee_pool(pool, &body).await,
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
