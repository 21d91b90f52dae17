//! The fuzz seed images (`fuzz/corpus/ext4_image/`) are valid images that our engine reads
//! completely, and agree with ext4-view where it can read them, so fuzzing starts from inputs
//! that reach every parser.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::{Ext4, FileType};
use std::path::{Path, PathBuf};

/// The seed corpus's folder and its images, in name order.
fn seeds() -> (PathBuf, Vec<PathBuf>) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ext4_image");
    let mut seeds: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    seeds.sort();
    (dir, seeds)
}

#[test]
fn seeds_scan_cleanly_and_match_ext4_view() {
    let (dir, seeds) = seeds();
    assert!(seeds.len() >= 4, "seed corpus missing in {}", dir.display());
    for p in seeds {
        let bytes = std::fs::read(&p).unwrap();
        assert!(
            bytes.len() <= 64 << 10,
            "{} is larger than 64 KiB",
            p.display()
        );
        let mut fs = Ext4::open(MemDisk::borrowed(&bytes)).unwrap();
        let st = fs.scan(10_000, 1 << 20);
        assert_eq!(st.errors, 0, "{}: {:?}", p.display(), st.first_error);
        assert!(
            st.inodes >= 15 && st.bytes >= 3000,
            "{}: {st:?}",
            p.display()
        );
        let f = fs.lookup_path(b"d/f").unwrap();
        assert_eq!(fs.getxattr(f, b"user.a").unwrap(), b"b");
        let s = fs.lookup_path(b"s").unwrap();
        assert_eq!(fs.getattr(s).unwrap().kind, FileType::Symlink);
        assert_eq!(fs.readlink(s).unwrap(), b"d/f");
        let mut b = [0u8; 8];
        assert_eq!(fs.read(s, 0, &mut b).unwrap(), 3);
        assert_eq!(&b[..3], b"d/f");
        let long = fs.lookup_path(b"longlink").unwrap();
        assert_eq!(fs.read(long, 78, &mut b).unwrap(), 2);
        let Ok(view) = ext4_view::Ext4::load(Box::new(bytes.clone())) else {
            // Only the inline_data seed is unreadable for ext4-view.
            assert!(
                fs.superblock().feature_incompat & 0x8000 != 0,
                "{}",
                p.display()
            );
            continue;
        };
        for name in ["/big", "/d/f", "/d/e7"] {
            let ino = fs.lookup_path(name.as_bytes()).unwrap();
            let mut got = vec![0u8; fs.getattr(ino).unwrap().size as usize];
            fs.read(ino, 0, &mut got).unwrap();
            assert_eq!(got, view.read(name).unwrap(), "{} {name}", p.display());
        }
    }
}

#[test]
fn larger_sectors() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/ext4_image");
    let p = std::fs::read_dir(&dir)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let bytes = std::fs::read(p).unwrap();
    // 1 KiB file-system blocks on 1 KiB sectors read the same.
    let disk = MemDisk::borrowed(&bytes).with_sector_size(1024).unwrap();
    let mut fs = Ext4::open(disk).unwrap();
    assert_eq!(fs.scan(1000, 1 << 20).errors, 0);
    // Blocks smaller than a sector cannot be addressed: refused, not misread.
    let disk = MemDisk::borrowed(&bytes).with_sector_size(4096).unwrap();
    let e = Ext4::open(disk).err().unwrap();
    assert!(
        matches!(e, pvfs_fs::ext4::Error::BadSuperblock { .. }),
        "{e:?}"
    );
    assert!(MemDisk::borrowed(&bytes).with_sector_size(1000).is_none());
}

#[test]
fn small_reads_are_cached_large_ones_bypass() {
    let (_, seeds) = seeds();
    let bytes = std::fs::read(&seeds[0]).unwrap();
    let mut fs = Ext4::open(MemDisk::borrowed(&bytes)).unwrap();
    let big = fs.lookup_path(b"big").unwrap();
    let mut buf = vec![0u8; 3000];
    assert_eq!(fs.read(big, 0, &mut buf).unwrap(), 3000);
    let after_first = fs.cache().stats();
    assert_eq!(fs.read(big, 0, &mut buf).unwrap(), 3000);
    let after_second = fs.cache().stats();
    assert_eq!(
        after_second.misses, after_first.misses,
        "second small read went to the device"
    );
    assert!(after_second.hits > after_first.hits);
    assert!(buf.iter().all(|&b| b == b'x'));
}
