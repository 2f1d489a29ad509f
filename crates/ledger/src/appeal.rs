//! Appeals (`docs/ledger.md`, Appeals): a conviction holds what it took
//! from the convicted party for `appeal_window` blocks, in which that party
//! may appeal. The block after an appeal draws a panel of `appeal_panel`
//! staked operators, none of the dispute's three parties, weighted by
//! stake and seeded by that block's beacon, which the appellant could not
//! know. Each panel member judges the dispute again (it re-runs the
//! disputed step or tokens) and votes; a majority of the panel is final.
//! Upheld, the conviction pays out and the appellant is slashed again;
//! overturned, the appellant's stake comes back and the other party and
//! the referee are slashed, their reward to the appellant. A panel that
//! reaches no majority within `appeal_window` blocks leaves the conviction
//! as it was.

use std::collections::BTreeMap;

use vouch_types::dispute::{Party, Pool, appeal_draw};
use vouch_types::encode::Sink;
use vouch_types::{Digest, Kind, PublicKey};

pub use crate::conviction::{Appeal, Conviction, KEPT_RULINGS, Ruling};
use crate::state::{Ledger, TxError};

impl Ledger {
    /// Convictions not yet final, by executor receipt.
    pub fn pending_convictions(&self) -> &BTreeMap<Digest, Conviction> {
        &self.pending
    }

    /// The last [`KEPT_RULINGS`] convictions settled, oldest first.
    pub fn rulings(&self) -> &std::collections::VecDeque<(Digest, Ruling)> {
        &self.rulings
    }

    /// At the start of each block (after its beacon): settles convictions
    /// whose appeal window passed unappealed, draws the panels of appeals
    /// filed in earlier blocks, and settles appeals whose panel ran out of
    /// time.
    pub(crate) fn appeals(&mut self) {
        let height = self.height();
        let window = self.params().appeal_window;
        let receipts: Vec<Digest> = self.pending.keys().copied().collect();
        for receipt in receipts {
            let c = &self.pending[&receipt];
            match &c.appeal {
                None if height > c.at + window => self.settle(receipt, Ruling::Final),
                Some(a) if a.panel.is_none() && a.filed < height => {
                    let panel = self.draw_panel(&receipt, c);
                    if let Some(a) = self
                        .pending
                        .get_mut(&receipt)
                        .and_then(|c| c.appeal.as_mut())
                    {
                        a.panel = Some(panel);
                        a.ends = height + window;
                    }
                }
                Some(a) if a.panel.is_some() && height > a.ends => {
                    self.settle(receipt, Ruling::Undecided);
                }
                _ => {}
            }
        }
    }

    /// The first `appeal_panel` of the [`appeal_draw`] over the staked
    /// operators but the dispute's three parties, by stake, with this
    /// block's beacon; as operator account keys.
    fn draw_panel(&self, receipt: &Digest, c: &Conviction) -> Vec<PublicKey> {
        let parties = [c.executor, c.auditor, c.referee];
        let pool = Pool {
            weights: self.stake_weights(|account| !parties.contains(account)),
            beacon: Some(self.beacon()),
        };
        appeal_draw(receipt, &pool)
            .into_iter()
            .take(self.params().appeal_panel as usize)
            .filter_map(|k| self.operator_of(&k))
            .collect()
    }

    /// `Appeal`: the convicted party (its operator, by any of its keys)
    /// appeals its conviction on `receipt`, once, within the window.
    pub(crate) fn appeal(&mut self, signer: &PublicKey, receipt: &[u8; 32]) -> Result<(), TxError> {
        let bad = |why: String| TxError::Appeal(why);
        let id = Digest::from_bytes(Kind::Receipt, *receipt);
        let height = self.height();
        let window = self.params().appeal_window;
        let who = self.operator_of(signer);
        let c = self.pending.get_mut(&id).ok_or_else(|| {
            bad(format!(
                "no conviction on receipt {id} awaits an appeal (none was made, or it is final)"
            ))
        })?;
        if who != Some(c.convicted()) {
            return Err(bad(format!(
                "only the convicted operator {} may appeal the conviction on receipt {id}",
                c.convicted()
            )));
        }
        if c.appeal.is_some() {
            return Err(bad(format!(
                "the conviction on receipt {id} was appealed already"
            )));
        }
        if height > c.at + window {
            return Err(bad(format!(
                "the appeal window of the conviction on receipt {id} closed at height {}",
                c.at + window
            )));
        }
        c.appeal = Some(Appeal {
            filed: height,
            panel: None,
            votes: BTreeMap::new(),
            ends: 0,
        });
        Ok(())
    }

