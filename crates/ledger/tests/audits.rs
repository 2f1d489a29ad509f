//! Paying audits, as the other side would try it: reports before the
//! executor was paid, twice, by auditors not drawn or not declaring the
//! model, under another account's signature, for receipts with a made-up
//! price, and after the dispute window.

mod common;

use common::{key, pk};
use vouch_ledger::{Genesis, Ledger, Offer, Params, TxBody, TxOutcome, Voucher};
use vouch_types::audit::AuditReport;
use vouch_types::dispute::{AUDITOR_DRAW, auditor_draw};
use vouch_types::receipt::{Determinism, EngineInfo, ReceiptBody, TraceCommitment};
use vouch_types::{Digest, Kind, Receipt};

const CHAIN: &str = "audit-chain";

fn model() -> Digest {
    Digest::of(Kind::Model, b"served")
}

/// Operators 1..=6 staked (1..=5 declare the model, 6 does not), the
/// executor 1 charging 10 a request; client 9 with escrow.
fn ledger() -> Ledger {
    let offer = |declares: bool| Offer {
        price: 10,
        models: if declares {
            vec![*model().as_bytes()]
        } else {
            vec![]
        },
        ..Offer::default()
    };
    let mut l = Ledger::genesis(&Genesis {
        chain_id: CHAIN.into(),
        params: Params {
            fee_auditors_bp: 1_000,
            fee_treasury_bp: 500,
            dispute_window: 40,
            // An audit is paid the request's whole price here, so that one
            // audit takes all of a request's credit.
            audit_pay_bp: 10_000,
            ..Params::default()
        },
        accounts: (1..=9).map(|b| (pk(b), 10_000)).collect(),
        operators: (1..=6u8)
            .map(|b| (pk(b), 1_000 * u64::from(b), offer(b <= 5)))
            .collect(),
    });
    let out = block(&mut l, vec![(9, TxBody::Deposit { amount: 5_000 })]);
    assert!(out[0].is_ok(), "{out:?}");
    l
}

/// The next block, one second after the last, with `txs` signed by their
/// signers' next nonces.
fn block(l: &mut Ledger, txs: Vec<(u8, TxBody)>) -> Vec<TxOutcome> {
    common::block_every(CHAIN, l, txs, 1_000)
}

/// A receipt executor 1 signs at `timestamp_ms` for `price`.
fn receipt(n: u8, timestamp_ms: u64, price: u64) -> Receipt {
    ReceiptBody {
        version: 1,
        model: model(),
        request: Digest::of(Kind::Input, &[n]),
        output: Digest::of(Kind::Output, &[n]),
        trace: TraceCommitment {
            root: Digest::of(Kind::TraceNode, &[n]),
            len: 4,
        },
        engine: EngineInfo {
            name: "tract-onnx".into(),
            version: "0.23.9".into(),
        },
        determinism: Determinism::Exact,
        seed: None,
        node: pk(1),
        nonce: String::new(),
        timestamp_ms,
        price,
    }
    .sign(&key(1))
}

/// Auditor `b`'s report on `r`, as a transaction body.
fn report(b: u8, r: &Receipt) -> TxBody {
    let report = AuditReport::sign(&key(b), r.clone(), r.body.output, r.body.timestamp_ms + 9);
    TxBody::Audited {
        report: serde_json::to_vec(&report).unwrap(),
    }
}

/// The operators' bytes in the order the ledger draws auditors for `r`.
fn drawn(l: &Ledger, r: &Receipt) -> Vec<u8> {
    let pool = l
        .audit_pool(&r.body.node, &r.body.model, r.body.timestamp_ms)
        .unwrap();
    auditor_draw(&r.id, &r.body.node, &pool)
        .iter()
        .map(|k| (1..=9u8).find(|b| pk(*b) == *k).unwrap())
        .collect()
}

fn err(o: &TxOutcome) -> String {
    common::err(o)
}

fn redeem(l: &mut Ledger, cumulative: u64) {
    let v = Voucher::sign(CHAIN, &key(9), &pk(1), cumulative);
    let out = block(l, vec![(1, TxBody::Redeem { vouchers: vec![v] })]);
    assert!(out[0].is_ok(), "{out:?}");
}

