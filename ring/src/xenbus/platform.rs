//! Grant mapping and event channels ([`Platform`]), and a fake platform for host tests.

use alloc::collections::BTreeMap;
use alloc::rc::Rc;
use alloc::vec::Vec;
use core::fmt::Debug;

use crate::p9ring::PAGE_SIZE;
use crate::shmem::{LocalMem, OutOfBounds, SharedMem};

/// Grant mapping and event channels, implemented by the kernel (and by [`FakePlatform`]).
pub trait Platform {
    /// A mapped run of foreign pages, contiguous in our address space, in `refs` order.
    type Mem: SharedMem;
    /// Platform error (hypercall status).
    type Error: Debug;
    /// Maps `refs` granted by `domid`, read-write, contiguously.
    fn map_grants(&mut self, domid: u16, refs: &[u32]) -> Result<Self::Mem, Self::Error>;
    /// Unmaps a mapping made by [`map_grants`](Self::map_grants).
    fn unmap(&mut self, mem: Self::Mem);
    /// Binds `remote_port` of `domid`; returns our local port.
    fn bind_interdomain(&mut self, domid: u16, remote_port: u32) -> Result<u32, Self::Error>;
    /// Closes a local port.
    fn close_evtchn(&mut self, port: u32);
}

/// A fake [`Platform`] for host tests: "grants" are pages registered with
/// [`grant`](Self::grant), shared (not copied) between the test's frontend and the mappings,
/// and it counts live mappings and ports so tests can check for leaks.
#[derive(Debug, Default)]
pub struct FakePlatform {
    /// Granted pages by `(domid, ref)`.
    pub pages: BTreeMap<(u16, u32), Rc<LocalMem>>,
    /// Remote ports that may be bound, by `(domid, port)`.
    pub ports: BTreeMap<(u16, u32), bool>,
    /// Live mappings (number of pages).
    pub mapped_pages: usize,
    /// Live local ports.
    pub bound: Vec<u32>,
    next_port: u32,
}

/// Errors of [`FakePlatform`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeError {
    /// No such grant.
    BadRef(u32),
    /// No such remote port.
    BadPort(u32),
}

impl FakePlatform {
    /// A platform with no grants.
    pub fn new() -> Self {
        Self::default()
    }
    /// Grants a page holding `contents` (zero-padded to a page); returns the page so the test
    /// can play the granting domain.
    pub fn grant(&mut self, domid: u16, gref: u32, contents: Vec<u8>) -> Rc<LocalMem> {
        let page = Rc::new(LocalMem::new(PAGE_SIZE));
        let n = contents.len().min(PAGE_SIZE);
        let _ = page.write_bytes(0, contents.get(..n).unwrap_or(&[]));
        self.pages.insert((domid, gref), page.clone());
        page
    }
    /// Registers an unbound remote port.
    pub fn offer_port(&mut self, domid: u16, port: u32) {
        self.ports.insert((domid, port), true);
    }
}

/// Pages seen as one contiguous region (what [`FakePlatform`] maps; also usable by a test
/// frontend to view its own data area).
#[derive(Debug, Clone)]
pub struct PageRun {
    /// The pages, in order.
    pub pages: Vec<Rc<LocalMem>>,
}

impl PageRun {
    fn split(&self, off: usize) -> Option<(&LocalMem, usize)> {
        Some((self.pages.get(off / PAGE_SIZE)?, off % PAGE_SIZE))
    }

    /// Calls `f(page, offset in the page, range of the buffer)` for each page's piece of the
    /// `len` bytes at `off`, in order.
    fn each_piece(
        &self,
        off: usize,
        len: usize,
        mut f: impl FnMut(&LocalMem, usize, core::ops::Range<usize>) -> Result<(), OutOfBounds>,
    ) -> Result<(), OutOfBounds> {
        crate::shmem::check_range(off, len, self.len())?;
        let mut done = 0;
        while done < len {
            let (p, o) = self.split(off + done).ok_or(OutOfBounds { off, len })?;
            let n = (PAGE_SIZE - o).min(len - done);
            f(p, o, done..done + n)?;
            done += n;
        }
        Ok(())
    }
}

impl SharedMem for PageRun {
    fn len(&self) -> usize {
        self.pages.len() * PAGE_SIZE
    }
    fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds> {
        let (p, o) = self.split(off).ok_or(OutOfBounds { off, len: 4 })?;
        p.load_u32_acquire(o)
            .map_err(|_| OutOfBounds { off, len: 4 })
    }
    fn store_u32_release(&self, off: usize, val: u32) -> Result<(), OutOfBounds> {
        let (p, o) = self.split(off).ok_or(OutOfBounds { off, len: 4 })?;
        p.store_u32_release(o, val)
            .map_err(|_| OutOfBounds { off, len: 4 })
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        self.each_piece(off, dst.len(), |p, o, r| {
            p.read_bytes(o, dst.get_mut(r).unwrap_or(&mut []))
        })
    }
    fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        self.each_piece(off, src.len(), |p, o, r| {
            p.write_bytes(o, src.get(r).unwrap_or(&[]))
        })
    }
    fn full_barrier(&self) {}
}

impl Platform for FakePlatform {
    type Mem = PageRun;
    type Error = FakeError;
    fn map_grants(&mut self, domid: u16, refs: &[u32]) -> Result<PageRun, FakeError> {
        let pages = refs
            .iter()
            .map(|r| {
                self.pages
                    .get(&(domid, *r))
                    .cloned()
                    .ok_or(FakeError::BadRef(*r))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.mapped_pages += pages.len();
        Ok(PageRun { pages })
    }
    fn unmap(&mut self, mem: PageRun) {
        self.mapped_pages -= mem.pages.len();
    }
    fn bind_interdomain(&mut self, domid: u16, remote_port: u32) -> Result<u32, FakeError> {
        if self.ports.get(&(domid, remote_port)) != Some(&true) {
            return Err(FakeError::BadPort(remote_port));
        }
        self.next_port += 1;
        self.bound.push(self.next_port);
        Ok(self.next_port)
    }
    fn close_evtchn(&mut self, port: u32) {
        self.bound.retain(|p| *p != port);
    }
}
