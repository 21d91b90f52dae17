//! The 9pfs data rings of `io/9pfs.h`, backend side.
//!
//! Each 9pfs ring is an *interface page* plus a *data area* of `2^ring_order` pages, granted
//! separately by the frontend. The interface page (`struct xen_9pfs_data_intf`):
//!
//! | offset | field           |
//! |--------|-----------------|
//! | 0      | `in_cons`       |
//! | 4      | `in_prod`       |
//! | 64     | `out_cons`      |
//! | 68     | `out_prod`      |
//! | 128    | `ring_order`    |
//! | 132    | `ref[1 << ring_order]` (grant refs of the data pages) |
//!
//! The first half of the data area is **in** (backend → frontend: responses), the second half
//! is **out** (frontend → backend: requests). Each half holds `1 << (ring_order + 11)` bytes
//! (`XEN_FLEX_RING_SIZE`). Messages are raw 9P (`size[4] type[1] tag[2] …`, `size` counting
//! itself) and may wrap around the end of a half.
//!
//! [`Backend9pRing`] reads whole requests out of **out** (copied once, size validated) and
//! writes whole responses into **in**, publishing `in_prod` only once a response is complete.
//! Several requests may be taken before any is answered; responses may be written in any order.
//!
//! No-panic contract: any contents of the interface page and data area are accepted. A lying
//! index (a producer more than a half ahead, or a consumer ahead of our producer), a request
//! size below 7 or above the negotiated msize are [`P9RingError`]s after which the device
//! should be disconnected; a message whose bytes have not all arrived yet is `Ok(None)` (wait
//! for the next event). Each call handles at most one message: the caller bounds the work per
//! event by calling [`Backend9pRing::next_request`] a bounded number of times.

use alloc::vec;
use alloc::vec::Vec;
use byteorder::{ByteOrder, LittleEndian as LE};

use crate::byte_ring::{Consumer, Layout, Producer, RingError};
use crate::shmem::{OutOfBounds, SharedMem};

/// Size of a Xen page.
pub const PAGE_SIZE: usize = 4096;
/// Offset of `in_cons` in the interface page.
pub const IN_CONS: usize = 0;
/// Offset of `in_prod`.
pub const IN_PROD: usize = 4;
/// Offset of `out_cons`.
pub const OUT_CONS: usize = 64;
/// Offset of `out_prod`.
pub const OUT_PROD: usize = 68;
/// Offset of `ring_order`.
pub const RING_ORDER: usize = 128;
/// Offset of `ref[]`.
pub const REFS: usize = 132;
/// Largest ring order the protocol allows (`XEN_9PFS_RING_ORDER` in Linux is 9).
pub const MAX_RING_ORDER: u32 = 9;
/// Smallest valid 9P message: `size[4] type[1] tag[2]`.
pub const MIN_MSG: u32 = 7;

/// Bytes in each direction for a ring of `order` (`XEN_FLEX_RING_SIZE`).
pub fn half_size(order: u32) -> u32 {
    1u32 << (order.min(MAX_RING_ORDER) + 11)
}

/// Errors on a 9pfs data ring. All of them mean: disconnect the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum P9RingError {
    /// `ring_order` in the interface page is above the limit we advertised (or above 9).
    BadOrder {
        /// Order found.
        order: u32,
        /// Largest allowed.
        max: u32,
    },
    /// The data area given is smaller than `2^order` pages.
    DataTooSmall {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// A request declares a size below 7 or above the limit (msize, or the ring half).
    BadSize {
        /// Declared size.
        size: u32,
        /// Largest allowed.
        max: u32,
    },
    /// A response is too large to ever fit the ring (or smaller than a header).
    ResponseTooLarge {
        /// Response length.
        len: usize,
        /// Ring half size.
        max: u32,
    },
    /// The frontend's index is inconsistent with ours.
    Index(RingError),
    /// An access fell outside the shared region.
    OutOfBounds(OutOfBounds),
}

