//! Where a grow puts things, as `resize2fs` lays them out, so that `dumpe2fs` of a volume
//! pvfs grew and of the same volume grown by resize2fs agree: the size actually reached
//! ([`fit_size`]: a last group too small for its metadata is left out, the inode count must
//! fit 32 bits) and each new group's bitmaps and inode table ([`place`]: e2fsprogs'
//! first-fit search, over the flex group with `flex_bg`, in the group itself without).
//!
//! Pure: the block bitmap searched comes through [`Bits`].

use crate::ext4::error::{Error, Result};
use crate::ext4::gdt::GdtLayout;

/// The geometry of the grown file system.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Geometry {
    pub(crate) first_data_block: u64,
    pub(crate) blocks_per_group: u64,
    /// Blocks of the grown file system.
    pub(crate) blocks_count: u64,
    /// Groups of the grown file system.
    pub(crate) groups: u64,
    pub(crate) inode_table_blocks: u64,
    /// Groups per flex group (0: no `flex_bg`).
    pub(crate) flex: u64,
    /// Where the superblock copies and descriptor blocks are.
    pub(crate) gdt: GdtLayout,
}

impl Geometry {
    pub(crate) fn group_first(&self, g: u64) -> u64 {
        self.first_data_block + g * self.blocks_per_group
    }

    pub(crate) fn group_last(&self, g: u64) -> u64 {
        if g + 1 >= self.groups {
            self.blocks_count - 1
        } else {
            self.group_first(g) + self.blocks_per_group - 1
        }
    }

    pub(crate) fn group_of(&self, b: u64) -> u64 {
        b.saturating_sub(self.first_data_block) / self.blocks_per_group
    }

    /// Blocks in group `g`.
    pub(crate) fn group_blocks(&self, g: u64) -> u64 {
        self.group_last(g) + 1 - self.group_first(g)
    }

    /// Whether group `g` holds a superblock copy.
    pub(crate) fn has_super(&self, g: u64) -> bool {
        self.gdt.has_super(g)
    }
}

/// Group descriptors per descriptor block, and the parts of the superblock [`fit_size`] needs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SizeRules {
    pub(crate) first_data_block: u64,
    pub(crate) blocks_per_group: u64,
    pub(crate) inodes_per_group: u64,
    pub(crate) inode_table_blocks: u64,
    pub(crate) desc_per_block: u64,
    /// Reserved descriptor blocks before the grow.
    pub(crate) reserved_gdt: u64,
    pub(crate) sparse_super: bool,
}

/// The size a grow to `size` blocks reaches, as resize2fs decides it (`adjust_new_size`): a
/// last group that could not hold its bitmaps, inode table, superblock copy and 50 blocks
/// more is left out, and so is a group whose inodes would not fit the 32-bit inode count.
/// `None` when even that does not fit.
pub(crate) fn fit_size(r: &SizeRules, mut size: u64) -> Option<u64> {
    let bpg = r.blocks_per_group.max(1);
    for _ in 0..4 {
        let groups = size.checked_sub(r.first_data_block)?.div_ceil(bpg);
        if groups == 0 {
            return None;
        }
        let desc_blocks = groups.div_ceil(r.desc_per_block.max(1));
        let mut overhead = 2 + r.inode_table_blocks;
        if crate::ext4::sb::sparse_group_has_super(r.sparse_super, groups - 1) {
            overhead += 1 + desc_blocks + r.reserved_gdt;
        }
        let rem = (size - r.first_data_block) % bpg;
        if groups == 1 && rem != 0 && rem < overhead {
            return None;
        }
        if groups > 1 && rem != 0 && rem < overhead + 50 {
            size -= rem;
            continue;
        }
        if r.inodes_per_group.checked_mul(groups)? > u64::from(u32::MAX) {
            if r.inodes_per_group.checked_mul(groups - 1)? > u64::from(u32::MAX) {
                return None;
            }
            size = bpg
                .checked_mul(groups - 1)?
                .checked_add(r.first_data_block)?;
            continue;
        }
        return Some(size);
    }
    None
}

/// The block bitmap [`place`] searches and marks.
pub(crate) trait Bits {
    /// Whether block `b` is in use.
    fn used(&mut self, b: u64) -> Result<bool>;
    /// Mark block `b` in use.
    fn mark(&mut self, b: u64) -> Result<()>;
}

/// A group's bitmaps and inode table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Tables {
    pub(crate) block_bitmap: u64,
    pub(crate) inode_bitmap: u64,
    pub(crate) inode_table: u64,
}