    /// `AppealVote`: a panel member's verdict; a majority of the panel
    /// settles the appeal at once.
    pub(crate) fn appeal_vote(
        &mut self,
        signer: &PublicKey,
        receipt: &[u8; 32],
        executor_faulty: bool,
    ) -> Result<(), TxError> {
        let bad = |why: String| TxError::Appeal(why);
        let id = Digest::from_bytes(Kind::Receipt, *receipt);
        let who = self.operator_of(signer);
        let c = self
            .pending
            .get_mut(&id)
            .ok_or_else(|| bad(format!("no appeal of receipt {id} is open")))?;
        let Some(Appeal {
            panel: Some(panel),
            votes,
            ..
        }) = c.appeal.as_mut()
        else {
            return Err(bad(format!(
                "the conviction on receipt {id} has no panel (not appealed, or drawn next block)"
            )));
        };
        let Some(member) = who.filter(|w| panel.contains(w)) else {
            return Err(bad(format!(
                "{signer} is not on the panel of the appeal of receipt {id}"
            )));
        };
        if votes.contains_key(&member) {
            return Err(bad(format!(
                "{member} voted on the appeal of receipt {id} already"
            )));
        }
        let verdict = if executor_faulty {
            Party::Executor
        } else {
            Party::Auditor
        };
        votes.insert(member, verdict);
        let size = panel.len();
        let agree = votes.values().filter(|v| **v == verdict).count();
        if agree * 2 > size {
            let ruling = if verdict == c.faulty {
                Ruling::Upheld
            } else {
                Ruling::Overturned
            };
            self.settle(id, ruling);
        }
        Ok(())
    }

    /// Makes the conviction on `receipt` final by `ruling`: pays out what
    /// it held (reward to the other party, the rest burned, the bounty to
    /// the other party) and, when an appeal was lost, slashes the appellant
    /// again; or, overturned, gives the appellant its stake back, returns
    /// the bounty to the pool and slashes the other party and the referee,
    /// their reward to the appellant.
    pub(crate) fn settle(&mut self, receipt: Digest, ruling: Ruling) {
        let Some(c) = self.pending.remove(&receipt) else {
            return;
        };
        let (convicted, prevailed) = (c.convicted(), c.prevailed());
        match ruling {
            Ruling::Final | Ruling::Upheld | Ruling::Undecided => {
                self.pay_out(c.taken, &prevailed);
                self.account_mut(&prevailed).balance += c.bounty;
                if ruling == Ruling::Upheld {
                    let again = self.take(&convicted);
                    self.pay_out(again, &prevailed);
                }
            }
            Ruling::Overturned => {
                self.restore(&convicted, c.taken);
                self.auditors_pool += c.bounty;
                for wrong in [prevailed, c.referee] {
                    let taken = self.take(&wrong);
                    self.pay_out(taken, &convicted);
                }
            }
        }
        self.ruled(receipt, ruling);
    }

    /// Keeps a settled conviction's ruling among the last
    /// [`KEPT_RULINGS`].
    pub(crate) fn ruled(&mut self, receipt: Digest, ruling: Ruling) {
        self.rulings.push_back((receipt, ruling));
        if self.rulings.len() > KEPT_RULINGS {
            self.rulings.pop_front();
        }
    }

    /// The state root's part for appeals (`docs/ledger.md`, The state
    /// root).
    pub(crate) fn encode_appeals(&self, b: &mut Vec<u8>) {
        b.put_u64(self.pending.len() as u64);
        for (receipt, c) in &self.pending {
            b.put(receipt.as_bytes());
            b.put(blake3::hash(&c.record).as_bytes());
            for k in [c.executor, c.auditor, c.referee] {
                b.put(k.as_bytes());
            }
            b.put_u8(u8::from(c.faulty == Party::Executor));
            b.put_u64(c.taken);
            b.put_u64(c.bounty);
            b.put_u64(c.at);
            match &c.appeal {
                None => b.put_u8(0),
                Some(a) => {
                    b.put_u8(1);
                    b.put_u64(a.filed);
                    match &a.panel {
                        None => b.put_u8(0),
                        Some(panel) => {
                            b.put_u8(1);
                            b.put_u64(panel.len() as u64);
                            for k in panel {
                                b.put(k.as_bytes());
                            }
                        }
                    }
                    b.put_u64(a.votes.len() as u64);
                    for (k, v) in &a.votes {
                        b.put(k.as_bytes());
                        b.put_u8(u8::from(*v == Party::Executor));
                    }
                    b.put_u64(a.ends);
                }
            }
        }
        b.put_u64(self.rulings.len() as u64);
        for (receipt, ruling) in &self.rulings {
            b.put(receipt.as_bytes());
            b.put_u8(ruling.tag());
        }
    }
}
