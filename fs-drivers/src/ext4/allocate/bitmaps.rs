//! A group's bitmaps, read to be changed: with `metadata_csum` each cached copy is verified
//! against the checksum in its group descriptor before its first use (as Linux's
//! `ext4_validate_block_bitmap` does), and its new checksum is computed after every change
//! (the caller stores it with [`Ext4::store_gd`]). A block-cache tag records a copy that
//! matches, so a bitmap is checksummed once while it stays cached, not at every allocation.

use crate::block::BlockDevice;
use crate::crc::crc32c_raw;
use crate::ext4::bytes::le16;
use crate::ext4::error::{Error, Result};
use crate::ext4::gdt::GdtLayout;
use crate::ext4::sb::{bg, GroupDesc};
use crate::ext4::Ext4;

/// Which of a group's two bitmaps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bitmap {
    Block,
    Inode,
}

impl Bitmap {
    /// The block-cache tag of group `g`'s bitmap while its cached bytes match the checksum
    /// that is (or is about to be) in the descriptor: bit 60 for block bitmaps, 59 for inode
    /// bitmaps, the group number below; disjoint from the superblock's (bit 61 alone), the
    /// inode and orphan-file blocks' (bits 63, 62) and the directory blocks' (below 2^34).
    fn tag(self, g: usize) -> u64 {
        let kind = match self {
            Bitmap::Block => 1 << 60,
            Bitmap::Inode => 1 << 59,
        };
        kind | (g as u64 & 0xFFFF_FFFF)
    }

    fn what(self) -> &'static str {
        match self {
            Bitmap::Block => "block bitmap",
            Bitmap::Inode => "inode bitmap",
        }
    }

    fn location(self, gd: &GroupDesc) -> u64 {
        match self {
            Bitmap::Block => gd.block_bitmap,
            Bitmap::Inode => gd.inode_bitmap,
        }
    }

    /// Offsets of the checksum's low and high halves in a descriptor.
    fn csum_fields(self) -> (usize, usize) {
        match self {
            Bitmap::Block => (bg::BLOCK_BITMAP_CSUM, bg::BLOCK_BITMAP_CSUM_HI),
            Bitmap::Inode => (bg::INODE_BITMAP_CSUM, bg::INODE_BITMAP_CSUM_HI),
        }
    }
}

/// Whether `e` is bitmap `which` refused for its checksum ([`Ext4::verify_bitmap`]), which an
/// allocation steps over to the next group.
pub(crate) fn refused_for_checksum(e: &Error, which: Bitmap) -> bool {
    matches!(e, Error::Checksum { what, .. } if *what == which.what())
}

impl<D: BlockDevice> Ext4<D> {
    /// Where group `g`'s descriptor is: its (primary) block and byte offset in it (with
    /// `meta_bg`, in the first group of its meta group).
    pub(crate) fn desc_location(&self, g: usize) -> (u64, usize) {
        let ds = usize::from(self.sb.desc_size).max(1);
        let per = (self.ctx.bs / ds).max(1);
        let blk = GdtLayout::from_sb(&self.sb, 0).primary((g / per) as u64);
        (blk, (g % per) * ds)
    }

    /// The crc32c of a bitmap's meaningful bytes (one bit a cluster or inode of the group).
    fn bitmap_crc(&mut self, gd: &GroupDesc, which: Bitmap) -> Result<u32> {
        let n = match which {
            Bitmap::Block => self.sb.clusters_per_group / 8,
            Bitmap::Inode => self.sb.inodes_per_group / 8,
        } as usize;
        let seed = self.ctx.seed;
        let b = self.block(which.location(gd))?;
        Ok(crc32c_raw(seed, b.get(..n).unwrap_or(b)))
    }

    /// Refuse group `g`'s bitmap if it does not match the checksum its descriptor holds
    /// (`Error::Checksum` naming the bitmap, at the group number), and go on refusing it
    /// for the rest of the mount (allocation then skips the group, as Linux's
    /// `EXT4_MB_GRP_BBITMAP_CORRUPT` makes it do). Nothing to check without
    /// `metadata_csum`, or when the cached copy was verified or written since it was read.
    /// Not for a bitmap its group's `UNINIT` flag says is not there.
    pub(crate) fn verify_bitmap(&mut self, g: usize, which: Bitmap) -> Result<()> {
        if !self.ctx.csum {
            return Ok(());
        }
        let refusal = Error::Checksum {
            what: which.what(),
            at: g as u64,
        };
        if self.refused.contains(&which.tag(g)) {
            return Err(refusal);
        }
        let gd = self.groups.get(g).copied().ok_or(Error::Corrupt {
            what: "group number",
            at: g as u64,
        })?;
        let blk = which.location(&gd);
        if self.block_checked(blk) == Some(which.tag(g)) {
            return Ok(());
        }
        let crc = self.bitmap_crc(&gd, which)?;
        let ds = usize::from(self.sb.desc_size);
        let (dblk, off) = self.desc_location(g);
        let d = self.block(dblk)?.get(off..off + ds).unwrap_or(&[]);
        let (lo, hi) = which.csum_fields();
        let (stored, mask) = if ds >= 64 {
            (
                u32::from(le16(d, lo)) | u32::from(le16(d, hi)) << 16,
                u32::MAX,
            )
        } else {
            (u32::from(le16(d, lo)), 0xFFFF)
        };
        if crc & mask != stored {
            log::warn!(
                "ext4: group {g}'s {} does not match its checksum; not allocating from it",
                which.what()
            );
            self.refused.insert(which.tag(g));
            return Err(refusal);
        }
        self.set_block_checked(blk, which.tag(g));
        Ok(())
    }

    /// The checksum of group `g`'s block bitmap as it is now, for [`Ext4::store_gd`] to
    /// store; the cached copy is recorded as matching it.
    pub(crate) fn block_bitmap_csum(&mut self, g: usize, gd: &GroupDesc) -> Result<u32> {
        self.seal_bitmap(g, gd, Bitmap::Block)
    }

    /// The same for group `g`'s inode bitmap.
    pub(crate) fn inode_bitmap_csum(&mut self, g: usize, gd: &GroupDesc) -> Result<u32> {
        self.seal_bitmap(g, gd, Bitmap::Inode)
    }

    fn seal_bitmap(&mut self, g: usize, gd: &GroupDesc, which: Bitmap) -> Result<u32> {
        let crc = self.bitmap_crc(gd, which)?;
        if self.ctx.csum {
            self.set_block_checked(which.location(gd), which.tag(g));
        }
        Ok(crc)
    }
}

#[cfg(test)]
mod tests {
    use super::Bitmap;

    #[test]
    fn tags_are_disjoint_from_each_other_and_the_others() {
        let others = [1u64 << 61, 1 << 63, 1 << 62];
        for g in [0usize, 1, 0xFFFF_FFFF] {
            let (b, i) = (Bitmap::Block.tag(g), Bitmap::Inode.tag(g));
            assert_ne!(b, i);
            for t in [b, i] {
                assert!(t >= 1 << 34);
                assert!(others.iter().all(|&o| t & o == 0));
            }
        }
        assert_ne!(Bitmap::Block.tag(0), Bitmap::Block.tag(1));
    }
}
