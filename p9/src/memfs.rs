//! An in-memory read/write filesystem, for tests and RAM-backed exports.
//!
//! Inodes live in a map behind one lock. Directory entries are keyed by a per-directory
//! increasing cookie, so readdir offsets stay valid while entries come and go. Inodes whose
//! last link is removed stay alive while the server holds a reference (`retain`), which gives
//! open-unlink semantics. Total data bytes and inode count are bounded (`ENOSPC`), so hostile
//! clients cannot grow memory without limit.

use crate::fs::{
    dt_of_mode, mode, xattr_flags, Attr, DirEntry, DirVisitor, Errno, Filesystem, FsResult, FsStat,
    Ino, NewInode, SetAttr, TimeSet, Timespec,
};
use alloc::collections::BTreeMap;
use alloc::vec::Vec;
use spin::Mutex;

/// Root inode number.
pub const ROOT_INO: Ino = 1;
const FIRST_COOKIE: u64 = 3;
const NAME_MAX: usize = 255;
const XATTR_NAME_MAX: usize = 255;
const XATTR_SIZE_MAX: usize = 65536;

/// Limits of a [`MemFs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemFsLimits {
    /// Maximum total bytes of file data, symlink targets and xattr values.
    pub max_bytes: u64,
    /// Maximum number of inodes.
    pub max_inodes: u64,
}

impl Default for MemFsLimits {
    fn default() -> Self {
        MemFsLimits {
            max_bytes: 256 << 20,
            max_inodes: 1 << 20,
        }
    }
}

#[derive(Debug)]
struct Dir {
    parent: Ino,
    entries: BTreeMap<u64, (Vec<u8>, Ino)>,
    names: BTreeMap<Vec<u8>, u64>,
    next: u64,
}

impl Dir {
    /// An empty directory whose `..` is `parent`.
    fn empty(parent: Ino) -> Self {
        Dir {
            parent,
            entries: BTreeMap::new(),
            names: BTreeMap::new(),
            next: FIRST_COOKIE,
        }
    }
}

#[derive(Debug)]
enum Data {
    File(Vec<u8>),
    Dir(Dir),
    Symlink(Vec<u8>),
    Other,
}

impl Data {
    /// Whether a node with this data may be removed by an unlink (`dir` false) or rmdir
    /// (`dir` true), or replaced by a rename of a file or a directory.
    fn check_removable(&self, dir: bool) -> FsResult<()> {
        match (self, dir) {
            (Data::Dir(d), true) if !d.entries.is_empty() => Err(Errno::ENOTEMPTY),
            (Data::Dir(_), true) => Ok(()),
            (Data::Dir(_), false) => Err(Errno::EISDIR),
            (_, true) => Err(Errno::ENOTDIR),
            _ => Ok(()),
        }
    }
}

#[derive(Debug)]
struct Node {
    attr: Attr,
    refs: u64,
    data: Data,
    xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl Node {
    /// A node just made at `now`, with no references and no xattrs: one link, or two for a
    /// directory (its own `.`).
    fn new(ino: Ino, new: &NewInode, now: Timespec, data: Data) -> Self {
        let is_dir = matches!(data, Data::Dir(_));
        Node {
            attr: Attr {
                ino,
                mode: new.mode,
                uid: new.uid,
                gid: new.gid,
                nlink: if is_dir { 2 } else { 1 },
                rdev: new.rdev,
                blksize: 4096,
                atime: now,
                mtime: now,
                ctime: now,
                btime: now,
                version: 1,
                ..Attr::default()
            },
            refs: 0,
            data,
            xattrs: BTreeMap::new(),
        }
    }

    fn bytes(&self) -> u64 {
        let d = match &self.data {
            Data::File(v) | Data::Symlink(v) => v.len(),
            _ => 0,
        };
        let x: usize = self.xattrs.iter().map(|(k, v)| k.len() + v.len()).sum();
        (d + x) as u64
    }
}

#[derive(Debug)]
struct Inner {
    nodes: BTreeMap<Ino, Node>,
    next_ino: Ino,
    bytes: u64,
    limits: MemFsLimits,
    /// Files whose next read "would wait" ([`MemFs::make_cold`]).
    cold: alloc::collections::BTreeSet<Ino>,
}

/// The in-memory filesystem.
#[derive(Debug)]
pub struct MemFs {
    inner: Mutex<Inner>,
    clock: fn() -> Timespec,
}

fn zero_clock() -> Timespec {
    Timespec::default()
}

fn valid_name(name: &[u8]) -> FsResult<()> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(Errno::EINVAL);
    }
    if name.len() > NAME_MAX {
        return Err(Errno::ENAMETOOLONG);
    }
    Ok(())
}

