//! Model-based random testing of the write path: random sequences of operations are applied
//! to the engine and to a small in-memory model of the tree; after each sequence the image is
//! closed, must pass `e2fsck -fn`, and is compared whole with the model (names, types, sizes,
//! contents, permission bits, owners, link counts, symlink targets, xattrs) through the
//! engine's read path and through ext4-view. Also used by `ext4_loopmount.rs`, which compares
//! the model with a Linux loop mount of the same images.
//!
//! `PVFS_MODEL_SEQS` (sequences per block size) and `PVFS_MODEL_OPS` (operations per sequence)
//! scale it up; `cargo xtask soak` sets them.
#![allow(
    dead_code,
    reason = "shared with ext4_loopmount.rs, which uses a subset"
)]

use pvfs_fs::block::{FileDisk, MemDisk};
use pvfs_fs::ext4::{
    Error, Ext4, Fallocate, FileType, Ino, Options, RenameFlags, SetAttr, XattrSet, ROOT_INO,
};
use pvfs_tests::ext4img::Rng;
use pvfs_tests::wimg::{dir_names, symlink_target};
use std::collections::BTreeMap;
use std::path::Path;

/// Kind of a model inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Directory.
    Dir,
    /// Regular file.
    File,
    /// Symbolic link.
    Symlink,
    /// Named pipe.
    Fifo,
}

/// One inode of the model.
#[derive(Debug, Clone)]
pub struct Node {
    /// Type.
    pub kind: Kind,
    /// Permission bits.
    pub perm: u16,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// File contents (regular files).
    pub data: Vec<u8>,
    /// Target (symlinks).
    pub target: Vec<u8>,
    /// Extended attributes (full names).
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// `fallocate` may have left unwritten extents, which ext4-view 1.x does not know (it
    /// reads their length field raw), so its content check is skipped for this file.
    pub unwritten: bool,
}

/// The expected tree: paths (`""` is the root, else `/a/b`) → inode, and the inodes.
#[derive(Debug, Clone, Default)]
pub struct Model {
    /// Path → inode number.
    pub paths: BTreeMap<String, Ino>,
    /// Inode number → inode.
    pub nodes: BTreeMap<Ino, Node>,
}

/// How often each operation succeeded or was refused as expected (a sequence set must
/// exercise all of them).
#[derive(Debug, Default, Clone)]
pub struct Counts {
    /// Per operation name: (done, refused).
    pub ops: BTreeMap<&'static str, (u64, u64)>,
}

impl Counts {
    fn done(&mut self, op: &'static str) {
        self.ops.entry(op).or_default().0 += 1;
    }
    fn refused(&mut self, op: &'static str) {
        self.ops.entry(op).or_default().1 += 1;
    }
    /// Add another set of counts.
    pub fn add(&mut self, o: &Counts) {
        for (k, (d, r)) in &o.ops {
            let e = self.ops.entry(k).or_default();
            e.0 += d;
            e.1 += r;
        }
    }
}

fn parent(p: &str) -> (&str, &str) {
    p.rsplit_once('/').unwrap()
}

impl Model {
    fn new() -> Self {
        let mut m = Model::default();
        m.paths.insert(String::new(), ROOT_INO);
        m.nodes.insert(
            ROOT_INO,
            Node {
                kind: Kind::Dir,
                perm: 0o755,
                uid: 0,
                gid: 0,
                data: vec![],
                target: vec![],
                xattrs: BTreeMap::new(),
                unwritten: false,
            },
        );
        m
    }

    fn kind_at(&self, p: &str) -> Option<Kind> {
        self.paths.get(p).map(|i| self.nodes[i].kind)
    }

    fn children(&self, p: &str) -> Vec<&String> {
        self.paths
            .keys()
            .filter(|k| !k.is_empty() && parent(k).0 == p)
            .collect()
    }

    /// Link count the model implies for inode `ino` at path `p`.
    pub fn nlink(&self, p: &str, ino: Ino) -> u32 {
        match self.nodes[&ino].kind {
            Kind::Dir => {
                let subdirs = self
                    .children(p)
                    .into_iter()
                    .filter(|c| self.kind_at(c) == Some(Kind::Dir))
                    .count() as u32;
                // The root also holds lost+found.
                2 + subdirs + u32::from(p.is_empty())
            }
            _ => self.paths.values().filter(|&&i| i == ino).count() as u32,
        }
    }

