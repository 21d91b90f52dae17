//! Inodes: parsing and checking an on-disk inode, attributes, and changing an inode in place
//! (fields, timestamps, `i_blocks`, checksum).

use crate::block::BlockDevice;
use crate::crc::{crc32c_raw, crc32c_raw_rechecked, crc32c_raw_u32};
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::extent::write::store_extents;
use crate::ext4::types::{flags, Attr, FileType, Timestamp};
use crate::ext4::{Ctx, Ext4, Ino};
use alloc::vec::Vec;

// Raw inode field offsets (`struct ext4_inode`).
/// `i_mode`.
pub(crate) const I_MODE: usize = 0x0;
/// `i_uid` (low 16 bits).
pub(crate) const I_UID: usize = 0x2;
/// `i_size_lo`.
pub(crate) const I_SIZE: usize = 0x4;
/// `i_atime`.
pub(crate) const I_ATIME: usize = 0x8;
/// `i_ctime`.
pub(crate) const I_CTIME: usize = 0xC;
/// `i_mtime`.
pub(crate) const I_MTIME: usize = 0x10;
/// `i_dtime` (also the next inode of the classic orphan list).
pub(crate) const I_DTIME: usize = 0x14;
/// `i_gid` (low 16 bits).
pub(crate) const I_GID: usize = 0x18;
/// `i_links_count`.
pub(crate) const I_LINKS_COUNT: usize = 0x1A;
/// `i_blocks_lo`.
pub(crate) const I_BLOCKS: usize = 0x1C;
/// `i_flags`.
pub(crate) const I_FLAGS: usize = 0x20;
/// `i_block`: 60 bytes of extent root, block map, inline data or symlink.
pub(crate) const I_BLOCK: usize = 0x28;
/// `i_generation`.
pub(crate) const I_GENERATION: usize = 0x64;
/// `i_file_acl_lo`: the xattr block.
pub(crate) const I_FILE_ACL: usize = 0x68;
/// `i_size_high`.
pub(crate) const I_SIZE_HIGH: usize = 0x6C;
/// `l_i_blocks_high`.
pub(crate) const I_BLOCKS_HIGH: usize = 0x74;
/// `l_i_file_acl_high`.
pub(crate) const I_FILE_ACL_HIGH: usize = 0x76;
/// `l_i_uid_high`.
pub(crate) const I_UID_HIGH: usize = 0x78;
/// `l_i_gid_high`.
pub(crate) const I_GID_HIGH: usize = 0x7A;
/// `l_i_checksum_lo`.
pub(crate) const I_CHECKSUM: usize = 0x7C;
/// `i_extra_isize`: bytes used past the first 128.
pub(crate) const I_EXTRA_ISIZE: usize = 0x80;
/// `i_checksum_hi`.
pub(crate) const I_CHECKSUM_HIGH: usize = 0x82;
/// `i_ctime_extra`: epoch bits and nanoseconds.
pub(crate) const I_CTIME_EXTRA: usize = 0x84;
/// `i_mtime_extra`.
pub(crate) const I_MTIME_EXTRA: usize = 0x88;
/// `i_atime_extra`.
pub(crate) const I_ATIME_EXTRA: usize = 0x8C;
/// `i_crtime`.
pub(crate) const I_CRTIME: usize = 0x90;
/// `i_crtime_extra`.
pub(crate) const I_CRTIME_EXTRA: usize = 0x94;
/// `l_i_version` (Linux's `osd1`): the low half of the change counter.
pub(crate) const I_VERSION: usize = 0x24;
/// `i_version_hi`: its high half, in inodes whose extra space reaches it.
pub(crate) const I_VERSION_HI: usize = 0x98;

/// A parsed inode.
#[derive(Debug, Clone)]
pub(crate) struct Inode {
    pub(crate) ino: Ino,
    pub(crate) mode: u16,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) size: u64,
    pub(crate) links: u16,
    pub(crate) blocks: u64,
    pub(crate) flags: u32,
    pub(crate) generation: u32,
    pub(crate) file_acl: u64,
    pub(crate) atime: Timestamp,
    pub(crate) mtime: Timestamp,
    pub(crate) ctime: Timestamp,
    pub(crate) crtime: Option<Timestamp>,
    /// The change counter (`i_version`), bumped with every ctime stamp.
    pub(crate) change: u64,
    pub(crate) iblock: [u8; 60],
    /// crc32c seed for this inode's blocks (extents, dirs).
    pub(crate) seed: u32,
}

