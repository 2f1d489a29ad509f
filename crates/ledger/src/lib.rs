//! Vouch's ledger as a pure state machine: accounts and balances, escrow
//! for payment vouchers, operators with stake (bonding, unbonding with a
//! delay, key rotation with the key history kept), the model registry,
//! the network's parameters and their governance by stake-weighted
//! votes, dispute convictions with slashing, and a state root per block.
//!
//! No IO, no clock, no randomness: [`Ledger::apply_block`] is a function
//! of the state and the block, so every validator that applies the same
//! blocks holds the same state and the same [`Ledger::state_root`]. The
//! byte encodings of transactions, vouchers and the state are specified in
//! `docs/ledger.md`. Consensus (which blocks, in which order) is another
//! crate's job; this one only says what a block does.

pub mod appeal;
pub mod audits;
pub mod conviction;
pub mod evidence;
pub mod governance;
pub mod state;
pub mod tx;

pub use state::{
    Account, AuditRecord, BeaconError, Block, BlockError, EpochRecord, Genesis, Ledger, Operator,
    PROOF_CHECKS_PER_BLOCK, Params, Proposal, Status, TxError, TxOutcome,
};
pub use tx::{Offer, Tx, TxBody, TxId, Voucher};
