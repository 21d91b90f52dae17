//! Mounting and unmounting: reading the superblock and group descriptors, the read-write
//! policy, clean/in-use state, and syncing. Also the raw block accessors every feature uses.

use crate::block::BlockDevice;
use crate::cache::BlockCache;
use crate::crc::{crc32c_raw, crc32c_raw_rechecked};
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::journal;
use crate::ext4::readahead::{Stream, RA_STREAMS};
use crate::ext4::sb::{s, GroupDesc, Superblock, SUPERBLOCK_OFFSET};
use crate::ext4::types::{Options, StatFs, Timestamp};
use crate::ext4::{sb, Ctx, Ext4, NAME_MAX};
use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;

/// The block-cache tag of the superblock's block while its cached bytes match their checksum
/// ([`Ext4::patch_sb`]); disjoint from the directory, inode and orphan-file blocks' tags.
const SB_TAG: u64 = 1 << 61;

/// `INCOMPAT_EXTENTS`: files may use extent trees.
const INCOMPAT_EXTENTS: u32 = 0x40;

/// INCOMPAT features the writer keeps consistent (meta_bg: descriptors found and their
/// groups' overhead counted with `gdt::GdtLayout`).
const RW_INCOMPAT: u32 = sb::INCOMPAT_FILETYPE
    | sb::INCOMPAT_META_BG
    | 0x40
    | sb::INCOMPAT_64BIT
    | 0x200
    | 0x2000
    | 0x4000;

/// RO_COMPAT features the writer keeps consistent (sparse_super, large_file, huge_file,
/// uninit_bg, dir_nlink, extra_isize, metadata_csum, orphan_present: reclaimed at mount).
const RW_RO_COMPAT: u32 = 0x1 | 0x2 | 0x8 | 0x10 | 0x20 | 0x40 | 0x400 | 0x1_0000;

/// COMPAT features that need no upkeep from this writer (has_journal: written by `journal::commit`,
/// ext_attr, resize_inode, dir_index, orphan_file with no orphans).
const RW_COMPAT: u32 = 0x4 | 0x8 | 0x10 | 0x20 | 0x1000;

impl<D: BlockDevice> Ext4<D> {
    /// Mount with default options.
    pub fn open(dev: D) -> Result<Self> {
        Self::open_with(dev, &Options::default())
    }

    /// Mount: read and validate the superblock and all group descriptors, apply the feature
    /// policy, and replay the journal in memory if it needs recovery.
    pub fn open_with(mut dev: D, opts: &Options) -> Result<Self> {
        let ss = dev.sector_size().max(1);
        let mut raw = vec![0u8; 2048usize.max(ss as usize)];
        let lba = 1024 / u64::from(ss);
        let off = (1024 % ss) as usize;
        let need = (off + 1024).div_ceil(ss as usize) * ss as usize;
        let chunk = raw.get_mut(..need).ok_or(Error::BadSuperblock {
            what: "sector size",
        })?;
        dev.read(lba, chunk)?;
        let sb = Superblock::parse(chunk.get(off..off + 1024).unwrap_or(&[]))?;
        let read_only_reason = sb.check_features()?;
        let bs = sb.block_size() as usize;
        if bs < ss as usize {
            return Err(Error::BadSuperblock {
                what: "block size smaller than sector size",
            });
        }
        let dev_blocks = dev.sector_count() / (bs as u64 / u64::from(ss));
        if sb.blocks_count > dev_blocks {
            return Err(Error::BadSuperblock {
                what: "file system larger than the device",
            });
        }
        let ctx = Ctx::new(&sb);
        let cache = BlockCache::new(bs, opts.cache_bytes);
        let mut fs = Ext4 {
            dev,
            cache,
            sb,
            groups: Vec::new(),
            ctx,
            read_only_reason,
            overlay: BTreeMap::new(),
            scratch: Vec::new(),
            writable: false,
            clock: Timestamp::default(),
            dirty_data: alloc::collections::BTreeSet::new(),
            pins: BTreeMap::new(),
            orphans: super::orphan::Orphans::default(),
            jnl: None,
            ra_last: [Stream::default(); RA_STREAMS],
            ra_next: 0,
            zone: super::zone::SystemZone::default(),
            refused: alloc::collections::BTreeSet::new(),
        };
        if fs.sb.feature_incompat & sb::INCOMPAT_RECOVER != 0 {
            if fs.sb.feature_compat & sb::COMPAT_HAS_JOURNAL == 0 || fs.sb.journal_inum == 0 {
                return Err(Error::JournalRecovery {
                    what: "external journal",
                });
            }
            // The journal inode's group descriptor is needed to find it; a replay may
            // rewrite them, so they are loaded again afterwards. Only that far: a grow cut
            // in its checkpoint may have left a larger group count home before the
            // descriptor blocks that describe the new groups.
            let ipg = u64::from(fs.sb.inodes_per_group.max(1));
            fs.load_groups(Some(
                u64::from(fs.sb.journal_inum.saturating_sub(1)) / ipg + 1,
            ))?;
            let (replayed, _) = journal::replay(&mut fs)?;
            fs.overlay = replayed;
            fs.cache = BlockCache::new(bs, opts.cache_bytes);
            // The journal may hold a newer superblock (byte 1024 of the device).
            let sb_blk = 1024 / bs as u64;
            let sb_off = 1024 % bs;
            if let Some(b) = fs.overlay.get(&sb_blk) {
                if let Some(raw) = b.get(sb_off..sb_off + 1024) {
                    let newer = Superblock::parse(raw)?;
                    // A grow commits a larger size: it must still fit the device.
                    if newer.block_size() != fs.sb.block_size() || newer.blocks_count > dev_blocks {
                        return Err(Error::JournalRecovery {
                            what: "journalled superblock geometry",
                        });
                    }
                    newer.check_features()?;
                    fs.ctx = Ctx::new(&newer);
                    fs.sb = newer;
                }
            }
            fs.read_only_reason = Some(journal::REPLAYED_IN_MEMORY);
        }
        fs.load_groups(None)?;
        fs.build_system_zone()?;
        Ok(fs)
    }

