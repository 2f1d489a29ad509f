//! The ledger's consensus: `vouch-ledger`'s state machine, its blocks
//! ordered by Commonware's `simplex` BFT engine (ARCHITECTURE.md,
//! Decisions; `spikes/README.md`).
//!
//! The engine orders digests. The leader of a view proposes a
//! [`ChainBlock`] extending the parent the engine names, with transactions
//! from its pool, and sends the block to the other validators on a channel
//! of its own; a validator votes for a digest once it holds the block and
//! the block extends the named parent at the next height and a later time.
//! When the engine reports a finalization, the chain from the last applied
//! block to the finalized one is applied to the ledger in order. A
//! transaction the ledger rejects is that transaction's outcome and does
//! not stop its block, so validity of a block never depends on state.
//!
//! The chain runs in epochs: the ledger names each epoch's validators (the
//! operators with the most stake when the one before ended), and each
//! epoch has an engine of its own, started on the last block of the epoch
//! before; a node outside the set follows without voting. A validator
//! that missed the end of an epoch asks its peers for that epoch's newest
//! finalization certificate. Equivocation evidence the engine reports is
//! queued for the node to submit to the ledger.
//!
//! Generic over Commonware's runtime: the node runs it on Tokio, the tests
//! on the deterministic runtime with a simulated network.

pub mod block;
pub mod genesis;
mod store;
pub mod validator;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, UNIX_EPOCH};

use commonware_actor::Feedback;
use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::Epochable as _;
pub(crate) use commonware_consensus::simplex;
use commonware_consensus::simplex::types::{Activity, Context, Finalization};
use commonware_consensus::simplex::{ForwardPolicy, Plan, SkipPolicy, elector::RoundRobin};
use commonware_consensus::types::{Epoch, ViewDelta};
use commonware_consensus::{Automaton, CertifiableAutomaton, Relay, Reporter};
use commonware_cryptography::{Sha256, Signer as _, ed25519, sha256::Digest};
use commonware_p2p::utils::mux::Muxer;
use commonware_p2p::{Blocker, Manager, Receiver, Recipients, Sender, TrackedPeers};
use commonware_parallel::Sequential;
use commonware_runtime::buffer::paged::CacheRef;
use commonware_runtime::{Clock, Handle, Metrics, Spawner, Storage};
use commonware_utils::channel::oneshot;
use commonware_utils::{NZDuration, NZU16, NZUsize};
use vouch_ledger::evidence::{self, participants};
use vouch_ledger::{Genesis, Ledger, Tx, TxId, TxOutcome};

pub use block::{ChainBlock, MAX_BLOCK_TXS, genesis_digest};
pub use store::StoreError;

pub use vouch_ledger::evidence::{Scheme, consensus_key};

/// Transactions waiting for a block, at most.
pub const MAX_POOL: usize = 10_000;
/// Bytes of transactions waiting for a block, at most.
pub const MAX_POOL_BYTES: usize = 64 << 20;
/// Applied blocks kept in memory for peers that missed them.
pub const KEPT_BLOCKS: usize = 10_000;
/// How often a validator missing a block asks its peers again.
const FETCH_RETRY: Duration = Duration::from_millis(250);

/// On the blocks channel, the first byte says what follows: a block's
/// bytes, or the digest of a block the sender asks for.
const BLOCK: u8 = 0;
const REQUEST: u8 = 1;
/// A request for the applied blocks from a height on: `u64` height,
/// `u32` count (at most [`RANGE_BLOCKS`] are answered).
const RANGE: u8 = 2;
/// Blocks one range request is answered with, at most.
const RANGE_BLOCKS: u64 = 64;
/// A request for the newest finalization certificate of an epoch (`u64`),
/// from a validator that has stopped applying blocks: its peers may have
/// finished the epoch and stopped its engine.
const PROOF_REQUEST: u8 = 3;
/// The answer: a finalization certificate, as the engine encodes it.
const PROOF: u8 = 4;
/// Fetch rounds (of [`FETCH_RETRY`]) without a block applied before a
/// validator asks its peers for a finalization of its epoch.
const STALLED_ROUNDS: u32 = 8;
/// Equivocation evidence held for the node to submit, at most.
const MAX_EVIDENCE: usize = 256;
/// How often the epoch runner checks whether the ledger left its epoch.
const EPOCH_POLL: Duration = Duration::from_millis(20);

fn tagged(tag: u8, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + bytes.len());
    out.push(tag);
    out.extend_from_slice(bytes);
    out
}

/// What a validator is configured with.
#[derive(Clone)]
pub struct ChainConfig {
    /// This validator's consensus key (its operator key): it votes in the
    /// epochs whose validator set, from the ledger, names it, and follows
    /// the others.
    pub signer: ed25519::PrivateKey,
    /// Where the engine journals its votes: epoch `e`'s storage partition
    /// is this name and `-e`.
    pub partition: String,
    /// How long a view waits for its leader's proposal.
    pub leader_timeout: Duration,
    /// With an empty pool, a leader proposes a block only this long after
    /// the last one (and declines the view before that): an idle chain
    /// makes a block per interval, not one per view.
    pub empty_block_interval: Duration,
}

