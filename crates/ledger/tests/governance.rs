//! Governance on the ledger, as voters and spoilers would try it: a change
//! takes effect only with turnout and a majority of the stake that voted,
//! only after its timelock and only once; proposals out of bounds, from the
//! unstaked or after the vote are refused; and, for random electorates and
//! votes, the outcome is what the rules computed by hand say.

use proptest::prelude::*;
mod common;

use common::{err, key, pk};
use vouch_ledger::{Genesis, Ledger, Offer, Params, Status, TxBody, TxOutcome};

const CHAIN: &str = "gov";

/// Operators 1..=n with the given stakes; account 9 funded, unstaked.
/// Votes last 3 blocks, changes wait 2 more, a third of the stake must
/// vote and more than half of it yes.
fn ledger(stakes: &[u64]) -> Ledger {
    Ledger::genesis(&Genesis {
        chain_id: CHAIN.into(),
        params: Params {
            min_stake: 1_000,
            voting_period: 3,
            timelock: 2,
            quorum_bp: 3_334,
            threshold_bp: 5_000,
            ..Params::default()
        },
        accounts: (1..=9).map(|b| (pk(b), 10_000)).collect(),
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

fn propose(changes: &[(&str, u64)]) -> TxBody {
    TxBody::Propose {
        changes: changes.iter().map(|(n, v)| (n.to_string(), *v)).collect(),
        spends: vec![],
        releases: vec![],
    }
}

fn vote(proposal: u64, yes: bool) -> TxBody {
    TxBody::Vote { proposal, yes }
}

#[test]
fn a_change_with_turnout_and_a_majority_takes_effect_after_its_timelock_once() {
    let mut l = ledger(&[5_000, 3_000, 2_000]);
    let before = l.params().audit_rate_ppm;
    // Height 1: proposed; votes end at 4, changes at 6.
    let out = block(&mut l, vec![(1, propose(&[("audit_rate_ppm", 250_000)]))]);
    assert!(out[0].is_ok(), "{}", err(&out[0]));
    let p = &l.proposals()[0];
    assert_eq!((p.proposed, p.voting_ends), (1, 4));
    // 5,000 yes against 3,000 no; a later vote replaces an earlier one.
    let out = block(
        &mut l,
        vec![(1, vote(0, false)), (2, vote(0, false)), (1, vote(0, true))],
    );
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    block(&mut l, vec![]); // height 3
    assert_eq!(l.proposals()[0].status, Status::Voting);
    block(&mut l, vec![]); // height 4: counted
    assert_eq!(l.proposals()[0].tally, Some((5_000, 3_000, 10_000)));
    assert_eq!(l.proposals()[0].status, Status::Passed { activates: 6 });
    // A vote after the count is refused.
    let out = block(&mut l, vec![(3, vote(0, false))]); // height 5
    assert!(
        err(&out[0]).contains("vote ended at height 4"),
        "{}",
        err(&out[0])
    );
    assert_eq!(l.params().audit_rate_ppm, before, "the timelock holds it");
    block(&mut l, vec![]); // height 6: in force
    assert_eq!(l.params().audit_rate_ppm, 250_000);
    assert_eq!(l.proposals()[0].status, Status::Activated { at: 6 });
    // Once: a later change by another proposal is not undone.
    block(&mut l, vec![(2, propose(&[("audit_rate_ppm", 1)]))]);
    for _ in 0..6 {
        block(&mut l, vec![]);
    }
    assert_eq!(l.proposals()[1].status, Status::Rejected, "no one voted");
    assert_eq!(l.params().audit_rate_ppm, 250_000);
    assert_eq!(l.proposals()[0].status, Status::Activated { at: 6 });
}

#[test]
fn too_little_turnout_or_no_majority_changes_nothing() {
    // Turnout: 3,000 of 10,000 voted, under a third.
    let mut l = ledger(&[5_000, 3_000, 2_000]);
    block(&mut l, vec![(2, propose(&[("slash_bp", 5_000)]))]);
    block(&mut l, vec![(2, vote(0, true))]);
    for _ in 0..5 {
        block(&mut l, vec![]);
    }
    assert_eq!(l.proposals()[0].status, Status::Rejected);
    assert_eq!(l.params().slash_bp, Params::default().slash_bp);
    // A tie is not a majority.
    let mut l = ledger(&[5_000, 5_000]);
    block(&mut l, vec![(1, propose(&[("slash_bp", 5_000)]))]);
    block(&mut l, vec![(1, vote(0, true)), (2, vote(0, false))]);
    for _ in 0..5 {
        block(&mut l, vec![]);
    }
    assert_eq!(l.proposals()[0].tally, Some((5_000, 5_000, 10_000)));
    assert_eq!(l.proposals()[0].status, Status::Rejected);
}

#[test]
fn proposals_out_of_bounds_from_the_unstaked_or_on_nothing_are_refused() {
    let mut l = ledger(&[5_000, 500]);
    let out = block(
        &mut l,
        vec![
            (9, propose(&[("audit_rate_ppm", 1)])),
            (2, propose(&[("audit_rate_ppm", 1)])),
            (1, propose(&[("slash_bp", 10_001)])),
            (1, propose(&[("threshold_bp", 4_999)])),
            (1, propose(&[("min_stake", 0)])),
            (1, propose(&[("admin", 1)])),
            (1, propose(&[])),
            (1, propose(&[("timelock", 0), ("timelock", 1)])),
            (9, vote(0, true)),
            (1, vote(7, true)),
        ],
    );
    let want = [
        "minimum stake",
        "minimum stake",
        "slash_bp = 10001 is out of bounds",
        "threshold_bp = 4999 is out of bounds",
        "min_stake = 0 is out of bounds",
        "no parameter `admin`",
        "1 to 16 parameters, treasury spends and releases",
        "timelock is set twice",
        "no bonded stake",
        "no proposal 7",
    ];
    for (o, w) in out.iter().zip(want) {
        assert!(err(o).contains(w), "{} (wanted {w})", err(o));
    }
    assert!(l.proposals().is_empty());
    // Governance parameters are governed too: a timelock of 0 takes
    // effect in the block that counts the votes.
    // Height 2: proposed (votes end at 5, in force at 7).
    block(&mut l, vec![(1, propose(&[("timelock", 0)]))]);
    block(&mut l, vec![(1, vote(0, true))]);
    for _ in 0..4 {
        block(&mut l, vec![]);
    }
    assert_eq!(l.params().timelock, 0);
    // Height 8: proposed; counted and in force at 11.
    block(&mut l, vec![(1, propose(&[("reward_bp", 1)]))]);
    block(&mut l, vec![(1, vote(1, true))]);
    block(&mut l, vec![]);
    assert_eq!(l.params().reward_bp, Params::default().reward_bp);
    block(&mut l, vec![]);
    assert_eq!(l.proposals()[1].status, Status::Activated { at: 11 });
    assert_eq!(l.params().reward_bp, 1);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// For any electorate and any votes, the ledger's count and outcome are
    /// the rules computed here: yes and no weighed by stake, turnout
    /// against a third of all stake, more than half yes.
    #[test]
    fn the_outcome_is_the_rules_computed_by_hand(
        stakes in proptest::collection::vec(1_000u64..50_000, 1..7),
        votes in proptest::collection::vec(proptest::option::of(any::<bool>()), 7),
    ) {
        let mut l = ledger(&stakes);
        let out = block(&mut l, vec![(1, propose(&[("llm_tolerance_ppm", 123)]))]);
        prop_assert!(out[0].is_ok());
        let cast: Vec<(u8, TxBody)> = stakes
            .iter()
            .enumerate()
            .filter_map(|(i, _)| votes[i].map(|v| (i as u8 + 1, vote(0, v))))
            .collect();
        block(&mut l, cast);
        for _ in 0..5 {
            block(&mut l, vec![]);
        }
        let total: u64 = stakes.iter().sum();
        let (mut yes, mut no) = (0, 0);
        for (i, s) in stakes.iter().enumerate() {
            match votes[i] {
                Some(true) => yes += s,
                Some(false) => no += s,
                None => {}
            }
        }
        prop_assert_eq!(l.proposals()[0].tally, Some((yes, no, total)));
        let passes = (yes + no) * 10_000 >= 3_334 * total && yes * 10_000 > 5_000 * (yes + no);
        prop_assert_eq!(l.params().llm_tolerance_ppm == 123, passes);
        let status = &l.proposals()[0].status;
        prop_assert_eq!(matches!(status, Status::Activated { .. }), passes);
        prop_assert_eq!(matches!(status, Status::Rejected), !passes);
    }
}

/// Fees split as the parameters say, summing exactly to what was paid; the
/// treasury pays out only by vote, all or nothing; the auditors' pool pays
/// a dispute's bounty (`ledger.rs` convicts; here, what it leaves).
#[test]
fn fees_split_exactly_and_the_treasury_pays_only_by_vote() {
    use vouch_ledger::Voucher;
    let mut l = ledger(&[5_000, 3_000]);
    let (aud_bp, tre_bp) = (l.params().fee_auditors_bp, l.params().fee_treasury_bp);
    // Client 9 deposits; operator 1 redeems 1,234 of its vouchers.
    block(&mut l, vec![(9, TxBody::Deposit { amount: 5_000 })]);
    let v = Voucher::sign(CHAIN, &key(9), &pk(1), 1_234);
    let before = l.account(&pk(1)).balance;
    let out = block(&mut l, vec![(1, TxBody::Redeem { vouchers: vec![v] })]);
    assert!(out[0].is_ok(), "{}", err(&out[0]));
    let to_pool = 1_234 * aud_bp / 10_000;
    let to_treasury = 1_234 * tre_bp / 10_000;
    let kept = l.account(&pk(1)).balance - before;
    assert_eq!((l.auditors_pool(), l.treasury()), (to_pool, to_treasury));
    assert_eq!(
        kept + to_pool + to_treasury,
        1_234,
        "the split sums to what was paid"
    );
    assert_eq!(l.operators()[&pk(1)].earned, kept);
    assert_eq!(l.fees(), 1_234);

    // A spend above what the treasury holds passes the vote but fails,
    // and its parameter change with it; one within pays.
    let spend = |amount: u64| TxBody::Propose {
        changes: vec![("dispute_bounty".into(), 7)],
        spends: vec![(pk(8), amount)],
        releases: vec![],
    };
    let out = block(
        &mut l,
        vec![(1, spend(to_treasury + 1)), (1, spend(to_treasury))],
    );
    assert!(out.iter().all(Result::is_ok), "{out:?}");
    block(&mut l, vec![(1, vote(0, true)), (1, vote(1, true))]);
    let payee = l.account(&pk(8)).balance;
    for _ in 0..6 {
        block(&mut l, vec![]);
    }
    assert!(
        matches!(l.proposals()[0].status, Status::Failed { .. }),
        "{:?}",
        l.proposals()[0].status
    );
    assert!(matches!(l.proposals()[1].status, Status::Activated { .. }));
    assert_eq!(l.account(&pk(8)).balance, payee + to_treasury);
    assert_eq!(l.treasury(), 0);
    assert_eq!(l.params().dispute_bounty, 7);
    // A spend of nothing is refused.
    let out = block(
        &mut l,
        vec![(
            1,
            TxBody::Propose {
                changes: vec![],
                spends: vec![(pk(8), 0)],
                releases: vec![],
            },
        )],
    );
    assert!(err(&out[0]).contains("a spend of 0"), "{}", err(&out[0]));
}

/// Releases by vote: any version serves until one is allowed; then only
/// allowed ones, and a retired one no longer.
#[test]
fn releases_are_allowed_and_retired_by_vote() {
    let mut l = ledger(&[5_000]);
    assert!(l.release_allowed("0.1.0") && l.release_allowed("9.9.9"));
    let release = |version: &str, allowed: bool| TxBody::Propose {
        changes: vec![],
        spends: vec![],
        releases: vec![(version.into(), [7; 32], allowed)],
    };
    let out = block(&mut l, vec![(1, release("bad version", true))]);
    assert!(err(&out[0]).contains("without spaces"), "{}", err(&out[0]));
    block(&mut l, vec![(1, release("0.2.0", true))]);
    block(&mut l, vec![(1, vote(0, true))]);
    // Once passed, and until it takes effect, a node on 0.1.0 is told at
    // which height its release stops serving; 0.2.0's is not.
    let mut warned = None;
    for _ in 0..5 {
        block(&mut l, vec![]);
        if let Status::Passed { activates } = l.proposals()[0].status {
            assert_eq!(l.release_retiring("0.1.0"), Some(activates));
            assert_eq!(l.release_retiring("0.2.0"), None);
            warned = Some(activates);
        }
    }
    assert!(
        warned.is_some(),
        "the pass was never seen before activation"
    );
    assert_eq!(l.release_retiring("0.1.0"), None, "retired by now");
    assert!(l.release_allowed("0.2.0"));
    assert!(
        !l.release_allowed("0.1.0"),
        "an allowed release makes a policy"
    );
    block(&mut l, vec![(1, release("0.2.0", false))]);
    block(&mut l, vec![(1, vote(1, true))]);
    for _ in 0..5 {
        block(&mut l, vec![]);
    }
    assert!(!l.release_allowed("0.2.0"), "retired");
    assert_eq!(l.releases()["0.2.0"], ([7; 32], false));
}
