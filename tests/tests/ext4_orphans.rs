//! ext4 orphans: pinned inodes that lose their last link, freed by unpin or reclaimed at the next
//! mount after a crash, in the orphan file and the classic list, and a truncate left in progress.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::{Error, Ext4, Fallocate, RenameFlags, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::namei::{image, ro};
use pvfs_tests::wimg::{e2fsck_clean, open_rw};
use std::fs;
use std::path::{Path, PathBuf};

/// `e2fsck -fy` on a copy of `img` (left as it is): e2fsck's report.
fn repair_a_copy(img: &Path) -> String {
    let copy = img.with_extension("copy");
    fs::copy(img, &copy).unwrap();
    ext4img::e2fsck_fix(&copy, "-fy")
}

fn counts(fs: &Ext4<FileDisk>) -> (u64, u64) {
    let s = fs.statfs();
    (s.free_blocks, s.free_inodes)
}

/// Whether the image records orphans: `orphan_present` (orphan file) or a classic list head.
fn has_orphans(img: &Path) -> bool {
    let h = ext4img::dumpe2fs(img);
    h.contains("orphan_present") || h.contains("First orphan inode")
}

/// An image `tag` with or without the `orphan_file` feature.
fn orphan_image(tag: &str, block: u32, orphan_file: bool) -> PathBuf {
    let feat = if orphan_file {
        "orphan_file"
    } else {
        "^orphan_file"
    };
    image(&format!("{tag}-{orphan_file}"), block, &["-O", feat])
}

