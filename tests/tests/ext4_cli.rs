//! `pvfs image …` run as a real process on a generated image, checked against the source tree
//! and against `dumpe2fs`/`debugfs`.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_tests::ext4img::{self, ImageKind, TreeSpec};
use pvfs_tests::p9client::pvfs_bin;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

fn image() -> &'static (PathBuf, PathBuf) {
    static IMG: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    IMG.get_or_init(|| {
        let d = ext4img::tmpdir("cli");
        let src = d.join("root");
        ext4img::gen_tree(
            &src,
            TreeSpec {
                big_dir: 50,
                huge_sparse: false,
                ..TreeSpec::SMALL
            },
        );
        let img = d.join("fs.img");
        let kind = ImageKind {
            name: "cli",
            fs_type: "ext4",
            block_size: 4096,
            extra: &[],
        };
        ext4img::mkfs(&kind, &src, &img, 32, 1024);
        (img, src)
    })
}

fn pvfs(args: &[&str]) -> Output {
    let out = Command::new(pvfs_bin()).args(args).output().unwrap();
    out
}

fn ok(args: &[&str]) -> String {
    let out = pvfs(args);
    assert!(
        out.status.success(),
        "pvfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kv(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            l.split_once(": ")
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect()
}

fn dumpe2fs(img: &Path) -> BTreeMap<String, String> {
    ext4img::dumpe2fs(img)
        .lines()
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

#[test]
fn cat_gives_raw_bytes() {
    let (img, src) = image();
    for p in [
        "files/3m.bin",
        "files/empty",
        "names/日本語のファイル名",
        "sparse/holes",
    ] {
        let out = pvfs(&["image", "cat", img.to_str().unwrap(), p]);
        assert!(out.status.success());
        assert!(out.stdout == fs::read(src.join(p)).unwrap(), "cat {p}");
    }
    let out = pvfs(&["image", "cat", img.to_str().unwrap(), "/no/such"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no such file"));
}

#[test]
fn ls_lists_like_the_source() {
    let (img, src) = image();
    let img = img.to_str().unwrap();
    let names = ok(&["image", "ls", img, "/links"]);
    let mut want: Vec<String> = fs::read_dir(src.join("links"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    want.sort();
    assert_eq!(names.lines().collect::<Vec<_>>(), want);
    let long = ok(&["image", "ls", "-l", img, "/modes"]);
    let line = long.lines().find(|l| l.ends_with(" setuid")).unwrap();
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f[0], "-rwsr-xr-x");
    assert_eq!((f[2], f[3]), ("1000", "1000"));
    let md = fs::metadata(src.join("modes/setuid")).unwrap();
    assert_eq!(f[4], md.len().to_string());
    let long = ok(&["image", "ls", "-l", img, "/links"]);
    assert!(
        long.lines()
            .any(|l| l.ends_with("short -> ../files/small.txt")),
        "{long}"
    );
    // A file path lists just that file.
    assert_eq!(ok(&["image", "ls", img, "/files/small.txt"]), "small.txt\n");
}

#[test]
fn stat_matches_source() {
    let (img, src) = image();
    let st = kv(&ok(&[
        "image",
        "stat",
        img.to_str().unwrap(),
        "/modes/private",
    ]));
    let md = fs::metadata(src.join("modes/private")).unwrap();
    assert_eq!(st["mode"], "0600 (-rw-------)");
    assert_eq!(st["uid"], md.uid().to_string());
    assert_eq!(st["gid"], md.gid().to_string());
    assert_eq!(st["size"], md.len().to_string());
    assert_eq!(st["type"], "regular file");
    assert!(
        st["mtime"].ends_with(&format!("({}.000000000)", md.mtime())),
        "{}",
        st["mtime"]
    );
    let st = kv(&ok(&[
        "image",
        "stat",
        img.to_str().unwrap(),
        "/files/small.txt",
    ]));
    assert_eq!(st["xattr user.comment"], "hello xattr");
    let st = kv(&ok(&[
        "image",
        "stat",
        img.to_str().unwrap(),
        "/links/long",
    ]));
    assert_eq!(
        st["target"],
        fs::read_link(src.join("links/long"))
            .unwrap()
            .to_str()
            .unwrap()
    );
}

/// The arguments of `pvfs image get IMG FROM TO`.
fn get_args<'a>(img: &'a Path, from: &'a str, to: &'a Path) -> [&'a str; 5] {
    [
        "image",
        "get",
        img.to_str().unwrap(),
        from,
        to.to_str().unwrap(),
    ]
}

#[test]
fn get_copies_the_tree() {
    let (img, src) = image();
    let dest = img.parent().unwrap().join("get-out");
    let _ = fs::remove_dir_all(&dest);
    ok(&get_args(img, "/", &dest));
    fs::remove_dir(dest.join("lost+found")).unwrap();
    assert!(ext4img::compare_trees(src, &dest, false) > 30);
    // DEST must not exist.
    let again = pvfs(&get_args(img, "/files", &dest));
    assert!(!again.status.success());
    // A single file.
    let one = img.parent().unwrap().join("one-file");
    let _ = fs::remove_file(&one);
    ok(&get_args(img, "/files/4097.bin", &one));
    assert_eq!(
        fs::read(&one).unwrap(),
        fs::read(src.join("files/4097.bin")).unwrap()
    );
    fs::remove_dir_all(&dest).unwrap();
}

#[test]
fn info_and_df_match_dumpe2fs() {
    let (img, _) = image();
    let d = dumpe2fs(img);
    let info = kv(&ok(&["image", "info", img.to_str().unwrap()]));
    assert_eq!(info["blocks"], d["Block count"]);
    assert_eq!(info["free blocks"], d["Free blocks"]);
    assert_eq!(info["inodes"], d["Inode count"]);
    assert_eq!(info["free inodes"], d["Free inodes"]);
    assert_eq!(info["block size"], d["Block size"]);
    assert_eq!(info["inode size"], d["Inode size"]);
    assert_eq!(info["features"], d["Filesystem features"]);
    assert_eq!(info["uuid"], d["Filesystem UUID"]);
    assert_eq!(info["state"], d["Filesystem state"]);
    let df = kv(&ok(&["image", "df", img.to_str().unwrap()]));
    assert_eq!(df["blocks"], d["Block count"]);
    assert_eq!(df["free blocks"], d["Free blocks"]);
    let used: u64 = df["used inodes"].parse().unwrap();
    let total: u64 = d["Inode count"].parse().unwrap();
    let free: u64 = d["Free inodes"].parse().unwrap();
    assert_eq!(used, total - free);
}

#[test]
fn help_documents_formats() {
    let h = ok(&["image", "ls", "--help"]);
    assert!(h.contains("MODE NLINK UID GID SIZE MTIME NAME"));
    let h = ok(&["image", "get", "--help"]);
    assert!(h.contains("sparse"));
}
