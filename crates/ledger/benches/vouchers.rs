//! Vouchers settled per second, and the state a million of them leave.
//!
//! 10,000 clients each deposit into escrow; then rounds of one `Redeem`
//! transaction carrying the newest voucher of every client (10,000, the
//! most one transaction may carry) are applied, each round raising every
//! client's cumulative amount. Baselines, measured in the same run on the
//! same signatures: verifying the vouchers' ed25519 signatures alone, on
//! one core and on all of them (as redemption does), which redemption must
//! do and cannot do in less. Prints a Markdown table and, with
//! `VOUCH_BENCH_OUT=FILE`, the raw numbers as JSON.
//!
//!   cargo bench --profile dev -p vouch-ledger --bench vouchers

use std::time::Instant;

use vouch_ledger::{Block, Genesis, Ledger, Offer, Params, Tx, TxBody, Voucher};
use vouch_types::SecretKey;

const CHAIN: &str = "bench";
const CLIENTS: usize = 10_000;
const ROUNDS: usize = 5;

fn key(i: usize) -> SecretKey {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&(i as u64 + 1).to_le_bytes());
    SecretKey::from_bytes(&seed)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn main() {
    let operator = key(usize::MAX - 1);
    let clients: Vec<SecretKey> = (0..CLIENTS).map(key).collect();
    let mut accounts: Vec<_> = clients.iter().map(|c| (c.public(), 1_000_000)).collect();
    accounts.push((operator.public(), 1_000_000));
    let mut ledger = Ledger::genesis(&Genesis {
        chain_id: CHAIN.into(),
        params: Params::default(),
        accounts,
        operators: vec![(operator.public(), 10_000, Offer::default())],
    });
    let deposits = clients
        .iter()
        .map(|c| Tx::sign(CHAIN, c, 0, TxBody::Deposit { amount: 1_000_000 }).encode())
        .collect();
    let outcomes = ledger
        .apply_block(&Block {
            height: 1,
            time_ms: 1,
            txs: deposits,
        })
        .unwrap();
    assert!(outcomes.iter().all(Result::is_ok));
    let state_before = ledger.encode().len();

    let (mut redeem_s, mut verify_s, mut verify_all_s) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS as u64 {
        let vouchers: Vec<Voucher> = clients
            .iter()
            .map(|c| Voucher::sign(CHAIN, c, &operator.public(), round * 10))
            .collect();
        // Baselines: the signatures alone, on one core and on all.
        let t = Instant::now();
        assert!(vouchers.iter().all(|v| v.verify(CHAIN, &operator.public())));
        verify_s.push(t.elapsed().as_secs_f64());
        let t = Instant::now();
        {
            use rayon::prelude::*;
            assert!(
                vouchers
                    .par_iter()
                    .all(|v| v.verify(CHAIN, &operator.public()))
            );
        }
        verify_all_s.push(t.elapsed().as_secs_f64());
        let tx = Tx::sign(CHAIN, &operator, round - 1, TxBody::Redeem { vouchers }).encode();
        // Block 1 holds the deposits.
        let height = round + 1;
        let block = Block {
            height,
            time_ms: height,
            txs: vec![tx],
        };
        let t = Instant::now();
        let outcomes = ledger.apply_block(&block).unwrap();
        redeem_s.push(t.elapsed().as_secs_f64());
        assert!(outcomes[0].is_ok(), "{outcomes:?}");
    }
    let state_after = ledger.encode().len();
    // Everything the vouchers promised was settled (the operator keeps
    // its share of it, the fee split the rest).
    assert_eq!(ledger.fees(), (ROUNDS as u64 * 10) * CLIENTS as u64);
    let redeem = median(redeem_s.clone());
    let verify = median(verify_s.clone());
    let verify_all = median(verify_all_s.clone());
    let threads = rayon::current_num_threads();
    println!(
        "| vouchers ({CLIENTS} clients, one Redeem of {CLIENTS} per block, median of {ROUNDS}; {threads} threads) | per second | ratio |"
    );
    println!("|---|---|---|");
    println!(
        "| ed25519 verification of the vouchers alone, one core | {:.0} | {:.2}x the baseline's time |",
        CLIENTS as f64 / verify,
        verify / verify_all
    );
    println!(
        "| ed25519 verification of the vouchers alone, all cores (baseline) | {:.0} | 1.00x |",
        CLIENTS as f64 / verify_all
    );
    println!(
        "| applying the Redeem (decode, tx signature, every voucher on all cores, escrow, payment) | {:.0} | {:.2}x the baseline's time |",
        CLIENTS as f64 / redeem,
        redeem / verify_all
    );
    println!(
        "\nstate: {state_before} bytes with {CLIENTS} clients in escrow, {state_after} after {} settled vouchers ({} bytes more: one entry per client-operator pair, whatever the number of vouchers)",
        ROUNDS * CLIENTS,
        state_after - state_before
    );
    if let Some(path) = std::env::var_os("VOUCH_BENCH_OUT") {
        let json = serde_json::json!({"clients": CLIENTS, "rounds": ROUNDS,
            "redeem_s": redeem_s, "verify_s": verify_s, "verify_all_cores_s": verify_all_s,
            "threads": threads,
            "vouchers_per_s": CLIENTS as f64 / redeem, "verify_per_s": CLIENTS as f64 / verify,
            "verify_all_cores_per_s": CLIENTS as f64 / verify_all,
            "state_bytes_before": state_before, "state_bytes_after": state_after});
        std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
}
