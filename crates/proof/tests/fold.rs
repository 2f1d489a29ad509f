//! The changes to the vendored curve code (`vendor/README.md`), each
//! against the plain scalar multiplications it must equal:
//!
//! - nova-snark's inner-product argument folds its generators with
//!   `fold_bases`, Straus's method over the two challenges' wNAFs and one
//!   inversion per chunk, and on Pallas with `combine_bases_glv`, one
//!   addition chain over the halves GLV's endomorphism splits the
//!   challenges into, shared by a batch of sums in affine coordinates: for
//!   challenges of every size and sign, the identity among the bases,
//!   equal and opposite points where the chain meets them, sums of more
//!   than two terms, and lengths around the chunk and batch sizes;
//! - halo2curves' `msm_best` takes its batched-affine path from 1,097
//!   points (it did from 8,104): around that bound, with bases repeated
//!   and negated so that its buckets meet doublings and cancellations.

use ff::{Field, PrimeField, WithSmallOrderMulGroup};
use halo2curves::group::prime::PrimeCurveAffine;
use halo2curves::group::{Curve, Group};
use halo2curves::pasta::{Fq, Pallas, PallasAffine};
use nova_snark::provider::msm::{FoldBases, combine_bases_glv, fold_bases, msm};

/// Scalars of every kind: zero, one, minus one, small, one bit below a
/// window, and full-size ones.
fn scalars() -> Vec<Fq> {
    let mut s = vec![
        Fq::ZERO,
        Fq::ONE,
        -Fq::ONE,
        Fq::from(2),
        Fq::from(15),
        Fq::from(16),
        -Fq::from(17),
        Fq::from(u64::MAX),
        Fq::from(u64::MAX) * Fq::from(u64::MAX),
        // Where GLV's split of a challenge has edges: the cube roots of
        // unity, and halves at and around 128 bits.
        Fq::ZETA,
        -Fq::ZETA,
        Fq::ZETA.square(),
        Fq::from_u128(u128::MAX),
        Fq::from_u128(1 << 127),
        Fq::ZETA * Fq::from_u128(u128::MAX) + Fq::ONE,
        -(Fq::ZETA * Fq::from_u128(1 << 127)),
    ];
    let mut x = Fq::from(7);
    for i in 0..12 {
        x = x.square() + Fq::from(i);
        s.push(x);
        s.push(-x);
    }
    s
}

/// `n` distinct points, with the identity at index 3.
fn bases(n: usize, seed: u64) -> Vec<PallasAffine> {
    let mut k = Fq::from(seed);
    (0..n)
        .map(|i| {
            k = k.square() + Fq::ONE;
            if i == 3 {
                PallasAffine::identity()
            } else {
                (Pallas::generator() * k).to_affine()
            }
        })
        .collect()
}

type Fold = fn(&Fq, &[PallasAffine], &Fq, &[PallasAffine]) -> Vec<PallasAffine>;

/// A fold as a two-term sum of `combine_bases_glv`.
fn combine_two(w1: &Fq, l: &[PallasAffine], w2: &Fq, r: &[PallasAffine]) -> Vec<PallasAffine> {
    combine_bases_glv(&[(*w1, l), (*w2, r)])
}

