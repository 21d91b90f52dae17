//! Block maps: [`map`] maps logical blocks for reads (extent trees and legacy indirect maps);
//! [`write`] is the writer's extent trees, [`truncate`] truncate and fallocate.

use crate::ext4::bytes::{le16, le32};

pub(crate) mod map;
pub(crate) mod truncate;
pub(crate) mod write;

/// `eh_magic` of every extent tree node.
pub(crate) const EXTENT_MAGIC: u16 = 0xF30A;
/// The deepest extent tree ext4 allows.
pub(crate) const MAX_DEPTH: u16 = 5;

/// `struct ext4_extent_header` field offsets (12 bytes, at the start of every node).
pub(crate) mod eh {
    /// `eh_magic` (u16).
    pub(crate) const MAGIC: usize = 0;
    /// `eh_entries` (u16).
    pub(crate) const ENTRIES: usize = 2;
    /// `eh_max` (u16).
    pub(crate) const MAX: usize = 4;
    /// `eh_depth` (u16).
    pub(crate) const DEPTH: usize = 6;
    /// `eh_generation`.
    pub(crate) const GENERATION: usize = 8;
}

/// `struct ext4_extent` (a leaf entry) field offsets.
pub(crate) mod ee {
    /// `ee_block`: first logical block.
    pub(crate) const BLOCK: usize = 0;
    /// `ee_len` (u16; above 32768 an unwritten extent).
    pub(crate) const LEN: usize = 4;
    /// `ee_start_hi` (u16).
    pub(crate) const START_HI: usize = 6;
    /// `ee_start_lo`.
    pub(crate) const START_LO: usize = 8;
}

/// `struct ext4_extent_idx` (an index entry) field offsets.
pub(crate) mod ei {
    /// `ei_block`: first logical block below.
    pub(crate) const BLOCK: usize = 0;
    /// `ei_leaf_lo`.
    pub(crate) const LEAF_LO: usize = 4;
    /// `ei_leaf_hi` (u16).
    pub(crate) const LEAF_HI: usize = 8;
    /// `ei_unused` (u16).
    pub(crate) const UNUSED: usize = 10;
}

/// The physical start of leaf entry `e`.
pub(crate) fn leaf_start(e: &[u8]) -> u64 {
    (u64::from(le16(e, ee::START_HI)) << 32) | u64::from(le32(e, ee::START_LO))
}

/// The child block of index entry `e`.
pub(crate) fn index_child(e: &[u8]) -> u64 {
    (u64::from(le16(e, ei::LEAF_HI)) << 32) | u64::from(le32(e, ei::LEAF_LO))
}
