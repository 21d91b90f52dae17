//! Block allocation with bitmaps: finding a free run near a goal, `BLOCK_UNINIT` groups, and
//! freeing.

use crate::block::BlockDevice;
use crate::ext4::allocate::bitmaps::{refused_for_checksum, Bitmap};
use crate::ext4::allocate::{bit, set_bit, BG_BLOCK_UNINIT};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::gdt::GdtLayout;
use crate::ext4::Ext4;
use alloc::vec;
use alloc::vec::Vec;

/// What an allocation that a bitmap offered inside the metadata reports.
const METADATA_MARKED_FREE: &str = "block bitmap: metadata block marked free";

/// How many such runs one allocation claims ([`Ext4::alloc_blocks`]) before it reports one.
const MAX_CLAIMS: usize = 16;

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
        let reserved = self.reserved_gdt_blocks()?;
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
        let c = self.block_bitmap_csum(g, &gd)?;
        self.store_gd(g, Some(c), None)
    }

    /// Group `g`'s block bitmap, ready to be read for a change: written out first if the
    /// group's flag says it is not there, else verified against its checksum.
    fn ready_block_bitmap(&mut self, g: usize) -> Result<()> {
        if self
            .groups
            .get(g)
            .is_some_and(|d| d.flags & BG_BLOCK_UNINIT != 0)
        {
            self.init_block_bitmap(g)
        } else {
            self.verify_bitmap(g, Bitmap::Block)
        }
    }

    /// [`ready_block_bitmap`](Self::ready_block_bitmap), or `false` for a bitmap refused for
    /// its checksum (the first refusal kept in `refused`, for when no group is left).
    fn usable_block_bitmap(&mut self, g: usize, refused: &mut Option<Error>) -> Result<bool> {
        match self.ready_block_bitmap(g) {
            Ok(()) => Ok(true),
            Err(e) if refused_for_checksum(&e, Bitmap::Block) => {
                refused.get_or_insert(e);
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }

    /// Allocate up to `max` contiguous blocks near `goal` ([`alloc_run`](Self::alloc_run)).
    /// A run that a lying bitmap offered inside the metadata is claimed (its metadata blocks
    /// marked in use, as Linux does) and the search made again, up to [`MAX_CLAIMS`] times.
    pub(crate) fn alloc_blocks(&mut self, goal: u64, max: u32) -> Result<(u64, u32)> {
        let mut claims = 0;
        loop {
            match self.alloc_run(goal, max) {
                Err(Error::Corrupt {
                    what: METADATA_MARKED_FREE,
                    ..
                }) if claims < MAX_CLAIMS => claims += 1,
                r => return r,
            }
        }
    }

    /// The run starting at `goal` when that block is free (so a file grows contiguously),
    /// else the first run of `max` free blocks after it (in the goal's group, then the
    /// following groups, wrapping around), else the longest free run there is (groups with
    /// fewer free blocks than the longest run found so far are skipped; so are groups whose
    /// bitmap failed its checksum). Returns (first block, count ≥ 1).
    fn alloc_run(&mut self, goal: u64, max: u32) -> Result<(u64, u32)> {
        let ng = self.groups.len();
        if ng == 0 || self.sb.free_blocks_count == 0 {
            return Err(Error::NoSpace);
        }
        let mut refused = None;
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
        if self.groups.get(g0).is_some_and(|d| d.free_blocks > 0)
            && self.usable_block_bitmap(g0, &mut refused)?
        {
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
            if !self.usable_block_bitmap(g, &mut refused)? {
                continue;
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
            None => Err(refused.unwrap_or(Error::NoSpace)),
        }
    }

    /// Mark `len` blocks from bit `i` of group `g` in use (bitmap, checksums, free counts).
    /// A run that reaches into the file system's metadata (a bitmap that lies) is refused.
    fn take_run(&mut self, g: usize, i: usize, len: usize) -> Result<(u64, u32)> {
        let gd = self.groups.get(g).copied().ok_or(Error::Corrupt {
            what: "group number",
            at: g as u64,
        })?;
        let first = self.group_start(g as u64) + i as u64;
        if let Some(b) = self.zone.first_in(first, len as u64) {
            self.claim_metadata(g, first, len as u64)?;
            return corrupt(METADATA_MARKED_FREE, b);
        }
        let bm = self.block_mut(gd.block_bitmap)?;
        for j in i..i + len {
            set_bit(bm, j, true);
        }
        let c = self.block_bitmap_csum(g, &gd)?;
        if let Some(d) = self.groups.get_mut(g) {
            d.free_blocks = d.free_blocks.saturating_sub(len as u32);
        }
        self.store_gd(g, Some(c), None)?;
        self.adjust_sb(-(len as i64), 0)?;
        Ok((first, len as u32))
    }

    /// Mark in use the blocks of the system zone among the `len` free ones from `first` in
    /// group `g` (a bitmap that lies about the metadata), so that no allocation offers them
    /// again. The group's free count is then counted from its bitmap (a count that lied with
    /// the bitmap is corrected; one that was right stays), with the superblock's.
    fn claim_metadata(&mut self, g: usize, first: u64, len: u64) -> Result<()> {
        let gd = self.groups.get(g).copied().ok_or(Error::Corrupt {
            what: "group number",
            at: g as u64,
        })?;
        let start = self.group_start(g as u64);
        let n = self.blocks_in_group(g as u64) as usize;
        let meta: Vec<u64> = (first..first.saturating_add(len))
            .filter(|&b| self.zone.first_in(b, 1).is_some())
            .collect();
        let bm = self.block_mut(gd.block_bitmap)?;
        for &b in &meta {
            set_bit(bm, (b - start) as usize, true);
        }
        let free = (0..n).filter(|&i| !bit(bm, i)).count() as u32;
        let c = self.block_bitmap_csum(g, &gd)?;
        if let Some(d) = self.groups.get_mut(g) {
            d.free_blocks = free;
        }
        self.store_gd(g, Some(c), None)?;
        self.adjust_sb(i64::from(free) - i64::from(gd.free_blocks), 0)?;
        log::warn!(
            "ext4: group {g}'s block bitmap marked {} metadata blocks from {first} free; \
             marked in use",
            meta.len()
        );
        Ok(())
    }

    /// Mark blocks `b..stop` of group `g` free (bitmap, checksums, free counts); each must be
    /// in use.
    fn clear_run(&mut self, g: usize, b: u64, stop: u64) -> Result<()> {
        let start = self.group_start(g as u64);
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
        let c = self.block_bitmap_csum(g, &gd)?;
        if let Some(d) = self.groups.get_mut(g) {
            d.free_blocks = d.free_blocks.saturating_add((stop - b) as u32);
        }
        self.store_gd(g, Some(c), None)?;
        self.adjust_sb((stop - b) as i64, 0)
    }

    /// Give back `count` blocks from `first`: outside the system zone, each in use. In a group
    /// whose bitmap is refused they stay marked in use (leaked until `e2fsck`).
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
            if let Some(m) = self.zone.first_in(b, stop - b) {
                return corrupt("freeing a metadata block", m);
            }
            let mut unused = None;
            if self.usable_block_bitmap(g, &mut unused)? {
                self.clear_run(g, b, stop)?;
            } else {
                // As Linux does, the run is left marked in use in a bitmap that nothing
                // allocates from this mount (`e2fsck` gives it back), and the file that held
                // it loses it all the same: a refused bitmap costs space, not operations.
                log::warn!(
                    "ext4: blocks {b}..{stop} not freed: group {g}'s block bitmap is refused"
                );
            }
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
