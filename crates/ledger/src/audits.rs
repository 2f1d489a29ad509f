//! Paying audits (`docs/ledger.md`, Paying audits): the auditors' pool
//! pays a drawn auditor for each audit that passed, on its signed
//! [`AuditReport`] with the executor's receipt in it; the ledger checks the
//! report, that the auditor was drawn for the receipt (among the staked
//! operators that declare the receipt's model, with the receipt's beacon),
//! and pays each (receipt, auditor) once.
//!
//! Receipts cost nothing to sign, so a receipt alone proves no payment: the
//! pool pays audits of an operator's receipts only out of that operator's
//! *audit credit*, the share of its settled fees that went into the pool.
//! An operator that pays itself through a client account to fund audits of
//! its own receipts gets back at most the pool's share and loses the
//! treasury's, so farming the pool does not pay.

use vouch_types::audit::AuditReport;
use vouch_types::dispute::Pool;
use vouch_types::encode::Sink;
use vouch_types::{Digest, PublicKey};

use crate::state::{BeaconError, Ledger, TxError};

impl Ledger {
    /// What the auditors' pool may still pay for audits of `operator`'s
    /// receipts (by account key).
    pub fn audit_credit(&self, operator: &PublicKey) -> u64 {
        self.audit_credit.get(operator).copied().unwrap_or(0)
    }

    /// Whether the pool paid `auditor` (an account key) for its audit of
    /// `receipt` (stamped `timestamp_ms`).
    pub fn audit_paid(&self, timestamp_ms: u64, receipt: &Digest, auditor: &PublicKey) -> bool {
        self.audits_paid
            .contains(&(timestamp_ms, *receipt, *auditor))
    }

    /// Whether operator `account` declares model `model` in its offer.
    pub fn declares(&self, account: &PublicKey, model: &Digest) -> bool {
        self.operators
            .get(account)
            .is_some_and(|o| o.offer.models.binary_search(model.as_bytes()).is_ok())
    }

    /// The current keys of the operators that declare model `model`.
    pub fn declaring(&self, model: &Digest) -> std::collections::BTreeSet<PublicKey> {
        self.operators
            .iter()
            .filter(|(a, _)| self.declares(a, model))
            .map(|(_, o)| o.key())
            .collect()
    }

    /// The operators drawn to audit a receipt of model `model` that
    /// `executor` (a signing key) signed at `timestamp_ms`: the
    /// [`Ledger::draw_pool`] restricted to the operators whose offer
    /// declares the model.
    pub fn audit_pool(
        &self,
        executor: &PublicKey,
        model: &Digest,
        timestamp_ms: u64,
    ) -> Result<Pool, BeaconError> {
        let beacon = self.beacon_after(timestamp_ms)?;
        let executor = self.operator_of(executor);
        let declares = |account: &PublicKey| {
            self.operators
                .get(account)
                .is_some_and(|o| o.offer.models.binary_search(model.as_bytes()).is_ok())
        };
        Ok(Pool {
            weights: self.stake_weights(|a| Some(*a) != executor && declares(a)),
            beacon: Some(beacon),
        })
    }

