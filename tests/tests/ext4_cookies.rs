//! Readdir cookies survive changes to the directory made between two readdir calls: entries
//! added or removed elsewhere do not make a resumed listing repeat or skip the entries that
//! were there all along. (Changes are made with debugfs, then the image is re-opened.)
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::Ext4;
use pvfs_tests::ext4img;
use pvfs_tests::wimg::dir_names;
use std::collections::BTreeSet;
use std::fs;
use std::process::Command;

fn list_from(bytes: &[u8], dir: &[u8], cookie: u64) -> Vec<Vec<u8>> {
    let mut fs = Ext4::open(MemDisk::borrowed(bytes)).unwrap();
    let d = fs.lookup_path(dir).unwrap();
    let mut v = Vec::new();
    fs.readdir(d, cookie, |e| {
        v.push(e.name.to_vec());
        true
    })
    .unwrap();
    v
}

#[test]
fn cookies_survive_inserts_and_removals() {
    let dir = ext4img::tmpdir("cookies");
    let src = dir.join("root");
    for d in ["lin", "idx"] {
        fs::create_dir_all(src.join(d)).unwrap();
    }
    for i in 0..40 {
        fs::write(src.join(format!("lin/f{i:02}")), b"").unwrap();
    }
    for i in 0..3000 {
        fs::write(src.join(format!("idx/entry-{i:05}")), b"").unwrap();
    }
    let img = dir.join("fs.img");
    let kind = ext4img::ImageKind {
        name: "cookies",
        fs_type: "ext4",
        block_size: 1024,
        extra: &[],
    };
    ext4img::mkfs(&kind, &src, &img, 32, 8192);
    for d in ["lin", "idx"] {
        let before = fs::read(&img).unwrap();
        let mut fsys = Ext4::open(MemDisk::borrowed(&before)).unwrap();
        let ino = fsys.lookup_path(d.as_bytes()).unwrap();
        let all = dir_names(&mut fsys, ino);
        // Read the first third, keep the cookie.
        let mut first = Vec::new();
        let mut cookie = 0;
        fsys.readdir(ino, 0, |e| {
            first.push(e.name.to_vec());
            cookie = e.next_cookie;
            first.len() < all.len() / 3
        })
        .unwrap();
        drop(fsys);
        // Change the directory: remove one entry already returned and one not yet returned,
        // and add new ones.
        let gone_seen = String::from_utf8(first[first.len() / 2].clone()).unwrap();
        let gone_later = String::from_utf8(all[all.len() - 2].clone()).unwrap();
        let mut script = format!("rm /{d}/{gone_seen}\nrm /{d}/{gone_later}\n");
        for i in 0..20 {
            script.push_str(&format!("write /dev/null /{d}/new-{i}\n"));
        }
        let sf = dir.join("script");
        fs::write(&sf, script).unwrap();
        ext4img::run(
            Command::new("debugfs")
                .args(["-w", "-f"])
                .arg(&sf)
                .arg(&img),
        );
        ext4img::run(Command::new("e2fsck").arg("-fn").arg(&img));
        let after = fs::read(&img).unwrap();
        if d == "idx" {
            let mut f = Ext4::open(MemDisk::borrowed(&after)).unwrap();
            let i = f.lookup_path(b"idx").unwrap();
            let flags = f.getattr(i).unwrap().flags;
            assert!(
                flags & pvfs_fs::ext4::flags::INDEX != 0,
                "idx lost its htree"
            );
            assert!(f.lookup(i, b"new-7").is_ok());
        }
        let rest = list_from(&after, d.as_bytes(), cookie);
        let seen: BTreeSet<_> = first.iter().cloned().collect();
        for n in &rest {
            assert!(
                !seen.contains(n),
                "{d}: {:?} listed twice",
                String::from_utf8_lossy(n)
            );
        }
        // Every original entry that still exists shows up exactly once across the two calls.
        let rest_set: BTreeSet<_> = rest.iter().cloned().collect();
        for n in &all {
            if *n == gone_seen.as_bytes() || *n == gone_later.as_bytes() {
                continue;
            }
            assert!(
                seen.contains(n) || rest_set.contains(n),
                "{d}: {:?} skipped",
                String::from_utf8_lossy(n)
            );
        }
        assert!(!rest_set.contains(gone_later.as_bytes()));
    }
}
