//! Space after dedup of two guests' copies of one tree (issue #27, item 4: at most 1.1× the
//! space of one). A tree shaped like a distribution's (2,000 files in 40 directories, most
//! below 4 KiB, some up to 256 KiB, a few empty) is put into three `mkfs.ext4 -d` images:
//! none, one copy, and two copies (`g1/`, `g2/`); the two-copy image is deduplicated with
//! `pvfs_fs::dedup`. The blocks each image uses beyond the empty one's (`dumpe2fs`) are
//! compared: two copies after dedup must take at most 1.1× one copy, and stay e2fsck-clean
//! with every file readable through the engine. Reading every file of a copy through the
//! engine (cold cache, best of three) is timed for the private copy and for the shared one;
//! the figures are printed, and the shared read must stay under twice the private one.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_tests::ext4img::{dumpe2fs, Rng};
use pvfs_tests::p9client::{require_tool, temp_dir};
use pvfs_tests::wimg::{e2fsck_clean, mkfs_sized, open_rw};
use std::path::Path;

/// Write the tree under `root`; returns (relative path, contents) of every file.
fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut rng = Rng::new(0x1_1000);
    let mut files = Vec::new();
    for i in 0..2000 {
        let dir = format!("d{}/s{}", i % 8, i % 40);
        let size = match rng.next_u64() % 20 {
            0 => 0,
            1..=13 => 1 + rng.next_u64() % 4000,
            14..=17 => 4096 + rng.next_u64() % 30_000,
            _ => 32_768 + rng.next_u64() % 230_000,
        } as usize;
        let data = rng.bytes(size);
        let path = format!("{dir}/f{i}");
        std::fs::create_dir_all(root.join(&dir)).unwrap();
        std::fs::write(root.join(&path), &data).unwrap();
        files.push((path, data));
    }
    files
}

/// Seconds to read every file of `files` under `prefix` from `img` with a fresh engine (a
/// cold cache), best of three.
fn read_time(img: &Path, prefix: &str, files: &[(String, Vec<u8>)]) -> f64 {
    let mut best = f64::MAX;
    let mut buf = vec![0u8; 1 << 20];
    for _ in 0..3 {
        let mut fs = pvfs_fs::host::open_image(img).unwrap();
        let t = std::time::Instant::now();
        for (p, want) in files {
            let ino = fs.lookup_path(format!("{prefix}/{p}").as_bytes()).unwrap();
            assert_eq!(fs.read(ino, 0, &mut buf).unwrap(), want.len());
        }
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}

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
    let private = read_time(&i1, "/g1", &files);
    let shared = read_time(&i2, "/g2", &files);
    println!(
        "reading every file: private copy {:.1} ms, shared copy {:.1} ms ({:.2}x)",
        private * 1e3,
        shared * 1e3,
        shared / private
    );
    assert!(
        shared < 2.0 * private,
        "shared reads {shared:.3}s, private {private:.3}s"
    );
}
