//! The block frontend's request engine: slots, the bounce pool, indirect segments, merging of
//! contiguous writes, posted writes and read-ahead, over memory granted to the backend.
//!
//! The engine owns the ring's shared page(s), the bounce pool and the indirect-descriptor
//! pages, each as a [`Granted`] region: pvfs's own pages granted to the backend domain, reached
//! only through [`SharedMem`] copies (the backend may write them at any time). The platform
//! (grant table, event channel, xenstore handshake) stays in the kernel; a [`Doorbell`] is its
//! event channel. The engine implements [`BlockDevice`], so the block cache and ext4 run on it.
//!
//! The backend is not trusted. Every response is checked before it is acted on: its id must
//! name a request in flight, and its operation must be the request's; otherwise the engine
//! stops (every later call fails with an I/O error) and frees nothing, so a page or slot the
//! backend may still own is never reused. A failed status fails only its own request. A
//! backend that stops answering or goes away ([`Doorbell::wait`] returns false) fails the
//! waiting call. Nothing the backend writes panics the engine.

mod batch;
pub mod fake;
mod posted;
#[cfg(test)]
mod tests;

use super::{ENTRY_SIZE, MAX_SEGMENTS, SEGS_PER_INDIRECT_FRAME};
use crate::shared_ring::{FrontRing, RingError};
use crate::shmem::SharedMem;
use alloc::vec::Vec;
use pvfs_fs::block::{BlockDevice, DevError, Request};

/// Bytes in a page of the pool and of the indirect area.
pub const PAGE: usize = 4096;
/// Largest logical sector size: a sector must fit a bounce page.
pub const MAX_SECTOR_SIZE: u32 = 4096;
/// Largest disk, in 512-byte sectors (1 PiB, as `pvfs_ring::xenbus::VBD_MAX_BYTES`).
pub const MAX_SECTORS: u64 = crate::xenbus::VBD_MAX_BYTES / 512;
/// How many times a wait for a response may find nothing before the backend counts as hung.
const MAX_EMPTY_WAITS: u32 = 200_000;

/// A region of pvfs's pages granted to the backend: [`SharedMem`] for its bytes, and the
/// grant reference of each of its pages.
pub trait Granted: SharedMem {
    /// Grant reference of page `i` (`None` past the end).
    fn gref(&self, page: usize) -> Option<u32>;
}

/// The event channel to the backend.
pub trait Doorbell {
    /// Signals the backend that requests are on the ring.
    fn notify(&mut self);
    /// Waits for the backend's next signal (returns at once if one arrived since the last
    /// wait). False: the backend is gone and will answer nothing more.
    fn wait(&mut self) -> bool;
}

/// How the backend flushes its write cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushOp {
    /// `BLKIF_OP_FLUSH_DISKCACHE` (`feature-flush-cache`).
    DiskCache,
    /// `BLKIF_OP_WRITE_BARRIER` (`feature-barrier`).
    Barrier,
}

/// What the backend advertised, as the engine needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskConfig {
    /// The device handle put in each request.
    pub handle: u16,
    /// Capacity in 512-byte sectors (at most [`MAX_SECTORS`]).
    pub sectors: u64,
    /// Logical sector size (512..=4096, a power of two).
    pub sector_size: u32,
    /// The disk is read-only.
    pub read_only: bool,
    /// The cache flush, if the backend has one.
    pub flush: Option<FlushOp>,
    /// Segments per request the engine may use: 11, or more with indirect descriptors (capped
    /// at one indirect page, 512, and at the pool's size).
    pub max_segments: u32,
}

/// Why an engine could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    /// The ring pages cannot hold a ring.
    Ring(RingError),
    /// The disk's geometry is out of range.
    Geometry {
        /// Sectors advertised.
        sectors: u64,
        /// Sector size advertised.
        sector_size: u32,
    },
    /// The bounce pool is empty or larger than 65535 pages, or a page has no grant.
    Pool,
}

/// One in-flight ring request.
#[derive(Debug)]
struct Slot {
    /// Index of the batch request it serves, and the byte offset into its buffer.
    req: usize,
    off: usize,
    /// Byte position on the disk and length.
    pos: u64,
    len: usize,
    /// A posted write or read-ahead: nobody waits for it.
    posted: bool,
    pages: Vec<u16>,
    indirect: Option<u16>,
    write: bool,
    /// The operation a response must carry (for an indirect request, the data operation;
    /// `OP_INDIRECT` is accepted as well).
    op: u8,
}

/// A completed posted read not taken yet: disk byte position, length, bounce pages.
type Ready = (u64, usize, Vec<u16>);

/// The request engine of one virtual block device.
pub struct Engine<M: Granted, D: Doorbell> {
    cfg: DiskConfig,
    ring: FrontRing,
    ring_mem: M,
    pool: M,
    indirect: M,
    door: D,
    pool_pages: usize,
    free_pages: Vec<u16>,
    free_indirect: Vec<u16>,
    slots: Vec<Option<Slot>>,
    /// The first error of a posted write, returned by the next flush (or FUA write).
    posted_err: Option<DevError>,
    ready: Vec<Ready>,
    /// Scratch buffer for handing over a completed read in one piece.
    ready_buf: Vec<u8>,
    /// The backend broke the protocol or went away: every request fails.
    broken: bool,
    /// Responses accepted (for stats).
    completed: u64,
}