impl From<RingError> for P9RingError {
    fn from(e: RingError) -> Self {
        match e {
            RingError::OutOfBounds(o) => P9RingError::OutOfBounds(o),
            e => P9RingError::Index(e),
        }
    }
}

impl From<OutOfBounds> for P9RingError {
    fn from(e: OutOfBounds) -> Self {
        P9RingError::OutOfBounds(e)
    }
}

/// The validated contents of an interface page: the ring order and the grant references of the
/// data pages, to be mapped (contiguously, in this order) as the data area.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// `ring_order`: the data area is `1 << ring_order` pages.
    pub ring_order: u32,
    /// `ref[0 .. 1 << ring_order]`.
    pub refs: Vec<u32>,
}

impl Interface {
    /// Reads the interface page and validates `ring_order` against `max_order` (the
    /// `max-ring-page-order` we advertised; clamped to 9).
    pub fn read<M: SharedMem + ?Sized>(page: &M, max_order: u32) -> Result<Self, P9RingError> {
        let max = max_order.min(MAX_RING_ORDER);
        let order = page.load_u32_acquire(RING_ORDER)?;
        if order > max {
            return Err(P9RingError::BadOrder { order, max });
        }
        let n = 1usize << order;
        let mut raw = vec![0u8; n * 4];
        page.read_bytes(REFS, &mut raw)?;
        let refs = raw.chunks_exact(4).map(LE::read_u32).collect();
        Ok(Self {
            ring_order: order,
            refs,
        })
    }

    /// Bytes the data area must span.
    pub fn data_len(&self) -> usize {
        PAGE_SIZE << self.ring_order
    }
}

/// Two shared regions seen as one: `a` at `0..a.len()`, then `b`. Lets the byte rings keep
/// their indices in the interface page and their data in the data area.
#[derive(Debug)]
pub struct Joined<'a, A: ?Sized, B: ?Sized> {
    /// The first region (the interface page).
    pub a: &'a A,
    /// The second region (the data area).
    pub b: &'a B,
}

impl<A: SharedMem + ?Sized, B: SharedMem + ?Sized> SharedMem for Joined<'_, A, B> {
    fn len(&self) -> usize {
        self.a.len().saturating_add(self.b.len())
    }
    fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds> {
        let al = self.a.len();
        if off < al {
            self.a.load_u32_acquire(off)
        } else {
            self.b.load_u32_acquire(off - al)
        }
    }
    fn store_u32_release(&self, off: usize, val: u32) -> Result<(), OutOfBounds> {
        let al = self.a.len();
        if off < al {
            self.a.store_u32_release(off, val)
        } else {
            self.b.store_u32_release(off - al, val)
        }
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        let al = self.a.len();
        if off >= al {
            return self.b.read_bytes(off - al, dst);
        }
        let first = (al - off).min(dst.len());
        let (x, y) = dst.split_at_mut(first);
        self.a.read_bytes(off, x)?;
        if !y.is_empty() {
            self.b.read_bytes(0, y)?;
        }
        Ok(())
    }
    fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        let al = self.a.len();
        if off >= al {
            return self.b.write_bytes(off - al, src);
        }
        let first = (al - off).min(src.len());
        let (x, y) = src.split_at(first);
        self.a.write_bytes(off, x)?;
        if !y.is_empty() {
            self.b.write_bytes(0, y)?;
        }
        Ok(())
    }
    fn full_barrier(&self) {
        self.a.full_barrier();
    }
}

/// Byte-ring layouts of the in and out halves, for an interface region of `intf_len` bytes
/// joined with the data area.
pub fn layouts(intf_len: usize, order: u32) -> (Layout, Layout) {
    let half = half_size(order);
    let in_l = Layout {
        data_off: intf_len,
        size: half,
        cons_off: IN_CONS,
        prod_off: IN_PROD,
    };
    let out_l = Layout {
        data_off: intf_len + half as usize,
        size: half,
        cons_off: OUT_CONS,
        prod_off: OUT_PROD,
    };
    (in_l, out_l)
}