/// A block the chain applied, and the state after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committed {
    /// Its height.
    pub height: u64,
    /// Its digest.
    pub digest: [u8; 32],
    /// The ledger's state root after it.
    pub state_root: [u8; 32],
    /// Its transactions' ids, in order.
    pub txs: Vec<TxId>,
    /// Each transaction's outcome, in order.
    pub outcomes: Vec<TxOutcome>,
}

/// Why a transaction was not taken into the pool.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitError {
    /// Not a signed transaction of this chain.
    #[error("{0}")]
    Invalid(String),
    /// The pool is full.
    #[error(
        "the transaction pool is full ({MAX_POOL} transactions or {MAX_POOL_BYTES} bytes): retry after the next block"
    )]
    Full,
}

/// The validator's state, shared by the engine's callbacks and the node.
struct Core {
    ledger: Ledger,
    genesis: Digest,
    /// Blocks proposed or received and not yet behind the tip.
    blocks: HashMap<Digest, ChainBlock>,
    /// The last applied block (the genesis digest at first).
    tip: Digest,
    /// The block the current epoch's first block follows: the last block
    /// of the epoch before (the genesis digest in epoch 0).
    floor: Digest,
    /// Verifications waiting for their block or its parent:
    /// (block, parent the engine named, the engine's epoch, answer).
    waiting: Vec<(Digest, Digest, u64, oneshot::Sender<bool>)>,
    /// The highest finalized digest not applied yet (a block missing, or
    /// the disk refused it).
    finalized: Option<Digest>,
    /// A block a finalization needs that this validator lacks.
    missing: Option<Digest>,
    /// Signed transactions waiting for a block, oldest first.
    pool: Vec<(TxId, Vec<u8>)>,
    /// The last [`KEPT_BLOCKS`] applied blocks' outcomes, in order.
    committed: VecDeque<Committed>,
    /// The last [`KEPT_BLOCKS`] applied blocks: height, time and bytes.
    kept: HashMap<Digest, (u64, u64, Vec<u8>)>,
    kept_order: VecDeque<Digest>,
    /// Where applied blocks are written, if anywhere.
    store: Option<Arc<store::Store>>,
    /// The newest finalization certificate seen in each recent epoch,
    /// encoded: what a peer that missed the end of an epoch applies up to.
    proofs: BTreeMap<u64, Vec<u8>>,
    /// Equivocation evidence the engine reported, oldest first, for the
    /// node to submit ([`Chain::take_evidence`]).
    evidence: VecDeque<Vec<u8>>,
}

impl Core {
    /// Height and time of a block this validator holds (or of genesis).
    fn position(&self, digest: &Digest) -> Option<(u64, u64)> {
        if *digest == self.genesis {
            return Some((0, 0));
        }
        if *digest == self.tip {
            return Some((self.ledger.height(), self.ledger.time_ms()));
        }
        if let Some((height, time, _)) = self.kept.get(digest) {
            return Some((*height, *time));
        }
        self.blocks.get(digest).map(|b| (b.height, b.time_ms))
    }

    /// The transactions in the blocks from `parent` back to the applied
    /// tip: proposed on, not applied yet, so not to be proposed again.
    fn pending_on(&self, parent: &Digest) -> HashSet<TxId> {
        let mut ids = HashSet::new();
        let mut at = *parent;
        while at != self.tip {
            let Some(block) = self.blocks.get(&at) else {
                break;
            };
            ids.extend(block.txs.iter().map(|t| vouch_ledger::tx::tx_id(t)));
            at = block.parent;
        }
        ids
    }

    /// Whether `block` may follow `parent` in `epoch`: `None` while either
    /// is unknown. A block of an epoch is at most its last height, and an
    /// epoch the ledger is not in takes no block.
    fn valid(&self, block: &Digest, parent: &Digest, epoch: u64) -> Option<bool> {
        let b = self.blocks.get(block)?;
        let (height, time) = self.position(parent)?;
        Some(
            b.parent == *parent
                && b.height == height + 1
                && b.time_ms > time
                && self.ledger.epoch() == epoch
                && b.height <= self.ledger.epoch_end(),
        )
    }

    /// Answers the verifications whose blocks and parents are now known.
    fn settle(&mut self) {
        let waiting = std::mem::take(&mut self.waiting);
        for (block, parent, epoch, answer) in waiting {
            match self.valid(&block, &parent, epoch) {
                Some(ok) => {
                    let _ = answer.send(ok);
                }
                None if answer.is_closed() => {}
                None => self.waiting.push((block, parent, epoch, answer)),
            }
        }
    }

    /// Applies every block from the tip to `digest`, when all are held.
    fn finalize(&mut self, digest: Digest) {
        if self
            .position(&digest)
            .is_some_and(|(h, _)| h <= self.ledger.height())
        {
            return;
        }
        let mut path = Vec::new();
        let mut at = digest;
        while at != self.tip {
            let Some(block) = self.blocks.get(&at) else {
                // A block on the way is missing: ask peers for it, and
                // apply once it arrives.
                self.finalized = Some(digest);
                self.missing = Some(at);
                return;
            };
            if block.height <= self.ledger.height() {
                tracing::error!(%digest, "a finalized block does not extend the applied chain");
                return;
            }
            path.push(at);
            at = block.parent;
        }
        self.missing = None;
        path.reverse();
        // Written before they are applied: a validator whose disk refuses
        // them stays at its height and tries again.
        if let Some(store) = &self.store {
            let blocks: Vec<&ChainBlock> = path.iter().map(|d| &self.blocks[d]).collect();
            if let Err(e) = store.append(&blocks) {
                tracing::error!(%e, "finalized blocks could not be written; the ledger waits at its height");
                self.finalized = Some(digest);
                return;
            }
        }
        for digest in path {
            let block = self.blocks.remove(&digest).expect("on the path");
            if !self.apply(digest, &block) {
                return;
            }
        }
        let height = self.ledger.height();
        self.blocks.retain(|_, b| b.height > height);
        self.finalized = None;
    }

