//! Planning a grow from the mounted state, before anything changes: the size reached, each
//! new group's tables, flags and counts, the bitmaps of old groups that change, the new
//! superblock counts, and how many blocks the journal will carry.

use super::layout::{self, Bits, Geometry, SizeRules, Tables};
use crate::block::BlockDevice;
use crate::ext4::allocate::bitmaps::Bitmap;
use crate::ext4::allocate::{bit, set_bit, BG_BLOCK_UNINIT, BG_INODE_UNINIT};
use crate::ext4::error::{Error, Result};
use crate::ext4::gdt::GdtLayout;
use crate::ext4::{sb, Ext4};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

/// A new group as the grow writes it.
#[derive(Debug, Clone)]
pub(super) struct NewGroup {
    pub(super) tables: Tables,
    pub(super) flags: u16,
    pub(super) free_blocks: u32,
    pub(super) free_inodes: u32,
    pub(super) itable_unused: u32,
    /// Its block bitmap (bits past the group's end set), unless `BLOCK_UNINIT`.
    pub(super) bitmap: Option<Vec<u8>>,
}

/// An old group whose block bitmap the grow rewrites: the last one, extended, and those that
/// take new groups' tables.
#[derive(Debug, Clone)]
pub(super) struct OldGroup {
    /// Its new block bitmap; `None` when it becomes `BLOCK_UNINIT` (the bitmap and its
    /// checksum left as they are, as e2fsprogs leaves them).
    pub(super) bitmap: Option<Vec<u8>>,
    /// Change of its free block count.
    pub(super) free_delta: i64,
    pub(super) flags: u16,
}

/// Everything a grow changes, decided before it changes anything.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    pub(super) geo: Geometry,
    pub(super) old_groups: u64,
    pub(super) desc_blocks_old: u64,
    pub(super) desc_blocks: u64,
    pub(super) reserved_gdt: u64,
    /// Blocks of the file system before the grow.
    pub(super) old_blocks: u64,
    /// Whether the file system has a resize inode that the grow updates.
    pub(super) resize_inode: bool,
    pub(super) r_blocks: u64,
    pub(super) free_blocks: u64,
    pub(super) inodes_count: u32,
    pub(super) free_inodes: u32,
    /// The last old group when it grows but keeps its uninitialized bitmap: its free count
    /// change.
    pub(super) uninit_extend: Option<(u64, i64)>,
    pub(super) old: BTreeMap<u64, OldGroup>,
    pub(super) new: Vec<NewGroup>,
    /// The first descriptor block whose contents change.
    pub(super) first_changed_desc: u64,
    /// Whether the new inode tables must be zeroed (no `uninit_bg`/`metadata_csum`: nothing
    /// tells e2fsck or Linux that they are not initialized).
    pub(super) zero_tables: bool,
}

impl Plan {
    /// Metadata blocks of the old file system the grow changes, i.e. that its journal
    /// transaction carries: the superblock, the changed descriptor blocks and their copies
    /// in old groups, the superblock copies of the old backup groups, rewritten bitmaps, and
    /// the resize inode (its inode block, double-indirect block and reserved descriptor
    /// blocks).
    pub(super) fn journalled_blocks(&self) -> u64 {
        let gdt = &self.geo.gdt;
        let backups = gdt.backup_groups(self.geo.groups);
        let old_backups = backups.iter().filter(|&&g| g < self.old_groups).count() as u64;
        let mut desc = 0u64;
        for d in self.first_changed_desc..self.desc_blocks {
            desc += u64::from(gdt.primary(d) < self.old_blocks);
            desc += gdt
                .copies(d, self.geo.groups, &backups)
                .iter()
                .filter(|&&(g, _)| g < self.old_groups)
                .count() as u64;
        }
        let resize = if self.resize_inode {
            2 + self.reserved_gdt
        } else {
            0
        };
        1 + old_backups + desc + self.old.len() as u64 + resize
    }
}

/// The block bitmap the placement searches: old groups' bitmaps as on disk (or as an
/// uninitialized group stands for them) without the padding past the old end, new groups'
/// empty; loaded when first looked at. A block freed in the running transaction counts as
/// used: a grow that is part of a larger transaction (a converting grow, which frees the
/// resize inode's double-indirect block before its last part) must not put tables there,
/// which it writes in place before the commit.
struct Model<'a, D: BlockDevice> {
    fs: &'a mut Ext4<D>,
    geo: Geometry,
    old_groups: u64,
    maps: BTreeMap<u64, Vec<u8>>,
}

