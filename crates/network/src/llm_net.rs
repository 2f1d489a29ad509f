//! Language models on the network: routing generations (their audits are
//! in `llm_audit`).
//!
//! A node asked for a model it does not serve starts the
//! generation on a provider ([`Request::Generate`]), ranked like any other
//! request, and reads its events in turns ([`Request::GenerateEvents`], each
//! answered as soon as at least one event is ready). It checks them as they
//! come: every checkpoint must be the provider's signature over the chain
//! this node computes from the tokens it relayed, and the receipt at the end
//! must sign exactly the transcript relayed, for this model and nonce. The
//! client sees the same stream as from a local model; a provider that lies
//! or vanishes ends the stream with an error and is counted against its
//! record. A provider that cannot start the generation, or fails or
//! vanishes before its first token, is replaced by the next one: the
//! gateway reads the first events before it answers the client.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use vouch_engine::llm::ChatMessage;
use vouch_p2p::{Frame, Peer, Request, Response, peer_id_of};
use vouch_types::llm::{
    Chain, Checkpoint, Finish, LlmRequest, Mode, Sampling, TokenLogprobs, Transcript,
};
use vouch_types::{Digest, PublicKey, Receipt};

use crate::node::Node;
use crate::route::{Failure, MemberRun, Tried, gather_quorum};
use crate::state::{Network, ask};
use vouch_service::error::NodeError;
use vouch_service::llm::{Finished, Generate, LlmEvent, Prompt, Started};

/// How long a provider holds a [`Request::GenerateEvents`] open waiting for
/// the next event before it answers an empty list.
const POLL_WAIT: Duration = Duration::from_secs(10);

/// Polls in a row that bring no event before a provider counts as stalled
/// (a minute at [`POLL_WAIT`]).
const STALLED_POLLS: u32 = 6;

/// A generation request between nodes: [`Generate`] without the model name
/// (the model travels as its id).
#[derive(Serialize, Deserialize)]
struct WireGenerate {
    #[serde(default)]
    messages: Option<Vec<ChatMessage>>,
    #[serde(default)]
    text: Option<String>,
    max_tokens: Option<u32>,
    stop: Vec<String>,
    sampling: Sampling,
    nonce: String,
    /// The asker cross-checks this answer in a quorum, so the provider
    /// need not offer it to sampled audits.
    #[serde(default)]
    quorum: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    constraint: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tools: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    logprobs: Option<u8>,
}

/// A provider's answer to [`Request::Generate`].
#[derive(Serialize, Deserialize)]
struct WireStart {
    /// Where to read the events.
    session: String,
    /// The canonical request the receipt will sign.
    request: LlmRequest,
    /// The model id the receipt will name.
    model_id: Digest,
    /// The provider's operator key, which signs checkpoints and the receipt.
    node: PublicKey,
    prompt_tokens: usize,
}

/// One event of a generation between nodes.
#[derive(Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum WireEvent {
    Token {
        token: u32,
        text: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        logprobs: Option<TokenLogprobs>,
    },
    Checkpoint {
        checkpoint: Checkpoint,
    },
    Done {
        receipt: Box<Receipt>,
        finish: Finish,
    },
    Failed {
        code: String,
        message: String,
    },
}

fn wire_event(ev: LlmEvent) -> (WireEvent, bool) {
    match ev {
        LlmEvent::Token {
            token,
            text,
            logprobs,
        } => (
            WireEvent::Token {
                token,
                text,
                logprobs,
            },
            false,
        ),
        LlmEvent::Checkpoint(checkpoint) => (WireEvent::Checkpoint { checkpoint }, false),
        LlmEvent::Done(f) => (
            WireEvent::Done {
                receipt: Box::new(f.receipt),
                finish: f.finish,
            },
            true,
        ),
        LlmEvent::Failed(e) => (
            WireEvent::Failed {
                code: e.code().into(),
                message: e.to_string(),
            },
            true,
        ),
    }
}

