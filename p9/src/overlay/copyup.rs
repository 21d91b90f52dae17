//! Copy-up: giving a template object an upper copy in the share's directory.
//!
//! - A directory is made in place (its parents first, top down) with the template
//!   directory's owner, mode, xattrs and times, and its origin recorded.
//! - Any other object is first made under a temporary name in the work directory with the
//!   template's owner, mode, xattrs and times and its origin, then renamed into place: a
//!   crash leaves no half-made copy in the view. A regular file's copy is at first
//!   metadata only (`meta`: its size is set, its blocks are not, reads go to the template);
//!   [`Cx::copy_up_data`] copies the data into it in place, makes it durable, and only then
//!   clears the mark, so a crash leaves the template's data or all of the copy.
//! - The upper parent keeps its access and modification times across a copy-up (as
//!   overlayfs's): making a copy is not a change the guest made to the directory.

use super::{found, is_private_xattr, Cx, INDEX_NAME, TMP_PREFIX, WORK_NAME};
use crate::fs::{mode, Errno, Filesystem, FsResult, Ino, NewInode, SetAttr, TimeSet};
use alloc::vec;
use alloc::vec::Vec;

/// Bytes copied at a time.
const CHUNK: usize = 64 * 1024;

/// Decimal digits of `n`.
fn decimal(mut n: u64) -> Vec<u8> {
    let mut v = Vec::new();
    loop {
        v.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    v.reverse();
    v
}

fn private_dir() -> NewInode {
    NewInode {
        mode: mode::S_IFDIR | 0o700,
        uid: 0,
        gid: 0,
        rdev: 0,
    }
}

impl<F: Filesystem> Cx<'_, F> {
    /// The work directory, made if `make` and missing.
    fn work_dir(&self, make: bool) -> FsResult<Option<Ino>> {
        if let Some(a) = found(self.fs.lookup(self.upper_root, WORK_NAME))? {
            return Ok(Some(a.ino));
        }
        if !make {
            return Ok(None);
        }
        let before = self.fs.getattr(self.upper_root)?;
        let w = self
            .fs
            .create(self.upper_root, WORK_NAME, &private_dir())?
            .ino;
        self.fs.setattr(self.upper_root, &times(&before))?;
        Ok(Some(w))
    }

    /// The index directory of copied template files with several links.
    fn index_dir(&self, make: bool) -> FsResult<Option<Ino>> {
        let Some(w) = self.work_dir(make)? else {
            return Ok(None);
        };
        if let Some(a) = found(self.fs.lookup(w, INDEX_NAME))? {
            return Ok(Some(a.ino));
        }
        if !make {
            return Ok(None);
        }
        Ok(Some(self.fs.create(w, INDEX_NAME, &private_dir())?.ino))
    }

    /// The copy of template inode `lower` made through another of its names, if any.
    pub(super) fn index_entry(&self, lower: Ino) -> FsResult<Option<Ino>> {
        let Some(idx) = self.index_dir(false)? else {
            return Ok(None);
        };
        Ok(found(self.fs.lookup(idx, &decimal(lower)))?.map(|a| a.ino))
    }

    /// Removes temporary copies a crash left in the work directory.
    pub(super) fn clean_work(&self) -> FsResult<()> {
        let Some(w) = self.work_dir(false)? else {
            return Ok(());
        };
        let mut names: Vec<Vec<u8>> = Vec::new();
        self.fs.readdir(w, 0, &mut |e| {
            if e.name.starts_with(TMP_PREFIX) {
                names.push(e.name.to_vec());
            }
            true
        })?;
        for n in names {
            self.fs.unlink(w, &n, false)?;
        }
        Ok(())
    }

    /// A fresh temporary name in the work directory.
    fn tmp_name(&mut self) -> FsResult<(Ino, Vec<u8>)> {
        let w = self.work_dir(true)?.ok_or(Errno::EIO)?;
        loop {
            let n = self.st.next_tmp;
            self.st.next_tmp = n.wrapping_add(1);
            let mut name = TMP_PREFIX.to_vec();
            name.extend_from_slice(&decimal(n));
            if found(self.fs.lookup(w, &name))?.is_none() {
                return Ok((w, name));
            }
        }
    }

    /// Copies the xattrs of `from` (except the overlay's own) to `to`.
    fn copy_xattrs(&self, from: Ino, to: Ino) -> FsResult<()> {
        let names = self.fs.listxattr(from)?;
        for name in names.split(|&b| b == 0).filter(|s| !s.is_empty()) {
            if is_private_xattr(name) {
                continue;
            }
            let v = self.fs.getxattr(from, name)?;
            self.fs.setxattr(to, name, &v, 0)?;
        }
        Ok(())
    }

    /// Makes sure merged directory `ino` and its parents have upper directories; returns
    /// `ino`'s.
    pub(super) fn ensure_dir_upper(&mut self, ino: Ino) -> FsResult<Ino> {
        let mut chain = Vec::new();
        let mut cur = ino;
        let mut pu = loop {
            let n = self.node(cur)?;
            if !n.dir {
                return Err(Errno::ENOTDIR);
            }
            if let Some(u) = n.upper {
                break u;
            }
            if n.name.is_empty() {
                return Err(Errno::ENOENT);
            }
            chain.push(cur);
            cur = n.parent;
        };
        for &d in chain.iter().rev() {
            let n = self.node(d)?;
            let l = n.lower.ok_or(Errno::EIO)?;
            let la = self.fs.getattr(l)?;
            let new = NewInode {
                mode: la.mode,
                uid: la.uid,
                gid: la.gid,
                rdev: 0,
            };
            let before = self.fs.getattr(pu)?;
            let u = self.fs.create(pu, &n.name, &new)?.ino;
            self.fs.setattr(pu, &times(&before))?;
            self.set_origin(u, l, false)?;
            self.copy_xattrs(l, u)?;
            self.fs.setattr(u, &times(&la))?;
            self.set_upper(d, u, false);
            pu = u;
        }
        Ok(pu)
    }

    /// Gives merged object `ino` an upper inode (for a regular file, metadata only at first);
    /// returns it.
    pub(super) fn copy_up_meta(&mut self, ino: Ino) -> FsResult<Ino> {
        let n = self.node(ino)?;
        if let Some(u) = n.upper {
            return Ok(u);
        }
        if n.dir {
            return self.ensure_dir_upper(ino);
        }
        let l = n.lower.ok_or(Errno::EIO)?;
        if n.name.is_empty() {
            return Err(Errno::EIO);
        }
        let pu = self.ensure_dir_upper(n.parent)?;
        let la = self.fs.getattr(l)?;
        let parent_before = self.fs.getattr(pu)?;
        if la.nlink > 1 {
            if let Some(idx) = self.index_entry(l)? {
                self.fs.link(idx, pu, &n.name)?;
                self.fs.setattr(pu, &times(&parent_before))?;
                let meta = self.origin(idx)?.is_some_and(|(_, m)| m);
                self.set_upper(ino, idx, meta);
                return Ok(idx);
            }
        }
        let (work, tmp) = self.tmp_name()?;
        let kind = la.mode & mode::S_IFMT;
        let u = if kind == mode::S_IFLNK {
            let target = self.fs.readlink(l)?;
            self.fs.symlink(work, &tmp, &target, la.uid, la.gid)?.ino
        } else {
            let new = NewInode {
                mode: la.mode,
                uid: la.uid,
                gid: la.gid,
                rdev: la.rdev,
            };
            self.fs.create(work, &tmp, &new)?.ino
        };
        let meta = kind == mode::S_IFREG && la.size > 0;
        if meta {
            self.fs.setattr(
                u,
                &SetAttr {
                    size: Some(la.size),
                    ..SetAttr::default()
                },
            )?;
        }
        self.copy_xattrs(l, u)?;
        self.set_origin(u, l, meta)?;
        self.fs.setattr(u, &times(&la))?;
        if la.nlink > 1 {
            let idx = self.index_dir(true)?.ok_or(Errno::EIO)?;
            self.fs.link(u, idx, &decimal(l))?;
        }
        self.fs.rename(work, &tmp, pu, &n.name)?;
        self.fs.setattr(pu, &times(&parent_before))?;
        self.set_upper(ino, u, meta);
        Ok(u)
    }

    /// Gives merged object `ino` an upper inode with its own data; returns it.
    pub(super) fn copy_up_data(&mut self, ino: Ino) -> FsResult<Ino> {
        let u = self.copy_up_meta(ino)?;
        let n = self.node(ino)?;
        if !n.meta {
            return Ok(u);
        }
        let l = n.lower.ok_or(Errno::EIO)?;
        let before = self.fs.getattr(u)?;
        let mut buf = vec![0u8; CHUNK];
        let mut off = 0u64;
        loop {
            let got = self.fs.read(l, off, &mut buf)?;
            if got == 0 {
                break;
            }
            let part = buf.get(..got).ok_or(Errno::EIO)?;
            if part.iter().any(|&b| b != 0) {
                self.write_all(u, off, part)?;
            }
            off = off.checked_add(got as u64).ok_or(Errno::EFBIG)?;
        }
        self.fs.setattr(u, &times(&before))?;
        self.fs.fsync(u, false)?;
        self.set_origin(u, l, false)?;
        self.st.table.update(ino, |n| n.meta = false);
        Ok(u)
    }

    fn write_all(&self, ino: Ino, mut off: u64, mut data: &[u8]) -> FsResult<()> {
        while !data.is_empty() {
            let n = self.fs.write(ino, off, data)?;
            if n == 0 {
                return Err(Errno::EIO);
            }
            data = data.get(n..).ok_or(Errno::EIO)?;
            off = off.checked_add(n as u64).ok_or(Errno::EFBIG)?;
        }
        Ok(())
    }
}

/// A setattr that gives an inode `a`'s access and modification times.
fn times(a: &crate::fs::Attr) -> SetAttr {
    SetAttr {
        atime: Some(TimeSet::At(a.atime)),
        mtime: Some(TimeSet::At(a.mtime)),
        ..SetAttr::default()
    }
}
