//! What happened to one request, as this node knows it (`vouch trace`,
//! `GET /v1/receipts/{id}/trace`): the receipt, its executor's public
//! record on the ledger, who may audit it, what this node's audit of it
//! found, the disputes and quorum disagreements that name it, and whether
//! the ledger convicted on it.

use serde_json::{Value, json};
use vouch_p2p::peer_id_of;
use vouch_service::error::NodeError;
use vouch_types::Digest;

use crate::Node;

/// Evidence records read for one trace, at most.
const EVIDENCE_SCAN: usize = 10_000;

impl Node {
    /// The trace of receipt `id`; not found when this node knows nothing
    /// of it.
    pub fn trace(&self, id: &Digest) -> Result<Value, NodeError> {
        let receipt = self.receipt(id).ok();
        let needle = id.to_string();
        // Evidence naming the receipt: disputes over it, quorum
        // disagreements it was part of.
        let mut evidence = Vec::new();
        let mut after = None;
        let mut read = 0;
        while read < EVIDENCE_SCAN {
            let (page, next) = self.evidence_page(after, 100)?;
            read += page.len();
            evidence.extend(page.into_iter().filter(|r| r.to_string().contains(&needle)));
            match next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        let audited_here: Vec<String> = self
            .network
            .get()
            .map(|n| {
                n.audits
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .iter()
                    .filter(|(r, _)| r == id)
                    .map(|(_, note)| note.clone())
                    .collect()
            })
            .unwrap_or_default();
        // The executor: the receipt's signer, or the one a dispute names.
        let signer = receipt.as_ref().map(|r| r.body.node).or_else(|| {
            evidence.iter().find_map(|r| {
                r["dispute"]["executor"]["node"]
                    .as_str()
                    .and_then(|k| k.parse().ok())
            })
        });
        if receipt.is_none() && evidence.is_empty() && audited_here.is_empty() {
            return Err(NodeError::NotFound(format!(
                "this node knows nothing of receipt {id}: ask the node that executed or routed the request (its receipt names the executor)"
            )));
        }
        let ledger = self.chain.get().map(|chain| {
            chain.read(|l| {
                let operator = signer.and_then(|k| l.operator_of(&k)).and_then(|account| {
                    l.operators().get(&account).map(|o| {
                        json!({
                            "account": account,
                            "stake": o.stake,
                            "slashed": o.slashed,
                            "price": o.offer.price,
                            "contact": o.offer.contact,
                            "registered": o.registered,
                            "earned": o.earned,
                            "audits": {
                                "performed": o.audits.performed,
                                "passed": o.audits.passed,
                                "earned": o.audits.earned,
                            },
                        })
                    })
                });
                json!({"convicted": l.disputed(id), "executor": operator})
            })
        });
        // Its uptime as this node saw its announcements.
        let uptime = signer.and_then(|k| {
            let info = self.network().ok()?.p2p.peers().remove(&peer_id_of(&k))?;
            let (seen, observed) = info.uptime.minutes(vouch_p2p::uptime::now_minute());
            (observed > 0).then(|| json!({"minutes_seen": seen, "minutes_observed": observed}))
        });
        Ok(json!({
            "receipt": receipt,
            "executor": signer,
            "executor_uptime": uptime,
            // Null until the receipt's beacon block (on a chain) is here.
            "drawn_auditors": receipt.as_ref().and_then(|r| {
                let pool = self.draw_pool(r).ok().flatten()?;
                Some(self.drawn_auditors(r, &pool))
            }),
            "audited_here": audited_here,
            "evidence": evidence,
            "ledger": ledger,
        }))
    }
}
