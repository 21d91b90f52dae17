//! pvfs's own pages granted to another domain, as a type: [`GrantedPages`] owns the pages and
//! their grants, is reached only through [`SharedMem`] copies (the other domain may write the
//! pages at any time, so no Rust reference into them ever exists), and when dropped ends the
//! other domain's access before the pages go back to the heap. Pages the other domain still
//! maps are never returned: they are leaked and counted ([`leaked_pages`], published as
//! `blk_leaked_pages` in `data/pvfs/stats`).

use super::gnttab::{self, GntError, GrantRef};
use super::shmem::PageMem;
use crate::pages::Pages;
use alloc::vec::Vec;
use core::mem::ManuallyDrop;
use core::sync::atomic::{AtomicU64, Ordering};
use pvfs_ring::blkif::engine::Granted;
use pvfs_ring::shmem::SharedMem;

/// Pages leaked because a domain still mapped them when their grants were ended.
static LEAKED: AtomicU64 = AtomicU64::new(0);

/// Pages leaked so far because another domain still mapped them.
pub fn leaked_pages() -> u64 {
    LEAKED.load(Ordering::Relaxed)
}

/// Why pages could not be granted.
#[derive(Debug)]
pub enum GrantedError {
    /// The heap has no room for them.
    NoMemory,
    /// The grant table refused one.
    Grant(GntError),
}

impl core::fmt::Display for GrantedError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            GrantedError::NoMemory => write!(f, "no memory"),
            GrantedError::Grant(e) => write!(f, "grant: {e:?}"),
        }
    }
}

/// `n` contiguous pages of pvfs's heap, each granted read-write to one domain.
#[derive(Debug)]
pub struct GrantedPages {
    /// Freed only in `drop`, and only when no grant is still mapped.
    pages: ManuallyDrop<Pages>,
    refs: Vec<GrantRef>,
    mem: PageMem,
}

impl GrantedPages {
    /// Allocates `n` zeroed pages and grants each to `domid`. On failure every grant already
    /// made is ended (the pages are not yet known to the other domain).
    pub fn new(n: usize, domid: u16) -> Result<Self, GrantedError> {
        let pages = Pages::new(n).ok_or(GrantedError::NoMemory)?;
        // SAFETY: the pages are owned by the value built here and live as long as it (freed
        // in `drop` only, after the mapping's last use); `Pages` offers no access to their
        // bytes, so this `PageMem` is the only way anything reaches them.
        let mem = unsafe { PageMem::new(pages.addr(), n * 4096) };
        let mut g = Self {
            refs: Vec::with_capacity(n),
            pages: ManuallyDrop::new(pages),
            mem,
        };
        for i in 0..n {
            let r = gnttab::grant(domid, g.pages.pfn(i), false).map_err(GrantedError::Grant)?;
            g.refs.push(r);
        }
        Ok(g)
    }

    /// The grant references, one per page.
    pub fn refs(&self) -> &[GrantRef] {
        &self.refs
    }
}

impl Drop for GrantedPages {
    fn drop(&mut self) {
        let mut busy = false;
        for r in self.refs.drain(..) {
            busy |= gnttab::end_access(r).is_err();
        }
        if busy {
            let n = self.mem.len() / 4096;
            LEAKED.fetch_add(n as u64, Ordering::Relaxed);
            log::warn!("granted pages: the other domain still maps some of {n}; leaking them");
            return;
        }
        // SAFETY: dropped once, here; no grant of these pages is left, so no other domain can
        // reach them, and `mem` (the only accessor) goes away with `self`.
        unsafe { ManuallyDrop::drop(&mut self.pages) };
    }
}

pvfs_ring::delegate_shared_mem!(GrantedPages, mem: PageMem);

impl Granted for GrantedPages {
    fn gref(&self, page: usize) -> Option<u32> {
        self.refs.get(page).copied()
    }
}
