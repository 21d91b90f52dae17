//! The write path (first slice): read-write mount policy, block and inode allocation with
//! bitmaps, free counts, `BLOCK_UNINIT`/`INODE_UNINIT` and checksums, and `mkdir`, `create`,
//! `write` and `unlink` in linear directories. Files and directories use extent trees of any
//! depth (see `extent_write`). Changes live in the block cache (write-back) until
//! [`Ext4::sync`], which commits them as one jbd2 transaction in the internal journal (see
//! `jwrite`): a crash leaves the image as of the last commit, and the next read-write mount
//! replays the journal. Without a journal (`has_journal` clear) sync writes back directly and
//! a crash between two syncs can leave the image inconsistent. Symlinks, hard links, special
//! files, `setattr` (and more namespace operations) are in `write/namei.rs`; directories grow
//! into htree (conversion, leaf and index splits, a second level) in `dx_write.rs`; extended
//! attributes are written in `xattr_write.rs`.

use super::extent_write::{find, set_written, store_root_leaf, Ext, MAX_INIT};
use super::sb::{self, GroupDesc};
use super::{
    corrupt, crc32c_raw, flags, le16, le32, valid_name, Ctx, Error, Ext4, FileType, Ino, Options,
    Result, Timestamp, NAME_MAX, S_IFDIR, S_IFMT,
};
use crate::block::BlockDevice;
use alloc::vec;
use alloc::vec::Vec;

mod ialloc;
mod namei;
mod orphan;

const S_IFREG: u16 = 0x8000;
const BG_INODE_UNINIT: u16 = 0x1;
const BG_BLOCK_UNINIT: u16 = 0x2;
const EXT4_LINK_MAX: u16 = 65000;
/// Free blocks [`Ext4::write_would_fit`] keeps beyond the worst case of a write's data and
/// leaf blocks: extent index levels and anything else a write may allocate.
const WRITE_FIT_MARGIN: u64 = 64;
/// `INCOMPAT_EXTENTS`: files may use extent trees.
const INCOMPAT_EXTENTS: u32 = 0x40;

/// INCOMPAT features the writer keeps consistent.
const RW_INCOMPAT: u32 =
    sb::INCOMPAT_FILETYPE | 0x40 | sb::INCOMPAT_64BIT | 0x200 | 0x2000 | 0x4000;
/// RO_COMPAT features the writer keeps consistent (sparse_super, large_file, huge_file,
/// uninit_bg, dir_nlink, extra_isize, metadata_csum, orphan_present: reclaimed at mount).
const RW_RO_COMPAT: u32 = 0x1 | 0x2 | 0x8 | 0x10 | 0x20 | 0x40 | 0x400 | 0x1_0000;
/// COMPAT features that need no upkeep from this writer (has_journal: written by `jwrite`,
/// ext_attr, resize_inode, dir_index, orphan_file with no orphans).
const RW_COMPAT: u32 = 0x4 | 0x8 | 0x10 | 0x20 | 0x1000;

pub(super) fn put16(b: &mut [u8], off: usize, v: u16) {
    if let Some(d) = b.get_mut(off..off + 2) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}
pub(super) fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(d) = b.get_mut(off..off + 4) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}
fn bit(b: &[u8], i: usize) -> bool {
    b.get(i / 8).is_some_and(|x| x & (1 << (i % 8)) != 0)
}
fn set_bit(b: &mut [u8], i: usize, on: bool) {
    if let Some(x) = b.get_mut(i / 8) {
        if on {
            *x |= 1 << (i % 8);
        } else {
            *x &= !(1 << (i % 8));
        }
    }
}

/// One extent of a new inode's depth-0 tree: (first logical block, length, first physical
/// block).
pub(super) type Extent = (u32, u16, u64);

/// Write a depth-0 extent root holding `ext` (at most 4 initialized extents) into `iblock`,
/// for inodes being set up. Later changes go through the extent tree code
/// (`Ext4::store_tree`).
pub(super) fn store_extents(iblock: &mut [u8], ext: &[Extent]) {
    let v: Vec<Ext> = ext
        .iter()
        .map(|&(l, n, p)| Ext {
            l,
            n: u32::from(n),
            p,
            u: false,
        })
        .collect();
    store_root_leaf(iblock, &v);
}

/// Add `delta` file-system blocks to the raw inode's `i_blocks` (512-byte units, or blocks
/// for a `HUGE_FILE` inode).
pub(super) fn add_iblocks(raw: &mut [u8], delta: i64, bs: usize) {
    let unit = if le32(raw, 0x20) & flags::HUGE_FILE != 0 {
        1
    } else {
        (bs / 512) as i64
    };
    let cur = u64::from(le32(raw, 0x1C)) | u64::from(le16(raw, 0x74)) << 32;
    let v = cur.saturating_add_signed(delta.saturating_mul(unit));
    put32(raw, 0x1C, v as u32);
    put16(raw, 0x74, (v >> 32) as u16);
}

/// Inode checksum (as Linux `ext4_inode_csum`): fields 0x7C and 0x82 count as zero.
fn inode_csum(ctx: &Ctx, ino: Ino, raw: &[u8]) -> u32 {
    let generation = le32(raw, 0x64);
    let mut seed = crc32c_raw(ctx.seed, &ino.to_le_bytes());
    seed = crc32c_raw(seed, &generation.to_le_bytes());
    let extra = if raw.len() > 128 {
        usize::from(le16(raw, 0x80))
    } else {
        0
    };
    let mut c = crc32c_raw(seed, raw.get(..0x7C).unwrap_or(&[]));
    c = crc32c_raw(c, &[0, 0]);
    c = crc32c_raw(c, raw.get(0x7E..0x80).unwrap_or(&[]));
    if raw.len() > 128 {
        c = crc32c_raw(c, raw.get(0x80..0x82).unwrap_or(&[]));
        if extra >= 4 {
            c = crc32c_raw(c, &[0, 0]);
            c = crc32c_raw(c, raw.get(0x84..).unwrap_or(&[]));
        } else {
            c = crc32c_raw(c, raw.get(0x82..).unwrap_or(&[]));
        }
    }
    c
}

