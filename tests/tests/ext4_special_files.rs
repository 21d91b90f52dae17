//! ext4 symbolic links, hard links (up to 65000), device nodes and setattr through the engine on
//! `mkfs.ext4` images at 1k and 4k blocks, checked with `e2fsck -fn`, debugfs and ext4-view.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::ext4::{Error, FileType, Ino, SetAttr, Timestamp, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::namei::{image, ro, stat, view};
use pvfs_tests::wimg::{debugfs, e2fsck_clean, open_rw, symlink_target, CLOCK};

const TS: Timestamp = Timestamp {
    sec: 1_600_000_123,
    nsec: 987_654_321,
};

fn special_files(block: u32) {
    let img = image("special", block, &[]);
    let long = symlink_target(block as usize - 1, 50);
    let (free_b, free_i);
    {
        let mut fs = open_rw(&img);
        free_b = fs.statfs().free_blocks;
        free_i = fs.statfs().free_inodes;
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        // Fast (< 60 bytes) and slow symlinks, at the boundary and at the longest.
        let s59 = vec![b'x'; 59];
        let s60 = vec![b'y'; 60];
        let fast = fs.symlink(d, b"fast", &s59, 1000, 1001).unwrap();
        let slow = fs.symlink(d, b"slow", &s60, 0, 0).unwrap();
        fs.symlink(d, b"longest", &long, 0, 0).unwrap();
        let mut too_long = long.clone();
        too_long.push(b'z');
        // Linux's ext4 answers ENAMETOOLONG past a block less one byte (ext4_symlink).
        assert_eq!(
            fs.symlink(d, b"toolong", &too_long, 0, 0),
            Err(Error::TargetTooLong)
        );
        assert!(matches!(
            fs.symlink(d, b"empty", b"", 0, 0),
            Err(Error::Invalid { .. })
        ));
        assert_eq!(fs.symlink(d, b"fast", b"t", 0, 0), Err(Error::Exists));
        assert_eq!(fs.readlink(fast).unwrap(), s59);
        assert_eq!(fs.readlink(slow).unwrap(), s60);
        assert_eq!(fs.getattr(fast).unwrap().blocks, 0);
        assert_eq!(fs.getattr(slow).unwrap().blocks, u64::from(block / 512));
        // Hard links.
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        fs.write(f, 0, b"hello").unwrap();
        fs.link(f, d, b"f2").unwrap();
        fs.link(fast, ROOT_INO, b"fastlink").unwrap();
        assert_eq!(fs.getattr(f).unwrap().nlink, 2);
        assert!(matches!(
            fs.link(d, ROOT_INO, b"dd"),
            Err(Error::IsDir { .. })
        ));
        assert_eq!(fs.link(f, d, b"f2"), Err(Error::Exists));
        // Special files: old and new device number encodings.
        let fifo = fs.mknod(d, b"fifo", 0x1000 | 0o600, 0, 5, 6).unwrap();
        let sock = fs.mknod(d, b"sock", 0xC000 | 0o644, 0, 0, 0).unwrap();
        let chr = fs.mknod(d, b"null", 0x2000 | 0o666, 0x103, 0, 0).unwrap();
        // major 259, minor 70000 in glibc makedev layout.
        let (ma, mi) = (259u64, 70000u64);
        let rdev = (mi & 0xff) | ((ma & 0xfff) << 8) | ((mi & !0xff) << 12);
        let blk = fs.mknod(d, b"blk", 0x6000 | 0o660, rdev, 0, 6).unwrap();
        let reg = fs.mknod(d, b"reg", 0x8000 | 0o640, 0, 0, 0).unwrap();
        assert!(matches!(
            fs.mknod(d, b"bad", 0x4000 | 0o755, 0, 0, 0),
            Err(Error::Invalid { .. })
        ));
        let a = fs.getattr(blk).unwrap();
        assert_eq!(
            (a.kind, a.rdev_major, a.rdev_minor),
            (FileType::BlockDev, 259, 70000)
        );
        let a = fs.getattr(chr).unwrap();
        assert_eq!(
            (a.kind, a.rdev_major, a.rdev_minor),
            (FileType::CharDev, 1, 3)
        );
        assert_eq!(fs.getattr(fifo).unwrap().kind, FileType::Fifo);
        assert_eq!(fs.getattr(sock).unwrap().kind, FileType::Socket);
        assert_eq!(fs.getattr(reg).unwrap().kind, FileType::Regular);
        // setattr: permission bits only, 32-bit owners, nanosecond times, ctime = clock.
        let set = SetAttr {
            mode: Some(0o104_755),
            uid: Some(100_000),
            gid: Some(70_000),
            atime: Some(TS),
            mtime: Some(Timestamp {
                sec: TS.sec + 1,
                nsec: 1,
            }),
            ctime: None,
        };
        fs.setattr(f, &set).unwrap();
        let a = fs.getattr(f).unwrap();
        assert_eq!(a.mode, 0o104_755 & 0o7777 | 0x8000);
        assert_eq!((a.uid, a.gid), (100_000, 70_000));
        assert_eq!(a.atime, TS);
        assert_eq!(a.mtime.nsec, 1);
        assert_eq!(a.ctime, CLOCK);
        let bad = SetAttr {
            atime: Some(Timestamp {
                sec: 0,
                nsec: 1_000_000_000,
            }),
            ..SetAttr::default()
        };
        assert!(matches!(fs.setattr(f, &bad), Err(Error::Invalid { .. })));
        fs.setattr(
            chr,
            &SetAttr {
                ctime: Some(TS),
                mode: Some(0o600),
                ..SetAttr::default()
            },
        )
        .unwrap();
        assert_eq!(fs.getattr(chr).unwrap().ctime, TS);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    let ls = String::from_utf8_lossy(&debugfs(&img, "ls -l /d")).into_owned();
    for (name, mode) in [
        ("fifo", "10600"),
        ("sock", "140644"),
        ("null", "20600"),
        ("blk", "60660"),
        ("fast", "120777"),
        ("reg", "100640"),
    ] {
        assert!(
            ls.lines().any(|l| l.contains(mode) && l.ends_with(name)),
            "{name} {mode}:\n{ls}"
        );
    }
    assert!(stat(&img, "/d/blk").contains("Device major/minor number: 259:70000"));
    assert!(stat(&img, "/d/null").contains("Device major/minor number: 01:03"));
    let st = stat(&img, "/d/fast");
    assert!(st.contains("Fast link dest: \"xxxxxxxx"), "{st}");
    assert!(st.contains("User:  1000   Group:  1001"), "{st}");
    let st = stat(&img, "/f");
    assert!(st.contains("Links: 2"), "{st}");
    assert!(st.contains("User: 100000   Group: 70000"), "{st}");
    assert!(st.contains("Mode:  04755"), "{st}");
    // atime nanoseconds in the extra field: nsec << 2.
    assert!(
        st.contains(&format!(" atime: 0x{:08x}:{:08x}", TS.sec, TS.nsec << 2)),
        "{st}"
    );
    assert_eq!(debugfs(&img, "cat /d/f2"), b"hello");
    assert_eq!(debugfs(&img, "cat /d/slow"), vec![b'y'; 60]);
    let v = view(&img);
    assert_eq!(v.read_link("/d/longest").unwrap().as_ref(), long.as_slice());
    assert_eq!(
        v.read_link("/fastlink").unwrap().as_ref(),
        vec![b'x'; 59].as_slice()
    );
    let m = v.metadata("/f").unwrap();
    assert_eq!((m.mode(), m.uid(), m.gid()), (0o4755, 100_000, 70_000));
    assert_eq!(
        (m.accessed().seconds(), m.accessed().nanoseconds()),
        (TS.sec, TS.nsec)
    );
    assert!(v.symlink_metadata("/d/slow").unwrap().is_symlink());
    // Unlinking every kind gives back all blocks and inodes.
    {
        let mut fs = open_rw(&img);
        let d = fs.lookup(ROOT_INO, b"d").unwrap();
        for n in [
            &b"fast"[..],
            b"slow",
            b"longest",
            b"f2",
            b"fifo",
            b"sock",
            b"null",
            b"blk",
            b"reg",
        ] {
            fs.unlink(d, n).unwrap();
        }
        fs.unlink(ROOT_INO, b"f").unwrap();
        fs.unlink(ROOT_INO, b"fastlink").unwrap();
        fs.rmdir(ROOT_INO, b"d").unwrap();
        assert_eq!(fs.statfs().free_blocks, free_b);
        assert_eq!(fs.statfs().free_inodes, free_i);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
}

#[test]
fn special_files_4k() {
    special_files(4096);
}

#[test]
fn special_files_1k() {
    special_files(1024);
}

/// `link` stops at 65000 links with `TooManyLinks`.
#[test]
fn link_max() {
    for block in [1024, 4096] {
        let img = image("emlink", block, &[]);
        {
            let mut fs = open_rw(&img);
            fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
            fs.close().unwrap();
        }
        ext4img::debugfs_w(&img, "sif /f links_count 64999");
        let mut fs = open_rw(&img);
        let f = fs.lookup(ROOT_INO, b"f").unwrap();
        fs.link(f, ROOT_INO, b"g").unwrap();
        assert_eq!(fs.getattr(f).unwrap().nlink, 65000);
        assert_eq!(fs.link(f, ROOT_INO, b"h"), Err(Error::TooManyLinks));
        assert_eq!(fs.lookup(ROOT_INO, b"h"), Err(Error::NotFound));
        fs.close().unwrap();
        let r: Ino = ro(&img).lookup(ROOT_INO, b"g").unwrap();
        assert_eq!(r, f);
    }
}