    fn remove_path(&mut self, p: &str) {
        let ino = self.paths.remove(p).unwrap();
        if !self.paths.values().any(|&i| i == ino) {
            self.nodes.remove(&ino);
        }
    }

    /// The result `r` of `op` making the inode `node` at `path`: refused with `Exists` when
    /// the path is taken, else the new inode is recorded.
    #[track_caller]
    fn record_new(
        &mut self,
        c: &mut Counts,
        op: &'static str,
        exists: bool,
        path: String,
        r: Result<Ino, Error>,
        node: Node,
    ) {
        if exists {
            assert_eq!(r.unwrap_err(), Error::Exists, "{op} {path}");
            c.refused(op);
        } else {
            let ino = r.unwrap();
            self.paths.insert(path, ino);
            self.nodes.insert(ino, node);
            c.done(op);
        }
    }

    fn pick<'a>(rng: &mut Rng, v: &'a [String]) -> Option<&'a String> {
        if v.is_empty() {
            None
        } else {
            Some(&v[(rng.next_u64() % v.len() as u64) as usize])
        }
    }
}

/// Run one random sequence of `ops` operations on the (closed, clean) image `img`, with block
/// cache `cache_bytes`; returns the model of what the image must now hold.
pub fn run_sequence(img: &Path, seed: u64, ops: usize, cache_bytes: usize) -> (Model, Counts) {
    let mut rng = Rng::new(seed);
    let mut m = Model::new();
    let mut c = Counts::default();
    let opts = Options { cache_bytes };
    let mut fs = Ext4::open_rw(FileDisk::open_rw(img).unwrap(), &opts).unwrap();
    let bs = fs.superblock().block_size() as usize;
    for _ in 0..ops {
        let dirs: Vec<String> = m
            .paths
            .keys()
            .filter(|p| m.kind_at(p) == Some(Kind::Dir))
            .cloned()
            .collect();
        let nondirs: Vec<String> = m
            .paths
            .keys()
            .filter(|p| !matches!(m.kind_at(p), Some(Kind::Dir)))
            .cloned()
            .collect();
        let files: Vec<String> = m
            .paths
            .keys()
            .filter(|p| m.kind_at(p) == Some(Kind::File))
            .cloned()
            .collect();
        let all: Vec<String> = m.paths.keys().filter(|p| !p.is_empty()).cloned().collect();
        let dpath = Model::pick(&mut rng, &dirs).unwrap().clone();
        let dino = m.paths[&dpath];
        let name = format!("n{}", rng.next_u64() % 10);
        let path = format!("{dpath}/{name}");
        let exists = m.paths.contains_key(&path);
        let perm = [0o755u16, 0o644, 0o600, 0o4755, 0o1777, 0o2750][(rng.next_u64() % 6) as usize];
        let (uid, gid) = [(0u32, 0u32), (1000, 1000), (70_000, 5), (65534, 65534)]
            [(rng.next_u64() % 4) as usize];
        let new_node = |kind, data: Vec<u8>, target: Vec<u8>| Node {
            kind,
            perm,
            uid,
            gid,
            data,
            target,
            xattrs: BTreeMap::new(),
            unwritten: false,
        };
        match rng.next_u64() % 22 {
            0 | 1 => {
                let r = fs.mkdir(dino, name.as_bytes(), perm, uid, gid);
                m.record_new(
                    &mut c,
                    "mkdir",
                    exists,
                    path,
                    r,
                    new_node(Kind::Dir, vec![], vec![]),
                );
            }
            2 | 3 => {
                let r = fs.create(dino, name.as_bytes(), perm, uid, gid);
                m.record_new(
                    &mut c,
                    "create",
                    exists,
                    path,
                    r,
                    new_node(Kind::File, vec![], vec![]),
                );
            }
            4..=6 => {
                let Some(p) = Model::pick(&mut rng, &files) else {
                    continue;
                };
                let ino = m.paths[p];
                let data = &mut m.nodes.get_mut(&ino).unwrap().data;
                let off = (rng.next_u64() % (data.len() as u64 + 9000)) as usize;
                let len = if rng.next_u64().is_multiple_of(8) {
                    (rng.next_u64() % 150_000) as usize + 1
                } else {
                    (rng.next_u64() % 6000) as usize + 1
                };
                let bytes = rng.bytes(len);
                let n = fs.write(ino, off as u64, &bytes).unwrap();
                assert!(n > 0 && n <= len);
                if data.len() < off + n {
                    data.resize(off + n, 0);
                }
                data[off..off + n].copy_from_slice(&bytes[..n]);
                c.done("write");
            }
            7 => {
                let Some(p) = Model::pick(&mut rng, &nondirs).cloned() else {
                    continue;
                };
                let (d, leaf) = parent(&p);
                fs.unlink(m.paths[d], leaf.as_bytes()).unwrap();
                m.remove_path(&p);
                c.done("unlink");
            }
            8 if !dpath.is_empty() => {
                let (d, leaf) = parent(&dpath);
                let r = fs.rmdir(m.paths[d], leaf.as_bytes());
                if m.children(&dpath).is_empty() {
                    r.unwrap();
                    m.remove_path(&dpath);
                    c.done("rmdir");
                } else {
                    assert_eq!(r.unwrap_err(), Error::NotEmpty);
                    c.refused("rmdir");
                }
            }
            9 => {
                let tlen = if rng.next_u64().is_multiple_of(3) {
                    60 + (rng.next_u64() % 300) as usize
                } else {
                    1 + (rng.next_u64() % 59) as usize
                };
                // Components of at most 50 bytes (ext4-view, like Linux paths, wants <= 255).
                let target = symlink_target(tlen, 51);
                let r = fs.symlink(dino, name.as_bytes(), &target, uid, gid);
                let n = Node {
                    perm: 0o777,
                    ..new_node(Kind::Symlink, vec![], target)
                };
                m.record_new(&mut c, "symlink", exists, path, r, n);
            }
            10 => {
                let Some(p) = Model::pick(&mut rng, &nondirs).cloned() else {
                    continue;
                };
                let ino = m.paths[&p];
                let r = fs.link(ino, dino, name.as_bytes());
                if exists {
                    assert_eq!(r.unwrap_err(), Error::Exists);
                    c.refused("link");
                } else {
                    r.unwrap();
                    m.paths.insert(path, ino);
                    c.done("link");
                }
            }
            11 | 12 => {
                let Some(src) = Model::pick(&mut rng, &all).cloned() else {
                    continue;
                };
                rename_op(&mut fs, &mut m, &mut c, &src, &path);
            }
            13 => {
                let Some(p) = Model::pick(&mut rng, &all).cloned() else {
                    continue;
                };
                let ino = m.paths[&p];
                let symlink = m.nodes[&ino].kind == Kind::Symlink;
                let set = SetAttr {
                    // A symlink's permission bits are not changed (Linux has no lchmod).
                    mode: (!symlink && rng.next_u64().is_multiple_of(2)).then_some(perm),
                    uid: rng.next_u64().is_multiple_of(2).then_some(uid),
                    gid: rng.next_u64().is_multiple_of(2).then_some(gid),
                    ..SetAttr::default()
                };
                fs.setattr(ino, &set).unwrap();
                let n = m.nodes.get_mut(&ino).unwrap();
                n.perm = set.mode.unwrap_or(n.perm);
                n.uid = set.uid.unwrap_or(n.uid);
                n.gid = set.gid.unwrap_or(n.gid);
                c.done("setattr");
            }
            14..=16 => {
                // xattrs on files and directories.
                let cands: Vec<String> = m
                    .paths
                    .keys()
                    .filter(|p| matches!(m.kind_at(p), Some(Kind::Dir | Kind::File)))
                    .cloned()
                    .collect();
                let p = Model::pick(&mut rng, &cands).unwrap().clone();
                let ino = m.paths[&p];
                let xname = format!("user.x{}", rng.next_u64() % 5).into_bytes();
                let vlen = match rng.next_u64() % 4 {
                    0 => 0,
                    1 | 2 => (rng.next_u64() % 40) as usize,
                    _ => (rng.next_u64() % (bs as u64 / 3)) as usize,
                };
                let value = rng.bytes(vlen);
                let how = [XattrSet::Any, XattrSet::Create, XattrSet::Replace]
                    [(rng.next_u64() % 3) as usize];
                let has = m.nodes[&ino].xattrs.contains_key(&xname);
                let r = fs.set_xattr(ino, &xname, &value, how);
                match (how, has) {
                    (XattrSet::Create, true) => {
                        assert_eq!(r.unwrap_err(), Error::Exists);
                        c.refused("set_xattr");
                    }
                    (XattrSet::Replace, false) => {
                        assert_eq!(r.unwrap_err(), Error::NoXattr);
                        c.refused("set_xattr");
                    }
                    _ => match r {
                        Ok(()) => {
                            m.nodes.get_mut(&ino).unwrap().xattrs.insert(xname, value);
                            c.done("set_xattr");
                        }
                        // The inode's area and the one attribute block are full.
                        Err(Error::NoSpace) => c.refused("set_xattr (full)"),
                        Err(e) => panic!("set_xattr: {e:?}"),
                    },
                }
            }
            17 => {
                let Some(p) = Model::pick(&mut rng, &all).cloned() else {
                    continue;
                };
                let ino = m.paths[&p];
                if m.nodes[&ino].kind == Kind::Symlink {
                    continue;
                }
                let xname = format!("user.x{}", rng.next_u64() % 5).into_bytes();
                let r = fs.remove_xattr(ino, &xname);
                if m.nodes
                    .get_mut(&ino)
                    .unwrap()
                    .xattrs
                    .remove(&xname)
                    .is_some()
                {
                    r.unwrap();
                    c.done("remove_xattr");
                } else {
                    assert_eq!(r.unwrap_err(), Error::NoXattr);
                    c.refused("remove_xattr");
                }
            }
            19 => {
                let Some(p) = Model::pick(&mut rng, &files) else {
                    continue;
                };
                let ino = m.paths[p];
                let data = &mut m.nodes.get_mut(&ino).unwrap().data;
                let size = if rng.next_u64().is_multiple_of(4) {
                    data.len() as u64 + rng.next_u64() % 200_000
                } else {
                    rng.next_u64() % (data.len() as u64 + 1)
                };
                fs.truncate(ino, size).unwrap();
                data.resize(size as usize, 0);
                c.done("truncate");
            }
            20 => {
                let Some(p) = Model::pick(&mut rng, &files) else {
                    continue;
                };
                let ino = m.paths[p];
                let node = m.nodes.get_mut(&ino).unwrap();
                let data = &mut node.data;
                let off = rng.next_u64() % (data.len() as u64 + 20_000);
                let len = 1 + rng.next_u64() % 100_000;
                let (mode, name) = [
                    (Fallocate::Allocate, "fallocate"),
                    (Fallocate::KeepSize, "fallocate keep-size"),
                    (Fallocate::PunchHole, "punch hole"),
                ][(rng.next_u64() % 3) as usize];
                fs.fallocate(ino, off, len, mode).unwrap();
                node.unwritten |= mode != Fallocate::PunchHole;
                let (off, end) = (off as usize, (off + len) as usize);
                match mode {
                    Fallocate::Allocate => {
                        if data.len() < end {
                            data.resize(end, 0);
                        }
                    }
                    Fallocate::KeepSize => {}
                    Fallocate::PunchHole => {
                        let end = end.min(data.len());
                        if off < end {
                            data[off..end].fill(0);
                        }
                    }
                }
                c.done(name);
            }
            18 => {
                let r = fs.mknod(dino, name.as_bytes(), 0o010_000 | perm, 0, uid, gid);
                m.record_new(
                    &mut c,
                    "mknod",
                    exists,
                    path,
                    r,
                    new_node(Kind::Fifo, vec![], vec![]),
                );
            }
            _ => {}
        }
    }
    fs.close().unwrap();
    (m, c)
}

