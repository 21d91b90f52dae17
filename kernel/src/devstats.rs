//! Statistics of one 9pfs device (one guest's share), published in its backend directory as
//! `stats` and shown by `pvfs top` in dom0 (docs/pvfs-share.md, "pvfs top").
//!
//! What is counted, from the messages themselves (so it holds whatever the request did):
//! requests by 9P type, bytes returned by `Rread` and accepted by `Rwrite`, `Rlerror` replies
//! and, of those, quota refusals (`EDQUOT`). Latency is the time from taking a request off the
//! ring to writing its reply into the ring: queueing behind the guest's other requests and
//! other guests' turns included, the guest's own time excluded. Its percentiles are those of
//! the requests answered since the previous publication (a histogram with four buckets per
//! power of two: a percentile is the lower edge of its bucket, at most a quarter below the
//! true value); the count and sum run from the device's connection, so a reader that samples
//! twice gets the mean in between.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Write as _;

/// In-flight requests remembered per device for latency; more are not timed (a guest can
/// have at most a ring's worth accepted, see `pvfs_9p::sched`, but tags are its to choose).
pub const MAX_TIMED: usize = 256;

/// 9P message types (T-messages have even numbers below 128).
const TYPES: usize = 64;

/// Histogram buckets: four per power of two of microseconds, up to 2^40 us.
const BUCKETS: usize = 4 * 40;

const RLERROR: u8 = 7;
const RREAD: u8 = 117;
const RWRITE: u8 = 119;
/// `EDQUOT` on Linux (what pvfs replies with for a quota).
const EDQUOT: u32 = 122;

/// One device's counters and latency histogram.
#[derive(Debug, Clone)]
pub struct DevStats {
    requests: u64,
    replies: u64,
    by_type: [u64; TYPES],
    read_bytes: u64,
    written_bytes: u64,
    errors: u64,
    quota_refusals: u64,
    lat_count: u64,
    lat_sum_us: u64,
    /// Since the last [`render`](Self::render).
    window: [u32; BUCKETS],
    window_max_us: u64,
    /// (ring, tag, taken at ns) of requests not yet answered.
    in_flight: Vec<(u16, u16, u64)>,
    /// Something changed since the last render.
    dirty: bool,
}

impl Default for DevStats {
    fn default() -> Self {
        Self {
            requests: 0,
            replies: 0,
            by_type: [0; TYPES],
            read_bytes: 0,
            written_bytes: 0,
            errors: 0,
            quota_refusals: 0,
            lat_count: 0,
            lat_sum_us: 0,
            window: [0; BUCKETS],
            window_max_us: 0,
            in_flight: Vec::new(),
            dirty: false,
        }
    }
}

/// The device's rate limits and what they held back (`crate::throttle`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateFigures {
    /// `max-iops`, if set.
    pub max_iops: Option<u64>,
    /// `max-bps`, if set.
    pub max_bps: Option<u64>,
    /// Times the device was held back by them.
    pub waits: u64,
    /// Time it was held back (ms).
    pub held_ms: u64,
}

/// The usage and limits of the device's export, rendered with the counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QuotaFigures {
    /// Bytes of file data the export holds, if measured.
    pub bytes: Option<u64>,
    /// Files (inodes) it holds, if measured.
    pub files: Option<u64>,
    /// Files open now.
    pub open_files: u64,
}

fn tag_of(msg: &[u8]) -> Option<u16> {
    Some(u16::from_le_bytes([*msg.get(5)?, *msg.get(6)?]))
}

