//! Where a ring's time goes: while a guest's requests are in pvfs (accepted and not all
//! answered), and between pvfs's last reply and the guest's next request.
//!
//! For a guest that keeps one request in flight (a `dd`, a loop of system calls), the two
//! split each round trip into pvfs's part and the guest's part (its client, its kernel, and
//! the event channel through Xen, plus pvfs's wake-up if it had halted). They are published
//! in `data/pvfs/stats` as `held_ms`, `turnaround_ms` and `turnarounds`.
//!
//! [`Profile`] splits the same two times by the kind of request ([`Kind`]: 9P message type
//! and size class) when a held interval ran exactly one request, so each workload's round
//! trip can be read apart: e.g. a 128 KiB `Tread` of a `dd`, against a 64 KiB one. It also
//! keeps apart the turnarounds during which pvfs halted its vCPU (so the guest's next request
//! had to wake it through Xen) from those it spent polling the rings.

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

/// What ran in one held interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ran {
    Nothing,
    One(Kind),
    Several,
}

/// A kind of request: its 9P message type and size class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Kind {
    /// The T-message type (e.g. 116 for `Tread`).
    pub ty: u8,
    /// `ceil(log2(bytes - 64))` for the larger of the request and its reply (0 for up to 65
    /// bytes): the 64 bytes keep a full 64 KiB or 128 KiB payload plus its header in the
    /// class of the payload (17 is 64 KiB + 65 to 128 KiB + 64 bytes).
    pub class: u8,
}

impl Kind {
    /// The kind of a request of type `ty` whose request or reply had `bytes` bytes (the
    /// larger of the two).
    pub fn new(ty: u8, bytes: usize) -> Self {
        let n = bytes.saturating_sub(65);
        // usize has at most 64 bits, so this fits a u8
        let class = u8::try_from(usize::BITS - n.leading_zeros()).unwrap_or(u8::MAX);
        Self { ty, class }
    }

    /// [`top_bytes`](Self::top_bytes) in the largest unit that divides it down to at least 1:
    /// (128, "K") for 128 KiB + 64 bytes.
    pub fn top_label(self) -> (u64, &'static str) {
        let top = self.top_bytes();
        if top >= 1 << 20 {
            (top >> 20, "M")
        } else if top >= 1 << 10 {
            (top >> 10, "K")
        } else {
            (top, "")
        }
    }

    /// The top of the size class in bytes (payload plus 64), for display.
    pub fn top_bytes(self) -> u64 {
        1u64.checked_shl(u32::from(self.class))
            .unwrap_or(u64::MAX)
            .saturating_add(64)
    }
}

/// How many times fell into each power-of-two range of microseconds, so that a bimodal
/// distribution (most requests fast, a few very slow) can be told apart from a uniform one
/// with the same average.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Histogram(pub [u64; HIST_BUCKETS]);

/// Buckets of a [`Histogram`]: under 32 µs, then one per doubling, the last open-ended (from
/// 8192 µs on).
pub const HIST_BUCKETS: usize = 10;

impl Histogram {
    /// The bucket of `ns`.
    pub fn bucket(ns: u64) -> usize {
        let us = ns / 1_000;
        // under 32 µs: 0; [32, 64): 1; ... [4096, 8192): 8; from 8192: 9
        let b = (u64::BITS - us.leading_zeros()).saturating_sub(5);
        usize::try_from(b)
            .unwrap_or(usize::MAX)
            .min(HIST_BUCKETS - 1)
    }

    /// Counts one time of `ns`.
    pub fn add(&mut self, ns: u64) {
        if let Some(c) = self.0.get_mut(Self::bucket(ns)) {
            *c = c.saturating_add(1);
        }
    }

    /// The number of times counted.
    pub fn total(&self) -> u64 {
        self.0.iter().fold(0u64, |a, &n| a.saturating_add(n))
    }
}