    /// Applies one block on the tip; false if the ledger refuses it.
    fn apply(&mut self, digest: Digest, block: &ChainBlock) -> bool {
        let epoch = self.ledger.epoch();
        let outcomes = match self.ledger.apply_block(&block.ledger_block()) {
            Ok(outcomes) => outcomes,
            Err(e) => {
                tracing::error!(%e, "a finalized block does not apply");
                return false;
            }
        };
        self.tip = digest;
        if self.ledger.epoch() != epoch {
            self.floor = digest;
            let oldest = self
                .ledger
                .epoch()
                .saturating_sub(vouch_ledger::state::KEPT_EPOCHS);
            self.proofs.retain(|e, _| *e >= oldest);
        }
        let included: Vec<TxId> = block
            .txs
            .iter()
            .map(|t| vouch_ledger::tx::tx_id(t))
            .collect();
        self.pool.retain(|(id, _)| !included.contains(id));
        self.kept
            .insert(digest, (block.height, block.time_ms, block.encode()));
        self.kept_order.push_back(digest);
        if self.kept_order.len() > KEPT_BLOCKS
            && let Some(old) = self.kept_order.pop_front()
        {
            self.kept.remove(&old);
        }
        self.committed.push_back(Committed {
            height: block.height,
            digest: digest.0,
            state_root: self.ledger.state_root(),
            txs: included,
            outcomes,
        });
        if self.committed.len() > KEPT_BLOCKS {
            self.committed.pop_front();
        }
        true
    }

    /// The applied blocks from height `start` on, at most `count` (and
    /// [`RANGE_BLOCKS`]): from memory, or from the store for blocks older
    /// than memory keeps, read by [`Applied::read`] once the caller has
    /// let go of the core (a disk read never holds up block application).
    fn applied_from(&self, start: u64, count: u64) -> Applied {
        let kept = self.kept_order.len() as u64;
        let first = self.ledger.height() + 1 - kept;
        if start < first {
            // Older blocks than kept come from the store, or not at all (a
            // gap at the asker's tip would be no use).
            let Some(store) = &self.store else {
                return Applied::Kept(Vec::new());
            };
            let n = count.min(RANGE_BLOCKS).min(first - start);
            return Applied::Stored(store.clone(), start.max(1), n);
        }
        Applied::Kept(
            self.kept_order
                .iter()
                .skip((start - first) as usize)
                .take(count.min(RANGE_BLOCKS) as usize)
                .filter_map(|d| self.kept.get(d).map(|(_, _, bytes)| bytes.clone()))
                .collect(),
        )
    }

    /// The bytes of a block this validator holds, applied or not.
    fn bytes_of(&self, digest: &Digest) -> Option<Vec<u8>> {
        self.kept
            .get(digest)
            .map(|(_, _, bytes)| bytes.clone())
            .or_else(|| self.blocks.get(digest).map(ChainBlock::encode))
    }

    fn received(&mut self, block: ChainBlock) {
        if block.height <= self.ledger.height() {
            return;
        }
        self.blocks.insert(block.digest(), block);
        self.settle();
        if let Some(digest) = self.finalized {
            self.finalize(digest);
        }
    }
}

/// Applied blocks' bytes for a peer or a reader: in hand, or to be read
/// from the store (from a height, how many).
enum Applied {
    Kept(Vec<Vec<u8>>),
    Stored(Arc<store::Store>, u64, u64),
}

impl Applied {
    /// The blocks' bytes, reading the store where needed (an error is
    /// logged, and nothing is answered).
    fn read(self) -> Vec<Vec<u8>> {
        match self {
            Applied::Kept(blocks) => blocks,
            Applied::Stored(store, from, n) => store.range(from, n).unwrap_or_else(|e| {
                tracing::error!(%e, "reading stored blocks");
                Vec::new()
            }),
        }
    }
}

/// A validator's view of the chain, for the node: submit transactions,
/// read the ledger.
#[derive(Clone)]
pub struct Chain {
    core: Arc<Mutex<Core>>,
}

impl Chain {
    /// A chain held in memory only, at its genesis.
    pub fn new(genesis: &Genesis) -> Chain {
        let ledger = Ledger::genesis(genesis);
        let digest = genesis_digest(ledger.chain_id(), &ledger.state_root());
        Chain {
            core: Arc::new(Mutex::new(Core {
                ledger,
                genesis: digest,
                blocks: HashMap::new(),
                tip: digest,
                floor: digest,
                waiting: Vec::new(),
                finalized: None,
                missing: None,
                pool: Vec::new(),
                committed: VecDeque::new(),
                kept: HashMap::new(),
                kept_order: VecDeque::new(),
                store: None,
                proofs: BTreeMap::new(),
                evidence: VecDeque::new(),
            })),
        }
    }