fn u32_at(msg: &[u8], at: usize) -> Option<u32> {
    let b = msg.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The histogram bucket of `us` microseconds: 4 × log2 plus the next two bits.
fn bucket(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let log = 63 - us.leading_zeros() as usize;
    let sub = ((us >> (log - 2)) & 3) as usize;
    (4 * (log - 1) + sub).min(BUCKETS - 1)
}

/// The smallest value that falls in bucket `b` (the inverse of [`bucket`]).
fn bucket_floor(b: usize) -> u64 {
    if b < 4 {
        return b as u64;
    }
    let log = b / 4 + 1;
    let sub = (b % 4) as u64;
    (4 + sub) << (log - 2)
}

impl DevStats {
    /// A request was taken off ring `ring` at `now_ns`.
    pub fn taken(&mut self, ring: u16, msg: &[u8], now_ns: u64) {
        self.requests = self.requests.saturating_add(1);
        self.dirty = true;
        if let Some(&ty) = msg.get(4) {
            if let Some(c) = self.by_type.get_mut(usize::from(ty / 2)) {
                *c = c.saturating_add(1);
            }
        }
        let Some(tag) = tag_of(msg) else {
            return;
        };
        // A reused tag (after a flush) restarts its clock.
        self.in_flight.retain(|&(r, t, _)| (r, t) != (ring, tag));
        if self.in_flight.len() < MAX_TIMED {
            self.in_flight.push((ring, tag, now_ns));
        }
    }

    /// A reply was written into ring `ring` at `now_ns`.
    pub fn sent(&mut self, ring: u16, reply: &[u8], now_ns: u64) {
        self.dirty = true;
        self.replies = self.replies.saturating_add(1);
        match reply.get(4) {
            Some(&RREAD) => {
                let n = u32_at(reply, 7).unwrap_or(0);
                self.read_bytes = self.read_bytes.saturating_add(u64::from(n));
            }
            Some(&RWRITE) => {
                let n = u32_at(reply, 7).unwrap_or(0);
                self.written_bytes = self.written_bytes.saturating_add(u64::from(n));
            }
            Some(&RLERROR) => {
                self.errors = self.errors.saturating_add(1);
                if u32_at(reply, 7) == Some(EDQUOT) {
                    self.quota_refusals = self.quota_refusals.saturating_add(1);
                }
            }
            _ => {}
        }
        let Some(tag) = tag_of(reply) else {
            return;
        };
        let Some(i) = self
            .in_flight
            .iter()
            .position(|&(r, t, _)| (r, t) == (ring, tag))
        else {
            return;
        };
        let (_, _, since) = self.in_flight.swap_remove(i);
        let us = now_ns.saturating_sub(since) / 1000;
        self.lat_count = self.lat_count.saturating_add(1);
        self.lat_sum_us = self.lat_sum_us.saturating_add(us);
        let b = bucket(us);
        self.window[b] = self.window[b].saturating_add(1);
        self.window_max_us = self.window_max_us.max(us);
    }

    /// Whether anything changed since the last [`render`](Self::render).
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Marks the figures as changed (their last write did not happen).
    pub fn touch(&mut self) {
        self.dirty = true;
    }

    /// Requests taken so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// Replies written so far, and bytes of file data moved by them (`Rread` and `Rwrite`):
    /// what a rate limit charges (`crate::throttle`).
    pub fn answered(&self) -> (u64, u64) {
        (
            self.replies,
            self.read_bytes.saturating_add(self.written_bytes),
        )
    }

    /// The `p`-th percentile (0 < p ≤ 100) of the window's latencies, in microseconds: the
    /// lower edge of its bucket; 0 for an empty window.
    pub fn percentile_us(&self, p: u32) -> u64 {
        let n: u64 = self.window.iter().map(|&c| u64::from(c)).sum();
        if n == 0 {
            return 0;
        }
        // the rank of the sample that is the percentile, 1-based
        let rank = (n * u64::from(p.clamp(1, 100))).div_ceil(100);
        let mut seen = 0u64;
        for (b, &c) in self.window.iter().enumerate() {
            seen += u64::from(c);
            if seen >= rank {
                return bucket_floor(b).min(self.window_max_us);
            }
        }
        self.window_max_us
    }

    /// The `stats` value: `key=value` pairs separated by spaces, then `types=` with the
    /// requests by type (`walk:12,read:40,…`). Starts a new latency window.
    pub fn render(&mut self, q: QuotaFigures, r: RateFigures) -> String {
        let opt = |v: Option<u64>| v.map_or_else(|| String::from("-"), |v| alloc::format!("{v}"));
        let mut s = alloc::format!(
            "requests={} read_bytes={} written_bytes={} errors={} quota_refusals={} \
             lat_count={} lat_sum_us={} lat_p50_us={} lat_p90_us={} lat_p99_us={} lat_max_us={} \
             used_bytes={} used_files={} open_files={} max_iops={} max_bps={} throttle_waits={} \
             throttled_ms={} types=",
            self.requests,
            self.read_bytes,
            self.written_bytes,
            self.errors,
            self.quota_refusals,
            self.lat_count,
            self.lat_sum_us,
            self.percentile_us(50),
            self.percentile_us(90),
            self.percentile_us(99),
            self.window_max_us,
            opt(q.bytes),
            opt(q.files),
            q.open_files,
            opt(r.max_iops),
            opt(r.max_bps),
            r.waits,
            r.held_ms,
        );
        // Named types first in message order; the rest summed as `other`.
        let mut other = 0u64;
        let mut first = true;
        for (i, &n) in self.by_type.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let name = crate::stackuse::type_name((i * 2) as u8);
            if name == "other" {
                other += n;
                continue;
            }
            let _ = write!(s, "{}{name}:{n}", if first { "" } else { "," });
            first = false;
        }
        if other > 0 {
            let _ = write!(s, "{}other:{other}", if first { "" } else { "," });
        }
        self.window = [0; BUCKETS];
        self.window_max_us = 0;
        self.dirty = false;
        s
    }
}

