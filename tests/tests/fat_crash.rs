//! Crash behaviour of the FAT engine (no journal; `docs/architecture.md`, "FAT engine"). A
//! workload (mkdir, create, append, unlink, rmdir, rename of files over files and of
//! directories across directories, truncate) runs on `mkfs.vfat` images (FAT12, FAT16,
//! FAT32) and every device write is recorded. Then the power is cut at EVERY write:
//! 1. in order: the image holds exactly the first N writes;
//! 2. (FAT12, FAT16) with a volatile write cache (`ReorderDisk`): of the writes since the
//!    last flush, an arbitrary subset reached the disk, in an arbitrary order. The engine
//!    flushes at its ordering points only, so operations since the last flush may each be
//!    there or not: every file and directory read back must be one the model had (same
//!    path, same bytes) at some point up to the operation that was cut.
//!
//! After each cut `fsck.fat -n` may report only what the write order allows (lost clusters,
//! a chain longer than its file's size, orphaned long-name slots, a stale second FAT) and
//! nothing else (no cross-links, no bad chains, no bad directory entries), and the engine
//! must read the tree as the model had it before or after the operation that was cut (a cut
//! rename may also have lost the renamed file, and the file it replaced).
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::{BlockDevice, DevError, MemDisk, ReorderDisk};
use pvfs_fs::fat::{Error, Fat, ROOT_INO};
use pvfs_tests::ext4img::Rng;
use pvfs_tests::fatimg::{self, Tree};
use pvfs_tests::p9client::temp_dir;
use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::process::Command;

#[derive(Debug, Clone)]
enum Op {
    Mkdir(String),
    Create(String),
    Append(String, Vec<u8>),
    Unlink(String),
    Rmdir(String),
    Rename(String, String),
    Truncate(String, usize),
}

/// An operation without its data, for messages.
fn show(op: &Op) -> String {
    match op {
        Op::Append(p, d) => format!("Append({p}, {} bytes)", d.len()),
        other => format!("{other:?}"),
    }
}

fn split(p: &str) -> (&str, &str) {
    p.rsplit_once('/').unwrap()
}

/// A deterministic workload of `n` operations and the model after each.
fn workload(n: usize, seed: u64) -> (Vec<Op>, Vec<Tree>) {
    let mut rng = Rng::new(seed);
    let mut t = Tree::new();
    let mut ops = Vec::new();
    let mut states = vec![t.clone()];
    let mut fresh = 0;
    while ops.len() < n {
        let dirs: Vec<String> = std::iter::once(String::new())
            .chain(
                t.iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| k.clone()),
            )
            .collect();
        let files: Vec<String> = t
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let pick = |rng: &mut Rng, v: &[String]| v[rng.next_u64() as usize % v.len()].clone();
        let d = pick(&mut rng, &dirs);
        fresh += 1;
        // Long names (several long-name slots, some across a sector boundary) and short ones.
        let name = if fresh % 3 == 0 {
            format!("n{fresh}")
        } else {
            format!("entry number {fresh} with a name long enough for three slots")
        };
        let op = match rng.next_u64() % 12 {
            0 | 1 if dirs.len() < 10 => Op::Mkdir(format!("{d}/{name}")),
            2 | 3 => Op::Create(format!("{d}/{name}")),
            4..=6 if !files.is_empty() => {
                let len = 1 + rng.next_u64() as usize % 3000;
                Op::Append(pick(&mut rng, &files), rng.bytes(len))
            }
            7 if !files.is_empty() => Op::Unlink(pick(&mut rng, &files)),
            8 if files.len() > 1 => {
                let f = pick(&mut rng, &files);
                let g = pick(&mut rng, &files);
                if f != g && rng.next_u64().is_multiple_of(2) {
                    Op::Rename(f, g)
                } else {
                    Op::Rename(f, format!("{d}/{name}"))
                }
            }
            9 if dirs.len() > 2 => {
                let s = pick(&mut rng, &dirs[1..]);
                if d == s || d.starts_with(&format!("{s}/")) {
                    Op::Create(format!("{d}/{name}"))
                } else {
                    Op::Rename(s, format!("{d}/{name}"))
                }
            }
            10 if !files.is_empty() => {
                let f = pick(&mut rng, &files);
                let len = t[&f].as_ref().unwrap().len();
                Op::Truncate(f, rng.next_u64() as usize % (len + 1))
            }
            _ => {
                let empty = dirs
                    .iter()
                    .find(|d| !d.is_empty() && !t.keys().any(|k| k.starts_with(&format!("{d}/"))));
                match empty {
                    Some(e) => Op::Rmdir(e.clone()),
                    None => Op::Create(format!("{d}/{name}")),
                }
            }
        };
        apply(&mut t, &op);
        ops.push(op);
        states.push(t.clone());
    }
    (ops, states)
}

