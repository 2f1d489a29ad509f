//! Epochs and equivocation, as a validator that cheats and its peers would
//! meet them: the validator set follows stake at each epoch's end (the
//! most stake first, at most `max_validators`); a validator's two
//! conflicting consensus votes, signed as the engine signs them, slash it
//! once and reward the reporter; evidence that proves nothing (a forged
//! signature, votes of another chain, an epoch the ledger does not keep,
//! one's own) is refused with the reason.

use commonware_codec::DecodeExt as _;
use commonware_consensus::simplex::types::{
    Activity, ConflictingFinalize, ConflictingNotarize, Finalize, Notarize, Nullify,
    NullifyFinalize, Proposal,
};
use commonware_consensus::types::{Epoch, Round, View};
use commonware_cryptography::{ed25519, sha256::Digest as Sha256};
use vouch_ledger::evidence::{self, Scheme};
use vouch_ledger::state::KEPT_EPOCHS;
mod common;

use common::{err, key, pk};
use vouch_ledger::{Genesis, Ledger, Offer, Params, TxBody, TxOutcome};
use vouch_types::PublicKey;

const CHAIN: &str = "epochs";

/// Operators 1..=n with the given stakes, each with 100,000 to spend;
/// epochs of 3 blocks, at most `max` validators.
fn ledger(stakes: &[u64], max: u64) -> Ledger {
    Ledger::genesis(&Genesis {
        chain_id: CHAIN.into(),
        params: Params {
            min_stake: 1_000,
            epoch_length: 3,
            max_validators: max,
            ..Params::default()
        },
        accounts: (1..=stakes.len() as u8).map(|b| (pk(b), 100_000)).collect(),
        operators: stakes
            .iter()
            .enumerate()
            .map(|(i, s)| (pk(i as u8 + 1), *s, Offer::default()))
            .collect(),
    })
}

fn block(l: &mut Ledger, txs: Vec<(u8, TxBody)>) -> Vec<TxOutcome> {
    common::block(CHAIN, l, txs)
}

/// Operator `b`'s vote signer for a validator set, as the engine builds it
/// on chain `chain`.
fn signer(chain: &str, b: u8, set: &[PublicKey]) -> Scheme {
    let private = ed25519::PrivateKey::decode(key(b).to_bytes().to_vec()).unwrap();
    Scheme::signer(
        &evidence::namespace(chain, b""),
        evidence::participants(set),
        private,
    )
    .expect("a validator of the set")
}

fn proposal(epoch: u64, view: u64, payload: u8) -> Proposal<Sha256> {
    Proposal::new(
        Round::new(Epoch::new(epoch), View::new(view)),
        View::new(view - 1),
        Sha256([payload; 32]),
    )
}

/// Operator `b`'s two notarize votes for different blocks of one round.
fn double_notarize(chain: &str, b: u8, set: &[PublicKey], epoch: u64, view: u64) -> Vec<u8> {
    let s = signer(chain, b, set);
    let one = Notarize::sign(&s, proposal(epoch, view, 1)).unwrap();
    let two = Notarize::sign(&s, proposal(epoch, view, 2)).unwrap();
    evidence::encode(&Activity::ConflictingNotarize(ConflictingNotarize::new(
        one, two,
    )))
    .unwrap()
}

fn equivocation(evidence: Vec<u8>) -> TxBody {
    TxBody::Equivocation { evidence }
}

