//! Template shares: a copy-on-write merged view of a template directory under a share's own
//! directory, both on the same volume, served through the [`Filesystem`] trait like any
//! other filesystem (overlayfs's semantics; `README.md`, "Template shares", lists where they
//! differ).
//!
//! - The *upper* directory is the share's path; the *lower* one is the template, which is
//!   never modified through the view.
//! - An object not yet changed is the template's inode itself (reads share its blocks and
//!   the block cache). A change copies it up ([`copyup`]): chmod, chown, utimes and xattr
//!   changes copy the metadata only (the data stays the template's, `meta`), the first
//!   write or truncate the data too.
//! - Every copy records its template inode in the `trusted.pvfs.origin` xattr, and the view
//!   reports an object's inode number as its template inode's while it has one: `qid.path`
//!   stays the same across copy-up, without a table on disk.
//! - Removing a template entry leaves a whiteout in the upper directory (a character device
//!   0/0, as overlayfs); a directory made where a template entry was removed is opaque
//!   (`trusted.pvfs.opaque`). A renamed template directory keeps merging with its template
//!   directory through its origin (overlayfs's `redirect_dir`, by inode instead of path).
//! - Copies are made under a temporary name in a work directory inside the upper root
//!   ([`WORK_NAME`], hidden from the guest) and renamed into place; data is copied in place
//!   into the metadata copy and made durable before its `meta` mark is cleared, so a crash
//!   leaves the template's data or the whole copy. Template files with several links are
//!   copied once, under `WORK_NAME/index/<template inode>`, and every name of them shows
//!   that copy (overlayfs's `index`).
//! - The guest can neither see nor set `trusted.pvfs.*` xattrs.

mod copyup;
mod modify;
mod readdir;
mod share;
mod table;
#[cfg(test)]
mod tests;

use crate::fs::{
    mode, Attr, DirVisitor, Errno, Filesystem, FsResult, FsStat, Ino, NewInode, SetAttr,
};
use alloc::vec::Vec;
pub use share::ShareFs;
use spin::{Mutex, MutexGuard};
use table::{Node, Table};

/// Name of the work directory in the upper root; the guest never sees it and cannot make it.
pub const WORK_NAME: &[u8] = b".pvfs-work";
/// Prefix of the xattrs the overlay keeps for itself, hidden from the guest.
pub const PRIVATE_XATTR_PREFIX: &[u8] = b"trusted.pvfs.";
const ORIGIN: &[u8] = b"trusted.pvfs.origin";
const OPAQUE: &[u8] = b"trusted.pvfs.opaque";
const INDEX_NAME: &[u8] = b"index";
const TMP_PREFIX: &[u8] = b"tmp-";
/// Merged objects remembered beyond those fids hold and their parents (about 100 bytes
/// each plus the name: some 100 KiB a template share at most).
const TABLE_CAP: usize = 1024;

/// Whether `name` is one of the overlay's own xattrs.
pub fn is_private_xattr(name: &[u8]) -> bool {
    name.starts_with(PRIVATE_XATTR_PREFIX)
}

/// The merged view of a template directory (lower) under a share's directory (upper).
pub struct OverlayFs<F: Filesystem> {
    fs: F,
    upper_root: Ino,
    lower_root: Ino,
    st: Mutex<State>,
}

struct State {
    table: Table,
    next_tmp: u64,
}

/// One operation's view: the filesystem and the locked state.
struct Cx<'a, F: Filesystem> {
    fs: &'a F,
    st: MutexGuard<'a, State>,
    upper_root: Ino,
}

fn is_whiteout(a: &Attr) -> bool {
    a.mode & mode::S_IFMT == mode::S_IFCHR && a.rdev == 0
}

/// `Some(result)` for a lookup that found something or failed for a reason other than the
/// name's absence; `None` when the name is absent.
fn found(r: FsResult<Attr>) -> FsResult<Option<Attr>> {
    match r {
        Ok(a) => Ok(Some(a)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e),
    }
}