/// Both folds: by wNAFs alone, and by GLV's endomorphism in batches (what
/// nova-snark folds Pallas generators with, through `FoldBases`).
fn folds() -> [(&'static str, Fold); 3] {
    [
        ("fold_bases", fold_bases::<PallasAffine>),
        ("combine_bases_glv", combine_two),
        ("FoldBases", <PallasAffine as FoldBases>::fold),
    ]
}

#[test]
fn folded_bases_are_the_two_scalar_multiplications_they_replace() {
    let scalars = scalars();
    for (name, fold) in folds() {
        for (n, (w1, w2)) in [5usize, 255, 256, 257, 1023, 1024, 1025, 2100]
            .into_iter()
            .zip(scalars.iter().zip(scalars.iter().rev()))
        {
            let (l, r) = (bases(n, n as u64), bases(n, 3 * n as u64 + 1));
            let folded = fold(w1, &l, w2, &r);
            assert_eq!(folded.len(), n);
            for i in 0..n {
                assert_eq!(
                    folded[i],
                    (l[i] * w1 + r[i] * w2).to_affine(),
                    "{name}, n {n}, base {i}"
                );
            }
        }
        // Every pair of challenges, over a few bases.
        let (l, r) = (bases(6, 11), bases(6, 12));
        for w1 in &scalars {
            for w2 in &scalars {
                let folded = fold(w1, &l, w2, &r);
                for i in 0..l.len() {
                    assert_eq!(folded[i], (l[i] * w1 + r[i] * w2).to_affine(), "{name}");
                }
            }
        }
    }
}

#[test]
fn sums_meet_equal_and_opposite_points_and_take_any_number_of_terms() {
    let scalars = scalars();
    let (l, r) = (bases(300, 21), bases(300, 22));
    // The inner-product argument's fold: `l + w·r`. Where `l` is `-w·r`,
    // the chain's last step adds opposite points (the sum is the
    // identity); where `l` and `r` are one point and `w` is 1, its first
    // addition is a doubling; where they are opposite, it is the identity.
    for (k, w) in scalars.iter().enumerate() {
        let l: Vec<PallasAffine> = (0..l.len())
            .map(|i| match (i + k) % 4 {
                0 => (-(r[i] * w)).to_affine(),
                1 if *w == Fq::ONE => r[i],
                2 if *w == Fq::ONE => -r[i],
                _ => l[i],
            })
            .collect();
        let sums = combine_bases_glv(&[(Fq::ONE, &l), (*w, &r)]);
        for i in 0..l.len() {
            assert_eq!(sums[i], (l[i] + r[i] * w).to_affine(), "w {k}, base {i}");
        }
    }
    let pairs = combine_bases_glv(&[(Fq::ONE, &l), (Fq::ONE, &l)]);
    let opposite: Vec<PallasAffine> = l.iter().map(|p| -*p).collect();
    let zeros = combine_bases_glv(&[(Fq::ONE, &l), (Fq::ONE, &opposite)]);
    for i in 0..l.len() {
        assert_eq!(pairs[i], (l[i] + l[i]).to_affine(), "doubled, base {i}");
        assert!(bool::from(zeros[i].is_identity()), "cancelled, base {i}");
    }
    // Sums of one to eight terms, as folding several rounds at once takes.
    for terms in 1..=8usize {
        let bases: Vec<Vec<PallasAffine>> =
            (0..terms).map(|t| bases(257, 100 + t as u64)).collect();
        let ws: Vec<Fq> = (0..terms)
            .map(|t| scalars[(5 * t + terms) % scalars.len()])
            .collect();
        let given: Vec<(Fq, &[PallasAffine])> =
            ws.iter().zip(&bases).map(|(w, b)| (*w, &b[..])).collect();
        let sums = combine_bases_glv(&given);
        for i in 0..257 {
            let want = ws
                .iter()
                .zip(&bases)
                .fold(Pallas::identity(), |acc, (w, b)| acc + b[i] * w);
            assert_eq!(sums[i], want.to_affine(), "{terms} terms, base {i}");
        }
    }
    assert!(combine_bases_glv::<PallasAffine>(&[]).is_empty());
}

#[test]
fn a_multi_scalar_multiplication_is_the_sum_of_its_products() {
    let edge = scalars();
    for n in [1096usize, 1097, 2048, 4100] {
        // Few distinct bases, some negated, so that a bucket meets the
        // base it holds (a doubling) or its negation (the identity).
        let distinct = bases(40, n as u64);
        let bases: Vec<PallasAffine> = (0..n)
            .map(|i| {
                let b = distinct[(i * 7) % distinct.len()];
                if i % 5 == 0 { -b } else { b }
            })
            .filter(|b| !bool::from(b.is_identity()))
            .collect();
        let mut k = Fq::from(n as u64 + 5);
        let coeffs: Vec<Fq> = (0..bases.len())
            .map(|i| match i % 4 {
                0 => edge[(i / 4) % edge.len()],
                1 => Fq::from((i % 3) as u64 + 1),
                _ => {
                    k = k.square() + Fq::ONE;
                    k
                }
            })
            .collect();
        let want = bases
            .iter()
            .zip(&coeffs)
            .fold(Pallas::identity(), |acc, (b, k)| acc + *b * k);
        assert_eq!(
            halo2curves::msm::msm_best(&coeffs, &bases),
            want,
            "msm_best, {n} points"
        );
        assert_eq!(msm(&coeffs, &bases), want, "nova's msm, {n} points");
    }
}
