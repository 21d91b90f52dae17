//! Helpers for FAT tests: images from `mkfs.vfat`, trees copied in and out with mtools, the
//! `fsck.fat -n` oracle, and trees read through the engine.

use crate::p9client::require_tool;
use pvfs_fs::block::{BlockDevice, FileDisk};
use pvfs_fs::fat::{Fat, Ino, ROOT_INO};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Path (`/a/b`) → `None` for a directory, `Some(bytes)` for a file.
pub type Tree = BTreeMap<String, Option<Vec<u8>>>;

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .env("MTOOLS_SKIP_CHECK", "1")
        .env("LC_ALL", "C.UTF-8")
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Requires mkfs.vfat, fsck.fat and mtools.
pub fn require_tools() {
    for t in ["mkfs.vfat", "fsck.fat", "mcopy", "mdir"] {
        require_tool(t);
    }
}

/// A `kib` KiB image made by `mkfs.vfat -F bits -s spc` (fixed volume id).
pub fn mkfs(img: &Path, kib: u64, bits: u32, spc: u32) {
    let _ = fs::remove_file(img);
    let f = fs::File::create(img).unwrap();
    f.set_len(kib << 10).unwrap();
    drop(f);
    run(Command::new("mkfs.vfat")
        .args([
            "-F",
            &bits.to_string(),
            "-s",
            &spc.to_string(),
            "-i",
            "12345678",
            "-n",
            "PVFSTEST",
        ])
        .arg(img));
}

/// `fsck.fat -n img`: `Ok(())` when it finds nothing, else its report.
pub fn fsck(img: &Path) -> Result<(), String> {
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg(img)
        .output()
        .expect("fsck.fat must be installed (ci/host-deps.sh)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // A clean run prints its version line and the `IMG: N files, U/T clusters` summary only.
    let extra = text
        .lines()
        .filter(|l| !l.starts_with("fsck.fat ") && !l.contains(" files, "))
        .count();
    if out.status.code() == Some(0) && extra == 0 {
        Ok(())
    } else {
        Err(format!("fsck.fat -n exit {:?}:\n{text}", out.status.code()))
    }
}

/// Panics with fsck.fat's report unless the image is clean.
pub fn fsck_clean(img: &Path) {
    if let Err(r) = fsck(img) {
        panic!("{r}");
    }
}

/// Copies the contents of host directory `src` into the image's root with `mcopy -s -m`.
pub fn mtools_put(img: &Path, src: &Path) {
    let mut names: Vec<_> = fs::read_dir(src)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    names.sort();
    run(Command::new("mcopy")
        .args(["-s", "-m", "-Q", "-i"])
        .arg(img)
        .args(&names)
        .arg("::/"));
}

/// Copies the image's root out into host directory `dest` (created) with `mcopy -s -m`.
pub fn mtools_get(img: &Path, dest: &Path) {
    fs::create_dir_all(dest).unwrap();
    let listing = run(Command::new("mdir").args(["-b", "-i"]).arg(img).arg("::/"));
    let names: Vec<String> = listing
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return;
    }
    run(Command::new("mcopy")
        .args(["-s", "-m", "-Q", "-n", "-i"])
        .arg(img)
        .args(&names)
        .arg(dest));
}

