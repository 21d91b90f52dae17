//! The FAT engine (`pvfs_fs::fat::Fat`) behind the [`Filesystem`] trait, with Linux vfat's
//! answers for what FAT cannot store.
//!
//! Owners and permissions come from the mount's mapping, as vfat's `uid=`, `gid=`, `fmask=`
//! and `dmask=` options give them ([`FatMapping`]; by default uid 0, gid 0 and mask 022, so
//! files and directories show `rwxr-xr-x`); a file with the FAT read-only attribute has no
//! write bits. Changing the owner or group to anything but the mapping's, or a mode vfat could
//! not keep, is refused with `EPERM`, as vfat does (`fat_setattr`); a chmod that drops every
//! write bit of a file sets the read-only attribute and one that gives them back clears it.
//! Symbolic links, hard links, device nodes, FIFOs and sockets are refused with `EPERM` (the
//! VFS's answer when a file system has no such operation); names vfat refuses with `EINVAL`;
//! extended attributes are not stored (`EOPNOTSUPP` on set). Times: mtime to 2 s, atime to
//! the day, ctime reported as mtime, btime the creation time (10 ms), all taken as UTC.
//! Inode numbers are the engine's (stable while mounted; see `pvfs_fs::fat`). Directories
//! report one link (as "not counted", so tools do not infer subdirectory counts).

use crate::fs::mode::{S_IFDIR, S_IFMT, S_IFREG};
use crate::fs::{
    dt, Attr, DirEntry, DirVisitor, Errno, Filesystem, FsResult, FsStat, Ino, NewInode, SetAttr,
    TimeSet, Timespec,
};
use alloc::vec::Vec;
use pvfs_fs::block::BlockDevice;
use pvfs_fs::fat::{attr, Error, Fat, Stat};
use spin::Mutex;

/// vfat's statfs magic (`MSDOS_SUPER_MAGIC`).
pub const MSDOS_SUPER_MAGIC: u32 = 0x4d44;

/// Owner, group and permission masks every file and directory shows (vfat's mount options).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FatMapping {
    /// Owner of everything.
    pub uid: u32,
    /// Group of everything.
    pub gid: u32,
    /// Permission bits files do not have.
    pub fmask: u32,
    /// Permission bits directories do not have.
    pub dmask: u32,
}

impl Default for FatMapping {
    fn default() -> Self {
        FatMapping {
            uid: 0,
            gid: 0,
            fmask: 0o022,
            dmask: 0o022,
        }
    }
}

/// A FAT file system behind the [`Filesystem`] trait.
pub struct FatFs<D: BlockDevice> {
    fs: Mutex<Fat<D>>,
    map: FatMapping,
    clock: Option<fn() -> Timespec>,
}

/// Maps an engine error to the errno vfat gives.
pub fn errno_of(e: &Error) -> Errno {
    match e {
        Error::NotFound => Errno::ENOENT,
        Error::NotDir => Errno::ENOTDIR,
        Error::IsDir => Errno::EISDIR,
        Error::Exists => Errno::EEXIST,
        Error::NotEmpty => Errno::ENOTEMPTY,
        Error::NoSpace => Errno::ENOSPC,
        Error::InvalidName | Error::Invalid { .. } => Errno::EINVAL,
        Error::NameTooLong => Errno::ENAMETOOLONG,
        Error::ReadOnly => Errno::EROFS,
        Error::FileTooBig => Errno::EFBIG,
        Error::Dev(_)
        | Error::BadBootSector { .. }
        | Error::Corrupt { .. }
        | Error::TooLarge { .. } => Errno::EIO,
    }
}

fn ts((sec, nsec): (i64, u32)) -> Timespec {
    Timespec {
        sec: u64::try_from(sec).unwrap_or(0),
        nsec,
    }
}

fn unix(t: Timespec) -> (i64, u32) {
    (
        i64::try_from(t.sec).unwrap_or(i64::MAX),
        t.nsec.min(999_999_999),
    )
}

impl<D: BlockDevice> FatFs<D> {
    /// Wraps a mounted engine with the default mapping.
    pub fn new(fs: Fat<D>) -> Self {
        Self::with_mapping(fs, FatMapping::default())
    }

    /// Wraps a mounted engine with `map`.
    pub fn with_mapping(fs: Fat<D>, map: FatMapping) -> Self {
        FatFs {
            fs: Mutex::new(fs),
            map,
            clock: None,
        }
    }

    /// Stamps changes with `clock()` (wall-clock time).
    #[must_use]
    pub fn with_clock(mut self, clock: fn() -> Timespec) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Gives the engine back.
    pub fn into_inner(self) -> Fat<D> {
        self.fs.into_inner()
    }

