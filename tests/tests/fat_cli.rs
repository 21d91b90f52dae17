//! `pvfs image` on FAT images: a tree of long, Unicode and 8.3-colliding names, deep
//! directories and files of 0 bytes, one cluster and several MiB, written by mtools into
//! `mkfs.vfat` images (FAT12, FAT16, FAT32), comes out of `pvfs image get` byte for byte with
//! its modification times (FAT's 2 s); `pvfs image put` and the edit commands leave images
//! `fsck.fat -n` clean that mtools reads as expected; what FAT cannot store fails as vfat does.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_tests::fatimg;
use pvfs_tests::p9client::{pvfs_bin, temp_dir};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Command, Output};

fn pvfs(args: &[&str]) -> Output {
    Command::new(pvfs_bin()).args(args).output().unwrap()
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

fn fails(args: &[&str], want: &str) {
    let out = pvfs(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "pvfs {args:?}: {err}");
    assert!(err.contains(want), "pvfs {args:?}: {err}");
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn get_reproduces_mtools_trees_byte_for_byte() {
    fatimg::require_tools();
    let dir = temp_dir("fat_cli_get");
    for (bits, spc, kib, big) in [
        (12u32, 4u32, 8_000u64, 3usize << 20),
        (16, 4, 20_000, 4 << 20),
        (32, 1, 40_000, 3 << 20),
    ] {
        let img = dir.join(format!("fat{bits}.img"));
        let src = dir.join(format!("src{bits}"));
        let out = dir.join(format!("out{bits}"));
        fatimg::mkfs(&img, kib, bits, spc);
        let want = fatimg::sample_tree(&src, spc as usize * 512, big);
        fatimg::mtools_put(&img, &src);
        ok(&["image", "get", s(&img), "/", s(&out)]);
        assert!(fatimg::host_tree(&out) == want, "FAT{bits}: get differs");
        // mtools kept the host's mtimes (-m); FAT holds them to 2 s.
        for p in want.keys().filter(|p| want[*p].is_some()) {
            let a = std::fs::metadata(src.join(&p[1..])).unwrap().mtime();
            let b = std::fs::metadata(out.join(&p[1..])).unwrap().mtime();
            assert!((a - b).abs() <= 2, "FAT{bits} {p}: mtime {a} vs {b}");
        }
        let info = ok(&["image", "info", s(&img)]);
        assert!(info.contains(&format!("fat type: FAT{bits}\n")), "{info}");
        assert!(info.contains("volume: PVFSTEST\n"), "{info}");
        let ls = ok(&["image", "ls", s(&img), "/collide"]);
        assert_eq!(ls.lines().count(), 15, "{ls}");
        let long = ok(&["image", "ls", "-l", s(&img), "/"]);
        assert!(long.contains("-rwxr-xr-x 1 0 0 0 "), "{long}");
        assert_eq!(
            ok(&["image", "cat", s(&img), "/README.TXT"]),
            "plain 8.3 name\n"
        );
        let df = ok(&["image", "df", s(&img)]);
        assert!(df.contains(&format!("block size: {}\n", spc * 512)), "{df}");
        fails(
            &["image", "cat", s(&img), "/missing"],
            "/missing: no such file or directory",
        );
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_dir_all(&out);
    }
}

#[test]
fn edits_are_fsck_clean_and_read_back_by_mtools() {
    fatimg::require_tools();
    let dir = temp_dir("fat_cli_edit");
    let img = dir.join("e.img");
    let src = dir.join("src");
    fatimg::mkfs(&img, 20_000, 16, 2);
    let want = fatimg::sample_tree(&src, 1024, 1 << 20);
    ok(&["image", "put", s(&img), s(&src), "/copy"]);
    fatimg::fsck_clean(&img);
    ok(&["image", "mkdir", "-p", s(&img), "/a/b/c"]);
    ok(&["image", "mv", s(&img), "/copy/README.TXT", "/a/b"]);
    ok(&["image", "truncate", s(&img), "4", "/a/b/README.TXT"]);
    ok(&["image", "rm", "-r", s(&img), "/copy/collide"]);
    ok(&["image", "chmod", s(&img), "0555", "/copy/empty"]);
    let st = ok(&["image", "stat", s(&img), "/copy/empty"]);
    assert!(st.contains("mode: 0555 (-r-xr-xr-x)"), "{st}");
    assert!(st.contains("attributes: read-only"), "{st}");
    fails(
        &["image", "chmod", s(&img), "0644", "/copy/empty"],
        "operation not permitted",
    );
    fails(
        &["image", "chown", s(&img), "1000:1000", "/copy/empty"],
        "operation not permitted",
    );
    fails(
        &["image", "ln", "-s", s(&img), "x", "/link"],
        "operation not permitted",
    );
    fails(
        &["image", "ln", s(&img), "/a/b/README.TXT", "/hard"],
        "operation not permitted",
    );
    fails(&["image", "mkdir", s(&img), "/a:b"], "invalid file name");
    fails(&["image", "mkdir", s(&img), "/a"], "file exists");
    fails(
        &["image", "rm", s(&img), "/a"],
        "is a directory (use rm -r)",
    );
    fails(
        &["image", "mv", s(&img), "/a", "/a/b/c"],
        "cannot move a directory into itself",
    );
    fails(
        &["image", "resize", s(&img), "30M"],
        "FAT images cannot be resized",
    );
    fatimg::fsck_clean(&img);
    let out = dir.join("out");
    fatimg::mtools_get(&img, &out);
    let got = fatimg::host_tree(&out);
    let mut expect = fatimg::Tree::new();
    for (k, v) in &want {
        if k.starts_with("/collide") || k == "/README.TXT" {
            continue;
        }
        expect.insert(format!("/copy{k}"), v.clone());
    }
    expect.insert("/copy".into(), None);
    for d in ["/a", "/a/b", "/a/b/c"] {
        expect.insert(d.into(), None);
    }
    expect.insert("/a/b/README.TXT".into(), Some(b"plai".to_vec()));
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expect.keys().collect::<Vec<_>>()
    );
    assert!(got == expect);
    // mtools sees the read-only attribute chmod set.
    let attrs = Command::new("mattrib")
        .env("MTOOLS_SKIP_CHECK", "1")
        .args(["-i", s(&img), "::/copy/empty"])
        .output()
        .unwrap();
    let attrs = String::from_utf8_lossy(&attrs.stdout);
    assert!(
        attrs.starts_with("  A R") || attrs.contains(" R "),
        "{attrs}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
