//! The trace commitment: a Merkle tree over per-step leaf digests, shaped as
//! in RFC 6962 (the left subtree holds the largest power of two strictly
//! below the leaf count), with domain-separated leaf and node hashes.
//!
//! A leaf is `H_leaf(index u64, step name, output count u32, each output's
//! tensor header followed by the digest of its element bytes)`; an inner
//! node is `H_node(left || right)`; the root of one leaf is that leaf; the
//! root of no leaves is `H_node("")`.
//!
//! Committing to each output's element bytes by their own digest
//! ([`tensor_data`]) lets an engine reuse that digest where a step only
//! relabels its input's shape, and lets a dispute name one tensor.

use crate::digest::{Digest, Hasher, Kind};
use crate::encode::{Sink, len_u32};
use crate::tensor::{DType, encode_header};

/// Builds one trace leaf incrementally, so an engine can hash tensors it
/// holds without copying them.
pub struct LeafHasher {
    h: Hasher,
}

impl LeafHasher {
    /// Starts the leaf for step `index` named `name` with `outputs` tensors.
    pub fn new(index: u64, name: &str, outputs: usize) -> LeafHasher {
        let mut h = Hasher::new(Kind::TraceLeaf);
        h.put_u64(index);
        h.put_str(name);
        h.put_u32(len_u32(outputs));
        LeafHasher { h }
    }

    /// Adds one output tensor given as header fields and the digest of its
    /// little-endian element bytes ([`tensor_data`]).
    pub fn tensor(&mut self, dtype: DType, shape: &[u64], data: &Digest) {
        debug_assert_eq!(data.kind(), Kind::TensorData);
        encode_header(&mut self.h, dtype, shape);
        self.h.put(data.as_bytes());
    }

    /// Finishes the leaf digest.
    pub fn finish(self) -> Digest {
        self.h.finalize()
    }
}

/// The digest of a tensor's little-endian element bytes, as committed in a
/// trace leaf.
pub fn tensor_data(le_bytes: &[u8]) -> Digest {
    Digest::of(Kind::TensorData, le_bytes)
}

fn node(left: &Digest, right: &Digest) -> Digest {
    let mut h = Hasher::new(Kind::TraceNode);
    h.update(left.as_bytes()).update(right.as_bytes());
    h.finalize()
}

/// Largest power of two strictly less than `n` (n >= 2).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle root over `leaves`.
pub fn root(leaves: &[Digest]) -> Digest {
    match leaves.len() {
        0 => Digest::of(Kind::TraceNode, b""),
        1 => Digest::from_bytes(Kind::TraceNode, *leaves[0].as_bytes()),
        n => {
            let k = split(n);
            node(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The audit path for leaf `index`: sibling digests from the leaf upward.
/// `None` when `index` is out of range.
pub fn proof(leaves: &[Digest], index: usize) -> Option<Vec<Digest>> {
    if index >= leaves.len() {
        return None;
    }
    let mut path = Vec::new();
    let (mut lo, mut hi, mut i) = (0usize, leaves.len(), index);
    // Walk down, collecting siblings top-first, then reverse.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if i < k {
            path.push(root(&leaves[lo + k..hi]));
            hi = lo + k;
        } else {
            path.push(root(&leaves[lo..lo + k]));
            lo += k;
            i -= k;
        }
    }
    path.reverse();
    Some(path)
}

/// Checks that `leaf` sits at `index` of a tree of `len` leaves with `root`.
pub fn verify(root_digest: &Digest, len: u64, index: u64, leaf: &Digest, path: &[Digest]) -> bool {
    if index >= len {
        return false;
    }
    // Recompute from the bottom: at each level decide whether we are the
    // left or right child by replaying the splits from the top.
    let mut sides = Vec::new(); // true: the sibling is on the right
    let (mut lo, mut hi, mut i) = (0u64, len, index);
    while hi - lo > 1 {
        let k = split((hi - lo) as usize) as u64;
        if i < k {
            sides.push(true);
            hi = lo + k;
        } else {
            sides.push(false);
            lo += k;
            i -= k;
        }
    }
    if sides.len() != path.len() {
        return false;
    }
    let mut acc = Digest::from_bytes(Kind::TraceNode, *leaf.as_bytes());
    for (sib, right) in path.iter().zip(sides.iter().rev()) {
        acc = if *right {
            node(&acc, sib)
        } else {
            node(sib, &acc)
        };
    }
    acc.as_bytes() == root_digest.as_bytes()
}

/// The roots of the two halves of the subtree over `leaves[lo..hi]`
/// (`hi - lo >= 2`), split as [`root`] splits it.
pub fn children(leaves: &[Digest], lo: usize, hi: usize) -> Option<(Digest, Digest)> {
    if hi > leaves.len() || hi < lo + 2 {
        return None;
    }
    let mid = lo + split(hi - lo);
    Some((root(&leaves[lo..mid]), root(&leaves[mid..hi])))
}

/// Why a bisection step or replay failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BisectError {
    /// The two trees have the same root: there is nothing to bisect.
    #[error("the two traces have the same root: they do not differ")]
    SameRoot,
    /// The trees have different lengths or none at all.
    #[error("the traces have {0} and {1} steps; a bisection needs equal, non-zero lengths")]
    Lengths(u64, u64),
    /// Revealed children do not hash to their parent.
    #[error("party {party}'s children at level {level} do not hash to its parent")]
    BadChildren {
        /// `a` or `b`.
        party: char,
        /// Depth, 0 at the root.
        level: usize,
    },
    /// A revealed leaf does not match the subtree it ends in.
    #[error("party {0}'s leaf does not match the path it revealed")]
    BadLeaf(char),
    /// Steps were asked for after the bisection ended, or the end came early.
    #[error("the bisection has {0} levels; the record holds another number")]
    Depth(usize),
    /// Both leaves at the end are the same.
    #[error("the leaves reached are equal: the revealed paths contradict the roots")]
    SameLeaf,
}

/// One party's side of a finished bisection: the children it revealed at
/// each level, top down, and the leaf it revealed at the end.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Descent {
    /// (left, right) subtree roots, from the root down.
    pub levels: Vec<(Digest, Digest)>,
    /// The leaf at the index found.
    pub leaf: Digest,
}

