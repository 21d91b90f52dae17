//! The wire structs of `io/blkif.h`: segments, indirect pages, requests and responses.

use super::{
    BlkifError, DISCARD_SECURE, MAX_INDIRECT_SEGMENTS, MAX_SEGMENTS, OP_DISCARD,
    OP_FLUSH_DISKCACHE, OP_INDIRECT, OP_READ, OP_WRITE, OP_WRITE_BARRIER, REQUEST_SIZE,
    RESPONSE_SIZE, RSP_EOPNOTSUPP, RSP_ERROR, RSP_OKAY, SECTORS_PER_PAGE, SEGMENT_SIZE,
    SEGS_PER_INDIRECT_FRAME,
};
use alloc::vec::Vec;
use byteorder::{ByteOrder, LittleEndian as LE};

/// Byte ranges of the fields (layouts in the module header of `blkif`).
mod field {
    /// A field's bytes in its struct.
    pub(super) type Field = core::ops::Range<usize>;

    /// `blkif_request_segment.gref`.
    pub(super) const SEG_GREF: Field = 0..4;
    /// `blkif_request_segment.first_sect`.
    pub(super) const SEG_FIRST: usize = 4;
    /// `blkif_request_segment.last_sect`.
    pub(super) const SEG_LAST: usize = 5;

    /// `operation` (every request kind).
    pub(super) const OPERATION: usize = 0;
    /// `nr_segments` (read/write), `flag` (discard), `indirect_op` (indirect).
    pub(super) const BYTE1: usize = 1;
    /// `handle` (read/write, flush, discard).
    pub(super) const HANDLE: Field = 2..4;
    /// `nr_segments` of an indirect request.
    pub(super) const INDIRECT_NR_SEGMENTS: Field = 2..4;
    /// `id` (every request kind).
    pub(super) const ID: Field = 8..16;
    /// `sector_number` (read/write, discard, indirect).
    pub(super) const SECTOR: Field = 16..24;
    /// `nr_sectors` of a discard.
    pub(super) const NR_SECTORS: Field = 24..32;
    /// `handle` of an indirect request.
    pub(super) const INDIRECT_HANDLE: Field = 24..26;
    /// `seg[0]` of a read/write request; segment `i` follows at `i * SEGMENT_SIZE`.
    pub(super) const SEGS: usize = 24;
    /// `indirect_grefs[0]`; gref `i` follows at `4 * i`.
    pub(super) const INDIRECT_GREFS: usize = 28;

    /// `blkif_response.id`.
    pub(super) const RSP_ID: Field = 0..8;
    /// `blkif_response.operation`.
    pub(super) const RSP_OPERATION: usize = 8;
    /// `blkif_response.status`.
    pub(super) const RSP_STATUS: Field = 10..12;

    /// Indirect gref `i`.
    pub(super) fn indirect_gref(i: usize) -> Field {
        let at = INDIRECT_GREFS + 4 * i;
        at..at + 4
    }

    /// Direct segment `i` (8 bytes).
    pub(super) fn segment(i: usize) -> Field {
        let at = SEGS + i * super::SEGMENT_SIZE;
        at..at + super::SEGMENT_SIZE
    }
}

