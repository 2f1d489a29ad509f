//! Governance: parameter changes proposed and voted on the ledger, weighted
//! by bonded stake, with a turnout quorum, a threshold, a voting period and
//! a timelock that are parameters themselves (`docs/ledger.md`,
//! Governance). There is no admin key: genesis sets the first parameters,
//! and every later change is a vote.

use std::collections::BTreeMap;

use vouch_types::PublicKey;
use vouch_types::receipt::{MAX_CLOCK_SKEW_MS, MAX_RECEIPT_AGE_MS};

use crate::state::{Ledger, Params, Proposal, Status, TxError};
use crate::tx::MAX_CHANGES;

impl Params {
    /// Every parameter's name, in the order the state root encodes them.
    pub const NAMES: [&'static str; 26] = [
        "min_stake",
        "unbonding_delay",
        "escrow_delay",
        "slash_bp",
        "reward_bp",
        "audit_rate_ppm",
        "llm_tolerance_ppm",
        "max_validators",
        "voting_period",
        "timelock",
        "quorum_bp",
        "threshold_bp",
        "fee_auditors_bp",
        "fee_treasury_bp",
        "dispute_bounty",
        "epoch_length",
        "open_admission",
        "beacon_delay_ms",
        "dispute_window",
        "appeal_window",
        "appeal_panel",
        "audit_pay_bp",
        "llm_exceed_ppm",
        "llm_hard_ppm",
        "llm_cpu_exceed_ppm",
        "llm_pool_window_ms",
    ];

    /// The values, in [`Params::NAMES`]' order.
    pub fn values(&self) -> [u64; 26] {
        [
            self.min_stake,
            self.unbonding_delay,
            self.escrow_delay,
            self.slash_bp,
            self.reward_bp,
            self.audit_rate_ppm,
            self.llm_tolerance_ppm,
            self.max_validators,
            self.voting_period,
            self.timelock,
            self.quorum_bp,
            self.threshold_bp,
            self.fee_auditors_bp,
            self.fee_treasury_bp,
            self.dispute_bounty,
            self.epoch_length,
            self.open_admission,
            self.beacon_delay_ms,
            self.dispute_window,
            self.appeal_window,
            self.appeal_panel,
            self.audit_pay_bp,
            self.llm_exceed_ppm,
            self.llm_hard_ppm,
            self.llm_cpu_exceed_ppm,
            self.llm_pool_window_ms,
        ]
    }

    /// The parameter `name`'s value.
    pub fn get(&self, name: &str) -> Option<u64> {
        Params::NAMES
            .iter()
            .position(|n| *n == name)
            .map(|i| self.values()[i])
    }

    /// Whether `value` is allowed for `name`; the error says the bounds.
    pub fn check(name: &str, value: u64) -> Result<(), String> {
        let (lo, hi) = match name {
            "min_stake" | "max_validators" | "unbonding_delay" | "escrow_delay"
            | "voting_period" | "epoch_length" => (1, u64::MAX),
            "timelock" | "dispute_bounty" => (0, u64::MAX),
            // Each at most half, so that the operator keeps the rest.
            "fee_auditors_bp" | "fee_treasury_bp" => (0, 5_000),
            "slash_bp" | "reward_bp" => (0, 10_000),
            "quorum_bp" => (1, 10_000),
            // At least a simple majority of the stake that voted.
            "threshold_bp" => (5_000, 9_999),
            "audit_rate_ppm" | "llm_tolerance_ppm" => (0, 1_000_000),
            "open_admission" => (0, 1),
            // Longer than a fresh receipt may be old (and a clock ahead),
            // so that its beacon block is in the executor's future when
            // its answer arrives.
            "beacon_delay_ms" => (MAX_RECEIPT_AGE_MS + MAX_CLOCK_SKEW_MS, u64::MAX),
            // Kept beacons are in the state: at most a million blocks.
            "dispute_window" => (1, 1_000_000),
            // 0: convictions are final at once.
            "appeal_window" => (0, 1_000_000),
            "appeal_panel" => (1, 101),
            // At most ten times the audited request's price.
            "audit_pay_bp" => (0, 100_000),
            // The rule's binomial tail is exact up to 5% (llm_rule).
            "llm_exceed_ppm" | "llm_cpu_exceed_ppm" => (0, 50_000),
            // Up to the largest tolerance the audit searches.
            "llm_hard_ppm" => (0, 250_000),
            // 0: no pooled audits; else at least a second, at most a day.
            "llm_pool_window_ms" if value == 0 => (0, 0),
            "llm_pool_window_ms" => (1_000, 86_400_000),
            other => {
                return Err(format!(
                    "no parameter `{other}`; the parameters are {}",
                    Params::NAMES.join(", ")
                ));
            }
        };
        if (lo..=hi).contains(&value) {
            Ok(())
        } else {
            Err(format!(
                "{name} = {value} is out of bounds: it must be between {lo} and {hi}"
            ))
        }
    }

