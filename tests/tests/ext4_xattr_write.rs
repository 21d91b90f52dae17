//! Extended attribute writing: in-inode attributes, spilling into the attribute block,
//! replace/remove, the create/replace flags, POSIX ACLs, size limits, copy-on-write of a block
//! shared by two inodes, and a randomized model run. Oracles: `e2fsck -fn` (entry hashes,
//! block checksums, refcounts, i_blocks), `debugfs ea_list`/`ea_get` and the engine's own read
//! path after remounting.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::{Error, Ext4, XattrSet, ROOT_INO};
use pvfs_tests::ext4img::{self, Rng};
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs, open_rw};
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

/// `debugfs ea_list`: name → value size.
fn ea_list(img: &Path, path: &str) -> BTreeMap<String, usize> {
    let out = String::from_utf8(debugfs(img, &format!("ea_list {path}"))).unwrap();
    let mut m = BTreeMap::new();
    for line in out.lines() {
        let Some(rest) = line.strip_prefix("  ") else {
            continue;
        };
        let (name, tail) = rest.split_once(" (").unwrap();
        let size = tail.split_once(')').unwrap().0.parse().unwrap();
        m.insert(name.to_string(), size);
    }
    m
}

/// `debugfs ea_get -f`: the exact value bytes.
fn ea_get(img: &Path, path: &str, name: &str) -> Vec<u8> {
    let out = img.with_extension("val");
    let _ = fs::remove_file(&out);
    debugfs(
        img,
        &format!("ea_get -f {} {path} {name}", out.to_str().unwrap()),
    );
    fs::read(&out).unwrap_or_default()
}

/// ext4's on-disk size of an ACL given in the xattr form (4-byte entries for the unnamed tags).
fn acl_disk_len(v: &[u8]) -> usize {
    4 + v[4..]
        .chunks(8)
        .map(|e| if matches!(e[0], 2 | 8) { 8 } else { 4 })
        .sum::<usize>()
}

/// What `debugfs ea_get` gives for an ACL: the xattr form with id 0 on the unnamed tags.
fn acl_as_debugfs(v: &[u8]) -> Vec<u8> {
    let mut out = v[..4].to_vec();
    for e in v[4..].chunks(8) {
        out.extend_from_slice(&e[..4]);
        if matches!(e[0], 2 | 8) {
            out.extend_from_slice(&e[4..]);
        } else {
            out.extend_from_slice(&[0; 4]);
        }
    }
    out
}

fn is_acl(name: &[u8]) -> bool {
    name.starts_with(b"system.posix_acl_")
}

/// The image agrees with `model` for `path`, through debugfs and the engine.
fn check(img: &Path, path: &str, model: &Model) {
    e2fsck_clean(img);
    let listed = ea_list(img, path);
    let want: BTreeMap<String, usize> = model
        .iter()
        .map(|(k, v)| {
            let len = if is_acl(k) { acl_disk_len(v) } else { v.len() };
            (String::from_utf8(k.clone()).unwrap(), len)
        })
        .collect();
    assert_eq!(listed, want, "debugfs ea_list {path}");
    for (k, v) in model {
        let name = std::str::from_utf8(k).unwrap();
        let want = if is_acl(k) {
            acl_as_debugfs(v)
        } else {
            v.clone()
        };
        assert_eq!(
            ea_get(img, path, name),
            want,
            "debugfs ea_get {path} {name}"
        );
    }
    let mut fs = Ext4::open(MemDisk::new(fs::read(img).unwrap())).unwrap();
    let ino = fs.lookup_path(path.as_bytes()).unwrap();
    let mut names = fs.listxattr(ino).unwrap();
    names.sort();
    assert_eq!(names, model.keys().cloned().collect::<Vec<_>>(), "{path}");
    for (k, v) in model {
        assert_eq!(&fs.getxattr(ino, k).unwrap(), v);
    }
}

/// Points each of `others` (files without an attribute block) at `owner`'s attribute block
/// with debugfs, then has `e2fsck -fy` set the block's refcount; returns the block.
fn share_block(img: &Path, owner: &str, others: &[&str]) -> u64 {
    let (blk, _) = acl_and_blocks(img, owner);
    assert!(blk != 0, "{owner} has no attribute block");
    for f in others {
        ext4img::debugfs_w(img, &format!("sif {f} file_acl {blk}"));
        ext4img::debugfs_w(img, &format!("sif {f} blocks 2"));
    }
    ext4img::e2fsck_fix(img, "-fy");
    blk
}

