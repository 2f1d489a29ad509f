//! A peer's uptime as this node saw it: the minutes of the last day in
//! which a newer signed announcement of the peer arrived (peers announce
//! every 10 s). Each node keeps its own view; none is on the ledger.

use std::collections::VecDeque;

/// Minutes of history kept: one day.
pub const UPTIME_WINDOW_MINUTES: u64 = 24 * 60;

/// Which of the last [`UPTIME_WINDOW_MINUTES`] minutes (Unix minutes,
/// this node's clock) brought a fresh announcement from the peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Uptime {
    /// The first minute the peer was heard in.
    first: Option<u64>,
    /// The minutes it was heard in, ascending, within the window.
    heard: VecDeque<u64>,
}

impl Uptime {
    /// Records a fresh announcement in `minute`.
    pub fn heard(&mut self, minute: u64) {
        self.first.get_or_insert(minute);
        if self.heard.back().is_none_or(|last| minute > *last) {
            self.heard.push_back(minute);
        }
        self.forget(minute);
    }

    fn forget(&mut self, now: u64) {
        let oldest = now.saturating_sub(UPTIME_WINDOW_MINUTES - 1);
        while self.heard.front().is_some_and(|m| *m < oldest) {
            self.heard.pop_front();
        }
    }

    /// At minute `now`: the minutes the peer was heard in, and the minutes
    /// observed (since it was first heard, at most the window; the minute
    /// under way only once it was heard in it, since it is not over), in
    /// the last [`UPTIME_WINDOW_MINUTES`]. (0, 0) for a peer never heard.
    pub fn minutes(&self, now: u64) -> (u64, u64) {
        let Some(first) = self.first else {
            return (0, 0);
        };
        let oldest = now.saturating_sub(UPTIME_WINDOW_MINUTES - 1).max(first);
        let seen = self
            .heard
            .iter()
            .filter(|m| (oldest..=now).contains(*m))
            .count() as u64;
        let current = u64::from(self.heard.back() == Some(&now));
        (seen, now.saturating_sub(oldest) + current)
    }
}

/// The current Unix minute by this machine's clock.
pub fn now_minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_counts_the_minutes_heard_since_first_heard_within_a_day() {
        let mut u = Uptime::default();
        assert_eq!(u.minutes(100), (0, 0));
        // Heard in minutes 100..110 (several times in some), then silent
        // for 10 minutes.
        for m in 100..110 {
            u.heard(m);
            u.heard(m);
        }
        assert_eq!(u.minutes(109), (10, 10));
        assert_eq!(u.minutes(119), (10, 19));
        // A day later the early minutes have left the window.
        let later = 100 + UPTIME_WINDOW_MINUTES + 4;
        u.heard(later);
        assert_eq!(u.minutes(later), (6, UPTIME_WINDOW_MINUTES));
        // An announcement out of order (an older minute) counts nothing.
        u.heard(later - 1);
        assert_eq!(u.minutes(later), (6, UPTIME_WINDOW_MINUTES));
    }
}
