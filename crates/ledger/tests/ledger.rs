//! The ledger's transitions, as the other side would try them: bad
//! transactions, replays, overdrafts, stale vouchers, forged and repeated
//! disputes, stake that tries to leave before a conviction.

mod common;

use common::{key, pk};
use vouch_ledger::{
    Block, Genesis, Ledger, Offer, Params, Tx, TxBody, TxError, TxOutcome, Voucher,
};
use vouch_types::dispute::{LlmDispute, TokenVerdict};
use vouch_types::{Digest, Kind, PublicKey};

const CHAIN: &str = "test-chain";

/// Accounts 1..=9 with 10,000 each; operators `staked` with 5,000 of
/// stake each.
fn ledger(staked: &[u8]) -> Ledger {
    Ledger::genesis(&Genesis {
        chain_id: CHAIN.into(),
        params: Params {
            min_stake: 1_000,
            unbonding_delay: 5,
            escrow_delay: 3,
            slash_bp: 2_000,
            reward_bp: 5_000,
            // Payments reach the operator whole here; the split is tested
            // in `governance.rs` and by the model.
            fee_auditors_bp: 0,
            fee_treasury_bp: 0,
            ..Params::default()
        },
        accounts: (1..=9).map(|b| (pk(b), 10_000)).collect(),
        operators: staked
            .iter()
            .map(|b| (pk(*b), 5_000, Offer::default()))
            .collect(),
    })
}

/// Applies one block of the transactions `txs` makes (from the ledger as
/// it stands before the block).
fn block(l: &mut Ledger, txs: impl FnOnce(&Ledger) -> Vec<Vec<u8>>) -> Vec<TxOutcome> {
    let txs = txs(l);
    let height = l.height() + 1;
    l.apply_block(&Block {
        height,
        time_ms: height * 1_000,
        txs,
    })
    .unwrap()
}

/// `signer`'s next transaction.
fn tx(l: &Ledger, signer: u8, body: TxBody) -> Vec<u8> {
    Tx::sign(CHAIN, &key(signer), l.account(&pk(signer)).nonce, body).encode()
}

fn err(o: &TxOutcome) -> String {
    o.as_ref().unwrap_err().to_string()
}

#[test]
fn a_bad_nonce_is_told_from_its_outcome_text() {
    let bad = TxError::BadNonce {
        expected: 3,
        got: 2,
    };
    assert!(TxError::is_bad_nonce(&bad.to_string()));
    assert!(!TxError::is_bad_nonce(&TxError::Overflow.to_string()));
}

#[test]
fn bad_transactions_are_refused_saying_why_and_the_block_goes_on() {
    let mut l = ledger(&[]);
    let good = tx(
        &l,
        1,
        TxBody::Transfer {
            to: pk(2),
            amount: 100,
        },
    );
    let mut forged = good.clone();
    let n = forged.len();
    forged[n - 1] ^= 1;
    let other_chain = Tx::sign("another", &key(1), 0, TxBody::Deposit { amount: 1 }).encode();
    let mut oversized = good.clone();
    oversized.resize(vouch_ledger::tx::MAX_TX_BYTES + 1, 0);
    let overdraft = Tx::sign(
        CHAIN,
        &key(3),
        0,
        TxBody::Transfer {
            to: pk(2),
            amount: 10_001,
        },
    )
    .encode();
    let out = block(&mut l, |_| {
        vec![
            b"not a transaction".to_vec(),
            forged,
            other_chain,
            oversized,
            good.clone(),
            good.clone(),
            overdraft,
        ]
    });
    assert!(
        err(&out[0]).starts_with("malformed transaction"),
        "{}",
        err(&out[0])
    );
    assert!(
        err(&out[1]).contains("signature does not verify"),
        "{}",
        err(&out[1])
    );
    assert!(
        err(&out[2]).contains("for chain `another`"),
        "{}",
        err(&out[2])
    );
    assert!(err(&out[3]).contains("over the limit"), "{}", err(&out[3]));
    assert!(out[4].is_ok());
    assert!(
        matches!(
            out[5],
            Err(TxError::BadNonce {
                expected: 1,
                got: 0
            })
        ),
        "a replay: {:?}",
        out[5]
    );
    assert!(err(&out[6]).contains("insufficient balance: 10001 needed, 10000 available"));
    assert_eq!(l.account(&pk(1)).balance, 9_900);
    assert_eq!(l.account(&pk(2)).balance, 10_100);
    // The overdraft used its nonce: it cannot go through later.
    assert_eq!(l.account(&pk(3)).nonce, 1);
    assert_eq!(l.account(&pk(3)).balance, 10_000);
    // Blocks apply in order.
    let e = l
        .apply_block(&Block {
            height: 5,
            time_ms: 0,
            txs: vec![],
        })
        .unwrap_err();
    assert!(e.to_string().contains("expected block 2"), "{e}");
}

