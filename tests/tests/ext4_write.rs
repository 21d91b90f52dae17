//! ext4 write path: images made by `mkfs.ext4` (default features, 4k and 1k
//! blocks) are changed through the engine (mkdir, create, write, unlink), written back, and
//! must pass `e2fsck -fn`; contents are checked with `debugfs` and by reading back.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::{FileDisk, MemDisk};
use pvfs_fs::ext4::{Error, Ext4, FileType, Options, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{debugfs, dir_names, e2fsck_clean, mkfs, open_rw};
use std::fs;
use std::path::Path;
use std::process::Command;

fn pattern(seed: u64, n: usize) -> Vec<u8> {
    ext4img::Rng::new(seed).bytes(n)
}

fn basic_ops(block: u32) {
    let dir = ext4img::tmpdir(&format!("write-basic-{block}"));
    let img = mkfs(&dir, "a.img", block, 32, &[]);
    let small = pattern(1, 10_000);
    let big = pattern(2, 300_000);
    {
        let mut fs = open_rw(&img);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 1000, 1000).unwrap();
        let sub = fs.mkdir(d, b"sub", 0o700, 0, 0).unwrap();
        let f = fs.create(d, b"f", 0o644, 1000, 1000).unwrap();
        assert_eq!(fs.write(f, 0, &small[..4000]).unwrap(), 4000);
        assert_eq!(fs.write(f, 4000, &small[4000..]).unwrap(), 6000);
        let g = fs.create(ROOT_INO, b"big", 0o600, 0, 0).unwrap();
        fs.write(g, 0, &big).unwrap();
        // Read back before anything reached the disk: the bypass path must see dirty blocks.
        let mut back = vec![0u8; big.len()];
        assert_eq!(fs.read(g, 0, &mut back).unwrap(), big.len());
        assert!(back == big, "dirty data not read back");
        assert_eq!(fs.create(d, b"f", 0o644, 0, 0).unwrap_err(), Error::Exists);
        // Many entries: the directory grows by new blocks.
        for i in 0..60 {
            let name = format!("file-with-a-fairly-long-name-{i:04}");
            let x = fs.create(sub, name.as_bytes(), 0o644, 0, 0).unwrap();
            fs.write(x, 0, name.as_bytes()).unwrap();
        }
        for i in (0..60).step_by(3) {
            let name = format!("file-with-a-fairly-long-name-{i:04}");
            fs.unlink(sub, name.as_bytes()).unwrap();
        }
        let gone = fs.create(ROOT_INO, b"gone", 0o644, 0, 0).unwrap();
        fs.write(gone, 0, &big[..50_000]).unwrap();
        let free_before = fs.statfs().free_blocks;
        fs.unlink(ROOT_INO, b"gone").unwrap();
        assert!(fs.statfs().free_blocks > free_before);
        assert_eq!(fs.lookup(ROOT_INO, b"gone").unwrap_err(), Error::NotFound);
        assert!(matches!(
            fs.unlink(ROOT_INO, b"d").unwrap_err(),
            Error::IsDir { .. }
        ));
        assert_eq!(fs.getattr(d).unwrap().nlink, 3);
        assert_eq!(fs.rmdir(d, b"sub").unwrap_err(), Error::NotEmpty);
        assert!(matches!(
            fs.rmdir(d, b"f").unwrap_err(),
            Error::NotDir { .. }
        ));
        let e = fs.mkdir(d, b"e", 0o755, 0, 0).unwrap();
        assert_eq!(fs.getattr(d).unwrap().nlink, 4);
        let inodes = fs.statfs().free_inodes;
        fs.rmdir(d, b"e").unwrap();
        assert_eq!(fs.getattr(d).unwrap().nlink, 3);
        assert_eq!(fs.statfs().free_inodes, inodes + 1);
        assert_eq!(fs.lookup(d, b"e").unwrap_err(), Error::NotFound);
        assert!(!fs.getattr(e).is_ok_and(|a| a.nlink != 0));
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(debugfs(&img, "cat /d/f"), small);
    assert_eq!(debugfs(&img, "cat /big"), big);
    let stat = String::from_utf8_lossy(&debugfs(&img, "stat /d/sub")).into_owned();
    assert!(stat.contains("Mode:  0700"), "{stat}");
    // Read back with the engine, read-only, from a fresh mount.
    let mut fs = Ext4::open(MemDisk::new(fs::read(&img).unwrap())).unwrap();
    let sub = fs.lookup_path(b"/d/sub").unwrap();
    let names = dir_names(&mut fs, sub);
    assert_eq!(names.len(), 2 + 40);
    for i in 0..60 {
        let name = format!("file-with-a-fairly-long-name-{i:04}");
        let r = fs.lookup(sub, name.as_bytes());
        if i % 3 == 0 {
            assert_eq!(r.unwrap_err(), Error::NotFound);
        } else {
            let ino = r.unwrap();
            let mut b = vec![0u8; 100];
            let n = fs.read(ino, 0, &mut b).unwrap();
            assert_eq!(&b[..n], name.as_bytes());
        }
    }
    let fino = fs.lookup_path(b"/d/f").unwrap();
    let a = fs.getattr(fino).unwrap();
    assert_eq!(
        (a.kind, a.size, a.uid, a.mode & 0o7777),
        (FileType::Regular, 10_000, 1000, 0o644)
    );
    assert_eq!(a.mtime.nsec, 123_456_789);
}

#[test]
fn write_ops_4k_pass_e2fsck() {
    basic_ops(4096);
}

#[test]
fn write_ops_1k_pass_e2fsck() {
    basic_ops(1024);
}

/// Files spread over many groups: `BLOCK_UNINIT` groups get their bitmaps built.
#[test]
fn allocation_initializes_uninit_groups() {
    let dir = ext4img::tmpdir("write-uninit");
    let img = mkfs(&dir, "u.img", 1024, 64, &[]);
    let uninit_before;
    {
        let mut fs = open_rw(&img);
        uninit_before = fs.groups().iter().filter(|g| g.flags & 2 != 0).count();
        assert!(uninit_before > 0, "mkfs made no BLOCK_UNINIT group");
        let data = pattern(3, 1 << 20);
        for i in 0..20 {
            let f = fs
                .create(ROOT_INO, format!("m{i}").as_bytes(), 0o644, 0, 0)
                .unwrap();
            fs.write(f, 0, &data).unwrap();
        }
        let after = fs.groups().iter().filter(|g| g.flags & 2 != 0).count();
        assert!(after < uninit_before, "no uninit group was initialized");
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(debugfs(&img, "cat /m19"), pattern(3, 1 << 20));
}

#[test]
fn read_write_mount_names_unsupported_features() {
    let dir = ext4img::tmpdir("write-policy");
    let img = mkfs(&dir, "q.img", 4096, 16, &["-O", "quota"]);
    let e = Ext4::open_rw(FileDisk::open_rw(&img).unwrap(), &Options::default())
        .err()
        .unwrap();
    assert_eq!(
        e,
        Error::UnsupportedFeature {
            name: "quota",
            bit: 0x100
        }
    );
    // A read-only mount works, and refuses writes.
    let mut fs = Ext4::open(FileDisk::open(&img).unwrap()).unwrap();
    assert!(matches!(
        fs.mkdir(ROOT_INO, b"x", 0o755, 0, 0).unwrap_err(),
        Error::ReadOnly { .. }
    ));
    // An ext3-layout image (no extent feature): new files would need block maps.
    let img = mkfs(&dir, "e3.img", 4096, 16, &["-O", "^extent,^64bit"]);
    let e = Ext4::open_rw(FileDisk::open_rw(&img).unwrap(), &Options::default())
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::ReadOnly { reason } if reason.contains("extent")),
        "{e:?}"
    );
}