impl<D: BlockDevice> Model<'_, D> {
    fn map(&mut self, g: u64) -> Result<&mut Vec<u8>> {
        if !self.maps.contains_key(&g) {
            let bs = self.fs.ctx.bs;
            let m = if g < self.old_groups {
                let mut m = self.fs.old_bitmap(g)?;
                for i in self.fs.blocks_in_group(g) as usize..bs * 8 {
                    set_bit(&mut m, i, false);
                }
                m
            } else {
                vec![0u8; bs]
            };
            self.maps.insert(g, m);
        }
        self.maps.get_mut(&g).ok_or(Error::Corrupt {
            what: "group number",
            at: g,
        })
    }
}

impl<D: BlockDevice> Bits for Model<'_, D> {
    fn used(&mut self, b: u64) -> Result<bool> {
        let g = self.geo.group_of(b);
        let i = (b - self.geo.group_first(g)) as usize;
        Ok(bit(self.map(g)?, i) || self.fs.journal_freed(b))
    }

    fn mark(&mut self, b: u64) -> Result<()> {
        let g = self.geo.group_of(b);
        let i = (b - self.geo.group_first(g)) as usize;
        set_bit(self.map(g)?, i, true);
        Ok(())
    }
}

impl<D: BlockDevice> Ext4<D> {
    /// Old group `g`'s block bitmap: on disk, or what an uninitialized one stands for.
    fn old_bitmap(&mut self, g: u64) -> Result<Vec<u8>> {
        let gd = self.groups.get(g as usize).copied().ok_or(Error::Corrupt {
            what: "group number",
            at: g,
        })?;
        if gd.flags & BG_BLOCK_UNINIT != 0 {
            self.uninit_block_bitmap(g as usize)
        } else {
            self.verify_bitmap(g as usize, Bitmap::Block)?;
            Ok(self.block(gd.block_bitmap)?.to_vec())
        }
    }

    /// The rules [`layout::fit_size`] applies to this file system.
    pub(super) fn size_rules(&mut self) -> Result<SizeRules> {
        let reserved_gdt = u64::from(self.reserved_gdt()?);
        let sb = &self.sb;
        let bs = u64::from(sb.block_size());
        Ok(SizeRules {
            first_data_block: u64::from(sb.first_data_block),
            blocks_per_group: u64::from(sb.blocks_per_group),
            inodes_per_group: u64::from(sb.inodes_per_group),
            inode_table_blocks: (u64::from(sb.inodes_per_group) * u64::from(sb.inode_size))
                .div_ceil(bs),
            desc_per_block: bs / u64::from(sb.desc_size.max(1)),
            reserved_gdt,
            sparse_super: sb.feature_ro_compat & sb::RO_COMPAT_SPARSE_SUPER != 0,
        })
    }

    /// `s_reserved_gdt_blocks`.
    pub(super) fn reserved_gdt(&mut self) -> Result<u16> {
        let bs = self.ctx.bs;
        let b = self.block((sb::SUPERBLOCK_OFFSET as usize / bs) as u64)?;
        Ok(crate::ext4::bytes::le16(
            b,
            sb::SUPERBLOCK_OFFSET as usize % bs + sb::s::RESERVED_GDT_BLOCKS,
        ))
    }

