//! The FAT engine against the reference tools: trees written by mtools into `mkfs.vfat`
//! images (FAT12, FAT16 and FAT32, several cluster sizes) read back byte for byte by the
//! engine; trees written by the engine read back byte for byte by mtools; `fsck.fat -n`
//! clean after every write scenario.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::fat::{self, ROOT_INO};
use pvfs_tests::fatimg::{self, Tree};
use pvfs_tests::p9client::temp_dir;
use std::path::Path;

/// (FAT bits, sectors per cluster, image KiB, big file bytes)
const CONFIGS: [(u32, u32, u64, usize); 6] = [
    (12, 1, 2_000, 600 << 10),
    (12, 4, 8_000, 3 << 20),
    (16, 2, 16_000, 3 << 20),
    (16, 16, 80_000, 5 << 20),
    (32, 1, 40_000, 3 << 20),
    (32, 8, 300_000, 5 << 20),
];

fn check_kind(img: &Path, bits: u32) {
    let f = fatimg::open(img, false);
    let kind = f.geometry().kind;
    let want = match bits {
        12 => fat::bpb::FatType::Fat12,
        16 => fat::bpb::FatType::Fat16,
        _ => fat::bpb::FatType::Fat32,
    };
    assert_eq!(kind, want, "{}", img.display());
}

#[test]
fn trees_written_by_mtools_read_back_byte_for_byte() {
    fatimg::require_tools();
    let dir = temp_dir("fat_oracle_read");
    for (bits, spc, kib, big) in CONFIGS {
        let img = dir.join(format!("fat{bits}-{spc}.img"));
        let src = dir.join(format!("src{bits}-{spc}"));
        fatimg::mkfs(&img, kib, bits, spc);
        check_kind(&img, bits);
        let want = fatimg::sample_tree(&src, spc as usize * 512, big);
        fatimg::mtools_put(&img, &src);
        fatimg::fsck_clean(&img);
        let mut f = fatimg::open(&img, false);
        let got = fatimg::engine_tree(&mut f);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "FAT{bits} spc {spc}"
        );
        assert!(got == want, "FAT{bits} spc {spc}: contents differ");
        // The engine finds names by their short aliases too, as vfat does.
        let c = f.lookup(ROOT_INO, b"collide").unwrap();
        assert!(f.lookup(c, b"LONGFI~1.TEX").is_ok());
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_file(&img);
    }
}

#[test]
fn trees_written_by_the_engine_read_back_with_mtools_and_fsck_clean() {
    fatimg::require_tools();
    let dir = temp_dir("fat_oracle_write");
    for (bits, spc, kib, big) in CONFIGS {
        let img = dir.join(format!("fat{bits}-{spc}.img"));
        let src = dir.join(format!("src{bits}-{spc}"));
        let out = dir.join(format!("out{bits}-{spc}"));
        fatimg::mkfs(&img, kib, bits, spc);
        let want = fatimg::sample_tree(&src, spc as usize * 512, big);
        let mut f = fatimg::open(&img, true);
        let free0 = f.usage().free;
        let root0 = f.stat(ROOT_INO).unwrap().clusters;
        fatimg::put_tree(&mut f, &want);
        f.sync().unwrap();
        drop(f);
        fatimg::fsck_clean(&img);
        fatimg::mtools_get(&img, &out);
        let got = fatimg::host_tree(&out);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "FAT{bits} spc {spc}"
        );
        assert!(got == want, "FAT{bits} spc {spc}: contents differ");

        // Edits: rename across directories (over a file), truncate, unlink, rmdir.
        let mut f = fatimg::open(&img, true);
        let c = fatimg::lookup(&mut f, "/collide");
        let deep = fatimg::lookup(&mut f, "/level 0/level 1");
        f.rename(c, b"Long File Name 3.text", deep, b"moved here")
            .unwrap();
        f.rename(c, b"Long File Name 4.text", c, b"Long File Name 5.text")
            .unwrap();
        let b = fatimg::lookup(&mut f, "/big file of several MiB.dat");
        f.truncate(b, 1000).unwrap();
        f.unlink(ROOT_INO, b"one cluster.bin", false).unwrap();
        let l11 = fatimg::lookup(&mut f, "/level 0/level 1/level 2/level 3/level 4/level 5/level 6/level 7/level 8/level 9/level 10/level 11");
        f.unlink(l11, b"empty dir", true).unwrap();
        f.rename(ROOT_INO, b"level 0", c, b"level zero").unwrap();
        f.sync().unwrap();
        drop(f);
        fatimg::fsck_clean(&img);
        let mut expect = Tree::new();
        for (k, v) in &want {
            let mut k = k.clone();
            let mut v = v.clone();
            if k == "/collide/Long File Name 3.text" {
                k = "/level 0/level 1/moved here".into();
            } else if k == "/collide/Long File Name 5.text" {
                continue;
            } else if k == "/collide/Long File Name 4.text" {
                k = "/collide/Long File Name 5.text".into();
            } else if k == "/big file of several MiB.dat" {
                v = v.map(|d| d[..1000].to_vec());
            } else if k == "/one cluster.bin" || k.ends_with("/empty dir") {
                continue;
            }
            if let Some(rest) = k.strip_prefix("/level 0") {
                k = format!("/collide/level zero{rest}");
            }
            expect.insert(k, v);
        }
        let _ = std::fs::remove_dir_all(&out);
        fatimg::mtools_get(&img, &out);
        let got = fatimg::host_tree(&out);
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            expect.keys().collect::<Vec<_>>(),
            "FAT{bits} spc {spc} after edits"
        );
        assert!(
            got == expect,
            "FAT{bits} spc {spc}: contents differ after edits"
        );
        let mut f = fatimg::open(&img, true);
        let all: Vec<String> = expect.keys().rev().cloned().collect();
        for p in all {
            let (parent, name) = p.rsplit_once('/').unwrap();
            let d = fatimg::lookup(&mut f, parent);
            f.unlink(d, name.as_bytes(), expect[&p].is_none()).unwrap();
        }
        // Every cluster comes back but those the root directory grew by (FAT32; directories
        // do not shrink).
        let grown = (f.stat(ROOT_INO).unwrap().clusters - root0) as u32;
        assert_eq!(
            f.usage().free + grown,
            free0,
            "FAT{bits} spc {spc}: every cluster back"
        );
        f.sync().unwrap();
        drop(f);
        fatimg::fsck_clean(&img);
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_dir_all(&out);
        let _ = std::fs::remove_file(&img);
    }
}
