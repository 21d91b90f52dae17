//! ext4 extent trees in the writer: files fragmented until their tree reaches depth 1 and 2
//! (1k blocks), directories past 4 extents, and freeing whole trees. Every scenario ends
//! with `e2fsck -fn`, contents are compared through debugfs, ext4-view and the engine, and
//! `debugfs -R "ex"` shows the depth.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::{Error, Ext4, Fallocate, Ino, ROOT_INO};
use pvfs_tests::ext4img;
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs, open_rw};
use std::fs;
use std::path::Path;

fn pattern(seed: u64, n: usize) -> Vec<u8> {
    ext4img::Rng::new(seed).bytes(n)
}

/// Depth of the extent tree of `path` and its number of leaf extents, from `debugfs ex`
/// ((0, 0) without extents).
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
    (depth.unwrap_or(0), leaves)
}

/// The file as debugfs, ext4-view and a fresh read-only engine see it. ext4-view 1.0.0 does
/// not know unwritten extents (it takes `ee_len` > 32768 as a length and reads the blocks),
/// so it is only asked about files without them.
fn check_contents(img: &Path, path: &str, want: &[u8]) {
    assert!(
        debugfs(img, &format!("cat {path}")) == want,
        "debugfs {path}"
    );
    let bytes = fs::read(img).unwrap();
    if uninit_extents(img, path) == 0 {
        let view = ext4_view::Ext4::load(Box::new(bytes.clone())).unwrap();
        assert!(view.read(path).unwrap() == want, "ext4-view {path}");
    }
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
        // Appending to the depth-2 tree rewrites its last leaf, not the other tree blocks:
        // dirty are the two data blocks (the last partial one and a new one), one leaf, the
        // inode's table block, the block bitmap, the group descriptor block and the
        // superblock (13 when every tree block is rewritten).
        fs.sync().unwrap();
        assert_eq!(fs.cache().dirty_count(), 0);
        let tail = pattern(6, 1024);
        fs.write(c, big_a2.len() as u64, &tail).unwrap();
        big_a2.extend_from_slice(&tail);
        let dirty = fs.cache().dirty_count();
        assert!(dirty <= 7, "{dirty} dirty blocks after a one-block append");
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
            Error::IsDir { .. }
        ));
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(tree_shape(&img, "/f"), (0, 2));
    check_contents(&img, "/f", &want);
}

/// `debugfs ex` lines of `path` flagged "Uninit".
fn uninit_extents(img: &Path, path: &str) -> usize {
    String::from_utf8_lossy(&debugfs(img, &format!("ex {path}")))
        .lines()
        .filter(|l| l.contains("Uninit"))
        .count()
}