    /// A chain whose applied blocks are kept in the redb file at `path`:
    /// the blocks stored there are applied again, in order, from genesis.
    pub fn open(genesis: &Genesis, path: &std::path::Path) -> Result<Chain, StoreError> {
        let store = store::Store::open(path)?;
        let chain = Chain::new(genesis);
        {
            let mut core = chain.lock();
            let mut parent = core.genesis;
            for block in store.blocks()? {
                let corrupt = |detail: &str| StoreError::Corrupt {
                    height: block.height,
                    detail: detail.into(),
                };
                if block.parent != parent {
                    return Err(if block.height == 1 {
                        StoreError::OtherGenesis {
                            path: path.display().to_string(),
                        }
                    } else {
                        corrupt("the block does not follow the one before it")
                    });
                }
                parent = block.digest();
                if !core.apply(parent, &block) {
                    return Err(corrupt("the ledger refuses the block"));
                }
            }
            core.store = Some(Arc::new(store));
        }
        Ok(chain)
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        self.core.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a signed transaction into the pool, for a block this
    /// validator proposes. Its action is checked when its block is applied.
    pub fn submit(&self, bytes: Vec<u8>) -> Result<TxId, SubmitError> {
        let tx = Tx::decode(&bytes).map_err(|e| SubmitError::Invalid(e.to_string()))?;
        let mut core = self.lock();
        if tx.chain_id != core.ledger.chain_id() {
            return Err(SubmitError::Invalid(format!(
                "the transaction is for chain `{}`, this is `{}`",
                tx.chain_id,
                core.ledger.chain_id()
            )));
        }
        if !tx.verify() {
            return Err(SubmitError::Invalid(
                "the transaction's signature does not verify".into(),
            ));
        }
        let id = tx.id();
        if core.pool.iter().any(|(i, _)| *i == id) {
            return Ok(id);
        }
        let pooled: usize = core.pool.iter().map(|(_, t)| t.len()).sum();
        if core.pool.len() >= MAX_POOL || pooled + bytes.len() > MAX_POOL_BYTES {
            return Err(SubmitError::Full);
        }
        core.pool.push((id, bytes));
        Ok(id)
    }

    /// Applied block `height`, from memory or the store, with its
    /// transactions' outcomes where memory still holds them.
    pub fn block(&self, height: u64) -> Option<(ChainBlock, Option<Committed>)> {
        let (applied, committed) = {
            let core = self.lock();
            if height == 0 || height > core.ledger.height() {
                return None;
            }
            let committed = core.committed.iter().find(|c| c.height == height).cloned();
            (core.applied_from(height, 1), committed)
        };
        let bytes = applied.read().into_iter().next()?;
        let block = ChainBlock::decode(&bytes).ok()?;
        Some((block, committed))
    }

    /// Reads the ledger as of the last applied block.
    pub fn read<R>(&self, f: impl FnOnce(&Ledger) -> R) -> R {
        f(&self.lock().ledger)
    }

    /// Where transaction `id` was applied, among the blocks still in
    /// memory, and its outcome: `Ok(height)`, or the height and why the
    /// ledger rejected it.
    pub fn outcome(&self, id: &TxId) -> Option<(u64, Result<(), String>)> {
        let core = self.lock();
        // The first block that carried it is where it took effect (a later
        // one can only refuse it as a replay).
        core.committed.iter().find_map(|c| {
            let at = c.txs.iter().position(|t| t == id)?;
            Some((
                c.height,
                c.outcomes[at]
                    .as_ref()
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            ))
        })
    }

    /// Takes the equivocation evidence the engine reported since the last
    /// call ([`vouch_ledger::evidence`]), for an `Equivocation` transaction.
    pub fn take_evidence(&self) -> Vec<Vec<u8>> {
        self.lock().evidence.drain(..).collect()
    }

    /// The current epoch, its validators' and every other registered
    /// operator's consensus keys, and the block it starts after.
    fn epoch_now(
        &self,
    ) -> (
        u64,
        Vec<vouch_types::PublicKey>,
        Vec<vouch_types::PublicKey>,
        Digest,
    ) {
        let core = self.lock();
        let l = &core.ledger;
        let epoch = l.epoch();
        let set = l.epoch_validators(epoch).unwrap_or_default().to_vec();
        let others = l
            .operators()
            .keys()
            .filter(|k| !set.contains(k))
            .copied()
            .collect();
        (epoch, set, others, core.floor)
    }

    /// Takes a finalization certificate a peer sent: if it is of the
    /// current epoch and its validators signed it, the chain applies up to
    /// its block (fetching the blocks it lacks).
    fn take_proof(&self, bytes: &[u8], rng: &mut impl rand_core::CryptoRng) -> Result<(), String> {
        let (epoch, set, chain_id) = {
            let core = self.lock();
            let epoch = core.ledger.epoch();
            let set = core
                .ledger
                .epoch_validators(epoch)
                .unwrap_or_default()
                .to_vec();
            (epoch, set, core.ledger.chain_id().to_string())
        };
        let set = participants(&set);
        let f = Finalization::<Scheme, Digest>::decode_cfg(bytes.to_vec(), &set.len())
            .map_err(|e| e.to_string())?;
        if f.epoch().get() != epoch {
            // Of an epoch this validator finished, or has not reached.
            return Ok(());
        }
        let verifier = Scheme::verifier(&evidence::namespace(&chain_id, b""), set);
        if !f.verify(rng, &verifier, &Sequential) {
            return Err(format!(
                "a finalization of epoch {epoch} that its validators did not sign"
            ));
        }
        let mut core = self.lock();
        core.proofs.insert(epoch, bytes.to_vec());
        core.finalize(f.proposal.payload);
        Ok(())
    }

    /// The applied blocks still in memory, from height `from` on.
    pub fn committed(&self, from: u64) -> Vec<Committed> {
        let core = self.lock();
        core.committed
            .iter()
            .filter(|c| c.height >= from)
            .cloned()
            .collect()
    }
}

/// The engine's side: the automaton, the relay and the reporter, over the
/// shared core and the channel blocks travel on.
struct App<S, C> {
    chain: Chain,
    blocks: S,
    clock: Arc<C>,
    empty_block_ms: u64,
    /// The epoch of the engine this serves.
    epoch: u64,
}

impl<S: Clone, C> Clone for App<S, C> {
    fn clone(&self) -> Self {
        App {
            chain: self.chain.clone(),
            blocks: self.blocks.clone(),
            clock: self.clock.clone(),
            empty_block_ms: self.empty_block_ms,
            epoch: self.epoch,
        }
    }
}

impl<S, C> App<S, C>
where
    S: Sender<PublicKey = ed25519::PublicKey>,
    C: Clock + Send + Sync + 'static,
{
    fn now_ms(&self) -> u64 {
        self.clock
            .current()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

impl<S, C> Automaton for App<S, C>
where
    S: Sender<PublicKey = ed25519::PublicKey>,
    C: Clock + Send + Sync + 'static,
{
    type Digest = Digest;
    type Context = Context<Digest, ed25519::PublicKey>;

    async fn propose(&mut self, context: Self::Context) -> oneshot::Receiver<Digest> {
        let (answer, receiver) = oneshot::channel();
        let (_, parent) = context.parent;
        let now = self.now_ms();
        let mut core = self.chain.lock();
        // A parent this validator does not hold: decline (the view times
        // out and another leader proposes). So too once the epoch's last
        // block is made: the next epoch's engine goes on.
        let Some((height, time)) = core.position(&parent) else {
            return receiver;
        };
        if core.ledger.epoch() != self.epoch || height >= core.ledger.epoch_end() {
            return receiver;
        }
        if core.pool.is_empty() && now < time.saturating_add(self.empty_block_ms) {
            return receiver;
        }
        let block = ChainBlock {
            parent,
            height: height + 1,
            time_ms: now.max(time + 1),
            txs: take_block(&core.pool, &core.pending_on(&parent)),
        };
        let digest = block.digest();
        core.blocks.insert(digest, block);
        let _ = answer.send(digest);
        receiver
    }

    async fn verify(&mut self, context: Self::Context, payload: Digest) -> oneshot::Receiver<bool> {
        let (answer, receiver) = oneshot::channel();
        let (_, parent) = context.parent;
        let mut core = self.chain.lock();
        match core.valid(&payload, &parent, self.epoch) {
            Some(ok) => {
                let _ = answer.send(ok);
            }
            None => core.waiting.push((payload, parent, self.epoch, answer)),
        }
        receiver
    }
}

impl<S, C> CertifiableAutomaton for App<S, C>
where
    S: Sender<PublicKey = ed25519::PublicKey>,
    C: Clock + Send + Sync + 'static,
{
}

impl<S, C> Relay for App<S, C>
where
    S: Sender<PublicKey = ed25519::PublicKey>,
    C: Clock + Send + Sync + 'static,
{
    type Digest = Digest;
    type PublicKey = ed25519::PublicKey;
    type Plan = Plan<ed25519::PublicKey>;

    fn broadcast(&mut self, payload: Digest, _: Self::Plan) -> Feedback {
        let bytes = self
            .chain
            .lock()
            .blocks
            .get(&payload)
            .map(ChainBlock::encode);
        if let Some(bytes) = bytes {
            self.blocks
                .send(Recipients::All, tagged(BLOCK, &bytes), true);
        }
        Feedback::Ok
    }
}

impl<S, C> Reporter for App<S, C>
where
    S: Sender<PublicKey = ed25519::PublicKey>,
    C: Clock + Send + Sync + 'static,
{
    type Activity = Activity<Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> Feedback {
        if let Activity::Finalization(f) = &activity {
            let mut core = self.chain.lock();
            core.proofs
                .insert(f.epoch().get(), f.encode().as_ref().to_vec());
            core.finalize(f.proposal.payload);
        } else if let Some(bytes) = evidence::encode(&activity) {
            // Signed evidence of equivocation: the node submits it to the
            // ledger, which slashes the validator.
            tracing::warn!(epoch = self.epoch, "a validator equivocated");
            let mut core = self.chain.lock();
            if core.evidence.len() < MAX_EVIDENCE {
                core.evidence.push_back(bytes);
            }
        }
        Feedback::Ok
    }
}

/// The oldest pooled transactions that fit one block, leaving out those
/// already in the blocks it extends that are not applied yet: at most
/// [`MAX_BLOCK_TXS`], and within [`block::MAX_BLOCK_BYTES`] once encoded
/// (a larger block no peer would take, and the view would fail again and
/// again on the same transactions).
fn take_block(pool: &[(TxId, Vec<u8>)], pending: &HashSet<TxId>) -> Vec<Vec<u8>> {
    let mut room = block::MAX_BLOCK_BYTES - block::HEADER_BYTES;
    let mut txs = Vec::new();
    let fresh = pool.iter().filter(|(id, _)| !pending.contains(id));
    for (_, tx) in fresh.take(MAX_BLOCK_TXS) {
        let need = 4 + tx.len();
        if need > room {
            break;
        }
        room -= need;
        txs.push(tx.clone());
    }
    txs
}

/// One channel's sender and receiver.
pub type Channel<S, R> = (S, R);

/// Starts a validator on `context`: the runner of one engine per epoch,
/// and the task that takes blocks from the `blocks` channel. `votes`,
/// `certificates` and `resolver` are the engines' three channels, shared
/// by epoch (each epoch a sub-channel of its own); `peers` is told each
/// epoch's validators and the other registered operators, who follow.
#[allow(clippy::too_many_arguments)]
pub fn start<E, B, M, S, R>(
    context: E,
    chain: Chain,
    config: ChainConfig,
    blocker: B,
    peers: M,
    votes: Channel<S, R>,
    certificates: Channel<S, R>,
    resolver: Channel<S, R>,
    blocks: Channel<S, R>,
) -> (Chain, Handle<()>)
where
    E: Clock + Spawner + Storage + Metrics + rand_core::CryptoRng + Sync,
    B: Blocker<PublicKey = ed25519::PublicKey> + Clone,
    M: Manager<PublicKey = ed25519::PublicKey>,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let (block_sender, block_receiver) = blocks;
    serve_blocks(&context, &chain, block_sender.clone(), block_receiver);
    fetch_missing(&context, &chain, block_sender.clone());
    let running = chain.clone();
    let handle = context.child("epochs").spawn(move |context| async move {
        let mut peers = peers;
        let mux = |name, (sender, receiver): Channel<S, R>| {
            let (mux, handle) = Muxer::new(context.child(name), sender, receiver);
            mux.start();
            handle
        };
        let (mut votes, mut certificates, mut resolver) = (
            mux("votes", votes),
            mux("certificates", certificates),
            mux("resolver", resolver),
        );
        let chain_id = running.read(|l| l.chain_id().to_string());
        let namespace = evidence::namespace(&chain_id, b"");
        let me = config.signer.public_key();
        loop {
            let (epoch, set, others, floor) = running.epoch_now();
            let set = participants(&set);
            peers.track(
                epoch + 1,
                TrackedPeers::new(set.clone(), participants(&others)),
            );
            let voting = set.position(&me).is_some();
            let scheme = if voting {
                Scheme::signer(&namespace, set, config.signer.clone()).expect("a member of the set")
            } else {
                Scheme::verifier(&namespace, set)
            };
            tracing::info!(epoch, voting, "starting the consensus engine of an epoch");
            let app = App {
                chain: running.clone(),
                blocks: block_sender.clone(),
                clock: Arc::new(context.child("clock")),
                empty_block_ms: config.empty_block_interval.as_millis() as u64,
                epoch,
            };
            let engine = simplex::Engine::new(
                context.child("engine").with_attribute("epoch", epoch),
                engine_config(&config, scheme, blocker.clone(), app, epoch, floor),
            );
            let channel =
                |e: commonware_p2p::utils::mux::Error| panic!("the epoch's channel is taken: {e}");
            let engine = engine.start(
                votes.register(epoch).await.unwrap_or_else(channel),
                certificates.register(epoch).await.unwrap_or_else(channel),
                resolver.register(epoch).await.unwrap_or_else(channel),
            );
            // The journal of the epoch before the last is never read again:
            // removed, so that a long-running node's journals do not fill
            // its disk one epoch at a time.
            if let Some(old) = epoch.checked_sub(2) {
                let old = format!("{}-{old}", config.partition);
                if let Err(e) = context.remove(&old, None).await {
                    tracing::debug!(partition = %old, %e, "no old journal to remove");
                }
            }
            // Until the ledger applies the epoch's last block.
            while running.read(Ledger::epoch) == epoch {
                context.sleep(EPOCH_POLL).await;
            }
            engine.abort();
        }
    });
    (chain, handle)
}

/// The engine's settings, with the app as its automaton, relay and
/// reporter.
type EngineConfig<B, S, C> = simplex::Config<
    Scheme,
    RoundRobin<Sha256>,
    B,
    Digest,
    App<S, C>,
    App<S, C>,
    App<S, C>,
    Sequential,
>;

/// One epoch's engine settings.
fn engine_config<B, S, C>(
    config: &ChainConfig,
    scheme: Scheme,
    blocker: B,
    app: App<S, C>,
    epoch: u64,
    floor: Digest,
) -> EngineConfig<B, S, C>
where
    B: Blocker<PublicKey = ed25519::PublicKey>,
    S: Sender<PublicKey = ed25519::PublicKey>,
    C: Clock + Send + Sync + 'static,
{
    simplex::Config {
        scheme,
        elector: RoundRobin::<Sha256>::default(),
        blocker,
        automaton: app.clone(),
        relay: app.clone(),
        reporter: app,
        partition: format!("{}-{epoch}", config.partition),
        mailbox_size: NZUsize!(1024),
        epoch: Epoch::new(epoch),
        floor: simplex::Floor::Genesis(floor),
        replay_buffer: NZUsize!(1024 * 1024),
        write_buffer: NZUsize!(1024 * 1024),
        leader_timeout: config.leader_timeout,
        certification_timeout: config.leader_timeout * 2,
        timeout_retry: config.leader_timeout * 10,
        fetch_timeout: NZDuration!(Duration::from_secs(1)),
        fetch_retry_delay: Duration::from_millis(100),
        view_retention: ViewDelta::new(10),
        skip: SkipPolicy::Enabled {
            timeout: config.leader_timeout * 11,
            budget: simplex::SkipBudget::Participants,
        },
        page_cache: CacheRef::new(NZU16!(16_384), NZUsize!(10_000)),
        strategy: Sequential,
        forward: ForwardPolicy::Disabled,
        track_historical_votes: false,
    }
}

/// Answers peers on the blocks channel: blocks from leaders, requests for
/// one block, for a range of applied blocks, or for an epoch's newest
/// finalization; and takes the finalizations sent back.
fn serve_blocks<E, S, R>(context: &E, chain: &Chain, mut answers: S, mut receiver: R)
where
    E: Spawner + rand_core::CryptoRng,
    S: Sender<PublicKey = ed25519::PublicKey>,
    R: Receiver<PublicKey = ed25519::PublicKey>,
{
    let receiving = chain.clone();
    context.child("blocks").spawn(move |mut context| async move {
        while let Ok((from, message)) = receiver.recv().await {
            let message: &[u8] = message.as_ref();
            match message.split_first() {
                Some((&BLOCK, bytes)) => match ChainBlock::decode(bytes) {
                    Ok(block) => receiving.lock().received(block),
                    Err(e) => tracing::warn!(%from, %e, "a peer sent bytes that are not a block"),
                },
                Some((&REQUEST, digest)) if digest.len() == 32 => {
                    let digest = Digest(digest.try_into().expect("32 bytes"));
                    let bytes = receiving.lock().bytes_of(&digest);
                    if let Some(bytes) = bytes {
                        answers.send(Recipients::One(from), tagged(BLOCK, &bytes), false);
                    }
                }
                Some((&RANGE, range)) if range.len() == 12 => {
                    let start = u64::from_le_bytes(range[..8].try_into().expect("8 bytes"));
                    let count = u32::from_le_bytes(range[8..].try_into().expect("4 bytes"));
                    let applied = receiving.lock().applied_from(start, u64::from(count));
                    let blocks = applied.read();
                    for bytes in blocks {
                        answers.send(Recipients::One(from.clone()), tagged(BLOCK, &bytes), false);
                    }
                }
                Some((&PROOF_REQUEST, epoch)) if epoch.len() == 8 => {
                    let epoch = u64::from_le_bytes(epoch.try_into().expect("8 bytes"));
                    let proof = receiving.lock().proofs.get(&epoch).cloned();
                    if let Some(proof) = proof {
                        answers.send(Recipients::One(from), tagged(PROOF, &proof), false);
                    }
                }
                Some((&PROOF, proof)) => {
                    if let Err(e) = receiving.take_proof(proof, &mut context) {
                        tracing::warn!(%from, %e, "a peer sent a finalization that does not verify");
                    }
                }
                _ => tracing::warn!(%from, "a peer sent a message that is neither a block nor a request"),
            }
        }
    });
}

/// Asks peers for what this validator lacks: a block a finalization needs
/// (and the blocks after its tip), every [`FETCH_RETRY`] until it arrives;
/// and, after [`STALLED_ROUNDS`] rounds without a block applied, its
/// epoch's newest finalization, which peers that finished the epoch hold.
fn fetch_missing<E, S>(context: &E, chain: &Chain, mut requests: S)
where
    E: Clock + Spawner,
    S: Sender<PublicKey = ed25519::PublicKey>,
{
    let asking = chain.clone();
    context.child("fetch").spawn(move |context| async move {
        let (mut last, mut stalled) = (0, 0);
        loop {
            context.sleep(FETCH_RETRY).await;
            let (missing, unwritten, height, epoch) = {
                let core = asking.lock();
                (
                    core.missing.map(|d| (d, core.ledger.height() + 1)),
                    core.finalized.filter(|_| core.missing.is_none()),
                    core.ledger.height(),
                    core.ledger.epoch(),
                )
            };
            if let Some((digest, next)) = missing {
                requests.send(Recipients::All, tagged(REQUEST, &digest.0), false);
                // And the blocks after this validator's tip, many at once,
                // so that a long way behind is caught up in few round trips.
                let mut range = next.to_le_bytes().to_vec();
                range.extend_from_slice(&(RANGE_BLOCKS as u32).to_le_bytes());
                requests.send(Recipients::All, tagged(RANGE, &range), false);
            }
            // Blocks the disk refused: written and applied once it takes them.
            if let Some(digest) = unwritten {
                asking.lock().finalize(digest);
            }
            if height == last {
                stalled += 1;
            } else {
                (last, stalled) = (height, 0);
            }
            if stalled >= STALLED_ROUNDS {
                stalled = 0;
                requests.send(
                    Recipients::All,
                    tagged(PROOF_REQUEST, &epoch.to_le_bytes()),
                    false,
                );
            }
        }
    });
}

/// `n` free TCP ports on loopback for validators (and other services) of
/// one machine whose addresses must be known before they start: each is
/// checked free by binding it, then released for its owner to bind. They
/// are below the kernel's range for ephemeral ports (32768 and up on
/// Linux), so that nothing binding port 0 meanwhile (an API, an outgoing
/// connection) can be given one first.
pub fn local_ports(n: usize) -> std::io::Result<Vec<u16>> {
    const LOW: u32 = 20_000;
    const SPAN: u32 = 12_000;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let start = (nanos ^ std::process::id().wrapping_mul(2_654_435_761)) % SPAN;
    let mut held = Vec::new();
    for k in 0..SPAN {
        if held.len() == n {
            break;
        }
        let port = (LOW + (start + k) % SPAN) as u16;
        if let Ok(l) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(l);
        }
    }
    if held.len() < n {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AddrInUse,
            format!("fewer than {n} free ports between {LOW} and {}", LOW + SPAN),
        ));
    }
    held.iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// An operator's key as a consensus key: the same ed25519 seed.
