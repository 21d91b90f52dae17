//! The system zone: the blocks the file system's own metadata occupies (superblock copies,
//! descriptor and reserved descriptor blocks, bitmaps, inode tables and the journal), as
//! Linux's `block_validity` keeps them. No file may map a block of it and the allocator never
//! hands one out, so an image whose bitmaps or extents lie cannot have file data written over
//! its metadata (`Ext4::check_phys`, `Ext4::alloc_blocks`, `Ext4::free_blocks`).
//!
//! Built when the file system is mounted (the journal found through its inode), again when
//! the journal is loaded for writing and after a grow. Held as sorted, disjoint, merged
//! runs: with `flex_bg` a few runs per flex group, without it at most four per group.

use crate::block::BlockDevice;
use crate::ext4::bytes::le16;
use crate::ext4::error::Result;
use crate::ext4::gdt::GdtLayout;
use crate::ext4::sb::{self, s, SUPERBLOCK_OFFSET};
use crate::ext4::{Ext4, Ino};
use alloc::vec::Vec;

/// Sorted, disjoint runs of metadata blocks: (first block, end block exclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SystemZone {
    runs: Vec<(u64, u64)>,
}

impl SystemZone {
    /// The zone made of `runs` (in any order, overlapping or not; empty ones ignored).
    pub(crate) fn new(mut runs: Vec<(u64, u64)>) -> Self {
        runs.retain(|&(a, b)| a < b);
        runs.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(runs.len());
        for (a, b) in runs {
            match merged.last_mut() {
                Some(last) if a <= last.1 => last.1 = last.1.max(b),
                _ => merged.push((a, b)),
            }
        }
        merged.shrink_to_fit();
        SystemZone { runs: merged }
    }

    /// The first block of `len` blocks from `start` that lies in the zone, if any.
    pub(crate) fn first_in(&self, start: u64, len: u64) -> Option<u64> {
        let end = start.saturating_add(len);
        let i = self.runs.partition_point(|&(_, b)| b <= start);
        self.runs
            .get(i)
            .filter(|&&(a, _)| a < end)
            .map(|&(a, _)| a.max(start))
    }
}

/// Collects runs in one pass over the groups, merging each with the last when it follows it
/// (what `flex_bg` packing gives), so the list stays short before [`SystemZone::new`] sorts it.
#[derive(Default)]
struct Runs(Vec<(u64, u64)>);

impl Runs {
    fn add(&mut self, first: u64, count: u64) {
        if count == 0 {
            return;
        }
        let end = first.saturating_add(count);
        match self.0.last_mut() {
            Some(last) if last.1 == first => last.1 = end,
            _ => self.0.push((first, end)),
        }
    }
}

/// The resize inode: its indirect blocks map the reserved descriptor blocks on purpose.
const RESIZE_INO: Ino = 7;

impl<D: BlockDevice> Ext4<D> {
    /// The first of `count` blocks from `first` that inode `ino` must not map because the
    /// file system's metadata is there (none for the journal and resize inodes, whose blocks
    /// are that metadata).
    pub(crate) fn zone_conflict(&self, first: u64, count: u64, ino: Ino) -> Option<u64> {
        if ino == RESIZE_INO || (self.sb.journal_inum != 0 && ino == self.sb.journal_inum) {
            return None;
        }
        self.zone.first_in(first, count)
    }

    /// `s_reserved_gdt_blocks` as the cached superblock holds it.
    pub(crate) fn reserved_gdt_blocks(&mut self) -> Result<u64> {
        let bs = self.ctx.bs;
        let raw_sb = self.block(SUPERBLOCK_OFFSET / bs as u64)?;
        Ok(u64::from(le16(
            raw_sb,
            SUPERBLOCK_OFFSET as usize % bs + s::RESERVED_GDT_BLOCKS,
        )))
    }

    /// (Re)compute [`SystemZone`] from the superblock, the group descriptors and the loaded
    /// journal.
    pub(crate) fn build_system_zone(&mut self) -> Result<()> {
        let reserved = self.reserved_gdt_blocks()?;
        let layout = GdtLayout::from_sb(&self.sb, reserved);
        let itb = (u64::from(self.sb.inodes_per_group) * self.ctx.inode_size as u64)
            .div_ceil(self.ctx.bs as u64);
        let mut runs = Runs::default();
        for g in 0..self.groups.len() as u64 {
            runs.add(self.group_start(g), layout.overhead(g));
        }
        for d in &self.groups {
            runs.add(d.block_bitmap, 1);
        }
        for d in &self.groups {
            runs.add(d.inode_bitmap, 1);
        }
        for d in &self.groups {
            runs.add(d.inode_table, itb);
        }
        if let Some(j) = &self.jnl {
            for (p, n) in j.phys_runs() {
                runs.add(p, n);
            }
        } else if self.sb.feature_compat & sb::COMPAT_HAS_JOURNAL != 0 && self.sb.journal_inum != 0
        {
            // Not loaded (a read-only mount): found through its inode. A journal that cannot
            // be mapped stays out of the zone; a read-write mount refuses it when loading it.
            if let Ok((jr, _)) = self.journal_runs(self.sb.journal_inum) {
                for (_, n, p) in jr {
                    runs.add(p, n);
                }
            }
        }
        self.zone = SystemZone::new(runs.0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn runs_are_merged_and_found() {
        let z = SystemZone::new(vec![(10, 12), (1, 3), (12, 14), (2, 5), (20, 20), (30, 31)]);
        assert_eq!(z.runs, vec![(1, 5), (10, 14), (30, 31)]);
        assert_eq!(z.first_in(0, 1), None);
        assert_eq!(z.first_in(0, 2), Some(1));
        assert_eq!(z.first_in(4, 10), Some(4));
        assert_eq!(z.first_in(5, 5), None);
        assert_eq!(z.first_in(6, 5), Some(10));
        assert_eq!(z.first_in(14, 16), None);
        assert_eq!(z.first_in(14, 17), Some(30));
        assert_eq!(z.first_in(31, u64::MAX), None);
        assert_eq!(z.first_in(u64::MAX - 1, u64::MAX), None);
        assert_eq!(SystemZone::default().first_in(0, u64::MAX), None);
    }

    #[test]
    fn following_runs_collapse_while_collected() {
        let mut r = Runs::default();
        for b in 100..116 {
            r.add(b, 1);
        }
        r.add(200, 0);
        r.add(200, 4);
        assert_eq!(r.0, vec![(100, 116), (200, 204)]);
        assert_eq!(SystemZone::new(r.0).runs.len(), 2);
    }
}
