//! ext4 inode placement: top-level directories spread over the block groups, everything else
//! near its parent, with and without flex_bg.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::ext4::{Ino, ROOT_INO};
use pvfs_tests::namei::{image_mib, ro};
use pvfs_tests::wimg::{debugfs, e2fsck_clean, open_rw};

/// Top-level directories are spread over the block groups; files and subdirectories stay in
/// their parent's group; group counters (free, used dirs, unused inode table) stay right.
fn spreading(block: u32, group_blocks: u32, flex_bg: bool) {
    let gb = group_blocks.to_string();
    let flex = if flex_bg { "flex_bg" } else { "^flex_bg" };
    let img = image_mib(
        &format!("spread-{flex_bg}"),
        block,
        32,
        &["-g", &gb, "-N", "4096", "-O", flex],
    );
    let ipg = {
        let fs = ro(&img);
        assert!(fs.groups().len() >= 8, "{} groups", fs.groups().len());
        fs.superblock().inodes_per_group
    };
    let group = |ino: Ino| (ino - 1) / ipg;
    {
        let mut fs = open_rw(&img);
        let mut groups = Vec::new();
        for i in 0..6u8 {
            let top = fs.mkdir(ROOT_INO, &[b't', b'0' + i], 0o755, 0, 0).unwrap();
            groups.push(group(top));
            for j in 0..3u8 {
                let f = fs.create(top, &[b'f', b'0' + j], 0o644, 0, 0).unwrap();
                fs.write(f, 0, &[j; 3000]).unwrap();
                assert_eq!(group(f), group(top), "file near its directory");
            }
            let sub = fs.mkdir(top, b"sub", 0o755, 0, 0).unwrap();
            assert_eq!(group(sub), group(top), "subdirectory near its parent");
            let s = fs.symlink(sub, b"s", b"../f0", 0, 0).unwrap();
            assert_eq!(group(s), group(top));
        }
        let mut distinct = groups.clone();
        distinct.sort_unstable();
        distinct.dedup();
        // Without flex_bg every group holds its own files' data, so each new top-level
        // directory finds an emptier group; with flex_bg the data of all groups sits in the
        // first groups, which then fall below the average free space.
        let want = if flex_bg { 4 } else { groups.len() };
        assert!(distinct.len() >= want, "top-level groups {groups:?}");
        assert!(!groups.contains(&0), "top-level groups {groups:?}");
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(debugfs(&img, "cat /t3/f2"), vec![2u8; 3000]);
}

#[test]
fn directories_spread_1k() {
    spreading(1024, 2048, true);
    spreading(1024, 2048, false);
}

#[test]
fn directories_spread_4k() {
    spreading(4096, 512, true);
    spreading(4096, 512, false);
}