    /// Runs `f` with the engine locked (for the embedder).
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Fat<D>) -> R) -> R {
        f(&mut self.fs.lock())
    }

    fn now(&self) -> (i64, u32) {
        self.clock.map_or((0, 0), |c| unix(c()))
    }

    /// Runs a change with the engine locked and its clock set.
    fn modify<R>(&self, f: impl FnOnce(&mut Fat<D>) -> Result<R, Error>) -> FsResult<R> {
        let mut fs = self.fs.lock();
        if self.clock.is_some() {
            fs.set_now(self.now());
        }
        f(&mut fs).map_err(|e| errno_of(&e))
    }

    fn perm(&self, s: &Stat) -> u32 {
        if s.dir {
            S_IFDIR | (0o777 & !self.map.dmask)
        } else {
            let mut p = 0o777 & !self.map.fmask;
            if s.attr & attr::READ_ONLY != 0 {
                p &= !0o222;
            }
            S_IFREG | p
        }
    }

    fn attr(&self, s: &Stat, cluster_bytes: u32) -> Attr {
        let mtime = ts(s.mtime);
        Attr {
            ino: s.ino,
            generation: 0,
            mode: self.perm(s),
            uid: self.map.uid,
            gid: self.map.gid,
            nlink: 1,
            rdev: 0,
            size: s.size,
            blksize: u64::from(cluster_bytes),
            blocks: s.clusters * u64::from(cluster_bytes / 512),
            atime: ts(s.atime),
            mtime,
            ctime: mtime,
            btime: ts(s.crtime),
            version: ((mtime.sec << 20) ^ s.size ^ u64::from(s.attr)).max(1),
        }
    }

    fn stat_of(&self, fs: &mut Fat<D>, ino: Ino) -> Result<Attr, Error> {
        let s = fs.stat(ino)?;
        Ok(self.attr(&s, fs.usage().cluster_bytes))
    }

    /// Whether `mode` (permission bits) is one vfat keeps for `s`, and the read-only
    /// attribute it means (`fat_sanitize_mode_change`).
    fn mode_change(&self, s: &Stat, mode: u32) -> FsResult<bool> {
        if mode & !0o777 != 0 {
            return Err(Errno::EPERM);
        }
        let mask = if s.dir {
            self.map.dmask
        } else {
            self.map.fmask
        };
        let cur = self.perm(s) & 0o777;
        let perm = mode & !mask;
        if perm & 0o555 != cur & 0o555 {
            return Err(Errno::EPERM);
        }
        let w = perm & 0o222;
        if s.dir {
            if w != 0o222 & !mask {
                return Err(Errno::EPERM);
            }
            return Ok(false);
        }
        if w != 0 && w != 0o222 & !mask {
            return Err(Errno::EPERM);
        }
        Ok(w == 0)
    }
}

impl<D: BlockDevice + Send> Filesystem for FatFs<D> {
    fn root(&self) -> Ino {
        pvfs_fs::fat::ROOT_INO
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        let mut fs = self.fs.lock();
        let ino = fs.lookup(dir, name).map_err(|e| errno_of(&e))?;
        self.stat_of(&mut fs, ino).map_err(|e| errno_of(&e))
    }

    fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        let mut fs = self.fs.lock();
        self.stat_of(&mut fs, ino).map_err(|e| errno_of(&e))
    }

    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize> {
        self.fs.lock().read(ino, off, buf).map_err(|e| errno_of(&e))
    }

    fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()> {
        let mut fs = self.fs.lock();
        let parent = fs.parent(dir).map_err(|e| errno_of(&e))?;
        if cookie < 1
            && !f(DirEntry {
                ino: dir,
                kind: dt::DIR,
                name: b".",
                next_cookie: 1,
            })
        {
            return Ok(());
        }
        if cookie < 2
            && !f(DirEntry {
                ino: parent,
                kind: dt::DIR,
                name: b"..",
                next_cookie: 2,
            })
        {
            return Ok(());
        }
        // The engine's cookies are slot + 1; ours are 2 more.
        fs.readdir(dir, cookie.saturating_sub(2), &mut |l| {
            f(DirEntry {
                ino: l.ino,
                kind: if l.dir { dt::DIR } else { dt::REG },
                name: &l.name,
                next_cookie: l.next.saturating_add(2),
            })
        })
        .map_err(|e| errno_of(&e))
    }

    fn readlink(&self, _ino: Ino) -> FsResult<Vec<u8>> {
        Err(Errno::EINVAL)
    }

    fn statfs(&self) -> FsResult<FsStat> {
        let fs = self.fs.lock();
        let u = fs.usage();
        let g = fs.geometry();
        Ok(FsStat {
            ty: MSDOS_SUPER_MAGIC,
            bsize: u.cluster_bytes,
            blocks: u64::from(u.clusters),
            bfree: u64::from(u.free),
            bavail: u64::from(u.free),
            files: 0,
            ffree: 0,
            fsid: u64::from(g.volume_id),
            namelen: 255,
        })
    }

    fn retain(&self, ino: Ino) {
        self.fs.lock().retain(ino);
    }

    fn release(&self, ino: Ino) {
        // A failed free leaves lost clusters, which fsck.fat reclaims.
        let _ = self.fs.lock().release(ino);
    }

    fn setxattr(&self, _ino: Ino, _name: &[u8], _value: &[u8], _flags: u32) -> FsResult<()> {
        Err(Errno::EOPNOTSUPP)
    }

    fn write(&self, ino: Ino, off: u64, data: &[u8]) -> FsResult<usize> {
        self.modify(|fs| fs.write(ino, off, data))
    }

    fn setattr(&self, ino: Ino, set: &SetAttr) -> FsResult<Attr> {
        let now = self.now();
        let mut fs = self.fs.lock();
        if self.clock.is_some() {
            fs.set_now(self.now());
        }
        let e = |e: Error| errno_of(&e);
        let s = fs.stat(ino).map_err(e)?;
        if set.uid.is_some_and(|u| u != self.map.uid) || set.gid.is_some_and(|g| g != self.map.gid)
        {
            return Err(Errno::EPERM);
        }
        let ro = match set.mode {
            Some(m) => Some(self.mode_change(&s, m & 0o7777)?),
            None => None,
        };
        if !fs.writable()
            && (set.size.is_some() || ro.is_some() || set.mtime.is_some() || set.atime.is_some())
        {
            return Err(Errno::EROFS);
        }
        if let Some(size) = set.size {
            if s.dir {
                return Err(Errno::EISDIR);
            }
            fs.truncate(ino, size).map_err(e)?;
        }
        if let Some(ro) = ro {
            if !s.dir && ro != (s.attr & attr::READ_ONLY != 0) {
                let bits = (s.attr & !attr::READ_ONLY) | if ro { attr::READ_ONLY } else { 0 };
                fs.set_attributes(ino, bits).map_err(e)?;
            }
        }
        let at = |t: Option<TimeSet>| match t {
            None => None,
            Some(TimeSet::Now) => Some(now),
            Some(TimeSet::At(t)) => Some(unix(t)),
        };
        let (m, a) = (at(set.mtime), at(set.atime));
        if m.is_some() || a.is_some() {
            fs.set_times(ino, m, a).map_err(e)?;
        }
        self.stat_of(&mut fs, ino).map_err(e)
    }

    fn create(&self, dir: Ino, name: &[u8], new: &NewInode) -> FsResult<Attr> {
        let is_dir = match new.mode & S_IFMT {
            S_IFREG => false,
            S_IFDIR => true,
            _ => return Err(Errno::EPERM),
        };
        let mut fs = self.fs.lock();
        if self.clock.is_some() {
            fs.set_now(self.now());
        }
        let ino = fs.create(dir, name, is_dir, 0).map_err(|e| errno_of(&e))?;
        self.stat_of(&mut fs, ino).map_err(|e| errno_of(&e))
    }

    fn symlink(
        &self,
        _dir: Ino,
        _name: &[u8],
        _target: &[u8],
        _uid: u32,
        _gid: u32,
    ) -> FsResult<Attr> {
        Err(Errno::EPERM)
    }

    fn link(&self, _ino: Ino, _dir: Ino, _name: &[u8]) -> FsResult<Attr> {
        Err(Errno::EPERM)
    }

    fn unlink(&self, dir: Ino, name: &[u8], rmdir: bool) -> FsResult<()> {
        self.modify(|fs| fs.unlink(dir, name, rmdir))
    }

    fn rename(&self, olddir: Ino, oldname: &[u8], newdir: Ino, newname: &[u8]) -> FsResult<()> {
        self.modify(|fs| fs.rename(olddir, oldname, newdir, newname))
    }

    fn fsync(&self, _ino: Ino, _datasync: bool) -> FsResult<()> {
        self.sync()
    }

    fn sync(&self) -> FsResult<()> {
        self.fs.lock().sync().map_err(|e| errno_of(&e))
    }
}