    /// Read the group descriptors (the first `limit` of them, or all).
    fn load_groups(&mut self, limit: Option<u64>) -> Result<()> {
        let n = self.sb.group_count().min(limit.unwrap_or(u64::MAX));
        let mut groups = Vec::with_capacity(n.min(1 << 20) as usize);
        let seed = self.ctx.seed;
        let sb = self.sb.clone();
        for g in 0..n {
            let (blk, off) = self.desc_location(g as usize);
            let b = self.block(blk)?;
            let d = b.get(off..).unwrap_or(&[]);
            let gd = GroupDesc::parse(d, g as u32, &sb, seed)?;
            if gd.inode_table == 0 || gd.inode_table >= sb.blocks_count {
                return corrupt("group descriptor inode table", g);
            }
            groups.push(gd);
        }
        self.groups = groups;
        Ok(())
    }

    /// A metadata block through the cache (and the journal overlay).
    pub(crate) fn block(&mut self, blk: u64) -> Result<&[u8]> {
        if blk >= self.ctx.blocks_count {
            return corrupt("block number", blk);
        }
        if let Some(b) = self.overlay.get(&blk) {
            return Ok(b);
        }
        Ok(self.cache.get(&mut self.dev, blk)?)
    }

    /// What [`set_block_checked`](Self::set_block_checked) recorded for metadata block
    /// `blk`, while the cache holds the same bytes (never for a block the journal overlay
    /// supplies).
    pub(crate) fn block_checked(&self, blk: u64) -> Option<u64> {
        if self.overlay.contains_key(&blk) {
            return None;
        }
        self.cache.checked(blk)
    }

    /// Records that the bytes of metadata block `blk` in the cache were verified under `tag`
    /// (see [`BlockCache::checked`](crate::cache::BlockCache::checked)).
    pub(crate) fn set_block_checked(&mut self, blk: u64, tag: u64) {
        if !self.overlay.contains_key(&blk) {
            self.cache.set_checked(blk, tag);
        }
    }

    /// The superblock.
    pub fn superblock(&self) -> &Superblock {
        &self.sb
    }

    /// Group descriptors.
    pub fn groups(&self) -> &[GroupDesc] {
        &self.groups
    }