impl core::fmt::Display for Histogram {
    /// The non-empty buckets by their upper bound in µs, e.g. `<64:3 <128:10 >=8192:1`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut first = true;
        for (i, &n) in self.0.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let sep = if first { "" } else { " " };
            first = false;
            if i + 1 == HIST_BUCKETS {
                write!(f, "{sep}>={}:{n}", 16u64 << i)?;
            } else {
                write!(f, "{sep}<{}:{n}", 32u64 << i)?;
            }
        }
        if first {
            write!(f, "-")?;
        }
        Ok(())
    }
}

/// Totals for one [`Kind`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct KindTimes {
    /// Held intervals that ran exactly one request of this kind.
    pub count: u64,
    /// Their held time (ns).
    pub held_ns: u64,
    /// Turnarounds after them (see [`Split::turnaround_ns`]) during which pvfs kept
    /// polling, and their number.
    pub after_ns: u64,
    /// See `after_ns`.
    pub afters: u64,
    /// Turnarounds after them during which pvfs halted, and their number.
    pub after_halted_ns: u64,
    /// See `after_halted_ns`.
    pub afters_halted: u64,
    /// The held times, by range.
    pub held_hist: Histogram,
    /// The turnarounds after them (polled or halted), by range.
    pub after_hist: Histogram,
    /// The signals that told the guest their replies were there (part of the held times), by
    /// range.
    pub notify_hist: Histogram,
}

/// [`Split`] by [`Kind`], for held intervals that ran one request.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Profile {
    kinds: alloc::vec::Vec<(Kind, KindTimes)>,
    /// Held intervals that ran several requests (or none), not split by kind.
    pub mixed: u64,
    /// Times pvfs halted its vCPU (see [`Profile::halting`]).
    halts: u64,
    /// How long each signal to a guest (the event-channel hypercall after a reply) took.
    pub notify: Histogram,
}

/// Kinds a [`Profile`] keeps apart, at most; the others are counted as mixed.
pub const MAX_KINDS: usize = 48;

impl Profile {
    fn entry(&mut self, kind: Kind) -> Option<&mut KindTimes> {
        let i = match self.kinds.binary_search_by(|(k, _)| k.cmp(&kind)) {
            Ok(i) => i,
            Err(i) if self.kinds.len() < MAX_KINDS => {
                self.kinds.insert(i, (kind, KindTimes::default()));
                i
            }
            Err(_) => return None,
        };
        self.kinds.get_mut(i).map(|(_, t)| t)
    }

    /// The kinds seen, in order of type then size class.
    pub fn kinds(&self) -> impl Iterator<Item = (Kind, KindTimes)> + '_ {
        self.kinds.iter().copied()
    }

    /// One line per kind, for the log (a console line is short).
    pub fn lines(&self) -> impl Iterator<Item = KindLine> + '_ {
        self.kinds().map(|(k, t)| KindLine(k, t))
    }

    /// One line per kind with its held and turnaround times by range, for the log.
    pub fn histogram_lines(&self) -> impl Iterator<Item = KindHistograms> + '_ {
        self.kinds().map(|(k, t)| KindHistograms(k, t))
    }

    /// Forgets everything (after a report).
    pub fn clear(&mut self) {
        self.kinds.clear();
        self.mixed = 0;
        self.notify = Histogram::default();
    }

    /// pvfs is about to halt until an event: turnarounds in progress count as halted.
    pub fn halting(&mut self) {
        self.halts = self.halts.wrapping_add(1);
    }
}

/// One kind's line of a [`Profile`] report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindLine(pub Kind, pub KindTimes);

impl core::fmt::Display for KindLine {
    /// `type/size: n=count held=µs after=µs (polled n×µs, halted n×µs)`, averages per
    /// request; a size class is shown by its top: `116/128K` is a `Tread` (or its `Rread`)
    /// of 64 KiB + 65 bytes to 128 KiB + 64.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Self(k, t) = *self;
        let avg = |ns: u64, n: u64| ns.checked_div(n).unwrap_or(0) / 1_000;
        let (v, unit) = k.top_label();
        write!(
            f,
            "{}/{v}{unit}: n={} held={}us after={}us (polled {}x{}us, halted {}x{}us)",
            k.ty,
            t.count,
            avg(t.held_ns, t.count),
            avg(
                t.after_ns.saturating_add(t.after_halted_ns),
                t.afters.saturating_add(t.afters_halted)
            ),
            t.afters,
            avg(t.after_ns, t.afters),
            t.afters_halted,
            avg(t.after_halted_ns, t.afters_halted),
        )
    }
}

