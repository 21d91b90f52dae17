//! Inode allocation: [`Ext4::alloc_inode`] and [`Ext4::free_inode`] with the inode bitmaps,
//! free and directory counts, `INODE_UNINIT` groups and `itable_unused`.
//!
//! Where new inodes go (an Orlov-like policy, as Linux's `find_group_orlov`/`find_group_other`,
//! per block group): top-level directories are spread over the groups with at least the
//! average free inodes and free blocks, preferring the fewest directories; other directories
//! stay in their parent's group (or the next one) while it has no more than its share of
//! directories and not much less than the average free space; files go to their parent's
//! group, or the next one with free inodes and blocks. The file's data follows its inode (the
//! block goal is its group), so a directory tree stays together and separate trees apart.

use crate::block::BlockDevice;
use crate::ext4::allocate::bitmaps::{refused_for_checksum, Bitmap};
use crate::ext4::allocate::{bit, set_bit, BG_INODE_UNINIT};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::{Ext4, Ino, ROOT_INO};

impl<D: BlockDevice> Ext4<D> {
    /// The group to look for a free inode in first, for a child (`dir` or not) of `parent`.
    pub(crate) fn inode_group(&self, dir: bool, parent: Ino) -> usize {
        let ng = self.groups.len();
        if ng <= 1 {
            return 0;
        }
        let ipg = self.sb.inodes_per_group.max(1);
        let bpg = self.sb.blocks_per_group.max(1);
        let pg = ((parent.saturating_sub(1) / ipg) as usize).min(ng - 1);
        let n = ng as u64;
        let free_i: u64 = self.groups.iter().map(|g| u64::from(g.free_inodes)).sum();
        let free_b: u64 = self.groups.iter().map(|g| u64::from(g.free_blocks)).sum();
        let dirs: u64 = self.groups.iter().map(|g| u64::from(g.used_dirs)).sum();
        let (avg_i, avg_b) = (free_i / n, free_b / n);
        let at = |k: usize| (pg + k) % ng;
        if dir && parent == ROOT_INO {
            // Start somewhere that changes with every allocation, then take the group with
            // the fewest directories among those with at least average free space.
            let start = ((u64::from(self.sb.free_inodes_count) ^ (self.clock.sec as u64))
                .wrapping_mul(2_654_435_761)
                >> 7) as usize
                % ng;
            let mut best: Option<(usize, u32)> = None;
            for k in 0..ng {
                let g = (start + k) % ng;
                let Some(d) = self.groups.get(g) else {
                    continue;
                };
                if d.free_inodes == 0
                    || u64::from(d.free_inodes) < avg_i
                    || u64::from(d.free_blocks) < avg_b
                {
                    continue;
                }
                if best.is_none_or(|(_, u)| d.used_dirs < u) {
                    best = Some((g, d.used_dirs));
                }
            }
            if let Some((g, _)) = best {
                return g;
            }
        } else if dir {
            let max_dirs = dirs / n + u64::from(ipg / 16);
            let min_i = avg_i.saturating_sub(u64::from(ipg / 4)).max(1);
            let min_b = avg_b.saturating_sub(u64::from(bpg / 4));
            for k in 0..ng {
                let g = at(k);
                if self.groups.get(g).is_some_and(|d| {
                    u64::from(d.used_dirs) < max_dirs
                        && u64::from(d.free_inodes) >= min_i
                        && u64::from(d.free_blocks) >= min_b
                }) {
                    return g;
                }
            }
        } else {
            for k in 0..ng {
                let g = at(k);
                if self
                    .groups
                    .get(g)
                    .is_some_and(|d| d.free_inodes > 0 && d.free_blocks > 0)
                {
                    return g;
                }
            }
        }
        (0..ng)
            .map(at)
            .find(|&g| self.groups.get(g).is_some_and(|d| d.free_inodes > 0))
            .unwrap_or(pg)
    }

