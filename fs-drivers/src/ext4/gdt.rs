//! Where the group descriptor blocks and superblock copies sit, with and without `meta_bg`
//! (the rules of e2fsprogs' `ext2fs_super_and_bgd_loc2` and Linux's `ext4_bg_num_gdb`).
//!
//! Descriptor block `d` below `s_first_meta_bg` (every block without `meta_bg`) is a
//! "classic" one: block `first_data_block + 1 + d`, copied after the superblock copy of every
//! backup group, which also keeps the reserved descriptor blocks there. From
//! `s_first_meta_bg` on, block `d` describes meta group `d` (the `desc_per_block` groups
//! from `d * desc_per_block`) and sits in that meta group's first group, after its superblock
//! copy if it has one, with copies in the meta group's second and last groups.
//!
//! Pure: no disk access.

use crate::ext4::sb::{self, Superblock};
use alloc::vec::Vec;

/// The descriptor layout of a file system (or of the file system a grow makes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GdtLayout {
    pub(crate) first_data_block: u64,
    pub(crate) blocks_per_group: u64,
    pub(crate) desc_per_block: u64,
    pub(crate) sparse_super: bool,
    pub(crate) meta_bg: bool,
    /// `s_first_meta_bg` (meaningful with `meta_bg`).
    pub(crate) first_meta_bg: u64,
    /// Blocks after each superblock copy in the classic area: `s_first_meta_bg` with
    /// `meta_bg`, else the descriptor blocks plus the reserved ones.
    pub(crate) classic_blocks: u64,
}

impl GdtLayout {
    /// The layout `sb` describes, `reserved_gdt` being its `s_reserved_gdt_blocks`.
    pub(crate) fn from_sb(sb: &Superblock, reserved_gdt: u64) -> Self {
        let per = (u64::from(sb.block_size()) / u64::from(sb.desc_size.max(1))).max(1);
        let meta_bg = sb.feature_incompat & sb::INCOMPAT_META_BG != 0;
        let first_meta_bg = u64::from(sb.first_meta_bg);
        GdtLayout {
            first_data_block: u64::from(sb.first_data_block),
            blocks_per_group: u64::from(sb.blocks_per_group),
            desc_per_block: per,
            sparse_super: sb.feature_ro_compat & sb::RO_COMPAT_SPARSE_SUPER != 0,
            meta_bg,
            first_meta_bg,
            classic_blocks: if meta_bg {
                first_meta_bg
            } else {
                sb.group_count().div_ceil(per).saturating_add(reserved_gdt)
            },
        }
    }

    fn group_first(&self, g: u64) -> u64 {
        self.first_data_block
            .saturating_add(g.saturating_mul(self.blocks_per_group))
    }

    /// Whether group `g` holds a superblock copy.
    pub(crate) fn has_super(&self, g: u64) -> bool {
        sb::sparse_group_has_super(self.sparse_super, g)
    }

    /// Whether descriptor block `d` is a meta_bg one.
    fn is_meta(&self, d: u64) -> bool {
        self.meta_bg && d >= self.first_meta_bg
    }

    /// Whether group `g` lies in a meta group whose descriptor block is a meta_bg one.
    fn in_meta_area(&self, g: u64) -> bool {
        self.is_meta(g / self.desc_per_block.max(1))
    }

    /// The meta_bg descriptor block group `g` holds (the primary or a copy), if any.
    pub(crate) fn meta_desc_in(&self, g: u64) -> Option<u64> {
        let per = self.desc_per_block.max(1);
        let i = g % per;
        (self.in_meta_area(g) && (i == 0 || i == 1 || i == per - 1)).then_some(g / per)
    }

    /// Blocks from the start of group `g` that its superblock copy and descriptor blocks
    /// (with the reserved ones) take.
    pub(crate) fn overhead(&self, g: u64) -> u64 {
        let sb = u64::from(self.has_super(g));
        if self.in_meta_area(g) {
            sb + u64::from(self.meta_desc_in(g).is_some())
        } else if sb == 1 {
            self.classic_blocks.saturating_add(1)
        } else {
            0
        }
    }

