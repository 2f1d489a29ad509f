//! The ledger's routes: the chain's status, accounts and operators as the
//! last applied block left them, and signed transactions for the pool;
//! and payment on the inference routes ([`charged`]).

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use vouch_network::Node;
use vouch_network::payments::VOUCHER_HEADER;
use vouch_service::error::NodeError;
use vouch_types::PublicKey;

use crate::error::{ApiError, json};

/// The ledger's routes: public reads, and transactions that carry their
/// own signatures; and one operator action (admin token, `guard`): a
/// governance transaction the node signs with its operator key.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/v1/ledger/status", get(status))
        .route("/v1/ledger/operators", get(operators))
        .route("/v1/ledger/accounts/{key}", get(account))
        .route("/v1/ledger/tx", post(submit))
        .route("/v1/ledger/operator-tx", post(operator_tx))
        .route("/v1/ledger/tx/{id}", get(tx_outcome))
        .route("/v1/ledger/blocks/{height}", get(block))
        .route("/v1/ledger/params", get(params))
        .route("/v1/ledger/proposals", get(proposals))
        .route("/v1/ledger/economics", get(economics))
        .route("/v1/ledger/draw", get(draw))
        .route("/v1/ledger/disputes", get(disputes))
        .route("/v1/payments/{client}", get(payment_state))
}

/// Takes the payment of an inference request from its `Vouch-Voucher`
/// header before the handler runs (`Node::charge`), answering a missing
/// or bad voucher with 402 in the route family's error shape `E`; gives it
/// back when the handler fails, and names the amount charged in the
/// `Vouch-Charged` response header when it succeeds.
pub(crate) async fn charged<E: From<NodeError> + IntoResponse>(
    State(node): State<Arc<Node>>,
    request: Request,
    next: Next,
) -> Response {
    let header = match request.headers().get(VOUCHER_HEADER).map(|v| v.to_str()) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => {
            return E::from(NodeError::PaymentRequired(
                "the Vouch-Voucher header is not ASCII text".into(),
            ))
            .into_response();
        }
    };
    let charge = match node.charge(header) {
        Ok(charge) => charge,
        Err(e) => return E::from(e).into_response(),
    };
    let mut response = next.run(request).await;
    if let Some(charge) = charge {
        if response.status().is_success() {
            response
                .headers_mut()
                .insert("vouch-charged", HeaderValue::from(charge.price));
        } else {
            node.refund(charge);
        }
    }
    response
}

fn parse_key(key: &str) -> Result<PublicKey, NodeError> {
    key.parse().map_err(|_| {
        NodeError::InvalidInput(format!(
            "`{key}` is not a public key: write it as ed25519:<64 hex digits>"
        ))
    })
}

async fn payment_state(
    State(node): State<Arc<Node>>,
    Path(client): Path<String>,
) -> Result<Response, ApiError> {
    let state = node.payment_state(&parse_key(&client)?)?;
    Ok(json(StatusCode::OK, &state))
}