/// A provider's error event as this node's error: a bad request stays
/// the client's; anything else makes the provider unavailable.
fn provider_error(peer: Peer, code: &str, message: String) -> NodeError {
    match Failure::from_remote(code, message) {
        Failure::Refused(e) => e,
        Failure::Failed(why) | Failure::Lied(why) => {
            NodeError::Unavailable(format!("provider {peer}: {why}"))
        }
    }
}

pub(crate) fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, NodeError> {
    serde_json::to_vec(value).map_err(|e| NodeError::Internal(e.to_string()))
}

/// A generated answer a quorum of operators agreed on.
#[derive(Debug)]
pub struct LlmQuorum {
    /// The majority's answer (this node's own when it is in the majority).
    pub chosen: Finished,
    /// Who generated `chosen`.
    pub executor: Peer,
    /// This node, then every other member.
    pub route: Vec<Peer>,
    /// Operators asked for.
    pub wanted: usize,
    /// Members that agreed: the same tokens as the chosen answer, or an
    /// answer that passed this node's teacher-forced check.
    pub agreed: usize,
    /// Every member's receipt.
    pub receipts: Vec<Receipt>,
    /// Members that did not agree.
    pub dissent: Vec<Peer>,
}

/// The wire form of a generation request (`quorum`: for a quorum member).
fn wire_generate(g: &Generate, quorum: bool) -> Result<Vec<u8>, NodeError> {
    let (messages, text) = match &g.prompt {
        Prompt::Chat(m) => (Some(m.clone()), None),
        Prompt::Text(t) => (None, Some(t.clone())),
    };
    json(&WireGenerate {
        messages,
        text,
        max_tokens: g.max_tokens,
        stop: g.stop.clone(),
        sampling: g.sampling.clone(),
        nonce: g.nonce.clone(),
        quorum,
        constraint: g.constraint.clone(),
        tools: g.tools.clone(),
        logprobs: g.logprobs,
    })
}

/// Checks a provider's start against what was asked.
fn check_start(start: &WireStart, g: &Generate, model: Digest, peer: Peer) -> Result<(), String> {
    let r = &start.request;
    if peer_id_of(&start.node) != peer {
        return Err(format!("it names operator {}, not its own key", start.node));
    }
    if start.model_id != model {
        return Err(format!("it runs model {}, not {model}", start.model_id));
    }
    let mode_ok = match &g.prompt {
        // The client's messages, exactly: a provider that rewrites them
        // (a system message, an instruction) is caught here; one that signs
        // these messages over another prompt is caught by any auditor.
        Prompt::Chat(m) => r.mode == Mode::Chat && r.messages == *m,
        Prompt::Text(t) => r.mode == Mode::Completion && &r.prompt == t,
    };
    if !mode_ok
        || r.sampling != g.sampling
        || r.stop != g.stop
        || r.constraint != g.constraint
        || r.tools != g.tools
        || r.logprobs != g.logprobs
        || g.max_tokens.is_some_and(|m| m != r.max_tokens)
    {
        return Err("the request it will sign is not the one asked".into());
    }
    Ok(())
}