impl<F: Filesystem> OverlayFs<F> {
    /// The merged view of directory `lower` (the template) under directory `upper` (the
    /// share's own), both in `fs`. Neither may contain the other. Leftovers of copies a crash
    /// interrupted are removed from the work directory.
    pub fn new(fs: F, upper: Ino, lower: Ino) -> FsResult<Self> {
        if !fs.getattr(upper)?.is_dir() || !fs.getattr(lower)?.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if upper == lower
            || Self::is_under(&fs, upper, lower)?
            || Self::is_under(&fs, lower, upper)?
        {
            return Err(Errno::EINVAL);
        }
        let root = Node {
            upper: Some(upper),
            lower: Some(lower),
            meta: false,
            dir: true,
            parent: upper,
            name: Vec::new(),
        };
        let ov = OverlayFs {
            fs,
            upper_root: upper,
            lower_root: lower,
            st: Mutex::new(State {
                table: Table::new(upper, root, TABLE_CAP),
                next_tmp: 0,
            }),
        };
        // Best effort: on a read-only volume the leftovers stay (and stay hidden).
        let _ = ov.cx().clean_work();
        Ok(ov)
    }

    /// Whether directory `ino` lies under directory `anc` (following `..`, at most 4096
    /// levels).
    fn is_under(fs: &F, ino: Ino, anc: Ino) -> FsResult<bool> {
        let mut cur = ino;
        for _ in 0..4096 {
            let p = fs.lookup(cur, b"..")?.ino;
            if p == anc {
                return Ok(true);
            }
            if p == cur {
                return Ok(false);
            }
            cur = p;
        }
        Err(Errno::ELOOP)
    }

    /// The filesystem under the view.
    pub fn inner(&self) -> &F {
        &self.fs
    }

    /// The template directory.
    pub fn lower_root(&self) -> Ino {
        self.lower_root
    }

    fn cx(&self) -> Cx<'_, F> {
        Cx {
            fs: &self.fs,
            st: self.st.lock(),
            upper_root: self.upper_root,
        }
    }
}

