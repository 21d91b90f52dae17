//! Directories growing into htree: a linear directory becomes indexed exactly when its one
//! block overflows, leaves split, the root index fills up and the tree gains a second level
//! (index nodes that split in turn), and removing every entry keeps the tree valid. Oracles:
//! `e2fsck -fn` (which checks htree hash order and coverage strictly), `debugfs htree`,
//! ext4-view and the engine's own lookups.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::{flags, Error, Ext4, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs, open_rw};
use std::fs;
use std::path::Path;

fn rec_need(name_len: usize) -> usize {
    (8 + name_len + 3) & !3
}

/// Every name is found by the engine (through the index), by ext4-view, and listed once.
/// Unlinks each of `names` from the directory `dir` of the root, in one mount.
fn unlink_all<'a>(img: &Path, dir: &[u8], names: impl IntoIterator<Item = &'a (String, u32)>) {
    let mut fs = open_rw(img);
    let d = fs.lookup(ROOT_INO, dir).unwrap();
    for (n, _) in names {
        fs.unlink(d, n.as_bytes()).unwrap();
    }
    fs.close().unwrap();
}

fn check_names(img: &Path, dir: &str, names: &[(String, u32)]) {
    check_names_with(img, dir, names, true);
}

/// As [`check_names`]; `view`: also through ext4-view (which reads only half_md4 indexes).
fn check_names_with(img: &Path, dir: &str, names: &[(String, u32)], view: bool) {
    e2fsck_clean(img);
    let bytes = fs::read(img).unwrap();
    let mut eng = Ext4::open(MemDisk::new(bytes.clone())).unwrap();
    let d = eng.lookup_path(dir.as_bytes()).unwrap();
    for (n, ino) in names {
        assert_eq!(eng.lookup(d, n.as_bytes()).unwrap(), *ino, "{n}");
    }
    assert_eq!(eng.read_dir(d).unwrap().len(), names.len() + 2);
    if !view {
        return;
    }
    let view = ext4_view::Ext4::load(Box::new(bytes)).unwrap();
    // Lookups through ext4-view for a sample (it reads every name on each), a full listing.
    let step = (names.len() / 300).max(1);
    for (n, _) in names.iter().step_by(step) {
        assert!(view.exists(format!("{dir}/{n}").as_str()).unwrap(), "{n}");
    }
    let mut listed: Vec<String> = view
        .read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().as_str().unwrap().to_string())
        .filter(|n| n != "." && n != "..")
        .collect();
    listed.sort();
    let mut want: Vec<String> = names.iter().map(|(n, _)| n.clone()).collect();
    want.sort();
    assert!(listed == want, "ext4-view listing differs");
}

/// `debugfs htree` of `dir`: the indirect levels, and every name appears in a leaf dump.
fn check_htree(img: &Path, dir: &str, names: &[(String, u32)], levels: u32) {
    let out = String::from_utf8_lossy(&debugfs(img, &format!("htree {dir}"))).into_owned();
    assert!(
        out.contains(&format!("Indirect levels: {levels}")),
        "{}",
        &out[..out.len().min(2000)]
    );
    // Leaf dumps list `inode 0xhash-minor (rec_len) name   `.
    let mut seen = std::collections::HashSet::new();
    for line in out.lines() {
        for item in line.split("   ") {
            if let Some((_, name)) = item.split_once(") ") {
                seen.insert(name.trim().to_string());
            }
        }
    }
    for (n, _) in names {
        assert!(seen.contains(n.as_str()), "{n} not in debugfs htree");
    }
}

fn conversion(block: u32, count: usize) {
    let dir = ext4img::tmpdir(&format!("dx-convert-{block}"));
    let img = mkfs(&dir, "c.img", block, 32, &["-N", "8192"]);
    convert_in(&img, block, count, true);
}