    /// The primary location of descriptor block `d`.
    pub(crate) fn primary(&self, d: u64) -> u64 {
        if self.is_meta(d) {
            let g = d.saturating_mul(self.desc_per_block);
            self.group_first(g)
                .saturating_add(u64::from(self.has_super(g)))
        } else {
            self.first_data_block.saturating_add(1).saturating_add(d)
        }
    }

    /// Groups `1..groups` that hold a superblock copy, in order.
    pub(crate) fn backup_groups(&self, groups: u64) -> Vec<u64> {
        if !self.sparse_super {
            return (1..groups).collect();
        }
        let mut v: Vec<u64> = Vec::new();
        if groups > 1 {
            v.push(1);
        }
        for base in [3u64, 5, 7] {
            let mut p = base;
            while p < groups {
                v.push(p);
                match p.checked_mul(base) {
                    Some(n) => p = n,
                    None => break,
                }
            }
        }
        v.sort_unstable();
        v
    }

    /// The copies of descriptor block `d` in a file system of `groups` groups, as (group,
    /// block); `backups` is [`GdtLayout::backup_groups`] of `groups`.
    pub(crate) fn copies(&self, d: u64, groups: u64, backups: &[u64]) -> Vec<(u64, u64)> {
        if self.is_meta(d) {
            let per = self.desc_per_block.max(1);
            let first = d.saturating_mul(per);
            let mut v: Vec<(u64, u64)> = Vec::new();
            for g in [first.saturating_add(1), first.saturating_add(per - 1)] {
                if g != first && g < groups && v.last().is_none_or(|&(x, _)| x != g) {
                    let at = self
                        .group_first(g)
                        .saturating_add(u64::from(self.has_super(g)));
                    v.push((g, at));
                }
            }
            v
        } else {
            backups
                .iter()
                .copied()
                .filter(|&g| g < groups && !self.in_meta_area(g))
                .map(|g| (g, self.group_first(g).saturating_add(1).saturating_add(d)))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(meta_bg: bool, first_meta_bg: u64) -> GdtLayout {
        GdtLayout {
            first_data_block: 1,
            blocks_per_group: 8192,
            desc_per_block: 32,
            sparse_super: true,
            meta_bg,
            first_meta_bg,
            classic_blocks: if meta_bg { first_meta_bg } else { 3 },
        }
    }

    #[test]
    fn classic_descriptors_follow_every_superblock_copy() {
        let l = layout(false, 0);
        assert_eq!(l.primary(2), 4);
        assert_eq!(l.overhead(0), 4);
        assert_eq!(l.overhead(2), 0);
        assert_eq!(l.overhead(25), 4);
        let b = l.backup_groups(50);
        assert_eq!(b, [1, 3, 5, 7, 9, 25, 27, 49]);
        assert_eq!(l.copies(1, 50, &b)[1], (3, 1 + 3 * 8192 + 2));
    }

    #[test]
    fn meta_bg_descriptors_sit_in_the_first_second_and_last_group_of_their_meta_group() {
        // Two classic blocks (groups 0..64), meta groups from 64 on.
        let l = layout(true, 2);
        assert_eq!(l.primary(1), 3);
        assert_eq!(l.overhead(49), 3); // a backup in the classic area: 1 + first_meta_bg
                                       // Meta group 2: groups 64..96; 64 has no superblock copy, 81 (3^4) has one.
        assert_eq!(l.primary(2), 1 + 64 * 8192);
        assert_eq!(l.overhead(64), 1);
        assert_eq!(l.overhead(65), 1);
        assert_eq!(l.overhead(95), 1);
        assert_eq!(l.overhead(81), 1);
        assert_eq!(l.overhead(66), 0);
        let b = l.backup_groups(200);
        assert_eq!(
            l.copies(2, 200, &b),
            [(65, 1 + 65 * 8192), (95, 1 + 95 * 8192)]
        );
        // Meta group 3 (96..128) in a file system of 97 groups: only the second group.
        assert!(l.copies(3, 97, &b).is_empty());
        assert_eq!(l.copies(3, 98, &b), [(97, 1 + 97 * 8192)]);
        // Group 125 (5^3) has a copy of the superblock but no descriptors.
        assert_eq!(l.overhead(125), 1);
        assert_eq!(l.copies(0, 200, &b).len(), 8);
    }
}
