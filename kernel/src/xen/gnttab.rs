//! Grant tables, version 1 (`grant_table.h`).
//!
//! - **Granting our pages** to another domain: entries live in grant frames that Xen places in
//!   our frame window (`XENMEM_add_to_physmap`, `XENMAPSPACE_grant_table`). Ending access checks
//!   `GTF_reading`/`GTF_writing` with a compare-and-swap, so a page is never reused while the
//!   other side still has it mapped.
//! - **Mapping foreign grants** (`GNTTABOP_map_grant_ref` with `GNTMAP_host_map`) into frames of
//!   the window that no RAM backs.
//! - **Grant copy** (`GNTTABOP_copy`): bulk data without mappings.
//!
//! Bookkeeping ([`Stats`]) counts refs in use and live mappings, so leaks show as growth.

use super::{add_to_physmap, hypercall3, nr, XenError, DOMID_SELF, MAPSPACE_GRANT_TABLE};
use alloc::vec::Vec;
use core::sync::atomic::{AtomicU16, Ordering};
use pvfs_kernel::frames::FrameAllocator;
use spin::Mutex;

use pvfs_kernel::grants::{Entries, GrantError, GrantTable, ENTRIES_PER_FRAME};
pub use pvfs_kernel::grants::{GrantRef, Stats};

const GNTTABOP_MAP_GRANT_REF: u64 = 0;
const GNTTABOP_UNMAP_GRANT_REF: u64 = 1;
const GNTTABOP_QUERY_SIZE: u64 = 6;
const GNTTABOP_COPY: u64 = 5;
const GNTMAP_HOST_MAP: u32 = 1 << 1;

/// Grant-table errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GntError {
    /// Not initialised.
    NotReady,
    /// No free grant reference.
    NoFreeRefs,
    /// The other domain still has the page mapped; the ref stays reserved.
    StillInUse(GrantRef),
    /// The ref is not one we granted.
    NotGranted(GrantRef),
    /// No free frame in the window for a mapping.
    NoFrames,
    /// A hypercall failed.
    Hypercall(XenError),
    /// A per-operation status from Xen (GNTST_*).
    Status(i16),
    /// The frame number does not fit a v1 entry.
    FrameTooLarge(u64),
}

impl From<GrantError> for GntError {
    fn from(e: GrantError) -> Self {
        match e {
            GrantError::NoFreeRefs => GntError::NoFreeRefs,
            GrantError::StillInUse(r) => GntError::StillInUse(r),
            GrantError::NotGranted(r) => GntError::NotGranted(r),
            GrantError::FrameTooLarge(f) => GntError::FrameTooLarge(f),
        }
    }
}

/// The grant frames, as the bookkeeping's entry storage.
struct Frames {
    base: usize,
    capacity: u32,
}

impl Frames {
    fn flags_cell(&self, r: GrantRef) -> Option<&AtomicU16> {
        if r >= self.capacity {
            return None;
        }
        // SAFETY: `r` < capacity, so the entry lies inside the grant frames mapped at `base`,
        // which stay mapped for the domain's life; flags is the first, 2-aligned field of the
        // 8-byte entry, and Xen updates it atomically.
        Some(unsafe { AtomicU16::from_ptr((self.base + r as usize * 8) as *mut u16) })
    }
}

