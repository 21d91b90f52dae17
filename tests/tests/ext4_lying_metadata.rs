//! Images whose metadata lies about where metadata is: a block bitmap that does not match its
//! checksum, a bitmap (with a valid checksum) that marks the superblock, descriptors and inode
//! table free, and files whose block pointers lead into the metadata or the journal. The
//! engine refuses each with an error and never writes file data over the metadata
//! (Linux's `ext4_validate_block_bitmap` and `block_validity`).
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::{FileDisk, MemDisk};
use pvfs_fs::ext4::{Error, Ext4, Options, ROOT_INO};
use pvfs_tests::ext4img::{self, debugfs_w};
use pvfs_tests::wimg;
use std::fs;
use std::path::Path;
use std::process::Command;

/// Group 0's inode table and its length, as the engine reads them.
fn layout(img: &Path) -> (u64, u64) {
    let bytes = fs::read(img).unwrap();
    let fs = Ext4::open(MemDisk::borrowed(&bytes)).unwrap();
    let sb = fs.superblock();
    let itb = (u64::from(sb.inodes_per_group) * u64::from(sb.inode_size)).div_ceil(1024);
    (fs.groups()[0].inode_table, itb)
}

fn block(img: &Path, b: u64) -> Vec<u8> {
    let bytes = fs::read(img).unwrap();
    bytes[(b * 1024) as usize..((b + 1) * 1024) as usize].to_vec()
}

/// The physical blocks `debugfs` says file `path` maps (`-c`: without reading the bitmaps,
/// which it refuses when one fails its checksum).
fn blocks_of(img: &Path, path: &str) -> Vec<u64> {
    let out = Command::new("debugfs")
        .args(["-c", "-R", &format!("blocks {path}")])
        .arg(img)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect()
}

fn open_rw(img: &Path) -> Ext4<FileDisk> {
    Ext4::open_rw(FileDisk::open_rw(img).unwrap(), &Options::default()).unwrap()
}

/// Group `g`'s block bitmap with the bit of its first block cleared behind the checksum (as
/// the fuzzer's image that had file data written over its superblock).
fn unmark_first_block(img: &Path, g: usize) {
    let bytes = fs::read(img).unwrap();
    let bb = Ext4::open(MemDisk::borrowed(&bytes)).unwrap().groups()[g].block_bitmap;
    let mut bytes = bytes;
    bytes[(bb * 1024) as usize] &= !1;
    fs::write(img, &bytes).unwrap();
}

/// A block bitmap changed behind its checksum is refused: allocation goes to another group,
/// and with none left the write fails with a checksum error naming the bitmap. The
/// superblock, which the changed bit marked free, is never written over.
#[test]
fn block_bitmap_that_fails_its_checksum_is_refused() {
    let d = ext4img::tmpdir("lying-bitmap-csum");
    // 16 MiB at 1 KiB blocks: two groups of 8,192 blocks.
    let img = wimg::mkfs(&d, "fs.img", 1024, 16, &[]);
    let two = d.join("both.img");
    fs::copy(&img, &two).unwrap();
    unmark_first_block(&img, 0);

    let mut fs = open_rw(&img);
    let ino = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
    assert_eq!(fs.write(ino, 0, &[0x5a; 8192]).unwrap(), 8192);
    fs.close().unwrap();
    let mapped = blocks_of(&img, "/f");
    assert!(!mapped.is_empty());
    assert!(mapped.iter().all(|&b| b > 8192), "{mapped:?}");
    // The superblock still matches its checksum (mounting verifies it).
    Ext4::open(MemDisk::borrowed(&fs::read(&img).unwrap())).unwrap();

    unmark_first_block(&two, 0);
    unmark_first_block(&two, 1);
    let mut fs = open_rw(&two);
    let ino = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
    let e = fs.write(ino, 0, &[0x5a; 8192]).unwrap_err();
    assert_eq!(
        e,
        Error::Checksum {
            what: "block bitmap",
            at: 0
        }
    );
    drop(fs);
    assert!(!block(&two, 1).starts_with(&[0x5a; 64]));
    Ext4::open(MemDisk::borrowed(&fs::read(&two).unwrap())).unwrap();
}

