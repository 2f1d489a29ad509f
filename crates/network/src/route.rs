//! Routing and quorum: any node answers a request for any model the network
//! serves.
//!
//! A node runs a request itself when it serves the model. Otherwise it
//! forwards it over [`Request::Infer`] to a provider ranked by measured
//! latency, price and record (failures, bad answers, quorum dissent), with
//! a cap on any one operator's share of the requests this node routes. A
//! provider that errors or vanishes is replaced by the next one; a slow one
//! is hedged by a second request. Every answer is checked before it is
//! used: the receipt's signature, that it names the model, the inputs, the
//! nonce and the outputs it came with, and that its key is the provider's.
//!
//! `quorum:N` runs the request on N distinct operators and answers when a
//! strict majority agree under the model's determinism class
//! ([`vouch_types::quorum`]); dissent is reported, counted against the
//! dissenting operators, and stored as evidence.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use vouch_p2p::{AnnouncementBody, Frame, Peer, Request, Response, peer_id_of};
use vouch_types::encode::{Reader, Sink};
use vouch_types::quorum::checked_groups;
use vouch_types::{Determinism, Digest, Receipt, TensorMap};

use crate::node::Node;
use crate::state::Network;
use vouch_service::error::NodeError;
use vouch_service::service::Answer;

/// Most operators a quorum may ask for.
pub const MAX_QUORUM: usize = 16;

/// How much checking a request asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Verify {
    /// One execution with a signed receipt and trace commitment (sampled
    /// audits, when they run, re-check some of these later).
    #[default]
    Receipt,
    /// `quorum:N`: N distinct operators run it; a majority must agree.
    Quorum(usize),
    /// `proof`: this node runs a provable model's circuit and proves it
    /// (`vouch_proof`); the answer carries the proof.
    Proof,
}

impl std::str::FromStr for Verify {
    type Err = NodeError;

    fn from_str(s: &str) -> Result<Verify, NodeError> {
        let bad = || {
            NodeError::BadRequest(format!(
                "verify `{s}` is not a level: use `receipt`, `audit`, `proof` or `quorum:N` with N from 1 to {MAX_QUORUM}"
            ))
        };
        match s {
            "receipt" | "audit" => Ok(Verify::Receipt),
            "proof" => Ok(Verify::Proof),
            _ => {
                let n: usize = s
                    .strip_prefix("quorum:")
                    .and_then(|n| n.parse().ok())
                    .ok_or_else(bad)?;
                if (1..=MAX_QUORUM).contains(&n) {
                    Ok(Verify::Quorum(n))
                } else {
                    Err(bad())
                }
            }
        }
    }
}

/// One execution somewhere on the network, checked.
#[derive(Clone, Debug)]
pub struct Execution {
    /// Outputs.
    pub outputs: TensorMap,
    /// The executing node's receipt.
    pub receipt: Receipt,
    /// The executing node's peer id.
    pub peer: Peer,
    /// The proof, when one was asked for (checked before it is kept).
    pub proof: Option<vouch_proof::Bundle>,
}

/// What a forwarded request asks of its executor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Ask {
    /// One answer, which the executor offers to sampled audits.
    One,
    /// A quorum member's answer: the asker cross-checks it.
    Quorum,
    /// A proven answer (`verify: "proof"`).
    Proof,
}

/// How a quorum went.
#[derive(Clone, Debug)]
pub struct QuorumReport {
    /// Operators asked for.
    pub wanted: usize,
    /// Operators in the majority.
    pub agreed: usize,
    /// Every member's receipt, dissenters included.
    pub receipts: Vec<Receipt>,
    /// Executions outside the majority.
    pub dissent: Vec<Execution>,
}

/// An answer and how it was reached.
#[derive(Clone, Debug)]
pub struct Routed {
    /// The answer (for a quorum, the first majority member's outputs).
    pub outputs: TensorMap,
    /// The receipt that goes with `outputs`.
    pub receipt: Receipt,
    /// Who ran it.
    pub executor: Peer,
    /// The nodes the request went through: this node, then the executor
    /// when it is another.
    pub route: Vec<Peer>,
    /// The quorum, when one was asked for.
    pub quorum: Option<QuorumReport>,
    /// The proof, when one was asked for.
    pub proof: Option<vouch_proof::Bundle>,
}

/// Why a forwarded request did not produce a usable answer.
/// One quorum member's run: the peer and its answer.
pub(crate) type MemberRun<T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = (Peer, Result<T, Failure>)> + Send>>;

