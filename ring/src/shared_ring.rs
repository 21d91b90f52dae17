//! The generic request/response rings of Xen's `io/ring.h`, over [`SharedMem`].
//!
//! A shared ring (`struct *_sring`) is a 64-byte header followed by a power-of-two array of
//! fixed-size entries. Each entry is a union of the protocol's request and response, so its size
//! is `max(sizeof request, sizeof response)`:
//!
//! | offset | field       | written by |
//! |--------|-------------|------------|
//! | 0      | `req_prod`  | frontend   |
//! | 4      | `req_event` | backend    |
//! | 8      | `rsp_prod`  | backend    |
//! | 12     | `rsp_event` | frontend   |
//! | 16..64 | padding     |            |
//! | 64     | entries     | both       |
//!
//! The entry count is `__RING_SIZE`: `(ring bytes - 64) / entry size`, rounded down to a power
//! of two. A multi-page ring (`ring-page-order`) is the same structure over `PAGE_SIZE << order`
//! contiguous bytes; the [`SharedMem`] given here must present the pages contiguously.
//!
//! Each end keeps private copies of the indices it owns (`req_prod_pvt`/`rsp_cons` in
//! [`FrontRing`], `rsp_prod_pvt`/`req_cons` in [`BackRing`]) and only stores them; it never
//! trusts a value read back. Entries are opaque byte arrays here: typed encoding lives in the
//! protocol modules ([`crate::blkif`]).
//!
//! No-panic contract: every method accepts any contents of the shared region. Indices from the
//! other end are validated before use (`RING_REQUEST_PROD_OVERFLOW`,
//! `RING_REQUEST_CONS_OVERFLOW`, and on the frontend "no more responses than requests
//! published"); a violation is [`RingError::Overflow`], after which the device should be
//! disconnected. Entries are copied out once (`RING_COPY_REQUEST`) and only the copy is parsed.
//! Every call does a bounded amount of work (at most one entry, or a constant number of index
//! accesses).

use crate::shmem::{OutOfBounds, SharedMem};

/// Size of the shared ring header, including padding.
pub const HEADER_LEN: usize = 64;
/// Offset of `req_prod`.
pub const REQ_PROD: usize = 0;
/// Offset of `req_event`.
pub const REQ_EVENT: usize = 4;
/// Offset of `rsp_prod`.
pub const RSP_PROD: usize = 8;
/// Offset of `rsp_event`.
pub const RSP_EVENT: usize = 12;

/// Errors from a shared ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The region cannot hold a ring of at least one entry of `entry_size` bytes.
    BadGeometry {
        /// Ring size in bytes.
        bytes: usize,
        /// Entry size in bytes.
        entry_size: usize,
    },
    /// The other end's index is further ahead than the ring allows: protocol violation; the
    /// device should be disconnected.
    Overflow {
        /// The other end's producer index as read.
        prod: u32,
        /// Our reference index (consumer or private producer).
        cons: u32,
        /// Entries in the ring.
        size: u32,
    },
    /// No free slot for another request, or no consumed request left to answer.
    Full,
    /// A buffer longer than the entry size was given.
    EntryTooLong {
        /// Buffer length.
        len: usize,
        /// Entry size.
        entry_size: usize,
    },
    /// An access fell outside the shared region.
    OutOfBounds(OutOfBounds),
}

impl From<OutOfBounds> for RingError {
    fn from(e: OutOfBounds) -> Self {
        RingError::OutOfBounds(e)
    }
}

/// Entry size and count of a ring (`__RING_SIZE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    entry_size: usize,
    nr_ents: u32,
}

impl Geometry {
    /// The geometry of a ring of `bytes` bytes (header included) with `entry_size`-byte
    /// entries: the entry count is rounded down to a power of two.
    pub fn new(bytes: usize, entry_size: usize) -> Result<Self, RingError> {
        let bad = RingError::BadGeometry { bytes, entry_size };
        if entry_size == 0 {
            return Err(bad);
        }
        let n = bytes.checked_sub(HEADER_LEN).ok_or(bad)? / entry_size;
        if n == 0 {
            return Err(bad);
        }
        // Round down to a power of two, and keep it within u32 (indices are u32).
        let n = 1usize << (usize::BITS - 1 - n.leading_zeros());
        let n = n.min(1 << 31);
        Ok(Self {
            entry_size,
            nr_ents: n as u32,
        })
    }

