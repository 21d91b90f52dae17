//! Model-based random test of the FAT engine: random operations (create, mkdir, writes at
//! random offsets, also past the end, truncate up and down, unlink, rmdir, rename of files
//! and directories, over files, case-only renames) on `mkfs.vfat` images, each checked
//! against an in-memory model: the same result (or the same error), the same tree after
//! every remount, `fsck.fat -n` clean, and mtools reading the same tree at the end.
//! `PVFS_FAT_MODEL_OPS` sets the operations per image (default 400; `cargo xtask soak`
//! runs more).
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::fat::{Error, ROOT_INO};
use pvfs_tests::ext4img::Rng;
use pvfs_tests::fatimg::{self, Tree};
use pvfs_tests::p9client::temp_dir;

fn ops_count() -> usize {
    std::env::var("PVFS_FAT_MODEL_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}

fn lower(p: &str) -> String {
    p.to_ascii_lowercase()
}

/// The model's entry at `p`, found without ASCII case as vfat does.
fn find(t: &Tree, p: &str) -> Option<String> {
    t.keys().find(|k| lower(k) == lower(p)).cloned()
}

fn run(bits: u32, kib: u64, spc: u32, seed: u64) {
    let dir = temp_dir(&format!("fat_model{bits}"));
    let img = dir.join("m.img");
    fatimg::mkfs(&img, kib, bits, spc);
    let mut rng = Rng::new(seed);
    let mut t = Tree::new();
    let mut f = fatimg::open(&img, true);
    let n = ops_count();
    for i in 0..n {
        let dirs: Vec<String> = std::iter::once(String::new())
            .chain(
                t.iter()
                    .filter(|(_, v)| v.is_none())
                    .map(|(k, _)| k.clone()),
            )
            .collect();
        let files: Vec<String> = t
            .iter()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.clone())
            .collect();
        let d = dirs[rng.next_u64() as usize % dirs.len()].clone();
        let name = match rng.next_u64() % 4 {
            0 => format!("F{i}.TXT"),
            1 => format!("file {i} with a long name.data"),
            2 => format!("ünï {i} ✓"),
            _ => format!("f{i}"),
        };
        let pick = |rng: &mut Rng| files[rng.next_u64() as usize % files.len()].clone();
        match rng.next_u64() % 10 {
            0 if dirs.len() < 15 => {
                let dino = fatimg::lookup(&mut f, &d);
                f.create(dino, name.as_bytes(), true, 0).unwrap();
                t.insert(format!("{d}/{name}"), None);
            }
            1 | 2 => {
                let dino = fatimg::lookup(&mut f, &d);
                f.create(dino, name.as_bytes(), false, 0).unwrap();
                t.insert(format!("{d}/{name}"), Some(Vec::new()));
            }
            3..=5 if !files.is_empty() => {
                let p = pick(&mut rng);
                let cur = t[&p].clone().unwrap();
                let off = rng.next_u64() as usize % (cur.len() + 5000);
                let len = 1 + rng.next_u64() as usize % 9000;
                let data = rng.bytes(len);
                let ino = fatimg::lookup(&mut f, &p);
                assert_eq!(f.write(ino, off as u64, &data).unwrap(), data.len());
                let mut new = cur;
                if new.len() < off + data.len() {
                    new.resize(off + data.len(), 0);
                }
                new[off..off + data.len()].copy_from_slice(&data);
                t.insert(p, Some(new));
            }
            6 if !files.is_empty() => {
                let p = pick(&mut rng);
                let len = rng.next_u64() as usize % 12_000;
                let ino = fatimg::lookup(&mut f, &p);
                f.truncate(ino, len as u64).unwrap();
                t.get_mut(&p).unwrap().as_mut().unwrap().resize(len, 0);
            }
            7 if !files.is_empty() => {
                let p = pick(&mut rng);
                let (pd, pn) = p.rsplit_once('/').unwrap();
                let dino = fatimg::lookup(&mut f, pd);
                f.unlink(dino, pn.as_bytes(), false).unwrap();
                t.remove(&p);
            }
            8 => {
                // Rename a file or directory somewhere (or over a file, or case only).
                let all: Vec<String> = t.keys().cloned().collect();
                if all.is_empty() {
                    continue;
                }
                let src = all[rng.next_u64() as usize % all.len()].clone();
                let is_dir = t[&src].is_none();
                let dst = match rng.next_u64() % 3 {
                    0 => format!("{d}/{name}"),
                    1 => {
                        let (sd, sn) = src.rsplit_once('/').unwrap();
                        format!("{sd}/{}", sn.to_ascii_uppercase())
                    }
                    _ if !is_dir && !files.is_empty() => pick(&mut rng),
                    _ => format!("{d}/{name}"),
                };
                let (sd, sn) = src.rsplit_once('/').unwrap();
                let (dd, dn) = dst.rsplit_once('/').unwrap();
                let sdino = fatimg::lookup(&mut f, sd);
                let ddino = fatimg::lookup(&mut f, dd);
                let r = f.rename(sdino, sn.as_bytes(), ddino, dn.as_bytes());
                if is_dir && lower(&dst).starts_with(&lower(&format!("{src}/"))) {
                    assert!(
                        matches!(r, Err(Error::Invalid { .. })),
                        "{src} -> {dst}: {r:?}"
                    );
                    continue;
                }
                r.unwrap_or_else(|e| panic!("{src} -> {dst}: {e}"));
                let existing = find(&t, &dst);
                if let Some(e) = existing {
                    if lower(&e) != lower(&src) {
                        t.remove(&e);
                    }
                }
                let pre = format!("{src}/");
                let moved: Vec<(String, Option<Vec<u8>>)> = t
                    .iter()
                    .filter(|(k, _)| **k == src || k.starts_with(&pre))
                    .map(|(k, v)| (format!("{dst}{}", &k[src.len()..]), v.clone()))
                    .collect();
                t.retain(|k, _| *k != src && !k.starts_with(&pre));
                t.extend(moved);
            }
            _ => {
                // rmdir of an empty directory, or a refused one.
                let Some(dd) =
                    dirs.get(1 + rng.next_u64() as usize % dirs.len().max(2).saturating_sub(1))
                else {
                    continue;
                };
                let (pd, pn) = dd.rsplit_once('/').unwrap();
                let pino = fatimg::lookup(&mut f, pd);
                let empty = !t.keys().any(|k| k.starts_with(&format!("{dd}/")));
                let r = f.unlink(pino, pn.as_bytes(), true);
                if empty {
                    r.unwrap();
                    t.remove(dd);
                } else {
                    assert_eq!(r, Err(Error::NotEmpty));
                }
            }
        }
        // Names that exist are refused again, in any case.
        if i % 50 == 49 {
            if let Some(p) = t.keys().next().cloned() {
                let (pd, pn) = p.rsplit_once('/').unwrap();
                let pino = fatimg::lookup(&mut f, pd);
                assert_eq!(
                    f.create(pino, pn.to_ascii_uppercase().as_bytes(), false, 0),
                    Err(Error::Exists)
                );
            }
            f.sync().unwrap();
            drop(f);
            fatimg::fsck_clean(&img);
            f = fatimg::open(&img, true);
            assert!(fatimg::engine_tree(&mut f) == t, "FAT{bits} after op {i}");
        }
    }
    f.sync().unwrap();
    assert!(fatimg::engine_tree(&mut f) == t);
    let _ = f.stat(ROOT_INO).unwrap();
    drop(f);
    fatimg::fsck_clean(&img);
    let out = dir.join("out");
    fatimg::mtools_get(&img, &out);
    assert!(
        fatimg::host_tree(&out) == t,
        "FAT{bits}: mtools reads another tree"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn random_operations_match_the_model_fat12() {
    fatimg::require_tools();
    run(12, 4_000, 2, 1);
}

#[test]
fn random_operations_match_the_model_fat16() {
    fatimg::require_tools();
    run(16, 20_000, 4, 2);
}

#[test]
fn random_operations_match_the_model_fat32() {
    fatimg::require_tools();
    run(32, 40_000, 1, 3);
}