fn remove_tree(t: &mut Tree, p: &str) {
    t.remove(p);
    let pre = format!("{p}/");
    t.retain(|k, _| !k.starts_with(&pre));
}

fn apply(t: &mut Tree, op: &Op) {
    match op {
        Op::Mkdir(p) => {
            t.insert(p.clone(), None);
        }
        Op::Create(p) => {
            t.insert(p.clone(), Some(Vec::new()));
        }
        Op::Append(p, d) => t.get_mut(p).unwrap().as_mut().unwrap().extend_from_slice(d),
        Op::Unlink(p) | Op::Rmdir(p) => {
            t.remove(p);
        }
        Op::Truncate(p, n) => t.get_mut(p).unwrap().as_mut().unwrap().truncate(*n),
        Op::Rename(from, to) => {
            t.remove(to);
            let pre = format!("{from}/");
            let moved: Vec<(String, Option<Vec<u8>>)> = t
                .iter()
                .filter(|(k, _)| *k == from || k.starts_with(&pre))
                .map(|(k, v)| (format!("{to}{}", &k[from.len()..]), v.clone()))
                .collect();
            remove_tree(t, from);
            t.extend(moved);
        }
    }
}

fn run_op<D: BlockDevice>(f: &mut Fat<D>, op: &Op) -> Result<(), Error> {
    let at = |f: &mut Fat<D>, p: &str| {
        let (dir, name) = split(p);
        (fatimg::lookup(f, dir), name.as_bytes().to_vec())
    };
    match op {
        Op::Mkdir(p) | Op::Create(p) => {
            let (d, n) = at(f, p);
            f.create(d, &n, matches!(op, Op::Mkdir(_)), 0).map(|_| ())
        }
        Op::Append(p, data) => {
            let ino = fatimg::lookup(f, p);
            let size = f.stat(ino)?.size;
            f.write(ino, size, data).map(|_| ())
        }
        Op::Unlink(p) | Op::Rmdir(p) => {
            let (d, n) = at(f, p);
            f.unlink(d, &n, matches!(op, Op::Rmdir(_)))
        }
        Op::Truncate(p, n) => {
            let ino = fatimg::lookup(f, p);
            f.truncate(ino, *n as u64)
        }
        Op::Rename(a, b) => {
            let (da, na) = at(f, a);
            let (db, nb) = at(f, b);
            f.rename(da, &na, db, &nb)
        }
    }
}

/// A device that records every write (and where each flush fell).
struct Recorder {
    inner: MemDisk<'static>,
    writes: Vec<(u64, Vec<u8>)>,
}

impl BlockDevice for Recorder {
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), DevError> {
        self.inner.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), DevError> {
        self.writes.push((lba, buf.to_vec()));
        self.inner.write(lba, buf, fua)
    }
    fn flush(&mut self) -> Result<(), DevError> {
        self.inner.flush()
    }
}

/// fsck.fat's complaints that the write order allows after a cut; anything else fails.
fn allowed_line(l: &str) -> bool {
    let l = l.trim();
    l.is_empty()
        || l.starts_with("fsck.fat ")
        || l.contains(" files, ")
        || l == "Leaving filesystem unchanged."
        || l.starts_with("Orphaned long file name part")
        || l == "Auto-deleting."
        || l.starts_with("Reclaimed ")
        || l.contains("unused cluster")
        || l.starts_with("Free cluster summary")
        || l.starts_with("FATs differ")
        || l.starts_with("Using first FAT")
        || (l.contains("File size is") && l.contains("cluster chain length is >"))
        || l.starts_with("Truncating file to")
}

/// The fsck.fat report of `img`: `Err(report)` if a line is not one the write order allows.
fn fsck_violations(img: &Path) -> Result<(), String> {
    let out = Command::new("fsck.fat")
        .arg("-n")
        .arg(img)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = text.lines().collect();
    // A line naming a file (`/path`) is judged by the message indented below it.
    let bad = lines.iter().enumerate().any(|(i, l)| {
        if l.starts_with('/') && !l.contains(" files, ") {
            return !lines
                .get(i + 1)
                .is_some_and(|n| n.starts_with("  ") && allowed_line(n));
        }
        !allowed_line(l)
    });
    if bad {
        Err(text)
    } else {
        Ok(())
    }
}

/// The model states a cut during `op` (between `before` and `after`) may leave.
fn acceptable(op: &Op, before: &Tree, after: &Tree) -> Vec<Tree> {
    let mut v = vec![before.clone(), after.clone()];
    if let Op::Rename(from, to) = op {
        let mut t = before.clone();
        if to != from && t.contains_key(to) {
            remove_tree(&mut t, to);
            v.push(t.clone());
        }
        remove_tree(&mut t, from);
        v.push(t);
    }
    v
}