#[test]
fn vouchers_pay_what_is_new_and_never_more_than_the_escrow() {
    let mut l = ledger(&[1]);
    let out = block(&mut l, |l| vec![tx(l, 5, TxBody::Deposit { amount: 300 })]);
    assert!(out[0].is_ok());
    let v = |n| Voucher::sign(CHAIN, &key(5), &pk(1), n);
    // Two vouchers of one client in one transaction: the newer counts.
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            1,
            TxBody::Redeem {
                vouchers: vec![v(40), v(100)],
            },
        )]
    });
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(l.account(&pk(1)).balance, 10_100);
    assert_eq!(l.account(&pk(5)).escrow, 200);
    assert_eq!(l.redeemed(&pk(5), &pk(1)), 100);
    // An old voucher again, one for another operator, one beyond the
    // escrow: each refused, nothing paid.
    for (bad, why) in [
        (v(100), "100 is settled already"),
        (
            Voucher::sign(CHAIN, &key(5), &pk(2), 150),
            "does not verify",
        ),
        (v(301), "its escrow holds 200, 201 is due"),
    ] {
        let out = block(&mut l, |l| {
            vec![tx(
                l,
                1,
                TxBody::Redeem {
                    vouchers: vec![bad],
                },
            )]
        });
        assert!(err(&out[0]).contains(why), "{}", err(&out[0]));
    }
    assert_eq!(l.account(&pk(1)).balance, 10_100);
    // A client that withdraws gets its escrow back only after the delay,
    // while the operator can still redeem what it holds.
    let out = block(&mut l, |l| {
        vec![
            tx(l, 5, TxBody::Withdraw { amount: 150 }),
            tx(
                l,
                1,
                TxBody::Redeem {
                    vouchers: vec![v(150)],
                },
            ),
        ]
    });
    assert!(out[0].is_ok() && out[1].is_ok(), "{out:?}");
    assert_eq!(l.account(&pk(5)).escrow, 0);
    assert_eq!(l.account(&pk(5)).balance, 9_700);
    for _ in 0..2 {
        block(&mut l, |_| vec![]);
        assert_eq!(l.account(&pk(5)).balance, 9_700);
    }
    block(&mut l, |_| vec![]);
    assert_eq!(l.account(&pk(5)).balance, 9_850);
    // A non-operator cannot redeem.
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            6,
            TxBody::Redeem {
                vouchers: vec![Voucher::sign(CHAIN, &key(5), &pk(6), 1)],
            },
        )]
    });
    assert!(err(&out[0]).contains("not a registered operator"));
}

#[test]
fn stake_returns_after_the_unbonding_delay_and_validators_follow_stake() {
    let mut l = ledger(&[]);
    let out = block(&mut l, |l| {
        vec![
            tx(l, 1, TxBody::Bond { amount: 10 }),
            Tx::sign(CHAIN, &key(2), 0, TxBody::Register(Offer::default())).encode(),
            Tx::sign(CHAIN, &key(2), 1, TxBody::Bond { amount: 3_000 }).encode(),
            Tx::sign(CHAIN, &key(3), 0, TxBody::Register(Offer::default())).encode(),
            Tx::sign(CHAIN, &key(3), 1, TxBody::Bond { amount: 2_000 }).encode(),
            Tx::sign(CHAIN, &key(4), 0, TxBody::Register(Offer::default())).encode(),
            Tx::sign(CHAIN, &key(4), 1, TxBody::Bond { amount: 500 }).encode(),
        ]
    });
    assert!(err(&out[0]).contains("send Register first"));
    assert!(out[1..].iter().all(Result::is_ok), "{out:?}");
    // Below the minimum stake, 4 is no validator.
    assert_eq!(l.validators(), vec![(pk(2), 3_000), (pk(3), 2_000)]);
    let out = block(&mut l, |l| vec![tx(l, 2, TxBody::Unbond { amount: 2_500 })]);
    assert!(out[0].is_ok());
    assert_eq!(l.validators(), vec![(pk(3), 2_000)]);
    assert_eq!(l.operators()[&pk(2)].at_risk(), 3_000);
    let out = block(&mut l, |l| vec![tx(l, 2, TxBody::Unbond { amount: 501 })]);
    assert!(err(&out[0]).contains("insufficient stake: 501 needed, 500 available"));
    while l.height() < 6 {
        block(&mut l, |_| vec![]);
        assert_eq!(l.account(&pk(2)).balance, 7_000);
    }
    block(&mut l, |_| vec![]);
    assert_eq!(l.account(&pk(2)).balance, 9_500);
    assert_eq!(l.operators()[&pk(2)].at_risk(), 500);
}

/// [`common::llm_dispute`] by the keys' bytes.
fn llm_dispute(e: u8, a: u8, r: u8, seed: u64) -> LlmDispute {
    common::llm_dispute(&key(e), &key(a), &key(r), seed)
}

fn record(d: &LlmDispute) -> Vec<u8> {
    serde_json::to_vec(d).unwrap()
}

/// Applies empty blocks until the beacon of a receipt stamped at 1 ms (the
/// disputes here) is on the ledger.
fn past_the_beacon(l: &mut Ledger) {
    while l.beacon_after(1).is_err() {
        block(l, |_| vec![]);
    }
}

