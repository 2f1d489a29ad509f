//! The ledger's state and its one transition, [`Ledger::apply_block`].

use std::collections::{BTreeMap, BTreeSet};

use vouch_proof::ProofDispute;
use vouch_types::dispute::{Dispute, LlmDispute, Party, Pool, check_parties};
use vouch_types::encode::Sink;
use vouch_types::llm_pool::PoolDispute;
use vouch_types::{Digest, PublicKey};

use crate::tx::{Offer, Tx, TxBody, TxId, Voucher, tx_id};

/// The network's parameters, read by every node from the ledger. They
/// change only through governance (`governance`): genesis sets them, votes
/// change them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Params {
    /// Stake an operator needs before its word counts (quorums, referee
    /// draws, audits, disputes).
    pub min_stake: u64,
    /// Blocks between an unbond and the stake's return (it can be slashed
    /// until then).
    pub unbonding_delay: u64,
    /// Blocks between a withdrawal from escrow and its arrival, so that
    /// operators holding the client's vouchers can redeem them first.
    pub escrow_delay: u64,
    /// The share of a convicted operator's stake taken, in basis points.
    pub slash_bp: u64,
    /// The share of what is slashed paid to the other party of the
    /// dispute, in basis points; the rest is burned.
    pub reward_bp: u64,
    /// The audit sampling rate, parts per million.
    pub audit_rate_ppm: u64,
    /// The relative tolerance LLM audits allow, parts per million.
    pub llm_tolerance_ppm: u64,
    /// The most validators (the operators with the most stake).
    pub max_validators: u64,
    /// Blocks a proposal is open for votes.
    pub voting_period: u64,
    /// Blocks between a proposal passing and its changes taking effect.
    pub timelock: u64,
    /// The share of all bonded stake that must vote for a proposal to
    /// count, in basis points.
    pub quorum_bp: u64,
    /// The share of the voting stake that must vote yes, in basis points:
    /// a proposal passes with more than this.
    pub threshold_bp: u64,
    /// The share of every settled payment that goes to the auditors' pool,
    /// in basis points.
    pub fee_auditors_bp: u64,
    /// The share of every settled payment that goes to the treasury, in
    /// basis points; the operator keeps the rest.
    pub fee_treasury_bp: u64,
    /// What the auditors' pool pays the winner of each dispute that
    /// convicts (as much as the pool holds).
    pub dispute_bounty: u64,
    /// Blocks per epoch: the validator set is the operators with the most
    /// stake as of each epoch's last block, for the whole next epoch.
    pub epoch_length: u64,
    /// 1: a node may route a request to an operator without the minimum
    /// stake when no staked one serves the model (the answer says so,
    /// `executed_by.admitted`); 0: never.
    pub open_admission: u64,
    /// How long after a receipt's timestamp the block whose beacon seeds
    /// its audit and referee draws comes, in milliseconds (more than a
    /// fresh receipt may be old and a clock ahead).
    pub beacon_delay_ms: u64,
    /// Blocks whose beacons the ledger keeps: a receipt whose beacon block
    /// is older can no longer be disputed.
    pub dispute_window: u64,
    /// Blocks after a conviction in which the convicted party may appeal,
    /// and then in which the panel must reach a majority.
    pub appeal_window: u64,
    /// Operators on an appeal's panel (fewer where fewer are eligible).
    pub appeal_panel: u64,
    /// What the auditors' pool pays a drawn auditor for an audit that
    /// passed, in basis points of the audited receipt's price, within what
    /// the executor's payments put into the pool (`audits`). The default,
    /// 3,000, spends about what the pool takes in at the default rates: 5%
    /// of each payment in, and each request audited by each of its three
    /// drawn auditors with probability 5% (0.15 audits a request × 30% of
    /// the price = 4.5% of it out), leaving a little for dispute bounties.
    pub audit_pay_bp: u64,
    /// The statistical rule of LLM audits (`docs/llm-audit.md`) for
    /// answers whose receipt states an accelerator: the honest rate, in
    /// ppm, of generated tokens beyond `llm_tolerance_ppm` (0: the strict
    /// check, every token within the tolerance).
    pub llm_exceed_ppm: u64,
    /// The rule's hard bound, in ppm of the top logit: a token beyond it
    /// fails an answer alone.
    pub llm_hard_ppm: u64,
    /// [`Params::llm_exceed_ppm`] for answers computed on CPUs, which are
    /// exact across machines (0: the strict check).
    pub llm_cpu_exceed_ppm: u64,
    /// The windows of pooled LLM audits (`vouch_types::llm_pool`): one
    /// executor's answers stating an accelerator, stamped in
    /// `[k × window, (k + 1) × window)`, are judged together, once the
    /// window's beacon block is in (0: no pooled audits). Executors keep
    /// transcripts for `--retention` (600 s by default): a window must end,
    /// and its beacon block come, within it.
    pub llm_pool_window_ms: u64,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            min_stake: 1_000,
            unbonding_delay: 100,
            escrow_delay: 20,
            slash_bp: 1_000,
            reward_bp: 5_000,
            audit_rate_ppm: 50_000,
            llm_tolerance_ppm: 20_000,
            max_validators: 100,
            voting_period: 20,
            timelock: 10,
            quorum_bp: 3_334,
            threshold_bp: 5_000,
            fee_auditors_bp: 500,
            fee_treasury_bp: 500,
            dispute_bounty: 1_000,
            epoch_length: 100,
            open_admission: 1,
            beacon_delay_ms: 8_000,
            dispute_window: 10_000,
            appeal_window: 20,
            appeal_panel: 5,
            audit_pay_bp: 3_000,
            llm_exceed_ppm: 25_000,
            llm_hard_ppm: 100_000,
            llm_cpu_exceed_ppm: 0,
            llm_pool_window_ms: 300_000,
        }
    }
}

/// An account: a key's spendable balance, its escrow for vouchers, and
/// its next nonce.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Account {
    /// Spendable.
    pub balance: u64,
    /// Held for the operators it pays by voucher.
    pub escrow: u64,
    /// The nonce its next transaction must carry.
    pub nonce: u64,
}

/// A registered operator, keyed by the account that registered it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// Its receipt-signing keys, each with the height from which it signs
    /// (the account key first, from registration).
    pub keys: Vec<(u64, PublicKey)>,
    /// Bonded stake.
    pub stake: u64,
    /// Stake on its way back: (height it returns at, amount).
    pub unbonding: Vec<(u64, u64)>,
    /// Everything ever slashed from it.
    pub slashed: u64,
    /// Price, contact and addresses.
    pub offer: Offer,
    /// The height it registered at.
    pub registered: u64,
    /// Every fee it kept from settled payments.
    pub earned: u64,
    /// Its paid audits, as auditor and as executor (`audits`).
    pub audits: AuditRecord,
}

/// What an operator's record counts of paid audits (`audits`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditRecord {
    /// Audits it performed that the pool paid for.
    pub performed: u64,
    /// Its receipts that passed a paid audit.
    pub passed: u64,
    /// What the pool paid it for audits.
    pub earned: u64,
}

impl Operator {
    /// Its receipt-signing key now.
    pub fn key(&self) -> PublicKey {
        self.keys.last().expect("an operator has a key").1
    }

