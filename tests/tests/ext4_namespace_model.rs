//! ext4 namespace operations at random (mkdir, create, symlink, link, unlink, rmdir, rename)
//! checked step by step against an in-memory model of the tree.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::ext4::{Error, Ext4, FileType, Ino, RenameFlags, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::namei::{image, ro};
use pvfs_tests::wimg::{e2fsck_clean, open_rw};
use std::collections::BTreeMap;

/// What the model holds for an inode.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
}

/// In-memory model of the namespace, keyed by the engine's inode numbers.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<Ino, Node>,
    entries: BTreeMap<Ino, BTreeMap<Vec<u8>, Ino>>,
}

impl Model {
    fn is_dir(&self, ino: Ino) -> bool {
        self.nodes.get(&ino) == Some(&Node::Dir)
    }
    fn get(&self, dir: Ino, name: &[u8]) -> Option<Ino> {
        self.entries.get(&dir).and_then(|e| e.get(name)).copied()
    }
    fn refs(&self, ino: Ino) -> usize {
        self.entries
            .values()
            .map(|e| e.values().filter(|&&i| i == ino).count())
            .sum()
    }
    fn parent(&self, dir: Ino) -> Option<Ino> {
        self.entries
            .iter()
            .find(|(_, e)| e.values().any(|&i| i == dir))
            .map(|(&p, _)| p)
    }
    /// Whether `anc` is `dir` or one of its ancestors.
    fn is_ancestor(&self, anc: Ino, dir: Ino) -> bool {
        let mut cur = Some(dir);
        while let Some(c) = cur {
            if c == anc {
                return true;
            }
            cur = self.parent(c);
        }
        false
    }
    fn insert(&mut self, dir: Ino, name: &[u8], ino: Ino, node: Node) {
        if node == Node::Dir {
            self.entries.insert(ino, BTreeMap::new());
        }
        self.nodes.insert(ino, node);
        self.entries
            .get_mut(&dir)
            .unwrap()
            .insert(name.to_vec(), ino);
    }
    /// Remove `dir/name`; forget its inode when no entry names it any more.
    fn remove(&mut self, dir: Ino, name: &[u8]) -> Ino {
        let ino = self.entries.get_mut(&dir).unwrap().remove(name).unwrap();
        if self.refs(ino) == 0 {
            self.nodes.remove(&ino);
            self.entries.remove(&ino);
        }
        ino
    }
    /// The expected outcome of a rename (the engine's order of checks).
    fn rename(
        &mut self,
        od: Ino,
        on: &[u8],
        nd: Ino,
        nn: &[u8],
        f: RenameFlags,
    ) -> Result<(), &'static str> {
        if f.noreplace && f.exchange {
            return Err("Invalid");
        }
        let src = self.get(od, on).ok_or("NotFound")?;
        let dst = self.get(nd, nn);
        if f.exchange && dst.is_none() {
            return Err("NotFound");
        }
        if f.noreplace && dst.is_some() {
            return Err("Exists");
        }
        if dst == Some(src) {
            return Ok(());
        }
        let (s_dir, d_dir) = (self.is_dir(src), dst.is_some_and(|d| self.is_dir(d)));
        if s_dir && od != nd && self.is_ancestor(src, nd) {
            return Err("Invalid");
        }
        if let (true, true, Some(d)) = (f.exchange, d_dir, dst) {
            if od != nd && self.is_ancestor(d, od) {
                return Err("Invalid");
            }
        }
        if let (Some(d), false) = (dst, f.exchange) {
            match (s_dir, d_dir) {
                (true, false) => return Err("NotDir"),
                (false, true) => return Err("IsDir"),
                _ => {}
            }
            if d_dir && !self.entries[&d].is_empty() {
                return Err("NotEmpty");
            }
        }
        if f.exchange {
            let d = dst.unwrap();
            self.entries.get_mut(&od).unwrap().insert(on.to_vec(), d);
            self.entries.get_mut(&nd).unwrap().insert(nn.to_vec(), src);
        } else {
            if dst.is_some() {
                self.remove(nd, nn);
            }
            self.entries.get_mut(&od).unwrap().remove(on);
            self.entries.get_mut(&nd).unwrap().insert(nn.to_vec(), src);
        }
        Ok(())
    }
}

