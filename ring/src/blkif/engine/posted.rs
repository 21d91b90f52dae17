//! Posted I/O: write-behind and read-ahead requests that complete while the caller works,
//! and reaping their responses.

use super::{Doorbell, Engine, Granted, PAGE};
use crate::blkif;
use alloc::vec::Vec;
use pvfs_fs::block::DevError;

impl<M: Granted, D: Doorbell> Engine<M, D> {
    /// Starts plain writes without waiting (see `BlockDevice::post_writes`): contiguous ones
    /// are merged into one blkif request as in a batch; stops at the first that finds no free
    /// slot, bounce pages or indirect page, or that overlaps a posted request still in flight.
    pub(super) fn post(&mut self, writes: &[(u64, &[u8])]) -> Result<usize, DevError> {
        if self.broken {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
        if self.cfg.read_only {
            return Err(DevError::ReadOnly);
        }
        let max_bytes = self.cfg.max_segments as usize * PAGE;
        let ss = u64::from(self.cfg.sector_size);
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
            let npages = total.div_ceil(PAGE);
            let overlaps = self.slots.iter().flatten().any(|s| {
                s.posted
                    && s.pos < pos.saturating_add(total as u64)
                    && pos < s.pos.saturating_add(s.len as u64)
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
    pub(super) fn post_read_ahead(&mut self, reads: &[(u64, usize)]) -> Result<usize, DevError> {
        if self.broken {
            return Err(DevError::Io { lba: 0, code: -5 });
        }
        let max_bytes = self.cfg.max_segments as usize * PAGE;
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
                .any(|(p, n)| p < end && pos < p.saturating_add(n as u64));
            if !coming {
                let npages = len.div_ceil(PAGE);
                // Keep half of the pool for requests someone waits for.
                if len == 0
                    || len > max_bytes
                    || self.slots.iter().all(Option::is_some)
                    || self.free_pages.len() < npages + self.pool_pages / 2
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

    /// Hands completed posted reads to `f` (see `BlockDevice::take_reads`). A stopped engine
    /// hands out nothing: the backend that broke the protocol may have written anything.
    pub(super) fn take_ready(&mut self, f: &mut dyn FnMut(u64, &[u8])) -> bool {
        self.reap_responses();
        if self.broken {
            return false;
        }
        let ready = core::mem::take(&mut self.ready);
        let any = !ready.is_empty();
        let ss = u64::from(self.cfg.sector_size);
        let mut buf = core::mem::take(&mut self.ready_buf);
        for (pos, len, pages) in ready {
            buf.clear();
            buf.resize(len, 0);
            let mut whole = true;
            for (i, &p) in pages.iter().enumerate() {
                let at = i * PAGE;
                let chunk = len.saturating_sub(at).min(PAGE);
                let copied = buf
                    .get_mut(at..at + chunk)
                    .is_some_and(|dst| self.pool.read_bytes(usize::from(p) * PAGE, dst).is_ok());
                whole &= copied;
            }
            if whole {
                f(pos / ss, &buf);
            }
            self.free_pages.extend(pages);
        }
        self.ready_buf = buf;
        any
    }

    /// Collects the responses that have arrived, without waiting.
    pub(super) fn reap_responses(&mut self) -> bool {
        if self.broken {
            return false;
        }
        let mut any = false;
        loop {
            let mut rsp = [0u8; blkif::RESPONSE_SIZE];
            match self.ring.take_response(&self.ring_mem, &mut rsp) {
                Ok(true) => {
                    // Only posted requests are in flight between batches; a protocol
                    // violation has already stopped the engine.
                    if self.finish(&rsp, &mut []).is_err() {
                        return any;
                    }
                    any = true;
                }
                Ok(false) => match self.ring.final_check_for_responses(&self.ring_mem) {
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
}
