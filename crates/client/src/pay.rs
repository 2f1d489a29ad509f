//! Paying a node's inference requests by voucher (`docs/ledger.md`,
//! "Paying for requests"): the client learns the node's price and what it
//! promised the node so far from `GET /v1/payments/{client}`, trusting a
//! promised amount only where it carries the client's own signature, and
//! then signs a voucher for that amount plus the price of the next
//! request, or of the next few ([`Client::paying_ahead`]: one signature
//! for several requests, each sending the same voucher until it is spent).

use std::sync::Arc;

use vouch_api::PaymentState;
use vouch_ledger::Voucher;
use vouch_types::{PublicKey, SecretKey};

use crate::{Client, ClientError};

/// The key that pays, the most it pays per request, and what it promised
/// the node so far.
#[derive(Debug)]
pub(crate) struct Payer {
    key: SecretKey,
    max_price: Option<u64>,
    /// Requests each voucher pays for (at least 1).
    ahead: u64,
    promised: tokio::sync::Mutex<Option<Promise>>,
}

/// What the client knows of its account with one node.
#[derive(Clone, Debug)]
struct Promise {
    chain_id: String,
    operator: PublicKey,
    price: u64,
    /// What the client's requests spent so far.
    cumulative: u64,
    /// The newest voucher the client signed (as its header) and its
    /// amount, which may pay requests ahead.
    signed: Option<(String, u64)>,
}

impl Payer {
    pub(crate) fn new(key: SecretKey, max_price: Option<u64>, ahead: u64) -> Arc<Payer> {
        Arc::new(Payer {
            key,
            max_price,
            ahead: ahead.max(1),
            promised: tokio::sync::Mutex::new(None),
        })
    }
}

impl Client {
    /// The same client, paying for inference requests with vouchers signed
    /// by `key`, refusing a price above `max_price` per request.
    pub fn with_payer(mut self, key: SecretKey, max_price: Option<u64>) -> Client {
        self.payer = Some(Payer::new(key, max_price, 1));
        self
    }

    /// The same client, each voucher paying for `requests` requests ahead
    /// (the node may keep what was paid ahead if the client goes away: at
    /// most `requests - 1` prices), so that it signs one voucher, and the
    /// node checks one signature, per `requests` requests. No effect
    /// without a payer ([`Client::with_payer`]).
    pub fn paying_ahead(mut self, requests: u64) -> Client {
        if let Some(p) = &self.payer {
            self.payer = Some(Payer::new(p.key.clone(), p.max_price, requests));
        }
        self
    }

    /// `GET /v1/payments/{client}`: the node's price, the chain and
    /// operator vouchers are signed for, and what `client` promised and
    /// settled so far.
    pub async fn payment_state(&self, client: &PublicKey) -> Result<PaymentState, ClientError> {
        self.get_json(&format!("/v1/payments/{client}")).await
    }

    /// The `Vouch-Voucher` header for the next inference request and its
    /// cumulative amount, or `None` where the client pays nothing or the
    /// node charges nothing.
    pub(crate) async fn next_voucher(&self) -> Result<Option<(String, u64)>, ClientError> {
        let Some(payer) = &self.payer else {
            return Ok(None);
        };
        let mut promised = payer.promised.lock().await;
        if promised.is_none() {
            *promised = Some(self.learn(payer).await?);
        }
        let p = promised.as_mut().expect("just learned");
        if p.price == 0 {
            return Ok(None);
        }
        let overflow =
            || self.refused("the cumulative amount would overflow: use a new key".into());
        let spent = p.cumulative.checked_add(p.price).ok_or_else(overflow)?;
        let header = match &p.signed {
            // Paid ahead: the same voucher again.
            Some((header, amount)) if *amount >= spent => header.clone(),
            _ => {
                let amount = p
                    .price
                    .checked_mul(payer.ahead)
                    .and_then(|a| p.cumulative.checked_add(a))
                    .ok_or_else(overflow)?;
                let header =
                    Voucher::sign(&p.chain_id, &payer.key, &p.operator, amount).to_header();
                p.signed = Some((header.clone(), amount));
                header
            }
        };
        Ok(Some((header, spent)))
    }

    /// Records the outcome of a paid request: its requests spent
    /// `cumulative` so far, or (on any error) what the node holds is
    /// learned again next time.
    pub(crate) async fn paid(&self, cumulative: Option<u64>, ok: bool) {
        let (Some(payer), Some(cumulative)) = (&self.payer, cumulative) else {
            return;
        };
        let mut promised = payer.promised.lock().await;
        match (ok, promised.as_mut()) {
            (true, Some(p)) => p.cumulative = p.cumulative.max(cumulative),
            _ => *promised = None,
        }
    }

    /// Asks the node what the client owes it so far, checking what it says
    /// against the client's own signature and price limit.
    async fn learn(&self, payer: &Payer) -> Result<Promise, ClientError> {
        let me = payer.key.public();
        let state = self.payment_state(&me).await?;
        if let Some(max) = payer.max_price
            && state.price > max
        {
            return Err(self.refused(format!(
                "the node charges {} per request, over the limit of {max} (--max-price)",
                state.price
            )));
        }
        let mut cumulative = state.redeemed;
        let mut signed = None;
        if let Some(held) = &state.held {
            let signature = hex::decode(&held.signature)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .map(|b| vouch_types::Signature::from_bytes(&b));
            let voucher = signature.map(|signature| Voucher {
                client: held.client,
                cumulative: held.cumulative,
                signature,
            });
            let Some(voucher) =
                voucher.filter(|v| held.client == me && v.verify(&state.chain_id, &state.operator))
            else {
                return Err(self.refused(format!(
                    "the node says it holds a voucher of {} from {me} that this key did not sign: refusing to pay it",
                    held.cumulative
                )));
            };
            // What the node says was spent of it: never more than the
            // client signed; the rest is paid ahead, the same voucher again.
            let spent = state.next.saturating_sub(state.price);
            if spent > held.cumulative.max(state.redeemed) {
                return Err(self.refused(format!(
                    "the node says {spent} was spent, more than the {} this key signed: refusing to pay it",
                    held.cumulative
                )));
            }
            cumulative = spent.max(state.redeemed);
            signed = Some((voucher.to_header(), held.cumulative));
        }
        Ok(Promise {
            chain_id: state.chain_id,
            operator: state.operator,
            price: state.price,
            cumulative,
            signed,
        })
    }

    fn refused(&self, detail: String) -> ClientError {
        ClientError::Protocol {
            url: self.base.clone(),
            detail,
        }
    }
}