/// Overwrites inside a file, a write past a gap (a new extent; the gap reads as zeros), and
/// a fifth extent, which no longer fits in the inode: the tree grows to depth 1 (one data
/// block and one extent block more). Checked against an in-memory model with debugfs,
/// ext4-view and the engine.
#[test]
fn overwrite_sparse_and_fifth_extent() {
    let dir = ext4img::tmpdir("write-sparse");
    let img = mkfs(&dir, "s.img", 4096, 32, &[]);
    let mut model = Vec::new();
    let put = |model: &mut Vec<u8>, off: usize, data: &[u8]| {
        if model.len() < off + data.len() {
            model.resize(off + data.len(), 0);
        }
        model[off..off + data.len()].copy_from_slice(data);
    };
    {
        let mut fs = open_rw(&img);
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        let steps: [(usize, usize, u64); 5] = [
            (0, 10_000, 10),
            (5_000, 2_000, 11),
            (200_000, 5_000, 12),
            (400_000, 70_000, 13),
            (1_000_000, 3, 14),
        ];
        for (off, len, seed) in steps {
            let d = pattern(seed, len);
            fs.write(f, off as u64, &d).unwrap();
            put(&mut model, off, &d);
        }
        let free = fs.statfs().free_blocks;
        assert_eq!(fs.write(f, 2_000_000, b"fifth").unwrap(), 5);
        put(&mut model, 2_000_000, b"fifth");
        assert_eq!(
            fs.statfs().free_blocks,
            free - 2,
            "data block + extent block"
        );
        fs.write(f, 1_000_001, b"xyz").unwrap();
        put(&mut model, 1_000_001, b"xyz");
        let mut back = vec![0u8; model.len() + 10];
        assert_eq!(fs.read(f, 0, &mut back).unwrap(), model.len());
        assert!(back[..model.len()] == model[..]);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert!(debugfs(&img, "cat /f") == model, "debugfs disagrees");
    let view = ext4_view::Ext4::load(Box::new(fs::read(&img).unwrap())).unwrap();
    assert!(view.read("/f").unwrap() == model, "ext4-view disagrees");
    let stat = String::from_utf8_lossy(&debugfs(&img, "stat /f")).into_owned();
    assert!(stat.contains(&format!("Size: {}", model.len())), "{stat}");
    assert!(stat.contains("(ETB0)"), "no extent tree block:\n{stat}");
}

/// A device that records the order of writes and flushes.
struct Recorder {
    inner: MemDisk<'static>,
    log: Vec<Option<Vec<u8>>>,
}

impl pvfs_fs::block::BlockDevice for Recorder {
    fn sector_size(&self) -> u32 {
        self.inner.sector_size()
    }
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), pvfs_fs::block::DevError> {
        self.inner.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), pvfs_fs::block::DevError> {
        self.log.push(Some(buf.to_vec()));
        self.inner.write(lba, buf, fua)
    }
    fn flush(&mut self) -> Result<(), pvfs_fs::block::DevError> {
        self.log.push(None);
        self.inner.flush()
    }
}

