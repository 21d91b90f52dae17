//! Extended attributes: [`read`] (in-inode area and external block, POSIX ACL conversion) and
//! [`write`] (set, replace, remove; the block shared by reference count).

pub(crate) mod read;
pub(crate) mod write;

use crate::crc::crc32c_raw;
use crate::ext4::bytes::le32;
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::Ctx;
use alloc::vec::Vec;

/// An xattr: name index, name suffix, value.
pub(crate) type Xattr = (u8, Vec<u8>, Vec<u8>);

/// Magic of an xattr block header (`h_magic`) and of the in-inode attribute area.
pub(crate) const XATTR_MAGIC: u32 = 0xEA02_0000;
/// `struct ext4_xattr_header` (block header) field offsets.
pub(crate) mod h {
    /// `h_magic`.
    pub(crate) const MAGIC: usize = 0x0;
    /// `h_refcount`.
    pub(crate) const REFCOUNT: usize = 0x4;
    /// `h_blocks` (always 1).
    pub(crate) const BLOCKS: usize = 0x8;
    /// `h_hash`.
    pub(crate) const HASH: usize = 0xC;
    /// `h_checksum`.
    pub(crate) const CHECKSUM: usize = 0x10;
}

/// `struct ext4_xattr_entry` field offsets; the name follows at [`e::NAME`].
pub(crate) mod e {
    /// `e_name_len` (u8).
    pub(crate) const NAME_LEN: usize = 0x0;
    /// `e_name_index` (u8).
    pub(crate) const NAME_INDEX: usize = 0x1;
    /// `e_value_offs` (u16).
    pub(crate) const VALUE_OFFS: usize = 0x2;
    /// `e_value_inum`.
    pub(crate) const VALUE_INUM: usize = 0x4;
    /// `e_value_size`.
    pub(crate) const VALUE_SIZE: usize = 0x8;
    /// `e_hash`.
    pub(crate) const HASH: usize = 0xC;
    /// `e_name`: the name's bytes (the fixed part's size).
    pub(crate) const NAME: usize = 0x10;
}

/// The checksum of xattr block `blk` (crc32c of the block number and the block with its
/// checksum field as zero).
fn block_csum_of(seed: u32, blk: u64, b: &[u8]) -> u32 {
    let mut c = crc32c_raw(seed, &blk.to_le_bytes());
    c = crc32c_raw(c, b.get(..h::CHECKSUM).unwrap_or(&[]));
    c = crc32c_raw(c, &[0; 4]);
    crc32c_raw(c, b.get(h::CHECKSUM + 4..).unwrap_or(&[]))
}

/// Check the header of xattr block `blk` (contents `b`): magic, one block, and with
/// `need_refs` a reference count above 0 (the writer frees by it); then its checksum with
/// `metadata_csum`. The reader and the writer both check blocks through here.
pub(crate) fn check_block(ctx: &Ctx, blk: u64, b: &[u8], need_refs: bool) -> Result<()> {
    if le32(b, h::MAGIC) != XATTR_MAGIC
        || le32(b, h::BLOCKS) != 1
        || (need_refs && le32(b, h::REFCOUNT) == 0)
    {
        return corrupt("xattr block header", blk);
    }
    if ctx.csum && block_csum_of(ctx.seed, blk, b) != le32(b, h::CHECKSUM) {
        return Err(Error::Checksum {
            what: "xattr block",
            at: blk,
        });
    }
    Ok(())
}
