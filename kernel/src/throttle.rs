//! A device's rate limits (`max-iops` and `max-bps`, backend keys that change live): two token
//! buckets, each filling at its rate per second up to one second's worth.
//!
//! pvfs serves a throttled device's rings only while both buckets hold tokens, and charges
//! each pass for what it answered (replies, and bytes returned by `Rread` or accepted by
//! `Rwrite`) after the fact, so a large request may put a bucket into debt that the device
//! then waits out. Other devices are served meanwhile: the limit holds back one guest only.
//! The time a device spends held back is counted for `pvfs top`.

/// One token bucket; levels are in billionths of a token so that a nanosecond's refill is
/// exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Bucket {
    /// Tokens a second (> 0).
    rate: u64,
    /// Billionths of a token; negative while in debt.
    level: i128,
    /// When the level was last brought up to date (ns).
    at: u64,
}

const NANO: i128 = 1_000_000_000;

impl Bucket {
    fn new(rate: u64, now: u64) -> Self {
        Self {
            rate: rate.max(1),
            level: i128::from(rate.max(1)) * NANO,
            at: now,
        }
    }

    fn refill(&mut self, now: u64) {
        let dt = now.saturating_sub(self.at);
        self.at = self.at.max(now);
        let cap = i128::from(self.rate) * NANO;
        let add = i128::from(self.rate).saturating_mul(i128::from(dt));
        self.level = self.level.saturating_add(add).min(cap);
    }

    fn charge(&mut self, n: u64) {
        self.level = self.level.saturating_sub(i128::from(n) * NANO);
    }

    /// Nanoseconds until the level is back to zero (0 if it is not in debt).
    fn wait_ns(&self) -> u64 {
        if self.level >= 0 {
            return 0;
        }
        let r = i128::from(self.rate);
        u64::try_from((-self.level + r - 1) / r).unwrap_or(u64::MAX)
    }
}

/// A device's limits and what they held back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Throttle {
    iops: Option<Bucket>,
    bps: Option<Bucket>,
    /// Since when the device has been held back, if it is.
    held_since: Option<u64>,
    /// Times the device was held back.
    pub waits: u64,
    /// Time it was held back (ns), up to the last time it was let go.
    pub held_ns: u64,
}

impl Throttle {
    /// Sets the limits (requests and bytes a second; `None`: no limit). A limit that stays as
    /// it was keeps its bucket; a new one starts full.
    pub fn set(&mut self, iops: Option<u64>, bps: Option<u64>, now: u64) {
        let keep = |b: Option<Bucket>, rate: Option<u64>| match (b, rate) {
            (Some(b), Some(r)) if b.rate == r.max(1) => Some(b),
            (_, Some(r)) => Some(Bucket::new(r, now)),
            (_, None) => None,
        };
        self.iops = keep(self.iops, iops);
        self.bps = keep(self.bps, bps);
        if self.iops.is_none() && self.bps.is_none() {
            self.release(now);
        }
    }

    /// The limits (requests and bytes a second).
    pub fn limits(&self) -> (Option<u64>, Option<u64>) {
        (self.iops.map(|b| b.rate), self.bps.map(|b| b.rate))
    }

    /// Whether any limit is set.
    pub fn is_limited(&self) -> bool {
        self.iops.is_some() || self.bps.is_some()
    }

    fn release(&mut self, now: u64) {
        if let Some(s) = self.held_since.take() {
            self.held_ns = self.held_ns.saturating_add(now.saturating_sub(s));
        }
    }

    /// Whether the device may be served at `now`; if not, how many nanoseconds until it may.
    pub fn admit(&mut self, now: u64) -> Result<(), u64> {
        let mut wait = 0;
        for b in [&mut self.iops, &mut self.bps].into_iter().flatten() {
            b.refill(now);
            wait = wait.max(b.wait_ns());
        }
        if wait == 0 {
            self.release(now);
            Ok(())
        } else {
            if self.held_since.is_none() {
                self.held_since = Some(now);
                self.waits = self.waits.saturating_add(1);
            }
            Err(wait)
        }
    }

