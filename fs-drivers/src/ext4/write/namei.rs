//! Namespace operations of the writer: `symlink` (fast, in `i_block`, and slow, in a data
//! block), `link`, `mknod` (fifos, sockets, character and block devices with the Linux `rdev`
//! encodings) and `setattr` (permission bits, owners, timestamps with nanoseconds).

use super::{parse_extents, put16, put32, set_time, store_extents, Extent, EXT4_LINK_MAX, S_IFREG};
use crate::block::BlockDevice;
use crate::ext4::{
    flags, le32, Error, Ext4, FileType, Ino, Inode, Result, SetAttr, Timestamp, S_IFDIR, S_IFLNK,
    S_IFMT,
};
use alloc::vec::Vec;

const S_IFIFO: u16 = 0x1000;
const S_IFCHR: u16 = 0x2000;
const S_IFBLK: u16 = 0x6000;
const S_IFSOCK: u16 = 0xC000;

/// Longest symlink target (Linux: `PATH_MAX - 1`; the target must fit one block too).
pub(in crate::ext4) const SYMLINK_MAX: usize = 4095;
/// Targets shorter than this are stored in `i_block` (fast symlinks).
const FAST_SYMLINK_MAX: usize = 59;

/// Seconds representable by ext4's 34-bit timestamps (32 signed bits plus two epoch bits).
const TS_MIN: i64 = -(1 << 31);
const TS_MAX: i64 = (1 << 31) + (3 << 32) - 1;

/// A timestamp clamped to what an inode can hold (as Linux clamps to the file system's
/// range); nanoseconds must be below 10⁹.
fn clamp_ts(t: Timestamp) -> Result<Timestamp> {
    if t.nsec >= 1_000_000_000 {
        return Err(Error::Invalid {
            what: "timestamp nanoseconds",
        });
    }
    Ok(if t.sec < TS_MIN {
        Timestamp {
            sec: TS_MIN,
            nsec: 0,
        }
    } else if t.sec > TS_MAX {
        Timestamp {
            sec: TS_MAX,
            nsec: 999_999_999,
        }
    } else {
        t
    })
}

/// Split a Linux user-space `dev_t` (glibc `makedev` layout) into major and minor.
fn dev_split(rdev: u64) -> (u64, u64) {
    let major = ((rdev >> 8) & 0xfff) | ((rdev >> 32) & !0xfff);
    let minor = (rdev & 0xff) | ((rdev >> 12) & !0xff);
    (major, minor)
}

impl<D: BlockDevice> Ext4<D> {
    /// The extents an inode owns that must be freed with it: none for inodes without blocks
    /// (fast symlinks, devices, fifos, sockets, empty files), its depth-0 extents otherwise.
    /// Block-mapped inodes with blocks and inodes with an xattr block are refused.
    pub(super) fn owned_extents(&mut self, inode: &Inode) -> Result<Vec<Extent>> {
        if inode.file_acl != 0 {
            return Err(Error::Unsupported {
                what: "releasing an inode with an xattr block",
            });
        }
        let kind = inode.mode & S_IFMT;
        let blockless = inode.blocks == 0
            && (inode.flags & flags::EXTENTS == 0
                || (kind == S_IFLNK && inode.size <= FAST_SYMLINK_MAX as u64));
        if blockless {
            return Ok(Vec::new());
        }
        if inode.flags & flags::EXTENTS == 0 {
            return Err(Error::Unsupported {
                what: "releasing a block-mapped inode",
            });
        }
        parse_extents(&inode.iblock, inode.ino, self.ctx.blocks_count)
    }

    /// Change the attributes of `ino`: permission bits (the type bits stay), owner, group
    /// (32 bits; the high halves live in `osd2`) and timestamps (nanoseconds in the extra
    /// fields when the inode has them; clamped to ext4's range). The change time is `ctime`
    /// when given, else the engine clock. Nothing to change leaves the inode alone.
    pub fn setattr(&mut self, ino: Ino, set: &SetAttr) -> Result<()> {
        self.ensure_rw()?;
        if *set == SetAttr::default() {
            self.load_inode(ino)?;
            return Ok(());
        }
        let atime = set.atime.map(clamp_ts).transpose()?;
        let mtime = set.mtime.map(clamp_ts).transpose()?;
        let ctime = clamp_ts(set.ctime.unwrap_or(self.clock))?;
        let inode = self.load_inode(ino)?;
        let set = *set;
        let mode = set.mode.map(|m| (inode.mode & S_IFMT) | (m & 0o7777));
        self.patch_inode(ino, |raw| {
            if let Some(m) = mode {
                put16(raw, 0, m);
            }
            if let Some(u) = set.uid {
                put16(raw, 0x2, u as u16);
                put16(raw, 0x78, (u >> 16) as u16);
            }
            if let Some(g) = set.gid {
                put16(raw, 0x18, g as u16);
                put16(raw, 0x7A, (g >> 16) as u16);
            }
            if let Some(t) = atime {
                set_time(raw, 0x8, Some(0x8C), t);
            }
            if let Some(t) = mtime {
                set_time(raw, 0x10, Some(0x88), t);
            }
            set_time(raw, 0xC, Some(0x84), ctime);
        })?;
        self.maybe_sync()
    }

