//! One ring's service step: the kernel's side of `pvfs_9p::channel` (the order of the work
//! and its bounds live there, host-tested and fuzzed): the mapped ring as a
//! [`Channel`], and the counters, clocks, stack depths and tracing as its [`Hooks`].

use super::{counters, Counters, Link, Mapped, RingState, ShareFs, TRACE_9P};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::sync::atomic::Ordering;
use pvfs_9p::channel::{Channel, Hooks};
use pvfs_9p::sched::Step;
use pvfs_9p::{Connection, Errno};
use pvfs_kernel::devstats::DevStats;
use pvfs_kernel::ringclock::{Kind, Profile, RingClock};
use pvfs_kernel::stackuse::KindPeaks;
use pvfs_ring::xenbus::ConnectedRing;

/// Requests slower than this are logged (with their type), to find stalls.
const SLOW_REQUEST_NS: u64 = 100_000_000;

/// Ring `i` of a device, as the 9P core's channel.
struct RingChannel<'a> {
    r: &'a mut ConnectedRing<Mapped>,
    i: usize,
}

impl Channel for RingChannel<'_> {
    type Error = String;
    fn take(
        &mut self,
        buffer: &mut dyn FnMut(usize) -> Vec<u8>,
    ) -> Result<Option<Vec<u8>>, String> {
        let r = &mut *self.r;
        r.ring
            .next_request_with(&r.intf, &r.data, buffer)
            .map_err(|e| format!("bad request on ring {}: {e:?}", self.i))
    }
    fn put(&mut self, reply: &[u8]) -> Result<bool, String> {
        let r = &mut *self.r;
        r.ring
            .write_response(&r.intf, &r.data, reply)
            .map_err(|e| format!("writing a reply: {e:?}"))
    }
    fn set_msize(&mut self, msize: u32) {
        if msize != 0 {
            self.r.ring.set_msize(msize);
        }
    }
    fn notify(&mut self) {
        let _ = crate::xen::events::notify(self.r.port);
    }
}

/// What ring `i`'s service step counts and times.
struct RingHooks<'a> {
    i: usize,
    /// The device's own statistics.
    dev: &'a mut DevStats,
    counters: &'a mut Counters,
    profile: &'a mut Profile,
    stack: &'a mut KindPeaks,
    clock: &'a mut RingClock,
}

fn now() -> u64 {
    crate::xen::time::now_ns()
}

/// Ring `i`'s number for [`DevStats`] (a device has at most `max-rings` rings).
fn ring_no(i: usize) -> u16 {
    u16::try_from(i).unwrap_or(u16::MAX)
}