/// Each fallocate mode: keep-size preallocation past the end, allocation that grows the
/// size, writes into unwritten extents (split, converted), punches across written and
/// unwritten extents (edges zeroed, whole blocks freed), refusals.
#[test]
fn fallocate_modes() {
    let dir = ext4img::tmpdir("extents-falloc");
    let img = mkfs(&dir, "f.img", 4096, 32, &[]);
    let bs = 4096usize;
    let data = pattern(21, 12 * bs);
    let mut want_f = data.clone();
    let mut want_g = vec![0u8; 10 * bs + 100];
    {
        let mut fs = open_rw(&img);
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        fs.write(f, 0, &data).unwrap();
        let free = fs.statfs().free_blocks;
        fs.fallocate(f, 12 * bs as u64, 16 * bs as u64, Fallocate::KeepSize)
            .unwrap();
        assert_eq!(fs.statfs().free_blocks, free - 16);
        assert_eq!(fs.getattr(f).unwrap().size, data.len() as u64);
        assert_eq!(fs.getattr(f).unwrap().blocks, 28 * 8);
        // Allocating what is already allocated changes nothing.
        fs.fallocate(f, 0, 20 * bs as u64, Fallocate::KeepSize)
            .unwrap();
        assert_eq!(fs.statfs().free_blocks, free - 16);
        // Punch: partial edges zeroed, blocks 4..=8 freed.
        let (p0, p1) = (3 * bs + 100, 9 * bs + 50);
        fs.fallocate(f, p0 as u64, (p1 - p0) as u64, Fallocate::PunchHole)
            .unwrap();
        want_f[p0..p1].fill(0);
        assert_eq!(fs.statfs().free_blocks, free - 16 + 5);
        // A punch inside one block only zeroes.
        fs.fallocate(f, 10 * bs as u64 + 7, 9, Fallocate::PunchHole)
            .unwrap();
        want_f[10 * bs + 7..10 * bs + 16].fill(0);
        assert_eq!(fs.statfs().free_blocks, free - 16 + 5);
        // Past the end: nothing.
        fs.fallocate(f, 40 * bs as u64, 10, Fallocate::PunchHole)
            .unwrap();
        let g = fs.create(ROOT_INO, b"g", 0o644, 0, 0).unwrap();
        fs.fallocate(g, 0, want_g.len() as u64, Fallocate::Allocate)
            .unwrap();
        assert_eq!(fs.getattr(g).unwrap().size, want_g.len() as u64);
        assert_eq!(fs.getattr(g).unwrap().blocks, 11 * 8);
        let mut back = vec![1u8; want_g.len()];
        assert_eq!(fs.read(g, 0, &mut back).unwrap(), want_g.len());
        assert!(back.iter().all(|&b| b == 0), "unwritten reads as zeros");
        // A write into the middle of the unwritten range converts just its block.
        let w = pattern(22, 100);
        fs.write(g, 5000, &w).unwrap();
        want_g[5000..5100].copy_from_slice(&w);
        // A punch across the unwritten/written/unwritten boundaries.
        fs.fallocate(g, 5050, 2 * bs as u64, Fallocate::PunchHole)
            .unwrap();
        want_g[5050..5050 + 2 * bs].fill(0);
        // Allocate over existing data keeps the data and fills the hole again.
        fs.fallocate(g, 0, 3 * bs as u64, Fallocate::Allocate)
            .unwrap();
        assert_eq!(fs.getattr(g).unwrap().size, want_g.len() as u64);
        assert_eq!(
            fs.fallocate(g, 0, 0, Fallocate::Allocate).unwrap_err(),
            Error::Invalid {
                what: "fallocate of zero length"
            }
        );
        assert!(matches!(
            fs.fallocate(ROOT_INO, 0, 1, Fallocate::Allocate)
                .unwrap_err(),
            Error::IsDir { .. }
        ));
        assert_eq!(
            fs.fallocate(g, u64::MAX - 10, 100, Fallocate::Allocate)
                .unwrap_err(),
            Error::FileTooBig
        );
        let mut back = vec![0u8; want_g.len()];
        assert_eq!(fs.read(g, 0, &mut back).unwrap(), want_g.len());
        assert!(back == want_g);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert!(uninit_extents(&img, "/f") >= 1);
    assert!(uninit_extents(&img, "/g") >= 2);
    check_contents(&img, "/f", &want_f);
    check_contents(&img, "/g", &want_g);
    let ex = String::from_utf8_lossy(&debugfs(&img, "ex /g")).into_owned();
    assert!(
        ex.lines()
            .any(|l| l.contains(" 1 -     1 ") && !l.contains("Uninit")),
        "{ex}"
    );
}

/// Random writes, truncates, fallocates (both modes) and punches on three files at 1k
/// blocks (so their trees get deep and fragmented), checked against a `Vec<u8>` per file
/// by the engine along the way, then by e2fsck, debugfs, ext4-view and a remount; finally
/// everything is truncated and removed and every block comes back.
#[test]
fn random_ops_match_a_model() {
    let dir = ext4img::tmpdir("extents-model");
    let img = mkfs(&dir, "m.img", 1024, 32, &[]);
    let mut rng = ext4img::Rng::new(0xe47e_0001);
    let names = ["x", "y", "z"];
    let mut model: Vec<Vec<u8>> = vec![Vec::new(); names.len()];
    let mut counts = [0usize; 5];
    let free0 = dumpe2fs_free_blocks(&img);
    let mut deepest = 0;
    for round in 0..2 {
        let mut fs = open_rw(&img);
        if round == 0 {
            assert_eq!(fs.statfs().free_blocks, free0);
            for n in names {
                fs.create(ROOT_INO, n.as_bytes(), 0o644, 0, 0).unwrap();
            }
        }
        let inos: Vec<Ino> = names
            .iter()
            .map(|n| fs.lookup(ROOT_INO, n.as_bytes()).unwrap())
            .collect();
        for op in 0..200 {
            let k = (rng.next_u64() % 3) as usize;
            let (ino, m) = (inos[k], &mut model[k]);
            let size = m.len() as u64;
            let small = !rng.next_u64().is_multiple_of(4);
            let len = if small {
                rng.next_u64() % 3000 + 1
            } else {
                rng.next_u64() % 40_000 + 1
            };
            let off = rng.next_u64() % (size + 20_000);
            let kind = if size > 700_000 {
                1
            } else {
                rng.next_u64() % 5
            };
            counts[kind as usize] += 1;
            match kind {
                0 => {
                    let d = rng.bytes(len as usize);
                    assert_eq!(fs.write(ino, off, &d).unwrap(), d.len());
                    let end = (off + len) as usize;
                    if m.len() < end {
                        m.resize(end, 0);
                    }
                    m[off as usize..end].copy_from_slice(&d);
                }
                1 => {
                    let to = rng.next_u64() % (size + size / 4 + 5000);
                    fs.truncate(ino, to).unwrap();
                    m.resize(to as usize, 0);
                }
                2 | 3 => {
                    let mode = if kind == 2 {
                        Fallocate::Allocate
                    } else {
                        Fallocate::KeepSize
                    };
                    fs.fallocate(ino, off, len, mode).unwrap();
                    if mode == Fallocate::Allocate && m.len() < (off + len) as usize {
                        m.resize((off + len) as usize, 0);
                    }
                }
                _ => {
                    fs.fallocate(ino, off, len, Fallocate::PunchHole).unwrap();
                    let end = ((off + len) as usize).min(m.len());
                    if (off as usize) < end {
                        m[off as usize..end].fill(0);
                    }
                }
            }
            if op % 25 == 24 {
                for (i, &ino) in inos.iter().enumerate() {
                    assert_eq!(fs.getattr(ino).unwrap().size, model[i].len() as u64);
                    let mut back = vec![0u8; model[i].len() + 1];
                    assert_eq!(fs.read(ino, 0, &mut back).unwrap(), model[i].len());
                    assert!(
                        back[..model[i].len()] == model[i][..],
                        "round {round} op {op} file {i}"
                    );
                }
            }
        }
        fs.close().unwrap();
        e2fsck_clean(&img);
        for (i, n) in names.iter().enumerate() {
            check_contents(&img, &format!("/{n}"), &model[i]);
            deepest = deepest.max(tree_shape(&img, &format!("/{n}")).0);
        }
    }
    assert!(counts.iter().all(|&c| c > 20), "op mix {counts:?}");
    assert!(deepest >= 1, "trees stayed in the inode");
    {
        let mut fs = open_rw(&img);
        for n in names {
            let ino = fs.lookup(ROOT_INO, n.as_bytes()).unwrap();
            fs.truncate(ino, 0).unwrap();
            assert_eq!(fs.getattr(ino).unwrap().blocks, 0);
            fs.unlink(ROOT_INO, n.as_bytes()).unwrap();
        }
        assert_eq!(fs.statfs().free_blocks, free0);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
}

/// A 64 MiB sequential write lands in few extents (each up to 32768 blocks; a new one only
/// where metadata or a group boundary interrupts the free space), at 4k and 1k blocks.
#[test]
fn large_sequential_write_is_contiguous() {
    for (block, max_extents) in [(4096u32, 3usize), (1024, 16)] {
        let dir = ext4img::tmpdir(&format!("extents-large-{block}"));
        let img = mkfs(&dir, "l.img", block, 160, &[]);
        let data = pattern(31, 64 << 20);
        {
            let mut fs = open_rw(&img);
            let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
            let f = fs.create(d, b"big", 0o644, 0, 0).unwrap();
            for chunk in 0..64 {
                let c = &data[chunk << 20..(chunk + 1) << 20];
                assert_eq!(fs.write(f, (chunk as u64) << 20, c).unwrap(), c.len());
            }
            fs.close().unwrap();
        }
        e2fsck_clean(&img);
        let (_, extents) = tree_shape(&img, "/d/big");
        assert!(
            extents <= max_extents,
            "{block}: {extents} extents for 64 MiB:\n{}",
            String::from_utf8_lossy(&debugfs(&img, "ex /d/big"))
        );
        assert!(debugfs(&img, "cat /d/big") == data);
        fs::remove_file(&img).unwrap();
    }
}

/// Free space near the goal is riddled with one-block holes (every other small file
/// deleted): a large write does not fill them one block at a time but takes long free runs
/// further on.
#[test]
fn large_write_skips_fragmented_free_space() {
    let dir = ext4img::tmpdir("extents-fragfree");
    let img = mkfs(&dir, "f.img", 1024, 64, &[]);
    let data = pattern(32, 8 << 20);
    {
        let mut fs = open_rw(&img);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let one = pattern(33, 1024);
        for i in 0..1200 {
            let f = fs
                .create(d, format!("s{i}").as_bytes(), 0o644, 0, 0)
                .unwrap();
            fs.write(f, 0, &one).unwrap();
        }
        // The rest of the goal's group (and more) is taken by a filler file.
        let filler = fs.create(d, b"filler", 0o644, 0, 0).unwrap();
        fs.write(filler, 0, &pattern(34, 12 << 20)).unwrap();
        for i in (0..1200).step_by(2) {
            fs.unlink(d, format!("s{i}").as_bytes()).unwrap();
        }
        let f = fs.create(d, b"big", 0o644, 0, 0).unwrap();
        for chunk in 0..8 {
            let c = &data[chunk << 20..(chunk + 1) << 20];
            fs.write(f, (chunk as u64) << 20, c).unwrap();
        }
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    let (_, extents) = tree_shape(&img, "/d/big");
    assert!(
        extents <= 8,
        "{extents} extents:\n{}",
        String::from_utf8_lossy(&debugfs(&img, "ex /d/big"))
    );
    check_contents(&img, "/d/big", &data);
}

/// Patch `bytes` into `img` at byte `pos`.
fn poke(img: &Path, pos: u64, bytes: &[u8]) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = fs::OpenOptions::new().write(true).open(img).unwrap();
    f.seek(SeekFrom::Start(pos)).unwrap();
    f.write_all(bytes).unwrap();
}

/// Damaged extent trees (bad magic, depth over 5, more entries than fit, a block past the
/// end of the disk, two index entries sharing a child, extents out of order) make every
/// operation on the file fail with an error, never a panic.
#[test]
fn damaged_trees_are_errors() {
    let dir = ext4img::tmpdir("extents-damaged");
    let base = mkfs(&dir, "base.img", 1024, 16, &["-O", "^metadata_csum"]);
    {
        let mut fs = open_rw(&base);
        let c = fs.create(ROOT_INO, b"c", 0o644, 0, 0).unwrap();
        let d = fs.create(ROOT_INO, b"d", 0o644, 0, 0).unwrap();
        interleave(
            &mut fs,
            c,
            d,
            &pattern(41, 400 * 1024),
            &pattern(42, 400 * 1024),
        );
        fs.close().unwrap();
    }
    e2fsck_clean(&base);
    assert_eq!(tree_shape(&base, "/c").0, 2);
    // Physical blocks of the index node (level 1) and of the first two leaves.
    let ex = String::from_utf8_lossy(&debugfs(&base, "ex /c")).into_owned();
    let phys = |lvl: &str| -> Vec<u64> {
        ex.lines()
            .filter(|l| l.trim_start().starts_with(lvl))
            .map(|l| l.split_whitespace().nth(7).unwrap().parse().unwrap())
            .collect()
    };
    let index = phys("0/")[0];
    let leaves = phys("1/");
    let (l0, l1) = (leaves[0] * 1024, leaves[1] * 1024);
    // The index's second entry pointing at the first entry's child.
    let mut shared = fs::read(&base).unwrap()[(index * 1024) as usize..][..36].to_vec();
    shared.copy_within(16..22, 28);
    // (what, byte position, new bytes)
    let damages: [(&str, u64, Vec<u8>); 6] = [
        ("index magic", index * 1024, vec![0, 0]),
        ("leaf depth 6", l0 + 6, vec![6, 0]),
        ("leaf entries > max", l0 + 2, vec![200, 0]),
        (
            "extent past the disk",
            l1 + 12 + 8,
            vec![0xFF, 0xFF, 0xFF, 0x7F],
        ),
        ("shared child", index * 1024, shared),
        ("extents out of order", l1 + 12 + 12, vec![0, 0, 0, 0]),
    ];
    for (what, pos, bytes) in &damages {
        let img = dir.join("damaged.img");
        fs::copy(&base, &img).unwrap();
        poke(&img, *pos, bytes);
        let mut fs = open_rw(&img);
        let c = fs.lookup(ROOT_INO, b"c").unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = fs.read(c, 0, &mut buf);
        let _ = fs.read(c, 300 * 1024, &mut buf);
        assert!(fs.write(c, 0, b"x").is_err(), "{what}: write");
        assert!(fs.write(c, 1 << 20, b"x").is_err(), "{what}: append");
        assert!(fs.truncate(c, 1000).is_err(), "{what}: truncate");
        assert!(
            fs.fallocate(c, 0, 1 << 20, Fallocate::KeepSize).is_err(),
            "{what}: fallocate"
        );
        assert!(
            fs.fallocate(c, 5000, 70_000, Fallocate::PunchHole).is_err(),
            "{what}: punch"
        );
        assert!(fs.unlink(ROOT_INO, b"c").is_err(), "{what}: unlink");
        // The rest of the file system still works.
        let d = fs.lookup(ROOT_INO, b"d").unwrap();
        fs.truncate(d, 0).unwrap();
        drop(fs);
    }
}

/// Changes in the middle of a depth-2 tree rewrite only the leaves they touch: a new extent
/// in a full first leaf splits that leaf (two leaves and the index node written), a punched
/// block rewrites one leaf; the other leaves stay as they are on disk.
#[test]
fn middle_changes_rewrite_few_tree_blocks() {
    let dir = ext4img::tmpdir("extents-middle");
    let img = mkfs(&dir, "m.img", 1024, 32, &[]);
    let mut want = vec![0u8; 1199 * 1024];
    {
        let mut fs = open_rw(&img);
        let c = fs.create(ROOT_INO, b"c", 0o644, 0, 0).unwrap();
        let d = fs.create(ROOT_INO, b"d", 0o644, 0, 0).unwrap();
        for i in 0..600usize {
            let b = pattern(i as u64, 1024);
            fs.write(c, (2 * i * 1024) as u64, &b).unwrap();
            want[2 * i * 1024..][..1024].copy_from_slice(&b);
            fs.write(d, (i * 1024) as u64, &b).unwrap();
        }
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    // 600 extents: 8 leaves under one index node.
    assert_eq!(tree_shape(&img, "/c"), (2, 600));
    {
        let mut fs = open_rw(&img);
        let c = fs.lookup(ROOT_INO, b"c").unwrap();
        assert_eq!(fs.cache().dirty_count(), 0);
        // A one-block hole in the first leaf: its goal is taken by d, so a new extent.
        let b = pattern(999, 1024);
        fs.write(c, 1024, &b).unwrap();
        want[1024..2048].copy_from_slice(&b);
        let dirty = fs.cache().dirty_count();
        // Data, two leaves, the index node, the inode, bitmap(s), descriptors, superblock.
        assert!(dirty <= 9, "{dirty} dirty blocks after a middle insert");
        fs.sync().unwrap();
        fs.fallocate(c, 600 * 1024, 1024, Fallocate::PunchHole)
            .unwrap();
        want[600 * 1024..601 * 1024].fill(0);
        let dirty = fs.cache().dirty_count();
        assert!(dirty <= 5, "{dirty} dirty blocks after a middle punch");
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    assert_eq!(tree_shape(&img, "/c"), (2, 600));
    check_contents(&img, "/c", &want);
}