pub fn consensus_signer(secret: &vouch_types::SecretKey) -> ed25519::PrivateKey {
    use commonware_codec::DecodeExt as _;
    ed25519::PrivateKey::decode(secret.to_bytes().to_vec()).expect("32 bytes are an ed25519 seed")
}

#[cfg(test)]
mod tests {
    use commonware_cryptography::Signer as _;

    fn empty_genesis() -> vouch_ledger::Genesis {
        vouch_ledger::Genesis {
            chain_id: "t".into(),
            params: vouch_ledger::Params::default(),
            accounts: vec![],
            operators: vec![],
        }
    }

    /// Applies empty blocks 1..=`n` on genesis, writing each to the store
    /// where the chain has one.
    fn apply_empty(core: &mut super::Core, n: u64) {
        let mut parent = core.genesis;
        for height in 1..=n {
            let block = super::ChainBlock {
                parent,
                height,
                time_ms: height,
                txs: vec![],
            };
            parent = block.digest();
            assert!(core.apply(parent, &block));
            if let Some(store) = &core.store {
                store.append(&[&block]).unwrap();
            }
        }
    }

    fn heights_of(applied: super::Applied) -> Vec<u64> {
        applied
            .read()
            .iter()
            .map(|b| super::ChainBlock::decode(b).unwrap().height)
            .collect()
    }

