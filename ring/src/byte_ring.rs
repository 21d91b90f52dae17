//! Byte rings with free-running 32-bit indices, as used by xenstore (`io/xs_wire.h`), the PV
//! console (`io/console.h`) and the 9pfs transport (`io/9pfs.h`).
//!
//! One direction of such a ring is a power-of-two data area plus a producer and a consumer
//! index. Indices are free-running `u32` counters masked by the size. Each end keeps a
//! *private* copy of the index it owns and only ever stores it to shared memory; the other
//! end's index is loaded, then validated: a producer more than `size` bytes ahead of the
//! consumer is a protocol violation ([`RingError::IndexOverrun`]), never a panic.

use crate::shmem::{OutOfBounds, SharedMem};

/// Where one direction of a byte ring lives inside a shared region.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Offset of the data area.
    pub data_off: usize,
    /// Size of the data area in bytes: a power of two.
    pub size: u32,
    /// Offset of the consumer index.
    pub cons_off: usize,
    /// Offset of the producer index.
    pub prod_off: usize,
}

/// Errors from a byte ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RingError {
    /// The ring layout is unusable (size not a power of two, or out of the region).
    BadLayout,
    /// The other end's index is further from ours than the ring can hold.
    IndexOverrun {
        /// Producer index seen.
        prod: u32,
        /// Consumer index seen.
        cons: u32,
        /// Ring size.
        size: u32,
    },
    /// An access fell outside the shared region.
    OutOfBounds(OutOfBounds),
}

impl From<OutOfBounds> for RingError {
    fn from(e: OutOfBounds) -> Self {
        RingError::OutOfBounds(e)
    }
}

impl Layout {
    /// Checks the layout against a region of `region_len` bytes.
    pub fn validate(&self, region_len: usize) -> Result<(), RingError> {
        if self.size == 0 || !self.size.is_power_of_two() {
            return Err(RingError::BadLayout);
        }
        let end = self
            .data_off
            .checked_add(self.size as usize)
            .ok_or(RingError::BadLayout)?;
        let idx_ok = |o: usize| o.checked_add(4).is_some_and(|e| e <= region_len);
        if end > region_len || !idx_ok(self.cons_off) || !idx_ok(self.prod_off) {
            return Err(RingError::BadLayout);
        }
        Ok(())
    }

    /// Copies `dst.len()` bytes starting at ring index `idx`, wrapping at the end.
    fn copy_out<M: SharedMem + ?Sized>(
        &self,
        mem: &M,
        idx: u32,
        dst: &mut [u8],
    ) -> Result<(), RingError> {
        let mask = self.size - 1;
        let start = (idx & mask) as usize;
        let first = dst.len().min(self.size as usize - start);
        let (a, b) = dst.split_at_mut(first);
        mem.read_bytes(self.data_off + start, a)?;
        if !b.is_empty() {
            mem.read_bytes(self.data_off, b)?;
        }
        Ok(())
    }

    /// Copies `src` into the ring starting at ring index `idx`, wrapping at the end.
    fn copy_in<M: SharedMem + ?Sized>(
        &self,
        mem: &M,
        idx: u32,
        src: &[u8],
    ) -> Result<(), RingError> {
        let mask = self.size - 1;
        let start = (idx & mask) as usize;
        let first = src.len().min(self.size as usize - start);
        let (a, b) = src.split_at(first);
        mem.write_bytes(self.data_off + start, a)?;
        if !b.is_empty() {
            mem.write_bytes(self.data_off, b)?;
        }
        Ok(())
    }
}

/// The consuming end of one direction. It owns the consumer index.
#[derive(Debug, Clone)]
pub struct Consumer {
    layout: Layout,
    cons: u32,
}

impl Consumer {
    /// Attaches to a ring, taking the current consumer index from shared memory.
    pub fn attach<M: SharedMem + ?Sized>(layout: Layout, mem: &M) -> Result<Self, RingError> {
        layout.validate(mem.len())?;
        let cons = mem.load_u32_acquire(layout.cons_off)?;
        Ok(Self { layout, cons })
    }

    /// Bytes ready to be consumed, after validating the producer index.
    pub fn available<M: SharedMem + ?Sized>(&self, mem: &M) -> Result<u32, RingError> {
        let prod = mem.load_u32_acquire(self.layout.prod_off)?;
        let avail = prod.wrapping_sub(self.cons);
        if avail > self.layout.size {
            return Err(RingError::IndexOverrun {
                prod,
                cons: self.cons,
                size: self.layout.size,
            });
        }
        Ok(avail)
    }

    /// Copies exactly `dst.len()` bytes from the head of the ring without consuming them.
    /// Returns `Ok(false)` if fewer bytes are available.
    pub fn peek<M: SharedMem + ?Sized>(&self, mem: &M, dst: &mut [u8]) -> Result<bool, RingError> {
        let avail = self.available(mem)?;
        if (avail as usize) < dst.len() {
            return Ok(false);
        }
        self.layout.copy_out(mem, self.cons, dst)?;
        Ok(true)
    }

    /// Copies up to `dst.len()` bytes out and consumes them; returns how many.
    pub fn read<M: SharedMem + ?Sized>(
        &mut self,
        mem: &M,
        dst: &mut [u8],
    ) -> Result<usize, RingError> {
        let avail = self.available(mem)? as usize;
        let n = avail.min(dst.len());
        if n == 0 {
            return Ok(0);
        }
        let (head, _) = dst.split_at_mut(n);
        self.layout.copy_out(mem, self.cons, head)?;
        self.consume(mem, n as u32)?;
        Ok(n)
    }