/// `rename(src, dst)` on the engine, checked against POSIX rules applied to the model.
fn rename_op(fs: &mut Ext4<FileDisk>, m: &mut Model, c: &mut Counts, src: &str, dst: &str) {
    let (sd, sl) = parent(src);
    let (dd, dl) = parent(dst);
    let (sdi, ddi) = (m.paths[sd], m.paths[dd]);
    let r = fs.rename(
        sdi,
        sl.as_bytes(),
        ddi,
        dl.as_bytes(),
        RenameFlags::default(),
    );
    let sino = m.paths[src];
    let skind = m.nodes[&sino].kind;
    let expect: Result<(), Error> = if src == dst || m.paths.get(dst) == Some(&sino) {
        Ok(())
    } else if skind == Kind::Dir && dst.starts_with(&format!("{src}/")) {
        Err(Error::Invalid { what: "" })
    } else {
        match m.paths.get(dst).map(|i| m.nodes[i].kind) {
            None => Ok(()),
            Some(Kind::Dir) if skind != Kind::Dir => Err(Error::IsDir { ino: 0 }),
            Some(Kind::Dir) if !m.children(dst).is_empty() => Err(Error::NotEmpty),
            Some(k) if skind == Kind::Dir && k != Kind::Dir => Err(Error::NotDir { ino: 0 }),
            Some(_) => Ok(()),
        }
    };
    match (expect, r) {
        (Ok(()), Ok(())) => {
            if src != dst && m.paths.get(dst) != Some(&sino) {
                if m.paths.contains_key(dst) {
                    m.remove_path(dst);
                }
                // Move src and everything under it.
                let prefix = format!("{src}/");
                let moved: Vec<(String, Ino)> = m
                    .paths
                    .iter()
                    .filter(|(k, _)| *k == src || k.starts_with(&prefix))
                    .map(|(k, v)| (k.clone(), *v))
                    .collect();
                for (k, _) in &moved {
                    m.paths.remove(k);
                }
                for (k, v) in moved {
                    m.paths.insert(format!("{dst}{}", &k[src.len()..]), v);
                }
            } else if src != dst {
                // Two names of one inode: POSIX says nothing happens.
            }
            c.done("rename");
        }
        (Err(e), Err(got)) => {
            assert_eq!(
                std::mem::discriminant(&e),
                std::mem::discriminant(&got),
                "rename {src} -> {dst}: expected {e:?}, got {got:?}"
            );
            c.refused("rename");
        }
        (e, r) => panic!("rename {src} -> {dst}: expected {e:?}, got {r:?}"),
    }
}