/// The backend end of one 9pfs data ring.
#[derive(Debug, Clone)]
pub struct Backend9pRing {
    order: u32,
    max_msg: u32,
    out: Consumer,
    inr: Producer,
}

impl Backend9pRing {
    /// Attaches to a ring whose interface page is `intf` and whose data area (all
    /// `2^order` pages, mapped in `ref[]` order) is `data`. `order` comes from
    /// [`Interface::read`]. `max_msg` bounds request sizes until [`set_msize`](Self::set_msize)
    /// is called (it is clamped to the ring half).
    pub fn attach<I, D>(intf: &I, data: &D, order: u32, max_msg: u32) -> Result<Self, P9RingError>
    where
        I: SharedMem + ?Sized,
        D: SharedMem + ?Sized,
    {
        if order > MAX_RING_ORDER {
            return Err(P9RingError::BadOrder {
                order,
                max: MAX_RING_ORDER,
            });
        }
        let need = PAGE_SIZE << order;
        if data.len() < need {
            return Err(P9RingError::DataTooSmall {
                need,
                have: data.len(),
            });
        }
        let mem = Joined { a: intf, b: data };
        let (in_l, out_l) = layouts(intf.len(), order);
        Ok(Self {
            order,
            max_msg: max_msg.min(half_size(order)),
            out: Consumer::attach(out_l, &mem)?,
            inr: Producer::attach(in_l, &mem)?,
        })
    }

    /// The ring order.
    pub fn order(&self) -> u32 {
        self.order
    }

    /// Bytes per direction.
    pub fn half_size(&self) -> u32 {
        half_size(self.order)
    }

    /// Sets the largest request accepted (the msize negotiated by Tversion), clamped to the
    /// ring half.
    pub fn set_msize(&mut self, msize: u32) {
        self.max_msg = msize.min(half_size(self.order));
    }

    /// The largest request accepted.
    pub fn max_msg(&self) -> u32 {
        self.max_msg
    }

    /// Takes the next complete request out of the out ring: the whole message, `size` bytes
    /// including the size field, copied once. `Ok(None)` if no complete message has arrived.
    /// The size field of the returned copy is the validated one, whatever the frontend writes
    /// meanwhile.
    pub fn next_request<I, D>(&mut self, intf: &I, data: &D) -> Result<Option<Vec<u8>>, P9RingError>
    where
        I: SharedMem + ?Sized,
        D: SharedMem + ?Sized,
    {
        self.next_request_with(intf, data, |n| vec![0u8; n])
    }

    /// Like [`next_request`](Self::next_request), with the message copied into a buffer from
    /// `buffer(len)` (which must return exactly `len` bytes; any contents, all overwritten),
    /// so the caller can reuse buffers instead of allocating and zero-filling each.
    pub fn next_request_with<I, D>(
        &mut self,
        intf: &I,
        data: &D,
        buffer: impl FnOnce(usize) -> Vec<u8>,
    ) -> Result<Option<Vec<u8>>, P9RingError>
    where
        I: SharedMem + ?Sized,
        D: SharedMem + ?Sized,
    {
        let mem = Joined { a: intf, b: data };
        let mut hdr = [0u8; 4];
        if !self.out.peek(&mem, &mut hdr)? {
            return Ok(None);
        }
        let size = LE::read_u32(&hdr);
        if !(MIN_MSG..=self.max_msg).contains(&size) {
            return Err(P9RingError::BadSize {
                size,
                max: self.max_msg,
            });
        }
        if self.out.available(&mem)? < size {
            return Ok(None);
        }
        let mut msg = buffer(size as usize);
        if msg.len() != size as usize {
            msg.resize(size as usize, 0);
        }
        if !self.out.peek(&mem, &mut msg)? {
            // The producer index went backwards between two reads: a lying frontend.
            return Err(P9RingError::Index(RingError::IndexOverrun {
                prod: 0,
                cons: self.out.index(),
                size: self.half_size(),
            }));
        }
        if let Some(h) = msg.get_mut(..4) {
            h.copy_from_slice(&hdr);
        }
        self.out.consume(&mem, size)?;
        Ok(Some(msg))
    }

