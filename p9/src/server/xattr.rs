//! Extended attributes: Txattrwalk opens a fid on a value (or the list of names), which Tread
//! reads; Txattrcreate turns a fid into one that Twrite fills and Tclunk commits.

use super::connection::Connection;
use super::fids::Fid;
use super::reply;
use crate::fs::{Errno, Filesystem, Ino};
use crate::perm::{self, MAY_READ, MAY_WRITE};
use crate::wire::Rmsg;
use alloc::sync::Arc;
use alloc::vec::Vec;

/// Largest xattr value (or list of names) read or written, as Linux's `XATTR_SIZE_MAX`.
const XATTR_SIZE_MAX: u64 = 65536;

/// What an xattr fid holds.
#[derive(Debug, Clone)]
pub(super) enum XattrFid {
    /// The value (or list of names) Txattrwalk read, for Tread.
    Read(Arc<Vec<u8>>),
    /// A value Twrite is filling, set (or, at size 0, removed) at Tclunk.
    Write {
        name: Vec<u8>,
        size: u64,
        flags: u32,
        buf: Vec<u8>,
    },
}

impl<F: Filesystem> Connection<F> {
    /// Txattrwalk.
    pub(super) fn xattrwalk(
        &self,
        tag: u16,
        fid: u32,
        newfid: u32,
        name: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let fs = self.fs();
        let i = self.plain(fid)?;
        let pol = self.policy();
        if !pol.is_identity() && !name.is_empty() {
            let a = fs.getattr(i.ino)?;
            if name.starts_with(b"trusted.") {
                self.need_capable(i.uid, &a)?;
            } else if name.starts_with(b"user.") {
                self.need(i.uid, &a, MAY_READ)?;
            }
        }
        let data = if name.is_empty() {
            fs.listxattr(i.ino)?
        } else {
            fs.getxattr(i.ino, name)?
        };
        let data = if !pol.is_identity() && perm::is_acl(name) {
            perm::acl_to_guest(&data, &pol.uid_map, &pol.gid_map).ok_or(Errno::EIO)?
        } else {
            data
        };
        if data.len() as u64 > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        let size = data.len() as u64;
        let new = Fid {
            xattr: Some(XattrFid::Read(Arc::new(data))),
            ..Fid::new(i.ino, i.is_dir, i.uid, None)
        };
        if newfid == fid {
            return Err(Errno::EBADF);
        }
        self.insert_fid(newfid, new)?;
        Ok(reply(tag, &Rmsg::Xattrwalk { size }))
    }

    /// Txattrcreate.
    pub(super) fn xattrcreate(
        &self,
        tag: u16,
        fid: u32,
        name: &[u8],
        size: u64,
        flags: u32,
    ) -> Result<Vec<u8>, Errno> {
        let i = self.plain(fid)?;
        self.writable()?;
        if name.is_empty() || name.len() > 255 {
            return Err(Errno::EINVAL);
        }
        if size > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        if i.open.is_some() {
            return Err(Errno::EBADF);
        }
        if self.checking() {
            self.need_set_xattr(i.uid, i.ino, name)?;
        }
        let mut st = self.state.lock();
        let f = st.fids.get_mut(&fid).ok_or(Errno::EBADF)?;
        f.xattr = Some(XattrFid::Write {
            name: name.to_vec(),
            size,
            flags,
            buf: Vec::new(),
        });
        Ok(reply(tag, &Rmsg::Xattrcreate))
    }

    /// Tread of an xattr fid: at most `n` bytes of its value from `offset`.
    pub(super) fn read_xattr(
        &self,
        tag: u16,
        fid: u32,
        offset: u64,
        n: usize,
    ) -> Result<Vec<u8>, Errno> {
        let st = self.state.lock();
        let Some(Fid {
            xattr: Some(XattrFid::Read(data)),
            ..
        }) = st.fids.get(&fid)
        else {
            return Err(Errno::EBADF);
        };
        let off = usize::try_from(offset).unwrap_or(usize::MAX);
        let src = data.get(off..).unwrap_or(&[]);
        Ok(reply(
            tag,
            &Rmsg::Read {
                data: src.get(..n.min(src.len())).unwrap_or(&[]),
            },
        ))
    }

    /// Twrite of an xattr fid: appends to the value, which must be written in order and
    /// within the size Txattrcreate gave.
    // Twrite's arguments, as `write` (io.rs) passes them on for an xattr fid.
    pub(super) fn write_xattr(
        &self,
        tag: u16,
        fid: u32,
        offset: u64,
        data: &[u8],
    ) -> Result<Vec<u8>, Errno> {
        let mut st = self.state.lock();
        let Some(Fid {
            xattr: Some(XattrFid::Write { size, buf, .. }),
            ..
        }) = st.fids.get_mut(&fid)
        else {
            return Err(Errno::EBADF);
        };
        if offset != buf.len() as u64 || (buf.len() + data.len()) as u64 > *size {
            return Err(Errno::EINVAL);
        }
        buf.extend_from_slice(data);
        Ok(reply(
            tag,
            &Rmsg::Write {
                count: data.len() as u32,
            },
        ))
    }

    /// Commits what an xattr fid wrote, when it is released: sets the value, or removes the
    /// attribute if Txattrcreate gave size 0; a value shorter than announced is `EINVAL`.
    pub(super) fn commit_xattr(&self, ino: Ino, x: &XattrFid) -> Result<(), Errno> {
        let XattrFid::Write {
            name,
            size,
            flags,
            buf,
        } = x
        else {
            return Ok(());
        };
        if *size == 0 {
            self.fs().removexattr(ino, name)
        } else if buf.len() as u64 != *size {
            Err(Errno::EINVAL)
        } else if perm::is_acl(name) && !self.policy().is_identity() {
            let pol = self.policy();
            let v = perm::acl_to_host(buf, &pol.uid_map, &pol.gid_map).ok_or(Errno::EINVAL)?;
            self.fs().setxattr(ino, name, &v, *flags)
        } else {
            self.fs().setxattr(ino, name, buf, *flags)
        }
    }

    /// Linux's rules for setting or removing xattr `name` of `ino` (`xattr_permission`):
    /// `user.` needs write permission on a file or directory; an ACL needs the owner;
    /// `trusted.` and `security.` a privileged caller.
    fn need_set_xattr(&self, uid: u32, ino: Ino, name: &[u8]) -> Result<(), Errno> {
        let a = self.fs().getattr(ino)?;
        if name.starts_with(b"user.") {
            if !a.is_dir() && !a.is_file() {
                return Err(Errno::EPERM);
            }
            self.need(uid, &a, MAY_WRITE)
        } else if perm::is_acl(name) {
            self.need_owner(uid, &a)
        } else if name.starts_with(b"trusted.") || name.starts_with(b"security.") {
            self.need_capable(uid, &a)
        } else {
            Ok(())
        }
    }
}