/// One kind's held and turnaround times by range (see [`Histogram`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KindHistograms(pub Kind, pub KindTimes);

impl core::fmt::Display for KindHistograms {
    /// `type/size: held <64:3 ... | signal <128:3 ... | after <1024:5 ...`, size as in
    /// [`KindLine`].
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let Self(k, t) = *self;
        let (v, unit) = k.top_label();
        write!(
            f,
            "{}/{v}{unit}: held {} | signal {} | after {}",
            k.ty, t.held_hist, t.notify_hist, t.after_hist
        )
    }
}

/// One ring's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingClock {
    state: State,
    /// What ran in the current held interval.
    ran: Ran,
    /// The kind of the last interval, if it ran one request: its turnaround goes to it.
    last: Option<Kind>,
    /// [`Profile::halts`] when the last interval ended.
    halts: u64,
    /// Time spent signalling the guest during the current held interval.
    notify_ns: u64,
}

impl Default for RingClock {
    fn default() -> Self {
        Self {
            state: State::Idle(None),
            ran: Ran::Nothing,
            last: None,
            halts: 0,
            notify_ns: 0,
        }
    }
}

impl RingClock {
    /// Requests were taken from the ring at `now`.
    pub fn arrived(&mut self, now: u64, split: &mut Split, profile: &mut Profile) {
        if let State::Idle(last) = self.state {
            if let Some(gap) = last.and_then(|t| now.checked_sub(t)) {
                if gap <= MAX_TURNAROUND_NS {
                    split.turnaround_ns = split.turnaround_ns.saturating_add(gap);
                    split.turnarounds = split.turnarounds.saturating_add(1);
                    let halted = profile.halts != self.halts;
                    if let Some(t) = self.last.and_then(|k| profile.entry(k)) {
                        t.after_hist.add(gap);
                        if halted {
                            t.after_halted_ns = t.after_halted_ns.saturating_add(gap);
                            t.afters_halted = t.afters_halted.saturating_add(1);
                        } else {
                            t.after_ns = t.after_ns.saturating_add(gap);
                            t.afters = t.afters.saturating_add(1);
                        }
                    }
                }
            }
            self.state = State::Held(now);
            self.ran = Ran::Nothing;
            self.last = None;
            self.notify_ns = 0;
        }
    }

    /// The guest was signalled that replies are there; it took `ns` (counted in
    /// [`Profile::notify`] and, if the held interval ran one request, in its kind's
    /// [`KindTimes::notify_hist`]).
    pub fn notified(&mut self, ns: u64, profile: &mut Profile) {
        profile.notify.add(ns);
        self.notify_ns = self.notify_ns.saturating_add(ns);
    }

    /// A request of `kind` ran while held.
    pub fn ran(&mut self, kind: Kind) {
        self.ran = match self.ran {
            Ran::Nothing => Ran::One(kind),
            Ran::One(_) | Ran::Several => Ran::Several,
        };
    }

