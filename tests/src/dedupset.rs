//! A tree shaped like a distribution's, for dedup's space test and benchmark: 2,000 files in
//! 40 directories, most below 4 KiB, some up to 256 KiB, a few empty; and the time to read all
//! of it through the engine.
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use crate::ext4img::Rng;
use std::path::Path;

/// Write the tree under `root`; returns (relative path, contents) of every file.
pub fn tree(root: &Path) -> Vec<(String, Vec<u8>)> {
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
pub fn read_time(img: &Path, prefix: &str, files: &[(String, Vec<u8>)]) -> f64 {
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
