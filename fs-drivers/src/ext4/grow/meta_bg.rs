//! Converting a file system to `meta_bg` when its descriptor blocks cannot grow where they
//! are, as Linux's online resize does (`ext4_convert_meta_bg`): `s_first_meta_bg` set to the
//! current number of descriptor blocks, `resize_inode` off and `meta_bg` on, and the resize
//! inode (whose reserve the grow used up first) emptied: its double-indirect block freed,
//! `i_blocks` zero. Descriptor blocks from then on live in their meta groups
//! (`crate::ext4::gdt`), and the superblock copies. Part of the converting grow's one journal
//! transaction, or a transaction of its own when the grow goes in steps (see `super`).

use crate::block::BlockDevice;
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::error::{Error, Result};
use crate::ext4::inode::{I_BLOCK, I_BLOCKS, I_BLOCKS_HIGH};
use crate::ext4::sb::s;
use crate::ext4::{sb, Ext4};

/// The resize inode's number.
const RESIZE_INO: u32 = 7;
/// `EXT2_DIND_BLOCK`: the double-indirect slot of `i_block`.
const DIND_SLOT: usize = 13;
/// Slots of `i_block`.
const N_BLOCKS: usize = 15;

fn bad() -> Error {
    Error::Corrupt {
        what: "resize inode (meta_bg conversion)",
        at: u64::from(RESIZE_INO),
    }
}

impl<D: BlockDevice> Ext4<D> {
    /// The resize inode's double-indirect block, checked to be all it owns: no reserved
    /// descriptor blocks left, no other block, `i_blocks` one block (Linux's checks).
    fn emptied_resize_inode(&mut self) -> Result<u64> {
        if self.reserved_gdt()? != 0 {
            return Err(bad());
        }
        let bs = self.ctx.bs;
        let (blk, off) = self.inode_loc(RESIZE_INO)?;
        let raw = self.block(blk)?;
        let mut dind = 0;
        for slot in 0..N_BLOCKS {
            let v = u64::from(le32(raw, off + I_BLOCK + 4 * slot));
            match (slot == DIND_SLOT, v) {
                (true, 0) => return Err(bad()),
                (true, v) => dind = v,
                (false, 0) => {}
                (false, _) => return Err(bad()),
            }
        }
        let i_blocks =
            u64::from(le32(raw, off + I_BLOCKS)) | u64::from(le16(raw, off + I_BLOCKS_HIGH)) << 32;
        if i_blocks != bs as u64 / 512 || dind >= self.ctx.blocks_count {
            return Err(bad());
        }
        Ok(dind)
    }

    /// Convert to `meta_bg` in memory (the caller commits). Called on a journalled file
    /// system without `meta_bg` whose reserve (if any) is used up. The double-indirect block
    /// is freed in the running transaction: nothing written in place before its commit may
    /// take it (see `plan`'s placement).
    pub(super) fn apply_meta_bg(&mut self) -> Result<()> {
        let resize = self.sb.feature_compat & sb::COMPAT_RESIZE_INODE != 0;
        let dind = if resize {
            Some(self.emptied_resize_inode()?)
        } else {
            None
        };
        let per = (self.ctx.bs / usize::from(self.sb.desc_size).max(1)).max(1) as u64;
        let first_meta_bg =
            u32::try_from((self.groups.len() as u64).div_ceil(per)).map_err(|_| bad())?;
        log::info!("ext4: converting to meta_bg (first meta group {first_meta_bg})");
        self.patch_sb(|raw| {
            let compat = le32(raw, s::FEATURE_COMPAT) & !sb::COMPAT_RESIZE_INODE;
            put32(raw, s::FEATURE_COMPAT, compat);
            let incompat = le32(raw, s::FEATURE_INCOMPAT) | sb::INCOMPAT_META_BG;
            put32(raw, s::FEATURE_INCOMPAT, incompat);
            put32(raw, s::FIRST_META_BG, first_meta_bg);
        })?;
        self.sb.feature_compat &= !sb::COMPAT_RESIZE_INODE;
        self.sb.first_meta_bg = first_meta_bg;
        if let Some(dind) = dind {
            self.free_blocks(dind, 1)?;
            self.patch_inode(RESIZE_INO, |raw| {
                put32(raw, I_BLOCK + 4 * DIND_SLOT, 0);
                put32(raw, I_BLOCKS, 0);
                put16(raw, I_BLOCKS_HIGH, 0);
            })?;
        }
        // The superblock copies carry the new features too.
        let mut copy = self.sb_copy_template()?;
        let gdt = crate::ext4::gdt::GdtLayout::from_sb(&self.sb, 0);
        for g in gdt.backup_groups(self.groups.len() as u64) {
            self.put_sb_copy(g, &mut copy, false)?;
        }
        Ok(())
    }

    /// Convert to `meta_bg` as a transaction of its own, with no transaction running.
    pub(super) fn convert_to_meta_bg(&mut self) -> Result<()> {
        self.commit_or_undo(|fs| fs.apply_meta_bg())
    }
}
