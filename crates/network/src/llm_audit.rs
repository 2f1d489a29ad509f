//! Generated answers audited across nodes. An executor gossips each LLM
//! receipt and keeps its transcript for the retention window. A node
//! serving the model that draws it fetches the transcript
//! ([`Request::Transcript`]) and checks it by teacher forcing
//! ([`Node::check_llm`]; on another operator when this node lacks the
//! model). When a token fails, a third operator serving the model runs the
//! same check ([`Request::RefereeTokens`]) and signs what it finds; the
//! [`LlmDispute`] is gossiped, re-checked by every node that hears it, and
//! counted in the operators' records like a tensor dispute.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use vouch_p2p::{Frame, Peer, Request, Topic, peer_id_of};
use vouch_types::dispute::{DISPUTE_VERSION, LlmDispute, Party, TokenVerdict};
use vouch_types::llm::Transcript;
use vouch_types::{Digest, Receipt};

use crate::audit::AuditOutcome;
use crate::llm_net::json;
use crate::node::Node;
use crate::state::{Network, ask};
use vouch_service::error::NodeError;
use vouch_service::llm::LlmCheck;

impl Node {
    /// Checks a generated answer end to end: the receipt and transcript
    /// offline, then every token by teacher forcing with the model the
    /// receipt names: on this node when it has that exact model, otherwise
    /// on another operator serving it (not the signer), whose signed
    /// verdict comes back in `checked_by`.
    pub async fn check_llm(
        &self,
        receipt: &Receipt,
        transcript: &Transcript,
    ) -> Result<LlmCheck, NodeError> {
        if let Some(failed) = vouch_service::llm::check_llm_offline(receipt, transcript) {
            return Ok(failed);
        }
        if matches!(self.store().model_by_id(&receipt.body.model), Ok(None))
            && self.network.get().is_some()
        {
            return self.check_llm_remotely(receipt, transcript).await;
        }
        self.service().check_llm(receipt, transcript).await
    }
    /// Has another operator serving the model (not the receipt's signer)
    /// check the transcript by teacher forcing, for a node that does not
    /// serve the model itself.
    pub(crate) async fn check_llm_remotely(
        &self,
        receipt: &Receipt,
        transcript: &Transcript,
    ) -> Result<vouch_service::llm::LlmCheck, NodeError> {
        let network = self.network()?;
        let started = Instant::now();
        let verdict = self
            .find_token_referee(network, receipt, transcript)
            .await
            .map_err(|e| {
                NodeError::Unavailable(format!(
                    "this node does not serve model {}, and no other operator could check the answer: {e}",
                    receipt.body.model
                ))
            })?;
        Ok(vouch_service::llm::LlmCheck {
            ok: verdict.failed_at.is_none(),
            tokens: transcript.tokens.len(),
            failed_at: verdict.failed_at,
            reason: verdict.failed_at.map(|_| verdict.reason.clone()),
            seconds: started.elapsed().as_secs_f64(),
            checked_by: Some(verdict),
            tolerance: None,
            beyond: None,
            rule: None,
        })
    }
    /// After this node generated an attested answer on a network: keeps the
    /// transcript for auditors and gossips the receipt.
    pub(crate) async fn after_generation(&self, receipt: &Receipt, transcript: Transcript) {
        let Some(network) = self.network.get() else {
            return;
        };
        if receipt.body.engine.is_unattested() {
            return;
        }
        let bytes = transcript.request.prompt.len()
            + transcript.tokens.len() * 4
            + transcript.texts.iter().map(String::len).sum::<usize>();
        network
            .transcripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(receipt.id, transcript, bytes, self.config().retention);
        network.gossip_receipt(receipt).await;
    }
    /// The transcript this node retains for receipt `id`, as JSON.
    pub(crate) fn retained_transcript(&self, id: &Digest) -> Result<Vec<u8>, NodeError> {
        let t = self
            .network()?
            .transcripts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(id, self.config().retention)
            .ok_or_else(|| {
                NodeError::NotFound(format!(
                    "receipt {id}'s transcript is not retained here (kept {} s)",
                    self.config().retention.as_secs()
                ))
            })?;
        json(&*t)
    }
    /// Answers [`Request::RefereeTokens`]: checks the transcript by teacher
    /// forcing and signs the outcome.
    pub(crate) async fn referee_tokens(
        &self,
        receipt_id: Digest,
        body: &[u8],
    ) -> Result<Vec<u8>, NodeError> {
        let asked: Accusation = serde_json::from_slice(body).map_err(|e| {
            NodeError::BadRequest(format!(
                "the body is not a receipt and transcript as JSON: {e}"
            ))
        })?;
        if asked.receipt.id != receipt_id {
            return Err(NodeError::BadRequest(format!(
                "the body holds receipt {}, not {receipt_id}",
                asked.receipt.id
            )));
        }
        let check = self.check_llm(&asked.receipt, &asked.transcript).await?;
        if !check.ok && check.failed_at.is_none() {
            // Not a token in dispute: the transcript itself does not match.
            return Err(NodeError::BadRequest(check.reason.unwrap_or_default()));
        }
        let verdict = TokenVerdict::sign(
            self.key(),
            &receipt_id,
            check.failed_at,
            check.reason.unwrap_or_default(),
        );
        json(&verdict)
    }
    /// Audits one LLM receipt `executor` signed: fetches the transcript,
    /// checks it by teacher forcing and, when a token fails, has a third
    /// operator referee the same check, publishes the dispute and records
    /// the verdict.
    pub(crate) async fn audit_llm(
        &self,
        network: &Network,
        receipt: Receipt,
        executor: Peer,
    ) -> Result<AuditOutcome, NodeError> {
        let id = receipt.id;
        let body = match ask(
            network,
            executor,
            Frame::new(Request::Transcript { receipt: id }),
        )
        .await
        {
            Ok(body) => body,
            Err(e) => return Ok(self.withheld(network, &receipt, executor, "transcript", &e)),
        };
        let transcript: Transcript = serde_json::from_slice(&body).map_err(|_| {
            NodeError::Unavailable(format!(
                "{executor} sent a transcript this node cannot read"
            ))
        })?;
        if let Err(why) = transcript.verify(&receipt) {
            network.record(executor, |r| r.bad_data += 1);
            return Err(NodeError::Unavailable(format!(
                "{executor} sent a transcript that is not receipt {id}'s: {why}"
            )));
        }
        let check = self.check_llm(&receipt, &transcript).await?;
        if check.ok {
            network.record(executor, |r| r.audits_passed += 1);
            tracing::debug!(%executor, receipt = %id, "LLM audit passed");
            let output = receipt.body.output;
            return Ok(self.passed(receipt, output));
        }
        let reason = check.reason.unwrap_or_default();
        let Some(failed_at) = check.failed_at else {
            return Ok(AuditOutcome::Unresolved(reason));
        };
        tracing::warn!(%executor, receipt = %id, failed_at, %reason, "LLM audit failed; asking a referee");
        let auditor = TokenVerdict::sign(self.key(), &id, Some(failed_at), reason);
        let referee = match self
            .find_token_referee(network, &receipt, &transcript)
            .await
        {
            Ok(v) => v,
            Err(e) => return Ok(AuditOutcome::Unresolved(e.to_string())),
        };
        let faulty = if referee.failed_at.is_some() {
            Party::Executor
        } else {
            Party::Auditor
        };
        let dispute = LlmDispute {
            version: DISPUTE_VERSION,
            executor: receipt,
            transcript,
            auditor,
            referee,
            faulty,
        };
        dispute.check().map_err(|e| {
            NodeError::Internal(format!("a dispute this node built does not check: {e}"))
        })?;
        self.record_llm_dispute(network, &dispute, faulty, "referee");
        let record = json(&dispute)?;
        let _ = network.p2p.publish(Topic::Disputes, record.clone()).await;
        tracing::warn!(%executor, ?faulty, failed_at, "LLM dispute settled by referee");
        self.dispute_on_ledger(&dispute.executor.id, record).await;
        Ok(AuditOutcome::LlmDisputed(Box::new(dispute)))
    }
    /// Asks the operators the draw picks to check the transcript until one
    /// signs a verdict.
    async fn find_token_referee(
        &self,
        network: &Network,
        receipt: &Receipt,
        transcript: &Transcript,
    ) -> Result<TokenVerdict, NodeError> {
        let accusation = json(&Accusation {
            receipt: receipt.clone(),
            transcript: transcript.clone(),
        })?;
        let id = receipt.id;
        self.ask_referees(
            network,
            receipt,
            || Frame {
                head: Request::RefereeTokens { receipt: id },
                body: accusation.clone(),
            },
            |peer, v: &TokenVerdict| {
                peer_id_of(&v.signer) == peer && v.receipt == id && v.verifies()
            },
        )
        .await
    }
    /// Counts a checked LLM dispute against `faulty` (the referee's
    /// finding, or this node's own when it re-checked the tokens) and keeps
    /// it as evidence, once per disputed receipt.
    pub(crate) fn record_llm_dispute(
        &self,
        network: &Network,
        d: &LlmDispute,
        faulty: Party,
        established: &str,
    ) -> bool {
        let (faulty, other) = match faulty {
            Party::Executor => (&d.executor.body.node, &d.auditor.signer),
            Party::Auditor => (&d.auditor.signer, &d.executor.body.node),
        };
        self.count_dispute(
            network,
            d.executor.id,
            (faulty, other),
            serde_json::json!({
                "kind": "llm_dispute",
                "dispute": d,
                "established": established,
            }),
        )
    }
}

/// What a referee is asked to check.
#[derive(Serialize, Deserialize)]
struct Accusation {
    receipt: Receipt,
    transcript: Transcript,
}