#[test]
fn the_pool_pays_drawn_auditors_once_within_what_the_executor_was_paid() {
    let mut l = ledger();
    let supply = l.supply() + l.burned();
    let r = receipt(1, 1_500, 10);
    // Before its beacon block, nobody knows who is drawn.
    let out = block(&mut l, vec![(2, report(2, &r))]);
    assert!(
        err(&out[0]).contains("not on the ledger yet"),
        "{}",
        err(&out[0])
    );
    while l.beacon_after(r.body.timestamp_ms).is_err() {
        block(&mut l, vec![]);
    }
    let order = drawn(&l, &r);
    assert_eq!(
        order.len(),
        4,
        "operators 2..=5 declare the model: {order:?}"
    );
    assert!(!order.contains(&6) && !order.contains(&1));
    let (first, second, outside) = (order[0], order[1], order[AUDITOR_DRAW]);

    // Nothing was paid to the executor yet: no credit.
    let out = block(&mut l, vec![(first, report(first, &r))]);
    assert!(err(&out[0]).contains("no audit credit"), "{}", err(&out[0]));

    // Ten requests paid: 100, of which 10 to the pool, credited to 1.
    redeem(&mut l, 100);
    assert_eq!(l.audit_credit(&pk(1)), 10);
    assert_eq!(l.auditors_pool(), 10);
    assert_eq!(l.this_epoch().served.get(&pk(1)), Some(&10));
    assert_eq!(l.requests_paid().get(&pk(1)), Some(&10));

    let balance = l.account(&pk(first)).balance;
    let out = block(
        &mut l,
        vec![
            (first, report(first, &r)),
            // Twice: paid once.
            (first, report(first, &r)),
            // An operator past the first three drawn.
            (outside, report(outside, &r)),
            // One that does not declare the model, and a stranger.
            (6, report(6, &r)),
            (8, report(8, &r)),
            // Another's report under this signer's transaction.
            (outside, report(first, &r)),
            // The executor auditing itself.
            (1, report(1, &r)),
        ],
    );
    assert!(out[0].is_ok(), "{out:?}");
    for (o, why) in out[1..].iter().zip([
        "was paid already",
        "is not among the first 3",
        "is not among the first 3",
        "is not a registered operator",
        "not a key of the transaction's signer",
        "is the executor",
    ]) {
        assert!(err(o).contains(why), "{} should say {why}", err(o));
    }
    // The price (audit_pay_bp 10,000), out of the executor's credit.
    assert_eq!(l.account(&pk(first)).balance, balance + 10);
    assert_eq!((l.audit_credit(&pk(1)), l.auditors_pool()), (0, 0));
    assert!(l.audit_paid(r.body.timestamp_ms, &r.id, &pk(first)));
    let op = |b: u8| l.operators()[&pk(b)].audits;
    assert_eq!((op(first).performed, op(first).earned), (1, 10));
    assert_eq!(op(1).passed, 1);
    assert_eq!(l.this_epoch().audit_pay.get(&pk(first)), Some(&10));

    // The second drawn auditor waits for more credit.
    let out = block(&mut l, vec![(second, report(second, &r))]);
    assert!(err(&out[0]).contains("no audit credit"), "{}", err(&out[0]));
    redeem(&mut l, 200);
    let out = block(&mut l, vec![(second, report(second, &r))]);
    assert!(out[0].is_ok(), "{out:?}");

    // A receipt with a made-up price is paid no more than the credit.
    let forged = receipt(2, 2_500, 1_000_000);
    while l.beacon_after(forged.body.timestamp_ms).is_err() {
        block(&mut l, vec![]);
    }
    redeem(&mut l, 300);
    let a = drawn(&l, &forged)[0];
    let balance = l.account(&pk(a)).balance;
    let out = block(&mut l, vec![(a, report(a, &forged))]);
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(l.account(&pk(a)).balance, balance + 10);

    // A free request's audit is not paid.
    let free = receipt(3, 3_500, 0);
    while l.beacon_after(free.body.timestamp_ms).is_err() {
        block(&mut l, vec![]);
    }
    let a = drawn(&l, &free)[0];
    let out = block(&mut l, vec![(a, report(a, &free))]);
    assert!(err(&out[0]).contains("price is 0"), "{}", err(&out[0]));

    // Past the dispute window (40 blocks here), refused, and the record
    // of what was paid is forgotten.
    let third = order[2];
    redeem(&mut l, 400);
    while l.height() < 60 {
        block(&mut l, vec![]);
    }
    let out = block(&mut l, vec![(third, report(third, &r))]);
    assert!(err(&out[0]).contains("dispute window"), "{}", err(&out[0]));
    assert!(!l.audit_paid(r.body.timestamp_ms, &r.id, &pk(first)));

    assert_eq!(l.supply() + l.burned(), supply, "nothing minted or lost");
}

#[test]
fn an_offer_declares_each_model_once_in_ascending_order() {
    for models in [vec![[2; 32], [1; 32]], vec![[1; 32], [1; 32]]] {
        let body = TxBody::SetOffer(Offer {
            models,
            ..Offer::default()
        });
        let e = TxBody::decode(&body.encode()).unwrap_err().to_string();
        assert!(e.contains("ascending"), "{e}");
    }
}
