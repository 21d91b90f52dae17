//! Publishing pvfs's figures in xenstore: the service's counters (`data/pvfs/stats`), the
//! stack peaks per request kind (`data/pvfs/stack`), each device's `fids` and `stats`. A
//! xenstore write is a round trip through dom0's xenstored, which must not sit between a
//! guest's requests, so they are written when they changed and at most once a second, on the
//! serve loop's idle path, and on its busy path once a second is up, so that a server that
//! never idles still shows its figures.

use crate::{heap, xen};
use alloc::format;
use alloc::string::String;

/// How often at most the figures are rewritten while they change.
const STATS_INTERVAL_NS: u64 = 1_000_000_000;

/// A timer may fire this much before its deadline (Xen's timer slop); deadlines this close
/// count as reached.
const TIMER_SLOP_NS: u64 = 1_000_000;

type ChangeKey = (xen::gnttab::Stats, crate::p9back::Counters, usize);

/// What was published last, and when.
pub(super) struct Publisher {
    stats_key: String,
    stack_key: String,
    last: Option<ChangeKey>,
    last_ns: u64,
    stack_warned: bool,
}

impl Publisher {
    /// Publishes under `base` (`/local/domain/<id>/data/pvfs`).
    pub(super) fn new(base: &str) -> Self {
        Self {
            stats_key: format!("{base}/stats"),
            stack_key: format!("{base}/stack"),
            last: None,
            last_ns: 0,
            stack_warned: false,
        }
    }

    /// Whether a second has passed since the last publication.
    pub(super) fn due(&self, now: u64) -> bool {
        now.saturating_add(TIMER_SLOP_NS) >= self.last_ns.saturating_add(STATS_INTERVAL_NS)
    }

    /// Publishes what changed if a second has passed (or `timer` is false: nothing would wake
    /// the loop later); returns when it will be due otherwise, for the loop's timer. Only
    /// counter changes trigger a write (heap figures ride along): a write's own reply wakes the
    /// loop, so writing on every heap wobble would never go idle.
    pub(super) fn tick(
        &mut self,
        service: &mut crate::p9back::Service,
        now: u64,
        timer: bool,
    ) -> Option<u64> {
        let gs = xen::gnttab::stats();
        let c = service.counters;
        let key = (gs, c, service.connected());
        // Devices' own figures left for a later pass are due as well.
        if Some(key) == self.last && !service.device_stats_pending() {
            return None;
        }
        if timer && !self.due(now) {
            return Some(self.last_ns.saturating_add(STATS_INTERVAL_NS));
        }
        let stack_moved = self
            .last
            .is_none_or(|(_, old, _)| old.stack_updates != c.stack_updates);
        self.counters(service, gs, stack_moved);
        // Each device's fids in use (`fids` key), with the counters: a guest's mount and
        // unmount move them, and `pvfs share rm` reads it.
        service.publish_fids();
        // Each device's own figures (`pvfs top`).
        service.publish_device_stats();
        self.last = Some(key);
        self.last_ns = xen::time::now_ns();
        None
    }

    /// Writes the counters (with the heap, grant and stack figures) to `data/pvfs/stats`, and
    /// the per-request-kind stack peaks to `data/pvfs/stack` when `stack_moved`; warns once
    /// when three quarters of the stack have been used.
    fn counters(
        &mut self,
        service: &crate::p9back::Service,
        gs: xen::gnttab::Stats,
        stack_moved: bool,
    ) {
        let (stats_key, stack_key) = (&self.stats_key, &self.stack_key);
        let c = service.counters;
        let hs = heap::stats();
        let stack = crate::stack::peak_used();
        let cache = service.cache_bytes();
        if stack > crate::stack::SIZE / 4 * 3 && !self.stack_warned {
            log::warn!(
                "stack: {stack} of {} bytes used at the deepest point so far",
                crate::stack::SIZE
            );
            self.stack_warned = true;
        }
        let stats = format!(
            "heap_live_bytes={} heap_live_allocs={} heap_peak_bytes={} grants_granted={} grants_mapped={} window_free_frames={} devices_connected={} connects={} disconnects={} requests={} violations={} busy_ms={} reads={} read_ms={} writes={} write_ms={} early_blocks={} deferred_reads={} early_writes={} late_write_errors={} held_ms={} turnarounds={} turnaround_ms={} take_ms={} reply_ms={} notify_ms={} hypercalls={} upcalls={} stack_peak_bytes={} integrity_checks={} quota_refusals={} cache_bytes={} cache_capacity_bytes={} blk_leaked_pages={} periodic_commits={} commit_ms={}",
            hs.live_bytes, hs.live_allocs, hs.peak_bytes, gs.granted, gs.mapped, xen::gnttab::window_free_frames(),
            service.connected(), c.connects, c.disconnects, c.requests, c.violations, c.busy_ms,
            c.reads, c.read_ms, c.writes, c.write_ms, c.early_blocks, c.deferred_reads, c.early_writes, c.late_write_errors, c.held_ms, c.turnarounds, c.turnaround_ms, c.take_ms, c.reply_ms, c.notify_ms, xen::hypercall_count(),
            xen::events::upcall_count(), stack, crate::arch::integrity::checks(), c.quota_refusals, cache.0, cache.1,
            xen::granted::leaked_pages(), c.periodic_commits, c.commit_ms
        );
        let _ = xen::store::write(stats_key, &stats);
        if stack_moved {
            let kinds = service.stack_peaks.render();
            let _ = xen::store::write(
                stack_key,
                &format!("peak={stack} size={} {kinds}", crate::stack::SIZE),
            );
        }
    }
}
