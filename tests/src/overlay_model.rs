//! A model-based check of template shares (`pvfs_9p::overlay`): random operations run on a
//! merged view and on a plain filesystem that started as a copy of the template (the model);
//! after each, both must have answered alike and list the same tree (names, types, modes,
//! owners, sizes, data, link targets, device numbers, xattrs, times), each object's inode
//! number in the view must stay the one it had (across copy-up too), and names the model
//! links together must share one inode number in the view. The template itself is dumped
//! before and after and must not change.

use pvfs_9p::fs::{mode, Attr, Filesystem, FsResult, Ino, NewInode, SetAttr, TimeSet, Timespec};
use std::collections::BTreeMap;

/// One object as the dump sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Type and permission bits.
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Size of files and symlinks (0 for the others).
    pub size: u64,
    /// Device number.
    pub rdev: u64,
    /// File data or link target.
    pub data: Vec<u8>,
    /// Xattrs, sorted.
    pub xattrs: Vec<(Vec<u8>, Vec<u8>)>,
    /// Modification time.
    pub mtime: Timespec,
}

/// A tree: path → (entry, inode number).
pub type Dump = BTreeMap<String, (Entry, Ino)>;

/// A small xorshift generator.
pub struct Rng(u64);

impl Rng {
    /// Seeded (0 becomes 1).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    /// A value below `n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }
}

/// Lists directory `dir` in pieces of three entries (resuming from cookies).
pub fn list(fs: &dyn Filesystem, dir: Ino) -> FsResult<Vec<(Vec<u8>, Ino)>> {
    let mut out = Vec::new();
    let mut cookie = 0;
    loop {
        let mut got = 0;
        fs.readdir(dir, cookie, &mut |e| {
            if e.name != b"." && e.name != b".." {
                out.push((e.name.to_vec(), e.ino));
            }
            cookie = e.next_cookie;
            got += 1;
            got < 3
        })?;
        if got < 3 {
            return Ok(out);
        }
    }
}

fn entry(fs: &dyn Filesystem, a: &Attr) -> FsResult<Entry> {
    let data = if a.is_file() {
        let mut buf = vec![0u8; a.size as usize];
        let mut off = 0;
        while off < buf.len() {
            let n = fs.read(a.ino, off as u64, &mut buf[off..])?;
            assert!(n > 0, "short file {}", a.ino);
            off += n;
        }
        buf
    } else if a.is_symlink() {
        fs.readlink(a.ino)?
    } else {
        Vec::new()
    };
    let mut xattrs = Vec::new();
    for n in fs
        .listxattr(a.ino)?
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
    {
        xattrs.push((n.to_vec(), fs.getxattr(a.ino, n)?));
    }
    xattrs.sort();
    Ok(Entry {
        mode: a.mode,
        uid: a.uid,
        gid: a.gid,
        size: if a.is_dir() { 0 } else { a.size },
        rdev: a.rdev,
        data,
        xattrs,
        mtime: a.mtime,
    })
}

/// The tree under `dir`, checking that readdir and lookup agree on every inode number.
pub fn dump(fs: &dyn Filesystem, dir: Ino) -> Dump {
    let mut out = Dump::new();
    let mut todo = vec![(String::new(), dir)];
    while let Some((path, d)) = todo.pop() {
        for (name, ino) in list(fs, d).unwrap() {
            let p = format!("{path}/{}", String::from_utf8_lossy(&name));
            let a = fs.lookup(d, &name).unwrap();
            assert_eq!(a.ino, ino, "{p}: readdir and lookup disagree");
            assert_eq!(fs.getattr(ino).unwrap().ino, ino, "{p}");
            if a.is_dir() {
                todo.push((p.clone(), ino));
            }
            out.insert(p, (entry(fs, &a).unwrap(), ino));
        }
    }
    out
}

/// Resolves `path` ("/a/b") from `root`.
pub fn resolve(fs: &dyn Filesystem, root: Ino, path: &str) -> FsResult<Ino> {
    let mut cur = root;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        cur = fs.lookup(cur, c.as_bytes())?.ino;
    }
    Ok(cur)
}

fn split(path: &str) -> (&str, &[u8]) {
    let i = path.rfind('/').unwrap_or(0);
    (&path[..i], &path.as_bytes()[i + 1..])
}

fn new(m: u32, rdev: u64) -> NewInode {
    NewInode {
        mode: m,
        uid: 0,
        gid: 0,
        rdev,
    }
}

