//! The PV block protocol (`io/blkif.h`): wire structs with their exact x86_64 layouts, and a
//! pure frontend core that splits I/O into ring requests and matches responses.
//!
//! Layouts (x86_64, little endian; the ring entry is the union, 112 bytes, so one page holds
//! 32 entries):
//!
//! - `blkif_request` (112 bytes): `operation`@0 u8, `nr_segments`@1 u8, `handle`@2 u16,
//!   `id`@8 u64, `sector_number`@16 u64, `seg[11]`@24, each `blkif_request_segment`
//!   (8 bytes): `gref`@0 u32, `first_sect`@4 u8, `last_sect`@5 u8.
//! - `blkif_request_discard`: `operation`@0, `flag`@1, `handle`@2, `id`@8,
//!   `sector_number`@16, `nr_sectors`@24 u64.
//! - `blkif_request_indirect`: `operation`@0 (=6), `indirect_op`@1, `nr_segments`@2 u16,
//!   `id`@8, `sector_number`@16, `handle`@24 u16, `indirect_grefs[8]`@28 u32.
//!   Each indirect page holds 512 segments of 8 bytes.
//! - `blkif_response` (16 bytes): `id`@0 u64, `operation`@8 u8, `status`@10 i16.
//!
//! Sector numbers are always in 512-byte units, whatever the disk's `sector-size`.
//!
//! No-panic contract: [`Request::parse`], [`Response::parse`] and [`Segment::parse`] accept any
//! bytes and return [`BlkifError`] for short buffers, unknown operations, segment counts out
//! of range and sector ranges outside a page. [`BlkfrontCore::complete`] accepts any response:
//! an id that is out of range, not in flight, or answered with the wrong operation is an
//! error, never a panic; in-flight state is bounded by the ring size.

use alloc::vec::Vec;