#[test]
fn the_validator_set_follows_stake_at_each_epochs_end() {
    let mut l = ledger(&[5_000, 4_000, 3_000], 2);
    assert_eq!(l.epoch_validators(0).unwrap(), &[pk(1), pk(2)]);
    assert_eq!((l.epoch(), l.epoch_end()), (0, 3));
    // Operator 3 bonds more than anyone in the epoch's first block; the set
    // stays until the epoch's last block is applied.
    let out = block(&mut l, vec![(3, TxBody::Bond { amount: 7_000 })]);
    assert!(out[0].is_ok(), "{}", err(&out[0]));
    block(&mut l, vec![]);
    assert_eq!(l.epoch(), 0);
    block(&mut l, vec![]); // height 3: the epoch's last
    assert_eq!((l.epoch(), l.epoch_end()), (1, 6));
    assert_eq!(l.epoch_validators(1).unwrap(), &[pk(3), pk(1)]);
    assert_eq!(l.epoch_validators(0).unwrap(), &[pk(1), pk(2)], "kept");
    // Everyone unbonds: the last set goes on rather than none.
    let unbonds = (1..=3)
        .map(|b| {
            let amount = l.operators()[&pk(b)].stake;
            (b, TxBody::Unbond { amount })
        })
        .collect();
    let out = block(&mut l, unbonds);
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    block(&mut l, vec![]);
    block(&mut l, vec![]); // height 6
    assert_eq!(l.epoch(), 2);
    assert_eq!(l.epoch_validators(2).unwrap(), &[pk(3), pk(1)]);
    // Only the last KEPT_EPOCHS sets are kept.
    while l.epoch() < KEPT_EPOCHS + 1 {
        block(&mut l, vec![]);
    }
    assert!(l.epoch_validators(0).is_none());
    assert!(l.epoch_validators(1).is_some());
}

#[test]
fn a_validators_conflicting_votes_slash_it_once_and_reward_the_reporter() {
    let mut l = ledger(&[5_000, 4_000, 3_000, 2_000], 4);
    let set = l.epoch_validators(0).unwrap().to_vec();
    let supply = l.supply() + l.burned();
    let before = (l.operators()[&pk(2)].stake, l.account(&pk(1)).balance);
    let out = block(
        &mut l,
        vec![(1, equivocation(double_notarize(CHAIN, 2, &set, 0, 5)))],
    );
    assert!(out[0].is_ok(), "{}", err(&out[0]));
    // 10% of 4,000 taken; half of it to the reporter, the rest burned.
    assert_eq!(l.operators()[&pk(2)].stake, before.0 - 400);
    assert_eq!(l.operators()[&pk(2)].slashed, 400);
    assert_eq!(l.account(&pk(1)).balance, before.1 + 200);
    assert_eq!(l.burned(), 200);
    assert_eq!(l.supply() + l.burned(), supply);
    assert!(l.equivocated(&pk(2), 0, 5));
    // The same equivocation again, by anyone, is refused.
    let out = block(
        &mut l,
        vec![(3, equivocation(double_notarize(CHAIN, 2, &set, 0, 5)))],
    );
    assert!(err(&out[0]).contains("slashed already"), "{}", err(&out[0]));
    // Two finalizes, and a nullify with a finalize, in other views: each
    // slashes (from the stake left).
    let s = signer(CHAIN, 2, &set);
    let finalizes = ConflictingFinalize::new(
        Finalize::sign(&s, proposal(0, 6, 1)).unwrap(),
        Finalize::sign(&s, proposal(0, 6, 2)).unwrap(),
    );
    let round = Round::new(Epoch::new(0), View::new(7));
    let nullify_finalize = NullifyFinalize::new(
        Nullify::sign::<Sha256>(&s, round).unwrap(),
        Finalize::sign(&s, proposal(0, 7, 1)).unwrap(),
    );
    let out = block(
        &mut l,
        vec![
            (
                3,
                equivocation(evidence::encode(&Activity::ConflictingFinalize(finalizes)).unwrap()),
            ),
            (
                4,
                equivocation(
                    evidence::encode(&Activity::NullifyFinalize(nullify_finalize)).unwrap(),
                ),
            ),
        ],
    );
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(l.operators()[&pk(2)].slashed, 400 + 360 + 324);
    assert_eq!(l.supply() + l.burned(), supply);
    // Evidence from the epoch before still counts in the next one.
    while l.epoch() == 0 {
        block(&mut l, vec![]);
    }
    let out = block(
        &mut l,
        vec![(1, equivocation(double_notarize(CHAIN, 3, &set, 0, 2)))],
    );
    assert!(out[0].is_ok(), "{}", err(&out[0]));
}

