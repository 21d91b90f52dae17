//! Batches: queueing ring requests into bounce pages, kicking the backend and completing
//! responses, for the synchronous `BlockDevice` calls.

use super::{Blkfront, Slot, POOL_PAGES};
use crate::xen::events;
use alloc::vec::Vec;
use pvfs_fs::block::{BlockDevice, DevError, Request};
use pvfs_ring::blkif::{self, Segment};

impl Blkfront {
    /// Queues one ring request for `len` bytes at byte offset `pos` of the disk; returns its
    /// slot.
    pub(super) fn queue(
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

    pub(super) fn kick(&mut self) -> Result<(), DevError> {
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
    pub(super) fn finish(
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
    pub(super) fn drop_ready(&mut self, range: Option<(u64, u64)>) {
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
    pub(super) fn complete(
        &mut self,
        reqs: &mut [Request<'_>],
        until: usize,
    ) -> Result<(), DevError> {
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

    pub(super) fn check_range(&self, lba: u64, len: usize) -> Result<u64, DevError> {
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
}