impl Entries for Frames {
    fn publish(&mut self, r: GrantRef, domid: u16, frame: u32, flags: u16) {
        let Some(cell) = self.flags_cell(r) else {
            return;
        };
        let e = self.base + r as usize * 8;
        // SAFETY: entry `r` is inside the grant frames (checked by flags_cell) and free, so
        // Xen ignores it until the flags below publish it.
        unsafe { core::ptr::write_volatile((e + 2) as *mut u16, domid) };
        // SAFETY: as above, the frame field of the same entry.
        unsafe { core::ptr::write_volatile((e + 4) as *mut u32, frame) };
        cell.store(flags, Ordering::Release);
    }
    fn flags(&self, r: GrantRef) -> u16 {
        self.flags_cell(r).map_or(0, |c| c.load(Ordering::Acquire))
    }
    fn compare_exchange(&mut self, r: GrantRef, old: u16, new: u16) -> bool {
        self.flags_cell(r).is_some_and(|c| {
            c.compare_exchange(old, new, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        })
    }
}

type Table = GrantTable<Frames>;

static TABLE: Mutex<Option<Table>> = Mutex::new(None);
static WINDOW: Mutex<Option<FrameAllocator>> = Mutex::new(None);

#[repr(C)]
struct QuerySize {
    dom: u16,
    _pad: u16,
    nr_frames: u32,
    max_nr_frames: u32,
    status: i16,
}

/// GNTTABOP `cmd` on the one struct `op`: the hypercall's error, or the one `status` reads
/// from the struct after it.
///
/// # Safety
/// `op` must be the structure `cmd` reads and writes, laid out as Xen expects.
unsafe fn one_op<T>(cmd: u64, op: &mut T, status: fn(&T) -> i16) -> Result<(), GntError> {
    // SAFETY: the caller vouches that `op` is what `cmd` expects; the count is 1.
    let rc = unsafe { hypercall3(nr::GRANT_TABLE_OP, cmd, core::ptr::from_mut(op) as u64, 1) };
    if rc < 0 {
        return Err(GntError::Hypercall(XenError(rc)));
    }
    match status(op) {
        0 => Ok(()),
        s => Err(GntError::Status(s)),
    }
}

/// GNTTABOP `cmd`, which maps or unmaps grants, over all of `ops`; returns the hypercall's
/// result (each struct then holds its own status).
///
/// Interrupts stay masked while Xen changes our physical map: an upcall delivered right after
/// such a call has been seen to take the domain down under nested emulation (a triple fault
/// at the hypercall's return), so none is taken there.
///
/// # Safety
/// `ops` must be the structures `cmd` reads and writes, each naming a frame that may be
/// mapped or unmapped.
unsafe fn map_op<T>(cmd: u64, ops: &mut [T]) -> i64 {
    crate::arch::without_interrupts(|| {
        // SAFETY: the caller vouches for `ops`; the count is its length.
        unsafe {
            hypercall3(
                nr::GRANT_TABLE_OP,
                cmd,
                ops.as_mut_ptr() as u64,
                ops.len() as u64,
            )
        }
    })
}

/// Sets up the grant table with up to `want_frames` frames taken from `window`.
pub fn init(mut window: FrameAllocator, want_frames: u32) -> Result<Stats, GntError> {
    let mut q = QuerySize {
        dom: DOMID_SELF,
        _pad: 0,
        nr_frames: 0,
        max_nr_frames: 0,
        status: 0,
    };
    // SAFETY: GNTTABOP_query_size reads/writes one `gnttab_query_size`, which `q` is.
    unsafe { one_op(GNTTABOP_QUERY_SIZE, &mut q, |q| q.status) }?;
    let frames = want_frames.min(q.max_nr_frames).max(1);
    let first = window
        .alloc_contiguous(u64::from(frames))
        .ok_or(GntError::NoFrames)?;
    for i in 0..frames {
        // The frames come from the unbacked window, so no RAM page is displaced.
        add_to_physmap(MAPSPACE_GRANT_TABLE, u64::from(i), first + u64::from(i))
            .map_err(GntError::Hypercall)?;
    }
    let capacity = frames * ENTRIES_PER_FRAME;
    let table = GrantTable::new(
        Frames {
            base: (first << 12) as usize,
            capacity,
        },
        capacity,
    );
    let stats = table.stats;
    *TABLE.lock() = Some(table);
    *WINDOW.lock() = Some(window);
    Ok(stats)
}

/// Grants `domid` access to our frame `pfn`.
pub fn grant(domid: u16, pfn: u64, readonly: bool) -> Result<GrantRef, GntError> {
    Ok(TABLE
        .lock()
        .as_mut()
        .ok_or(GntError::NotReady)?
        .grant(domid, pfn, readonly)?)
}

/// Ends access to `r`. If the other side still has the page mapped, the ref is kept reserved
/// and retried by [`reclaim`], and `StillInUse` is returned: the caller must not reuse the page.
pub fn end_access(r: GrantRef) -> Result<(), GntError> {
    Ok(TABLE
        .lock()
        .as_mut()
        .ok_or(GntError::NotReady)?
        .end_access(r)?)
}

/// Retries refs whose access could not be ended earlier; returns how many are still busy.
pub fn reclaim() -> usize {
    TABLE.lock().as_mut().map_or(0, GrantTable::reclaim)
}

#[repr(C)]
struct MapGrantRef {
    host_addr: u64,
    flags: u32,
    gref: u32,
    dom: u16,
    status: i16,
    handle: u32,
    dev_bus_addr: u64,
}

#[repr(C)]
struct UnmapGrantRef {
    host_addr: u64,
    dev_bus_addr: u64,
    handle: u32,
    status: i16,
}

/// One side of a grant copy.
#[derive(Debug, Clone, Copy)]
pub enum CopyPtr {
    /// A page of ours, by frame number.
    Local {
        /// Frame number.
        pfn: u64,
        /// Offset in the page.
        offset: u16,
    },
    /// A page granted to us by `domid`.
    Foreign {
        /// Granting domain.
        domid: u16,
        /// Grant ref.
        gref: GrantRef,
        /// Offset in the page.
        offset: u16,
    },
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CopySide {
    u: u64,
    domid: u16,
    offset: u16,
    _pad: u32,
}

#[repr(C)]
struct GnttabCopy {
    source: CopySide,
    dest: CopySide,
    len: u16,
    flags: u16,
    status: i16,
    _pad: u16,
}

fn side(p: CopyPtr) -> (CopySide, bool) {
    match p {
        CopyPtr::Local { pfn, offset } => (
            CopySide {
                u: pfn,
                domid: DOMID_SELF,
                offset,
                _pad: 0,
            },
            false,
        ),
        CopyPtr::Foreign {
            domid,
            gref,
            offset,
        } => (
            CopySide {
                u: u64::from(gref),
                domid,
                offset,
                _pad: 0,
            },
            true,
        ),
    }
}

/// GNTTABOP_copy of `len` bytes (within one page on each side).
pub fn copy(src: CopyPtr, dst: CopyPtr, len: u16) -> Result<(), GntError> {
    let (s, s_gref) = side(src);
    let (d, d_gref) = side(dst);
    let flags = u16::from(s_gref) | (u16::from(d_gref) << 1);
    let mut op = GnttabCopy {
        source: s,
        dest: d,
        len,
        flags,
        status: 0,
        _pad: 0,
    };
    // SAFETY: GNTTABOP_copy reads/writes one `gnttab_copy`, which `op` is; Xen validates
    // both sides (grant permissions, page bounds) and reports problems in `status`.
    unsafe { one_op(GNTTABOP_COPY, &mut op, |op| op.status) }
}

/// Current counters.
pub fn stats() -> Stats {
    TABLE.lock().as_ref().map(|t| t.stats).unwrap_or_default()
}

/// Foreign pages mapped into consecutive frames of the window, so they read as one region.
#[derive(Debug)]
pub struct Run {
    /// Address of the first page.
    pub addr: u64,
    handles: Vec<u32>,
}

impl Run {
    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.handles.len() * 4096
    }
}

/// Maps `refs` of `domid` read-write into consecutive frames, batching the hypercalls. On any
/// failure everything mapped so far is unmapped again.
pub fn map_run(domid: u16, refs: &[GrantRef]) -> Result<Run, GntError> {
    if refs.is_empty() {
        return Err(GntError::NoFrames);
    }
    let n = refs.len() as u64;
    let first = WINDOW
        .lock()
        .as_mut()
        .ok_or(GntError::NotReady)?
        .alloc_contiguous(n)
        .ok_or(GntError::NoFrames)?;
    let mut handles: Vec<u32> = Vec::with_capacity(refs.len());
    let mut failure = None;
    for (c, chunk) in refs.chunks(64).enumerate() {
        let mut ops: Vec<MapGrantRef> = chunk
            .iter()
            .enumerate()
            .map(|(i, &r)| MapGrantRef {
                host_addr: (first + (c * 64 + i) as u64) << 12,
                flags: GNTMAP_HOST_MAP,
                gref: r,
                dom: domid,
                status: 0,
                handle: 0,
                dev_bus_addr: 0,
            })
            .collect();
        // SAFETY: GNTTABOP_map_grant_ref over `gnttab_map_grant_ref` structs; every host_addr
        // is a distinct frame of the unbacked window, allocated above for this run.
        let rc = unsafe { map_op(GNTTABOP_MAP_GRANT_REF, &mut ops) };
        for op in &ops {
            if rc >= 0 && op.status == 0 {
                handles.push(op.handle);
            } else {
                failure.get_or_insert(if rc < 0 {
                    GntError::Hypercall(XenError(rc))
                } else {
                    GntError::Status(op.status)
                });
                // Keep positions aligned: a failed slot has no mapping to undo.
                handles.push(u32::MAX);
            }
        }
        if failure.is_some() {
            break;
        }
    }
    let ok = handles.iter().filter(|&&h| h != u32::MAX).count() as u32;
    if let Some(t) = TABLE.lock().as_mut() {
        t.stats.mapped += ok;
    }
    let run = Run {
        addr: first << 12,
        handles,
    };
    if let Some(e) = failure {
        unmap_run(run);
        return Err(e);
    }
    Ok(run)
}

/// Unmaps a run and returns its frames to the window (frames that fail to unmap are kept out
/// of the window, so they are never reused while still mapped).
pub fn unmap_run(run: Run) {
    let mut all_ok = true;
    let mut unmapped = 0u32;
    let live: Vec<(usize, u32)> = run
        .handles
        .iter()
        .enumerate()
        .filter(|&(_, &h)| h != u32::MAX)
        .map(|(i, &h)| (i, h))
        .collect();
    for chunk in live.chunks(64) {
        let mut ops: Vec<UnmapGrantRef> = chunk
            .iter()
            .map(|&(i, h)| UnmapGrantRef {
                host_addr: run.addr + (i as u64) * 4096,
                dev_bus_addr: 0,
                handle: h,
                status: 0,
            })
            .collect();
        // SAFETY: GNTTABOP_unmap_grant_ref over `gnttab_unmap_grant_ref` structs, each naming
        // a mapping made by `map_run` at its frame of the window.
        let rc = unsafe { map_op(GNTTABOP_UNMAP_GRANT_REF, &mut ops) };
        for op in &ops {
            if rc < 0 || op.status != 0 {
                all_ok = false;
            } else {
                unmapped += 1;
            }
        }
    }
    if all_ok {
        if let Some(w) = WINDOW.lock().as_mut() {
            w.free(run.addr >> 12, run.handles.len() as u64);
        }
    }
    if let Some(t) = TABLE.lock().as_mut() {
        t.stats.mapped = t.stats.mapped.saturating_sub(unmapped);
    }
}

/// Frames still free in the mapping window.
pub fn window_free_frames() -> u64 {
    WINDOW
        .lock()
        .as_ref()
        .map_or(0, FrameAllocator::free_frames)
}
