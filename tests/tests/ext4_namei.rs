//! ext4 namespace operations (symlink, link, mknod, setattr, rename, pin/unpin with orphan
//! reclaim): images made by `mkfs.ext4` at 1k and 4k blocks are changed through the engine and
//! must pass `e2fsck -fn`; results are checked with `debugfs`, ext4-view and the engine's own
//! read path.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::{FileDisk, MemDisk};
use pvfs_fs::ext4::{
    Error, Ext4, Fallocate, FileType, Ino, RenameFlags, SetAttr, Timestamp, ROOT_INO,
};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs, open_rw, symlink_target, CLOCK};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

fn image(tag: &str, block: u32, extra: &[&str]) -> PathBuf {
    image_mib(tag, block, 16, extra)
}

fn image_mib(tag: &str, block: u32, mib: u64, extra: &[&str]) -> PathBuf {
    let dir = ext4img::tmpdir(&format!("namei-{tag}-{block}"));
    mkfs(&dir, "a.img", block, mib, extra)
}

fn stat(img: &Path, what: &str) -> String {
    String::from_utf8_lossy(&debugfs(img, &format!("stat {what}"))).into_owned()
}

fn view(img: &Path) -> ext4_view::Ext4 {
    ext4_view::Ext4::load(Box::new(fs::read(img).unwrap())).unwrap()
}

fn ro(img: &Path) -> Ext4<MemDisk<'static>> {
    Ext4::open(MemDisk::new(fs::read(img).unwrap())).unwrap()
}

/// `e2fsck -fy` on a copy of `img` (left as it is): e2fsck's report.
fn repair_a_copy(img: &Path) -> String {
    let copy = img.with_extension("copy");
    fs::copy(img, &copy).unwrap();
    ext4img::e2fsck_fix(&copy, "-fy")
}

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
        assert!(matches!(
            fs.symlink(d, b"toolong", &too_long, 0, 0),
            Err(Error::Invalid { .. })
        ));
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

const LATER: Timestamp = Timestamp {
    sec: 1_700_000_500,
    nsec: 42,
};

fn flags(noreplace: bool, exchange: bool) -> RenameFlags {
    RenameFlags {
        noreplace,
        exchange,
    }
}

/// `f` (the rename `what`) must fail with `want` and leave the image byte-for-byte unchanged.
#[track_caller]
fn refused(
    fs: &mut Ext4<FileDisk>,
    img: &Path,
    what: &str,
    want: fn(&Error) -> bool,
    f: impl FnOnce(&mut Ext4<FileDisk>) -> Result<(), Error>,
) {
    fs.sync().unwrap();
    let before = fs::read(img).unwrap();
    let Err(e) = f(fs) else {
        panic!("{what}: rename succeeded");
    };
    assert!(want(&e), "{what}: unexpected error {e:?}");
    fs.sync().unwrap();
    assert!(
        fs::read(img).unwrap() == before,
        "{what}: refused rename changed the image ({e:?})"
    );
}

/// A rename that must be refused: the error wanted, the source directory and name, the target
/// directory and name, and the flags.
type Refusal = (
    fn(&Error) -> bool,
    Ino,
    &'static [u8],
    Ino,
    &'static [u8],
    RenameFlags,
);

fn is_dir(e: &Error) -> bool {
    matches!(e, Error::IsDir { .. })
}

fn not_dir(e: &Error) -> bool {
    matches!(e, Error::NotDir { .. })
}

fn invalid(e: &Error) -> bool {
    matches!(e, Error::Invalid { .. })
}

fn not_empty(e: &Error) -> bool {
    *e == Error::NotEmpty
}

fn exists(e: &Error) -> bool {
    *e == Error::Exists
}

fn not_found(e: &Error) -> bool {
    *e == Error::NotFound
}

fn invalid_name(e: &Error) -> bool {
    *e == Error::InvalidName
}

fn nlink(fs: &mut Ext4<FileDisk>, ino: Ino) -> u32 {
    fs.getattr(ino).unwrap().nlink
}

