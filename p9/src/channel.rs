//! Serving one request channel of a transport that has a ring per channel (the Xen 9pfs
//! backend): write the replies that fit, accept the requests the client has produced, run
//! one, write again. The transport supplies the ring ([`Channel`]) and, if it wants them,
//! counters and timings ([`Hooks`]); this module holds the order of the work and its bounds,
//! so the loop is host-tested and fuzzed over a fake ring.
//!
//! Bounds: the accepted requests are bounded by the [`Queue`] (requests and bytes); the
//! replies waiting for ring space ([`Outbox`]) by [`MAX_PENDING_REPLIES`] and
//! [`MAX_PENDING_BYTES`]. Replies that need no work (Rversion, Rflush, an Rlerror for a
//! malformed or excess request) are made while a request is accepted, so a client that
//! sends without ever taking its replies would otherwise grow them without end. Once the
//! waiting replies reach a bound, no more requests are taken from the ring: they stay in the
//! client's own ring, which fills, and the client waits for ring space as it does when the
//! server is slow (back-pressure). A run request's replies are added only when none are
//! waiting, so what waits is at most the bounds plus one request's replies (one message of
//! up to `msize` bytes and the Rflush replies, at most 16, of flushes that waited for it).

use crate::sched::{Queue, Step};
use crate::server::Connection;
use crate::{Errno, Filesystem};
use alloc::collections::VecDeque;
use alloc::vec::Vec;

/// Replies waiting for ring space from which no more requests are taken off the ring.
pub const MAX_PENDING_REPLIES: usize = 64;
/// Bytes (allocated) of replies waiting for ring space from which no more requests are
/// taken off the ring.
pub const MAX_PENDING_BYTES: usize = 64 * 1024;

/// A transport's ring: whole requests in, whole replies out.
pub trait Channel {
    /// Why the ring cannot be used any more (the client broke the protocol).
    type Error;
    /// The next whole request, copied into a buffer from `buffer(len)`; `None` if the ring
    /// holds no complete request.
    fn take(
        &mut self,
        buffer: &mut dyn FnMut(usize) -> Vec<u8>,
    ) -> Result<Option<Vec<u8>>, Self::Error>;
    /// Writes one whole reply; `Ok(false)` if it does not fit now.
    fn put(&mut self, reply: &[u8]) -> Result<bool, Self::Error>;
    /// The session's negotiated message size (0: none yet), after each accepted request.
    fn set_msize(&mut self, _msize: u32) {}
    /// Signals the client that replies were written.
    fn notify(&mut self) {}
}

/// What a transport counts and times ([`serve`] calls these; all default to nothing).
pub trait Hooks {
    /// A clock in nanoseconds, for the `since` arguments below.
    fn now(&mut self) -> u64 {
        0
    }
    /// Runs `f` (a request, or a write answered early), returning its result and the stack
    /// depth it reached, if the transport measures it.
    fn measure<R>(&mut self, f: impl FnOnce() -> R) -> (R, usize) {
        (f(), 0)
    }
    /// A reply was written to the ring.
    fn sent(&mut self, _reply: &[u8]) {}
    /// Replies were written by a flush that started at `since`.
    fn flushed(&mut self, _since: u64) {}
    /// A request was taken off the ring.
    fn taken(&mut self, _msg: &[u8]) {}
    /// Requests were taken off the ring by a pass that started at `since`.
    fn accepted(&mut self, _since: u64) {}
    /// The queue took a step that started at `since` (not [`Step::Idle`]); the request's
    /// replies hold `reply_bytes`; `depth`: see [`measure`](Self::measure).
    fn stepped(&mut self, _step: Step, _reply_bytes: usize, _since: u64, _depth: usize) {}
    /// The client was signalled; the signal started at `since`.
    fn notified(&mut self, _since: u64) {}
    /// Every request accepted so far is answered and its replies written.
    fn answered(&mut self) {}
    /// A write answered before it ran has run (started at `since`), with this result.
    fn wrote_behind(&mut self, _res: Result<usize, Errno>, _since: u64, _depth: usize) {}
}

/// The default [`Hooks`]: nothing counted.
#[derive(Debug, Default)]
pub struct NoHooks;
impl Hooks for NoHooks {}

/// Replies waiting for ring space, in order, with the bytes they hold.
#[derive(Debug, Default)]
pub struct Outbox {
    replies: VecDeque<Vec<u8>>,
    bytes: usize,
}

impl Outbox {
    /// Appends a reply.
    pub fn push(&mut self, reply: Vec<u8>) {
        self.bytes = self.bytes.saturating_add(reply.capacity());
        self.replies.push_back(reply);
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.replies.is_empty()
    }

    /// Replies waiting.
    pub fn len(&self) -> usize {
        self.replies.len()
    }

    /// Bytes allocated for the replies waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether few enough replies wait that more requests may be taken off the ring.
    pub fn has_room(&self) -> bool {
        self.replies.len() < MAX_PENDING_REPLIES && self.bytes < MAX_PENDING_BYTES
    }

