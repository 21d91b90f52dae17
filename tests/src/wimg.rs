//! Helpers for write-path tests: blank images from `mkfs.ext4`, the `e2fsck -fn` and
//! `debugfs` oracles, and a read-write engine with a fixed clock.

use crate::ext4img;
use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::{Ext4, Options, Timestamp};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A `mib` MiB image `dir/name` made by `mkfs.ext4 -q -F -b block extra…` (default features).
pub fn mkfs(dir: &Path, name: &str, block: u32, mib: u64, extra: &[&str]) -> PathBuf {
    let img = dir.join(name);
    let f = fs::File::create(&img).expect("create image file");
    f.set_len(mib << 20).expect("size image file");
    drop(f);
    ext4img::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-b", &block.to_string()])
            .args(extra)
            .arg(&img),
    );
    img
}

/// Output of `e2fsck -fn img`: `Ok(())` when clean, else the report.
pub fn e2fsck(img: &Path) -> Result<(), String> {
    let out = Command::new("e2fsck")
        .arg("-fn")
        .arg(img)
        .output()
        .expect("e2fsck must be installed (ci/host-deps.sh)");
    if out.status.code() == Some(0) {
        Ok(())
    } else {
        Err(format!(
            "e2fsck -fn exit {:?}:\n{}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Panics with e2fsck's report unless `e2fsck -fn img` is clean.
pub fn e2fsck_clean(img: &Path) {
    if let Err(report) = e2fsck(img) {
        panic!("{report}");
    }
}

/// Output of `debugfs -R req img` (panics if debugfs fails to run).
pub fn debugfs(img: &Path, req: &str) -> Vec<u8> {
    let out = Command::new("debugfs")
        .args(["-R", req])
        .arg(img)
        .output()
        .expect("debugfs must be installed (ci/host-deps.sh)");
    assert!(out.status.success(), "debugfs {req} failed");
    out.stdout
}

/// The fixed clock write tests stamp inodes with.
pub const CLOCK: Timestamp = Timestamp {
    sec: 1_700_000_000,
    nsec: 123_456_789,
};

/// `img` mounted read-write with [`CLOCK`].
pub fn open_rw(img: &Path) -> Ext4<FileDisk> {
    let disk = FileDisk::open_rw(img).expect("open image read-write");
    let mut fs = Ext4::open_rw(disk, &Options::default()).expect("mount read-write");
    fs.set_clock(CLOCK);
    fs
}
