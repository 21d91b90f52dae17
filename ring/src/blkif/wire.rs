//! The wire structs of `io/blkif.h`: segments, indirect pages, requests and responses.

use super::{
    BlkifError, DISCARD_SECURE, MAX_INDIRECT_SEGMENTS, MAX_SEGMENTS, OP_DISCARD,
    OP_FLUSH_DISKCACHE, OP_INDIRECT, OP_READ, OP_WRITE, OP_WRITE_BARRIER, REQUEST_SIZE,
    RESPONSE_SIZE, RSP_EOPNOTSUPP, RSP_ERROR, RSP_OKAY, SECTORS_PER_PAGE, SEGMENT_SIZE,
    SEGS_PER_INDIRECT_FRAME,
};
use alloc::vec::Vec;

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