/// Fills directory `root` of `fs` with the template tree the tests use: nested
/// directories, files large and empty and sparse, a symlink, a fifo and a device, a file
/// with two links, xattrs.
pub fn build_template(fs: &dyn Filesystem, root: Ino) {
    let mk = |dir: Ino, name: &str, m: u32, rdev: u64| {
        fs.create(dir, name.as_bytes(), &new(m, rdev)).unwrap().ino
    };
    let put = |ino: Ino, data: &[u8]| {
        assert_eq!(fs.write(ino, 0, data).unwrap(), data.len());
    };
    let etc = mk(root, "etc", mode::S_IFDIR | 0o755, 0);
    let passwd = mk(etc, "passwd", mode::S_IFREG | 0o644, 0);
    put(
        passwd,
        &(0..70_000u32)
            .map(|i| (i * 7 % 251) as u8)
            .collect::<Vec<_>>(),
    );
    let hosts = mk(etc, "hosts", mode::S_IFREG | 0o600, 0);
    put(hosts, b"127.0.0.1 localhost\n");
    fs.setxattr(hosts, b"user.tag", b"template", 0).unwrap();
    let sub = mk(etc, "sub", mode::S_IFDIR | 0o750, 0);
    fs.setxattr(sub, b"user.dir", b"d", 0).unwrap();
    let deep = mk(sub, "deep", mode::S_IFDIR | 0o755, 0);
    let f = mk(deep, "file", mode::S_IFREG | 0o640, 0);
    put(f, b"deep data");
    let sparse = mk(deep, "sparse", mode::S_IFREG | 0o644, 0);
    fs.write(sparse, 200_000, b"end").unwrap();
    let bin = mk(root, "bin", mode::S_IFDIR | 0o755, 0);
    let sh = mk(bin, "sh", mode::S_IFREG | 0o755, 0);
    put(sh, b"#!binary");
    fs.symlink(bin, b"ls", b"sh", 0, 0).unwrap();
    mk(root, "empty", mode::S_IFREG | 0o644, 0);
    mk(root, "emptydir", mode::S_IFDIR | 0o700, 0);
    let dev = mk(root, "dev", mode::S_IFDIR | 0o755, 0);
    mk(dev, "null", mode::S_IFCHR | 0o666, (1 << 8) | 3);
    mk(dev, "fifo", mode::S_IFIFO | 0o600, 0);
    let a = mk(root, "a", mode::S_IFREG | 0o644, 0);
    put(a, b"linked twice");
    fs.link(a, etc, b"b").unwrap();
}

/// Names the random operations use: the template's and a few more, so that operations
/// meet existing names, whiteouts and each other often.
const NAMES: &[&str] = &[
    "etc", "bin", "a", "b", "c", "sh", "hosts", "sub", "x", "y", "emptydir", "dev",
];

/// The two sides under test: the view and the model, each with its root.
pub struct Pair<'a> {
    /// The merged view.
    pub view: &'a dyn Filesystem,
    /// Root of the view.
    pub view_root: Ino,
    /// The model.
    pub model: &'a dyn Filesystem,
    /// Root of the model's copy of the template.
    pub model_root: Ino,
}

/// Inode numbers of the live objects at the last check: model inode → view inode.
#[derive(Default)]
pub struct Inos {
    to_view: BTreeMap<Ino, Ino>,
}

impl Inos {
    /// Checks that the trees match and that every object kept its inode number: an object
    /// the model had at the last check has the same view inode, names the model links
    /// together share one view inode, and distinct objects have distinct ones (a number
    /// may come back for a new object once its old one is gone, as ext4 reuses inodes).
    pub fn check(&mut self, what: &str, view: &Dump, model: &Dump) {
        let strip = |d: &Dump| -> BTreeMap<String, Entry> {
            d.iter().map(|(k, (e, _))| (k.clone(), e.clone())).collect()
        };
        let (v, m) = (strip(view), strip(model));
        if v != m {
            for (k, e) in &m {
                if v.get(k) != Some(e) {
                    eprintln!("{k}: model {e:?}\n   view {:?}", v.get(k));
                }
            }
            for k in v.keys().filter(|k| !m.contains_key(*k)) {
                eprintln!("{k}: only in the view {:?}", v[k]);
            }
            panic!("{what}: the view differs from the model");
        }
        let mut to_view: BTreeMap<Ino, Ino> = BTreeMap::new();
        let mut to_model: BTreeMap<Ino, Ino> = BTreeMap::new();
        for (path, (_, mi)) in model {
            let vi = view[path].1;
            let a = *to_view.entry(*mi).or_insert(vi);
            let b = *to_model.entry(vi).or_insert(*mi);
            assert!(
                a == vi && b == *mi,
                "{what}: {path} is view inode {vi} (another name: {a}), model inode {mi} (another object: {b})"
            );
            if let Some(&was) = self.to_view.get(mi) {
                assert_eq!(was, vi, "{what}: {path} changed its inode number");
            }
        }
        self.to_view = to_view;
    }
}