fn rename_matrix(block: u32) {
    let img = image("rename", block, &[]);
    let free_i;
    {
        let mut fs = open_rw(&img);
        free_i = fs.statfs().free_inodes;
        let a = fs.mkdir(ROOT_INO, b"a", 0o755, 0, 0).unwrap();
        let b = fs.mkdir(ROOT_INO, b"b", 0o755, 0, 0).unwrap();
        let sub = fs.mkdir(a, b"sub", 0o755, 0, 0).unwrap();
        let deep = fs.mkdir(sub, b"deep", 0o755, 0, 0).unwrap();
        let full = fs.mkdir(a, b"full", 0o755, 0, 0).unwrap();
        fs.create(full, b"x", 0o644, 0, 0).unwrap();
        let empty = fs.mkdir(b, b"empty", 0o755, 0, 0).unwrap();
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        fs.write(f, 0, b"file f").unwrap();
        let g = fs.create(ROOT_INO, b"g", 0o644, 0, 0).unwrap();
        fs.write(g, 0, &[7u8; 5000]).unwrap();
        fs.link(g, ROOT_INO, b"h").unwrap();
        let k = fs.create(a, b"k", 0o644, 0, 0).unwrap();
        fs.write(k, 0, &[9u8; 9000]).unwrap();
        let s = fs.symlink(ROOT_INO, b"s", b"a/k", 0, 0).unwrap();

        // Errors, each leaving the image unchanged.
        let none = flags(false, false);
        let (noreplace, exchange) = (flags(true, false), flags(false, true));
        let refusals: [Refusal; 12] = [
            (is_dir, ROOT_INO, b"f", a, b"full", none),
            (not_dir, a, b"full", ROOT_INO, b"f", none),
            (not_empty, b, b"empty", a, b"full", none),
            (invalid, ROOT_INO, b"a", deep, b"a", none),
            (invalid, a, b"sub", sub, b"again", none),
            (invalid, a, b"sub", ROOT_INO, b"a", exchange),
            (exists, ROOT_INO, b"f", ROOT_INO, b"g", noreplace),
            (not_found, ROOT_INO, b"f", ROOT_INO, b"nothing", exchange),
            (not_found, ROOT_INO, b"nothing", ROOT_INO, b"f", none),
            (invalid_name, ROOT_INO, b"f", ROOT_INO, b"..", none),
            (invalid, ROOT_INO, b"f", ROOT_INO, b"z", flags(true, true)),
            (not_dir, f, b"x", ROOT_INO, b"z", none),
        ];
        for (i, (want, from, name, to, new, fl)) in refusals.into_iter().enumerate() {
            let what = format!(
                "refusal {i} ({from}/{} -> {to}/{}, {fl:?})",
                String::from_utf8_lossy(name),
                String::from_utf8_lossy(new)
            );
            refused(&mut fs, &img, &what, want, |fs| {
                fs.rename(from, name, to, new, fl)
            });
        }
        // Same inode on both sides (two links): a no-op.
        fs.rename(ROOT_INO, b"g", ROOT_INO, b"h", none).unwrap();
        assert_eq!(fs.lookup(ROOT_INO, b"g").unwrap(), g);
        assert_eq!(fs.lookup(ROOT_INO, b"h").unwrap(), g);

        fs.set_clock(LATER);
        // Plain move within a directory and across directories (noreplace, fresh name).
        fs.rename(ROOT_INO, b"f", ROOT_INO, b"f1", none).unwrap();
        fs.rename(ROOT_INO, b"f1", b, b"f2", flags(true, false))
            .unwrap();
        assert_eq!(fs.lookup(b, b"f2").unwrap(), f);
        assert_eq!(fs.getattr(f).unwrap().ctime, LATER);
        assert_eq!(fs.getattr(ROOT_INO).unwrap().mtime, LATER);
        assert_eq!(fs.getattr(b).unwrap().ctime, LATER);
        // File over a file with another link: that inode keeps one link.
        fs.rename(b, b"f2", ROOT_INO, b"h", none).unwrap();
        assert_eq!(fs.lookup(ROOT_INO, b"h").unwrap(), f);
        assert_eq!(nlink(&mut fs, g), 1);
        // File over its last link: freed with its blocks.
        let blocks = fs.statfs().free_blocks;
        fs.rename(a, b"k", ROOT_INO, b"g", none).unwrap();
        assert!(fs.statfs().free_blocks > blocks);
        assert_eq!(fs.lookup(ROOT_INO, b"g").unwrap(), k);
        // Symlink over a file.
        fs.rename(ROOT_INO, b"s", ROOT_INO, b"h", none).unwrap();
        assert_eq!(fs.lookup(ROOT_INO, b"h").unwrap(), s);
        // Directory over an empty directory in another parent.
        let (la, lb) = (nlink(&mut fs, a), nlink(&mut fs, b));
        fs.rename(a, b"sub", b, b"empty", none).unwrap();
        assert_eq!(fs.lookup(b, b"empty").unwrap(), sub);
        assert_eq!(fs.lookup(sub, b"..").unwrap(), b);
        assert_eq!((nlink(&mut fs, a), nlink(&mut fs, b)), (la - 1, lb));
        assert!(
            fs.getattr(empty)
                .is_err_and(|e| matches!(e, Error::BadInode { .. }))
                || nlink(&mut fs, empty) == 0
        );
        // Non-empty directory moved to another parent under a new name.
        fs.rename(a, b"full", ROOT_INO, b"full2", none).unwrap();
        assert_eq!(fs.lookup(full, b"..").unwrap(), ROOT_INO);
        assert_eq!(nlink(&mut fs, a), la - 2);
        // Exchange a file and a directory across parents.
        let lr = nlink(&mut fs, ROOT_INO);
        fs.create(a, b"file", 0o600, 0, 0).unwrap();
        let file = fs.lookup(a, b"file").unwrap();
        fs.rename(a, b"file", ROOT_INO, b"full2", flags(false, true))
            .unwrap();
        assert_eq!(fs.lookup(a, b"file").unwrap(), full);
        assert_eq!(fs.lookup(ROOT_INO, b"full2").unwrap(), file);
        assert_eq!(fs.lookup(full, b"..").unwrap(), a);
        assert_eq!(
            (nlink(&mut fs, a), nlink(&mut fs, ROOT_INO)),
            (la - 1, lr - 1)
        );
        assert_eq!(fs.getattr(file).unwrap().ctime, LATER);
        fs.rename(a, b"file", a, b"full2", none).unwrap();
        // Exchange two directories in different parents.
        fs.rename(a, b"full2", b, b"empty", flags(false, true))
            .unwrap();
        assert_eq!(fs.lookup(full, b"..").unwrap(), b);
        assert_eq!(fs.lookup(sub, b"..").unwrap(), a);
        assert_eq!(fs.getattr(sub).unwrap().ctime, LATER);
        // Directory renamed within its parent.
        fs.rename(a, b"full2", a, b"sub-again", none).unwrap();
        assert_eq!(fs.lookup(sub, b"..").unwrap(), a);
        assert!(fs.statfs().free_inodes < free_i);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    let ls = String::from_utf8_lossy(&debugfs(&img, "ls -l /")).into_owned();
    for name in ["a", "b", "g", "h", "full2"] {
        assert!(
            ls.lines().any(|l| l.ends_with(&format!(" {name}"))),
            "{name}:\n{ls}"
        );
    }
    assert_eq!(debugfs(&img, "cat /b/empty/x"), b"");
    assert_eq!(debugfs(&img, "cat /g"), vec![9u8; 9000]);
    let v = view(&img);
    assert_eq!(v.read_link("/h").unwrap().as_ref(), b"a/k".as_slice());
    assert!(v.metadata("/a/sub-again/deep").unwrap().is_dir());
    assert!(v.metadata("/full2").unwrap().file_type().is_regular_file());
    let st = stat(&img, "/a/sub-again");
    assert!(
        st.contains(&format!(
            "ctime: 0x{:08x}:{:08x}",
            LATER.sec,
            LATER.nsec << 2
        )),
        "{st}"
    );
}

#[test]
fn rename_matrix_4k() {
    rename_matrix(4096);
}

#[test]
fn rename_matrix_1k() {
    rename_matrix(1024);
}

/// Renames in and of htree-indexed directories: `..` in a dx root, entries replaced in
/// hashed leaves.
#[test]
fn rename_htree() {
    for block in [1024u32, 4096] {
        let dir = ext4img::tmpdir(&format!("namei-rename-htree-{block}"));
        let src = dir.join("src");
        fs::create_dir_all(src.join("p/big")).unwrap();
        for i in 0..300 {
            fs::write(src.join("p/big").join(format!("entry-{i:05}")), b"").unwrap();
        }
        fs::create_dir_all(src.join("p/big/inner")).unwrap();
        let img = dir.join("t.img");
        fs::File::create(&img).unwrap().set_len(16 << 20).unwrap();
        ext4img::run(
            Command::new("mkfs.ext4")
                .args(["-q", "-F", "-b", &block.to_string(), "-d"])
                .arg(&src)
                .arg(&img),
        );
        ext4img::e2fsck_fix(&img, "-fyD");
        {
            let mut fs = open_rw(&img);
            let p = fs.lookup(ROOT_INO, b"p").unwrap();
            let big = fs.lookup(p, b"big").unwrap();
            assert!(fs.getattr(big).unwrap().flags & 0x1000 != 0);
            fs.rename(p, b"big", ROOT_INO, b"big2", RenameFlags::default())
                .unwrap();
            assert_eq!(fs.lookup(big, b"..").unwrap(), ROOT_INO);
            for i in 0..300 {
                let from = format!("entry-{i:05}");
                let to = format!("renamed-{i}");
                match i % 3 {
                    0 => fs.rename(
                        big,
                        from.as_bytes(),
                        big,
                        to.as_bytes(),
                        RenameFlags::default(),
                    ),
                    1 => fs.rename(
                        big,
                        from.as_bytes(),
                        ROOT_INO,
                        to.as_bytes(),
                        RenameFlags::default(),
                    ),
                    _ => fs.rename(
                        big,
                        from.as_bytes(),
                        big,
                        b"entry-00002",
                        RenameFlags::default(),
                    ),
                }
                .unwrap();
            }
            let inner = fs.lookup(big, b"inner").unwrap();
            fs.rename(big, b"inner", p, b"inner", RenameFlags::default())
                .unwrap();
            assert_eq!(fs.lookup(inner, b"..").unwrap(), p);
            fs.close().unwrap();
        }
        e2fsck_clean(&img);
        let mut fs = ro(&img);
        let big = fs.lookup(ROOT_INO, b"big2").unwrap();
        assert_eq!(fs.read_dir(big).unwrap().len(), 2 + 100 + 1);
        assert!(fs.lookup(ROOT_INO, b"renamed-1").is_ok());
        assert!(fs.lookup(big, b"renamed-0").is_ok());
    }
}

fn counts(fs: &Ext4<FileDisk>) -> (u64, u64) {
    let s = fs.statfs();
    (s.free_blocks, s.free_inodes)
}

/// Whether the image records orphans: `orphan_present` (orphan file) or a classic list head.
fn has_orphans(img: &Path) -> bool {
    let h = ext4img::dumpe2fs(img);
    h.contains("orphan_present") || h.contains("First orphan inode")
}

/// An image `tag` with or without the `orphan_file` feature.
fn orphan_image(tag: &str, block: u32, orphan_file: bool) -> PathBuf {
    let feat = if orphan_file {
        "orphan_file"
    } else {
        "^orphan_file"
    };
    image(&format!("{tag}-{orphan_file}"), block, &["-O", feat])
}

/// Pinned inodes survive losing their last link (unlink, rmdir, rename over them) as
/// orphans, stay readable and writable, and are freed by their last unpin.
fn pinned_orphans(block: u32, orphan_file: bool) {
    let img = orphan_image("pin", block, orphan_file);
    assert_eq!(ext4img::dumpe2fs(&img).contains("orphan_file"), orphan_file);
    let data: Vec<u8> = ext4img::Rng::new(5).bytes(50_000);
    {
        let mut fs = open_rw(&img);
        let start = counts(&fs);
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        fs.write(f, 0, &data).unwrap();
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let g = fs.create(ROOT_INO, b"g", 0o644, 0, 0).unwrap();
        fs.write(g, 0, b"g data").unwrap();
        let h = fs.create(ROOT_INO, b"h", 0o644, 0, 0).unwrap();
        for ino in [f, d, g] {
            fs.pin(ino).unwrap();
        }
        fs.pin(f).unwrap();
        assert!(fs.unpin(h).is_err());
        fs.unlink(ROOT_INO, b"f").unwrap();
        fs.rmdir(ROOT_INO, b"d").unwrap();
        fs.rename(ROOT_INO, b"h", ROOT_INO, b"g", RenameFlags::default())
            .unwrap();
        fs.sync().unwrap();
        assert!(has_orphans(&img));
        if !orphan_file {
            assert!(ext4img::dumpe2fs(&img).contains(&format!("First orphan inode:       {g}")));
        }
        // The orphan is still a file: written and read through its inode.
        assert_eq!(fs.getattr(f).unwrap().nlink, 0);
        fs.write(f, 50_000, b"tail").unwrap();
        let mut back = vec![0u8; 50_004];
        assert_eq!(fs.read(f, 0, &mut back).unwrap(), 50_004);
        assert!(back[..50_000] == data[..] && &back[50_000..] == b"tail");
        assert_eq!(fs.link(f, ROOT_INO, b"again"), Err(Error::NotFound));
        // Freed in another order than orphaned (the middle of the classic list first).
        fs.unpin(d).unwrap();
        fs.unpin(f).unwrap();
        assert_eq!(fs.getattr(f).unwrap().nlink, 0, "second pin keeps it");
        fs.unpin(f).unwrap();
        fs.unpin(g).unwrap();
        assert!(!fs.getattr(f).is_ok_and(|a| a.nlink != 0));
        fs.unlink(ROOT_INO, b"g").unwrap();
        assert_eq!(counts(&fs), start);
        // A pinned inode that keeps its links is simply unpinned.
        let k = fs.create(ROOT_INO, b"k", 0o644, 0, 0).unwrap();
        fs.pin(k).unwrap();
        fs.unpin(k).unwrap();
        assert_eq!(fs.getattr(k).unwrap().nlink, 1);
        // Pinned orphans left at close are freed.
        fs.pin(k).unwrap();
        fs.unlink(ROOT_INO, b"k").unwrap();
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert!(!has_orphans(&img));
    let fs = ro(&img);
    let free = fs.statfs();
    let mut fresh = ro(&orphan_image("pin-fresh", block, orphan_file));
    let _ = fresh.lookup(ROOT_INO, b"lost+found").unwrap();
    assert_eq!(
        (free.free_blocks, free.free_inodes),
        (fresh.statfs().free_blocks, fresh.statfs().free_inodes)
    );
}

#[test]
fn pinned_orphans_orphan_file() {
    pinned_orphans(1024, true);
    pinned_orphans(4096, true);
}

#[test]
fn pinned_orphans_classic_list() {
    pinned_orphans(1024, false);
    pinned_orphans(4096, false);
}

/// Pinned and unlinked inodes left by a crash (the engine dropped without `close`) are
/// reclaimed by the next read-write mount.
fn crash_reclaim(block: u32, orphan_file: bool) {
    let img = orphan_image("crash", block, orphan_file);
    let start;
    {
        let mut fs = open_rw(&img);
        start = counts(&fs);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let mut pinned = Vec::new();
        for i in 0..5u8 {
            let name = [b'f', b'0' + i];
            let f = fs.create(d, &name, 0o644, 0, 0).unwrap();
            fs.write(f, 0, &vec![i; 3000 * usize::from(i)]).unwrap();
            fs.pin(f).unwrap();
            pinned.push(f);
        }
        let s = fs.symlink(d, b"s", &[b'x'; 100], 0, 0).unwrap();
        fs.pin(s).unwrap();
        let sub = fs.mkdir(d, b"sub", 0o755, 0, 0).unwrap();
        fs.pin(sub).unwrap();
        for i in 0..5u8 {
            fs.unlink(d, &[b'f', b'0' + i]).unwrap();
        }
        fs.unlink(d, b"s").unwrap();
        fs.rmdir(d, b"sub").unwrap();
        fs.rmdir(ROOT_INO, b"d").unwrap();
        fs.sync().unwrap();
        assert!(counts(&fs) != start);
        drop(fs); // crash: no close, no unpin
    }
    assert!(has_orphans(&img));
    let report = repair_a_copy(&img);
    // e2fsck (on a copy) finds every orphan through the records written.
    assert_eq!(
        report.matches("Clearing orphaned inode").count(),
        7,
        "{report}"
    );
    assert!(!report.contains("checksum"), "{report}");
    after_crash(&img);
    {
        let fs = open_rw(&img);
        assert_eq!(counts(&fs), start, "orphans reclaimed at mount");
        fs.close().unwrap();
    }
    assert!(!has_orphans(&img));
    e2fsck_clean(&img);
}

#[test]
fn crash_reclaim_orphan_file() {
    crash_reclaim(1024, true);
    crash_reclaim(4096, true);
}

#[test]
fn crash_reclaim_classic_list() {
    crash_reclaim(1024, false);
    crash_reclaim(4096, false);
}

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

/// What the model holds for an inode.
#[derive(Clone, Debug, PartialEq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(Vec<u8>),
}

/// In-memory model of the namespace, keyed by the engine's inode numbers.
#[derive(Default)]
struct Model {
    nodes: BTreeMap<Ino, Node>,
    entries: BTreeMap<Ino, BTreeMap<Vec<u8>, Ino>>,
}

impl Model {
    fn is_dir(&self, ino: Ino) -> bool {
        self.nodes.get(&ino) == Some(&Node::Dir)
    }
    fn get(&self, dir: Ino, name: &[u8]) -> Option<Ino> {
        self.entries.get(&dir).and_then(|e| e.get(name)).copied()
    }
    fn refs(&self, ino: Ino) -> usize {
        self.entries
            .values()
            .map(|e| e.values().filter(|&&i| i == ino).count())
            .sum()
    }
    fn parent(&self, dir: Ino) -> Option<Ino> {
        self.entries
            .iter()
            .find(|(_, e)| e.values().any(|&i| i == dir))
            .map(|(&p, _)| p)
    }
    /// Whether `anc` is `dir` or one of its ancestors.
    fn is_ancestor(&self, anc: Ino, dir: Ino) -> bool {
        let mut cur = Some(dir);
        while let Some(c) = cur {
            if c == anc {
                return true;
            }
            cur = self.parent(c);
        }
        false
    }
    fn insert(&mut self, dir: Ino, name: &[u8], ino: Ino, node: Node) {
        if node == Node::Dir {
            self.entries.insert(ino, BTreeMap::new());
        }
        self.nodes.insert(ino, node);
        self.entries
            .get_mut(&dir)
            .unwrap()
            .insert(name.to_vec(), ino);
    }
    /// Remove `dir/name`; forget its inode when no entry names it any more.
    fn remove(&mut self, dir: Ino, name: &[u8]) -> Ino {
        let ino = self.entries.get_mut(&dir).unwrap().remove(name).unwrap();
        if self.refs(ino) == 0 {
            self.nodes.remove(&ino);
            self.entries.remove(&ino);
        }
        ino
    }
    /// The expected outcome of a rename (the engine's order of checks).
    fn rename(
        &mut self,
        od: Ino,
        on: &[u8],
        nd: Ino,
        nn: &[u8],
        f: RenameFlags,
    ) -> Result<(), &'static str> {
        if f.noreplace && f.exchange {
            return Err("Invalid");
        }
        let src = self.get(od, on).ok_or("NotFound")?;
        let dst = self.get(nd, nn);
        if f.exchange && dst.is_none() {
            return Err("NotFound");
        }
        if f.noreplace && dst.is_some() {
            return Err("Exists");
        }
        if dst == Some(src) {
            return Ok(());
        }
        let (s_dir, d_dir) = (self.is_dir(src), dst.is_some_and(|d| self.is_dir(d)));
        if s_dir && od != nd && self.is_ancestor(src, nd) {
            return Err("Invalid");
        }
        if let (true, true, Some(d)) = (f.exchange, d_dir, dst) {
            if od != nd && self.is_ancestor(d, od) {
                return Err("Invalid");
            }
        }
        if let (Some(d), false) = (dst, f.exchange) {
            match (s_dir, d_dir) {
                (true, false) => return Err("NotDir"),
                (false, true) => return Err("IsDir"),
                _ => {}
            }
            if d_dir && !self.entries[&d].is_empty() {
                return Err("NotEmpty");
            }
        }
        if f.exchange {
            let d = dst.unwrap();
            self.entries.get_mut(&od).unwrap().insert(on.to_vec(), d);
            self.entries.get_mut(&nd).unwrap().insert(nn.to_vec(), src);
        } else {
            if dst.is_some() {
                self.remove(nd, nn);
            }
            self.entries.get_mut(&od).unwrap().remove(on);
            self.entries.get_mut(&nd).unwrap().insert(nn.to_vec(), src);
        }
        Ok(())
    }
}