/// Gathers `n` answers for a quorum: `runs` holds the local run if any,
/// remote runs start on the first spare providers, and a provider that
/// fails, lies or refuses is replaced by the next spare. This node's own
/// refusal (`me`: it validated the request itself) ends the quorum; a
/// provider's is the client's fault only when no spare is left and every
/// provider asked refused.
pub(crate) async fn gather_quorum<T>(
    network: &Network,
    mut runs: FuturesUnordered<MemberRun<T>>,
    mut spare: impl Iterator<Item = Peer>,
    remote: impl Fn(Peer) -> MemberRun<T>,
    (n, me): (usize, Peer),
    id: &impl std::fmt::Display,
) -> Result<Vec<(Peer, T)>, NodeError> {
    for peer in spare.by_ref().take(n.saturating_sub(runs.len())) {
        runs.push(remote(peer));
    }
    let mut members = Vec::with_capacity(n);
    let mut tried = Tried::default();
    while let Some((peer, result)) = runs.next().await {
        match result {
            Ok(answer) => members.push((peer, answer)),
            Err(Failure::Refused(e)) if peer == me => return Err(e),
            Err(failure) => {
                tried.note(peer, failure);
                match spare.next() {
                    Some(next) => runs.push(remote(next)),
                    None => {
                        return Err(tried.exhausted(|why| {
                            NodeError::Unavailable(format!(
                                "quorum:{n} could not gather {n} answers for model {id}: {why}"
                            ))
                        }));
                    }
                }
            }
        }
    }
    tried.served(network);
    Ok(members)
}

/// What a failover learned from the providers it tried. A provider that
/// refuses a request as the client's fault (`bad_request`,
/// `invalid_input`) does not end it: one peer could otherwise block every
/// request for a model. The refusal reaches the client only when every
/// provider asked refused; one that refused what another then served is
/// marked in its record.
#[derive(Default)]
pub(crate) struct Tried {
    refused: Vec<(Peer, NodeError)>,
    failed: Vec<String>,
}

impl Tried {
    /// Notes `peer`'s failure.
    pub(crate) fn note(&mut self, peer: Peer, failure: Failure) {
        match failure {
            Failure::Refused(e) => {
                tracing::info!(%peer, error = %e, "a provider refused the request; asking another");
                self.refused.push((peer, e));
            }
            Failure::Failed(why) | Failure::Lied(why) => {
                tracing::warn!(%peer, %why, "provider failed; trying another");
                self.failed.push(format!("{peer}: {why}"));
            }
        }
    }

    /// Another provider served the request: the ones that refused it are
    /// marked.
    pub(crate) fn served(self, network: &Network) {
        for (peer, _) in self.refused {
            network.record(peer, |r| r.refused += 1);
        }
    }

    /// No provider served it: every refusal means the request is wrong
    /// (the first one says why); otherwise `unavailable(why)`.
    pub(crate) fn exhausted(self, unavailable: impl FnOnce(String) -> NodeError) -> NodeError {
        if self.failed.is_empty()
            && let Some((_, e)) = self.refused.first()
        {
            return e.clone();
        }
        let mut why = self.failed;
        why.extend(self.refused.iter().map(|(p, e)| format!("{p}: {e}")));
        unavailable(why.join("; "))
    }
}

pub(crate) enum Failure {
    /// The request itself is wrong (bad inputs): no other provider will
    /// do better; the client must change it.
    Refused(NodeError),
    /// This provider failed; another may not.
    Failed(String),
    /// This provider answered with something that does not check out.
    Lied(String),
}

/// How a provider's refusal of this node's payment begins.
const PAYMENT_REFUSED: &str = "the provider refused this node's payment";

impl Failure {
    /// Whether the provider refused this node's payment.
    pub(crate) fn refused_payment(&self) -> bool {
        matches!(self, Failure::Refused(NodeError::Unavailable(m)) if m.starts_with(PAYMENT_REFUSED))
    }

    /// A provider's error answer: a bad request stays the client's (no
    /// other provider would do better); anything else is this provider
    /// failing.
    pub(crate) fn from_remote(code: &str, message: String) -> Failure {
        match code {
            "invalid_input" => Failure::Refused(NodeError::InvalidInput(message)),
            "bad_request" => Failure::Refused(NodeError::BadRequest(message)),
            // This node's payment, not the provider, is at fault.
            "payment_required" | "insufficient_funds" => {
                Failure::Refused(NodeError::Unavailable(format!(
                    "{PAYMENT_REFUSED} ({code}): {message}; this node's operator pays routed requests from its escrow (`vouch deposit AMOUNT`)"
                )))
            }
            _ => Failure::Failed(format!("{code}: {message}")),
        }
    }
}

impl Node {
    /// This node's peer id (derived from its operator key).
    pub fn peer_id(&self) -> Peer {
        peer_id_of(&self.public_key())
    }

