//! The ext4 engine (`pvfs_fs::ext4::Ext4`) behind the [`Filesystem`] trait.
//!
//! The engine takes `&mut self`, so the adapter serialises calls with a lock. An engine
//! mounted read-only refuses every change with `EROFS`; one mounted with
//! [`Ext4::open_rw`] takes the changes the engine supports, stamped with the clock given to
//! [`Ext4Fs::with_clock`]. Inodes referenced by fids are pinned in the engine, so a file
//! unlinked while open stays usable until its last fid goes.
//!
//! Shared (deduplicated) files are invisible as such: the volume's `/.pvfs` directory (the
//! store of shared contents, `pvfs_fs::ext4::shared`) cannot be looked up, listed, created,
//! renamed or removed through this adapter, even on an export at `/`, and the
//! `trusted.pvfs.*` xattrs that link a file to its store are neither listed, read, set nor
//! removed. Every request of the 9P server reaches the engine through here.

use crate::fs::mode::{S_IFBLK, S_IFCHR, S_IFDIR, S_IFIFO, S_IFMT, S_IFREG, S_IFSOCK};
use crate::fs::{
    dt, xattr_flags, Attr, DirEntry, DirVisitor, Errno, Filesystem, FsResult, FsStat, Ino, TimeSet,
    Timespec,
};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use pvfs_fs::block::BlockDevice;
use pvfs_fs::ext4::shared::{HIDDEN_DIR, XATTR_PREFIX};
use pvfs_fs::ext4::{self, Error, Ext4, FileType, XattrSet};
use spin::Mutex;

/// ext4's statfs magic.
pub const EXT4_SUPER_MAGIC: u32 = 0xEF53;

/// An ext4 file system behind the [`Filesystem`] trait.
pub struct Ext4Fs<D: BlockDevice> {
    /// `None` once [`Ext4Fs::close`] has unmounted the engine.
    fs: Mutex<Option<Ext4<D>>>,
    /// Fid references per inode (`retain`/`release`) and whether the engine holds a pin for
    /// it: an inode with references that loses its last link stays readable until the last
    /// reference goes (the engine keeps it as an orphan).
    refs: Mutex<BTreeMap<ext4::Ino, (u32, bool)>>,
    block_size: u64,
    clock: Option<fn() -> Timespec>,
}

/// Maps an engine error to the errno a client should see.
pub fn errno_of(e: &Error) -> Errno {
    match e {
        Error::NotFound => Errno::ENOENT,
        Error::NotDir { .. } => Errno::ENOTDIR,
        Error::IsDir { .. } => Errno::EISDIR,
        Error::NotSymlink { .. } => Errno::EINVAL,
        Error::InvalidName => Errno::EINVAL,
        Error::NoXattr => Errno::ENODATA,
        Error::BadInode { .. } => Errno::ENOENT,
        Error::Unsupported { .. } | Error::UnsupportedFeature { .. } => Errno::EOPNOTSUPP,
        Error::ReadOnly { .. } => Errno::EROFS,
        Error::Exists => Errno::EEXIST,
        Error::NoSpace | Error::GrowLimit { .. } => Errno::ENOSPC,
        Error::NotEmpty => Errno::ENOTEMPTY,
        Error::Invalid { .. } => Errno::EINVAL,
        Error::TooManyLinks => Errno::EMLINK,
        Error::FileTooBig => Errno::EFBIG,
        Error::TargetTooLong => Errno::ENAMETOOLONG,
        _ => Errno::EIO,
    }
}

/// Whether `name` in `dir` is the hidden store directory (`/.pvfs`).
fn hidden_name(dir: ext4::Ino, name: &[u8]) -> bool {
    dir == ext4::ROOT_INO && name == HIDDEN_DIR
}

/// Whether xattr `name` is one of the engine's sharing xattrs (`trusted.pvfs.*`).
fn hidden_xattr(name: &[u8]) -> bool {
    name.starts_with(XATTR_PREFIX)
}

fn ino32(ino: Ino) -> FsResult<ext4::Ino> {
    ext4::Ino::try_from(ino).map_err(|_| Errno::ENOENT)
}

