//! Block allocation with bitmaps: finding a free run near a goal, `BLOCK_UNINIT` groups, and
//! freeing.

use crate::block::BlockDevice;
use crate::ext4::allocate::{bit, set_bit, BG_BLOCK_UNINIT};
use crate::ext4::bytes::le16;
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::gdt::GdtLayout;
use crate::ext4::sb::s;
use crate::ext4::Ext4;
use alloc::vec;
use alloc::vec::Vec;

impl<D: BlockDevice> Ext4<D> {
    /// The block bitmap a `BLOCK_UNINIT` group stands for: its superblock backup, descriptor
    /// and reserved descriptor blocks, and every group's bitmaps and inode table that lie in
    /// it (bits past the group's end set). It must agree with the descriptor's free count.
    pub(crate) fn uninit_block_bitmap(&mut self, g: usize) -> Result<Vec<u8>> {
        let bs = self.ctx.bs;
        let gu = g as u64;
        let start = self.group_start(gu);
        let n = self.blocks_in_group(gu);
        let mut bm = vec![0u8; bs];
        let mark = |blk: u64, count: u64, bm: &mut [u8]| {
            // Only the part inside this group (bounds the loop whatever the descriptors say).
            for b in blk.max(start)..blk.saturating_add(count).min(start + n) {
                set_bit(bm, (b - start) as usize, true);
            }
        };
        let reserved = {
            let raw_sb = self.block((1024 / bs) as u64)?;
            u64::from(le16(raw_sb, 1024 % bs + s::RESERVED_GDT_BLOCKS))
        };
        // The superblock copy and descriptor blocks (with or without meta_bg).
        mark(
            start,
            GdtLayout::from_sb(&self.sb, reserved).overhead(gu),
            &mut bm,
        );
        let itb =
            (u64::from(self.sb.inodes_per_group) * self.ctx.inode_size as u64).div_ceil(bs as u64);
        for d in &self.groups {
            mark(d.block_bitmap, 1, &mut bm);
            mark(d.inode_bitmap, 1, &mut bm);
            mark(d.inode_table, itb, &mut bm);
        }
        let used = (0..n as usize).filter(|&i| bit(&bm, i)).count() as u64;
        for i in n as usize..bs * 8 {
            set_bit(&mut bm, i, true);
        }
        let gd = self.groups.get(g).copied().ok_or(Error::Corrupt {
            what: "group number",
            at: gu,
        })?;
        if n - used.min(n) != u64::from(gd.free_blocks) {
            return corrupt("uninitialized block group free count", gu);
        }
        Ok(bm)
    }

    /// Write the block bitmap of a `BLOCK_UNINIT` group ([`Ext4::uninit_block_bitmap`]) and
    /// clear the flag.
    fn init_block_bitmap(&mut self, g: usize) -> Result<()> {
        let bm = self.uninit_block_bitmap(g)?;
        let gd = self.groups.get(g).copied().ok_or(Error::Corrupt {
            what: "group number",
            at: g as u64,
        })?;
        let dst = self.block_new(gd.block_bitmap)?;
        dst.copy_from_slice(&bm);
        if let Some(d) = self.groups.get_mut(g) {
            d.flags &= !BG_BLOCK_UNINIT;
        }
        Ok(())
    }

