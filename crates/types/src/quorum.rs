//! Quorum comparison: whether answers from several operators agree under
//! the model's determinism class, and which of them form a majority. Pure
//! functions over outputs; the node gathers the answers.

use crate::receipt::Determinism;
use crate::tensor::TensorMap;

/// Whether two answers agree under `class`: identical canonical bytes, or
/// (for a tolerant class) the same names, dtypes and shapes with every
/// element within the tolerance.
pub fn outputs_agree(class: Determinism, a: &TensorMap, b: &TensorMap) -> bool {
    if a == b {
        return true;
    }
    if class == Determinism::Exact || a.len() != b.len() {
        return false;
    }
    a.iter().zip(b.iter()).all(|((na, ta), (nb, tb))| {
        na == nb
            && ta.dtype() == tb.dtype()
            && ta.shape() == tb.shape()
            && ta
                .to_f64_vec()
                .iter()
                .zip(tb.to_f64_vec())
                .all(|(x, y)| class.close(*x, y))
    })
}

/// Groups answers that agree with each group's first member, largest group
/// first (ties: the group formed first). Returns indexes into `answers`.
pub fn agreement_groups(class: Determinism, answers: &[&TensorMap]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        match groups
            .iter_mut()
            .find(|g| outputs_agree(class, answers[g[0]], a))
        {
            Some(g) => g.push(i),
            None => groups.push(vec![i]),
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.len()));
    groups
}

/// [`agreement_groups`] of quorum members' answers, each with the class its
/// receipt states, compared under the checker's `class` (from the model's
/// manifest, never from a member): a member that states another class (a
/// looser tolerance that would make a wrong answer agree) agrees with
/// nobody.
pub fn checked_groups(
    class: Determinism,
    answers: &[(&TensorMap, Determinism)],
) -> Vec<Vec<usize>> {
    let conforming: Vec<usize> = (0..answers.len())
        .filter(|&i| answers[i].1 == class)
        .collect();
    let outputs: Vec<&TensorMap> = conforming.iter().map(|&i| answers[i].0).collect();
    let mut groups: Vec<Vec<usize>> = agreement_groups(class, &outputs)
        .into_iter()
        .map(|g| g.into_iter().map(|j| conforming[j]).collect())
        .collect();
    groups.extend(
        (0..answers.len())
            .filter(|i| !conforming.contains(i))
            .map(|i| vec![i]),
    );
    groups
}

/// The indexes of a strict majority of `answers` that agree, if there is one.
pub fn majority(class: Determinism, answers: &[&TensorMap]) -> Option<Vec<usize>> {
    agreement_groups(class, answers)
        .into_iter()
        .next()
        .filter(|g| g.len() * 2 > answers.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Tensor;

    fn map(v: &[f32]) -> TensorMap {
        let mut m = TensorMap::new();
        m.insert("y", Tensor::from_f32(vec![v.len() as u64], v).unwrap());
        m
    }

    #[test]
    fn a_member_cannot_pick_its_own_tolerance() {
        let tolerant = Determinism::Tolerant { rtol: 1e-4 };
        let loose = Determinism::Tolerant { rtol: 1e300 };
        let (a, b, far) = (map(&[1.0]), map(&[1.0]), map(&[5.0]));
        // The liar answers first and claims a huge tolerance: it agrees
        // with nobody, and the honest pair is the majority.
        let groups = checked_groups(tolerant, &[(&far, loose), (&a, tolerant), (&b, tolerant)]);
        assert_eq!(groups, vec![vec![1, 2], vec![0]]);
        // Even an identical answer under another class is not counted.
        let groups = checked_groups(tolerant, &[(&a, Determinism::Exact), (&b, tolerant)]);
        assert_eq!(groups.iter().map(Vec::len).max(), Some(1));
    }

    #[test]
    fn agreement_follows_the_class() {
        let tolerant = Determinism::Tolerant { rtol: 1e-4 };
        let (a, near, far) = (map(&[1.0, 2.0]), map(&[1.00001, 2.0]), map(&[1.1, 2.0]));
        assert!(outputs_agree(Determinism::Exact, &a, &a));
        assert!(!outputs_agree(Determinism::Exact, &a, &near));
        assert!(outputs_agree(tolerant, &a, &near));
        assert!(!outputs_agree(tolerant, &a, &far));
        assert!(!outputs_agree(tolerant, &a, &map(&[1.0])));
        let mut renamed = TensorMap::new();
        renamed.insert("z", Tensor::from_f32(vec![2], &[1.0, 2.0]).unwrap());
        assert!(!outputs_agree(tolerant, &a, &renamed));
    }

    #[test]
    fn majorities_need_more_than_half() {
        let tolerant = Determinism::Tolerant { rtol: 1e-4 };
        let (a, near, far) = (map(&[1.0]), map(&[1.00001]), map(&[5.0]));
        assert_eq!(majority(tolerant, &[&a, &far, &near]), Some(vec![0, 2]));
        assert_eq!(majority(tolerant, &[&far, &a]), None);
        assert_eq!(majority(Determinism::Exact, &[&a, &near, &far]), None);
        assert_eq!(majority(tolerant, &[&a]), Some(vec![0]));
        assert_eq!(
            agreement_groups(tolerant, &[&far, &a, &near]),
            vec![vec![1, 2], vec![0]]
        );
    }
}