fn ts(t: ext4::Timestamp) -> Timespec {
    Timespec {
        sec: t.sec as u64,
        nsec: t.nsec,
    }
}

fn dt_of(k: FileType) -> u8 {
    match k {
        FileType::Regular => dt::REG,
        FileType::Directory => dt::DIR,
        FileType::CharDev => dt::CHR,
        FileType::BlockDev => dt::BLK,
        FileType::Fifo => dt::FIFO,
        FileType::Socket => dt::SOCK,
        FileType::Symlink => dt::LNK,
        FileType::Unknown => dt::UNKNOWN,
    }
}

fn makedev(major: u32, minor: u32) -> u64 {
    let (ma, mi) = (u64::from(major), u64::from(minor));
    (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12) | ((ma & !0xfff) << 32)
}

impl<D: BlockDevice> Ext4Fs<D> {
    /// Wraps an opened engine.
    pub fn new(fs: Ext4<D>) -> Self {
        let block_size = u64::from(fs.superblock().block_size());
        Ext4Fs {
            fs: Mutex::new(Some(fs)),
            refs: Mutex::new(BTreeMap::new()),
            block_size,
            clock: None,
        }
    }

    /// Runs `f` with the engine locked (for the embedder: statistics, device events);
    /// `None` after [`Ext4Fs::close`].
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Ext4<D>) -> R) -> Option<R> {
        self.fs.lock().as_mut().map(f)
    }

    /// Unmounts the engine in place: writes everything back and marks the file system clean
    /// ([`Ext4::close`]), then gives the device back. Every later request fails with `EIO`,
    /// so clients still connected cannot change the image behind a clean superblock.
    /// `None` if it was closed already.
    pub fn close(&self) -> Option<Result<D, Error>> {
        self.fs.lock().take().map(Ext4::close)
    }

    /// Runs `f` on the mounted engine; `EIO` after [`Ext4Fs::close`].
    fn with<R>(&self, f: impl FnOnce(&mut Ext4<D>) -> FsResult<R>) -> FsResult<R> {
        match self.fs.lock().as_mut() {
            Some(fs) => f(fs),
            None => Err(Errno::EIO),
        }
    }

    /// Stamps changed inodes with `clock()` (wall-clock time) instead of the engine's last
    /// mount time.
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> Timespec) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Gives the engine back (`None` after [`Ext4Fs::close`]).
    pub fn into_inner(self) -> Option<Ext4<D>> {
        self.fs.into_inner()
    }

    /// Runs a modifying operation with the engine locked and its clock set.
    fn modify<R>(&self, f: impl FnOnce(&mut Ext4<D>) -> FsResult<R>) -> FsResult<R> {
        self.with(|fs| {
            if let Some(clock) = self.clock {
                let t = clock();
                fs.set_clock(ext4::Timestamp {
                    sec: i64::try_from(t.sec).unwrap_or(i64::MAX),
                    nsec: t.nsec.min(999_999_999),
                });
            }
            f(fs)
        })
    }

    fn attr(&self, a: &ext4::Attr) -> Attr {
        let ctime = ts(a.ctime);
        let mtime = ts(a.mtime);
        // The inode's change counter (`i_version`), which the engine bumps at every change:
        // `qid.version` then differs between any two states of a file, whatever the clock's
        // resolution, as clients that cache (`cache=loose`) need. An inode whose counter was
        // never set (0) gets a value derived from its times and size, with the top bit set so
        // that it never equals a counter.
        let version = if a.change != 0 {
            a.change
        } else {
            ((ctime.sec << 30)
                ^ u64::from(ctime.nsec)
                ^ (mtime.sec << 20)
                ^ u64::from(mtime.nsec)
                ^ a.size)
                | 1 << 63
        };
        Attr {
            ino: u64::from(a.ino),
            generation: a.generation,
            mode: u32::from(a.mode),
            uid: a.uid,
            gid: a.gid,
            nlink: u64::from(a.nlink),
            rdev: makedev(a.rdev_major, a.rdev_minor),
            size: a.size,
            blksize: self.block_size,
            blocks: a.blocks,
            atime: ts(a.atime),
            mtime,
            ctime,
            btime: a.crtime.map(ts).unwrap_or_default(),
            version: version.max(1),
        }
    }
}