#[test]
fn a_dispute_slashes_the_executor_once_rewards_the_auditor_and_burns_the_rest() {
    let mut l = ledger(&[1, 2, 3]);
    past_the_beacon(&mut l);
    let supply = l.supply();
    // The executor tries to take its stake out first: unbonding stake is
    // still at risk.
    let out = block(&mut l, |l| vec![tx(l, 1, TxBody::Unbond { amount: 4_000 })]);
    assert!(out[0].is_ok());
    let d = llm_dispute(1, 2, 3, 7);
    let out = block(&mut l, |l| {
        vec![tx(l, 9, TxBody::Dispute { record: record(&d) })]
    });
    assert!(out[0].is_ok(), "{out:?}");
    // 20% of 5,000 at risk: 1,000 taken (from the 1,000 bonded) at once,
    // and held while the conviction may be appealed.
    let e = &l.operators()[&pk(1)];
    assert_eq!((e.stake, e.at_risk(), e.slashed), (0, 4_000, 1_000));
    assert_eq!(l.account(&pk(2)).balance, 10_000);
    assert_eq!(l.burned(), 0);
    assert_eq!(l.supply() + l.burned(), supply);
    assert!(l.disputed(&d.executor.id));
    assert_eq!(l.pending_convictions()[&d.executor.id].taken, 1_000);

    // The same receipt again, from anyone, in any wording: refused.
    let mut again = d.clone();
    again.auditor = TokenVerdict::sign(&key(2), &d.executor.id, Some(1), "reworded".into());
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            8,
            TxBody::Dispute {
                record: record(&again),
            },
        )]
    });
    assert!(
        err(&out[0]).contains("convicted on already"),
        "{}",
        err(&out[0])
    );
    assert_eq!(l.operators()[&pk(1)].slashed, 1_000);
    // A second conviction reaches the unbonding stake.
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            9,
            TxBody::Dispute {
                record: record(&llm_dispute(1, 2, 3, 8)),
            },
        )]
    });
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(l.operators()[&pk(1)].at_risk(), 3_200);
    // Unappealed for the window: final, half of each to the auditor, half
    // burned.
    let window = l.params().appeal_window;
    let at = l.height();
    while l.height() <= at + window {
        block(&mut l, |_| vec![]);
    }
    assert_eq!(l.rulings().len(), 2);
    assert_eq!(
        l.rulings()[0],
        (d.executor.id, vouch_ledger::appeal::Ruling::Final)
    );
    assert!(l.pending_convictions().is_empty());
    assert_eq!(l.account(&pk(2)).balance, 10_000 + 500 + 400);
    assert_eq!(l.burned(), 900);
    assert_eq!(l.supply() + l.burned(), supply);
}

#[test]
fn disputes_between_parties_with_nothing_at_stake_convict_nobody() {
    let mut l = ledger(&[1, 2, 3]);
    past_the_beacon(&mut l);
    // Fresh keys as auditor and referee (registered, but unstaked; then
    // not registered at all); the executor as its own referee; a tampered
    // record.
    let out = block(&mut l, |l| {
        vec![
            tx(l, 6, TxBody::Register(Offer::default())),
            tx(l, 7, TxBody::Register(Offer::default())),
        ]
    });
    assert!(out.iter().all(Result::is_ok));
    let mut tampered = llm_dispute(1, 2, 3, 9);
    tampered.transcript.tokens[2] = 99;
    for (d, why) in [
        (
            llm_dispute(1, 6, 7, 7),
            "on the ledger, admitted means staked",
        ),
        (llm_dispute(1, 4, 5, 7), "is not a registered operator"),
        (llm_dispute(1, 2, 1, 7), "is a party to the dispute"),
        (tampered, "transcript"),
    ] {
        let out = block(&mut l, |l| {
            vec![tx(l, 9, TxBody::Dispute { record: record(&d) })]
        });
        assert!(err(&out[0]).contains(why), "{}: {}", why, err(&out[0]));
    }
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            9,
            TxBody::Dispute {
                record: b"{\"not\": \"a dispute\"}".to_vec(),
            },
        )]
    });
    assert!(err(&out[0]).contains("neither a tensor, an LLM, a pooled LLM nor a proof dispute"));
    assert_eq!(l.operators()[&pk(1)].slashed, 0);
    assert_eq!(l.burned(), 0);
}

#[test]
fn a_rotated_key_keeps_its_receipts_attributable() {
    let mut l = ledger(&[1, 2, 3]);
    past_the_beacon(&mut l);
    let out = block(&mut l, |l| {
        vec![tx(l, 1, TxBody::RotateKey { key: pk(11) })]
    });
    assert!(out[0].is_ok());
    assert_eq!(l.operator_of(&pk(11)), Some(pk(1)));
    assert_eq!(l.operator_of(&pk(1)), Some(pk(1)));
    assert_eq!(l.operators()[&pk(1)].key(), pk(11));
    // Nobody else can take either key.
    let out = block(&mut l, |l| {
        vec![
            tx(l, 2, TxBody::RotateKey { key: pk(11) }),
            tx(l, 4, TxBody::Register(Offer::default())),
        ]
    });
    assert!(err(&out[0]).contains("already belongs to an operator"));
    assert!(out[1].is_ok());
    // The executor's new key cannot referee its old key's receipt.
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            9,
            TxBody::Dispute {
                record: record(&llm_dispute(1, 2, 11, 7)),
            },
        )]
    });
    assert!(
        err(&out[0]).contains("three different operators"),
        "{}",
        err(&out[0])
    );
    // A receipt signed with the old key still convicts its operator.
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            9,
            TxBody::Dispute {
                record: record(&llm_dispute(1, 2, 3, 7)),
            },
        )]
    });
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(l.operators()[&pk(1)].slashed, 1_000);
}