    /// Plan a grow to `target` blocks (at most [`Ext4::grow_limit`]); `None` when the size
    /// resize2fs would reach is not larger than the current one.
    pub(super) fn plan_grow(&mut self, target: u64) -> Result<Option<Plan>> {
        let rules = self.size_rules()?;
        let old_blocks = self.sb.blocks_count;
        let Some(blocks) = layout::fit_size(&rules, target).filter(|&b| b > old_blocks) else {
            return Ok(None);
        };
        let bs = self.ctx.bs;
        let bpg = rules.blocks_per_group;
        let fdb = rules.first_data_block;
        let old_groups = self.groups.len() as u64;
        let groups = (blocks - fdb).div_ceil(bpg);
        let per = rules.desc_per_block.max(1);
        let desc_blocks_old = old_groups.div_ceil(per);
        let desc_blocks = groups.div_ceil(per);
        let meta_bg = self.sb.feature_incompat & sb::INCOMPAT_META_BG != 0;
        let first_meta_bg = u64::from(self.sb.first_meta_bg);
        // With meta_bg, new descriptor blocks go into their meta groups (or, below
        // `s_first_meta_bg`, into the blocks the classic area keeps after every copy).
        let reserved_gdt = if meta_bg {
            rules.reserved_gdt
        } else {
            (rules.reserved_gdt + desc_blocks_old)
                .checked_sub(desc_blocks)
                .ok_or(Error::GrowLimit {
                    max_blocks: self.grow_limit()?,
                })?
        };
        let csum =
            self.sb.has_metadata_csum() || self.sb.feature_ro_compat & sb::RO_COMPAT_GDT_CSUM != 0;
        let flex = if self.sb.feature_incompat & sb::INCOMPAT_FLEX_BG != 0
            && self.sb.log_groups_per_flex > 0
        {
            1u64 << self.sb.log_groups_per_flex.min(31)
        } else {
            0
        };
        let geo = Geometry {
            first_data_block: fdb,
            blocks_per_group: bpg,
            blocks_count: blocks,
            groups,
            inode_table_blocks: rules.inode_table_blocks,
            flex,
            gdt: GdtLayout {
                first_data_block: fdb,
                blocks_per_group: bpg,
                desc_per_block: per,
                sparse_super: rules.sparse_super,
                meta_bg,
                first_meta_bg,
                classic_blocks: if meta_bg {
                    first_meta_bg
                } else {
                    desc_blocks + reserved_gdt
                },
            },
        };
        // The old last group grows to a whole group, or to the new end.
        let last = old_groups.checked_sub(1).ok_or(Error::Corrupt {
            what: "group count",
            at: 0,
        })?;
        let extend = geo.group_blocks(last) - self.blocks_in_group(last);
        let last_flags = self.groups.get(last as usize).map_or(0, |d| d.flags);
        let mut uninit_extend = None;
        let mut old = BTreeMap::new();
        let ipg = self.sb.inodes_per_group;
        let mut new = Vec::new();
        let mut landed: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        let mut cleared = alloc::collections::BTreeSet::new();
        let maps = {
            let mut model = Model {
                fs: self,
                geo,
                old_groups,
                maps: BTreeMap::new(),
            };
            let mut prev = model
                .fs
                .groups
                .get(last as usize)
                .map(|d| Tables {
                    block_bitmap: d.block_bitmap,
                    inode_bitmap: d.inode_bitmap,
                    inode_table: d.inode_table,
                })
                .unwrap_or_default();
            for g in old_groups..groups {
                // The superblock copy and descriptor blocks (classic or meta_bg).
                let first = geo.group_first(g);
                for b in first..(first + geo.gdt.overhead(g)).min(blocks) {
                    model.mark(b)?;
                }
                prev = layout::place(&mut model, &geo, g, prev)?;
                let itb = geo.inode_table_blocks;
                let blocks_of = [prev.block_bitmap, prev.inode_bitmap]
                    .into_iter()
                    .chain(prev.inode_table..prev.inode_table + itb);
                for b in blocks_of {
                    let at = geo.group_of(b);
                    if flex != 0 {
                        cleared.insert(at);
                    }
                    if at < old_groups {
                        landed.entry(at).or_default().push(b);
                    }
                }
                // Uninitialized bitmaps, but for the last group and groups with a superblock
                // or descriptor copy (resize2fs counts the copy as an allocation, which
                // initializes).
                let mut flags = 0;
                if csum {
                    flags = BG_INODE_UNINIT;
                    if g + 1 < groups && geo.gdt.overhead(g) == 0 {
                        flags |= BG_BLOCK_UNINIT;
                    }
                }
                new.push(NewGroup {
                    tables: prev,
                    flags,
                    free_blocks: 0,
                    free_inodes: ipg,
                    itable_unused: if csum { ipg } else { 0 },
                    bitmap: None,
                });
            }
            model.maps
        };
        // New groups: counts from the model; bitmaps unless still uninitialized.
        let mut new_free = 0u64;
        for (k, ng) in new.iter_mut().enumerate() {
            let g = old_groups + k as u64;
            if cleared.contains(&g) {
                ng.flags &= !BG_BLOCK_UNINIT;
            }
            let n = geo.group_blocks(g) as usize;
            let mut bm = maps.get(&g).cloned().unwrap_or_else(|| vec![0u8; bs]);
            let used = (0..n).filter(|&i| bit(&bm, i)).count();
            ng.free_blocks = (n - used) as u32;
            new_free += (n - used) as u64;
            if ng.flags & BG_BLOCK_UNINIT == 0 {
                for i in n..bs * 8 {
                    set_bit(&mut bm, i, true);
                }
                ng.bitmap = Some(bm);
            }
        }
        // Old groups: the last one extended, and those the new tables went into.
        let mut rewrite: BTreeMap<u64, i64> = landed
            .iter()
            .map(|(&g, v)| (g, -(v.len() as i64)))
            .collect();
        if extend > 0 {
            let stays_uninit = last_flags & BG_BLOCK_UNINIT != 0
                && groups > old_groups
                && !rewrite.contains_key(&last);
            if stays_uninit {
                uninit_extend = Some((last, extend as i64));
            } else {
                *rewrite.entry(last).or_default() += extend as i64;
            }
        }
        // As e2fsprogs closes a file system (`ext2fs_set_gdt_csum`): an old last group that
        // is no longer the last and holds nothing becomes BLOCK_UNINIT.
        let last_free = self.groups.get(last as usize).map_or(0, |d| d.free_blocks);
        let last_landed = landed.get(&last).map_or(0, |v| v.len() as u64);
        let last_empty = csum
            && groups > old_groups
            && uninit_extend.is_none()
            && (u64::from(last_free) + extend).checked_sub(last_landed) == Some(bpg);
        if last_empty {
            rewrite.entry(last).or_default();
        }
        let mut old_delta = 0i64;
        for (&g, &delta) in &rewrite {
            let mut bm = self.old_bitmap(g)?;
            let start = geo.group_first(g);
            if g == last {
                let from = self.blocks_in_group(last) as usize;
                for i in from..from + extend as usize {
                    set_bit(&mut bm, i, false);
                }
            }
            for b in landed.get(&g).into_iter().flatten() {
                set_bit(&mut bm, (b - start) as usize, true);
            }
            let mut flags = self.groups.get(g as usize).map_or(0, |d| d.flags) & !BG_BLOCK_UNINIT;
            if g == last && last_empty {
                flags |= BG_BLOCK_UNINIT;
            }
            old_delta += delta;
            old.insert(
                g,
                OldGroup {
                    bitmap: (!(g == last && last_empty)).then_some(bm),
                    free_delta: delta,
                    flags,
                },
            );
        }
        if let Some((_, d)) = uninit_extend {
            old_delta += d;
        }
        let first_changed = old
            .keys()
            .copied()
            .chain(uninit_extend.map(|(g, _)| g))
            .chain(core::iter::once(old_groups))
            .min()
            .unwrap_or(old_groups);
        let free_blocks = self
            .sb
            .free_blocks_count
            .checked_add_signed(old_delta)
            .and_then(|f| f.checked_add(new_free))
            .ok_or(Error::Corrupt {
                what: "free block count",
                at: 0,
            })?;
        let added_inodes = u64::from(ipg) * (groups - old_groups);
        let inodes_count =
            u32::try_from(u64::from(ipg) * groups).map_err(|_| Error::GrowLimit {
                max_blocks: old_blocks,
            })?;
        let free_inodes = u32::try_from(u64::from(self.sb.free_inodes_count) + added_inodes)
            .map_err(|_| Error::Corrupt {
                what: "free inode count",
                at: 0,
            })?;
        // As resize2fs: the same share of the blocks stays reserved (in floating point).
        let percent = self.sb.r_blocks_count as f64 * 100.0 / old_blocks as f64;
        let r_blocks = (percent * blocks as f64 / 100.0) as u64;
        Ok(Some(Plan {
            geo,
            old_groups,
            desc_blocks_old,
            desc_blocks,
            reserved_gdt,
            old_blocks,
            resize_inode: self.sb.feature_compat & sb::COMPAT_RESIZE_INODE != 0,
            r_blocks,
            free_blocks,
            inodes_count,
            free_inodes,
            uninit_extend,
            old,
            new,
            first_changed_desc: first_changed / per,
            zero_tables: !csum,
        }))
    }
}