    /// Answers a request for model `name` from anywhere on the network at
    /// the level `verify` asks for.
    pub async fn route(
        self: &Arc<Node>,
        name: &str,
        version: Option<&str>,
        inputs: TensorMap,
        nonce: Option<String>,
        verify: Verify,
    ) -> Result<Routed, NodeError> {
        let nonce = nonce.unwrap_or_default();
        let n = match verify {
            Verify::Quorum(n) => n,
            Verify::Receipt => 1,
            Verify::Proof => {
                let record = match self.find_model(name, version) {
                    Ok(record) => record,
                    Err(NodeError::NotFound(here)) if self.network.get().is_some() => {
                        return self.route_proof(name, version, inputs, nonce, here).await;
                    }
                    Err(e) => return Err(e),
                };
                let kept = self.network.get().is_some().then(|| inputs.clone());
                let proven = self.prove_record(record, inputs, nonce).await?;
                self.count_served(self.peer_id());
                if let Some(inputs) = kept {
                    let answer = &proven.answer;
                    self.after_execution(&answer.receipt, inputs, answer.outputs.clone())
                        .await;
                }
                return Ok(Routed {
                    proof: Some(proven.bundle),
                    ..self.routed_locally(proven.answer)
                });
            }
        };
        let local = match (n, self.find_model(name, version)) {
            (1, Ok(record)) => {
                let kept = self.network.get().is_some().then(|| inputs.clone());
                let answer = self.run_record(record, inputs, nonce).await?;
                self.count_served(self.peer_id());
                if let Some(inputs) = kept {
                    self.after_execution(&answer.receipt, inputs, answer.outputs.clone())
                        .await;
                }
                return Ok(self.routed_locally(answer));
            }
            (_, local) => local,
        };
        let Some(network) = self.network.get().cloned() else {
            return Err(match local {
                Ok(_) => NodeError::Unavailable(
                    "quorum needs other operators: start this node with --p2p-listen and --bootstrap"
                        .into(),
                ),
                Err(e) => e,
            });
        };
        let has_local = local.is_ok();
        let id = match local {
            Ok(r) => r.id(),
            Err(here) => self
                .resolve_remote(name, version)
                .await
                .map_err(|e| NodeError::NotFound(format!("{here}; on the network: {e}")))?,
        };
        let size = inputs.byte_len() as u64;
        if size + 4096 > vouch_p2p::rpc::MAX_FRAME_BYTES {
            return Err(NodeError::TooLarge(format!(
                "inputs of {size} bytes are too large to forward to another node (at most {} MiB); send them to a node that serves the model",
                vouch_p2p::rpc::MAX_FRAME_BYTES >> 20
            )));
        }
        let providers = self.usable_providers(&network, id).await;
        if n == 1 {
            let exec = self
                .forward(&network, id, &inputs, &nonce, providers, Ask::One)
                .await?;
            // Gossiped here too: an executor that keeps its receipts off
            // the topic does not keep them from audits.
            network.gossip_receipt(&exec.receipt).await;
            return Ok(self.routed_remotely(exec));
        }
        self.quorum(&network, (name, id), n, has_local, inputs, nonce, providers)
            .await
    }

    fn routed_locally(&self, answer: Answer) -> Routed {
        let me = self.peer_id();
        Routed {
            outputs: answer.outputs,
            receipt: answer.receipt,
            executor: me,
            route: vec![me],
            quorum: None,
            proof: None,
        }
    }

    fn routed_remotely(&self, exec: Execution) -> Routed {
        Routed {
            route: vec![self.peer_id(), exec.peer],
            executor: exec.peer,
            outputs: exec.outputs,
            receipt: exec.receipt,
            quorum: None,
            proof: exec.proof,
        }
    }

    /// A proven answer from a provider of model `name` (this node lacks
    /// it: `here` says so): the provider runs the model's circuit and
    /// proves it, and this node checks the proof, with the circuit the
    /// model's manifest names, before it answers (a provider whose proof
    /// fails is marked as having lied, and the next is asked).
    async fn route_proof(
        self: &Arc<Node>,
        name: &str,
        version: Option<&str>,
        inputs: TensorMap,
        nonce: String,
        here: String,
    ) -> Result<Routed, NodeError> {
        let network = self.network()?.clone();
        let id = self
            .resolve_remote(name, version)
            .await
            .map_err(|e| NodeError::NotFound(format!("{here}; on the network: {e}")))?;
        let providers = self.usable_providers(&network, id).await;
        let exec = self
            .forward(&network, id, &inputs, &nonce, providers, Ask::Proof)
            .await?;
        network.gossip_receipt(&exec.receipt).await;
        Ok(self.routed_remotely(exec))
    }

    pub(crate) async fn resolve_remote(
        &self,
        name: &str,
        version: Option<&str>,
    ) -> Result<Digest, NodeError> {
        let offer = self.trusted_network_model(name, version).await?.offer;
        offer
            .id
            .parse()
            .map_err(|e| NodeError::BadRequest(format!("a peer announced a bad model id: {e}")))
    }

    pub(crate) fn count_served(&self, peer: Peer) {
        if let Some(network) = self.network.get() {
            network.record(peer, |r| r.served += 1);
        }
    }

    /// Providers of `id` other than this node, best first
    /// ([`Node::rank`]), that proved they hold it ([`Node::holding`]).
    pub(crate) async fn usable_providers(&self, network: &Arc<Network>, id: Digest) -> Vec<Peer> {
        self.holding(network, id, self.rank(network, id)).await
    }

