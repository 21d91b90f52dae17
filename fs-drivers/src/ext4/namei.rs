//! Namespace operations of the writer: `create` and `mkdir`, `unlink` and `rmdir`, `symlink`
//! (fast, in `i_block`, and slow, in a data block), `link`, `mknod` (fifos, sockets, character
//! and block devices with the Linux `rdev` encodings) and `setattr` (permission bits, owners,
//! timestamps with nanoseconds); releasing an inode when its last link goes. `rename` is in
//! `rename.rs`, the entry edits in `dir::entries`.

use crate::block::BlockDevice;
use crate::ext4::bytes::{le16, le32, put16, put32};
use crate::ext4::dir::entries::{dir_tail, dirent};
use crate::ext4::dir::{de, valid_name};
use crate::ext4::error::{Error, Result};
use crate::ext4::extent::write::store_extents;
use crate::ext4::inode::{
    set_ctime, set_raw_size, set_time, Inode, I_ATIME, I_ATIME_EXTRA, I_BLOCK, I_BLOCKS, I_DTIME,
    I_FLAGS, I_GID, I_GID_HIGH, I_LINKS_COUNT, I_MODE, I_MTIME, I_MTIME_EXTRA, I_SIZE, I_UID,
    I_UID_HIGH,
};
use crate::ext4::types::mode::{
    S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFLNK, S_IFMT, S_IFREG, S_IFSOCK,
};
use crate::ext4::types::{flags, FileType, SetAttr, Timestamp};
use crate::ext4::{Ext4, Ino, NAME_MAX};

/// Longest symlink target (Linux: `PATH_MAX - 1`; the target must fit one block too).
pub(crate) const SYMLINK_MAX: usize = 4095;

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

/// `i_links_count` after a directory gains a subdirectory (`dir_nlink`: 1 means "many").
fn dir_nlink_inc(l: u16) -> u16 {
    if l == 1 || l >= EXT4_LINK_MAX - 1 {
        1
    } else {
        l + 1
    }
}

/// `i_links_count` after a directory loses a subdirectory (an overflowed count stays 1).
fn dir_nlink_dec(l: u16) -> u16 {
    if l > 2 {
        l - 1
    } else {
        l
    }
}

/// The most links an inode can have (a directory past it counts 1 with `dir_nlink`).
pub(crate) const EXT4_LINK_MAX: u16 = 65000;

