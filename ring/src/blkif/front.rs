//! The frontend core: plans reads and writes into ring requests and matches responses.

use super::{
    indirect_pages_for, BlkifError, IoStatus, Request, Response, Segment, MAX_INDIRECT_SEGMENTS,
    MAX_SEGMENTS, SECTORS_PER_PAGE,
};
use alloc::vec::Vec;

/// One ring request's worth of a read or write, as planned by [`BlkfrontCore::plan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// Write (true) or read.
    pub write: bool,
    /// Start sector (512-byte units).
    pub sector: u64,
    /// The data segments.
    pub segs: Vec<Segment>,
}

impl Chunk {
    /// True if it needs an indirect request (more than 11 segments).
    pub fn is_indirect(&self) -> bool {
        self.segs.len() > MAX_SEGMENTS
    }

    /// Indirect pages it needs (0 for a direct request).
    pub fn indirect_pages(&self) -> usize {
        if self.is_indirect() {
            indirect_pages_for(self.segs.len())
        } else {
            0
        }
    }

    /// Sectors covered.
    pub fn sectors(&self) -> u64 {
        self.segs.iter().map(Segment::sectors).sum()
    }

    /// Builds the ring request. For an indirect chunk, the caller has written
    /// `segs[512*i ..]` into indirect page `i` with [`emit_indirect_page`] and passes those
    /// pages' grants in `indirect_grefs`.
    pub fn request(
        &self,
        id: u64,
        handle: u16,
        indirect_grefs: &[u32],
    ) -> Result<Request, BlkifError> {
        if self.is_indirect() {
            if indirect_grefs.len() != self.indirect_pages() {
                return Err(BlkifError::BadIndirectPages(indirect_grefs.len()));
            }
            Ok(Request::Indirect {
                write: self.write,
                handle,
                id,
                sector: self.sector,
                nr_segments: u16::try_from(self.segs.len())
                    .map_err(|_| BlkifError::BadSegmentCount(self.segs.len()))?,
                indirect_grefs: indirect_grefs.to_vec(),
            })
        } else {
            Ok(Request::ReadWrite {
                write: self.write,
                handle,
                id,
                sector: self.sector,
                segs: self.segs.clone(),
            })
        }
    }
}

/// A completed request, as matched by [`BlkfrontCore::complete`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Completion {
    /// The caller's cookie given at submission.
    pub cookie: u64,
    /// The operation.
    pub operation: u8,
    /// The verdict.
    pub status: IoStatus,
}

#[derive(Debug, Clone, Copy)]
struct Slot {
    busy: bool,
    cookie: u64,
    operation: u8,
}

/// Frontend bookkeeping independent of memory: plans reads and writes into ring requests,
/// hands out request ids from a bounded free list, and matches responses to requests.
#[derive(Debug, Clone)]
pub struct BlkfrontCore {
    slots: Vec<Slot>,
    free: Vec<u16>,
    max_segs: usize,
}

impl BlkfrontCore {
    /// A core with `capacity` in-flight slots (the ring's entry count, at most 65536) and the
    /// backend's `feature-max-indirect-segments` (0: direct requests only; capped at 4096).
    pub fn new(capacity: usize, max_indirect_segments: u32) -> Self {
        let cap = capacity.clamp(1, 1 << 16);
        let ind = (max_indirect_segments as usize).min(MAX_INDIRECT_SEGMENTS);
        Self {
            slots: alloc::vec![
                Slot {
                    busy: false,
                    cookie: 0,
                    operation: 0
                };
                cap
            ],
            free: (0..cap).rev().map(|i| i as u16).collect(),
            max_segs: ind.max(MAX_SEGMENTS),
        }
    }

    /// Segments per request: 11, or the indirect limit if larger.
    pub fn max_segments(&self) -> usize {
        self.max_segs
    }

    /// Free slots.
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Splits a read or write of `nr_sectors` at `sector` into requests. The buffer is the
    /// pages granted as `grefs`, starting `first_sect` sectors (0..=7) into the first page.
    /// `grefs` must cover the I/O exactly or more.
    pub fn plan(
        &self,
        write: bool,
        sector: u64,
        nr_sectors: u64,
        first_sect: u8,
        grefs: &[u32],
    ) -> Result<Vec<Chunk>, BlkifError> {
        if nr_sectors == 0 || u64::from(first_sect) >= SECTORS_PER_PAGE {
            return Err(BlkifError::BadIo);
        }
        let pages = (u64::from(first_sect) + nr_sectors).div_ceil(SECTORS_PER_PAGE);
        if pages > grefs.len() as u64 {
            return Err(BlkifError::BadIo);
        }
        sector.checked_add(nr_sectors).ok_or(BlkifError::BadIo)?;
        let mut chunks: Vec<Chunk> = Vec::new();
        let mut left = nr_sectors;
        let mut cur = sector;
        let mut first = first_sect;
        let mut segs: Vec<Segment> = Vec::new();
        let mut chunk_start = sector;
        for &g in grefs.iter().take(pages as usize) {
            let n = left.min(SECTORS_PER_PAGE - u64::from(first));
            segs.push(Segment {
                gref: g,
                first_sect: first,
                last_sect: first + (n as u8) - 1,
            });
            left -= n;
            cur += n;
            first = 0;
            if segs.len() == self.max_segs {
                chunks.push(Chunk {
                    write,
                    sector: chunk_start,
                    segs: core::mem::take(&mut segs),
                });
                chunk_start = cur;
            }
        }
        if !segs.is_empty() {
            chunks.push(Chunk {
                write,
                sector: chunk_start,
                segs,
            });
        }
        Ok(chunks)
    }

    /// Takes a free slot for a request of `operation`, remembering `cookie`; returns the
    /// request id to put on the wire.
    pub fn submit(&mut self, operation: u8, cookie: u64) -> Result<u64, BlkifError> {
        let i = self.free.pop().ok_or(BlkifError::NoFreeSlot)?;
        if let Some(s) = self.slots.get_mut(i as usize) {
            *s = Slot {
                busy: true,
                cookie,
                operation,
            };
        }
        Ok(u64::from(i))
    }

    /// Matches a response to its request and frees the slot. Unknown, stale or duplicate ids
    /// and operation mismatches are errors (the backend is broken; disconnect).
    pub fn complete(&mut self, rsp: &Response) -> Result<Completion, BlkifError> {
        let slot = usize::try_from(rsp.id)
            .ok()
            .and_then(|i| self.slots.get_mut(i))
            .filter(|s| s.busy)
            .ok_or(BlkifError::UnknownId(rsp.id))?;
        if slot.operation != rsp.operation {
            return Err(BlkifError::OperationMismatch {
                id: rsp.id,
                sent: slot.operation,
                got: rsp.operation,
            });
        }
        slot.busy = false;
        let done = Completion {
            cookie: slot.cookie,
            operation: slot.operation,
            status: IoStatus::from_status(rsp.status),
        };
        self.free.push(rsp.id as u16);
        Ok(done)
    }

    /// Cookies of every request still in flight (for draining or failing them all when the
    /// backend goes away).
    pub fn outstanding(&self) -> Vec<u64> {
        self.slots
            .iter()
            .filter(|s| s.busy)
            .map(|s| s.cookie)
            .collect()
    }
}