    /// Entries in the ring (`RING_SIZE`).
    pub fn nr_ents(&self) -> u32 {
        self.nr_ents
    }

    /// Bytes per entry.
    pub fn entry_size(&self) -> usize {
        self.entry_size
    }

    /// Bytes used by header and entries.
    pub fn used_bytes(&self) -> usize {
        HEADER_LEN + self.entry_size * self.nr_ents as usize
    }

    fn entry_off(&self, idx: u32) -> usize {
        HEADER_LEN + (idx & (self.nr_ents - 1)) as usize * self.entry_size
    }

    fn check_region<M: SharedMem + ?Sized>(&self, mem: &M) -> Result<(), RingError> {
        if self.used_bytes() > mem.len() {
            return Err(RingError::BadGeometry {
                bytes: mem.len(),
                entry_size: self.entry_size,
            });
        }
        Ok(())
    }

    fn check_entry_len(&self, len: usize) -> Result<(), RingError> {
        if len > self.entry_size {
            return Err(RingError::EntryTooLong {
                len,
                entry_size: self.entry_size,
            });
        }
        Ok(())
    }

    /// The checks before every copy in or out: an entry length that fits, a big enough region.
    fn check_io<M: SharedMem + ?Sized>(&self, mem: &M, len: usize) -> Result<(), RingError> {
        self.check_entry_len(len)?;
        self.check_region(mem)
    }

    /// Writes `entry` into slot `*idx` and advances the private producer index.
    fn write_slot<M: SharedMem + ?Sized>(
        &self,
        mem: &M,
        idx: &mut u32,
        entry: &[u8],
    ) -> Result<(), RingError> {
        mem.write_bytes(self.entry_off(*idx), entry)?;
        *idx = idx.wrapping_add(1);
        Ok(())
    }

    /// Copies slot `*idx` into `dst` and advances the consumer index.
    fn read_slot<M: SharedMem + ?Sized>(
        &self,
        mem: &M,
        idx: &mut u32,
        dst: &mut [u8],
    ) -> Result<(), RingError> {
        mem.read_bytes(self.entry_off(*idx), dst)?;
        *idx = idx.wrapping_add(1);
        Ok(())
    }
}

/// `SHARED_RING_INIT`: zeroes the header, sets both event indices to 1 (notify on the first
/// message), and zeroes the entries. The frontend does this before granting the ring.
pub fn init_shared<M: SharedMem + ?Sized>(mem: &M) -> Result<(), RingError> {
    let zero = [0u8; HEADER_LEN];
    mem.write_bytes(0, &zero)?;
    let mut off = HEADER_LEN;
    while off < mem.len() {
        let n = (mem.len() - off).min(zero.len());
        mem.write_bytes(off, zero.get(..n).unwrap_or(&[]))?;
        off += n;
    }
    mem.store_u32_release(REQ_EVENT, 1)?;
    mem.store_u32_release(RSP_EVENT, 1)?;
    Ok(())
}

/// `notify = (new - event) < (new - old)` in wrapping arithmetic: the other end asked to be
/// woken at `event`, and that index lies in `(old, new]`.
fn need_notify(old: u32, new: u32, event: u32) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

/// Publishes `new` as the producer index at `offs.0` and says whether the peer asked, through
/// its event index at `offs.1`, to be notified: `RING_PUSH_REQUESTS_AND_CHECK_NOTIFY` for the
/// frontend, `RING_PUSH_RESPONSES_AND_CHECK_NOTIFY` for the backend. `published` is the index
/// published last, updated once the store is done.
fn push<M: SharedMem + ?Sized>(
    mem: &M,
    offs: (usize, usize),
    published: &mut u32,
    new: u32,
) -> Result<bool, RingError> {
    let old = *published;
    // store_u32_release orders the entry writes before the index.
    mem.store_u32_release(offs.0, new)?;
    *published = new;
    // The peer must see the new index before we read its event threshold.
    mem.full_barrier();
    let event = mem.load_u32_acquire(offs.1)?;
    Ok(need_notify(old, new, event))
}

/// Asks to be notified of the entry after `cons` (`*_event = cons + 1`), the first half of
/// both `RING_FINAL_CHECK_FOR_*`; the caller then checks again.
fn rearm<M: SharedMem + ?Sized>(mem: &M, event_off: usize, cons: u32) -> Result<(), RingError> {
    mem.store_u32_release(event_off, cons.wrapping_add(1))?;
    mem.full_barrier();
    Ok(())
}

