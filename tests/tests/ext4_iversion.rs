//! The change counter (`i_version`): every change the engine makes to an inode counts one in
//! it, also when the clock stands still (the test's clock never moves), so 9P clients that
//! cache (`cache=loose`) can tell any two states apart by `qid.version`. Oracles: `debugfs
//! stat` (its `Version:` line, `i_version_hi:l_i_version`) and `e2fsck -fn`; both inode sizes
//! (256 bytes, with `i_version_hi`, and 128, where the counter is 32 bits wide).
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::ext4::{SetAttr, XattrSet, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs, open_rw};

/// `debugfs stat PATH`'s `Version: 0xHI:LO` as one number.
fn disk_version(img: &std::path::Path, path: &str) -> u64 {
    let out = String::from_utf8(debugfs(img, &format!("stat {path}"))).unwrap();
    let v = out
        .split("Version: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no Version in debugfs stat {path}: {out}"));
    let v = v.split_whitespace().next().unwrap();
    let (hi, lo) = v.split_once(':').map_or(("0x0", v), |p| p);
    let n = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap();
    n(hi) << 32 | n(lo)
}

fn counts_every_change(inode_size: &str) {
    let dir = ext4img::tmpdir(&format!("iversion-{inode_size}"));
    let img = mkfs(&dir, "v.img", 4096, 16, &["-I", inode_size]);
    let mut fs = open_rw(&img);
    let f = fs.create(ROOT_INO, b"f", 0o100644, 0, 0).unwrap();
    let mut seen = vec![fs.getattr(f).unwrap().change];
    let mut dir_seen = vec![fs.getattr(ROOT_INO).unwrap().change];
    // Same clock, same size: only the counter can tell these states apart.
    for step in 0..6u8 {
        match step {
            0 | 1 => {
                fs.write(f, 0, &[step; 100]).unwrap();
            }
            2 => fs
                .setattr(
                    f,
                    &SetAttr {
                        mode: Some(0o600),
                        ..Default::default()
                    },
                )
                .unwrap(),
            3 => fs.set_xattr(f, b"user.k", b"v", XattrSet::Any).unwrap(),
            4 => fs.link(f, ROOT_INO, b"g").unwrap(),
            _ => fs.unlink(ROOT_INO, b"g").unwrap(),
        }
        let c = fs.getattr(f).unwrap().change;
        assert!(
            !seen.contains(&c),
            "step {step}: change counter {c} repeats {seen:?}"
        );
        seen.push(c);
        if step >= 4 {
            let d = fs.getattr(ROOT_INO).unwrap().change;
            assert!(
                !dir_seen.contains(&d),
                "step {step}: the directory's counter {d} repeats"
            );
            dir_seen.push(d);
        }
    }
    let last = *seen.last().unwrap();
    fs.close().unwrap();
    e2fsck_clean(&img);
    assert_eq!(
        disk_version(&img, "/f"),
        last,
        "debugfs reads the counter the engine reports"
    );
    // A new mount reads the counter back and keeps counting from it.
    let mut fs = open_rw(&img);
    let f = fs.lookup(ROOT_INO, b"f").unwrap();
    assert_eq!(fs.getattr(f).unwrap().change, last);
    fs.write(f, 0, &[9; 100]).unwrap();
    assert_eq!(fs.getattr(f).unwrap().change, last + 1);
    fs.close().unwrap();
    e2fsck_clean(&img);
}

#[test]
fn large_inodes_count_every_change() {
    counts_every_change("256");
}

#[test]
fn small_inodes_count_every_change() {
    counts_every_change("128");
}

/// What a 9P client sees: the served file's `qid.version` (Rgetattr's qid, from
/// [`qid_of`](pvfs_9p::server::qid_of)) changes at every write of the same bytes' length at the
/// same time, through the ext4 adapter the pvfs domain serves.
#[test]
fn qid_version_changes_at_every_write() {
    use pvfs_9p::fs::{Filesystem, NewInode};
    use pvfs_9p::server::qid_of;
    let dir = ext4img::tmpdir("iversion-qid");
    let img = mkfs(&dir, "q.img", 4096, 16, &[]);
    let fs = pvfs_9p::ext4::Ext4Fs::new(open_rw(&img));
    let root = fs.root();
    let new = NewInode {
        mode: 0o100644,
        uid: 0,
        gid: 0,
        rdev: 0,
    };
    let f = fs.create(root, b"f", &new).unwrap().ino;
    let mut seen = vec![qid_of(&fs.getattr(f).unwrap()).version];
    for i in 0..20u8 {
        fs.write(f, 0, &[i; 512]).unwrap();
        let v = qid_of(&fs.getattr(f).unwrap()).version;
        assert!(
            !seen.contains(&v),
            "write {i}: qid.version {v} repeats {seen:?}"
        );
        seen.push(v);
    }
    fs.close().unwrap().unwrap();
    e2fsck_clean(&img);
}
