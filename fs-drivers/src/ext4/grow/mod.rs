//! Growing a mounted file system into a larger device ([`Ext4::grow`]), with the layout
//! e2fsprogs' resize2fs gives the same growth: the last group is extended to a whole group,
//! then whole groups are added (a last group too small for its metadata is left out), each
//! with its bitmaps and inode table where resize2fs puts them (`layout`: after the previous
//! group's tables in the flex group with `flex_bg`, in the group itself without), new
//! descriptor blocks taken from the blocks the resize inode reserves (`resize_inode`) or,
//! with `meta_bg`, put in the first group of their meta group (`crate::ext4::gdt`),
//! superblock and descriptor copies in the new backup groups, checksums, and the
//! superblock's counts (the reserved share kept as resize2fs computes it).
//!
//! Past what the descriptor blocks and the reserve describe, or on a file system without
//! `resize_inode` that needs a new descriptor block, the grow does what Linux's online
//! resize does (`ext4_resize_fs`): it grows to the end of the reserve, converts the file
//! system to `meta_bg` (`meta_bg`: `s_first_meta_bg` = the descriptor blocks there are,
//! `resize_inode` off, the resize inode's double-indirect block freed), and goes on with
//! meta_bg descriptor blocks (in the first, second and last group of each meta group). A
//! file system already `meta_bg` grows the same way. (Offline resize2fs would move metadata
//! to extend the classic descriptor area instead; the layout matches what resize2fs makes of
//! the converted file system.)
//!
//! New groups are marked `INODE_UNINIT` (and `BLOCK_UNINIT` but for the last, unless tables
//! went into them) as resize2fs does with lazy inode table initialization, so their inode
//! tables are not written; without `uninit_bg`/`metadata_csum` the tables are zeroed.
//!
//! The whole grow is one journal transaction (the superblock, descriptors, bitmaps of old
//! groups, the resize inode, the copies in old backup groups); blocks outside the old file
//! system are written in place before it like ordered data. A power cut at any write leaves
//! the old size or the new one. A converting grow is one transaction too: its three parts
//! (to the end of the reserve, the conversion, the rest) are carried out in memory, each on
//! the state the one before left, and committed once, every block past the old size (the
//! size on disk until the commit, whatever the parts in between reached) written in place
//! before the log; a failure before the commit undoes all of them in memory. The resize
//! inode's double-indirect block, which the conversion frees, is not taken for the last
//! part's tables (it is free only once the transaction commits). So a cut leaves the old
//! size (not `meta_bg`) or the new one (`meta_bg`), never the reserve's end.
//!
//! A grow whose transaction would not fit the journal (all three parts together for a
//! converting grow, as the commit would log them) goes in steps instead, each its own
//! committed transaction: a plain grow in steps of whole groups (the groups added halved
//! until one fits), each laid out as resize2fs would lay out that step; a converting grow
//! as three such steps (the first and last themselves halved as needed). A cut then leaves
//! the old size, the new one or a step's, each complete: for a converting grow also the
//! reserve's end before or after the conversion. For a converting grow that takes a journal
//! small for the growth: most of its transaction is the descriptor blocks taken from the
//! reserve, in group 0 and in every old backup group (the blocks the later parts change
//! past the old size are written in place and do not count).
//!
//! Refused: shrinking; file systems without `sparse_super` or without a journal, or with
//! both `resize_inode` and `meta_bg`; growing past [`Ext4::grow_limit`]
//! ([`Error::GrowLimit`]): 2^32 - 1 blocks without `64bit`, a 32-bit inode count, and the
//! reserve's end where a resize inode's reserve ends past 2^32 - 1 blocks.

mod apply;
mod layout;
mod meta_bg;
mod plan;
mod resize_inode;

use crate::block::BlockDevice;
use crate::ext4::error::{Error, Result};
use crate::ext4::{sb, Ext4};
use alloc::vec::Vec;

impl<D: BlockDevice> Ext4<D> {
    /// The largest size in blocks [`Ext4::grow`] accepts: as many groups as keep the inode
    /// count in 32 bits, at most 2^32 - 1 blocks without `64bit`, and, where the file system
    /// cannot be converted to `meta_bg` (a resize inode whose reserve ends past 2^32 - 1
    /// blocks, whose block lists are 32-bit; `resize_inode` and `meta_bg` both set), what
    /// the current and reserved descriptor blocks describe. Never below the current size.
    pub fn grow_limit(&mut self) -> Result<u64> {
        let r = self.size_rules()?;
        let old = self.sb.blocks_count;
        let bpg = r.blocks_per_group.max(1);
        let groups_by_inodes = u64::from(u32::MAX) / r.inodes_per_group.max(1);
        let blocks_of = |groups: u64| {
            groups
                .saturating_mul(bpg)
                .saturating_add(r.first_data_block)
        };
        let mut max = blocks_of(groups_by_inodes);
        let resize = self.sb.feature_compat & sb::COMPAT_RESIZE_INODE != 0;
        let meta_bg = self.sb.feature_incompat & sb::INCOMPAT_META_BG != 0;
        let reserve_end = self.reserve_end()?;
        if resize && (meta_bg || reserve_end > u64::from(u32::MAX)) {
            max = max.min(reserve_end).min(u64::from(u32::MAX));
        }
        if self.sb.feature_incompat & sb::INCOMPAT_64BIT == 0 {
            max = max.min(u64::from(u32::MAX));
        }
        Ok(max.max(old))
    }