impl Node {
    /// Starts a generation here when this node serves the model (or has it
    /// as an external engine), otherwise on the best provider on the
    /// network.
    pub async fn route_generate(self: &Arc<Self>, g: Generate) -> Result<Started, NodeError> {
        let external = self.config().externals.iter().any(|e| e.name == g.model);
        let (here, network) = match (self.find_model(&g.model, None), self.network.get()) {
            (Err(here), Some(network)) if !external => (here, network.clone()),
            _ => {
                let mut started = self.service().generate(g).await?;
                started.route = vec![self.peer_id().to_string()];
                return Ok(started);
            }
        };
        g.check()?;
        let id = self
            .resolve_remote(&g.model, None)
            .await
            .map_err(|e| NodeError::NotFound(format!("{here}; on the network: {e}")))?;
        let wire = wire_generate(&g, false)?;
        let providers = self.usable_providers(&network, id).await;
        if providers.is_empty() {
            return Err(NodeError::Unavailable(format!(
                "no peer serves model {id} now; pin it with `vouch model pin`"
            )));
        }
        let mut tried = Tried::default();
        for peer in providers {
            match self.start_on(&network, peer, id, (&g, &wire), true).await {
                Ok(started) => {
                    tried.served(&network);
                    return Ok(started);
                }
                Err(failure) => tried.note(peer, failure),
            }
        }
        Err(tried.exhausted(|why| {
            NodeError::Unavailable(format!(
                "no provider of {id} could start the generation: {why}"
            ))
        }))
    }
    /// Starts generation `g` (encoded as `wire`) of model `id` on `peer`
    /// and reads its first events, checking what comes back; failures are
    /// counted in the peer's record.
    /// `gossip`: gossip the receipt once the answer checks (not for a
    /// quorum member's, which the quorum cross-checks).
    async fn start_on(
        self: &Arc<Self>,
        network: &Arc<Network>,
        peer: Peer,
        id: Digest,
        (g, wire): (&Generate, &[u8]),
        gossip: bool,
    ) -> Result<Started, Failure> {
        // Failures count against the provider; a refusal does not.
        let counted = |f: Failure| {
            match &f {
                Failure::Failed(_) => network.record(peer, |r| r.failures += 1),
                Failure::Lied(_) => network.record(peer, |r| r.bad_data += 1),
                Failure::Refused(_) => {}
            }
            f
        };
        let payment = self
            .pay_peer(peer)
            .await
            .map_err(|e| Failure::Failed(format!("paying {peer}: {e}")))?;
        let unpay = |f: Failure| {
            if let Some(p) = &payment {
                self.unpay(p, f.refused_payment());
            }
            f
        };
        let asked = Instant::now();
        let frame = Frame {
            head: Request::Generate {
                model: id,
                voucher: payment.as_ref().map(|p| p.header.clone()),
            },
            body: wire.to_vec(),
        };
        let start = match network.p2p.request(peer, frame).await {
            Ok(Frame {
                head: Response::Ok,
                body,
            }) => serde_json::from_slice::<WireStart>(&body)
                .map_err(|e| format!("an answer this node cannot read: {e}"))
                .and_then(|s| check_start(&s, g, id, peer).map(|()| s)),
            Ok(Frame {
                head: Response::Error { code, message },
                ..
            }) => return Err(unpay(counted(Failure::from_remote(&code, message)))),
            Ok(_) => Err("an answer this node does not understand".into()),
            Err(e) => return Err(unpay(counted(Failure::Failed(e.to_string())))),
        };
        let start = start.map_err(|why| {
            tracing::warn!(%peer, %why, "provider started a generation that does not check out");
            counted(Failure::Lied(why))
        })?;
        let elapsed = asked.elapsed().as_micros() as u64;
        network.record(peer, |r| r.observe_latency(elapsed));
        // The first events (at least the first token) arrive before the
        // client sees anything, so a provider that fails or vanishes until
        // then is replaced.
        let first = poll(network, peer, &start.session).await.map_err(|e| {
            tracing::warn!(%peer, error = %e, "provider failed before the first token");
            counted(Failure::Failed(e.to_string()))
        })?;
        if let Some(WireEvent::Failed { code, message }) = first.first() {
            return Err(counted(Failure::from_remote(code, message.clone())));
        }
        Ok(self.relay(
            network.clone(),
            peer,
            start,
            first,
            (g.nonce.clone(), gossip),
        ))
    }
    /// Runs generation `g` on `n` distinct operators (this node first when
    /// it serves the model) and answers when a strict majority generated
    /// the same tokens. An answer outside that group which passes this
    /// node's own teacher-forced check (possible only when it serves the
    /// model) is an honest variant, such as a near-tie broken the other way
    /// on other hardware, and counts as agreeing; the rest is dissent,
    /// counted against its operators and stored as evidence.
    pub async fn quorum_generate(
        self: &Arc<Self>,
        g: Generate,
        n: usize,
    ) -> Result<LlmQuorum, NodeError> {
        g.check()?;
        if self.config().externals.iter().any(|e| e.name == g.model) {
            return Err(NodeError::BadRequest(format!(
                "model `{}` is served by an external engine, which no other operator can run: ask without `verify`",
                g.model
            )));
        }
        let network = self.network.get().cloned().ok_or_else(|| {
            NodeError::Unavailable(
                "quorum needs other operators: start this node with --p2p-listen and --bootstrap"
                    .into(),
            )
        })?;
        let local = self.find_model(&g.model, None);
        let id = match &local {
            Ok(r) => r.id(),
            Err(here) => self
                .resolve_remote(&g.model, None)
                .await
                .map_err(|e| NodeError::NotFound(format!("{here}; on the network: {e}")))?,
        };
        let local = local.ok();
        let providers = self.usable_providers(&network, id).await;
        let providers = self.quorum_members(id, n, local.is_some(), providers, &g.model)?;
        let wire = wire_generate(&g, true)?;
        let me = self.peer_id();
        let remote = |peer: Peer| -> MemberRun<Finished> {
            let (node, network, g, wire) = (self.clone(), network.clone(), g.clone(), wire.clone());
            Box::pin(async move {
                let result = match node.start_on(&network, peer, id, (&g, &wire), false).await {
                    Ok(s) => s.finish().await.map_err(|e| Failure::Failed(e.to_string())),
                    Err(e) => Err(e),
                };
                (peer, result)
            })
        };
        let runs = futures_util::stream::FuturesUnordered::new();
        let has_local = local.is_some();
        if let Some(record) = local {
            let (node, g) = (self.clone(), g.clone());
            runs.push(Box::pin(async move {
                // Cross-checked by the quorum itself: not offered to audits.
                let result = match node.service().generate_with(record, g, false).await {
                    Ok(s) => s.finish().await,
                    Err(e) => Err(e),
                };
                (me, result.map_err(Failure::Refused))
            }) as MemberRun<Finished>);
        }
        let mut members =
            gather_quorum(&network, runs, providers.into_iter(), remote, (n, me), &id).await?;
        // Groups of identical answers, largest first; this node's first
        // among groups of equal size.
        members.sort_by_key(|(p, _)| *p != me);
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for (i, (_, f)) in members.iter().enumerate() {
            let same = |grp: &&mut Vec<usize>| {
                let other = &members[grp[0]].1;
                other.tokens == f.tokens && other.finish == f.finish
            };
            match groups.iter_mut().find(same) {
                Some(grp) => grp.push(i),
                None => groups.push(vec![i]),
            }
        }
        groups.sort_by_key(|grp| std::cmp::Reverse(grp.len()));
        // A node that generated it itself (member 0) trusts its own answer:
        // the candidate is its group, however many remote peers agree on
        // another; the rest agree when its own check passes them.
        let candidate = if has_local {
            groups.iter().position(|g| g.contains(&0)).unwrap_or(0)
        } else {
            0
        };
        let mut agreed = groups[candidate].clone();
        if has_local {
            let others: Vec<usize> = groups
                .iter()
                .enumerate()
                .filter(|(k, _)| *k != candidate)
                .flat_map(|(_, g)| g.iter().copied())
                .collect();
            for i in others {
                let f = &members[i].1;
                if self
                    .check_llm(&f.receipt, &f.transcript())
                    .await
                    .is_ok_and(|c| c.ok)
                {
                    agreed.push(i);
                }
            }
        }
        let receipts: Vec<Receipt> = members.iter().map(|(_, f)| f.receipt.clone()).collect();
        // Evidence of a disagreement: every receipt with its transcript,
        // so anyone holding the model can re-check each answer.
        let evidence = || {
            let transcripts: Vec<Transcript> =
                members.iter().map(|(_, f)| f.transcript()).collect();
            serde_json::json!({
                "kind": "quorum_disagreement",
                "model": id,
                "receipts": receipts,
                "transcripts": transcripts,
                "majority": agreed,
            })
        };
        let dissent: Vec<Peer> = (0..members.len())
            .filter(|i| !agreed.contains(i))
            .map(|i| members[i].0)
            .collect();
        if agreed.len() * 2 <= n {
            for (peer, _) in &members {
                network.record(*peer, |r| r.disagreements += 1);
            }
            self.keep_evidence(evidence());
            let sizes: Vec<String> = groups.iter().map(|g| g.len().to_string()).collect();
            return Err(NodeError::NoQuorum(format!(
                "quorum:{n} found no majority for model {id}: the answers split {}; evidence recorded",
                sizes.join("/")
            )));
        }
        if !dissent.is_empty() {
            for peer in &dissent {
                tracing::warn!(%peer, "quorum dissent on a generated answer");
                network.record(*peer, |r| r.disagreements += 1);
            }
            self.keep_evidence(evidence());
        }
        for (peer, _) in &members {
            self.count_served(*peer);
        }
        let pick = groups[candidate][0];
        let mut route = vec![me];
        route.extend(members.iter().map(|(p, _)| *p).filter(|p| *p != me));
        let (executor, chosen) = members.swap_remove(pick);
        Ok(LlmQuorum {
            chosen,
            executor,
            route,
            wanted: n,
            agreed: agreed.len(),
            receipts,
            dissent,
        })
    }
    /// Reads a generation `peer` runs and checks each event before passing
    /// it on.
    fn relay(
        self: &Arc<Self>,
        network: Arc<Network>,
        peer: Peer,
        start: WireStart,
        first: Vec<WireEvent>,
        (nonce, gossip): (String, bool),
    ) -> Started {
        let (tx, events) = mpsc::unbounded_channel();
        let WireStart {
            session,
            request,
            model_id,
            node: key,
            prompt_tokens,
        } = start;
        let node = self.clone();
        let req = request.clone();
        tokio::spawn(async move {
            let digest = req.digest();
            let mut chain = Chain::start(&digest);
            let (mut tokens, mut texts, mut logprobs) = (Vec::new(), Vec::new(), Vec::new());
            let lied = |why: String| {
                tracing::warn!(%peer, %why, "provider's generation does not check out");
                network.record(peer, |r| r.bad_data += 1);
                LlmEvent::Failed(NodeError::Unavailable(format!(
                    "provider {peer} sent an answer that does not check out: {why}"
                )))
            };
            let mut next = Some(first);
            loop {
                let batch = match next.take() {
                    Some(b) => Ok(b),
                    None => poll(&network, peer, &session).await,
                };
                let batch = match batch {
                    Ok(b) => b,
                    Err(e) => {
                        network.record(peer, |r| r.failures += 1);
                        let _ = tx.send(LlmEvent::Failed(NodeError::Unavailable(format!(
                            "provider {peer} stopped answering mid-generation: {e}"
                        ))));
                        return;
                    }
                };
                for ev in batch {
                    let out = match ev {
                        WireEvent::Token {
                            token,
                            text,
                            logprobs: lp,
                        } => {
                            chain.push_with(token, &text, lp.as_ref());
                            tokens.push(token);
                            texts.push(text.clone());
                            logprobs.extend(lp.clone());
                            LlmEvent::Token {
                                token,
                                text,
                                logprobs: lp,
                            }
                        }
                        WireEvent::Checkpoint { checkpoint } => {
                            match checkpoint.verify(&key, &model_id, &digest, &chain) {
                                Ok(()) => LlmEvent::Checkpoint(checkpoint),
                                Err(why) => lied(why),
                            }
                        }
                        WireEvent::Done { receipt, finish } => {
                            let transcript = Transcript {
                                request: req.clone(),
                                tokens: std::mem::take(&mut tokens),
                                texts: std::mem::take(&mut texts),
                                finish_reason: finish,
                                logprobs: std::mem::take(&mut logprobs),
                            };
                            match check_done(&receipt, &transcript, peer, model_id, &nonce) {
                                Ok(()) => {
                                    node.count_served(peer);
                                    if gossip {
                                        // Gossiped here too: a provider that
                                        // keeps its receipts off the topic
                                        // does not keep them from audits.
                                        network.gossip_receipt(&receipt).await;
                                    }
                                    LlmEvent::Done(Box::new(Finished {
                                        receipt: *receipt,
                                        request: transcript.request,
                                        tokens: transcript.tokens,
                                        texts: transcript.texts,
                                        finish,
                                        prompt_tokens,
                                        logprobs: transcript.logprobs,
                                    }))
                                }
                                Err(why) => lied(why),
                            }
                        }
                        WireEvent::Failed { code, message } => {
                            network.record(peer, |r| r.failures += 1);
                            LlmEvent::Failed(provider_error(peer, &code, message))
                        }
                    };
                    let end = matches!(out, LlmEvent::Done(_) | LlmEvent::Failed(_));
                    if tx.send(out).is_err() {
                        // The client went away: stop the provider too.
                        let cancel = Frame::new(Request::GenerateCancel { session });
                        let _ = ask(&network, peer, cancel).await;
                        return;
                    }
                    if end {
                        return;
                    }
                }
            }
        });
        Started {
            model_id,
            request,
            prompt_tokens,
            events,
            route: vec![self.peer_id().to_string(), peer.to_string()],
        }
    }
    /// Answers a peer's [`Request::Generate`]: charges the peer's
    /// `voucher` where this node charges (given back when the generation
    /// does not start), starts the generation and keeps its events for the
    /// peer to read.
    pub(crate) async fn answer_generate(
        self: &Arc<Self>,
        peer: Peer,
        model: Digest,
        voucher: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        let charge = self.charge(voucher)?;
        let started = self.start_generation(peer, model, body).await;
        if started.is_err()
            && let Some(c) = charge
        {
            self.refund(c);
        }
        started
    }

