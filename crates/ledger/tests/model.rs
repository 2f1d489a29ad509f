//! The ledger against a reference model written separately and plainly
//! (signed integers, no early returns shared with the ledger): random
//! sequences of transactions, valid and not, applied in random blocks. After
//! every block each account's balance, escrow, nonce and stake match the
//! model, nothing is negative, and the supply plus what was burned is the
//! genesis supply. Replaying the same blocks gives the same state root.

use std::collections::HashMap;

use proptest::prelude::*;
use vouch_ledger::{Block, Genesis, Ledger, Offer, Params, Tx, TxBody, Voucher};
use vouch_types::SecretKey;

const KEYS: usize = 5;
const CHAIN: &str = "model-test";

fn key(i: usize) -> SecretKey {
    SecretKey::from_bytes(&[i as u8 + 1; 32])
}

/// What a test step does.
#[derive(Clone, Debug)]
enum Step {
    Transfer(usize, usize, u64),
    Deposit(usize, u64),
    Withdraw(usize, u64),
    Register(usize),
    Bond(usize, u64),
    Unbond(usize, u64),
    /// `client` pays `operator` by voucher: cumulative = settled + `more`.
    Pay {
        client: usize,
        operator: usize,
        more: u64,
    },
    /// The last transaction sent, sent again.
    Replay,
    /// Bytes that are not a transaction.
    Garbage(Vec<u8>),
    /// A valid transaction with a nonce from the future.
    FutureNonce(usize),
    /// Ends the block.
    EndBlock,
}

fn step() -> impl Strategy<Value = Step> {
    let k = 0..KEYS;
    let amount = prop_oneof![0u64..5, 0u64..200, 0u64..5_000];
    prop_oneof![
        4 => (k.clone(), k.clone(), amount.clone()).prop_map(|(a, b, x)| Step::Transfer(a, b, x)),
        2 => (k.clone(), amount.clone()).prop_map(|(a, x)| Step::Deposit(a, x)),
        1 => (k.clone(), amount.clone()).prop_map(|(a, x)| Step::Withdraw(a, x)),
        1 => k.clone().prop_map(Step::Register),
        2 => (k.clone(), amount.clone()).prop_map(|(a, x)| Step::Bond(a, x)),
        1 => (k.clone(), amount.clone()).prop_map(|(a, x)| Step::Unbond(a, x)),
        3 => (k.clone(), k.clone(), 0u64..300).prop_map(|(client, operator, more)| Step::Pay { client, operator, more }),
        1 => Just(Step::Replay),
        1 => proptest::collection::vec(any::<u8>(), 0..80).prop_map(Step::Garbage),
        1 => k.clone().prop_map(Step::FutureNonce),
        3 => Just(Step::EndBlock),
    ]
}

/// The reference: what each account and operator should hold.
#[derive(Default, Debug)]
struct Model {
    height: u64,
    balance: HashMap<usize, i128>,
    escrow: HashMap<usize, i128>,
    nonce: HashMap<usize, u64>,
    /// Registered operators' stake.
    stake: HashMap<usize, i128>,
    /// (height it returns at, account, amount) for unbonding stake and
    /// withdrawn escrow alike.
    returning: Vec<(u64, usize, i128, bool)>,
    settled: HashMap<(usize, usize), i128>,
    /// The fee split's shares: the treasury's and the auditors' pool's.
    treasury: i128,
    pool: i128,
}

impl Model {
    fn bal(&self, k: usize) -> i128 {
        self.balance.get(&k).copied().unwrap_or(0)
    }
    fn esc(&self, k: usize) -> i128 {
        self.escrow.get(&k).copied().unwrap_or(0)
    }