#[test]
fn a_model_has_one_publisher_and_the_state_root_follows_the_state() {
    let mut l = ledger(&[]);
    let before = l.state_root();
    let model = Digest::of(Kind::Model, b"m");
    let out = block(&mut l, |l| {
        vec![
            tx(
                l,
                1,
                TxBody::PublishModel {
                    model: *model.as_bytes(),
                },
            ),
            tx(
                l,
                2,
                TxBody::PublishModel {
                    model: *model.as_bytes(),
                },
            ),
        ]
    });
    assert!(out[0].is_ok());
    assert!(
        err(&out[1]).contains("was published by"),
        "{}",
        err(&out[1])
    );
    assert_eq!(l.publisher(&model), Some(pk(1)));
    assert_ne!(l.state_root(), before);
    let root = l.state_root();
    block(&mut l, |_| vec![]);
    assert_ne!(l.state_root(), root, "the height is part of the state");
}

/// A dispute is judged against the draw of a block after its receipt:
/// before that block, it waits; a referee the draw without a beacon
/// would have picked (one the executor could have ground its receipt
/// for) does not count unless the beacon's draw picks it too; the draw is
/// weighted by stake over current keys, the executor's operator left out;
/// after the dispute window, the receipt can no longer be disputed.
#[test]
fn disputes_are_drawn_by_the_beacon_after_their_receipt_and_weighted_by_stake() {
    use vouch_types::dispute::{Pool, REFEREE_DRAW, referee_draw};
    let mut l = ledger(&[1, 2, 3, 4, 5, 6, 7, 8]);
    let d = llm_dispute(1, 2, 3, 7);
    // Blocks come every 1,000 ms: the beacon block of a receipt stamped at
    // 1 ms, with the default 8,000 ms delay, is block 9 (9,000 ms).
    let out = block(&mut l, |l| {
        vec![
            tx(l, 9, TxBody::Dispute { record: record(&d) }),
            tx(l, 4, TxBody::Bond { amount: 5_000 }),
            tx(l, 5, TxBody::RotateKey { key: pk(15) }),
        ]
    });
    assert!(
        err(&out[0]).contains("not on the ledger yet"),
        "{}",
        err(&out[0])
    );
    assert!(out[1..].iter().all(Result::is_ok), "{out:?}");
    while l.height() < 8 {
        block(&mut l, |_| vec![]);
        assert!(l.beacon_after(1).is_err());
    }
    block(&mut l, |_| vec![]);
    let beacon = l.beacon_after(1).unwrap();
    // Later blocks do not change a receipt's beacon.
    assert_eq!(beacon, l.beacon());
    block(&mut l, |_| vec![]);
    assert_ne!(beacon, l.beacon());
    assert_eq!(beacon, l.beacon_after(1).unwrap());
    let pool = l.draw_pool(&pk(1), 1).unwrap();
    assert_eq!(pool.beacon, Some(beacon));
    assert!(
        !pool.weights.contains_key(&pk(1)),
        "the executor is no candidate"
    );
    assert_eq!(pool.weights[&pk(4)], 10_000, "weighted by bonded stake");
    assert!(pool.weights.contains_key(&pk(15)) && !pool.weights.contains_key(&pk(5)));
    // The referees the beacon's draw picks, and those the draw without it
    // would have.
    let e = d.executor.id;
    let drawn = referee_draw(&e, &pk(1), &pk(2), &pool);
    let unbeaconed = referee_draw(
        &e,
        &pk(1),
        &pk(2),
        &Pool {
            beacon: None,
            ..pool.clone()
        },
    );
    let byte = |k: &PublicKey| (1u8..=15).find(|b| pk(*b) == *k).unwrap();
    let outsider = unbeaconed
        .iter()
        .take(REFEREE_DRAW)
        .find(|k| !drawn[..REFEREE_DRAW].contains(k))
        .expect("the two draws differ in their first three");
    let mut wrong = d.clone();
    let why = "token 1: not the argmax".to_string();
    wrong.referee = TokenVerdict::sign(&key(byte(outsider)), &e, Some(1), why.clone());
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            9,
            TxBody::Dispute {
                record: record(&wrong),
            },
        )]
    });
    assert!(
        err(&out[0]).contains("not among the first operators the dispute's draw picks"),
        "{}",
        err(&out[0])
    );
    let mut right = d.clone();
    right.referee = TokenVerdict::sign(&key(byte(&drawn[0])), &e, Some(1), why);
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            9,
            TxBody::Dispute {
                record: record(&right),
            },
        )]
    });
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(l.operators()[&pk(1)].slashed, 1_000);
    // The window: with 3 blocks of beacons kept, a receipt of 1 ms has
    // expired by block 13; one of the last block's time has not come yet.
    let mut p = ledger(&[1]).params().clone();
    p.dispute_window = 3;
    let mut narrow = Ledger::genesis(&Genesis {
        chain_id: CHAIN.into(),
        params: p,
        accounts: (1..=9).map(|b| (pk(b), 10_000)).collect(),
        operators: [1, 2, 3]
            .iter()
            .map(|b| (pk(*b), 5_000, Offer::default()))
            .collect(),
    });
    for _ in 0..11 {
        block(&mut narrow, |_| vec![]);
    }
    assert!(narrow.beacon_after(1).is_ok(), "blocks 9 to 11 are kept");
    let out = block(&mut narrow, |l| {
        vec![tx(l, 9, TxBody::Dispute { record: record(&d) })]
    });
    assert!(
        err(&out[0]).contains("older than the dispute window"),
        "{}",
        err(&out[0])
    );
    assert!(matches!(
        narrow.beacon_after(narrow.time_ms()),
        Err(vouch_ledger::BeaconError::NotYet { .. })
    ));
    assert_eq!(
        narrow.beacon_after(2_000).unwrap(),
        narrow.beacon_after(1_500).unwrap(),
        "the first block at or after the target"
    );
}