    /// A range request is answered with the applied blocks from its height
    /// on, in order, never with a gap at its start.
    #[test]
    fn ranges_of_applied_blocks_start_where_asked() {
        let chain = super::Chain::new(&empty_genesis());
        let mut core = chain.lock();
        apply_empty(&mut core, 5);
        assert_eq!(heights_of(core.applied_from(2, 2)), vec![2, 3]);
        assert_eq!(heights_of(core.applied_from(4, 100)), vec![4, 5]);
        assert!(core.applied_from(6, 3).read().is_empty());
        assert!(core.applied_from(0, 3).read().is_empty());
    }

    /// A peer far behind gets the blocks memory no longer keeps from the
    /// store, up to where memory takes over; `Chain::block` reads either.
    #[test]
    fn blocks_older_than_memory_come_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let chain = super::Chain::open(&empty_genesis(), &dir.path().join("chain.redb")).unwrap();
        {
            let mut core = chain.lock();
            apply_empty(&mut core, 5);
            // Memory keeps the last two only.
            while core.kept_order.len() > 2 {
                let old = core.kept_order.pop_front().unwrap();
                core.kept.remove(&old);
            }
            assert_eq!(heights_of(core.applied_from(1, 100)), vec![1, 2, 3]);
            assert_eq!(heights_of(core.applied_from(2, 1)), vec![2]);
            assert_eq!(heights_of(core.applied_from(4, 100)), vec![4, 5]);
        }
        assert_eq!(chain.block(1).unwrap().0.height, 1);
        assert_eq!(chain.block(5).unwrap().0.height, 5);
        assert!(chain.block(6).is_none() && chain.block(0).is_none());
    }

    /// A block proposed from a pool of large transactions stays within the
    /// size every peer takes, and the rest wait for the next block.
    #[test]
    fn a_proposal_never_outgrows_a_block() {
        let big = vec![7u8; vouch_ledger::tx::MAX_TX_BYTES];
        let pool: Vec<_> = (0..10u8)
            .map(|i| (vouch_ledger::TxId([i; 32]), big.clone()))
            .collect();
        let txs = super::take_block(&pool, &Default::default());
        assert_eq!(txs.len(), 3);
        // Those in blocks not applied yet are left for later.
        let pending = pool[..2].iter().map(|(id, _)| *id).collect();
        assert_eq!(super::take_block(&pool, &pending).len(), 3);
        assert!(
            super::take_block(&pool[..2], &pending).is_empty(),
            "a pending transaction was proposed again"
        );
        let block = super::ChainBlock {
            parent: commonware_cryptography::sha256::Digest([0; 32]),
            height: 1,
            time_ms: 1,
            txs,
        };
        assert!(super::ChainBlock::decode(&block.encode()).is_ok());
    }

    /// A validator's consensus identity is its operator key: the same seed
    /// gives the same public key on both sides.
    #[test]
    fn an_operator_key_is_its_consensus_key() {
        let secret = vouch_types::SecretKey::from_bytes(&[42; 32]);
        assert_eq!(
            super::consensus_signer(&secret).public_key(),
            super::consensus_key(&secret.public())
        );
    }
}
