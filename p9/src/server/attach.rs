//! Reaching files: Tattach (a fid on the export root or a path below it) and Twalk.

use super::attr::qid_of;
use super::connection::Connection;
use super::fids::{Fid, FidInfo};
use super::reply;
use crate::fs::{Attr, Errno, Filesystem, Ino};
use crate::perm::MAY_EXEC;
use crate::wire::{Rmsg, MAX_WELEM, NOFID};
use alloc::vec::Vec;

/// Resolves a `/`-separated path below `start` without following symlinks; `..` never goes
/// above `root`. Empty components and `.` are skipped.
pub fn resolve_path<F: Filesystem + ?Sized>(
    fs: &F,
    root: Ino,
    start: Ino,
    path: &[u8],
) -> Result<Attr, Errno> {
    walk_path(fs, root, start, path, |_| Ok(()))
}

/// [`resolve_path`], asking `may_pass` about each directory before going through it.
fn walk_path<F: Filesystem + ?Sized>(
    fs: &F,
    root: Ino,
    start: Ino,
    path: &[u8],
    mut may_pass: impl FnMut(&Attr) -> Result<(), Errno>,
) -> Result<Attr, Errno> {
    let mut cur = fs.getattr(start)?;
    for comp in path.split(|&b| b == b'/') {
        if comp.is_empty() || comp == b"." {
            continue;
        }
        if !cur.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        may_pass(&cur)?;
        if comp == b".." && cur.ino == root {
            continue;
        }
        cur = fs.lookup(cur.ino, comp)?;
    }
    Ok(cur)
}

impl<F: Filesystem> Connection<F> {
    /// Tattach: `fid` on the directory `aname` names below the export root, owned by the
    /// guest user `n_uname` (mapped to the host). No authentication (`afid` must be NOFID).
    pub(super) fn attach(
        &self,
        tag: u16,
        fid: u32,
        afid: u32,
        aname: &[u8],
        n_uname: u32,
    ) -> Result<Vec<u8>, Errno> {
        let root = self.shared.root;
        if afid != NOFID {
            return Err(Errno::EINVAL);
        }
        let a = if self.checking() {
            self.resolve_searching(n_uname, root, aname)?
        } else {
            resolve_path(self.fs(), root, root, aname)?
        };
        if !a.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        self.insert_fid(fid, Fid::new(a.ino, true, n_uname, None))?;
        Ok(reply(tag, &Rmsg::Attach { qid: qid_of(&a) }))
    }

    /// [`resolve_path`] from the export root for guest user `uid`, who needs search
    /// permission on every directory it passes.
    fn resolve_searching(&self, uid: u32, root: Ino, path: &[u8]) -> Result<Attr, Errno> {
        walk_path(self.fs(), root, root, path, |dir| {
            self.need(uid, dir, MAY_EXEC)
        })
    }

    /// Twalk: up to [`MAX_WELEM`] steps from `fid`; `newfid` gets the last one reached (none if
    /// the first step fails, and the walk stops short with the qids of the steps it made).
    pub(super) fn walk(
        &self,
        tag: u16,
        fid: u32,
        newfid: u32,
        names: &[&[u8]],
    ) -> Result<Vec<u8>, Errno> {
        let fs = self.fs();
        let root = self.shared.root;
        let (start, parent) = {
            let st = self.state.lock();
            let f = st.fids.get(&fid).ok_or(Errno::EBADF)?;
            if f.xattr.is_some() {
                return Err(Errno::EBADF);
            }
            if newfid != fid && st.fids.contains_key(&newfid) {
                return Err(Errno::EBADF);
            }
            (FidInfo::of(f), f.parent.clone())
        };
        if names.len() > MAX_WELEM {
            return Err(Errno::E2BIG);
        }
        let mut qids = Vec::with_capacity(names.len());
        let mut cur = start.ino;
        let mut cur_dir = start.is_dir;
        let mut parent = parent;
        let checking = self.checking();
        for (k, name) in names.iter().enumerate() {
            let step = (|| {
                if !cur_dir {
                    return Err(Errno::ENOTDIR);
                }
                if name.is_empty() || name.contains(&b'/') || name.contains(&0) {
                    return Err(Errno::EINVAL);
                }
                if name.len() > 255 {
                    return Err(Errno::ENAMETOOLONG);
                }
                if checking {
                    self.need_ino(start.uid, cur, MAY_EXEC)?;
                }
                if *name == b"." {
                    return fs.getattr(cur);
                }
                if *name == b".." && cur == root {
                    return fs.getattr(root);
                }
                fs.lookup(cur, name)
            })();
            match step {
                Ok(a) => {
                    qids.push(qid_of(&a));
                    parent = if *name == b"." || *name == b".." {
                        None
                    } else {
                        Some((cur, name.to_vec()))
                    };
                    cur = a.ino;
                    cur_dir = a.is_dir();
                }
                Err(e) if k == 0 => return Err(e),
                Err(_) => return Ok(reply(tag, &Rmsg::Walk { qids })),
            }
        }
        let new = Fid::new(cur, cur_dir, start.uid, parent);
        if newfid == fid {
            let old = {
                let mut st = self.state.lock();
                let f = st.fids.get_mut(&fid).ok_or(Errno::EBADF)?;
                if f.open.is_some() {
                    return Err(Errno::EBADF);
                }
                fs.retain(cur);
                core::mem::replace(f, new)
            };
            let _ = self.release_fid(old);
        } else {
            self.insert_fid(newfid, new)?;
        }
        Ok(reply(tag, &Rmsg::Walk { qids }))
    }
}