/// An LLM dispute of executor 1's receipt (seed `seed`) raised by auditor
/// 2, refereed by the operator the ledger's draw puts first; that
/// referee's byte.
fn drawn_dispute(l: &Ledger, seed: u64) -> (LlmDispute, u8) {
    use vouch_types::dispute::referee_draw;
    let d = llm_dispute(1, 2, 3, seed);
    let pool = l.draw_pool(&pk(1), d.executor.body.timestamp_ms).unwrap();
    let first = referee_draw(&d.executor.id, &pk(1), &pk(2), &pool)[0];
    let r = (1u8..=9).find(|b| pk(*b) == first).unwrap();
    (llm_dispute(1, 2, r, seed), r)
}

fn appeal(l: &Ledger, signer: u8, d: &LlmDispute) -> Vec<u8> {
    tx(
        l,
        signer,
        TxBody::Appeal {
            receipt: *d.executor.id.as_bytes(),
        },
    )
}

fn vote(l: &Ledger, signer: u8, d: &LlmDispute, executor_faulty: bool) -> Vec<u8> {
    tx(
        l,
        signer,
        TxBody::AppealVote {
            receipt: *d.executor.id.as_bytes(),
            executor_faulty,
        },
    )
}

/// Convicts executor 1 on `d` (auditor 2's transaction) and has it appeal;
/// the panel the next block seats, as key bytes.
fn convict_and_appeal(l: &mut Ledger, d: &LlmDispute) -> Vec<u8> {
    let out = block(l, |l| vec![tx(l, 2, TxBody::Dispute { record: record(d) })]);
    assert!(out[0].is_ok(), "{out:?}");
    block(l, |l| vec![appeal(l, 1, d)]);
    block(l, |_| vec![]);
    panel_of(l, d)
}

/// The panel of `d`'s appeal, as key bytes.
fn panel_of(l: &Ledger, d: &LlmDispute) -> Vec<u8> {
    let panel = l.pending_convictions()[&d.executor.id]
        .appeal
        .clone()
        .unwrap()
        .panel
        .unwrap();
    panel
        .iter()
        .map(|k| (1u8..=9).find(|b| pk(*b) == *k).unwrap())
        .collect()
}

