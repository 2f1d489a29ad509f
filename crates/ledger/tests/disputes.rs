//! Disputes, appeals and panel votes in random sequences, with unbonding
//! between them, one transaction per block: after every block the supply
//! plus what was burned is the genesis supply (what convictions hold
//! included); a receipt convicts at most once; a conviction takes exactly
//! the slash fraction of the executor's stake at risk; every conviction
//! becomes final once (`final`, `upheld`, `overturned` or `undecided`),
//! and an overturned one gives the executor back what it took. Replaying
//! the blocks gives the same state root. (Over the 48 cases, each kind
//! of ruling comes up in several: about 230 convictions, some 8 cases each
//! with an upheld and an overturned appeal, 35 with an undecided one.)

mod common;

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use vouch_ledger::appeal::Ruling;
use vouch_ledger::{Block, Genesis, Ledger, Offer, Params, Tx, TxBody};
use vouch_types::dispute::{LlmDispute, referee_draw};
use vouch_types::{Digest, PublicKey, SecretKey};

const CHAIN: &str = "disputes-test";
const OPERATORS: usize = 7;
const STAKE: u64 = 5_000;

fn key(i: usize) -> SecretKey {
    SecretKey::from_bytes(&[i as u8 + 1; 32])
}

fn index(k: &PublicKey) -> usize {
    (0..OPERATORS).find(|i| key(*i).public() == *k).unwrap()
}

#[derive(Clone, Debug)]
enum Step {
    /// `auditor` disputes `executor`'s answer number `answer`, with the
    /// referee the ledger's draw puts first (or, `drawn` false, the one
    /// after the three it may pick).
    Dispute {
        executor: usize,
        auditor: usize,
        answer: u8,
        drawn: bool,
    },
    /// Whoever a pending conviction (the `n`th) convicted appeals it.
    Appeal(usize),
    /// Panel member `member` of the `n`th pending appeal votes.
    Vote {
        n: usize,
        member: usize,
        executor_faulty: bool,
    },
    /// An operator unbonds some stake (still at risk while unbonding).
    Unbond(usize, u64),
    /// An empty block.
    Empty,
}

fn step() -> impl Strategy<Value = Step> {
    let k = 0..OPERATORS;
    prop_oneof![
        4 => (k.clone(), k.clone(), 0u8..6, prop::bool::weighted(0.9)).prop_map(
            |(executor, auditor, answer, drawn)| Step::Dispute { executor, auditor, answer, drawn }
        ),
        3 => (0usize..3).prop_map(Step::Appeal),
        8 => (0usize..2, 0usize..3, any::<bool>())
            .prop_map(|(n, member, executor_faulty)| Step::Vote { n, member, executor_faulty }),
        1 => (k, 0u64..3_000).prop_map(|(o, x)| Step::Unbond(o, x)),
        3 => Just(Step::Empty),
    ]
}

/// Executor `e`'s answer number `answer` (stamped at 1 ms), accused by
/// `a` at token 1 and refereed by `r`.
fn dispute(e: usize, a: usize, r: usize, answer: u8) -> LlmDispute {
    common::llm_dispute(&key(e), &key(a), &key(r), u64::from(answer))
}

fn genesis() -> Genesis {
    Genesis {
        chain_id: CHAIN.into(),
        params: Params {
            unbonding_delay: 4,
            appeal_window: 8,
            appeal_panel: 3,
            ..Params::default()
        },
        accounts: (0..OPERATORS).map(|i| (key(i).public(), 10_000)).collect(),
        operators: (0..OPERATORS)
            .map(|i| (key(i).public(), STAKE, Offer::default()))
            .collect(),
    }
}

/// A transaction's bytes and, for a dispute, its receipt and executor.
type Made = (Vec<u8>, Option<(Digest, usize)>);