    /// Sets parameter `name` (its bounds are [`Params::check`]'s, not
    /// checked here); an unknown name is an error listing the known ones.
    pub fn set(&mut self, name: &str, value: u64) -> Result<(), String> {
        let field = match name {
            "min_stake" => &mut self.min_stake,
            "unbonding_delay" => &mut self.unbonding_delay,
            "escrow_delay" => &mut self.escrow_delay,
            "slash_bp" => &mut self.slash_bp,
            "reward_bp" => &mut self.reward_bp,
            "audit_rate_ppm" => &mut self.audit_rate_ppm,
            "llm_tolerance_ppm" => &mut self.llm_tolerance_ppm,
            "max_validators" => &mut self.max_validators,
            "voting_period" => &mut self.voting_period,
            "timelock" => &mut self.timelock,
            "quorum_bp" => &mut self.quorum_bp,
            "threshold_bp" => &mut self.threshold_bp,
            "fee_auditors_bp" => &mut self.fee_auditors_bp,
            "fee_treasury_bp" => &mut self.fee_treasury_bp,
            "dispute_bounty" => &mut self.dispute_bounty,
            "epoch_length" => &mut self.epoch_length,
            "open_admission" => &mut self.open_admission,
            "beacon_delay_ms" => &mut self.beacon_delay_ms,
            "dispute_window" => &mut self.dispute_window,
            "appeal_window" => &mut self.appeal_window,
            "appeal_panel" => &mut self.appeal_panel,
            "audit_pay_bp" => &mut self.audit_pay_bp,
            "llm_exceed_ppm" => &mut self.llm_exceed_ppm,
            "llm_hard_ppm" => &mut self.llm_hard_ppm,
            "llm_cpu_exceed_ppm" => &mut self.llm_cpu_exceed_ppm,
            "llm_pool_window_ms" => &mut self.llm_pool_window_ms,
            other => {
                return Err(format!(
                    "no parameter `{other}`; the parameters are {}",
                    Params::NAMES.join(", ")
                ));
            }
        };
        *field = value;
        Ok(())
    }
}

impl Ledger {
    /// The releases voted on: version → (binary digest, allowed).
    pub fn releases(&self) -> &BTreeMap<String, ([u8; 32], bool)> {
        &self.releases
    }

    /// Whether software `version` may serve: a version voted on, as the
    /// vote said; any other only while no vote has allowed a release (then
    /// the allowed ones are the list).
    pub fn release_allowed(&self, version: &str) -> bool {
        allowed_in(&self.releases, version)
    }

    /// The height at which a passed proposal, not in force yet, stops
    /// `version` serving (by retiring it, or by allowing others while it
    /// is not allowed): the soonest such, or `None`.
    pub fn release_retiring(&self, version: &str) -> Option<u64> {
        if !self.release_allowed(version) {
            return None;
        }
        self.proposals
            .iter()
            .filter_map(|p| match p.status {
                Status::Passed { activates } => Some((p, activates)),
                _ => None,
            })
            .filter(|(p, _)| {
                let mut after = self.releases.clone();
                for (v, digest, allowed) in &p.releases {
                    after.insert(v.clone(), (*digest, *allowed));
                }
                !allowed_in(&after, version)
            })
            .map(|(_, at)| at)
            .min()
    }

    /// Every proposal, oldest first.
    pub fn proposals(&self) -> &[Proposal] {
        &self.proposals
    }

