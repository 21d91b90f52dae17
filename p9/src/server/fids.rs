//! The fid table: what a fid holds ([`Fid`]), looking fids up by the kind of use a message
//! makes of them, adding and releasing them, and Tclunk.

use super::connection::Connection;
use super::reply;
use super::xattr::XattrFid;
use crate::fs::{Errno, Filesystem, Ino};
use crate::policy::LockOwner;
use crate::wire::{Rmsg, NOFID};
use alloc::vec::Vec;

#[derive(Debug, Clone)]
pub(super) struct Fid {
    pub(super) ino: Ino,
    pub(super) is_dir: bool,
    /// The guest user of the attach this fid comes from (mapped to the host at each use).
    pub(super) uid: u32,
    /// Directory and name this fid was reached by (for Trename / Tremove).
    pub(super) parent: Option<(Ino, Vec<u8>)>,
    pub(super) open: Option<u32>,
    pub(super) xattr: Option<XattrFid>,
    pub(super) lock_owners: Vec<LockOwner>,
}

/// A copy of what an operation needs of a fid, taken under the connection's lock.
#[derive(Debug, Clone, Copy)]
pub(super) struct FidInfo {
    pub(super) ino: Ino,
    pub(super) is_dir: bool,
    pub(super) uid: u32,
    pub(super) open: Option<u32>,
    pub(super) xattr: bool,
}

impl Fid {
    /// A fid on `ino` reached through `parent`, of guest user `uid`: not
    /// open, not an xattr fid, holding no locks.
    pub(super) fn new(ino: Ino, is_dir: bool, uid: u32, parent: Option<(Ino, Vec<u8>)>) -> Self {
        Fid {
            ino,
            is_dir,
            uid,
            parent,
            open: None,
            xattr: None,
            lock_owners: Vec::new(),
        }
    }
}

impl FidInfo {
    /// What an operation needs of `f`.
    pub(super) fn of(f: &Fid) -> Self {
        FidInfo {
            ino: f.ino,
            is_dir: f.is_dir,
            uid: f.uid,
            open: f.open,
            xattr: f.xattr.is_some(),
        }
    }
}

impl<F: Filesystem> Connection<F> {
    /// Any fid.
    pub(super) fn info(&self, fid: u32) -> Result<FidInfo, Errno> {
        let st = self.state.lock();
        let f = st.fids.get(&fid).ok_or(Errno::EBADF)?;
        Ok(FidInfo::of(f))
    }

    /// A fid usable for inode operations (not an xattr fid).
    pub(super) fn plain(&self, fid: u32) -> Result<FidInfo, Errno> {
        let i = self.info(fid)?;
        if i.xattr {
            return Err(Errno::EBADF);
        }
        Ok(i)
    }

    /// A plain fid of a directory.
    pub(super) fn dir_fid(&self, fid: u32) -> Result<FidInfo, Errno> {
        let i = self.plain(fid)?;
        if !i.is_dir {
            return Err(Errno::ENOTDIR);
        }
        Ok(i)
    }

    /// Inserts a new fid holding `ino`; fails if the fid number is taken or the table full.
    pub(super) fn insert_fid(&self, fid: u32, new: Fid) -> Result<(), Errno> {
        let mut st = self.state.lock();
        if fid == NOFID || st.fids.contains_key(&fid) {
            return Err(Errno::EBADF);
        }
        if st.fids.len() >= self.shared.cfg.max_fids {
            return Err(Errno::EMFILE);
        }
        self.fs().retain(new.ino);
        st.fids.insert(fid, new);
        Ok(())
    }

    /// Releases what a fid held. Returns the result of committing an xattr write.
    pub(super) fn release_fid(&self, f: Fid) -> Result<(), Errno> {
        let mut res = Ok(());
        if f.open.is_some() {
            self.shared.quota.refund_open();
        }
        for o in &f.lock_owners {
            self.shared.locks.release_owner(f.ino, o);
        }
        if let Some(x) = &f.xattr {
            res = self.commit_xattr(f.ino, x);
        }
        self.fs().release(f.ino);
        res
    }

    /// Releases every fid (a new session, or the end of the connection) and the connection's
    /// locks.
    pub(super) fn clunk_all(&self) {
        let fids = core::mem::take(&mut self.state.lock().fids);
        for (_, f) in fids {
            let _ = self.release_fid(f);
        }
        self.shared.locks.release_conn(self.id);
    }

    /// Tclunk.
    pub(super) fn clunk(&self, tag: u16, fid: u32) -> Result<Vec<u8>, Errno> {
        let f = self.state.lock().fids.remove(&fid).ok_or(Errno::EBADF)?;
        self.release_fid(f)?;
        Ok(reply(tag, &Rmsg::Clunk))
    }
}
