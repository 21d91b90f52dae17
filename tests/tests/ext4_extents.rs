//! ext4 extent trees in the writer: files fragmented until their tree reaches depth 1 and 2
//! (1k blocks), directories past 4 extents, and freeing whole trees. Every scenario ends
//! with `e2fsck -fn`, contents are compared through debugfs, ext4-view and the engine, and
//! `debugfs -R "ex"` shows the depth.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::{Ext4, Ino, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs, open_rw};
use std::fs;
use std::path::Path;

fn pattern(seed: u64, n: usize) -> Vec<u8> {
    ext4img::Rng::new(seed).bytes(n)
}

/// Depth of the extent tree of `path` and its number of leaf extents, from `debugfs ex`.
fn tree_shape(img: &Path, path: &str) -> (u32, usize) {
    let out = String::from_utf8_lossy(&debugfs(img, &format!("ex {path}"))).into_owned();
    let mut depth = None;
    let mut leaves = 0;
    for line in out.lines().skip(1) {
        let head: String = line.chars().take(5).filter(|c| *c != ' ').collect();
        let Some((lvl, max)) = head.split_once('/') else {
            continue;
        };
        let (Ok(lvl), Ok(max)) = (lvl.parse::<u32>(), max.parse::<u32>()) else {
            continue;
        };
        depth = Some(max);
        if lvl == max {
            leaves += 1;
        }
    }
    (
        depth.unwrap_or_else(|| panic!("no extents for {path}:\n{out}")),
        leaves,
    )
}

/// The file as debugfs, ext4-view and a fresh read-only engine see it.
fn check_contents(img: &Path, path: &str, want: &[u8]) {
    assert!(
        debugfs(img, &format!("cat {path}")) == want,
        "debugfs {path}"
    );
    let bytes = fs::read(img).unwrap();
    let view = ext4_view::Ext4::load(Box::new(bytes.clone())).unwrap();
    assert!(view.read(path).unwrap() == want, "ext4-view {path}");
    let mut eng = Ext4::open(MemDisk::new(bytes)).unwrap();
    let ino = eng.lookup_path(path.as_bytes()).unwrap();
    let mut back = vec![0u8; want.len() + 7];
    assert_eq!(eng.read(ino, 0, &mut back).unwrap(), want.len());
    assert!(back[..want.len()] == *want, "engine {path}");
}

/// Write block-sized pieces of two files in turn so that their blocks interleave on disk:
/// every piece becomes its own extent.
fn interleave(fs: &mut Ext4<pvfs_fs::block::FileDisk>, a: Ino, b: Ino, da: &[u8], db: &[u8]) {
    let bs = fs.statfs().block_size as usize;
    for (i, (ca, cb)) in da.chunks(bs).zip(db.chunks(bs)).enumerate() {
        let off = (i * bs) as u64;
        assert_eq!(fs.write(a, off, ca).unwrap(), ca.len());
        assert_eq!(fs.write(b, off, cb).unwrap(), cb.len());
    }
}

