//! [`ShareFs`]: what a share serves, its directory of the volume as it is or merged with a
//! template ([`OverlayFs`]), as one [`Filesystem`] type for the server and the transport.

use super::OverlayFs;
use crate::fs::{Attr, DirVisitor, Filesystem, FsResult, FsStat, Ino, NewInode, SetAttr};
use alloc::sync::Arc;
use alloc::vec::Vec;

/// A share's filesystem.
pub enum ShareFs<F: Filesystem> {
    /// The volume itself (the export's root confines the share).
    Plain(F),
    /// The share's directory merged with a template directory.
    Template(Arc<OverlayFs<F>>),
}

impl<F: Filesystem + Clone> Clone for ShareFs<F> {
    fn clone(&self) -> Self {
        match self {
            ShareFs::Plain(f) => ShareFs::Plain(f.clone()),
            ShareFs::Template(o) => ShareFs::Template(o.clone()),
        }
    }
}

impl<F: Filesystem> ShareFs<F> {
    /// The volume's filesystem under the share.
    pub fn volume(&self) -> &F {
        match self {
            ShareFs::Plain(f) => f,
            ShareFs::Template(o) => o.inner(),
        }
    }
    fn fs(&self) -> &dyn Filesystem
    where
        F: 'static,
    {
        match self {
            ShareFs::Plain(f) => f,
            ShareFs::Template(o) => &**o,
        }
    }
}

impl<F: Filesystem + 'static> Filesystem for ShareFs<F> {
    fn root(&self) -> Ino {
        self.fs().root()
    }
    fn lookup(&self, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        self.fs().lookup(dir, name)
    }
    fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        self.fs().getattr(ino)
    }
    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize> {
        self.fs().read(ino, off, buf)
    }
    fn read_would_wait(&self, ino: Ino, off: u64, len: u32) -> bool {
        self.fs().read_would_wait(ino, off, len)
    }
    fn write_would_fit(&self, ino: Ino, off: u64, len: u64) -> bool {
        self.fs().write_would_fit(ino, off, len)
    }
    fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()> {
        self.fs().readdir(dir, cookie, f)
    }
    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        self.fs().readlink(ino)
    }
    fn statfs(&self) -> FsResult<FsStat> {
        self.fs().statfs()
    }
    fn retain(&self, ino: Ino) {
        self.fs().retain(ino)
    }
    fn release(&self, ino: Ino) {
        self.fs().release(ino)
    }
    fn listxattr(&self, ino: Ino) -> FsResult<Vec<u8>> {
        self.fs().listxattr(ino)
    }
    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        self.fs().getxattr(ino, name)
    }
    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], flags: u32) -> FsResult<()> {
        self.fs().setxattr(ino, name, value, flags)
    }
    fn removexattr(&self, ino: Ino, name: &[u8]) -> FsResult<()> {
        self.fs().removexattr(ino, name)
    }
    fn getxattr_private(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        self.fs().getxattr_private(ino, name)
    }
    fn setxattr_private(&self, ino: Ino, name: &[u8], value: &[u8]) -> FsResult<()> {
        self.fs().setxattr_private(ino, name, value)
    }
    fn write(&self, ino: Ino, off: u64, data: &[u8]) -> FsResult<usize> {
        self.fs().write(ino, off, data)
    }
    fn owned_bytes(&self, ino: Ino, a: &Attr) -> u64 {
        self.fs().owned_bytes(ino, a)
    }
    fn setattr(&self, ino: Ino, set: &SetAttr) -> FsResult<Attr> {
        self.fs().setattr(ino, set)
    }
    fn create(&self, dir: Ino, name: &[u8], new: &NewInode) -> FsResult<Attr> {
        self.fs().create(dir, name, new)
    }
    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> FsResult<Attr> {
        self.fs().symlink(dir, name, target, uid, gid)
    }
    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        self.fs().link(ino, dir, name)
    }
    fn unlink(&self, dir: Ino, name: &[u8], rmdir: bool) -> FsResult<()> {
        self.fs().unlink(dir, name, rmdir)
    }
    fn rename(&self, olddir: Ino, oldname: &[u8], newdir: Ino, newname: &[u8]) -> FsResult<()> {
        self.fs().rename(olddir, oldname, newdir, newname)
    }
    fn fsync(&self, ino: Ino, datasync: bool) -> FsResult<()> {
        self.fs().fsync(ino, datasync)
    }
    fn sync(&self) -> FsResult<()> {
        self.fs().sync()
    }
    fn grow(&self, device_bytes: u64) -> FsResult<u64> {
        self.fs().grow(device_bytes)
    }
}