    /// Providers of `id` other than this node, best first: lower latency,
    /// price and fewer failures, bad answers and dissents rank higher;
    /// an operator above its share cap goes last.
    pub(crate) fn rank(&self, network: &Network, id: Digest) -> Vec<Peer> {
        let me = self.peer_id();
        let model = self.network_models().remove(&id.to_string());
        let providers: BTreeSet<Peer> = model.map(|m| m.providers).unwrap_or_default();
        let announced: Vec<(Peer, AnnouncementBody)> = network
            .p2p
            .peers()
            .into_iter()
            .filter_map(|(p, info)| info.announcement.map(|(b, _)| (p, b)))
            .collect();
        let prices: std::collections::BTreeMap<Peer, u64> =
            announced.iter().map(|(p, b)| (*p, b.price)).collect();
        // Peers running a release the ledger retired (or never allowed,
        // once it allows some) are not routed to.
        let retired: BTreeSet<Peer> = announced
            .iter()
            .filter(|(_, b)| !self.release_allowed(&b.software))
            .map(|(p, _)| *p)
            .collect();
        let records = self.peer_records();
        let total: u64 = records.values().map(|r| r.served).sum();
        let cap = self.config().max_share;
        let admitted: BTreeSet<Peer> = self.admitted().iter().map(peer_id_of).collect();
        // On a chain whose parameters close admission (`open_admission`
        // 0), operators without the minimum stake serve no routed request.
        let closed = self
            .chain
            .get()
            .is_some_and(|c| c.read(|l| l.params().open_admission == 0));
        // A provider not yet measured ranks as the median measured one: new
        // peer ids do not look fastest (they are free to make), and every
        // provider still gets its turn.
        let mut measured: Vec<u64> = providers
            .iter()
            .filter_map(|p| records.get(p).map(|r| r.latency_us).filter(|&l| l > 0))
            .collect();
        measured.sort_unstable();
        let neutral_us = measured.get(measured.len() / 2).copied().unwrap_or(0);
        let mut ranked: Vec<(bool, bool, f64, Peer)> = providers
            .into_iter()
            .filter(|p| *p != me && !retired.contains(p) && (!closed || admitted.contains(p)))
            .map(|p| {
                let r = records.get(&p).cloned().unwrap_or_default();
                let latency_us = if r.latency_us == 0 {
                    neutral_us
                } else {
                    r.latency_us
                };
                let latency_ms = latency_us as f64 / 1e3;
                let penalty = 1.0
                    + r.failures as f64
                    + 10.0
                        * (r.bad_data + r.disagreements + r.audits_failed + r.refused + r.withheld)
                            as f64;
                let price = prices.get(&p).copied().unwrap_or(0) as f64;
                let score = (latency_ms + 1.0) * penalty + price * 1e-3;
                let over_cap = total >= 10 && r.served as f64 > cap * total as f64;
                // Admitted operators first: others only when none can serve.
                (over_cap, !admitted.contains(&p), score, p)
            })
            .collect();
        ranked.sort_by(|a, b| {
            (a.0, a.1, a.2)
                .partial_cmp(&(b.0, b.1, b.2))
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        ranked.into_iter().map(|(_, _, _, p)| p).collect()
    }

    /// The providers of model `id` that may be quorum members, in the order
    /// the quorum takes them: distinct admitted operators (peer ids are
    /// free, and a quorum of one party's sybils checks nothing), on a
    /// ledger drawn by stake; or an error when fewer than `n` (with this
    /// node, when `has_local`) are.
    pub(crate) fn quorum_members(
        &self,
        id: Digest,
        n: usize,
        has_local: bool,
        providers: Vec<Peer>,
        name: &str,
    ) -> Result<Vec<Peer>, NodeError> {
        let admitted: BTreeSet<Peer> = self.admitted().iter().map(peer_id_of).collect();
        let (mut members, strangers): (Vec<Peer>, Vec<Peer>) =
            providers.into_iter().partition(|p| admitted.contains(p));
        // On a ledger, members are drawn by stake with this node's private
        // randomness (`vouch_types::dispute::quorum_draw`), not ranked: many
        // small operators of one party weigh no more than their stake.
        if let Some(chain) = self.chain.get() {
            let mut seed = [0u8; 32];
            getrandom::fill(&mut seed).map_err(|e| {
                NodeError::Internal(format!("no randomness for a quorum draw: {e}"))
            })?;
            let serving: BTreeSet<Peer> = members.iter().copied().collect();
            let mut weights = chain.read(|l| l.stake_weights(|_| true));
            weights.retain(|k, _| serving.contains(&peer_id_of(k)));
            let pool = vouch_types::dispute::Pool {
                weights,
                beacon: None,
            };
            members = vouch_types::dispute::quorum_draw(&seed, &pool)
                .iter()
                .map(peer_id_of)
                .collect();
        }
        let available = members.len() + usize::from(has_local);
        if available < n {
            let strangers = if strangers.is_empty() {
                String::new()
            } else {
                format!(
                    " ({} more serve it but are not admitted: admit operators with --admit KEY)",
                    strangers.len()
                )
            };
            return Err(NodeError::Unavailable(format!(
                "quorum:{n} needs {n} admitted operators serving model {id}; {available} do now{strangers}: pin it with `vouch model pin {name} --replicas {n}`"
            )));
        }
        Ok(members)
    }

    /// The determinism class this node holds answers of model `id` to:
    /// from the manifest it holds ([`vouch_engine::determinism_of`]), never
    /// from a receipt under check.
    pub(crate) fn class_of(&self, id: &Digest) -> Result<Determinism, NodeError> {
        let record = self
            .store()
            .model_by_id(id)?
            .ok_or_else(|| NodeError::NotFound(format!("model {id} is not on this node")))?;
        let m = &record.signed.manifest;
        Ok(vouch_engine::determinism_of(m.format, &m.schema))
    }

    /// [`Node::class_of`] for a model this node may not hold: the manifest
    /// is fetched from a provider and checked against the id.
    async fn class_for_quorum(
        &self,
        network: &Network,
        id: Digest,
        providers: &[Peer],
    ) -> Result<Determinism, NodeError> {
        if let Ok(class) = self.class_of(&id) {
            return Ok(class);
        }
        let signed = crate::providers::fetch_manifest(network, id, providers).await?;
        Ok(vouch_engine::determinism_of(
            signed.manifest.format,
            &signed.manifest.schema,
        ))
    }

    /// How long to wait for `peer` before hedging with another provider.
    fn hedge_after(&self, peer: Peer) -> Duration {
        let latency_us = self.peer_records().get(&peer).map_or(0, |r| r.latency_us);
        if latency_us == 0 {
            return Duration::from_millis(500);
        }
        Duration::from_micros(latency_us * 3)
            .clamp(Duration::from_millis(20), Duration::from_secs(5))
    }

    /// Runs the request on the best provider, failing over to the next
    /// when one fails and hedging when one is slow (not a proof).
    async fn forward(
        self: &Arc<Node>,
        network: &Arc<Network>,
        id: Digest,
        inputs: &TensorMap,
        nonce: &str,
        providers: Vec<Peer>,
        ask: Ask,
    ) -> Result<Execution, NodeError> {
        let encoded = Arc::new(inputs.encode());
        let mut queue = providers.into_iter();
        let mut pending = FuturesUnordered::new();
        let mut tried = Tried::default();
        let launch = |peer: Peer| {
            let (network, encoded) = (network.clone(), encoded.clone());
            async move {
                let result = self
                    .execute_paid(&network, peer, id, encoded, (inputs, nonce), ask)
                    .await;
                (peer, result)
            }
        };
        let Some(first) = queue.next() else {
            return Err(NodeError::Unavailable(format!(
                "no peer serves model {id} now; pin it with `vouch model pin`"
            )));
        };
        let mut last = first;
        pending.push(launch(first));
        loop {
            let hedge = tokio::time::sleep(self.hedge_after(last));
            tokio::select! {
                Some((peer, result)) = pending.next() => match result {
                    Ok(exec) => {
                        self.count_served(peer);
                        tried.served(network);
                        return Ok(exec);
                    }
                    Err(failure) => {
                        tried.note(peer, failure);
                        if pending.is_empty() {
                            match queue.next() {
                                Some(next) => {
                                    last = next;
                                    pending.push(launch(next));
                                }
                                None => {
                                    return Err(tried.exhausted(|why| {
                                        NodeError::Unavailable(format!(
                                            "every provider of {id} failed: {why}"
                                        ))
                                    }));
                                }
                            }
                        }
                    }
                },
                // A proof takes far longer than the inferences latencies
                // are measured on: hedging it would prove twice.
                () = hedge, if ask != Ask::Proof && pending.len() == 1 && queue.len() > 0 => {
                    if let Some(next) = queue.next() {
                        tracing::debug!(slow = %last, hedge = %next, "hedging a slow request");
                        network.hedges.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        last = next;
                        pending.push(launch(next));
                    }
                }
            }
        }
    }

    /// Runs the request on `n` distinct operators (this node first when it
    /// serves the model) and answers when a strict majority agree.
    #[allow(clippy::too_many_arguments)]
    async fn quorum(
        self: &Arc<Node>,
        network: &Arc<Network>,
        (name, id): (&str, Digest),
        n: usize,
        has_local: bool,
        inputs: TensorMap,
        nonce: String,
        providers: Vec<Peer>,
    ) -> Result<Routed, NodeError> {
        let providers = self.quorum_members(id, n, has_local, providers, name)?;
        let me = self.peer_id();
        let class = self.class_for_quorum(network, id, &providers).await?;
        let encoded = Arc::new(inputs.encode());
        let spare = providers.into_iter();
        let runs = FuturesUnordered::new();
        let remote = |peer: Peer| -> MemberRun<Execution> {
            let (node, network, encoded, inputs, nonce) = (
                self.clone(),
                network.clone(),
                encoded.clone(),
                inputs.clone(),
                nonce.clone(),
            );
            Box::pin(async move {
                let result = node
                    .execute_paid(&network, peer, id, encoded, (&inputs, &nonce), Ask::Quorum)
                    .await;
                (peer, result)
            })
        };
        if has_local {
            let (node, inputs, nonce) = (self.clone(), inputs.clone(), nonce.clone());
            runs.push(Box::pin(async move {
                // Checked by the quorum itself: not offered to audits.
                let result = match node.infer_id(&id, inputs, nonce).await {
                    Ok(a) => Ok(Execution {
                        outputs: a.outputs,
                        receipt: a.receipt,
                        peer: me,
                        proof: None,
                    }),
                    Err(e) => Err(Failure::Refused(e)),
                };
                (me, result)
            }) as MemberRun<Execution>);
        }
        let execs: Vec<Execution> = gather_quorum(network, runs, spare, remote, (n, me), &id)
            .await?
            .into_iter()
            .map(|(_, exec)| exec)
            .collect();
        for e in &execs {
            self.count_served(e.peer);
        }
        let answers: Vec<(&TensorMap, Determinism)> = execs
            .iter()
            .map(|e| (&e.outputs, e.receipt.body.determinism))
            .collect();
        let groups = checked_groups(class, &answers);
        // A node that ran it itself trusts its own answer: the group it is
        // in is the candidate, however many remote peers agree on another.
        let own = execs.iter().position(|e| e.peer == me);
        let majority = own
            .and_then(|i| groups.iter().find(|g| g.contains(&i)))
            .unwrap_or(&groups[0])
            .clone();
        let receipts: Vec<Receipt> = execs.iter().map(|e| e.receipt.clone()).collect();
        if majority.len() * 2 <= n {
            for (i, e) in execs.iter().enumerate() {
                // This node's own answer is not in doubt here; the others
                // outside its group are.
                if own.is_none() || !majority.contains(&i) {
                    network.record(e.peer, |r| r.disagreements += 1);
                }
            }
            self.store_evidence(id, &receipts, &majority);
            let sizes: Vec<String> = groups.iter().map(|g| g.len().to_string()).collect();
            let own_note = if own.is_some() && groups[0].len() > majority.len() {
                "; this node's own answer is not the largest group's, and it does not take other operators' word over its own run"
            } else {
                ""
            };
            return Err(NodeError::NoQuorum(format!(
                "quorum:{n} found no majority for model {id}: the answers split {}{own_note}; evidence recorded",
                sizes.join("/")
            )));
        }
        let dissent: Vec<Execution> = (0..execs.len())
            .filter(|i| !majority.contains(i))
            .map(|i| execs[i].clone())
            .collect();
        if !dissent.is_empty() {
            for d in &dissent {
                tracing::warn!(peer = %d.peer, receipt = %d.receipt.id, "quorum dissent");
                network.record(d.peer, |r| r.disagreements += 1);
            }
            self.store_evidence(id, &receipts, &majority);
        }
        // The answer is this node's own when it is in the majority.
        let pick = majority
            .iter()
            .copied()
            .find(|&i| execs[i].peer == me)
            .unwrap_or(majority[0]);
        let chosen = execs[pick].clone();
        let mut route = vec![me];
        route.extend(execs.iter().map(|e| e.peer).filter(|p| *p != me));
        Ok(Routed {
            outputs: chosen.outputs,
            receipt: chosen.receipt,
            executor: chosen.peer,
            route,
            quorum: Some(QuorumReport {
                wanted: n,
                agreed: majority.len(),
                receipts,
                dissent,
            }),
            proof: None,
        })
    }

    /// Records a disagreement: every receipt, and which ones agreed.
    fn store_evidence(&self, model: Digest, receipts: &[Receipt], majority: &[usize]) {
        self.keep_evidence(serde_json::json!({
            "kind": "quorum_disagreement",
            "model": model,
            "receipts": receipts,
            "majority": majority,
        }));
    }

    /// Stores an evidence record (quorum disagreements, disputes, lost
    /// audits), stamped with the time; the newest `--max-evidence` are kept.
    pub(crate) fn keep_evidence(&self, mut evidence: serde_json::Value) {
        evidence["recorded_ms"] = vouch_service::service::now_ms().into();
        let bytes = evidence.to_string().into_bytes();
        if let Err(e) = self
            .store()
            .put_evidence(&bytes, self.config().max_evidence)
        {
            tracing::error!(error = %e, kind = %evidence["kind"], "storing evidence failed");
        }
    }

    /// [`execute_on`], paying `peer` first where its operator charges
    /// (`Node::pay_peer`), and taking the payment back when the request
    /// fails.
    async fn execute_paid(
        self: &Arc<Node>,
        network: &Network,
        peer: Peer,
        model: Digest,
        encoded: Arc<Vec<u8>>,
        (inputs, nonce): (&TensorMap, &str),
        ask: Ask,
    ) -> Result<Execution, Failure> {
        let payment = self
            .pay_peer(peer)
            .await
            .map_err(|e| Failure::Failed(format!("paying {peer}: {e}")))?;
        let voucher = payment.as_ref().map(|p| p.header.clone());
        let mut result = execute_on(
            network,
            peer,
            model,
            encoded,
            (inputs, nonce),
            (ask, voucher),
        )
        .await;
        if let Ok(exec) = &result
            && let Err(failure) = self.check_routed_proof(network, exec, inputs).await
        {
            let lied = matches!(failure, Failure::Lied(_));
            network.record(peer, |r| {
                if lied {
                    r.bad_data += 1
                } else {
                    r.failures += 1
                }
            });
            result = Err(failure);
        }
        if let (Err(f), Some(p)) = (&result, &payment) {
            self.unpay(p, f.refused_payment());
        }
        result
    }

    /// Answers a peer's [`Request::Infer`], charging the peer's `voucher`
    /// where this node charges (and giving it back when the run fails). An
    /// answer for a quorum is cross-checked by the asker, so it is not
    /// offered to audits.
    pub(crate) async fn answer_infer(
        &self,
        model: Digest,
        nonce: String,
        ask: Ask,
        voucher: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        let inputs = TensorMap::decode(body).map_err(|e| {
            NodeError::BadRequest(format!("inputs are not a canonical tensor map: {e}"))
        })?;
        let kept = (ask != Ask::Quorum).then(|| inputs.clone());
        let charge = self.charge(voucher)?;
        let result = match ask {
            Ask::Proof => self
                .prove_id(&model, inputs, nonce)
                .await
                .map(|p| (p.answer, Some(p.bundle))),
            Ask::One | Ask::Quorum => self
                .infer_id(&model, inputs, nonce)
                .await
                .map(|a| (a, None)),
        };
        let (answer, bundle) = match result {
            Ok(answered) => answered,
            Err(e) => {
                if let Some(c) = charge {
                    self.refund(c);
                }
                return Err(e);
            }
        };
        self.count_served(self.peer_id());
        if let Some(inputs) = kept {
            self.after_execution(&answer.receipt, inputs, answer.outputs.clone())
                .await;
        }
        Ok(encode_answer(
            &answer.receipt,
            &answer.outputs,
            bundle.as_ref(),
        ))
    }

    /// Checks the proof a provider sent with a proven answer (nothing to
    /// check when none was asked for). The bundle's manifest must be the
    /// model asked for (so a provider cannot name a circuit of its own
    /// choosing, or size); the circuit file it names is fetched from the
    /// provider, or the model's other providers, when this node lacks it
    /// (chunk by chunk, each checked against the digest), and the
    /// circuit's verifying key is derived once and kept.
    async fn check_routed_proof(
        self: &Arc<Node>,
        network: &Network,
        exec: &Execution,
        inputs: &TensorMap,
    ) -> Result<(), Failure> {
        let Some(bundle) = exec.proof.clone() else {
            return Ok(());
        };
        let lied = |e: String| Failure::Lied(format!("its proof: {e}"));
        let manifest = vouch_types::Manifest::decode(&bundle.manifest)
            .map_err(|e| lied(format!("the manifest does not decode: {e}")))?;
        if manifest.id() != exec.receipt.body.model {
            return Err(lied(format!(
                "its manifest is model {}, not the model asked for",
                manifest.id()
            )));
        }
        let file = manifest
            .file(vouch_proof::bundle::CIRCUIT_ROLE)
            .filter(|f| f.digest == bundle.circuit)
            .ok_or_else(|| lied("the manifest names no such circuit".into()))?
            .clone();
        if file.size > MAX_CIRCUIT_BYTES {
            return Err(lied(format!(
                "a circuit of {} bytes is beyond the {} MiB this node checks",
                file.size,
                MAX_CIRCUIT_BYTES >> 20
            )));
        }
        // The answering provider first, then the model's other providers:
        // any holder of the digest serves.
        let me = self.peer_id();
        let mut holders = vec![exec.peer];
        holders.extend(
            self.network_models()
                .remove(&exec.receipt.body.model.to_string())
                .map(|m| m.providers)
                .unwrap_or_default()
                .into_iter()
                .filter(|p| *p != exec.peer && *p != me),
        );
        let circuit = self
            .fetch_blob(network, file.digest, file.size, &holders)
            .await
            .map_err(|e| Failure::Failed(format!("fetching the circuit of its proof: {e}")))?;
        let vk = self
            .verifying_key(&file.digest, circuit.clone())
            .await
            .map_err(|e| lied(e.to_string()))?;
        let (receipt, outputs, inputs) =
            (exec.receipt.clone(), exec.outputs.clone(), inputs.clone());
        // What binds the answer to its signer, then what the signer alone
        // answers for: a failure there is evidence for the ledger.
        let failed = self
            .compute(move || {
                let bound =
                    vouch_proof::bundle::bind(&receipt, &bundle, &circuit, &inputs, &outputs)
                        .map_err(NodeError::from)?;
                Ok(vouch_proof::bundle::answer_checks(
                    &bound.circuit,
                    &bundle,
                    &inputs,
                    &outputs,
                    Some(&vk),
                )
                .err()
                .map(|e| {
                    // Evidence only where the ledger would judge it.
                    let judged =
                        vouch_proof::dispute::judgeable(&receipt.body.engine, &bound.circuit);
                    let dispute = vouch_proof::ProofDispute::new(
                        receipt,
                        bundle,
                        circuit.to_vec(),
                        &inputs,
                        &outputs,
                    );
                    (e, judged.map(|()| dispute))
                }))
            })
            .await
            .map_err(|e| lied(e.to_string()))?;
        let Some((why, dispute)) = failed else {
            return Ok(());
        };
        let dispute = match dispute {
            Ok(d) => d,
            Err(unjudged) => {
                tracing::warn!(
                    provider = %exec.peer,
                    error = %why,
                    "a failing proof, not filed on the ledger: {unjudged}"
                );
                return Err(lied(why.to_string()));
            }
        };
        let node = self.clone();
        tokio::spawn(async move {
            let receipt = dispute.receipt_id();
            let record = serde_json::to_vec(&dispute).expect("a proof dispute encodes");
            node.dispute_on_ledger(&receipt, record).await;
        });
        Err(lied(why.to_string()))
    }
}

/// The largest circuit file a gateway fetches to check a routed proof.
const MAX_CIRCUIT_BYTES: u64 = 256 << 20;

/// An answer on the wire: `u32 LE receipt length || receipt || outputs`,
/// with a proven answer's bundle (`u32 LE length || JSON`) before the
/// outputs.
fn encode_answer(
    receipt: &Receipt,
    outputs: &TensorMap,
    bundle: Option<&vouch_proof::Bundle>,
) -> Vec<u8> {
    let receipt = receipt.to_bytes();
    let bundle = bundle.map(|b| serde_json::to_vec(b).expect("a bundle encodes"));
    let mut out = Vec::with_capacity(
        8 + receipt.len() + bundle.as_ref().map_or(0, Vec::len) + outputs.byte_len() + 64,
    );
    out.put_u32(receipt.len() as u32);
    out.put(&receipt);
    if let Some(bundle) = bundle {
        out.put_u32(bundle.len() as u32);
        out.put(&bundle[..]);
    }
    outputs.encode_to(&mut out);
    out
}

type Decoded = (Receipt, Option<vouch_proof::Bundle>, TensorMap);

fn decode_answer(body: &[u8], proof: bool) -> Result<Decoded, String> {
    let mut r = Reader::new(body);
    let len = r.u32().map_err(|e| e.to_string())? as usize;
    let receipt = Receipt::from_bytes(r.take(len).map_err(|e| e.to_string())?)
        .map_err(|e| format!("receipt: {e}"))?;
    let bundle = if proof {
        let len = r.u32().map_err(|e| e.to_string())? as usize;
        let bytes = r.take(len).map_err(|e| e.to_string())?;
        Some(serde_json::from_slice(bytes).map_err(|e| format!("the proof: {e}"))?)
    } else {
        None
    };
    let outputs = TensorMap::decode(r.take(r.remaining()).map_err(|e| e.to_string())?)
        .map_err(|e| format!("outputs: {e}"))?;
    Ok((receipt, bundle, outputs))
}

/// Sends the request to `peer` and checks what comes back.
async fn execute_on(
    network: &Network,
    peer: Peer,
    model: Digest,
    encoded: Arc<Vec<u8>>,
    (inputs, nonce): (&TensorMap, &str),
    (ask, voucher): (Ask, Option<String>),
) -> Result<Execution, Failure> {
    let started = Instant::now();
    let frame = Frame {
        head: Request::Infer {
            model,
            nonce: nonce.to_string(),
            quorum: ask == Ask::Quorum,
            proof: ask == Ask::Proof,
            voucher,
        },
        body: encoded.as_ref().clone(),
    };
    let result = match network.p2p.request(peer, frame).await {
        Ok(Frame {
            head: Response::Ok,
            body,
        }) => check_answer(&body, peer, model, inputs, nonce, ask == Ask::Proof),
        Ok(Frame {
            head: Response::Error { code, message },
            ..
        }) => Err(Failure::from_remote(&code, message)),
        Ok(_) => Err(Failure::Failed(
            "an answer this node does not understand".into(),
        )),
        Err(e) => Err(Failure::Failed(e.to_string())),
    };
    let elapsed = started.elapsed().as_micros() as u64;
    network.record(peer, |r| match &result {
        // Latencies rank providers for inferences: a proof's time is not one.
        Ok(_) if ask == Ask::Proof => {}
        Ok(_) => r.observe_latency(elapsed),
        Err(Failure::Lied(_)) => r.bad_data += 1,
        Err(Failure::Failed(_)) => r.failures += 1,
        Err(Failure::Refused(_)) => {}
    });
    result
}

/// Checks a provider's answer: a valid receipt by the provider's key, signed
/// just now, for this model, these inputs, this nonce and the outputs sent
/// with it.
fn check_answer(
    body: &[u8],
    peer: Peer,
    model: Digest,
    inputs: &TensorMap,
    nonce: &str,
    proof: bool,
) -> Result<Execution, Failure> {
    let (receipt, proof, outputs) = decode_answer(body, proof).map_err(Failure::Lied)?;
    let lied = |e: String| Failure::Lied(e);
    receipt.verify().map_err(|e| lied(e.to_string()))?;
    receipt
        .check_fresh(vouch_service::service::now_ms())
        .map_err(|e| lied(e.to_string()))?;
    if peer_id_of(&receipt.body.node) != peer {
        return Err(lied(format!(
            "the receipt is signed by {}, not by the peer that answered",
            receipt.body.node
        )));
    }
    if receipt.body.model != model {
        return Err(lied(format!(
            "the receipt names model {}, not {model}",
            receipt.body.model
        )));
    }
    if receipt.body.nonce != nonce {
        return Err(lied("the receipt names another nonce".into()));
    }
    receipt
        .verify_inputs(inputs)
        .map_err(|e| lied(e.to_string()))?;
    receipt
        .verify_outputs(&outputs)
        .map_err(|e| lied(e.to_string()))?;
    Ok(Execution {
        outputs,
        receipt,
        peer,
        proof,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verify_levels_parse() {
        assert_eq!("receipt".parse::<Verify>().unwrap(), Verify::Receipt);
        assert_eq!("audit".parse::<Verify>().unwrap(), Verify::Receipt);
        assert_eq!("quorum:3".parse::<Verify>().unwrap(), Verify::Quorum(3));
        assert_eq!("proof".parse::<Verify>().unwrap(), Verify::Proof);
        for bad in ["quorum:0", "quorum:17", "quorum:x", "quorum", "proofs", ""] {
            let err = bad.parse::<Verify>().unwrap_err().to_string();
            assert!(err.contains("quorum:N"), "{bad}: {err}");
        }
    }
}