impl Default for MemFs {
    fn default() -> Self {
        Self::new()
    }
}

impl MemFs {
    /// An empty filesystem with default limits and a clock stuck at 0.
    pub fn new() -> Self {
        Self::with_limits(MemFsLimits::default(), zero_clock)
    }

    /// An empty filesystem with the given limits and clock.
    pub fn with_limits(limits: MemFsLimits, clock: fn() -> Timespec) -> Self {
        let now = clock();
        let root_inode = NewInode {
            mode: mode::S_IFDIR | 0o755,
            uid: 0,
            gid: 0,
            rdev: 0,
        };
        let mut root = Node::new(ROOT_INO, &root_inode, now, Data::Dir(Dir::empty(ROOT_INO)));
        root.refs = 1;
        let mut nodes = BTreeMap::new();
        nodes.insert(ROOT_INO, root);
        MemFs {
            inner: Mutex::new(Inner {
                nodes,
                next_ino: ROOT_INO + 1,
                bytes: 0,
                limits,
                cold: alloc::collections::BTreeSet::new(),
            }),
            clock,
        }
    }
}

impl MemFs {
    /// Makes `ino` behave like a file whose data is on a slow disk: the next
    /// [`Filesystem::read_would_wait`] for it says yes (and "starts fetching"); after that its
    /// reads are ready again. For testing servers that run other requests meanwhile.
    pub fn make_cold(&self, ino: Ino) {
        self.inner.lock().cold.insert(ino);
    }
}