    fn pop(&mut self) -> Option<Vec<u8>> {
        let r = self.replies.pop_front()?;
        self.bytes = self.bytes.saturating_sub(r.capacity());
        Some(r)
    }
}

/// One channel's work: the requests accepted and the replies waiting for ring space.
#[derive(Debug)]
pub struct RingWork {
    /// Requests accepted and waiting to run.
    pub queue: Queue,
    /// Replies waiting for ring space.
    pub outbox: Outbox,
}

impl RingWork {
    /// Work for a channel whose queue holds at most `max_items` requests and `max_bytes`
    /// of them.
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        RingWork {
            queue: Queue::new(max_items, max_bytes),
            outbox: Outbox::default(),
        }
    }

    /// Whether nothing is accepted or waiting to be written.
    pub fn is_idle(&self) -> bool {
        self.queue.is_empty() && self.outbox.is_empty()
    }

    /// Writes waiting replies while they fit, handing each written one back to `conn` for
    /// reuse; true if any was written.
    // Same arguments and first lines as `accept`: the two directions of one pump step, which
    // share nothing past the clock reading.
    fn flush<C: Channel, F: Filesystem>(
        &mut self,
        ch: &mut C,
        conn: &Connection<F>,
        hooks: &mut impl Hooks,
    ) -> Result<bool, C::Error> {
        let t = hooks.now();
        let mut wrote = false;
        while let Some(reply) = self.outbox.replies.front() {
            if !ch.put(reply)? {
                break;
            }
            hooks.sent(reply);
            if let Some(sent) = self.outbox.pop() {
                conn.recycle(sent);
            }
            wrote = true;
        }
        if wrote {
            hooks.flushed(t);
        }
        Ok(wrote)
    }

    /// Takes every request the ring holds into the queue, while the queue and the outbox
    /// have room; true if any was taken.
    // Same arguments and first lines as `flush`: the other direction of the pump step.
    fn accept<C: Channel, F: Filesystem>(
        &mut self,
        ch: &mut C,
        conn: &Connection<F>,
        hooks: &mut impl Hooks,
    ) -> Result<bool, C::Error> {
        let t = hooks.now();
        let mut took = false;
        let mut ready = Vec::new();
        while self.queue.has_room() && self.outbox.has_room() {
            let Some(msg) = ch.take(&mut |n| conn.buffer(n))? else {
                break;
            };
            took = true;
            hooks.taken(&msg);
            self.queue.accept(conn, msg, &mut ready);
            for r in ready.drain(..) {
                self.outbox.push(r);
            }
            ch.set_msize(conn.msize());
        }
        if took {
            hooks.accepted(t);
        }
        Ok(took)
    }

    /// Runs the write the last step answered before running it, if any.
    fn finish_write<F: Filesystem>(&mut self, conn: &Connection<F>, hooks: &mut impl Hooks) {
        let t = hooks.now();
        let (ran, depth) = hooks.measure(|| self.queue.finish_write(conn));
        if let Some(res) = ran {
            hooks.wrote_behind(res, t, depth);
        }
    }

    /// One step for the channel: write the replies that fit, accept the requests the ring
    /// holds (within the bounds, see the module documentation), and take one scheduling
    /// step of the queue ([`Queue::step`]) unless replies are still waiting for space; write
    /// again, signal the client if anything was written, and run a write answered early.
    /// `disk` is the filesystem's disk progress count and whether it is idle. Returns true if
    /// anything moved; an error if the ring is broken (a write answered early still ran).
    pub fn serve<C: Channel, F: Filesystem>(
        &mut self,
        ch: &mut C,
        conn: &Connection<F>,
        disk: (u64, bool),
        hooks: &mut impl Hooks,
    ) -> Result<bool, C::Error> {
        let mut wrote = self.flush(ch, conn, hooks)?;
        let mut worked = self.accept(ch, conn, hooks)?;
        if self.outbox.is_empty() {
            let t = hooks.now();
            let mut out = Vec::new();
            let queue = &mut self.queue;
            let (step, depth) = hooks.measure(|| queue.step(conn, disk.0, disk.1, &mut out));
            if step != Step::Idle {
                worked = true;
                let bytes = out.iter().map(Vec::len).sum();
                for r in out {
                    self.outbox.push(r);
                }
                hooks.stepped(step, bytes, t, depth);
            }
        }
        match self.flush(ch, conn, hooks) {
            Ok(w) => wrote |= w,
            Err(e) => {
                // The ring is broken, but a write already answered still runs: the client
                // may have its reply.
                self.finish_write(conn, hooks);
                return Err(e);
            }
        }
        if wrote {
            let t = hooks.now();
            ch.notify();
            hooks.notified(t);
            if self.is_idle() {
                hooks.answered();
            }
        }
        // A write answered before it ran runs now, while the client already has its reply.
        self.finish_write(conn, hooks);
        Ok(worked || wrote)
    }
}

#[cfg(test)]
mod tests;
