//! Appeals, as a node takes part in them (`docs/ledger.md`, Appeals): a
//! node whose operator the ledger convicted judges the dispute again and
//! appeals when its own judgment differs; a node drawn onto an appeal's
//! panel judges it and votes. Judging re-runs what the dispute is about:
//! the disputed trace step of a tensor dispute (on the inputs the
//! executor hands to panel members), or the teacher-forced check of a
//! generated answer's tokens. A node that cannot judge (it does not serve
//! the model, the inputs are gone) neither appeals nor votes.

use std::collections::BTreeSet;
use std::sync::{Arc, Weak};
use std::time::Duration;

use vouch_ledger::TxBody;
use vouch_p2p::{Frame, Peer, Request, peer_id_of};
use vouch_types::dispute::{Dispute, LlmDispute, Party};
use vouch_types::{Digest, TensorMap};

use crate::node::Node;
use crate::state::ask;

/// What this node is asked to do about one pending conviction.
enum Duty {
    /// Its operator was convicted and has not appealed.
    Appeal,
    /// It sits on the conviction's appeal panel and has not voted.
    Vote,
}

impl Node {
    /// Whether `peer` sits on the panel of an open appeal of the
    /// conviction on receipt `id`: it may have the receipt's inputs, to
    /// judge it.
    pub(crate) fn on_panel(&self, peer: Peer, id: &Digest) -> bool {
        let (Some(chain), Some(key)) = (self.chain.get(), vouch_p2p::key_of_peer(&peer)) else {
            return false;
        };
        chain.read(|l| {
            let Some(account) = l.operator_of(&key) else {
                return false;
            };
            l.operators().get(&account).is_some_and(|o| o.key() == key)
                && l.pending_convictions()
                    .get(id)
                    .and_then(|c| c.appeal.as_ref()?.panel.as_ref())
                    .is_some_and(|panel| panel.contains(&account))
        })
    }

    /// The pending convictions that ask something of this node, with their
    /// records and whom they found faulty.
    fn duties(&self) -> Vec<(Digest, Duty, Vec<u8>, Party)> {
        let Some(chain) = self.chain.get() else {
            return Vec::new();
        };
        let me = self.public_key();
        chain.read(|l| {
            let Some(mine) = l.operator_of(&me) else {
                return Vec::new();
            };
            l.pending_convictions()
                .iter()
                .filter_map(|(id, c)| {
                    let duty = match &c.appeal {
                        None if c.convicted() == mine => Duty::Appeal,
                        Some(a)
                            if a.panel.as_ref().is_some_and(|p| p.contains(&mine))
                                && !a.votes.contains_key(&mine) =>
                        {
                            Duty::Vote
                        }
                        _ => return None,
                    };
                    Some((*id, duty, c.record.clone(), c.faulty))
                })
                .collect()
        })
    }

    /// This node's own verdict on a dispute record: who computed wrongly,
    /// by re-running the disputed step or tokens; `None` where it cannot
    /// tell.
    pub(crate) async fn judge(&self, record: &[u8]) -> Option<Party> {
        if let Ok(d) = serde_json::from_slice::<Dispute>(record) {
            return self.judge_step(&d).await;
        }
        if let Ok(d) = serde_json::from_slice::<vouch_types::llm_pool::PoolDispute>(record) {
            return self.judge_pool(&d).await;
        }
        let d = serde_json::from_slice::<LlmDispute>(record).ok()?;
        if !matches!(
            self.store().model_by_id(&d.executor.body.model),
            Ok(Some(_))
        ) {
            return None;
        }
        self.judge_tokens(&d).await
    }

    /// Re-runs a tensor dispute's model on the receipt's inputs (kept here
    /// when this node executed it, else asked of the executor) and finds
    /// whose leaf at the disputed step it reproduces.
    async fn judge_step(&self, d: &Dispute) -> Option<Party> {
        let id = d.executor.id;
        let inputs = if d.executor.body.node == self.public_key() {
            self.retained(&id).ok()?.0.clone()
        } else {
            let network = self.network().ok()?;
            let executor = peer_id_of(&d.executor.body.node);
            let body = ask(
                network,
                executor,
                Frame::new(Request::Inputs { receipt: id }),
            )
            .await
            .ok()?;
            TensorMap::decode(&body).ok()?
        };
        d.executor.verify_inputs(&inputs).ok()?;
        let exec = self
            .rerun(&d.executor.body.model, inputs, true)
            .await
            .ok()?;
        d.faulty_by_leaf(exec.leaves.get(d.step as usize)?)
    }
}

/// Follows the ledger's pending convictions twice a second: appeals the
/// ones against this node's operator that its own judgment contradicts,
/// and votes on the appeals whose panel it sits on. Each conviction is
/// judged once.
pub(crate) async fn follow_convictions(node: Weak<Node>) {
    let mut judged: BTreeSet<Digest> = BTreeSet::new();
    loop {
        let Some(n) = node.upgrade() else { return };
        for (id, duty, record, faulty) in n.duties() {
            if !judged.insert(id) {
                continue;
            }
            let (n, record) = (Arc::clone(&n), record);
            tokio::spawn(async move { n.do_duty(id, duty, &record, faulty).await });
        }
        drop(n);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

impl Node {
    async fn do_duty(&self, id: Digest, duty: Duty, record: &[u8], faulty: Party) {
        let verdict = self.judge(record).await;
        let receipt = *id.as_bytes();
        let body = match (duty, verdict) {
            (Duty::Appeal, Some(v)) if v != faulty => TxBody::Appeal { receipt },
            (Duty::Appeal, _) => {
                tracing::info!(%id, "the ledger convicted this operator; its own judgment does not contradict it: no appeal");
                return;
            }
            (Duty::Vote, Some(v)) => TxBody::AppealVote {
                receipt,
                executor_faulty: v == Party::Executor,
            },
            (Duty::Vote, None) => {
                tracing::warn!(%id, "drawn onto an appeal's panel, this node cannot judge the dispute (the model or the inputs are not here): no vote");
                return;
            }
        };
        let what = body.kind();
        match self.submit_own(body).await {
            Ok(_) => tracing::warn!(%id, what, ?verdict, "submitted to the ledger"),
            Err(e) => tracing::warn!(%id, what, error = %e, "the ledger refused"),
        }
    }
}