/// The first used block of `b..b + num`, if any.
fn first_used(bits: &mut impl Bits, b: u64, num: u64) -> Result<Option<u64>> {
    for x in b..b + num {
        if bits.used(x)? {
            return Ok(Some(x));
        }
    }
    Ok(None)
}

/// The first start in `start..finish` of `num` free blocks (`ext2fs_get_free_blocks2`: a
/// start of 0 means the first data block; past the end it fails, or wraps to the first data
/// block when `finish` is not above `start`).
fn get_free(
    bits: &mut impl Bits,
    geo: &Geometry,
    start: u64,
    finish: u64,
    num: u64,
) -> Result<Option<u64>> {
    let fdb = geo.first_data_block;
    let num = num.max(1);
    let mut b = if start == 0 { fdb } else { start };
    let finish = if finish == 0 { start } else { finish };
    // Every step moves at least one block on; twice the size bounds the wrapped search.
    for _ in 0..geo.blocks_count.saturating_mul(2).saturating_add(2) {
        if b.saturating_add(num - 1) >= geo.blocks_count {
            if finish > start {
                return Ok(None);
            }
            b = fdb;
        }
        match first_used(bits, b, num)? {
            None => return Ok(Some(b)),
            Some(u) => {
                // Every start up to the used block fails: go past it, stopping at `finish`.
                let next = u + 1;
                if b < finish && next >= finish {
                    return Ok(None);
                }
                b = next;
            }
        }
        if b == finish {
            return Ok(None);
        }
    }
    Ok(None)
}

/// e2fsprogs' `flexbg_offset`: where to look for `rem` tables of `elem` blocks of the flex
/// group of `group`, near `start` (the previous group's table) when there is room there.
fn flexbg_offset(
    bits: &mut impl Bits,
    geo: &Geometry,
    group: u64,
    start: u64,
    rem: u64,
    elem: u64,
) -> Result<u64> {
    let size = rem
        .saturating_mul(elem)
        .min(geo.blocks_per_group / 4)
        .max(1);
    if start != 0 && start < geo.blocks_count {
        if let Some(f) = get_free(bits, geo, start, start.saturating_add(size), elem)? {
            return Ok(f);
        }
    }
    let first = geo.group_first(group / geo.flex * geo.flex);
    let last_grp = (group | (geo.flex - 1)).min(geo.groups - 1);
    let last_blk = geo.group_last(last_grp);
    for (from, num) in [(first, size), (first, elem), (0, elem)] {
        if let Some(f) = get_free(bits, geo, from, last_blk, num)? {
            return Ok(f);
        }
    }
    Ok(0)
}

fn no_room(group: u64) -> Error {
    Error::Corrupt {
        what: "no room for a new group's bitmaps and inode table",
        at: group,
    }
}

