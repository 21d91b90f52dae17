//! Carrying out a [`Plan`]: the superblock counts, the descriptor blocks taken from the
//! reserve, the new descriptors and bitmaps, the old groups' bitmaps, the resize inode and
//! the backup copies. Everything goes into the block cache; the caller's `sync` makes it
//! one journal transaction. Blocks outside the old file system (the new groups' bitmaps,
//! the copies in new backup groups) are written in place before the transaction, as ordered
//! file data is: until the commit no committed metadata points at them.

use super::plan::Plan;
use crate::block::BlockDevice;
use crate::ext4::bytes::{le32, put16, put32};
use crate::ext4::error::{Error, Result};
use crate::ext4::sb::{bg, s, GroupDesc, SUPERBLOCK_OFFSET};
use crate::ext4::{sb, Ctx, Ext4};
use alloc::vec;

impl<D: BlockDevice> Ext4<D> {
    /// Apply `plan` (checked beforehand: nothing here refuses on the plan's account).
    pub(super) fn apply_grow(&mut self, plan: &Plan, dind: Option<u64>) -> Result<()> {
        let geo = &plan.geo;
        let reserved_old = plan.reserved_gdt + plan.desc_blocks - plan.desc_blocks_old;
        // 1. The superblock, and the engine's view of the size.
        self.patch_sb(|raw| {
            put32(raw, s::BLOCKS_COUNT, geo.blocks_count as u32);
            put32(raw, s::BLOCKS_COUNT_HI, (geo.blocks_count >> 32) as u32);
            put32(raw, s::R_BLOCKS_COUNT, plan.r_blocks as u32);
            put32(raw, s::R_BLOCKS_COUNT_HI, (plan.r_blocks >> 32) as u32);
            put32(raw, s::FREE_BLOCKS, plan.free_blocks as u32);
            put32(raw, s::FREE_BLOCKS_HI, (plan.free_blocks >> 32) as u32);
            put32(raw, s::INODES_COUNT, plan.inodes_count);
            put32(raw, s::FREE_INODES, plan.free_inodes);
            put16(raw, s::RESERVED_GDT_BLOCKS, plan.reserved_gdt as u16);
            // As resize2fs: Linux computes the overhead again at mount.
            put32(raw, s::OVERHEAD_CLUSTERS, 0);
        })?;
        self.sb.blocks_count = geo.blocks_count;
        self.sb.r_blocks_count = plan.r_blocks;
        self.sb.free_blocks_count = plan.free_blocks;
        self.sb.inodes_count = plan.inodes_count;
        self.sb.free_inodes_count = plan.free_inodes;
        self.ctx = Ctx::new(&self.sb);
        // 2. New descriptor blocks start empty: reserved blocks of the old file system
        // (journalled), or meta_bg blocks in new groups (written in place before the commit).
        for d in plan.desc_blocks_old..plan.desc_blocks {
            let at = geo.gdt.primary(d);
            if at < plan.old_blocks {
                self.block_mut(at)?.fill(0);
            } else {
                self.dirty_data.insert(at);
                self.block_new(at)?;
            }
        }
        // 3. Old groups: the last one extended, those that took new tables.
        for (&g, og) in &plan.old {
            let gd = self.group(g)?;
            let mut c = None;
            if let Some(bitmap) = &og.bitmap {
                let dst = self.block_mut(gd.block_bitmap)?;
                dst.copy_from_slice(bitmap.get(..dst.len()).ok_or(Error::Corrupt {
                    what: "block bitmap",
                    at: gd.block_bitmap,
                })?);
                c = Some(self.block_bitmap_csum(g as usize, &gd)?);
            }
            let d = self.group_mut(g)?;
            d.free_blocks = d
                .free_blocks
                .checked_add_signed(og.free_delta as i32)
                .ok_or(Error::Corrupt {
                    what: "group free block count",
                    at: g,
                })?;
            d.flags = og.flags;
            self.store_gd(g as usize, c, None)?;
        }
        if let Some((g, delta)) = plan.uninit_extend {
            let d = self.group_mut(g)?;
            d.free_blocks =
                d.free_blocks
                    .checked_add_signed(delta as i32)
                    .ok_or(Error::Corrupt {
                        what: "group free block count",
                        at: g,
                    })?;
            self.store_gd(g as usize, None, None)?;
        }
        // 4. New groups: bitmaps (ordered, new blocks), then their descriptors.
        let bs = self.ctx.bs;
        let ipg = self.sb.inodes_per_group as usize;
        for (k, ng) in plan.new.iter().enumerate() {
            let g = plan.old_groups + k as u64;
            let gd = GroupDesc {
                block_bitmap: ng.tables.block_bitmap,
                inode_bitmap: ng.tables.inode_bitmap,
                inode_table: ng.tables.inode_table,
                free_blocks: ng.free_blocks,
                free_inodes: ng.free_inodes,
                used_dirs: 0,
                flags: ng.flags,
                itable_unused: ng.itable_unused,
            };
            self.groups.push(gd);
            let mut bb_csum = None;
            if let Some(bm) = &ng.bitmap {
                self.block_new(gd.block_bitmap)?.copy_from_slice(bm);
                self.dirty_data.insert(gd.block_bitmap);
                bb_csum = Some(self.block_bitmap_csum(g as usize, &gd)?);
            }
            if plan.zero_tables {
                // No uninit flags: the inode bitmap is written (padding past the inodes set)
                // and the inode table zeroed.
                let ib = self.block_new(gd.inode_bitmap)?;
                for i in ipg..bs * 8 {
                    crate::ext4::allocate::set_bit(ib, i, true);
                }
                self.dirty_data.insert(gd.inode_bitmap);
                self.zero_blocks(gd.inode_table, geo.inode_table_blocks)?;
            }
            self.write_new_desc(g, &gd, bb_csum)?;
        }
        // 5. The resize inode, then the copies (of the final superblock and descriptors).
        if let Some(dind) = dind {
            self.resize_inode_grow(
                dind,
                (plan.desc_blocks_old, reserved_old, plan.old_groups),
                (plan.desc_blocks, plan.reserved_gdt, geo.groups),
                geo,
            )?;
        }
        self.write_backups(plan)
    }

