//! Group descriptors and the superblock's free counts, written back with their checksums.

use crate::block::BlockDevice;
use crate::ext4::bytes::{le32, put16, put32};
use crate::ext4::error::{Error, Result};
use crate::ext4::sb::{bg, s, DescCsum};
use crate::ext4::Ext4;

impl<D: BlockDevice> Ext4<D> {
    /// Add `dblocks` free blocks and `dinodes` free inodes (negative: take) to the superblock's
    /// counts, on disk and in `self.sb`.
    pub(crate) fn adjust_sb(&mut self, dblocks: i64, dinodes: i64) -> Result<()> {
        let (fb, fi) = self.patch_sb(|raw| {
            let fb = (u64::from(le32(raw, s::FREE_BLOCKS_HI)) << 32
                | u64::from(le32(raw, s::FREE_BLOCKS)))
            .checked_add_signed(dblocks)
            .ok_or(Error::Corrupt {
                what: "superblock free blocks",
                at: 0,
            })?;
            let fi = u64::from(le32(raw, s::FREE_INODES))
                .checked_add_signed(dinodes)
                .ok_or(Error::Corrupt {
                    what: "superblock free inodes",
                    at: 0,
                })?;
            put32(raw, s::FREE_BLOCKS, fb as u32);
            put32(raw, s::FREE_BLOCKS_HI, (fb >> 32) as u32);
            put32(raw, s::FREE_INODES, fi as u32);
            Ok::<_, Error>((fb, fi))
        })??;
        self.sb.free_blocks_count = fb;
        self.sb.free_inodes_count = fi as u32;
        Ok(())
    }

    /// Store group descriptor `g` (from `self.groups`) with optional bitmap checksums.
    pub(crate) fn store_gd(
        &mut self,
        g: usize,
        bb_csum: Option<u32>,
        ib_csum: Option<u32>,
    ) -> Result<()> {
        let gd = *self.groups.get(g).ok_or(Error::Corrupt {
            what: "group number",
            at: g as u64,
        })?;
        let ds = usize::from(self.sb.desc_size);
        let (blk, off) = self.desc_location(g);
        let ctx = self.ctx;
        let desc_csum = DescCsum::new(&self.sb, ctx.seed);
        let b = self.block_mut(blk)?;
        let d = b.get_mut(off..off + ds).ok_or(Error::Corrupt {
            what: "group descriptor",
            at: g as u64,
        })?;
        let is64 = ds >= 64;
        put16(d, bg::FREE_BLOCKS, gd.free_blocks as u16);
        put16(d, bg::FREE_INODES, gd.free_inodes as u16);
        put16(d, bg::USED_DIRS, gd.used_dirs as u16);
        put16(d, bg::FLAGS, gd.flags);
        put16(d, bg::ITABLE_UNUSED, gd.itable_unused as u16);
        if is64 {
            put16(d, bg::FREE_BLOCKS_HI, (gd.free_blocks >> 16) as u16);
            put16(d, bg::FREE_INODES_HI, (gd.free_inodes >> 16) as u16);
            put16(d, bg::USED_DIRS_HI, (gd.used_dirs >> 16) as u16);
            put16(d, bg::ITABLE_UNUSED_HI, (gd.itable_unused >> 16) as u16);
        }
        if ctx.csum {
            if let Some(c) = bb_csum {
                put16(d, bg::BLOCK_BITMAP_CSUM, c as u16);
                if is64 {
                    put16(d, bg::BLOCK_BITMAP_CSUM_HI, (c >> 16) as u16);
                }
            }
            if let Some(c) = ib_csum {
                put16(d, bg::INODE_BITMAP_CSUM, c as u16);
                if is64 {
                    put16(d, bg::INODE_BITMAP_CSUM_HI, (c >> 16) as u16);
                }
            }
        }
        if let Some(c) = desc_csum.of(g as u32, d) {
            put16(d, bg::CHECKSUM, c);
        }
        Ok(())
    }

    pub(crate) fn group_start(&self, g: u64) -> u64 {
        u64::from(self.sb.first_data_block) + g * u64::from(self.sb.blocks_per_group)
    }

    pub(crate) fn blocks_in_group(&self, g: u64) -> u64 {
        let start = self.group_start(g);
        self.ctx
            .blocks_count
            .saturating_sub(start)
            .min(u64::from(self.sb.blocks_per_group))
    }
}