/// Place group `group`'s bitmaps and inode table (`ext2fs_allocate_group_table`), given the
/// previous group's, and mark them in `bits`.
pub(crate) fn place(
    bits: &mut impl Bits,
    geo: &Geometry,
    group: u64,
    prev: Tables,
) -> Result<Tables> {
    let itb = geo.inode_table_blocks;
    let group_blk = geo.group_first(group);
    let mut t = Tables::default();
    if geo.flex == 0 {
        let last_blk = geo.group_last(group);
        t.block_bitmap = get_free(bits, geo, group_blk, last_blk, 1)?.ok_or(no_room(group))?;
        bits.mark(t.block_bitmap)?;
        t.inode_bitmap = get_free(bits, geo, group_blk, last_blk, 1)?.ok_or(no_room(group))?;
        bits.mark(t.inode_bitmap)?;
        t.inode_table = get_free(bits, geo, group_blk, last_blk, itb)?.ok_or(no_room(group))?;
    } else {
        let flex = geo.flex;
        let last_grp = (group | (flex - 1)).min(geo.groups - 1);
        let rem = last_grp - group + 1;
        let first_in_flex = group.is_multiple_of(flex);
        let mut table_offset = flex;
        if first_in_flex && last_grp == geo.groups - 1 {
            // The last flex group keeps its tables together.
            table_offset = last_grp & (flex - 1);
            table_offset = if table_offset == 0 {
                flex
            } else {
                table_offset + 1
            };
        }
        let last_blk = geo.group_last(last_grp);
        let one = |bits: &mut _, prev_block: u64| -> Result<u64> {
            let start = flexbg_offset(bits, geo, group, prev_block, rem, 1)?;
            match get_free(bits, geo, start, last_blk, 1)? {
                Some(b) => Ok(b),
                None => get_free(bits, geo, group_blk, last_blk, 1)?.ok_or(no_room(group)),
            }
        };
        let prev_bb = if first_in_flex {
            0
        } else {
            prev.block_bitmap + 1
        };
        t.block_bitmap = one(bits, prev_bb)?;
        bits.mark(t.block_bitmap)?;
        let prev_ib = if first_in_flex {
            t.block_bitmap + table_offset
        } else {
            prev.inode_bitmap + 1
        };
        t.inode_bitmap = one(bits, prev_ib)?;
        bits.mark(t.inode_bitmap)?;
        let prev_it = if first_in_flex {
            t.inode_bitmap + table_offset
        } else {
            prev.inode_table + itb
        };
        let start = flexbg_offset(bits, geo, group, prev_it, rem, itb)?;
        t.inode_table = get_free(bits, geo, start, last_blk, itb)?.ok_or(no_room(group))?;
    }
    for b in t.inode_table..t.inode_table + itb {
        bits.mark(b)?;
    }
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::collections::BTreeSet;

    struct Set(BTreeSet<u64>);
    impl Bits for Set {
        fn used(&mut self, b: u64) -> Result<bool> {
            Ok(self.0.contains(&b))
        }
        fn mark(&mut self, b: u64) -> Result<()> {
            self.0.insert(b);
            Ok(())
        }
    }

    fn rules() -> SizeRules {
        SizeRules {
            first_data_block: 0,
            blocks_per_group: 32768,
            inodes_per_group: 16384,
            inode_table_blocks: 1024,
            desc_per_block: 64,
            reserved_gdt: 7,
            sparse_super: true,
        }
    }

    #[test]
    fn a_last_group_too_small_for_its_metadata_is_left_out() {
        let r = rules();
        // Group 5 (a superblock copy) of 15360 blocks is kept, as resize2fs does.
        assert_eq!(fit_size(&r, 179200), Some(179200));
        // Group 3 (a superblock copy): 1 + 1 + 7 + 2 + 1024 + 50 blocks at least.
        assert_eq!(fit_size(&r, 3 * 32768 + 1084), Some(3 * 32768));
        assert_eq!(fit_size(&r, 3 * 32768 + 1085), Some(3 * 32768 + 1085));
        // Group 2 (no copy): 2 + 1024 + 50.
        assert_eq!(fit_size(&r, 2 * 32768 + 1075), Some(2 * 32768));
        // The inode count must fit 32 bits: at most 262143 groups of 16384 inodes.
        let big = 262_143 * 32768;
        assert_eq!(fit_size(&r, big + 32768), Some(big));
        assert_eq!(fit_size(&r, big + 2 * 32768), None);
    }

    #[test]
    fn new_groups_follow_the_previous_tables_in_the_flex_group() {
        // One old group whose tables end at 2064 (as mkfs.ext4 lays out 64 MiB at 4k);
        // groups 1..=5 go after them, each bitmap pair then its inode table.
        let geo = Geometry {
            first_data_block: 0,
            blocks_per_group: 32768,
            blocks_count: 179200,
            groups: 6,
            inode_table_blocks: 1024,
            flex: 16,
            gdt: GdtLayout {
                first_data_block: 0,
                blocks_per_group: 32768,
                desc_per_block: 64,
                sparse_super: true,
                meta_bg: false,
                first_meta_bg: 0,
                classic_blocks: 8,
            },
        };
        let mut bits = Set((0..2065).collect());
        let mut prev = Tables {
            block_bitmap: 9,
            inode_bitmap: 25,
            inode_table: 41,
        };
        let mut got = alloc::vec::Vec::new();
        for g in 1..6 {
            for b in geo.group_first(g)..geo.group_first(g) + geo.gdt.overhead(g) {
                bits.mark(b).unwrap();
            }
            prev = place(&mut bits, &geo, g, prev).unwrap();
            got.push((prev.block_bitmap, prev.inode_bitmap, prev.inode_table));
        }
        // What resize2fs 1.47 made of the same image (dumpe2fs).
        assert_eq!(
            got,
            [
                (2065, 2066, 2067),
                (3091, 3092, 3093),
                (4117, 4118, 4119),
                (5143, 5144, 5145),
                (6169, 6170, 6171)
            ]
        );
    }
}