fn set_inode_csum(ctx: &Ctx, ino: Ino, raw: &mut [u8]) {
    if !ctx.csum {
        return;
    }
    let c = inode_csum(ctx, ino, raw);
    put16(raw, 0x7C, c as u16);
    if raw.len() > 128 && le16(raw, 0x80) >= 4 {
        put16(raw, 0x82, (c >> 16) as u16);
    }
}

pub(super) fn set_time(raw: &mut [u8], base: usize, extra: Option<usize>, t: Timestamp) {
    put32(raw, base, t.sec as u32);
    if let Some(x) = extra {
        if raw.len() > 128 && 128 + usize::from(le16(raw, 0x80)) >= x + 4 {
            let epoch = (t.sec.wrapping_sub(i64::from(t.sec as i32)) >> 32) as u32 & 3;
            put32(raw, x, epoch | (t.nsec.min(999_999_999) << 2));
        }
    }
}

pub(super) fn set_mtime_ctime(raw: &mut [u8], t: Timestamp) {
    set_time(raw, 0x10, Some(0x88), t);
    set_time(raw, 0xC, Some(0x84), t);
}

pub(super) fn dir_tail(ctx: &Ctx, b: &mut [u8], seed: u32) {
    if !ctx.csum {
        return;
    }
    let t = ctx.bs - 12;
    put32(b, t, 0);
    put16(b, t + 4, 12);
    if let Some(x) = b.get_mut(t + 6..t + 8) {
        x.copy_from_slice(&[0, 0xDE]);
    }
    let c = crc32c_raw(seed, b.get(..t).unwrap_or(&[]));
    put32(b, t + 8, c);
}

pub(super) fn dirent(b: &mut [u8], off: usize, ino: Ino, rec: usize, name: &[u8], t: u8) {
    put32(b, off, ino);
    put16(b, off + 4, rec as u16);
    if let Some(x) = b.get_mut(off + 6..off + 8) {
        x.copy_from_slice(&[name.len() as u8, t]);
    }
    if let Some(x) = b.get_mut(off + 8..off + 8 + name.len()) {
        x.copy_from_slice(name);
    }
}

/// The directory entry `file_type` byte for `kind`.
fn dirent_type(kind: FileType) -> u8 {
    match kind {
        FileType::Regular | FileType::Unknown => 1,
        FileType::Directory => 2,
        FileType::CharDev => 3,
        FileType::BlockDev => 4,
        FileType::Fifo => 5,
        FileType::Socket => 6,
        FileType::Symlink => 7,
    }
}

pub(super) fn rec_need(name_len: usize) -> usize {
    (8 + name_len + 3) & !3
}

impl<D: BlockDevice> Ext4<D> {
    /// Mount read-write. A journal that needs recovery (a crash) is replayed first, for
    /// real. Refuses (with the feature's name) images with features this writer cannot keep
    /// consistent, or (without a journal) a file system not cleanly unmounted. Orphans left
    /// by a crash are reclaimed (see `write/orphan.rs`). Changes are kept in the block cache
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
            if !(recovering && reason == super::journal::REPLAYED_IN_MEMORY) {
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
        let bs = self.ctx.bs;
        let (blk, off) = ((1024 / bs) as u64, 1024 % bs);
        let csum = self.ctx.csum;
        let b = self.block_mut(blk)?;
        let raw = b.get_mut(off..off + 1024).ok_or(Error::BadSuperblock {
            what: "superblock location",
        })?;
        if journalled {
            let inc = le32(raw, 0x60);
            let recover = sb::INCOMPAT_RECOVER;
            put32(
                raw,
                0x60,
                if clean { inc & !recover } else { inc | recover },
            );
        } else {
            let st = le16(raw, 0x3A);
            put16(raw, 0x3A, if clean { st | 1 } else { st & !1 });
        }
        if csum {
            let c = crc32c_raw(!0, raw.get(..0x3FC).unwrap_or(&[]));
            put32(raw, 0x3FC, c);
        }
        let (state, incompat) = (le16(raw, 0x3A), le32(raw, 0x60));
        self.sb.state = state;
        self.sb.feature_incompat = incompat;
        Ok(())
    }

    /// Set the time stamped on inodes changed from now on (the engine has no clock).
    pub fn set_clock(&mut self, t: Timestamp) {
        self.clock = t;
    }

    /// Make every change durable (syncfs). With a journal: one transaction, committed and
    /// checkpointed (see `jwrite`). Without: file data first, a flush, then metadata and a
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

    pub(super) fn ensure_rw(&self) -> Result<()> {
        if self.writable {
            Ok(())
        } else {
            Err(Error::ReadOnly {
                reason: "mounted read-only",
            })
        }
    }

    /// Write back when the dirty set outgrows the cache budget.
    pub(super) fn maybe_sync(&mut self) -> Result<()> {
        if self.cache.dirty_count() > self.cache.capacity() || self.journal_wants_commit() {
            self.sync()?;
        }
        Ok(())
    }