    fn group(&self, g: u64) -> Result<GroupDesc> {
        self.groups.get(g as usize).copied().ok_or(Error::Corrupt {
            what: "group number",
            at: g,
        })
    }

    fn group_mut(&mut self, g: u64) -> Result<&mut GroupDesc> {
        self.groups.get_mut(g as usize).ok_or(Error::Corrupt {
            what: "group number",
            at: g,
        })
    }

    /// Write a new group's descriptor whole: its locations here, the rest by `store_gd`.
    fn write_new_desc(&mut self, g: u64, gd: &GroupDesc, bb_csum: Option<u32>) -> Result<()> {
        let ds = usize::from(self.sb.desc_size);
        let (blk, off) = self.desc_location(g as usize);
        let d = self
            .block_mut(blk)?
            .get_mut(off..off + ds)
            .ok_or(Error::Corrupt {
                what: "group descriptor",
                at: g,
            })?;
        d.fill(0);
        put32(d, bg::BLOCK_BITMAP, gd.block_bitmap as u32);
        put32(d, bg::INODE_BITMAP, gd.inode_bitmap as u32);
        put32(d, bg::INODE_TABLE, gd.inode_table as u32);
        if ds >= 64 {
            put32(d, bg::BLOCK_BITMAP_HI, (gd.block_bitmap >> 32) as u32);
            put32(d, bg::INODE_BITMAP_HI, (gd.inode_bitmap >> 32) as u32);
            put32(d, bg::INODE_TABLE_HI, (gd.inode_table >> 32) as u32);
        }
        self.store_gd(g as usize, bb_csum, None)
    }