fn ts(sec: u32, extra: Option<u32>) -> Timestamp {
    let base = i64::from(sec as i32);
    match extra {
        Some(x) => Timestamp {
            sec: base + (i64::from(x & 3) << 32),
            nsec: (x >> 2).min(999_999_999),
        },
        None => Timestamp { sec: base, nsec: 0 },
    }
}

/// Marks a block-cache tag ([`Ext4::block_checked`]) of an inode table block: its other bits
/// are the inode slots of the block whose checksum was verified or written since the cached
/// copy was read (directory tags never set this bit: see `dir_tag`).
const INODE_TAG: u64 = 1 << 63;

/// The tag bit of inode slot `slot` of a table block (slots past 62 are not recorded: they are
/// verified on every load).
fn slot_bit(slot: usize) -> Option<u64> {
    (slot < 63).then(|| 1u64 << slot)
}

/// Whether `known` (a block's tag) records inode slot `slot` as verified.
fn slot_verified(known: Option<u64>, slot: usize) -> bool {
    known.is_some_and(|t| t & INODE_TAG != 0 && slot_bit(slot).is_some_and(|b| t & b != 0))
}

/// `known` (a block's tag) with inode slot `slot` added, if it records inode slots at all.
fn with_slot(known: Option<u64>, slot: usize) -> Option<u64> {
    let base = known.filter(|t| t & INODE_TAG != 0).unwrap_or(INODE_TAG);
    slot_bit(slot).map(|b| base | b)
}

fn parse_inode(raw: &[u8], ino: Ino, ctx: &Ctx, verify: bool) -> Result<Inode> {
    let at = u64::from(ino);
    let isz = raw.len();
    let extra_isize = if isz > 128 {
        usize::from(le16(raw, I_EXTRA_ISIZE))
    } else {
        0
    };
    if isz > 128 && (128 + extra_isize > isz || extra_isize % 4 != 0) {
        return corrupt("inode extra size", at);
    }
    let generation = le32(raw, I_GENERATION);
    let mut seed = 0;
    if ctx.csum {
        seed = inode_seed(ctx.seed, ino, generation);
    }
    if ctx.csum && verify {
        let has_hi = extra_isize >= 4;
        let c = inode_csum(ctx, ino, raw);
        let stored_lo = u32::from(le16(raw, I_CHECKSUM));
        let ok = if has_hi {
            c == stored_lo | (u32::from(le16(raw, I_CHECKSUM_HIGH)) << 16)
        } else {
            (c & 0xFFFF) == stored_lo
        };
        if !ok {
            return Err(Error::Checksum { what: "inode", at });
        }
    }
    let mode = le16(raw, I_MODE);
    let links = le16(raw, I_LINKS_COUNT);
    if mode == 0 && links == 0 {
        return Err(Error::BadInode { ino });
    }
    let flags = le32(raw, I_FLAGS);
    let extra_ok = |off: usize| {
        if 128 + extra_isize >= off + 4 {
            Some(le32(raw, off))
        } else {
            None
        }
    };
    let blocks_raw = u64::from(le32(raw, I_BLOCKS))
        | if ctx.huge_file {
            u64::from(le16(raw, I_BLOCKS_HIGH)) << 32
        } else {
            0
        };
    let blocks = if ctx.huge_file && flags & flags::HUGE_FILE != 0 {
        blocks_raw.saturating_mul(ctx.bs as u64 / 512)
    } else {
        blocks_raw
    };
    let mut iblock = [0u8; 60];
    iblock.copy_from_slice(raw.get(I_BLOCK..I_BLOCK + 60).unwrap_or(&[0; 60]));
    let crtime = extra_ok(0x90).map(|s| ts(s, extra_ok(0x94)));
    Ok(Inode {
        ino,
        mode,
        uid: u32::from(le16(raw, I_UID)) | (u32::from(le16(raw, I_UID_HIGH)) << 16),
        gid: u32::from(le16(raw, I_GID)) | (u32::from(le16(raw, I_GID_HIGH)) << 16),
        size: raw_size(raw),
        links,
        blocks,
        flags,
        generation,
        file_acl: u64::from(le32(raw, I_FILE_ACL)) | (u64::from(le16(raw, I_FILE_ACL_HIGH)) << 32),
        atime: ts(le32(raw, I_ATIME), extra_ok(0x8C)),
        ctime: ts(le32(raw, I_CTIME), extra_ok(0x84)),
        mtime: ts(le32(raw, I_MTIME), extra_ok(0x88)),
        crtime,
        change: raw_change(raw),
        iblock,
        seed,
    })
}