/// Nothing reaches the device before `sync`; then file data, a flush, the journal copies, a
/// flush, the commit block, the metadata home, a flush (then the journal marked empty).
#[test]
fn sync_orders_data_before_metadata() {
    let dir = ext4img::tmpdir("write-order");
    let img = mkfs(&dir, "o.img", 4096, 16, &[]);
    let dev = Recorder {
        inner: MemDisk::new(fs::read(&img).unwrap()),
        log: Vec::new(),
    };
    let mut fs = Ext4::open_rw(dev, &Options::default()).unwrap();
    // The mount itself marks the superblock in use, and commits that at once.
    let mount_writes = std::mem::take(&mut fs.device_mut().log);
    assert!(mount_writes.len() > 2 && mount_writes.contains(&None));
    let f = fs.create(ROOT_INO, b"data", 0o644, 0, 0).unwrap();
    fs.write(f, 0, &vec![0xAB; 8 * 4096]).unwrap();
    fs.mkdir(ROOT_INO, b"dir", 0o755, 0, 0).unwrap();
    assert!(
        fs.device_mut().log.is_empty(),
        "write-back cache wrote early"
    );
    fs.sync().unwrap();
    let dev = fs.close().unwrap();
    let is_data = |b: &Vec<u8>| b.iter().all(|&x| x == 0xAB);
    let first_flush = dev.log.iter().position(Option::is_none).unwrap();
    assert_eq!(first_flush, 8, "data blocks first: {:?}", dev.log.len());
    assert!(dev.log[..8].iter().all(|w| w.as_ref().is_some_and(is_data)));
    let rest = &dev.log[first_flush + 1..];
    assert!(rest.iter().all(|w| w.as_ref().is_none_or(|b| !is_data(b))));
    // The commit block (jbd2 magic, type 2) comes after a flush and before another.
    let commit = rest
        .iter()
        .position(|w| {
            w.as_ref()
                .is_some_and(|b| b[..8] == [0xC0, 0x3B, 0x39, 0x98, 0, 0, 0, 2])
        })
        .unwrap();
    assert!(rest[..commit].contains(&None) && rest[commit..].contains(&None));
    fs::write(&img, dev.inner.bytes()).unwrap();
    e2fsck_clean(&img);
}