/// Two interleaved files of 200 blocks (depth 1) and 500 blocks (depth 2: more than 4 × 84
/// extents) at 1k blocks; then one is deleted and every block comes back.
#[test]
fn fragmented_files_reach_depth_1_and_2() {
    let dir = ext4img::tmpdir("extents-depth");
    let img = mkfs(&dir, "d.img", 1024, 32, &[]);
    let small_a = pattern(1, 200 * 1024);
    let small_b = pattern(2, 200 * 1024);
    let big_a = pattern(3, 500 * 1024 - 100);
    let big_b = pattern(4, 500 * 1024 - 100);
    let (free0, free_mid);
    {
        let mut fs = open_rw(&img);
        free0 = fs.statfs().free_blocks;
        let a = fs.create(ROOT_INO, b"a", 0o644, 0, 0).unwrap();
        let b = fs.create(ROOT_INO, b"b", 0o644, 0, 0).unwrap();
        interleave(&mut fs, a, b, &small_a, &small_b);
        let c = fs.create(ROOT_INO, b"c", 0o644, 0, 0).unwrap();
        let d = fs.create(ROOT_INO, b"d", 0o644, 0, 0).unwrap();
        interleave(&mut fs, c, d, &big_a, &big_b);
        // i_blocks counts the tree blocks: 500 data blocks + 6 leaves + 1 index block.
        let blocks = fs.getattr(c).unwrap().blocks;
        assert_eq!(blocks, (500 + 6 + 1) * 2, "i_blocks of c");
        let mut back = vec![0u8; big_a.len()];
        assert_eq!(fs.read(c, 0, &mut back).unwrap(), big_a.len());
        assert!(back == big_a);
        free_mid = fs.statfs().free_blocks;
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(tree_shape(&img, "/a").0, 1);
    assert_eq!(tree_shape(&img, "/c"), (2, 500));
    assert_eq!(tree_shape(&img, "/d"), (2, 500));
    check_contents(&img, "/a", &small_a);
    check_contents(&img, "/b", &small_b);
    check_contents(&img, "/c", &big_a);
    check_contents(&img, "/d", &big_b);
    // Overwrite in the middle of a depth-2 tree, then delete everything.
    let mut big_a2 = big_a.clone();
    big_a2[300_000..310_000].copy_from_slice(&pattern(5, 10_000));
    {
        let mut fs = open_rw(&img);
        assert_eq!(fs.statfs().free_blocks, free_mid);
        let c = fs.lookup(ROOT_INO, b"c").unwrap();
        fs.write(c, 300_000, &big_a2[300_000..310_000]).unwrap();
        assert_eq!(
            fs.statfs().free_blocks,
            free_mid,
            "overwrite allocates nothing"
        );
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    check_contents(&img, "/c", &big_a2);
    {
        let mut fs = open_rw(&img);
        for n in [b"a", b"b", b"c", b"d"] {
            fs.unlink(ROOT_INO, n).unwrap();
        }
        assert_eq!(
            fs.statfs().free_blocks,
            free0,
            "data and tree blocks all freed"
        );
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
}

/// A directory whose blocks are interleaved with a file's grows past 4 extents (its tree
/// leaves the inode); entries stay readable and it can be emptied and removed.
#[test]
fn directory_grows_past_four_extents() {
    let dir = ext4img::tmpdir("extents-dir");
    let img = mkfs(&dir, "dir.img", 1024, 16, &[]);
    let names: Vec<String> = (0..240)
        .map(|i| format!("entry-with-a-long-name-to-fill-blocks-{i:05}"))
        .collect();
    let filler = pattern(6, 1024);
    let free0;
    {
        let mut fs = open_rw(&img);
        free0 = fs.statfs().free_blocks;
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let f = fs.create(ROOT_INO, b"filler", 0o644, 0, 0).unwrap();
        for (i, n) in names.iter().enumerate() {
            fs.create(d, n.as_bytes(), 0o644, 0, 0).unwrap();
            // One block of the filler file after each directory block.
            fs.write(f, (i * 1024) as u64, &filler).unwrap();
        }
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    let (depth, extents) = tree_shape(&img, "/d");
    assert!(
        depth >= 1 && extents > 4,
        "depth {depth}, {extents} extents"
    );
    let ls = String::from_utf8_lossy(&debugfs(&img, "ls -l /d")).into_owned();
    for n in &names {
        assert!(ls.contains(n.as_str()), "{n} missing");
    }
    {
        let mut fs = open_rw(&img);
        let d = fs.lookup(ROOT_INO, b"d").unwrap();
        assert_eq!(fs.read_dir(d).unwrap().len(), names.len() + 2);
        for n in &names {
            fs.unlink(d, n.as_bytes()).unwrap();
        }
        fs.rmdir(ROOT_INO, b"d").unwrap();
        fs.unlink(ROOT_INO, b"filler").unwrap();
        assert_eq!(fs.statfs().free_blocks, free0);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
}

/// "Free blocks:" of `dumpe2fs -h`.
fn dumpe2fs_free_blocks(img: &Path) -> u64 {
    let out = std::process::Command::new("dumpe2fs")
        .arg("-h")
        .arg(img)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.strip_prefix("Free blocks:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no free block count:\n{text}"))
}

/// Truncating depth-2 trees: down to 4 blocks plus a partial one (the tree goes back into
/// the inode, the cut block's tail is zeroed: growing again shows zeros), then to 0 bytes;
/// every data and tree block comes back (engine and dumpe2fs agree).
#[test]
fn truncate_shrinks_deep_trees() {
    let dir = ext4img::tmpdir("extents-truncate");
    let img = mkfs(&dir, "t.img", 1024, 32, &[]);
    let da = pattern(11, 450 * 1024);
    let db = pattern(12, 450 * 1024);
    let free0 = dumpe2fs_free_blocks(&img);
    {
        let mut fs = open_rw(&img);
        let a = fs.create(ROOT_INO, b"a", 0o644, 0, 0).unwrap();
        let b = fs.create(ROOT_INO, b"b", 0o644, 0, 0).unwrap();
        assert_eq!(fs.statfs().free_blocks, free0);
        interleave(&mut fs, a, b, &da, &db);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(tree_shape(&img, "/a"), (2, 450));
    let cut = 3 * 1024 + 500;
    let mut want = da[..cut].to_vec();
    {
        let mut fs = open_rw(&img);
        let a = fs.lookup(ROOT_INO, b"a").unwrap();
        fs.truncate(a, cut as u64).unwrap();
        assert_eq!(fs.getattr(a).unwrap().size, cut as u64);
        // 4 data blocks, no tree blocks.
        assert_eq!(fs.getattr(a).unwrap().blocks, 4 * 2);
        // Growing leaves a hole; the cut block reads zeros past the old end.
        fs.truncate(a, cut as u64 + 5000).unwrap();
        want.resize(cut + 5000, 0);
        let mut back = vec![0u8; want.len()];
        assert_eq!(fs.read(a, 0, &mut back).unwrap(), want.len());
        assert!(back == want);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(tree_shape(&img, "/a"), (0, 4));
    check_contents(&img, "/a", &want);
    check_contents(&img, "/b", &db);
    {
        let mut fs = open_rw(&img);
        let a = fs.lookup(ROOT_INO, b"a").unwrap();
        let b = fs.lookup(ROOT_INO, b"b").unwrap();
        fs.truncate(a, 0).unwrap();
        fs.truncate(b, 0).unwrap();
        assert_eq!(fs.getattr(b).unwrap().blocks, 0);
        assert_eq!(fs.statfs().free_blocks, free0);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(dumpe2fs_free_blocks(&img), free0);
    check_contents(&img, "/b", &[]);
}

/// A cut inside one long extent keeps its first part; later writes past the end leave a hole
/// that reads as zeros, and truncating to the same size changes nothing.
#[test]
fn truncate_inside_an_extent() {
    let dir = ext4img::tmpdir("extents-truncate-cut");
    let img = mkfs(&dir, "c.img", 4096, 32, &[]);
    let data = pattern(13, 100 * 4096);
    let cut = 50 * 4096 + 123;
    let mut want = data[..cut].to_vec();
    {
        let mut fs = open_rw(&img);
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        fs.write(f, 0, &data).unwrap();
        let free = fs.statfs().free_blocks;
        fs.truncate(f, cut as u64).unwrap();
        assert_eq!(fs.statfs().free_blocks, free + 49);
        fs.truncate(f, cut as u64).unwrap();
        assert_eq!(fs.statfs().free_blocks, free + 49);
        let tail = pattern(14, 3000);
        fs.write(f, 60 * 4096, &tail).unwrap();
        want.resize(60 * 4096, 0);
        want.extend_from_slice(&tail);
        assert!(matches!(
            fs.truncate(ROOT_INO, 0).unwrap_err(),
            pvfs_fs::ext4::Error::IsDir { .. }
        ));
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(tree_shape(&img, "/f"), (0, 2));
    check_contents(&img, "/f", &want);
}