/// The frontend end of a ring: produces requests, consumes responses.
#[derive(Debug, Clone)]
pub struct FrontRing {
    geo: Geometry,
    req_prod_pvt: u32,
    req_prod_published: u32,
    rsp_cons: u32,
}

impl FrontRing {
    /// Initialises the shared ring in `mem` (`SHARED_RING_INIT`) and attaches to it at index 0
    /// (`FRONT_RING_INIT`). The ring spans all of `mem`.
    pub fn init<M: SharedMem + ?Sized>(mem: &M, entry_size: usize) -> Result<Self, RingError> {
        let geo = Geometry::new(mem.len(), entry_size)?;
        init_shared(mem)?;
        Ok(Self::attach(geo, 0))
    }

    /// Attaches with both private indices at `idx` (`FRONT_RING_ATTACH`), without touching
    /// shared memory.
    pub fn attach(geo: Geometry, idx: u32) -> Self {
        Self {
            geo,
            req_prod_pvt: idx,
            req_prod_published: idx,
            rsp_cons: idx,
        }
    }

    /// The ring geometry.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// Requests that can still be queued (`RING_FREE_REQUESTS`).
    pub fn free_requests(&self) -> u32 {
        self.geo.nr_ents - self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// True when no request can be queued (`RING_FULL`).
    pub fn is_full(&self) -> bool {
        self.free_requests() == 0
    }

    /// Requests published or queued whose responses have not been consumed.
    pub fn outstanding(&self) -> u32 {
        self.req_prod_pvt.wrapping_sub(self.rsp_cons)
    }

    /// Copies `entry` into the next request slot (the rest of the slot is left as is) and
    /// advances the private producer. Not visible to the backend until
    /// [`push_requests`](Self::push_requests).
    pub fn queue_request<M: SharedMem + ?Sized>(
        &mut self,
        mem: &M,
        entry: &[u8],
    ) -> Result<(), RingError> {
        self.geo.check_io(mem, entry.len())?;
        if self.is_full() {
            return Err(RingError::Full);
        }
        self.geo.write_slot(mem, &mut self.req_prod_pvt, entry)
    }

    /// Publishes queued requests and says whether the backend must be notified
    /// (`RING_PUSH_REQUESTS_AND_CHECK_NOTIFY`).
    pub fn push_requests<M: SharedMem + ?Sized>(&mut self, mem: &M) -> Result<bool, RingError> {
        push(
            mem,
            (REQ_PROD, REQ_EVENT),
            &mut self.req_prod_published,
            self.req_prod_pvt,
        )
    }

    /// Responses ready to consume (`RING_HAS_UNCONSUMED_RESPONSES`), after checking that the
    /// backend does not claim more responses than requests were published.
    pub fn unconsumed_responses<M: SharedMem + ?Sized>(&self, mem: &M) -> Result<u32, RingError> {
        let rsp_prod = mem.load_u32_acquire(RSP_PROD)?;
        let avail = rsp_prod.wrapping_sub(self.rsp_cons);
        if avail > self.req_prod_published.wrapping_sub(self.rsp_cons) {
            return Err(RingError::Overflow {
                prod: rsp_prod,
                cons: self.rsp_cons,
                size: self.geo.nr_ents,
            });
        }
        Ok(avail)
    }

    /// Copies the next response into `dst` (`dst.len()` ≤ entry size) and consumes it.
    /// Returns `Ok(false)` when there is none.
    pub fn take_response<M: SharedMem + ?Sized>(
        &mut self,
        mem: &M,
        dst: &mut [u8],
    ) -> Result<bool, RingError> {
        self.geo.check_io(mem, dst.len())?;
        if self.unconsumed_responses(mem)? == 0 {
            return Ok(false);
        }
        self.geo.read_slot(mem, &mut self.rsp_cons, dst)?;
        Ok(true)
    }

    /// `RING_FINAL_CHECK_FOR_RESPONSES`: if no response is pending, asks to be notified on the
    /// next one (`rsp_event = rsp_cons + 1`) and checks again, closing the race with a
    /// response published meanwhile. True means more responses are ready.
    pub fn final_check_for_responses<M: SharedMem + ?Sized>(
        &mut self,
        mem: &M,
    ) -> Result<bool, RingError> {
        if self.unconsumed_responses(mem)? > 0 {
            return Ok(true);
        }
        rearm(mem, RSP_EVENT, self.rsp_cons)?;
        Ok(self.unconsumed_responses(mem)? > 0)
    }

    /// Private request producer index.
    pub fn req_prod_pvt(&self) -> u32 {
        self.req_prod_pvt
    }

    /// Private response consumer index.
    pub fn rsp_cons(&self) -> u32 {
        self.rsp_cons
    }
}

/// The backend end of a ring: consumes requests, produces responses.
#[derive(Debug, Clone)]
pub struct BackRing {
    geo: Geometry,
    rsp_prod_pvt: u32,
    rsp_prod_published: u32,
    req_cons: u32,
}

impl BackRing {
    /// Attaches to a ring the frontend initialised, spanning all of `mem`, at index 0
    /// (`BACK_RING_INIT`).
    pub fn new<M: SharedMem + ?Sized>(mem: &M, entry_size: usize) -> Result<Self, RingError> {
        Ok(Self::attach(Geometry::new(mem.len(), entry_size)?, 0))
    }