impl Hooks for RingHooks<'_> {
    fn now(&mut self) -> u64 {
        now()
    }
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, usize) {
        crate::stack::measure(f)
    }
    fn sent(&mut self, reply: &[u8]) {
        self.dev.sent(ring_no(self.i), reply, now());
        if counters::is_quota_refusal(reply) {
            self.counters.quota_refusals += 1;
        }
        if TRACE_9P.load(Ordering::Relaxed) {
            log::info!("9p< {}", pvfs_9p::wire::summary(reply));
        }
    }
    fn flushed(&mut self, since: u64) {
        let c = &mut *self.counters;
        Counters::add_ns(&mut c.reply_ns, &mut c.reply_ms, since);
    }
    fn taken(&mut self, msg: &[u8]) {
        self.counters.requests += 1;
        self.dev.taken(ring_no(self.i), msg, now());
        if TRACE_9P.load(Ordering::Relaxed) {
            log::info!("9p> ring {}: {}", self.i, pvfs_9p::wire::summary(msg));
        }
    }
    fn accepted(&mut self, since: u64) {
        let c = &mut *self.counters;
        Counters::add_ns(&mut c.take_ns, &mut c.take_ms, since);
        self.clock.arrived(now(), &mut c.split, self.profile);
    }
    fn stepped(&mut self, step: Step, reply_bytes: usize, since: u64, depth: usize) {
        let c = &mut *self.counters;
        let Step::Ran { ty, size } = step else {
            if step == Step::Deferred {
                c.deferred_reads += 1;
            }
            return;
        };
        c.by_type.count(ty);
        note_stack(self.stack, c, ty, depth);
        self.clock.ran(Kind::new(ty, size.max(reply_bytes)));
        let ns = now().saturating_sub(since);
        c.busy_ns = c.busy_ns.saturating_add(ns);
        c.busy_ms = c.busy_ns / 1_000_000;
        match ty {
            pvfs_9p::wire::ty::TREAD => {
                c.reads += 1;
                c.read_ns = c.read_ns.saturating_add(ns);
                c.read_ms = c.read_ns / 1_000_000;
            }
            pvfs_9p::wire::ty::TWRITE => {
                c.writes += 1;
                c.write_ns = c.write_ns.saturating_add(ns);
                c.write_ms = c.write_ns / 1_000_000;
            }
            _ => {}
        }
        if ns > SLOW_REQUEST_NS {
            log::info!(
                "9pfs: a request (type {ty}, {size} bytes) took {} ms",
                ns / 1_000_000
            );
        }
    }
    fn notified(&mut self, since: u64) {
        self.clock
            .notified(now().saturating_sub(since), self.profile);
        let c = &mut *self.counters;
        Counters::add_ns(&mut c.notify_ns, &mut c.notify_ms, since);
    }
    fn answered(&mut self) {
        self.clock
            .answered(now(), &mut self.counters.split, self.profile);
        self.counters.note_split();
    }
    fn wrote_behind(&mut self, res: Result<usize, Errno>, since: u64, depth: usize) {
        let c = &mut *self.counters;
        c.early_writes += 1;
        note_stack(self.stack, c, pvfs_9p::wire::ty::TWRITE, depth);
        Counters::add_ns(&mut c.write_ns, &mut c.write_ms, since);
        if let Err(e) = res {
            c.late_write_errors += 1;
            log::warn!(
                "9pfs: ring {}: a write answered early failed afterwards (errno {}); the next \
                 fsync of the file returns the error",
                self.i,
                e.0
            );
        }
    }
}

/// One step for ring `i` ([`pvfs_9p::channel::RingWork::serve`]): write the replies that
/// fit, accept the requests the guest has produced (while the queue and the replies waiting
/// for space are within their bounds), take one scheduling step unless replies are still
/// waiting, write again and signal the guest, then run a write answered early. `disk` is the
/// volume's progress count and whether it is idle. Returns true if anything moved; an error
/// if the guest broke the ring protocol.
pub(super) fn serve_ring(
    link: &mut Link,
    i: usize,
    counters: &mut Counters,
    profile: &mut Profile,
    stack: &mut KindPeaks,
    disk: (u64, bool),
) -> Result<bool, String> {
    let Link {
        rings, conn, stats, ..
    } = link;
    let conn: &Connection<ShareFs> = conn;
    let Some(RingState {
        ring, work, clock, ..
    }) = rings.get_mut(i)
    else {
        return Ok(false);
    };
    let mut hooks = RingHooks {
        i,
        dev: stats,
        counters,
        profile,
        stack,
        clock,
    };
    work.serve(&mut RingChannel { r: ring, i }, conn, disk, &mut hooks)
}

/// Records the stack depth a request of type `ty` reached; warns once a kind passes three
/// quarters of the stack.
fn note_stack(stack: &mut KindPeaks, counters: &mut Counters, ty: u8, depth: usize) {
    if stack.note(ty, depth) {
        counters.stack_updates += 1;
        if depth > crate::stack::SIZE / 4 * 3 {
            log::warn!(
                "stack: a {} request reached {depth} of {} bytes",
                pvfs_kernel::stackuse::type_name(ty),
                crate::stack::SIZE
            );
        }
    }
}
