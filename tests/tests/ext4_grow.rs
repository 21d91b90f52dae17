//! Growing a mounted ext4 volume into a larger device (`Ext4::grow`), checked against
//! e2fsprogs and Linux: images made by `mkfs.ext4` (4 KiB and 1 KiB blocks, with and without
//! `resize_inode`, `flex_bg`, `64bit`, `metadata_csum`) are extended and grown by the engine
//! and, as a reference, by `resize2fs` (offline, lazy inode tables, as it runs on a host whose
//! kernel initializes them). Then:
//! - `e2fsck -fn` is clean;
//! - `dumpe2fs` agrees with the reference on the counts (blocks, inodes, free, reserved,
//!   reserved descriptor blocks) and on every group: where its bitmaps and inode table are,
//!   its flags, free counts and checksums;
//! - a Linux loop mount sees the new size (the same `statfs` as the reference) and the files
//!   written before and after the grow;
//! - a grow past the reserved descriptor blocks is refused with the limit, and changes
//!   nothing; nor does a grow that fails (a read error) before its commit;
//! - a grow too large for one journal transaction goes in committed steps;
//! - a resize inode that does not own the reserved blocks it should is refused.
//!
//! Power cuts during a grow: `ext4_grow_cut.rs`.
#![allow(clippy::unwrap_used, reason = "test code")]

#[path = "ext4_grow/common.rs"]
mod common;

