//! Offline dedup (`pvfs image dedup`) of an image made by `mkfs.ext4 -d`, checked with
//! e2fsprogs: every name keeps its inode, links, mode, owner and times (`debugfs stat`), its
//! own xattrs, and its bytes (`pvfs image get`, `pvfs image cat`); the free blocks
//! (`dumpe2fs`) grow by what the command reports; `e2fsck -fn` is clean; the store's
//! reference counts (`debugfs ea_list`) count the stubs. Then a write, a truncate and
//! unlinks through the engine: only the name written changes, and the last unlink of a
//! content frees its store.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_tests::ext4img::{debugfs_w, dumpe2fs, Rng};
use pvfs_tests::p9client::{pvfs_bin, require_tool, temp_dir};
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs_sized, open_rw};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// Names in the source tree (inode-sharing hard link `hl2` aside) and their groups.
const NAMES: [&str; 12] = [
    "d1/a", "d2/b", "c", "d1/s1", "s2", "hl1", "hl2", "x3", "u", "e1", "tiny1", "d2/tiny2",
];

fn pvfs(args: &[&str]) -> String {
    let out = Command::new(pvfs_bin()).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "pvfs {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// The `debugfs stat` lines a guest could observe: inode, type, mode, generation, owner,
/// size, links and the four times.
fn observable(img: &Path, name: &str) -> String {
    let st = String::from_utf8(debugfs(img, &format!("stat /{name}"))).unwrap();
    let mut keep = Vec::new();
    for l in st.lines() {
        let t = l.trim_start();
        if t.starts_with("Links:") {
            keep.push(t.split("Blockcount").next().unwrap().trim().to_string());
        } else if [
            "Inode:",
            "Generation:",
            "User:",
            "ctime:",
            "atime:",
            "mtime:",
            "crtime:",
        ]
        .iter()
        .any(|p| t.starts_with(p))
        {
            keep.push(t.to_string());
        }
    }
    assert_eq!(keep.len(), 8, "{st}");
    keep.join("\n")
}

fn free_blocks(img: &Path) -> u64 {
    let h = dumpe2fs(img);
    let line = h.lines().find(|l| l.starts_with("Free blocks:")).unwrap();
    line.split(':').nth(1).unwrap().trim().parse().unwrap()
}

/// Each store file's name and reference count, from `debugfs ea_list`.
fn stores(img: &Path) -> BTreeMap<String, u32> {
    let ls = pvfs(&["image", "ls", img.to_str().unwrap(), "/.pvfs/shared"]);
    ls.lines()
        .map(|n| {
            let ea =
                String::from_utf8(debugfs(img, &format!("ea_list /.pvfs/shared/{n}"))).unwrap();
            let line = ea
                .lines()
                .find(|l| l.contains("trusted.pvfs.refs (4) ="))
                .unwrap();
            let bytes: Vec<u8> = line
                .split('=')
                .nth(1)
                .unwrap()
                .split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).unwrap())
                .collect();
            (n.to_string(), u32::from_le_bytes(bytes.try_into().unwrap()))
        })
        .collect()
}