fn err_kind(e: &Error) -> &'static str {
    match e {
        Error::NotFound => "NotFound",
        Error::Exists => "Exists",
        Error::NotEmpty => "NotEmpty",
        Error::Invalid { .. } => "Invalid",
        Error::IsDir { .. } => "IsDir",
        Error::NotDir { .. } => "NotDir",
        Error::TooManyLinks => "TooManyLinks",
        other => panic!("unexpected engine error {other:?}"),
    }
}

/// The engine's tree must be the model's: names, inodes, kinds, link counts, `..`, contents.
fn compare<D: pvfs_fs::block::BlockDevice>(fs: &mut Ext4<D>, m: &Model) {
    for (&dir, want) in &m.entries {
        let mut got: BTreeMap<Vec<u8>, Ino> = BTreeMap::new();
        for e in fs.read_dir(dir).unwrap() {
            if e.name != b"." && e.name != b".." {
                got.insert(e.name.clone(), e.ino);
                let kind = match m.nodes[&e.ino] {
                    Node::Dir => FileType::Directory,
                    Node::File(_) => FileType::Regular,
                    Node::Link(_) => FileType::Symlink,
                };
                assert_eq!(e.kind, kind, "entry type of {:?}", e.name);
            }
        }
        assert_eq!(&got, want, "entries of directory {dir}");
        let parent = m.parent(dir).unwrap_or(ROOT_INO);
        assert_eq!(fs.lookup(dir, b"..").unwrap(), parent, ".. of {dir}");
        let subdirs = want.values().filter(|&&i| m.is_dir(i)).count();
        assert_eq!(fs.getattr(dir).unwrap().nlink as usize, 2 + subdirs);
    }
    for (&ino, node) in &m.nodes {
        match node {
            Node::Dir => {}
            Node::File(data) => {
                let mut b = vec![0u8; data.len() + 10];
                let n = fs.read(ino, 0, &mut b).unwrap();
                assert_eq!(&b[..n], data.as_slice(), "contents of {ino}");
                assert_eq!(fs.getattr(ino).unwrap().nlink as usize, m.refs(ino));
            }
            Node::Link(t) => {
                assert_eq!(&fs.readlink(ino).unwrap(), t, "target of {ino}");
                assert_eq!(fs.getattr(ino).unwrap().nlink as usize, m.refs(ino));
            }
        }
    }
}