fn check_cut(img: &Path, bytes: &[u8], op: &Op, before: &Tree, after: &Tree, what: &str) {
    if let Err(report) = fsck_violations(img) {
        panic!("{what}, during {}: fsck.fat -n:\n{report}", show(op));
    }
    let mut f = Fat::open(MemDisk::borrowed(bytes), false).unwrap();
    let got = fatimg::engine_tree(&mut f);
    assert!(
        acceptable(op, before, after).contains(&got),
        "{what}, during {}: the tree is neither before nor after:\n{:?}",
        show(op),
        got.keys().collect::<Vec<_>>()
    );
}

fn crash_run(bits: u32, kib: u64, spc: u32, ops_n: usize, seed: u64, reorder: bool) -> usize {
    let dir = temp_dir(&format!("fat_crash{bits}"));
    let img = dir.join("base.img");
    fatimg::mkfs(&img, kib, bits, spc);
    let base = std::fs::read(&img).unwrap();
    let (ops, states) = workload(ops_n, seed);
    // The whole run, recorded.
    let mut f = Fat::open(
        Recorder {
            inner: MemDisk::new(base.clone()),
            writes: Vec::new(),
        },
        true,
    )
    .unwrap();
    let mut ends = Vec::new();
    for op in &ops {
        run_op(&mut f, op).unwrap_or_else(|e| panic!("{}: {e}", show(op)));
        ends.push(f_writes(&f));
    }
    f.sync().unwrap();
    assert_eq!(&fatimg::engine_tree(&mut f), states.last().unwrap());
    let rec = f.into_device();
    let total = rec.writes.len();
    let op_at = |w: usize| ends.iter().position(|&e| e > w).unwrap_or(ops.len() - 1);
    // 1. In order: the image after each write prefix.
    let mut work = std::fs::OpenOptions::new().write(true).open(&img).unwrap();
    let mut mem = base.clone();
    for (i, (lba, data)) in rec.writes.iter().enumerate() {
        let at = (*lba * 512) as usize;
        mem[at..at + data.len()].copy_from_slice(data);
        work.seek(SeekFrom::Start(at as u64)).unwrap();
        work.write_all(data).unwrap();
        let k = op_at(i);
        check_cut(
            &img,
            &mem,
            &ops[k],
            &states[k],
            &states[k + 1],
            &format!("FAT{bits} cut after write {}", i + 1),
        );
    }
    fatimg::fsck_clean(&img);
    // 2. A volatile cache: cut at every write, an arbitrary subset of the unflushed writes.
    if reorder {
        for cut in 0..total as u64 {
            let mut dev = ReorderDisk::new(MemDisk::new(base.clone()));
            dev.cut_power_after_writes(cut);
            let mut f = Fat::open(dev, true).unwrap();
            let mut k = 0;
            while k < ops.len() && run_op(&mut f, &ops[k]).is_ok() {
                k += 1;
            }
            assert!(k < ops.len(), "the cut at write {cut} stopped nothing");
            let mem = f.into_device().crash(cut).unwrap().into_vec().unwrap();
            std::fs::write(&img, &mem).unwrap();
            let what = format!(
                "FAT{bits} reordered cut at write {cut}, during {}",
                show(&ops[k])
            );
            if let Err(report) = fsck_violations(&img) {
                panic!("{what}: fsck.fat -n:\n{report}");
            }
            // Operations since the last flush may each have reached the disk or not, so the
            // tree is not one model state; each entry in it must be one some state had.
            let mut f = Fat::open(MemDisk::borrowed(&mem), false).unwrap();
            let got = fatimg::engine_tree(&mut f);
            for (p, v) in &got {
                assert!(
                    states[..=k + 1].iter().any(|s| s.get(p) == Some(v)),
                    "{what}: {p} is in no state the model had"
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    total
}

fn f_writes(f: &Fat<Recorder>) -> usize {
    f.device().writes.len()
}

fn ops_count() -> usize {
    std::env::var("PVFS_FAT_CRASH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

#[test]
fn power_cut_at_every_write_fat12() {
    fatimg::require_tools();
    let n = crash_run(12, 1_440, 1, ops_count(), 12, true);
    assert!(n > 300, "{n} writes");
}

#[test]
fn power_cut_at_every_write_fat16() {
    fatimg::require_tools();
    let n = crash_run(16, 8_000, 1, ops_count(), 16, true);
    assert!(n > 300, "{n} writes");
}

#[test]
fn power_cut_at_every_write_fat32() {
    fatimg::require_tools();
    let n = crash_run(32, 34_000, 1, ops_count(), 32, false);
    assert!(n > 300, "{n} writes");
    let _ = ROOT_INO;
}
