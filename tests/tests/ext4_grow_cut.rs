//! Power cuts during a grow (`Ext4::grow`): the power is cut at every write of a grow (the
//! writes lost, or with the unflushed ones reordered as a volatile disk cache may), and the
//! volume the engine replays must be e2fsck-clean, hold the files written before, and have
//! the old size or the new one, and nothing in between; e2fsck's own replay of the same log
//! must be clean too, with the same size (`ext4_grow/common.rs`, `cut_every_write`). A grow that converts the
//! file system to `meta_bg` (past the reserved descriptor blocks: to the end of the
//! reserve, the conversion, the rest) is one transaction as well, so a cut leaves the old
//! size without `meta_bg` or the new one with it; only a converting grow too large for the
//! journal goes in committed steps. Layouts against e2fsprogs and Linux: `ext4_grow.rs`.
#![allow(clippy::unwrap_used, reason = "test code")]

#[path = "ext4_grow/common.rs"]
mod common;

use common::{
    assert_files, check_after_failed_grow, cut_every_write, extend, files, first_meta_bg,
    grow_image_with, open_rw,
};
use pvfs_fs::block::{FaultyDisk, FileDisk, MemDisk};
use pvfs_fs::ext4::{Error, Ext4};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::mkfs;
use std::collections::BTreeSet;
use std::fs;

/// `incompat` bit of `meta_bg`.
const META_BG: u32 = 0x10;

#[test]
fn grow_survives_a_power_cut_at_every_write() {
    let dir = ext4img::tmpdir("grow-cut");
    // 1 MiB groups: 4 to 24, with a new descriptor block and backup groups 5, 7 and 9.
    let img = mkfs(&dir, "base.img", 1024, 4, &["-g", "1024"]);
    let cuts = cut_every_write(&dir, &img, 24 << 20, 1);
    assert_eq!(
        cuts.seen(),
        BTreeSet::from([(cuts.old, false), (cuts.grown, false)]),
        "the old size and the new one"
    );
}

#[test]
fn metabg_grow_survives_a_power_cut() {
    // A converting grow: 4 groups to the end of the reserve (48), the conversion, then 56
    // groups with a meta_bg descriptor block, in one transaction: every cut leaves 4 groups
    // without meta_bg or 56 with it, never the reserve's end.
    let dir = ext4img::tmpdir("mbg-cut");
    let img = mkfs(
        &dir,
        "base.img",
        1024,
        4,
        &["-g", "1024", "-E", "resize=40000"],
    );
    let cuts = cut_every_write(&dir, &img, 56 << 20, 1);
    assert_eq!(cuts.grown, 56 << 10);
    assert_eq!(
        cuts.seen(),
        BTreeSet::from([(cuts.old, false), (cuts.grown, true)]),
        "the old size and the new one, nothing in between"
    );
}

#[test]
fn metabg_grow_without_resize_inode_survives_a_power_cut() {
    // No reserve: the conversion (first meta group 1) and 4 to 40 groups, in one
    // transaction.
    let dir = ext4img::tmpdir("mbg-cut-noresize");
    let img = mkfs(
        &dir,
        "base.img",
        1024,
        4,
        &["-g", "1024", "-O", "^resize_inode"],
    );
    let cuts = cut_every_write(&dir, &img, 40 << 20, 1);
    assert_eq!(cuts.grown, 40 << 10);
    assert_eq!(
        cuts.seen(),
        BTreeSet::from([(cuts.old, false), (cuts.grown, true)]),
        "the old size and the new one, nothing in between"
    );
}

#[test]
fn metabg_grow_without_checksums_and_flex_bg_survives_a_power_cut() {
    // The new inode tables are zeroed (written in place before the commit), each in its own
    // group.
    let dir = ext4img::tmpdir("mbg-cut-nocsum");
    let img = mkfs(
        &dir,
        "base.img",
        1024,
        4,
        &[
            "-g",
            "1024",
            "-O",
            "^metadata_csum,^flex_bg",
            "-E",
            "resize=40000",
        ],
    );
    let cuts = cut_every_write(&dir, &img, 56 << 20, 1);
    assert_eq!(
        cuts.seen(),
        BTreeSet::from([(cuts.old, false), (cuts.grown, true)]),
        "the old size and the new one, nothing in between"
    );
}