    /// The outcome of a signed action with the right nonce: true when the
    /// ledger must accept it; the model changes only then.
    fn act(&mut self, signer: usize, step: &Step, params: &Params) -> bool {
        *self.nonce.entry(signer).or_default() += 1;
        match *step {
            Step::Transfer(_, to, x) => {
                if x == 0 || self.bal(signer) < x as i128 {
                    return false;
                }
                *self.balance.entry(signer).or_default() -= x as i128;
                *self.balance.entry(to).or_default() += x as i128;
            }
            Step::Deposit(_, x) => {
                if x == 0 || self.bal(signer) < x as i128 {
                    return false;
                }
                *self.balance.entry(signer).or_default() -= x as i128;
                *self.escrow.entry(signer).or_default() += x as i128;
            }
            Step::Withdraw(_, x) => {
                if x == 0 || self.esc(signer) < x as i128 {
                    return false;
                }
                *self.escrow.entry(signer).or_default() -= x as i128;
                self.returning
                    .push((self.height + params.escrow_delay, signer, x as i128, false));
            }
            Step::Register(_) => {
                if self.stake.contains_key(&signer) {
                    return false;
                }
                self.stake.insert(signer, 0);
            }
            Step::Bond(_, x) => {
                if !self.stake.contains_key(&signer) || x == 0 || self.bal(signer) < x as i128 {
                    return false;
                }
                *self.balance.entry(signer).or_default() -= x as i128;
                *self.stake.get_mut(&signer).unwrap() += x as i128;
            }
            Step::Unbond(_, x) => {
                let Some(s) = self.stake.get(&signer).copied() else {
                    return false;
                };
                if x == 0 || s < x as i128 {
                    return false;
                }
                *self.stake.get_mut(&signer).unwrap() -= x as i128;
                self.returning.push((
                    self.height + params.unbonding_delay,
                    signer,
                    x as i128,
                    true,
                ));
            }
            Step::Pay { client, more, .. } => {
                // `signer` is the operator redeeming.
                let operator = signer;
                if !self.stake.contains_key(&operator)
                    || more == 0
                    || self.esc(client) < more as i128
                {
                    return false;
                }
                *self.escrow.entry(client).or_default() -= more as i128;
                // Shares rounded down; the operator keeps the rest.
                let pool = more as i128 * params.fee_auditors_bp as i128 / 10_000;
                let treasury = more as i128 * params.fee_treasury_bp as i128 / 10_000;
                self.pool += pool;
                self.treasury += treasury;
                *self.balance.entry(operator).or_default() += more as i128 - pool - treasury;
                *self.settled.entry((client, operator)).or_default() += more as i128;
            }
            _ => unreachable!("not an action"),
        }
        true
    }

    fn next_block(&mut self) {
        self.height += 1;
        let h = self.height;
        let (due, rest): (Vec<_>, Vec<_>) = self.returning.iter().partition(|r| r.0 <= h);
        self.returning = rest;
        for (_, k, x, _) in due {
            *self.balance.entry(k).or_default() += x;
        }
    }
}

fn genesis() -> (Genesis, u64) {
    let params = Params {
        unbonding_delay: 3,
        escrow_delay: 2,
        fee_auditors_bp: 700,
        fee_treasury_bp: 1_300,
        ..Params::default()
    };
    let accounts: Vec<_> = (0..KEYS)
        .map(|i| (key(i).public(), 1_000 * (i as u64 + 1)))
        .collect();
    let supply = accounts.iter().map(|(_, x)| x).sum();
    (
        Genesis {
            chain_id: CHAIN.into(),
            params,
            accounts,
            operators: vec![],
        },
        supply,
    )
}

