//! The counters the 9pfs service publishes in `data/pvfs/stats`.

use pvfs_kernel::ringclock::Split;

/// Counters published in `data/pvfs/stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Devices ever connected.
    pub connects: u64,
    /// Devices torn down.
    pub disconnects: u64,
    /// Requests served.
    pub requests: u64,
    /// Devices disconnected for protocol violations.
    pub violations: u64,
    /// Time spent executing requests, in milliseconds.
    pub busy_ms: u64,
    pub(super) busy_ns: u64,
    /// Tread requests executed, and the time they took (ms).
    pub reads: u64,
    /// See `reads`.
    pub read_ms: u64,
    pub(super) read_ns: u64,
    /// Twrite requests executed, and the time they took (ms).
    pub writes: u64,
    /// See `writes`.
    pub write_ms: u64,
    pub(super) write_ns: u64,
    /// File-data blocks written back in the background (before an `fsync` or commit).
    pub early_blocks: u64,
    /// Treads put aside while the disk fetched their data, so other requests ran first.
    pub deferred_reads: u64,
    /// Twrites answered before they ran (run right after the reply was signalled, while the
    /// guest prepares its next request; see `pvfs_9p::server::WriteBehind`).
    pub early_writes: u64,
    /// Of those, the ones that then failed (a device error): the next fsync of the file
    /// returns the error.
    pub late_write_errors: u64,
    /// Time rings had requests in pvfs (accepted, not all answered), summed over rings (ms).
    pub held_ms: u64,
    /// Gaps of up to 100 ms between a ring's last reply and the guest's next request: their
    /// number, and their sum (ms). See `pvfs_kernel::ringclock`.
    pub turnarounds: u64,
    /// See `turnarounds`.
    pub turnaround_ms: u64,
    /// Time spent taking requests off the rings: copying them out and queueing them (ms).
    pub take_ms: u64,
    pub(super) take_ns: u64,
    /// Time spent copying replies into the rings (ms).
    pub reply_ms: u64,
    pub(super) reply_ns: u64,
    /// Time spent signalling guests (the event-channel hypercall; under nested emulation a
    /// large part of a request's time in pvfs, ms).
    pub notify_ms: u64,
    pub(super) notify_ns: u64,
    /// Requests executed, by 9P message type (logged when a device disconnects).
    pub by_type: TypeCounts,
    /// Times a kind of request went deeper into the stack than before (`Service::stack_peaks`).
    pub stack_updates: u64,
    /// Replies that refused a request for a quota: `Rlerror(EDQUOT)` written to a ring.
    pub quota_refusals: u64,
    /// Periodic write-backs of what guests changed without fsync (one an interval at most,
    /// busy or idle; `pvfs_kernel::commitclock`).
    pub periodic_commits: u64,
    /// Time the periodic write-backs took (ms): pvfs serves no request meanwhile.
    pub commit_ms: u64,
    pub(super) commit_ns: u64,
    pub(super) split: Split,
}

/// Requests executed per 9P message type (T-messages have even numbers below 128).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeCounts([u64; 64]);

impl Default for TypeCounts {
    fn default() -> Self {
        Self([0; 64])
    }
}

impl TypeCounts {
    pub(super) fn count(&mut self, ty: u8) {
        if let Some(c) = self.0.get_mut(usize::from(ty / 2)) {
            *c = c.saturating_add(1);
        }
    }
}

impl core::fmt::Display for TypeCounts {
    /// `type=count` for every type seen, e.g. `110=2000 116=512`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let mut first = true;
        for (i, &n) in self.0.iter().enumerate() {
            if n > 0 {
                write!(f, "{}{}={n}", if first { "" } else { " " }, i * 2)?;
                first = false;
            }
        }
        Ok(())
    }
}

/// Whether `reply` is an `Rlerror` carrying `EDQUOT` (size[4] type[1] tag[2] ecode[4]).
pub(super) fn is_quota_refusal(reply: &[u8]) -> bool {
    match (reply.get(4), reply.get(7..11)) {
        (Some(&ty), Some(e)) if ty == pvfs_9p::wire::ty::RLERROR => {
            e == pvfs_9p::fs::Errno::EDQUOT.0.to_le_bytes()
        }
        _ => false,
    }
}

impl Counters {
    pub(super) fn add_ns(total: &mut u64, ms: &mut u64, since: u64) {
        let ns = crate::xen::time::now_ns().saturating_sub(since);
        *total = total.saturating_add(ns);
        *ms = *total / 1_000_000;
    }

    pub(super) fn note_split(&mut self) {
        self.held_ms = self.split.held_ns / 1_000_000;
        self.turnarounds = self.split.turnarounds;
        self.turnaround_ms = self.split.turnaround_ns / 1_000_000;
    }
}