/// A bisection between two traces of equal length, descending the Merkle
/// trees toward the first leaf where they differ. Where the left halves
/// agree the difference is on the right, and everything left of it is
/// proven equal by equal subtree roots; otherwise it is on the left. Each
/// level costs one round of reveals; [`first_difference`] replays a
/// finished one offline.
#[derive(Clone, Debug)]
pub struct Bisection {
    lo: u64,
    hi: u64,
    parents: (Digest, Digest),
    levels: Vec<((Digest, Digest), (Digest, Digest))>,
}

impl Bisection {
    /// Starts from both trace commitments.
    pub fn new(
        len_a: u64,
        root_a: Digest,
        len_b: u64,
        root_b: Digest,
    ) -> Result<Bisection, BisectError> {
        if len_a != len_b || len_a == 0 {
            return Err(BisectError::Lengths(len_a, len_b));
        }
        if root_a == root_b {
            return Err(BisectError::SameRoot);
        }
        Ok(Bisection {
            lo: 0,
            hi: len_a,
            parents: (root_a, root_b),
            levels: Vec::new(),
        })
    }

    /// The leaf range `[lo, hi)` whose children are wanted next, or `None`
    /// once one leaf is left (ask for the leaves at [`index`](Self::index)).
    pub fn next(&self) -> Option<(u64, u64)> {
        (self.hi - self.lo > 1).then_some((self.lo, self.hi))
    }

    /// The leaf index the bisection has narrowed to (final once
    /// [`next`](Self::next) is `None`).
    pub fn index(&self) -> u64 {
        self.lo
    }

    /// Takes both parties' children of the current range.
    pub fn step(&mut self, a: (Digest, Digest), b: (Digest, Digest)) -> Result<(), BisectError> {
        if self.next().is_none() {
            return Err(BisectError::Depth(self.levels.len()));
        }
        let level = self.levels.len();
        if node(&a.0, &a.1) != self.parents.0 {
            return Err(BisectError::BadChildren { party: 'a', level });
        }
        if node(&b.0, &b.1) != self.parents.1 {
            return Err(BisectError::BadChildren { party: 'b', level });
        }
        let mid = self.lo + split((self.hi - self.lo) as usize) as u64;
        if a.0 == b.0 {
            self.lo = mid;
            self.parents = (a.1, b.1);
        } else {
            self.hi = mid;
            self.parents = (a.0, b.0);
        }
        self.levels.push((a, b));
        Ok(())
    }