/// `img` (closed) must pass `e2fsck -fn` and hold exactly what `m` says, through the engine's
/// read path and through ext4-view.
pub fn check(img: &Path, m: &Model) {
    pvfs_tests::wimg::e2fsck_clean(img);
    let bytes = std::fs::read(img).unwrap();
    let view = ext4_view::Ext4::load(Box::new(bytes.clone())).unwrap();
    let mut eng = Ext4::open(MemDisk::new(bytes)).unwrap();
    for (p, &ino) in &m.paths {
        let abs = if p.is_empty() { "/" } else { p.as_str() };
        let n = &m.nodes[&ino];
        assert_eq!(
            eng.lookup_path(abs.as_bytes()).unwrap(),
            ino,
            "inode of {abs}"
        );
        let a = eng.getattr(ino).unwrap();
        let kind = match n.kind {
            Kind::Dir => FileType::Directory,
            Kind::File => FileType::Regular,
            Kind::Symlink => FileType::Symlink,
            Kind::Fifo => FileType::Fifo,
        };
        assert_eq!(a.kind, kind, "type of {abs}");
        assert_eq!(a.mode & 0o7777, n.perm, "mode of {abs}");
        assert_eq!((a.uid, a.gid), (n.uid, n.gid), "owner of {abs}");
        assert_eq!(a.nlink, m.nlink(p, ino), "link count of {abs}");
        let vm = view.symlink_metadata(abs).unwrap();
        assert_eq!(vm.mode(), n.perm, "ext4-view mode of {abs}");
        assert_eq!(
            (vm.uid(), vm.gid()),
            (n.uid, n.gid),
            "ext4-view owner of {abs}"
        );
        match n.kind {
            Kind::Dir => {
                let mut names: Vec<Vec<u8>> = dir_names(&mut eng, ino)
                    .into_iter()
                    .filter(|n| n != b"." && n != b".." && !(p.is_empty() && n == b"lost+found"))
                    .collect();
                names.sort();
                let mut want: Vec<Vec<u8>> = m
                    .children(p)
                    .into_iter()
                    .map(|c| parent(c).1.as_bytes().to_vec())
                    .collect();
                want.sort();
                assert_eq!(names, want, "entries of {abs}");
                assert!(vm.is_dir());
            }
            Kind::File => {
                assert_eq!(a.size, n.data.len() as u64, "size of {abs}");
                let mut b = vec![0u8; n.data.len() + 1];
                assert_eq!(eng.read(ino, 0, &mut b).unwrap(), n.data.len());
                assert!(b[..n.data.len()] == n.data[..], "engine content of {abs}");
                if !n.unwritten {
                    assert!(
                        view.read(abs).unwrap() == n.data,
                        "ext4-view content of {abs}"
                    );
                }
            }
            Kind::Symlink => {
                assert_eq!(eng.readlink(ino).unwrap(), n.target, "target of {abs}");
                assert_eq!(
                    view.read_link(abs).unwrap().as_ref(),
                    &n.target[..],
                    "ext4-view target of {abs}"
                );
            }
            Kind::Fifo => {}
        }
        let mut names = eng.listxattr(ino).unwrap();
        names.sort();
        let want: Vec<Vec<u8>> = n.xattrs.keys().cloned().collect();
        assert_eq!(names, want, "xattr names of {abs}");
        for (k, v) in &n.xattrs {
            assert_eq!(&eng.getxattr(ino, k).unwrap(), v, "xattr {k:?} of {abs}");
        }
    }
}