/// Paths of the model's tree, directories first flag.
fn paths(d: &Dump) -> Vec<(String, bool)> {
    d.iter()
        .map(|(k, (e, _))| (k.clone(), e.mode & mode::S_IFMT == mode::S_IFDIR))
        .collect()
}

/// An operation on one side, given its root.
type Op = dyn Fn(&dyn Filesystem, Ino) -> FsResult<()>;

/// One random operation, run on both sides; returns its description and outcome (`: ok` or
/// `: errno N`). Both sides must answer alike (the same errno, or both success).
pub fn step(p: &Pair<'_>, rng: &mut Rng, tree: &Dump) -> String {
    let all = paths(tree);
    let dirs: Vec<String> = std::iter::once(String::new())
        .chain(all.iter().filter(|(_, d)| *d).map(|(k, _)| k.clone()))
        .collect();
    let files: Vec<String> = tree
        .iter()
        .filter(|(_, (e, _))| e.mode & mode::S_IFMT == mode::S_IFREG)
        .map(|(k, _)| k.clone())
        .collect();
    let any = |rng: &mut Rng| -> String {
        if all.is_empty() {
            "/x".into()
        } else {
            all[rng.below(all.len())].0.clone()
        }
    };
    let fresh = |rng: &mut Rng| -> String {
        format!(
            "{}/{}",
            dirs[rng.below(dirs.len())],
            NAMES[rng.below(NAMES.len())]
        )
    };
    let file = |rng: &mut Rng| -> String {
        if files.is_empty() {
            "/nofile".into()
        } else {
            files[rng.below(files.len())].clone()
        }
    };
    let k = rng.below(16);
    let (desc, op): (String, Box<Op>) = match k {
        0 => {
            let path = fresh(rng);
            (
                format!("create {path}"),
                Box::new(move |fs, root| {
                    let (d, n) = split(&path);
                    fs.create(resolve(fs, root, d)?, n, &new(mode::S_IFREG | 0o644, 0))
                        .map(|_| ())
                }),
            )
        }
        1 => {
            let path = fresh(rng);
            (
                format!("mkdir {path}"),
                Box::new(move |fs, root| {
                    let (d, n) = split(&path);
                    fs.create(resolve(fs, root, d)?, n, &new(mode::S_IFDIR | 0o755, 0))
                        .map(|_| ())
                }),
            )
        }
        2 | 3 => {
            let path = file(rng);
            let off = rng.below(80_000) as u64;
            let len = 1 + rng.below(3000);
            let byte = rng.next_u64() as u8;
            (
                format!("write {path} {off}+{len}"),
                Box::new(move |fs, root| {
                    let ino = resolve(fs, root, &path)?;
                    let n = fs.write(ino, off, &vec![byte; len])?;
                    assert_eq!(n, len);
                    Ok(())
                }),
            )
        }
        4 => {
            let path = file(rng);
            let size = rng.below(90_000) as u64;
            (
                format!("truncate {path} {size}"),
                Box::new(move |fs, root| {
                    let ino = resolve(fs, root, &path)?;
                    fs.setattr(
                        ino,
                        &SetAttr {
                            size: Some(size),
                            ..SetAttr::default()
                        },
                    )
                    .map(|_| ())
                }),
            )
        }
        5 => {
            let path = any(rng);
            let m = rng.below(0o1000) as u32;
            let uid = rng.below(3) as u32 * 1000;
            let t = rng.below(1_000_000) as u64;
            let which = rng.below(3);
            (
                format!("setattr#{which} {path}"),
                Box::new(move |fs, root| {
                    let ino = resolve(fs, root, &path)?;
                    let set = match which {
                        0 => SetAttr {
                            mode: Some(m),
                            ..SetAttr::default()
                        },
                        1 => SetAttr {
                            uid: Some(uid),
                            gid: Some(uid),
                            ..SetAttr::default()
                        },
                        _ => SetAttr {
                            mtime: Some(TimeSet::At(Timespec { sec: t, nsec: 0 })),
                            atime: Some(TimeSet::At(Timespec { sec: t, nsec: 0 })),
                            ..SetAttr::default()
                        },
                    };
                    fs.setattr(ino, &set).map(|_| ())
                }),
            )
        }
        6 => {
            let path = any(rng);
            let name = if rng.below(2) == 0 {
                "user.tag"
            } else {
                "user.new"
            };
            let remove = rng.below(3) == 0;
            (
                format!("xattr {path} {name} remove={remove}"),
                Box::new(move |fs, root| {
                    let ino = resolve(fs, root, &path)?;
                    if remove {
                        fs.removexattr(ino, name.as_bytes())
                    } else {
                        fs.setxattr(ino, name.as_bytes(), b"guest", 0)
                    }
                }),
            )
        }
        7 | 8 => {
            let path = any(rng);
            let rmdir = rng.below(2) == 0;
            (
                format!("unlink {path} rmdir={rmdir}"),
                Box::new(move |fs, root| {
                    let (d, n) = split(&path);
                    fs.unlink(resolve(fs, root, d)?, n, rmdir)
                }),
            )
        }
        9..=11 => {
            let from = any(rng);
            let to = if rng.below(2) == 0 {
                any(rng)
            } else {
                fresh(rng)
            };
            (
                format!("rename {from} {to}"),
                Box::new(move |fs, root| {
                    let (d1, n1) = split(&from);
                    let (d2, n2) = split(&to);
                    let a = resolve(fs, root, d1)?;
                    let b = resolve(fs, root, d2)?;
                    fs.rename(a, n1, b, n2)
                }),
            )
        }
        12 => {
            let from = any(rng);
            let to = fresh(rng);
            (
                format!("link {from} {to}"),
                Box::new(move |fs, root| {
                    let ino = resolve(fs, root, &from)?;
                    let (d, n) = split(&to);
                    fs.link(ino, resolve(fs, root, d)?, n).map(|_| ())
                }),
            )
        }
        13 => {
            let path = fresh(rng);
            (
                format!("symlink {path}"),
                Box::new(move |fs, root| {
                    let (d, n) = split(&path);
                    fs.symlink(resolve(fs, root, d)?, n, b"../target", 0, 0)
                        .map(|_| ())
                }),
            )
        }
        14 => {
            let path = fresh(rng);
            let chr = rng.below(2) == 0;
            (
                format!("mknod {path} chr={chr}"),
                Box::new(move |fs, root| {
                    let (d, n) = split(&path);
                    let nw = if chr {
                        new(mode::S_IFCHR | 0o600, (5 << 8) | 1)
                    } else {
                        new(mode::S_IFIFO | 0o600, 0)
                    };
                    fs.create(resolve(fs, root, d)?, n, &nw).map(|_| ())
                }),
            )
        }
        _ => {
            let path = file(rng);
            (
                format!("read {path}"),
                Box::new(move |fs, root| {
                    let ino = resolve(fs, root, &path)?;
                    let mut buf = [0u8; 100];
                    fs.read(ino, 0, &mut buf).map(|_| ())
                }),
            )
        }
    };
    let m = op(p.model, p.model_root);
    let v = op(p.view, p.view_root);
    assert_eq!(
        v.err(),
        m.err(),
        "{desc}: view and model answered differently"
    );
    match m {
        Ok(()) => format!("{desc}: ok"),
        Err(e) => format!("{desc}: errno {}", e.0),
    }
}