    /// Allocate up to `max` contiguous blocks near `goal`: the run starting at `goal` when
    /// that block is free (so a file grows contiguously), else the first run of `max` free
    /// blocks after it (in the goal's group, then the following groups, wrapping around),
    /// else the longest free run there is (groups with fewer free blocks than the longest
    /// run found so far are skipped). Returns (first block, count ≥ 1).
    pub(crate) fn alloc_blocks(&mut self, goal: u64, max: u32) -> Result<(u64, u32)> {
        let ng = self.groups.len();
        if ng == 0 || self.sb.free_blocks_count == 0 {
            return Err(Error::NoSpace);
        }
        let max = max.max(1) as usize;
        let fdb = u64::from(self.sb.first_data_block);
        let bpg = u64::from(self.sb.blocks_per_group.max(1));
        let goal = if goal < fdb || goal >= self.ctx.blocks_count {
            fdb
        } else {
            goal
        };
        let g0 = (((goal - fdb) / bpg) as usize).min(ng - 1);
        let off0 = (goal - self.group_start(g0 as u64)) as usize;
        // The goal block itself.
        if self.groups.get(g0).is_some_and(|d| d.free_blocks > 0) {
            if self
                .groups
                .get(g0)
                .is_some_and(|d| d.flags & BG_BLOCK_UNINIT != 0)
            {
                self.init_block_bitmap(g0)?;
            }
            let n = self.blocks_in_group(g0 as u64) as usize;
            let bm = self.block(self.groups.get(g0).map_or(0, |d| d.block_bitmap))?;
            if off0 < n && !bit(bm, off0) {
                let mut len = 1usize;
                while len < max && off0 + len < n && !bit(bm, off0 + len) {
                    len += 1;
                }
                return self.take_run(g0, off0, len);
            }
        }
        // (group, first bit, end bit) segments in search order: the goal's group from the
        // goal on, the other groups, the goal's group before the goal.
        let mut best: Option<(usize, usize, usize)> = None;
        for k in 0..=ng {
            let g = (g0 + k) % ng;
            let Some(gd) = self.groups.get(g).copied() else {
                break;
            };
            let best_len = best.map_or(0, |b| b.2);
            if gd.free_blocks == 0 || (gd.free_blocks as usize) <= best_len {
                continue;
            }
            if gd.flags & BG_BLOCK_UNINIT != 0 {
                self.init_block_bitmap(g)?;
            }
            let n = self.blocks_in_group(g as u64) as usize;
            let (from, to) = match k {
                0 => (off0.min(n), n),
                k if k == ng => (0, off0.min(n)),
                _ => (0, n),
            };
            let bm = self.block(gd.block_bitmap)?;
            let mut i = from;
            let mut seen_free = false;
            while i < to {
                // Whole used bytes at once.
                if i % 8 == 0 && i + 8 <= to && bm.get(i / 8) == Some(&0xFF) {
                    i += 8;
                    continue;
                }
                if bit(bm, i) {
                    i += 1;
                    continue;
                }
                seen_free = true;
                let mut len = 1usize;
                while len < max && i + len < to && !bit(bm, i + len) {
                    len += 1;
                }
                if len >= max {
                    return self.take_run(g, i, len);
                }
                if best.is_none_or(|b| len > b.2) {
                    best = Some((g, i, len));
                }
                i += len;
            }
            if !seen_free && from == 0 && to == n {
                return corrupt("block bitmap free count", g as u64);
            }
        }
        match best {
            Some((g, i, len)) => self.take_run(g, i, len),
            None => Err(Error::NoSpace),
        }
    }

    /// Mark `len` blocks from bit `i` of group `g` in use (bitmap, checksums, free counts).
    fn take_run(&mut self, g: usize, i: usize, len: usize) -> Result<(u64, u32)> {
        let gd = self.groups.get(g).copied().ok_or(Error::Corrupt {
            what: "group number",
            at: g as u64,
        })?;
        let bm = self.block_mut(gd.block_bitmap)?;
        for j in i..i + len {
            set_bit(bm, j, true);
        }
        let c = self.block_bitmap_csum(&gd)?;
        if let Some(d) = self.groups.get_mut(g) {
            d.free_blocks = d.free_blocks.saturating_sub(len as u32);
        }
        self.store_gd(g, Some(c), None)?;
        self.adjust_sb(-(len as i64), 0)?;
        Ok((self.group_start(g as u64) + i as u64, len as u32))
    }

    pub(crate) fn free_blocks(&mut self, first: u64, count: u64) -> Result<()> {
        let bpg = u64::from(self.sb.blocks_per_group.max(1));
        let fdb = u64::from(self.sb.first_data_block);
        let mut b = first;
        let end = first.saturating_add(count);
        while b < end {
            if b < fdb || b >= self.ctx.blocks_count {
                return corrupt("block to free", b);
            }
            let g = ((b - fdb) / bpg) as usize;
            let start = self.group_start(g as u64);
            let stop = end.min(start + bpg);
            let gd = self.groups.get(g).copied().ok_or(Error::Corrupt {
                what: "group number",
                at: g as u64,
            })?;
            let bm = self.block_mut(gd.block_bitmap)?;
            for x in b..stop {
                let i = (x - start) as usize;
                if !bit(bm, i) {
                    return corrupt("freeing a free block", x);
                }
                set_bit(bm, i, false);
            }
            let c = self.block_bitmap_csum(&gd)?;
            if let Some(d) = self.groups.get_mut(g) {
                d.free_blocks = d.free_blocks.saturating_add((stop - b) as u32);
            }
            self.store_gd(g, Some(c), None)?;
            self.adjust_sb((stop - b) as i64, 0)?;
            for x in b..stop {
                self.cache.invalidate(x);
                self.dirty_data.remove(&x);
            }
            self.journal_note_freed(b, stop - b);
            b = stop;
        }
        Ok(())
    }
}