fn json_field(j: &str, key: &str) -> u64 {
    let at = j.find(&format!("\"{key}\":")).unwrap() + key.len() + 3;
    j[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn source(dir: &Path) -> BTreeMap<&'static str, Vec<u8>> {
    let mut rng = Rng::new(27);
    let big = rng.bytes(300_000);
    let s = rng.bytes(5000);
    let x = rng.bytes(20_000);
    let mut m = BTreeMap::new();
    for n in ["d1/a", "d2/b", "c"] {
        m.insert(n, big.clone());
    }
    m.insert("d1/s1", s.clone());
    m.insert("s2", s);
    m.insert("hl1", x.clone());
    m.insert("x3", x);
    m.insert("u", rng.bytes(10_000));
    m.insert("e1", Vec::new());
    m.insert("tiny1", b"hi\n".to_vec());
    m.insert("d2/tiny2", b"hi\n".to_vec());
    std::fs::create_dir_all(dir.join("d1")).unwrap();
    std::fs::create_dir_all(dir.join("d2")).unwrap();
    for (n, d) in &m {
        std::fs::write(dir.join(n), d).unwrap();
    }
    std::fs::hard_link(dir.join("hl1"), dir.join("hl2")).unwrap();
    m.insert("hl2", m["hl1"].clone());
    let st = Command::new("setfattr")
        .args(["-n", "user.color", "-v", "blue"])
        .arg(dir.join("d2/b"))
        .status()
        .unwrap();
    assert!(st.success(), "setfattr");
    m
}

#[test]
fn offline_dedup_keeps_every_name_and_frees_the_copies() {
    for t in ["mkfs.ext4", "e2fsck", "debugfs", "dumpe2fs", "setfattr"] {
        require_tool(t);
    }
    let dir = temp_dir("dedup");
    let src = dir.join("src");
    let files = source(&src);
    let img = dir.join("img.ext4");
    mkfs_sized(&img, "16M", &["-b", "4096", "-d", src.to_str().unwrap()]);
    // Owners and modes of their own, so that keeping them means something.
    debugfs_w(&img, "sif /d2/b uid 1234");
    debugfs_w(&img, "sif /d2/b gid 99");
    debugfs_w(&img, "sif /c mode 0100751");
    let before: BTreeMap<&str, String> = NAMES.iter().map(|n| (*n, observable(&img, n))).collect();
    let free0 = free_blocks(&img);
    let im = img.to_str().unwrap();

    let j = pvfs(&["image", "dedup", "--json", im]);
    // a, b, c (3); s1, s2 (2); hl1/hl2 (one inode) and x3 (2); tiny1, tiny2 (2).
    assert_eq!(json_field(&j, "files_merged"), 9, "{j}");
    assert_eq!(json_field(&j, "stores_created"), 4, "{j}");
    assert_eq!(json_field(&j, "files_scanned"), 10, "{j}");
    assert_eq!(json_field(&j, "mismatches"), 0, "{j}");
    let saved = json_field(&j, "bytes_saved");
    let free1 = free_blocks(&img);
    assert_eq!((free1 - free0) * 4096, saved, "{j}");
    // Two copies of 300,000 bytes and one each of 5,000, 20,000 and 3 bytes, less the two
    // store directories' blocks.
    assert!(saved >= (2 * 74 + 2 + 5 + 1 - 2) * 4096, "{j}");
    e2fsck_clean(&img);
    for n in NAMES {
        assert_eq!(
            observable(&img, n),
            before[n],
            "{n}: what a guest sees changed"
        );
    }
    let ea = String::from_utf8(debugfs(&img, "ea_list /d2/b")).unwrap();
    assert!(ea.contains("user.color (4) = \"blue\""), "{ea}");
    let mut refs: Vec<u32> = stores(&img).into_values().collect();
    refs.sort_unstable();
    assert_eq!(refs, [2, 2, 2, 3]);
    // The raw on-disk view (debugfs, a Linux mount): a stub is a sparse file of zeros.
    assert_eq!(debugfs(&img, "cat /d2/b"), vec![0u8; 300_000]);
    // pvfs reads every name's bytes: get (sparse copy) and cat.
    let out = dir.join("out");
    let st = Command::new(pvfs_bin())
        .args(["image", "get", im, "/"])
        .arg(&out)
        .status()
        .unwrap();
    assert!(st.success());
    for (n, want) in &files {
        assert_eq!(&std::fs::read(out.join(n)).unwrap(), want, "{n} via get");
    }
    assert!(!out.join(".pvfs").exists(), "get leaves the store out");
    let cat = Command::new(pvfs_bin())
        .args(["image", "cat", im, "/c"])
        .output()
        .unwrap();
    assert_eq!(cat.stdout, files["c"]);
    let stat = pvfs(&["image", "stat", im, "/d2/b"]);
    assert!(stat.contains("blocks: 592\n"), "{stat}");

    // A second run finds nothing left to merge.
    let j = pvfs(&["image", "dedup", "--json", im]);
    assert_eq!(json_field(&j, "files_merged"), 0, "{j}");
    assert_eq!(json_field(&j, "bytes_saved"), 0, "{j}");
    assert_eq!(free_blocks(&img), free1);

    // Writes through one name: b gets its own copy; a and c are unchanged.
    {
        let mut fs = open_rw(&img);
        let b = fs.lookup_path(b"/d2/b").unwrap();
        assert_eq!(fs.write(b, 100, b"Z").unwrap(), 1);
        let c = fs.lookup_path(b"/c").unwrap();
        fs.truncate(c, 1000).unwrap();
        let d1 = fs.lookup_path(b"/d1").unwrap();
        fs.unlink(d1, b"s1").unwrap();
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    let mut b = files["d2/b"].clone();
    b[100] = b'Z';
    assert_eq!(debugfs(&img, "cat /d2/b"), b, "b has blocks of its own");
    let a = Command::new(pvfs_bin())
        .args(["image", "cat", im, "/d1/a"])
        .output()
        .unwrap();
    assert_eq!(a.stdout, files["d1/a"]);
    let c = Command::new(pvfs_bin())
        .args(["image", "cat", im, "/c"])
        .output()
        .unwrap();
    assert_eq!(c.stdout, files["c"][..1000]);
    let s2 = Command::new(pvfs_bin())
        .args(["image", "cat", im, "/s2"])
        .output()
        .unwrap();
    assert_eq!(s2.stdout, files["s2"]);
    let stb = observable(&img, "d2/b");
    assert!(stb.contains("User:  1234   Group:    99"), "{stb}");
    let mut refs: Vec<u32> = stores(&img).into_values().collect();
    refs.sort_unstable();
    assert_eq!(refs, [1, 1, 2, 2], "a alone on its store, s2 alone on its");

    // The last names go: their stores go with them.
    {
        let mut fs = open_rw(&img);
        let d1 = fs.lookup_path(b"/d1").unwrap();
        fs.unlink(d1, b"a").unwrap();
        fs.unlink(2, b"s2").unwrap();
        fs.unlink(2, b"hl1").unwrap();
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    let mut refs: Vec<u32> = stores(&img).into_values().collect();
    refs.sort_unstable();
    assert_eq!(refs, [2, 2], "hl2 still holds the x content with x3");
    let hl2 = Command::new(pvfs_bin())
        .args(["image", "cat", im, "/hl2"])
        .output()
        .unwrap();
    assert_eq!(hl2.stdout, files["hl2"]);
}

#[test]
fn dedup_of_named_paths_only() {
    require_tool("mkfs.ext4");
    let dir = temp_dir("dedup-paths");
    let src = dir.join("src");
    let data = Rng::new(5).bytes(50_000);
    for d in ["p", "q"] {
        std::fs::create_dir_all(src.join(d)).unwrap();
        std::fs::write(src.join(d).join("one"), &data).unwrap();
        std::fs::write(src.join(d).join("two"), &data).unwrap();
    }
    let img = dir.join("img.ext4");
    mkfs_sized(&img, "8M", &["-b", "4096", "-d", src.to_str().unwrap()]);
    let out = pvfs(&["image", "dedup", img.to_str().unwrap(), "/p"]);
    assert!(
        out.starts_with("merged 2 files (1 new shared contents), saved "),
        "{out}"
    );
    assert!(out.ends_with("; 2 files scanned\n"), "{out}");
    e2fsck_clean(&img);
    let ls = String::from_utf8(debugfs(&img, "stat /q/one")).unwrap();
    assert!(!ls.contains("trusted.pvfs"), "/q was not asked for: {ls}");
    let ls = String::from_utf8(debugfs(&img, "stat /p/one")).unwrap();
    assert!(ls.contains("trusted.pvfs.shared"), "{ls}");
    // The store directory is never walked, even when named.
    let out = pvfs(&["image", "dedup", img.to_str().unwrap(), "/.pvfs"]);
    assert!(out.starts_with("merged 0 files"), "{out}");
    assert!(out.ends_with("; 0 files scanned\n"), "{out}");
    e2fsck_clean(&img);
}

/// Sharing xattrs the engine did not write (a hostile or damaged image) are refused as
/// corruption, never followed to data they do not own: a reference to a directory, to the
/// file itself, to a store with the wrong generation, or of the wrong length. Nothing panics,
/// nothing on disk changes, and the real stubs still read their contents.
#[test]
fn forged_sharing_references_are_refused() {
    require_tool("mkfs.ext4");
    let dir = temp_dir("dedup-forged");
    let src = dir.join("src");
    std::fs::create_dir_all(&src).unwrap();
    let data = Rng::new(3).bytes(20_000);
    std::fs::write(src.join("one"), &data).unwrap();
    std::fs::write(src.join("two"), &data).unwrap();
    let img = dir.join("img.ext4");
    mkfs_sized(&img, "8M", &["-b", "4096", "-d", src.to_str().unwrap()]);
    pvfs(&["image", "dedup", img.to_str().unwrap()]);
    let (store, generation) = {
        let mut fs = pvfs_fs::host::open_image(&img).unwrap();
        let one = fs.lookup_path(b"/one").unwrap();
        let s = fs.shared_store(one).unwrap().unwrap();
        (s, fs.getattr(s).unwrap().generation)
    };
    let forged: [(&str, Vec<u8>); 4] = [
        ("dir", [11u32.to_le_bytes(), 0u32.to_le_bytes()].concat()),
        ("self", Vec::new()), // filled in below: the file's own inode
        (
            "generation",
            [
                store.to_le_bytes(),
                generation.wrapping_add(1).to_le_bytes(),
            ]
            .concat(),
        ),
        ("short", store.to_le_bytes().to_vec()),
    ];
    for (name, value) in &forged {
        // A sparse file without blocks, as a stub is.
        std::fs::write(dir.join("sparse"), b"").unwrap();
        std::fs::File::options()
            .write(true)
            .open(dir.join("sparse"))
            .unwrap()
            .set_len(20_000)
            .unwrap();
        let path = format!("/f-{name}");
        debugfs_w(
            &img,
            &format!("write {} {}", dir.join("sparse").display(), &path[1..]),
        );
        let value = if *name == "self" {
            let mut fs = pvfs_fs::host::open_image(&img).unwrap();
            let ino = fs.lookup_path(path.as_bytes()).unwrap();
            [ino.to_le_bytes(), 0u32.to_le_bytes()].concat()
        } else {
            value.clone()
        };
        std::fs::write(dir.join("value"), &value).unwrap();
        debugfs_w(
            &img,
            &format!(
                "ea_set -f {} {path} trusted.pvfs.shared",
                dir.join("value").display()
            ),
        );
        let before = std::fs::read(&img).unwrap();
        let mut fs = open_rw(&img);
        let ino = fs.lookup_path(path.as_bytes()).unwrap();
        let mut buf = vec![0u8; 20_000];
        let corrupt = |r: Result<(), pvfs_fs::ext4::Error>| {
            assert!(
                matches!(r, Err(pvfs_fs::ext4::Error::Corrupt { .. })),
                "{name}: {r:?}"
            );
        };
        corrupt(fs.read(ino, 0, &mut buf).map(drop));
        corrupt(fs.getattr(ino).map(drop));
        corrupt(fs.write(ino, 0, b"x").map(drop));
        corrupt(fs.truncate(ino, 0));
        corrupt(fs.unlink(2, &path.as_bytes()[1..]));
        // The real stubs are untouched by all this.
        let one = fs.lookup_path(b"/one").unwrap();
        assert_eq!(fs.read(one, 0, &mut buf).unwrap(), 20_000);
        assert_eq!(buf, data);
        fs.close().unwrap();
        e2fsck_clean(&img);
        // Only the mount count and times in the superblock may differ.
        let after = std::fs::read(&img).unwrap();
        let differ = before
            .chunks(4096)
            .zip(after.chunks(4096))
            .filter(|(a, b)| a != b)
            .count();
        assert!(differ <= 1, "{name}: {differ} blocks changed");
    }
}