/// Devices whose `stats` are written in one pass at most: each write is a xenstore
/// transaction (a few round trips through dom0), so with many busy devices they take turns.
pub const MAX_PUBLISH_PER_PASS: usize = 64;

/// Which of the devices with changed figures (`dirty`, in key order) get their `stats`
/// written this pass: up to `max`, starting after the last one written (`after`) and wrapping
/// around, so that every busy device has its turn.
pub fn publish_turn<K: Ord + Copy>(dirty: &[K], after: Option<K>, max: usize) -> Vec<K> {
    let start = after.map_or(0, |a| dirty.partition_point(|k| *k <= a));
    dirty
        .iter()
        .cycle()
        .skip(start)
        .take(dirty.len().min(max))
        .copied()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_devices_take_turns() {
        let keys: Vec<u32> = (0..10).collect();
        assert_eq!(publish_turn(&keys, None, 4), [0, 1, 2, 3]);
        assert_eq!(publish_turn(&keys, Some(3), 4), [4, 5, 6, 7]);
        assert_eq!(publish_turn(&keys, Some(7), 4), [8, 9, 0, 1]);
        // the last one written has gone: the next after it
        assert_eq!(publish_turn(&[1, 5, 9], Some(6), 2), [9, 1]);
        assert_eq!(publish_turn(&[1, 5, 9], Some(9), 10), [1, 5, 9]);
        assert!(publish_turn::<u32>(&[], Some(3), 4).is_empty());
        // every device is written within ceil(n / max) passes
        let mut after = None;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..3 {
            let t = publish_turn(&keys, after, 4);
            after = t.last().copied();
            seen.extend(t);
        }
        assert_eq!(seen.len(), 10);
    }

    fn msg(ty: u8, tag: u16, tail: &[u8]) -> Vec<u8> {
        let mut m = Vec::new();
        let size = 7 + tail.len() as u32;
        m.extend_from_slice(&size.to_le_bytes());
        m.push(ty);
        m.extend_from_slice(&tag.to_le_bytes());
        m.extend_from_slice(tail);
        m
    }

    fn kv(s: &str, k: &str) -> String {
        s.split(' ')
            .find_map(|w| w.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .unwrap_or_else(|| panic!("{k} missing in {s}"))
            .to_string()
    }

    #[test]
    fn buckets_are_monotonic_and_invert() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bucket(us);
            assert!(b >= last, "{us}");
            assert!(bucket_floor(b) <= us, "{us}: floor {}", bucket_floor(b));
            // within 25% of the value from the bucket's lower edge
            assert!(us - bucket_floor(b) <= us / 4, "{us}");
            last = b;
        }
        for b in 0..BUCKETS - 1 {
            assert_eq!(bucket(bucket_floor(b)), b);
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn counts_bytes_errors_and_kinds_from_the_messages() {
        let mut s = DevStats::default();
        s.taken(0, &msg(110, 1, &[]), 0);
        s.sent(0, &msg(111, 1, &[0, 0]), 1000);
        s.taken(0, &msg(116, 2, &[0; 16]), 1000);
        s.sent(0, &msg(RREAD, 2, &4096u32.to_le_bytes()), 3000);
        s.taken(1, &msg(118, 2, &[0; 16]), 1000);
        s.sent(1, &msg(RWRITE, 2, &512u32.to_le_bytes()), 5000);
        s.taken(1, &msg(118, 3, &[0; 16]), 1000);
        s.sent(1, &msg(RLERROR, 3, &EDQUOT.to_le_bytes()), 9000);
        s.taken(0, &msg(24, 4, &[]), 0);
        s.sent(0, &msg(RLERROR, 4, &2u32.to_le_bytes()), 1_000_000);
        s.taken(0, &msg(126, 5, &[]), 0);
        assert!(s.dirty());
        let r = s.render(
            QuotaFigures {
                bytes: Some(4096),
                files: None,
                open_files: 2,
            },
            RateFigures {
                max_iops: Some(100),
                max_bps: None,
                waits: 3,
                held_ms: 1500,
            },
        );
        assert_eq!(kv(&r, "requests"), "6");
        assert_eq!(kv(&r, "read_bytes"), "4096");
        assert_eq!(kv(&r, "written_bytes"), "512");
        assert_eq!(kv(&r, "errors"), "2");
        assert_eq!(kv(&r, "quota_refusals"), "1");
        assert_eq!(kv(&r, "lat_count"), "5");
        assert_eq!(kv(&r, "lat_sum_us"), (1 + 2 + 4 + 8 + 1000).to_string());
        assert_eq!(kv(&r, "lat_max_us"), "1000");
        assert_eq!(kv(&r, "used_bytes"), "4096");
        assert_eq!(kv(&r, "used_files"), "-");
        assert_eq!(kv(&r, "open_files"), "2");
        assert_eq!(kv(&r, "max_iops"), "100");
        assert_eq!(kv(&r, "max_bps"), "-");
        assert_eq!(kv(&r, "throttle_waits"), "3");
        assert_eq!(kv(&r, "throttled_ms"), "1500");
        assert_eq!(s.answered(), (5, 4096 + 512));
        assert_eq!(kv(&r, "types"), "getattr:1,walk:1,read:1,write:2,other:1");
        // the fields dom0's `pvfs top` reads, in the documented order
        let names: Vec<&str> = r
            .split(' ')
            .filter_map(|w| w.split_once('='))
            .map(|(k, _)| k)
            .collect();
        let mut want = pvfs_ring::xenbus::STATS_FIELDS.to_vec();
        want.push("types");
        assert_eq!(names, want);
        assert!(!s.dirty());
        // a new window: no latencies, counters kept
        let r = s.render(QuotaFigures::default(), RateFigures::default());
        assert_eq!(kv(&r, "lat_p50_us"), "0");
        assert_eq!(kv(&r, "lat_max_us"), "0");
        assert_eq!(kv(&r, "requests"), "6");
    }

    #[test]
    fn percentiles_follow_the_window() {
        let mut s = DevStats::default();
        // 90 requests of 100 us, 9 of 10 ms, 1 of 1 s
        let mut tag = 0u16;
        for (n, us) in [(90, 100u64), (9, 10_000), (1, 1_000_000)] {
            for _ in 0..n {
                tag += 1;
                s.taken(0, &msg(24, tag, &[]), 0);
                s.sent(0, &msg(25, tag, &[]), us * 1000);
            }
        }
        let p = |s: &DevStats, q| s.percentile_us(q);
        assert!((80..=100).contains(&p(&s, 50)), "{}", p(&s, 50));
        assert!((80..=100).contains(&p(&s, 90)), "{}", p(&s, 90));
        assert!((8_000..=10_000).contains(&p(&s, 99)), "{}", p(&s, 99));
        assert!((800_000..=1_000_000).contains(&p(&s, 100)));
    }

    #[test]
    fn hostile_tags_and_short_messages_stay_bounded() {
        let mut s = DevStats::default();
        for tag in 0..=u16::MAX {
            s.taken(0, &msg(24, tag, &[]), 0);
        }
        assert_eq!(s.in_flight.len(), MAX_TIMED);
        // replies for tags never timed, short and empty messages: counted, not timed
        s.sent(0, &msg(25, 60_000, &[]), 10);
        s.sent(0, &[], 10);
        s.sent(0, &[0, 0, 0, 0, RREAD, 1], 10);
        s.taken(0, &[1, 2], 10);
        assert_eq!(s.lat_count, 0);
        assert_eq!(s.read_bytes, 0);
        // the same tag on another ring is another request
        let mut s = DevStats::default();
        s.taken(0, &msg(24, 7, &[]), 0);
        s.taken(1, &msg(24, 7, &[]), 0);
        s.sent(1, &msg(25, 7, &[]), 2000);
        assert_eq!(s.in_flight, [(0, 7, 0)]);
        // a reused tag restarts its clock
        s.taken(0, &msg(24, 7, &[]), 5000);
        s.sent(0, &msg(25, 7, &[]), 6000);
        assert_eq!(s.lat_sum_us, 2 + 1);
    }
}