    /// The size in blocks the current and reserved descriptor blocks describe.
    fn reserve_end(&mut self) -> Result<u64> {
        let r = self.size_rules()?;
        let per = r.desc_per_block.max(1);
        let desc = (self.groups.len() as u64).div_ceil(per);
        let reserved = if self.sb.feature_compat & sb::COMPAT_RESIZE_INODE != 0 {
            r.reserved_gdt
        } else {
            0
        };
        Ok(desc
            .saturating_add(reserved)
            .saturating_mul(per)
            .saturating_mul(r.blocks_per_group.max(1))
            .saturating_add(r.first_data_block))
    }

    /// Grow the file system to `new_blocks` blocks (or a little less: see the module
    /// documentation) of a device that has grown, and make it durable. Returns the size
    /// reached, the current size when nothing could be added. Refuses to shrink
    /// ([`Error::Invalid`]), a size the device does not have ([`Error::Invalid`]), a size past
    /// [`Ext4::grow_limit`] ([`Error::GrowLimit`]) and file systems it cannot grow
    /// ([`Error::Unsupported`]); a refusal changes nothing, and a failure (a device error)
    /// leaves the size of the last step committed. [`Ext4::statfs`] reports the new size as
    /// soon as this returns.
    pub fn grow(&mut self, new_blocks: u64) -> Result<u64> {
        self.ensure_rw()?;
        let old = self.sb.blocks_count;
        if new_blocks < old {
            return Err(Error::Invalid {
                what: "a file system cannot shrink",
            });
        }
        if new_blocks == old {
            return Ok(old);
        }
        if self.sb.feature_ro_compat & sb::RO_COMPAT_SPARSE_SUPER == 0 {
            return Err(Error::Unsupported {
                what: "growing a file system without sparse_super",
            });
        }
        let resize = self.sb.feature_compat & sb::COMPAT_RESIZE_INODE != 0;
        let meta_bg = self.sb.feature_incompat & sb::INCOMPAT_META_BG != 0;
        if resize && meta_bg {
            // Linux refuses it too.
            return Err(Error::Unsupported {
                what: "growing a file system with both resize_inode and meta_bg",
            });
        }
        if !resize && self.reserved_gdt()? != 0 {
            // Linux refuses such a file system as corrupt; nothing owns those blocks.
            return Err(Error::Unsupported {
                what: "growing a file system with reserved descriptor blocks but no resize inode",
            });
        }
        if !self.journalled() {
            return Err(Error::Unsupported {
                what: "growing a file system without a journal (the grow would not be atomic)",
            });
        }
        let limit = self.grow_limit()?;
        if new_blocks > limit {
            return Err(Error::GrowLimit { max_blocks: limit });
        }
        let per_block = (self.ctx.bs as u64 / u64::from(self.dev.sector_size().max(1))).max(1);
        if new_blocks > self.dev.sector_count() / per_block {
            return Err(Error::Invalid {
                what: "the device is smaller than the size asked for",
            });
        }
        // The grow is a transaction of its own (or a few: see the module documentation).
        self.sync()?;
        // Past what the descriptor blocks (and the reserve) describe, the file system becomes
        // meta_bg, as Linux does it: first grown to the end of the reserve, then converted.
        let reserve_end = self.reserve_end()?;
        let rules = self.size_rules()?;
        let reaches = layout::fit_size(&rules, new_blocks).unwrap_or(new_blocks);
        if !meta_bg && reaches > reserve_end {
            if let Some(reached) = self.grow_converting(reserve_end, new_blocks)? {
                return Ok(reached);
            }
            // Too large for one transaction of the journal: in committed steps.
            if resize {
                self.grow_to(reserve_end)?;
                if self.sb.blocks_count < reserve_end {
                    return Ok(self.sb.blocks_count);
                }
            }
            self.convert_to_meta_bg()?;
        }
        self.grow_to(new_blocks)
    }

    /// A converting grow as one transaction (see the module documentation): to
    /// `reserve_end` with a resize inode, the conversion, then on to `new_blocks`, carried out
    /// in memory and committed once; undone in memory if it fails before the commit. `None`,
    /// with nothing changed, when the whole would not fit the journal (or the first part
    /// would not reach the reserve's end): the caller then goes in committed steps.
    fn grow_converting(&mut self, reserve_end: u64, new_blocks: u64) -> Result<Option<u64>> {
        let saved = self.grow_state();
        match self.converting_in_memory(reserve_end, new_blocks) {
            Ok(true) => {
                self.sync()?;
                Ok(Some(self.sb.blocks_count))
            }
            Ok(false) => {
                log::info!("ext4: the grow goes in committed steps");
                self.undo_grow(saved);
                Ok(None)
            }
            Err(e) => {
                self.undo_grow(saved);
                Err(e)
            }
        }
    }

