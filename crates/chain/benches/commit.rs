//! Commit latency on 4 validators over loopback TCP, each on its own
//! Commonware Tokio runtime (as in a node): the time from a transfer's
//! submission to a validator until that validator has applied it, measured
//! by polling its ledger every 200 µs. Includes waiting for the validator's
//! turn to lead (round-robin over 4). Baseline, in the same run: the same
//! with one validator, where every view is its own. Prints a Markdown table;
//! `VOUCH_BENCH_OUT=FILE` writes the raw samples as JSON.
//!
//!   cargo bench --profile dev -p vouch-chain --bench commit

use std::time::{Duration, Instant};

use vouch_chain::{Chain, ChainConfig, validator::Validator};
use vouch_ledger::{Genesis, Offer, Params, Tx, TxBody};
use vouch_types::SecretKey;

const SAMPLES: usize = 200;

fn key(i: u8) -> SecretKey {
    SecretKey::from_bytes(&[i + 1; 32])
}

/// Starts `n` validators on loopback; their chains.
fn network(n: u8, dir: &std::path::Path) -> Vec<Chain> {
    let genesis = Genesis {
        chain_id: format!("bench-{n}"),
        params: Params::default(),
        accounts: (0..n).map(|i| (key(i).public(), 1_000_000_000)).collect(),
        operators: (0..n)
            .map(|i| (key(i).public(), 10_000, Offer::default()))
            .collect(),
    };
    // Chosen here, as the validators name each other's ports (below the
    // ephemeral range: nothing binding port 0 meanwhile can take one).
    let ports = vouch_chain::local_ports(usize::from(n)).unwrap();
    let validators: Vec<_> = (0..n)
        .map(|i| vouch_chain::consensus_key(&key(i).public()))
        .collect();
    (0..n)
        .map(|i| {
            let chain = Chain::new(&genesis);
            let at = |i: u8| format!("127.0.0.1:{}", ports[i as usize]).parse().unwrap();
            Validator {
                chain: chain.clone(),
                config: ChainConfig {
                    signer: vouch_chain::consensus_signer(&key(i)),
                    partition: "consensus".into(),
                    leader_timeout: Duration::from_secs(1),
                    empty_block_interval: Duration::from_secs(3600),
                },
                listen: at(i),
                bootstrappers: if i == 0 {
                    vec![]
                } else {
                    vec![(validators[0].clone(), at(0))]
                },
                storage: dir.join(format!("v{n}-{i}")),
            }
            .spawn()
            .unwrap();
            chain
        })
        .collect()
}

/// Commit latencies in milliseconds: transfers submitted in turn to each
/// validator, one at a time, after five to warm up.
fn latencies(chains: &[Chain]) -> Vec<f64> {
    let payee = key(200).public();
    let chain_id = chains[0].read(|l| l.chain_id().to_string());
    let mut nonces = vec![0u64; chains.len()];
    let mut out = Vec::new();
    for s in 0..SAMPLES + 5 {
        let i = s % chains.len();
        let body = TxBody::Transfer {
            to: payee,
            amount: 1,
        };
        let tx = Tx::sign(&chain_id, &key(i as u8), nonces[i], body);
        nonces[i] += 1;
        let from = key(i as u8).public();
        let t = Instant::now();
        chains[i].submit(tx.encode()).unwrap();
        while chains[i].read(|l| l.account(&from).nonce) < nonces[i] {
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "no commit within a minute"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        if s >= 5 {
            out.push(t.elapsed().as_secs_f64() * 1e3);
        }
    }
    out
}

fn pct(xs: &[f64], p: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    v[((v.len() - 1) as f64 * p).round() as usize]
}

fn main() {
    // The validators' journals, in cargo's scratch directory: they run
    // until the process exits, so they outlive `main`'s locals.
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("commit-bench");
    let _ = std::fs::remove_dir_all(&dir);
    let solo = latencies(&network(1, &dir));
    let four = latencies(&network(4, &dir));
    println!(
        "| commit latency, submit to applied on the same validator ({SAMPLES} transfers) | p50 ms | p99 ms |"
    );
    println!("|---|---|---|");
    println!(
        "| 1 validator (baseline) | {:.1} | {:.1} |",
        pct(&solo, 0.5),
        pct(&solo, 0.99)
    );
    println!(
        "| 4 validators, loopback TCP, round-robin leaders | {:.1} | {:.1} |",
        pct(&four, 0.5),
        pct(&four, 0.99)
    );
    if let Some(path) = std::env::var_os("VOUCH_BENCH_OUT") {
        let json = serde_json::json!({"samples": SAMPLES, "one_ms": solo, "four_ms": four});
        std::fs::write(path, serde_json::to_string_pretty(&json).unwrap()).unwrap();
    }
    // The validator threads never return: end the process here.
    std::process::exit(0);
}