/// `b` if it holds `need` bytes, else [`BlkifError::Short`].
fn check_len(b: &[u8], need: usize) -> Result<&[u8], BlkifError> {
    b.get(..need).ok_or(BlkifError::Short {
        need,
        have: b.len(),
    })
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
        LE::write_u32(&mut b[field::SEG_GREF], self.gref);
        b[field::SEG_FIRST] = self.first_sect;
        b[field::SEG_LAST] = self.last_sect;
        b
    }

    /// Parses and validates an 8-byte descriptor.
    pub fn parse(b: &[u8]) -> Result<Self, BlkifError> {
        let raw = check_len(b, SEGMENT_SIZE)?;
        let s = Segment {
            gref: LE::read_u32(&raw[field::SEG_GREF]),
            first_sect: raw[field::SEG_FIRST],
            last_sect: raw[field::SEG_LAST],
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
    for (s, d) in segs.iter().zip(page.chunks_exact_mut(SEGMENT_SIZE)) {
        d.copy_from_slice(&s.emit());
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
        b[field::OPERATION] = self.operation();
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
                b[field::BYTE1] = segs.len() as u8;
                LE::write_u16(&mut b[field::HANDLE], *handle);
                LE::write_u64(&mut b[field::ID], *id);
                LE::write_u64(&mut b[field::SECTOR], *sector);
                for (i, s) in segs.iter().enumerate() {
                    s.validate()?;
                    b[field::segment(i)].copy_from_slice(&s.emit());
                }
            }
            Request::Flush { handle, id, .. } => {
                LE::write_u16(&mut b[field::HANDLE], *handle);
                LE::write_u64(&mut b[field::ID], *id);
            }
            Request::Discard {
                secure,
                handle,
                id,
                sector,
                nr_sectors,
            } => {
                b[field::BYTE1] = if *secure { DISCARD_SECURE } else { 0 };
                LE::write_u16(&mut b[field::HANDLE], *handle);
                LE::write_u64(&mut b[field::ID], *id);
                LE::write_u64(&mut b[field::SECTOR], *sector);
                LE::write_u64(&mut b[field::NR_SECTORS], *nr_sectors);
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
                b[field::BYTE1] = if *write { OP_WRITE } else { OP_READ };
                LE::write_u16(&mut b[field::INDIRECT_NR_SEGMENTS], *nr_segments);
                LE::write_u64(&mut b[field::ID], *id);
                LE::write_u64(&mut b[field::SECTOR], *sector);
                LE::write_u16(&mut b[field::INDIRECT_HANDLE], *handle);
                for (i, g) in indirect_grefs.iter().enumerate() {
                    LE::write_u32(&mut b[field::indirect_gref(i)], *g);
                }
            }
        }
        Ok(b)
    }

    /// Parses and validates an entry copied out of the ring.
    pub fn parse(b: &[u8]) -> Result<Self, BlkifError> {
        // Every field below lies inside the checked 112 bytes.
        let b = check_len(b, REQUEST_SIZE)?;
        let op = b[field::OPERATION];
        let id = LE::read_u64(&b[field::ID]);
        let handle = LE::read_u16(&b[field::HANDLE]);
        let sector = LE::read_u64(&b[field::SECTOR]);
        Ok(match op {
            OP_READ | OP_WRITE => {
                let n = b[field::BYTE1] as usize;
                if n == 0 || n > MAX_SEGMENTS {
                    return Err(BlkifError::BadSegmentCount(n));
                }
                let segs = (0..n)
                    .map(|i| Segment::parse(&b[field::segment(i)]))
                    .collect::<Result<Vec<_>, _>>()?;
                Request::ReadWrite {
                    write: op == OP_WRITE,
                    handle,
                    id,
                    sector,
                    segs,
                }
            }
            OP_WRITE_BARRIER | OP_FLUSH_DISKCACHE => Request::Flush {
                barrier: op == OP_WRITE_BARRIER,
                handle,
                id,
            },
            OP_DISCARD => Request::Discard {
                secure: b[field::BYTE1] & DISCARD_SECURE != 0,
                handle,
                id,
                sector,
                nr_sectors: LE::read_u64(&b[field::NR_SECTORS]),
            },
            OP_INDIRECT => {
                let inner = b[field::BYTE1];
                if inner != OP_READ && inner != OP_WRITE {
                    return Err(BlkifError::BadOperation(inner));
                }
                let nr_segments = LE::read_u16(&b[field::INDIRECT_NR_SEGMENTS]);
                let n = nr_segments as usize;
                if n == 0 || n > MAX_INDIRECT_SEGMENTS {
                    return Err(BlkifError::BadSegmentCount(n));
                }
                let pages = indirect_pages_for(n);
                let indirect_grefs = (0..pages)
                    .map(|i| LE::read_u32(&b[field::indirect_gref(i)]))
                    .collect();
                Request::Indirect {
                    write: inner == OP_WRITE,
                    handle: LE::read_u16(&b[field::INDIRECT_HANDLE]),
                    id,
                    sector,
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
        let raw = check_len(b, RESPONSE_SIZE)?;
        Ok(Self {
            id: LE::read_u64(&raw[field::RSP_ID]),
            operation: raw[field::RSP_OPERATION],
            status: LE::read_i16(&raw[field::RSP_STATUS]),
        })
    }

    /// Encodes a 16-byte response.
    pub fn emit(&self) -> [u8; RESPONSE_SIZE] {
        let mut b = [0u8; RESPONSE_SIZE];
        LE::write_u64(&mut b[field::RSP_ID], self.id);
        b[field::RSP_OPERATION] = self.operation;
        LE::write_i16(&mut b[field::RSP_STATUS], self.status);
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