    /// Marks `n` bytes (already copied with [`peek`](Self::peek)) as consumed.
    pub fn consume<M: SharedMem + ?Sized>(&mut self, mem: &M, n: u32) -> Result<(), RingError> {
        // Our reads of the data must complete before the producer may overwrite it.
        mem.full_barrier();
        self.cons = self.cons.wrapping_add(n);
        mem.store_u32_release(self.layout.cons_off, self.cons)?;
        Ok(())
    }

    /// The private consumer index.
    pub fn index(&self) -> u32 {
        self.cons
    }
}

/// The producing end of one direction. It owns the producer index.
#[derive(Debug, Clone)]
pub struct Producer {
    layout: Layout,
    prod: u32,
}

impl Producer {
    /// Attaches to a ring, taking the current producer index from shared memory.
    pub fn attach<M: SharedMem + ?Sized>(layout: Layout, mem: &M) -> Result<Self, RingError> {
        layout.validate(mem.len())?;
        let prod = mem.load_u32_acquire(layout.prod_off)?;
        Ok(Self { layout, prod })
    }

    /// Free space in bytes, after validating the consumer index.
    pub fn space<M: SharedMem + ?Sized>(&self, mem: &M) -> Result<u32, RingError> {
        let cons = mem.load_u32_acquire(self.layout.cons_off)?;
        let used = self.prod.wrapping_sub(cons);
        if used > self.layout.size {
            return Err(RingError::IndexOverrun {
                prod: self.prod,
                cons,
                size: self.layout.size,
            });
        }
        Ok(self.layout.size - used)
    }

    /// Writes as much of `src` as fits and publishes it; returns how many bytes.
    pub fn write<M: SharedMem + ?Sized>(
        &mut self,
        mem: &M,
        src: &[u8],
    ) -> Result<usize, RingError> {
        let n = (self.space(mem)? as usize).min(src.len());
        if n == 0 {
            return Ok(0);
        }
        let (head, _) = src.split_at(n);
        self.layout.copy_in(mem, self.prod, head)?;
        self.prod = self.prod.wrapping_add(n as u32);
        mem.store_u32_release(self.layout.prod_off, self.prod)?;
        Ok(n)
    }

    /// Writes all of `src` and publishes it in one step, or nothing if it does not fit.
    /// Returns `Ok(false)` when there is not enough space yet.
    pub fn write_all_or_nothing<M: SharedMem + ?Sized>(
        &mut self,
        mem: &M,
        src: &[u8],
    ) -> Result<bool, RingError> {
        if src.len() > self.space(mem)? as usize {
            return Ok(false);
        }
        self.write(mem, src)?;
        Ok(true)
    }

    /// The private producer index.
    pub fn index(&self) -> u32 {
        self.prod
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shmem::LocalMem;

    const L: Layout = Layout {
        data_off: 0,
        size: 16,
        cons_off: 16,
        prod_off: 20,
    };

    #[test]
    fn round_trip_with_wrap() {
        let m = LocalMem::new(24);
        let mut p = Producer::attach(L, &m).unwrap();
        let mut c = Consumer::attach(L, &m).unwrap();
        let mut out = [0u8; 16];
        for round in 0..10u8 {
            let msg: [u8; 11] =
                core::array::from_fn(|i| round.wrapping_mul(31).wrapping_add(i as u8));
            assert_eq!(p.write(&m, &msg).unwrap(), 11);
            assert_eq!(c.available(&m).unwrap(), 11);
            assert_eq!(c.read(&m, &mut out).unwrap(), 11);
            assert_eq!(&out[..11], &msg);
        }
    }

    #[test]
    fn full_ring_refuses_more() {
        let m = LocalMem::new(24);
        let mut p = Producer::attach(L, &m).unwrap();
        assert_eq!(p.write(&m, &[7; 20]).unwrap(), 16);
        assert_eq!(p.space(&m).unwrap(), 0);
        assert!(!p.write_all_or_nothing(&m, &[1]).unwrap());
    }

    #[test]
    fn lying_producer_index_is_an_error() {
        let m = LocalMem::new(24);
        let c = Consumer::attach(L, &m).unwrap();
        m.store_u32_release(20, 17).unwrap();
        assert_eq!(
            c.available(&m),
            Err(RingError::IndexOverrun {
                prod: 17,
                cons: 0,
                size: 16
            })
        );
        // A producer index behind the consumer looks like a huge overrun too.
        m.store_u32_release(20, u32::MAX).unwrap();
        assert!(c.available(&m).is_err());
    }

    #[test]
    fn lying_consumer_index_is_an_error() {
        let m = LocalMem::new(24);
        let p = Producer::attach(L, &m).unwrap();
        m.store_u32_release(16, 100).unwrap();
        assert!(matches!(p.space(&m), Err(RingError::IndexOverrun { .. })));
    }

    #[test]
    fn indices_wrap_at_u32_max() {
        let m = LocalMem::new(24);
        m.store_u32_release(16, u32::MAX - 3).unwrap();
        m.store_u32_release(20, u32::MAX - 3).unwrap();
        let mut p = Producer::attach(L, &m).unwrap();
        let mut c = Consumer::attach(L, &m).unwrap();
        assert_eq!(p.write(&m, b"abcdefghij").unwrap(), 10);
        let mut out = [0u8; 10];
        assert!(c.peek(&m, &mut out).unwrap());
        assert_eq!(&out, b"abcdefghij");
        assert_eq!(c.read(&m, &mut out).unwrap(), 10);
        assert_eq!(c.index(), 6);
    }

    #[test]
    fn bad_layouts_rejected() {
        let m = LocalMem::new(24);
        assert!(Consumer::attach(Layout { size: 12, ..L }, &m).is_err());
        assert!(Consumer::attach(Layout { data_off: 16, ..L }, &m).is_err());
        assert!(Consumer::attach(Layout { prod_off: 22, ..L }, &m).is_err());
    }
}