/// Random rename/link/unlink/mkdir/rmdir/symlink/create sequences against the model.
fn random_namespace(block: u32, seed: u64, ops: usize) {
    let img = image(&format!("random-{seed}"), block, &[]);
    let mut rng = ext4img::Rng::new(seed);
    let mut r = move |n: usize| (rng.next_u64() % n as u64) as usize;
    let names: [&[u8]; 6] = [
        b"a",
        b"b",
        b"c",
        b"dd",
        b"eee",
        b"a-much-longer-name-for-variety",
    ];
    let mut m = Model::default();
    m.nodes.insert(ROOT_INO, Node::Dir);
    let mut fs = open_rw(&img);
    let root_entries: BTreeMap<Vec<u8>, Ino> = fs
        .read_dir(ROOT_INO)
        .unwrap()
        .into_iter()
        .filter(|e| e.name != b"." && e.name != b"..")
        .map(|e| (e.name, e.ino))
        .collect();
    for &ino in root_entries.values() {
        m.nodes.insert(ino, Node::Dir);
        m.entries.insert(ino, BTreeMap::new());
    }
    m.entries.insert(ROOT_INO, root_entries);
    let mut done: BTreeMap<&str, usize> = BTreeMap::new();
    for step in 0..ops {
        let dirs: Vec<Ino> = m.entries.keys().copied().collect();
        let others: Vec<Ino> = m
            .nodes
            .iter()
            .filter(|(_, n)| **n != Node::Dir)
            .map(|(&i, _)| i)
            .collect();
        let mut d = dirs[r(dirs.len())];
        let mut name = names[r(names.len())];
        let op = r(10);
        if op == 5 && r(2) == 0 {
            // Often aim rmdir at an empty directory, which random names rarely hit.
            let empty: Vec<(Ino, &[u8])> = m
                .entries
                .iter()
                .flat_map(|(&p, e)| e.iter().map(move |(n, &i)| (p, n.as_slice(), i)))
                .filter(|&(_, _, i)| m.entries.get(&i).is_some_and(|e| e.is_empty()))
                .filter_map(|(p, n, _)| names.iter().find(|&&x| x == n).map(|&x| (p, x)))
                .collect();
            if !empty.is_empty() {
                (d, name) = empty[r(empty.len())];
            }
        }
        let exists = m.get(d, name);
        // What an operation that makes `name` must do: refuse a name that is taken.
        let new_name = if exists.is_some() {
            Err("Exists")
        } else {
            Ok(())
        };
        let (what, got, want): (&str, Result<(), Error>, Result<(), &str>) = match op {
            0 => {
                let res = fs.mkdir(d, name, 0o755, 0, 0);
                let want = new_name;
                if let Ok(ino) = res {
                    m.insert(d, name, ino, Node::Dir);
                }
                ("mkdir", res.map(|_| ()), want)
            }
            1 => {
                let data = vec![step as u8; r(3000)];
                let res = fs.create(d, name, 0o644, 0, 0);
                let want = new_name;
                if let Ok(ino) = res {
                    fs.write(ino, 0, &data).unwrap();
                    m.insert(d, name, ino, Node::File(data));
                }
                ("create", res.map(|_| ()), want)
            }
            2 => {
                let t: Vec<u8> = (0..1 + r(120)).map(|i| b'a' + (i % 26) as u8).collect();
                let res = fs.symlink(d, name, &t, 0, 0);
                let want = new_name;
                if let Ok(ino) = res {
                    m.insert(d, name, ino, Node::Link(t));
                }
                ("symlink", res.map(|_| ()), want)
            }
            3 if !others.is_empty() || !dirs.is_empty() => {
                // Link a non-directory, sometimes a directory (refused).
                let target = if r(5) == 0 || others.is_empty() {
                    dirs[r(dirs.len())]
                } else {
                    others[r(others.len())]
                };
                let want = if m.is_dir(target) {
                    Err("IsDir")
                } else if exists.is_some() {
                    Err("Exists")
                } else {
                    Ok(())
                };
                let res = fs.link(target, d, name);
                if res.is_ok() {
                    m.entries.get_mut(&d).unwrap().insert(name.to_vec(), target);
                }
                ("link", res, want)
            }
            4 => {
                let want = match exists {
                    None => Err("NotFound"),
                    Some(i) if m.is_dir(i) => Err("IsDir"),
                    Some(_) => Ok(()),
                };
                let res = fs.unlink(d, name);
                if res.is_ok() {
                    m.remove(d, name);
                }
                ("unlink", res, want)
            }
            5 => {
                let want = match exists {
                    None => Err("NotFound"),
                    Some(i) if !m.is_dir(i) => Err("NotDir"),
                    Some(i) if !m.entries[&i].is_empty() => Err("NotEmpty"),
                    Some(_) => Ok(()),
                };
                let res = fs.rmdir(d, name);
                if res.is_ok() {
                    m.remove(d, name);
                }
                ("rmdir", res, want)
            }
            _ => {
                let nd = dirs[r(dirs.len())];
                let nn = names[r(names.len())];
                let f = RenameFlags {
                    noreplace: r(6) == 0,
                    exchange: r(5) == 0,
                };
                // The model decides (and applies) first; the engine must agree.
                let want = m.rename(d, name, nd, nn, f);
                let res = fs.rename(d, name, nd, nn, f);
                ("rename", res, want)
            }
        };
        let got_kind = got.as_ref().map(|_| ()).map_err(err_kind);
        assert_eq!(got_kind, want, "step {step}: {what}");
        if got.is_ok() {
            *done.entry(what).or_default() += 1;
        }
        if step % 100 == 99 {
            compare(&mut fs, &m);
        }
    }
    compare(&mut fs, &m);
    for what in [
        "mkdir", "create", "symlink", "link", "unlink", "rmdir", "rename",
    ] {
        assert!(
            done.get(what).copied().unwrap_or(0) > 0,
            "{what} never succeeded: {done:?}"
        );
    }
    fs.close().unwrap();
    e2fsck_clean(&img);
    let mut fresh = ro(&img);
    compare(&mut fresh, &m);
}