fn convert_in(img: &Path, block: u32, count: usize, view: bool) {
    let img = img.to_path_buf();
    let bs = block as usize;
    let csum = String::from_utf8_lossy(&debugfs(&img, "features")).contains("metadata_csum");
    let limit = if csum { bs - 12 } else { bs }; // metadata_csum: dirent tail
    let mut names = Vec::new();
    {
        let mut fs = open_rw(&img);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        // `.` and `..` take 12 bytes each; the entry that does not fit converts.
        let mut used = 24;
        let mut converted_at = None;
        for i in 0..count {
            let n = format!("name-{i:05}-{}", "x".repeat(i % 23));
            let ino = fs.create(d, n.as_bytes(), 0o644, 0, 0).unwrap();
            names.push((n.clone(), ino));
            let a = fs.getattr(d).unwrap();
            let fits = used + rec_need(n.len()) <= limit;
            if converted_at.is_none() {
                if fits {
                    used += rec_need(n.len());
                    assert_eq!(a.flags & flags::INDEX, 0, "indexed too early at {i}");
                    assert_eq!(a.size, bs as u64);
                } else {
                    assert_ne!(a.flags & flags::INDEX, 0, "not indexed at {i}");
                    assert_eq!(a.size, 3 * bs as u64, "root and two leaves");
                    converted_at = Some(i);
                }
            }
            assert_eq!(fs.lookup(d, n.as_bytes()).unwrap(), ino);
        }
        assert!(converted_at.is_some());
        fs.close().unwrap();
    }
    check_names_with(&img, "/d", &names, view);
    check_htree(&img, "/d", &names, 0);
    // Remove every entry: the tree stays valid (empty leaves), then grows again.
    {
        let mut fs = open_rw(&img);
        let d = fs.lookup(ROOT_INO, b"d").unwrap();
        for (n, _) in &names {
            fs.unlink(d, n.as_bytes()).unwrap();
        }
        assert_eq!(fs.lookup(d, names[0].0.as_bytes()), Err(Error::NotFound));
        fs.close().unwrap();
    }
    check_names_with(&img, "/d", &[], view);
    names.truncate(0);
    {
        let mut fs = open_rw(&img);
        let d = fs.lookup(ROOT_INO, b"d").unwrap();
        for i in 0..count / 2 {
            let n = format!("again-{i}");
            let ino = fs.create(d, n.as_bytes(), 0o644, 0, 0).unwrap();
            names.push((n, ino));
        }
        fs.rmdir(ROOT_INO, b"d").unwrap_err();
        fs.close().unwrap();
    }
    check_names_with(&img, "/d", &names, view);
}

#[test]
fn linear_directory_becomes_htree_1k() {
    conversion(1024, 1500);
}

#[test]
fn linear_directory_becomes_htree_4k() {
    conversion(4096, 1500);
}

/// Without metadata_csum: no dirent or dx tails (and an emptied leaf then looks like an index
/// node by its shape; it must still take new entries).
#[test]
fn conversion_without_metadata_csum() {
    for block in [1024, 4096] {
        let dir = ext4img::tmpdir(&format!("dx-nocsum-{block}"));
        let img = mkfs(
            &dir,
            "n.img",
            block,
            32,
            &["-N", "8192", "-O", "^metadata_csum"],
        );
        convert_in(&img, block, 1500, true);
    }
}

/// The index uses the superblock's default hash (legacy, half_md4, tea), signed or unsigned
/// as the superblock flags say; e2fsck recomputes every hash.
#[test]
fn conversion_uses_the_default_hash() {
    let dir = ext4img::tmpdir("dx-hashes");
    for alg in ["legacy", "half_md4", "tea"] {
        for (sflag, label) in [(1, "signed"), (2, "unsigned")] {
            let img = mkfs(&dir, &format!("{alg}-{label}.img"), 1024, 8, &[]);
            ext4img::set_dir_hash(&img, alg, sflag);
            convert_in(&img, 1024, 300, alg == "half_md4");
            let out = String::from_utf8_lossy(&debugfs(&img, "htree /d")).into_owned();
            let v = match alg {
                "legacy" => 0,
                "half_md4" => 1,
                _ => 2,
            };
            assert!(out.contains(&format!("Hash Version: {v}")), "{alg}: {out}");
        }
    }
}

/// 1k blocks and long names: the root's 123 index entries fill up, the tree gets a second
/// level, and index nodes split.
#[test]
fn htree_grows_to_two_levels_1k() {
    let dir = ext4img::tmpdir("dx-two-levels");
    let img = mkfs(&dir, "t.img", 1024, 64, &["-N", "16384"]);
    let mut names = Vec::new();
    {
        let mut fs = open_rw(&img);
        let d = fs.mkdir(ROOT_INO, b"big", 0o755, 0, 0).unwrap();
        for i in 0..6000 {
            let n = format!("{i:06}-{}", "long-name-".repeat(8));
            let ino = fs.create(d, n.as_bytes(), 0o644, 0, 0).unwrap();
            names.push((n, ino));
        }
        fs.close().unwrap();
    }
    check_names(&img, "/big", &names);
    check_htree(&img, "/big", &names, 1);
    let out = String::from_utf8_lossy(&debugfs(&img, "htree /big")).into_owned();
    let nodes = out.matches("Number of entries (count):").count();
    assert!(nodes > 3, "root and several index nodes: {nodes}");
    // Remove every other entry, then all.
    unlink_all(&img, b"big", names.iter().step_by(2));
    let half: Vec<_> = names.iter().skip(1).step_by(2).cloned().collect();
    check_names(&img, "/big", &half);
    unlink_all(&img, b"big", &half);
    check_names(&img, "/big", &[]);
}

