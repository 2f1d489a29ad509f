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

    #[test]
    fn root_of_three_is_rfc6962_shaped() {
        let ls = leaves(3);
        let want = node(&node(&ls[0], &ls[1]), &ls[2]);
        assert_eq!(root(&ls), want);
    }
}
