//! Batches: queueing ring requests into bounce pages, kicking the backend and completing
//! responses, for the synchronous `BlockDevice` calls.

use super::{Doorbell, Engine, FlushOp, Granted, Slot, MAX_EMPTY_WAITS, PAGE};
use crate::blkif::{self, Segment};
use alloc::vec::Vec;
use pvfs_fs::block::{DevError, Request};

/// "Busy": no free slot, bounce page or indirect page.
fn busy(lba: u64) -> DevError {
    DevError::Io { lba, code: -16 }
}

/// "Invalid": a request the wire format cannot carry.
fn invalid(lba: u64) -> DevError {
    DevError::Io { lba, code: -22 }
}

impl<M: Granted, D: Doorbell> Engine<M, D> {
    /// Queues one ring request for `len` bytes at byte offset `pos` of the disk (`len` a
    /// multiple of 512, at most `max_segments` pages); returns its slot. On error nothing is
    /// taken.
    pub(super) fn queue(
        &mut self,
        req: usize,
        off: usize,
        pos: u64,
        len: usize,
        write: bool,
        data: Option<&[u8]>,
    ) -> Result<usize, DevError> {
        let sector = pos / 512;
        let npages = len.div_ceil(PAGE);
        if len == 0 || !len.is_multiple_of(512) || npages > self.cfg.max_segments as usize {
            return Err(invalid(sector));
        }
        let slot = self
            .slots
            .iter()
            .position(Option::is_none)
            .ok_or(busy(sector))?;
        let indirect = npages > blkif::MAX_SEGMENTS;
        if self.free_pages.len() < npages || (indirect && self.free_indirect.is_empty()) {
            return Err(busy(sector));
        }
        let at = self.free_pages.len() - npages;
        let pages = self.free_pages.split_off(at);
        match self.emit(slot, sector, len, write, data, &pages, indirect) {
            Ok((entry, ip)) => {
                if self.ring.queue_request(&self.ring_mem, &entry).is_err() {
                    self.release(pages, ip);
                    return Err(busy(sector));
                }
                let op = if write {
                    blkif::OP_WRITE
                } else {
                    blkif::OP_READ
                };
                self.slots[slot] = Some(Slot {
                    req,
                    off,
                    pos,
                    len,
                    posted: false,
                    pages,
                    indirect: ip,
                    write,
                    op,
                });
                Ok(slot)
            }
            Err(e) => {
                self.free_pages.extend(pages);
                Err(e)
            }
        }
    }

    /// Returns a failed request's pages to the free lists (it never reached the ring).
    fn release(&mut self, pages: Vec<u16>, indirect: Option<u16>) {
        self.free_pages.extend(pages);
        if let Some(ip) = indirect {
            self.free_indirect.push(ip);
        }
    }

    /// Fills the bounce pages (for a write) and builds the ring entry; takes an indirect
    /// page when `indirect`.
    #[allow(clippy::too_many_arguments)]
    fn emit(
        &mut self,
        slot: usize,
        sector: u64,
        len: usize,
        write: bool,
        data: Option<&[u8]>,
        pages: &[u16],
        indirect: bool,
    ) -> Result<([u8; blkif::REQUEST_SIZE], Option<u16>), DevError> {
        let mut segs: Vec<Segment> = Vec::with_capacity(pages.len());
        for (i, &p) in pages.iter().enumerate() {
            let chunk = (len - i * PAGE).min(PAGE);
            let at = usize::from(p) * PAGE;
            if let Some(d) = data {
                let src = d.get(i * PAGE..i * PAGE + chunk).ok_or(invalid(sector))?;
                self.pool
                    .write_bytes(at, src)
                    .map_err(|_| invalid(sector))?;
            }
            segs.push(Segment {
                gref: self.pool.gref(usize::from(p)).ok_or(invalid(sector))?,
                first_sect: 0,
                last_sect: ((chunk / 512) - 1) as u8,
            });
        }
        let handle = self.cfg.handle;
        let id = slot as u64;
        if !indirect {
            let wire = blkif::Request::ReadWrite {
                write,
                handle,
                id,
                sector,
                segs,
            };
            return Ok((wire.emit().map_err(|_| invalid(sector))?, None));
        }
        let ip = self.free_indirect.pop().ok_or(busy(sector))?;
        let built = (|| {
            let mut page = [0u8; PAGE];
            blkif::emit_indirect_page(&segs, &mut page).ok()?;
            self.indirect
                .write_bytes(usize::from(ip) * PAGE, &page)
                .ok()?;
            let wire = blkif::Request::Indirect {
                write,
                handle,
                id,
                sector,
                nr_segments: u16::try_from(segs.len()).ok()?,
                indirect_grefs: alloc::vec![self.indirect.gref(usize::from(ip))?],
            };
            wire.emit().ok()
        })();
        match built {
            Some(entry) => Ok((entry, Some(ip))),
            None => {
                self.free_indirect.push(ip);
                Err(invalid(sector))
            }
        }
    }