    /// The three parts of a converting grow, in memory; whether the transaction they make
    /// fits the journal.
    fn converting_in_memory(&mut self, reserve_end: u64, new_blocks: u64) -> Result<bool> {
        let old = self.sb.blocks_count;
        if self.sb.feature_compat & sb::COMPAT_RESIZE_INODE != 0 && old < reserve_end {
            let Some(plan) = self.plan_grow(reserve_end)? else {
                return Ok(false);
            };
            if plan.geo.blocks_count < reserve_end || !self.journal_fits(plan.journalled_blocks()) {
                return Ok(false);
            }
            self.apply_step(&plan)?;
        }
        self.apply_meta_bg()?;
        if let Some(plan) = self.plan_grow(new_blocks)? {
            self.apply_step(&plan)?;
        }
        // Until the commit the disk holds the old size: every block past it (what the first
        // part added, which the later parts change as blocks of their old file system) is
        // written in place before the log, as ordered data. Nothing past it was freed.
        for b in self.cache.dirty_blocks() {
            if b >= old {
                self.dirty_data.insert(b);
            }
        }
        Ok(self.journal_running_fits())
    }

    /// Grow to `new_blocks` (checked by [`Ext4::grow`]) within the current descriptor
    /// layout, in steps that fit the journal.
    fn grow_to(&mut self, new_blocks: u64) -> Result<u64> {
        loop {
            let now = self.sb.blocks_count;
            let groups = self.groups.len() as u64;
            let Some(mut plan) = self.plan_grow(new_blocks)? else {
                return Ok(now);
            };
            // A grow whose transaction does not fit the journal goes in steps of whole
            // groups, each committed: halve the groups added until one fits. Every step adds
            // blocks, so the loop ends.
            while !self.journal_fits(plan.journalled_blocks()) {
                let adding = plan.geo.groups - groups;
                if adding <= 1 {
                    return Err(Error::Unsupported {
                        what: "a grow by one group that does not fit the journal",
                    });
                }
                let target = plan.geo.group_first(groups + adding / 2);
                plan = match self.plan_grow(target)? {
                    Some(p) => p,
                    None => return Ok(now),
                };
            }
            self.step(&plan)?;
        }
    }

    /// Carry out one planned grow as one transaction, undone in memory if it fails before
    /// the commit.
    fn step(&mut self, plan: &plan::Plan) -> Result<()> {
        self.commit_or_undo(|fs| fs.apply_step(plan))
    }

    /// Carry out one planned grow in memory (the caller commits).
    fn apply_step(&mut self, plan: &plan::Plan) -> Result<()> {
        let reserved_old = plan.reserved_gdt + plan.desc_blocks - plan.desc_blocks_old;
        let dind = if self.sb.feature_compat & sb::COMPAT_RESIZE_INODE != 0 {
            Some(self.resize_inode_check(
                &plan.geo,
                plan.desc_blocks_old,
                reserved_old,
                plan.old_groups,
            )?)
        } else {
            None
        };
        log::info!(
            "ext4: growing from {} to {} blocks ({} groups)",
            self.sb.blocks_count,
            plan.geo.blocks_count,
            plan.geo.groups
        );
        self.apply_grow(plan, dind)
    }

    /// Run `change` (a grow step, or the conversion) and commit it as one transaction; if it
    /// fails before the commit, undo it in memory. Nothing reaches the disk before the
    /// commit but blocks outside the file system, so a failure on the way (a device error
    /// reading a block) leaves the disk as it was.
    fn commit_or_undo(&mut self, change: impl FnOnce(&mut Self) -> Result<()>) -> Result<()> {
        let saved = self.grow_state();
        if let Err(e) = change(self) {
            self.undo_grow(saved);
            self.build_system_zone()?;
            return Err(e);
        }
        self.build_system_zone()?;
        self.sync()
    }

    /// What a grow changes in memory besides the cache, to undo it.
    fn grow_state(&self) -> Saved {
        (self.sb.clone(), self.groups.clone(), self.ctx)
    }

    /// Drop the running transaction (a grow's, which started with none running: see
    /// [`Ext4::grow`]) before its commit: its dirty blocks, the blocks it freed, and the
    /// state `saved` before it.
    fn undo_grow(&mut self, saved: Saved) {
        for b in self.cache.dirty_blocks() {
            self.cache.invalidate(b);
        }
        self.dirty_data.clear();
        self.journal_forget_freed();
        (self.sb, self.groups, self.ctx) = saved;
    }
}

/// The superblock, descriptors and derived constants before a grow.
type Saved = (
    crate::ext4::Superblock,
    Vec<crate::ext4::GroupDesc>,
    crate::ext4::Ctx,
);
