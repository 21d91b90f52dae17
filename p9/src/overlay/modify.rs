//! Changes through the merged view: new names go into the upper directory (over a whiteout
//! if the template had the name), removals of template names leave whiteouts, renames move
//! upper copies (a template directory keeps merging through its origin), attribute changes
//! copy up first.

use super::{found, is_whiteout, Cx, WORK_NAME};
use crate::fs::{mode, Attr, Errno, Filesystem, FsResult, Ino, NewInode, SetAttr};
use crate::overlay::table::Node;
use alloc::vec::Vec;

impl<F: Filesystem> Cx<'_, F> {
    /// Checks that `name` is free in merged directory `dir` and readies its upper directory
    /// for it (a whiteout there is removed); returns the upper directory.
    fn prepare_name(&mut self, dir: Ino, name: &[u8]) -> FsResult<Ino> {
        if dir == self.upper_root && name == WORK_NAME {
            return Err(Errno::EPERM);
        }
        match self.lookup(dir, name) {
            Ok(_) => return Err(Errno::EEXIST),
            Err(Errno::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let pu = self.ensure_dir_upper(dir)?;
        if let Some(a) = found(self.fs.lookup(pu, name))? {
            if is_whiteout(&a) {
                self.fs.unlink(pu, name, false)?;
            }
        }
        Ok(pu)
    }

    /// Records a new upper object and returns its merged attributes.
    fn added(&mut self, dir: Ino, name: &[u8], a: &Attr) -> FsResult<Attr> {
        let node = Node {
            upper: Some(a.ino),
            lower: None,
            meta: false,
            dir: a.is_dir(),
            parent: dir,
            name: name.to_vec(),
        };
        self.st.table.put(a.ino, node);
        self.attr(a.ino)
    }

    pub(super) fn create(&mut self, dir: Ino, name: &[u8], new: &NewInode) -> FsResult<Attr> {
        let pu = self.prepare_name(dir, name)?;
        let a = self.fs.create(pu, name, new)?;
        if new.mode & mode::S_IFMT == mode::S_IFDIR && self.lower_has(dir, name)? {
            self.set_opaque(a.ino)?;
        }
        self.added(dir, name, &a)
    }

    pub(super) fn symlink(
        &mut self,
        dir: Ino,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> FsResult<Attr> {
        let pu = self.prepare_name(dir, name)?;
        let a = self.fs.symlink(pu, name, target, uid, gid)?;
        self.added(dir, name, &a)
    }

    pub(super) fn link(&mut self, ino: Ino, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        if self.node(ino)?.dir {
            return Err(Errno::EPERM);
        }
        let pu = self.prepare_name(dir, name)?;
        let u = self.copy_up_meta(ino)?;
        self.fs.link(u, pu, name)?;
        self.attr(ino)
    }

    /// Whether merged directory `dir` has no entries but `.` and `..`.
    fn is_empty(&self, dir: Ino) -> FsResult<bool> {
        let mut empty = true;
        self.readdir(dir, 0, &mut |e| {
            if e.name == b"." || e.name == b".." {
                return true;
            }
            empty = false;
            false
        })?;
        Ok(empty)
    }

    /// Removes the whiteouts of upper directory `u` (before it is removed or replaced; the
    /// merged directory is empty, so they are all it holds).
    fn purge_whiteouts(&self, u: Ino) -> FsResult<()> {
        let mut names: Vec<Vec<u8>> = Vec::new();
        self.fs.readdir(u, 0, &mut |e| {
            if e.name != b"." && e.name != b".." {
                names.push(e.name.to_vec());
            }
            true
        })?;
        for n in names {
            let a = self.fs.lookup(u, &n)?;
            if !is_whiteout(&a) {
                return Err(Errno::ENOTEMPTY);
            }
            self.fs.unlink(u, &n, false)?;
        }
        Ok(())
    }

    fn make_whiteout(&self, pu: Ino, name: &[u8]) -> FsResult<()> {
        let w = NewInode {
            mode: mode::S_IFCHR,
            uid: 0,
            gid: 0,
            rdev: 0,
        };
        self.fs.create(pu, name, &w).map(|_| ())
    }

    pub(super) fn unlink(&mut self, dir: Ino, name: &[u8], rmdir: bool) -> FsResult<()> {
        if name == b"." || name == b".." {
            return Err(Errno::EINVAL);
        }
        let (ino, n) = self.lookup(dir, name)?;
        match (n.dir, rmdir) {
            (true, false) => return Err(Errno::EISDIR),
            (false, true) => return Err(Errno::ENOTDIR),
            (true, true) if !self.is_empty(ino)? => return Err(Errno::ENOTEMPTY),
            _ => {}
        }
        let pu = self.ensure_dir_upper(dir)?;
        if let Some(a) = found(self.fs.lookup(pu, name))? {
            if a.is_dir() {
                self.purge_whiteouts(a.ino)?;
            }
            self.fs.unlink(pu, name, rmdir)?;
        }
        if self.lower_has(dir, name)? {
            self.make_whiteout(pu, name)?;
        }
        self.st.table.forget(ino);
        Ok(())
    }

    pub(super) fn rename(
        &mut self,
        olddir: Ino,
        oldname: &[u8],
        newdir: Ino,
        newname: &[u8],
    ) -> FsResult<()> {
        for n in [oldname, newname] {
            if n.is_empty() || n == b"." || n == b".." || n.contains(&b'/') {
                return Err(Errno::EINVAL);
            }
        }
        if newdir == self.upper_root && newname == WORK_NAME {
            return Err(Errno::EPERM);
        }
        let (sino, s) = self.lookup(olddir, oldname)?;
        if !self.node(newdir)?.dir {
            return Err(Errno::ENOTDIR);
        }
        if s.dir && self.is_ancestor(sino, newdir)? {
            return Err(Errno::EINVAL);
        }
        let dst = match self.lookup(newdir, newname) {
            Ok(d) => Some(d),
            Err(Errno::ENOENT) => None,
            Err(e) => return Err(e),
        };
        if let Some((dino, d)) = &dst {
            if *dino == sino {
                return Ok(());
            }
            match (s.dir, d.dir) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) if !self.is_empty(*dino)? => return Err(Errno::ENOTEMPTY),
                _ => {}
            }
        }
        let su = self.copy_up_meta(sino)?;
        let pold = self.ensure_dir_upper(olddir)?;
        match found(self.fs.lookup(pold, oldname))? {
            Some(a) if a.ino == su => {}
            Some(_) => return Err(Errno::EIO),
            // A template file with several links shown through its index copy.
            None => {
                self.fs.link(su, pold, oldname)?;
            }
        }
        let pnew = self.ensure_dir_upper(newdir)?;
        if let Some(a) = found(self.fs.lookup(pnew, newname))? {
            if is_whiteout(&a) {
                self.fs.unlink(pnew, newname, false)?;
            } else if a.is_dir() {
                self.purge_whiteouts(a.ino)?;
            }
        }
        if s.dir && self.origin(su)?.is_none() {
            match s.lower {
                Some(l) => self.set_origin(su, l, false)?,
                None => self.set_opaque(su)?,
            }
        }
        self.fs.rename(pold, oldname, pnew, newname)?;
        if self.lower_has(olddir, oldname)? {
            self.make_whiteout(pold, oldname)?;
        }
        if let Some((dino, _)) = dst {
            self.st.table.forget(dino);
        }
        let moved = Node {
            parent: newdir,
            name: newname.to_vec(),
            ..self.node(sino)?
        };
        self.st.table.put(sino, moved);
        Ok(())
    }

    pub(super) fn setattr(&mut self, ino: Ino, set: &SetAttr) -> FsResult<Attr> {
        let n = self.node(ino)?;
        let u = if set.size.is_some() && !n.dir {
            self.copy_up_data(ino)?
        } else {
            self.copy_up_meta(ino)?
        };
        self.fs.setattr(u, set)?;
        self.attr(ino)
    }
}