/// Runs `ops` random operations from `seed`, comparing the trees after each; `reopen` is
/// called every `reopen_every` operations and gives a fresh view over the same state
/// (restart: nothing but the disk carries over). Returns the operations with their outcomes
/// and the inode numbers seen, for checks after a remount.
pub fn run<'v>(
    model: &dyn Filesystem,
    model_root: Ino,
    view: &mut Box<dyn Filesystem + 'v>,
    reopen: &mut dyn FnMut() -> Box<dyn Filesystem + 'v>,
    reopen_every: usize,
    seed: u64,
    ops: usize,
) -> (Vec<String>, Inos) {
    let mut rng = Rng::new(seed);
    let mut inos = Inos::default();
    let mut log = Vec::new();
    let mut tree = dump(model, model_root);
    inos.check("start", &dump(&**view, view.root()), &tree);
    for i in 0..ops {
        let p = Pair {
            view: &**view,
            view_root: view.root(),
            model,
            model_root,
        };
        let d = step(&p, &mut rng, &tree);
        log.push(d.clone());
        tree = dump(model, model_root);
        inos.check(
            &format!("op {i} ({d}) seed {seed}"),
            &dump(&**view, view.root()),
            &tree,
        );
        if reopen_every > 0 && i % reopen_every == reopen_every - 1 {
            *view = reopen();
            inos.check(
                &format!("reopened after op {i} seed {seed}"),
                &dump(&**view, view.root()),
                &tree,
            );
        }
    }
    (log, inos)
}