impl<D: BlockDevice> Ext4<D> {
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
        let blk = self.first_block(ino, true)?;
        let seed = self.inode_seed(ino, generation);
        let limit = if ctx.csum {
            ctx.bs - de::TAIL_LEN
        } else {
            ctx.bs
        };
        let t = if ctx.filetype { 2 } else { 0 };
        let b = self.block_new(blk)?;
        dirent(b, 0, ino, 12, b".", t);
        dirent(b, 12, dir, limit - 12, b"..", t);
        dir_tail(&ctx, b, seed);
        let bs = ctx.bs as u64;
        self.patch_inode(ino, |raw| {
            put32(raw, I_SIZE, bs as u32);
            put32(raw, I_BLOCKS, (bs / 512) as u32);
            if let Some(ib) = raw.get_mut(I_BLOCK..I_BLOCK + 60) {
                store_extents(ib, &[(0, 1, blk)]);
            }
        })?;
        if let Err(e) = self.dir_add(dir, name, ino, FileType::Directory) {
            self.free_blocks(blk, 1)?;
            self.abandon_inode(ino, true)?;
            return Err(e);
        }
        self.patch_inode(dir, |raw| {
            put16(raw, I_LINKS_COUNT, dir_nlink_inc(le16(raw, I_LINKS_COUNT)));
        })?;
        self.maybe_sync()?;
        Ok(ino)
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
                put16(raw, I_LINKS_COUNT, links);
                set_ctime(raw, now);
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
            // A parent whose count overflowed (dir_nlink: 1) stays at 1.
            put16(raw, I_LINKS_COUNT, dir_nlink_dec(le16(raw, I_LINKS_COUNT)));
        })?;
        self.maybe_sync()?;
        Ok(())
    }

    /// Allocate the first block of new inode `ino` (a directory when `dir`) near its inode
    /// table; on failure the inode is given back.
    fn first_block(&mut self, ino: Ino, dir: bool) -> Result<u64> {
        let goal = self
            .groups
            .get(((ino - 1) / self.ctx.inodes_per_group.max(1)) as usize)
            .map_or(0, |d| d.inode_table);
        match self.alloc_blocks(goal, 1) {
            Ok((b, _)) => Ok(b),
            Err(e) => {
                self.abandon_inode(ino, dir)?;
                Err(e)
            }
        }
    }

    /// Give back an inode allocated by an operation that then failed (it owns no blocks).
    pub(crate) fn abandon_inode(&mut self, ino: Ino, dir: bool) -> Result<()> {
        // A free inode with a zero dtime looks like a lost orphan to e2fsck.
        let dtime = (self.clock.sec as u32).max(1);
        self.patch_inode(ino, |raw| {
            put16(raw, I_LINKS_COUNT, 0);
            put32(raw, I_DTIME, dtime);
        })?;
        self.free_inode(ino, dir)
    }

    /// Free the blocks of an inode (data and extent tree blocks, any depth) and the inode
    /// itself (last link gone).
    pub(crate) fn release_inode(&mut self, ino: Ino, dir: bool) -> Result<()> {
        // A stub's reference to its store goes with it.
        let inode = self.load_inode(ino)?;
        if let Some(store) = self.share_of(&inode)? {
            self.drop_ref(&store)?;
        }
        self.release_inode_plain(ino, dir)
    }

    /// [`Ext4::release_inode`] without looking for a store (for stores and copies).
    pub(crate) fn release_inode_plain(&mut self, ino: Ino, dir: bool) -> Result<()> {
        self.xattr_release(ino)?;
        let now = self.clock;
        self.free_all_blocks(ino)?;
        self.patch_inode(ino, |raw| {
            put16(raw, I_LINKS_COUNT, 0);
            put32(raw, I_DTIME, (now.sec as u32).max(1));
            set_raw_size(raw, 0);
            set_ctime(raw, now);
        })?;
        self.free_inode(ino, dir)
    }

    /// Check that an inode's blocks can be freed with it: inodes without blocks (fast
    /// symlinks, devices, fifos, sockets, empty files) and valid extent trees can.
    /// Block-mapped inodes with blocks are refused. An xattr block (released with the inode)
    /// is checked here, before anything changes.
    pub(crate) fn check_releasable(&mut self, inode: &Inode) -> Result<()> {
        let mut ea_blocks = 0;
        if inode.file_acl != 0 {
            self.xattr_block_check(inode)?;
            ea_blocks = self.ctx.bs as u64 / 512;
        }
        // A stub's store is checked too: dropping the reference cannot fail half-way.
        self.share_of(inode)?;
        let kind = inode.mode & S_IFMT;
        let blockless = inode.blocks.saturating_sub(ea_blocks) == 0
            && (inode.flags & flags::EXTENTS == 0
                || (kind == S_IFLNK && inode.size <= FAST_SYMLINK_MAX as u64));
        if blockless {
            return Ok(());
        }
        if inode.flags & flags::EXTENTS == 0 {
            return Err(Error::Unsupported {
                what: "releasing a block-mapped inode",
            });
        }
        self.load_tree(inode).map(|_| ())
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
                put16(raw, I_MODE, m);
            }
            if let Some(u) = set.uid {
                put16(raw, I_UID, u as u16);
                put16(raw, I_UID_HIGH, (u >> 16) as u16);
            }
            if let Some(g) = set.gid {
                put16(raw, I_GID, g as u16);
                put16(raw, I_GID_HIGH, (g >> 16) as u16);
            }
            if let Some(t) = atime {
                set_time(raw, I_ATIME, Some(I_ATIME_EXTRA), t);
            }
            if let Some(t) = mtime {
                set_time(raw, I_MTIME, Some(I_MTIME_EXTRA), t);
            }
            set_ctime(raw, ctime);
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
        if target.is_empty() {
            return Err(Error::Invalid {
                what: "empty symlink target",
            });
        }
        if target.len() > SYMLINK_MAX.min(self.ctx.bs - 1) {
            return Err(Error::TargetTooLong);
        }
        if target.contains(&0) {
            return Err(Error::Invalid {
                what: "symlink target contains NUL",
            });
        }
        self.check_new_entry(dir, name)?;
        let ino = self.alloc_inode(false, dir)?;
        self.new_inode(ino, S_IFLNK | 0o777, uid, gid, 1)?;
        let len = target.len();
        if len <= FAST_SYMLINK_MAX {
            self.patch_inode(ino, |raw| {
                let fl = le32(raw, I_FLAGS) & !flags::EXTENTS;
                put32(raw, I_FLAGS, fl);
                if let Some(ib) = raw.get_mut(I_BLOCK..I_BLOCK + 60) {
                    ib.fill(0);
                    if let Some(d) = ib.get_mut(..len) {
                        d.copy_from_slice(target);
                    }
                }
                put32(raw, I_SIZE, len as u32);
            })?;
        } else {
            let blk = self.first_block(ino, false)?;
            let b = self.block_new(blk)?;
            if let Some(d) = b.get_mut(..len) {
                d.copy_from_slice(target);
            }
            self.dirty_data.insert(blk);
            let sectors = (self.ctx.bs / 512) as u32;
            self.patch_inode(ino, |raw| {
                put32(raw, I_SIZE, len as u32);
                put32(raw, I_BLOCKS, sectors);
                if let Some(ib) = raw.get_mut(I_BLOCK..I_BLOCK + 60) {
                    store_extents(ib, &[(0, 1, blk)]);
                }
            })?;
        }
        if let Err(e) = self.dir_add(dir, name, ino, FileType::Symlink) {
            self.free_all_blocks(ino)?;
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
            let l = le16(raw, I_LINKS_COUNT);
            put16(raw, I_LINKS_COUNT, l.saturating_add(1));
            set_ctime(raw, now);
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
        let ino = self.alloc_inode(false, dir)?;
        self.new_inode(ino, kind | (mode & 0o7777), uid, gid, 1)?;
        self.patch_inode(ino, |raw| {
            let fl = le32(raw, I_FLAGS) & !flags::EXTENTS;
            put32(raw, I_FLAGS, fl);
            if let Some(ib) = raw.get_mut(I_BLOCK..I_BLOCK + 60) {
                ib.fill(0);
            }
            put32(raw, I_BLOCK, old);
            put32(raw, I_BLOCK + 4, new);
        })?;
        if let Err(e) = self.dir_add(dir, name, ino, FileType::from_mode(kind)) {
            self.abandon_inode(ino, false)?;
            return Err(e);
        }
        self.maybe_sync()?;
        Ok(ino)
    }

    /// Change a directory's link count by `delta` subdirectories (dir_nlink semantics).
    pub(crate) fn dir_links_add(&mut self, dir: Ino, delta: i32) -> Result<()> {
        if delta == 0 {
            return Ok(());
        }
        self.patch_inode(dir, |raw| {
            let mut l = le16(raw, I_LINKS_COUNT);
            for _ in 0..delta.unsigned_abs() {
                l = if delta > 0 {
                    dir_nlink_inc(l)
                } else {
                    dir_nlink_dec(l)
                };
            }
            put16(raw, I_LINKS_COUNT, l);
        })
    }

    /// Drop one link of `ino` whose entry is already gone: a directory (empty, checked by
    /// the caller) or a last link is released with its blocks; otherwise the count goes down
    /// and ctime is stamped.
    pub(crate) fn drop_link(&mut self, ino: Ino) -> Result<()> {
        let inode = self.load_inode(ino)?;
        let dir = inode.mode & S_IFMT == S_IFDIR;
        let links = if dir {
            0
        } else {
            inode.links.saturating_sub(1)
        };
        if links > 0 {
            let now = self.clock;
            self.patch_inode(ino, |raw| {
                put16(raw, I_LINKS_COUNT, links);
                set_ctime(raw, now);
            })
        } else {
            self.last_link_gone(ino, dir)
        }
    }
}
