//! When the serve loop writes back what guests changed without `fsync`.
//!
//! Changes are written back (file data, then a journal commit) at most one interval after the
//! first of them, like ext4's `commit=` interval, whether pvfs is idle or busy: a guest that
//! never stops writing must not leave everything it wrote only in pvfs's memory.

/// What [`CommitClock::check`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Commit {
    /// Nothing waits to be written back.
    Clean,
    /// Write back now.
    Now,
    /// Changes wait; write them back at this time (ns).
    At(u64),
}

/// The periodic commit's clock: when the oldest change not yet written back was first seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CommitClock {
    interval_ns: u64,
    slop_ns: u64,
    dirty_since: Option<u64>,
}

impl CommitClock {
    /// A clock that asks for a commit `interval_ns` after the first change, or up to
    /// `slop_ns` earlier (a timer that fires a little early does not re-arm for a moment).
    pub const fn new(interval_ns: u64, slop_ns: u64) -> Self {
        Self {
            interval_ns,
            slop_ns,
            dirty_since: None,
        }
    }

    /// At `now`, the volume holds changes not written back (`dirty`) or not. A `Now` answer
    /// starts the next interval: the caller writes back at once.
    pub fn check(&mut self, now: u64, dirty: bool) -> Commit {
        if !dirty {
            self.dirty_since = None;
            return Commit::Clean;
        }
        let since = *self.dirty_since.get_or_insert(now);
        let due = since.saturating_add(self.interval_ns);
        if now.saturating_add(self.slop_ns) >= due {
            self.dirty_since = None;
            Commit::Now
        } else {
            Commit::At(due)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn a_clean_volume_never_commits() {
        let mut c = CommitClock::new(5 * S, 1_000_000);
        for t in 0..20 {
            assert_eq!(c.check(t * S, false), Commit::Clean);
        }
    }

    #[test]
    fn commits_one_interval_after_the_first_change() {
        let mut c = CommitClock::new(5 * S, 1_000_000);
        assert_eq!(c.check(10 * S, true), Commit::At(15 * S));
        // Later changes do not push the deadline back.
        assert_eq!(c.check(12 * S, true), Commit::At(15 * S));
        assert_eq!(c.check(15 * S - 2_000_000, true), Commit::At(15 * S));
        // Within the slop of the deadline counts as due.
        assert_eq!(c.check(15 * S - 500_000, true), Commit::Now);
        // The next change starts a new interval.
        assert_eq!(c.check(15 * S, true), Commit::At(20 * S));
    }

    #[test]
    fn a_volume_that_stays_dirty_commits_every_interval() {
        // A guest that never stops writing: checked every millisecond for 30 s.
        let mut c = CommitClock::new(5 * S, 1_000_000);
        let mut commits = Vec::new();
        let mut t = 0;
        while t <= 30 * S {
            if c.check(t, true) == Commit::Now {
                commits.push(t);
            }
            t += 1_000_000;
        }
        assert_eq!(commits.len(), 6, "{commits:?}");
        for w in commits.windows(2) {
            let gap = w[1] - w[0];
            assert!((4 * S..=5 * S + 2_000_000).contains(&gap), "{commits:?}");
        }
    }

    #[test]
    fn written_back_in_between_restarts_the_interval() {
        let mut c = CommitClock::new(5 * S, 0);
        assert_eq!(c.check(0, true), Commit::At(5 * S));
        // An fsync wrote everything back.
        assert_eq!(c.check(3 * S, false), Commit::Clean);
        assert_eq!(c.check(4 * S, true), Commit::At(9 * S));
    }
}