    /// Create symbolic link `name` in `dir` pointing at `target` (1..=4095 bytes, no NUL).
    /// Targets shorter than 60 bytes are stored in the inode (fast symlink, no extents flag),
    /// longer ones in one data block mapped by an extent.
    pub fn symlink(
        &mut self,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<Ino> {
        if target.is_empty() || target.len() > SYMLINK_MAX.min(self.ctx.bs - 1) {
            return Err(Error::Invalid {
                what: "symlink target length",
            });
        }
        if target.contains(&0) {
            return Err(Error::Invalid {
                what: "symlink target contains NUL",
            });
        }
        self.check_new_entry(dir, name)?;
        let ino = self.alloc_inode(false)?;
        self.new_inode(ino, S_IFLNK | 0o777, uid, gid, 1)?;
        let len = target.len();
        if len <= FAST_SYMLINK_MAX {
            self.patch_inode(ino, |raw| {
                let fl = le32(raw, 0x20) & !flags::EXTENTS;
                put32(raw, 0x20, fl);
                if let Some(ib) = raw.get_mut(0x28..0x64) {
                    ib.fill(0);
                    if let Some(d) = ib.get_mut(..len) {
                        d.copy_from_slice(target);
                    }
                }
                put32(raw, 0x4, len as u32);
            })?;
        } else {
            let goal = self
                .groups
                .get(((ino - 1) / self.ctx.inodes_per_group.max(1)) as usize)
                .map_or(0, |d| d.inode_table);
            let blk = match self.alloc_blocks(goal, 1) {
                Ok((b, _)) => b,
                Err(e) => {
                    self.abandon_inode(ino, false)?;
                    return Err(e);
                }
            };
            let b = self.block_new(blk)?;
            if let Some(d) = b.get_mut(..len) {
                d.copy_from_slice(target);
            }
            self.dirty_data.insert(blk);
            let sectors = (self.ctx.bs / 512) as u32;
            self.patch_inode(ino, |raw| {
                put32(raw, 0x4, len as u32);
                put32(raw, 0x1C, sectors);
                if let Some(ib) = raw.get_mut(0x28..0x64) {
                    store_extents(ib, &[(0, 1, blk)]);
                }
            })?;
        }
        if let Err(e) = self.dir_add(dir, name, ino, FileType::Symlink) {
            let inode = self.load_inode(ino)?;
            let ext = self.owned_extents(&inode)?;
            for &(_, n, p) in &ext {
                self.free_blocks(p, u64::from(n))?;
            }
            self.abandon_inode(ino, false)?;
            return Err(e);
        }
        self.maybe_sync()?;
        Ok(ino)
    }

    /// Add a hard link `name` in `dir` to `ino` (not a directory: [`Error::IsDir`]). The link
    /// count may reach 65000 ([`Error::TooManyLinks`] beyond); an inode whose last link is
    /// gone (open-unlinked) cannot be linked again ([`Error::NotFound`]).
    pub fn link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> Result<()> {
        self.ensure_rw()?;
        let inode = self.load_inode(ino)?;
        if inode.mode & S_IFMT == S_IFDIR {
            return Err(Error::IsDir { ino });
        }
        if inode.links == 0 {
            return Err(Error::NotFound);
        }
        if inode.links >= EXT4_LINK_MAX {
            return Err(Error::TooManyLinks);
        }
        self.check_new_entry(dir, name)?;
        self.dir_add(dir, name, ino, FileType::from_mode(inode.mode))?;
        let now = self.clock;
        self.patch_inode(ino, |raw| {
            let l = super::le16(raw, 0x1A);
            put16(raw, 0x1A, l.saturating_add(1));
            set_time(raw, 0xC, Some(0x84), now);
        })?;
        self.maybe_sync()
    }

    /// Create a special file `name` in `dir`. `mode` holds the type (`S_IFIFO`, `S_IFCHR`,
    /// `S_IFBLK`, `S_IFSOCK`, or `S_IFREG` for an empty regular file) and the permission
    /// bits. `rdev` (devices only) is a Linux user-space `dev_t` (glibc `makedev` layout,
    /// major < 4096, minor < 2²⁰); it is stored like Linux does: the old 16-bit encoding in
    /// `i_block[0]` when major and minor are below 256, else the new encoding in
    /// `i_block[1]`.
    pub fn mknod(
        &mut self,
        dir: Ino,
        name: &[u8],
        mode: u16,
        rdev: u64,
        uid: u32,
        gid: u32,
    ) -> Result<Ino> {
        let kind = mode & S_IFMT;
        match kind {
            S_IFREG => return self.create(dir, name, mode & 0o7777, uid, gid),
            S_IFIFO | S_IFSOCK | S_IFCHR | S_IFBLK => {}
            _ => {
                return Err(Error::Invalid {
                    what: "mknod file type",
                })
            }
        }
        let dev = matches!(kind, S_IFCHR | S_IFBLK);
        let (major, minor) = if dev { dev_split(rdev) } else { (0, 0) };
        if major >= 1 << 12 || minor >= 1 << 20 {
            return Err(Error::Invalid {
                what: "device number out of range",
            });
        }
        let (old, new) = if major < 256 && minor < 256 {
            (((major << 8) | minor) as u32, 0u32)
        } else {
            (
                0u32,
                ((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)) as u32,
            )
        };
        self.check_new_entry(dir, name)?;
        let ino = self.alloc_inode(false)?;
        self.new_inode(ino, kind | (mode & 0o7777), uid, gid, 1)?;
        self.patch_inode(ino, |raw| {
            let fl = le32(raw, 0x20) & !flags::EXTENTS;
            put32(raw, 0x20, fl);
            if let Some(ib) = raw.get_mut(0x28..0x64) {
                ib.fill(0);
            }
            put32(raw, 0x28, old);
            put32(raw, 0x2C, new);
        })?;
        if let Err(e) = self.dir_add(dir, name, ino, FileType::from_mode(kind)) {
            self.abandon_inode(ino, false)?;
            return Err(e);
        }
        self.maybe_sync()?;
        Ok(ino)
    }
}
