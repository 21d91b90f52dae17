//! Crash consistency of the journalled writer. A 200-operation workload (mkdir, create,
//! append, unlink, rmdir, rename of files (also over another) and directories, truncate to
//! zero, an fsync every 20 operations) runs on a small image; the power is cut
//! at EVERY write index of the run, with two devices:
//! 1. `FaultyDisk`: the writes after write N are lost (fail);
//! 2. `ReorderDisk`: additionally, of the writes issued since the last flush, an arbitrary
//!    subset (in an arbitrary order) reached the medium;
//! 3. `QueueDisk` over `ReorderDisk`: as 2, and after every operation the engine starts
//!    writing file data back on its own (`start_write_back`, posted writes), as pvfs does
//!    while it is idle.
//!
//! After each cut a read-write mount replays the journal, `close` writes it back, and the
//! image must pass `e2fsck -fn` and read exactly like the model after some operation between
//! the last completed fsync and the operation that was cut: operations are atomic and
//! everything fsynced is intact (files appended only, so ordered data written ahead of an
//! uncommitted size stays invisible).
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::{BlockDevice, FaultyDisk, MemDisk, QueueDisk, ReorderDisk};
use pvfs_fs::ext4::{Error, Ext4, Ino, Options, RenameFlags};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{e2fsck, engine_tree, mkfs, Tree, CLOCK};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

/// Path → `None` for a directory, `Some(contents)` for a file.

#[derive(Debug, Clone)]
enum Op {
    Mkdir(String),
    Create(String),
    Append(String, Vec<u8>),
    Unlink(String),
    Rmdir(String),
    /// Rename a file or directory (a file may replace another file).
    Rename(String, String),
    /// Truncate a file to zero length (its blocks are freed and may be reused at once).
    Truncate0(String),
    Fsync(String),
}

fn parent(p: &str) -> (&str, &str) {
    let i = p.rfind('/').unwrap();
    (if i == 0 { "/" } else { &p[..i] }, &p[i + 1..])
}

/// A deterministic workload of `n` operations (fsync every 20th) and the model after each:
/// `states[k]` is the tree after the first `k` operations.
fn workload(n: usize, seed: u64) -> (Vec<Op>, Vec<Tree>) {
    let mut rng = ext4img::Rng::new(seed);
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
        let op = if ops.len() % 20 == 19 {
            match files.get(rng.next_u64() as usize % files.len().max(1)) {
                Some(f) => Op::Fsync(f.clone()),
                None => Op::Fsync("/".into()),
            }
        } else {
            let d = &dirs[rng.next_u64() as usize % dirs.len()];
            fresh += 1;
            match rng.next_u64() % 14 {
                0 | 1 if dirs.len() < 12 => Op::Mkdir(format!("{d}/d{fresh}")),
                2 | 3 => Op::Create(format!("{d}/f{fresh}")),
                4..=6 if !files.is_empty() => {
                    let f = &files[rng.next_u64() as usize % files.len()];
                    let len = 1 + rng.next_u64() as usize % 3000;
                    Op::Append(f.clone(), rng.bytes(len))
                }
                7 | 8 if !files.is_empty() => {
                    Op::Unlink(files[rng.next_u64() as usize % files.len()].clone())
                }
                10 if !files.is_empty() => {
                    let f = &files[rng.next_u64() as usize % files.len()];
                    let g = &files[rng.next_u64() as usize % files.len()];
                    if g != f && rng.next_u64().is_multiple_of(2) {
                        Op::Rename(f.clone(), g.clone()) // replaces g
                    } else {
                        Op::Rename(f.clone(), format!("{d}/r{fresh}"))
                    }
                }
                11 if dirs.len() > 2 => {
                    let s = &dirs[1 + rng.next_u64() as usize % (dirs.len() - 1)];
                    if d == s || d.starts_with(&format!("{s}/")) {
                        Op::Create(format!("{d}/f{fresh}"))
                    } else {
                        Op::Rename(s.clone(), format!("{d}/r{fresh}"))
                    }
                }
                12 if !files.is_empty() => {
                    Op::Truncate0(files[rng.next_u64() as usize % files.len()].clone())
                }
                _ => {
                    let empty: Vec<&String> = dirs
                        .iter()
                        .filter(|d| {
                            !d.is_empty() && !t.keys().any(|k| k.starts_with(&format!("{d}/")))
                        })
                        .collect();
                    match empty.first() {
                        Some(d) => Op::Rmdir((*d).clone()),
                        None => Op::Create(format!("{d}/f{fresh}")),
                    }
                }
            }
        };
        match &op {
            Op::Mkdir(p) => {
                t.insert(p.clone(), None);
            }
            Op::Create(p) => {
                t.insert(p.clone(), Some(Vec::new()));
            }
            Op::Append(p, d) => {
                if let Some(Some(c)) = t.get_mut(p) {
                    c.extend_from_slice(d);
                }
            }
            Op::Unlink(p) | Op::Rmdir(p) => {
                t.remove(p);
            }
            Op::Rename(from, to) => {
                t.remove(to);
                let moved: Vec<String> = t
                    .keys()
                    .filter(|k| *k == from || k.starts_with(&format!("{from}/")))
                    .cloned()
                    .collect();
                for k in moved {
                    let v = t.remove(&k).unwrap();
                    t.insert(format!("{to}{}", &k[from.len()..]), v);
                }
            }
            Op::Truncate0(p) => {
                t.insert(p.clone(), Some(Vec::new()));
            }
            Op::Fsync(_) => {}
        }
        ops.push(op);
        states.push(t.clone());
    }
    (ops, states)
}