#[test]
fn a_converting_grow_is_one_transaction() {
    // 1 KiB and 4 KiB blocks, with and without a resize inode: one commit takes the volume
    // past the reserve into meta_bg.
    // (tag, block size, MiB, mkfs options, grown bytes, first meta group)
    type Case<'a> = (&'a str, u32, u64, &'a [&'a str], u64, u64);
    let cases: [Case<'_>; 3] = [
        (
            "1k",
            1024,
            4,
            &["-g", "1024", "-E", "resize=40000"],
            100 << 20,
            3,
        ),
        (
            "4k",
            4096,
            64,
            &["-g", "1024", "-E", "resize=140000"],
            1100 << 20,
            3,
        ),
        (
            "noresize",
            1024,
            4,
            &["-g", "1024", "-O", "^resize_inode"],
            60 << 20,
            1,
        ),
    ];
    for (tag, block, mib, extra, bytes, first) in cases {
        let dir = ext4img::tmpdir(&format!("mbg-one-{tag}"));
        let img = mkfs(&dir, "a.img", block, mib, extra);
        let data = files("d", 3, 40_000, 7);
        let (commits, _) = grow_image_with(&img, &data, bytes, bytes / u64::from(block));
        assert_eq!(commits, 1, "{tag}: one transaction");
        assert_eq!(first_meta_bg(&img), Some(first), "{tag}");
        let mut ro = Ext4::open(FileDisk::open(&img).unwrap()).unwrap();
        assert_files(&mut ro, &data, &format!("{tag}: "));
    }
}

#[test]
fn a_converting_grow_too_large_for_the_journal_goes_in_steps() {
    // 1 KiB blocks, 1 MiB groups, a 1024-block journal, and a reserve of 131 descriptor
    // blocks (to 2160 groups): the first part alone takes them all, each in group 0 and in
    // the 8 old backup groups, more than one transaction can carry. So the grow goes in
    // committed steps (the first part itself halved), the conversion one of them.
    let dir = ext4img::tmpdir("mbg-steps-journal");
    let img = mkfs(
        &dir,
        "a.img",
        1024,
        64,
        &["-g", "1024", "-J", "size=1", "-E", "resize=2200000"],
    );
    let dump = ext4img::dumpe2fs(&img);
    assert!(dump
        .lines()
        .any(|l| l.starts_with("Reserved GDT blocks:") && l.ends_with(" 131")));
    let data = files("d", 4, 50_000, 5);
    let (commits, groups) = grow_image_with(&img, &data, 2560 << 20, 2560 << 10);
    assert_eq!(groups, 2560);
    println!("{commits} transactions");
    // At least two steps to the reserve's end, the conversion, the rest.
    assert!(commits >= 4, "{commits} transactions");
    assert_eq!(first_meta_bg(&img), Some(135));
    let mut ro = Ext4::open(FileDisk::open(&img).unwrap()).unwrap();
    assert_files(&mut ro, &data, "");
}

#[test]
fn a_converting_grow_that_fails_before_its_commit_changes_nothing() {
    // No resize inode: the conversion first, then the grow, which reads the last group's
    // block bitmap (to extend the group) and fails there. The conversion, already made in
    // the cache, is undone with the rest: the engine goes on at the old size, not meta_bg,
    // and its next commits carry none of it.
    let dir = ext4img::tmpdir("mbg-undo");
    let img = mkfs(
        &dir,
        "a.img",
        1024,
        4,
        &["-g", "1024", "-O", "^resize_inode"],
    );
    extend(&img, 40 << 20);
    let mut fs = open_rw(FaultyDisk::new(MemDisk::new(fs::read(&img).unwrap())));
    let bitmap = fs.groups()[3].block_bitmap;
    fs.device_mut().fail_sector(bitmap * 2);
    let old = fs.superblock().blocks_count;
    let free = fs.statfs().free_blocks;
    let r = fs.grow(40 << 10);
    assert!(matches!(r, Err(Error::Dev(_))), "{r:?}");
    assert_eq!(fs.device_mut().failed_reads, 1);
    assert_eq!(fs.superblock().blocks_count, old);
    assert_eq!(fs.superblock().feature_incompat & META_BG, 0);
    assert_eq!((fs.statfs().blocks, fs.statfs().free_blocks), (old, free));
    assert_eq!(fs.groups().len(), 4);
    let p = check_after_failed_grow(fs, &dir, old);
    assert_eq!(first_meta_bg(&p), None);
}