    pub(super) fn block_mut(&mut self, blk: u64) -> Result<&mut [u8]> {
        if blk >= self.ctx.blocks_count {
            return corrupt("block number", blk);
        }
        Ok(self.cache.get_mut(&mut self.dev, blk)?)
    }

    pub(super) fn block_new(&mut self, blk: u64) -> Result<&mut [u8]> {
        if blk >= self.ctx.blocks_count {
            return corrupt("block number", blk);
        }
        Ok(self.cache.get_zeroed_mut(&mut self.dev, blk)?)
    }

    // ---- superblock and group descriptors ----

    fn adjust_sb(&mut self, dblocks: i64, dinodes: i64) -> Result<()> {
        let bs = self.ctx.bs;
        let (blk, off) = ((1024 / bs) as u64, 1024 % bs);
        let csum = self.ctx.csum;
        let b = self.block_mut(blk)?;
        let raw = b.get_mut(off..off + 1024).ok_or(Error::BadSuperblock {
            what: "superblock location",
        })?;
        let fb = (u64::from(le32(raw, 0x158)) << 32 | u64::from(le32(raw, 0xC)))
            .checked_add_signed(dblocks)
            .ok_or(Error::Corrupt {
                what: "superblock free blocks",
                at: 0,
            })?;
        let fi = u64::from(le32(raw, 0x10))
            .checked_add_signed(dinodes)
            .ok_or(Error::Corrupt {
                what: "superblock free inodes",
                at: 0,
            })?;
        put32(raw, 0xC, fb as u32);
        put32(raw, 0x158, (fb >> 32) as u32);
        put32(raw, 0x10, fi as u32);
        if csum {
            let c = crc32c_raw(!0, raw.get(..0x3FC).unwrap_or(&[]));
            put32(raw, 0x3FC, c);
        }
        self.sb.free_blocks_count = fb;
        self.sb.free_inodes_count = fi as u32;
        Ok(())
    }

    /// Store group descriptor `g` (from `self.groups`) with optional bitmap checksums.
    fn store_gd(&mut self, g: usize, bb_csum: Option<u32>, ib_csum: Option<u32>) -> Result<()> {
        let gd = *self.groups.get(g).ok_or(Error::Corrupt {
            what: "group number",
            at: g as u64,
        })?;
        let ds = usize::from(self.sb.desc_size);
        let per = self.ctx.bs / ds.max(1);
        let blk = u64::from(self.sb.first_data_block) + 1 + (g / per) as u64;
        let off = (g % per) * ds;
        let ctx = self.ctx;
        let seed = ctx.seed;
        let gdt_csum = self.sb.feature_ro_compat & sb::RO_COMPAT_GDT_CSUM != 0;
        let uuid = self.sb.uuid;
        let b = self.block_mut(blk)?;
        let d = b.get_mut(off..off + ds).ok_or(Error::Corrupt {
            what: "group descriptor",
            at: g as u64,
        })?;
        let is64 = ds >= 64;
        put16(d, 0xC, gd.free_blocks as u16);
        put16(d, 0xE, gd.free_inodes as u16);
        put16(d, 0x10, gd.used_dirs as u16);
        put16(d, 0x12, gd.flags);
        put16(d, 0x1C, gd.itable_unused as u16);
        if is64 {
            put16(d, 0x2C, (gd.free_blocks >> 16) as u16);
            put16(d, 0x2E, (gd.free_inodes >> 16) as u16);
            put16(d, 0x30, (gd.used_dirs >> 16) as u16);
            put16(d, 0x32, (gd.itable_unused >> 16) as u16);
        }
        if ctx.csum {
            if let Some(c) = bb_csum {
                put16(d, 0x18, c as u16);
                if is64 {
                    put16(d, 0x38, (c >> 16) as u16);
                }
            }
            if let Some(c) = ib_csum {
                put16(d, 0x1A, c as u16);
                if is64 {
                    put16(d, 0x3A, (c >> 16) as u16);
                }
            }
            let mut c = crc32c_raw(seed, &(g as u32).to_le_bytes());
            c = crc32c_raw(c, d.get(..0x1E).unwrap_or(&[]));
            c = crc32c_raw(c, &[0, 0]);
            c = crc32c_raw(c, d.get(0x20..).unwrap_or(&[]));
            put16(d, 0x1E, c as u16);
        } else if gdt_csum {
            let mut c = sb::crc16(!0, &uuid);
            c = sb::crc16(c, &(g as u32).to_le_bytes());
            c = sb::crc16(c, d.get(..0x1E).unwrap_or(&[]));
            if is64 {
                c = sb::crc16(c, d.get(0x20..).unwrap_or(&[]));
            }
            put16(d, 0x1E, c);
        }
        Ok(())
    }

    fn group_start(&self, g: u64) -> u64 {
        u64::from(self.sb.first_data_block) + g * u64::from(self.sb.blocks_per_group)
    }

    fn blocks_in_group(&self, g: u64) -> u64 {
        let start = self.group_start(g);
        self.ctx
            .blocks_count
            .saturating_sub(start)
            .min(u64::from(self.sb.blocks_per_group))
    }

    /// Build the block bitmap of a `BLOCK_UNINIT` group: its superblock backup, descriptor
    /// and reserved descriptor blocks, and every group's bitmaps and inode table that lie in
    /// it. The result must agree with the descriptor's free count.
    fn init_block_bitmap(&mut self, g: usize) -> Result<()> {
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
        if self.sb.group_has_super(gu) {
            let per = (bs / usize::from(self.sb.desc_size).max(1)) as u64;
            let gdt = self.sb.group_count().div_ceil(per.max(1));
            let sbo = 1024 / bs;
            let raw_sb = self.block(sbo as u64)?;
            let reserved = u64::from(le16(raw_sb, 1024 % bs + 0xCE));
            mark(start, 1 + gdt + reserved, &mut bm);
        }
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
        let dst = self.block_new(gd.block_bitmap)?;
        dst.copy_from_slice(&bm);
        if let Some(d) = self.groups.get_mut(g) {
            d.flags &= !BG_BLOCK_UNINIT;
        }
        Ok(())
    }

