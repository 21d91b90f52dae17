//! Reading deduplicated files against private ones: `cargo bench -p pvfs-tests --bench
//! ext4_dedup` (`cargo xtask bench ext4-dedup`).
//!
//! Two `mkfs.ext4 -d` images of the tree of `pvfs_tests::dedupset` (2,000 files): one holds a
//! private copy, the other two copies merged by `pvfs_fs::dedup`, so every file of its second
//! copy is read through the shared store. Reading every file of a copy through the engine
//! with a cold cache (a fresh mount each round) is timed for both, best of `ROUNDS`,
//! alternating; the shared/private ratio is printed. The files' contents are checked on the
//! way, so the figures are for correct reads.
#![allow(clippy::unwrap_used, reason = "benchmark harness")]

use pvfs_tests::dedupset::{read_time, tree};
use pvfs_tests::p9client::temp_dir;
use pvfs_tests::wimg::{mkfs_sized, open_rw};

const ROUNDS: usize = 5;

fn main() {
    let dir = temp_dir("bench-dedup");
    let (one, two) = (dir.join("one"), dir.join("two"));
    let files = tree(&one.join("g1"));
    tree(&two.join("g1"));
    tree(&two.join("g2"));
    let mk = |src: &std::path::Path, name: &str| {
        let img = dir.join(name);
        mkfs_sized(
            &img,
            "96M",
            &["-b", "4096", "-N", "8192", "-d", src.to_str().unwrap()],
        );
        img
    };
    let (private_img, shared_img) = (mk(&one, "1.img"), mk(&two, "2.img"));
    {
        let mut fs = open_rw(&shared_img);
        let r = pvfs_fs::dedup::dedup(&mut fs, &[b"/"]).unwrap();
        println!("dedup: {r:?}");
        fs.close().unwrap();
    }
    let (mut private, mut shared) = (f64::MAX, f64::MAX);
    for _ in 0..ROUNDS {
        private = private.min(read_time(&private_img, "/g1", &files));
        shared = shared.min(read_time(&shared_img, "/g2", &files));
    }
    println!(
        "reading all {} files, cold cache, best of {ROUNDS}: private copy {:.1} ms, shared copy {:.1} ms, shared/private {:.2}x",
        files.len(),
        private * 1e3,
        shared * 1e3,
        shared / private
    );
}
