//! A conviction not yet final, its appeal, and how it became final: the
//! state `appeal` works on and `state` keeps.

use std::collections::BTreeMap;

use vouch_types::PublicKey;
use vouch_types::dispute::Party;

/// Settled convictions the ledger keeps a ruling of.
pub const KEPT_RULINGS: usize = 256;

/// A conviction not yet final.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conviction {
    /// The dispute record (JSON) that convicted, for the panel to judge.
    pub record: Vec<u8>,
    /// The executor's operator (account key).
    pub executor: PublicKey,
    /// The auditor's operator.
    pub auditor: PublicKey,
    /// The referee's operator.
    pub referee: PublicKey,
    /// Whom the referee found faulty.
    pub faulty: Party,
    /// What was taken from the convicted party's stake, held.
    pub taken: u64,
    /// The bounty taken from the auditors' pool for the winner, held.
    pub bounty: u64,
    /// The height it was convicted at.
    pub at: u64,
    /// Its appeal, once filed.
    pub appeal: Option<Appeal>,
}

impl Conviction {
    /// The convicted party's operator.
    pub fn convicted(&self) -> PublicKey {
        match self.faulty {
            Party::Executor => self.executor,
            Party::Auditor => self.auditor,
        }
    }

    /// The other party's operator.
    pub fn prevailed(&self) -> PublicKey {
        match self.faulty {
            Party::Executor => self.auditor,
            Party::Auditor => self.executor,
        }
    }
}

/// An appeal of a conviction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appeal {
    /// The height it was filed at.
    pub filed: u64,
    /// The panel's operators (account keys), drawn the block after filing.
    pub panel: Option<Vec<PublicKey>>,
    /// Each panel member's verdict.
    pub votes: BTreeMap<PublicKey, Party>,
    /// The last height at which the panel may decide (set with the panel).
    pub ends: u64,
}

/// How a conviction became final.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ruling {
    /// Nobody appealed within the window.
    Final,
    /// A majority of the panel found the same party faulty.
    Upheld,
    /// A majority of the panel found the other party faulty.
    Overturned,
    /// The panel reached no majority in time: the conviction stands.
    Undecided,
}

impl Ruling {
    /// Its name, as `docs/ledger.md` and the HTTP API write it.
    pub fn name(self) -> &'static str {
        match self {
            Ruling::Final => "final",
            Ruling::Upheld => "upheld",
            Ruling::Overturned => "overturned",
            Ruling::Undecided => "undecided",
        }
    }

    pub(crate) fn tag(self) -> u8 {
        match self {
            Ruling::Final => 0,
            Ruling::Upheld => 1,
            Ruling::Overturned => 2,
            Ruling::Undecided => 3,
        }
    }
}