    fn queue_flush(&mut self, flush: FlushOp) -> Result<(), DevError> {
        let slot = self.slots.iter().position(Option::is_none).ok_or(busy(0))?;
        let barrier = flush == FlushOp::Barrier;
        let entry = blkif::Request::Flush {
            barrier,
            handle: self.cfg.handle,
            id: slot as u64,
        }
        .emit()
        .map_err(|_| invalid(0))?;
        self.ring
            .queue_request(&self.ring_mem, &entry)
            .map_err(|_| busy(0))?;
        self.slots[slot] = Some(Slot {
            req: usize::MAX,
            off: 0,
            pos: 0,
            len: 0,
            posted: false,
            pages: Vec::new(),
            indirect: None,
            write: true,
            op: if barrier {
                blkif::OP_WRITE_BARRIER
            } else {
                blkif::OP_FLUSH_DISKCACHE
            },
        });
        Ok(())
    }

    pub(super) fn kick(&mut self) -> Result<(), DevError> {
        match self.ring.push_requests(&self.ring_mem) {
            Ok(true) => {
                self.door.notify();
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(_) => Err(self.fail("ring index corrupt on push")),
        }
    }

    /// Handles one response: frees its slot and bounce pages, copies read data into `reqs`.
    /// Returns the request's error, if any (a posted write's error is kept for the next
    /// flush instead, a failed read-ahead is dropped); `Err` only for a response that breaks
    /// the protocol (an id not in flight, or another operation than the request's), which
    /// stops the engine and frees nothing. A completed read-ahead keeps its pages in `ready`.
    pub(super) fn finish(
        &mut self,
        rsp: &[u8; blkif::RESPONSE_SIZE],
        reqs: &mut [Request<'_>],
    ) -> Result<Option<DevError>, DevError> {
        let Ok(r) = blkif::Response::parse(rsp) else {
            return Err(self.fail("short response"));
        };
        let found = usize::try_from(r.id)
            .ok()
            .and_then(|i| self.slots.get(i))
            .and_then(Option::as_ref)
            .map(|s| {
                s.op == r.operation || (s.indirect.is_some() && r.operation == blkif::OP_INDIRECT)
            });
        match found {
            None => return Err(self.fail("response with an id not in flight")),
            Some(false) => {
                return Err(self.fail("response with another operation than its request's"))
            }
            Some(true) => {}
        }
        let Some(slot) = usize::try_from(r.id)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .and_then(Option::take)
        else {
            return Err(self.fail("response with an id not in flight"));
        };
        self.completed += 1;
        let mut err = None;
        if r.status != blkif::RSP_OKAY {
            let e = DevError::Io {
                lba: slot.pos / 512,
                code: if r.status < 0 {
                    i32::from(r.status)
                } else {
                    -5
                },
            };
            if slot.posted && slot.write {
                log::error!("blkfront: vbd {}: write-back failed: {e}", self.cfg.handle);
                self.posted_err.get_or_insert(e);
            } else if slot.posted {
                // Read-ahead: dropped; the read that needs the data reports the error.
                log::warn!("blkfront: vbd {}: read-ahead failed: {e}", self.cfg.handle);
            } else {
                err = Some(e);
            }
        } else if !slot.write && !slot.posted {
            if let Some(Request::Read { buf, .. }) = reqs.get_mut(slot.req) {
                for (i, &p) in slot.pages.iter().enumerate() {
                    let chunk = (slot.len - i * PAGE).min(PAGE);
                    let at = slot.off + i * PAGE;
                    if let Some(dst) = buf.get_mut(at..at + chunk) {
                        if self.pool.read_bytes(usize::from(p) * PAGE, dst).is_err() {
                            err = Some(invalid(slot.pos / 512));
                        }
                    }
                }
            }
        }
        if let Some(ip) = slot.indirect {
            self.free_indirect.push(ip);
        }
        if r.status == blkif::RSP_OKAY && slot.posted && !slot.write {
            self.ready.push((slot.pos, slot.len, slot.pages));
        } else {
            self.free_pages.extend(slot.pages);
        }
        Ok(err)
    }

    /// Drops completed reads not taken yet (their pages go back to the pool); with `range`,
    /// only those overlapping it.
    pub(super) fn drop_ready(&mut self, range: Option<(u64, u64)>) {
        let mut i = 0;
        while let Some(&(pos, len, _)) = self.ready.get(i) {
            let hit = range.is_none_or(|(p, n)| {
                pos < p.saturating_add(n) && p < pos.saturating_add(len as u64)
            });
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
    pub(super) fn complete(
        &mut self,
        reqs: &mut [Request<'_>],
        until: usize,
    ) -> Result<(), DevError> {
        if self.broken {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
        let mut first_err = None;
        let mut empty = 0u32;
        while self.in_flight() >= until.max(1) && self.in_flight() > 0 {
            let mut rsp = [0u8; blkif::RESPONSE_SIZE];
            match self.ring.take_response(&self.ring_mem, &mut rsp) {
                Ok(true) => {
                    if let Some(e) = self.finish(&rsp, reqs)? {
                        first_err.get_or_insert(e);
                    }
                }
                Ok(false) => match self.ring.final_check_for_responses(&self.ring_mem) {
                    Ok(true) => {}
                    Ok(false) => {
                        empty += 1;
                        if empty > MAX_EMPTY_WAITS {
                            return Err(self.fail("backend stopped answering"));
                        }
                        if !self.door.wait() {
                            return Err(self.fail("backend went away with requests in flight"));
                        }
                    }
                    Err(_) => return Err(self.fail("ring index corrupt")),
                },
                Err(_) => return Err(self.fail("ring index corrupt")),
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    pub(super) fn check_range(&self, lba: u64, len: usize) -> Result<u64, DevError> {
        let ss = u64::from(self.cfg.sector_size);
        let out = || DevError::OutOfRange {
            lba,
            sectors: len as u64 / ss,
            capacity: self.size_bytes() / ss,
        };
        if !(len as u64).is_multiple_of(ss) {
            return Err(DevError::Misaligned {
                len,
                sector_size: self.cfg.sector_size,
            });
        }
        let pos = lba.checked_mul(ss).ok_or_else(out)?;
        let end = pos.checked_add(len as u64).ok_or_else(out)?;
        if end > self.size_bytes() {
            return Err(out());
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
        if let Some(op) = self.cfg.flush {
            self.queue_flush(op)?;
            self.kick()?;
            self.complete(reqs, 1)?;
        }
        Ok(())
    }

    /// Makes room for a request of `n` bytes: a free slot, enough bounce pages and an
    /// indirect page, completing requests in flight (errors go to `result`).
    fn make_room(
        &mut self,
        n: usize,
        reqs: &mut [Request<'_>],
        result: &mut Result<(), DevError>,
    ) -> Result<(), DevError> {
        let npages = n.div_ceil(PAGE);
        let need_indirect = npages > blkif::MAX_SEGMENTS;
        while self.slots.iter().all(Option::is_some)
            || self.free_pages.len() < npages
            || (need_indirect && self.free_indirect.is_empty())
        {
            if self.in_flight() == 0 {
                // Nothing to wait for: what is missing is held by unread read-ahead.
                self.drop_ready(None);
                if self.free_pages.len() < npages
                    || (need_indirect && self.free_indirect.is_empty())
                {
                    return Err(self.fail("bounce pool exhausted"));
                }
                continue;
            }
            self.kick()?;
            let inflight = self.in_flight();
            if let Err(e) = self.complete(reqs, inflight) {
                if self.broken {
                    return Err(e);
                }
                if result.is_ok() {
                    *result = Err(e);
                }
            }
        }
        Ok(())
    }

    pub(super) fn run_batch(&mut self, reqs: &mut [Request<'_>]) -> Result<(), DevError> {
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
        if self.free_pages.len() < self.pool_pages / 2 {
            self.drop_ready(None);
        } else if !self.ready.is_empty() {
            let ss = u64::from(self.cfg.sector_size);
            for r in reqs.iter() {
                if let Request::Write { lba, buf, .. } = r {
                    let pos = lba.saturating_mul(ss);
                    self.drop_ready(Some((pos, buf.len() as u64)));
                }
            }
        }
        let max_bytes = self.cfg.max_segments as usize * PAGE;
        let ss = u64::from(self.cfg.sector_size);
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
            if write && self.cfg.read_only {
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
                self.make_room(n, reqs, &mut result)?;
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
}