    /// Charges a pass that answered `ops` requests moving `bytes` bytes of file data.
    pub fn charge(&mut self, ops: u64, bytes: u64) {
        if let Some(b) = &mut self.iops {
            b.charge(ops);
        }
        if let Some(b) = &mut self.bps {
            b.charge(bytes);
        }
    }

    /// Time held back so far, counting a wait still going on at `now` (ms).
    pub fn held_ms(&self, now: u64) -> u64 {
        let open = self.held_since.map_or(0, |s| now.saturating_sub(s));
        self.held_ns.saturating_add(open) / 1_000_000
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    /// Serves a device that always has work, passes of one request of `bytes` bytes, for
    /// `secs` seconds with the loop waking when told; returns requests and bytes answered.
    fn run(t: &mut Throttle, bytes: u64, secs: u64) -> (u64, u64) {
        let (mut now, mut ops, mut moved) = (0u64, 0u64, 0u64);
        while now < secs * S {
            match t.admit(now) {
                Ok(()) => {
                    t.charge(1, bytes);
                    ops += 1;
                    moved += bytes;
                    now += 10_000; // a pass takes 10 us
                }
                Err(w) => {
                    assert!(w > 0);
                    now += w;
                }
            }
        }
        (ops, moved)
    }

    #[test]
    fn unlimited_never_waits() {
        let mut t = Throttle::default();
        assert!(!t.is_limited());
        for i in 0..1000 {
            assert_eq!(t.admit(i), Ok(()));
            t.charge(1, 1 << 20);
        }
        assert_eq!((t.waits, t.held_ms(10 * S)), (0, 0));
    }

    #[test]
    fn iops_limit_holds_over_time() {
        let mut t = Throttle::default();
        t.set(Some(100), None, 0);
        let (ops, _) = run(&mut t, 4096, 10);
        // 100 a second for 10 s, plus the first second's burst
        assert!((1_000..=1_101).contains(&ops), "{ops}");
        assert!(t.waits > 0);
        assert!(t.held_ms(10 * S) > 8_000, "{}", t.held_ms(10 * S));
    }

    #[test]
    fn bps_limit_with_requests_larger_than_a_second_of_budget() {
        let mut t = Throttle::default();
        t.set(None, Some(1 << 20), 0);
        // 4 MiB requests against 1 MiB/s: each puts the bucket 3 s into debt
        let (_, moved) = run(&mut t, 4 << 20, 20);
        let rate = moved / 20;
        assert!(
            (1 << 20) <= rate + (256 << 10) && rate <= (3 << 20) / 2,
            "{rate}"
        );
    }

    #[test]
    fn limits_change_live_and_lifting_them_lets_go() {
        let mut t = Throttle::default();
        t.set(Some(10), Some(1000), 0);
        assert_eq!(t.limits(), (Some(10), Some(1000)));
        // a full bucket: ten requests, and an eleventh that takes it into debt
        for _ in 0..11 {
            assert_eq!(t.admit(0), Ok(()));
            t.charge(1, 10);
        }
        let w = t.admit(0).unwrap_err();
        assert!((90_000_000..=100_000_000).contains(&w), "{w}");
        // the same limit again keeps its bucket (still in debt)
        t.set(Some(10), Some(1000), 1);
        assert!(t.admit(1).is_err());
        // a new limit starts full
        t.set(Some(20), Some(1000), 2);
        assert_eq!(t.admit(2), Ok(()));
        // lifted: served at once, the wait counted
        t.charge(1000, 0);
        assert!(t.admit(3).is_err());
        t.set(None, None, 5 * S);
        assert!(!t.is_limited());
        assert_eq!(t.admit(5 * S), Ok(()));
        assert_eq!(t.waits, 2);
        assert!(t.held_ms(5 * S) >= 4_999);
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let mut t = Throttle::default();
        t.set(Some(u64::MAX), Some(0), 0);
        assert_eq!(t.limits(), (Some(u64::MAX), Some(1)));
        t.charge(u64::MAX, u64::MAX);
        let w = t.admit(u64::MAX).unwrap_err();
        assert!(w > 0);
        t.charge(u64::MAX, u64::MAX);
        assert!(t.admit(0).is_err());
    }
}
