//! The resize inode (inode 7), which owns the reserved descriptor blocks: its
//! double-indirect block lists each reserved block of group 0 (the "primary"), and each
//! primary, used as an indirect block, lists that block's copies in the backup groups.
//! A grow that turns reserved blocks into descriptor blocks drops them from the
//! double-indirect block, and a new backup group adds its copies to every primary (as
//! Linux's `fs/ext4/resize.c` does; the result is the inode e2fsprogs' resize2fs rebuilds).

use super::layout::Geometry;
use crate::block::BlockDevice;
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::error::{Error, Result};
use crate::ext4::inode::{I_BLOCK, I_BLOCKS, I_BLOCKS_HIGH};
use crate::ext4::Ext4;

/// The resize inode's number.
const RESIZE_INO: u32 = 7;
/// `EXT2_DIND_BLOCK`: the double-indirect slot of `i_block`.
const DIND_SLOT: usize = 13;

fn bad() -> Error {
    Error::Corrupt {
        what: "resize inode",
        at: u64::from(RESIZE_INO),
    }
}

/// The resize inode's layout for a geometry: which primaries, and their backup lists.
struct Reserve {
    /// Block of the superblock (1 with 1 KiB blocks, else 0).
    sb_blk: u64,
    desc_blocks: u64,
    reserved: u64,
    /// Backup groups below the group count, in order.
    backups: alloc::vec::Vec<u64>,
    blocks_per_group: u64,
    /// Entries per indirect block.
    apb: u64,
}

impl Reserve {
    fn new(geo: &Geometry, desc_blocks: u64, reserved: u64, groups: u64, bs: usize) -> Self {
        Reserve {
            sb_blk: geo.first_data_block,
            desc_blocks,
            reserved,
            backups: (1..groups).filter(|&g| geo.has_super(g)).collect(),
            blocks_per_group: geo.blocks_per_group,
            apb: (bs / 4) as u64,
        }
    }

    /// The `rsv`-th primary reserved block and its slot in the double-indirect block.
    fn primary(&self, rsv: u64) -> (u64, usize) {
        let blk = self.sb_blk + 1 + self.desc_blocks + rsv;
        (blk, ((self.desc_blocks + rsv) % self.apb) as usize)
    }

    /// `i_blocks` in 512-byte units: the double-indirect block, the primaries and their copies.
    fn i_blocks(&self, bs: usize) -> u64 {
        (1 + self.reserved * (1 + self.backups.len() as u64)) * (bs as u64 / 512)
    }
}

impl<D: BlockDevice> Ext4<D> {
    /// The resize inode's double-indirect block, after checking that the inode reserves the
    /// descriptor blocks as the old geometry says (so that no block is reused that the inode
    /// does not own: the disk is not trusted).
    pub(super) fn resize_inode_check(
        &mut self,
        geo: &Geometry,
        desc_blocks: u64,
        reserved: u64,
        groups: u64,
    ) -> Result<u64> {
        let bs = self.ctx.bs;
        let (blk, off) = self.inode_loc(RESIZE_INO)?;
        let raw = self.block(blk)?;
        let dind = u64::from(le32(raw, off + I_BLOCK + 4 * DIND_SLOT));
        if dind == 0 || dind >= self.ctx.blocks_count {
            return Err(bad());
        }
        let r = Reserve::new(geo, desc_blocks, reserved, groups, bs);
        if r.backups.len() as u64 > r.apb {
            return Err(bad());
        }
        for rsv in 0..reserved {
            let (p, slot) = r.primary(rsv);
            if u64::from(le32(self.block(dind)?, 4 * slot)) != p {
                return Err(bad());
            }
            let list = self.block(p)?;
            for (k, &g) in r.backups.iter().enumerate() {
                if u64::from(le32(list, 4 * k)) != p + g * r.blocks_per_group {
                    return Err(bad());
                }
            }
        }
        Ok(dind)
    }

    /// Bring the resize inode to the grown geometry: primaries that became descriptor
    /// blocks leave the double-indirect block, the new backup groups join every primary's
    /// list, and `i_blocks` counts what it owns. Blocks that do not change are not written.
    pub(super) fn resize_inode_grow(
        &mut self,
        dind: u64,
        old: (u64, u64, u64),
        new: (u64, u64, u64),
        geo: &Geometry,
    ) -> Result<()> {
        let bs = self.ctx.bs;
        let was = Reserve::new(geo, old.0, old.1, old.2, bs);
        let now = Reserve::new(geo, new.0, new.1, new.2, bs);
        if now.backups.len() as u64 > now.apb {
            return Err(bad());
        }
        for i in 0..new.0 - old.0 {
            let (_, slot) = was.primary(i);
            let d = self.block_mut(dind)?;
            put32(d, 4 * slot, 0);
        }
        if now.backups.len() > was.backups.len() {
            for rsv in 0..now.reserved {
                let (p, _) = now.primary(rsv);
                let list = self.block_mut(p)?;
                for (k, &g) in now.backups.iter().enumerate().skip(was.backups.len()) {
                    put32(list, 4 * k, (p + g * now.blocks_per_group) as u32);
                }
            }
        }
        let blocks = now.i_blocks(bs);
        let (blk, off) = self.inode_loc(RESIZE_INO)?;
        let raw = self.block(blk)?;
        let current =
            u64::from(le32(raw, off + I_BLOCKS)) | u64::from(le16(raw, off + I_BLOCKS_HIGH)) << 32;
        if blocks != current {
            self.patch_inode(RESIZE_INO, |raw| {
                put32(raw, I_BLOCKS, blocks as u32);
                put16(raw, I_BLOCKS_HIGH, (blocks >> 32) as u16);
            })?;
        }
        Ok(())
    }
}