/// An auditor and a referee frame an honest executor: the conviction
/// takes its stake at once but holds it; it appeals; the next block's
/// beacon draws a panel of staked operators that are none of the three
/// parties; a majority of the panel overturns the conviction: the
/// executor's stake comes back with the framers' slashed stake as its
/// reward. A conviction the panel upholds slashes the appellant again; a
/// panel that reaches no majority in time leaves the conviction as it was.
/// Only the convicted may appeal, once, in the window; only panel members
/// vote, once each.
#[test]
fn an_appeal_to_a_drawn_panel_overturns_a_framed_conviction_and_upholds_a_true_one() {
    use vouch_ledger::appeal::Ruling;
    let mut l = ledger(&[1, 2, 3, 4, 5, 6, 7, 8]);
    past_the_beacon(&mut l);
    let supply = l.supply();
    let (framed, r) = drawn_dispute(&l, 7);
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            2,
            TxBody::Dispute {
                record: record(&framed),
            },
        )]
    });
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(l.operators()[&pk(1)].stake, 4_000);
    // Only the convicted appeals, once; nobody votes before the panel.
    let out = block(&mut l, |l| {
        vec![
            appeal(l, 2, &framed),
            appeal(l, 1, &framed),
            vote(l, 4, &framed, false),
        ]
    });
    assert!(
        err(&out[0]).contains("only the convicted operator"),
        "{}",
        err(&out[0])
    );
    assert!(out[1].is_ok(), "{out:?}");
    assert!(err(&out[2]).contains("has no panel"), "{}", err(&out[2]));
    // The next block draws the panel: the five staked operators that are
    // not parties (the panel's size), by the beacon.
    let out = block(&mut l, |l| vec![appeal(l, 1, &framed)]);
    assert!(
        err(&out[0]).contains("appealed already"),
        "{}",
        err(&out[0])
    );
    let c = &l.pending_convictions()[&framed.executor.id];
    let panel = c.appeal.as_ref().unwrap().panel.clone().unwrap();
    assert_eq!(panel.len(), 5);
    for party in [1, 2, r] {
        assert!(!panel.contains(&pk(party)));
    }
    let member = |i: usize| (1u8..=9).find(|b| pk(*b) == panel[i]).unwrap();
    let out = block(&mut l, |l| {
        vec![
            vote(l, 9, &framed, false),
            vote(l, member(0), &framed, false),
            vote(l, member(1), &framed, true),
            vote(l, member(2), &framed, false),
        ]
    });
    assert!(
        err(&out[0]).contains("not on the panel"),
        "{}",
        err(&out[0])
    );
    assert!(out[1..].iter().all(Result::is_ok), "{out:?}");
    assert_eq!(l.pending_convictions().len(), 1, "2 of 5 is no majority");
    let out = block(&mut l, |l| vec![vote(l, member(0), &framed, false)]);
    assert!(
        err(&out[0]).contains("voted on the appeal"),
        "{}",
        err(&out[0])
    );
    let out = block(&mut l, |l| {
        vec![
            vote(l, member(3), &framed, false),
            vote(l, member(4), &framed, false),
        ]
    });
    assert!(out[0].is_ok(), "{out:?}");
    assert!(
        err(&out[1]).contains("no appeal of receipt"),
        "{}",
        err(&out[1])
    );
    assert_eq!(
        *l.rulings().back().unwrap(),
        (framed.executor.id, Ruling::Overturned)
    );
    // The executor is whole and rewarded; the framers are slashed.
    let e = &l.operators()[&pk(1)];
    assert_eq!((e.stake, e.slashed), (5_000, 0));
    assert_eq!(l.account(&pk(1)).balance, 10_000 + 500 + 500);
    for framer in [2, r] {
        assert_eq!(l.operators()[&pk(framer)].slashed, 1_000);
    }
    assert_eq!(l.supply() + l.burned(), supply);

    // A true conviction, appealed: the panel upholds it, and the
    // appellant is slashed a second time.
    let (true_one, _) = drawn_dispute(&l, 8);
    let panel = convict_and_appeal(&mut l, &true_one);
    let member = |i: usize| panel[i];
    let out = block(&mut l, |l| {
        (0..3)
            .map(|i| vote(l, member(i), &true_one, true))
            .collect()
    });
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(
        *l.rulings().back().unwrap(),
        (true_one.executor.id, Ruling::Upheld)
    );
    // 20% of 5,000, then 20% of the 4,000 left.
    assert_eq!(l.operators()[&pk(1)].slashed, 1_000 + 800);
    assert_eq!(l.supply() + l.burned(), supply);

    // Split votes until the panel's time runs out: the conviction stands
    // as it was, without a second slash; and a late appeal is refused.
    let (split, _) = drawn_dispute(&l, 9);
    let panel = convict_and_appeal(&mut l, &split);
    let slashed = l.operators()[&pk(1)].slashed;
    let member = |i: usize| panel[i];
    block(&mut l, |l| {
        vec![
            vote(l, member(0), &split, true),
            vote(l, member(1), &split, false),
        ]
    });
    while !l.pending_convictions().is_empty() {
        block(&mut l, |_| vec![]);
    }
    assert_eq!(
        *l.rulings().back().unwrap(),
        (split.executor.id, Ruling::Undecided)
    );
    assert_eq!(l.operators()[&pk(1)].slashed, slashed);
    let (late, _) = drawn_dispute(&l, 10);
    block(&mut l, |l| {
        vec![tx(
            l,
            2,
            TxBody::Dispute {
                record: record(&late),
            },
        )]
    });
    for _ in 0..=l.params().appeal_window {
        block(&mut l, |_| vec![]);
    }
    let out = block(&mut l, |l| vec![appeal(l, 1, &late)]);
    assert!(
        err(&out[0]).contains("no conviction on receipt"),
        "{}",
        err(&out[0])
    );
    assert_eq!(
        *l.rulings().back().unwrap(),
        (late.executor.id, Ruling::Final)
    );
    assert_eq!(l.supply() + l.burned(), supply);
}

/// A pooled dispute over executor 1's 8 accelerator answers stamped in
/// `[start, start + 1,000)`, ranked by `beacon`, counted by auditor 2 and
/// referee 3 under `rule` with `found` of 128 tokens beyond the tolerance.
fn pool_dispute(
    start: u64,
    beacon: [u8; 32],
    rule: vouch_types::llm_pool::PoolRule,
    found: u64,
) -> vouch_types::llm_pool::PoolDispute {
    use vouch_types::dispute::{DISPUTE_VERSION, Party};
    use vouch_types::llm_pool::{Answer, PoolDispute, PoolScope, PoolVerdict};
    let scope = PoolScope {
        executor: pk(1),
        model: Digest::of(Kind::Model, b"llm"),
        start_ms: start,
        end_ms: start + 1_000,
        beacon,
    };
    let answers = (0..8u64).map(|i| {
        let (receipt, transcript) =
            common::llm_answer(&key(1), i, 16, start + i, "llama-cpp-2 0.1.160 +CUDA");
        Answer {
            receipt,
            transcript,
        }
    });
    let answers = scope.select(answers);
    let ids: Vec<Digest> = answers.iter().map(|a| a.receipt.id).collect();
    let auditor = PoolVerdict::sign(&key(2), scope.digest(&ids), 128, found, rule);
    let referee = PoolVerdict::sign(&key(3), scope.digest(&ids), 128, found, rule);
    PoolDispute {
        version: DISPUTE_VERSION,
        scope,
        accused: ids,
        auditor,
        answers,
        referee,
        faulty: Party::Executor,
    }
}