use common::{
    assert_files, check_after_failed_grow, extend, files, first_meta_bg, grow_image_with, head_num,
    open_rw, read_file, write_files, Files,
};
use pvfs_fs::block::{FaultyDisk, FileDisk, MemDisk};
use pvfs_fs::ext4::{Error, Ext4, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{cannot_mount, e2fsck_clean, mkfs, LoopMount};
use std::fs;
use std::path::Path;
use std::process::Command;

/// `statfs` block count and block size Linux reports for an image (loop-mounted read-only).
fn linux_statfs(img: &Path, at: &Path) -> (u64, u64) {
    let m = LoopMount::new(img, at, true).unwrap();
    let out = Command::new("stat")
        .args(["-f", "-c", "%b %S"])
        .arg(m.path())
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    let mut it = s.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}

/// One growth: `mkfs.ext4 -b block extra…` of `mib` MiB with files, the image extended to
/// `new_bytes` and grown by the engine and by resize2fs, compared, more files written after
/// the grow, and everything read back by Linux. Returns the engine's new block count.
fn grow_case(tag: &str, block: u32, mib: u64, extra: &[&str], new_bytes: u64) -> u64 {
    grow_case_with(tag, block, mib, extra, new_bytes, ext4img::resize2fs)
}

/// [`grow_case`] with another reference for the grown layout (`reference(image, blocks)`).
pub(crate) fn grow_case_with(
    tag: &str,
    block: u32,
    mib: u64,
    extra: &[&str],
    new_bytes: u64,
    reference_grow: fn(&Path, u64),
) -> u64 {
    let dir = ext4img::tmpdir(tag);
    let img = mkfs(&dir, "grown.img", block, mib, extra);
    let before = files("before", 8, 20_000, 1);
    let mut fs = open_rw(FileDisk::open_rw(&img).unwrap());
    write_files(&mut fs, &before);
    let old_blocks = fs.superblock().blocks_count;
    fs.close().unwrap();
    let reference = dir.join("resize2fs.img");
    fs::copy(&img, &reference).unwrap();
    extend(&img, new_bytes);
    extend(&reference, new_bytes);
    let want = new_bytes / u64::from(block);
    reference_grow(&reference, want);
    e2fsck_clean(&reference);

    let mut fs = open_rw(FileDisk::open_rw(&img).unwrap());
    assert!(fs.grow_limit().unwrap() >= want, "{tag}: limit");
    let got = fs.grow(want).unwrap();
    assert!(got > old_blocks, "{tag}: grew from {old_blocks} to {got}");
    // statfs sees the new size at once.
    let st = fs.statfs();
    assert_eq!(st.blocks, got);
    fs.close().unwrap();
    e2fsck_clean(&img);
    ext4img::assert_same_layout(
        tag,
        &ext4img::dumpe2fs_layout(&img),
        &ext4img::dumpe2fs_layout(&reference),
    );

    // Space past the old end is usable: write more than the old size held free.
    let after = files("after", 4, (old_blocks * u64::from(block) / 3) as usize, 2);
    let mut fs = open_rw(FileDisk::open_rw(&img).unwrap());
    write_files(&mut fs, &after);
    fs.close().unwrap();
    e2fsck_clean(&img);

    if let Some(why) = cannot_mount() {
        pvfs_tests::skip(&format!(
            "{tag}: Linux checks (loop mount not permitted: {why})"
        ));
        return got;
    }
    assert_eq!(
        linux_statfs(&img, &dir.join("m1")).0,
        linux_statfs(&reference, &dir.join("m2")).0,
        "{tag}: Linux's statfs of the grown volume and of resize2fs's"
    );
    let m = LoopMount::new(&img, &dir.join("m3"), true).unwrap();
    for (name, data) in before.iter().chain(&after) {
        assert!(
            fs::read(m.path().join(name)).unwrap() == *data,
            "{tag}: {name} as Linux reads it"
        );
    }
    got
}

#[test]
fn grow_4k_flex_bg_64bit_resize_inode() {
    // 1 group to 6 (backup groups 1, 3 and 5, a partial last group).
    grow_case("grow-4k", 4096, 64, &[], 700 << 20);
}

#[test]
fn grow_4k_across_descriptor_blocks() {
    // 64 groups a descriptor block: 9 GiB takes a second one from the reserve.
    let got = grow_case("grow-4k-gdt", 4096, 64, &[], 9 << 30);
    assert!(got > 64 * 32768);
}

#[test]
fn grow_1k_blocks() {
    grow_case("grow-1k", 1024, 32, &[], 300 << 20);
}

#[test]
fn grow_1k_small_groups_across_descriptor_blocks() {
    // 1 MiB groups, 16 descriptors a block: 4 to 60 groups, three more descriptor blocks.
    grow_case("grow-1k-g", 1024, 4, &["-g", "1024"], 60 << 20);
}

#[test]
fn grow_without_flex_bg_and_64bit() {
    grow_case(
        "grow-noflex",
        4096,
        64,
        &["-O", "^flex_bg,^64bit"],
        700 << 20,
    );
}

#[test]
fn grow_without_checksums_zeroes_inode_tables() {
    grow_case(
        "grow-nocsum",
        4096,
        64,
        &["-O", "^metadata_csum"],
        700 << 20,
    );
}

#[test]
fn grow_without_resize_inode_within_the_last_descriptor_block() {
    grow_case(
        "grow-noresize",
        4096,
        64,
        &["-O", "^resize_inode"],
        1000 << 20,
    );
}

/// The engine refuses a grow past `limit` blocks with `GrowLimit`, and the volume keeps its
/// size and groups.
fn refused_past(img: &Path, want: u64, limit: u64) {
    let shape = |img: &Path| {
        let fs = Ext4::open(FileDisk::open(img).unwrap()).unwrap();
        (fs.superblock().blocks_count, fs.groups().len())
    };
    let before = shape(img);
    let mut fs = open_rw(FileDisk::open_rw(img).unwrap());
    assert_eq!(fs.grow_limit().unwrap(), limit);
    assert_eq!(fs.grow(want), Err(Error::GrowLimit { max_blocks: limit }));
    fs.close().unwrap();
    e2fsck_clean(img);
    assert_eq!(shape(img), before);
}

#[test]
fn the_limit_is_the_32bit_block_count_without_64bit() {
    // 4 KiB blocks, 8192 inodes a group: the inode count would allow 524287 groups, the
    // 32-bit block count only 2^32 - 1 blocks. (The limit is checked before the device size,
    // so the image need not be 16 TiB.)
    let dir = ext4img::tmpdir("grow-limit32");
    let img = mkfs(&dir, "a.img", 4096, 64, &["-O", "^64bit", "-N", "16384"]);
    refused_past(&img, 1 << 32, u64::from(u32::MAX));
}

#[test]
fn the_limit_is_the_inode_count_with_64bit() {
    // 64bit: as many groups as keep the inode count in 32 bits, 2^32 / 2048 - 1 of them.
    let dir = ext4img::tmpdir("grow-limit-inodes");
    let img = mkfs(&dir, "a.img", 1024, 64, &["-g", "8192", "-N", "16384"]);
    let ipg = 16384 / 8;
    let limit = (u64::from(u32::MAX) / ipg) * 8192 + 1;
    refused_past(&img, limit + 8192, limit);
}

#[test]
fn shrinking_is_refused() {
    let dir = ext4img::tmpdir("grow-shrink");
    let img = mkfs(&dir, "a.img", 4096, 64, &[]);
    let mut fs = open_rw(FileDisk::open_rw(&img).unwrap());
    let n = fs.superblock().blocks_count;
    assert!(matches!(fs.grow(n - 1), Err(Error::Invalid { .. })));
    assert!(matches!(fs.grow(n + 100_000), Err(Error::Invalid { .. })));
    assert_eq!(fs.grow(n), Ok(n));
    fs.close().unwrap();
    e2fsck_clean(&img);
}

#[test]
fn a_grow_that_fails_before_its_commit_changes_nothing() {
    // A read error on group 3's superblock copy (the last block the grow reads, after it
    // has changed the superblock, descriptors and bitmaps in the cache) fails the grow; the
    // engine goes on at the old size and its next commits carry none of it.
    let dir = ext4img::tmpdir("grow-undo");
    let img = mkfs(&dir, "a.img", 1024, 4, &["-g", "1024"]);
    extend(&img, 24 << 20);
    let mut dev = FaultyDisk::new(MemDisk::new(fs::read(&img).unwrap()));
    dev.fail_sector((3 * 1024 + 1) * 2);
    let mut fs = open_rw(dev);
    let old = fs.superblock().blocks_count;
    let free = fs.statfs().free_blocks;
    assert!(matches!(fs.grow(24 * 1024), Err(Error::Dev(_))));
    assert_eq!(fs.device_mut().failed_reads, 1);
    assert_eq!(fs.superblock().blocks_count, old);
    assert_eq!((fs.statfs().blocks, fs.statfs().free_blocks), (old, free));
    assert_eq!(fs.groups().len(), 4);
    check_after_failed_grow(fs, &dir, old);
}

#[test]
fn a_grow_larger_than_the_journal_goes_in_steps() {
    // 1 KiB blocks, 1 MiB groups and a 1 MiB journal: growing 64 groups (8 of them backup
    // groups) to 3072 changes more descriptor copies (8 x 189) than one transaction of a
    // 1024-block journal can carry. (Each step is laid out as resize2fs would lay out that
    // step; the steps' seams differ from one resize2fs run, so dumpe2fs is not compared.)
    let dir = ext4img::tmpdir("grow-steps");
    let img = mkfs(&dir, "a.img", 1024, 64, &["-g", "1024", "-J", "size=1"]);
    assert!(ext4img::dumpe2fs(&img)
        .lines()
        .any(|l| l.starts_with("Total journal blocks:") && l.ends_with(" 1024")));
    let data = files("d", 4, 50_000, 5);
    let (commits, groups) = grow_image_with(&img, &data, 3 << 30, 3 << 20);
    assert_eq!(groups, 3072);
    assert!(commits > 1, "{commits} transactions");
    let mut ro = Ext4::open(FileDisk::open(&img).unwrap()).unwrap();
    assert_files(&mut ro, &data, "");
}

#[test]
fn a_resize_inode_that_does_not_own_its_reserve_is_refused() {
    // The disk is not trusted: the first reserved descriptor block's list of its copies
    // (block 3 of a 1 KiB image) names a block it should not; the grow refuses before it
    // changes anything, rather than reuse blocks the resize inode may not own.
    let dir = ext4img::tmpdir("grow-bad-resize-inode");
    let img = mkfs(&dir, "a.img", 1024, 4, &["-g", "1024"]);
    let mut bytes = fs::read(&img).unwrap();
    assert_eq!(
        u32::from_le_bytes(bytes[3 * 1024..3 * 1024 + 4].try_into().unwrap()),
        3 + 1024,
        "block 3 lists its copy in group 1"
    );
    bytes[3 * 1024..3 * 1024 + 4].copy_from_slice(&77u32.to_le_bytes());
    bytes.resize(24 << 20, 0);
    let mut fs = open_rw(MemDisk::new(bytes));
    let old = fs.superblock().blocks_count;
    assert!(matches!(
        fs.grow(24 << 10),
        Err(Error::Corrupt {
            what: "resize inode",
            ..
        })
    ));
    assert_eq!(fs.statfs().blocks, old);
    let out = fs.close().unwrap().into_vec().unwrap();
    let ro = Ext4::open(MemDisk::new(out)).unwrap();
    assert_eq!(ro.superblock().blocks_count, old);
}

// ---- Growing past the reserve: meta_bg ----
//
// When the descriptor blocks (and the resize inode's reserve) cannot describe the new
// groups, the engine does what Linux's online resize does (`ext4_resize_fs`): it grows to
// the end of the reserve, converts the file system to meta_bg (`ext4_convert_meta_bg`) and
// goes on with meta_bg descriptor blocks. Online resize cannot run here (no
// CAP_SYS_RESOURCE for EXT4_IOC_RESIZE_FS) and offline resize2fs moves metadata instead of
// converting, so the reference is Linux's procedure carried out with e2fsprogs: resize2fs
// to the end of the reserve, the conversion with debugfs (the same superblock fields, the
// resize inode's double-indirect block freed), then resize2fs, which grows a meta_bg file
// system without moving anything. The layouts must agree exactly (`dumpe2fs`).

/// Grow `img` to `blocks` as Linux's online resize would (see above), with e2fsprogs.
fn kernel_reference(img: &Path, blocks: u64) {
    let dump = ext4img::dumpe2fs(img);
    let num = |k: &str| head_num(&dump, k).unwrap_or(0);
    let features = dump
        .lines()
        .find(|l| l.starts_with("Filesystem features:"))
        .unwrap()
        .to_string();
    let has = |f: &str| features.split_whitespace().any(|x| x == f);
    let (bpg, fdb) = (num("Blocks per group:"), num("First block:"));
    let desc_size = if has("64bit") {
        num("Group descriptor size:")
    } else {
        32
    };
    let per = num("Block size:") / desc_size;
    let desc = (num("Block count:") - fdb).div_ceil(bpg).div_ceil(per);
    let reserved = num("Reserved GDT blocks:");
    let needed = (blocks - fdb).div_ceil(bpg).div_ceil(per);
    if has("meta_bg") || needed <= desc + reserved {
        return ext4img::resize2fs(img, blocks);
    }
    let mut cmds = format!("ssv first_meta_bg {}\n", desc + reserved);
    if has("resize_inode") {
        ext4img::resize2fs(img, (desc + reserved) * per * bpg + fdb);
        let stat = Command::new("debugfs")
            .args(["-R", "stat <7>"])
            .arg(img)
            .output()
            .unwrap();
        let stat = String::from_utf8_lossy(&stat.stdout);
        let dind: u64 = stat
            .split("(DIND):")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .expect("the resize inode's double-indirect block");
        cmds += &format!(
            "freeb {dind}\nsif <7> block[DIND] 0\nsif <7> blocks 0\nfeature -resize_inode meta_bg\n"
        );
    } else {
        cmds += "feature meta_bg\n";
    }
    let file = img.with_extension("debugfs");
    fs::write(&file, cmds).unwrap();
    ext4img::run(
        Command::new("debugfs")
            .arg("-w")
            .arg("-f")
            .arg(&file)
            .arg(img),
    );
    ext4img::resize2fs(img, blocks);
}

#[test]
fn metabg_1k_past_the_reserve() {
    // 1 MiB groups, 16 descriptors a block; mkfs reserves 2 descriptor blocks for 40000
    // blocks: 48 groups, then meta_bg from the fourth descriptor block on (to 100 groups).
    let extra = ["-g", "1024", "-E", "resize=40000"];
    let got = grow_case_with("mbg-1k", 1024, 4, &extra, 100 << 20, kernel_reference);
    assert_eq!(got, 100 << 10);
}

#[test]
fn metabg_4k_past_the_reserve() {
    // 4 MiB groups (-g 1024), 64 descriptors a block, 2 reserved: 192 groups, then meta_bg
    // up to a partial last group.
    let extra = ["-g", "1024", "-E", "resize=140000"];
    grow_case_with("mbg-4k", 4096, 64, &extra, 1100 << 20, kernel_reference);
}

#[test]
fn metabg_without_flex_bg_and_64bit() {
    // 32 descriptors a block, 1 reserved: 64 groups of 8 MiB, then meta_bg to 1 GiB.
    let extra = ["-O", "^flex_bg,^64bit", "-E", "resize=300000"];
    grow_case_with("mbg-noflex", 1024, 64, &extra, 1 << 30, kernel_reference);
}

#[test]
fn metabg_4k_without_64bit() {
    let extra = ["-g", "1024", "-O", "^64bit", "-E", "resize=262144"];
    grow_case_with("mbg-4k-32", 4096, 64, &extra, 1300 << 20, kernel_reference);
}

#[test]
fn metabg_without_resize_inode() {
    // No reserve: the first grow that needs a descriptor block converts (first meta group
    // 1: the one descriptor block stays where it is).
    let extra = ["-g", "1024", "-O", "^resize_inode"];
    grow_case_with("mbg-noresize", 1024, 4, &extra, 60 << 20, kernel_reference);
    let extra = ["-g", "1024", "-O", "^resize_inode"];
    grow_case_with(
        "mbg-noresize-4k",
        4096,
        64,
        &extra,
        400 << 20,
        kernel_reference,
    );
}

#[test]
fn metabg_made_by_mkfs() {
    // Already meta_bg: resize2fs itself is the reference.
    let extra = ["-g", "1024", "-O", "meta_bg,^resize_inode"];
    grow_case("mbg-mkfs", 1024, 4, &extra, 60 << 20);
    grow_case("mbg-mkfs-4k", 4096, 64, &extra, 600 << 20);
}

#[test]
fn metabg_stepped_grows() {
    // Within the reserve, across its end (the conversion), within a meta group, then many
    // meta groups; the reference takes the same steps. Files written between the steps.
    let dir = ext4img::tmpdir("mbg-steps");
    let img = mkfs(
        &dir,
        "a.img",
        1024,
        4,
        &["-g", "1024", "-E", "resize=40000"],
    );
    let reference = dir.join("reference.img");
    fs::copy(&img, &reference).unwrap();
    let mut written: Files = Vec::new();
    for (k, mib) in [30u64, 60, 61, 200].into_iter().enumerate() {
        extend(&img, mib << 20);
        extend(&reference, mib << 20);
        let mut fs = open_rw(FileDisk::open_rw(&img).unwrap());
        assert_eq!(fs.grow(mib << 10).unwrap(), mib << 10, "step {k}");
        fs.close().unwrap();
        e2fsck_clean(&img);
        kernel_reference(&reference, mib << 10);
        e2fsck_clean(&reference);
        ext4img::assert_same_layout(
            &format!("mbg-steps {k}"),
            &ext4img::dumpe2fs_layout(&img),
            &ext4img::dumpe2fs_layout(&reference),
        );
        assert_eq!(
            first_meta_bg(&img),
            if mib > 48 { Some(3) } else { None },
            "step {k}"
        );
        // The same files into both, so that the next step starts from the same bitmaps.
        let more = files(&format!("s{k}-"), 3, 200_000, 10 + k as u64);
        for p in [&img, &reference] {
            let mut fs = open_rw(FileDisk::open_rw(p).unwrap());
            write_files(&mut fs, &more);
            fs.close().unwrap();
        }
        written.extend(more);
        let mut ro = Ext4::open(FileDisk::open(&img).unwrap()).unwrap();
        for (name, d) in &written {
            assert!(read_file(&mut ro, name) == *d, "step {k}: {name}");
        }
    }
    if let Some(why) = cannot_mount() {
        pvfs_tests::skip(&format!("mbg-steps: loop mount not permitted: {why}"));
        return;
    }
    let (blocks, bsize) = linux_statfs(&img, &dir.join("m1"));
    assert_eq!(
        (blocks, bsize),
        linux_statfs(&reference, &dir.join("m2")),
        "Linux's statfs"
    );
    let m = LoopMount::new(&img, &dir.join("m3"), true).unwrap();
    for (name, data) in &written {
        assert!(fs::read(m.path().join(name)).unwrap() == *data, "{name}");
    }
}

#[test]
fn writes_on_a_meta_bg_volume_find_their_descriptors() {
    // mkfs's meta_bg (first meta group 0): 32 groups of 1 MiB in two meta groups, each
    // descriptor block in its meta group's first group. Files across most groups, half
    // removed: the descriptors the writer updates are the ones e2fsck and Linux read.
    let dir = ext4img::tmpdir("mbg-writes");
    let img = mkfs(
        &dir,
        "a.img",
        1024,
        32,
        &["-g", "1024", "-O", "meta_bg,^resize_inode"],
    );
    assert_eq!(first_meta_bg(&img), Some(0));
    let all = files("w", 24, 900_000, 21);
    let mut fs = open_rw(FileDisk::open_rw(&img).unwrap());
    write_files(&mut fs, &all);
    for (name, _) in all.iter().step_by(2) {
        fs.unlink(ROOT_INO, name.as_bytes()).unwrap();
    }
    fs.close().unwrap();
    e2fsck_clean(&img);
    let kept: Files = all.into_iter().skip(1).step_by(2).collect();
    if let Some(why) = cannot_mount() {
        pvfs_tests::skip(&format!("mbg-writes: loop mount not permitted: {why}"));
        return;
    }
    let m = LoopMount::new(&img, &dir.join("m"), true).unwrap();
    for (name, data) in &kept {
        assert!(fs::read(m.path().join(name)).unwrap() == *data, "{name}");
    }
}
