//! Audits and disputes.
//!
//! An executor gossips each receipt it signs ([`Topic::Receipts`]) and
//! keeps the request's inputs and outputs for a retention window. Every
//! node that serves the model audits a random sample of those receipts,
//! drawn from its own private randomness, so an executor cannot tell which
//! answers will be checked: it fetches the inputs, re-executes, and
//! compares under the model's determinism class. On a mismatch it bisects
//! the two trace commitments with the executor
//! ([`vouch_types::merkle::Bisection`]) down to the first step whose
//! inputs agree and whose outputs differ, asks a third operator serving
//! the model to referee that step, and publishes the resulting
//! [`Dispute`] ([`Topic::Disputes`]). Every node re-checks a dispute it
//! receives ([`Dispute::check`]) before it counts it in the operators'
//! records, which the router ranks by.

use std::sync::{Arc, Weak};

use vouch_api::ReportedReceipt;
use vouch_p2p::{Frame, Gossip, Peer, Request, Topic, peer_id_of};
use vouch_types::audit::AuditReport;
use vouch_types::dispute::{
    AUDITOR_DRAW, DISPUTE_VERSION, Dispute, LlmDispute, Party, Pool, REFEREE_DRAW, Verdict,
    auditor_draw, referee_draw,
};
use vouch_types::llm_pool::PoolDispute;
use vouch_types::merkle::{self, Bisection};
use vouch_types::quorum::outputs_agree;
use vouch_types::{Determinism, Digest, Kind, Receipt, TensorMap};

use crate::node::Node;
use crate::state::{Network, ask};
use vouch_service::error::NodeError;

/// What an audit found.
#[derive(Clone, Debug)]
pub enum AuditOutcome {
    /// The re-execution agrees with the receipt: this node's signed report
    /// of it (which the auditors' pool pays on a ledger).
    Passed(Box<AuditReport>),
    /// It does not; the dispute names the faulty party.
    Disputed(Box<Dispute>),
    /// A generated answer failed its teacher-forced check; the dispute
    /// names the faulty party.
    LlmDisputed(Box<vouch_types::dispute::LlmDispute>),
    /// It does not, but no verdict could be reached (why).
    Unresolved(String),
    /// The executor did not hand over what the audit needs (its inputs,
    /// outputs, transcript or trace): a lost audit, counted against it.
    Withheld(String),
}

/// Draws `true` with probability `rate` from the OS's randomness.
fn sample(rate: f64) -> bool {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        return false;
    }
    ((u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64) < rate
}

fn bad_answer(what: &str) -> NodeError {
    NodeError::Unavailable(format!("the executor's {what} answer is malformed"))
}

fn digest_at(bytes: &[u8], kind: Kind) -> Option<Digest> {
    Some(Digest::from_bytes(kind, bytes.try_into().ok()?))
}

impl Node {
    /// The share of others' receipts this node audits now.
    pub fn audit_rate(&self) -> f64 {
        self.network.get().map_or(0.0, |n| {
            f64::from_bits(n.audit_rate.load(std::sync::atomic::Ordering::Relaxed))
        })
    }

    /// Whether this node audits at sampling rate `rate`: it needs its
    /// traces to bisect.
    pub(crate) fn audits_at(&self, rate: f64) -> bool {
        self.config().trace && rate > 0.0
    }

    /// Changes the share of others' receipts this node audits (0 to 1),
    /// effective for the next receipt heard. A node that audits nothing
    /// leaves the receipts topic (see `Node::hear_receipts`).
    pub async fn set_audit_rate(&self, rate: f64) -> Result<(), NodeError> {
        if !(0.0..=1.0).contains(&rate) {
            return Err(NodeError::BadRequest(format!(
                "audit rate {rate} must be between 0 and 1"
            )));
        }
        self.network()?
            .audit_rate
            .store(rate.to_bits(), std::sync::atomic::Ordering::Relaxed);
        self.hear_receipts().await
    }

    /// Subscribes to gossiped receipts while this node audits (a rate
    /// above 0, and traces on), and leaves the topic otherwise: then no
    /// peer sends it receipts, and a network where nobody audits gossips
    /// none (executors' batches find no subscriber).
    pub(crate) async fn hear_receipts(&self) -> Result<(), NodeError> {
        self.network()?
            .p2p
            .subscribe(Topic::Receipts, self.audits_at(self.audit_rate()))
            .await
            .map_err(|e| NodeError::Unavailable(e.to_string()))
    }