impl<M: Granted, D: Doorbell> Engine<M, D> {
    /// Initialises the ring in `ring_mem` and takes the bounce pool (`pool`, one page per
    /// 4 KiB) and the indirect-descriptor pages (`indirect`, may be empty: then requests carry
    /// at most 11 segments).
    pub fn new(
        cfg: DiskConfig,
        ring_mem: M,
        pool: M,
        indirect: M,
        door: D,
    ) -> Result<Self, EngineError> {
        if cfg.sectors == 0
            || cfg.sectors > MAX_SECTORS
            || !(512..=MAX_SECTOR_SIZE).contains(&cfg.sector_size)
            || !cfg.sector_size.is_power_of_two()
        {
            return Err(EngineError::Geometry {
                sectors: cfg.sectors,
                sector_size: cfg.sector_size,
            });
        }
        let pool_pages = pool.len() / PAGE;
        let indirect_pages = (indirect.len() / PAGE).min(usize::from(u16::MAX));
        if pool_pages == 0
            || pool_pages > usize::from(u16::MAX)
            || (0..pool_pages).any(|i| pool.gref(i).is_none())
            || (0..indirect_pages).any(|i| indirect.gref(i).is_none())
        {
            return Err(EngineError::Pool);
        }
        let ring = FrontRing::init(&ring_mem, ENTRY_SIZE).map_err(EngineError::Ring)?;
        let nr = ring.geometry().nr_ents() as usize;
        let mut max = (cfg.max_segments as usize).clamp(MAX_SEGMENTS, SEGS_PER_INDIRECT_FRAME);
        if indirect_pages == 0 {
            max = MAX_SEGMENTS;
        }
        let max = max.min(pool_pages);
        Ok(Self {
            cfg: DiskConfig {
                max_segments: max as u32,
                ..cfg
            },
            ring,
            ring_mem,
            pool,
            indirect,
            door,
            pool_pages,
            free_pages: (0..pool_pages as u16).rev().collect(),
            free_indirect: (0..indirect_pages as u16).rev().collect(),
            slots: (0..nr).map(|_| None).collect(),
            posted_err: None,
            ready: Vec::new(),
            ready_buf: Vec::new(),
            broken: false,
            completed: 0,
        })
    }

    /// The configuration in use (`max_segments` as capped).
    pub fn config(&self) -> DiskConfig {
        self.cfg
    }

    /// Ring slots (requests that can be in flight at once).
    pub fn ring_slots(&self) -> usize {
        self.slots.len()
    }

    /// Capacity in bytes.
    pub fn size_bytes(&self) -> u64 {
        // At most 2^50 (checked in `new`).
        self.cfg.sectors * 512
    }

    /// The backend's disk grew to `sectors` (512-byte units): requests may reach the new end
    /// from now on. Refused (the size unchanged) if that is smaller than the size in use or
    /// beyond [`MAX_SECTORS`].
    pub fn grow_to(&mut self, sectors: u64) -> Result<(), EngineError> {
        if sectors < self.cfg.sectors || sectors > MAX_SECTORS {
            return Err(EngineError::Geometry {
                sectors,
                sector_size: self.cfg.sector_size,
            });
        }
        self.cfg.sectors = sectors;
        Ok(())
    }

    /// Responses accepted so far.
    pub fn completed(&self) -> u64 {
        self.completed
    }

    /// True once the backend broke the protocol or went away.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Requests in flight (the backend may own their pages).
    pub fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.is_some()).count()
    }

    /// Completes everything in flight (for a backend that is closing), without failing the
    /// device for it.
    pub fn drain(&mut self) {
        if !self.broken && self.in_flight() > 0 {
            let _ = self.kick();
            let _ = self.complete(&mut [], 1);
        }
    }

    /// Stops the engine: every later request fails. Pages of requests still in flight stay
    /// out of the free lists.
    pub fn stop(&mut self) {
        self.broken = true;
    }

    fn fail(&mut self, what: &str) -> DevError {
        if !self.broken {
            log::error!(
                "blkfront: vbd {}: {what}; device disconnected",
                self.cfg.handle
            );
        }
        self.broken = true;
        DevError::Io { lba: 0, code: -5 }
    }
}

impl<M: Granted, D: Doorbell> BlockDevice for Engine<M, D> {
    fn sector_size(&self) -> u32 {
        self.cfg.sector_size
    }
    fn sector_count(&self) -> u64 {
        self.size_bytes() / u64::from(self.cfg.sector_size)
    }
    fn read_only(&self) -> bool {
        self.cfg.read_only
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
        // A broken device completes nothing more: nothing is in flight to wait for.
        if self.broken {
            return 0;
        }
        self.slots.iter().flatten().filter(|s| s.posted).count()
    }
    fn posted_capacity(&self) -> usize {
        self.pool_pages / 2 * PAGE
    }
    fn post_reads(&mut self, reads: &[(u64, usize)]) -> Result<usize, DevError> {
        self.post_read_ahead(reads)
    }
    fn take_reads(&mut self, f: &mut dyn FnMut(u64, &[u8])) -> bool {
        self.take_ready(f)
    }
    fn wait_posted(&mut self) -> Result<(), DevError> {
        if self.broken {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
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