/// The tree under host directory `dir`.
pub fn host_tree(dir: &Path) -> Tree {
    fn walk(dir: &Path, prefix: &str, out: &mut Tree) {
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            let p = format!("{prefix}/{name}");
            if e.file_type().unwrap().is_dir() {
                out.insert(p.clone(), None);
                walk(&e.path(), &p, out);
            } else {
                out.insert(p, Some(fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut t = Tree::new();
    walk(dir, "", &mut t);
    t
}

/// The tree the engine reads from `fat`.
pub fn engine_tree<D: BlockDevice>(fat: &mut Fat<D>) -> Tree {
    fn walk<D: BlockDevice>(fat: &mut Fat<D>, dir: Ino, prefix: &str, out: &mut Tree) {
        let mut entries = Vec::new();
        fat.readdir(dir, 0, &mut |l| {
            entries.push((l.ino, l.name.clone(), l.dir));
            true
        })
        .unwrap();
        for (ino, name, is_dir) in entries {
            let p = format!("{prefix}/{}", String::from_utf8(name).unwrap());
            if is_dir {
                out.insert(p.clone(), None);
                walk(fat, ino, &p, out);
            } else {
                let size = fat.stat(ino).unwrap().size as usize;
                let mut buf = vec![0u8; size];
                assert_eq!(fat.read(ino, 0, &mut buf).unwrap(), size, "{p}");
                out.insert(p, Some(buf));
            }
        }
    }
    let mut t = Tree::new();
    walk(fat, ROOT_INO, "", &mut t);
    t
}

/// Opens an image file with the engine.
pub fn open(img: &Path, writable: bool) -> Fat<FileDisk> {
    let disk = if writable {
        FileDisk::open_rw(img)
    } else {
        FileDisk::open(img)
    }
    .unwrap();
    Fat::open(disk, writable).unwrap()
}

/// Writes `tree` into the engine (parents before children).
pub fn put_tree<D: BlockDevice>(fat: &mut Fat<D>, tree: &Tree) {
    for (p, v) in tree {
        let (parent, name) = p.rsplit_once('/').unwrap();
        let dir = lookup(fat, parent);
        match v {
            None => {
                fat.create(dir, name.as_bytes(), true, 0).unwrap();
            }
            Some(data) => {
                let ino = fat.create(dir, name.as_bytes(), false, 0).unwrap();
                let mut off = 0;
                for chunk in data.chunks(100_000) {
                    fat.write(ino, off, chunk).unwrap();
                    off += chunk.len() as u64;
                }
            }
        }
    }
}

/// The inode at `path` (`""` or `/` is the root).
pub fn lookup<D: BlockDevice>(fat: &mut Fat<D>, path: &str) -> Ino {
    let mut ino = ROOT_INO;
    for c in path.split('/').filter(|c| !c.is_empty()) {
        ino = fat
            .lookup(ino, c.as_bytes())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    ino
}

/// A tree of long, Unicode and 8.3-colliding names, deep directories, and files of 0 bytes,
/// one cluster (`cluster` bytes) and `big` bytes, written under host directory `dir`.
pub fn sample_tree(dir: &Path, cluster: usize, big: usize) -> Tree {
    let mut t = Tree::new();
    let data = |n: usize, seed: u32| -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    };
    t.insert("/empty".into(), Some(Vec::new()));
    t.insert("/one cluster.bin".into(), Some(data(cluster, 1)));
    t.insert("/big file of several MiB.dat".into(), Some(data(big, 2)));
    t.insert("/README.TXT".into(), Some(b"plain 8.3 name\n".to_vec()));
    t.insert("/Ünïcødé – 日本語 ✓.txt".into(), Some(data(777, 3)));
    t.insert(
        format!("/{}", "a very long name ".repeat(14).trim_end()),
        Some(data(1, 4)),
    );
    t.insert("/collide".into(), None);
    for i in 0..14 {
        t.insert(
            format!("/collide/Long File Name {i}.text"),
            Some(data(100 + i, 10 + i as u32)),
        );
    }
    t.insert("/collide/longfile.txt".into(), Some(b"lower".to_vec()));
    let mut p = String::new();
    for depth in 0..12 {
        p.push_str(&format!("/level {depth}"));
        t.insert(p.clone(), None);
    }
    t.insert(format!("{p}/deep file"), Some(data(cluster + 1, 5)));
    t.insert(format!("{p}/empty dir"), None);
    for (path, v) in &t {
        let host = dir.join(path.trim_start_matches('/'));
        match v {
            None => fs::create_dir_all(&host).unwrap(),
            Some(d) => {
                fs::create_dir_all(host.parent().unwrap()).unwrap();
                fs::write(&host, d).unwrap();
            }
        }
    }
    t
}