fn err_kind(e: &Error) -> &'static str {
    match e {
        Error::NotFound => "NotFound",
        Error::Exists => "Exists",
        Error::NotEmpty => "NotEmpty",
        Error::Invalid { .. } => "Invalid",
        Error::IsDir { .. } => "IsDir",
        Error::NotDir { .. } => "NotDir",
        Error::TooManyLinks => "TooManyLinks",
        other => panic!("unexpected engine error {other:?}"),
    }
}

/// The engine's tree must be the model's: names, inodes, kinds, link counts, `..`, contents.
fn compare<D: pvfs_fs::block::BlockDevice>(fs: &mut Ext4<D>, m: &Model) {
    for (&dir, want) in &m.entries {
        let mut got: BTreeMap<Vec<u8>, Ino> = BTreeMap::new();
        for e in fs.read_dir(dir).unwrap() {
            if e.name != b"." && e.name != b".." {
                got.insert(e.name.clone(), e.ino);
                let kind = match m.nodes[&e.ino] {
                    Node::Dir => FileType::Directory,
                    Node::File(_) => FileType::Regular,
                    Node::Link(_) => FileType::Symlink,
                };
                assert_eq!(e.kind, kind, "entry type of {:?}", e.name);
            }
        }
        assert_eq!(&got, want, "entries of directory {dir}");
        let parent = m.parent(dir).unwrap_or(ROOT_INO);
        assert_eq!(fs.lookup(dir, b"..").unwrap(), parent, ".. of {dir}");
        let subdirs = want.values().filter(|&&i| m.is_dir(i)).count();
        assert_eq!(fs.getattr(dir).unwrap().nlink as usize, 2 + subdirs);
    }
    for (&ino, node) in &m.nodes {
        match node {
            Node::Dir => {}
            Node::File(data) => {
                let mut b = vec![0u8; data.len() + 10];
                let n = fs.read(ino, 0, &mut b).unwrap();
                assert_eq!(&b[..n], data.as_slice(), "contents of {ino}");
                assert_eq!(fs.getattr(ino).unwrap().nlink as usize, m.refs(ino));
            }
            Node::Link(t) => {
                assert_eq!(&fs.readlink(ino).unwrap(), t, "target of {ino}");
                assert_eq!(fs.getattr(ino).unwrap().nlink as usize, m.refs(ino));
            }
        }
    }
}

