//! The PV block protocol (`io/blkif.h`): wire structs with their exact x86_64 layouts, and
//! blkfront's request engine ([`engine`]), which splits I/O into ring requests over granted
//! pages and matches the responses.
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
//! of range and sector ranges outside a page. The engine accepts any response: an id that is
//! out of range, not in flight, or answered with the wrong operation stops it, never a panic;
//! in-flight state is bounded by the ring size.

pub mod engine;
mod wire;

pub use wire::{
    emit_indirect_page, indirect_pages_for, parse_indirect_segment, IoStatus, Request, Response,
    Segment,
};

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

#[cfg(test)]
mod tests;