/// Pinned inodes survive losing their last link (unlink, rmdir, rename over them) as
/// orphans, stay readable and writable, and are freed by their last unpin.
fn pinned_orphans(block: u32, orphan_file: bool) {
    let img = orphan_image("pin", block, orphan_file);
    assert_eq!(ext4img::dumpe2fs(&img).contains("orphan_file"), orphan_file);
    let data: Vec<u8> = ext4img::Rng::new(5).bytes(50_000);
    {
        let mut fs = open_rw(&img);
        let start = counts(&fs);
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        fs.write(f, 0, &data).unwrap();
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let g = fs.create(ROOT_INO, b"g", 0o644, 0, 0).unwrap();
        fs.write(g, 0, b"g data").unwrap();
        let h = fs.create(ROOT_INO, b"h", 0o644, 0, 0).unwrap();
        for ino in [f, d, g] {
            fs.pin(ino).unwrap();
        }
        fs.pin(f).unwrap();
        assert!(fs.unpin(h).is_err());
        fs.unlink(ROOT_INO, b"f").unwrap();
        fs.rmdir(ROOT_INO, b"d").unwrap();
        fs.rename(ROOT_INO, b"h", ROOT_INO, b"g", RenameFlags::default())
            .unwrap();
        fs.sync().unwrap();
        assert!(has_orphans(&img));
        if !orphan_file {
            assert!(ext4img::dumpe2fs(&img).contains(&format!("First orphan inode:       {g}")));
        }
        // The orphan is still a file: written and read through its inode.
        assert_eq!(fs.getattr(f).unwrap().nlink, 0);
        fs.write(f, 50_000, b"tail").unwrap();
        let mut back = vec![0u8; 50_004];
        assert_eq!(fs.read(f, 0, &mut back).unwrap(), 50_004);
        assert!(back[..50_000] == data[..] && &back[50_000..] == b"tail");
        assert_eq!(fs.link(f, ROOT_INO, b"again"), Err(Error::NotFound));
        // Freed in another order than orphaned (the middle of the classic list first).
        fs.unpin(d).unwrap();
        fs.unpin(f).unwrap();
        assert_eq!(fs.getattr(f).unwrap().nlink, 0, "second pin keeps it");
        fs.unpin(f).unwrap();
        fs.unpin(g).unwrap();
        assert!(!fs.getattr(f).is_ok_and(|a| a.nlink != 0));
        fs.unlink(ROOT_INO, b"g").unwrap();
        assert_eq!(counts(&fs), start);
        // A pinned inode that keeps its links is simply unpinned.
        let k = fs.create(ROOT_INO, b"k", 0o644, 0, 0).unwrap();
        fs.pin(k).unwrap();
        fs.unpin(k).unwrap();
        assert_eq!(fs.getattr(k).unwrap().nlink, 1);
        // Pinned orphans left at close are freed.
        fs.pin(k).unwrap();
        fs.unlink(ROOT_INO, b"k").unwrap();
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert!(!has_orphans(&img));
    let fs = ro(&img);
    let free = fs.statfs();
    let mut fresh = ro(&orphan_image("pin-fresh", block, orphan_file));
    let _ = fresh.lookup(ROOT_INO, b"lost+found").unwrap();
    assert_eq!(
        (free.free_blocks, free.free_inodes),
        (fresh.statfs().free_blocks, fresh.statfs().free_inodes)
    );
}

#[test]
fn pinned_orphans_orphan_file() {
    pinned_orphans(1024, true);
    pinned_orphans(4096, true);
}

#[test]
fn pinned_orphans_classic_list() {
    pinned_orphans(1024, false);
    pinned_orphans(4096, false);
}

/// Pinned and unlinked inodes left by a crash (the engine dropped without `close`) are
/// reclaimed by the next read-write mount.
fn crash_reclaim(block: u32, orphan_file: bool) {
    let img = orphan_image("crash", block, orphan_file);
    let start;
    {
        let mut fs = open_rw(&img);
        start = counts(&fs);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let mut pinned = Vec::new();
        for i in 0..5u8 {
            let name = [b'f', b'0' + i];
            let f = fs.create(d, &name, 0o644, 0, 0).unwrap();
            fs.write(f, 0, &vec![i; 3000 * usize::from(i)]).unwrap();
            fs.pin(f).unwrap();
            pinned.push(f);
        }
        let s = fs.symlink(d, b"s", &[b'x'; 100], 0, 0).unwrap();
        fs.pin(s).unwrap();
        let sub = fs.mkdir(d, b"sub", 0o755, 0, 0).unwrap();
        fs.pin(sub).unwrap();
        for i in 0..5u8 {
            fs.unlink(d, &[b'f', b'0' + i]).unwrap();
        }
        fs.unlink(d, b"s").unwrap();
        fs.rmdir(d, b"sub").unwrap();
        fs.rmdir(ROOT_INO, b"d").unwrap();
        fs.sync().unwrap();
        assert!(counts(&fs) != start);
        drop(fs); // crash: no close, no unpin
    }
    assert!(has_orphans(&img));
    let report = repair_a_copy(&img);
    // e2fsck (on a copy) finds every orphan through the records written.
    assert_eq!(
        report.matches("Clearing orphaned inode").count(),
        7,
        "{report}"
    );
    assert!(!report.contains("checksum"), "{report}");
    after_crash(&img);
    {
        let fs = open_rw(&img);
        assert_eq!(counts(&fs), start, "orphans reclaimed at mount");
        fs.close().unwrap();
    }
    assert!(!has_orphans(&img));
    e2fsck_clean(&img);
}

#[test]
fn crash_reclaim_orphan_file() {
    crash_reclaim(1024, true);
    crash_reclaim(4096, true);
}

#[test]
fn crash_reclaim_classic_list() {
    crash_reclaim(1024, false);
    crash_reclaim(4096, false);
}

/// A linked inode on the orphan list (a truncate Linux had in progress) loses the blocks past
/// its size at the next read-write mount; its data and times stay.
#[test]
fn linked_orphan_is_truncated() {
    for block in [1024u32, 4096] {
        let img = image("linked-orphan", block, &[]);
        let data = ext4img::Rng::new(9).bytes(10_000);
        let (f, before) = {
            let mut fs = open_rw(&img);
            let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
            fs.write(f, 0, &data).unwrap();
            fs.fallocate(f, 10_000, 50_000, Fallocate::KeepSize)
                .unwrap();
            let a = fs.getattr(f).unwrap();
            assert!(a.blocks > 10_000u64.div_ceil(u64::from(block)) * u64::from(block / 512));
            fs.close().unwrap();
            (f, a)
        };
        ext4img::debugfs_w(&img, &format!("ssv last_orphan {f}"));
        assert!(has_orphans(&img));
        {
            let mut fs = open_rw(&img);
            let a = fs.getattr(f).unwrap();
            let want = 10_000u64.div_ceil(u64::from(block)) * u64::from(block / 512);
            assert_eq!((a.blocks, a.size, a.nlink), (want, 10_000, 1));
            assert_eq!((a.mtime, a.ctime), (before.mtime, before.ctime));
            let mut back = vec![0u8; 10_000];
            assert_eq!(fs.read(f, 0, &mut back).unwrap(), 10_000);
            assert!(back == data);
            fs.close().unwrap();
        }
        assert!(!has_orphans(&img));
        e2fsck_clean(&img);
    }
}

/// Without a journal a crash leaves the file system marked in use; everything but the orphans
/// was written back, which is what a journal replay would give, so mark it clean for the next
/// mount.
fn after_crash(img: &Path) {
    if ext4img::dumpe2fs(img).contains("not clean") {
        ext4img::debugfs_w(img, "ssv state 1");
    }
}

/// `n` files in directory `d`, each written, pinned and unlinked: `n` orphans.
fn pinned_and_unlinked(fs: &mut Ext4<FileDisk>, d: u32, n: u32) -> Vec<u32> {
    (0..n)
        .map(|i| {
            let name = format!("f{i}");
            let f = fs.create(d, name.as_bytes(), 0o644, 0, 0).unwrap();
            fs.write(f, 0, name.as_bytes()).unwrap();
            fs.pin(f).unwrap();
            fs.unlink(d, name.as_bytes()).unwrap();
            f
        })
        .collect()
}

/// A full orphan file (one block: 254 slots at 1k) overflows into the classic list; orphans
/// are freed from both, by unpin and by the reclaim at mount.
#[test]
fn full_orphan_file_overflows_to_list() {
    let img = image(
        "orphan-full",
        1024,
        &["-O", "orphan_file", "-E", "orphan_file_size=1"],
    );
    let start;
    let n = 270u32;
    {
        let mut fs = open_rw(&img);
        start = counts(&fs);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let inos = pinned_and_unlinked(&mut fs, d, n);
        fs.sync().unwrap();
        let h = ext4img::dumpe2fs(&img);
        assert!(
            h.contains("orphan_present") && h.contains("First orphan inode"),
            "{h}"
        );
        // Unpin a third: some in the file, some in the list (head, middle, tail).
        for (i, &f) in inos.iter().enumerate() {
            if i % 3 == 0 {
                fs.unpin(f).unwrap();
            }
        }
        fs.rmdir(ROOT_INO, b"d").unwrap();
        fs.sync().unwrap();
        drop(fs); // crash with the other two thirds pinned
    }
    let report = repair_a_copy(&img);
    assert_eq!(
        report.matches("Clearing orphaned inode").count(),
        (n - n.div_ceil(3)) as usize,
        "{report}"
    );
    after_crash(&img);
    {
        let fs = open_rw(&img);
        assert_eq!(counts(&fs), start);
        fs.close().unwrap();
    }
    assert!(!has_orphans(&img));
    e2fsck_clean(&img);
}

/// Orphans spread over several blocks of the orphan file (4 blocks of 254 slots at 1k): each
/// leaves its slot when freed, in any order; the blocks' checksums stay right after every
/// change (e2fsck on a copy finds exactly the orphans left, and no checksum error);
/// `orphan_present` is set while any is left and cleared with the last, and set again by the
/// next.
#[test]
fn orphans_across_orphan_file_blocks() {
    let img = image(
        "orphan-blocks",
        1024,
        &["-O", "orphan_file", "-E", "orphan_file_size=4"],
    );
    let n = 600u32;
    let mut fs = open_rw(&img);
    let start = counts(&fs);
    let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
    let inos = pinned_and_unlinked(&mut fs, d, n);
    fs.sync().unwrap();
    let h = ext4img::dumpe2fs(&img);
    assert!(
        h.contains("orphan_present") && !h.contains("First orphan inode"),
        "all {n} in the orphan file: {h}"
    );
    // Free every third from the end, then the first half of the rest.
    let mut left: Vec<u32> = Vec::new();
    for (i, &f) in inos.iter().enumerate().rev() {
        if i % 3 == 1 {
            fs.unpin(f).unwrap();
        } else {
            left.push(f);
        }
    }
    let half = left.len() / 2;
    for &f in &left[..half] {
        fs.unpin(f).unwrap();
    }
    fs.sync().unwrap();
    assert!(has_orphans(&img));
    let report = repair_a_copy(&img);
    assert_eq!(
        report.matches("Clearing orphaned inode").count(),
        left.len() - half,
        "{report}"
    );
    assert!(!report.contains("checksum"), "{report}");
    for &f in &left[half..] {
        fs.unpin(f).unwrap();
    }
    fs.sync().unwrap();
    assert!(!has_orphans(&img), "the last orphan clears orphan_present");
    // The next orphan sets it again, and its removal clears it.
    let g = fs.create(d, b"g", 0o644, 0, 0).unwrap();
    fs.pin(g).unwrap();
    fs.unlink(d, b"g").unwrap();
    fs.sync().unwrap();
    assert!(has_orphans(&img));
    fs.unpin(g).unwrap();
    fs.sync().unwrap();
    assert!(!has_orphans(&img));
    fs.rmdir(ROOT_INO, b"d").unwrap();
    assert_eq!(counts(&fs), start);
    fs.close().unwrap();
    e2fsck_clean(&img);
}