fn lookup<D: BlockDevice>(fs: &mut Ext4<D>, p: &str) -> Result<Ino, Error> {
    fs.lookup_path(p.as_bytes())
}

fn apply<D: BlockDevice>(fs: &mut Ext4<D>, op: &Op) -> Result<(), Error> {
    match op {
        Op::Mkdir(p) | Op::Create(p) => {
            let (d, name) = parent(p);
            let dir = lookup(fs, d)?;
            if matches!(op, Op::Mkdir(_)) {
                fs.mkdir(dir, name.as_bytes(), 0o755, 0, 0)?;
            } else {
                fs.create(dir, name.as_bytes(), 0o644, 0, 0)?;
            }
        }
        Op::Append(p, data) => {
            let ino = lookup(fs, p)?;
            let size = fs.getattr(ino)?.size;
            assert_eq!(fs.write(ino, size, data)?, data.len());
        }
        Op::Unlink(p) | Op::Rmdir(p) => {
            let (d, name) = parent(p);
            let dir = lookup(fs, d)?;
            if matches!(op, Op::Unlink(_)) {
                fs.unlink(dir, name.as_bytes())?;
            } else {
                fs.rmdir(dir, name.as_bytes())?;
            }
        }
        Op::Rename(from, to) => {
            let (fd, fname) = parent(from);
            let (td, tname) = parent(to);
            let (fdir, tdir) = (lookup(fs, fd)?, lookup(fs, td)?);
            fs.rename(
                fdir,
                fname.as_bytes(),
                tdir,
                tname.as_bytes(),
                RenameFlags::default(),
            )?;
        }
        Op::Truncate0(p) => {
            let ino = lookup(fs, p)?;
            fs.truncate(ino, 0)?;
        }
        Op::Fsync(p) => {
            let ino = lookup(fs, p)?;
            fs.fsync(ino)?;
        }
    }
    Ok(())
}

/// What a run got through before the power went: operations completed, and the number of
/// operations before the last completed fsync.
struct Progress {
    done: usize,
    fsynced: usize,
}

/// Mount, run the workload, close; stops at the first error (the cut). True when it got
/// through the close. With `post`, file data is written back in the background after every
/// operation.
fn run<D: BlockDevice>(dev: &mut D, ops: &[Op], post: bool) -> (Progress, bool) {
    let mut p = Progress {
        done: 0,
        fsynced: 0,
    };
    let Ok(mut fs) = Ext4::open_rw(&mut *dev, &Options::default()) else {
        return (p, false);
    };
    fs.set_clock(CLOCK);
    for op in ops {
        if apply(&mut fs, op).is_err() {
            return (p, false);
        }
        p.done += 1;
        if post && fs.start_write_back(1, 4).is_err() {
            return (p, false);
        }
        if matches!(op, Op::Fsync(_)) {
            p.fsynced = p.done;
        }
    }
    let closed = fs.close().is_ok();
    (p, closed)
}

/// Replay a crashed image with a read-write mount, check it with e2fsck and against the
/// model states `lo..=hi`. Returns the state index it matched.
fn check(dir: &Path, what: &str, crashed: Vec<u8>, states: &[Tree], lo: usize, hi: usize) {
    // Kept for a look at a failure.
    fs::write(dir.join("crashed.img"), &crashed).unwrap();
    let fs = match Ext4::open_rw(MemDisk::new(crashed), &Options::default()) {
        Ok(fs) => fs,
        Err(e) => panic!("{what}: the mount after the crash refused: {e:?}"),
    };
    let out = fs.close().unwrap().into_vec().unwrap();
    let p = dir.join("replayed.img");
    fs::write(&p, &out).unwrap();
    if let Err(report) = e2fsck(&p) {
        panic!("{what}: e2fsck after replay: {report}");
    }
    let t = engine_tree(&out);
    if !(lo..=hi).any(|k| states[k] == t) {
        let missing: Vec<&String> = states[lo].keys().filter(|k| !t.contains_key(*k)).collect();
        panic!(
            "{what}: the replayed tree is none of the states {lo}..={hi} \
             (fsynced state has {} entries, replay {}; missing from the fsynced state: {missing:?})",
            states[lo].len(),
            t.len()
        );
    }
}