/// `File ACL:` (the attribute block) and `Blockcount:` of `path` from `debugfs stat`.
fn acl_and_blocks(img: &Path, path: &str) -> (u64, u64) {
    let out = String::from_utf8_lossy(&debugfs(img, &format!("stat {path}"))).into_owned();
    let num = |key: &str| -> u64 {
        let at = out.find(key).unwrap() + key.len();
        out[at..]
            .trim_start()
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    (num("File ACL:"), num("Blockcount:"))
}

fn scenario(block: u32) {
    let dir = ext4img::tmpdir(&format!("xattr-write-{block}"));
    let img = mkfs(&dir, "x.img", block, 16, &[]);
    let bs = block as usize;
    let mut model = Model::new();
    let free0;
    {
        let mut fs = open_rw(&img);
        free0 = fs.statfs().free_blocks;
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        // Small attributes stay in the inode.
        for (k, v) in [
            (&b"user.a"[..], &b"1"[..]),
            (b"security.selinux", b"unconfined\0"),
            (b"trusted.t", b""),
        ] {
            fs.set_xattr(f, k, v, XattrSet::Create).unwrap();
            model.insert(k.to_vec(), v.to_vec());
        }
        assert_eq!(fs.statfs().free_blocks, free0, "no block for small xattrs");
        assert_eq!(fs.getattr(f).unwrap().blocks, 0);
        // Flags.
        assert_eq!(
            fs.set_xattr(f, b"user.a", b"2", XattrSet::Create),
            Err(Error::Exists)
        );
        assert_eq!(
            fs.set_xattr(f, b"user.none", b"2", XattrSet::Replace),
            Err(Error::NoXattr)
        );
        assert_eq!(fs.remove_xattr(f, b"user.none"), Err(Error::NoXattr));
        assert!(matches!(
            fs.set_xattr(f, b"user.", b"x", XattrSet::Any),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            fs.set_xattr(f, b"user.a\0b", b"x", XattrSet::Any),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            fs.set_xattr(
                f,
                format!("user.{}", "n".repeat(256)).as_bytes(),
                b"x",
                XattrSet::Any
            ),
            Err(Error::Invalid { .. })
        ));
        assert!(matches!(
            fs.set_xattr(f, b"bogus.x", b"x", XattrSet::Any),
            Err(Error::Unsupported { .. })
        ));
        fs.set_xattr(f, b"user.a", b"replaced", XattrSet::Replace)
            .unwrap();
        model.insert(b"user.a".to_vec(), b"replaced".to_vec());
        // Bigger ones spill into the block.
        let big: Vec<u8> = (0..bs / 3).map(|i| (i * 7) as u8).collect();
        fs.set_xattr(f, b"user.big", &big, XattrSet::Any).unwrap();
        model.insert(b"user.big".to_vec(), big.clone());
        assert_eq!(fs.statfs().free_blocks, free0 - 1);
        assert_eq!(fs.getattr(f).unwrap().blocks, u64::from(block / 512));
        fs.set_xattr(
            f,
            b"system.posix_acl_access",
            &ext4img::posix_acl(),
            XattrSet::Any,
        )
        .unwrap();
        model.insert(b"system.posix_acl_access".to_vec(), ext4img::posix_acl());
        // Too big for the block, with the big one in it: ERANGE-like NoSpace, nothing changes.
        let huge = vec![0x5a; bs - 100];
        assert_eq!(
            fs.set_xattr(f, b"user.huge", &huge, XattrSet::Any),
            Err(Error::NoSpace)
        );
        assert_eq!(
            fs.set_xattr(f, b"user.huge", &vec![1; bs + 1], XattrSet::Any),
            Err(Error::NoSpace)
        );
        for (k, v) in &model {
            assert_eq!(&fs.getxattr(f, k).unwrap(), v);
        }
        fs.close().unwrap();
    }
    check(&img, "/f", &model);
    // The ACL is stored in ext4's compact form, byte for byte what Linux writes for it.
    let listed = String::from_utf8(debugfs(&img, "ea_list /f")).unwrap();
    assert!(
        listed.contains(
            "system.posix_acl_access (28) = 01 00 00 00 01 00 06 00 02 00 04 00 e8 03 00 00 \
             04 00 04 00 10 00 04 00 20 00 00 00"
        ),
        "{listed}"
    );
    let (acl_blk, blocks) = acl_and_blocks(&img, "/f");
    assert!(acl_blk != 0);
    assert_eq!(blocks, u64::from(block / 512));
    {
        // Replace the block attribute by one as large as the block allows; then remove all.
        let mut fs = open_rw(&img);
        let f = fs.lookup(ROOT_INO, b"f").unwrap();
        fs.remove_xattr(f, b"user.big").unwrap();
        model.remove(&b"user.big"[..]);
        // Exactly what is left: header 32, terminator 4, the ACL entry 16 + 28, this entry 20.
        let max = vec![0xa5; bs - 100];
        fs.set_xattr(f, b"user.max", &max, XattrSet::Create)
            .unwrap();
        assert_eq!(
            fs.set_xattr(f, b"user.max", &vec![1; bs - 99], XattrSet::Replace),
            Err(Error::NoSpace)
        );
        model.insert(b"user.max".to_vec(), max);
        fs.close().unwrap();
    }
    check(&img, "/f", &model);
    {
        let mut fs = open_rw(&img);
        let f = fs.lookup(ROOT_INO, b"f").unwrap();
        for k in model.keys() {
            fs.remove_xattr(f, k).unwrap();
        }
        model.clear();
        assert_eq!(fs.statfs().free_blocks, free0, "block freed");
        assert_eq!(fs.getattr(f).unwrap().blocks, 0);
        assert!(fs.listxattr(f).unwrap().is_empty());
        fs.close().unwrap();
    }
    check(&img, "/f", &model);
    assert_eq!(acl_and_blocks(&img, "/f"), (0, 0));
}

#[test]
fn xattrs_in_inode_and_block_4k() {
    scenario(4096);
}

#[test]
fn xattrs_in_inode_and_block_1k() {
    scenario(1024);
}

/// 128-byte inodes have no in-inode area: everything goes to the block.
#[test]
fn small_inodes_use_the_block() {
    let dir = ext4img::tmpdir("xattr-write-128");
    let img = mkfs(&dir, "s.img", 1024, 8, &["-I", "128"]);
    let mut model = Model::new();
    {
        let mut fs = open_rw(&img);
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        fs.set_xattr(d, b"user.k", b"v", XattrSet::Any).unwrap();
        model.insert(b"user.k".to_vec(), b"v".to_vec());
        assert_eq!(fs.getattr(d).unwrap().blocks, 4);
        fs.close().unwrap();
    }
    check(&img, "/d", &model);
    assert_eq!(acl_and_blocks(&img, "/d").1, 4);
}

/// Two inodes share one attribute block (refcount 2, made with debugfs and e2fsck): changing
/// or removing through one inode copies (or drops its reference to) the block and leaves the
/// other inode's attributes and the refcounts right.
#[test]
fn shared_block_is_copied_on_write() {
    let dir = ext4img::tmpdir("xattr-write-shared");
    let img = mkfs(&dir, "c.img", 1024, 8, &["-I", "128"]);
    let w = |req: &str| ext4img::debugfs_w(&img, req);
    w("write /dev/null f1");
    w("write /dev/null f2");
    w("write /dev/null f3");
    w("ea_set /f1 user.shared hello");
    w("ea_set /f1 user.other world");
    // e2fsck sets the refcount to 3 (and frees nothing: f2 and f3 had no block).
    let blk = share_block(&img, "/f1", &["/f2", "/f3"]);
    e2fsck_clean(&img);
    let refcount = |img: &Path, blk: u64| -> u32 {
        let b = fs::read(img).unwrap();
        let o = blk as usize * 1024 + 4;
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap())
    };
    assert_eq!(refcount(&img, blk), 3);
    let mut shared = Model::new();
    shared.insert(b"user.shared".to_vec(), b"hello".to_vec());
    shared.insert(b"user.other".to_vec(), b"world".to_vec());
    let mut m1 = shared.clone();
    let mut m2 = shared.clone();
    {
        let mut fs = open_rw(&img);
        let f1 = fs.lookup(ROOT_INO, b"f1").unwrap();
        let f2 = fs.lookup(ROOT_INO, b"f2").unwrap();
        let free = fs.statfs().free_blocks;
        fs.set_xattr(f1, b"user.shared", b"changed", XattrSet::Replace)
            .unwrap();
        m1.insert(b"user.shared".to_vec(), b"changed".to_vec());
        assert_eq!(fs.statfs().free_blocks, free - 1, "a private copy");
        // Removing from a shared block drops the reference, frees nothing.
        fs.remove_xattr(f2, b"user.other").unwrap();
        m2.remove(&b"user.other"[..]);
        assert_eq!(fs.statfs().free_blocks, free - 2);
        assert_eq!(fs.getxattr(f2, b"user.shared").unwrap(), b"hello");
        fs.close().unwrap();
    }
    check(&img, "/f1", &m1);
    check(&img, "/f2", &m2);
    check(&img, "/f3", &shared);
    assert_eq!(refcount(&img, blk), 1);
    assert_ne!(acl_and_blocks(&img, "/f1").0, blk);
    assert_ne!(acl_and_blocks(&img, "/f2").0, blk);
    assert_eq!(acl_and_blocks(&img, "/f3").0, blk);
    {
        // f3 is now the only user: changing it works in place, removing all frees the block.
        let mut fs = open_rw(&img);
        let f3 = fs.lookup(ROOT_INO, b"f3").unwrap();
        let free = fs.statfs().free_blocks;
        fs.set_xattr(f3, b"user.shared", b"x", XattrSet::Any)
            .unwrap();
        assert_eq!(fs.statfs().free_blocks, free);
        fs.remove_xattr(f3, b"user.shared").unwrap();
        fs.remove_xattr(f3, b"user.other").unwrap();
        assert_eq!(fs.statfs().free_blocks, free + 1);
        fs.close().unwrap();
    }
    check(&img, "/f3", &Model::new());
    assert_eq!(acl_and_blocks(&img, "/f3"), (0, 0));
}