/// `BLKIF_OP_READ`.
pub const OP_READ: u8 = 0;
/// `BLKIF_OP_WRITE`.
pub const OP_WRITE: u8 = 1;
/// `BLKIF_OP_WRITE_BARRIER`.
pub const OP_WRITE_BARRIER: u8 = 2;
/// `BLKIF_OP_FLUSH_DISKCACHE`.
pub const OP_FLUSH_DISKCACHE: u8 = 3;
/// `BLKIF_OP_DISCARD`.
pub const OP_DISCARD: u8 = 5;
/// `BLKIF_OP_INDIRECT`.
pub const OP_INDIRECT: u8 = 6;
/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
pub const MAX_SEGMENTS: usize = 11;
/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`.
pub const MAX_INDIRECT_PAGES: usize = 8;
/// Segments per indirect page (4096 / 8).
pub const SEGS_PER_INDIRECT_FRAME: usize = 512;
/// Most segments one indirect request can carry.
pub const MAX_INDIRECT_SEGMENTS: usize = MAX_INDIRECT_PAGES * SEGS_PER_INDIRECT_FRAME;
/// Size of `blkif_request` (and of a ring entry).
pub const REQUEST_SIZE: usize = 112;
/// Size of `blkif_response`.
pub const RESPONSE_SIZE: usize = 16;
/// Ring entry size: the union of request and response.
pub const ENTRY_SIZE: usize = REQUEST_SIZE;
/// Size of a segment descriptor.
pub const SEGMENT_SIZE: usize = 8;
/// Sectors (512 bytes) in a page.
pub const SECTORS_PER_PAGE: u64 = 8;
/// `BLKIF_RSP_OKAY`.
pub const RSP_OKAY: i16 = 0;
/// `BLKIF_RSP_ERROR`.
pub const RSP_ERROR: i16 = -1;
/// `BLKIF_RSP_EOPNOTSUPP`.
pub const RSP_EOPNOTSUPP: i16 = -2;
/// `BLKIF_DISCARD_SECURE`.
pub const DISCARD_SECURE: u8 = 1;

/// Errors of the block protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlkifError {
    /// A buffer was shorter than the struct.
    Short {
        /// Bytes needed.
        need: usize,
        /// Bytes given.
        have: usize,
    },
    /// Unknown operation code.
    BadOperation(u8),
    /// Segment count out of range for the operation.
    BadSegmentCount(usize),
    /// A segment's sector range is not within a page (`first ≤ last ≤ 7`).
    BadSegment {
        /// First sector.
        first: u8,
        /// Last sector.
        last: u8,
    },
    /// Wrong number of indirect grant references for the segment count.
    BadIndirectPages(usize),
    /// The I/O is empty, or does not fit the grants given.
    BadIo,
    /// Every in-flight slot is busy.
    NoFreeSlot,
    /// A response names an id that is not in flight (unknown, stale or duplicate).
    UnknownId(u64),
    /// A response's operation differs from the request's.
    OperationMismatch {
        /// Request id.
        id: u64,
        /// Operation sent.
        sent: u8,
        /// Operation in the response.
        got: u8,
    },
}

fn get<const N: usize>(b: &[u8], off: usize) -> Result<[u8; N], BlkifError> {
    let need = off + N;
    b.get(off..need)
        .and_then(|s| s.try_into().ok())
        .ok_or(BlkifError::Short {
            need,
            have: b.len(),
        })
}

fn put(b: &mut [u8], off: usize, v: &[u8]) {
    if let Some(d) = b.get_mut(off..off + v.len()) {
        d.copy_from_slice(v);
    }
}

/// One data segment: a granted page and the sectors of it used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Segment {
    /// Grant reference of the page.
    pub gref: u32,
    /// First sector in the page (0..=7).
    pub first_sect: u8,
    /// Last sector in the page (first..=7).
    pub last_sect: u8,
}

impl Segment {
    /// Checks `first ≤ last ≤ 7`.
    pub fn validate(&self) -> Result<(), BlkifError> {
        if self.first_sect > self.last_sect || self.last_sect as u64 >= SECTORS_PER_PAGE {
            return Err(BlkifError::BadSegment {
                first: self.first_sect,
                last: self.last_sect,
            });
        }
        Ok(())
    }

    /// Sectors covered.
    pub fn sectors(&self) -> u64 {
        u64::from(self.last_sect.saturating_sub(self.first_sect)) + 1
    }

    /// Encodes the 8-byte descriptor.
    pub fn emit(&self) -> [u8; SEGMENT_SIZE] {
        let mut b = [0u8; SEGMENT_SIZE];
        put(&mut b, 0, &self.gref.to_le_bytes());
        b[4] = self.first_sect;
        b[5] = self.last_sect;
        b
    }

    /// Parses and validates an 8-byte descriptor.
    pub fn parse(b: &[u8]) -> Result<Self, BlkifError> {
        let raw: [u8; SEGMENT_SIZE] = get(b, 0)?;
        let s = Segment {
            gref: u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]),
            first_sect: raw[4],
            last_sect: raw[5],
        };
        s.validate()?;
        Ok(s)
    }
}

/// Writes `segs` (at most 512) into an indirect page, 8 bytes each.
pub fn emit_indirect_page(segs: &[Segment], page: &mut [u8]) -> Result<(), BlkifError> {
    if segs.len() > SEGS_PER_INDIRECT_FRAME || page.len() < segs.len() * SEGMENT_SIZE {
        return Err(BlkifError::BadSegmentCount(segs.len()));
    }
    for (i, s) in segs.iter().enumerate() {
        put(page, i * SEGMENT_SIZE, &s.emit());
    }
    Ok(())
}

/// Parses segment `i` of an indirect page (copied out of shared memory first).
pub fn parse_indirect_segment(page: &[u8], i: usize) -> Result<Segment, BlkifError> {
    if i >= SEGS_PER_INDIRECT_FRAME {
        return Err(BlkifError::BadSegmentCount(i));
    }
    Segment::parse(page.get(i * SEGMENT_SIZE..).unwrap_or(&[]))
}

/// A request, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// `BLKIF_OP_READ` / `BLKIF_OP_WRITE` with 1..=11 direct segments.
    ReadWrite {
        /// Write (true) or read.
        write: bool,
        /// Virtual device handle.
        handle: u16,
        /// Echoed in the response.
        id: u64,
        /// Start sector (512-byte units).
        sector: u64,
        /// The segments.
        segs: Vec<Segment>,
    },
    /// `BLKIF_OP_FLUSH_DISKCACHE` (or `BLKIF_OP_WRITE_BARRIER` when `barrier`), no data.
    Flush {
        /// Barrier rather than flush.
        barrier: bool,
        /// Virtual device handle.
        handle: u16,
        /// Echoed in the response.
        id: u64,
    },
    /// `BLKIF_OP_DISCARD`.
    Discard {
        /// `BLKIF_DISCARD_SECURE`.
        secure: bool,
        /// Virtual device handle.
        handle: u16,
        /// Echoed in the response.
        id: u64,
        /// Start sector.
        sector: u64,
        /// Sectors to discard.
        nr_sectors: u64,
    },
    /// `BLKIF_OP_INDIRECT`: segments live in granted indirect pages.
    Indirect {
        /// Write (true) or read.
        write: bool,
        /// Virtual device handle.
        handle: u16,
        /// Echoed in the response.
        id: u64,
        /// Start sector.
        sector: u64,
        /// Segment count (1..=4096).
        nr_segments: u16,
        /// One grant per indirect page: `ceil(nr_segments / 512)` of them.
        indirect_grefs: Vec<u32>,
    },
}

/// Indirect pages needed for `n` segments.
pub fn indirect_pages_for(n: usize) -> usize {
    n.div_ceil(SEGS_PER_INDIRECT_FRAME)
}

impl Request {
    /// The request id.
    pub fn id(&self) -> u64 {
        match self {
            Request::ReadWrite { id, .. }
            | Request::Flush { id, .. }
            | Request::Discard { id, .. }
            | Request::Indirect { id, .. } => *id,
        }
    }

    /// The operation code (what the response echoes).
    pub fn operation(&self) -> u8 {
        match self {
            Request::ReadWrite { write: false, .. } => OP_READ,
            Request::ReadWrite { write: true, .. } => OP_WRITE,
            Request::Flush { barrier: true, .. } => OP_WRITE_BARRIER,
            Request::Flush { barrier: false, .. } => OP_FLUSH_DISKCACHE,
            Request::Discard { .. } => OP_DISCARD,
            Request::Indirect { .. } => OP_INDIRECT,
        }
    }

    /// Encodes into a 112-byte entry (validating counts and segments first).
    pub fn emit(&self) -> Result<[u8; REQUEST_SIZE], BlkifError> {
        let mut b = [0u8; REQUEST_SIZE];
        b[0] = self.operation();
        match self {
            Request::ReadWrite {
                handle,
                id,
                sector,
                segs,
                ..
            } => {
                if segs.is_empty() || segs.len() > MAX_SEGMENTS {
                    return Err(BlkifError::BadSegmentCount(segs.len()));
                }
                b[1] = segs.len() as u8;
                put(&mut b, 2, &handle.to_le_bytes());
                put(&mut b, 8, &id.to_le_bytes());
                put(&mut b, 16, &sector.to_le_bytes());
                for (i, s) in segs.iter().enumerate() {
                    s.validate()?;
                    put(&mut b, 24 + i * SEGMENT_SIZE, &s.emit());
                }
            }
            Request::Flush { handle, id, .. } => {
                put(&mut b, 2, &handle.to_le_bytes());
                put(&mut b, 8, &id.to_le_bytes());
            }
            Request::Discard {
                secure,
                handle,
                id,
                sector,
                nr_sectors,
            } => {
                b[1] = if *secure { DISCARD_SECURE } else { 0 };
                put(&mut b, 2, &handle.to_le_bytes());
                put(&mut b, 8, &id.to_le_bytes());
                put(&mut b, 16, &sector.to_le_bytes());
                put(&mut b, 24, &nr_sectors.to_le_bytes());
            }
            Request::Indirect {
                write,
                handle,
                id,
                sector,
                nr_segments,
                indirect_grefs,
            } => {
                let n = *nr_segments as usize;
                if n == 0 || n > MAX_INDIRECT_SEGMENTS {
                    return Err(BlkifError::BadSegmentCount(n));
                }
                if indirect_grefs.len() != indirect_pages_for(n) {
                    return Err(BlkifError::BadIndirectPages(indirect_grefs.len()));
                }
                b[1] = if *write { OP_WRITE } else { OP_READ };
                put(&mut b, 2, &nr_segments.to_le_bytes());
                put(&mut b, 8, &id.to_le_bytes());
                put(&mut b, 16, &sector.to_le_bytes());
                put(&mut b, 24, &handle.to_le_bytes());
                for (i, g) in indirect_grefs.iter().enumerate() {
                    put(&mut b, 28 + 4 * i, &g.to_le_bytes());
                }
            }
        }
        Ok(b)
    }

    /// Parses and validates an entry copied out of the ring.
    pub fn parse(b: &[u8]) -> Result<Self, BlkifError> {
        let _: [u8; REQUEST_SIZE] = get(b, 0)?;
        let op = b[0];
        let u16_at = |o| get::<2>(b, o).map(u16::from_le_bytes);
        let u64_at = |o| get::<8>(b, o).map(u64::from_le_bytes);
        let id = u64_at(8)?;
        Ok(match op {
            OP_READ | OP_WRITE => {
                let n = b[1] as usize;
                if n == 0 || n > MAX_SEGMENTS {
                    return Err(BlkifError::BadSegmentCount(n));
                }
                let segs = (0..n)
                    .map(|i| Segment::parse(b.get(24 + i * SEGMENT_SIZE..).unwrap_or(&[])))
                    .collect::<Result<Vec<_>, _>>()?;
                Request::ReadWrite {
                    write: op == OP_WRITE,
                    handle: u16_at(2)?,
                    id,
                    sector: u64_at(16)?,
                    segs,
                }
            }
            OP_WRITE_BARRIER | OP_FLUSH_DISKCACHE => Request::Flush {
                barrier: op == OP_WRITE_BARRIER,
                handle: u16_at(2)?,
                id,
            },
            OP_DISCARD => Request::Discard {
                secure: b[1] & DISCARD_SECURE != 0,
                handle: u16_at(2)?,
                id,
                sector: u64_at(16)?,
                nr_sectors: u64_at(24)?,
            },
            OP_INDIRECT => {
                let inner = b[1];
                if inner != OP_READ && inner != OP_WRITE {
                    return Err(BlkifError::BadOperation(inner));
                }
                let nr_segments = u16_at(2)?;
                let n = nr_segments as usize;
                if n == 0 || n > MAX_INDIRECT_SEGMENTS {
                    return Err(BlkifError::BadSegmentCount(n));
                }
                let pages = indirect_pages_for(n);
                let indirect_grefs = (0..pages)
                    .map(|i| get::<4>(b, 28 + 4 * i).map(u32::from_le_bytes))
                    .collect::<Result<Vec<_>, _>>()?;
                Request::Indirect {
                    write: inner == OP_WRITE,
                    handle: u16_at(24)?,
                    id,
                    sector: u64_at(16)?,
                    nr_segments,
                    indirect_grefs,
                }
            }
            other => return Err(BlkifError::BadOperation(other)),
        })
    }
}

/// A response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    /// The request's id.
    pub id: u64,
    /// The request's operation.
    pub operation: u8,
    /// `BLKIF_RSP_*`.
    pub status: i16,
}

impl Response {
    /// Parses a 16-byte response.
    pub fn parse(b: &[u8]) -> Result<Self, BlkifError> {
        let raw: [u8; RESPONSE_SIZE] = get(b, 0)?;
        Ok(Self {
            id: u64::from_le_bytes(get(&raw, 0)?),
            operation: raw[8],
            status: i16::from_le_bytes([raw[10], raw[11]]),
        })
    }

    /// Encodes a 16-byte response.
    pub fn emit(&self) -> [u8; RESPONSE_SIZE] {
        let mut b = [0u8; RESPONSE_SIZE];
        put(&mut b, 0, &self.id.to_le_bytes());
        b[8] = self.operation;
        put(&mut b, 10, &self.status.to_le_bytes());
        b
    }
}

/// The backend's verdict on a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoStatus {
    /// `BLKIF_RSP_OKAY`.
    Ok,
    /// `BLKIF_RSP_ERROR`: an I/O error.
    Error,
    /// `BLKIF_RSP_EOPNOTSUPP`: operation not supported (e.g. flush/barrier).
    NotSupported,
    /// Any other status value.
    Unknown(i16),
}

impl IoStatus {
    /// Decodes a status.
    pub fn from_status(s: i16) -> Self {
        match s {
            RSP_OKAY => IoStatus::Ok,
            RSP_ERROR => IoStatus::Error,
            RSP_EOPNOTSUPP => IoStatus::NotSupported,
            other => IoStatus::Unknown(other),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared_ring::{BackRing, FrontRing};
    use crate::shmem::LocalMem;

    #[test]
    fn layout_offsets() {
        let r = Request::ReadWrite {
            write: true,
            handle: 0x1234,
            id: 0x0102_0304_0506_0708,
            sector: 0x1122_3344_5566_7788,
            segs: vec![
                Segment {
                    gref: 0xaabb_ccdd,
                    first_sect: 1,
                    last_sect: 6,
                };
                11
            ],
        };
        let b = r.emit().unwrap();
        assert_eq!(b[0], OP_WRITE);
        assert_eq!(b[1], 11);
        assert_eq!(&b[2..4], &[0x34, 0x12]);
        assert_eq!(&b[4..8], &[0; 4]);
        assert_eq!(&b[8..16], &0x0102_0304_0506_0708u64.to_le_bytes());
        assert_eq!(&b[16..24], &0x1122_3344_5566_7788u64.to_le_bytes());
        assert_eq!(&b[24..32], &[0xdd, 0xcc, 0xbb, 0xaa, 1, 6, 0, 0]);
        assert_eq!(&b[104..112], &[0xdd, 0xcc, 0xbb, 0xaa, 1, 6, 0, 0]);
        assert_eq!(Request::parse(&b).unwrap(), r);

        let ind = Request::Indirect {
            write: false,
            handle: 0x0203,
            id: 9,
            sector: 77,
            nr_segments: 513,
            indirect_grefs: vec![0x1111_1111, 0x2222_2222],
        };
        let b = ind.emit().unwrap();
        assert_eq!(b[0], OP_INDIRECT);
        assert_eq!(b[1], OP_READ);
        assert_eq!(&b[2..4], &513u16.to_le_bytes());
        assert_eq!(&b[8..16], &9u64.to_le_bytes());
        assert_eq!(&b[16..24], &77u64.to_le_bytes());
        assert_eq!(&b[24..26], &[0x03, 0x02]);
        assert_eq!(&b[28..32], &[0x11; 4]);
        assert_eq!(&b[32..36], &[0x22; 4]);
        assert_eq!(Request::parse(&b).unwrap(), ind);

        let d = Request::Discard {
            secure: true,
            handle: 1,
            id: 2,
            sector: 3,
            nr_sectors: 4,
        };
        let b = d.emit().unwrap();
        assert_eq!((b[0], b[1]), (OP_DISCARD, 1));
        assert_eq!(&b[24..32], &4u64.to_le_bytes());
        assert_eq!(Request::parse(&b).unwrap(), d);

        let f = Request::Flush {
            barrier: false,
            handle: 5,
            id: 6,
        };
        assert_eq!(Request::parse(&f.emit().unwrap()).unwrap(), f);

        let rsp = Response {
            id: 0xdead_beef_0000_0001,
            operation: OP_READ,
            status: RSP_EOPNOTSUPP,
        };
        let b = rsp.emit();
        assert_eq!(&b[0..8], &0xdead_beef_0000_0001u64.to_le_bytes());
        assert_eq!(b[8], 0);
        assert_eq!(&b[10..12], &[0xfe, 0xff]);
        assert_eq!(Response::parse(&b).unwrap(), rsp);
    }

    #[test]
    fn hostile_requests_rejected() {
        let mut b = [0u8; REQUEST_SIZE];
        assert_eq!(Request::parse(&b), Err(BlkifError::BadSegmentCount(0)));
        b[1] = 12;
        assert_eq!(Request::parse(&b), Err(BlkifError::BadSegmentCount(12)));
        b[1] = 1;
        b[28] = 3;
        b[29] = 2;
        assert_eq!(
            Request::parse(&b),
            Err(BlkifError::BadSegment { first: 3, last: 2 })
        );
        b[28] = 0;
        b[29] = 8;
        assert!(Request::parse(&b).is_err());
        b[29] = 7;
        assert!(Request::parse(&b).is_ok());
        b[0] = 4;
        assert_eq!(Request::parse(&b), Err(BlkifError::BadOperation(4)));
        b[0] = 200;
        assert!(Request::parse(&b).is_err());
        b[0] = OP_INDIRECT;
        b[1] = OP_DISCARD;
        assert_eq!(
            Request::parse(&b),
            Err(BlkifError::BadOperation(OP_DISCARD))
        );
        b[1] = OP_WRITE;
        b[2..4].copy_from_slice(&4097u16.to_le_bytes());
        assert_eq!(Request::parse(&b), Err(BlkifError::BadSegmentCount(4097)));
        assert!(matches!(
            Request::parse(&b[..50]),
            Err(BlkifError::Short {
                need: 112,
                have: 50
            })
        ));
        assert!(Response::parse(&[0; 15]).is_err());
        // Every byte pattern in the first bytes: never panics.
        for op in 0..=255u8 {
            for n in 0..=255u8 {
                let mut e = [0xffu8; REQUEST_SIZE];
                e[0] = op;
                e[1] = n;
                let _ = Request::parse(&e);
            }
        }
    }

    #[test]
    fn emit_validates() {
        let seg = Segment {
            gref: 1,
            first_sect: 0,
            last_sect: 7,
        };
        let rw = |n| Request::ReadWrite {
            write: false,
            handle: 0,
            id: 0,
            sector: 0,
            segs: vec![seg; n],
        };
        assert!(rw(0).emit().is_err());
        assert!(rw(12).emit().is_err());
        let bad = Request::ReadWrite {
            write: false,
            handle: 0,
            id: 0,
            sector: 0,
            segs: vec![Segment {
                gref: 1,
                first_sect: 5,
                last_sect: 4,
            }],
        };
        assert!(bad.emit().is_err());
        let ind = Request::Indirect {
            write: true,
            handle: 0,
            id: 0,
            sector: 0,
            nr_segments: 600,
            indirect_grefs: vec![1],
        };
        assert_eq!(ind.emit(), Err(BlkifError::BadIndirectPages(1)));
    }

    #[test]
    fn indirect_pages_round_trip() {
        let segs: Vec<Segment> = (0..512)
            .map(|i| Segment {
                gref: i,
                first_sect: (i % 8) as u8,
                last_sect: 7,
            })
            .collect();
        let mut page = vec![0u8; 4096];
        emit_indirect_page(&segs, &mut page).unwrap();
        for (i, s) in segs.iter().enumerate() {
            assert_eq!(parse_indirect_segment(&page, i).unwrap(), *s);
        }
        assert!(parse_indirect_segment(&page, 512).is_err());
        assert!(emit_indirect_page(&vec![Segment::default(); 513], &mut page).is_err());
        page[4] = 9;
        assert!(parse_indirect_segment(&page, 0).is_err());
    }

    #[test]
    fn planner_direct_split_and_unaligned_start() {
        let core = BlkfrontCore::new(32, 0);
        assert_eq!(core.max_segments(), 11);
        let grefs: Vec<u32> = (100..130).collect();
        // 100 sectors starting 3 sectors into the first page: 5 + 8*11 + 7 = 100 over 13 pages.
        let chunks = core.plan(false, 1000, 100, 3, &grefs).unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].segs.len(), 11);
        assert_eq!(chunks[0].sector, 1000);
        assert_eq!(
            chunks[0].segs[0],
            Segment {
                gref: 100,
                first_sect: 3,
                last_sect: 7
            }
        );
        assert_eq!(chunks[0].sectors(), 5 + 80);
        assert_eq!(chunks[1].sector, 1085);
        assert_eq!(chunks[1].segs.len(), 2);
        assert_eq!(
            *chunks[1].segs.last().unwrap(),
            Segment {
                gref: 112,
                first_sect: 0,
                last_sect: 6
            }
        );
        assert_eq!(chunks.iter().map(Chunk::sectors).sum::<u64>(), 100);
        assert!(chunks.iter().all(|c| !c.is_indirect()));
        // Single sector.
        let c = core.plan(true, 5, 1, 7, &[9]).unwrap();
        assert_eq!(
            c[0].segs,
            [Segment {
                gref: 9,
                first_sect: 7,
                last_sect: 7
            }]
        );
        // Bad inputs.
        assert_eq!(core.plan(false, 0, 0, 0, &grefs), Err(BlkifError::BadIo));
        assert_eq!(core.plan(false, 0, 9, 0, &[1]), Err(BlkifError::BadIo));
        assert_eq!(core.plan(false, 0, 1, 8, &[1]), Err(BlkifError::BadIo));
        assert_eq!(
            core.plan(false, u64::MAX, 2, 0, &[1]),
            Err(BlkifError::BadIo)
        );
    }

    #[test]
    fn planner_indirect() {
        let core = BlkfrontCore::new(32, 256);
        assert_eq!(core.max_segments(), 256);
        let grefs: Vec<u32> = (0..600).collect();
        let chunks = core.plan(true, 0, 600 * 8, 0, &grefs).unwrap();
        assert_eq!(
            chunks.iter().map(|c| c.segs.len()).collect::<Vec<_>>(),
            [256, 256, 88]
        );
        assert_eq!(chunks[1].sector, 256 * 8);
        assert!(chunks.iter().all(Chunk::is_indirect));
        assert_eq!(chunks[0].indirect_pages(), 1);
        let req = chunks[0].request(4, 0, &[77]).unwrap();
        assert_eq!(Request::parse(&req.emit().unwrap()).unwrap(), req);
        assert!(chunks[0].request(4, 0, &[]).is_err());
        // A 12-segment chunk with indirect support is indirect; 11 stays direct.
        let c = core.plan(false, 0, 96, 0, &grefs).unwrap();
        assert!(c[0].is_indirect());
        let c = core.plan(false, 0, 88, 0, &grefs).unwrap();
        assert!(!c[0].is_indirect());
        assert!(matches!(
            c[0].request(1, 0, &[]).unwrap(),
            Request::ReadWrite { .. }
        ));
        // Huge negotiated limits are capped at 8 pages of 512.
        assert_eq!(BlkfrontCore::new(32, u32::MAX).max_segments(), 4096);
        let big = BlkfrontCore::new(32, 4096);
        let g: Vec<u32> = (0..4097).collect();
        let c = big.plan(false, 0, 4097 * 8, 0, &g).unwrap();
        assert_eq!(c[0].indirect_pages(), 8);
        assert_eq!(c[1].segs.len(), 1);
    }

    #[test]
    fn slots_and_response_matching() {
        let mut core = BlkfrontCore::new(4, 0);
        let ids: Vec<u64> = (0..4)
            .map(|c| core.submit(OP_READ, 100 + c).unwrap())
            .collect();
        assert_eq!(core.submit(OP_READ, 9), Err(BlkifError::NoFreeSlot));
        assert_eq!(core.in_flight(), 4);
        let done = core
            .complete(&Response {
                id: ids[2],
                operation: OP_READ,
                status: RSP_ERROR,
            })
            .unwrap();
        assert_eq!(done.cookie, 102);
        assert_eq!(done.status, IoStatus::Error);
        // Duplicate.
        assert_eq!(
            core.complete(&Response {
                id: ids[2],
                operation: OP_READ,
                status: 0
            }),
            Err(BlkifError::UnknownId(ids[2]))
        );
        // Out of range.
        for id in [4u64, 1 << 16, u64::MAX] {
            assert_eq!(
                core.complete(&Response {
                    id,
                    operation: OP_READ,
                    status: 0
                }),
                Err(BlkifError::UnknownId(id))
            );
        }
        // Operation mismatch leaves the slot in flight.
        assert!(matches!(
            core.complete(&Response {
                id: ids[0],
                operation: OP_WRITE,
                status: 0
            }),
            Err(BlkifError::OperationMismatch { .. })
        ));
        assert_eq!(core.in_flight(), 3);
        let mut out = core.outstanding();
        out.sort();
        assert_eq!(out, [100, 101, 103]);
        let d = core
            .complete(&Response {
                id: ids[3],
                operation: OP_READ,
                status: RSP_EOPNOTSUPP,
            })
            .unwrap();
        assert_eq!(d.status, IoStatus::NotSupported);
        assert_eq!(IoStatus::from_status(7), IoStatus::Unknown(7));
        // The freed slots are reused.
        assert!(core.submit(OP_FLUSH_DISKCACHE, 5).is_ok());
        assert!(core.submit(OP_FLUSH_DISKCACHE, 6).is_ok());
        assert!(core.submit(OP_FLUSH_DISKCACHE, 7).is_err());
    }

    #[test]
    fn end_to_end_over_a_shared_ring() {
        // Frontend plans a 200-sector read with 11-segment requests, queues them on a real
        // ring; a fake backend parses each copy and answers; the core matches everything.
        let mem = LocalMem::new(4096);
        let mut front = FrontRing::init(&mem, ENTRY_SIZE).unwrap();
        let mut back = BackRing::new(&mem, ENTRY_SIZE).unwrap();
        let mut core = BlkfrontCore::new(front.geometry().nr_ents() as usize, 0);
        let grefs: Vec<u32> = (0..25).collect();
        let chunks = core.plan(false, 64, 200, 0, &grefs).unwrap();
        assert_eq!(chunks.len(), 3);
        for (i, c) in chunks.iter().enumerate() {
            let id = core.submit(OP_READ, i as u64).unwrap();
            let req = c.request(id, 0, &[]).unwrap();
            front.queue_request(&mem, &req.emit().unwrap()).unwrap();
        }
        assert!(front.push_requests(&mem).unwrap());
        let mut entry = [0u8; ENTRY_SIZE];
        let mut sectors = 0;
        while back.take_request(&mem, &mut entry).unwrap() {
            let Request::ReadWrite { id, segs, .. } = Request::parse(&entry).unwrap() else {
                panic!("expected read");
            };
            sectors += segs.iter().map(Segment::sectors).sum::<u64>();
            let rsp = Response {
                id,
                operation: OP_READ,
                status: RSP_OKAY,
            };
            back.queue_response(&mem, &rsp.emit()).unwrap();
        }
        assert_eq!(sectors, 200);
        back.push_responses(&mem).unwrap();
        let mut r = [0u8; RESPONSE_SIZE];
        let mut cookies = Vec::new();
        while front.take_response(&mem, &mut r).unwrap() {
            let done = core.complete(&Response::parse(&r).unwrap()).unwrap();
            assert_eq!(done.status, IoStatus::Ok);
            cookies.push(done.cookie);
        }
        assert_eq!(cookies, [0, 1, 2]);
        assert_eq!(core.in_flight(), 0);
    }
}