    /// Every request taken so far has been answered, at `now`.
    pub fn answered(&mut self, now: u64, split: &mut Split, profile: &mut Profile) {
        if let State::Held(since) = self.state {
            let held = now.saturating_sub(since);
            split.held_ns = split.held_ns.saturating_add(held);
            self.state = State::Idle(Some(now));
            self.halts = profile.halts;
            self.last = match self.ran {
                Ran::One(k) => profile.entry(k).map(|t| {
                    t.count = t.count.saturating_add(1);
                    t.held_ns = t.held_ns.saturating_add(held);
                    t.held_hist.add(held);
                    t.notify_hist.add(self.notify_ns);
                    k
                }),
                Ran::Nothing | Ran::Several => None,
            };
            if self.last.is_none() {
                profile.mixed = profile.mixed.saturating_add(1);
            }
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
        let p = &mut Profile::default();
        c.arrived(1_000, &mut s, p); // the first request: no turnaround before it
        c.answered(1_300, &mut s, p);
        c.arrived(2_300, &mut s, p);
        c.arrived(2_400, &mut s, p); // more while held: no new interval
        c.answered(2_700, &mut s, p);
        c.answered(2_900, &mut s, p); // nothing held: ignored
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
        let p = &mut Profile::default();
        c.arrived(0, &mut s, p);
        c.ran(Kind::new(116, 100));
        c.answered(10, &mut s, p);
        c.arrived(10 + MAX_TURNAROUND_NS + 1, &mut s, p);
        c.answered(5, &mut s, p); // a clock that went back counts 0
        c.arrived(1, &mut s, p);
        assert_eq!(s.turnarounds, 0);
        assert_eq!(s.held_ns, 10);
        let t = p.kinds().next().map(|(_, t)| t);
        assert_eq!(t.map(|t| (t.count, t.held_ns, t.afters)), Some((1, 10, 0)));
    }

    #[test]
    fn size_classes_keep_64k_and_128k_payloads_apart() {
        // an Rread of 64 KiB (11-byte header), a Twrite of 64 KiB (23), their 128 KiB forms
        assert_eq!(Kind::new(116, 65_536 + 11).class, 16);
        assert_eq!(Kind::new(118, 65_536 + 23).class, 16);
        assert_eq!(Kind::new(116, 131_072).class, 17);
        assert_eq!(Kind::new(118, 131_048 + 23).class, 17);
        assert_eq!(Kind::new(116, 524_288).class, 19);
        assert_eq!(Kind::new(110, 0).class, 0);
        assert_eq!(Kind::new(110, 65).class, 0);
        assert_eq!(Kind::new(110, 66).class, 1);
        assert_eq!(Kind::new(116, usize::MAX).class, 64);
        assert_eq!(Kind::new(116, 131_072).top_bytes(), 131_072 + 64);
        assert_eq!(Kind::new(116, usize::MAX).top_bytes(), u64::MAX);
    }

    #[test]
    fn profile_splits_single_request_intervals_by_kind() {
        let mut c = RingClock::default();
        let mut s = Split::default();
        let mut p = Profile::default();
        let read = Kind::new(116, 131_059);
        let walk = Kind::new(110, 40);
        // a read held 300, then 1000 until the next request
        c.arrived(0, &mut s, &mut p);
        c.ran(read);
        c.answered(300, &mut s, &mut p);
        // a walk held 100, then 500 during which pvfs halted
        c.arrived(1_300, &mut s, &mut p);
        c.ran(walk);
        c.answered(1_400, &mut s, &mut p);
        p.halting();
        // two requests in one interval: mixed, and the turnaround after it goes nowhere
        c.arrived(1_900, &mut s, &mut p);
        c.ran(read);
        c.ran(walk);
        c.answered(2_500, &mut s, &mut p);
        // a read again, after the mixed interval
        c.arrived(2_600, &mut s, &mut p);
        c.ran(read);
        c.answered(2_900, &mut s, &mut p);
        c.arrived(3_900, &mut s, &mut p);
        let kinds: alloc::vec::Vec<_> = p.kinds().collect();
        // Both kinds' records are written out whole, alike in shape: they differ in most
        // fields, and the literal is the expectation.
        assert_eq!(
            kinds,
            [
                (
                    walk,
                    KindTimes {
                        count: 1,
                        held_ns: 100,
                        after_halted_ns: 500,
                        afters_halted: 1,
                        held_hist: Histogram([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                        after_hist: Histogram([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                        notify_hist: Histogram([1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                        ..KindTimes::default()
                    }
                ),
                (
                    read,
                    KindTimes {
                        count: 2,
                        held_ns: 600,
                        after_ns: 2_000,
                        afters: 2,
                        held_hist: Histogram([2, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                        after_hist: Histogram([2, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                        notify_hist: Histogram([2, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
                        ..KindTimes::default()
                    }
                ),
            ]
        );
        assert_eq!(p.mixed, 1);
        assert_eq!(s.turnaround_ns, 1_000 + 500 + 100 + 1_000);
        let lines: alloc::vec::Vec<_> = p.lines().map(|l| alloc::format!("{l}")).collect();
        assert_eq!(
            lines,
            [
                "110/65: n=1 held=0us after=0us (polled 0x0us, halted 1x0us)",
                "116/128K: n=2 held=0us after=1us (polled 2x1us, halted 0x0us)"
            ]
        );
        p.clear();
        assert_eq!((p.lines().count(), p.mixed), (0, 0));
    }

    #[test]
    fn histogram_buckets_by_doubling_microseconds() {
        assert_eq!(Histogram::bucket(0), 0);
        assert_eq!(Histogram::bucket(31_999), 0);
        assert_eq!(Histogram::bucket(32_000), 1);
        assert_eq!(Histogram::bucket(63_999), 1);
        assert_eq!(Histogram::bucket(170_000), 3);
        assert_eq!(Histogram::bucket(1_500_000), 6);
        assert_eq!(Histogram::bucket(8_191_999), 8);
        assert_eq!(Histogram::bucket(8_192_000), 9);
        assert_eq!(Histogram::bucket(u64::MAX), 9);
        let mut h = Histogram::default();
        assert_eq!(alloc::format!("{h}"), "-");
        for ns in [10_000, 40_000, 45_000, 170_000, 9_000_000] {
            h.add(ns);
        }
        assert_eq!(h.total(), 5);
        assert_eq!(alloc::format!("{h}"), "<32:1 <64:2 <256:1 >=8192:1");
    }

    #[test]
    fn profile_keeps_held_and_turnaround_histograms_per_kind() {
        let mut c = RingClock::default();
        let mut s = Split::default();
        let mut p = Profile::default();
        let read = Kind::new(116, 131_059);
        // held 300 µs, then 1.5 ms; held 40 µs, then 5 ms (halted)
        c.arrived(0, &mut s, &mut p);
        c.ran(read);
        c.notified(170_000, &mut p);
        c.answered(300_000, &mut s, &mut p);
        c.arrived(1_800_000, &mut s, &mut p);
        c.ran(read);
        c.notified(20_000, &mut p);
        c.answered(1_840_000, &mut s, &mut p);
        p.halting();
        c.arrived(6_840_000, &mut s, &mut p);
        let lines: alloc::vec::Vec<_> =
            p.histogram_lines().map(|l| alloc::format!("{l}")).collect();
        assert_eq!(
            lines,
            ["116/128K: held <64:1 <512:1 | signal <32:1 <256:1 | after <2048:1 <8192:1"]
        );
        assert_eq!(alloc::format!("{}", p.notify), "<32:1 <256:1");
        p.clear();
        assert_eq!((p.histogram_lines().count(), p.notify.total()), (0, 0));
    }

    #[test]
    fn profile_keeps_at_most_max_kinds() {
        let mut c = RingClock::default();
        let mut s = Split::default();
        let mut p = Profile::default();
        for i in 0..(MAX_KINDS as u64 + 5) {
            c.arrived(i * 10, &mut s, &mut p);
            c.ran(Kind::new(u8::try_from(i).unwrap_or(u8::MAX), 0));
            c.answered(i * 10 + 1, &mut s, &mut p);
        }
        assert_eq!(p.kinds().count(), MAX_KINDS);
        let kept: u64 = p.kinds().map(|(_, t)| t.count).sum();
        assert_eq!(kept, MAX_KINDS as u64);
        assert_eq!(p.mixed, 5);
        assert_eq!(kept + p.mixed, MAX_KINDS as u64 + 5);
    }
}