    /// Zero `count` blocks from `first` on the device directly (new inode tables: outside the
    /// old file system, and too many to hold in the cache).
    fn zero_blocks(&mut self, first: u64, count: u64) -> Result<()> {
        let bs = self.ctx.bs as u64;
        let ss = u64::from(self.dev.sector_size().max(1));
        let chunk = 64u64;
        let zeros = vec![0u8; (chunk * bs) as usize];
        let mut b = first;
        while b < first + count {
            let n = chunk.min(first + count - b);
            let lba = b.checked_mul(bs / ss).ok_or(Error::Corrupt {
                what: "block number",
                at: b,
            })?;
            self.dev
                .write(lba, zeros.get(..(n * bs) as usize).unwrap_or(&[]), false)?;
            b += n;
        }
        Ok(())
    }

    /// The superblock as its copies in the backup groups hold it (e2fsprogs' way: not
    /// marked clean, no `needs_recovery`; the group number and checksum set per copy).
    pub(super) fn sb_copy_template(&mut self) -> Result<alloc::vec::Vec<u8>> {
        let bs = self.ctx.bs;
        let b = self.block((SUPERBLOCK_OFFSET as usize / bs) as u64)?;
        let at = SUPERBLOCK_OFFSET as usize % bs;
        let mut copy = b
            .get(at..at + 1024)
            .ok_or(Error::BadSuperblock {
                what: "superblock location",
            })?
            .to_vec();
        let inc = le32(&copy, s::FEATURE_INCOMPAT);
        put32(&mut copy, s::FEATURE_INCOMPAT, inc & !sb::INCOMPAT_RECOVER);
        let state = crate::ext4::bytes::le16(&copy, s::STATE);
        put16(&mut copy, s::STATE, state & !1);
        Ok(copy)
    }

    /// Write the superblock copy of backup group `g` from `copy` (a template): journalled
    /// in an old group, in place before the commit in a new one (`fresh`).
    pub(super) fn put_sb_copy(&mut self, g: u64, copy: &mut [u8], fresh: bool) -> Result<()> {
        let start = u64::from(self.sb.first_data_block) + g * u64::from(self.sb.blocks_per_group);
        put16(copy, s::BLOCK_GROUP_NR, g.min(0xFFFF) as u16);
        if self.ctx.csum {
            let c = crate::crc::crc32c_raw(!0, copy.get(..s::CHECKSUM).unwrap_or(&[]));
            put32(copy, s::CHECKSUM, c);
        }
        let dst = if fresh {
            self.dirty_data.insert(start);
            self.block_new(start)?
        } else {
            self.block_mut(start)?
        };
        if let Some(d) = dst.get_mut(..1024) {
            d.copy_from_slice(copy);
        }
        Ok(())
    }

    /// Superblock and descriptor copies in the backup groups, as e2fsprogs writes them: the
    /// superblock in every backup group; every descriptor copy in a new group, the copies
    /// of the changed descriptor blocks in old ones (classic copies after each superblock
    /// copy, meta_bg copies in the second and last group of their meta group).
    fn write_backups(&mut self, plan: &Plan) -> Result<()> {
        let geo = &plan.geo;
        let mut copy = self.sb_copy_template()?;
        let backups = geo.gdt.backup_groups(geo.groups);
        for &g in &backups {
            self.put_sb_copy(g, &mut copy, g >= plan.old_groups)?;
        }
        for d in 0..plan.desc_blocks {
            let copies = geo.gdt.copies(d, geo.groups, &backups);
            if d < plan.first_changed_desc && copies.iter().all(|&(g, _)| g < plan.old_groups) {
                continue;
            }
            let src = self.block(geo.gdt.primary(d))?.to_vec();
            for (g, at) in copies {
                let fresh = g >= plan.old_groups;
                if !fresh && d < plan.first_changed_desc {
                    continue;
                }
                let dst = if fresh {
                    self.dirty_data.insert(at);
                    self.block_new(at)?
                } else {
                    self.block_mut(at)?
                };
                dst.copy_from_slice(&src);
            }
        }
        Ok(())
    }
}