    /// Stake that a conviction can still take: bonded plus unbonding.
    pub fn at_risk(&self) -> u64 {
        self.stake + self.unbonding.iter().map(|(_, a)| a).sum::<u64>()
    }
}

/// Who starts the ledger with what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    /// The chain's name; transactions name it.
    pub chain_id: String,
    /// The parameters.
    pub params: Params,
    /// Accounts and their balances.
    pub accounts: Vec<(PublicKey, u64)>,
    /// Operators registered and staked from the start: (key, stake, offer).
    /// The stake comes on top of the account's balance.
    pub operators: Vec<(PublicKey, u64, Offer)>,
}

/// A block as the state machine sees it: its height, the time its
/// proposer stamped, and its transactions' bytes in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    /// One more than the ledger's height.
    pub height: u64,
    /// Milliseconds since the Unix epoch, from the block (not a clock).
    pub time_ms: u64,
    /// Signed transactions, as received.
    pub txs: Vec<Vec<u8>>,
}

/// Why a block cannot be applied at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BlockError {
    /// Blocks apply in order.
    #[error("block {got} does not follow height {height}: expected block {}", height + 1)]
    Height {
        /// The ledger's height.
        height: u64,
        /// The block's.
        got: u64,
    },
}

/// Why one transaction was rejected. A rejected transaction changes
/// nothing, except that a signed one with the right nonce whose action
/// fails uses up its nonce (so it cannot succeed later by surprise).
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum TxError {
    /// The bytes are not a transaction.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// Signed for another chain.
    #[error("the transaction is for chain `{got}`, this is `{expected}`")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The transaction's.
        got: String,
    },
    /// The signature does not verify.
    #[error("the signature does not verify for signer {0}")]
    BadSignature(String),
    /// Not the signer's next nonce (a replay, or one sent out of order;
    /// [`TxError::is_bad_nonce`] tells it from the outcome's text).
    #[error(
        "nonce {got} is not the signer's next one ({expected}); a replayed transaction is refused"
    )]
    BadNonce {
        /// The signer's next nonce.
        expected: u64,
        /// The transaction's.
        got: u64,
    },
    /// More than the account holds.
    #[error("insufficient {what}: {needed} needed, {available} available")]
    Insufficient {
        /// Balance, escrow or stake.
        what: &'static str,
        /// What the transaction needs.
        needed: u64,
        /// What there is.
        available: u64,
    },
    /// An amount of zero.
    #[error("the amount must be above 0")]
    ZeroAmount,
    /// The action needs a registered operator.
    #[error("{0} is not a registered operator: send Register first")]
    NotOperator(String),
    /// Registered twice.
    #[error("{0} is already a registered operator: send SetOffer to change its offer")]
    AlreadyOperator(String),
    /// A key another operator signs with.
    #[error("key {0} already belongs to an operator")]
    KeyTaken(String),
    /// Published by someone else.
    #[error("model {model} was published by {publisher}")]
    ModelTaken {
        /// The model id.
        model: String,
        /// Its publisher.
        publisher: String,
    },
    /// A voucher that does not pay.
    #[error("voucher {index} (client {client}): {why}")]
    Voucher {
        /// Its position in the transaction.
        index: usize,
        /// Its client.
        client: String,
        /// Why.
        why: String,
    },
    /// A dispute record that convicts nobody here.
    #[error("dispute: {0}")]
    Dispute(String),
    /// Equivocation evidence that convicts nobody here.
    #[error("equivocation evidence: {0}")]
    Evidence(String),
    /// An appeal or a panel vote that is not allowed.
    #[error("appeal: {0}")]
    Appeal(String),
    /// An audit report the pool does not pay.
    #[error("audit report: {0}")]
    Audit(String),
    /// A proposal or vote the ledger does not take.
    #[error("governance: {0}")]
    Governance(String),
    /// A sum that would overflow.
    #[error("amount overflow")]
    Overflow,
}

/// Where a proposal stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// Open for votes until its `voting_ends` height.
    Voting,
    /// Passed; its changes take effect at height `activates`.
    Passed {
        /// The activation height.
        activates: u64,
    },
    /// Did not pass: too little turnout, or too few yes votes.
    Rejected,
    /// Its changes took effect at height `at`.
    Activated {
        /// The height.
        at: u64,
    },
    /// Passed, but at height `at` the treasury held less than its spends:
    /// nothing of it took effect.
    Failed {
        /// The height.
        at: u64,
    },
}

/// A parameter change put to a vote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Its number, from 0 in the order proposals were made.
    pub id: u64,
    /// The operator that proposed it.
    pub proposer: PublicKey,
    /// The parameters it sets, by name ([`Params::NAMES`]), in order.
    pub changes: Vec<(String, u64)>,
    /// What it pays from the treasury: (to, amount).
    pub spends: Vec<(PublicKey, u64)>,
    /// Releases it allows (true) or retires (false): (version, digest,
    /// allowed).
    pub releases: Vec<(String, [u8; 32], bool)>,
    /// The height it was proposed at.
    pub proposed: u64,
    /// The height at which its votes are counted.
    pub voting_ends: u64,
    /// Each voting operator's vote (the last one it cast).
    pub votes: BTreeMap<PublicKey, bool>,
    /// When counted: the stake for, against, and all bonded stake then.
    pub tally: Option<(u64, u64, u64)>,
    /// Where it stands.
    pub status: Status,
}

impl TxError {
    /// Whether a transaction's outcome, as the text a block records
    /// (`Chain::outcome`, `GET /v1/ledger/tx/{id}`), is a [`TxError::BadNonce`]:
    /// the transaction had no effect, and its signer may sign it again with
    /// the next nonce.
    pub fn is_bad_nonce(outcome: &str) -> bool {
        outcome.contains("is not the signer's next one")
    }
}