    /// After this node answered a request: keeps the inputs and outputs for
    /// auditors and gossips the receipt.
    pub(crate) async fn after_execution(
        &self,
        receipt: &Receipt,
        inputs: TensorMap,
        outputs: TensorMap,
    ) {
        let Some(network) = self.network.get() else {
            return;
        };
        let bytes = inputs.byte_len() + outputs.byte_len();
        network
            .retained
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                receipt.id,
                (inputs, outputs),
                bytes,
                self.config().retention,
            );
        network.gossip_receipt(receipt).await;
    }

    /// The inputs and outputs this node retains for receipt `id`.
    pub(crate) fn retained(&self, id: &Digest) -> Result<Arc<(TensorMap, TensorMap)>, NodeError> {
        let network = self.network()?;
        network
            .retained
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id, self.config().retention)
            .ok_or_else(|| {
                NodeError::NotFound(format!(
                    "receipt {id}'s data is not retained here (kept {} s)",
                    self.config().retention.as_secs()
                ))
            })
    }

    /// The pool a receipt's draws (auditors, referees) run over
    /// ([`Pool`]). Where this node runs a ledger chain: the staked
    /// operators weighted by stake, with the receipt's beacon
    /// (`Ledger::draw_pool`), or `None` while the beacon block is not yet
    /// applied here. Otherwise: the admitted operators, weight 1, no
    /// beacon.
    pub(crate) fn draw_pool(&self, receipt: &Receipt) -> Result<Option<Pool>, NodeError> {
        self.draw_pool_at(&receipt.body.node, receipt.body.timestamp_ms, &receipt.id)
    }

    /// [`Node::draw_pool`] for what `executor` did at `at_ms` (`what`
    /// names it in errors): a receipt, or a window of pooled answers
    /// ending then.
    pub(crate) fn draw_pool_at(
        &self,
        executor: &vouch_types::PublicKey,
        at_ms: u64,
        what: &Digest,
    ) -> Result<Option<Pool>, NodeError> {
        let Some(chain) = self.chain.get() else {
            return Ok(Some(Pool::uniform(&self.admitted())));
        };
        match chain.read(|l| l.draw_pool(executor, at_ms)) {
            Ok(pool) => Ok(Some(pool)),
            Err(vouch_ledger::BeaconError::NotYet { .. }) => Ok(None),
            Err(e) => Err(NodeError::Unavailable(format!("{what}: {e}"))),
        }
    }

    /// [`Node::draw_pool`], waiting for the beacon block: until 30 s past
    /// the time it is due.
    pub(crate) async fn await_draw_pool(&self, receipt: &Receipt) -> Result<Pool, NodeError> {
        self.await_draw_pool_at(&receipt.body.node, receipt.body.timestamp_ms, &receipt.id)
            .await
    }

    /// [`Node::draw_pool_at`], waiting for the beacon block.
    pub(crate) async fn await_draw_pool_at(
        &self,
        executor: &vouch_types::PublicKey,
        at_ms: u64,
        what: &Digest,
    ) -> Result<Pool, NodeError> {
        let delay = self
            .chain
            .get()
            .map_or(0, |c| c.read(|l| l.params().beacon_delay_ms));
        let due = at_ms.saturating_add(delay);
        let give_up = due
            .max(vouch_service::service::now_ms())
            .saturating_add(30_000);
        loop {
            if let Some(pool) = self.draw_pool_at(executor, at_ms, what)? {
                return Ok(pool);
            }
            if vouch_service::service::now_ms() > give_up {
                return Err(NodeError::Unavailable(format!(
                    "the beacon block of {what} (the first stamped at or after {due} ms) has not come 30 s after it was due: is the chain making blocks?"
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// The operators that may audit `receipt` in this node's view: the
    /// first [`AUDITOR_DRAW`] of the [`auditor_draw`] over the receipt's
    /// `pool` ([`Node::draw_pool`]) restricted to the operators serving
    /// its model: on a ledger chain, those whose offer declares it (as the
    /// ledger pays audits, `Ledger::audit_pool`), where any does; else
    /// those announcing it (this node among them when it does).
    pub(crate) fn drawn_auditors(
        &self,
        receipt: &Receipt,
        pool: &Pool,
    ) -> Vec<vouch_types::PublicKey> {
        self.drawn_auditors_of(&receipt.id, &receipt.body.node, &receipt.body.model, pool)
    }

    /// [`Node::drawn_auditors`] of what `id` names (a receipt, or a pool
    /// of answers), signed by `executor` with model `model`.
    pub(crate) fn drawn_auditors_of(
        &self,
        id: &Digest,
        executor: &vouch_types::PublicKey,
        model: &Digest,
        pool: &Pool,
    ) -> Vec<vouch_types::PublicKey> {
        if let Some(chain) = self.chain.get() {
            let declaring = chain.read(|l| l.declaring(model));
            if declaring.iter().any(|k| pool.admits(k)) {
                let mut drawn = auditor_draw(id, executor, &pool.only(|k| declaring.contains(k)));
                drawn.truncate(AUDITOR_DRAW);
                return drawn;
            }
        }
        let providers = self
            .network_models()
            .remove(&model.to_string())
            .map(|m| m.providers)
            .unwrap_or_default();
        let me = self.public_key();
        let here = matches!(self.store().model_by_id(model), Ok(Some(_)));
        let candidates = pool.only(|k| (*k == me && here) || providers.contains(&peer_id_of(k)));
        let mut drawn = auditor_draw(id, executor, &candidates);
        drawn.truncate(AUDITOR_DRAW);
        drawn
    }

    /// Whether `peer` may have the data this node keeps for receipt `id`
    /// (inputs, outputs, transcript): only the receipt's drawn auditors
    /// may (on a chain, that waits for the receipt's beacon block), and the
    /// panel of an appeal of a conviction on it; never any peer that asks.
    pub(crate) async fn hand_over(&self, peer: Peer, id: &Digest) -> Result<(), NodeError> {
        // The panel of an appeal of its conviction judges it again.
        if self.on_panel(peer, id) {
            return Ok(());
        }
        let receipt = self.receipt(id)?;
        let pool = self.await_draw_pool(&receipt).await?;
        if self
            .drawn_auditors(&receipt, &pool)
            .iter()
            .any(|k| peer_id_of(k) == peer)
        {
            return Ok(());
        }
        Err(NodeError::Forbidden(format!(
            "receipt {id}'s data goes only to the auditors its draw picks among the operators this node admits; {peer} is not one of them"
        )))
    }

    /// Counts a lost audit against `executor`, which did not hand over
    /// `what` for `receipt`, and keeps the evidence.
    pub(crate) fn withheld(
        &self,
        network: &Network,
        receipt: &Receipt,
        executor: Peer,
        what: &str,
        error: &NodeError,
    ) -> AuditOutcome {
        tracing::warn!(%executor, receipt = %receipt.id, what, %error, "an executor withheld what its audit needs");
        // The evidence first: whoever sees the record finds it stored.
        self.keep_evidence(serde_json::json!({
            "kind": "withheld",
            "receipt": receipt,
            "what": what,
            "error": error.to_string(),
        }));
        network.record(executor, |r| r.withheld += 1);
        AuditOutcome::Withheld(format!(
            "{executor} did not hand over the {what} of receipt {}: {error}",
            receipt.id
        ))
    }

    /// Answers the audit-related requests a peer may send.
    pub(crate) async fn answer_audit(
        &self,
        peer: Peer,
        request: &Request,
        body: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        match *request {
            Request::Inputs { receipt } => {
                self.hand_over(peer, &receipt).await?;
                Ok(self.retained(&receipt)?.0.encode())
            }
            Request::Outputs { receipt } => {
                self.hand_over(peer, &receipt).await?;
                Ok(self.retained(&receipt)?.1.encode())
            }
            Request::TraceChildren { receipt, lo, hi } => {
                let leaves = self.trace_leaves(&receipt)?;
                let (l, r) =
                    merkle::children(&leaves, lo as usize, hi as usize).ok_or_else(|| {
                        NodeError::BadRequest(format!(
                            "no subtree [{lo}, {hi}) in a trace of {} leaves",
                            leaves.len()
                        ))
                    })?;
                Ok([*l.as_bytes(), *r.as_bytes()].concat())
            }
            Request::TraceLeaf { receipt, index } => {
                let leaves = self.trace_leaves(&receipt)?;
                let leaf = leaves.get(index as usize).ok_or_else(|| {
                    NodeError::BadRequest(format!(
                        "no leaf {index} in a trace of {} leaves",
                        leaves.len()
                    ))
                })?;
                Ok(leaf.as_bytes().to_vec())
            }
            Request::Referee { model, step } => {
                let verdict = self.referee(model, step, body).await?;
                serde_json::to_vec(&verdict).map_err(|e| NodeError::Internal(e.to_string()))
            }
            ref other => Err(NodeError::BadRequest(format!(
                "not an audit request: {other:?}"
            ))),
        }
    }

    /// Recomputes trace step `step` of `model` on the inputs in `body` and
    /// signs the leaf.
    async fn referee(&self, model: Digest, step: u64, body: &[u8]) -> Result<Verdict, NodeError> {
        let inputs = TensorMap::decode(body).map_err(|e| {
            NodeError::BadRequest(format!("inputs are not a canonical tensor map: {e}"))
        })?;
        let exec = self.rerun(&model, inputs.clone(), true).await?;
        let leaf = *exec.leaves.get(step as usize).ok_or_else(|| {
            NodeError::BadRequest(format!(
                "the trace has {} steps, not {step}",
                exec.leaves.len()
            ))
        })?;
        Ok(Verdict::sign(
            self.key(),
            &model,
            &inputs.digest(Kind::Input),
            step,
            leaf,
        ))
    }

    /// Runs `model` on `inputs` as this node serves it (with its configured
    /// fault, if any), on the worker pool, without signing a receipt.
    pub(crate) async fn rerun(
        &self,
        model: &Digest,
        inputs: TensorMap,
        trace: bool,
    ) -> Result<vouch_engine::Execution, NodeError> {
        let loaded = self.loaded_by_id(model).await?;
        vouch_engine::check_inputs(loaded.schema(), &inputs)
            .map_err(|e| NodeError::InvalidInput(e.to_string()))?;
        let fault = self.config().fault.and_then(vouch_engine::Fault::tensor);
        self.compute(move || {
            Ok(match fault {
                Some(f) => loaded.run_faulty(&inputs, trace, f)?,
                None => loaded.run(&inputs, trace)?,
            })
        })
        .await
    }

    /// An audit of `receipt` passed, this node's own run giving `output`:
    /// its signed report.
    pub(crate) fn passed(&self, receipt: Receipt, output: Digest) -> AuditOutcome {
        let now = vouch_service::service::now_ms();
        AuditOutcome::Passed(Box::new(AuditReport::sign(
            self.key(),
            receipt,
            output,
            now,
        )))
    }

    /// Audits one receipt `executor` signed: re-executes it and, when the
    /// answers differ, bisects, has a third operator referee the first
    /// differing step, publishes the dispute and records the verdict.
    pub async fn audit(&self, receipt: Receipt, executor: Peer) -> Result<AuditOutcome, NodeError> {
        let network = self.network()?.clone();
        receipt
            .verify()
            .map_err(|e| NodeError::BadRequest(format!("the receipt does not verify: {e}")))?;
        if let Ok(Some(record)) = self.store().model_by_id(&receipt.body.model)
            && record.signed.manifest.format == vouch_types::ModelFormat::Gguf
        {
            return self.audit_llm(&network, receipt, executor).await;
        }
        if !self.config().trace {
            return Err(NodeError::Unavailable(
                "this node runs with --no-trace: it cannot bisect, so it does not audit".into(),
            ));
        }
        let id = receipt.id;
        let body = match ask(
            &network,
            executor,
            Frame::new(Request::Inputs { receipt: id }),
        )
        .await
        {
            Ok(body) => body,
            Err(e) => return Ok(self.withheld(&network, &receipt, executor, "inputs", &e)),
        };
        let inputs = TensorMap::decode(&body).map_err(|_| bad_answer("inputs"))?;
        if receipt.verify_inputs(&inputs).is_err() {
            network.record(executor, |r| r.bad_data += 1);
            return Err(NodeError::Unavailable(format!(
                "{executor} sent inputs that are not receipt {id}'s"
            )));
        }
        // A proven answer's engine is the model's circuit: exact integers,
        // re-run here without the proof.
        if receipt.body.engine.name == vouch_proof::bundle::ENGINE {
            let answer = match self.run_circuit(&receipt.body.model, &inputs).await {
                Ok(a) => a,
                // A proven answer of a model with no circuit (or inputs its
                // circuit refuses) is a claim no proof backs, not a reason
                // to skip the audit.
                Err(NodeError::InvalidModel(why) | NodeError::InvalidInput(why)) => {
                    network.record(executor, |r| r.bad_data += 1);
                    return Ok(AuditOutcome::Unresolved(format!(
                        "receipt {id} claims a proven answer that its model's circuit cannot give: {why}"
                    )));
                }
                Err(e) => return Err(e),
            };
            let output = answer.digest(Kind::Output);
            if output == receipt.body.output {
                network.record(executor, |r| r.audits_passed += 1);
                return Ok(self.passed(receipt, output));
            }
            network.record(executor, |r| r.bad_data += 1);
            return Ok(AuditOutcome::Unresolved(format!(
                "receipt {id} states outputs that are not its model's circuit applied to its inputs: no proof can back them"
            )));
        }
        // Most audits agree: check the answer first, without the trace or a
        // receipt of our own, and pay for those only to bisect.
        let answer = self
            .rerun(&receipt.body.model, inputs.clone(), false)
            .await?
            .outputs;
        if answer.digest(Kind::Output) == receipt.body.output
            || self
                .outputs_within_class(&network, &receipt, executor, &answer)
                .await?
        {
            network.record(executor, |r| r.audits_passed += 1);
            tracing::debug!(%executor, receipt = %id, "audit passed");
            return Ok(self.passed(receipt, answer.digest(Kind::Output)));
        }
        tracing::warn!(%executor, receipt = %id, "audit mismatch; bisecting");
        let mine = self
            .infer_id(
                &receipt.body.model,
                inputs.clone(),
                receipt.body.nonce.clone(),
            )
            .await?;
        let ours = self.trace_leaves(&mine.receipt.id)?;
        let mut bisection = match Bisection::new(
            receipt.body.trace.len,
            receipt.body.trace.root,
            mine.receipt.body.trace.len,
            mine.receipt.body.trace.root,
        ) {
            Ok(b) => b,
            Err(e) => {
                // The same model on the same engine has one plan: a trace of
                // another length (or none: a node run with --no-trace) cannot
                // be bisected, and the answer still differs.
                network.record(executor, |r| r.bad_data += 1);
                return Ok(AuditOutcome::Unresolved(format!(
                    "the answer differs and the traces cannot be bisected: {e}"
                )));
            }
        };
        while let Some((lo, hi)) = bisection.next() {
            let body = match ask(
                &network,
                executor,
                Frame::new(Request::TraceChildren {
                    receipt: id,
                    lo,
                    hi,
                }),
            )
            .await
            {
                Ok(body) => body,
                Err(e) => return Ok(self.withheld(&network, &receipt, executor, "trace", &e)),
            };
            let theirs = match (
                digest_at(body.get(..32).unwrap_or_default(), Kind::TraceNode),
                digest_at(body.get(32..).unwrap_or_default(), Kind::TraceNode),
            ) {
                (Some(l), Some(r)) => (l, r),
                _ => return Err(bad_answer("trace")),
            };
            let own = merkle::children(&ours, lo as usize, hi as usize)
                .ok_or_else(|| NodeError::Internal("own trace shorter than its receipt".into()))?;
            if let Err(e) = bisection.step(theirs, own) {
                network.record(executor, |r| r.bad_data += 1);
                return Ok(AuditOutcome::Unresolved(format!(
                    "{executor} revealed a trace that contradicts its receipt: {e}"
                )));
            }
        }
        let step = bisection.index();
        let body = match ask(
            &network,
            executor,
            Frame::new(Request::TraceLeaf {
                receipt: id,
                index: step,
            }),
        )
        .await
        {
            Ok(body) => body,
            Err(e) => return Ok(self.withheld(&network, &receipt, executor, "trace", &e)),
        };
        let theirs = digest_at(&body, Kind::TraceLeaf).ok_or_else(|| bad_answer("leaf"))?;
        let (step, executor_descent, auditor_descent) =
            match bisection.finish(theirs, ours[step as usize]) {
                Ok(done) => done,
                Err(e) => {
                    network.record(executor, |r| r.bad_data += 1);
                    return Ok(AuditOutcome::Unresolved(format!(
                        "{executor} revealed a leaf that contradicts its receipt: {e}"
                    )));
                }
            };
        let verdict = match self.find_referee(&network, &receipt, step, &inputs).await {
            Ok(v) => v,
            Err(e) => return Ok(AuditOutcome::Unresolved(e.to_string())),
        };
        let Some(faulty) = vouch_types::dispute::faulty_by_leaf(
            &verdict.leaf,
            &executor_descent,
            &auditor_descent,
        ) else {
            return Ok(AuditOutcome::Unresolved(
                "the referee's leaf matches neither party".into(),
            ));
        };
        let step_name = self
            .loaded_by_id(&receipt.body.model)
            .await
            .ok()
            .and_then(|m| m.steps().get(step as usize).cloned());
        let dispute = Dispute {
            version: DISPUTE_VERSION,
            executor: receipt,
            auditor: mine.receipt,
            step,
            step_name,
            executor_descent,
            auditor_descent,
            verdict,
            faulty,
        };
        dispute.check(Some(&inputs)).map_err(|e| {
            NodeError::Internal(format!("a dispute this node built does not check: {e}"))
        })?;
        self.record_dispute(&network, &dispute, "referee");
        let json = serde_json::to_vec(&dispute).map_err(|e| NodeError::Internal(e.to_string()))?;
        let _ = network.p2p.publish(Topic::Disputes, json.clone()).await;
        tracing::warn!(%executor, ?faulty, step, "dispute settled by referee");
        self.dispute_on_ledger(&dispute.executor.id, json).await;
        Ok(AuditOutcome::Disputed(Box::new(dispute)))
    }

    /// For tolerant models: fetches the executor's outputs and compares
    /// them with ours within the model's class (this node's, never the
    /// receipt's).
    async fn outputs_within_class(
        &self,
        network: &Network,
        receipt: &Receipt,
        executor: Peer,
        ours: &TensorMap,
    ) -> Result<bool, NodeError> {
        // The class is this node's, from the model's manifest: a receipt
        // that claims another (a looser tolerance) does not get it.
        let class = self.class_of(&receipt.body.model)?;
        if class == Determinism::Exact || receipt.body.determinism != class {
            return Ok(false);
        }
        // Not handed over: no agreement within the class; the bisection
        // that follows needs the trace, and refusing that loses the audit.
        let Ok(body) = ask(
            network,
            executor,
            Frame::new(Request::Outputs {
                receipt: receipt.id,
            }),
        )
        .await
        else {
            return Ok(false);
        };
        let theirs = TensorMap::decode(&body).map_err(|_| bad_answer("outputs"))?;
        if receipt.verify_outputs(&theirs).is_err() {
            network.record(executor, |r| r.bad_data += 1);
            return Ok(false);
        }
        Ok(outputs_agree(class, &theirs, ours))
    }

    /// Asks the operators the draw picks to referee `step` of `receipt`
    /// until one signs a verdict.
    async fn find_referee(
        &self,
        network: &Network,
        receipt: &Receipt,
        step: u64,
        inputs: &TensorMap,
    ) -> Result<Verdict, NodeError> {
        let model = receipt.body.model;
        let request = inputs.digest(Kind::Input);
        let body = inputs.encode();
        self.ask_referees(
            network,
            receipt,
            || Frame {
                head: Request::Referee { model, step },
                body: body.clone(),
            },
            |peer, v: &Verdict| {
                peer_id_of(&v.referee) == peer
                    && v.referee.verify(
                        Verdict::message(&model, &request, step, &v.leaf).as_bytes(),
                        &v.signature,
                    )
            },
        )
        .await
    }

    /// Asks the operators the dispute's draw picks
    /// ([`vouch_types::dispute::referee_draw`] over the admitted operators,
    /// the first [`REFEREE_DRAW`]), in turn, until one answers `frame()`
    /// with a verdict (JSON) that `signed` accepts as that operator's. A
    /// referee this node chose by itself would convince nobody else.
    pub(crate) async fn ask_referees<V: serde::de::DeserializeOwned>(
        &self,
        network: &Network,
        receipt: &Receipt,
        frame: impl Fn() -> Frame<Request>,
        signed: impl Fn(Peer, &V) -> bool,
    ) -> Result<V, NodeError> {
        let pool = self.await_draw_pool(receipt).await?;
        self.ask_drawn_referees(
            network,
            (&receipt.id, &receipt.body.node),
            &pool,
            frame,
            signed,
        )
        .await
    }

    /// [`Node::ask_referees`] over draw pool `pool` for what `id` names,
    /// `executor`'s: a receipt, or a pool of answers.
    pub(crate) async fn ask_drawn_referees<V: serde::de::DeserializeOwned>(
        &self,
        network: &Network,
        (id, executor): (&Digest, &vouch_types::PublicKey),
        pool: &Pool,
        frame: impl Fn() -> Frame<Request>,
        signed: impl Fn(Peer, &V) -> bool,
    ) -> Result<V, NodeError> {
        let drawn = referee_draw(id, executor, &self.public_key(), pool);
        let mut why = Vec::new();
        for key in drawn.iter().take(REFEREE_DRAW) {
            let peer = peer_id_of(key);
            let verdict = ask(network, peer, frame())
                .await
                .and_then(|b| serde_json::from_slice::<V>(&b).map_err(|_| bad_answer("verdict")));
            match verdict {
                Ok(v) if signed(peer, &v) => return Ok(v),
                Ok(_) => why.push(format!("{peer}: a verdict it did not sign")),
                Err(e) => why.push(format!("{peer}: {e}")),
            }
        }
        Err(NodeError::Unavailable(format!(
            "no admitted operator the draw picks could referee {id} ({})",
            if why.is_empty() {
                "this node admits no third operator: admit some with --admit".to_string()
            } else {
                why.join("; ")
            }
        )))
    }

    /// Counts a checked dispute in the parties' records and keeps it as
    /// evidence, once per disputed receipt.
    fn record_dispute(&self, network: &Network, dispute: &Dispute, established: &str) -> bool {
        let (faulty, other) = match dispute.faulty {
            Party::Executor => (&dispute.executor, &dispute.auditor),
            Party::Auditor => (&dispute.auditor, &dispute.executor),
        };
        self.count_dispute(
            network,
            dispute.executor.id,
            (&faulty.body.node, &other.body.node),
            serde_json::json!({
                "kind": "dispute",
                "dispute": dispute,
                "established": established,
            }),
        )
    }

    /// Counts a dispute over the executor's receipt `receipt` against the
    /// faulty operator and for the other, and stores its evidence, unless
    /// that receipt was disputed before (a second accusation of the same
    /// answer, whatever its wording, counts nothing). Returns whether it
    /// counted.
    pub(crate) fn count_dispute(
        &self,
        network: &Network,
        receipt: Digest,
        (faulty, other): (&vouch_types::PublicKey, &vouch_types::PublicKey),
        evidence: serde_json::Value,
    ) -> bool {
        if !network
            .disputes_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(receipt)
        {
            return false;
        }
        self.keep_evidence(evidence);
        network.record(peer_id_of(faulty), |r| r.audits_failed += 1);
        network.record(peer_id_of(other), |r| r.audits_passed += 1);
        true
    }

    /// `check` (a dispute's [`Dispute::check_parties`]) over the draw pool
    /// of its executor's receipt; a pool that cannot be had (the beacon
    /// block never came, or the receipt is past the dispute window) is the
    /// reason the parties do not count.
    async fn parties_drawn(
        &self,
        receipt: &Receipt,
        check: impl FnOnce(&Pool) -> Result<(), vouch_types::dispute::DisputeError>,
    ) -> Result<(), String> {
        let pool = self
            .await_draw_pool(receipt)
            .await
            .map_err(|e| e.to_string())?;
        check(&pool).map_err(|e| e.to_string())
    }

    /// [`Node::parties_drawn`] for a pooled dispute: over the draw pool at
    /// its window's end.
    async fn pool_parties_drawn(&self, d: &PoolDispute) -> Result<(), String> {
        let s = &d.scope;
        let pool = self
            .await_draw_pool_at(&s.executor, s.end_ms, &s.key())
            .await
            .map_err(|e| e.to_string())?;
        d.check_parties(&pool).map_err(|e| e.to_string())
    }

    /// Judges a dispute heard from `source`. It must check offline; then it
    /// counts when its auditor and referee are admitted operators and the
    /// referee is one the draw picks, or, for a generated answer when this
    /// node serves the model, when this node's own teacher-forced check of
    /// the transcript finds the executor at fault (one that finds every
    /// token right refutes it). Anything else is unproven: anyone can mint
    /// keys and sign verdicts, so it changes no operator's record.
    async fn judge_dispute(&self, network: &Network, source: Peer, data: &[u8]) {
        let outcome = if let Ok(d) = serde_json::from_slice::<Dispute>(data) {
            match d.check(None) {
                Err(e) => Judged::Invalid(e.to_string()),
                Ok(_) => match self
                    .parties_drawn(&d.executor, |pool| d.check_parties(pool))
                    .await
                {
                    Ok(()) => Judged::counted(self.record_dispute(network, &d, "admitted parties")),
                    Err(why) => Judged::Unproven(d.executor.id, why),
                },
            }
        } else if let Ok(d) = serde_json::from_slice::<LlmDispute>(data) {
            match d.check() {
                Err(e) => Judged::Invalid(e.to_string()),
                Ok(faulty) => match self
                    .parties_drawn(&d.executor, |pool| d.check_parties(pool))
                    .await
                {
                    Ok(()) => Judged::counted(self.record_llm_dispute(
                        network,
                        &d,
                        faulty,
                        "admitted parties",
                    )),
                    Err(why) => match self.recheck_llm_dispute(network, &d).await {
                        Some(Party::Executor) => Judged::counted(self.record_llm_dispute(
                            network,
                            &d,
                            Party::Executor,
                            "re-executed",
                        )),
                        Some(Party::Auditor) => Judged::Invalid(format!(
                            "this node's own check of receipt {} passes every token",
                            d.executor.id
                        )),
                        None => Judged::Unproven(d.executor.id, why),
                    },
                },
            }
        } else if let Ok(d) = serde_json::from_slice::<PoolDispute>(data) {
            match d.check() {
                Err(e) => Judged::Invalid(e.to_string()),
                Ok(faulty) => match self.pool_parties_drawn(&d).await {
                    Ok(()) => Judged::counted(self.record_pool_dispute(
                        network,
                        &d,
                        faulty,
                        "admitted parties",
                    )),
                    Err(why) => Judged::Unproven(d.scope.key(), why),
                },
            }
        } else {
            Judged::Invalid("not a dispute record".to_string())
        };
        let metrics = self.metrics();
        match outcome {
            Judged::Counted => metrics.dispute("counted"),
            Judged::Duplicate => metrics.dispute("duplicate"),
            Judged::Unproven(receipt, why) => {
                metrics.dispute("unproven");
                tracing::info!(%source, %receipt, %why, "a dispute that nothing here establishes: not counted");
            }
            Judged::Invalid(why) => {
                metrics.dispute("invalid");
                tracing::warn!(%source, error = %why, "rejected a dispute");
                network.record(source, |r| r.bad_data += 1);
            }
        }
    }

    /// This node's own verdict on a disputed generated answer, when it
    /// serves the model: the executor is faulty when a token fails its
    /// teacher-forced check, the auditor when every token passes.
    /// Each executor receipt is re-checked once: a re-check costs a
    /// teacher-forced pass, and anyone can reword a dispute.
    async fn recheck_llm_dispute(&self, network: &Network, d: &LlmDispute) -> Option<Party> {
        if !matches!(
            self.store().model_by_id(&d.executor.body.model),
            Ok(Some(_))
        ) || !network
            .rechecked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(d.executor.id)
        {
            return None;
        }
        self.judge_tokens(d).await
    }

    /// Who a disputed generated answer finds faulty by this node's own
    /// teacher-forced check (the caller sees that it serves the model):
    /// the executor when a token fails, the auditor when every token
    /// passes; `None` when the check cannot say.
    pub(crate) async fn judge_tokens(&self, d: &LlmDispute) -> Option<Party> {
        match self.check_llm(&d.executor, &d.transcript).await {
            Ok(c) if c.ok => Some(Party::Auditor),
            Ok(c) if c.failed_at.is_some() => Some(Party::Executor),
            Ok(_) | Err(_) => None,
        }
    }

    /// Draws `receipt` for audit here: receipts of models this node serves,
    /// from any source (an executor's own gossip, a gateway's that routed
    /// the request, a client's report: an executor cannot keep its answers
    /// from audits by not gossiping them), once each, at the sampling rate,
    /// when this node is among the receipt's drawn auditors (on a chain,
    /// the draw waits for the receipt's beacon block); cheapest checks
    /// first (the signature is checked when the audit starts). True when
    /// an audit started (on a task of its own).
    async fn consider_for_audit(self: &Arc<Node>, network: &Network, receipt: Receipt) -> bool {
        let executor = peer_id_of(&receipt.body.node);
        if !self.config().trace
            || executor == self.peer_id()
            || !matches!(self.store().model_by_id(&receipt.body.model), Ok(Some(_)))
            || !network
                .receipts_heard
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(receipt.id)
            || !sample(self.audit_rate())
        {
            return false;
        }
        match self.await_draw_pool(&receipt).await {
            Ok(pool)
                if self
                    .drawn_auditors(&receipt, &pool)
                    .contains(&self.public_key()) => {}
            Ok(_) => return false,
            Err(e) => {
                tracing::info!(receipt = %receipt.id, error = %e, "no draw for a receipt heard");
                return false;
            }
        }
        let node = self.clone();
        tokio::spawn(async move {
            let id = receipt.id;
            let note = match node.audit(receipt, executor).await {
                Ok(outcome) => {
                    tracing::debug!(?outcome, "audit done");
                    match outcome {
                        AuditOutcome::Passed(report) => {
                            node.keep_audit_report(*report);
                            "passed".to_string()
                        }
                        AuditOutcome::Disputed(d) => {
                            format!("disputed: the referee found the {:?} faulty", d.faulty)
                        }
                        AuditOutcome::LlmDisputed(d) => {
                            format!("disputed: the referee found the {:?} faulty", d.faulty)
                        }
                        AuditOutcome::Unresolved(why) => format!("unresolved: {why}"),
                        AuditOutcome::Withheld(why) => format!("withheld: {why}"),
                    }
                }
                Err(e) => {
                    tracing::info!(error = %e, "audit not completed");
                    format!("not completed: {e}")
                }
            };
            if let Some(network) = node.network.get() {
                let mut audits = network.audits.lock().unwrap_or_else(|e| e.into_inner());
                audits.push_back((id, note));
                if audits.len() > crate::state::KEPT_AUDITS {
                    audits.pop_front();
                }
            }
        });
        true
    }

    /// A receipt a client reports (`POST /v1/receipts`), for example one an
    /// executor answered it directly and may not have gossiped: checked,
    /// gossiped to the network's auditors once, and drawn for audit here.
    /// Only receipts of models this node serves or peers announce, signed
    /// by this node or by a peer that announces the model: auditors must be
    /// able to reach the executor, and nobody may make this node gossip
    /// receipts for models nobody serves.
    pub async fn report_receipt(
        self: &Arc<Node>,
        receipt: Receipt,
    ) -> Result<ReportedReceipt, NodeError> {
        receipt
            .verify()
            .map_err(|e| NodeError::BadRequest(format!("the receipt does not verify: {e}")))?;
        let network = self.network()?;
        let executor = peer_id_of(&receipt.body.node);
        let model = receipt.body.model;
        let served_here = matches!(self.store().model_by_id(&model), Ok(Some(_)));
        let providers = self
            .network_models()
            .remove(&model.to_string())
            .map(|m| m.providers)
            .unwrap_or_default();
        if !served_here && providers.is_empty() {
            return Err(NodeError::NotFound(format!(
                "model {model} is neither served here nor announced by a peer: report the receipt to a node of the network that serves it"
            )));
        }
        if executor != self.peer_id() && !providers.contains(&executor) {
            return Err(NodeError::NotFound(format!(
                "the receipt's signer {} (peer {executor}) does not announce model {model} to this node: report it to a node of the signer's network",
                receipt.body.node
            )));
        }
        let gossiped = network
            .receipts_reported
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(receipt.id);
        if gossiped {
            network.gossip_receipt(&receipt).await;
        }
        let id = receipt.id;
        let audited_here = self.consider_for_audit(network, receipt).await;
        Ok(ReportedReceipt {
            id,
            gossiped,
            audited_here,
        })
    }

    /// Handles one gossiped message: samples receipts for audit, and checks
    /// and records disputes.
    async fn on_gossip(self: &Arc<Node>, gossip: Gossip) {
        let Some(network) = self.network.get() else {
            return;
        };
        match gossip.topic {
            Topic::Receipts => {
                if let Ok(receipt) = Receipt::from_bytes(&gossip.data) {
                    self.hear_for_pool(network, &receipt);
                    // The draw may wait for a beacon block: not on the
                    // gossip loop.
                    let (node, network) = (self.clone(), network.clone());
                    tokio::spawn(async move {
                        node.consider_for_audit(&network, receipt).await;
                    });
                }
            }
            Topic::Disputes => {
                // Judging may re-run a model: not on the gossip loop.
                let (node, network) = (self.clone(), network.clone());
                tokio::spawn(async move {
                    node.judge_dispute(&network, gossip.source, &gossip.data)
                        .await;
                });
            }
        }
    }
}

/// Handles gossip until the node is dropped or the swarm stops.
pub(crate) async fn serve_gossip(
    node: Weak<Node>,
    mut gossip: tokio::sync::mpsc::Receiver<Gossip>,
) {
    while let Some(g) = gossip.recv().await {
        let Some(node) = node.upgrade() else { return };
        node.on_gossip(g).await;
    }
}

/// What became of a dispute heard from a peer.
enum Judged {
    /// Counted against the faulty operator.
    Counted,
    /// Its receipt was disputed before.
    Duplicate,
    /// It checks, but nothing establishes it here.
    Unproven(Digest, String),
    /// It does not check, or this node's re-execution refutes it.
    Invalid(String),
}

impl Judged {
    fn counted(new: bool) -> Judged {
        if new {
            Judged::Counted
        } else {
            Judged::Duplicate
        }
    }
}
