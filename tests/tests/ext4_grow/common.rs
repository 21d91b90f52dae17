//! Helpers shared by `ext4_grow.rs` (layouts against e2fsprogs and Linux) and
//! `ext4_grow_cut.rs` (power cuts): files written around a grow, and the power-cut harness
//! [`cut_every_write`].
#![allow(dead_code, reason = "shared by two test files, each using a subset")]

use pvfs_fs::block::{BlockDevice, FaultyDisk, FileDisk, MemDisk, ReorderDisk};
use pvfs_fs::ext4::{Ext4, Ino, Options, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{e2fsck, e2fsck_clean, CLOCK};
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Files `name → contents` written before a grow (and others after it).
pub type Files = Vec<(String, Vec<u8>)>;

pub fn write_files<D: BlockDevice>(fs: &mut Ext4<D>, files: &Files) {
    for (name, data) in files {
        let ino = fs.create(ROOT_INO, name.as_bytes(), 0o644, 0, 0).unwrap();
        assert_eq!(fs.write(ino, 0, data).unwrap(), data.len());
    }
}

pub fn files(tag: &str, n: usize, size: usize, seed: u64) -> Files {
    let mut rng = ext4img::Rng::new(seed);
    (0..n)
        .map(|i| (format!("{tag}{i}"), rng.bytes(size)))
        .collect()
}

pub fn read_file<D: BlockDevice>(fs: &mut Ext4<D>, name: &str) -> Vec<u8> {
    let ino: Ino = fs.lookup(ROOT_INO, name.as_bytes()).unwrap();
    let size = fs.getattr(ino).unwrap().size as usize;
    let mut b = vec![0u8; size];
    assert_eq!(fs.read(ino, 0, &mut b).unwrap(), size);
    b
}

pub fn open_rw<D: BlockDevice>(dev: D) -> Ext4<D> {
    let mut fs = Ext4::open_rw(dev, &Options::default()).unwrap();
    fs.set_clock(CLOCK);
    fs
}

pub fn extend(img: &Path, bytes: u64) {
    fs::OpenOptions::new()
        .write(true)
        .open(img)
        .unwrap()
        .set_len(bytes)
        .unwrap();
}

/// Writes `data` into the image's file system, extends the image file to `bytes` and grows
/// the file system to `want` blocks, then closes it and checks it with e2fsck. Returns the
/// journal transactions the grow took and the groups it ended with.
pub fn grow_image_with(img: &Path, data: &Files, bytes: u64, want: u64) -> (u64, usize) {
    let mut fs = open_rw(FileDisk::open_rw(img).unwrap());
    write_files(&mut fs, data);
    fs.close().unwrap();
    extend(img, bytes);
    let seq = journal_sequence(img);
    let mut fs = open_rw(FileDisk::open_rw(img).unwrap());
    assert_eq!(fs.grow(want).unwrap(), want);
    let groups = fs.groups().len();
    fs.close().unwrap();
    e2fsck_clean(img);
    (journal_sequence(img) - seq, groups)
}

/// Asserts that every file of `data` reads back the same from `fs`.
pub fn assert_files<D: BlockDevice>(fs: &mut Ext4<D>, data: &Files, what: &str) {
    for (name, d) in data {
        assert!(read_file(fs, name) == *d, "{what}{name}");
    }
}

/// After a grow that failed and changed nothing: files written at the old size survive the
/// engine's close, the image it leaves (`dir/after.img`, returned) is e2fsck-clean and still
/// has `old` blocks.
pub fn check_after_failed_grow(
    mut fs: Ext4<FaultyDisk<MemDisk<'_>>>,
    dir: &Path,
    old: u64,
) -> PathBuf {
    let data = files("kept", 2, 10_000, 4);
    write_files(&mut fs, &data);
    let out = fs.close().unwrap().into_inner().into_vec().unwrap();
    let p = dir.join("after.img");
    fs::write(&p, &out).unwrap();
    e2fsck_clean(&p);
    let mut ro = Ext4::open(MemDisk::new(out)).unwrap();
    assert_eq!(ro.superblock().blocks_count, old);
    assert_files(&mut ro, &data, "");
    p
}

/// A number from `dumpe2fs -h`'s line `key` (decimal or `0x` hexadecimal).
pub fn head_num(dump: &str, key: &str) -> Option<u64> {
    let v = dump.lines().find_map(|l| l.strip_prefix(key))?.trim();
    match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => v.parse().ok(),
    }
}

/// The journal's next transaction sequence number (`dumpe2fs -h`): the difference across
/// a run is the number of transactions it committed.
pub fn journal_sequence(img: &Path) -> u64 {
    head_num(&ext4img::dumpe2fs(img), "Journal sequence:").expect("a journal sequence")
}

/// `First meta block group` of an image, if it is meta_bg.
pub fn first_meta_bg(img: &Path) -> Option<u64> {
    let dump = ext4img::dumpe2fs(img);
    dump.lines()
        .find(|l| l.starts_with("Filesystem features:"))
        .is_some_and(|l| l.split_whitespace().any(|f| f == "meta_bg"))
        .then(|| head_num(&dump, "First meta block group:").unwrap_or(0))
}

/// Mount, grow to `want`, close; false at the first error (the cut).
pub fn grow_run<D: BlockDevice>(dev: D, want: u64) -> bool {
    let Ok(mut fs) = Ext4::open_rw(dev, &Options::default()) else {
        return false;
    };
    fs.set_clock(CLOCK);
    fs.grow(want).is_ok() && fs.close().is_ok()
}

/// The engine's view after a cut: (blocks, meta_bg).
pub type Shape = (u64, bool);