    /// A staked operator (its account key) proposes `changes`.
    pub(crate) fn propose(
        &mut self,
        signer: &PublicKey,
        changes: &[(String, u64)],
        spends: &[(PublicKey, u64)],
        releases: &[(String, [u8; 32], bool)],
    ) -> Result<(), TxError> {
        let bad = |why: String| TxError::Governance(why);
        let stake = self.operators().get(signer).map_or(0, |o| o.stake);
        if stake < self.params().min_stake {
            return Err(bad(format!(
                "only an operator with at least the minimum stake ({}) may propose; {signer} has {stake}",
                self.params().min_stake
            )));
        }
        let items = changes.len() + spends.len() + releases.len();
        if items == 0 || items > MAX_CHANGES {
            return Err(bad(format!(
                "a proposal sets 1 to {MAX_CHANGES} parameters, treasury spends and releases in all, not {items}"
            )));
        }
        for (version, _, _) in releases {
            if version.is_empty() || version.len() > 64 || version.contains(char::is_whitespace) {
                return Err(bad(format!(
                    "release `{version}`: a version is 1 to 64 characters without spaces (as `vouch --version` prints it)"
                )));
            }
        }
        let mut total: u64 = 0;
        for (to, amount) in spends {
            if *amount == 0 {
                return Err(bad(format!("a spend of 0 to {to}")));
            }
            total = total.checked_add(*amount).ok_or(TxError::Overflow)?;
        }
        for (i, (name, value)) in changes.iter().enumerate() {
            Params::check(name, *value).map_err(bad)?;
            if changes[..i].iter().any(|(n, _)| n == name) {
                return Err(bad(format!("{name} is set twice")));
            }
        }
        let height = self.height();
        let id = self.proposals.len() as u64;
        let voting_ends = height.saturating_add(self.params().voting_period);
        self.proposals.push(Proposal {
            id,
            proposer: *signer,
            changes: changes.to_vec(),
            spends: spends.to_vec(),
            releases: releases.to_vec(),
            proposed: height,
            voting_ends,
            votes: BTreeMap::new(),
            tally: None,
            status: Status::Voting,
        });
        Ok(())
    }

    /// An operator with bonded stake votes on proposal `id`; a later vote
    /// replaces its earlier one.
    pub(crate) fn vote(&mut self, signer: &PublicKey, id: u64, yes: bool) -> Result<(), TxError> {
        let bad = |why: String| TxError::Governance(why);
        let stake = self.operators().get(signer).map_or(0, |o| o.stake);
        if stake == 0 {
            return Err(bad(format!(
                "{signer} has no bonded stake: votes weigh by stake, so only staked operators vote"
            )));
        }
        let height = self.height();
        let Some(p) = self.proposals.get_mut(id as usize) else {
            return Err(bad(format!("no proposal {id}")));
        };
        if p.status != Status::Voting || height >= p.voting_ends {
            return Err(bad(format!(
                "proposal {id}'s vote ended at height {}",
                p.voting_ends
            )));
        }
        p.votes.insert(*signer, yes);
        Ok(())
    }

    /// At each block: counts the votes of proposals whose voting period
    /// ended, then activates those passed whose timelock ended.
    pub(crate) fn govern(&mut self) {
        let height = self.height();
        let total: u64 = self.operators().values().map(|o| o.stake).sum();
        let (quorum_bp, threshold_bp, timelock) = {
            let p = self.params();
            (p.quorum_bp, p.threshold_bp, p.timelock)
        };
        let stakes: BTreeMap<PublicKey, u64> = self
            .operators()
            .iter()
            .map(|(k, o)| (*k, o.stake))
            .collect();
        let mut activate = Vec::new();
        for p in &mut self.proposals {
            if p.status == Status::Voting && height >= p.voting_ends {
                let (mut yes, mut no) = (0u64, 0u64);
                for (voter, v) in &p.votes {
                    let s = stakes.get(voter).copied().unwrap_or(0);
                    if *v {
                        yes += s;
                    } else {
                        no += s;
                    }
                }
                p.tally = Some((yes, no, total));
                let turnout = (yes + no) as u128 * 10_000 >= quorum_bp as u128 * total as u128;
                let majority = yes as u128 * 10_000 > threshold_bp as u128 * (yes + no) as u128;
                p.status = if total > 0 && turnout && majority {
                    Status::Passed {
                        activates: height.saturating_add(timelock),
                    }
                } else {
                    Status::Rejected
                };
            }
            if let Status::Passed { activates } = p.status
                && height >= activates
            {
                activate.push(p.id as usize);
            }
        }
        // In order of proposal: each all or nothing (spends the treasury
        // cannot pay leave its parameters unchanged too).
        for i in activate {
            let spent: u64 = self.proposals[i].spends.iter().map(|(_, a)| a).sum();
            if spent > self.treasury {
                self.proposals[i].status = Status::Failed { at: height };
                continue;
            }
            self.treasury -= spent;
            self.proposals[i].status = Status::Activated { at: height };
            for (to, amount) in self.proposals[i].spends.clone() {
                self.account_mut(&to).balance += amount;
            }
            for (name, value) in self.proposals[i].changes.clone() {
                // Names were checked when proposed.
                let _ = self.params_mut().set(&name, value);
            }
            for (version, digest, allowed) in self.proposals[i].releases.clone() {
                self.releases.insert(version, (digest, allowed));
            }
        }
    }
}

/// [`Ledger::release_allowed`] over a releases map.
fn allowed_in(releases: &BTreeMap<String, ([u8; 32], bool)>, version: &str) -> bool {
    match releases.get(version) {
        Some((_, allowed)) => *allowed,
        None => !releases.values().any(|(_, allowed)| *allowed),
    }
}