/// The transaction a step makes on `l` as it stands, if any.
fn tx(l: &Ledger, s: &Step) -> Option<Made> {
    let sign = |signer: usize, body: TxBody| {
        Tx::sign(
            CHAIN,
            &key(signer),
            l.account(&key(signer).public()).nonce,
            body,
        )
        .encode()
    };
    let pending: Vec<_> = l.pending_convictions().iter().collect();
    match *s {
        Step::Dispute {
            executor,
            auditor,
            answer,
            drawn,
        } => {
            let probe = dispute(executor, auditor, auditor, answer);
            let pool = l.draw_pool(&key(executor).public(), 1).ok()?;
            let order = referee_draw(
                &probe.executor.id,
                &key(executor).public(),
                &key(auditor).public(),
                &pool,
            );
            let referee = if drawn {
                order.first()
            } else {
                order.get(vouch_types::dispute::REFEREE_DRAW)
            }
            .map_or(auditor, index);
            let d = dispute(executor, auditor, referee, answer);
            let record = serde_json::to_vec(&d).unwrap();
            Some((
                sign(auditor, TxBody::Dispute { record }),
                Some((d.executor.id, executor)),
            ))
        }
        Step::Appeal(n) => {
            let (receipt, c) = pending.get(n % pending.len().max(1)).copied()?;
            let body = TxBody::Appeal {
                receipt: *receipt.as_bytes(),
            };
            Some((sign(index(&c.convicted()), body), None))
        }
        Step::Vote {
            n,
            member,
            executor_faulty,
        } => {
            let (receipt, c) = pending
                .iter()
                .filter(|(_, c)| c.appeal.as_ref().is_some_and(|a| a.panel.is_some()))
                .nth(n)
                .copied()?;
            let panel = c.appeal.as_ref()?.panel.as_ref()?;
            let voter = panel.get(member % panel.len().max(1))?;
            let body = TxBody::AppealVote {
                receipt: *receipt.as_bytes(),
                executor_faulty,
            };
            Some((sign(index(voter), body), None))
        }
        Step::Unbond(o, amount) => Some((sign(o, TxBody::Unbond { amount }), None)),
        Step::Empty => None,
    }
}

/// Applies the next block, of `txs`, keeping it in `blocks`.
fn apply(
    l: &mut Ledger,
    blocks: &mut Vec<Block>,
    txs: Vec<Vec<u8>>,
) -> Vec<vouch_ledger::TxOutcome> {
    let height = l.height() + 1;
    let block = Block {
        height,
        time_ms: 1_000 * height,
        txs,
    };
    let out = l.apply_block(&block).unwrap();
    blocks.push(block);
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn disputes_and_appeals_conserve_supply_and_convict_each_receipt_once(
        steps in proptest::collection::vec(step(), 1..60)
    ) {
        let g = genesis();
        let mut l = Ledger::genesis(&g);
        let supply = l.supply();
        let mut blocks = Vec::new();
        // Past the beacon block of receipts stamped at 1 ms.
        while l.beacon_after(1).is_err() {
            apply(&mut l, &mut blocks, vec![]);
        }
        let mut convicted: BTreeSet<Digest> = BTreeSet::new();
        let mut settled: BTreeMap<Digest, Ruling> = BTreeMap::new();
        for s in steps.iter().chain(std::iter::repeat_n(&Step::Empty, 20)) {
            let made = tx(&l, s);
            let before = l.clone();
            let out = apply(&mut l, &mut blocks, made.iter().map(|(t, _)| t.clone()).collect());
            prop_assert_eq!(l.supply() + l.burned(), supply, "supply after {:?}", s);
            let newly: Vec<(Digest, Ruling)> = l
                .rulings()
                .iter()
                .filter(|(r, _)| !settled.contains_key(r))
                .copied()
                .collect();
            for (receipt, ruling) in &newly {
                prop_assert!(convicted.contains(receipt), "a ruling on a receipt never convicted");
                settled.insert(*receipt, *ruling);
            }
            if let Some((_, Some((receipt, executor)))) = &made {
                let e = key(*executor).public();
                if out[0].is_ok() {
                    prop_assert!(convicted.insert(*receipt), "receipt {} convicted twice", receipt);
                    if newly.is_empty() {
                        // Exactly the slash fraction of what was at risk
                        // once the block's matured stake had returned.
                        let op = &before.operators()[&e];
                        let at_risk = op.stake
                            + op.unbonding.iter().filter(|(at, _)| *at > l.height()).map(|(_, a)| a).sum::<u64>();
                        let want = u128::from(at_risk) * u128::from(before.params().slash_bp) / 10_000;
                        let taken = l.operators()[&e].slashed - op.slashed;
                        prop_assert_eq!(u128::from(taken), want, "before {:?} after {:?}", op, &l.operators()[&e]);
                        prop_assert_eq!(l.pending_convictions()[receipt].taken, taken);
                    }
                }
            }
            // An overturned conviction gave back what it took.
            if let [(receipt, Ruling::Overturned)] = newly.as_slice() {
                let c = &before.pending_convictions()[receipt];
                let after = &l.operators()[&c.executor];
                prop_assert_eq!(after.stake, before.operators()[&c.executor].stake + c.taken);
            }
        }
        // Every conviction became final, once.
        prop_assert!(l.pending_convictions().is_empty());
        prop_assert_eq!(settled.len(), convicted.len());
        // The same blocks again: the same state.
        let mut again = Ledger::genesis(&g);
        for b in &blocks {
            again.apply_block(b).unwrap();
        }
        prop_assert_eq!(again.state_root(), l.state_root());
    }
}