#[test]
fn random_namespace_ops() {
    for seed in 0..4 {
        random_namespace(if seed % 2 == 0 { 1024 } else { 4096 }, seed, 600);
    }
}

/// A linked inode on the orphan list (a truncate Linux had in progress) loses the blocks past
/// its size at the next read-write mount; its data and times stay.
#[test]
fn linked_orphan_is_truncated() {
    for block in [1024u32, 4096] {
        let img = image("linked-orphan", block, &[]);
        let data = ext4img::Rng::new(9).bytes(10_000);
        let (f, before) = {
            let mut fs = open_rw(&img);
            let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
            fs.write(f, 0, &data).unwrap();
            fs.fallocate(f, 10_000, 50_000, Fallocate::KeepSize)
                .unwrap();
            let a = fs.getattr(f).unwrap();
            assert!(a.blocks > 10_000u64.div_ceil(u64::from(block)) * u64::from(block / 512));
            fs.close().unwrap();
            (f, a)
        };
        ext4img::debugfs_w(&img, &format!("ssv last_orphan {f}"));
        assert!(has_orphans(&img));
        {
            let mut fs = open_rw(&img);
            let a = fs.getattr(f).unwrap();
            let want = 10_000u64.div_ceil(u64::from(block)) * u64::from(block / 512);
            assert_eq!((a.blocks, a.size, a.nlink), (want, 10_000, 1));
            assert_eq!((a.mtime, a.ctime), (before.mtime, before.ctime));
            let mut back = vec![0u8; 10_000];
            assert_eq!(fs.read(f, 0, &mut back).unwrap(), 10_000);
            assert!(back == data);
            fs.close().unwrap();
        }
        assert!(!has_orphans(&img));
        e2fsck_clean(&img);
    }
}