/// How many of the model's regular files have an extent tree block (`ETB` in debugfs).
fn files_with_tree_blocks(img: &Path, m: &Model) -> usize {
    let cmds: String = m
        .paths
        .iter()
        .filter(|(_, i)| m.nodes[i].kind == Kind::File)
        .map(|(p, _)| format!("stat {p}\n"))
        .collect();
    let f = img.with_extension("cmds");
    std::fs::write(&f, cmds).unwrap();
    let out = std::process::Command::new("debugfs")
        .arg("-f")
        .arg(&f)
        .arg(img)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&f);
    String::from_utf8_lossy(&out.stdout)
        .matches("(ETB0)")
        .count()
}

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// `seqs` sequences (or `PVFS_MODEL_SEQS`) of `ops` operations (or `PVFS_MODEL_OPS`) on copies
/// of one fresh `mkfs.ext4` image with `block`-byte blocks; every operation kind must have
/// happened.
pub fn model_sequences(block: u32, seqs: u64, ops: usize, cache_bytes: usize) {
    let seqs = env_or("PVFS_MODEL_SEQS", seqs);
    let ops = env_or("PVFS_MODEL_OPS", ops as u64) as usize;
    let dir = pvfs_tests::ext4img::tmpdir(&format!("write-model-{block}"));
    let base = pvfs_tests::wimg::mkfs(&dir, "base.img", block, 24, &[]);
    let mut total = Counts::default();
    let mut deep_files = 0usize;
    for seq in 0..seqs {
        let img = dir.join(format!("s{seq}.img"));
        std::fs::copy(&base, &img).unwrap();
        let seed = 0x5eed_0000 + seq * 7 + u64::from(block);
        let (m, c) = run_sequence(&img, seed, ops, cache_bytes);
        check(&img, &m);
        total.add(&c);
        deep_files += files_with_tree_blocks(&img, &m);
        std::fs::remove_file(&img).unwrap();
    }
    eprintln!(
        "{seqs} sequences of {ops} operations at {block}: {:?}; {deep_files} files with an extent tree block",
        total.ops
    );
    assert!(deep_files > 0, "no file needed an extent tree block");
    for op in [
        "mkdir",
        "create",
        "write",
        "unlink",
        "rmdir",
        "symlink",
        "link",
        "rename",
        "setattr",
        "set_xattr",
        "remove_xattr",
        "mknod",
        "truncate",
        "fallocate",
        "fallocate keep-size",
        "punch hole",
    ] {
        assert!(
            total.ops.get(op).is_some_and(|(d, _)| *d > 0),
            "{op} never succeeded: {:?}",
            total.ops
        );
    }
    for op in ["mkdir", "rmdir", "rename", "set_xattr", "remove_xattr"] {
        assert!(
            total.ops.get(op).is_some_and(|(_, r)| *r > 0),
            "{op} was never refused: {:?}",
            total.ops
        );
    }
}
