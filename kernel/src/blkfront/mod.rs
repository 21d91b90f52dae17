//! The Xen PV block frontend (`io/blkif.h`): pvfs owns its data disk through dom0's blkback.
//!
//! - Discovery and the xenbus handshake through xenstore (`device/vbd/<id>`), decided by the
//!   host-tested `pvfs_ring::xenbus::VbdFrontend`.
//! - The request engine (`pvfs_ring::blkif::engine`: slots, a multi-page shared ring,
//!   indirect descriptors, a pool of persistently granted bounce pages, merging, posted I/O)
//!   is platform-free and host-tested against a hostile fake backend. This module gives it
//!   its memory, as [`GrantedPages`] (pvfs's pages granted to the backend, reached only by
//!   copies), and its event channel ([`Port`]).
//! - Implements `pvfs_fs::block::BlockDevice`, so the block cache and ext4 run on it unchanged.
//!   Backend errors become `DevError::Io`, never panics. Responses with ids not in flight or
//!   with the wrong operation, or ring index violations, disconnect the device.

mod lifecycle;

use crate::xen::events;
use crate::xen::granted::GrantedPages;
use crate::xen::store;
use alloc::string::String;
use alloc::vec::Vec;
use pvfs_fs::block::{BlockDevice, DevError, Request};
use pvfs_ring::blkif::engine::{Doorbell, Engine};
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

/// The device's event channel, as the engine's doorbell.
struct Port(u32);

impl Doorbell for Port {
    fn notify(&mut self) {
        let _ = events::notify(self.0);
    }
    fn wait(&mut self) -> bool {
        events::wait(Some(self.0));
        true
    }
}

type Io = Engine<GrantedPages, Port>;

/// A connected virtual block device.
pub struct Blkfront {
    devid: u32,
    /// The xenbus machine: keeps running after connect, for backend state changes.
    machine: VbdFrontend,
    fe: String,
    be_id: u16,
    port: u32,
    sectors: u64,
    sector_size: u32,
    readonly: bool,
    /// The request engine; `None` once the device is closed and its grants released.
    io: Option<Io>,
}

/// What a backend event changed ([`Blkfront::on_backend_event`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendEvent {
    /// Nothing the caller must act on.
    Nothing,
    /// The device is closed: every later request fails.
    Closed,
    /// The disk grew; its size in bytes now.
    Grew(u64),
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

/// The error of every request to a closed device.
const CLOSED: DevError = DevError::Io { lba: 0, code: -5 };

impl Blkfront {
    /// Capacity in bytes (at most `pvfs_ring::xenbus::VBD_MAX_BYTES`, checked at connect).
    pub fn size_bytes(&self) -> u64 {
        self.sectors.saturating_mul(512)
    }

    /// Requests completed (for stats).
    pub fn completed(&self) -> u64 {
        self.io.as_ref().map_or(0, Engine::completed)
    }

    fn io(&mut self) -> Result<&mut Io, DevError> {
        self.io.as_mut().ok_or(CLOSED)
    }
}

impl BlockDevice for Blkfront {
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn sector_count(&self) -> u64 {
        self.size_bytes() / u64::from(self.sector_size)
    }
    fn read_only(&self) -> bool {
        self.readonly
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
        self.io()?.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError> {
        self.io()?.write(lba, buf, fua)
    }
    fn flush(&mut self) -> Result<(), DevError> {
        self.io()?.flush()
    }
    fn post_writes(&mut self, writes: &[(u64, &[u8])]) -> Result<usize, DevError> {
        self.io()?.post_writes(writes)
    }
    fn reap(&mut self) -> bool {
        self.io.as_mut().is_some_and(BlockDevice::reap)
    }
    fn posted(&self) -> usize {
        self.io.as_ref().map_or(0, BlockDevice::posted)
    }
    fn posted_capacity(&self) -> usize {
        self.io.as_ref().map_or(0, BlockDevice::posted_capacity)
    }
    fn post_reads(&mut self, reads: &[(u64, usize)]) -> Result<usize, DevError> {
        self.io()?.post_reads(reads)
    }
    fn take_reads(&mut self, f: &mut dyn FnMut(u64, &[u8])) -> bool {
        self.io.as_mut().is_some_and(|io| io.take_reads(f))
    }
    fn wait_posted(&mut self) -> Result<(), DevError> {
        self.io()?.wait_posted()
    }
    fn submit(&mut self, reqs: &mut [Request<'_>]) -> Result<(), DevError> {
        self.io()?.submit(reqs)
    }
}
