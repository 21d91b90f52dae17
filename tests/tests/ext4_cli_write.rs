//! `pvfs image` write commands (put, mkdir, rm, mv, ln, chmod, chown, truncate, resize) run as a real process on images made by
//! `mkfs.ext4` (default features, 1 KiB and 4 KiB blocks). After every command the image must
//! pass `e2fsck -fn`; results are checked with `debugfs`, ext4-view, `pvfs image get` round
//! trips and `pvfs image df`, and `resize` with `dumpe2fs` against resize2fs's growth of the
//! same image; every error exits 1 with one `pvfs: …` line and leaves the image clean.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_tests::ext4img::{self, Rng};
use pvfs_tests::p9client::pvfs_bin;
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs};
use std::collections::BTreeMap;
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

fn pvfs(args: &[&str]) -> Output {
    Command::new(pvfs_bin()).args(args).output().unwrap()
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Runs `pvfs image ARGS…` on `img`; it must succeed, and the image must be clean after.
fn ok(img: &Path, args: &[&str]) -> String {
    let mut all = vec!["image", args[0], s(img)];
    all.extend(&args[1..]);
    let out = pvfs(&all);
    assert!(
        out.status.success(),
        "pvfs {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    e2fsck_clean(img);
    String::from_utf8(out.stdout).unwrap()
}

/// Runs `pvfs image ARGS…` on `img` (options before the image, as clap wants them after the
/// subcommand); it must fail with exit status 1 and exactly one stderr line
/// `pvfs: …` containing `want`, and the image must still be clean.
fn fails(img: &Path, opts: &[&str], args: &[&str], want: &str) {
    let mut all = vec!["image", args[0]];
    all.extend(opts);
    all.push(s(img));
    all.extend(&args[1..]);
    let out = pvfs(&all);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "pvfs {all:?} should fail: {err}"
    );
    assert_eq!(err.lines().count(), 1, "one message expected: {err}");
    assert!(
        err.starts_with("pvfs: ") && err.contains(want),
        "pvfs {all:?}: expected {want:?} in {err:?}"
    );
    e2fsck_clean(img);
}

fn kv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// A host tree: nested directories with various modes, regular files of many sizes and
/// owners, sparse files (at most three data runs), symlinks (fast, slow, dangling), hard
/// links across directories, a FIFO and device nodes, and mtimes with nanoseconds and before
/// 1970.
fn source_tree(root: &Path) {
    let mut rng = Rng::new(0xc11);
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir(root.join("private")).unwrap();
    fs::create_dir(root.join("sticky")).unwrap();
    fs::create_dir(root.join("empty-dir")).unwrap();
    for (name, size) in [
        ("empty", 0usize),
        ("one", 1),
        ("4095", 4095),
        ("4096", 4096),
        ("4097", 4097),
        ("65659", 65_659),
        ("3m", 3 << 20),
    ] {
        fs::write(root.join("a").join(name), rng.bytes(size)).unwrap();
    }
    fs::write(root.join("a/b/c/deep.txt"), b"at the bottom\n").unwrap();
    for i in 0..40 {
        fs::write(
            root.join("a/b").join(format!("many-{i:03}")),
            rng.bytes(i * 97),
        )
        .unwrap();
    }
    {
        let mut f = fs::File::create(root.join("a/sparse")).unwrap();
        f.write_all(&rng.bytes(5000)).unwrap();
        f.seek(SeekFrom::Start(1 << 20)).unwrap();
        f.write_all(&rng.bytes(10_000)).unwrap();
        f.set_len((3 << 20) + 3).unwrap();
        fs::File::create(root.join("a/all-hole"))
            .unwrap()
            .set_len(100_000)
            .unwrap();
    }
    let links = root.join("links");
    fs::create_dir(&links).unwrap();
    std::os::unix::fs::symlink("../a/one", links.join("short")).unwrap();
    std::os::unix::fs::symlink("x".repeat(59), links.join("len59")).unwrap();
    std::os::unix::fs::symlink("y".repeat(60), links.join("len60")).unwrap();
    std::os::unix::fs::symlink("/nonexistent/dangling", links.join("dangling")).unwrap();
    fs::write(root.join("a/hl1"), b"linked content\n").unwrap();
    fs::hard_link(root.join("a/hl1"), root.join("a/b/hl2")).unwrap();
    fs::hard_link(root.join("a/hl1"), links.join("hl3")).unwrap();
    let special = root.join("special");
    fs::create_dir(&special).unwrap();
    ext4img::run(Command::new("mkfifo").arg(special.join("fifo")));
    ext4img::run(
        Command::new("mknod")
            .arg(special.join("null"))
            .args(["c", "1", "3"]),
    );
    ext4img::run(
        Command::new("mknod")
            .arg(special.join("bigminor"))
            .args(["b", "259", "70000"]),
    );
    for (p, when) in [
        ("a/65659", "@1600000000.123456789"),
        ("a/4096", "@-31536000.000000005"),
        ("links/short", "@1500000000.5"),
        ("a/b/c", "@1400000000.25"),
    ] {
        ext4img::run(
            Command::new("touch")
                .args(["-h", "-d", when])
                .arg(root.join(p)),
        );
    }
    for (p, name, value) in [
        ("a/65659", "user.comment", "0x68656c6c6f"),
        ("a/65659", "user.empty", ""),
        ("a/b", "user.dir", "0x01020304"),
        ("a/4096", "user.big", &format!("0x{}", "ab".repeat(700))),
    ] {
        let mut cmd = Command::new("setfattr");
        cmd.args(["-n", name]);
        if !value.is_empty() {
            cmd.args(["-v", value]);
        }
        ext4img::run(cmd.arg(root.join(p)));
    }
    for (p, mode, uid, gid) in [
        ("private", 0o700, 1000, 1000),
        ("sticky", 0o1777, 0, 0),
        ("a/one", 0o600, 1234, 5678),
        ("a/4097", 0o4755, 65534, 70000),
        ("a/b/c/deep.txt", 0o444, 7, 8),
    ] {
        let p = root.join(p);
        std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    }
}

fn put_round_trip(block: u32) {
    let dir = ext4img::tmpdir(&format!("cli-put-{block}"));
    let src = dir.join("src");
    source_tree(&src);
    let img = mkfs(&dir, "p.img", block, 32, &[]);
    let df0 = kv(&ok(&img, &["df"]));
    // PATH does not exist: SRC is copied as PATH.
    ok(&img, &["put", s(&src), "/copy"]);
    // PATH is an existing directory: SRC goes into PATH/BASENAME(SRC).
    ok(&img, &["mkdir", "/into"]);
    ok(&img, &["put", s(&src), "/into"]);
    // A single file to a new name, then over it (in place: its hard link sees the data).
    ok(&img, &["put", s(&src.join("a/65659")), "/single"]);
    ok(&img, &["ln", "/single", "/single-link"]);
    ok(&img, &["put", s(&src.join("a/4097")), "/single"]);
    assert!(debugfs(&img, "cat /single-link") == fs::read(src.join("a/4097")).unwrap());
    assert_eq!(
        kv(&ok(&img, &["stat", "/single"]))["mode"],
        "4755 (-rwsr-xr-x)"
    );
    ok(&img, &["rm", "/single-link"]);
    ok(&img, &["put", s(&src.join("a/65659")), "/single"]);
    // Again onto the copy, as `cp -a` does: directories merge, regular files are rewritten
    // in place (same inode), the rest replaced; the result is the same tree, same space.
    let df1 = kv(&ok(&img, &["df"]));
    let ino = kv(&ok(&img, &["stat", "/copy/a/3m"]))["inode"].clone();
    ok(&img, &["put", s(&src), "/into"]);
    assert_eq!(
        kv(&ok(&img, &["df"])),
        df1,
        "a second put changed the space used"
    );
    assert_eq!(kv(&ok(&img, &["stat", "/copy/a/3m"]))["inode"], ino);
    for (inside, out) in [("/copy", "get1"), ("/into/src", "get2")] {
        let dest = dir.join(out);
        let o = pvfs(&["image", "get", s(&img), inside, s(&dest)]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let n = ext4img::compare_trees(&src, &dest, true);
        assert!(n > 60, "only {n} paths compared");
    }
    assert!(debugfs(&img, "cat /single") == fs::read(src.join("a/65659")).unwrap());
    // Holes stay holes: 2 data runs, nothing for the trailing hole.
    let st = kv(&ok(&img, &["stat", "/copy/a/sparse"]));
    let bs = u64::from(block);
    let expect = (5000u64.div_ceil(bs) + 10_000u64.div_ceil(bs)) * bs / 512;
    assert_eq!(st["blocks"].parse::<u64>().unwrap(), expect, "{st:?}");
    assert_eq!(st["size"], ((3u64 << 20) + 3).to_string());
    let st = kv(&ok(&img, &["stat", "/copy/a/all-hole"]));
    assert_eq!(st["blocks"], "0");
    assert_eq!(st["size"], "100000");
    // An independent reader agrees.
    let view = ext4_view::Ext4::load(Box::new(fs::read(&img).unwrap())).unwrap();
    for rel in ["a/3m", "a/sparse", "a/b/many-039", "a/b/c/deep.txt"] {
        assert!(
            view.read(format!("/copy/{rel}").as_str()).unwrap() == fs::read(src.join(rel)).unwrap(),
            "ext4-view content of {rel}"
        );
    }
    let m = view.metadata("/copy/a/4097").unwrap();
    assert_eq!((m.uid(), m.gid(), m.mode()), (65534, 70000, 0o4755));
    assert_eq!(
        view.read_link("/copy/links/len60").unwrap().as_ref(),
        "y".repeat(60).as_bytes()
    );
    // Special files (which `get` skips) were made with mknod.
    for (p, kind, rdev) in [
        ("fifo", "fifo", None),
        ("null", "character device", Some("1,3")),
        ("bigminor", "block device", Some("259,70000")),
    ] {
        let st = kv(&ok(&img, &["stat", &format!("/copy/special/{p}")]));
        assert_eq!(st["type"], kind);
        assert_eq!(st.get("rdev").map(String::as_str), rdev);
    }
    assert_eq!(kv(&ok(&img, &["stat", "/into/src/a/hl1"]))["links"], "3");
    // Extended attributes (in the inode and, for the 700-byte one, in a block).
    let st = kv(&ok(&img, &["stat", "/copy/a/65659"]));
    assert_eq!(st["xattr user.comment"], "hello");
    assert_eq!(st["xattr user.empty"], "");
    assert_eq!(
        kv(&ok(&img, &["stat", "/copy/a/b"]))["xattr user.dir"],
        "\\x01\\x02\\x03\\x04"
    );
    let big = String::from_utf8_lossy(&debugfs(&img, "ea_get /copy/a/4096 user.big")).into_owned();
    assert!(big.contains(&"ab ".repeat(16)), "{big}");
    // Removing everything gives back every block and inode (xattr blocks too).
    ok(&img, &["rm", "-r", "/copy"]);
    ok(&img, &["rm", "-r", "/into"]);
    ok(&img, &["rm", "/single"]);
    let df1 = kv(&ok(&img, &["df"]));
    assert_eq!(df0, df1, "space or inodes leaked");
}

#[test]
fn put_copies_a_tree_4k() {
    put_round_trip(4096);
}

#[test]
fn put_copies_a_tree_1k() {
    put_round_trip(1024);
}

#[test]
fn mkdir_and_rm() {
    let dir = ext4img::tmpdir("cli-mkdir");
    let img = mkfs(&dir, "m.img", 4096, 16, &[]);
    let df0 = kv(&ok(&img, &["df"]));
    ok(&img, &["mkdir", "/d"]);
    ok(&img, &["mkdir", "-p", "/d/e/f/g"]);
    // -p on an existing path is not an error, and only the missing tail is made.
    ok(&img, &["mkdir", "-p", "/d/e/f/g/h"]);
    ok(&img, &["mkdir", "d/rel/"]);
    let st = kv(&ok(&img, &["stat", "/d/e/f/g/h"]));
    assert_eq!(st["type"], "directory");
    assert_eq!(st["mode"], "0755 (drwxr-xr-x)");
    assert_eq!((st["uid"].as_str(), st["gid"].as_str()), ("0", "0"));
    assert_eq!(kv(&ok(&img, &["stat", "/d"]))["links"], "4");
    let ls = String::from_utf8_lossy(&debugfs(&img, "ls -l /d/e/f/g")).into_owned();
    assert!(ls.contains(" h"), "{ls}");
    assert_eq!(ok(&img, &["ls", "/d"]), "e\nrel\n");
    ok(&img, &["rm", "-r", "/d/e"]);
    assert_eq!(ok(&img, &["ls", "/d"]), "rel\n");
    assert_eq!(kv(&ok(&img, &["stat", "/d"]))["links"], "3");
    ok(&img, &["rm", "-r", "/d"]);
    assert_eq!(ok(&img, &["ls", "/"]), "lost+found\n");
    assert_eq!(kv(&ok(&img, &["df"])), df0);
}

#[test]
fn errors_exit_nonzero_and_leave_the_image_clean() {
    let dir = ext4img::tmpdir("cli-errors");
    let img = mkfs(&dir, "e.img", 4096, 16, &[]);
    let src = dir.join("f");
    fs::write(&src, b"data").unwrap();
    ok(&img, &["mkdir", "/d"]);
    ok(&img, &["put", s(&src), "/d/f"]);
    fails(
        &img,
        &[],
        &["mkdir", "/nope/x"],
        "/nope/x: no such file or directory",
    );
    fails(&img, &[], &["mkdir", "/d"], "/d: file exists");
    fails(&img, &[], &["mkdir", "/d/f/x"], "/d/f/x: not a directory");
    fails(
        &img,
        &["-p"],
        &["mkdir", "/d/f/x"],
        "/d/f: exists and is not a directory",
    );
    fails(&img, &[], &["mkdir", "/"], "not allowed on the root");
    fails(&img, &[], &["rm", "/d"], "/d: is a directory");
    fails(
        &img,
        &[],
        &["rm", "/d/nothing"],
        "no such file or directory",
    );
    fails(&img, &["-r"], &["rm", "/"], "not allowed on the root");

    fails(
        &img,
        &[],
        &["put", s(&dir), "/d/f"],
        "cannot overwrite non-directory with directory",
    );
    fails(
        &img,
        &[],
        &["put", s(&src), "/nope/f"],
        "no such file or directory",
    );
    let missing = dir.join("missing");
    fails(&img, &[], &["put", s(&missing), "/m"], "missing");
    fails(
        &img,
        &[],
        &["put", s(&dir), "/"],
        "/e.img: is the image itself",
    );
    // Nothing above changed the file or directory.
    assert_eq!(debugfs(&img, "cat /d/f"), b"data");
    assert_eq!(ok(&img, &["ls", "/d"]), "f\n");

    // A full image: the put fails half-way with ENOSPC, and the image is still clean.
    let tiny = mkfs(&dir, "tiny.img", 1024, 4, &[]);
    let big = dir.join("big");
    fs::write(&big, Rng::new(5).bytes(6 << 20)).unwrap();
    fails(
        &tiny,
        &[],
        &["put", s(&big), "/big"],
        "/big: no space left on device",
    );
    let df = kv(&ok(&tiny, &["df"]));
    assert!(df["free blocks"].parse::<u64>().unwrap() < 64, "{df:?}");
    // The partial file can be removed, and the space comes back.
    ok(&tiny, &["rm", "/big"]);
    let df = kv(&ok(&tiny, &["df"]));
    assert!(df["free blocks"].parse::<u64>().unwrap() > 2000, "{df:?}");

    // A feature the writer cannot keep consistent: refused before anything is written.
    let quota = mkfs(&dir, "q.img", 4096, 16, &["-O", "quota"]);
    let before = fs::read(&quota).unwrap();
    fails(&quota, &[], &["mkdir", "/x"], "quota");
    assert!(
        fs::read(&quota).unwrap() == before,
        "refused mount changed the image"
    );
    // Not an image at all.
    let zeros = dir.join("zeros");
    fs::write(&zeros, vec![0u8; 1 << 20]).unwrap();
    let out = pvfs(&["image", "mkdir", s(&zeros), "/x"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not ext2/3/4"));
    assert!(fs::read(&zeros).unwrap().iter().all(|&b| b == 0));
}

#[test]
fn ln_chmod_chown() {
    let dir = ext4img::tmpdir("cli-ln");
    let img = mkfs(&dir, "l.img", 1024, 16, &[]);
    let src = dir.join("f");
    fs::write(&src, b"contents").unwrap();
    ok(&img, &["mkdir", "/d"]);
    ok(&img, &["put", s(&src), "/f"]);
    // Hard links: a new name, and into an existing directory (DIR/BASENAME).
    ok(&img, &["ln", "/f", "/g"]);
    ok(&img, &["ln", "/f", "/d"]);
    let (f, g, df) = (
        kv(&ok(&img, &["stat", "/f"])),
        kv(&ok(&img, &["stat", "/g"])),
        kv(&ok(&img, &["stat", "/d/f"])),
    );
    assert_eq!(
        (f["links"].as_str(), &g["inode"], &df["inode"]),
        ("3", &f["inode"], &f["inode"])
    );
    assert_eq!(debugfs(&img, "cat /d/f"), b"contents");
    fails(
        &img,
        &[],
        &["ln", "/d", "/dl"],
        "/d: hard link not allowed for directory",
    );
    fails(&img, &[], &["ln", "/f", "/g"], "/g: file exists");
    fails(
        &img,
        &[],
        &["ln", "/nope", "/h"],
        "/nope: no such file or directory",
    );
    // Symbolic links: fast (in the inode) and slow (in a block), stored as given.
    let long = "component/".repeat(20) + "end";
    ok(&img, &["ln", "-s", "../f", "/d/s"]);
    ok(&img, &["ln", "-s", &long, "/long"]);
    assert_eq!(kv(&ok(&img, &["stat", "/d/s"]))["target"], "../f");
    let view = ext4_view::Ext4::load(Box::new(fs::read(&img).unwrap())).unwrap();
    assert_eq!(view.read_link("/long").unwrap().as_ref(), long.as_bytes());
    assert_eq!(
        view.read("/d/s").unwrap(),
        b"contents",
        "ext4-view follows the link"
    );
    fails(&img, &["-s"], &["ln", "x", "/d/s"], "/d/s: file exists");
    // chmod (octal, set-id and sticky bits kept) and chown (UID:GID, UID, :GID).
    ok(&img, &["chmod", "4750", "/f"]);
    ok(&img, &["chown", "1000:2000", "/f"]);
    let st = kv(&ok(&img, &["stat", "/g"]));
    assert_eq!(
        (st["mode"].as_str(), st["uid"].as_str(), st["gid"].as_str()),
        ("4750 (-rwsr-x---)", "1000", "2000")
    );
    ok(&img, &["chown", "70000", "/d"]);
    ok(&img, &["chown", ":7", "/d"]);
    ok(&img, &["chmod", "1777", "/d"]);
    let st = String::from_utf8_lossy(&debugfs(&img, "stat /d")).into_owned();
    assert!(
        st.contains("Mode:  01777") && st.contains("User: 70000   Group:     7"),
        "{st}"
    );
    // A symlink itself is changed, not its target.
    ok(&img, &["chown", "5:6", "/d/s"]);
    assert_eq!(kv(&ok(&img, &["stat", "/d/s"]))["uid"], "5");
    assert_eq!(kv(&ok(&img, &["stat", "/f"]))["uid"], "1000");
    fails(&img, &[], &["chmod", "99", "/f"], "99: not an octal mode");
    fails(&img, &[], &["chmod", "17777", "/f"], "not an octal mode");
    fails(&img, &[], &["chown", "abc", "/f"], "abc: not UID:GID");
    fails(&img, &[], &["chown", ":", "/f"], "not UID:GID");
    fails(
        &img,
        &[],
        &["chmod", "644", "/nope"],
        "/nope: no such file or directory",
    );
    // Removing links: the data goes with the last one.
    ok(&img, &["rm", "/g"]);
    ok(&img, &["rm", "/d/s"]);
    ok(&img, &["rm", "/long"]);
    assert_eq!(kv(&ok(&img, &["stat", "/f"]))["links"], "2");
    ok(&img, &["rm", "-r", "/d"]);
    ok(&img, &["rm", "/f"]);
    assert_eq!(ok(&img, &["ls", "/"]), "lost+found\n");
}

#[test]
fn mv_renames_and_moves() {
    let dir = ext4img::tmpdir("cli-mv");
    let img = mkfs(&dir, "v.img", 4096, 16, &[]);
    let (one, two) = (dir.join("one"), dir.join("two"));
    fs::write(&one, b"first file").unwrap();
    fs::write(&two, b"second").unwrap();
    ok(&img, &["mkdir", "-p", "/a"]);
    ok(&img, &["mkdir", "-p", "/b/c/inner"]);
    ok(&img, &["put", s(&one), "/a/f"]);
    // Into an existing directory, then a plain rename.
    ok(&img, &["mv", "/a/f", "/b"]);
    ok(&img, &["mv", "/b/f", "/b/g"]);
    assert_eq!(ok(&img, &["ls", "/b"]), "c\ng\n");
    assert_eq!(ok(&img, &["ls", "/a"]), "");
    // A directory to another parent: link counts and `..` follow.
    ok(&img, &["mv", "/a", "/b/c"]);
    assert_eq!(kv(&ok(&img, &["stat", "/b/c"]))["links"], "4");
    let dotdot = String::from_utf8_lossy(&debugfs(&img, "ls /b/c/a")).into_owned();
    let c_ino = kv(&ok(&img, &["stat", "/b/c"]))["inode"].clone();
    assert!(
        dotdot.contains(&format!("({c_ino})")) || dotdot.contains(&c_ino),
        "{dotdot}"
    );
    assert_eq!(kv(&ok(&img, &["stat", "/"]))["links"], "4");
    // A file replaces a file; the replaced inode is freed.
    ok(&img, &["put", s(&two), "/x"]);
    let free = kv(&ok(&img, &["df"]))["free inodes"].clone();
    ok(&img, &["mv", "/x", "/b/g"]);
    assert_eq!(debugfs(&img, "cat /b/g"), b"second");
    let free2: u64 = kv(&ok(&img, &["df"]))["free inodes"].parse().unwrap();
    assert_eq!(free2, free.parse::<u64>().unwrap() + 1);
    // Refusals change nothing.
    fails(
        &img,
        &[],
        &["mv", "/b", "/b/c/a"],
        "cannot move a directory into itself",
    );
    fails(
        &img,
        &[],
        &["mv", "/nope", "/z"],
        "/nope: no such file or directory",
    );
    ok(&img, &["mkdir", "/c"]);
    fails(&img, &[], &["mv", "/c", "/b"], "/b/c: directory not empty");
    fails(&img, &[], &["mv", "/c", "/b/g"], "/b/g: not a directory");
    fails(
        &img,
        &[],
        &["mv", "/b/g", "/q/r"],
        "/q/r: no such file or directory",
    );
    assert_eq!(ok(&img, &["ls", "/"]), "b\nc\nlost+found\n");
    assert_eq!(debugfs(&img, "cat /b/g"), b"second");
}

#[test]
fn truncate_shrinks_and_grows() {
    let dir = ext4img::tmpdir("cli-truncate");
    let img = mkfs(&dir, "t.img", 4096, 16, &[]);
    let data = Rng::new(9).bytes(300_000);
    let src = dir.join("f");
    fs::write(&src, &data).unwrap();
    ok(&img, &["put", s(&src), "/f"]);
    let free0: u64 = kv(&ok(&img, &["df"]))["free blocks"].parse().unwrap();
    // Shrink inside a block: the blocks past the end are freed, the tail is cut.
    ok(&img, &["truncate", "10001", "/f"]);
    assert!(debugfs(&img, "cat /f") == data[..10_001]);
    let free1: u64 = kv(&ok(&img, &["df"]))["free blocks"].parse().unwrap();
    assert_eq!(
        free1 - free0,
        300_000u64.div_ceil(4096) - 10_001u64.div_ceil(4096)
    );
    // Grow: a hole that reads as zeros and takes no blocks.
    ok(&img, &["truncate", "3M", "/f"]);
    let mut want = data[..10_001].to_vec();
    want.resize(3 << 20, 0);
    assert!(debugfs(&img, "cat /f") == want);
    let st = kv(&ok(&img, &["stat", "/f"]));
    assert_eq!(
        (st["size"].as_str(), st["blocks"].as_str()),
        ("3145728", "24")
    );
    let view = ext4_view::Ext4::load(Box::new(fs::read(&img).unwrap())).unwrap();
    assert!(view.read("/f").unwrap() == want, "ext4-view content");
    ok(&img, &["truncate", "0", "/f"]);
    assert_eq!(kv(&ok(&img, &["stat", "/f"]))["blocks"], "0");
    assert_eq!(
        kv(&ok(&img, &["df"]))["free blocks"],
        (free0 + 74).to_string()
    );
    ok(&img, &["mkdir", "/d"]);
    fails(&img, &[], &["truncate", "1x", "/f"], "1x: not a size");
    fails(
        &img,
        &[],
        &["truncate", "10", "/d"],
        "/d: not a regular file",
    );
    fails(
        &img,
        &[],
        &["truncate", "10", "/nope"],
        "/nope: no such file or directory",
    );
    fails(&img, &[], &["truncate", "100T", "/f"], "/f: file too large");
}

#[test]
fn resize_grows_the_file_and_the_file_system_as_resize2fs() {
    let dir = ext4img::tmpdir("cli-resize");
    let img = mkfs(&dir, "a.img", 4096, 64, &[]);
    let src = dir.join("f");
    fs::write(&src, Rng::new(7).bytes(300_000)).unwrap();
    ok(&img, &["put", s(&src), "/f"]);
    let reference = dir.join("ref.img");
    fs::copy(&img, &reference).unwrap();
    let out = kv(&ok(&img, &["resize", "700M"]));
    assert_eq!(out["block size"], "4096");
    assert_eq!(out["old blocks"], "16384");
    assert_eq!(out["blocks"], "179200");
    assert_eq!(out["size"], (700u64 << 20).to_string());
    assert_eq!(fs::metadata(&img).unwrap().len(), 700 << 20);
    fs::OpenOptions::new()
        .write(true)
        .open(&reference)
        .unwrap()
        .set_len(700 << 20)
        .unwrap();
    ext4img::resize2fs(&reference, 179_200);
    ext4img::assert_same_layout(
        "pvfs image resize",
        &ext4img::dumpe2fs_layout(&img),
        &ext4img::dumpe2fs_layout(&reference),
    );
    assert_eq!(kv(&ok(&img, &["df"]))["blocks"], "179200");
    let back = dir.join("back");
    ok(&img, &["get", "/f", s(&back)]);
    assert!(fs::read(&back).unwrap() == fs::read(&src).unwrap());
    // The same size again changes nothing.
    assert_eq!(kv(&ok(&img, &["resize", "700M"]))["blocks"], "179200");
}

#[test]
fn resize_refuses_to_shrink_or_to_outgrow_32_bits() {
    let dir = ext4img::tmpdir("cli-resize-refused");
    let img = mkfs(&dir, "a.img", 4096, 64, &["-O", "^resize_inode,^64bit"]);
    let len = |p: &Path| fs::metadata(p).unwrap().len();
    fails(
        &img,
        &[],
        &["resize", "32M"],
        "cannot shrink the file system",
    );
    assert_eq!(len(&img), 64 << 20);
    // Without 64bit: 2^32 - 1 blocks at most.
    fails(
        &img,
        &[],
        &["resize", "16T"],
        "cannot grow past 4294967295 blocks",
    );
    assert_eq!(len(&img), 64 << 20);
    fails(&img, &[], &["resize", "lots"], "lots: not a size");
    // Past the one descriptor block (128 descriptors, no reserve): meta_bg from the second.
    assert_eq!(kv(&ok(&img, &["resize", "17G"]))["blocks"], "4456448");
    assert!(ext4img::dumpe2fs(&img)
        .lines()
        .any(|l| l.starts_with("First meta block group:") && l.ends_with(" 1")));
}
