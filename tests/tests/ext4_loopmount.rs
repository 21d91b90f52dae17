//! Cross-check with the Linux kernel: images written by pvfs (random model sequences, and
//! `pvfs image put` of a generated tree) are loop-mounted read-only by Linux's ext4 and
//! compared with the model or the source tree; the same images are also read with ext4-view.
//!
//! Loop mounts need root and a loop device; where mounting is not permitted the tests print
//! `skipped: …` and return, or fail with `PVFS_REQUIRE_ALL=1` ([`pvfs_tests::skip`]).
#![allow(clippy::unwrap_used, reason = "test code")]

#[path = "ext4_write/model.rs"]
mod model;

use model::{Kind, Model};
use pvfs_tests::ext4img::{self, TreeSpec};
use pvfs_tests::p9client::pvfs_bin;
use pvfs_tests::wimg::{cannot_mount, e2fsck_clean, mkfs, LoopMount};
use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

macro_rules! need_mount {
    () => {
        if let Some(why) = cannot_mount() {
            pvfs_tests::skip(&format!("loop mount not permitted here ({why})"));
            return;
        }
    };
}

/// xattr names of `p` (not followed) as Linux reports them, `user.` namespace.
fn linux_xattrs(p: &Path) -> BTreeSet<Vec<u8>> {
    let out = Command::new("getfattr")
        .args(["-h", "--absolute-names", "-m", "^user\\."])
        .arg(p)
        .output()
        .expect("getfattr must be installed (ci/host-deps.sh)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

fn linux_xattr(p: &Path, name: &[u8]) -> Vec<u8> {
    let out = Command::new("getfattr")
        .args(["-h", "--absolute-names", "--only-values", "-n"])
        .arg(std::ffi::OsStr::from_bytes(name))
        .arg(p)
        .output()
        .unwrap();
    assert!(out.status.success(), "getfattr {name:?} {p:?}");
    out.stdout
}

/// The mounted tree at `root` is what `m` says.
fn compare_mount(root: &Path, m: &Model) {
    for (p, &ino) in &m.paths {
        let host = root.join(p.trim_start_matches('/'));
        let n = &m.nodes[&ino];
        let md = fs::symlink_metadata(&host).unwrap();
        let show = host.display();
        let ft = md.file_type();
        let ok_kind = match n.kind {
            Kind::Dir => ft.is_dir(),
            Kind::File => ft.is_file(),
            Kind::Symlink => ft.is_symlink(),
            Kind::Fifo => ft.is_fifo(),
        };
        assert!(ok_kind, "type of {show}: {ft:?} vs {:?}", n.kind);
        assert_eq!(md.ino(), u64::from(ino), "inode of {show}");
        assert_eq!(
            md.permissions().mode() & 0o7777,
            u32::from(n.perm),
            "mode of {show}"
        );
        assert_eq!((md.uid(), md.gid()), (n.uid, n.gid), "owner of {show}");
        assert_eq!(md.nlink(), u64::from(m.nlink(p, ino)), "nlink of {show}");
        match n.kind {
            Kind::Dir => {
                let mut names: Vec<Vec<u8>> = fs::read_dir(&host)
                    .unwrap()
                    .map(|e| e.unwrap().file_name().as_bytes().to_vec())
                    .filter(|n| !(p.is_empty() && n == b"lost+found"))
                    .collect();
                names.sort();
                let prefix = format!("{p}/");
                let mut want: Vec<Vec<u8>> = m
                    .paths
                    .keys()
                    .filter_map(|k| k.strip_prefix(&prefix))
                    .filter(|rest| !rest.contains('/'))
                    .map(|rest| rest.as_bytes().to_vec())
                    .collect();
                want.sort();
                assert_eq!(names, want, "entries of {show}");
            }
            Kind::File => {
                assert_eq!(md.len(), n.data.len() as u64, "size of {show}");
                assert!(fs::read(&host).unwrap() == n.data, "content of {show}");
            }
            Kind::Symlink => {
                assert_eq!(
                    fs::read_link(&host).unwrap().as_os_str().as_bytes(),
                    &n.target[..],
                    "target of {show}"
                );
            }
            Kind::Fifo => {}
        }
        if matches!(n.kind, Kind::Dir | Kind::File) {
            let names = linux_xattrs(&host);
            let want: BTreeSet<Vec<u8>> = n.xattrs.keys().cloned().collect();
            assert_eq!(names, want, "xattrs of {show}");
            for (k, v) in &n.xattrs {
                assert_eq!(&linux_xattr(&host, k), v, "xattr {k:?} of {show}");
            }
        }
    }
}

fn model_mounted(block: u32, seqs: u64) {
    need_mount!();
    let seqs = std::env::var("PVFS_LOOP_SEQS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(seqs);
    let dir = ext4img::tmpdir(&format!("loop-model-{block}"));
    let base = mkfs(&dir, "base.img", block, 24, &[]);
    let mnt = dir.join("mnt");
    for seq in 0..seqs {
        let img = dir.join(format!("s{seq}.img"));
        fs::copy(&base, &img).unwrap();
        let (m, _) =
            model::run_sequence(&img, 0x1_0000 + seq * 13 + u64::from(block), 80, 64 << 10);
        // e2fsck and the engine's and ext4-view's reading of the image.
        model::check(&img, &m);
        let mount = LoopMount::new(&img, &mnt, true).unwrap();
        compare_mount(mount.path(), &m);
        drop(mount);
        // A read-only mount leaves the image as it was.
        e2fsck_clean(&img);
        fs::remove_file(&img).unwrap();
    }
    eprintln!("{seqs} model sequences at {block} compared with Linux's loop mount");
}

#[test]
fn random_sequences_mount_4k() {
    model_mounted(4096, 12);
}

#[test]
fn random_sequences_mount_1k() {
    model_mounted(1024, 12);
}

/// `pvfs image put` of a generated tree (sparse files with hundreds of extents, symlinks,
/// hard links, modes, owners, nanosecond and pre-1970 mtimes, a 600-entry directory), read
/// back by Linux through a read-only loop mount and by ext4-view.
fn put_mounted(block: u32) {
    need_mount!();
    let dir = ext4img::tmpdir(&format!("loop-put-{block}"));
    let src = dir.join("src");
    ext4img::gen_tree(
        &src,
        TreeSpec {
            many_files: 300,
            huge_sparse: false,
            ..TreeSpec::SMALL
        },
    );
    // Device nodes and FIFOs are checked in ext4_cli_write.rs; compare_trees skips them on
    // the source side only.
    fs::remove_dir_all(src.join("special")).unwrap();
    let img = mkfs(&dir, "p.img", block, 64, &[]);
    ext4img::run(
        Command::new(pvfs_bin())
            .args(["image", "put"])
            .arg(&img)
            .arg(&src)
            .arg("/copy"),
    );
    e2fsck_clean(&img);
    {
        let mount = LoopMount::new(&img, &dir.join("mnt"), true).unwrap();
        let n = ext4img::compare_trees(&src, &mount.path().join("copy"), true);
        assert!(n > 900, "only {n} paths compared");
        // compare_trees does not look at xattrs: every one gen_tree set, as Linux reads it.
        for (p, name, value) in ext4img::expected_xattrs() {
            let host = mount.path().join("copy").join(p);
            assert_eq!(
                linux_xattr(&host, name.as_bytes()),
                value,
                "xattr {name} of {p}"
            );
        }
    }
    let view = ext4_view::Ext4::load(Box::new(fs::read(&img).unwrap())).unwrap();
    let mut viewed = 0;
    for (rel, md) in ext4img::walk(&src) {
        let inside = format!(
            "/copy/{}",
            String::from_utf8(rel.clone()).unwrap_or_default()
        );
        // ext4-view 1.x takes paths as UTF-8 here, and refuses inodes with pre-1970 times
        // (it converts the 32-bit seconds with `i32::try_from(u32)`); Linux checked those.
        if std::str::from_utf8(&rel).is_err() || md.mtime() < 0 || md.atime() < 0 {
            continue;
        }
        viewed += 1;
        let vm = view.symlink_metadata(inside.as_str()).unwrap();
        assert_eq!(
            vm.mode(),
            (md.mode() & 0o7777) as u16,
            "ext4-view mode of {inside}"
        );
        if md.file_type().is_symlink() {
            let t = fs::read_link(src.join(OsStr::from_bytes(&rel))).unwrap();
            assert_eq!(
                view.read_link(inside.as_str()).unwrap().as_ref(),
                t.as_os_str().as_bytes(),
                "ext4-view target of {inside}"
            );
        } else if md.is_file() {
            assert!(
                view.read(inside.as_str()).unwrap()
                    == fs::read(src.join(OsStr::from_bytes(&rel))).unwrap(),
                "ext4-view content of {inside}"
            );
        }
    }
    assert!(viewed > 900, "only {viewed} paths read with ext4-view");
}

#[test]
fn put_tree_mount_4k() {
    put_mounted(4096);
}

#[test]
fn put_tree_mount_1k() {
    put_mounted(1024);
}
