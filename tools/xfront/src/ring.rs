//! The frontend's side of one 9pfs data ring (`io/9pfs.h`), with the means to lie.
//!
//! Requests go into the **out** half (second half of the data area), replies come from the
//! **in** half. Unlike a well-behaved frontend, [`FrontRing`] can publish part of a message,
//! write any producer index and send sizes that disagree with the bytes.

use pvfs_ring::p9ring::{half_size, IN_CONS, IN_PROD, OUT_CONS, OUT_PROD, RING_ORDER};
use pvfs_ring::shmem::SharedMem;

use crate::{err, Res};

/// One ring: its interface page and data area, as granted by this frontend.
#[derive(Debug)]
pub struct FrontRing<M> {
    /// The interface page.
    pub intf: M,
    /// The data area, `2^order` pages.
    pub data: M,
    order: u32,
}

impl<M: SharedMem> FrontRing<M> {
    /// A ring over `intf` and `data`; writes `ring_order` and the data pages' `refs` into the
    /// interface page.
    pub fn new(intf: M, data: M, order: u32, refs: &[u32]) -> Res<Self> {
        intf.store_u32_release(RING_ORDER, order).map_err(err_of)?;
        for (i, r) in refs.iter().enumerate() {
            intf.store_u32_release(pvfs_ring::p9ring::REFS + 4 * i, *r)
                .map_err(err_of)?;
        }
        Ok(FrontRing { intf, data, order })
    }

    /// Bytes in each direction.
    pub fn half(&self) -> u32 {
        half_size(self.order)
    }

    fn load(&self, off: usize) -> u32 {
        self.intf.load_u32_acquire(off).unwrap_or(0)
    }

    /// `out_prod`.
    pub fn out_prod(&self) -> u32 {
        self.load(OUT_PROD)
    }

    /// `out_cons` (how far the backend has taken requests).
    pub fn out_cons(&self) -> u32 {
        self.load(OUT_CONS)
    }

    /// Free bytes in the out half, as the indices say (0 if the backend's index is beyond
    /// ours).
    pub fn out_space(&self) -> u32 {
        let used = self.out_prod().wrapping_sub(self.out_cons());
        self.half().saturating_sub(used)
    }

    /// Copies `bytes` into the out half at free-running index `at` (wrapping), without
    /// publishing anything.
    pub fn put(&self, at: u32, bytes: &[u8]) -> Res<()> {
        let half = self.half();
        let base = half as usize;
        let mut pos = at & (half - 1);
        let mut rest = bytes;
        while !rest.is_empty() {
            let n = ((half - pos) as usize).min(rest.len());
            let (now, later) = rest.split_at(n);
            self.data
                .write_bytes(base + pos as usize, now)
                .map_err(err_of)?;
            rest = later;
            pos = 0;
        }
        Ok(())
    }

    /// Publishes `out_prod` = `v`, whatever it is.
    pub fn set_out_prod(&self, v: u32) -> Res<()> {
        self.intf.full_barrier();
        self.intf.store_u32_release(OUT_PROD, v).map_err(err_of)
    }

    /// Writes `msg` and publishes its first `publish` bytes (all of a well-formed send).
    /// Returns false, writing nothing, if the ring has no room for all of `msg`.
    pub fn send_partial(&self, msg: &[u8], publish: usize) -> Res<bool> {
        if msg.len() > self.out_space() as usize {
            return Ok(false);
        }
        let prod = self.out_prod();
        self.put(prod, msg)?;
        self.set_out_prod(prod.wrapping_add(publish.min(msg.len()) as u32))?;
        Ok(true)
    }

    /// Writes and publishes `msg`; false if the ring has no room for it.
    pub fn send(&self, msg: &[u8]) -> Res<bool> {
        self.send_partial(msg, msg.len())
    }

    /// Bytes of replies waiting in the in half.
    pub fn in_avail(&self) -> u32 {
        self.load(IN_PROD).wrapping_sub(self.load(IN_CONS))
    }

    /// Takes the next whole reply, if one is there. A reply whose size field is below a
    /// header or beyond the ring, or an in_prod more than a half ahead, is an error.
    pub fn recv(&self) -> Res<Option<Vec<u8>>> {
        let cons = self.load(IN_CONS);
        let avail = self.load(IN_PROD).wrapping_sub(cons);
        let half = self.half();
        if avail > half {
            return Err(err(format!("backend's in_prod is {avail} bytes ahead")));
        }
        if avail < 4 {
            return Ok(None);
        }
        let mut size = [0u8; 4];
        self.get(cons, &mut size)?;
        let size = u32::from_le_bytes(size);
        if size < crate::wire::HEADER as u32 || size > half {
            return Err(err(format!("backend wrote a reply of size {size}")));
        }
        if size > avail {
            return Ok(None);
        }
        let mut m = vec![0u8; size as usize];
        self.get(cons, &mut m)?;
        self.intf.full_barrier();
        self.intf
            .store_u32_release(IN_CONS, cons.wrapping_add(size))
            .map_err(err_of)?;
        Ok(Some(m))
    }

    fn get(&self, at: u32, dst: &mut [u8]) -> Res<()> {
        let half = self.half();
        let mut pos = at & (half - 1);
        let mut done = 0;
        while done < dst.len() {
            let n = ((half - pos) as usize).min(dst.len() - done);
            self.data
                .read_bytes(pos as usize, &mut dst[done..done + n])
                .map_err(err_of)?;
            done += n;
            pos = 0;
        }
        Ok(())
    }
}

fn err_of(e: pvfs_ring::shmem::OutOfBounds) -> crate::Error {
    err(format!("granted memory access out of bounds: {e:?}"))
}