    /// Starts a peer's generation (`answer_generate`, once paid).
    async fn start_generation(
        self: &Arc<Self>,
        peer: Peer,
        model: Digest,
        body: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        let w: WireGenerate = serde_json::from_slice(body).map_err(|e| {
            NodeError::BadRequest(format!("the generation request is not valid JSON: {e}"))
        })?;
        let record = self
            .store()
            .model_by_id(&model)?
            .ok_or_else(|| NodeError::NotFound(format!("no model {model} here")))?;
        let prompt = match (w.messages, w.text) {
            (Some(m), None) => Prompt::Chat(m),
            (None, Some(t)) => Prompt::Text(t),
            _ => {
                return Err(NodeError::BadRequest(
                    "a generation request holds either `messages` or `text`".into(),
                ));
            }
        };
        let g = Generate {
            model: record.signed.manifest.name.clone(),
            prompt,
            max_tokens: w.max_tokens,
            stop: w.stop,
            sampling: w.sampling,
            nonce: w.nonce,
            constraint: w.constraint,
            tools: w.tools,
            logprobs: w.logprobs,
        };
        g.check()?;
        // Checked before the generation starts (and again when it is kept).
        self.network()?.sessions.room_for(peer)?;
        let started = self.service().generate_with(record, g, !w.quorum).await?;
        let session = self.network()?.sessions.open(peer, started.events)?;
        json(&WireStart {
            session,
            request: started.request,
            model_id: started.model_id,
            node: self.key().public(),
            prompt_tokens: started.prompt_tokens,
        })
    }
    /// Answers a peer's [`Request::GenerateEvents`]: the events ready now,
    /// waiting up to [`POLL_WAIT`] for the first.
    pub(crate) async fn answer_generate_events(
        &self,
        peer: Peer,
        session: &str,
    ) -> Result<Vec<u8>, NodeError> {
        let sessions = &self.network()?.sessions;
        let events = sessions.events(peer, session)?;
        let mut events = events.lock().await;
        let mut out = Vec::new();
        let mut ended = false;
        let mut push = |ev: LlmEvent| {
            let (w, end) = wire_event(ev);
            out.push(w);
            end
        };
        match tokio::time::timeout(POLL_WAIT, events.recv()).await {
            Err(_) => {}
            Ok(Some(ev)) => ended = push(ev),
            Ok(None) => {
                ended = push(LlmEvent::Failed(NodeError::Internal(
                    "the generation stopped without a receipt".into(),
                )))
            }
        }
        while !ended {
            match events.try_recv() {
                Ok(ev) => ended = push(ev),
                Err(_) => break,
            }
        }
        if ended {
            sessions.close(session);
        }
        json(&out)
    }
    /// Runs a generation to the end, here or on a provider
    /// ([`Node::route_generate`]).
    pub async fn generate_all(self: &Arc<Self>, g: Generate) -> Result<Finished, NodeError> {
        self.route_generate(g).await?.finish().await
    }
    /// Answers [`Request::GenerateCancel`]: drops `peer`'s session, which
    /// stops its generation at the next token.
    pub(crate) fn cancel_generation(
        &self,
        peer: Peer,
        session: &str,
    ) -> Result<Vec<u8>, NodeError> {
        let sessions = &self.network()?.sessions;
        sessions.events(peer, session)?;
        sessions.close(session);
        Ok(Vec::new())
    }
}