    /// Writes one whole response into the in ring and then publishes `in_prod`. `Ok(false)`
    /// when there is not enough space yet (nothing written: retry after the frontend consumes,
    /// i.e. on its next event). The caller notifies the frontend after `Ok(true)`.
    pub fn write_response<I, D>(
        &mut self,
        intf: &I,
        data: &D,
        msg: &[u8],
    ) -> Result<bool, P9RingError>
    where
        I: SharedMem + ?Sized,
        D: SharedMem + ?Sized,
    {
        let half = self.half_size();
        if msg.len() > half as usize || msg.len() < MIN_MSG as usize {
            return Err(P9RingError::ResponseTooLarge {
                len: msg.len(),
                max: half,
            });
        }
        let mem = Joined { a: intf, b: data };
        Ok(self.inr.write_all_or_nothing(&mem, msg)?)
    }

    /// Free bytes in the in ring (validating the frontend's `in_cons`).
    pub fn response_space<I, D>(&self, intf: &I, data: &D) -> Result<u32, P9RingError>
    where
        I: SharedMem + ?Sized,
        D: SharedMem + ?Sized,
    {
        Ok(self.inr.space(&Joined { a: intf, b: data })?)
    }

    /// Bytes waiting in the out ring (validating the frontend's `out_prod`).
    pub fn request_bytes<I, D>(&self, intf: &I, data: &D) -> Result<u32, P9RingError>
    where
        I: SharedMem + ?Sized,
        D: SharedMem + ?Sized,
    {
        Ok(self.out.available(&Joined { a: intf, b: data })?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shmem::LocalMem;

    /// A fake frontend: writes requests into out, reads responses from in.
    struct Front {
        out: Producer,
        inr: Consumer,
    }

    impl Front {
        fn new(intf: &LocalMem, data: &LocalMem, order: u32) -> Self {
            let mem = Joined { a: intf, b: data };
            let (in_l, out_l) = layouts(intf.len(), order);
            Front {
                out: Producer::attach(out_l, &mem).unwrap(),
                inr: Consumer::attach(in_l, &mem).unwrap(),
            }
        }
        fn send(&mut self, intf: &LocalMem, data: &LocalMem, bytes: &[u8]) -> usize {
            self.out.write(&Joined { a: intf, b: data }, bytes).unwrap()
        }
        fn recv(&mut self, intf: &LocalMem, data: &LocalMem) -> Option<Vec<u8>> {
            let mem = Joined { a: intf, b: data };
            let mut h = [0u8; 4];
            if !self.inr.peek(&mem, &mut h).unwrap() {
                return None;
            }
            let mut m = vec![0u8; u32::from_le_bytes(h) as usize];
            assert!(self.inr.peek(&mem, &mut m).unwrap(), "torn response");
            self.inr.consume(&mem, m.len() as u32).unwrap();
            Some(m)
        }
    }

    fn msg(ty: u8, tag: u16, body_len: usize) -> Vec<u8> {
        let size = 7 + body_len;
        let mut m = Vec::with_capacity(size);
        m.extend_from_slice(&(size as u32).to_le_bytes());
        m.push(ty);
        m.extend_from_slice(&tag.to_le_bytes());
        m.extend((0..body_len).map(|i| (i as u8) ^ (tag as u8)));
        m
    }

    fn setup(order: u32) -> (LocalMem, LocalMem, Backend9pRing, Front) {
        let intf = LocalMem::new(PAGE_SIZE);
        let data = LocalMem::new(PAGE_SIZE << order);
        intf.store_u32_release(RING_ORDER, order).unwrap();
        let be = Backend9pRing::attach(&intf, &data, order, 8192).unwrap();
        let fe = Front::new(&intf, &data, order);
        (intf, data, be, fe)
    }

    #[test]
    fn interface_page_validation() {
        let intf = LocalMem::new(PAGE_SIZE);
        intf.store_u32_release(RING_ORDER, 2).unwrap();
        for i in 0..4u32 {
            intf.store_u32_release(REFS + 4 * i as usize, 100 + i)
                .unwrap();
        }
        let got = Interface::read(&intf, 9).unwrap();
        assert_eq!(got.ring_order, 2);
        assert_eq!(got.refs, [100, 101, 102, 103]);
        assert_eq!(got.data_len(), 4 * PAGE_SIZE);
        assert_eq!(
            Interface::read(&intf, 1),
            Err(P9RingError::BadOrder { order: 2, max: 1 })
        );
        intf.store_u32_release(RING_ORDER, 10).unwrap();
        assert_eq!(
            Interface::read(&intf, 20),
            Err(P9RingError::BadOrder { order: 10, max: 9 })
        );
        intf.store_u32_release(RING_ORDER, u32::MAX).unwrap();
        assert!(Interface::read(&intf, 9).is_err());
        // Order 9 refs (512 * 4 bytes at 132) fit the page.
        intf.store_u32_release(RING_ORDER, 9).unwrap();
        assert_eq!(Interface::read(&intf, 9).unwrap().refs.len(), 512);
        assert_eq!(half_size(9), 1 << 20);
        assert_eq!(half_size(0), 2048);
    }

    #[test]
    fn attach_checks_data_size() {
        let intf = LocalMem::new(PAGE_SIZE);
        let data = LocalMem::new(PAGE_SIZE);
        assert_eq!(
            Backend9pRing::attach(&intf, &data, 1, 8192).err(),
            Some(P9RingError::DataTooSmall {
                need: 2 * PAGE_SIZE,
                have: PAGE_SIZE
            })
        );
        assert!(Backend9pRing::attach(&intf, &data, 10, 8192).is_err());
    }

    #[test]
    fn pipelined_requests_answered_out_of_order() {
        let (intf, data, mut be, mut fe) = setup(1);
        let reqs: Vec<Vec<u8>> = (0..5).map(|t| msg(100, t, 40 + t as usize)).collect();
        for r in &reqs {
            assert_eq!(fe.send(&intf, &data, r), r.len());
        }
        let mut got = Vec::new();
        while let Some(m) = be.next_request(&intf, &data).unwrap() {
            got.push(m);
        }
        assert_eq!(got, reqs);
        for t in [3u16, 0, 4, 1, 2] {
            assert!(be.write_response(&intf, &data, &msg(101, t, 9)).unwrap());
        }
        for t in [3u16, 0, 4, 1, 2] {
            assert_eq!(fe.recv(&intf, &data).unwrap(), msg(101, t, 9));
        }
        assert!(fe.recv(&intf, &data).is_none());
    }

    #[test]
    fn torn_request_waits() {
        let (intf, data, mut be, mut fe) = setup(0);
        let r = msg(110, 7, 100);
        // Only part of the size field.
        fe.send(&intf, &data, &r[..2]);
        assert_eq!(be.next_request(&intf, &data).unwrap(), None);
        // Header and some body.
        fe.send(&intf, &data, &r[2..50]);
        assert_eq!(be.next_request(&intf, &data).unwrap(), None);
        assert_eq!(be.request_bytes(&intf, &data).unwrap(), 50);
        fe.send(&intf, &data, &r[50..]);
        assert_eq!(be.next_request(&intf, &data).unwrap(), Some(r));
        assert_eq!(be.next_request(&intf, &data).unwrap(), None);
    }

    #[test]
    fn wrapping_messages_both_directions() {
        // Order 0: 2048 bytes per half. Messages of 300 bytes wrap every few rounds.
        let (intf, data, mut be, mut fe) = setup(0);
        for round in 0..50u16 {
            let r = msg(100, round, 293 + (round as usize % 7));
            assert_eq!(fe.send(&intf, &data, &r), r.len());
            assert_eq!(be.next_request(&intf, &data).unwrap().unwrap(), r);
            let resp = msg(101, round, 500 + (round as usize % 13));
            assert!(be.write_response(&intf, &data, &resp).unwrap());
            assert_eq!(fe.recv(&intf, &data).unwrap(), resp);
        }
    }

    /// Requests copied into reused buffers (stale bytes, wrong lengths) come out exact, also
    /// when they wrap the ring end.
    #[test]
    fn requests_into_reused_buffers_are_exact() {
        let (intf, data, mut be, mut fe) = setup(0);
        for round in 0..30u16 {
            let r = msg(100, round, 293 + (round as usize % 7) * 40);
            assert_eq!(fe.send(&intf, &data, &r), r.len());
            let stale_len = [r.len(), r.len() + 77, 10][round as usize % 3];
            let got = be
                .next_request_with(&intf, &data, |_| vec![0xEE; stale_len])
                .unwrap()
                .unwrap();
            assert_eq!(got, r);
        }
    }

    #[test]
    fn response_waits_for_space_and_publishes_whole() {
        let (intf, data, mut be, mut fe) = setup(0);
        let big = msg(101, 1, 1500);
        assert!(be.write_response(&intf, &data, &big).unwrap());
        let second = msg(101, 2, 1000);
        let prod_before = intf.load_u32_acquire(IN_PROD).unwrap();
        assert!(!be.write_response(&intf, &data, &second).unwrap());
        // Nothing of the second response was published.
        assert_eq!(intf.load_u32_acquire(IN_PROD).unwrap(), prod_before);
        assert_eq!(fe.recv(&intf, &data).unwrap(), big);
        assert!(be.write_response(&intf, &data, &second).unwrap());
        assert_eq!(fe.recv(&intf, &data).unwrap(), second);
        // Too large for the ring ever: error, not a wait.
        assert!(matches!(
            be.write_response(&intf, &data, &msg(101, 3, 2048)),
            Err(P9RingError::ResponseTooLarge { .. })
        ));
        assert!(be.write_response(&intf, &data, &[1, 2]).is_err());
    }

    #[test]
    fn bad_sizes_are_errors() {
        for size in [0u32, 6, 8193, u32::MAX] {
            let (intf, data, mut be, mut fe) = setup(2);
            let mut m = size.to_le_bytes().to_vec();
            m.extend_from_slice(&[0; 20]);
            fe.send(&intf, &data, &m);
            assert_eq!(
                be.next_request(&intf, &data),
                Err(P9RingError::BadSize { size, max: 8192 })
            );
        }
        // msize tightens the bound; the ring half caps it.
        let (intf, data, mut be, mut fe) = setup(0);
        assert_eq!(be.max_msg(), 2048);
        be.set_msize(100);
        fe.send(&intf, &data, &msg(100, 1, 94));
        assert_eq!(
            be.next_request(&intf, &data),
            Err(P9RingError::BadSize {
                size: 101,
                max: 100
            })
        );
    }

    #[test]
    fn lying_indices_are_errors() {
        let (intf, data, mut be, _fe) = setup(0);
        // out_prod more than a half ahead of out_cons.
        intf.store_u32_release(OUT_PROD, 2049).unwrap();
        assert!(matches!(
            be.next_request(&intf, &data),
            Err(P9RingError::Index(RingError::IndexOverrun { .. }))
        ));
        intf.store_u32_release(OUT_PROD, u32::MAX).unwrap();
        assert!(be.next_request(&intf, &data).is_err());
        // in_cons beyond our in_prod.
        intf.store_u32_release(IN_CONS, 5).unwrap();
        assert!(matches!(
            be.write_response(&intf, &data, &msg(101, 0, 1)),
            Err(P9RingError::Index(_))
        ));
        assert!(be.response_space(&intf, &data).is_err());
    }

    /// Data area whose out-ring header is rewritten by the "frontend" right after the
    /// backend's first read of it (a time-of-check/time-of-use attack).
    struct Flipping {
        inner: LocalMem,
        reads: core::cell::Cell<u32>,
        at: usize,
    }

    impl SharedMem for Flipping {
        fn len(&self) -> usize {
            self.inner.len()
        }
        fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds> {
            self.inner.load_u32_acquire(off)
        }
        fn store_u32_release(&self, off: usize, val: u32) -> Result<(), OutOfBounds> {
            self.inner.store_u32_release(off, val)
        }
        fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
            self.inner.read_bytes(off, dst)?;
            if off == self.at && self.reads.replace(self.reads.get() + 1) == 0 {
                self.inner.write_bytes(self.at, &u32::MAX.to_le_bytes())?;
            }
            Ok(())
        }
        fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
            self.inner.write_bytes(off, src)
        }
        fn full_barrier(&self) {}
    }