impl<D: BlockDevice + Send> Filesystem for Ext4Fs<D> {
    fn root(&self) -> Ino {
        u64::from(ext4::ROOT_INO)
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        let a = self.with(|fs| {
            let dir = ino32(dir)?;
            if hidden_name(dir, name) {
                return Err(Errno::ENOENT);
            }
            let ino = fs.lookup(dir, name).map_err(|e| errno_of(&e))?;
            fs.getattr(ino).map_err(|e| errno_of(&e))
        })?;
        Ok(self.attr(&a))
    }

    fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        let a = self.with(|fs| fs.getattr(ino32(ino)?).map_err(|e| errno_of(&e)))?;
        Ok(self.attr(&a))
    }

    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize> {
        self.with(|fs| fs.read(ino32(ino)?, off, buf).map_err(|e| errno_of(&e)))
    }

    fn read_would_wait(&self, ino: Ino, off: u64, len: u32) -> bool {
        self.with(|fs| {
            fs.start_read(ino32(ino)?, off, u64::from(len))
                .map_err(|e| errno_of(&e))
        })
        .unwrap_or(false)
    }

    fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()> {
        self.with(|fs| {
            let dir = ino32(dir)?;
            fs.readdir(dir, cookie, |e| {
                if hidden_name(dir, e.name) {
                    return true;
                }
                f(DirEntry {
                    ino: u64::from(e.ino),
                    kind: dt_of(e.kind),
                    name: e.name,
                    next_cookie: e.next_cookie,
                })
            })
            .map_err(|e| errno_of(&e))
        })
    }

    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        self.with(|fs| fs.readlink(ino32(ino)?).map_err(|e| errno_of(&e)))
    }

    fn statfs(&self) -> FsResult<FsStat> {
        let s = self.with(|fs| Ok(fs.statfs()))?;
        Ok(FsStat {
            ty: EXT4_SUPER_MAGIC,
            bsize: s.block_size,
            blocks: s.blocks,
            bfree: s.free_blocks,
            bavail: s.avail_blocks,
            files: s.inodes,
            ffree: s.free_inodes,
            fsid: s.fsid,
            namelen: s.name_max,
        })
    }

    fn listxattr(&self, ino: Ino) -> FsResult<Vec<u8>> {
        let names = self.with(|fs| fs.listxattr(ino32(ino)?).map_err(|e| errno_of(&e)))?;
        let mut out = Vec::new();
        for n in names.into_iter().filter(|n| !hidden_xattr(n)) {
            out.extend_from_slice(&n);
            out.push(0);
        }
        Ok(out)
    }

    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        if hidden_xattr(name) {
            return Err(Errno::ENODATA);
        }
        self.with(|fs| fs.getxattr(ino32(ino)?, name).map_err(|e| errno_of(&e)))
    }

    fn retain(&self, ino: Ino) {
        let Ok(ino) = ino32(ino) else { return };
        let mut refs = self.refs.lock();
        let e = refs.entry(ino).or_insert((0, false));
        e.0 = e.0.saturating_add(1);
        if e.0 == 1 {
            // Pins exist only on a read-write engine; a failed pin just means the inode is not
            // kept past its last link.
            e.1 = self
                .fs
                .lock()
                .as_mut()
                .is_some_and(|fs| fs.is_writable() && fs.pin(ino).is_ok());
        }
    }

    fn release(&self, ino: Ino) {
        let Ok(ino) = ino32(ino) else { return };
        let mut refs = self.refs.lock();
        let Some(e) = refs.get_mut(&ino) else { return };
        e.0 = e.0.saturating_sub(1);
        if e.0 == 0 {
            let pinned = e.1;
            refs.remove(&ino);
            if pinned {
                if let Some(fs) = self.fs.lock().as_mut() {
                    // The last reference: an unlinked inode is freed now.
                    let _ = fs.unpin(ino);
                }
            }
        }
    }

    fn write(&self, ino: Ino, off: u64, data: &[u8]) -> FsResult<usize> {
        self.modify(|fs| fs.write(ino32(ino)?, off, data).map_err(|e| errno_of(&e)))
    }

    fn write_would_fit(&self, ino: Ino, off: u64, len: u64) -> bool {
        self.with(|fs| Ok(fs.write_would_fit(ino32(ino)?, off, len)))
            .unwrap_or(false)
    }

    fn create(&self, dir: Ino, name: &[u8], new: &crate::fs::NewInode) -> FsResult<Attr> {
        let dir = ino32(dir)?;
        if hidden_name(dir, name) {
            return Err(Errno::EPERM);
        }
        let perm = (new.mode & 0o7777) as u16;
        let a = self.modify(|fs| {
            let ino = match new.mode & S_IFMT {
                S_IFREG => fs.create(dir, name, perm, new.uid, new.gid),
                S_IFDIR => fs.mkdir(dir, name, perm, new.uid, new.gid),
                t @ (S_IFIFO | S_IFCHR | S_IFBLK | S_IFSOCK) => {
                    fs.mknod(dir, name, (t as u16) | perm, new.rdev, new.uid, new.gid)
                }
                _ => return Err(Errno::EINVAL),
            }
            .map_err(|e| errno_of(&e))?;
            fs.getattr(ino).map_err(|e| errno_of(&e))
        })?;
        Ok(self.attr(&a))
    }

    fn unlink(&self, dir: Ino, name: &[u8], rmdir: bool) -> FsResult<()> {
        let dir = ino32(dir)?;
        if hidden_name(dir, name) {
            return Err(Errno::ENOENT);
        }
        self.modify(|fs| {
            if rmdir {
                fs.rmdir(dir, name)
            } else {
                fs.unlink(dir, name)
            }
            .map_err(|e| errno_of(&e))
        })
    }

    fn setattr(&self, ino: Ino, set: &crate::fs::SetAttr) -> FsResult<Attr> {
        let ino = ino32(ino)?;
        let a = self.modify(|fs| {
            if let Some(size) = set.size {
                fs.truncate(ino, size).map_err(|e| errno_of(&e))?;
            }
            let now = fs.clock();
            let at = |t: Option<TimeSet>| -> FsResult<Option<ext4::Timestamp>> {
                Ok(match t {
                    None => None,
                    Some(TimeSet::Now) => Some(now),
                    Some(TimeSet::At(t)) => Some(ext4::Timestamp {
                        sec: i64::try_from(t.sec).map_err(|_| Errno::EINVAL)?,
                        nsec: t.nsec,
                    }),
                })
            };
            let change = ext4::SetAttr {
                mode: set.mode.map(|m| (m & 0o7777) as u16),
                uid: set.uid,
                gid: set.gid,
                atime: at(set.atime)?,
                mtime: at(set.mtime)?,
                ctime: None,
            };
            if change != ext4::SetAttr::default() || (set.ctime && set.size.is_none()) {
                fs.setattr(ino, &change).map_err(|e| errno_of(&e))?;
            }
            fs.getattr(ino).map_err(|e| errno_of(&e))
        })?;
        Ok(self.attr(&a))
    }
    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], flags: u32) -> FsResult<()> {
        let ino = ino32(ino)?;
        if hidden_xattr(name) {
            return Err(Errno::EPERM);
        }
        let how = match flags & (xattr_flags::CREATE | xattr_flags::REPLACE) {
            0 => XattrSet::Any,
            xattr_flags::CREATE => XattrSet::Create,
            xattr_flags::REPLACE => XattrSet::Replace,
            _ => return Err(Errno::EINVAL),
        };
        self.modify(|fs| {
            fs.set_xattr(ino, name, value, how)
                .map_err(|e| errno_of(&e))
        })
    }
    fn getxattr_private(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        if !hidden_xattr(name) {
            return Err(Errno::EINVAL);
        }
        self.with(|fs| fs.getxattr(ino32(ino)?, name).map_err(|e| errno_of(&e)))
    }
    fn setxattr_private(&self, ino: Ino, name: &[u8], value: &[u8]) -> FsResult<()> {
        let ino = ino32(ino)?;
        if !hidden_xattr(name) {
            return Err(Errno::EINVAL);
        }
        self.modify(|fs| {
            fs.set_xattr(ino, name, value, XattrSet::Any)
                .map_err(|e| errno_of(&e))
        })
    }
    fn removexattr(&self, ino: Ino, name: &[u8]) -> FsResult<()> {
        let ino = ino32(ino)?;
        if hidden_xattr(name) {
            return Err(Errno::ENODATA);
        }
        self.modify(|fs| fs.remove_xattr(ino, name).map_err(|e| errno_of(&e)))
    }
    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> FsResult<Attr> {
        let dir = ino32(dir)?;
        if hidden_name(dir, name) {
            return Err(Errno::EPERM);
        }
        let a = self.modify(|fs| {
            let ino = fs
                .symlink(dir, name, target, uid, gid)
                .map_err(|e| errno_of(&e))?;
            fs.getattr(ino).map_err(|e| errno_of(&e))
        })?;
        Ok(self.attr(&a))
    }
    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        let (ino, dir) = (ino32(ino)?, ino32(dir)?);
        if hidden_name(dir, name) {
            return Err(Errno::EPERM);
        }
        let a = self.modify(|fs| {
            fs.link(ino, dir, name).map_err(|e| errno_of(&e))?;
            fs.getattr(ino).map_err(|e| errno_of(&e))
        })?;
        Ok(self.attr(&a))
    }
    fn rename(&self, olddir: Ino, oldname: &[u8], newdir: Ino, newname: &[u8]) -> FsResult<()> {
        let (od, nd) = (ino32(olddir)?, ino32(newdir)?);
        if hidden_name(od, oldname) {
            return Err(Errno::ENOENT);
        }
        if hidden_name(nd, newname) {
            return Err(Errno::EPERM);
        }
        self.modify(|fs| {
            fs.rename(od, oldname, nd, newname, ext4::RenameFlags::default())
                .map_err(|e| errno_of(&e))
        })
    }

    fn fsync(&self, _ino: Ino, _datasync: bool) -> FsResult<()> {
        self.sync()
    }

    fn sync(&self) -> FsResult<()> {
        self.with(|fs| {
            if fs.is_writable() {
                fs.sync().map_err(|e| errno_of(&e))
            } else {
                Ok(())
            }
        })
    }

    /// Grows the volume into the device's whole blocks ([`Ext4::grow`]), or up to
    /// [`Ext4::grow_limit`] when the device is larger than the volume can describe (the rest
    /// stays unused, with a warning). Refusals are logged with their reason.
    fn grow(&self, device_bytes: u64) -> FsResult<u64> {
        self.modify(|fs| {
            let bs = u64::from(fs.superblock().block_size());
            let want = device_bytes / bs;
            let refused = |e: Error| {
                log::warn!("ext4: cannot grow to {want} blocks: {e}");
                errno_of(&e)
            };
            let limit = fs.grow_limit().map_err(refused)?;
            if want > limit {
                log::warn!(
                    "ext4: the device holds {want} blocks; the volume can grow to {limit} (the most its block and inode counts describe)"
                );
            }
            let got = fs.grow(want.min(limit)).map_err(refused)?;
            Ok(got.saturating_mul(bs))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_map_to_linux_errnos() {
        assert_eq!(errno_of(&Error::ReadOnly { reason: "test" }), Errno::EROFS);
        assert_eq!(errno_of(&Error::Exists), Errno::EEXIST);
        assert_eq!(errno_of(&Error::NoSpace), Errno::ENOSPC);
        assert_eq!(errno_of(&Error::NotEmpty), Errno::ENOTEMPTY);
        assert_eq!(errno_of(&Error::NotFound), Errno::ENOENT);
    }
}