/// Random sets, replaces and removes on a few inodes, checked against a model.
fn model_run(block: u32, seed: u64) {
    let dir = ext4img::tmpdir(&format!("xattr-write-model-{block}"));
    let img = mkfs(&dir, "m.img", block, 16, &[]);
    let bs = block as usize;
    let names = ["/a", "/b", "/c"];
    let mut models = vec![Model::new(); names.len()];
    let mut rng = Rng::new(seed);
    for _round in 0..3 {
        {
            let mut fs = open_rw(&img);
            let inos: Vec<_> = names
                .iter()
                .map(|n| match fs.lookup(ROOT_INO, &n.as_bytes()[1..]) {
                    Ok(i) => i,
                    Err(_) => fs
                        .create(ROOT_INO, &n.as_bytes()[1..], 0o644, 0, 0)
                        .unwrap(),
                })
                .collect();
            for _ in 0..150 {
                let i = (rng.next_u64() % 3) as usize;
                let (ino, m) = (inos[i], &mut models[i]);
                let ns = ["user.", "trusted.", "security."][(rng.next_u64() % 3) as usize];
                let name = format!("{ns}k{}", rng.next_u64() % 12).into_bytes();
                let len = match rng.next_u64() % 4 {
                    0 => 0,
                    1 => (rng.next_u64() % 20) as usize,
                    2 => (rng.next_u64() % 200) as usize,
                    _ => (rng.next_u64() % (bs as u64 / 2)) as usize,
                };
                let val = rng.bytes(len);
                if rng.next_u64().is_multiple_of(3) {
                    let r = fs.remove_xattr(ino, &name);
                    match m.remove(&name) {
                        Some(_) => r.unwrap(),
                        None => assert_eq!(r, Err(Error::NoXattr)),
                    }
                } else {
                    match fs.set_xattr(ino, &name, &val, XattrSet::Any) {
                        Ok(()) => {
                            m.insert(name, val);
                        }
                        Err(Error::NoSpace) => {}
                        Err(e) => panic!("{e:?}"),
                    }
                }
                let mut got = fs.listxattr(ino).unwrap();
                got.sort();
                assert_eq!(got, m.keys().cloned().collect::<Vec<_>>());
            }
            fs.close().unwrap();
        }
        for (n, m) in names.iter().zip(&models) {
            check(&img, n, m);
        }
    }
    assert!(models.iter().any(|m| m.len() > 4), "the run set something");
}