/// A pooled LLM dispute convicts on the ledger only for one of its
/// windows, ranked by its beacon, counted under its accelerator rule, and
/// once per pool.
#[test]
fn a_pooled_dispute_convicts_once_in_the_ledgers_window_beacon_and_rule() {
    use vouch_types::llm_pool::PoolRule;
    let with_window = |llm_pool_window_ms| {
        let mut l = Ledger::genesis(&Genesis {
            chain_id: CHAIN.into(),
            params: Params {
                llm_pool_window_ms,
                ..Params::default()
            },
            accounts: (1..=9).map(|b| (pk(b), 10_000)).collect(),
            operators: [1u8, 2, 3]
                .iter()
                .map(|b| (pk(*b), 5_000, Offer::default()))
                .collect(),
        });
        while l.beacon_after(2_000).is_err() {
            block(&mut l, |_| vec![]);
        }
        l
    };
    let mut l = with_window(1_000);
    let (beacon, rule) = (
        l.beacon_after(1_000).unwrap(),
        PoolRule {
            tolerance_ppm: l.params().llm_tolerance_ppm,
            exceed_ppm: l.params().llm_exceed_ppm,
        },
    );
    let c = rule.threshold(128);
    let refused = |l: &mut Ledger, d: &vouch_types::llm_pool::PoolDispute| {
        let record = serde_json::to_vec(d).unwrap();
        let out = block(l, |l| vec![tx(l, 2, TxBody::Dispute { record })]);
        err(&out[0])
    };
    let shifted = pool_dispute(500, l.beacon_after(1_500).unwrap(), rule, c);
    let why = refused(&mut l, &shifted);
    assert!(
        why.contains("not one of the ledger's pool windows"),
        "{why}"
    );
    let why = refused(&mut l, &pool_dispute(1_000, beacon, rule, c));
    assert!(why.contains("beacon"), "{why}");
    let loose = PoolRule {
        exceed_ppm: 50_000,
        ..rule
    };
    let why = refused(
        &mut l,
        &pool_dispute(0, beacon, loose, loose.threshold(128)),
    );
    assert!(why.contains("accelerator rule"), "{why}");
    // Below the threshold the auditor accuses nothing.
    let why = refused(&mut l, &pool_dispute(0, beacon, rule, c - 1));
    assert!(why.contains("nothing in dispute"), "{why}");

    let d = pool_dispute(0, beacon, rule, c);
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            2,
            TxBody::Dispute {
                record: serde_json::to_vec(&d).unwrap(),
            },
        )]
    });
    assert!(out[0].is_ok(), "{out:?}");
    assert!(l.disputed(&d.scope.key()));
    assert!(
        l.operators()[&pk(1)].stake < 5_000,
        "the executor is slashed"
    );
    let why = refused(&mut l, &d);
    assert!(why.contains("convicted on already"), "{why}");

    // With pooled audits off, none convicts.
    let mut off = with_window(0);
    let beacon = off.beacon_after(1_000).unwrap();
    let why = refused(&mut off, &pool_dispute(0, beacon, rule, c));
    assert!(why.contains("pooled audits are off"), "{why}");
}