#[test]
fn evidence_that_proves_nothing_is_refused_with_the_reason() {
    let mut l = ledger(&[5_000, 4_000, 3_000, 2_000], 4);
    let set = l.epoch_validators(0).unwrap().to_vec();
    let good = double_notarize(CHAIN, 2, &set, 0, 5);
    // A signature changed: its last byte.
    let mut forged = good.clone();
    *forged.last_mut().unwrap() ^= 1;
    // The cases, each with what its refusal says.
    let cases: Vec<(u8, Vec<u8>, &str)> = vec![
        (1, forged, "do not verify"),
        (
            1,
            double_notarize("other-chain", 2, &set, 0, 5),
            "do not verify",
        ),
        (
            1,
            double_notarize(CHAIN, 2, &set, 9, 5),
            "no validator set for epoch 9",
        ),
        (2, good.clone(), "its own equivocation"),
        (1, vec![], "empty"),
        (1, vec![7, 1, 2], "kind 7 is unknown"),
        (1, vec![0, 1, 2], "does not decode"),
        (1, good[..good.len() - 3].to_vec(), "does not decode"),
    ];
    for (reporter, bytes, why) in cases {
        let stake = l.operators()[&pk(2)].stake;
        let out = block(&mut l, vec![(reporter, equivocation(bytes))]);
        let e = err(&out[0]);
        assert!(e.contains(why), "expected `{why}` in: {e}");
        assert_eq!(l.operators()[&pk(2)].stake, stake, "{e}");
    }
    // Votes signed under a set the validator is not in (here, a set of
    // other keys) name a signer index the epoch's set gives to someone
    // else, whose key the signature does not verify for.
    let others = vec![pk(1), pk(2), pk(9)];
    let s = signer(CHAIN, 9, &others);
    let one = Notarize::sign(&s, proposal(0, 5, 1)).unwrap();
    let two = Notarize::sign(&s, proposal(0, 5, 2)).unwrap();
    let bytes = evidence::encode(&Activity::ConflictingNotarize(ConflictingNotarize::new(
        one, two,
    )))
    .unwrap();
    let out = block(&mut l, vec![(1, equivocation(bytes))]);
    assert!(err(&out[0]).contains("do not verify"), "{}", err(&out[0]));
    // And the good evidence still slashes after all that.
    let out = block(&mut l, vec![(1, equivocation(good))]);
    assert!(out[0].is_ok(), "{}", err(&out[0]));
}

/// Each epoch leaves a record of what it did: the fees settled and who
/// kept them, the stake slashed, and stake and validator power at its end;
/// the last 64 are kept.
#[test]
fn each_epoch_records_its_fees_slashes_and_concentration() {
    use vouch_ledger::Voucher;
    let mut l = ledger(&[5_000, 4_000, 3_000, 2_000], 4);
    let set = l.epoch_validators(0).unwrap().to_vec();
    // Operator 4 pays operator 1 600 by voucher; operator 1 redeems.
    let voucher = Voucher::sign(CHAIN, &key(4), &pk(1), 600);
    let out = block(&mut l, vec![(4, TxBody::Deposit { amount: 1_000 })]);
    assert!(out[0].is_ok(), "{}", err(&out[0]));
    let out = block(
        &mut l,
        vec![
            (
                1,
                TxBody::Redeem {
                    vouchers: vec![voucher],
                },
            ),
            (1, equivocation(double_notarize(CHAIN, 2, &set, 0, 5))),
        ],
    );
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    assert_eq!(l.this_epoch().fees, 600);
    block(&mut l, vec![]); // height 3: epoch 0 ends
    let r = l.epoch_records().back().unwrap().clone();
    assert_eq!((r.epoch, r.first, r.last), (0, 1, 3));
    assert_eq!(r.fees, 600);
    // 5% to the auditors' pool, 5% to the treasury, the rest kept.
    assert_eq!(r.earned.into_iter().collect::<Vec<_>>(), vec![(pk(1), 540)]);
    assert_eq!(r.slashed, 400);
    assert_eq!(r.stake, vec![5_000, 3_600, 3_000, 2_000]);
    assert_eq!(r.power, vec![5_000, 3_600, 3_000, 2_000]);
    // The next epoch starts empty.
    let now = l.this_epoch();
    assert_eq!((now.epoch, now.first, now.fees, now.slashed), (1, 4, 0, 0));
    // Only the last 64 records stay.
    while l.epoch() < 70 {
        block(&mut l, vec![]);
    }
    let records = l.epoch_records();
    assert_eq!(records.len(), vouch_ledger::state::KEPT_RECORDS);
    assert_eq!(records.front().unwrap().epoch, 70 - 64);
    assert_eq!(records.back().unwrap().epoch, 69);
}