    /// Ends with both parties' leaves at [`index`](Self::index): each must
    /// match its revealed path, and they must differ.
    pub fn finish(
        self,
        leaf_a: Digest,
        leaf_b: Digest,
    ) -> Result<(u64, Descent, Descent), BisectError> {
        if self.next().is_some() {
            return Err(BisectError::Depth(self.levels.len()));
        }
        let as_node = |l: &Digest| Digest::from_bytes(Kind::TraceNode, *l.as_bytes());
        if as_node(&leaf_a) != self.parents.0 {
            return Err(BisectError::BadLeaf('a'));
        }
        if as_node(&leaf_b) != self.parents.1 {
            return Err(BisectError::BadLeaf('b'));
        }
        if leaf_a == leaf_b {
            return Err(BisectError::SameLeaf);
        }
        let (a, b) = self.levels.into_iter().unzip();
        Ok((
            self.lo,
            Descent {
                levels: a,
                leaf: leaf_a,
            },
            Descent {
                levels: b,
                leaf: leaf_b,
            },
        ))
    }
}

/// Replays a finished bisection: the index of the first leaf where two
/// traces (`len` leaves, roots `root_a` and `root_b`) differ, with every
/// leaf before it proven equal.
pub fn first_difference(
    len: u64,
    root_a: Digest,
    a: &Descent,
    root_b: Digest,
    b: &Descent,
) -> Result<u64, BisectError> {
    if a.levels.len() != b.levels.len() {
        return Err(BisectError::Depth(a.levels.len().max(b.levels.len())));
    }
    let mut bisection = Bisection::new(len, root_a, len, root_b)?;
    for (la, lb) in a.levels.iter().zip(&b.levels) {
        bisection.step(*la, *lb)?;
    }
    Ok(bisection.finish(a.leaf, b.leaf)?.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: usize) -> Vec<Digest> {
        (0..n)
            .map(|i| {
                let mut l = LeafHasher::new(i as u64, "step", 1);
                l.tensor(DType::U8, &[1], &tensor_data(&[i as u8]));
                l.finish()
            })
            .collect()
    }

    #[test]
    fn every_proof_verifies_and_no_other() {
        for n in 1..40 {
            let ls = leaves(n);
            let r = root(&ls);
            for i in 0..n {
                let p = proof(&ls, i).unwrap();
                assert!(verify(&r, n as u64, i as u64, &ls[i], &p), "n={n} i={i}");
                let other = ls[(i + 1) % n];
                if n > 1 {
                    assert!(!verify(&r, n as u64, i as u64, &other, &p));
                    assert!(!verify(&r, n as u64, ((i + 1) % n) as u64, &ls[i], &p));
                }
            }
            assert!(proof(&ls, n).is_none());
        }
    }

    /// Runs a bisection between two leaf lists the way two parties would.
    fn bisect(a: &[Digest], b: &[Digest]) -> Result<(u64, Descent, Descent), BisectError> {
        let mut bis = Bisection::new(a.len() as u64, root(a), b.len() as u64, root(b))?;
        while let Some((lo, hi)) = bis.next() {
            let (lo, hi) = (lo as usize, hi as usize);
            bis.step(children(a, lo, hi).unwrap(), children(b, lo, hi).unwrap())?;
        }
        let i = bis.index() as usize;
        bis.finish(a[i], b[i])
    }

    #[test]
    fn bisection_finds_the_first_difference_and_replays_offline() {
        for n in 1..40 {
            let honest = leaves(n);
            for first in 0..n {
                // Everything from `first` on differs (a fault propagates).
                let mut lying = honest.clone();
                for (i, l) in lying.iter_mut().enumerate().skip(first) {
                    *l = Digest::of(Kind::TraceLeaf, &[i as u8, 0xff]);
                }
                let (i, da, db) = bisect(&lying, &honest).unwrap();
                assert_eq!(i, first as u64, "n={n}");
                assert_eq!(
                    first_difference(n as u64, root(&lying), &da, root(&honest), &db),
                    Ok(first as u64)
                );
                // A tampered reveal does not replay.
                let mut bad = da.clone();
                if let Some(level) = bad.levels.first_mut() {
                    level.0 = Digest::of(Kind::TraceNode, b"x");
                    assert!(
                        first_difference(n as u64, root(&lying), &bad, root(&honest), &db).is_err()
                    );
                }
                let mut bad = da.clone();
                bad.leaf = db.leaf;
                assert!(
                    first_difference(n as u64, root(&lying), &bad, root(&honest), &db).is_err()
                );
            }
            assert_eq!(bisect(&honest, &honest).unwrap_err(), BisectError::SameRoot);
        }
        assert!(matches!(
            Bisection::new(3, root(&leaves(3)), 4, root(&leaves(4))),
            Err(BisectError::Lengths(3, 4))
        ));
    }

    #[test]
    fn root_of_three_is_rfc6962_shaped() {
        let ls = leaves(3);
        let want = node(&node(&ls[0], &ls[1]), &ls[2]);
        assert_eq!(root(&ls), want);
    }
}
