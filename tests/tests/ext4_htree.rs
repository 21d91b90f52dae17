//! htree lookups for every directory hash: legacy, half_md4 and tea, each with signed and
//! unsigned chars (the sb flag), on names with high-bit bytes (where the two differ). The
//! indexes are built by `e2fsck -D` after `tune2fs -E hash_alg=…` and `debugfs ssv flags`.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::{flags, Ext4};
use pvfs_tests::ext4img;
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::process::Command;

fn names() -> Vec<Vec<u8>> {
    let mut v = Vec::new();
    for i in 0..700 {
        v.push(format!("é-{i}-ü").into_bytes());
        v.push(format!("plain-{i:04}").into_bytes());
    }
    // Long names hash in several rounds (32-byte half_md4 blocks, 16-byte tea blocks).
    for i in 0..50 {
        v.push(format!("{}-{i}", "ñ".repeat(100)).into_bytes());
    }
    v.push(b"\xff\xfe\x80latin1".to_vec());
    v
}

#[test]
fn every_hash_variant_finds_every_name() {
    let dir = ext4img::tmpdir("htree");
    let src = dir.join("root");
    let d = src.join("d");
    fs::create_dir_all(&d).unwrap();
    let all = names();
    for n in &all {
        fs::write(d.join(std::ffi::OsStr::from_bytes(n)), b"").unwrap();
    }
    let kind = ext4img::ImageKind {
        name: "htree",
        fs_type: "ext4",
        block_size: 1024,
        extra: &[],
    };
    let base = dir.join("base.img");
    ext4img::mkfs(&kind, &src, &base, 16, 2048);
    for alg in ["legacy", "half_md4", "tea"] {
        for (sflag, label) in [(1, "signed"), (2, "unsigned")] {
            let img = dir.join(format!("{alg}-{label}.img"));
            fs::copy(&base, &img).unwrap();
            ext4img::set_dir_hash(&img, alg, sflag);
            ext4img::e2fsck_fix(&img, "-fyD");
            ext4img::run(Command::new("e2fsck").arg("-fn").arg(&img));
            let out = Command::new("debugfs")
                .args(["-R", "htree /d"])
                .arg(&img)
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let want = match alg {
                "legacy" => "Hash Version: 0",
                "half_md4" => "Hash Version: 1",
                _ => "Hash Version: 2",
            };
            assert!(text.contains(want), "{alg}/{label}: {text}");

            let bytes = fs::read(&img).unwrap();
            let mut fs = Ext4::open(MemDisk::borrowed(&bytes)).unwrap();
            assert_eq!(fs.superblock().flags & 3, sflag);
            let dino = fs.lookup_path(b"d").unwrap();
            assert!(
                fs.getattr(dino).unwrap().flags & flags::INDEX != 0,
                "{alg}/{label}"
            );
            let listing: BTreeMap<Vec<u8>, u32> = fs
                .read_dir(dino)
                .unwrap()
                .into_iter()
                .map(|e| (e.name, e.ino))
                .collect();
            assert_eq!(listing.len(), all.len() + 2);
            for n in &all {
                let got = fs.lookup(dino, n).unwrap_or_else(|e| {
                    panic!(
                        "{alg}/{label}: lookup {:?}: {e}",
                        String::from_utf8_lossy(n)
                    )
                });
                assert_eq!(got, listing[n]);
            }
            assert!(fs.lookup(dino, "é-9999-ü".as_bytes()).is_err());
        }
    }
}