    /// Pays `signer` (an operator's account) for the audit `report` (an
    /// [`AuditReport`]'s JSON) reports: every check first, then the
    /// payment, `audit_pay_bp` of the receipt's price within the
    /// executor's audit credit and what the pool holds.
    pub(crate) fn pay_audit(&mut self, signer: &PublicKey, report: &[u8]) -> Result<(), TxError> {
        let bad = |why: String| TxError::Audit(why);
        let report: AuditReport = serde_json::from_slice(report).map_err(|e| {
            bad(format!(
                "the report is not an audit report's JSON (as nodes write them): {e}"
            ))
        })?;
        report.check().map_err(|e| bad(e.to_string()))?;
        let receipt = &report.receipt;
        let (id, stamped) = (receipt.id, receipt.body.timestamp_ms);
        match self.operator_of(&report.auditor) {
            None => {
                return Err(bad(format!(
                    "the auditor {} is not a registered operator",
                    report.auditor
                )));
            }
            Some(a) if a != *signer => {
                return Err(bad(format!(
                    "the report is signed by {}, which is not a key of the transaction's signer {signer}",
                    report.auditor
                )));
            }
            Some(_) => {}
        }
        let executor = self.operator_of(&receipt.body.node).ok_or_else(|| {
            bad(format!(
                "the executor {} is not a registered operator",
                receipt.body.node
            ))
        })?;
        if stamped <= self.audits_floor {
            return Err(bad(format!(
                "receipt {id} is older than the dispute window: its audits are no longer paid"
            )));
        }
        let pool = self
            .audit_pool(&receipt.body.node, &receipt.body.model, stamped)
            .map_err(|e| bad(format!("receipt {id}: {e}")))?;
        report.check_drawn(&pool).map_err(|e| {
            bad(format!(
                "{e} (on the ledger the draw runs over the staked operators whose offer declares model {}, weighted by stake and seeded by the receipt's beacon)",
                receipt.body.model
            ))
        })?;
        if self.audits_paid.contains(&(stamped, id, *signer)) {
            return Err(bad(format!(
                "{signer}'s audit of receipt {id} was paid already"
            )));
        }
        if self.disputed(&id) {
            return Err(bad(format!(
                "receipt {id} was convicted on: an audit that passed it is not paid"
            )));
        }
        let price_share = (u128::from(receipt.body.price) * u128::from(self.params().audit_pay_bp)
            / 10_000)
            .min(u128::from(u64::MAX)) as u64;
        let credit = self.audit_credit(&executor);
        let pay = price_share.min(credit).min(self.auditors_pool);
        if pay == 0 {
            let why = if receipt.body.price == 0 {
                "the receipt's price is 0: the pool pays audits of paid requests only".to_string()
            } else if price_share == 0 {
                "`audit_pay_bp` is 0: audits are not paid".to_string()
            } else if credit == 0 {
                format!(
                    "operator {executor} has no audit credit: the pool pays audits of an operator's receipts only out of its share of that operator's settled fees; report again after the executor redeems its vouchers"
                )
            } else {
                "the auditors' pool is empty".to_string()
            };
            return Err(bad(why));
        }
        *self.audit_credit.entry(executor).or_default() -= pay;
        self.auditors_pool -= pay;
        self.account_mut(signer).balance += pay;
        self.audits_paid.insert((stamped, id, *signer));
        *self.this_epoch.audit_pay.entry(*signer).or_default() += pay;
        if let Some(op) = self.operators.get_mut(signer) {
            op.audits.performed += 1;
            op.audits.earned += pay;
        }
        if let Some(op) = self.operators.get_mut(&executor) {
            op.audits.passed += 1;
        }
        Ok(())
    }

    /// Forgets the audits paid for receipts whose beacon block left the
    /// dispute window: from then on their audits are refused as too old,
    /// whatever `beacon_delay_ms` becomes.
    pub(crate) fn forget_audits(&mut self) {
        let floor = self
            .beacons_floor
            .saturating_sub(self.params().beacon_delay_ms);
        if floor > self.audits_floor {
            self.audits_floor = floor;
            while self
                .audits_paid
                .first()
                .is_some_and(|(t, _, _)| *t <= floor)
            {
                self.audits_paid.pop_first();
            }
        }
    }

    /// The audit state's canonical bytes (`docs/ledger.md`): the credits,
    /// the floor and the audits paid, in key order.
    pub(crate) fn encode_audits(&self, b: &mut Vec<u8>) {
        b.put_u64(self.audit_credit.len() as u64);
        for (k, credit) in &self.audit_credit {
            b.put(k.as_bytes());
            b.put_u64(*credit);
        }
        b.put_u64(self.audits_floor);
        b.put_u64(self.audits_paid.len() as u64);
        for (t, receipt, auditor) in &self.audits_paid {
            b.put_u64(*t);
            b.put(receipt.as_bytes());
            b.put(auditor.as_bytes());
        }
    }
}