fn base_image(name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let dir = ext4img::tmpdir(name);
    let img = mkfs(&dir, "base.img", 1024, 8, &[]);
    let base = fs::read(&img).unwrap();
    (dir, base)
}

fn total_writes(base: &[u8], ops: &[Op], states: &[Tree], post: bool) -> u64 {
    let mut dev = QueueDisk::new(ReorderDisk::new(MemDisk::new(base.to_vec())), 8);
    let (p, closed) = run(&mut dev, ops, post);
    assert!(closed && p.done == ops.len());
    assert_eq!(dev.started > 0, post, "posted writes");
    let dev = dev.into_inner();
    let n = dev.writes();
    // The uncut run ends in the final state.
    let bytes = dev.crash(0).unwrap().into_vec().unwrap();
    assert!(engine_tree(&bytes) == states[ops.len()]);
    n
}

/// Cut at every write index `n` of the run: `crashed(n)` runs the workload on a device cut
/// after `n` writes and returns the progress and the image the cut left.
fn cut_everywhere(
    name: &str,
    post: bool,
    crashed: impl Fn(&[u8], &[Op], u64) -> (Progress, Vec<u8>),
) {
    let (dir, base) = base_image(name);
    let (ops, states) = workload(200, 0xC0FFEE);
    let total = total_writes(&base, &ops, &states, post);
    let fsyncs = ops.iter().filter(|o| matches!(o, Op::Fsync(_))).count();
    // The workload exercises every kind of operation.
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, o) in ops.iter().enumerate() {
        let k = match o {
            Op::Mkdir(_) => "mkdir",
            Op::Create(_) => "create",
            Op::Append(..) => "append",
            Op::Unlink(_) => "unlink",
            Op::Rmdir(_) => "rmdir",
            Op::Rename(from, _) if states[i].get(from) == Some(&None) => "rename dir",
            Op::Rename(_, to) if states[i].contains_key(to) => "rename over a file",
            Op::Rename(..) => "rename file",
            Op::Truncate0(_) => "truncate",
            Op::Fsync(_) => "fsync",
        };
        *kinds.entry(k).or_default() += 1;
    }
    assert_eq!(kinds.len(), 10, "{kinds:?}");
    assert!(
        fsyncs >= 10 && total > 100,
        "{fsyncs} fsyncs, {total} writes"
    );
    let mut checked = 0;
    for n in 0..total {
        let (p, image) = crashed(&base, &ops, n);
        // The operation that was cut may have committed (its commit, then the error).
        let hi = (p.done + 1).min(ops.len());
        check(
            &dir,
            &format!("{name}: cut after {n} writes"),
            image,
            &states,
            p.fsynced,
            hi,
        );
        checked += 1;
    }
    println!("{name}: {checked} cut points checked ({total} writes; operations {kinds:?})");
    assert_eq!(checked, total);
}

#[test]
fn cut_after_every_write_faulty_disk() {
    // The same steps as `cut_after_every_write_reordering_disk`: the two disks share no
    // trait for cutting power or for the image left after the cut, so each names its own.
    cut_everywhere("crash-faulty", false, |base, ops, n| {
        let mut dev = FaultyDisk::new(MemDisk::new(base.to_vec()));
        dev.cut_power_after_writes(n);
        let (p, closed) = run(&mut dev, ops, false);
        assert!(!closed, "cut after {n} writes but the run completed");
        (p, dev.into_inner().into_vec().unwrap())
    });
}

#[test]
fn cut_after_every_write_reordering_disk() {
    // The same steps as `cut_after_every_write_faulty_disk`: the two disks share no trait
    // for cutting power or for the image left after the cut, so each names its own.
    cut_everywhere("crash-reorder", false, |base, ops, n| {
        let mut dev = ReorderDisk::new(MemDisk::new(base.to_vec()));
        dev.cut_power_after_writes(n);
        let (p, closed) = run(&mut dev, ops, false);
        assert!(!closed, "cut after {n} writes but the run completed");
        (p, dev.crash(n).unwrap().into_vec().unwrap())
    });
}

#[test]
fn cut_after_every_write_with_background_write_back() {
    cut_everywhere("crash-posted", true, |base, ops, n| {
        let mut inner = ReorderDisk::new(MemDisk::new(base.to_vec()));
        inner.cut_power_after_writes(n);
        let mut dev = QueueDisk::new(inner, 8);
        let (p, closed) = run(&mut dev, ops, true);
        assert!(!closed, "cut after {n} writes but the run completed");
        // Writes still held by the queue when the power went never reach the medium.
        let inner = dev.into_inner();
        (p, inner.crash(n).unwrap().into_vec().unwrap())
    });
}