#[test]
fn model_run_4k() {
    model_run(4096, 7);
}

#[test]
fn model_run_1k() {
    model_run(1024, 11);
}

/// Removing inodes with an attribute block gives the block back (or drops their reference to
/// a shared one): unlink of a file, a fast symlink and a device, rmdir, and the last unpin of
/// an open-unlinked file.
#[test]
fn released_inodes_release_their_block() {
    let dir = ext4img::tmpdir("xattr-write-release");
    let img = mkfs(&dir, "r.img", 1024, 8, &["-I", "128"]);
    let w = |req: &str| ext4img::debugfs_w(&img, req);
    // s1 and s2 share a block (refcount 2).
    w("write /dev/null s1");
    w("write /dev/null s2");
    w("ea_set /s1 user.shared yes");
    let blk = share_block(&img, "/s1", &["/s2"]);
    e2fsck_clean(&img);
    {
        let mut fs = open_rw(&img);
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        let d = fs.mkdir(ROOT_INO, b"d", 0o755, 0, 0).unwrap();
        let l = fs.symlink(ROOT_INO, b"l", b"target", 0, 0).unwrap();
        let n = fs.mknod(ROOT_INO, b"n", 0x1000 | 0o644, 0, 0, 0).unwrap();
        let p = fs.create(ROOT_INO, b"p", 0o644, 0, 0).unwrap();
        for ino in [f, d, l, n, p] {
            fs.set_xattr(ino, b"user.k", b"value", XattrSet::Create)
                .unwrap();
        }
        assert_eq!(fs.readlink(l).unwrap(), b"target");
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    {
        let mut fs = open_rw(&img);
        let free0 = fs.statfs().free_blocks;
        fs.unlink(ROOT_INO, b"f").unwrap();
        fs.unlink(ROOT_INO, b"l").unwrap();
        fs.unlink(ROOT_INO, b"n").unwrap();
        // The directory also gives back its one data block.
        fs.rmdir(ROOT_INO, b"d").unwrap();
        assert_eq!(fs.statfs().free_blocks, free0 + 5);
        let p = fs.lookup(ROOT_INO, b"p").unwrap();
        fs.pin(p).unwrap();
        fs.unlink(ROOT_INO, b"p").unwrap();
        assert_eq!(fs.statfs().free_blocks, free0 + 5);
        fs.unpin(p).unwrap();
        assert_eq!(fs.statfs().free_blocks, free0 + 6);
        // A shared block loses a reference, and is freed with the last.
        fs.unlink(ROOT_INO, b"s1").unwrap();
        assert_eq!(fs.statfs().free_blocks, free0 + 6);
        let s2 = fs.lookup(ROOT_INO, b"s2").unwrap();
        assert_eq!(fs.getxattr(s2, b"user.shared").unwrap(), b"yes");
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
    let b = fs::read(&img).unwrap();
    let o = blk as usize * 1024 + 4;
    assert_eq!(u32::from_le_bytes(b[o..o + 4].try_into().unwrap()), 1);
    {
        let mut fs = open_rw(&img);
        let free0 = fs.statfs().free_blocks;
        fs.unlink(ROOT_INO, b"s2").unwrap();
        assert_eq!(fs.statfs().free_blocks, free0 + 1);
        fs.close().unwrap();
    }
    e2fsck_clean(&img);
}

/// Damaged attribute areas (in the inode, checksums off so that the damage is reached, and in
/// the block) give errors or work, never a panic.
#[test]
fn damaged_xattrs_never_panic() {
    let dir = ext4img::tmpdir("xattr-write-damaged");
    let img = mkfs(&dir, "d.img", 1024, 8, &["-O", "^metadata_csum"]);
    let (ino, blk) = {
        let mut fs = open_rw(&img);
        let f = fs.create(ROOT_INO, b"f", 0o644, 0, 0).unwrap();
        fs.set_xattr(f, b"user.small", b"12345678", XattrSet::Any)
            .unwrap();
        fs.set_xattr(f, b"user.big", &[7; 300], XattrSet::Any)
            .unwrap();
        fs.set_xattr(f, b"trusted.t", &[9; 100], XattrSet::Any)
            .unwrap();
        fs.close().unwrap();
        let (blk, _) = acl_and_blocks(&img, "/f");
        (f, blk)
    };
    e2fsck_clean(&img);
    let clean = fs::read(&img).unwrap();
    // Where inode `ino` lives: debugfs imap.
    let imap = String::from_utf8(debugfs(&img, &format!("imap <{ino}>"))).unwrap();
    let block: usize = imap
        .split("located at block ")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let off_hex = imap.split("offset 0x").nth(1).unwrap().trim();
    let off = usize::from_str_radix(off_hex, 16).unwrap();
    let inode_at = block * 1024 + off;
    let mut rng = Rng::new(5);
    for round in 0..400 {
        let mut bytes = clean.clone();
        for _ in 0..1 + rng.next_u64() % 4 {
            let at = if round % 2 == 0 {
                // The in-inode area: after the first 128 + 32 bytes.
                inode_at + 160 + (rng.next_u64() % 96) as usize
            } else {
                blk as usize * 1024 + (rng.next_u64() % 1024) as usize
            };
            bytes[at] = rng.next_u64() as u8;
        }
        let mut fs = Ext4::open_rw(MemDisk::new(bytes), &Default::default()).unwrap();
        let _ = fs.getxattr(ino, b"user.small");
        let _ = fs.set_xattr(ino, b"user.new", &[1; 40], XattrSet::Any);
        let _ = fs.set_xattr(ino, b"user.big", &[2; 500], XattrSet::Any);
        let _ = fs.remove_xattr(ino, b"trusted.t");
        let _ = fs.remove_xattr(ino, b"user.small");
        let _ = fs.unlink(ROOT_INO, b"f");
    }
}
