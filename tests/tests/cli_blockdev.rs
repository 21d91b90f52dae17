//! `pvfs image` on a block device rather than an image file (an LV, a loop device, a RAM
//! disk: its metadata says size 0): reads, an edit and a resize through a loop device over an
//! image, checked with `e2fsck -fn`; a resize past the device's end is refused with a message
//! and status 1, and the device is left as it was. Needs root for `losetup` (a skip, which
//! `PVFS_REQUIRE_ALL=1` turns into a failure, elsewhere).
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_tests::p9client::{pvfs_bin, temp_dir};
use pvfs_tests::wimg::e2fsck_clean;
use std::process::Command;

/// A loop device over `img`, detached on drop.
struct Loop(String);
impl Drop for Loop {
    fn drop(&mut self) {
        let _ = Command::new("losetup").args(["-d", &self.0]).status();
    }
}

fn pvfs(args: &[&str]) -> std::process::Output {
    Command::new(pvfs_bin()).args(args).output().unwrap()
}

#[test]
fn image_commands_work_on_a_block_device() {
    let dir = temp_dir("cli-blockdev");
    let img = dir.join("v.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let ok = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-b", "1024"])
        .arg(&img)
        .arg("32M")
        .status()
        .unwrap();
    assert!(ok.success());
    let out = Command::new("losetup")
        .args(["-f", "--show"])
        .arg(&img)
        .output()
        .unwrap();
    if !out.status.success() {
        pvfs_tests::skip(&format!(
            "losetup: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
        return;
    }
    let dev = Loop(String::from_utf8(out.stdout).unwrap().trim().to_string());
    let d = dev.0.as_str();
    std::fs::write(dir.join("hello.txt"), b"hello from a block device\n").unwrap();
    let put = pvfs(&[
        "image",
        "put",
        d,
        dir.join("hello.txt").to_str().unwrap(),
        "/hello.txt",
    ]);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let cat = pvfs(&["image", "cat", d, "/hello.txt"]);
    assert!(
        cat.status.success(),
        "{}",
        String::from_utf8_lossy(&cat.stderr)
    );
    assert_eq!(cat.stdout, b"hello from a block device\n");
    // Past the device's end: refused, nothing changed.
    let big = pvfs(&["image", "resize", d, "128M"]);
    assert_eq!(big.status.code(), Some(1));
    let msg = String::from_utf8_lossy(&big.stderr);
    assert!(msg.contains("grow the device first"), "{msg}");
    // Into the rest of the device.
    let grow = pvfs(&["image", "resize", d, "64M"]);
    assert!(
        grow.status.success(),
        "{}",
        String::from_utf8_lossy(&grow.stderr)
    );
    assert!(String::from_utf8_lossy(&grow.stdout).contains("blocks: 65536"));
    drop(dev);
    e2fsck_clean(&img);
    let cat = pvfs(&["image", "cat", img.to_str().unwrap(), "/hello.txt"]);
    assert_eq!(cat.stdout, b"hello from a block device\n");
}