/// Whether the raw inode's extra space holds the 4 bytes at `off` (past the first 128).
fn has_extra(raw: &[u8], off: usize) -> bool {
    raw.len() > 128
        && raw.len() >= off + 4
        && 128 + usize::from(le16(raw, I_EXTRA_ISIZE)) >= off + 4
}

/// The raw inode's change counter (`i_version`: `l_i_version`, and `i_version_hi` where the
/// inode has room for it).
pub(crate) fn raw_change(raw: &[u8]) -> u64 {
    let hi = if has_extra(raw, I_VERSION_HI) {
        u64::from(le32(raw, I_VERSION_HI))
    } else {
        0
    };
    u64::from(le32(raw, I_VERSION)) | hi << 32
}

/// Counts one change in the raw inode's `i_version` (as Linux's ext4 does for every change
/// that stamps ctime), so that a client can tell any two states of the inode apart even when
/// the clock or the timestamps' resolution cannot (9P's `qid.version`).
fn bump_change(raw: &mut [u8]) {
    set_change(raw, raw_change(raw).wrapping_add(1));
}

/// Set the raw inode's change counter (without `i_version_hi` it is 32 bits wide and wraps
/// there).
fn set_change(raw: &mut [u8], v: u64) {
    put32(raw, I_VERSION, v as u32);
    if has_extra(raw, I_VERSION_HI) {
        put32(raw, I_VERSION_HI, (v >> 32) as u32);
    }
}

/// Put back a ctime and change counter read earlier: for bookkeeping that no client may see
/// as a change (the sharing xattrs of deduplicated files).
pub(crate) fn restore_ctime_change(raw: &mut [u8], t: Timestamp, change: u64) {
    set_time(raw, I_CTIME, Some(I_CTIME_EXTRA), t);
    set_change(raw, change);
}

/// Add `delta` file-system blocks to the raw inode's `i_blocks` (512-byte units, or blocks
/// for a `HUGE_FILE` inode).
pub(crate) fn add_iblocks(raw: &mut [u8], delta: i64, bs: usize) {
    let unit = if le32(raw, I_FLAGS) & flags::HUGE_FILE != 0 {
        1
    } else {
        (bs / 512) as i64
    };
    let cur = u64::from(le32(raw, I_BLOCKS)) | u64::from(le16(raw, I_BLOCKS_HIGH)) << 32;
    let v = cur.saturating_add_signed(delta.saturating_mul(unit));
    put32(raw, I_BLOCKS, v as u32);
    put16(raw, I_BLOCKS_HIGH, (v >> 32) as u16);
}

/// The crc32c seed of an inode's checksum and of its blocks' (`fs_seed`: the file system's):
/// the inode number and generation.
fn inode_seed(fs_seed: u32, ino: Ino, generation: u32) -> u32 {
    crc32c_raw_u32(crc32c_raw_u32(fs_seed, ino), generation)
}

/// The checksum of inode `raw` after a change from `old`, carried over the bytes that changed
/// from `old`'s stored checksum (which the caller knows matched `old`), with both checksum
/// fields of `raw` cleared (they count as zero, [`inode_csum`]); `None` (and `raw` untouched)
/// where it cannot be carried: the 32-bit checksum is not there (no `i_checksum_hi`) or the
/// seed (the generation) or the layout (`i_extra_isize`) changed.
fn carried_inode_csum(old: &mut [u8], raw: &mut [u8]) -> Option<u32> {
    let extra = |r: &[u8]| {
        if r.len() > 128 {
            le16(r, I_EXTRA_ISIZE)
        } else {
            0
        }
    };
    if old.len() != raw.len()
        || extra(old) < 4
        || extra(old) != extra(raw)
        || le32(old, I_GENERATION) != le32(raw, I_GENERATION)
    {
        return None;
    }
    let stored = u32::from(le16(old, I_CHECKSUM)) | (u32::from(le16(old, I_CHECKSUM_HIGH)) << 16);
    for r in [&mut *old, &mut *raw] {
        put16(r, I_CHECKSUM, 0);
        put16(r, I_CHECKSUM_HIGH, 0);
    }
    crc32c_raw_rechecked(stored, old, raw)
}

