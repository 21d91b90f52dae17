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
/// Block header offsets: magic, reference count, blocks (always 1), checksum.
const H_MAGIC: usize = 0x0;
const H_REFCOUNT: usize = 0x4;
const H_BLOCKS: usize = 0x8;
const H_CHECKSUM: usize = 0x10;

/// The checksum of xattr block `blk` (crc32c of the block number and the block with its
/// checksum field as zero).
fn block_csum_of(seed: u32, blk: u64, b: &[u8]) -> u32 {
    let mut c = crc32c_raw(seed, &blk.to_le_bytes());
    c = crc32c_raw(c, b.get(..H_CHECKSUM).unwrap_or(&[]));
    c = crc32c_raw(c, &[0; 4]);
    crc32c_raw(c, b.get(H_CHECKSUM + 4..).unwrap_or(&[]))
}

/// Check the header of xattr block `blk` (contents `b`): magic, one block, and with
/// `need_refs` a reference count above 0 (the writer frees by it); then its checksum with
/// `metadata_csum`. The reader and the writer both check blocks through here.
pub(crate) fn check_block(ctx: &Ctx, blk: u64, b: &[u8], need_refs: bool) -> Result<()> {
    if le32(b, H_MAGIC) != XATTR_MAGIC
        || le32(b, H_BLOCKS) != 1
        || (need_refs && le32(b, H_REFCOUNT) == 0)
    {
        return corrupt("xattr block header", blk);
    }
    if ctx.csum && block_csum_of(ctx.seed, blk, b) != le32(b, H_CHECKSUM) {
        return Err(Error::Checksum {
            what: "xattr block",
            at: blk,
        });
    }
    Ok(())
}