fn check(ledger: &Ledger, model: &Model, supply: u64) {
    for i in 0..KEYS {
        let a = ledger.account(&key(i).public());
        assert_eq!(a.balance as i128, model.bal(i), "balance of {i}");
        assert_eq!(a.escrow as i128, model.esc(i), "escrow of {i}");
        assert_eq!(
            a.nonce,
            model.nonce.get(&i).copied().unwrap_or(0),
            "nonce of {i}"
        );
        let stake = ledger
            .operators()
            .get(&key(i).public())
            .map(|o| o.stake as i128);
        assert_eq!(stake, model.stake.get(&i).copied(), "stake of {i}");
    }
    assert_eq!(ledger.treasury() as i128, model.treasury, "treasury");
    assert_eq!(ledger.auditors_pool() as i128, model.pool, "auditors' pool");
    assert_eq!(
        ledger.supply() + ledger.burned(),
        supply,
        "supply is conserved"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn the_ledger_agrees_with_the_reference(steps in proptest::collection::vec(step(), 1..120)) {
        let (g, supply) = genesis();
        let mut ledger = Ledger::genesis(&g);
        let mut model = Model::default();
        for (i, (_, x)) in g.accounts.iter().enumerate() {
            model.balance.insert(i, *x as i128);
        }
        let mut blocks: Vec<Block> = Vec::new();
        let mut txs: Vec<Vec<u8>> = Vec::new();
        let mut expected: Vec<bool> = Vec::new();
        let mut last: Option<Vec<u8>> = None;
        // Whether the model has opened the block being built: a block's
        // maturities come before its first transaction.
        let mut opened = false;
        let steps = steps.iter().chain(std::iter::once(&Step::EndBlock));
        for s in steps {
            if let Step::EndBlock = s {
                if !opened {
                    model.next_block();
                }
                opened = false;
                let height = ledger.height() + 1;
                let block = Block { height, time_ms: 1_000 * height, txs: std::mem::take(&mut txs) };
                let outcomes = ledger.apply_block(&block).unwrap();
                prop_assert_eq!(outcomes.len(), expected.len());
                for (n, (o, want)) in outcomes.iter().zip(expected.iter()).enumerate() {
                    prop_assert_eq!(o.is_ok(), *want, "tx {} of block {}: {:?}", n, height, o);
                }
                expected.clear();
                blocks.push(block);
                check(&ledger, &model, supply);
                continue;
            }
            if !opened {
                model.next_block();
                opened = true;
            }
            let signed = |signer: usize, nonce: u64, body: TxBody| {
                Tx::sign(CHAIN, &key(signer), nonce, body).encode()
            };
            let nonce = |m: &Model, k: usize| m.nonce.get(&k).copied().unwrap_or(0);
            let (bytes, ok) = match s {
                Step::Replay => match &last {
                    Some(b) => (b.clone(), false),
                    None => continue,
                },
                Step::Garbage(b) => (b.clone(), false),
                Step::FutureNonce(k) => (
                    signed(*k, nonce(&model, *k) + 1, TxBody::Deposit { amount: 1 }),
                    false,
                ),
                Step::Pay { client, operator, more } => {
                    let settled = model.settled.get(&(*client, *operator)).copied().unwrap_or(0) as u64;
                    let v = Voucher::sign(CHAIN, &key(*client), &key(*operator).public(), settled + more);
                    let b = signed(*operator, nonce(&model, *operator), TxBody::Redeem { vouchers: vec![v] });
                    (b, model.act(*operator, s, &g.params))
                }
                Step::Transfer(a, to, x) => (
                    signed(*a, nonce(&model, *a), TxBody::Transfer { to: key(*to).public(), amount: *x }),
                    model.act(*a, s, &g.params),
                ),
                Step::Deposit(a, x) => (
                    signed(*a, nonce(&model, *a), TxBody::Deposit { amount: *x }),
                    model.act(*a, s, &g.params),
                ),
                Step::Withdraw(a, x) => (
                    signed(*a, nonce(&model, *a), TxBody::Withdraw { amount: *x }),
                    model.act(*a, s, &g.params),
                ),
                Step::Register(a) => (
                    signed(*a, nonce(&model, *a), TxBody::Register(Offer::default())),
                    model.act(*a, s, &g.params),
                ),
                Step::Bond(a, x) => (
                    signed(*a, nonce(&model, *a), TxBody::Bond { amount: *x }),
                    model.act(*a, s, &g.params),
                ),
                Step::Unbond(a, x) => (
                    signed(*a, nonce(&model, *a), TxBody::Unbond { amount: *x }),
                    model.act(*a, s, &g.params),
                ),
                Step::EndBlock => unreachable!("handled above"),
            };
            last = Some(bytes.clone());
            txs.push(bytes);
            expected.push(ok);
        }
        // Anyone applying the same blocks holds the same state.
        let mut again = Ledger::genesis(&g);
        for b in &blocks {
            again.apply_block(b).unwrap();
        }
        prop_assert_eq!(again.state_root(), ledger.state_root());
        prop_assert_eq!(&again, &ledger);
    }
}