/// The whole ledger state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ledger {
    chain_id: String,
    height: u64,
    time_ms: u64,
    params: Params,
    accounts: BTreeMap<PublicKey, Account>,
    pub(crate) operators: BTreeMap<PublicKey, Operator>,
    /// Which operator each signing key (current or earlier) belongs to.
    signers: BTreeMap<PublicKey, PublicKey>,
    models: BTreeMap<[u8; 32], PublicKey>,
    /// What each (client, operator) pair has settled so far.
    redeemed: BTreeMap<(PublicKey, PublicKey), u64>,
    /// Escrow on its way back to balances: (height it arrives at, account,
    /// amount), in order of height.
    withdrawals: Vec<(u64, PublicKey, u64)>,
    /// Executor receipts a dispute already convicted on.
    disputed: BTreeSet<Digest>,
    /// What the auditors' pool may still pay for audits of each operator's
    /// receipts (by account): its share of that operator's settled fees,
    /// less the audits paid (`audits`).
    pub(crate) audit_credit: BTreeMap<PublicKey, u64>,
    /// Audits paid: (receipt timestamp, receipt, auditor account), for
    /// receipts newer than `audits_floor`.
    pub(crate) audits_paid: BTreeSet<(u64, Digest, PublicKey)>,
    /// Receipts stamped at or before this time are no longer paid for.
    pub(crate) audits_floor: u64,
    /// Convictions whose stake is held until their appeal window closes or
    /// their appeal is decided, by executor receipt.
    pub(crate) pending: BTreeMap<Digest, crate::conviction::Conviction>,
    /// The last [`crate::conviction::KEPT_RULINGS`] convictions settled, oldest
    /// first.
    pub(crate) rulings: std::collections::VecDeque<(Digest, crate::conviction::Ruling)>,
    /// Everything burned.
    pub(crate) burned: u64,
    /// Every parameter change proposed, oldest first.
    pub(crate) proposals: Vec<Proposal>,
    /// Every payment settled (before the split).
    fees: u64,
    /// The treasury's share of fees, not yet spent (by vote).
    pub(crate) treasury: u64,
    /// The auditors' share of fees, not yet paid out in bounties.
    pub(crate) auditors_pool: u64,
    /// Software releases voted on: version → (binary digest, allowed).
    pub(crate) releases: BTreeMap<String, ([u8; 32], bool)>,
    /// The height of the current epoch's last block.
    epoch_end: u64,
    /// The validator sets (operator keys, by stake) of the current epoch
    /// and the [`KEPT_EPOCHS`] before it, by epoch.
    epochs: BTreeMap<u64, Vec<PublicKey>>,
    /// Equivocations slashed: (validator, epoch, view).
    equivocations: BTreeSet<(PublicKey, u64, u64)>,
    /// What the current epoch has done so far (its record once it ends).
    pub(crate) this_epoch: EpochRecord,
    /// The last [`KEPT_RECORDS`] epochs' records, oldest first.
    records: std::collections::VecDeque<EpochRecord>,
    /// The last `dispute_window` blocks' (time, beacon), oldest first; the
    /// newest is this height's.
    beacons: std::collections::VecDeque<(u64, [u8; 32])>,
    /// The time of the newest block whose beacon is no longer kept (0 if
    /// none): a receipt whose beacon block could be that old can no longer
    /// be disputed.
    pub(crate) beacons_floor: u64,
    /// Proof disputes judged in the block being applied (at most
    /// [`PROOF_CHECKS_PER_BLOCK`]): judging one derives the circuit's keys
    /// on every validator, and a refused dispute costs its signer nothing.
    proof_checks: u32,
}

/// The most proof disputes one block judges; later ones in the block are
/// refused, to be submitted again.
pub const PROOF_CHECKS_PER_BLOCK: u32 = 2;

/// Why a receipt's beacon cannot be had ([`Ledger::beacon_after`]).
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BeaconError {
    /// No block stamped at or after the target time is applied yet.
    #[error(
        "the beacon block (the first stamped at or after {target} ms) is not on the ledger yet: the last block is stamped {last} ms; wait for the next blocks"
    )]
    NotYet {
        /// The time the beacon block must be stamped at or after.
        target: u64,
        /// The last block's time.
        last: u64,
    },
    /// The beacon block is older than the blocks whose beacons are kept.
    #[error(
        "the beacon block (the first stamped at or after {target} ms) is older than the dispute window (`dispute_window` blocks): the receipt can no longer be disputed"
    )]
    Expired {
        /// The time the beacon block must be stamped at or after.
        target: u64,
    },
}

/// Finished epochs whose records the ledger keeps.
pub const KEPT_RECORDS: usize = 64;

/// What one epoch did, for anyone auditing who profits and who holds
/// power: kept for the last [`KEPT_RECORDS`] epochs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochRecord {
    /// The epoch.
    pub epoch: u64,
    /// Its first height.
    pub first: u64,
    /// Its last height (the current epoch's: the last applied so far).
    pub last: u64,
    /// Payments settled in it, before the split.
    pub fees: u64,
    /// What each operator (account key) kept of them, where above 0.
    pub earned: BTreeMap<PublicKey, u64>,
    /// Stake slashed in it.
    pub slashed: u64,
    /// Requests paid in it, by operator (account key): each settlement's
    /// amount over the operator's price then.
    pub served: BTreeMap<PublicKey, u64>,
    /// What the auditors' pool paid for audits in it, by auditor (account
    /// key).
    pub audit_pay: BTreeMap<PublicKey, u64>,
    /// Every operator's bonded stake at its end, most first.
    pub stake: Vec<u64>,
    /// The stake of the next epoch's validators, most first.
    pub power: Vec<u64>,
}

/// Epochs before the current one whose validator sets the ledger keeps:
/// equivocation evidence from an older epoch is refused.
pub const KEPT_EPOCHS: u64 = 16;

/// A transaction's outcome in a block.
pub type TxOutcome = Result<TxId, TxError>;

impl Ledger {
    /// The ledger at height 0.
    pub fn genesis(g: &Genesis) -> Ledger {
        let mut l = Ledger {
            chain_id: g.chain_id.clone(),
            height: 0,
            time_ms: 0,
            params: g.params.clone(),
            accounts: BTreeMap::new(),
            operators: BTreeMap::new(),
            signers: BTreeMap::new(),
            models: BTreeMap::new(),
            redeemed: BTreeMap::new(),
            withdrawals: Vec::new(),
            disputed: BTreeSet::new(),
            audit_credit: BTreeMap::new(),
            audits_paid: BTreeSet::new(),
            audits_floor: 0,
            pending: BTreeMap::new(),
            rulings: std::collections::VecDeque::new(),
            burned: 0,
            proposals: Vec::new(),
            fees: 0,
            treasury: 0,
            auditors_pool: 0,
            releases: BTreeMap::new(),
            epoch_end: g.params.epoch_length,
            epochs: BTreeMap::new(),
            equivocations: BTreeSet::new(),
            this_epoch: EpochRecord {
                first: 1,
                ..EpochRecord::default()
            },
            records: std::collections::VecDeque::new(),
            beacons: std::collections::VecDeque::new(),
            beacons_floor: 0,
            proof_checks: 0,
        };
        for (key, amount) in &g.accounts {
            l.accounts.entry(*key).or_default().balance += amount;
        }
        for (key, stake, offer) in &g.operators {
            l.accounts.entry(*key).or_default();
            l.signers.insert(*key, *key);
            l.operators.insert(
                *key,
                Operator {
                    keys: vec![(0, *key)],
                    stake: *stake,
                    unbonding: Vec::new(),
                    slashed: 0,
                    offer: offer.clone(),
                    registered: 0,
                    earned: 0,
                    audits: Default::default(),
                },
            );
        }
        let first = l.validators().into_iter().map(|(k, _)| k).collect();
        l.epochs.insert(0, first);
        l
    }

    /// The chain's name.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The height of the last block applied (0: genesis).
    pub fn height(&self) -> u64 {
        self.height
    }