    fn block_bitmap_csum(&mut self, gd: &GroupDesc) -> Result<u32> {
        let n = (self.sb.clusters_per_group / 8) as usize;
        let seed = self.ctx.seed;
        let b = self.block(gd.block_bitmap)?;
        Ok(crc32c_raw(seed, b.get(..n).unwrap_or(b)))
    }

    fn inode_bitmap_csum(&mut self, gd: &GroupDesc) -> Result<u32> {
        let n = (self.sb.inodes_per_group / 8) as usize;
        let seed = self.ctx.seed;
        let b = self.block(gd.inode_bitmap)?;
        Ok(crc32c_raw(seed, b.get(..n).unwrap_or(b)))
    }

    // ---- block allocation ----

    /// Allocate up to `max` contiguous blocks near `goal`: the run starting at `goal` when
    /// that block is free (so a file grows contiguously), else the first run of `max` free
    /// blocks after it (in the goal's group, then the following groups, wrapping around),
    /// else the longest free run there is (groups with fewer free blocks than the longest
    /// run found so far are skipped). Returns (first block, count ≥ 1).
    pub(super) fn alloc_blocks(&mut self, goal: u64, max: u32) -> Result<(u64, u32)> {
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

    pub(super) fn free_blocks(&mut self, first: u64, count: u64) -> Result<()> {
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

    // ---- inode allocation ----

    /// Allocate an inode for a child of `parent`, in the group the spreading policy picks
    /// (see `write/ialloc.rs`), else the next group with a free inode.
    fn alloc_inode(&mut self, dir: bool, parent: Ino) -> Result<Ino> {
        let ipg = self.sb.inodes_per_group;
        let first_ino = self.sb.first_ino.max(11);
        let ng = self.groups.len();
        let g0 = self.inode_group(dir, parent);
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
            let c = self.inode_bitmap_csum(&gd)?;
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
        Err(Error::NoSpace)
    }

    fn free_inode(&mut self, ino: Ino, dir: bool) -> Result<()> {
        let ipg = self.sb.inodes_per_group.max(1);
        let g = ((ino - 1) / ipg) as usize;
        let i = ((ino - 1) % ipg) as usize;
        let gd = self.groups.get(g).copied().ok_or(Error::BadInode { ino })?;
        let bm = self.block_mut(gd.inode_bitmap)?;
        if !bit(bm, i) {
            return corrupt("freeing a free inode", u64::from(ino));
        }
        set_bit(bm, i, false);
        let c = self.inode_bitmap_csum(&gd)?;
        if let Some(d) = self.groups.get_mut(g) {
            d.free_inodes = d.free_inodes.saturating_add(1);
            if dir {
                d.used_dirs = d.used_dirs.saturating_sub(1);
            }
        }
        self.store_gd(g, None, Some(c))?;
        self.adjust_sb(0, 1)
    }

    // ---- inodes ----

    fn inode_loc(&self, ino: Ino) -> Result<(u64, usize)> {
        let ctx = self.ctx;
        if ino == 0 || ino > ctx.inodes_count {
            return Err(Error::BadInode { ino });
        }
        let idx = ino - 1;
        let g = (idx / ctx.inodes_per_group) as usize;
        let gd = self.groups.get(g).ok_or(Error::BadInode { ino })?;
        let byte = u64::from(idx % ctx.inodes_per_group) * ctx.inode_size as u64;
        let blk = gd
            .inode_table
            .checked_add(byte / ctx.bs as u64)
            .ok_or(Error::BadInode { ino })?;
        Ok((blk, (byte % ctx.bs as u64) as usize))
    }

    /// Change inode `ino`'s raw bytes with `f`, then re-checksum it.
    pub(super) fn patch_inode<R>(&mut self, ino: Ino, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        let (blk, off) = self.inode_loc(ino)?;
        let ctx = self.ctx;
        let b = self.block_mut(blk)?;
        let raw = b
            .get_mut(off..off + ctx.inode_size)
            .ok_or(Error::BadInode { ino })?;
        let r = f(raw);
        set_inode_csum(&ctx, ino, raw);
        Ok(r)
    }

    fn new_inode(&mut self, ino: Ino, mode: u16, uid: u32, gid: u32, links: u16) -> Result<u32> {
        let t = self.clock;
        let generation = (t.sec as u32).wrapping_mul(2_654_435_761) ^ ino;
        let extra = (self.sb.min_extra_isize.max(32) as usize).min(self.ctx.inode_size - 128);
        self.patch_inode(ino, |raw| {
            raw.fill(0);
            put16(raw, 0, mode);
            put16(raw, 0x2, uid as u16);
            put16(raw, 0x78, (uid >> 16) as u16);
            put16(raw, 0x18, gid as u16);
            put16(raw, 0x7A, (gid >> 16) as u16);
            put16(raw, 0x1A, links);
            put32(raw, 0x20, flags::EXTENTS);
            put32(raw, 0x64, generation);
            if raw.len() > 128 {
                put16(raw, 0x80, (extra & !3) as u16);
            }
            set_time(raw, 0x8, Some(0x8C), t);
            set_mtime_ctime(raw, t);
            set_time(raw, 0x90, Some(0x94), t);
            if let Some(ib) = raw.get_mut(0x28..0x64) {
                store_extents(ib, &[]);
            }
        })?;
        Ok(generation)
    }

    pub(super) fn inode_seed(&self, ino: Ino, generation: u32) -> u32 {
        let s = crc32c_raw(self.ctx.seed, &ino.to_le_bytes());
        crc32c_raw(s, &generation.to_le_bytes())
    }

    // ---- directories ----

    /// Check that `name` can be added to `dir` (a linear, block-based directory).
    fn check_new_entry(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        self.ensure_rw()?;
        if name.len() > NAME_MAX || !valid_name(name) || name == b"." || name == b".." {
            return Err(Error::InvalidName);
        }
        let inode = self.dir_inode(dir)?;
        if inode.flags & flags::INDEX != 0 && !self.ctx.dir_index {
            return Err(Error::Unsupported {
                what: "adding an entry to an htree directory without dir_index",
            });
        }
        if inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
            || inode.flags & flags::EXTENTS == 0
        {
            return Err(Error::Unsupported {
                what: "adding an entry to an inline, encrypted or block-mapped directory",
            });
        }
        self.load_tree(&inode)?;
        match self.lookup(dir, name) {
            Ok(_) => Err(Error::Exists),
            Err(Error::NotFound) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Add `name → ino` to `dir`: in the last block if it has room, else in a new block.
    /// The leaf block (logical) of htree directory `inode` where `name` belongs.
    fn dx_leaf(&mut self, inode: &super::Inode, name: &[u8]) -> Result<u64> {
        let at = u64::from(inode.ino);
        let (mut entries, mut version, levels) = self.dx_node(inode, 0, true)?;
        let max_levels = if self.ctx.largedir { 3 } else { 2 };
        if levels >= max_levels {
            return corrupt("dx depth", at);
        }
        if version <= super::hash::TEA && self.ctx.hash_unsigned {
            version += 3;
        }
        let h =
            super::hash::dirhash(name, version, self.ctx.hash_seed).ok_or(Error::Unsupported {
                what: "unknown htree hash version",
            })?;
        let nblocks = inode.size / self.ctx.bs as u64;
        let pick = |entries: &[(u32, u32)]| -> u64 {
            let mut blk = entries.first().map_or(0, |e| e.1);
            for &(eh, b) in entries.iter().skip(1) {
                if eh <= h {
                    blk = b;
                } else {
                    break;
                }
            }
            u64::from(blk)
        };
        for _ in 0..levels {
            let blk = pick(&entries);
            if blk == 0 || blk >= nblocks {
                return corrupt("dx block pointer", at);
            }
            entries = self.dx_node(inode, blk, false)?.0;
        }
        let leaf = pick(&entries);
        if leaf == 0 || leaf >= nblocks {
            return corrupt("dx leaf pointer", at);
        }
        Ok(leaf)
    }

    fn dir_add(&mut self, dir: Ino, name: &[u8], ino: Ino, kind: FileType) -> Result<()> {
        let inode = self.dir_inode(dir)?;
        let ctx = self.ctx;
        let bs = ctx.bs as u64;
        let t = if ctx.filetype { dirent_type(kind) } else { 0 };
        let need = rec_need(name.len());
        let limit = if ctx.csum { ctx.bs - 12 } else { ctx.bs };
        let nblocks = inode.size / bs;
        let htree = inode.flags & flags::INDEX != 0;
        let target = if htree {
            Some(self.dx_leaf(&inode, name)?)
        } else {
            nblocks.checked_sub(1)
        };
        if let Some(last) = target {
            let run = self.map(&inode, last)?;
            if let Some(phys) = run.phys {
                let b = self.block(phys)?;
                // (Without checksums an emptied htree leaf looks like an index node.)
                if !Self::verify_dir_block(&ctx, &inode, last, b, phys)? && (ctx.csum || !htree) {
                    return corrupt("directory leaf", phys);
                }
                // Find an entry with enough slack.
                let mut off = 0usize;
                let mut slot = None;
                while off + 8 <= limit {
                    let e_ino = le32(b, off);
                    let rec = usize::from(le16(b, off + 4));
                    let nl = usize::from(b.get(off + 6).copied().unwrap_or(0));
                    if rec < 8 || off + rec > limit {
                        return corrupt("directory entry", phys);
                    }
                    let used = if e_ino == 0 { 0 } else { rec_need(nl) };
                    if used > rec {
                        return corrupt("directory entry", phys);
                    }
                    if rec - used >= need {
                        slot = Some((off, used, rec));
                        break;
                    }
                    off += rec;
                }
                if let Some((off, used, rec)) = slot {
                    let b = self.block_mut(phys)?;
                    if used == 0 {
                        dirent(b, off, ino, rec, name, t);
                    } else {
                        put16(b, off + 4, used as u16);
                        dirent(b, off + used, ino, rec - used, name, t);
                    }
                    dir_tail(&ctx, b, inode.seed);
                    let now = self.clock;
                    return self.patch_inode(dir, |raw| set_mtime_ctime(raw, now));
                }
            }
        }
        if htree {
            return self.dx_add(&inode, name, ino, t);
        }
        // A full single-block directory becomes an indexed one.
        if nblocks == 1 && ctx.dir_index && self.make_indexed_dir(&inode, name, ino, t)? {
            return Ok(());
        }
        // A new block at the end.
        let goal = self.append_goal(&inode)?.unwrap_or(0);
        let lblk = u32::try_from(nblocks).map_err(|_| Error::NoSpace)?;
        let (phys, _) = self.alloc_blocks(goal, 1)?;
        if let Err(e) = self.map_new_blocks(dir, lblk, 1, phys) {
            self.free_blocks(phys, 1)?;
            return Err(e);
        }
        let b = self.block_new(phys)?;
        dirent(b, 0, ino, limit, name, t);
        dir_tail(&ctx, b, inode.seed);
        let now = self.clock;
        self.patch_inode(dir, |raw| {
            let size = (u64::from(le32(raw, 0x4)) | u64::from(le32(raw, 0x6C)) << 32) + bs;
            put32(raw, 0x4, size as u32);
            put32(raw, 0x6C, (size >> 32) as u32);
            set_mtime_ctime(raw, now);
        })
    }

    /// Create an empty regular file `name` in `dir` with permission bits `mode`.
    pub fn create(&mut self, dir: Ino, name: &[u8], mode: u16, uid: u32, gid: u32) -> Result<Ino> {
        self.check_new_entry(dir, name)?;
        let ino = self.alloc_inode(false, dir)?;
        self.new_inode(ino, S_IFREG | (mode & 0o7777), uid, gid, 1)?;
        if let Err(e) = self.dir_add(dir, name, ino, FileType::Regular) {
            self.abandon_inode(ino, false)?;
            return Err(e);
        }
        self.maybe_sync()?;
        Ok(ino)
    }

    /// Create directory `name` in `dir` with permission bits `mode`.
    pub fn mkdir(&mut self, dir: Ino, name: &[u8], mode: u16, uid: u32, gid: u32) -> Result<Ino> {
        self.check_new_entry(dir, name)?;
        let parent = self.dir_inode(dir)?;
        let dir_nlink = self.sb.feature_ro_compat & 0x20 != 0;
        if parent.links >= EXT4_LINK_MAX - 1 && !dir_nlink {
            return Err(Error::Unsupported {
                what: "too many subdirectories (no dir_nlink)",
            });
        }
        let ctx = self.ctx;
        let ino = self.alloc_inode(true, dir)?;
        let generation = self.new_inode(ino, S_IFDIR | (mode & 0o7777), uid, gid, 2)?;
        let goal = self
            .groups
            .get(((ino - 1) / ctx.inodes_per_group) as usize)
            .map_or(0, |d| d.inode_table);
        let blk = match self.alloc_blocks(goal, 1) {
            Ok((b, _)) => b,
            Err(e) => {
                self.abandon_inode(ino, true)?;
                return Err(e);
            }
        };
        let seed = self.inode_seed(ino, generation);
        let limit = if ctx.csum { ctx.bs - 12 } else { ctx.bs };
        let t = if ctx.filetype { 2 } else { 0 };
        let b = self.block_new(blk)?;
        dirent(b, 0, ino, 12, b".", t);
        dirent(b, 12, dir, limit - 12, b"..", t);
        dir_tail(&ctx, b, seed);
        let bs = ctx.bs as u64;
        self.patch_inode(ino, |raw| {
            put32(raw, 0x4, bs as u32);
            put32(raw, 0x1C, (bs / 512) as u32);
            if let Some(ib) = raw.get_mut(0x28..0x64) {
                store_extents(ib, &[(0, 1, blk)]);
            }
        })?;
        if let Err(e) = self.dir_add(dir, name, ino, FileType::Directory) {
            self.free_blocks(blk, 1)?;
            self.abandon_inode(ino, true)?;
            return Err(e);
        }
        self.patch_inode(dir, |raw| {
            let l = le16(raw, 0x1A);
            let nl = if l == 1 || l >= EXT4_LINK_MAX - 1 {
                1
            } else {
                l + 1
            };
            put16(raw, 0x1A, nl);
        })?;
        self.maybe_sync()?;
        Ok(ino)
    }

    /// The inode a write of `len` bytes at `off` goes to, and the end of the range: `ino` must
    /// be a regular file with extents (not inline or encrypted) and the range within the
    /// largest file.
    fn write_target(&mut self, ino: Ino, off: u64, len: u64) -> Result<(super::Inode, u64)> {
        let inode = self.load_inode(ino)?;
        match inode.mode & S_IFMT {
            S_IFDIR => return Err(Error::IsDir { ino }),
            S_IFREG => {}
            _ => {
                return Err(Error::Unsupported {
                    what: "writing to a non-regular file",
                })
            }
        }
        if inode.flags & flags::EXTENTS == 0
            || inode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0
        {
            return Err(Error::Unsupported {
                what: "writing a block-mapped, inline or encrypted file",
            });
        }
        let end = off.checked_add(len).ok_or(Error::FileTooBig)?;
        if end.div_ceil(self.ctx.bs as u64) > u64::from(u32::MAX) {
            return Err(Error::FileTooBig);
        }
        Ok((inode, end))
    }

    /// Whether [`write`](Self::write) of `len` bytes at `off` into `ino` can only fail with a
    /// device error (or corruption found on the way): the volume is writable, `ino` is a
    /// regular file with extents (not inline or encrypted), the range is within the largest
    /// file, and the free blocks cover every block of the range plus the extent-tree blocks
    /// it could need, with a margin of 64 blocks (index levels, group bitmaps). Answers no when in doubt;
    /// reads only the inode.
    pub fn write_would_fit(&mut self, ino: Ino, off: u64, len: u64) -> bool {
        if self.ensure_rw().is_err() || len == 0 {
            return false;
        }
        let Ok((_, end)) = self.write_target(ino, off, len) else {
            return false;
        };
        let bs = self.ctx.bs as u64;
        // Every block of the range may be new, each may start an extent of its own, and a
        // leaf block holds at least (bs - 12) / 12 extents.
        let blocks = (end - 1) / bs - off / bs + 1;
        let per_leaf = ((bs - 12) / 12).max(1);
        let need = blocks
            .saturating_add(blocks / per_leaf)
            .saturating_add(WRITE_FIT_MARGIN);
        self.sb.free_blocks_count >= need
    }

    /// Write `data` at `off` into regular file `ino`; returns the count written. Blocks
    /// already mapped are overwritten; unwritten (fallocated) blocks are written and become
    /// initialized (their extents split as needed); holes get new blocks, allocated right
    /// after the physical end of the extent before them when free, merged into neighbouring
    /// extents when contiguous. The extent tree grows to any depth as needed. When the disk
    /// fills part-way, the write is short: the bytes before it are written and counted; if
    /// none were, the error is returned.
    pub fn write(&mut self, ino: Ino, off: u64, data: &[u8]) -> Result<usize> {
        self.ensure_rw()?;
        // Blocks freed since the last commit and reused here are journalled: commit first if
        // there are many (an operation boundary), so the transaction stays within the journal.
        self.maybe_sync()?;
        if data.is_empty() {
            return Ok(0);
        }
        let (inode, end) = self.write_target(ino, off, data.len() as u64)?;
        let bs = self.ctx.bs as u64;
        let mut tree = self.load_tree(&inode)?;
        let mut lblk = off / bs;
        let last = (end - 1) / bs;
        let mut fail = None;
        while lblk <= last {
            // Bounded by the cache budget so that a large write is written back piecewise
            // instead of growing the cache without limit.
            let budget = (self.cache.capacity() / 2).max(1) as u64;
            let (phys, run, fresh, changed) = match find(&tree.ext, lblk) {
                Ok(i) => {
                    let e = *tree.ext.get(i).ok_or(Error::NoSpace)?;
                    let d = lblk - u64::from(e.l);
                    let run = (u64::from(e.n) - d).min(last - lblk + 1).min(budget);
                    if e.u {
                        // Unwritten blocks: they become written (zero-filled around the data).
                        let before = tree.ext.clone();
                        set_written(&mut tree.ext, lblk, lblk + run);
                        if let Err(err) = self.store_tree(ino, &mut tree, 0) {
                            tree.ext = before;
                            fail = Some(err);
                            break;
                        }
                    }
                    (e.p + d, run, e.u, e.u)
                }
                Err(i) => {
                    // The hole runs to the next extent (or the end of the file's range).
                    let next_start = tree.ext.get(i).map_or(1 << 32, |e| u64::from(e.l));
                    let want = (last - lblk + 1)
                        .min(next_start - lblk)
                        .min(u64::from(MAX_INIT))
                        .min(budget) as u32;
                    let (p, n) = match self.map_new_run(ino, &mut tree, lblk, want, false) {
                        Ok(x) => x,
                        Err(e) => {
                            fail = Some(e);
                            break;
                        }
                    };
                    (p, u64::from(n), true, true)
                }
            };
            for i in 0..run {
                let lb = lblk + i;
                let pb = phys + i;
                let bstart = lb * bs;
                let from = off.max(bstart);
                let to = end.min(bstart + bs);
                let src = data
                    .get((from - off) as usize..(to - off) as usize)
                    .unwrap_or(&[]);
                let whole = from == bstart && to == bstart + bs;
                if whole {
                    // The whole block is replaced: no zero fill, no read.
                    if pb >= self.ctx.blocks_count {
                        return corrupt("block number", pb);
                    }
                    self.cache.put(&mut self.dev, pb, src)?;
                } else {
                    let b = if fresh {
                        self.block_new(pb)?
                    } else {
                        self.block_mut(pb)?
                    };
                    let o = (from - bstart) as usize;
                    if let Some(d) = b.get_mut(o..o + src.len()) {
                        d.copy_from_slice(src);
                    }
                }
                self.dirty_data.insert(pb);
            }
            lblk += run;
            if changed {
                // The size covers what is written so far, so that a write-back part-way
                // leaves no initialized blocks past the end of the file.
                let upto = end.min(lblk * bs);
                self.patch_inode(ino, |raw| {
                    let size = u64::from(le32(raw, 0x4)) | u64::from(le32(raw, 0x6C)) << 32;
                    if upto > size {
                        put32(raw, 0x4, upto as u32);
                        put32(raw, 0x6C, (upto >> 32) as u32);
                    }
                })?;
            }
            self.maybe_sync()?;
        }
        // A failure part-way is a short write: what was written so far stays, and counts.
        let end = match fail {
            Some(e) if lblk * bs <= off => return Err(e),
            Some(_) => lblk * bs,
            None => end,
        };
        let now = self.clock;
        self.patch_inode(ino, |raw| {
            let size = u64::from(le32(raw, 0x4)) | u64::from(le32(raw, 0x6C)) << 32;
            if end > size {
                put32(raw, 0x4, end as u32);
                put32(raw, 0x6C, (end >> 32) as u32);
            }
            set_mtime_ctime(raw, now);
        })?;
        self.maybe_sync()?;
        Ok((end - off) as usize)
    }

    /// Remove the entry `name` (a regular file) from `dir`; the inode and its blocks are
    /// freed when its last link goes.
    pub fn unlink(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        self.ensure_rw()?;
        if name.len() > NAME_MAX || !valid_name(name) {
            return Err(Error::InvalidName);
        }
        let target = self.lookup(dir, name)?;
        let tinode = self.load_inode(target)?;
        if tinode.mode & S_IFMT == S_IFDIR {
            return Err(Error::IsDir { ino: target });
        }
        self.check_releasable(&tinode)?;
        self.remove_entry(dir, name, target)?;
        let now = self.clock;
        let links = tinode.links.saturating_sub(1);
        if links > 0 {
            self.patch_inode(target, |raw| {
                put16(raw, 0x1A, links);
                set_time(raw, 0xC, Some(0x84), now);
            })?;
        } else {
            self.last_link_gone(target, false)?;
        }
        self.maybe_sync()?;
        Ok(())
    }

    /// Remove the empty directory `name` from `dir`.
    pub fn rmdir(&mut self, dir: Ino, name: &[u8]) -> Result<()> {
        self.ensure_rw()?;
        if name.len() > NAME_MAX || !valid_name(name) || name == b"." || name == b".." {
            return Err(Error::InvalidName);
        }
        let target = self.lookup(dir, name)?;
        let tinode = self.dir_inode(target)?;
        if tinode.flags & flags::EXTENTS == 0 {
            return Err(Error::Unsupported {
                what: "removing a directory with a block map",
            });
        }
        self.load_tree(&tinode)?;
        if tinode.file_acl != 0 {
            self.xattr_block_check(&tinode)?;
        }
        let mut entries = 0usize;
        self.readdir(target, 0, |e| {
            entries += 1;
            e.name == b"." || e.name == b".."
        })?;
        if entries > 2 {
            return Err(Error::NotEmpty);
        }
        self.remove_entry(dir, name, target)?;
        self.last_link_gone(target, true)?;
        self.patch_inode(dir, |raw| {
            let l = le16(raw, 0x1A);
            // A parent whose count overflowed (dir_nlink: 1) stays at 1.
            if l > 2 {
                put16(raw, 0x1A, l - 1);
            }
        })?;
        self.maybe_sync()?;
        Ok(())
    }

    /// Remove the entry `name → target` from `dir` (merged into the entry before it, or
    /// cleared when first in its block) and stamp the directory's mtime/ctime.
    fn remove_entry(&mut self, dir: Ino, name: &[u8], target: Ino) -> Result<()> {
        let dinode = self.dir_inode(dir)?;
        if dinode.flags & (flags::INLINE_DATA | flags::ENCRYPT) != 0 {
            return Err(Error::Unsupported {
                what: "removing from an inline or encrypted directory",
            });
        }
        let ctx = self.ctx;
        let bs = ctx.bs as u64;
        let limit = if ctx.csum { ctx.bs - 12 } else { ctx.bs };
        let mut done = false;
        // In an htree directory the index says which leaf holds the name: look there
        // first, then (hash collisions spread over leaves) everywhere else.
        let hint = if dinode.flags & flags::INDEX != 0 && ctx.dir_index {
            self.dx_leaf(&dinode, name).ok()
        } else {
            None
        };
        let rest = (0..dinode.size / bs).filter(move |&l| Some(l) != hint);
        for lblk in hint.into_iter().chain(rest) {
            let run = self.map(&dinode, lblk)?;
            let Some(phys) = run.phys else { continue };
            let b = self.block(phys)?;
            if !Self::verify_dir_block(&ctx, &dinode, lblk, b, phys)? {
                continue;
            }
            let mut off = 0usize;
            let mut hit = None;
            while off + 8 <= limit {
                let rec = usize::from(le16(b, off + 4));
                let nl = usize::from(b.get(off + 6).copied().unwrap_or(0));
                if rec < 8 || off + rec > limit {
                    return corrupt("directory entry", phys);
                }
                if le32(b, off) == target && b.get(off + 8..off + 8 + nl) == Some(name) {
                    hit = Some((off, rec));
                    break;
                }
                off += rec;
            }
            // Merge the entry into the one before it, or clear it if it is the first.
            if let Some((off, rec)) = hit {
                let mut p = 0usize;
                let mut before = None;
                while p < off {
                    before = Some(p);
                    p += usize::from(le16(b, p + 4)).max(8);
                }
                let b = self.block_mut(phys)?;
                match before {
                    Some(pv) => {
                        let prec = usize::from(le16(b, pv + 4));
                        put16(b, pv + 4, (prec + rec) as u16);
                    }
                    None => put32(b, off, 0),
                }
                dir_tail(&ctx, b, dinode.seed);
                done = true;
                break;
            }
        }
        if !done {
            return Err(Error::NotFound);
        }
        let now = self.clock;
        self.patch_inode(dir, |raw| set_mtime_ctime(raw, now))?;
        Ok(())
    }

    /// Give back an inode allocated by an operation that then failed (it owns no blocks).
    fn abandon_inode(&mut self, ino: Ino, dir: bool) -> Result<()> {
        // A free inode with a zero dtime looks like a lost orphan to e2fsck.
        let dtime = (self.clock.sec as u32).max(1);
        self.patch_inode(ino, |raw| {
            put16(raw, 0x1A, 0);
            put32(raw, 0x14, dtime);
        })?;
        self.free_inode(ino, dir)
    }

    /// Free the blocks of an inode (data and extent tree blocks, any depth) and the inode
    /// itself (last link gone).
    pub(super) fn release_inode(&mut self, ino: Ino, dir: bool) -> Result<()> {
        self.xattr_release(ino)?;
        let now = self.clock;
        self.free_all_blocks(ino)?;
        self.patch_inode(ino, |raw| {
            put16(raw, 0x1A, 0);
            put32(raw, 0x14, (now.sec as u32).max(1));
            put32(raw, 0x4, 0);
            put32(raw, 0x6C, 0);
            set_time(raw, 0xC, Some(0x84), now);
        })?;
        self.free_inode(ino, dir)
    }
}