    /// Attaches with both private indices at `idx` (`BACK_RING_ATTACH`).
    pub fn attach(geo: Geometry, idx: u32) -> Self {
        Self {
            geo,
            rsp_prod_pvt: idx,
            rsp_prod_published: idx,
            req_cons: idx,
        }
    }

    /// The ring geometry.
    pub fn geometry(&self) -> Geometry {
        self.geo
    }

    /// Requests ready to consume (`RING_HAS_UNCONSUMED_REQUESTS`), after the
    /// `RING_REQUEST_PROD_OVERFLOW` check: a frontend whose `req_prod` is more than the ring
    /// size ahead of our responses is broken or hostile ([`RingError::Overflow`]).
    pub fn unconsumed_requests<M: SharedMem + ?Sized>(&self, mem: &M) -> Result<u32, RingError> {
        let req_prod = mem.load_u32_acquire(REQ_PROD)?;
        let n = self.geo.nr_ents;
        if req_prod.wrapping_sub(self.rsp_prod_pvt) > n {
            return Err(RingError::Overflow {
                prod: req_prod,
                cons: self.rsp_prod_pvt,
                size: n,
            });
        }
        let req = req_prod.wrapping_sub(self.req_cons);
        let room = n - self.req_cons.wrapping_sub(self.rsp_prod_pvt);
        Ok(req.min(room))
    }

    /// Copies the next request into `dst` (`dst.len()` ≤ entry size) and consumes it
    /// (`RING_COPY_REQUEST`: parse only the copy). Returns `Ok(false)` when there is none.
    pub fn take_request<M: SharedMem + ?Sized>(
        &mut self,
        mem: &M,
        dst: &mut [u8],
    ) -> Result<bool, RingError> {
        self.geo.check_io(mem, dst.len())?;
        if self.unconsumed_requests(mem)? == 0 {
            return Ok(false);
        }
        // RING_REQUEST_CONS_OVERFLOW: never consume a slot whose response is still pending.
        if self.req_cons.wrapping_sub(self.rsp_prod_pvt) >= self.geo.nr_ents {
            return Err(RingError::Full);
        }
        self.geo.read_slot(mem, &mut self.req_cons, dst)?;
        Ok(true)
    }

    /// Requests consumed but not yet answered.
    pub fn pending_responses(&self) -> u32 {
        self.req_cons.wrapping_sub(self.rsp_prod_pvt)
    }

    /// Writes `entry` into the next response slot. There must be a consumed, unanswered
    /// request ([`RingError::Full`] otherwise). Not visible until
    /// [`push_responses`](Self::push_responses).
    pub fn queue_response<M: SharedMem + ?Sized>(
        &mut self,
        mem: &M,
        entry: &[u8],
    ) -> Result<(), RingError> {
        self.geo.check_io(mem, entry.len())?;
        if self.pending_responses() == 0 {
            return Err(RingError::Full);
        }
        self.geo.write_slot(mem, &mut self.rsp_prod_pvt, entry)
    }