/// A bitmap that lies with a valid checksum (`debugfs freeb` keeps the counts and checksums
/// right): the superblock, the descriptor block and group 0's inode table marked free, where
/// a file in group 0 starts looking. The allocator marks them in use again (as Linux does)
/// and looks past them: the volume fills to `ENOSPC` with no file block in the metadata, and
/// the bitmap is true again, so `e2fsck` finds the volume clean.
#[test]
fn forged_bitmap_cannot_hand_out_metadata() {
    let d = ext4img::tmpdir("lying-bitmap-forged");
    let img = wimg::mkfs(&d, "fs.img", 1024, 4, &["-m", "0"]);
    let (it, itb) = layout(&img);
    debugfs_w(&img, "freeb 1 2");
    debugfs_w(&img, &format!("freeb {it} {itb}"));
    let mut fs = open_rw(&img);
    let ino = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
    let chunk = vec![0x5a; 64 * 1024];
    let mut off = 0u64;
    loop {
        match fs.write(ino, off, &chunk) {
            Ok(n) => off += n as u64,
            Err(Error::NoSpace) => break,
            Err(e) => panic!("after {off} bytes: {e:?}"),
        }
        assert!(off < 8 << 20, "a 4 MiB volume took {off} bytes");
    }
    assert!(off > 2 << 20, "{off}");
    fs.close().unwrap();
    let meta: Vec<u64> = (1..3).chain(it..it + itb).collect();
    let mapped = blocks_of(&img, "/f");
    assert!(
        mapped.iter().all(|b| !meta.contains(b)),
        "file blocks over metadata: {mapped:?}"
    );
    wimg::e2fsck_clean(&img);
}

/// Files whose block pointer (extent or, without `extent`, direct) leads to the descriptor
/// block, the inode table or the journal: reading them fails, writing them (the writer
/// mounts extent volumes only) fails, and the block is left as it was.
#[test]
fn block_pointers_into_metadata_are_refused() {
    for extents in [true, false] {
        let name = if extents { "extents" } else { "indirect" };
        let d = ext4img::tmpdir(&format!("lying-pointer-{name}"));
        let src = d.join("root");
        fs::create_dir_all(&src).unwrap();
        fs::write(src.join("f"), [0x11u8; 1024]).unwrap();
        let img = d.join("fs.img");
        let mut args = vec!["-b", "1024", "-d", src.to_str().unwrap()];
        if !extents {
            args.extend_from_slice(&["-O", "^extent,^64bit"]);
        }
        wimg::mkfs_sized(&img, "4M", &args);
        let (it, _) = layout(&img);
        let journal = blocks_of(&img, "<8>")[1];
        // i_block[5] is the first extent's start (after the header and the extent's logical
        // block and length); i_block[0] is the first direct pointer.
        let field = if extents { 5 } else { 0 };
        for target in [2, it, journal] {
            debugfs_w(&img, &format!("sif /f block[{field}] {target}"));
            let before = block(&img, target);
            let bytes = fs::read(&img).unwrap();
            let mut ro = Ext4::open(MemDisk::borrowed(&bytes)).unwrap();
            let ino = ro.lookup(ROOT_INO, b"f").unwrap();
            let r = ro.read(ino, 0, &mut [0u8; 1024]);
            let e = r.expect_err(&format!("{name}: reading block {target}"));
            assert!(matches!(e, Error::Corrupt { .. }), "{name} {target}: {e:?}");
            if extents {
                let mut fs = open_rw(&img);
                let e = fs.write(ino, 0, &[0x5a; 1024]).unwrap_err();
                assert!(matches!(e, Error::Corrupt { .. }), "{name} {target}: {e:?}");
                fs.close().unwrap();
            }
            assert_eq!(
                block(&img, target),
                before,
                "{name}: block {target} written"
            );
        }
    }
}