    #[test]
    fn size_field_rewritten_after_validation_is_ignored() {
        let intf = LocalMem::new(PAGE_SIZE);
        let data = Flipping {
            inner: LocalMem::new(PAGE_SIZE),
            reads: core::cell::Cell::new(0),
            at: 2048,
        };
        let mut be = Backend9pRing::attach(&intf, &data, 0, 8192).unwrap();
        let r = msg(100, 1, 10);
        data.inner.write_bytes(2048, &r).unwrap();
        intf.store_u32_release(OUT_PROD, r.len() as u32).unwrap();
        let got = be.next_request(&intf, &data).unwrap().unwrap();
        // The shared header now says u32::MAX, the copy keeps the validated size.
        assert_eq!(data.inner.load_u32_acquire(2048).unwrap(), u32::MAX);
        assert!(data.reads.get() >= 2);
        assert_eq!(got, r);
    }

    #[test]
    fn flood_is_bounded_per_call() {
        // A frontend fills the out ring with minimal messages: each call returns exactly one,
        // and the ring drains in exactly as many calls as messages.
        let (intf, data, mut be, mut fe) = setup(0);
        let mut sent = 0;
        loop {
            let m = msg(100, sent as u16, 0);
            if fe.send(&intf, &data, &m) < m.len() {
                break;
            }
            sent += 1;
        }
        // 2048 / 7 = 292 whole messages, plus a torn tail of 4 bytes.
        assert_eq!(sent, 292);
        let mut n = 0;
        while let Some(m) = be.next_request(&intf, &data).unwrap() {
            assert_eq!(m.len(), 7);
            n += 1;
            assert!(n <= sent);
        }
        assert_eq!(n, sent);
        assert_eq!(be.request_bytes(&intf, &data).unwrap(), 4);
    }

    #[test]
    fn joined_spans_regions() {
        let a = LocalMem::new(8);
        let b = LocalMem::new(8);
        let j = Joined { a: &a, b: &b };
        assert_eq!(j.len(), 16);
        j.write_bytes(6, &[1, 2, 3, 4]).unwrap();
        let mut x = [0u8; 2];
        b.read_bytes(0, &mut x).unwrap();
        assert_eq!(x, [3, 4]);
        let mut y = [0u8; 4];
        j.read_bytes(6, &mut y).unwrap();
        assert_eq!(y, [1, 2, 3, 4]);
        assert!(j.read_bytes(14, &mut y).is_err());
        j.store_u32_release(8, 0xdead_beef).unwrap();
        assert_eq!(b.load_u32_acquire(0).unwrap(), 0xdead_beef);
        assert!(j.load_u32_acquire(6).is_err());
    }
}
