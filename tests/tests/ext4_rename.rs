//! ext4 rename through the engine: every refusal (image unchanged), moves, replacements and
//! exchanges of files and directories, htree-indexed directories and the directory link limit.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::FileDisk;
use pvfs_fs::ext4::{Error, Ext4, Ino, RenameFlags, Timestamp, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::namei::{image, ro, stat, view};
use pvfs_tests::wimg::{debugfs, e2fsck_clean, open_rw};
use std::fs;
use std::path::Path;
use std::process::Command;

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
