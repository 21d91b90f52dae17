//! Inodes: parsing and checking an on-disk inode, attributes, and changing an inode in place
//! (fields, timestamps, `i_blocks`, checksum).

use crate::block::BlockDevice;
use crate::crc::crc32c_raw;
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::error::{corrupt, Error, Result};
use crate::ext4::types::{flags, Attr, FileType, Timestamp};
use crate::ext4::write::store_extents;
use crate::ext4::{Ctx, Ext4, Ino};
use alloc::vec::Vec;

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

fn parse_inode(raw: &[u8], ino: Ino, ctx: &Ctx) -> Result<Inode> {
    let at = u64::from(ino);
    let isz = raw.len();
    let extra_isize = if isz > 128 {
        usize::from(le16(raw, 0x80))
    } else {
        0
    };
    if isz > 128 && (128 + extra_isize > isz || extra_isize % 4 != 0) {
        return corrupt("inode extra size", at);
    }
    let generation = le32(raw, 0x64);
    let mut seed = 0;
    if ctx.csum {
        seed = crc32c_raw(ctx.seed, &ino.to_le_bytes());
        seed = crc32c_raw(seed, &generation.to_le_bytes());
        let has_hi = extra_isize >= 4;
        let mut c = crc32c_raw(seed, raw.get(..0x7C).unwrap_or(&[]));
        c = crc32c_raw(c, &[0, 0]);
        c = crc32c_raw(c, raw.get(0x7E..0x80).unwrap_or(&[]));
        if isz > 128 {
            c = crc32c_raw(c, raw.get(0x80..0x82).unwrap_or(&[]));
            if has_hi {
                c = crc32c_raw(c, &[0, 0]);
                c = crc32c_raw(c, raw.get(0x84..).unwrap_or(&[]));
            } else {
                c = crc32c_raw(c, raw.get(0x82..).unwrap_or(&[]));
            }
        }
        let stored_lo = u32::from(le16(raw, 0x7C));
        let ok = if has_hi {
            c == stored_lo | (u32::from(le16(raw, 0x82)) << 16)
        } else {
            (c & 0xFFFF) == stored_lo
        };
        if !ok {
            return Err(Error::Checksum { what: "inode", at });
        }
    }
    let mode = le16(raw, 0);
    let links = le16(raw, 0x1A);
    if mode == 0 && links == 0 {
        return Err(Error::BadInode { ino });
    }
    let flags = le32(raw, 0x20);
    let extra_ok = |off: usize| {
        if 128 + extra_isize >= off + 4 {
            Some(le32(raw, off))
        } else {
            None
        }
    };
    let blocks_raw = u64::from(le32(raw, 0x1C))
        | if ctx.huge_file {
            u64::from(le16(raw, 0x74)) << 32
        } else {
            0
        };
    let blocks = if ctx.huge_file && flags & flags::HUGE_FILE != 0 {
        blocks_raw.saturating_mul(ctx.bs as u64 / 512)
    } else {
        blocks_raw
    };
    let mut iblock = [0u8; 60];
    iblock.copy_from_slice(raw.get(0x28..0x64).unwrap_or(&[0; 60]));
    let crtime = extra_ok(0x90).map(|s| ts(s, extra_ok(0x94)));
    Ok(Inode {
        ino,
        mode,
        uid: u32::from(le16(raw, 0x2)) | (u32::from(le16(raw, 0x78)) << 16),
        gid: u32::from(le16(raw, 0x18)) | (u32::from(le16(raw, 0x7A)) << 16),
        size: u64::from(le32(raw, 0x4)) | (u64::from(le32(raw, 0x6C)) << 32),
        links,
        blocks,
        flags,
        generation,
        file_acl: u64::from(le32(raw, 0x68)) | (u64::from(le16(raw, 0x76)) << 32),
        atime: ts(le32(raw, 0x8), extra_ok(0x8C)),
        ctime: ts(le32(raw, 0xC), extra_ok(0x84)),
        mtime: ts(le32(raw, 0x10), extra_ok(0x88)),
        crtime,
        iblock,
        seed,
    })
}

/// Add `delta` file-system blocks to the raw inode's `i_blocks` (512-byte units, or blocks
/// for a `HUGE_FILE` inode).
pub(crate) fn add_iblocks(raw: &mut [u8], delta: i64, bs: usize) {
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

pub(crate) fn set_time(raw: &mut [u8], base: usize, extra: Option<usize>, t: Timestamp) {
    put32(raw, base, t.sec as u32);
    if let Some(x) = extra {
        if raw.len() > 128 && 128 + usize::from(le16(raw, 0x80)) >= x + 4 {
            let epoch = (t.sec.wrapping_sub(i64::from(t.sec as i32)) >> 32) as u32 & 3;
            put32(raw, x, epoch | (t.nsec.min(999_999_999) << 2));
        }
    }
}

pub(crate) fn set_mtime_ctime(raw: &mut [u8], t: Timestamp) {
    set_time(raw, 0x10, Some(0x88), t);
    set_time(raw, 0xC, Some(0x84), t);
}

impl<D: BlockDevice> Ext4<D> {
    pub(crate) fn load_inode(&mut self, ino: Ino) -> Result<Inode> {
        let ctx = self.ctx;
        if ino == 0 || ino > ctx.inodes_count {
            return Err(Error::BadInode { ino });
        }
        let idx = ino - 1;
        let g = (idx / ctx.inodes_per_group) as usize;
        let gd = *self.groups.get(g).ok_or(Error::BadInode { ino })?;
        let byte = u64::from(idx % ctx.inodes_per_group) * ctx.inode_size as u64;
        let blk = gd
            .inode_table
            .checked_add(byte / ctx.bs as u64)
            .ok_or(Error::Corrupt {
                what: "inode table",
                at: u64::from(ino),
            })?;
        let off = (byte % ctx.bs as u64) as usize;
        let b = self.block(blk)?;
        let raw = b.get(off..off + ctx.inode_size).ok_or(Error::Corrupt {
            what: "inode table",
            at: u64::from(ino),
        })?;
        parse_inode(raw, ino, &ctx)
    }

    /// Raw inode bytes (for the in-inode xattr area).
    pub(crate) fn inode_raw(&mut self, ino: Ino) -> Result<Vec<u8>> {
        let ctx = self.ctx;
        self.load_inode(ino)?;
        let idx = ino - 1;
        let g = (idx / ctx.inodes_per_group) as usize;
        let gd = *self.groups.get(g).ok_or(Error::BadInode { ino })?;
        let byte = u64::from(idx % ctx.inodes_per_group) * ctx.inode_size as u64;
        let blk = gd.inode_table + byte / ctx.bs as u64;
        let off = (byte % ctx.bs as u64) as usize;
        let b = self.block(blk)?;
        Ok(b.get(off..off + ctx.inode_size).unwrap_or(&[]).to_vec())
    }

    /// Attributes of `ino`.
    pub fn getattr(&mut self, ino: Ino) -> Result<Attr> {
        let i = self.load_inode(ino)?;
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
            blocks: i.blocks,
            generation: i.generation,
            rdev_major,
            rdev_minor,
            flags: i.flags,
        })
    }

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
    pub(crate) fn patch_inode<R>(&mut self, ino: Ino, f: impl FnOnce(&mut [u8]) -> R) -> Result<R> {
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

    pub(crate) fn inode_seed(&self, ino: Ino, generation: u32) -> u32 {
        let s = crc32c_raw(self.ctx.seed, &ino.to_le_bytes());
        crc32c_raw(s, &generation.to_le_bytes())
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