/// 50,000 entries at 1k blocks: two index levels over a directory of thousands of blocks
/// (an extent tree of depth > 0); every name is found, then every entry is removed.
#[test]
fn fifty_thousand_entries_1k() {
    let dir = ext4img::tmpdir("dx-50k");
    let img = mkfs(&dir, "f.img", 1024, 64, &["-N", "60000"]);
    let mut names = Vec::new();
    {
        let mut fs = open_rw(&img);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        for i in 0..50_000 {
            let n = format!("f{i}");
            let ino = fs.create(d, n.as_bytes(), 0o644, 0, 0).unwrap();
            // Some file data now and then, so the directory's blocks are not contiguous.
            if i % 100 == 0 {
                fs.write(ino, 0, b"data").unwrap();
            }
            names.push((n, ino));
        }
        fs.close().unwrap();
    }
    check_names(&img, "/d", &names);
    check_htree(&img, "/d", &names, 1);
    let ex = String::from_utf8_lossy(&debugfs(&img, "ex /d")).into_owned();
    assert!(
        ex.contains("\n 1/ "),
        "an extent tree of depth > 0 expected:\n{ex}"
    );
    unlink_all(&img, b"d", &names);
    check_names(&img, "/d", &[]);
}

/// Names of 255 bytes (3 to a 1k leaf) until the index is full: without `largedir` the tree
/// stops at two levels and adding fails with NoSpace, leaving everything intact; removing
/// an entry makes room again in its leaf.
#[test]
fn full_index_without_largedir_is_nospace() {
    let dir = ext4img::tmpdir("dx-full");
    let img = mkfs(&dir, "n.img", 1024, 64, &["-N", "40000"]);
    let long = |i: usize| format!("{i:06}{}", "y".repeat(249));
    let mut names = Vec::new();
    {
        let mut fs = open_rw(&img);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let (free, refused) = loop {
            let n = long(names.len());
            match fs.create(d, n.as_bytes(), 0o644, 0, 0) {
                Ok(ino) => names.push((n, ino)),
                Err(Error::NoSpace) => break (fs.statfs(), n),
                Err(e) => panic!("{e:?}"),
            }
            assert!(names.len() < 40_000, "the index never filled up");
        };
        assert!(
            free.free_blocks > 1000 && free.free_inodes > 1000,
            "{free:?}"
        );
        assert!(names.len() > 10_000, "{}", names.len());
        // Refused again (its leaf is still full), without side effects; a freed slot in a
        // leaf takes a name again.
        assert_eq!(
            fs.create(d, refused.as_bytes(), 0o644, 0, 0),
            Err(Error::NoSpace)
        );
        assert_eq!(fs.lookup(d, refused.as_bytes()), Err(Error::NotFound));
        let (gone, _) = names.swap_remove(0);
        fs.unlink(d, gone.as_bytes()).unwrap();
        let ino = fs.create(d, gone.as_bytes(), 0o644, 0, 0).unwrap();
        names.push((gone, ino));
        fs.close().unwrap();
    }
    check_names(&img, "/d", &names);
    check_htree(&img, "/d", &names[..100], 1);
}

/// With `largedir`, the same directory grows a third level (indirect_levels = 2).
#[test]
fn largedir_allows_three_levels() {
    let dir = ext4img::tmpdir("dx-largedir");
    let img = mkfs(&dir, "l.img", 1024, 64, &["-N", "40000", "-O", "large_dir"]);
    let long = |i: usize| format!("{i:06}{}", "z".repeat(249));
    let mut names = Vec::new();
    {
        let mut fs = open_rw(&img);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        for i in 0..30_000 {
            let n = long(i);
            let ino = fs.create(d, n.as_bytes(), 0o644, 0, 0).unwrap();
            names.push((n, ino));
        }
        fs.close().unwrap();
    }
    check_names_with(&img, "/d", &names, false);
    check_htree(&img, "/d", &names[..100], 2);
}