/// Reads the next events of `peer`'s generation `session`: at least one,
/// or an error when the provider fails, sends what this node cannot read,
/// or stalls for [`STALLED_POLLS`] polls.
async fn poll(network: &Network, peer: Peer, session: &str) -> Result<Vec<WireEvent>, NodeError> {
    for _ in 0..STALLED_POLLS {
        let asked = Frame::new(Request::GenerateEvents {
            session: session.to_string(),
        });
        let body = ask(network, peer, asked).await?;
        let batch: Vec<WireEvent> = serde_json::from_slice(&body)
            .map_err(|e| NodeError::Unavailable(format!("events this node cannot read: {e}")))?;
        if !batch.is_empty() {
            return Ok(batch);
        }
    }
    Err(NodeError::Unavailable(format!(
        "no event for {} s",
        STALLED_POLLS as u64 * POLL_WAIT.as_secs()
    )))
}
/// Checks a provider's finished generation: a valid receipt by its key,
/// signed just now, for this model and nonce that signs exactly the
/// transcript relayed.
fn check_done(
    receipt: &Receipt,
    transcript: &Transcript,
    peer: Peer,
    model: Digest,
    nonce: &str,
) -> Result<(), String> {
    transcript.verify(receipt)?;
    receipt
        .check_fresh(vouch_service::service::now_ms())
        .map_err(|e| e.to_string())?;
    if peer_id_of(&receipt.body.node) != peer {
        return Err(format!(
            "the receipt is signed by {}, not by the peer that answered",
            receipt.body.node
        ));
    }
    if receipt.body.model != model {
        return Err(format!(
            "the receipt names model {}, not {model}",
            receipt.body.model
        ));
    }
    if receipt.body.nonce != nonce {
        return Err("the receipt names another nonce".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(b: u8) -> Peer {
        peer_id_of(&vouch_types::SecretKey::from_bytes(&[b; 32]).public())
    }

    #[test]
    fn refusals_stay_the_clients_and_failures_are_the_providers() {
        let e = provider_error(peer(1), "invalid_input", "too long".into());
        assert!(e.code() == "invalid_input" && e.to_string().contains("too long"));
        assert!(matches!(
            Failure::from_remote("invalid_input", "too long".into()),
            Failure::Refused(_)
        ));
        let e = provider_error(peer(1), "not_found", "gone".into());
        assert!(
            e.code() == "unavailable" && e.to_string().contains("gone"),
            "{e}"
        );
        assert!(matches!(
            Failure::from_remote("not_found", "gone".into()),
            Failure::Failed(_)
        ));
    }
}
