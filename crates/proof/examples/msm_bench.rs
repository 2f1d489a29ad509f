//! The vendored halo2curves change (`vendor/README.md`): `msm_best` takes
//! its batched-affine path from 1,097 points, where the published crate
//! ran projective buckets (`msm_parallel`) up to 8,103. Both are timed in
//! the same binary on the same full-size scalars and bases, rounds
//! interleaved; a verifier's multi-scalar multiplication is 4,096 points
//! for the MNIST MLP.
//!
//!   cargo run -p vouch-proof --example msm_bench [ROUNDS]
//!
//! Prints one JSON object per round and size, then the medians. Built with
//! the workspace's dev profile (dependencies at opt-level 3,
//! `-C target-cpu=native`); both run on every core (rayon).

use std::time::Instant;

use ff::Field;
use halo2curves::group::Curve;
use halo2curves::msm::{msm_best, msm_parallel};
use halo2curves::pasta::{Fq, Pallas, PallasAffine};

/// Mean milliseconds of `f` over enough calls to fill about half a second.
fn time(mut f: impl FnMut() -> Pallas) -> f64 {
    let t = Instant::now();
    let mut calls = 0;
    while t.elapsed().as_secs_f64() < 0.5 {
        std::hint::black_box(f());
        calls += 1;
    }
    t.elapsed().as_secs_f64() * 1e3 / calls as f64
}

fn main() {
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5);
    let sizes = [1024usize, 2048, 4096, 8192];
    let mut k = Fq::from(7);
    let mut scalar = || {
        k = k.square() + Fq::ONE;
        k
    };
    let data: Vec<(Vec<Fq>, Vec<PallasAffine>)> = sizes
        .iter()
        .map(|&n| {
            let coeffs: Vec<Fq> = (0..n).map(|_| scalar()).collect();
            let points: Vec<Pallas> = (0..n).map(|_| Pallas::generator() * scalar()).collect();
            let mut bases = vec![PallasAffine::default(); n];
            Pallas::batch_normalize(&points, &mut bases);
            (coeffs, bases)
        })
        .collect();
    let mut results: Vec<(Vec<f64>, Vec<f64>)> = vec![Default::default(); sizes.len()];
    for round in 0..rounds {
        for (i, (coeffs, bases)) in data.iter().enumerate() {
            assert_eq!(msm_parallel(coeffs, bases), msm_best(coeffs, bases));
            let projective = time(|| msm_parallel(coeffs, bases));
            let best = time(|| msm_best(coeffs, bases));
            println!(
                "{}",
                serde_json::json!({"round": round, "points": sizes[i], "projective_ms": projective, "msm_best_ms": best})
            );
            results[i].0.push(projective);
            results[i].1.push(best);
        }
    }
    let median = |v: &[f64]| {
        let mut v = v.to_vec();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    println!("\n| points | projective buckets, ms | msm_best (patched), ms | ratio |");
    println!("|---|---|---|---|");
    for (i, (p, b)) in results.iter().enumerate() {
        let (p, b) = (median(p), median(b));
        println!("| {} | {p:.2} | {b:.2} | {:.2}x |", sizes[i], p / b);
    }
}