    /// Publishes queued responses and says whether the frontend must be notified
    /// (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY`).
    pub fn push_responses<M: SharedMem + ?Sized>(&mut self, mem: &M) -> Result<bool, RingError> {
        push(
            mem,
            (RSP_PROD, RSP_EVENT),
            &mut self.rsp_prod_published,
            self.rsp_prod_pvt,
        )
    }

    /// `RING_FINAL_CHECK_FOR_REQUESTS`: if no request is pending, re-arms `req_event =
    /// req_cons + 1` and checks again. True means more requests are ready.
    pub fn final_check_for_requests<M: SharedMem + ?Sized>(
        &mut self,
        mem: &M,
    ) -> Result<bool, RingError> {
        if self.unconsumed_requests(mem)? > 0 {
            return Ok(true);
        }
        rearm(mem, REQ_EVENT, self.req_cons)?;
        Ok(self.unconsumed_requests(mem)? > 0)
    }

    /// Private request consumer index.
    pub fn req_cons(&self) -> u32 {
        self.req_cons
    }

    /// Private response producer index.
    pub fn rsp_prod_pvt(&self) -> u32 {
        self.rsp_prod_pvt
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shmem::LocalMem;

    const PAGE: usize = 4096;

    #[test]
    fn ring_size_matches_ring_h() {
        // blkif: 112-byte entries, one page -> 36 -> 32 entries (Linux BLK_RING_SIZE).
        assert_eq!(Geometry::new(PAGE, 112).unwrap().nr_ents(), 32);
        // Two pages -> (8192-64)/112 = 72 -> 64.
        assert_eq!(Geometry::new(2 * PAGE, 112).unwrap().nr_ents(), 64);
        // netif tx: 12-byte entries -> 336 -> 256.
        assert_eq!(Geometry::new(PAGE, 12).unwrap().nr_ents(), 256);
        assert_eq!(Geometry::new(16 * PAGE, 112).unwrap().nr_ents(), 512);
        assert!(Geometry::new(64, 8).is_err());
        assert!(Geometry::new(10, 8).is_err());
        assert!(Geometry::new(PAGE, 0).is_err());
        assert_eq!(Geometry::new(64 + 16, 16).unwrap().nr_ents(), 1);
    }

    #[test]
    fn init_sets_events_and_zeroes() {
        let m = LocalMem::new(PAGE);
        m.write_bytes(100, &[0xaa; 50]).unwrap();
        m.store_u32_release(REQ_PROD, 77).unwrap();
        let f = FrontRing::init(&m, 112).unwrap();
        assert_eq!(m.load_u32_acquire(REQ_PROD).unwrap(), 0);
        assert_eq!(m.load_u32_acquire(REQ_EVENT).unwrap(), 1);
        assert_eq!(m.load_u32_acquire(RSP_EVENT).unwrap(), 1);
        let mut b = [1u8; 50];
        m.read_bytes(100, &mut b).unwrap();
        assert_eq!(b, [0; 50]);
        assert_eq!(f.free_requests(), 32);
    }

    fn entry(tag: u32, size: usize) -> Vec<u8> {
        (0..size).map(|i| (tag as usize * 7 + i) as u8).collect()
    }

    #[test]
    fn round_trip_many_wraps() {
        let m = LocalMem::new(PAGE);
        let mut f = FrontRing::init(&m, 112).unwrap();
        let mut b = BackRing::new(&m, 112).unwrap();
        let mut buf = [0u8; 112];
        let mut next = 0u32;
        let mut done = 0u32;
        for round in 0..40 {
            let batch = 1 + round % 32;
            for _ in 0..batch {
                f.queue_request(&m, &entry(next, 112)).unwrap();
                next += 1;
            }
            f.push_requests(&m).unwrap();
            while b.take_request(&m, &mut buf).unwrap() {
                b.queue_response(&m, &buf[..16]).unwrap();
            }
            b.push_responses(&m).unwrap();
            let mut r = [0u8; 16];
            while f.take_response(&m, &mut r).unwrap() {
                assert_eq!(r.as_slice(), &entry(done, 16)[..]);
                done += 1;
            }
        }
        assert_eq!(done, next);
        assert_eq!(f.outstanding(), 0);
        assert_eq!(b.pending_responses(), 0);
    }

    #[test]
    fn full_ring_refuses_and_backend_cannot_overanswer() {
        let m = LocalMem::new(PAGE);
        let mut f = FrontRing::init(&m, 112).unwrap();
        for i in 0..32 {
            f.queue_request(&m, &entry(i, 8)).unwrap();
        }
        assert!(f.is_full());
        assert_eq!(f.queue_request(&m, &[0; 8]), Err(RingError::Full));
        assert_eq!(
            f.queue_request(&m, &[0; 113]),
            Err(RingError::EntryTooLong {
                len: 113,
                entry_size: 112
            })
        );
        let mut b = BackRing::new(&m, 112).unwrap();
        // Not yet published: nothing to take.
        assert!(!b.take_request(&m, &mut [0; 8]).unwrap());
        assert_eq!(b.queue_response(&m, &[0; 8]), Err(RingError::Full));
        f.push_requests(&m).unwrap();
        assert_eq!(b.unconsumed_requests(&m).unwrap(), 32);
    }

    #[test]
    fn notification_suppression() {
        let m = LocalMem::new(PAGE);
        let mut f = FrontRing::init(&m, 112).unwrap();
        let mut b = BackRing::new(&m, 112).unwrap();
        // req_event = 1 after init: first push notifies.
        f.queue_request(&m, &[1]).unwrap();
        assert!(f.push_requests(&m).unwrap());
        // Backend is busy (has not re-armed): the second push does not notify.
        f.queue_request(&m, &[2]).unwrap();
        assert!(!f.push_requests(&m).unwrap());
        let mut buf = [0u8; 1];
        assert!(b.take_request(&m, &mut buf).unwrap());
        assert!(b.take_request(&m, &mut buf).unwrap());
        // Backend drains and re-arms.
        assert!(!b.final_check_for_requests(&m).unwrap());
        assert_eq!(m.load_u32_acquire(REQ_EVENT).unwrap(), 3);
        f.queue_request(&m, &[3]).unwrap();
        f.queue_request(&m, &[4]).unwrap();
        assert!(f.push_requests(&m).unwrap());
        // Final check with work pending reports it without re-arming.
        assert!(b.final_check_for_requests(&m).unwrap());
        assert_eq!(m.load_u32_acquire(REQ_EVENT).unwrap(), 3);

        // Responses: rsp_event = 1 after init.
        b.queue_response(&m, &[9]).unwrap();
        assert!(b.push_responses(&m).unwrap());
        b.queue_response(&m, &[9]).unwrap();
        assert!(!b.push_responses(&m).unwrap());
        let mut r = [0u8; 1];
        assert!(f.take_response(&m, &mut r).unwrap());
        assert!(f.take_response(&m, &mut r).unwrap());
        assert!(!f.final_check_for_responses(&m).unwrap());
        assert_eq!(m.load_u32_acquire(RSP_EVENT).unwrap(), 3);
        // A response published between the two checks is found by the second.
        assert!(b.take_request(&m, &mut buf).unwrap());
        b.queue_response(&m, &[9]).unwrap();
        assert!(b.push_responses(&m).unwrap());
        assert!(f.final_check_for_responses(&m).unwrap());
    }

    #[test]
    fn hostile_req_prod_is_overflow() {
        let m = LocalMem::new(PAGE);
        let _f = FrontRing::init(&m, 112).unwrap();
        let mut b = BackRing::new(&m, 112).unwrap();
        m.store_u32_release(REQ_PROD, 33).unwrap();
        assert_eq!(
            b.unconsumed_requests(&m),
            Err(RingError::Overflow {
                prod: 33,
                cons: 0,
                size: 32
            })
        );
        assert!(b.take_request(&m, &mut [0; 8]).is_err());
        // Behind us (negative distance) is also an overflow.
        m.store_u32_release(REQ_PROD, u32::MAX).unwrap();
        assert!(matches!(
            b.take_request(&m, &mut [0; 8]),
            Err(RingError::Overflow { .. })
        ));
        // Exactly a full ring is fine.
        m.store_u32_release(REQ_PROD, 32).unwrap();
        assert_eq!(b.unconsumed_requests(&m).unwrap(), 32);
    }

    #[test]
    fn backend_cannot_run_past_unanswered_requests() {
        // The frontend publishes 32, we take all without answering: then it claims 32 more.
        let m = LocalMem::new(PAGE);
        let _f = FrontRing::init(&m, 112).unwrap();
        let mut b = BackRing::new(&m, 112).unwrap();
        m.store_u32_release(REQ_PROD, 32).unwrap();
        let mut buf = [0u8; 112];
        for _ in 0..32 {
            assert!(b.take_request(&m, &mut buf).unwrap());
        }
        m.store_u32_release(REQ_PROD, 64).unwrap();
        assert!(matches!(
            b.unconsumed_requests(&m),
            Err(RingError::Overflow { .. })
        ));
        // Answer 4: then 4 more may be consumed, and no more, even though prod claims more.
        for _ in 0..4 {
            b.queue_response(&m, &[0; 16]).unwrap();
        }
        m.store_u32_release(REQ_PROD, 36).unwrap();
        assert_eq!(b.unconsumed_requests(&m).unwrap(), 4);
        for _ in 0..4 {
            assert!(b.take_request(&m, &mut buf).unwrap());
        }
        assert!(!b.take_request(&m, &mut buf).unwrap());
    }

    #[test]
    fn hostile_rsp_prod_is_overflow() {
        let m = LocalMem::new(PAGE);
        let mut f = FrontRing::init(&m, 112).unwrap();
        f.queue_request(&m, &[1]).unwrap();
        f.queue_request(&m, &[1]).unwrap();
        // Queued but not pushed: any response is a lie.
        m.store_u32_release(RSP_PROD, 1).unwrap();
        assert!(matches!(
            f.take_response(&m, &mut [0; 16]),
            Err(RingError::Overflow { .. })
        ));
        f.push_requests(&m).unwrap();
        assert_eq!(f.unconsumed_responses(&m).unwrap(), 1);
        m.store_u32_release(RSP_PROD, 3).unwrap();
        assert!(f.unconsumed_responses(&m).is_err());
        m.store_u32_release(RSP_PROD, u32::MAX).unwrap();
        assert!(f.final_check_for_responses(&m).is_err());
    }

    #[test]
    fn indices_wrap_at_u32_max() {
        let m = LocalMem::new(PAGE);
        let geo = Geometry::new(PAGE, 112).unwrap();
        init_shared(&m).unwrap();
        let start = u32::MAX - 5;
        m.store_u32_release(REQ_PROD, start).unwrap();
        m.store_u32_release(RSP_PROD, start).unwrap();
        let mut f = FrontRing::attach(geo, start);
        let mut b = BackRing::attach(geo, start);
        let mut buf = [0u8; 112];
        for i in 0..20u32 {
            f.queue_request(&m, &entry(i, 112)).unwrap();
        }
        f.push_requests(&m).unwrap();
        for i in 0..20u32 {
            assert!(b.take_request(&m, &mut buf).unwrap());
            assert_eq!(buf.as_slice(), &entry(i, 112)[..]);
            b.queue_response(&m, &buf[..16]).unwrap();
        }
        b.push_responses(&m).unwrap();
        let mut r = [0u8; 16];
        for i in 0..20u32 {
            assert!(f.take_response(&m, &mut r).unwrap());
            assert_eq!(r.as_slice(), &entry(i, 16)[..]);
        }
        assert_eq!(f.rsp_cons(), 14);
        assert_eq!(b.req_cons(), 14);
    }

    #[test]
    fn region_smaller_than_geometry_is_rejected() {
        let m = LocalMem::new(PAGE);
        let geo = Geometry::new(2 * PAGE, 112).unwrap();
        let mut f = FrontRing::attach(geo, 0);
        assert!(matches!(
            f.queue_request(&m, &[0]),
            Err(RingError::BadGeometry { .. })
        ));
        let mut b = BackRing::attach(geo, 0);
        assert!(b.take_request(&m, &mut [0]).is_err());
    }

    #[test]
    fn copy_once_semantics() {
        // The request is copied out; changing the shared slot afterwards does not affect the
        // copy the backend parses.
        let m = LocalMem::new(PAGE);
        let mut f = FrontRing::init(&m, 112).unwrap();
        let mut b = BackRing::new(&m, 112).unwrap();
        f.queue_request(&m, &[5; 112]).unwrap();
        f.push_requests(&m).unwrap();
        let mut buf = [0u8; 112];
        assert!(b.take_request(&m, &mut buf).unwrap());
        m.write_bytes(HEADER_LEN, &[6; 112]).unwrap();
        assert_eq!(buf, [5; 112]);
    }
}