fn hex32(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

async fn status(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    let chain = node.chain()?;
    let body = chain.read(|l| {
        json!({
            "chain_id": l.chain_id(),
            "height": l.height(),
            "time_ms": l.time_ms(),
            "state_root": hex32(&l.state_root()),
            "epoch": l.epoch(),
            "epoch_end": l.epoch_end(),
            "validators": l.validator_power().iter()
                .map(|(key, power)| json!({"operator": key, "power": power}))
                .collect::<Vec<_>>(),
            "supply": l.supply(),
            "burned": l.burned(),
            "beacon": hex32(&l.beacon()),
        })
    });
    Ok(json(StatusCode::OK, &body))
}

/// Convictions not yet final, with their appeals, and the last settled.
async fn disputes(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    let party = |p: vouch_types::dispute::Party| match p {
        vouch_types::dispute::Party::Executor => "executor",
        vouch_types::dispute::Party::Auditor => "auditor",
    };
    let body = node.chain()?.read(|l| {
        let pending: Vec<serde_json::Value> = l
            .pending_convictions()
            .iter()
            .map(|(receipt, c)| {
                json!({
                    "receipt": receipt,
                    "executor": c.executor,
                    "auditor": c.auditor,
                    "referee": c.referee,
                    "faulty": party(c.faulty),
                    "held": c.taken,
                    "bounty": c.bounty,
                    "convicted_at": c.at,
                    "appeal_until": c.at + l.params().appeal_window,
                    "appeal": c.appeal.as_ref().map(|a| json!({
                        "filed": a.filed,
                        "panel": a.panel,
                        "votes": a.votes.iter()
                            .map(|(k, v)| json!({"operator": k, "faulty": party(*v)}))
                            .collect::<Vec<_>>(),
                        "decide_by": (a.panel.is_some()).then_some(a.ends),
                    })),
                })
            })
            .collect();
        let settled: Vec<serde_json::Value> = l
            .rulings()
            .iter()
            .map(|(receipt, r)| json!({"receipt": receipt, "ruling": r.name()}))
            .collect();
        json!({"pending": pending, "settled": settled})
    });
    Ok(json(StatusCode::OK, &body))
}

/// `GET /v1/ledger/draw?executor=KEY&timestamp_ms=T`'s query.
#[derive(Deserialize)]
struct DrawQuery {
    executor: String,
    timestamp_ms: u64,
}

/// The pool the audit and referee draws of a receipt that `executor`
/// signed at `timestamp_ms` run over (`Ledger::draw_pool`): the staked
/// operators' keys with their stake, and the receipt's beacon; so that
/// anyone can check a dispute's referee offline (`vouch verify-dispute
/// --ledger`).
async fn draw(
    State(node): State<Arc<Node>>,
    axum::extract::Query(q): axum::extract::Query<DrawQuery>,
) -> Result<Response, ApiError> {
    let executor = parse_key(&q.executor)?;
    let pool = node
        .chain()?
        .read(|l| l.draw_pool(&executor, q.timestamp_ms))
        .map_err(|e| match e {
            vouch_ledger::BeaconError::NotYet { .. } => NodeError::Unavailable(e.to_string()),
            _ => NodeError::NotFound(e.to_string()),
        })?;
    Ok(json(
        StatusCode::OK,
        &json!({
            "beacon": pool.beacon.as_ref().map(hex32),
            "weights": pool.weights.iter()
                .map(|(key, weight)| json!({"key": key, "weight": weight}))
                .collect::<Vec<_>>(),
        }),
    ))
}

async fn operators(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    let chain = node.chain()?;
    let body = chain.read(|l| {
        let served = l.requests_paid();
        l.operators()
            .iter()
            .map(|(account, op)| {
                json!({
                    "operator": op.key(),
                    "account": account,
                    "keys": op.keys.iter().map(|(from, key)| json!({"from_height": from, "key": key})).collect::<Vec<_>>(),
                    "stake": op.stake,
                    "unbonding": op.unbonding.iter().map(|(at, amount)| json!({"at": at, "amount": amount})).collect::<Vec<_>>(),
                    "slashed": op.slashed,
                    "price": op.offer.price,
                    "contact": op.offer.contact,
                    "addresses": op.offer.addresses,
                    "models": op.offer.models.iter().map(|m| vouch_types::Digest::from_bytes(vouch_types::Kind::Model, *m)).collect::<Vec<_>>(),
                    "audits": {
                        "performed": op.audits.performed,
                        "passed": op.audits.passed,
                        "earned": op.audits.earned,
                    },
                    "audit_credit": l.audit_credit(account),
                    "requests_paid": served.get(account).copied().unwrap_or(0),
                })
            })
            .collect::<Vec<_>>()
    });
    Ok(json(StatusCode::OK, &body))
}

async fn account(
    State(node): State<Arc<Node>>,
    Path(key): Path<String>,
) -> Result<Response, ApiError> {
    let key = parse_key(&key)?;
    let chain = node.chain()?;
    let a = chain.read(|l| l.account(&key));
    Ok(json(
        StatusCode::OK,
        &json!({"key": key, "balance": a.balance, "escrow": a.escrow, "nonce": a.nonce}),
    ))
}

async fn params(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    let body = node.chain()?.read(|l| {
        let p = l.params();
        vouch_ledger::Params::NAMES
            .iter()
            .zip(p.values())
            .map(|(name, value)| (name.to_string(), json!(value)))
            .collect::<serde_json::Map<_, _>>()
    });
    Ok(json(StatusCode::OK, &body))
}

/// The share of the largest 1, 3 and 10 of `amounts` in their total.
fn top_shares(amounts: &[u64]) -> serde_json::Value {
    let mut sorted = amounts.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let total: u64 = sorted.iter().sum();
    let share = |n: usize| {
        if total == 0 {
            0.0
        } else {
            sorted.iter().take(n).sum::<u64>() as f64 / total as f64
        }
    };
    json!({"top1": share(1), "top3": share(3), "top10": share(10)})
}

async fn economics(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    let body = node.chain()?.read(|l| {
        let p = l.params();
        let mut ops: Vec<_> = l.operators().iter().collect();
        ops.sort_by(|a, b| b.1.earned.cmp(&a.1.earned).then(a.0.cmp(b.0)));
        let earned: Vec<u64> = ops.iter().map(|(_, o)| o.earned).collect();
        let stake: Vec<u64> = ops.iter().map(|(_, o)| o.stake).collect();
        let power: Vec<u64> = l.validator_power().into_iter().map(|(_, p)| p).collect();
        let served: Vec<u64> = l.requests_paid().into_values().collect();
        let mut body = json!({
            "height": l.height(),
            "fees": l.fees(),
            "fee_split": {
                "operator_bp": 10_000 - p.fee_auditors_bp - p.fee_treasury_bp,
                "auditors_bp": p.fee_auditors_bp,
                "treasury_bp": p.fee_treasury_bp,
            },
            "treasury": l.treasury(),
            "auditors_pool": l.auditors_pool(),
            "burned": l.burned(),
            "supply": l.supply(),
            "operators": ops.iter().map(|(account, o)| json!({
                "operator": o.key(), "account": account, "earned": o.earned,
                "stake": o.stake, "slashed": o.slashed, "audit_earned": o.audits.earned,
            })).collect::<Vec<_>>(),
            "epochs": l.epoch_records().iter().chain([l.this_epoch()]).map(epoch_economics).collect::<Vec<_>>(),
        });
        concentration(&mut body, &earned, &stake, &power, &served);
        body
    });
    Ok(json(StatusCode::OK, &body))
}

/// One epoch's figures: the fees settled and who kept them, the stake
/// slashed, and (for a finished epoch) the concentration of stake and of
/// the next epoch's validator power.
fn epoch_economics(r: &vouch_ledger::EpochRecord) -> serde_json::Value {
    let earned: Vec<u64> = r.earned.values().copied().collect();
    let served: Vec<u64> = r.served.values().copied().collect();
    let by_account = |m: &std::collections::BTreeMap<vouch_types::PublicKey, u64>| {
        m.iter()
            .map(|(k, a)| json!({"account": k, "amount": a}))
            .collect::<Vec<_>>()
    };
    let mut body = json!({
        "epoch": r.epoch,
        "first_height": r.first,
        "last_height": r.last,
        "fees": r.fees,
        "slashed": r.slashed,
        "earned": by_account(&r.earned),
        "served": by_account(&r.served),
        "audit_pay": by_account(&r.audit_pay),
    });
    concentration(&mut body, &earned, &r.stake, &r.power, &served);
    body
}

/// Adds to `body` how concentrated fees (`earned`), `stake`, validator
/// `power` and requests paid (`served`) are: the top-1/3/10 shares and the
/// Nakamoto coefficients.
fn concentration(
    body: &mut serde_json::Value,
    earned: &[u64],
    stake: &[u64],
    power: &[u64],
    served: &[u64],
) {
    use vouch_types::concentration::nakamoto_coefficient;
    body["fees_share"] = top_shares(earned);
    body["stake_share"] = top_shares(stake);
    body["nakamoto_coefficient"] = json!({
        "fees": nakamoto_coefficient(earned),
        "stake": nakamoto_coefficient(stake),
        "validator_power": nakamoto_coefficient(power),
        "served_requests": nakamoto_coefficient(served),
    });
}

async fn proposals(State(node): State<Arc<Node>>) -> Result<Response, ApiError> {
    use vouch_ledger::Status;
    let body = node.chain()?.read(|l| {
        l.proposals()
            .iter()
            .map(|p| {
                let (status, at) = match p.status {
                    Status::Voting => ("voting", None),
                    Status::Passed { activates } => ("passed", Some(activates)),
                    Status::Rejected => ("rejected", None),
                    Status::Activated { at } => ("activated", Some(at)),
                    Status::Failed { at } => ("failed", Some(at)),
                };
                json!({
                    "id": p.id,
                    "proposer": p.proposer,
                    "changes": p.changes.iter().map(|(n, v)| json!({"name": n, "value": v})).collect::<Vec<_>>(),
                    "spends": p.spends.iter().map(|(to, a)| json!({"to": to, "amount": a})).collect::<Vec<_>>(),
                    "releases": p.releases.iter().map(|(v, d, allowed)| json!({"version": v, "digest": hex32(d), "allowed": allowed})).collect::<Vec<_>>(),
                    "proposed": p.proposed,
                    "voting_ends": p.voting_ends,
                    "votes": p.votes.iter().map(|(k, yes)| json!({"operator": k, "yes": yes})).collect::<Vec<_>>(),
                    "tally": p.tally.map(|(yes, no, total)| json!({"yes": yes, "no": no, "total_stake": total})),
                    "status": status,
                    "activates": if status == "passed" { at } else { None },
                    "activated": if status == "activated" || status == "failed" { at } else { None },
                })
            })
            .collect::<Vec<_>>()
    });
    Ok(json(StatusCode::OK, &body))
}

async fn block(
    State(node): State<Arc<Node>>,
    Path(height): Path<String>,
) -> Result<Response, ApiError> {
    let height: u64 = height.parse().map_err(|_| {
        NodeError::InvalidInput(format!("`{height}` is not a block height (1, 2, ...)"))
    })?;
    let chain = node.chain()?;
    let Some((block, committed)) = chain.block(height) else {
        let tip = chain.read(|l| l.height());
        return Err(NodeError::NotFound(format!(
            "no block {height}: the chain is at height {tip}"
        ))
        .into());
    };
    let txs: Vec<serde_json::Value> = block
        .txs
        .iter()
        .enumerate()
        .map(|(i, bytes)| {
            let id = vouch_ledger::tx::tx_id(bytes);
            let outcome = committed.as_ref().and_then(|c| c.outcomes.get(i));
            let mut tx = match vouch_ledger::Tx::decode(bytes) {
                Ok(tx) => json!({"signer": tx.signer, "nonce": tx.nonce, "kind": tx.body.kind()}),
                Err(e) => json!({"undecodable": e.to_string()}),
            };
            tx["id"] = hex32(&id.0).into();
            tx["ok"] = outcome.map(|o| o.is_ok()).into();
            tx["error"] = outcome
                .and_then(|o| o.as_ref().err())
                .map(|e| e.to_string())
                .into();
            tx
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        &json!({
            "height": block.height,
            "digest": hex32(&block.digest().0),
            "parent": hex32(&block.parent.0),
            "time_ms": block.time_ms,
            "state_root": committed.as_ref().map(|c| hex32(&c.state_root)),
            "txs": txs,
        }),
    ))
}

async fn tx_outcome(
    State(node): State<Arc<Node>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(id.trim(), &mut bytes).map_err(|_| {
        NodeError::InvalidInput(format!(
            "`{id}` is not a transaction id: 64 hex digits, as POST /v1/ledger/tx answers"
        ))
    })?;
    let Some((height, outcome)) = node.chain()?.outcome(&vouch_ledger::TxId(bytes)) else {
        return Err(NodeError::NotFound(format!(
            "transaction {id} is not in a block yet (or is older than the blocks this node keeps in memory)"
        ))
        .into());
    };
    Ok(json(
        StatusCode::OK,
        &json!({"id": id, "height": height, "ok": outcome.is_ok(), "error": outcome.err()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Submit {
    /// The signed transaction's bytes, in hex.
    tx: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OperatorTx {
    /// A transaction body's bytes (`TxBody::encode`), in hex.
    body: String,
}

/// An operator votes or proposes through its own node: the node signs the
/// governance transaction with its operator key, submits it and waits for
/// its block. Other kinds are refused: the key's holder signs those
/// itself.
async fn operator_tx(
    State(node): State<Arc<Node>>,
    Json(req): Json<OperatorTx>,
) -> Result<Response, ApiError> {
    let bytes = hex::decode(req.body.trim()).map_err(|e| {
        NodeError::InvalidInput(format!(
            "`body` must be a transaction body's bytes in hex (docs/ledger.md): {e}"
        ))
    })?;
    let body = vouch_ledger::TxBody::decode(&bytes)
        .map_err(|e| NodeError::InvalidInput(format!("`body`: {e}")))?;
    if !matches!(
        body,
        vouch_ledger::TxBody::Propose { .. } | vouch_ledger::TxBody::Vote { .. }
    ) {
        return Err(NodeError::InvalidInput(format!(
            "a node signs only governance transactions (propose, vote) with its operator key, not `{}`: sign it with the key itself (`--key`)",
            body.kind()
        ))
        .into());
    }
    let (id, height) = node.submit_own(body).await?;
    Ok(json(
        StatusCode::OK,
        &json!({"id": hex32(&id.0), "height": height, "signer": node.public_key()}),
    ))
}

async fn submit(
    State(node): State<Arc<Node>>,
    Json(body): Json<Submit>,
) -> Result<Response, ApiError> {
    let bytes = hex::decode(body.tx.trim()).map_err(|e| {
        NodeError::InvalidInput(format!("`tx` must be the transaction's bytes in hex: {e}"))
    })?;
    let id = node.chain()?.submit(bytes).map_err(|e| match e {
        vouch_chain::SubmitError::Full => NodeError::Unavailable(e.to_string()),
        e => NodeError::InvalidInput(e.to_string()),
    })?;
    Ok(json(StatusCode::ACCEPTED, &json!({"id": hex32(&id.0)})))
}
