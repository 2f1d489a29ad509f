//! Payments on the request path (`docs/ledger.md`, "Paying for requests"):
//! a node that runs a ledger chain and sets a price charges each inference
//! request a voucher, signed by the client, for the cumulative amount it
//! owes this operator; it keeps the newest voucher of each client and
//! redeems them on the ledger in batches.
//!
//! The checks, in order: the voucher is for this chain and this operator
//! (its signature verifies, unless it is the very voucher held already),
//! it is at least the price above what the client's requests spent so far
//! (or the ledger redeemed), and the client's escrow covers what it owes
//! this operator beyond what was redeemed. A client may pay several
//! requests ahead with one voucher and send it again until they are spent:
//! one signature, and one check, for several requests. Taking the payment
//! is one step under a lock, so two requests cannot spend the same amount.
//! A request that then fails gets its payment back.

use std::collections::HashMap;
use std::sync::{Mutex, Weak};
use std::time::Duration;

pub use vouch_api::{HeldVoucher, PaymentState};
use vouch_ledger::{Tx, TxBody, Voucher};
use vouch_p2p::{Frame, Peer, Request};
use vouch_service::NodeError;
use vouch_types::PublicKey;

use crate::Node;

/// The request header a voucher travels in ([`Voucher::to_header`]).
pub const VOUCHER_HEADER: &str = "vouch-voucher";

/// How long [`Node::submit_own`] waits for its transaction's block.
const INCLUSION_WAIT: Duration = Duration::from_secs(30);

/// The vouchers a node holds, and the lock its own transactions take.
#[derive(Default)]
pub(crate) struct Payments {
    /// The newest voucher of each client, what its requests spent of it
    /// so far, and whether it is written to the store yet.
    held: Mutex<HashMap<PublicKey, Held>>,
    /// One transaction of this node's own at a time, so that each takes
    /// the next nonce.
    own_tx: tokio::sync::Mutex<()>,
    /// What this node promised so far to each operator it pays for the
    /// requests it routes there (operator key → cumulative), where known:
    /// an operator not in it is asked its floor (`Request::PaymentState`)
    /// first, so a restart loses nothing.
    promised: Mutex<HashMap<PublicKey, u64>>,
    /// Reports of audits this node passed, waiting to be filed
    /// (`audit_pay`).
    pub(crate) reports: Mutex<Vec<vouch_types::audit::AuditReport>>,
}

/// A payment this node made to a peer for a request it routed there
/// ([`Node::pay_peer`]).
#[derive(Clone, Debug)]
pub(crate) struct PeerPayment {
    operator: PublicKey,
    price: u64,
    cumulative: u64,
    /// The voucher, as it travels (`Voucher::to_header`).
    pub(crate) header: String,
}

/// A client's newest voucher and what its requests spent of it.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Held {
    /// The client's voucher with the largest cumulative amount.
    voucher: Voucher,
    /// What the client's requests spent in all, at most the voucher's
    /// amount: a client may pay several requests ahead with one voucher
    /// and send it again until they are spent.
    spent: u64,
    /// Whether the voucher is written to the store.
    stored: bool,
}

/// A request's payment, taken by [`Node::charge`]: give it back with
/// [`Node::refund`] when the request fails.
#[derive(Debug)]
pub struct Charge {
    /// What the request pays.
    pub price: u64,
    client: PublicKey,
    /// What the client had spent in all after this request.
    spent: u64,
    previous: Option<Held>,
}

impl Node {
    /// What this node charges per inference request: its price where it
    /// runs a ledger chain to settle on, else nothing.
    pub fn charges(&self) -> Option<u64> {
        let price = self.config().price;
        (price > 0 && self.chain.get().is_some()).then_some(price)
    }