    /// The last block's time.
    pub fn time_ms(&self) -> u64 {
        self.time_ms
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    pub(crate) fn params_mut(&mut self) -> &mut Params {
        &mut self.params
    }

    /// An account (the default, empty one for a key never seen).
    pub fn account(&self, key: &PublicKey) -> Account {
        self.accounts.get(key).cloned().unwrap_or_default()
    }

    /// Every account, by key.
    pub fn accounts(&self) -> &BTreeMap<PublicKey, Account> {
        &self.accounts
    }

    /// Every operator, by its account key.
    pub fn operators(&self) -> &BTreeMap<PublicKey, Operator> {
        &self.operators
    }

    /// The operator (its account key) that signs with `key`, now or
    /// earlier: receipts signed with a rotated-out key stay attributable.
    pub fn operator_of(&self, key: &PublicKey) -> Option<PublicKey> {
        self.signers.get(key).copied()
    }

    /// The keys of operators with at least the minimum stake, every key
    /// each ever signed with: the set draws run over.
    pub fn staked_keys(&self) -> BTreeSet<PublicKey> {
        self.operators
            .values()
            .filter(|o| o.stake >= self.params.min_stake)
            .flat_map(|o| o.keys.iter().map(|(_, k)| *k))
            .collect()
    }

    /// The validators: the operators with at least the minimum stake, most
    /// stake first (ties by key), at most `max_validators`, with their
    /// stake as voting power.
    pub fn validators(&self) -> Vec<(PublicKey, u64)> {
        let mut v: Vec<(PublicKey, u64)> = self
            .operators
            .iter()
            .filter(|(_, o)| o.stake >= self.params.min_stake)
            .map(|(k, o)| (*k, o.stake))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(self.params.max_validators as usize);
        v
    }

    /// The current epoch: blocks up to [`Ledger::epoch_end`] are its.
    pub fn epoch(&self) -> u64 {
        self.this_epoch.epoch
    }

    /// The height of the current epoch's last block.
    pub fn epoch_end(&self) -> u64 {
        self.epoch_end
    }

    /// The validators of `epoch` (operator keys, most stake first), for
    /// the current epoch and the [`KEPT_EPOCHS`] before it.
    pub fn epoch_validators(&self, epoch: u64) -> Option<&[PublicKey]> {
        self.epochs.get(&epoch).map(Vec::as_slice)
    }

    /// The current epoch's validators with their bonded stake now (what
    /// `status` and the economics call their power), most first.
    pub fn validator_power(&self) -> Vec<(PublicKey, u64)> {
        self.epoch_validators(self.epoch())
            .unwrap_or_default()
            .iter()
            .map(|k| (*k, self.operators.get(k).map_or(0, |o| o.stake)))
            .collect()
    }

    /// The current epoch's record so far (`stake` and `power` filled in
    /// only when it ends).
    pub fn this_epoch(&self) -> &EpochRecord {
        &self.this_epoch
    }

    /// The records of the last [`KEPT_RECORDS`] finished epochs, oldest
    /// first.
    pub fn epoch_records(&self) -> &std::collections::VecDeque<EpochRecord> {
        &self.records
    }

    /// The requests paid to each operator (account key) over the epochs
    /// whose records the ledger keeps, the current one included.
    pub fn requests_paid(&self) -> BTreeMap<PublicKey, u64> {
        let mut paid = BTreeMap::new();
        for r in self.records.iter().chain([&self.this_epoch]) {
            for (k, n) in &r.served {
                *paid.entry(*k).or_default() += n;
            }
        }
        paid
    }

    /// Whether `validator`'s equivocation in `epoch` and `view` was
    /// slashed already.
    pub fn equivocated(&self, validator: &PublicKey, epoch: u64, view: u64) -> bool {
        self.equivocations.contains(&(*validator, epoch, view))
    }

    /// Who published model `id`.
    pub fn publisher(&self, model: &Digest) -> Option<PublicKey> {
        self.models.get(model.as_bytes()).copied()
    }

    /// What `client` has paid `operator` by voucher so far.
    pub fn redeemed(&self, client: &PublicKey, operator: &PublicKey) -> u64 {
        self.redeemed
            .get(&(*client, *operator))
            .copied()
            .unwrap_or(0)
    }

    /// Whether a dispute already convicted on executor receipt `id`.
    pub fn disputed(&self, receipt: &Digest) -> bool {
        self.disputed.contains(receipt)
    }

    /// The last block's beacon (the genesis one at height 0): the chain's
    /// randomness, `docs/ledger.md`, Beacons.
    pub fn beacon(&self) -> [u8; 32] {
        self.beacons
            .back()
            .map_or_else(|| self.genesis_beacon(), |(_, b)| *b)
    }

    fn genesis_beacon(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("vouch v1 ledger beacon");
        h.update(self.chain_id.as_bytes());
        *h.finalize().as_bytes()
    }

    /// The beacon of a receipt stamped `timestamp_ms`: that of the first
    /// block stamped at least `beacon_delay_ms` later. When the executor
    /// signed, that block did not exist (a client refuses a receipt
    /// stamped far from its clock), so the executor could not know it.
    pub fn beacon_after(&self, timestamp_ms: u64) -> Result<[u8; 32], BeaconError> {
        let target = timestamp_ms.saturating_add(self.params.beacon_delay_ms);
        if target <= self.beacons_floor {
            return Err(BeaconError::Expired { target });
        }
        let at = self.beacons.partition_point(|(t, _)| *t < target);
        self.beacons
            .get(at)
            .map(|(_, b)| *b)
            .ok_or(BeaconError::NotYet {
                target,
                last: self.time_ms,
            })
    }

    /// Who audits and referees receipts `executor` signed at
    /// `timestamp_ms`: every operator with at least the minimum stake but
    /// the executor's, by its current key, weighted by its bonded stake,
    /// with the receipt's [`Ledger::beacon_after`]. The network's draws and
    /// the ledger's check of a dispute both run over it.
    pub fn draw_pool(&self, executor: &PublicKey, timestamp_ms: u64) -> Result<Pool, BeaconError> {
        let beacon = self.beacon_after(timestamp_ms)?;
        let executor = self.operator_of(executor);
        Ok(Pool {
            weights: self.stake_weights(|account| Some(*account) != executor),
            beacon: Some(beacon),
        })
    }

    /// The operators with at least the minimum stake that `eligible`
    /// accepts (by account key), each by its current key with its bonded
    /// stake as its weight: what every draw runs over.
    pub fn stake_weights(&self, eligible: impl Fn(&PublicKey) -> bool) -> BTreeMap<PublicKey, u64> {
        self.operators
            .iter()
            .filter(|(k, o)| o.stake >= self.params.min_stake && eligible(k))
            .map(|(_, o)| (o.key(), o.stake))
            .collect()
    }

    /// Everything burned so far.
    pub fn burned(&self) -> u64 {
        self.burned
    }

    /// Every payment settled so far, before the split.
    pub fn fees(&self) -> u64 {
        self.fees
    }

    /// What the treasury holds.
    pub fn treasury(&self) -> u64 {
        self.treasury
    }

    /// What the auditors' pool holds.
    pub fn auditors_pool(&self) -> u64 {
        self.auditors_pool
    }

    /// Every unit in existence: balances, escrow, withdrawals under way,
    /// stake and unbonding stake, the treasury, the auditors' pool and what
    /// convictions hold until they are final. With [`Ledger::burned`] it always adds up
    /// to the genesis supply.
    pub fn supply(&self) -> u64 {
        let accounts: u64 = self.accounts.values().map(|a| a.balance + a.escrow).sum();
        let withdrawing: u64 = self.withdrawals.iter().map(|(_, _, a)| a).sum();
        let staked: u64 = self.operators.values().map(Operator::at_risk).sum();
        let held: u64 = self.pending.values().map(|c| c.taken + c.bounty).sum();
        accounts + withdrawing + staked + self.treasury + self.auditors_pool + held
    }

    /// Applies a block: first returns what matured (unbonded stake,
    /// withdrawn escrow), then each transaction in order. A transaction's
    /// rejection is its outcome and does not stop the block.
    pub fn apply_block(&mut self, block: &Block) -> Result<Vec<TxOutcome>, BlockError> {
        if block.height != self.height + 1 {
            return Err(BlockError::Height {
                height: self.height,
                got: block.height,
            });
        }
        self.next_beacon(block);
        self.height = block.height;
        self.time_ms = block.time_ms;
        self.this_epoch.last = block.height;
        self.mature();
        self.govern();
        self.appeals();
        self.proof_checks = 0;
        let outcomes = block.txs.iter().map(|bytes| self.apply_tx(bytes)).collect();
        if self.height >= self.epoch_end {
            self.next_epoch();
        }
        Ok(outcomes)
    }

    /// Ends the epoch after its last block: the next epoch's validators are
    /// the operators with the most stake now (the last set again if none
    /// has the minimum stake, so that the chain never runs out of
    /// validators), and it lasts `epoch_length` blocks as the parameter is
    /// now.
    fn next_epoch(&mut self) {
        let mut set: Vec<PublicKey> = self.validators().into_iter().map(|(k, _)| k).collect();
        if set.is_empty() {
            set = self
                .epoch_validators(self.epoch())
                .unwrap_or_default()
                .to_vec();
        }
        let mut stake: Vec<u64> = self.operators.values().map(|o| o.stake).collect();
        stake.sort_unstable_by(|a, b| b.cmp(a));
        let epoch = self.epoch() + 1;
        self.epochs.insert(epoch, set);
        self.epochs
            .retain(|e, _| *e >= epoch.saturating_sub(KEPT_EPOCHS));
        let next = EpochRecord {
            epoch,
            first: self.height + 1,
            last: self.height,
            ..EpochRecord::default()
        };
        let mut done = std::mem::replace(&mut self.this_epoch, next);
        // The new set's power, now that its epoch is the current one.
        let power = self.validator_power().into_iter().map(|(_, p)| p).collect();
        (done.last, done.stake, done.power) = (self.height, stake, power);
        self.records.push_back(done);
        if self.records.len() > KEPT_RECORDS {
            self.records.pop_front();
        }
        self.epoch_end = self.height + self.params.epoch_length;
    }

    /// Adds `block`'s beacon, `BLAKE3-derive-key("vouch v1 ledger beacon",
    /// previous beacon || height || time || transaction count || each
    /// transaction's length and bytes)`, and forgets those older than the
    /// dispute window.
    fn next_beacon(&mut self, block: &Block) {
        let mut h = blake3::Hasher::new_derive_key("vouch v1 ledger beacon");
        h.update(&self.beacon());
        h.update(&block.height.to_le_bytes());
        h.update(&block.time_ms.to_le_bytes());
        h.update(&(block.txs.len() as u64).to_le_bytes());
        for tx in &block.txs {
            h.update(&(tx.len() as u64).to_le_bytes());
            h.update(tx);
        }
        self.beacons
            .push_back((block.time_ms, *h.finalize().as_bytes()));
        while self.beacons.len() as u64 > self.params.dispute_window.max(1) {
            if let Some((t, _)) = self.beacons.pop_front() {
                self.beacons_floor = t;
            }
        }
        self.forget_audits();
    }

    /// Returns unbonded stake and withdrawn escrow whose time has come.
    fn mature(&mut self) {
        let height = self.height;
        for (key, op) in self.operators.iter_mut() {
            let (due, rest): (Vec<_>, Vec<_>) =
                op.unbonding.iter().partition(|(at, _)| *at <= height);
            op.unbonding = rest;
            let back: u64 = due.iter().map(|(_, a)| a).sum();
            if back > 0 {
                self.accounts.entry(*key).or_default().balance += back;
            }
        }
        let (due, rest): (Vec<_>, Vec<_>) = self
            .withdrawals
            .iter()
            .partition(|(at, _, _)| *at <= height);
        self.withdrawals = rest;
        for (_, key, amount) in due {
            self.accounts.entry(key).or_default().balance += amount;
        }
    }

    fn apply_tx(&mut self, bytes: &[u8]) -> TxOutcome {
        let tx = Tx::decode(bytes).map_err(|e| TxError::Malformed(e.to_string()))?;
        if tx.chain_id != self.chain_id {
            return Err(TxError::WrongChain {
                expected: self.chain_id.clone(),
                got: tx.chain_id,
            });
        }
        if !tx.verify() {
            return Err(TxError::BadSignature(tx.signer.to_string()));
        }
        let expected = self.account(&tx.signer).nonce;
        if tx.nonce != expected {
            return Err(TxError::BadNonce {
                expected,
                got: tx.nonce,
            });
        }
        // From here the transaction is the signer's: its nonce is used
        // whatever the action's outcome.
        self.accounts.entry(tx.signer).or_default().nonce += 1;
        self.act(&tx.signer, &tx.body)?;
        Ok(tx_id(bytes))
    }

    /// Performs one action: every check first, then the changes, so a
    /// rejected action changes nothing.
    fn act(&mut self, signer: &PublicKey, body: &TxBody) -> Result<(), TxError> {
        let height = self.height;
        match body {
            TxBody::Transfer { to, amount } => {
                self.debit(signer, *amount, Pot::Balance)?;
                self.accounts.entry(*to).or_default().balance += amount;
            }
            TxBody::Deposit { amount } => {
                self.debit(signer, *amount, Pot::Balance)?;
                self.account_mut(signer).escrow += amount;
            }
            TxBody::Withdraw { amount } => {
                self.debit(signer, *amount, Pot::Escrow)?;
                self.withdrawals
                    .push((height + self.params.escrow_delay, *signer, *amount));
            }
            TxBody::Register(offer) => {
                if self.operators.contains_key(signer) {
                    return Err(TxError::AlreadyOperator(signer.to_string()));
                }
                if self.signers.contains_key(signer) {
                    return Err(TxError::KeyTaken(signer.to_string()));
                }
                self.signers.insert(*signer, *signer);
                self.operators.insert(
                    *signer,
                    Operator {
                        keys: vec![(height, *signer)],
                        stake: 0,
                        unbonding: Vec::new(),
                        slashed: 0,
                        offer: offer.clone(),
                        registered: height,
                        earned: 0,
                        audits: Default::default(),
                    },
                );
            }
            TxBody::SetOffer(offer) => {
                self.operator_mut(signer)?.offer = offer.clone();
            }
            TxBody::Bond { amount } => {
                self.operator_mut(signer)?;
                self.debit(signer, *amount, Pot::Balance)?;
                self.operator_mut(signer)?.stake += amount;
            }
            TxBody::Unbond { amount } => {
                let delay = self.params.unbonding_delay;
                let op = self.operator_mut(signer)?;
                if *amount == 0 {
                    return Err(TxError::ZeroAmount);
                }
                if op.stake < *amount {
                    return Err(TxError::Insufficient {
                        what: "stake",
                        needed: *amount,
                        available: op.stake,
                    });
                }
                op.stake -= amount;
                op.unbonding.push((height + delay, *amount));
            }
            TxBody::RotateKey { key } => {
                self.operator_mut(signer)?;
                if self.signers.contains_key(key) {
                    return Err(TxError::KeyTaken(key.to_string()));
                }
                self.signers.insert(*key, *signer);
                self.operator_mut(signer)?.keys.push((height + 1, *key));
            }
            TxBody::PublishModel { model } => match self.models.get(model) {
                Some(p) if p != signer => {
                    return Err(TxError::ModelTaken {
                        model: Digest::from_bytes(vouch_types::Kind::Model, *model).to_string(),
                        publisher: p.to_string(),
                    });
                }
                _ => {
                    self.models.insert(*model, *signer);
                }
            },
            TxBody::Redeem { vouchers } => self.redeem(signer, vouchers)?,
            TxBody::Dispute { record } => self.convict(signer, record)?,
            TxBody::Propose {
                changes,
                spends,
                releases,
            } => self.propose(signer, changes, spends, releases)?,
            TxBody::Vote { proposal, yes } => self.vote(signer, *proposal, *yes)?,
            TxBody::Equivocation { evidence } => self.equivocation(signer, evidence)?,
            TxBody::Appeal { receipt } => self.appeal(signer, receipt)?,
            TxBody::AppealVote {
                receipt,
                executor_faulty,
            } => self.appeal_vote(signer, receipt, *executor_faulty)?,
            TxBody::Audited { report } => self.pay_audit(signer, report)?,
        }
        Ok(())
    }

    pub(crate) fn account_mut(&mut self, key: &PublicKey) -> &mut Account {
        self.accounts.entry(*key).or_default()
    }

    fn operator_mut(&mut self, key: &PublicKey) -> Result<&mut Operator, TxError> {
        self.operators
            .get_mut(key)
            .ok_or_else(|| TxError::NotOperator(key.to_string()))
    }

    /// Takes `amount` (above 0) from one of `key`'s pots, or fails.
    fn debit(&mut self, key: &PublicKey, amount: u64, pot: Pot) -> Result<(), TxError> {
        if amount == 0 {
            return Err(TxError::ZeroAmount);
        }
        let account = self.account_mut(key);
        let (what, have) = match pot {
            Pot::Balance => ("balance", &mut account.balance),
            Pot::Escrow => ("escrow", &mut account.escrow),
        };
        if *have < amount {
            return Err(TxError::Insufficient {
                what,
                needed: amount,
                available: *have,
            });
        }
        *have -= amount;
        Ok(())
    }

    /// Settles an operator's vouchers: all or none.
    fn redeem(&mut self, operator: &PublicKey, vouchers: &[Voucher]) -> Result<(), TxError> {
        if !self.operators.contains_key(operator) {
            return Err(TxError::NotOperator(operator.to_string()));
        }
        // Every signature, on all cores: each check stands alone, so the
        // verdicts (and the first refusal below) are the same on any number
        // of threads.
        let signed: Vec<bool> = {
            use rayon::prelude::*;
            vouchers
                .par_iter()
                .map(|v| v.verify(&self.chain_id, operator))
                .collect()
        };
        // Per client: the newest cumulative amount in this transaction, and
        // what it owes beyond what was settled.
        let mut owed: BTreeMap<PublicKey, (u64, u64)> = BTreeMap::new();
        for (index, v) in vouchers.iter().enumerate() {
            let bad = |why: String| TxError::Voucher {
                index,
                client: v.client.to_string(),
                why,
            };
            if !signed[index] {
                return Err(bad(format!(
                    "its signature does not verify for operator {operator} on chain `{}`",
                    self.chain_id
                )));
            }
            let settled = owed
                .get(&v.client)
                .map(|(c, _)| *c)
                .unwrap_or_else(|| self.redeemed(&v.client, operator));
            if v.cumulative <= settled {
                return Err(bad(format!(
                    "it owes {} in all, and {settled} is settled already",
                    v.cumulative
                )));
            }
            owed.insert(v.client, (v.cumulative, 0));
        }
        for (client, (cumulative, due)) in owed.iter_mut() {
            *due = *cumulative - self.redeemed(client, operator);
            let escrow = self.account(client).escrow;
            if escrow < *due {
                let index = vouchers
                    .iter()
                    .rposition(|v| v.client == *client)
                    .expect("a voucher of this client");
                return Err(TxError::Voucher {
                    index,
                    client: client.to_string(),
                    why: format!("its escrow holds {escrow}, {due} is due"),
                });
            }
        }
        let mut paid: u64 = 0;
        for (client, (cumulative, due)) in owed {
            self.account_mut(&client).escrow -= due;
            self.redeemed.insert((client, *operator), cumulative);
            paid = paid.checked_add(due).ok_or(TxError::Overflow)?;
        }
        // The split: the auditors' pool and the treasury take their shares,
        // the operator keeps the rest (exactly what was paid, in all).
        let to_auditors = mul_bp(paid, self.params.fee_auditors_bp);
        let to_treasury = mul_bp(paid, self.params.fee_treasury_bp);
        let kept = paid - to_auditors - to_treasury;
        self.fees += paid;
        self.this_epoch.fees += paid;
        if kept > 0 {
            *self.this_epoch.earned.entry(*operator).or_default() += kept;
        }
        self.auditors_pool += to_auditors;
        *self.audit_credit.entry(*operator).or_default() += to_auditors;
        self.treasury += to_treasury;
        self.account_mut(operator).balance += kept;
        if let Some(op) = self.operators.get_mut(operator) {
            op.earned += kept;
            if op.offer.price > 0 && paid >= op.offer.price {
                *self.this_epoch.served.entry(*operator).or_default() += paid / op.offer.price;
            }
        }
        Ok(())
    }

    /// Convicts the faulty party of a dispute record: the record must check
    /// (`vouch_types::dispute`), its auditor and referee must be staked
    /// operators other than the executor and each other, the referee one
    /// the draw over staked operators picks, and its executor receipt not
    /// convicted on before. The faulty party loses the slash fraction of
    /// its stake at risk at once; once the conviction is final (no appeal
    /// in `appeal_window` blocks, or the appeal decided: `appeal`), the
    /// other party gets the reward share of it and the rest is burned.
    fn convict(&mut self, reporter: &PublicKey, record: &[u8]) -> Result<(), TxError> {
        let bad = |why: String| TxError::Dispute(why);
        if let Ok(d) = serde_json::from_slice::<ProofDispute>(record) {
            return self.convict_proof(reporter, &d);
        }
        let (receipt, stamped, executor, auditor, referee, faulty) = if let Ok(d) =
            serde_json::from_slice::<Dispute>(record)
        {
            let faulty = d.check(None).map_err(|e| bad(e.to_string()))?;
            (
                d.executor.id,
                d.executor.body.timestamp_ms,
                d.executor.body.node,
                d.auditor.body.node,
                d.verdict.referee,
                faulty,
            )
        } else if let Ok(d) = serde_json::from_slice::<LlmDispute>(record) {
            let faulty = d.check().map_err(|e| bad(e.to_string()))?;
            (
                d.executor.id,
                d.executor.body.timestamp_ms,
                d.executor.body.node,
                d.auditor.signer,
                d.referee.signer,
                faulty,
            )
        } else if let Ok(d) = serde_json::from_slice::<PoolDispute>(record) {
            let faulty = d.check().map_err(|e| bad(e.to_string()))?;
            self.check_pool(&d).map_err(bad)?;
            (
                d.scope.key(),
                d.scope.end_ms,
                d.scope.executor,
                d.auditor.signer,
                d.referee.signer,
                faulty,
            )
        } else {
            return Err(bad(
                    "the record is neither a tensor, an LLM, a pooled LLM nor a proof dispute (JSON, as nodes gossip them)"
                        .into(),
                ));
        };
        if self.disputed.contains(&receipt) {
            return Err(bad(format!("receipt {receipt} was convicted on already")));
        }
        let pool = self
            .draw_pool(&executor, stamped)
            .map_err(|e| bad(format!("receipt {receipt}: {e}")))?;
        let who = |key: &PublicKey, role: &str| {
            self.operator_of(key)
                .ok_or_else(|| bad(format!("the {role} {key} is not a registered operator")))
        };
        let (e, a, r) = (
            who(&executor, "executor")?,
            who(&auditor, "auditor")?,
            who(&referee, "referee")?,
        );
        if e == a || e == r || a == r {
            return Err(bad(
                "the executor, the auditor and the referee must be three different operators"
                    .into(),
            ));
        }
        let min_stake = self.params.min_stake;
        check_parties(&receipt, &executor, &auditor, &referee, &pool).map_err(|e| {
            bad(format!(
                "{e} (on the ledger, admitted means staked: at least {min_stake}, by the operator's current key; the draw is weighted by stake and seeded by the receipt's beacon)"
            ))
        })?;
        let loser = match faulty {
            Party::Executor => e,
            Party::Auditor => a,
        };
        // The stake is taken now (it cannot leave while an appeal is
        // pending) and held with the bounty the auditors' pool pays for a
        // dispute performed, until the conviction is final.
        let taken = self.take(&loser);
        let bounty = self.params.dispute_bounty.min(self.auditors_pool);
        self.auditors_pool -= bounty;
        self.disputed.insert(receipt);
        self.pending.insert(
            receipt,
            crate::conviction::Conviction {
                record: record.to_vec(),
                executor: e,
                auditor: a,
                referee: r,
                faulty,
                taken,
                bounty,
                at: self.height,
                appeal: None,
            },
        );
        if self.params.appeal_window == 0 {
            self.settle(receipt, crate::conviction::Ruling::Final);
        }
        Ok(())
    }

    /// Convicts on a proven answer that does not check
    /// (`vouch_proof::dispute`). Every validator judges the evidence itself
    /// (the proof verified under keys derived from the circuit), so there
    /// is no referee and no appeal: the executor, which must be a
    /// registered operator, loses the slash fraction of its stake at risk
    /// at once, and the reporter (the transaction's signer, not the
    /// executor's operator) gets the reward share of it; the rest is
    /// burned. Cheap refusals come before the proof is verified, and a
    /// block verifies at most [`PROOF_CHECKS_PER_BLOCK`].
    fn convict_proof(&mut self, reporter: &PublicKey, d: &ProofDispute) -> Result<(), TxError> {
        let bad = |why: String| TxError::Dispute(why);
        let receipt = d.receipt_id();
        if self.disputed.contains(&receipt) {
            return Err(bad(format!("receipt {receipt} was convicted on already")));
        }
        let executor = d.executor();
        let convicted = self.operator_of(&executor).ok_or_else(|| {
            bad(format!(
                "the executor {executor} is not a registered operator"
            ))
        })?;
        // An operator's own account key is among its signing keys.
        if self.operator_of(reporter) == Some(convicted) {
            return Err(bad(
                "an operator cannot report its own proven answers".into()
            ));
        }
        if self.proof_checks >= PROOF_CHECKS_PER_BLOCK {
            return Err(bad(format!(
                "this block judged {PROOF_CHECKS_PER_BLOCK} proof disputes already, the most one block judges: submit it again"
            )));
        }
        self.proof_checks += 1;
        d.check().map_err(|e| bad(e.to_string()))?;
        let taken = self.take(&convicted);
        self.pay_out(taken, reporter);
        self.disputed.insert(receipt);
        self.ruled(receipt, crate::conviction::Ruling::Final);
        Ok(())
    }

    /// What a pooled dispute must meet on this ledger beyond its offline
    /// check: a window of the ledger's (`llm_pool_window_ms` long, aligned
    /// to it), ranked by the ledger's beacon for it, counted under the
    /// ledger's accelerator rule.
    fn check_pool(&self, d: &PoolDispute) -> Result<(), String> {
        let (s, p) = (&d.scope, &self.params);
        let window = p.llm_pool_window_ms;
        if window == 0 {
            return Err("pooled audits are off on this ledger (llm_pool_window_ms = 0)".into());
        }
        if s.start_ms % window != 0 || s.end_ms != s.start_ms.saturating_add(window) {
            return Err(format!(
                "[{}, {}) is not one of the ledger's pool windows: they are {window} ms long and start at multiples of it",
                s.start_ms, s.end_ms
            ));
        }
        let beacon = self
            .beacon_after(s.end_ms)
            .map_err(|e| format!("pool {}: {e}", s.key()))?;
        if beacon != s.beacon {
            return Err(format!(
                "pool {} is not ranked by the ledger's beacon for its window",
                s.key()
            ));
        }
        let rule = vouch_types::llm_pool::PoolRule {
            tolerance_ppm: p.llm_tolerance_ppm,
            exceed_ppm: p.llm_exceed_ppm,
        };
        if d.referee.rule != rule {
            return Err(format!(
                "the pool was counted under {:?}; the ledger's accelerator rule is {rule:?}",
                d.referee.rule
            ));
        }
        Ok(())
    }

    /// Slashes an equivocating validator on `evidence` (`evidence`): the
    /// signer, who must be someone else, gets the reward share; one
    /// equivocation (validator, epoch, view) is slashed once.
    fn equivocation(&mut self, reporter: &PublicKey, evidence: &[u8]) -> Result<(), TxError> {
        let bad = |why: String| TxError::Evidence(why);
        let e = crate::evidence::check(&self.chain_id, evidence, |epoch| {
            self.epochs.get(&epoch).cloned()
        })
        .map_err(bad)?;
        if self.equivocated(&e.validator, e.epoch, e.view) {
            return Err(bad(format!(
                "validator {}'s equivocation in epoch {} view {} was slashed already",
                e.validator, e.epoch, e.view
            )));
        }
        if e.validator == *reporter {
            return Err(bad("a validator cannot report its own equivocation".into()));
        }
        if !self.operators.contains_key(&e.validator) {
            return Err(bad(format!(
                "validator {} is not a registered operator",
                e.validator
            )));
        }
        let taken = self.take(&e.validator);
        self.pay_out(taken, reporter);
        self.equivocations.insert((e.validator, e.epoch, e.view));
        Ok(())
    }

    /// Takes the slash fraction of `loser`'s stake at risk, bonded first,
    /// and returns it for the caller to pay out ([`Ledger::pay_out`]) or
    /// hold.
    pub(crate) fn take(&mut self, loser: &PublicKey) -> u64 {
        let op = self.operators.get_mut(loser).expect("registered");
        let take = mul_bp(op.at_risk(), self.params.slash_bp);
        let mut left = take;
        let from_stake = left.min(op.stake);
        op.stake -= from_stake;
        left -= from_stake;
        for (_, amount) in op.unbonding.iter_mut().rev() {
            let t = left.min(*amount);
            *amount -= t;
            left -= t;
        }
        op.unbonding.retain(|(_, a)| *a > 0);
        op.slashed += take;
        self.this_epoch.slashed += take;
        take
    }

    /// Pays the reward share of `taken` to `to` and burns the rest.
    pub(crate) fn pay_out(&mut self, taken: u64, to: &PublicKey) {
        let reward = mul_bp(taken, self.params.reward_bp);
        self.burned += taken - reward;
        self.account_mut(to).balance += reward;
    }

    /// Gives `amount` taken from `operator` back to its bonded stake (an
    /// overturned conviction).
    pub(crate) fn restore(&mut self, operator: &PublicKey, amount: u64) {
        if let Some(op) = self.operators.get_mut(operator) {
            op.stake += amount;
            op.slashed -= amount;
        }
    }

    /// The state root: BLAKE3 (derive-key `vouch v1 ledger state`) over the
    /// canonical encoding of the whole state (`docs/ledger.md`).
    pub fn state_root(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new_derive_key("vouch v1 ledger state");
        h.update(&self.encode());
        *h.finalize().as_bytes()
    }

    /// The canonical encoding of the state, every map in key order.
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        b.put_str(&self.chain_id);
        b.put_u64(self.height);
        b.put_u64(self.time_ms);
        for v in self.params.values() {
            b.put_u64(v);
        }
        b.put_u64(self.accounts.len() as u64);
        for (k, a) in &self.accounts {
            b.put(k.as_bytes());
            b.put_u64(a.balance);
            b.put_u64(a.escrow);
            b.put_u64(a.nonce);
        }
        b.put_u64(self.operators.len() as u64);
        for (k, o) in &self.operators {
            b.put(k.as_bytes());
            b.put_u64(o.keys.len() as u64);
            for (from, key) in &o.keys {
                b.put_u64(*from);
                b.put(key.as_bytes());
            }
            b.put_u64(o.stake);
            b.put_u64(o.unbonding.len() as u64);
            for (at, amount) in &o.unbonding {
                b.put_u64(*at);
                b.put_u64(*amount);
            }
            b.put_u64(o.slashed);
            b.put_u64(o.offer.price);
            b.put_str(&o.offer.contact);
            b.put_u64(o.offer.addresses.len() as u64);
            for a in &o.offer.addresses {
                b.put_str(a);
            }
            b.put_u64(o.offer.models.len() as u64);
            for m in &o.offer.models {
                b.put(m);
            }
            b.put_u64(o.registered);
            b.put_u64(o.earned);
            for v in [o.audits.performed, o.audits.passed, o.audits.earned] {
                b.put_u64(v);
            }
        }
        b.put_u64(self.models.len() as u64);
        for (m, p) in &self.models {
            b.put(m);
            b.put(p.as_bytes());
        }
        b.put_u64(self.redeemed.len() as u64);
        for ((c, o), amount) in &self.redeemed {
            b.put(c.as_bytes());
            b.put(o.as_bytes());
            b.put_u64(*amount);
        }
        b.put_u64(self.withdrawals.len() as u64);
        for (at, k, amount) in &self.withdrawals {
            b.put_u64(*at);
            b.put(k.as_bytes());
            b.put_u64(*amount);
        }
        b.put_u64(self.disputed.len() as u64);
        for d in &self.disputed {
            b.put(d.as_bytes());
        }
        b.put_u64(self.burned);
        b.put_u64(self.fees);
        b.put_u64(self.treasury);
        b.put_u64(self.auditors_pool);
        b.put_u64(self.releases.len() as u64);
        for (version, (digest, allowed)) in &self.releases {
            b.put_str(version);
            b.put(digest);
            b.put_u8(u8::from(*allowed));
        }
        b.put_u64(self.proposals.len() as u64);
        for p in &self.proposals {
            b.put(p.proposer.as_bytes());
            b.put_u64(p.changes.len() as u64);
            for (name, value) in &p.changes {
                b.put_str(name);
                b.put_u64(*value);
            }
            b.put_u64(p.spends.len() as u64);
            for (to, amount) in &p.spends {
                b.put(to.as_bytes());
                b.put_u64(*amount);
            }
            b.put_u64(p.releases.len() as u64);
            for (version, digest, allowed) in &p.releases {
                b.put_str(version);
                b.put(digest);
                b.put_u8(u8::from(*allowed));
            }
            b.put_u64(p.proposed);
            b.put_u64(p.voting_ends);
            b.put_u64(p.votes.len() as u64);
            for (voter, yes) in &p.votes {
                b.put(voter.as_bytes());
                b.put_u8(u8::from(*yes));
            }
            let (yes, no, total) = p.tally.unwrap_or_default();
            for v in [yes, no, total] {
                b.put_u64(v);
            }
            let (tag, at) = match p.status {
                Status::Voting => (0, 0),
                Status::Passed { activates } => (1, activates),
                Status::Rejected => (2, 0),
                Status::Activated { at } => (3, at),
                Status::Failed { at } => (4, at),
            };
            b.put_u8(tag);
            b.put_u64(at);
        }
        b.put_u64(self.epoch_end);
        b.put_u64(self.epochs.len() as u64);
        for (epoch, set) in &self.epochs {
            b.put_u64(*epoch);
            b.put_u64(set.len() as u64);
            for key in set {
                b.put(key.as_bytes());
            }
        }
        b.put_u64(self.equivocations.len() as u64);
        for (key, epoch, view) in &self.equivocations {
            b.put(key.as_bytes());
            b.put_u64(*epoch);
            b.put_u64(*view);
        }
        b.put_u64(self.records.len() as u64);
        for r in self.records.iter().chain([&self.this_epoch]) {
            b.put_u64(r.epoch);
            b.put_u64(r.first);
            b.put_u64(r.last);
            b.put_u64(r.fees);
            b.put_u64(r.slashed);
            for map in [&r.earned, &r.served, &r.audit_pay] {
                b.put_u64(map.len() as u64);
                for (key, amount) in map {
                    b.put(key.as_bytes());
                    b.put_u64(*amount);
                }
            }
            for amounts in [&r.stake, &r.power] {
                b.put_u64(amounts.len() as u64);
                for a in amounts {
                    b.put_u64(*a);
                }
            }
        }
        self.encode_appeals(&mut b);
        self.encode_audits(&mut b);
        b.put_u64(self.beacons_floor);
        b.put_u64(self.beacons.len() as u64);
        for (t, beacon) in &self.beacons {
            b.put_u64(*t);
            b.put(beacon);
        }
        b
    }
}

/// Which of an account's pots a debit takes from.
enum Pot {
    Balance,
    Escrow,
}

/// `amount` × `bp` / 10,000, rounded down, without overflow.
fn mul_bp(amount: u64, bp: u64) -> u64 {
    ((amount as u128 * bp.min(10_000) as u128) / 10_000) as u64
}
