//! The ext4 engine (`pvfs_fs::ext4::Ext4`) behind the [`Filesystem`] trait.
//!
//! The engine takes `&mut self`, so the adapter serialises calls with a lock. Only the read
//! path exists in the engine so far: every modifying operation returns `EROFS`. To add
//! writes, override the corresponding trait methods here and call the engine.

use crate::fs::{dt, Attr, DirEntry, Errno, Filesystem, FsResult, FsStat, Ino, Timespec};
use alloc::vec::Vec;
use pvfs_fs::block::BlockDevice;
use pvfs_fs::ext4::{self, Error, Ext4, FileType};
use spin::Mutex;

/// ext4's statfs magic.
pub const EXT4_SUPER_MAGIC: u32 = 0xEF53;

/// An ext4 filesystem served read-only.
pub struct Ext4Fs<D: BlockDevice> {
    fs: Mutex<Ext4<D>>,
    block_size: u64,
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
        Error::NoSpace => Errno::ENOSPC,
        Error::NotEmpty => Errno::ENOTEMPTY,
        Error::Invalid { .. } => Errno::EINVAL,
        Error::TooManyLinks => Errno::EMLINK,
        Error::FileTooBig => Errno::EFBIG,
        _ => Errno::EIO,
    }
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
            fs: Mutex::new(fs),
            block_size,
        }
    }

    /// Runs `f` with the engine locked (for the embedder: statistics, device events).
    pub fn with_engine<R>(&self, f: impl FnOnce(&mut Ext4<D>) -> R) -> R {
        f(&mut self.fs.lock())
    }

    /// Gives the engine back.
    pub fn into_inner(self) -> Ext4<D> {
        self.fs.into_inner()
    }

    fn attr(&self, a: &ext4::Attr) -> Attr {
        let ctime = ts(a.ctime);
        let mtime = ts(a.mtime);
        // No i_version from the engine yet: derive a change counter from ctime, mtime and size
        // (the image is read-only while served, so it does not change under us).
        let version = (ctime.sec << 30)
            ^ u64::from(ctime.nsec)
            ^ (mtime.sec << 20)
            ^ u64::from(mtime.nsec)
            ^ a.size;
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
        let mut fs = self.fs.lock();
        let ino = fs.lookup(ino32(dir)?, name).map_err(|e| errno_of(&e))?;
        let a = fs.getattr(ino).map_err(|e| errno_of(&e))?;
        Ok(self.attr(&a))
    }

    fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        let a = self
            .fs
            .lock()
            .getattr(ino32(ino)?)
            .map_err(|e| errno_of(&e))?;
        Ok(self.attr(&a))
    }

    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize> {
        self.fs
            .lock()
            .read(ino32(ino)?, off, buf)
            .map_err(|e| errno_of(&e))
    }

    fn readdir(
        &self,
        dir: Ino,
        cookie: u64,
        f: &mut dyn FnMut(DirEntry<'_>) -> bool,
    ) -> FsResult<()> {
        self.fs
            .lock()
            .readdir(ino32(dir)?, cookie, |e| {
                f(DirEntry {
                    ino: u64::from(e.ino),
                    kind: dt_of(e.kind),
                    name: e.name,
                    next_cookie: e.next_cookie,
                })
            })
            .map_err(|e| errno_of(&e))
    }

    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        self.fs
            .lock()
            .readlink(ino32(ino)?)
            .map_err(|e| errno_of(&e))
    }

    fn statfs(&self) -> FsResult<FsStat> {
        let s = self.fs.lock().statfs();
        Ok(FsStat {
            fs_type: EXT4_SUPER_MAGIC,
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
        let names = self
            .fs
            .lock()
            .listxattr(ino32(ino)?)
            .map_err(|e| errno_of(&e))?;
        let mut out = Vec::new();
        for n in names {
            out.extend_from_slice(&n);
            out.push(0);
        }
        Ok(out)
    }

    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        self.fs
            .lock()
            .getxattr(ino32(ino)?, name)
            .map_err(|e| errno_of(&e))
    }

    fn setxattr(&self, _ino: Ino, _name: &[u8], _value: &[u8], _flags: u32) -> FsResult<()> {
        Err(Errno::EROFS)
    }
    fn removexattr(&self, _ino: Ino, _name: &[u8]) -> FsResult<()> {
        Err(Errno::EROFS)
    }
    fn write(&self, _ino: Ino, _off: u64, _data: &[u8]) -> FsResult<usize> {
        Err(Errno::EROFS)
    }
    fn setattr(&self, _ino: Ino, _set: &crate::fs::SetAttr) -> FsResult<Attr> {
        Err(Errno::EROFS)
    }
    fn create(&self, _dir: Ino, _name: &[u8], _new: &crate::fs::NewInode) -> FsResult<Attr> {
        Err(Errno::EROFS)
    }
    fn symlink(
        &self,
        _dir: Ino,
        _name: &[u8],
        _target: &[u8],
        _uid: u32,
        _gid: u32,
    ) -> FsResult<Attr> {
        Err(Errno::EROFS)
    }
    fn link(&self, _ino: Ino, _dir: Ino, _name: &[u8]) -> FsResult<Attr> {
        Err(Errno::EROFS)
    }
    fn unlink(&self, _dir: Ino, _name: &[u8], _rmdir: bool) -> FsResult<()> {
        Err(Errno::EROFS)
    }
    fn rename(&self, _olddir: Ino, _oldname: &[u8], _newdir: Ino, _newname: &[u8]) -> FsResult<()> {
        Err(Errno::EROFS)
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
