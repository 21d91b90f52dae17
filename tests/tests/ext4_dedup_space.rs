//! Space after dedup of two guests' copies of one tree (issue #27, item 4: at most 1.1× the
//! space of one). A tree shaped like a distribution's (2,000 files in 40 directories, most
//! below 4 KiB, some up to 256 KiB, a few empty) is put into three `mkfs.ext4 -d` images:
//! none, one copy, and two copies (`g1/`, `g2/`); the two-copy image is deduplicated with
//! `pvfs_fs::dedup`. The blocks each image uses beyond the empty one's (`dumpe2fs`) are
//! compared: two copies after dedup must take at most 1.1× one copy, and stay e2fsck-clean
//! with every file readable through the engine. How fast a shared copy reads next to a
//! private one is a benchmark (`cargo xtask bench ext4-dedup`), not a test.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_tests::dedupset::tree;
use pvfs_tests::ext4img::dumpe2fs;
use pvfs_tests::p9client::{require_tool, temp_dir};
use pvfs_tests::wimg::{e2fsck_clean, mkfs_sized, open_rw};
use std::path::Path;

fn used_blocks(img: &Path) -> u64 {
    let h = dumpe2fs(img);
    let field = |k: &str| -> u64 {
        let l = h.lines().find(|l| l.starts_with(k)).unwrap();
        l.split(':').nth(1).unwrap().trim().parse().unwrap()
    };
    field("Block count:") - field("Free blocks:")
}

#[test]
fn two_copies_of_a_tree_take_at_most_1_1_times_one_after_dedup() {
    for t in ["mkfs.ext4", "e2fsck", "dumpe2fs"] {
        require_tool(t);
    }
    let dir = temp_dir("dedup-space");
    let (empty, one, two) = (dir.join("empty"), dir.join("one"), dir.join("two"));
    std::fs::create_dir_all(&empty).unwrap();
    let files = tree(&one.join("g1"));
    tree(&two.join("g1"));
    tree(&two.join("g2"));
    let bytes: usize = files.iter().map(|f| f.1.len()).sum();
    let mk = |src: &Path, name: &str| {
        let img = dir.join(name);
        mkfs_sized(
            &img,
            "96M",
            &["-b", "4096", "-N", "8192", "-d", src.to_str().unwrap()],
        );
        img
    };
    let (i0, i1, i2) = (mk(&empty, "0.img"), mk(&one, "1.img"), mk(&two, "2.img"));
    {
        let mut fs = open_rw(&i2);
        let r = pvfs_fs::dedup::dedup(&mut fs, &[b"/"]).unwrap();
        assert_eq!(r.mismatches, 0);
        for (p, want) in &files {
            for g in ["g1", "g2"] {
                let ino = fs.lookup_path(format!("/{g}/{p}").as_bytes()).unwrap();
                let mut b = vec![0u8; want.len() + 1];
                assert_eq!(fs.read(ino, 0, &mut b).unwrap(), want.len());
                assert_eq!(&b[..want.len()], &want[..], "/{g}/{p}");
            }
        }
        fs.close().unwrap();
    }
    e2fsck_clean(&i2);
    let base = used_blocks(&i0);
    let (u1, u2) = (used_blocks(&i1) - base, used_blocks(&i2) - base);
    let ratio = u2 as f64 / u1 as f64;
    println!(
        "one copy: {u1} blocks ({bytes} bytes of data); two copies after dedup: {u2} blocks; ratio {ratio:.3}"
    );
    assert!(ratio <= 1.1, "two copies take {ratio:.3}x one");
}
