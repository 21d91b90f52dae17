//! The Xen PV block frontend (`io/blkif.h`): pvfs owns its data disk through dom0's blkback.
//!
//! - Discovery and the xenbus handshake through xenstore (`device/vbd/<id>`).
//! - A multi-page shared ring (`max-ring-page-order`), indirect descriptors
//!   (`feature-max-indirect-segments`) and a pool of persistently granted bounce pages
//!   (`feature-persistent`): data pages are granted once and reused, so the backend can keep
//!   them mapped.
//! - Many requests in flight: a batch is split into ring requests that are all queued before
//!   the driver waits for completions.
//! - Implements `pvfs_fs::block::BlockDevice`, so the block cache and ext4 run on it unchanged.
//!   Backend errors become `DevError::Io`, never panics. Responses with unknown or duplicate
//!   ids, or ring index violations, disconnect the device.

mod io;
mod lifecycle;
mod posted;

use crate::pages::Pages;
use crate::xen::gnttab::GrantRef;
use crate::xen::shmem::PageMem;
use crate::xen::store;
use alloc::string::String;
use alloc::vec::Vec;
use pvfs_fs::block::{BlockDevice, DevError, Request};
use pvfs_ring::shared_ring::FrontRing;
use pvfs_ring::xenbus::VbdFrontend;

/// Data pages in the bounce pool (2 MiB).
const POOL_PAGES: usize = 512;
/// Indirect-descriptor pages.
const INDIRECT_PAGES: usize = 32;
/// Largest ring we ask for (pages = 1 << order).
const MAX_RING_ORDER: u32 = 2;
/// Segments we use per indirect request at most (one indirect page holds 512).
const MAX_INDIRECT_SEGS: u32 = 256;
/// How long to wait for the backend during setup (event wake-ups).
const SETUP_WAKEUPS: u32 = 10_000;

/// Errors while connecting.
#[derive(Debug)]
pub struct SetupError(pub String);

/// A connected virtual block device.
pub struct Blkfront {
    devid: u32,
    /// The xenbus machine: keeps running after connect, for backend state changes.
    machine: VbdFrontend,
    fe: String,
    be_id: u16,
    ring_pages: Pages,
    ring_refs: Vec<GrantRef>,
    mem: PageMem,
    ring: FrontRing,
    port: u32,
    sectors: u64,
    sector_size: u32,
    readonly: bool,
    /// Cache flush: `Some(false)` = FLUSH_DISKCACHE, `Some(true)` = WRITE_BARRIER.
    flush_op: Option<bool>,
    max_segs: u32,
    pool: Pages,
    pool_refs: Vec<GrantRef>,
    free_pages: Vec<u16>,
    indirect: Pages,
    indirect_refs: Vec<GrantRef>,
    free_indirect: Vec<u16>,
    slots: Vec<Option<Slot>>,
    /// The first error of a posted write, returned by the next flush (or FUA write).
    posted_err: Option<DevError>,
    /// Completed posted reads not taken yet: disk byte position, length, bounce pages.
    ready: Vec<(u64, usize, Vec<u16>)>,
    /// Scratch buffer for handing over a completed read in one piece.
    ready_buf: Vec<u8>,
    broken: bool,
    /// Disconnected and released: every request fails.
    closed: bool,
    /// Requests completed (for stats).
    pub completed: u64,
}

/// One in-flight ring request.
struct Slot {
    /// Index of the batch request it serves, and the byte offset into its buffer.
    req: usize,
    off: usize,
    /// Byte position on the disk and length.
    pos: u64,
    len: usize,
    /// A posted write or read-ahead (`BlockDevice::post_writes`/`post_reads`): nobody waits
    /// for it.
    posted: bool,
    pages: Vec<u16>,
    indirect: Option<u16>,
    write: bool,
}

/// Device ids offered under `device/vbd`.
pub fn discover() -> Vec<u32> {
    let mut ids: Vec<u32> = store::directory("device/vbd")
        .unwrap_or_default()
        .iter()
        .filter_map(|s| s.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

impl Blkfront {
    /// Capacity in bytes.
    pub fn size_bytes(&self) -> u64 {
        self.sectors * 512
    }

    fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    fn fail(&mut self, what: &str) -> DevError {
        log::error!("blkfront: vbd {}: {what}; device disconnected", self.devid);
        self.broken = true;
        DevError::Io { lba: 0, code: -5 }
    }
}

impl BlockDevice for Blkfront {
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn sector_count(&self) -> u64 {
        self.sectors * 512 / u64::from(self.sector_size)
    }
    fn read_only(&self) -> bool {
        self.readonly
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
        self.run_batch(&mut [Request::Read { lba, buf }])
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError> {
        self.run_batch(&mut [Request::Write { lba, buf, fua }])
    }
    fn flush(&mut self) -> Result<(), DevError> {
        self.run_batch(&mut [Request::Flush])
    }
    fn post_writes(&mut self, writes: &[(u64, &[u8])]) -> Result<usize, DevError> {
        self.post(writes)
    }
    fn reap(&mut self) -> bool {
        self.reap_responses()
    }
    fn posted(&self) -> usize {
        // A broken or closed device completes nothing more: nothing is in flight to wait for.
        if self.broken || self.closed {
            return 0;
        }
        self.slots.iter().flatten().filter(|s| s.posted).count()
    }
    fn posted_capacity(&self) -> usize {
        POOL_PAGES / 2 * 4096
    }
    fn post_reads(&mut self, reads: &[(u64, usize)]) -> Result<usize, DevError> {
        self.post_read_ahead(reads)
    }
    fn take_reads(&mut self, f: &mut dyn FnMut(u64, &[u8])) -> bool {
        self.take_ready(f)
    }
    fn wait_posted(&mut self) -> Result<(), DevError> {
        if self.in_flight() > 0 {
            self.kick()?;
            self.complete(&mut [], 1)?;
        }
        Ok(())
    }
    fn submit(&mut self, reqs: &mut [Request<'_>]) -> Result<(), DevError> {
        self.run_batch(reqs)
    }
}