impl Inner {
    fn node(&self, ino: Ino) -> FsResult<&Node> {
        self.nodes.get(&ino).ok_or(Errno::ENOENT)
    }
    fn node_mut(&mut self, ino: Ino) -> FsResult<&mut Node> {
        self.nodes.get_mut(&ino).ok_or(Errno::ENOENT)
    }
    fn dir(&self, ino: Ino) -> FsResult<&Dir> {
        match &self.node(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }
    fn dir_mut(&mut self, ino: Ino) -> FsResult<&mut Dir> {
        match &mut self.node_mut(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(Errno::ENOTDIR),
        }
    }
    fn child(&self, dir: Ino, name: &[u8]) -> FsResult<Ino> {
        let d = self.dir(dir)?;
        let c = d.names.get(name).ok_or(Errno::ENOENT)?;
        d.entries.get(c).map(|e| e.1).ok_or(Errno::EIO)
    }
    fn touch(&mut self, ino: Ino, now: Timespec, data: bool) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.attr.ctime = now;
            if data {
                n.attr.mtime = now;
            }
            n.attr.version = n.attr.version.wrapping_add(1);
        }
    }
    /// The size of regular file `ino`, which is about to reach `end` bytes (by a write or a
    /// truncate): `EISDIR` or `EINVAL` for another kind of node, `EFBIG` past the size limit.
    fn file_size_before(&self, ino: Ino, end: u64) -> FsResult<u64> {
        let cur = match &self.node(ino)?.data {
            Data::File(v) => v.len() as u64,
            Data::Dir(_) => return Err(Errno::EISDIR),
            _ => return Err(Errno::EINVAL),
        };
        if end > self.limits.max_bytes {
            return Err(Errno::EFBIG);
        }
        Ok(cur)
    }

    fn charge(&mut self, delta: i64) -> FsResult<()> {
        if delta > 0 {
            let nb = self.bytes.checked_add(delta as u64).ok_or(Errno::ENOSPC)?;
            if nb > self.limits.max_bytes {
                return Err(Errno::ENOSPC);
            }
            self.bytes = nb;
        } else {
            self.bytes = self.bytes.saturating_sub(delta.unsigned_abs());
        }
        Ok(())
    }
    fn add_entry(&mut self, dir: Ino, name: &[u8], ino: Ino) -> FsResult<()> {
        let d = self.dir_mut(dir)?;
        let c = d.next;
        d.next = d.next.checked_add(1).ok_or(Errno::ENOSPC)?;
        d.entries.insert(c, (name.to_vec(), ino));
        d.names.insert(name.to_vec(), c);
        Ok(())
    }
    fn remove_entry(&mut self, dir: Ino, name: &[u8]) -> FsResult<Ino> {
        let d = self.dir_mut(dir)?;
        let c = d.names.remove(name).ok_or(Errno::ENOENT)?;
        d.entries.remove(&c).map(|e| e.1).ok_or(Errno::EIO)
    }
    fn maybe_free(&mut self, ino: Ino) {
        let free = matches!(self.nodes.get(&ino), Some(n) if n.attr.nlink == 0 && n.refs == 0);
        if free {
            if let Some(n) = self.nodes.remove(&ino) {
                let b = n.bytes();
                self.bytes = self.bytes.saturating_sub(b);
            }
        }
    }
    /// Drops one link of `ino` (which was just removed from `parent`).
    fn drop_link(&mut self, ino: Ino, parent: Ino, now: Timespec) {
        let is_dir = matches!(self.nodes.get(&ino), Some(n) if n.attr.is_dir());
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.attr.nlink = if is_dir {
                0
            } else {
                n.attr.nlink.saturating_sub(1)
            };
            n.attr.ctime = now;
            n.attr.version = n.attr.version.wrapping_add(1);
        }
        if is_dir {
            if let Some(p) = self.nodes.get_mut(&parent) {
                p.attr.nlink = p.attr.nlink.saturating_sub(1);
            }
        }
        self.maybe_free(ino);
    }
    fn is_ancestor(&self, anc: Ino, mut ino: Ino) -> bool {
        for _ in 0..100_000 {
            if ino == anc {
                return true;
            }
            match self.dir(ino) {
                Ok(d) if d.parent != ino => ino = d.parent,
                _ => return false,
            }
        }
        true
    }
}

impl Filesystem for MemFs {
    fn root(&self) -> Ino {
        ROOT_INO
    }

    fn lookup(&self, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        let g = self.inner.lock();
        let ino = match name {
            b"." => {
                g.dir(dir)?;
                dir
            }
            b".." => g.dir(dir)?.parent,
            _ => g.child(dir, name)?,
        };
        Ok(g.node(ino)?.attr)
    }

    fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        Ok(self.inner.lock().node(ino)?.attr)
    }

    fn read_would_wait(&self, ino: Ino, off: u64, len: u32) -> bool {
        let _ = (off, len);
        self.inner.lock().cold.remove(&ino)
    }

    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize> {
        let g = self.inner.lock();
        match &g.node(ino)?.data {
            Data::File(v) => {
                let Ok(off) = usize::try_from(off) else {
                    return Ok(0);
                };
                let src = v.get(off..).unwrap_or(&[]);
                let n = src.len().min(buf.len());
                buf[..n].copy_from_slice(&src[..n]);
                Ok(n)
            }
            Data::Dir(_) => Err(Errno::EISDIR),
            _ => Err(Errno::EINVAL),
        }
    }

    fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()> {
        let g = self.inner.lock();
        let d = g.dir(dir)?;
        if cookie < 1
            && !f(DirEntry {
                ino: dir,
                kind: crate::fs::dt::DIR,
                name: b".",
                next_cookie: 1,
            })
        {
            return Ok(());
        }
        if cookie < 2
            && !f(DirEntry {
                ino: d.parent,
                kind: crate::fs::dt::DIR,
                name: b"..",
                next_cookie: 2,
            })
        {
            return Ok(());
        }
        let from = cookie.max(2).saturating_add(1);
        for (c, (name, ino)) in d.entries.range(from..) {
            let kind = g
                .nodes
                .get(ino)
                .map(|n| dt_of_mode(n.attr.mode))
                .unwrap_or(0);
            if !f(DirEntry {
                ino: *ino,
                kind,
                name,
                next_cookie: *c,
            }) {
                break;
            }
        }
        Ok(())
    }

    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        match &self.inner.lock().node(ino)?.data {
            Data::Symlink(t) => Ok(t.clone()),
            _ => Err(Errno::EINVAL),
        }
    }

    fn statfs(&self) -> FsResult<FsStat> {
        let g = self.inner.lock();
        let bsize = 4096u64;
        let blocks = g.limits.max_bytes / bsize;
        let used = g.bytes.div_ceil(bsize);
        let files = g.limits.max_inodes;
        let nfiles = g.nodes.len() as u64;
        Ok(FsStat {
            ty: 0x0102_1994, // TMPFS_MAGIC
            bsize: bsize as u32,
            blocks,
            bfree: blocks.saturating_sub(used),
            bavail: blocks.saturating_sub(used),
            files,
            ffree: files.saturating_sub(nfiles),
            fsid: 0,
            namelen: NAME_MAX as u32,
        })
    }

    fn retain(&self, ino: Ino) {
        if let Some(n) = self.inner.lock().nodes.get_mut(&ino) {
            n.refs = n.refs.saturating_add(1);
        }
    }

    fn release(&self, ino: Ino) {
        let mut g = self.inner.lock();
        if let Some(n) = g.nodes.get_mut(&ino) {
            n.refs = n.refs.saturating_sub(1);
        }
        g.maybe_free(ino);
    }

    fn listxattr(&self, ino: Ino) -> FsResult<Vec<u8>> {
        let g = self.inner.lock();
        let mut out = Vec::new();
        for k in g.node(ino)?.xattrs.keys() {
            out.extend_from_slice(k);
            out.push(0);
        }
        Ok(out)
    }

    fn getxattr(&self, ino: Ino, name: &[u8]) -> FsResult<Vec<u8>> {
        self.inner
            .lock()
            .node(ino)?
            .xattrs
            .get(name)
            .cloned()
            .ok_or(Errno::ENODATA)
    }

    fn setxattr(&self, ino: Ino, name: &[u8], value: &[u8], flags: u32) -> FsResult<()> {
        if name.is_empty() || name.len() > XATTR_NAME_MAX {
            return Err(Errno::ERANGE);
        }
        if value.len() > XATTR_SIZE_MAX {
            return Err(Errno::E2BIG);
        }
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let n = g.node(ino)?;
        let old = n.xattrs.get(name).map(|v| v.len() + name.len());
        if flags & xattr_flags::CREATE != 0 && old.is_some() {
            return Err(Errno::EEXIST);
        }
        if flags & xattr_flags::REPLACE != 0 && old.is_none() {
            return Err(Errno::ENODATA);
        }
        let delta = (name.len() + value.len()) as i64 - old.unwrap_or(0) as i64;
        g.charge(delta)?;
        g.node_mut(ino)?
            .xattrs
            .insert(name.to_vec(), value.to_vec());
        g.touch(ino, now, false);
        Ok(())
    }

    fn removexattr(&self, ino: Ino, name: &[u8]) -> FsResult<()> {
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let v = g.node_mut(ino)?.xattrs.remove(name).ok_or(Errno::ENODATA)?;
        g.charge(-((name.len() + v.len()) as i64))?;
        g.touch(ino, now, false);
        Ok(())
    }

    fn write_would_fit(&self, ino: Ino, off: u64, len: u64) -> bool {
        let g = self.inner.lock();
        let Ok(n) = g.node(ino) else {
            return false;
        };
        let Data::File(v) = &n.data else {
            return false;
        };
        let Some(end) = off.checked_add(len) else {
            return false;
        };
        let grow = end.saturating_sub(v.len() as u64);
        end <= g.limits.max_bytes
            && g.bytes
                .checked_add(grow)
                .is_some_and(|b| b <= g.limits.max_bytes)
    }

    fn write(&self, ino: Ino, off: u64, data: &[u8]) -> FsResult<usize> {
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let end = off.checked_add(data.len() as u64).ok_or(Errno::EFBIG)?;
        let cur = g.file_size_before(ino, end)?;
        if end > cur {
            g.charge((end - cur) as i64)?;
        }
        let n = g.node_mut(ino)?;
        if let Data::File(v) = &mut n.data {
            let (o, e) = (off as usize, end as usize);
            if v.len() < e {
                v.resize(e, 0);
            }
            v[o..e].copy_from_slice(data);
            n.attr.size = v.len() as u64;
            n.attr.blocks = n.attr.size.div_ceil(512);
        }
        g.touch(ino, now, true);
        Ok(data.len())
    }

    fn setattr(&self, ino: Ino, set: &SetAttr) -> FsResult<Attr> {
        let now = (self.clock)();
        let mut g = self.inner.lock();
        if let Some(size) = set.size {
            let cur = g.file_size_before(ino, size)?;
            g.charge(size as i64 - cur as i64)?;
            let n = g.node_mut(ino)?;
            if let Data::File(v) = &mut n.data {
                v.resize(size as usize, 0);
                n.attr.size = size;
                n.attr.blocks = size.div_ceil(512);
            }
            g.touch(ino, now, true);
        }
        let n = g.node_mut(ino)?;
        if let Some(m) = set.mode {
            n.attr.mode = (n.attr.mode & mode::S_IFMT) | (m & 0o7777);
        }
        if let Some(u) = set.uid {
            n.attr.uid = u;
        }
        if let Some(gid) = set.gid {
            n.attr.gid = gid;
        }
        let t = |ts: TimeSet| match ts {
            TimeSet::Now => now,
            TimeSet::At(t) => t,
        };
        if let Some(a) = set.atime {
            n.attr.atime = t(a);
        }
        if let Some(m) = set.mtime {
            n.attr.mtime = t(m);
        }
        n.attr.ctime = now;
        n.attr.version = n.attr.version.wrapping_add(1);
        Ok(n.attr)
    }

    fn create(&self, dir: Ino, name: &[u8], new: &NewInode) -> FsResult<Attr> {
        valid_name(name)?;
        let now = (self.clock)();
        let mut g = self.inner.lock();
        g.dir(dir)?;
        if g.dir(dir)?.names.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        if g.nodes.len() as u64 >= g.limits.max_inodes {
            return Err(Errno::ENOSPC);
        }
        let ino = g.next_ino;
        g.next_ino = ino.checked_add(1).ok_or(Errno::ENOSPC)?;
        let is_dir = new.mode & mode::S_IFMT == mode::S_IFDIR;
        let data = match new.mode & mode::S_IFMT {
            mode::S_IFDIR => Data::Dir(Dir::empty(dir)),
            mode::S_IFREG => Data::File(Vec::new()),
            mode::S_IFCHR | mode::S_IFBLK | mode::S_IFIFO | mode::S_IFSOCK => Data::Other,
            _ => return Err(Errno::EINVAL),
        };
        let node = Node::new(ino, new, now, data);
        let attr = node.attr;
        g.nodes.insert(ino, node);
        g.add_entry(dir, name, ino)?;
        if is_dir {
            if let Ok(p) = g.node_mut(dir) {
                p.attr.nlink = p.attr.nlink.saturating_add(1);
            }
        }
        g.touch(dir, now, true);
        Ok(attr)
    }

    fn symlink(&self, dir: Ino, name: &[u8], target: &[u8], uid: u32, gid: u32) -> FsResult<Attr> {
        if target.is_empty() || target.len() > 4095 {
            return Err(Errno::ENAMETOOLONG);
        }
        {
            let mut g = self.inner.lock();
            g.charge(target.len() as i64)?;
        }
        let new = NewInode {
            mode: mode::S_IFREG | 0o777,
            uid,
            gid,
            rdev: 0,
        };
        let a = match self.create(dir, name, &new) {
            Ok(a) => a,
            Err(e) => {
                let mut g = self.inner.lock();
                let _ = g.charge(-(target.len() as i64));
                return Err(e);
            }
        };
        let mut g = self.inner.lock();
        let n = g.node_mut(a.ino)?;
        n.data = Data::Symlink(target.to_vec());
        n.attr.mode = mode::S_IFLNK | 0o777;
        n.attr.size = target.len() as u64;
        Ok(n.attr)
    }

    fn link(&self, ino: Ino, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        valid_name(name)?;
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let n = g.node(ino)?;
        if n.attr.is_dir() {
            return Err(Errno::EPERM);
        }
        if n.attr.nlink == 0 {
            return Err(Errno::ENOENT);
        }
        if g.dir(dir)?.names.contains_key(name) {
            return Err(Errno::EEXIST);
        }
        g.add_entry(dir, name, ino)?;
        let n = g.node_mut(ino)?;
        n.attr.nlink = n.attr.nlink.saturating_add(1);
        g.touch(ino, now, false);
        g.touch(dir, now, true);
        Ok(g.node(ino)?.attr)
    }

    fn unlink(&self, dir: Ino, name: &[u8], rmdir: bool) -> FsResult<()> {
        if name == b"." || name == b".." {
            return Err(Errno::EINVAL);
        }
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let ino = g.child(dir, name)?;
        let n = g.node(ino)?;
        n.data.check_removable(rmdir)?;
        g.remove_entry(dir, name)?;
        g.touch(dir, now, true);
        g.drop_link(ino, dir, now);
        Ok(())
    }

    fn rename(&self, olddir: Ino, oldname: &[u8], newdir: Ino, newname: &[u8]) -> FsResult<()> {
        valid_name(newname)?;
        if oldname == b"." || oldname == b".." {
            return Err(Errno::EINVAL);
        }
        let now = (self.clock)();
        let mut g = self.inner.lock();
        let ino = g.child(olddir, oldname)?;
        g.dir(newdir)?;
        let src_dir = g.node(ino)?.attr.is_dir();
        if src_dir && g.is_ancestor(ino, newdir) {
            return Err(Errno::EINVAL);
        }
        if let Ok(target) = g.child(newdir, newname) {
            if target == ino {
                return Ok(());
            }
            let t = g.node(target)?;
            t.data.check_removable(src_dir)?;
            g.remove_entry(newdir, newname)?;
            g.drop_link(target, newdir, now);
        }
        g.remove_entry(olddir, oldname)?;
        g.add_entry(newdir, newname, ino)?;
        if src_dir && olddir != newdir {
            g.dir_mut(ino)?.parent = newdir;
            if let Ok(p) = g.node_mut(olddir) {
                p.attr.nlink = p.attr.nlink.saturating_sub(1);
            }
            if let Ok(p) = g.node_mut(newdir) {
                p.attr.nlink = p.attr.nlink.saturating_add(1);
            }
        }
        g.touch(olddir, now, true);
        g.touch(newdir, now, true);
        g.touch(ino, now, false);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A new inode of `mode`, owned by root.
    fn root_owned(mode: u32) -> NewInode {
        NewInode {
            mode,
            uid: 0,
            gid: 0,
            rdev: 0,
        }
    }

    fn file(fs: &MemFs, dir: Ino, name: &[u8]) -> Ino {
        fs.create(dir, name, &root_owned(mode::S_IFREG | 0o644))
            .unwrap()
            .ino
    }

    fn subdir(fs: &MemFs, dir: Ino, name: &[u8]) -> Ino {
        fs.create(dir, name, &root_owned(mode::S_IFDIR | 0o755))
            .unwrap()
            .ino
    }

    #[test]
    fn write_read_unlink_open() {
        let fs = MemFs::new();
        let f = file(&fs, ROOT_INO, b"a");
        assert_eq!(fs.write(f, 3, b"xyz").unwrap(), 3);
        let mut b = [9u8; 10];
        assert_eq!(fs.read(f, 0, &mut b).unwrap(), 6);
        assert_eq!(&b[..6], b"\0\0\0xyz");
        fs.retain(f);
        fs.unlink(ROOT_INO, b"a", false).unwrap();
        assert_eq!(fs.lookup(ROOT_INO, b"a"), Err(Errno::ENOENT));
        assert_eq!(fs.read(f, 3, &mut b).unwrap(), 3);
        fs.release(f);
        assert_eq!(fs.getattr(f), Err(Errno::ENOENT));
    }

    #[test]
    fn readdir_cookies_stable() {
        let fs = MemFs::new();
        for n in [&b"a"[..], b"b", b"c"] {
            file(&fs, ROOT_INO, n);
        }
        let mut seen = Vec::new();
        fs.readdir(ROOT_INO, 0, &mut |e| {
            seen.push((e.name.to_vec(), e.next_cookie));
            true
        })
        .unwrap();
        assert_eq!(seen.len(), 5);
        let after_a = seen[2].1;
        fs.unlink(ROOT_INO, b"a", false).unwrap();
        file(&fs, ROOT_INO, b"d");
        let mut rest = Vec::new();
        fs.readdir(ROOT_INO, after_a, &mut |e| {
            rest.push(e.name.to_vec());
            true
        })
        .unwrap();
        assert_eq!(rest, [b"b".to_vec(), b"c".to_vec(), b"d".to_vec()]);
    }

    #[test]
    fn limits() {
        let fs = MemFs::with_limits(
            MemFsLimits {
                max_bytes: 100,
                max_inodes: 3,
            },
            zero_clock,
        );
        let f = file(&fs, ROOT_INO, b"a");
        assert_eq!(fs.write(f, 1 << 40, b"x"), Err(Errno::EFBIG));
        assert_eq!(fs.write(f, 0, &[0; 101]), Err(Errno::EFBIG));
        fs.write(f, 0, &[0; 60]).unwrap();
        let g = file(&fs, ROOT_INO, b"b");
        assert_eq!(fs.write(g, 0, &[0; 60]), Err(Errno::ENOSPC));
        assert_eq!(
            fs.create(ROOT_INO, b"c", &root_owned(mode::S_IFREG)),
            Err(Errno::ENOSPC)
        );
    }

    #[test]
    fn rename_into_self_rejected() {
        let fs = MemFs::new();
        let d = subdir(&fs, ROOT_INO, b"d");
        let e = subdir(&fs, d, b"e");
        assert_eq!(fs.rename(ROOT_INO, b"d", e, b"x"), Err(Errno::EINVAL));
        fs.rename(d, b"e", ROOT_INO, b"e2").unwrap();
        assert_eq!(fs.lookup(e, b"..").unwrap().ino, ROOT_INO);
        assert_eq!(fs.getattr(ROOT_INO).unwrap().nlink, 4);
    }
}