/// The checks cost nothing to a volume that tells the truth: files written to fill a
/// multi-group volume with `flex_bg`, then removed, and `e2fsck` finds it clean.
#[test]
fn honest_volumes_fill_and_empty_cleanly() {
    let d = ext4img::tmpdir("lying-none");
    let img = wimg::mkfs(&d, "fs.img", 1024, 32, &["-G", "4"]);
    let mut fs = open_rw(&img);
    let chunk = vec![0x33; 256 * 1024];
    let mut files = Vec::new();
    'fill: for i in 0.. {
        let name = format!("f{i}");
        let ino = fs.create(ROOT_INO, name.as_bytes(), 0o644, 0, 0).unwrap();
        files.push(name);
        for k in 0..8u64 {
            match fs.write(ino, k * chunk.len() as u64, &chunk) {
                Ok(_) => {}
                Err(Error::NoSpace) => break 'fill,
                Err(e) => panic!("{e:?}"),
            }
        }
    }
    assert!(files.len() > 10);
    fs.sync().unwrap();
    for name in &files {
        fs.unlink(ROOT_INO, name.as_bytes()).unwrap();
    }
    fs.close().unwrap();
    wimg::e2fsck_clean(&img);
}

/// Freeing in a group whose bitmap is refused leaks, as Linux does, rather than failing the
/// operation: a file with blocks in both groups is removed although group 1's block bitmap
/// fails its checksum (group 0's blocks are given back, group 1's bitmap is left as it was),
/// and one whose inode is in a group with a refused inode bitmap is removed too. The next
/// mount finds neither file.
#[test]
fn freeing_under_a_refused_bitmap_leaks_instead_of_failing() {
    let d = ext4img::tmpdir("lying-bitmap-free");
    let img = wimg::mkfs(&d, "fs.img", 1024, 16, &["-m", "0"]);
    let mut fs = open_rw(&img);
    let big = fs.create(ROOT_INO, b"big", 0o644, 0, 0).unwrap();
    let chunk = vec![0x5a; 256 * 1024];
    for k in 0..40u64 {
        fs.write(big, k * chunk.len() as u64, &chunk).unwrap();
    }
    let small = fs.create(ROOT_INO, b"small", 0o644, 0, 0).unwrap();
    fs.write(small, 0, &[0x11; 1024]).unwrap();
    fs.close().unwrap();
    let mapped = blocks_of(&img, "/big");
    assert!(mapped.iter().any(|&b| b < 8193) && mapped.iter().any(|&b| b > 8193));

    // Group 1's block bitmap and group 0's inode bitmap (the small file's) changed behind
    // their checksums: one bit flipped in each.
    let bytes = fs::read(&img).unwrap();
    let (bb1, ib0) = {
        let ro = Ext4::open(MemDisk::borrowed(&bytes)).unwrap();
        (ro.groups()[1].block_bitmap, ro.groups()[0].inode_bitmap)
    };
    let mut bytes = bytes;
    bytes[(bb1 * 1024 + 1000) as usize] ^= 0x80;
    bytes[(ib0 * 1024 + 200) as usize] ^= 0x01;
    fs::write(&img, &bytes).unwrap();
    let bb1_before = block(&img, bb1);

    let mut fs = open_rw(&img);
    let free0 = fs.groups()[0].free_blocks;
    let free1 = fs.groups()[1].free_blocks;
    fs.unlink(ROOT_INO, b"big").unwrap();
    fs.unlink(ROOT_INO, b"small").unwrap();
    assert!(
        fs.groups()[0].free_blocks > free0,
        "group 0 got nothing back"
    );
    assert_eq!(fs.groups()[1].free_blocks, free1);
    fs.close().unwrap();
    assert_eq!(
        block(&img, bb1),
        bb1_before,
        "the refused bitmap was written"
    );

    let bytes = fs::read(&img).unwrap();
    let mut ro = Ext4::open(MemDisk::borrowed(&bytes)).unwrap();
    for name in [&b"big"[..], b"small"] {
        assert_eq!(ro.lookup(ROOT_INO, name), Err(Error::NotFound));
    }
}