    /// Why the file system must not be written, if it must not (unknown RO_COMPAT feature,
    /// journal replayed only in memory).
    pub fn read_only_reason(&self) -> Option<&'static str> {
        self.read_only_reason
    }

    /// The time stamped on inodes changed now (see [`Ext4::set_clock`]).
    pub fn clock(&self) -> Timestamp {
        self.clock
    }

    /// Whether the engine was mounted read-write ([`Ext4::open_rw`]).
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    /// The block cache (for statistics).
    pub fn cache(&self) -> &BlockCache {
        &self.cache
    }

    /// The underlying device, e.g. for a driver to react to its backend going away. Reads
    /// and writes must go through the engine, not this reference.
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.dev
    }

    /// Give the device back.
    pub fn into_device(self) -> D {
        self.dev
    }

    /// File-system statistics.
    pub fn statfs(&self) -> StatFs {
        let sb = &self.sb;
        let u = sb.uuid;
        let w = |i: usize| u64::from(le32(&u, i));
        StatFs {
            block_size: sb.block_size(),
            blocks: sb.blocks_count,
            free_blocks: sb.free_blocks_count,
            avail_blocks: sb.free_blocks_count.saturating_sub(sb.r_blocks_count),
            inodes: u64::from(sb.inodes_count),
            free_inodes: u64::from(sb.free_inodes_count),
            name_max: NAME_MAX as u32,
            fsid: (w(0) ^ w(8)) | ((w(4) ^ w(12)) << 32),
        }
    }

    /// Mount read-write. A journal that needs recovery (a crash) is replayed first, for
    /// real. Refuses (with the feature's name) images with features this writer cannot keep
    /// consistent, or (without a journal) a file system not cleanly unmounted. Orphans left
    /// by a crash are reclaimed (see `orphan.rs`). Changes are kept in the block cache
    /// until [`Ext4::sync`].
    pub fn open_rw(dev: D, opts: &Options) -> Result<Self> {
        let dev = Self::recover(dev, opts)?;
        let sb0 = {
            let mut fs = Self::open_with(dev, opts)?;
            fs.check_writable()?;
            if fs.sb.feature_incompat & sb::INCOMPAT_RECOVER != 0 || !fs.overlay.is_empty() {
                return Err(Error::JournalRecovery {
                    what: "journal still needs recovery",
                });
            }
            fs.writable = true;
            fs.clock = Timestamp {
                sec: i64::from(fs.sb.wtime),
                nsec: 0,
            };
            fs.journal_load()?;
            // Mark the file system in use until `close`: with a journal `needs_recovery` (a
            // crash in between makes the next mount replay), else not cleanly unmounted (a
            // crash sends the next mount to e2fsck).
            fs.set_sb_state(false)?;
            fs.journal_write_state()?;
            fs.reclaim_orphans()?;
            fs.sync()?;
            fs
        };
        Ok(sb0)
    }

    /// Whether [`Ext4::open_rw`] would accept this file system (features the writer
    /// maintains, clean state, usual geometry): the refusal it would give, if any. Lets an
    /// embedder mount read-only first and decide without losing the device.
    pub fn check_writable(&self) -> Result<()> {
        if self.dev.read_only() {
            return Err(Error::ReadOnly {
                reason: "the device is read-only",
            });
        }
        // A journal that needs recovery is replayed for real by `open_rw`.
        let recovering = self.sb.feature_incompat & sb::INCOMPAT_RECOVER != 0
            && self.sb.feature_compat & sb::COMPAT_HAS_JOURNAL != 0
            && self.sb.journal_inum != 0;
        if let Some(reason) = self.read_only_reason {
            if !(recovering && reason == journal::REPLAYED_IN_MEMORY) {
                return Err(Error::ReadOnly { reason });
            }
        }
        let s = &self.sb;
        let check = |bits: u32, ok: u32, table: &[(u32, &'static str)]| -> Result<()> {
            let bad = bits & !ok;
            if bad != 0 {
                let bit = 1u32 << bad.trailing_zeros();
                return Err(Error::UnsupportedFeature {
                    name: sb::feature_name(table, bit),
                    bit,
                });
            }
            Ok(())
        };
        let recover_bit = if recovering { sb::INCOMPAT_RECOVER } else { 0 };
        check(
            s.feature_incompat & !recover_bit,
            RW_INCOMPAT,
            sb::INCOMPAT_NAMES,
        )?;
        check(s.feature_ro_compat, RW_RO_COMPAT, sb::RO_COMPAT_NAMES)?;
        check(s.feature_compat, RW_COMPAT, sb::COMPAT_NAMES)?;
        if s.feature_incompat & INCOMPAT_EXTENTS == 0 {
            // New files get extent trees; without the feature they would be invalid.
            return Err(Error::ReadOnly {
                reason: "no extent feature (ext2/ext3 layout): the writer makes extent-mapped files only",
            });
        }
        if s.state & 1 == 0 || s.state & 2 != 0 {
            return Err(Error::ReadOnly {
                reason: "file system not clean (run e2fsck)",
            });
        }
        if s.block_size() < 1024 || self.sb.inode_size < 128 {
            return Err(Error::ReadOnly {
                reason: "unusual geometry",
            });
        }
        Ok(())
    }

    /// Write everything back, mark the file system cleanly unmounted, and give the device
    /// back. Dropping a read-write engine without `close` leaves it marked in use.
    pub fn close(mut self) -> Result<D> {
        if self.writable {
            self.release_pins()?;
            self.sync()?;
            self.set_sb_state(true)?;
            if self.journalled() {
                self.journal_write_state()?;
            } else {
                self.sync()?;
            }
        }
        Ok(self.dev)
    }

    /// Mark the file system cleanly unmounted or in use (checksum updated): with a journal,
    /// as Linux, by clearing or setting `needs_recovery`; without, `EXT2_VALID_FS` in the
    /// state.
    fn set_sb_state(&mut self, clean: bool) -> Result<()> {
        let journalled = self.journalled();
        self.patch_sb(|raw| {
            if journalled {
                let inc = le32(raw, s::FEATURE_INCOMPAT);
                let recover = sb::INCOMPAT_RECOVER;
                put32(
                    raw,
                    s::FEATURE_INCOMPAT,
                    if clean { inc & !recover } else { inc | recover },
                );
            } else {
                let st = le16(raw, s::STATE);
                put16(raw, s::STATE, if clean { st | 1 } else { st & !1 });
            }
        })
    }

    /// Change the superblock's raw bytes with `f`, then re-checksum them and refresh the
    /// parsed state and feature flags (the free counts are [`Ext4::adjust_sb`]'s). Every
    /// change of the superblock goes through here.
    pub(crate) fn patch_sb<R>(&mut self, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        let bs = self.ctx.bs;
        let (blk, off) = (
            (SUPERBLOCK_OFFSET as usize / bs) as u64,
            SUPERBLOCK_OFFSET as usize % bs,
        );
        let csum = self.ctx.csum;
        // The checksum follows the bytes `f` changes instead of being computed anew when the
        // cached superblock is known to match it: this function wrote or verified it since the
        // cache read the block (its tag, which any other change of the block drops). Otherwise
        // the bytes before the change are checked first, and a superblock that no longer
        // matches (file data of a hostile image mapped over it, a disk that changed it) is
        // refused rather than given a checksum.
        if csum && self.block_checked(blk) != Some(SB_TAG) {
            sb::verify_sb_csum(self.block(blk)?.get(off..off + 1024).unwrap_or(&[]))?;
        }
        let b = self.block_mut(blk)?;
        let raw = b.get_mut(off..off + 1024).ok_or(Error::BadSuperblock {
            what: "superblock location",
        })?;
        let mut before = [0u8; s::CHECKSUM];
        if let Some(x) = raw.get(..s::CHECKSUM) {
            before.copy_from_slice(x);
        }
        let r = f(raw);
        if csum {
            let stored = le32(raw, s::CHECKSUM);
            let now = raw.get(..s::CHECKSUM).unwrap_or(&[]);
            let c =
                crc32c_raw_rechecked(stored, &before, now).unwrap_or_else(|| crc32c_raw(!0, now));
            debug_assert_eq!(c, crc32c_raw(!0, now), "superblock checksum carried over");
            put32(raw, s::CHECKSUM, c);
        }
        let state = le16(raw, s::STATE);
        let (incompat, ro_compat) = (
            le32(raw, s::FEATURE_INCOMPAT),
            le32(raw, s::FEATURE_RO_COMPAT),
        );
        self.sb.state = state;
        self.sb.feature_incompat = incompat;
        self.sb.feature_ro_compat = ro_compat;
        if csum {
            self.set_block_checked(blk, SB_TAG);
        }
        Ok(r)
    }

    /// The superblock's raw 32-bit field at `off` (as in the block cache).
    pub(crate) fn sb_u32(&mut self, off: usize) -> Result<u32> {
        let bs = self.ctx.bs;
        let b = self.block((SUPERBLOCK_OFFSET as usize / bs) as u64)?;
        Ok(le32(b, SUPERBLOCK_OFFSET as usize % bs + off))
    }

    /// Set the time stamped on inodes changed from now on (the engine has no clock).
    pub fn set_clock(&mut self, t: Timestamp) {
        self.clock = t;
    }

    /// Make every change durable (syncfs). With a journal: one transaction, committed and
    /// checkpointed (see `journal::commit`). Without: file data first, a flush, then metadata and a
    /// flush.
    pub fn sync(&mut self) -> Result<()> {
        if self.journalled() {
            return self.journal_commit();
        }
        let data = core::mem::take(&mut self.dirty_data);
        let r = self
            .cache
            .write_back(&mut self.dev, |b| data.contains(&b))
            .and_then(|_| self.cache.write_back(&mut self.dev, |_| true));
        if r.is_err() {
            self.dirty_data = data;
        }
        r?;
        Ok(())
    }

    pub(crate) fn ensure_rw(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly {
                reason: "mounted read-only",
            })
        }
    }

    /// Write back when the dirty set outgrows the cache budget.
    pub(crate) fn maybe_sync(&mut self) -> Result<()> {
        if self.cache.dirty_count() > self.cache.capacity() || self.journal_wants_commit() {
            self.sync()?;
        }
        Ok(())
    }

    pub(crate) fn block_mut(&mut self, blk: u64) -> Result<&mut [u8]> {
        if blk >= self.ctx.blocks_count {
            return corrupt("block number", blk);
        }
        Ok(self.cache.get_mut(&mut self.dev, blk)?)
    }

    pub(crate) fn block_new(&mut self, blk: u64) -> Result<&mut [u8]> {
        if blk >= self.ctx.blocks_count {
            return corrupt("block number", blk);
        }
        Ok(self.cache.get_zeroed_mut(&mut self.dev, blk)?)
    }
}