impl<F: Filesystem> Cx<'_, F> {
    fn node(&self, ino: Ino) -> FsResult<Node> {
        self.st.table.get(ino).cloned()
    }

    /// The template inode a copy came from and whether its data is still the template's.
    fn origin(&self, upper: Ino) -> FsResult<Option<(Ino, bool)>> {
        match self.fs.getxattr_private(upper, ORIGIN) {
            Ok(v) => {
                let ino = v
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_le_bytes)
                    .ok_or(Errno::EIO)?;
                Ok(Some((ino, v.get(8) == Some(&1))))
            }
            Err(Errno::ENODATA) => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn set_origin(&self, upper: Ino, lower: Ino, meta: bool) -> FsResult<()> {
        let mut v = lower.to_le_bytes().to_vec();
        if meta {
            v.push(1);
        }
        self.fs.setxattr_private(upper, ORIGIN, &v)
    }

    fn opaque(&self, upper: Ino) -> FsResult<bool> {
        match self.fs.getxattr_private(upper, OPAQUE) {
            Ok(_) => Ok(true),
            Err(Errno::ENODATA) => Ok(false),
            Err(e) => Err(e),
        }
    }

    fn set_opaque(&self, upper: Ino) -> FsResult<()> {
        self.fs.setxattr_private(upper, OPAQUE, b"y")
    }

    /// The reported inode number of the upper inode `a` (its origin's if it has one).
    fn reported(&self, a: &Attr) -> FsResult<Ino> {
        if is_whiteout(a) {
            return Ok(a.ino);
        }
        Ok(self.origin(a.ino)?.map_or(a.ino, |(o, _)| o))
    }

    /// Looks `name` up in merged directory `dir` and records what it found.
    fn lookup(&mut self, dir: Ino, name: &[u8]) -> FsResult<(Ino, Node)> {
        let p = self.node(dir)?;
        if !p.dir {
            return Err(Errno::ENOTDIR);
        }
        if name == b"." {
            return Ok((dir, p));
        }
        if name == b".." {
            return Ok((p.parent, self.node(p.parent)?));
        }
        if dir == self.upper_root && name == WORK_NAME {
            return Err(Errno::ENOENT);
        }
        let up = match p.upper {
            Some(pu) => found(self.fs.lookup(pu, name))?,
            None => None,
        };
        let (reported, node) = match up {
            Some(a) if is_whiteout(&a) => return Err(Errno::ENOENT),
            Some(a) => {
                let origin = self.origin(a.ino)?;
                let is_dir = a.is_dir();
                let lower = match origin {
                    Some((o, _)) => Some(o),
                    None if is_dir && !self.opaque(a.ino)? => self.lower_dir(&p, name)?,
                    None => None,
                };
                let node = Node {
                    upper: Some(a.ino),
                    lower,
                    meta: !is_dir && origin.is_some_and(|(_, m)| m),
                    dir: is_dir,
                    parent: dir,
                    name: name.to_vec(),
                };
                (origin.map_or(a.ino, |(o, _)| o), node)
            }
            None => {
                let pl = p.lower.ok_or(Errno::ENOENT)?;
                let a = self.fs.lookup(pl, name)?;
                let idx = if a.nlink > 1 && !a.is_dir() {
                    self.index_entry(a.ino)?
                } else {
                    None
                };
                let meta = match idx {
                    Some(u) => self.origin(u)?.is_some_and(|(_, m)| m),
                    None => false,
                };
                let node = Node {
                    upper: idx,
                    lower: Some(a.ino),
                    meta,
                    dir: a.is_dir(),
                    parent: dir,
                    name: name.to_vec(),
                };
                (a.ino, node)
            }
        };
        self.st.table.put(reported, node.clone());
        Ok((reported, node))
    }

    /// The template directory merged under upper directory `name` of `p` that has no origin.
    fn lower_dir(&self, p: &Node, name: &[u8]) -> FsResult<Option<Ino>> {
        let Some(pl) = p.lower else {
            return Ok(None);
        };
        Ok(found(self.fs.lookup(pl, name))?
            .filter(Attr::is_dir)
            .map(|a| a.ino))
    }

    /// Whether the template side of merged directory `dir` has an entry `name`.
    fn lower_has(&self, dir: Ino, name: &[u8]) -> FsResult<bool> {
        match self.node(dir)?.lower {
            Some(pl) => Ok(found(self.fs.lookup(pl, name))?.is_some()),
            None => Ok(false),
        }
    }

    /// Attributes of merged object `ino`.
    fn attr(&self, ino: Ino) -> FsResult<Attr> {
        let n = self.node(ino)?;
        let mut a = match (n.upper, n.lower) {
            (Some(u), Some(l)) if n.meta => {
                let mut a = self.fs.getattr(u)?;
                a.blocks = self.fs.getattr(l)?.blocks;
                a
            }
            (Some(u), _) => self.fs.getattr(u)?,
            (None, Some(l)) => self.fs.getattr(l)?,
            (None, None) => return Err(Errno::EIO),
        };
        a.ino = ino;
        Ok(a)
    }

    /// The inode holding the data of merged object `ino`.
    fn data_ino(&self, ino: Ino) -> FsResult<Ino> {
        let n = self.node(ino)?;
        match (n.upper, n.lower) {
            (Some(u), _) if !n.meta => Ok(u),
            (_, Some(l)) => Ok(l),
            (Some(u), None) => Ok(u),
            (None, None) => Err(Errno::EIO),
        }
    }

    /// Whether merged directory `anc` is `ino` or one of its ancestors.
    fn is_ancestor(&self, anc: Ino, mut ino: Ino) -> FsResult<bool> {
        loop {
            if ino == anc {
                return Ok(true);
            }
            if ino == self.upper_root {
                return Ok(false);
            }
            ino = self.node(ino)?.parent;
        }
    }

    /// Gives merged object `ino` its upper inode `u`, with the server's references on it.
    fn set_upper(&mut self, ino: Ino, u: Ino, meta: bool) {
        for _ in 0..self.st.table.refs(ino) {
            self.fs.retain(u);
        }
        self.st.table.update(ino, |n| {
            n.upper = Some(u);
            n.meta = meta;
        });
    }
}