/// Inode checksum (as Linux `ext4_inode_csum`): fields 0x7C and 0x82 count as zero.
fn inode_csum(ctx: &Ctx, ino: Ino, raw: &[u8]) -> u32 {
    let seed = inode_seed(ctx.seed, ino, le32(raw, I_GENERATION));
    let extra = if raw.len() > 128 {
        usize::from(le16(raw, I_EXTRA_ISIZE))
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
    put16(raw, I_CHECKSUM, c as u16);
    if raw.len() > 128 && le16(raw, I_EXTRA_ISIZE) >= 4 {
        put16(raw, I_CHECKSUM_HIGH, (c >> 16) as u16);
    }
}

pub(crate) fn set_time(raw: &mut [u8], base: usize, extra: Option<usize>, t: Timestamp) {
    put32(raw, base, t.sec as u32);
    if let Some(x) = extra {
        if raw.len() > 128 && 128 + usize::from(le16(raw, I_EXTRA_ISIZE)) >= x + 4 {
            let epoch = (t.sec.wrapping_sub(i64::from(t.sec as i32)) >> 32) as u32 & 3;
            put32(raw, x, epoch | (t.nsec.min(999_999_999) << 2));
        }
    }
}

pub(crate) fn set_mtime_ctime(raw: &mut [u8], t: Timestamp) {
    set_time(raw, I_MTIME, Some(I_MTIME_EXTRA), t);
    set_ctime(raw, t);
}

/// The raw inode's size (`i_size_lo` and `i_size_high`).
pub(crate) fn raw_size(raw: &[u8]) -> u64 {
    u64::from(le32(raw, I_SIZE)) | (u64::from(le32(raw, I_SIZE_HIGH)) << 32)
}

/// Set the raw inode's size.
pub(crate) fn set_raw_size(raw: &mut [u8], size: u64) {
    put32(raw, I_SIZE, size as u32);
    put32(raw, I_SIZE_HIGH, (size >> 32) as u32);
}

/// Stamp the raw inode's ctime, and count the change in its `i_version`.
pub(crate) fn set_ctime(raw: &mut [u8], t: Timestamp) {
    set_time(raw, I_CTIME, Some(I_CTIME_EXTRA), t);
    bump_change(raw);
}

impl<D: BlockDevice> Ext4<D> {
    pub(crate) fn load_inode(&mut self, ino: Ino) -> Result<Inode> {
        let ctx = self.ctx;
        let (blk, off) = self.inode_loc(ino)?;
        // An inode's checksum is verified once per cached copy of its table block.
        let slot = off / ctx.inode_size;
        let known = self.block_checked(blk);
        let verified = ctx.csum && slot_verified(known, slot);
        let b = self.block(blk)?;
        let raw = b.get(off..off + ctx.inode_size).ok_or(Error::Corrupt {
            what: "inode table",
            at: u64::from(ino),
        })?;
        let inode = parse_inode(raw, ino, &ctx, !verified)?;
        if ctx.csum && !verified {
            if let Some(tag) = with_slot(known, slot) {
                self.set_block_checked(blk, tag);
            }
        }
        Ok(inode)
    }

    /// Raw inode bytes (for the in-inode xattr area).
    pub(crate) fn inode_raw(&mut self, ino: Ino) -> Result<Vec<u8>> {
        let size = self.ctx.inode_size;
        self.load_inode(ino)?;
        let (blk, off) = self.inode_loc(ino)?;
        let b = self.block(blk)?;
        Ok(b.get(off..off + size).unwrap_or(&[]).to_vec())
    }

    /// Attributes of `ino`.
    pub fn getattr(&mut self, ino: Ino) -> Result<Attr> {
        let i = self.load_inode(ino)?;
        // A stub counts its store's blocks: it looks as it did before it was shared.
        let store_blocks = self.share_of(&i)?.map_or(0, |s| s.blocks);
        let kind = FileType::from_mode(i.mode);
        let (mut rdev_major, mut rdev_minor) = (0, 0);
        if matches!(kind, FileType::CharDev | FileType::BlockDev) {
            let old = le32(&i.iblock, 0);
            let new = le32(&i.iblock, 4);
            if old != 0 {
                rdev_major = (old >> 8) & 0xff;
                rdev_minor = old & 0xff;
            } else {
                rdev_major = (new & 0xfff00) >> 8;
                rdev_minor = (new & 0xff) | ((new >> 12) & 0xfff00);
            }
        }
        Ok(Attr {
            ino,
            mode: i.mode,
            kind,
            uid: i.uid,
            gid: i.gid,
            size: i.size,
            nlink: u32::from(i.links),
            atime: i.atime,
            mtime: i.mtime,
            ctime: i.ctime,
            crtime: i.crtime,
            change: i.change,
            blocks: i.blocks.saturating_add(store_blocks),
            generation: i.generation,
            rdev_major,
            rdev_minor,
            flags: i.flags,
        })
    }

    /// Where inode `ino` is: (block of the inode table, byte offset in it). Reads and writes
    /// find inodes through here.
    pub(crate) fn inode_loc(&self, ino: Ino) -> Result<(u64, usize)> {
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
            .ok_or(Error::Corrupt {
                what: "inode table",
                at: u64::from(ino),
            })?;
        Ok((blk, (byte % ctx.bs as u64) as usize))
    }

    /// Change inode `ino`'s raw bytes with `f`, then re-checksum it.
    pub(crate) fn patch_inode<R>(&mut self, ino: Ino, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
        let (blk, off) = self.inode_loc(ino)?;
        let ctx = self.ctx;
        // The other inodes of the block keep their verified state; this one's checksum is
        // written now, carried over the change when its old one was verified.
        let known = self.block_checked(blk);
        let slot = off / ctx.inode_size;
        let verified = ctx.csum && slot_verified(known, slot);
        let b = self.block_mut(blk)?;
        let raw = b
            .get_mut(off..off + ctx.inode_size)
            .ok_or(Error::BadInode { ino })?;
        let mut before = [0u8; 1024];
        let old = before.get_mut(..raw.len()).filter(|_| verified);
        if let Some(o) = old {
            o.copy_from_slice(raw);
        }
        let r = f(raw);
        let old = before.get_mut(..raw.len()).filter(|_| verified);
        match old.and_then(|o| carried_inode_csum(o, raw)) {
            Some(c) => {
                put16(raw, I_CHECKSUM, c as u16);
                put16(raw, I_CHECKSUM_HIGH, (c >> 16) as u16);
                debug_assert_eq!(c, inode_csum(&ctx, ino, raw), "inode checksum carried over");
            }
            None => set_inode_csum(&ctx, ino, raw),
        }
        if ctx.csum {
            if let Some(tag) = with_slot(known, slot) {
                self.set_block_checked(blk, tag);
            }
        }
        Ok(r)
    }

    pub(crate) fn new_inode(
        &mut self,
        ino: Ino,
        mode: u16,
        uid: u32,
        gid: u32,
        links: u16,
    ) -> Result<u32> {
        let t = self.clock;
        let generation = (t.sec as u32).wrapping_mul(2_654_435_761) ^ ino;
        let extra = (self.sb.min_extra_isize.max(32) as usize).min(self.ctx.inode_size - 128);
        self.patch_inode(ino, |raw| {
            raw.fill(0);
            put16(raw, I_MODE, mode);
            put16(raw, I_UID, uid as u16);
            put16(raw, I_UID_HIGH, (uid >> 16) as u16);
            put16(raw, I_GID, gid as u16);
            put16(raw, I_GID_HIGH, (gid >> 16) as u16);
            put16(raw, I_LINKS_COUNT, links);
            put32(raw, I_FLAGS, flags::EXTENTS);
            put32(raw, I_GENERATION, generation);
            if raw.len() > 128 {
                put16(raw, I_EXTRA_ISIZE, (extra & !3) as u16);
            }
            set_time(raw, I_ATIME, Some(I_ATIME_EXTRA), t);
            set_mtime_ctime(raw, t);
            set_time(raw, I_CRTIME, Some(I_CRTIME_EXTRA), t);
            if let Some(ib) = raw.get_mut(I_BLOCK..I_BLOCK + 60) {
                store_extents(ib, &[]);
            }
        })?;
        Ok(generation)
    }

    pub(crate) fn inode_seed(&self, ino: Ino, generation: u32) -> u32 {
        inode_seed(self.ctx.seed, ino, generation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_decode_epoch_bits() {
        assert_eq!(ts(5, None), Timestamp { sec: 5, nsec: 0 });
        assert_eq!(ts(0xFFFF_FFFF, Some(0)), Timestamp { sec: -1, nsec: 0 });
        assert_eq!(
            ts(0, Some(1 | (7 << 2))),
            Timestamp {
                sec: 1 << 32,
                nsec: 7
            }
        );
    }
}