/// Without a journal a crash leaves the file system marked in use; everything but the orphans
/// was written back, which is what a journal replay would give, so mark it clean for the next
/// mount.
fn after_crash(img: &Path) {
    if ext4img::dumpe2fs(img).contains("not clean") {
        ext4img::debugfs_w(img, "ssv state 1");
    }
}

/// A full orphan file (one block: 254 slots at 1k) overflows into the classic list; orphans
/// are freed from both, by unpin and by the reclaim at mount.
#[test]
fn full_orphan_file_overflows_to_list() {
    let img = image(
        "orphan-full",
        1024,
        &["-O", "orphan_file", "-E", "orphan_file_size=1"],
    );
    let start;
    let n = 270u32;
    {
        let mut fs = open_rw(&img);
        start = counts(&fs);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let mut inos = Vec::new();
        for i in 0..n {
            let name = format!("f{i}");
            let f = fs.create(d, name.as_bytes(), 0o644, 0, 0).unwrap();
            fs.write(f, 0, name.as_bytes()).unwrap();
            fs.pin(f).unwrap();
            fs.unlink(d, name.as_bytes()).unwrap();
            inos.push(f);
        }
        fs.sync().unwrap();
        let h = ext4img::dumpe2fs(&img);
        assert!(
            h.contains("orphan_present") && h.contains("First orphan inode"),
            "{h}"
        );
        // Unpin a third: some in the file, some in the list (head, middle, tail).
        for (i, &f) in inos.iter().enumerate() {
            if i % 3 == 0 {
                fs.unpin(f).unwrap();
            }
        }
        fs.rmdir(ROOT_INO, b"d").unwrap();
        fs.sync().unwrap();
        drop(fs); // crash with the other two thirds pinned
    }
    let report = repair_a_copy(&img);
    assert_eq!(
        report.matches("Clearing orphaned inode").count(),
        (n - n.div_ceil(3)) as usize,
        "{report}"
    );
    after_crash(&img);
    {
        let fs = open_rw(&img);
        assert_eq!(counts(&fs), start);
        fs.close().unwrap();
    }
    assert!(!has_orphans(&img));
    e2fsck_clean(&img);
}

