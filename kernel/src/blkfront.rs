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

use crate::pages::Pages;
use crate::xen::events;
use crate::xen::gnttab::{self, GrantRef};
use crate::xen::shmem::PageMem;
use crate::xen::store;
use crate::xen::store::XsStore;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use pvfs_fs::block::{BlockDevice, DevError, Request};
use pvfs_ring::blkif::{self, Segment};
use pvfs_ring::shared_ring::FrontRing;
use pvfs_ring::xenbus::{VbdAction, VbdFrontend, VbdRing};

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
    /// Runs the xenbus handshake for `device/vbd/<devid>` and returns a connected device. The
    /// decisions (which keys, which states, when) are made by the host-tested
    /// `pvfs_ring::xenbus::VbdFrontend`; this function allocates and grants what it asks for.
    pub fn connect(devid: u32) -> Result<Self, SetupError> {
        let fe = format!("device/vbd/{devid}");
        let mut machine = VbdFrontend::new(&fe, true);
        let mut ring: Option<(Pages, Vec<GrantRef>, u32, u16)> = None;
        let mut wakeups = 0u32;
        let info = loop {
            match machine
                .step(&mut XsStore)
                .map_err(|e| SetupError(format!("{fe}: {e:?}")))?
            {
                VbdAction::Idle => {
                    wakeups += 1;
                    if wakeups > SETUP_WAKEUPS {
                        return Err(SetupError(format!(
                            "{fe}: timed out waiting for the backend"
                        )));
                    }
                    // The machine watches the backend state; drain events, then sleep.
                    while let Ok(Some(_)) = store::next_watch_event() {}
                    events::wait(None);
                }
                VbdAction::AllocateRing { order, backend_id } => {
                    let npages = 1usize << order.min(MAX_RING_ORDER);
                    let pages = Pages::new(npages)
                        .ok_or_else(|| SetupError("no memory for the ring".into()))?;
                    let mut refs = Vec::new();
                    for i in 0..npages {
                        refs.push(
                            gnttab::grant(backend_id, pages.pfn(i), false)
                                .map_err(|e| SetupError(format!("grant ring: {e:?}")))?,
                        );
                    }
                    let port = events::alloc_unbound(backend_id)
                        .map_err(|e| SetupError(format!("evtchn: {e:?}")))?;
                    let keys = VbdRing {
                        refs: refs.clone(),
                        evtchn: port,
                    };
                    ring = Some((pages, refs, port, backend_id));
                    machine
                        .ring_ready(&mut XsStore, &keys)
                        .map_err(|e| SetupError(format!("{fe}: {e:?}")))?;
                }
                VbdAction::Connected(info) => break info,
                VbdAction::Drain | VbdAction::Closed => {
                    return Err(SetupError(format!(
                        "{fe}: backend closed during the handshake"
                    )))
                }
            }
        };
        let (ring_pages, ring_refs, port, be_id) =
            ring.ok_or_else(|| SetupError("connected without a ring".into()))?;
        let npages = ring_refs.len();
        // SAFETY: the ring pages are owned by this Blkfront (kept alive in `ring_pages`) and
        // are accessed only through this PageMem once granted.
        let mem = unsafe { PageMem::new(ring_pages.addr(), npages * 4096) };
        let ring = FrontRing::init(&mem, blkif::ENTRY_SIZE)
            .map_err(|e| SetupError(format!("ring init: {e:?}")))?;

        // Persistent bounce pages for data and indirect descriptors. With feature-persistent,
        // blkback maps every grant read-write (indirect pages included), so none is read-only.
        let pool = Pages::new(POOL_PAGES)
            .ok_or_else(|| SetupError("no memory for the bounce pool".into()))?;
        let mut pool_refs = Vec::with_capacity(POOL_PAGES);
        for i in 0..POOL_PAGES {
            pool_refs.push(
                gnttab::grant(be_id, pool.pfn(i), false)
                    .map_err(|e| SetupError(format!("grant pool: {e:?}")))?,
            );
        }
        let indirect = Pages::new(INDIRECT_PAGES)
            .ok_or_else(|| SetupError("no memory for indirect pages".into()))?;
        let mut indirect_refs = Vec::with_capacity(INDIRECT_PAGES);
        for i in 0..INDIRECT_PAGES {
            indirect_refs.push(
                gnttab::grant(be_id, indirect.pfn(i), false)
                    .map_err(|e| SetupError(format!("grant indirect: {e:?}")))?,
            );
        }
        let flush_op = if info.flush_cache {
            Some(false)
        } else if info.barrier {
            Some(true)
        } else {
            None
        };
        let max_segs = if info.max_indirect_segments > blkif::MAX_SEGMENTS as u32 {
            info.max_indirect_segments.min(MAX_INDIRECT_SEGS)
        } else {
            blkif::MAX_SEGMENTS as u32
        };
        let nr = ring.geometry().nr_ents() as usize;
        log::info!(
            "blkfront: vbd {devid} connected: {} MiB, {}-byte sectors{}, ring {npages} page(s)/{nr} slots, {max_segs} segments/request{}, persistent grants: {}, flush: {flush_op:?}",
            (info.sectors * 512) >> 20,
            info.sector_size,
            if info.read_only() { ", read-only" } else { "" },
            if info.max_indirect_segments > 0 { " (indirect)" } else { "" },
            info.persistent,
        );
        if info.sector_size > 4096 {
            return Err(SetupError(format!(
                "unsupported sector-size {}",
                info.sector_size
            )));
        }
        Ok(Self {
            devid,
            machine,
            fe,
            be_id,
            ring_pages,
            ring_refs,
            mem,
            ring,
            port,
            // `sectors` is in 512-byte units (blkif).
            sectors: info.sectors,
            sector_size: info.sector_size,
            readonly: info.read_only(),
            flush_op,
            max_segs,
            pool,
            pool_refs,
            free_pages: (0..POOL_PAGES as u16).rev().collect(),
            indirect,
            indirect_refs,
            free_indirect: (0..INDIRECT_PAGES as u16).rev().collect(),
            slots: (0..nr).map(|_| None).collect(),
            posted_err: None,
            ready: Vec::new(),
            ready_buf: Vec::new(),
            broken: false,
            closed: false,
            completed: 0,
        })
    }

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

    /// Queues one ring request for `len` bytes at byte offset `pos` of the disk; returns its
    /// slot.
    fn queue(
        &mut self,
        req: usize,
        off: usize,
        pos: u64,
        len: usize,
        write: bool,
        data: Option<&[u8]>,
    ) -> Result<usize, DevError> {
        let npages = len.div_ceil(4096);
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(DevError::Io {
                lba: pos / 512,
                code: -16,
            })?;
        let mut pages = Vec::with_capacity(npages);
        for _ in 0..npages {
            pages.push(self.free_pages.pop().ok_or(DevError::Io {
                lba: pos / 512,
                code: -16,
            })?);
        }
        let mut segs: Vec<Segment> = Vec::with_capacity(npages);
        for (i, &p) in pages.iter().enumerate() {
            let chunk = (len - i * 4096).min(4096);
            if let Some(d) = data {
                let src = d.get(i * 4096..i * 4096 + chunk).unwrap_or(&[]);
                let dst = self
                    .pool
                    .bytes_mut()
                    .get_mut(p as usize * 4096..p as usize * 4096 + chunk)
                    .unwrap_or(&mut []);
                dst.copy_from_slice(src);
            }
            segs.push(Segment {
                gref: self.pool_refs[p as usize],
                first_sect: 0,
                last_sect: ((chunk / 512) - 1) as u8,
            });
        }
        let sector = pos / 512;
        let mut indirect = None;
        let wire = if segs.len() <= blkif::MAX_SEGMENTS {
            blkif::Request::ReadWrite {
                write,
                handle: self.devid as u16,
                id: slot as u64,
                sector,
                segs,
            }
        } else {
            let Some(ip) = self.free_indirect.pop() else {
                self.free_pages.extend(pages);
                return Err(DevError::Io {
                    lba: sector,
                    code: -16,
                });
            };
            indirect = Some(ip);
            let page = self
                .indirect
                .bytes_mut()
                .get_mut(ip as usize * 4096..ip as usize * 4096 + 4096)
                .unwrap_or(&mut []);
            if blkif::emit_indirect_page(&segs, page).is_err() {
                self.free_indirect.push(ip);
                self.free_pages.extend(pages);
                return Err(DevError::Io {
                    lba: sector,
                    code: -22,
                });
            }
            blkif::Request::Indirect {
                write,
                handle: self.devid as u16,
                id: slot as u64,
                sector,
                nr_segments: segs.len() as u16,
                indirect_grefs: alloc::vec![self.indirect_refs[ip as usize]],
            }
        };
        let entry = match wire.emit() {
            Ok(e) => e,
            Err(_) => {
                if let Some(ip) = indirect {
                    self.free_indirect.push(ip);
                }
                self.free_pages.extend(pages);
                return Err(DevError::Io {
                    lba: sector,
                    code: -22,
                });
            }
        };
        self.ring
            .queue_request(&self.mem, &entry)
            .map_err(|_| DevError::Io {
                lba: sector,
                code: -16,
            })?;
        self.slots[slot] = Some(Slot {
            req,
            off,
            pos,
            len,
            posted: false,
            pages,
            indirect,
            write,
        });
        Ok(slot)
    }

    fn queue_flush(&mut self, barrier: bool) -> Result<(), DevError> {
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(DevError::Io { lba: 0, code: -16 })?;
        let entry = blkif::Request::Flush {
            barrier,
            handle: self.devid as u16,
            id: slot as u64,
        }
        .emit()
        .map_err(|_| DevError::Io { lba: 0, code: -22 })?;
        self.ring
            .queue_request(&self.mem, &entry)
            .map_err(|_| DevError::Io { lba: 0, code: -16 })?;
        self.slots[slot] = Some(Slot {
            req: usize::MAX,
            off: 0,
            pos: 0,
            len: 0,
            posted: false,
            pages: Vec::new(),
            indirect: None,
            write: true,
        });
        Ok(())
    }

    fn kick(&mut self) -> Result<(), DevError> {
        match self.ring.push_requests(&self.mem) {
            Ok(true) => {
                let _ = events::notify(self.port);
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(_) => Err(self.fail("ring index corrupt on push")),
        }
    }

    /// Handles one response: frees its slot and bounce pages, copies read data into `reqs`.
    /// Returns the request's error, if any (a posted write's error is kept for the next
    /// flush instead, a failed read-ahead is dropped); `Err` only for a response that breaks
    /// the protocol. A completed read-ahead keeps its pages in `ready`.
    fn finish(
        &mut self,
        rsp: &[u8; blkif::RESPONSE_SIZE],
        reqs: &mut [Request<'_>],
    ) -> Result<Option<DevError>, DevError> {
        let r = blkif::Response::parse(rsp);
        let Some(slot) = r
            .as_ref()
            .ok()
            .and_then(|r| self.slots.get_mut(r.id as usize))
            .and_then(Option::take)
        else {
            return Err(self.fail("response with an unknown id"));
        };
        let status = r.map(|r| r.status).unwrap_or(blkif::RSP_ERROR);
        self.completed += 1;
        let mut err = None;
        if status != 0 {
            let e = DevError::Io {
                lba: slot.pos / 512,
                code: i32::from(status),
            };
            if slot.posted && slot.write {
                log::error!("blkfront: vbd {}: write-back failed: {e}", self.devid);
                self.posted_err.get_or_insert(e);
            } else if slot.posted {
                // Read-ahead: dropped; the read that needs the data reports the error.
                log::warn!("blkfront: vbd {}: read-ahead failed: {e}", self.devid);
            } else {
                err = Some(e);
            }
        }
        if status == 0 && !slot.write && !slot.posted {
            if let Some(Request::Read { buf, .. }) = reqs.get_mut(slot.req) {
                for (i, &p) in slot.pages.iter().enumerate() {
                    let chunk = (slot.len - i * 4096).min(4096);
                    let src = self
                        .pool
                        .bytes()
                        .get(p as usize * 4096..p as usize * 4096 + chunk)
                        .unwrap_or(&[]);
                    if let Some(dst) = buf.get_mut(slot.off + i * 4096..slot.off + i * 4096 + chunk)
                    {
                        dst.copy_from_slice(src);
                    }
                }
            }
        }
        if let Some(ip) = slot.indirect {
            self.free_indirect.push(ip);
        }
        if status == 0 && slot.posted && !slot.write {
            self.ready.push((slot.pos, slot.len, slot.pages));
        } else {
            self.free_pages.extend(slot.pages);
        }
        Ok(err)
    }

    /// Drops completed reads not taken yet (their pages go back to the pool); with `range`,
    /// only those overlapping it.
    fn drop_ready(&mut self, range: Option<(u64, u64)>) {
        let mut i = 0;
        while i < self.ready.len() {
            let (pos, len, _) = &self.ready[i];
            let hit =
                range.is_none_or(|(p, n)| *pos < p.saturating_add(n) && p < pos + *len as u64);
            if hit {
                let (_, _, pages) = self.ready.swap_remove(i);
                self.free_pages.extend(pages);
            } else {
                i += 1;
            }
        }
    }

    /// Collects completions until fewer than `until` requests are in flight; copies read data
    /// to `reqs`. Returns the first I/O error seen (after draining).
    fn complete(&mut self, reqs: &mut [Request<'_>], until: usize) -> Result<(), DevError> {
        let mut first_err = None;
        let mut spins = 0u32;
        while self.in_flight() >= until.max(1) && self.in_flight() > 0 {
            let mut rsp = [0u8; blkif::RESPONSE_SIZE];
            match self.ring.take_response(&self.mem, &mut rsp) {
                Ok(true) => {
                    if let Some(e) = self.finish(&rsp, reqs)? {
                        first_err.get_or_insert(e);
                    }
                }
                Ok(false) => match self.ring.final_check_for_responses(&self.mem) {
                    Ok(true) => {}
                    Ok(false) => {
                        spins += 1;
                        if spins > 200_000 {
                            return Err(self.fail("backend stopped answering"));
                        }
                        events::wait(Some(self.port));
                    }
                    Err(_) => return Err(self.fail("ring index corrupt")),
                },
                Err(_) => return Err(self.fail("ring index corrupt")),
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn check_range(&self, lba: u64, len: usize) -> Result<u64, DevError> {
        let ss = u64::from(self.sector_size);
        if !(len as u64).is_multiple_of(ss) {
            return Err(DevError::Misaligned {
                len,
                sector_size: self.sector_size,
            });
        }
        let pos = lba.checked_mul(ss).ok_or(DevError::OutOfRange {
            lba,
            sectors: len as u64 / ss,
            capacity: self.sector_count(),
        })?;
        let end = pos.checked_add(len as u64).ok_or(DevError::OutOfRange {
            lba,
            sectors: len as u64 / ss,
            capacity: self.sector_count(),
        })?;
        if end > self.sectors * 512 {
            return Err(DevError::OutOfRange {
                lba,
                sectors: len as u64 / ss,
                capacity: self.sector_count(),
            });
        }
        Ok(pos)
    }

    /// Completes everything in flight, then flushes the backend's write cache (when it has
    /// one): nothing issued before returns unflushed, nothing after starts earlier.
    fn drain_and_flush(&mut self, reqs: &mut [Request<'_>]) -> Result<(), DevError> {
        self.kick()?;
        self.complete(reqs, 1)?;
        if let Some(e) = self.posted_err.take() {
            return Err(e);
        }
        if let Some(op) = self.flush_op {
            self.queue_flush(op)?;
            self.kick()?;
            self.complete(reqs, 1)?;
        }
        Ok(())
    }

    fn run_batch(&mut self, reqs: &mut [Request<'_>]) -> Result<(), DevError> {
        if self.broken {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
        // Posted requests come first: nothing submitted later may pass them.
        if self.in_flight() > 0 {
            self.kick()?;
            self.complete(reqs, 1)?;
        }
        // Read-ahead data a write of this batch changes must not be handed out later; and
        // the pool's pages go to this batch first.
        if self.free_pages.len() < POOL_PAGES / 2 {
            self.drop_ready(None);
        } else if !self.ready.is_empty() {
            let ss = u64::from(self.sector_size.max(1));
            for r in reqs.iter() {
                if let Request::Write { lba, buf, .. } = r {
                    let pos = lba.saturating_mul(ss);
                    self.drop_ready(Some((pos, buf.len() as u64)));
                }
            }
        }
        let max_bytes = self.max_segs as usize * 4096;
        let ss = u64::from(self.sector_size.max(1));
        let mut result = Ok(());
        let mut i = 0;
        while i < reqs.len() {
            let (write, lba, len, fua, flush) = match &reqs[i] {
                Request::Read { lba, buf } => (false, *lba, buf.len(), false, false),
                Request::Write { lba, buf, fua } => (true, *lba, buf.len(), *fua, false),
                Request::Flush => (true, 0, 0, false, true),
            };
            if flush {
                self.drain_and_flush(reqs)?;
                i += 1;
                continue;
            }
            if write && self.readonly {
                return Err(DevError::ReadOnly);
            }
            let pos = self.check_range(lba, len)?;
            // Plain writes that continue this one on the disk join its blkif request (up to
            // the segment limit): a write-back of many blocks becomes a few large requests
            // instead of one per block.
            let mut end = i + 1;
            let mut total = len;
            if write && !fua {
                while let Some(Request::Write {
                    lba: next,
                    buf,
                    fua: false,
                }) = reqs.get(end)
                {
                    let at = lba.checked_add(total as u64 / ss);
                    if at != Some(*next)
                        || !(buf.len() as u64).is_multiple_of(ss)
                        || total.saturating_add(buf.len()) > max_bytes
                    {
                        break;
                    }
                    total += buf.len();
                    end += 1;
                }
            }
            if end > i + 1 {
                self.check_range(lba, total)?;
            }
            let mut off = 0;
            while off < total {
                let n = (total - off).min(max_bytes);
                // Make room: a free slot and enough bounce pages.
                while self.slots.iter().all(Option::is_some)
                    || self.free_pages.len() < n.div_ceil(4096)
                    || self.free_indirect.is_empty()
                {
                    if self.in_flight() == 0 {
                        // Nothing to wait for: what is missing is held by unread read-ahead.
                        self.drop_ready(None);
                        if self.free_pages.len() < n.div_ceil(4096) || self.free_indirect.is_empty()
                        {
                            return Err(self.fail("bounce pool exhausted"));
                        }
                        continue;
                    }
                    self.kick()?;
                    let inflight = self.in_flight();
                    if let Err(e) = self.complete(reqs, inflight) {
                        result = result.and(Err(e));
                        if self.broken {
                            return result;
                        }
                    }
                }
                // Copy the data out so `reqs` is not borrowed across `queue`.
                let owned: Option<Vec<u8>> = if !write {
                    None
                } else if end == i + 1 {
                    match &reqs[i] {
                        Request::Write { buf, .. } => buf.get(off..off + n).map(<[u8]>::to_vec),
                        _ => None,
                    }
                } else {
                    // A merged run: n == total (at most max_bytes).
                    let mut v = Vec::with_capacity(n);
                    for r in reqs.get(i..end).unwrap_or(&[]) {
                        if let Request::Write { buf, .. } = r {
                            v.extend_from_slice(buf);
                        }
                    }
                    Some(v)
                };
                self.queue(i, off, pos + off as u64, n, write, owned.as_deref())?;
                off += n;
            }
            if fua {
                // blkif has no FUA: complete the write, then flush the backend's cache.
                self.drain_and_flush(reqs)?;
            }
            i = end;
        }
        self.kick()?;
        let r = self.complete(reqs, 1);
        result.and(r)
    }

    /// Starts plain writes without waiting (see `BlockDevice::post_writes`): contiguous ones
    /// are merged into one blkif request as in a batch; stops at the first that finds no free
    /// slot, bounce pages or indirect page, or that overlaps a posted request still in flight.
    fn post(&mut self, writes: &[(u64, &[u8])]) -> Result<usize, DevError> {
        if self.broken || self.closed {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
        if self.readonly {
            return Err(DevError::ReadOnly);
        }
        let max_bytes = self.max_segs as usize * 4096;
        let ss = u64::from(self.sector_size.max(1));
        let mut i = 0;
        let mut started = false;
        while let Some(&(lba, first)) = writes.get(i) {
            let mut end = i + 1;
            let mut total = first.len();
            while let Some(&(next, buf)) = writes.get(end) {
                let at = lba.checked_add(total as u64 / ss);
                if at != Some(next)
                    || !(buf.len() as u64).is_multiple_of(ss)
                    || total.saturating_add(buf.len()) > max_bytes
                {
                    break;
                }
                total += buf.len();
                end += 1;
            }
            let pos = self.check_range(lba, total)?;
            let npages = total.div_ceil(4096);
            let overlaps = self.slots.iter().flatten().any(|s| {
                s.posted && s.pos < pos.saturating_add(total as u64) && pos < s.pos + s.len as u64
            });
            if total == 0
                || total > max_bytes
                || overlaps
                || self.slots.iter().all(Option::is_some)
                || self.free_pages.len() < npages
                || (npages > blkif::MAX_SEGMENTS && self.free_indirect.is_empty())
            {
                break;
            }
            // Completed read-ahead of these sectors is older than this write.
            self.drop_ready(Some((pos, total as u64)));
            let mut data = Vec::with_capacity(total);
            for &(_, buf) in writes.get(i..end).unwrap_or(&[]) {
                data.extend_from_slice(buf);
            }
            let slot = self.queue(usize::MAX, 0, pos, total, true, Some(&data))?;
            if let Some(s) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                s.posted = true;
            }
            started = true;
            i = end;
        }
        if started {
            self.kick()?;
        }
        Ok(i)
    }

    /// Starts posted reads (see `BlockDevice::post_reads`); a range already in flight or
    /// completed counts as taken.
    fn post_read_ahead(&mut self, reads: &[(u64, usize)]) -> Result<usize, DevError> {
        if self.broken || self.closed {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
        let max_bytes = self.max_segs as usize * 4096;
        let mut taken = 0;
        let mut started = false;
        for &(lba, len) in reads {
            let pos = self.check_range(lba, len)?;
            let end = pos.saturating_add(len as u64);
            let coming = self
                .slots
                .iter()
                .flatten()
                .filter(|s| s.posted)
                .map(|s| (s.pos, s.len))
                .chain(self.ready.iter().map(|r| (r.0, r.1)))
                .any(|(p, n)| p < end && pos < p + n as u64);
            if !coming {
                let npages = len.div_ceil(4096);
                // Keep half of the pool for requests someone waits for.
                if len == 0
                    || len > max_bytes
                    || self.slots.iter().all(Option::is_some)
                    || self.free_pages.len() < npages + POOL_PAGES / 2
                    || (npages > blkif::MAX_SEGMENTS && self.free_indirect.is_empty())
                {
                    break;
                }
                let slot = self.queue(usize::MAX, 0, pos, len, false, None)?;
                if let Some(s) = self.slots.get_mut(slot).and_then(Option::as_mut) {
                    s.posted = true;
                }
                started = true;
            }
            taken += 1;
        }
        if started {
            self.kick()?;
        }
        Ok(taken)
    }

    /// Hands completed posted reads to `f` (see `BlockDevice::take_reads`).
    fn take_ready(&mut self, f: &mut dyn FnMut(u64, &[u8])) -> bool {
        self.reap_responses();
        let ready = core::mem::take(&mut self.ready);
        let any = !ready.is_empty();
        let ss = u64::from(self.sector_size.max(1));
        let mut buf = core::mem::take(&mut self.ready_buf);
        for (pos, len, pages) in ready {
            buf.clear();
            for (i, &p) in pages.iter().enumerate() {
                let chunk = (len - i * 4096).min(4096);
                let at = p as usize * 4096;
                buf.extend_from_slice(self.pool.bytes().get(at..at + chunk).unwrap_or(&[]));
            }
            if buf.len() == len {
                f(pos / ss, &buf);
            }
            self.free_pages.extend(pages);
        }
        self.ready_buf = buf;
        any
    }

    /// Collects the responses that have arrived, without waiting.
    fn reap_responses(&mut self) -> bool {
        if self.broken || self.closed {
            return false;
        }
        let mut any = false;
        loop {
            let mut rsp = [0u8; blkif::RESPONSE_SIZE];
            match self.ring.take_response(&self.mem, &mut rsp) {
                Ok(true) => {
                    // Only posted requests are in flight between batches; a protocol
                    // violation has already disconnected the device.
                    if self.finish(&rsp, &mut []).is_err() {
                        return any;
                    }
                    any = true;
                }
                Ok(false) => match self.ring.final_check_for_responses(&self.mem) {
                    Ok(true) => {}
                    Ok(false) => return any,
                    Err(_) => {
                        self.fail("ring index corrupt");
                        return any;
                    }
                },
                Err(_) => {
                    self.fail("ring index corrupt");
                    return any;
                }
            }
        }
    }

    /// The xenstore watch token of this device's backend-state watch.
    pub fn watch_token(&self) -> &str {
        &self.fe
    }

    /// Handles a change of the backend's state. When the backend (or the toolstack, e.g.
    /// `xl block-detach`) starts closing, every request in flight completes first, then the
    /// device goes Closed and releases its ring, grants and event channel; later requests fail
    /// with an I/O error instead of hanging. Returns true once the device is closed.
    pub fn on_backend_event(&mut self) -> bool {
        if self.closed {
            return true;
        }
        match self.machine.step(&mut XsStore) {
            Ok(VbdAction::Drain) | Ok(VbdAction::Closed) => {
                log::warn!(
                    "blkfront: vbd {}: backend is closing; draining and disconnecting",
                    self.devid
                );
                let _ = self.kick();
                let _ = self.complete(&mut [], 1);
                let _ = self.machine.drained(&mut XsStore);
                self.release();
                true
            }
            Ok(_) => false,
            Err(e) => {
                log::warn!("blkfront: vbd {}: {e:?}", self.devid);
                false
            }
        }
    }

    /// Releases the event channel and the grants. Pages the backend still has mapped are
    /// never reused: they are leaked rather than returned to the heap.
    fn release(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.broken = true;
        let _ = events::close(self.port);
        let mut busy = false;
        for r in self
            .ring_refs
            .drain(..)
            .chain(self.pool_refs.drain(..))
            .chain(self.indirect_refs.drain(..))
        {
            busy |= gnttab::end_access(r).is_err();
        }
        if busy {
            log::warn!(
                "blkfront: vbd {}: backend still maps some pages; leaking them",
                self.devid
            );
            let pages = [
                core::mem::replace(&mut self.ring_pages, Pages::empty()),
                core::mem::replace(&mut self.pool, Pages::empty()),
                core::mem::replace(&mut self.indirect, Pages::empty()),
            ];
            alloc::boxed::Box::leak(alloc::boxed::Box::new(pages));
        }
        log::info!(
            "blkfront: vbd {} (backend domain {}) closed",
            self.devid,
            self.be_id
        );
    }

    /// Closes the device from our side (clean shutdown): completes in-flight requests, goes
    /// Closing, then Closed, each time waiting until `deadline_ns` (Xen system time; the caller
    /// arms a timer for it) for the backend to follow — blkback unmaps its persistent grants
    /// when the frontend is Closed, so ours can be ended after that — and releases everything.
    /// With `None` it does not wait (what the backend still maps is then leaked).
    pub fn close(mut self, deadline_ns: Option<u64>) {
        let _ = self.kick();
        let _ = self.complete(&mut [], 1);
        let be_state = self.machine.backend().map(|b| format!("{b}/state"));
        let fe_state = format!("{}/state", self.fe);
        for (ours, theirs) in [("5", ["5", "6"]), ("6", ["6", "6"])] {
            if store::write(&fe_state, ours).is_err() {
                break;
            }
            let (Some(deadline), Some(be_state)) = (deadline_ns, be_state.as_deref()) else {
                continue;
            };
            loop {
                match store::read(be_state) {
                    Ok(v) if theirs.contains(&v.as_str()) => break,
                    Ok(_) => {}
                    // The backend directory is gone: nothing left to wait for.
                    Err(_) => break,
                }
                if crate::xen::time::now_ns() >= deadline {
                    log::warn!(
                        "blkfront: vbd {}: the backend did not follow state {ours} in time",
                        self.devid
                    );
                    break;
                }
                // Wakes on the backend state watch or on the caller's timer. Pending watch
                // events are dropped: the domain is shutting down.
                while let Ok(Some(_)) = store::next_watch_event() {}
                events::wait(None);
            }
        }
        self.release();
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
