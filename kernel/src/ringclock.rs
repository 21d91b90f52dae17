//! Where a ring's time goes: while a guest's requests are in pvfs (accepted and not all
//! answered), and between pvfs's last reply and the guest's next request.
//!
//! For a guest that keeps one request in flight (a `dd`, a loop of system calls), the two
//! split each round trip into pvfs's part and the guest's part (its client, its kernel, and
//! the event channel through Xen, plus pvfs's wake-up if it had halted). They are published
//! in `data/pvfs/stats` as `held_ms`, `turnaround_ms` and `turnarounds`.

/// Gaps longer than this are a guest doing something else, not a turnaround.
pub const MAX_TURNAROUND_NS: u64 = 100_000_000;

/// Totals over all rings.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    /// Time rings had requests in pvfs, summed over rings (ns).
    pub held_ns: u64,
    /// Gaps of at most [`MAX_TURNAROUND_NS`] between a ring's last reply and its next
    /// request, summed (ns).
    pub turnaround_ns: u64,
    /// Number of those gaps.
    pub turnarounds: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing in pvfs; since the last reply, if there was one.
    Idle(Option<u64>),
    /// Requests in pvfs since then.
    Held(u64),
}

/// One ring's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingClock(State);

impl Default for RingClock {
    fn default() -> Self {
        Self(State::Idle(None))
    }
}

impl RingClock {
    /// Requests were taken from the ring at `now`.
    pub fn arrived(&mut self, now: u64, split: &mut Split) {
        if let State::Idle(last) = self.0 {
            if let Some(gap) = last.and_then(|t| now.checked_sub(t)) {
                if gap <= MAX_TURNAROUND_NS {
                    split.turnaround_ns = split.turnaround_ns.saturating_add(gap);
                    split.turnarounds = split.turnarounds.saturating_add(1);
                }
            }
            self.0 = State::Held(now);
        }
    }

    /// Every request taken so far has been answered, at `now`.
    pub fn answered(&mut self, now: u64, split: &mut Split) {
        if let State::Held(since) = self.0 {
            split.held_ns = split.held_ns.saturating_add(now.saturating_sub(since));
            self.0 = State::Idle(Some(now));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_request_at_a_time_splits_into_held_and_turnaround() {
        let mut c = RingClock::default();
        let mut s = Split::default();
        c.arrived(1_000, &mut s); // the first request: no turnaround before it
        c.answered(1_300, &mut s);
        c.arrived(2_300, &mut s);
        c.arrived(2_400, &mut s); // more while held: no new interval
        c.answered(2_700, &mut s);
        c.answered(2_900, &mut s); // nothing held: ignored
        assert_eq!(
            s,
            Split {
                held_ns: 300 + 400,
                turnaround_ns: 1_000,
                turnarounds: 1
            }
        );
    }

    #[test]
    fn long_gaps_and_clock_steps_back_are_not_turnarounds() {
        let mut c = RingClock::default();
        let mut s = Split::default();
        c.arrived(0, &mut s);
        c.answered(10, &mut s);
        c.arrived(10 + MAX_TURNAROUND_NS + 1, &mut s);
        c.answered(5, &mut s); // a clock that went back counts 0
        c.arrived(1, &mut s);
        assert_eq!(s.turnarounds, 0);
        assert_eq!(s.held_ns, 10);
    }
}