impl<F: Filesystem> Filesystem for OverlayFs<F> {
    fn root(&self) -> Ino {
        self.upper_root
    }
    fn lookup(&self, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        let mut cx = self.cx();
        let (ino, _) = cx.lookup(dir, name)?;
        cx.attr(ino)
    }
    fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        self.cx().attr(ino)
    }
    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize> {
        let d = self.cx().data_ino(ino)?;
        self.fs.read(d, off, buf)
    }
    fn read_would_wait(&self, ino: Ino, off: u64, len: u32) -> bool {
        match self.cx().data_ino(ino) {
            Ok(d) => self.fs.read_would_wait(d, off, len),
            Err(_) => false,
        }
    }
    fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()> {
        self.cx().readdir(dir, cookie, f)
    }
    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        let d = self.cx().data_ino(ino)?;
        self.fs.readlink(d)
    }
    fn statfs(&self) -> FsResult<FsStat> {
        self.fs.statfs()
    }
    fn retain(&self, ino: Ino) {
        let mut cx = self.cx();
        cx.st.table.add_refs(ino, 1);
        if let Ok(Some(u)) = cx.node(ino).map(|n| n.upper) {
            self.fs.retain(u);
        }
    }
    fn release(&self, ino: Ino) {
        let mut cx = self.cx();
        if let Ok(Some(u)) = cx.node(ino).map(|n| n.upper) {
            self.fs.release(u);
        }
        cx.st.table.add_refs(ino, -1);
    }
    fn listxattr(&self, ino: Ino) -> FsResult<Vec<u8>> {
        let n = self.cx().node(ino)?;
        let src = n.upper.or(n.lower).ok_or(Errno::EIO)?;
        let all = self.fs.listxattr(src)?;
        let mut out = Vec::new();
        for name in all.split(|&b| b == 0).filter(|s| !s.is_empty()) {
            if !is_private_xattr(name) {
                out.extend_from_slice(name);
                out.push(0);
            }
        }
        Ok(out)
    }
    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        if is_private_xattr(name) {
            return Err(Errno::ENODATA);
        }
        let n = self.cx().node(ino)?;
        let src = n.upper.or(n.lower).ok_or(Errno::EIO)?;
        self.fs.getxattr(src, name)
    }
    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], flags: u32) -> FsResult<()> {
        if is_private_xattr(name) {
            return Err(Errno::EPERM);
        }
        let u = self.cx().copy_up_meta(ino)?;
        self.fs.setxattr(u, name, value, flags)
    }
    fn removexattr(&self, ino: Ino, name: &[u8]) -> FsResult<()> {
        if is_private_xattr(name) {
            return Err(Errno::EPERM);
        }
        let u = self.cx().copy_up_meta(ino)?;
        self.fs.removexattr(u, name)
    }
    fn write(&self, ino: Ino, off: u64, data: &[u8]) -> FsResult<usize> {
        let u = self.cx().copy_up_data(ino)?;
        self.fs.write(u, off, data)
    }
    fn write_would_fit(&self, ino: Ino, off: u64, len: u64) -> bool {
        match self.cx().node(ino) {
            Ok(Node {
                upper: Some(u),
                meta: false,
                ..
            }) => self.fs.write_would_fit(u, off, len),
            _ => false,
        }
    }
    fn owned_bytes(&self, ino: Ino, a: &Attr) -> u64 {
        match self.cx().node(ino) {
            Ok(Node {
                upper: Some(_),
                meta: false,
                ..
            }) => a.size,
            _ => 0,
        }
    }
    fn setattr(&self, ino: Ino, set: &SetAttr) -> FsResult<Attr> {
        self.cx().setattr(ino, set)
    }
    fn create(&self, dir: Ino, name: &[u8], new: &NewInode) -> FsResult<Attr> {
        self.cx().create(dir, name, new)
    }
    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> FsResult<Attr> {
        self.cx().symlink(dir, name, target, uid, gid)
    }
    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        self.cx().link(ino, dir, name)
    }
    fn unlink(&self, dir: Ino, name: &[u8], rmdir: bool) -> FsResult<()> {
        self.cx().unlink(dir, name, rmdir)
    }
    fn rename(&self, olddir: Ino, oldname: &[u8], newdir: Ino, newname: &[u8]) -> FsResult<()> {
        self.cx().rename(olddir, oldname, newdir, newname)
    }
    fn fsync(&self, ino: Ino, datasync: bool) -> FsResult<()> {
        match self.cx().node(ino)?.upper {
            Some(u) => self.fs.fsync(u, datasync),
            None => Ok(()),
        }
    }
    fn sync(&self) -> FsResult<()> {
        self.fs.sync()
    }
    fn grow(&self, device_bytes: u64) -> FsResult<u64> {
        self.fs.grow(device_bytes)
    }
}