/// Random rename/link/unlink/mkdir/rmdir/symlink/create sequences against the model.
fn random_namespace(block: u32, seed: u64, ops: usize) {
    let img = image(&format!("random-{seed}"), block, &[]);
    let mut rng = ext4img::Rng::new(seed);
    let mut r = move |n: usize| (rng.next_u64() % n as u64) as usize;
    let names: [&[u8]; 6] = [
        b"a",
        b"b",
        b"c",
        b"dd",
        b"eee",
        b"a-much-longer-name-for-variety",
    ];
    let mut m = Model::default();
    m.nodes.insert(ROOT_INO, Node::Dir);
    let mut fs = open_rw(&img);
    let root_entries: BTreeMap<Vec<u8>, Ino> = fs
        .read_dir(ROOT_INO)
        .unwrap()
        .into_iter()
        .filter(|e| e.name != b"." && e.name != b"..")
        .map(|e| (e.name, e.ino))
        .collect();
    for &ino in root_entries.values() {
        m.nodes.insert(ino, Node::Dir);
        m.entries.insert(ino, BTreeMap::new());
    }
    m.entries.insert(ROOT_INO, root_entries);
    let mut done: BTreeMap<&str, usize> = BTreeMap::new();
    for step in 0..ops {
        let dirs: Vec<Ino> = m.entries.keys().copied().collect();
        let others: Vec<Ino> = m
            .nodes
            .iter()
            .filter(|(_, n)| **n != Node::Dir)
            .map(|(&i, _)| i)
            .collect();
        let mut d = dirs[r(dirs.len())];
        let mut name = names[r(names.len())];
        let op = r(10);
        if op == 5 && r(2) == 0 {
            // Often aim rmdir at an empty directory, which random names rarely hit.
            let empty: Vec<(Ino, &[u8])> = m
                .entries
                .iter()
                .flat_map(|(&p, e)| e.iter().map(move |(n, &i)| (p, n.as_slice(), i)))
                .filter(|&(_, _, i)| m.entries.get(&i).is_some_and(|e| e.is_empty()))
                .filter_map(|(p, n, _)| names.iter().find(|&&x| x == n).map(|&x| (p, x)))
                .collect();
            if !empty.is_empty() {
                (d, name) = empty[r(empty.len())];
            }
        }
        let exists = m.get(d, name);
        // What an operation that makes `name` must do: refuse a name that is taken.
        let new_name = if exists.is_some() {
            Err("Exists")
        } else {
            Ok(())
        };
        let (what, got, want): (&str, Result<(), Error>, Result<(), &str>) = match op {
            0 => {
                let res = fs.mkdir(d, name, 0o755, 0, 0);
                let want = new_name;
                if let Ok(ino) = res {
                    m.insert(d, name, ino, Node::Dir);
                }
                ("mkdir", res.map(|_| ()), want)
            }
            1 => {
                let data = vec![step as u8; r(3000)];
                let res = fs.create(d, name, 0o644, 0, 0);
                let want = new_name;
                if let Ok(ino) = res {
                    fs.write(ino, 0, &data).unwrap();
                    m.insert(d, name, ino, Node::File(data));
                }
                ("create", res.map(|_| ()), want)
            }
            2 => {
                let t: Vec<u8> = (0..1 + r(120)).map(|i| b'a' + (i % 26) as u8).collect();
                let res = fs.symlink(d, name, &t, 0, 0);
                let want = new_name;
                if let Ok(ino) = res {
                    m.insert(d, name, ino, Node::Link(t));
                }
                ("symlink", res.map(|_| ()), want)
            }
            3 if !others.is_empty() || !dirs.is_empty() => {
                // Link a non-directory, sometimes a directory (refused).
                let target = if r(5) == 0 || others.is_empty() {
                    dirs[r(dirs.len())]
                } else {
                    others[r(others.len())]
                };
                let want = if m.is_dir(target) {
                    Err("IsDir")
                } else if exists.is_some() {
                    Err("Exists")
                } else {
                    Ok(())
                };
                let res = fs.link(target, d, name);
                if res.is_ok() {
                    m.entries.get_mut(&d).unwrap().insert(name.to_vec(), target);
                }
                ("link", res, want)
            }
            4 => {
                let want = match exists {
                    None => Err("NotFound"),
                    Some(i) if m.is_dir(i) => Err("IsDir"),
                    Some(_) => Ok(()),
                };
                let res = fs.unlink(d, name);
                if res.is_ok() {
                    m.remove(d, name);
                }
                ("unlink", res, want)
            }
            5 => {
                let want = match exists {
                    None => Err("NotFound"),
                    Some(i) if !m.is_dir(i) => Err("NotDir"),
                    Some(i) if !m.entries[&i].is_empty() => Err("NotEmpty"),
                    Some(_) => Ok(()),
                };
                let res = fs.rmdir(d, name);
                if res.is_ok() {
                    m.remove(d, name);
                }
                ("rmdir", res, want)
            }
            _ => {
                let nd = dirs[r(dirs.len())];
                let nn = names[r(names.len())];
                let f = RenameFlags {
                    noreplace: r(6) == 0,
                    exchange: r(5) == 0,
                };
                // The model decides (and applies) first; the engine must agree.
                let want = m.rename(d, name, nd, nn, f);
                let res = fs.rename(d, name, nd, nn, f);
                ("rename", res, want)
            }
        };
        let got_kind = got.as_ref().map(|_| ()).map_err(err_kind);
        assert_eq!(got_kind, want, "step {step}: {what}");
        if got.is_ok() {
            *done.entry(what).or_default() += 1;
        }
        if step % 100 == 99 {
            compare(&mut fs, &m);
        }
    }
    compare(&mut fs, &m);
    for what in [
        "mkdir", "create", "symlink", "link", "unlink", "rmdir", "rename",
    ] {
        assert!(
            done.get(what).copied().unwrap_or(0) > 0,
            "{what} never succeeded: {done:?}"
        );
    }
    fs.close().unwrap();
    e2fsck_clean(&img);
    let mut fresh = ro(&img);
    compare(&mut fresh, &m);
}

#[test]
fn random_namespace_ops() {
    for seed in 0..4 {
        random_namespace(if seed % 2 == 0 { 1024 } else { 4096 }, seed, 600);
    }
}
