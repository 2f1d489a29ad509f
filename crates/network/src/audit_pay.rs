//! Being paid for audits (`docs/ledger.md`, Paying audits): a node on a
//! ledger chain declares the models it serves in its offer (the audit draw
//! runs over the operators that declare a receipt's model), and files the
//! report of each audit it passed, with the executor's receipt, as an
//! `Audited` transaction once the executor has audit credit on the ledger.

use std::sync::Weak;
use std::time::Duration;

use vouch_ledger::{BeaconError, Offer, TxBody};
use vouch_service::NodeError;
use vouch_types::audit::AuditReport;

use crate::Node;

/// The most audit reports a node keeps waiting for credit; the oldest go
/// first.
const MAX_WAITING: usize = 4_096;

/// How often the node brings its offer in line and files its reports.
const UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// What to do with a waiting report, from the ledger as it stands.
enum Next {
    /// Send it.
    File,
    /// Keep it: its beacon block is not applied yet, or the executor has
    /// no credit (it has not redeemed its vouchers yet).
    Wait,
    /// Forget it: paid already, or too old to be paid.
    Drop(&'static str),
}

impl Node {
    /// Keeps the report of an audit this node passed, to file it on the
    /// ledger (only on a chain, and only for paid requests: the pool pays
    /// nothing for a free one).
    pub(crate) fn keep_audit_report(&self, report: AuditReport) {
        if self.chain().is_err() || report.receipt.body.price == 0 {
            return;
        }
        let mut waiting = self
            .payments
            .reports
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if waiting.len() >= MAX_WAITING {
            waiting.remove(0);
        }
        waiting.push(report);
    }

    /// The audit reports waiting to be filed.
    pub fn waiting_audit_reports(&self) -> usize {
        self.payments
            .reports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// The offer this node's operator should have on the ledger: its
    /// configured price and the models it serves, beside the contact and
    /// addresses the ledger has.
    fn wanted_offer(&self, on_ledger: &Offer) -> Offer {
        let mut models: Vec<[u8; 32]> = self
            .store()
            .list_models()
            .unwrap_or_default()
            .iter()
            .map(|r| *r.id().as_bytes())
            .collect();
        models.sort_unstable();
        models.dedup();
        models.truncate(vouch_ledger::tx::MAX_MODELS);
        Offer {
            price: self.config().price,
            models,
            ..on_ledger.clone()
        }
    }

    /// Brings the ledger's offer of this operator in line with its price
    /// and models, where it is registered and they differ.
    pub(crate) async fn declare_offer(&self) -> Result<(), NodeError> {
        let me = self.public_key();
        let Some(offer) = self
            .chain()?
            .read(|l| l.operators().get(&me).map(|op| op.offer.clone()))
        else {
            return Ok(());
        };
        let wanted = self.wanted_offer(&offer);
        if wanted != offer {
            self.submit_own(TxBody::SetOffer(wanted)).await?;
        }
        Ok(())
    }

    /// Files the waiting audit reports the ledger would pay now, drops
    /// those it never will; the number paid.
    pub(crate) async fn file_audit_reports(&self) -> usize {
        let Ok(chain) = self.chain() else { return 0 };
        let waiting = std::mem::take(
            &mut *self
                .payments
                .reports
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
        );
        let me = self.public_key();
        let mut kept = Vec::new();
        let mut paid = 0;
        for report in waiting {
            let r = &report.receipt;
            let next = chain.read(|l| {
                if l.audit_paid(r.body.timestamp_ms, &r.id, &me) {
                    return Next::Drop("paid already");
                }
                match l.beacon_after(r.body.timestamp_ms) {
                    Err(BeaconError::NotYet { .. }) => return Next::Wait,
                    Err(_) => return Next::Drop("past the dispute window"),
                    Ok(_) => {}
                }
                let credit = l
                    .operator_of(&r.body.node)
                    .map_or(0, |executor| l.audit_credit(&executor));
                if credit == 0 || l.auditors_pool() == 0 {
                    Next::Wait
                } else {
                    Next::File
                }
            });
            match next {
                Next::Wait => kept.push(report),
                Next::Drop(why) => {
                    tracing::debug!(receipt = %r.id, why, "audit report not filed");
                }
                Next::File => {
                    let bytes = match serde_json::to_vec(&report) {
                        Ok(b) => b,
                        Err(_) => continue,
                    };
                    match self.submit_own(TxBody::Audited { report: bytes }).await {
                        Ok(_) => {
                            paid += 1;
                            tracing::info!(receipt = %r.id, "the auditors' pool paid this node's audit");
                        }
                        // Another auditor took the credit first: wait for more.
                        Err(e) if e.to_string().contains("no audit credit") => kept.push(report),
                        Err(e) => {
                            tracing::warn!(receipt = %r.id, error = %e, "the ledger did not pay the audit")
                        }
                    }
                }
            }
        }
        let mut waiting = self
            .payments
            .reports
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        kept.append(&mut waiting);
        *waiting = kept;
        paid
    }
}

/// The node's ledger upkeep: every second, brings its offer in line with
/// its price and models and files its audit reports, until the node is
/// dropped.
pub(crate) async fn upkeep(node: Weak<Node>) {
    loop {
        tokio::time::sleep(UPKEEP_EVERY).await;
        let Some(node) = node.upgrade() else { return };
        if let Err(e) = node.declare_offer().await {
            tracing::warn!(error = %e, "declaring the offer on the ledger; retried next round");
        }
        node.file_audit_reports().await;
    }
}