/// Without dir_nlink, a directory at 64999 links takes no more subdirectories by rename.
#[test]
fn rename_too_many_links_without_dir_nlink() {
    let img = image("nlink", 4096, &["-O", "^dir_nlink"]);
    {
        let mut fs = open_rw(&img);
        fs.mkdir(ROOT_INO, b"full", 0o755, 0, 0).unwrap();
        fs.mkdir(ROOT_INO, b"sub", 0o755, 0, 0).unwrap();
        fs.create(ROOT_INO, b"file", 0o644, 0, 0).unwrap();
        fs.close().unwrap();
    }
    ext4img::debugfs_w(&img, "sif /full links_count 64999");
    let mut fs = open_rw(&img);
    let full = fs.lookup(ROOT_INO, b"full").unwrap();
    refused(
        &mut fs,
        &img,
        "directory into a full parent",
        |e| *e == Error::TooManyLinks,
        |fs| fs.rename(ROOT_INO, b"sub", full, b"sub", RenameFlags::default()),
    );
    // A file still moves in; the directory's link count does not change.
    fs.rename(ROOT_INO, b"file", full, b"file", RenameFlags::default())
        .unwrap();
    assert_eq!(fs.getattr(full).unwrap().nlink, 64999);
    fs.close().unwrap();
}