    /// Takes a request's payment from its `Vouch-Voucher` header; `None`
    /// where this node charges nothing. A missing, malformed or
    /// insufficient voucher is a `payment_required` error, a client whose
    /// escrow does not cover it `insufficient_funds`; each says what to
    /// send instead.
    pub fn charge(&self, header: Option<&str>) -> Result<Option<Charge>, NodeError> {
        let Some(price) = self.charges() else {
            return Ok(None);
        };
        let chain = self.chain()?;
        let me = self.public_key();
        let Some(header) = header else {
            let chain_id = chain.read(|l| l.chain_id().to_string());
            return Err(NodeError::PaymentRequired(format!(
                "this node charges {price} per request: send a `Vouch-Voucher` header signed for operator {me} on chain `{chain_id}` (`vouch infer --pay KEY` does; GET /v1/payments/YOUR_KEY says the amount)"
            )));
        };
        let voucher = Voucher::from_header(header).map_err(NodeError::PaymentRequired)?;
        let client = voucher.client;
        // One read of the ledger per request.
        let (chain_id, redeemed, escrow) = account_with(chain, &client, &me);
        // A voucher this node holds already (one that pays several requests
        // ahead, sent again) was checked when it was taken; any other is
        // checked here, outside the lock.
        let known = self
            .held()
            .get(&client)
            .is_some_and(|h| h.voucher == voucher);
        if !known && !voucher.verify(&chain_id, &me) {
            return Err(NodeError::PaymentRequired(format!(
                "the voucher's signature does not verify for client {} paying operator {me} on chain `{chain_id}`",
                voucher.client
            )));
        }
        let mut held = self.held();
        let previous = held.get(&client).cloned();
        if known && previous.as_ref().is_none_or(|h| h.voucher != voucher) {
            // No longer the one held (a refund or a newer voucher came
            // between): checked now, under the lock, which is rare.
            if !voucher.verify(&chain_id, &me) {
                return Err(NodeError::PaymentRequired(
                    "the voucher's signature does not verify".into(),
                ));
            }
        }
        let floor = spent(previous.as_ref(), redeemed);
        let next = floor.saturating_add(price);
        if voucher.cumulative < next {
            return Err(NodeError::PaymentRequired(format!(
                "the voucher says {} in all; this request needs at least {next} (the {floor} already spent or settled, plus the price {price})",
                voucher.cumulative
            )));
        }
        // Paid ahead and redeemed, a client's smaller voucher may be below
        // what the ledger settled: it owes nothing more.
        let owed = voucher.cumulative.saturating_sub(redeemed);
        if owed > escrow {
            return Err(NodeError::InsufficientFunds(format!(
                "client {client} has {escrow} in escrow, and this voucher owes this operator {owed}; deposit more (`vouch deposit AMOUNT`)"
            )));
        }
        // The voucher worth most is kept: a smaller one that still covers
        // this request does not lower what the client promised.
        let kept = match &previous {
            Some(h) if h.voucher.cumulative >= voucher.cumulative => Held {
                spent: next,
                ..h.clone()
            },
            _ => Held {
                voucher,
                spent: next,
                stored: false,
            },
        };
        held.insert(client, kept);
        Ok(Some(Charge {
            price,
            client,
            spent: next,
            previous,
        }))
    }

