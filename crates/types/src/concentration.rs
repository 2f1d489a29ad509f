//! How concentrated a network is: the Nakamoto coefficient of a
//! distribution (of served requests, of stake).

/// The fewest holders that together hold strictly more than half of the
/// total; 0 when the total is 0.
pub fn nakamoto_coefficient(amounts: &[u64]) -> u64 {
    let total: u128 = amounts.iter().map(|&a| u128::from(a)).sum();
    let mut sorted = amounts.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let mut held = 0u128;
    for (i, a) in sorted.iter().enumerate() {
        if held * 2 > total {
            return i as u64;
        }
        held += u128::from(*a);
        if held * 2 > total {
            return i as u64 + 1;
        }
    }
    0
}

#[cfg(test)]
mod tests {
    use super::nakamoto_coefficient as n;

    #[test]
    fn counts_holders_past_half() {
        assert_eq!(n(&[]), 0);
        assert_eq!(n(&[0, 0]), 0);
        assert_eq!(n(&[10]), 1);
        assert_eq!(n(&[5, 5]), 2);
        assert_eq!(n(&[6, 4]), 1);
        assert_eq!(n(&[1, 1, 1, 1]), 3);
        assert_eq!(n(&[3, 1, 1, 1, 1]), 2);
        assert_eq!(n(&[1, 1, 1]), 2);
    }
}