    /// Allocate an inode for a child of `parent`, in the group the spreading policy picks
    /// (see [`Ext4::inode_group`]), else the next group with a free inode (groups whose inode
    /// bitmap failed its checksum skipped; that refusal is the error when no group is left).
    pub(crate) fn alloc_inode(&mut self, dir: bool, parent: Ino) -> Result<Ino> {
        let ipg = self.sb.inodes_per_group;
        let first_ino = self.sb.first_ino.max(11);
        let ng = self.groups.len();
        let g0 = self.inode_group(dir, parent);
        let mut refused = None;
        for k in 0..ng {
            let g = (g0 + k) % ng;
            let Some(gd) = self.groups.get(g).copied() else {
                break;
            };
            if gd.free_inodes == 0 {
                continue;
            }
            if gd.flags & BG_INODE_UNINIT != 0 {
                let bs = self.ctx.bs;
                let bm = self.block_new(gd.inode_bitmap)?;
                for i in ipg as usize..bs * 8 {
                    set_bit(bm, i, true);
                }
                if let Some(d) = self.groups.get_mut(g) {
                    d.flags &= !BG_INODE_UNINIT;
                }
            } else {
                match self.verify_bitmap(g, Bitmap::Inode) {
                    Ok(()) => {}
                    Err(e) if refused_for_checksum(&e, Bitmap::Inode) => {
                        refused.get_or_insert(e);
                        continue;
                    }
                    Err(e) => return Err(e),
                }
            }
            let base = g as u64 * u64::from(ipg);
            let count = u64::from(self.ctx.inodes_count);
            let bm = self.block(gd.inode_bitmap)?;
            let found = (0..ipg).find(|&i| {
                let ino = base + u64::from(i) + 1;
                ino >= u64::from(first_ino) && ino <= count && !bit(bm, i as usize)
            });
            let Some(i) = found else {
                return corrupt("inode bitmap free count", g as u64);
            };
            let bm = self.block_mut(gd.inode_bitmap)?;
            set_bit(bm, i as usize, true);
            let c = self.inode_bitmap_csum(g, &gd)?;
            if let Some(d) = self.groups.get_mut(g) {
                d.free_inodes = d.free_inodes.saturating_sub(1);
                if dir {
                    d.used_dirs = d.used_dirs.saturating_add(1);
                }
                let used_hw = ipg.saturating_sub(d.itable_unused);
                if i >= used_hw {
                    d.itable_unused = ipg - i - 1;
                }
            }
            self.store_gd(g, None, Some(c))?;
            self.adjust_sb(0, -1)?;
            return Ino::try_from(base + u64::from(i) + 1).map_err(|_| Error::NoSpace);
        }
        Err(refused.unwrap_or(Error::NoSpace))
    }

    pub(crate) fn free_inode(&mut self, ino: Ino, dir: bool) -> Result<()> {
        let ipg = self.sb.inodes_per_group.max(1);
        let g = ((ino - 1) / ipg) as usize;
        let i = ((ino - 1) % ipg) as usize;
        let gd = self.groups.get(g).copied().ok_or(Error::BadInode { ino })?;
        if gd.flags & BG_INODE_UNINIT != 0 {
            return corrupt(
                "freeing an inode of a group with no inode in use",
                u64::from(ino),
            );
        }
        match self.verify_bitmap(g, Bitmap::Inode) {
            Ok(()) => {}
            Err(e) if refused_for_checksum(&e, Bitmap::Inode) => {
                // Left marked in use, as Linux does (see `free_blocks`).
                log::warn!("ext4: inode {ino} not freed: group {g}'s inode bitmap is refused");
                return Ok(());
            }
            Err(e) => return Err(e),
        }
        let bm = self.block_mut(gd.inode_bitmap)?;
        if !bit(bm, i) {
            return corrupt("freeing a free inode", u64::from(ino));
        }
        set_bit(bm, i, false);
        let c = self.inode_bitmap_csum(g, &gd)?;
        if let Some(d) = self.groups.get_mut(g) {
            d.free_inodes = d.free_inodes.saturating_add(1);
            if dir {
                d.used_dirs = d.used_dirs.saturating_sub(1);
            }
        }
        self.store_gd(g, None, Some(c))?;
        self.adjust_sb(0, 1)
    }
}