    /// Gives a failed request's payment back: what the client held and
    /// spent before is restored, unless a later request changed it since.
    pub fn refund(&self, charge: Charge) {
        let mut held = self.held();
        if held.get(&charge.client).map(|h| h.spent) != Some(charge.spent) {
            return;
        }
        match charge.previous {
            Some(h) => held.insert(charge.client, h),
            None => held.remove(&charge.client),
        };
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<PublicKey, Held>> {
        self.payments.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `client` needs to pay this node's next request.
    pub fn payment_state(&self, client: &PublicKey) -> Result<PaymentState, NodeError> {
        let me = self.public_key();
        let (chain_id, redeemed, escrow) = account_with(self.chain()?, client, &me);
        let held = self.held().get(client).cloned();
        let price = self.charges().unwrap_or(0);
        let floor = spent(held.as_ref(), redeemed);
        Ok(PaymentState {
            chain_id,
            operator: me,
            price,
            escrow,
            redeemed,
            held: held.as_ref().map(|h| held_json(&h.voucher)),
            next: floor.saturating_add(price),
        })
    }

    /// Signs `body` as this node's operator with its next nonce, submits
    /// it to its chain and waits for its block: the ledger's verdict, and
    /// where it took effect (the transaction's id and its block's height).
    /// One at a time, so that nonces follow each other; a rejection for
    /// the nonce (a transaction signed elsewhere with the operator key took
    /// it) had no effect, so it is signed again, a few times at most.
    pub async fn submit_own(&self, body: TxBody) -> Result<(vouch_ledger::TxId, u64), NodeError> {
        let chain = self.chain()?;
        let _one = self.payments.own_tx.lock().await;
        let me = self.public_key();
        let mut tries = 0;
        loop {
            let (chain_id, nonce) =
                chain.read(|l| (l.chain_id().to_string(), l.account(&me).nonce));
            let tx = Tx::sign(&chain_id, self.key(), nonce, body.clone());
            let id = chain
                .submit(tx.encode())
                .map_err(|e| NodeError::Unavailable(e.to_string()))?;
            let deadline = tokio::time::Instant::now() + INCLUSION_WAIT;
            let (height, outcome) = loop {
                if let Some(applied) = chain.outcome(&id) {
                    break applied;
                }
                if tokio::time::Instant::now() > deadline {
                    return Err(NodeError::Unavailable(format!(
                        "transaction {id} was not in a block after {}s",
                        INCLUSION_WAIT.as_secs()
                    )));
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            match outcome {
                Err(e) if vouch_ledger::TxError::is_bad_nonce(&e) && tries < 5 => tries += 1,
                outcome => {
                    return outcome
                        .map(|()| (id, height))
                        .map_err(NodeError::BadRequest);
                }
            }
        }
    }

    /// The voucher this node attaches to a request it routes to `peer`:
    /// `None` where that peer's operator charges nothing on this node's
    /// chain (or there is no chain). The voucher promises the operator's
    /// price on top of what this node promised it before (asked of the
    /// peer the first time), paid from this node's escrow.
    pub(crate) async fn pay_peer(&self, peer: Peer) -> Result<Option<PeerPayment>, NodeError> {
        let Some(chain) = self.chain.get() else {
            return Ok(None);
        };
        let Some(key) = vouch_p2p::key_of_peer(&peer) else {
            return Ok(None);
        };
        let found = chain.read(|l| {
            l.operator_of(&key)
                .and_then(|account| l.operators().get(&account))
                .filter(|o| o.key() == key)
                .map(|o| (key, o.offer.price, l.chain_id().to_string()))
        });
        let Some((operator, price, chain_id)) = found.filter(|(_, price, _)| *price > 0) else {
            return Ok(None);
        };
        let known = self.promised().get(&operator).copied();
        let floor = match known {
            Some(f) => f,
            None => self.ask_floor(peer).await?,
        };
        let cumulative = {
            let mut promised = self.promised();
            let entry = promised.entry(operator).or_insert(floor);
            *entry = (*entry).max(floor).saturating_add(price);
            *entry
        };
        let header = Voucher::sign(&chain_id, self.key(), &operator, cumulative).to_header();
        Ok(Some(PeerPayment {
            operator,
            price,
            cumulative,
            header,
        }))
    }

    /// After a routed request that `payment` paid for failed: the promise
    /// is taken back when no later one was made; where the peer refused
    /// the payment itself, what it was promised is forgotten, to be asked
    /// again before the next request.
    pub(crate) fn unpay(&self, payment: &PeerPayment, refused: bool) {
        let mut promised = self.promised();
        if refused {
            promised.remove(&payment.operator);
        } else if promised.get(&payment.operator) == Some(&payment.cumulative) {
            promised.insert(payment.operator, payment.cumulative - payment.price);
        }
    }

    fn promised(&self) -> std::sync::MutexGuard<'_, HashMap<PublicKey, u64>> {
        self.payments
            .promised
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// What this node already promised `peer`'s operator, as the peer
    /// tells (`Request::PaymentState`): its next voucher carries the price
    /// on top.
    async fn ask_floor(&self, peer: Peer) -> Result<u64, NodeError> {
        let network = self.network()?;
        let body = crate::state::ask(network, peer, Frame::new(Request::PaymentState)).await?;
        let state: PaymentState = serde_json::from_slice(&body).map_err(|e| {
            NodeError::Unavailable(format!("{peer} answered its payment state unreadably: {e}"))
        })?;
        Ok(state.next.saturating_sub(state.price))
    }

    /// Answers a peer's [`Request::PaymentState`]: what it pays here.
    pub(crate) fn answer_payment_state(&self, peer: Peer) -> Result<Vec<u8>, NodeError> {
        let key = vouch_p2p::key_of_peer(&peer).ok_or_else(|| {
            NodeError::BadRequest(format!("peer {peer} is not named by an ed25519 key"))
        })?;
        serde_json::to_vec(&self.payment_state(&key)?)
            .map_err(|e| NodeError::Internal(e.to_string()))
    }

    /// Reads back the vouchers kept in the store (a restart keeps what was
    /// not redeemed yet).
    pub(crate) fn load_vouchers(&self) -> Result<(), NodeError> {
        let mut held = self.held();
        for bytes in self.store().vouchers()? {
            let Some(v) = std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| Voucher::from_header(s).ok())
            else {
                tracing::warn!("a stored voucher does not read; it is skipped");
                continue;
            };
            // What it paid ahead is not known after a restart: spent.
            held.insert(
                v.client,
                Held {
                    spent: v.cumulative,
                    voucher: v,
                    stored: true,
                },
            );
        }
        Ok(())
    }

    /// Writes the vouchers taken since the last call to the store, then
    /// redeems on the ledger each client's newest voucher that its escrow
    /// covers. Returns how many vouchers were redeemed.
    pub async fn redeem_vouchers(&self) -> Result<usize, NodeError> {
        let chain = self.chain()?;
        let fresh: Vec<Voucher> = {
            self.held()
                .values()
                .filter(|h| !h.stored)
                .map(|h| h.voucher.clone())
                .collect()
        };
        if !fresh.is_empty() {
            let rows: Vec<(Vec<u8>, Vec<u8>)> = fresh
                .iter()
                .map(|v| (v.client.as_bytes().to_vec(), v.to_header().into_bytes()))
                .collect();
            self.store().put_vouchers(&rows)?;
            let mut held = self.held();
            for v in &fresh {
                if let Some(h) = held.get_mut(&v.client)
                    && h.voucher == *v
                {
                    h.stored = true;
                }
            }
        }
        let me = self.public_key();
        let due: Vec<Voucher> = {
            let held = self.held();
            chain.read(|l| {
                held.values()
                    .map(|h| &h.voucher)
                    .filter(|v| {
                        let redeemed = l.redeemed(&v.client, &me);
                        v.cumulative > redeemed
                            && v.cumulative - redeemed <= l.account(&v.client).escrow
                    })
                    .take(vouch_ledger::tx::MAX_VOUCHERS)
                    .cloned()
                    .collect()
            })
        };
        if due.is_empty() {
            return Ok(0);
        }
        let n = due.len();
        self.submit_own(TxBody::Redeem { vouchers: due }).await?;
        Ok(n)
    }
}

/// The node's payment task: redeems its vouchers every `every`, until the
/// node is dropped (`audit_pay::upkeep` keeps its price on the ledger).
pub(crate) async fn settle(node: Weak<Node>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        let Some(node) = node.upgrade() else { return };
        match node.redeem_vouchers().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(vouchers = n, "redeemed vouchers"),
            Err(e) => tracing::warn!(error = %e, "redeeming vouchers; retried next round"),
        }
    }
}

fn held_json(v: &Voucher) -> HeldVoucher {
    HeldVoucher {
        client: v.client,
        cumulative: v.cumulative,
        signature: hex::encode(v.signature.to_bytes()),
    }
}

/// The chain's id, and what `client` settled with `operator` and holds in
/// escrow, in one read of the ledger.
fn account_with(
    chain: &vouch_chain::Chain,
    client: &PublicKey,
    operator: &PublicKey,
) -> (String, u64, u64) {
    chain.read(|l| {
        (
            l.chain_id().to_string(),
            l.redeemed(client, operator),
            l.account(client).escrow,
        )
    })
}

/// What a client's requests spent here: counted with the voucher held
/// (redemption may settle a voucher paid ahead before it is spent, so the
/// ledger's figure can be larger), or, with none held, what the ledger
/// settled.
fn spent(held: Option<&Held>, redeemed: u64) -> u64 {
    held.map_or(redeemed, |h| h.spent)
}
