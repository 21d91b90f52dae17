//! Power cuts during dedup merges and share breaks. Files with identical contents are merged
//! (`share_new`, `share_add`), then shares are broken by a write, a truncate to zero and a
//! write that drops a store's last reference, and a last name is unlinked; each step is
//! followed by a sync. The power is cut at every write of the run, on a disk that loses the
//! writes after the cut and on one that also reorders the unflushed ones, with a block cache
//! small enough that copying a share commits part-way (the copy is then an orphan).
//!
//! After each cut a read-write mount replays the journal and frees orphans, `close` writes it
//! back, and the image must pass `e2fsck -fn`, read like the model after the last completed
//! step or the one cut (every file one of its allowed versions), and have every store's
//! `trusted.pvfs.refs` equal to the number of stubs naming it, with no store left unnamed.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::{BlockDevice, FaultyDisk, MemDisk, ReorderDisk};
use pvfs_fs::ext4::{Ext4, Ino, Options, ROOT_INO};
use pvfs_tests::ext4img::{self, Rng};
use pvfs_tests::wimg::{e2fsck, mkfs, CLOCK};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

type Files = BTreeMap<String, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    /// Make the file the first stub of a new store.
    ShareNew(&'static str),
    /// Make the file a stub of the store of the other (a stub).
    ShareAdd(&'static str, &'static str),
    Write(&'static str, u64, &'static [u8]),
    Truncate0(&'static str),
    Unlink(&'static str),
}

const OPS: [Op; 9] = [
    Op::ShareNew("a"),
    Op::ShareAdd("b", "a"),
    Op::ShareAdd("c", "a"),
    Op::ShareNew("d"),
    Op::ShareAdd("e", "d"),
    Op::Write("b", 100, b"BBBB"),
    Op::Truncate0("c"),
    Op::Write("e", 0, b"E"),
    Op::Unlink("a"),
];

/// A small cache: copying a 40 KiB share commits part-way.
fn opts() -> Options {
    Options {
        cache_bytes: 24 << 10,
    }
}

fn initial() -> Files {
    let mut rng = Rng::new(0xDED0);
    let x = rng.bytes(40_000);
    let y = rng.bytes(3000);
    let mut f = Files::new();
    for n in ["a", "b", "c"] {
        f.insert(n.into(), x.clone());
    }
    for n in ["d", "e"] {
        f.insert(n.into(), y.clone());
    }
    f.insert("u".into(), rng.bytes(5000));
    f
}

/// `states[k]`: the files after the first `k` operations.
fn states() -> Vec<Files> {
    let mut t = initial();
    let mut out = vec![t.clone()];
    for op in &OPS {
        match op {
            Op::ShareNew(_) | Op::ShareAdd(..) => {}
            Op::Write(n, off, d) => {
                let f = t.get_mut(*n).unwrap();
                f[*off as usize..*off as usize + d.len()].copy_from_slice(d);
            }
            Op::Truncate0(n) => {
                t.insert((*n).into(), Vec::new());
            }
            Op::Unlink(n) => {
                t.remove(*n);
            }
        }
        out.push(t.clone());
    }
    out
}

fn base_image(dir: &Path) -> Vec<u8> {
    let img = mkfs(dir, "base.img", 1024, 8, &[]);
    let mut fs = Ext4::open_rw(MemDisk::new(fs::read(&img).unwrap()), &opts()).unwrap();
    fs.set_clock(CLOCK);
    for (n, d) in initial() {
        let ino = fs.create(ROOT_INO, n.as_bytes(), 0o644, 0, 0).unwrap();
        assert_eq!(fs.write(ino, 0, &d).unwrap(), d.len());
    }
    fs.close().unwrap().into_vec().unwrap()
}

fn apply<D: BlockDevice>(fs: &mut Ext4<D>, op: &Op) -> pvfs_fs::ext4::Result<()> {
    let ino = |fs: &mut Ext4<D>, n: &str| fs.lookup(ROOT_INO, n.as_bytes());
    match op {
        Op::ShareNew(n) => {
            let i = ino(fs, n)?;
            fs.share_new(i)?;
        }
        Op::ShareAdd(n, other) => {
            let (i, o) = (ino(fs, n)?, ino(fs, other)?);
            let store = fs.shared_store(o)?.unwrap();
            fs.share_add(i, store)?;
        }
        Op::Write(n, off, d) => {
            let i = ino(fs, n)?;
            assert_eq!(fs.write(i, *off, d)?, d.len());
        }
        Op::Truncate0(n) => {
            let i = ino(fs, n)?;
            fs.truncate(i, 0)?;
        }
        Op::Unlink(n) => fs.unlink(ROOT_INO, n.as_bytes())?,
    }
    fs.sync()
}

/// Run the operations; the count completed (synced), and whether it got through the close.
fn run<D: BlockDevice>(dev: &mut D) -> (usize, bool) {
    let Ok(mut fs) = Ext4::open_rw(&mut *dev, &opts()) else {
        return (0, false);
    };
    fs.set_clock(CLOCK);
    let mut done = 0;
    for op in &OPS {
        if apply(&mut fs, op).is_err() {
            return (done, false);
        }
        done += 1;
    }
    (done, fs.close().is_ok())
}

/// The files of the root (not `lost+found` or `.pvfs`), read through the engine, and the
/// reference counts found: stubs per store, and each store's recorded count.
fn read_back(bytes: &[u8]) -> (Files, BTreeMap<Ino, u32>, BTreeMap<Ino, u32>) {
    let mut fs = Ext4::open(MemDisk::borrowed(bytes)).unwrap();
    let mut files = Files::new();
    let mut stubs: BTreeMap<Ino, u32> = BTreeMap::new();
    for e in fs.read_dir(ROOT_INO).unwrap() {
        let name = String::from_utf8(e.name.clone()).unwrap();
        if [".", "..", "lost+found", ".pvfs"].contains(&name.as_str()) {
            continue;
        }
        let size = fs.getattr(e.ino).unwrap().size as usize;
        let mut b = vec![0u8; size];
        assert_eq!(fs.read(e.ino, 0, &mut b).unwrap(), size, "{name}");
        files.insert(name, b);
        if let Some(s) = fs.shared_store(e.ino).unwrap() {
            *stubs.entry(s).or_default() += 1;
        }
    }
    let mut recorded = BTreeMap::new();
    if let Ok(dir) = fs.lookup_path(b"/.pvfs/shared") {
        for e in fs.read_dir(dir).unwrap() {
            if e.name == b"." || e.name == b".." {
                continue;
            }
            let v = fs.getxattr(e.ino, b"trusted.pvfs.refs").unwrap();
            recorded.insert(e.ino, u32::from_le_bytes(v.try_into().unwrap()));
        }
    }
    (files, stubs, recorded)
}

/// Whether the superblock on the medium records an orphan (`s_last_orphan`, or the orphan
/// file's `orphan_present` flag): a cut between a commit made part-way through copying a
/// share and the switch leaves the copy as one.
fn orphan_on_medium(img: &[u8]) -> bool {
    let sb = &img[1024..2048];
    let le32 = |o: usize| u32::from_le_bytes(sb[o..o + 4].try_into().unwrap());
    le32(0xE8) != 0 || le32(0x64) & 0x1_0000 != 0
}

/// Check a crashed image (see the module doc); says whether it held an orphan.
fn check(dir: &Path, what: &str, crashed: Vec<u8>, states: &[Files], lo: usize, hi: usize) -> bool {
    fs::write(dir.join("crashed.img"), &crashed).unwrap();
    let orphan = orphan_on_medium(&crashed);
    let fs = Ext4::open_rw(MemDisk::new(crashed), &Options::default())
        .unwrap_or_else(|e| panic!("{what}: the mount after the crash refused: {e:?}"));
    let out = fs.close().unwrap().into_vec().unwrap();
    let p = dir.join("replayed.img");
    fs::write(&p, &out).unwrap();
    if let Err(report) = e2fsck(&p) {
        panic!("{what}: e2fsck after replay: {report}");
    }
    let (files, stubs, recorded) = read_back(&out);
    assert!(
        (lo..=hi).any(|k| states[k] == files),
        "{what}: the files are none of the states {lo}..={hi}"
    );
    assert_eq!(
        stubs, recorded,
        "{what}: stubs per store vs recorded counts"
    );
    orphan
}

fn cut_everywhere(name: &str, crashed: impl Fn(&[u8], u64) -> (usize, Vec<u8>)) {
    let dir = ext4img::tmpdir(name);
    let base = base_image(&dir);
    let states = states();
    // The uncut run: every operation, the final state, no store left.
    let mut dev = ReorderDisk::new(MemDisk::new(base.clone()));
    let (done, closed) = run(&mut dev);
    assert!(closed && done == OPS.len());
    let total = dev.writes();
    let img = dev.crash(0).unwrap().into_vec().unwrap();
    let (files, stubs, recorded) = read_back(&img);
    assert_eq!(files, states[OPS.len()]);
    fs::write(dir.join("final.img"), &img).unwrap();
    assert_eq!(stubs, recorded, "the uncut run's stubs per store");
    assert!(total > 100, "{total} writes");
    let mut orphans = 0;
    for n in 0..total {
        let (done, image) = crashed(&base, n);
        let hi = (done + 1).min(OPS.len());
        let what = format!("{name}: cut after {n} writes");
        orphans += usize::from(check(&dir, &what, image, &states, done, hi));
    }
    println!("{name}: {total} cut points checked, {orphans} with a share's copy as an orphan");
    assert!(orphans > 0, "no cut fell inside a share's copy");
}

#[test]
fn dedup_cut_after_every_write_faulty_disk() {
    cut_everywhere("dedup-crash-faulty", |base, n| {
        let mut dev = FaultyDisk::new(MemDisk::new(base.to_vec()));
        dev.cut_power_after_writes(n);
        let (done, closed) = run(&mut dev);
        assert!(!closed, "cut after {n} writes but the run completed");
        (done, dev.into_inner().into_vec().unwrap())
    });
}

#[test]
fn dedup_cut_after_every_write_reordering_disk() {
    cut_everywhere("dedup-crash-reorder", |base, n| {
        let mut dev = ReorderDisk::new(MemDisk::new(base.to_vec()));
        dev.cut_power_after_writes(n);
        let (done, closed) = run(&mut dev);
        assert!(!closed, "cut after {n} writes but the run completed");
        (done, dev.crash(n).unwrap().into_vec().unwrap())
    });
}