/// What [`cut_every_write`] saw.
pub struct Cuts {
    /// The size before the grow and the size it reaches uncut.
    pub old: u64,
    pub grown: u64,
    /// How many volumes after a cut (lost writes and reordered ones) had each shape.
    pub shapes: BTreeMap<Shape, u32>,
}

impl Cuts {
    /// The shapes seen.
    pub fn seen(&self) -> BTreeSet<Shape> {
        self.shapes.keys().copied().collect()
    }
}

/// Cut the power at every `stride`th write of a grow of `img` (with files) to `bytes` (the
/// writes lost, or with unflushed writes reordered), and check that the volume replayed by
/// the engine is e2fsck-clean, has the old size or the new one, and holds the data; and
/// that e2fsck's own replay of the same log is clean and has the same size.
pub fn cut_every_write(dir: &Path, img: &Path, bytes: u64, stride: u64) -> Cuts {
    let data = files("f", 6, 30_000, 3);
    let mut fs = open_rw(pvfs_fs::block::FileDisk::open_rw(img).unwrap());
    write_files(&mut fs, &data);
    let old = fs.superblock().blocks_count;
    let block = u64::from(fs.superblock().block_size());
    fs.close().unwrap();
    extend(img, bytes);
    let base = fs::read(img).unwrap();
    let want = bytes / block;

    // The uncut run: its writes, and the size it reaches.
    let mut dev = ReorderDisk::new(MemDisk::new(base.clone()));
    assert!(grow_run(&mut dev, want));
    let total = dev.writes();
    let grown = {
        let out = dev.crash(0).unwrap().into_vec().unwrap();
        Ext4::open(MemDisk::new(out))
            .unwrap()
            .superblock()
            .blocks_count
    };
    assert!(grown > old && total > 10, "{grown} blocks, {total} writes");

    // The cuts are independent: spread over the host's CPUs, each worker with its own
    // scratch files.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    let cuts: Vec<u64> = (0..total)
        .filter(|n| n % stride.max(1) == 0 || *n + 1 == total)
        .collect();
    let (data, base) = (&data, &base);
    let mut shapes = BTreeMap::new();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|w| {
                let mine: Vec<u64> = cuts.iter().copied().filter(|n| n % workers == w).collect();
                scope.spawn(move || {
                    let mut shapes = BTreeMap::new();
                    for n in mine {
                        for shape in cut_once(dir, w, base, want, data, (old, grown), n) {
                            *shapes.entry(shape).or_insert(0u32) += 1;
                        }
                    }
                    shapes
                })
            })
            .collect();
        for h in handles {
            for (shape, k) in h.join().unwrap() {
                *shapes.entry(shape).or_insert(0) += k;
            }
        }
    });
    println!("{total} writes, cut every {stride}: {shapes:?} ((blocks, meta_bg): volumes)");
    Cuts { old, grown, shapes }
}

/// One cut after `n` writes of the grow of `base` to `want` blocks, with the writes lost and
/// with unflushed writes reordered: the shape each leaves (see [`cut_every_write`]). Scratch
/// files carry worker `w`'s number.
fn cut_once(
    dir: &Path,
    w: u64,
    base: &[u8],
    want: u64,
    data: &[(String, Vec<u8>)],
    (old, grown): (u64, u64),
    n: u64,
) -> [Shape; 2] {
    let check = |what: &str, crashed: Vec<u8>| -> Shape {
        let fs = match Ext4::open_rw(MemDisk::new(crashed), &Options::default()) {
            Ok(fs) => fs,
            Err(e) => panic!("{what}: the mount after the cut refused: {e:?}"),
        };
        let out = fs.close().unwrap().into_vec().unwrap();
        let p = dir.join(format!("replayed-{w}.img"));
        fs::write(&p, &out).unwrap();
        if let Err(report) = e2fsck(&p) {
            panic!("{what}: e2fsck after replay: {report}");
        }
        let mut fs = Ext4::open(MemDisk::new(out)).unwrap();
        let size = fs.superblock().blocks_count;
        assert!(size == old || size == grown, "{what}: {size} blocks");
        for (name, d) in data {
            assert!(read_file(&mut fs, name) == *d, "{what}: {name}");
        }
        (size, fs.superblock().feature_incompat & 0x10 != 0)
    };
    let mut dev = FaultyDisk::new(MemDisk::new(base.to_vec()));
    dev.cut_power_after_writes(n);
    assert!(
        !grow_run(&mut dev, want),
        "cut after {n} writes, yet it completed"
    );
    let crashed = dev.into_inner().into_vec().unwrap();
    // e2fsprogs replays the same log to the same result.
    let p = dir.join(format!("e2fsck-replay-{w}.img"));
    fs::write(&p, &crashed).unwrap();
    let st = Command::new("e2fsck")
        .args(["-p", "-E", "journal_only"])
        .arg(&p)
        .output()
        .unwrap();
    assert!(st.status.code().is_some_and(|c| c <= 1), "{st:?}");
    if let Err(report) = e2fsck(&p) {
        panic!("cut after {n}: e2fsck after its own replay: {report}");
    }
    let theirs = Ext4::open(MemDisk::new(fs::read(&p).unwrap())).unwrap();
    let theirs: Shape = (
        theirs.superblock().blocks_count,
        theirs.superblock().feature_incompat & 0x10 != 0,
    );
    let lost = check(&format!("lost writes: cut after {n}"), crashed);
    assert_eq!(
        theirs, lost,
        "cut after {n}: e2fsck's replay and the engine's"
    );
    let mut dev = ReorderDisk::new(MemDisk::new(base.to_vec()));
    dev.cut_power_after_writes(n);
    assert!(!grow_run(&mut dev, want));
    let reordered = check(
        &format!("reordered writes: cut after {n}"),
        dev.crash(n).unwrap().into_vec().unwrap(),
    );
    [lost, reordered]
}