/// A write much larger than the cache is written back piecewise: the cache stays bounded
/// and the result is intact.
#[test]
fn large_write_with_small_cache() {
    let dir = ext4img::tmpdir("write-large");
    let img = dir.join("l.img");
    fs::copy(mkfs(&dir, "base.img", 4096, 32, &[]), &img).unwrap();
    let data = pattern(9, 3 << 20);
    {
        let opts = Options {
            cache_bytes: 64 << 10,
        };
        let mut fs = Ext4::open_rw(FileDisk::open_rw(&img).unwrap(), &opts).unwrap();
        let f = fs.create(ROOT_INO, b"large", 0o644, 0, 0).unwrap();
        assert_eq!(fs.write(f, 0, &data).unwrap(), data.len());
        let cap = fs.cache().capacity();
        assert!(
            fs.cache().len() <= 3 * cap,
            "cache grew to {} blocks (capacity {cap})",
            fs.cache().len()
        );
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert!(debugfs(&img, "cat /large") == data);
}

/// `write_would_fit` says yes only for writes that then succeed in full: the server answers
/// such writes before running them. Filling a small volume in 256 KiB writes, every write it
/// said would fit is written whole; it says no for directories, symlinks and a read-only
/// mount; and it starts saying no before the volume is full, so the last writes (short, then
/// `NoSpace`) are ones it refused.
#[test]
fn write_would_fit_promises_only_writes_that_succeed() {
    let dir = ext4img::tmpdir("write-fit");
    let img = mkfs(&dir, "fit.img", 4096, 16, &[]);
    let chunk = pattern(12, 256 << 10);
    {
        let mut fs = open_rw(&img);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        assert!(!fs.write_would_fit(d, 0, 10));
        let l = fs.symlink(ROOT_INO, b"l", b"d", 0, 0).unwrap();
        assert!(!fs.write_would_fit(l, 0, 10));
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        assert!(!fs.write_would_fit(f, 0, 0), "nothing to promise");
        assert!(!fs.write_would_fit(f, u64::MAX - 5, 10));
        assert!(
            !fs.write_would_fit(f, 1 << 44, 4096),
            "past the largest file"
        );
        let mut promised = 0u64;
        let mut off = 0u64;
        loop {
            let fits = fs.write_would_fit(f, off, chunk.len() as u64);
            match fs.write(f, off, &chunk) {
                Ok(n) if n == chunk.len() => {
                    promised += u64::from(fits);
                }
                Ok(n) => {
                    assert!(!fits, "promised a write that came out short ({n} bytes)");
                    off += n as u64;
                    break;
                }
                Err(e) => {
                    assert!(!fits, "promised a write that failed: {e:?}");
                    assert_eq!(e, Error::NoSpace);
                    break;
                }
            }
            off += chunk.len() as u64;
        }
        assert!(
            promised >= 40,
            "only {promised} writes promised on a 16 MiB volume"
        );
        assert!(!fs.write_would_fit(f, off, chunk.len() as u64));
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    let mut ro = Ext4::open(FileDisk::open(&img).unwrap()).unwrap();
    let f = ro.lookup(ROOT_INO, b"f").unwrap();
    assert!(!ro.write_would_fit(f, 0, 10), "read-only mount");
}

/// Hostile images: metadata bytes are damaged at random (on an image without checksums, so
/// that the damage is not simply refused), then the writer runs operations. Errors are fine;
/// a panic is not.
#[test]
fn damaged_images_never_panic() {
    let dir = ext4img::tmpdir("write-damaged");
    let base = mkfs(
        &dir,
        "base.img",
        1024,
        8,
        &["-O", "^metadata_csum,^has_journal"],
    );
    {
        let mut fs = open_rw(&base);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        for i in 0..20 {
            let f = fs
                .create(d, format!("f{i}").as_bytes(), 0o644, 0, 0)
                .unwrap();
            fs.write(f, 0, &pattern(i, 3000)).unwrap();
        }
        fs.close().unwrap();
    }
    let clean = fs::read(&base).unwrap();
    // The blocks that matter: superblock, descriptors, bitmaps, the used part of the inode
    // table, and the first data blocks (directories).
    let mut hot: Vec<u64> = vec![1, 2];
    {
        let ro = Ext4::open(MemDisk::new(clean.clone())).unwrap();
        let g = ro.groups()[0];
        hot.extend([g.block_bitmap, g.inode_bitmap]);
        hot.extend(g.inode_table..g.inode_table + 10);
        let itb = u64::from(ro.superblock().inodes_per_group) * 256 / 1024;
        hot.extend(g.inode_table + itb..g.inode_table + itb + 80);
    }
    let mut rng = ext4img::Rng::new(77);
    let (mut opened, mut wrote, mut failed) = (0u32, 0u32, 0u32);
    for _ in 0..2000 {
        let mut img = clean.clone();
        for _ in 0..1 + rng.next_u64() % 8 {
            let blk = hot[(rng.next_u64() % hot.len() as u64) as usize];
            let at = (blk * 1024 + rng.next_u64() % 1024) as usize;
            if let Some(b) = img.get_mut(at) {
                *b = rng.next_u64() as u8;
            }
        }
        let Ok(mut fs) = Ext4::open_rw(MemDisk::new(img), &Options::default()) else {
            continue;
        };
        opened += 1;
        let d = fs.lookup(ROOT_INO, b"d").unwrap_or(ROOT_INO);
        let _ = fs.mkdir(d, b"new", 0o755, 0, 0);
        let _ = fs.create(d, b"x", 0o644, 0, 0);
        for i in 0..20 {
            let name = format!("f{i}");
            if let Ok(f) = fs.lookup(d, name.as_bytes()) {
                match fs.write(f, 2000, &[7; 5000]) {
                    Ok(_) => wrote += 1,
                    Err(_) => failed += 1,
                }
            }
            if i % 2 == 0 {
                let _ = fs.unlink(d, name.as_bytes());
            }
        }
        let _ = fs.rmdir(d, b"new");
        let _ = fs.rmdir(ROOT_INO, b"d");
        let _ = fs.sync();
    }
    eprintln!("damaged images: {opened} mounted, {wrote} writes done, {failed} refused");
    assert!(opened > 100, "only {opened} damaged images mounted");
    assert!(
        wrote > 100 && failed > 0,
        "{wrote} writes done, {failed} refused"
    );
}

/// Holes between extents are filled, and the new blocks merge with both neighbours when
/// they are contiguous.
#[test]
fn hole_fill_merges_extents() {
    let dir = ext4img::tmpdir("write-holes");
    let img = mkfs(&dir, "h.img", 4096, 16, &[]);
    let data = pattern(21, 5 * 4096);
    {
        let mut fs = open_rw(&img);
        let f = fs.create(ROOT_INO, b"h", 0o644, 0, 0).unwrap();
        fs.write(f, 0, &data[..4096]).unwrap();
        fs.write(f, 2 * 4096, &data[2 * 4096..3 * 4096]).unwrap();
        fs.write(f, 4 * 4096, &data[4 * 4096..]).unwrap();
        let mut back = vec![0u8; data.len()];
        fs.read(f, 0, &mut back).unwrap();
        assert!(
            back[4096..8192].iter().all(|&b| b == 0),
            "hole reads as zeros"
        );
        fs.write(f, 4096, &data[4096..2 * 4096]).unwrap();
        fs.write(f, 3 * 4096, &data[3 * 4096..4 * 4096]).unwrap();
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert!(debugfs(&img, "cat /h") == data);
    let stat = String::from_utf8_lossy(&debugfs(&img, "stat /h")).into_owned();
    assert!(stat.contains("(0-4):"), "extents not merged:\n{stat}");
}

/// Entries added to an htree directory (indexed by `e2fsck -D`, leaves packed full) go to
/// the leaf their hash selects; full leaves are split and the new leaf indexed; once the
/// root index is full, the tree gains a second level.
#[test]
fn htree_directory_gets_entries_in_the_right_leaf_1k() {
    // Thousands of splits, past what the root alone indexes.
    let (added, refused, img) = htree_case(1024, 6000);
    assert_eq!((added, refused), (6000, 0));
    let out = String::from_utf8_lossy(&debugfs(&img, "htree /big")).into_owned();
    assert!(out.contains("Indirect levels: 1"), "no second level");
}

#[test]
fn htree_directory_gets_entries_in_the_right_leaf_4k() {
    // 4k blocks: the root indexes 508 leaves, so every name fits.
    let (added, refused, _) = htree_case(4096, 6000);
    assert_eq!((added, refused), (6000, 0));
}

fn htree_case(block: u32, names: usize) -> (usize, usize, std::path::PathBuf) {
    let dir = ext4img::tmpdir(&format!("write-htree-{block}"));
    let src = dir.join("src");
    fs::create_dir_all(src.join("big")).unwrap();
    for i in 0..400 {
        fs::write(src.join("big").join(format!("entry-{i:05}")), b"").unwrap();
    }
    let img = dir.join("t.img");
    fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
    ext4img::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", &block.to_string(), "-N", "8192", "-d"])
            .arg(&src)
            .arg(&img),
    );
    ext4img::e2fsck_fix(&img, "-fyD");
    e2fsck_clean(&img);
    let (mut added, mut full) = (Vec::new(), 0);
    {
        let mut fs = open_rw(&img);
        let big = fs.lookup(ROOT_INO, b"big").unwrap();
        let a = fs.getattr(big).unwrap();
        assert!(
            a.flags & 0x1000 != 0,
            "e2fsck -D did not index the directory"
        );
        for i in 0..names {
            let name = format!("new-{i}");
            match fs.create(big, name.as_bytes(), 0o644, 0, 0) {
                Ok(ino) => added.push((name, ino)),
                Err(Error::Unsupported { .. }) => full += 1,
                Err(e) => panic!("{e:?}"),
            }
        }
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    let mut fs = Ext4::open(MemDisk::new(fs::read(&img).unwrap())).unwrap();
    let big = fs.lookup(ROOT_INO, b"big").unwrap();
    for (name, ino) in &added {
        assert_eq!(fs.lookup(big, name.as_bytes()).unwrap(), *ino, "{name}");
    }
    assert_eq!(fs.read_dir(big).unwrap().len(), 2 + 400 + added.len());
    (added.len(), full, img)
}

/// Without a journal, a read-write mount marks the file system in use until `close`: an
/// engine dropped without it leaves an image that the next read-write mount refuses (e2fsck
/// first). (With a journal the next mount replays instead: see `ext4_jwrite`.)
#[test]
fn unclosed_mount_is_refused_next_time() {
    let dir = ext4img::tmpdir("write-unclosed");
    let img = mkfs(&dir, "c.img", 4096, 16, &["-O", "^has_journal"]);
    let state = |img: &Path| {
        let out = Command::new("dumpe2fs")
            .arg("-h")
            .arg(img)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.starts_with("Filesystem state:"))
            .unwrap_or_default()
            .to_string()
    };
    {
        let mut fs = open_rw(&img);
        fs.mkdir(ROOT_INO, b"a", 0o755, 0, 0).unwrap();
        fs.close().unwrap();
    }
    assert!(state(&img).ends_with(" clean"), "{}", state(&img));
    {
        let mut fs = open_rw(&img);
        fs.mkdir(ROOT_INO, b"b", 0o755, 0, 0).unwrap();
        fs.sync().unwrap();
    }
    assert!(state(&img).contains("not clean"), "{}", state(&img));
    let e = Ext4::open_rw(FileDisk::open_rw(&img).unwrap(), &Options::default())
        .err()
        .unwrap();
    assert!(matches!(e, Error::ReadOnly { .. }), "{e:?}");
    let mut ro = Ext4::open(FileDisk::open(&img).unwrap()).unwrap();
    ro.lookup(ROOT_INO, b"b").unwrap();
}

/// Random sequences of every write operation checked against a model of the tree, with
/// `e2fsck -fn` after each (`ext4_write/model.rs`; `PVFS_MODEL_SEQS`/`PVFS_MODEL_OPS` scale it,
/// `cargo xtask soak` does).
#[path = "ext4_write/model.rs"]
mod model;

#[test]
fn model_sequences_4k() {
    model::model_sequences(4096, 100, 50, 4 << 20);
}

#[test]
fn model_sequences_1k() {
    // A 16-block cache: eviction and piecewise write-back happen all the time.
    model::model_sequences(1024, 100, 50, 16 << 10);
}