/// Executor `e`'s proven answer for the MNIST MLP (`scripts/mnist-models`)
/// on one image, as the evidence of a dispute over it: honest, or with a
/// logit raised in the proof's outputs (so the proof no longer verifies),
/// the receipt signed over those outputs.
fn proven_answer(e: u8, lie: bool) -> vouch_proof::ProofDispute {
    use vouch_proof::bundle::{self, Bundle, CIRCUIT_ROLE};
    use vouch_proof::circuit::{Circuit, Options};
    use vouch_proof::snark::{Keys, prove};
    use vouch_types::{Determinism, FileEntry, Manifest, ModelFormat, ReceiptBody, Tensor};
    let models = std::env::var("VOUCH_MODELS").expect("VOUCH_MODELS names the models directory");
    let onnx = std::fs::read(std::path::Path::new(&models).join("mnist-mlp.onnx"))
        .expect("mnist-mlp.onnx: run scripts/mnist-models");
    let circuit = Circuit::compile(
        &onnx,
        &Options {
            input_range: 1.0,
            ..Default::default()
        },
    )
    .unwrap();
    let circuit_bytes = circuit.encode();
    let manifest = Manifest {
        name: "mnist".into(),
        version: "1".into(),
        format: ModelFormat::Onnx,
        files: vec![FileEntry {
            role: CIRCUIT_ROLE.into(),
            digest: bundle::circuit_digest(&circuit_bytes),
            size: circuit_bytes.len() as u64,
        }],
        schema: Default::default(),
        license: String::new(),
        publisher: pk(9),
    };
    let pixels: Vec<f32> = (0..784).map(|i| (i % 7) as f32 / 7.0).collect();
    let mut inputs = vouch_types::TensorMap::new();
    inputs.insert("input", Tensor::from_f32(vec![1, 784], &pixels).unwrap());
    let x = circuit.quantize_input(&pixels).unwrap();
    let mut proof = prove(&Keys::setup(&circuit).unwrap(), &circuit, &x).unwrap();
    if lie {
        proof.outputs[4] += 1 << 40;
    }
    let outputs = bundle::output_map(&circuit, &proof.outputs);
    let receipt = ReceiptBody {
        version: 1,
        model: manifest.id(),
        request: inputs.digest(Kind::Input),
        output: outputs.digest(Kind::Output),
        trace: bundle::commitment(&proof),
        engine: bundle::engine_info(),
        determinism: Determinism::Exact,
        seed: None,
        node: pk(e),
        nonce: String::new(),
        timestamp_ms: 1,
        price: 0,
    }
    .sign(&key(e));
    let b = Bundle {
        manifest: manifest.encode(),
        circuit: bundle::circuit_digest(&circuit_bytes),
        proof,
    };
    vouch_proof::ProofDispute::new(receipt, b, circuit_bytes, &inputs, &outputs)
}

#[test]
fn a_proven_answer_that_does_not_check_convicts_its_executor_once_and_pays_the_reporter() {
    let mut l = ledger(&[1, 2, 3]);
    let file = |l: &mut Ledger, reporter: u8, d: &vouch_proof::ProofDispute| {
        let record = serde_json::to_vec(d).unwrap();
        block(l, |l| vec![tx(l, reporter, TxBody::Dispute { record })]).remove(0)
    };
    // An honest answer convicts no one.
    let why = err(&file(&mut l, 5, &proven_answer(1, false)));
    assert!(why.contains("nothing to convict"), "{why}");
    let lie = proven_answer(1, true);
    // Nor does evidence the executor did not sign: the outputs changed
    // after the receipt.
    let mut forged = lie.clone();
    forged.outputs = proven_answer(1, false).outputs;
    let why = err(&file(&mut l, 5, &forged));
    assert!(why.contains("not evidence"), "{why}");
    // An executor that is no operator has nothing to slash.
    let why = err(&file(&mut l, 5, &proven_answer(7, true)));
    assert!(why.contains("not a registered operator"), "{why}");
    // An operator does not collect the reward for its own lie.
    let why = err(&file(&mut l, 1, &lie));
    assert!(why.contains("its own"), "{why}");
    assert_eq!(l.operators()[&pk(1)].stake, 5_000);

    let (balance, burned) = (l.account(&pk(5)).balance, l.burned());
    let out = file(&mut l, 5, &lie);
    assert!(out.is_ok(), "{out:?}");
    // 20% of the stake at risk, half of it to the reporter, the rest burned.
    assert_eq!(l.operators()[&pk(1)].stake, 4_000);
    assert_eq!(l.account(&pk(5)).balance, balance + 500);
    assert_eq!(l.burned(), burned + 500);
    assert!(l.disputed(&lie.receipt_id()));
    assert_eq!(
        l.rulings().back(),
        Some(&(lie.receipt_id(), vouch_ledger::appeal::Ruling::Final))
    );
    let why = err(&file(&mut l, 6, &lie));
    assert!(why.contains("convicted on already"), "{why}");
    assert_eq!(l.operators()[&pk(1)].stake, 4_000);

    // A block judges at most PROOF_CHECKS_PER_BLOCK proof disputes (each
    // derives the circuit's keys on every validator); the next waits.
    assert_eq!(vouch_ledger::PROOF_CHECKS_PER_BLOCK, 2);
    let records: Vec<Vec<u8>> = [1u8, 2, 3]
        .iter()
        .map(|&e| {
            let mut d = proven_answer(e, true);
            if e == 1 {
                // Another lie of the first executor's: another receipt.
                d.receipt.body.timestamp_ms = 2;
                d.receipt = d.receipt.body.sign(&key(1));
            }
            serde_json::to_vec(&d).unwrap()
        })
        .collect();
    let out = block(&mut l, |l| {
        let nonce = l.account(&pk(5)).nonce;
        records
            .iter()
            .enumerate()
            .map(|(i, record)| {
                Tx::sign(
                    CHAIN,
                    &key(5),
                    nonce + i as u64,
                    TxBody::Dispute {
                        record: record.clone(),
                    },
                )
                .encode()
            })
            .collect()
    });
    assert!(out[0].is_ok() && out[1].is_ok(), "{out:?}");
    assert!(err(&out[2]).contains("most one block judges"), "{out:?}");
    let out = block(&mut l, |l| {
        vec![tx(
            l,
            5,
            TxBody::Dispute {
                record: records[2].clone(),
            },
        )]
    });
    assert!(out[0].is_ok(), "{out:?}");
    assert_eq!(l.operators()[&pk(3)].stake, 4_000);
}
