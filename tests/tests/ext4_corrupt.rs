//! Corrupted images: flipped bytes in metadata give errors, never panics. With metadata_csum,
//! each checksummed structure's damage is reported as a checksum error naming it.
#![allow(clippy::unwrap_used, reason = "test code")]

use pvfs_fs::block::MemDisk;
use pvfs_fs::ext4::{Error, Ext4, ScanStats};
use pvfs_tests::ext4img::{self, ImageKind, Rng, TreeSpec};
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;

const SPEC: TreeSpec = TreeSpec {
    many_files: 0,
    big_dir: 600,
    huge_sparse: false,
    xattrs: true,
    trailing_hole: true,
};

fn build(kind: &ImageKind) -> (Vec<u8>, PathBuf) {
    let d = ext4img::tmpdir(&format!("corrupt-{}", kind.name));
    let src = d.join("root");
    ext4img::gen_tree(&src, SPEC);
    let img = d.join("fs.img");
    ext4img::mkfs(kind, &src, &img, 24, 1024);
    (std::fs::read(&img).unwrap(), img)
}

fn csum_image() -> &'static (Vec<u8>, PathBuf) {
    static I: OnceLock<(Vec<u8>, PathBuf)> = OnceLock::new();
    I.get_or_init(|| {
        build(&ImageKind {
            name: "csum",
            fs_type: "ext4",
            block_size: 1024,
            extra: &[],
        })
    })
}

fn plain_image() -> &'static (Vec<u8>, PathBuf) {
    static I: OnceLock<(Vec<u8>, PathBuf)> = OnceLock::new();
    I.get_or_init(|| {
        build(&ImageKind {
            name: "plain",
            fs_type: "ext4",
            block_size: 2048,
            extra: &["-O", "^metadata_csum"],
        })
    })
}

fn ext2_image() -> &'static (Vec<u8>, PathBuf) {
    static I: OnceLock<(Vec<u8>, PathBuf)> = OnceLock::new();
    I.get_or_init(|| {
        build(&ImageKind {
            name: "ext2",
            fs_type: "ext2",
            block_size: 1024,
            extra: &[],
        })
    })
}

fn scan(bytes: &[u8]) -> Result<ScanStats, Error> {
    let mut fs = Ext4::open(MemDisk::borrowed(bytes))?;
    Ok(fs.scan(100_000, 1 << 20))
}

/// `debugfs -R CMD` output.
fn debugfs(img: &PathBuf, cmd: &str) -> String {
    let out = Command::new("debugfs")
        .args(["-R", cmd])
        .arg(img)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn bmap(img: &PathBuf, path: &str, lblk: u64) -> u64 {
    debugfs(img, &format!("bmap {path} {lblk}"))
        .trim()
        .parse()
        .unwrap()
}

fn flip(bytes: &[u8], at: u64) -> Vec<u8> {
    let mut v = bytes.to_vec();
    v[at as usize] ^= 0x5a;
    v
}

#[test]
fn intact_images_scan_cleanly() {
    for (bytes, _) in [csum_image(), plain_image(), ext2_image()] {
        let st = scan(bytes).unwrap();
        assert_eq!(st.errors, 0, "{:?}", st.first_error);
        assert!(st.inodes > 600 && st.bytes > 1 << 20);
    }
}

#[test]
fn checksummed_structures_report_their_damage() {
    let (bytes, img) = csum_image();
    let bs = 1024u64;
    // Superblock (a field nothing else validates: s_default_mount_opts).
    let e = Ext4::open(MemDisk::borrowed(&flip(bytes, 1024 + 0x100)))
        .err()
        .unwrap();
    assert_eq!(
        e,
        Error::Checksum {
            what: "superblock",
            at: 1024
        }
    );
    // Group descriptor 0 (block 2 with 1 KiB blocks): its used-dirs count.
    let e = Ext4::open(MemDisk::borrowed(&flip(bytes, 2 * bs + 0x10)))
        .err()
        .unwrap();
    assert_eq!(
        e,
        Error::Checksum {
            what: "group descriptor",
            at: 0
        }
    );

    let mut fs = Ext4::open(MemDisk::borrowed(bytes)).unwrap();
    let small = fs.lookup_path(b"files/small.txt").unwrap();
    let islands = fs.lookup_path(b"sparse/islands").unwrap();
    let big = fs.lookup_path(b"big").unwrap();
    let ipg = fs.superblock().inodes_per_group;
    let isz = u64::from(fs.superblock().inode_size);
    let itable = fs.groups()[((small - 1) / ipg) as usize].inode_table;
    let inode_at = itable * bs + u64::from((small - 1) % ipg) * isz;
    drop(fs);

    // Inode: the size field.
    let bad = flip(bytes, inode_at + 4);
    let mut fs = Ext4::open(MemDisk::borrowed(&bad)).unwrap();
    assert_eq!(
        fs.getattr(small).err().unwrap(),
        Error::Checksum {
            what: "inode",
            at: u64::from(small)
        }
    );
    assert!(fs.read(small, 0, &mut [0u8; 16]).is_err());
    assert!(fs.scan(100_000, 1 << 20).errors > 0);

    // Extent tree block of the fragmented file (depth ≥ 1).
    let ex = debugfs(img, "ex /sparse/islands");
    let leaf: u64 = ex
        .lines()
        .find(|l| l.trim_start().starts_with("0/"))
        .and_then(|l| l.split_whitespace().nth(7))
        .unwrap()
        .parse()
        .unwrap();
    let bad = flip(bytes, leaf * bs + 12 + 4);
    let mut fs = Ext4::open(MemDisk::borrowed(&bad)).unwrap();
    let mut buf = vec![0u8; 64 << 10];
    let mut err = None;
    for off in (0..ext4img::ISLANDS * 3 * 4096).step_by(64 << 10) {
        if let Err(e) = fs.read(islands, off, &mut buf) {
            err = Some(e);
            break;
        }
    }
    assert!(
        matches!(
            err,
            Some(Error::Checksum {
                what: "extent block",
                ..
            })
        ),
        "{err:?}"
    );

    // Directory leaf block and dx root of big/.
    let leaf = bmap(img, "/big", 1);
    let bad = flip(bytes, leaf * bs + 40);
    let mut fs = Ext4::open(MemDisk::borrowed(&bad)).unwrap();
    let e = fs.read_dir(big).err().unwrap();
    assert!(
        matches!(
            e,
            Error::Checksum {
                what: "directory block",
                ..
            } | Error::Corrupt { .. }
        ),
        "{e:?}"
    );
    let root = bmap(img, "/big", 0);
    let bad = flip(bytes, root * bs + 0x28);
    let mut fs = Ext4::open(MemDisk::borrowed(&bad)).unwrap();
    let e = fs.lookup(big, b"entry-000001-nnnnnnn").err().unwrap();
    assert_eq!(
        e,
        Error::Checksum {
            what: "dx node",
            at: root
        }
    );

    // External xattr block.
    let st = debugfs(img, "stat /files/4097.bin");
    let acl: u64 = st
        .split("File ACL: ")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(acl > 0);
    let bad = flip(bytes, acl * bs + 0x40);
    let mut fs = Ext4::open(MemDisk::borrowed(&bad)).unwrap();
    let f = fs.lookup_path(b"files/4097.bin").unwrap();
    assert_eq!(
        fs.getxattr(f, b"user.big").err().unwrap(),
        Error::Checksum {
            what: "xattr block",
            at: acl
        }
    );
}

/// An inode's checksum is verified once per cached copy of its table block, per inode: an
/// inode changed (and checksummed) by the engine, or loaded and verified, must not vouch for a
/// damaged neighbour in the same block, before or after the change.
#[test]
fn a_verified_neighbour_does_not_vouch_for_a_damaged_inode() {
    let (bytes, _) = csum_image();
    let mut fs = Ext4::open(MemDisk::borrowed(bytes)).unwrap();
    let small = fs.lookup_path(b"files/small.txt").unwrap();
    let ipg = fs.superblock().inodes_per_group;
    let isz = u64::from(fs.superblock().inode_size);
    let bs = u64::from(fs.superblock().block_size());
    let itable = fs.groups()[((small - 1) / ipg) as usize].inode_table;
    let offset = u64::from((small - 1) % ipg) * isz;
    // the other inodes in use in small's table block
    let per_block = (bs / isz) as u32;
    let first = small - (small - 1) % per_block;
    let neighbours: Vec<u32> = (first..first + per_block)
        .filter(|&i| i != small && fs.getattr(i).is_ok())
        .collect();
    assert!(!neighbours.is_empty(), "no inode next to {small}");
    drop(fs);

    let bad = flip(bytes, itable * bs + offset + 4);
    let mut fs = Ext4::open_rw(MemDisk::new(bad), &Default::default()).unwrap();
    let damaged = Error::Checksum {
        what: "inode",
        at: u64::from(small),
    };
    for &n in &neighbours {
        fs.getattr(n).unwrap();
    }
    assert_eq!(fs.getattr(small).err().unwrap(), damaged);
    assert_eq!(fs.getattr(small).err().unwrap(), damaged, "a second load");
    let set = pvfs_fs::ext4::SetAttr {
        mode: Some(0o600),
        ..Default::default()
    };
    fs.setattr(neighbours[0], &set).unwrap();
    assert_eq!(fs.getattr(neighbours[0]).unwrap().mode & 0o7777, 0o600);
    assert_eq!(
        fs.getattr(small).err().unwrap(),
        damaged,
        "after a neighbour changed"
    );
    for &n in &neighbours {
        fs.getattr(n).unwrap();
    }
}

#[test]
fn feature_policy() {
    let (bytes, _) = plain_image();
    // An unknown INCOMPAT bit is refused, by name; an unknown RO_COMPAT bit gives read-only.
    let mut v = bytes.clone();
    v[1024 + 0x60 + 2] |= 0x80; // bit 0x80_0000: unknown
    let e = Ext4::open(MemDisk::borrowed(&v)).err().unwrap();
    assert_eq!(
        e,
        Error::UnsupportedFeature {
            name: "unknown",
            bit: 0x80_0000
        }
    );
    let mut v = bytes.clone();
    v[1024 + 0x60] |= 0x01; // compression
    let e = Ext4::open(MemDisk::borrowed(&v)).err().unwrap();
    assert_eq!(
        e,
        Error::UnsupportedFeature {
            name: "compression",
            bit: 1
        }
    );
    assert!(e.to_string().contains("compression"));
    let mut v = bytes.clone();
    v[1024 + 0x64 + 2] |= 0x40; // RO_COMPAT 0x40_0000: unknown
    let mut fs = Ext4::open(MemDisk::borrowed(&v)).unwrap();
    assert!(fs.read_only_reason().is_some());
    assert!(fs.lookup_path(b"files/small.txt").is_ok());
    // Needs recovery with an empty journal: replayed (nothing to do), read-only, readable.
    let mut v = bytes.clone();
    v[1024 + 0x60] |= 0x04;
    let mut fs = Ext4::open(MemDisk::borrowed(&v)).unwrap();
    assert_eq!(
        fs.read_only_reason(),
        Some("journal replayed in memory only")
    );
    assert!(fs.lookup_path(b"files/small.txt").is_ok());
    // ... but without a journal to replay it is refused.
    let mut v = bytes.clone();
    v[1024 + 0x60] |= 0x04;
    v[1024 + 0x5C] &= !0x04; // clear has_journal
    let e = Ext4::open(MemDisk::borrowed(&v)).err().unwrap();
    assert!(matches!(e, Error::JournalRecovery { .. }), "{e:?}");
    // A device shorter than the file system.
    let e = Ext4::open(MemDisk::borrowed(&bytes[..bytes.len() / 2]))
        .err()
        .unwrap();
    assert!(matches!(e, Error::BadSuperblock { .. }), "{e:?}");
    // Not ext4 at all.
    assert_eq!(
        Ext4::open(MemDisk::borrowed(&[0u8; 8192])).err().unwrap(),
        Error::BadMagic { found: 0 }
    );
}

/// Random damage to metadata regions of images with and without checksums: every outcome is
/// fine except a panic or a hang.
#[test]
fn random_metadata_flips_never_panic() {
    let mut rng = Rng::new(0xc0ffee);
    for (bytes, _) in [plain_image(), ext2_image(), csum_image()] {
        let mut v = bytes.clone();
        let fs = Ext4::open(MemDisk::borrowed(bytes)).unwrap();
        let bs = u64::from(fs.superblock().block_size());
        let isz = u64::from(fs.superblock().inode_size);
        // Regions: superblock + descriptors, the used part of group 0's inode table, and the
        // first 2 MiB (bitmaps, directories, extent and xattr blocks of the small tree).
        let it = fs.groups()[0].inode_table * bs;
        let regions = [(1024u64, 4096u64), (it, 700 * isz), (0, 2 << 20)];
        drop(fs);
        let mut errors = 0;
        for round in 0..600 {
            let (start, len) = regions[round % regions.len()];
            let flips = 1 + rng.next_u64() % 8;
            let mut saved = Vec::new();
            for _ in 0..flips {
                let at = (start + rng.next_u64() % len) as usize;
                saved.push((at, v[at]));
                v[at] ^= 1 << (rng.next_u64() % 8);
            }
            match scan(&v) {
                Ok(st) => errors += st.errors,
                Err(_) => errors += 1,
            }
            for (at, b) in saved.into_iter().rev() {
                v[at] = b;
            }
        }
        assert!(
            errors > 0,
            "600 rounds of damage and not a single error reported"
        );
    }
}

/// A name with a `/` (impossible on a real file system) is corruption: it must never reach a
/// client or `pvfs image get` as a path.
#[test]
fn slash_in_a_name_is_rejected() {
    let (bytes, img) = plain_image();
    let needle = b"small.txt";
    let at = bytes
        .windows(needle.len())
        .enumerate()
        .position(|(i, w)| w == needle && i >= 8 && bytes[i - 2] == needle.len() as u8)
        .unwrap();
    let mut v = bytes.clone();
    v[at + 2] = b'/'; // "sm/ll.txt"
    let mut fs = Ext4::open(MemDisk::borrowed(&v)).unwrap();
    let files = fs.lookup_path(b"files").unwrap();
    let e = fs.read_dir(files).err().unwrap();
    assert!(
        matches!(
            e,
            Error::Corrupt {
                what: "directory entry name",
                ..
            }
        ),
        "{e:?}"
    );
    let out = img.parent().unwrap().join("slash-out");
    let _ = std::fs::remove_dir_all(&out);
    assert!(pvfs_fs::host::extract(&mut fs, "/files", &out).is_err());
    assert!(!img.parent().unwrap().join("sm").exists());
    let _ = std::fs::remove_dir_all(&out);
}

/// Device read errors anywhere surface as `Error::Dev`, never as a panic or wrong data.
#[test]
fn device_errors_propagate() {
    use pvfs_fs::block::{DevError, FaultyDisk};
    let (bytes, _) = csum_image();
    let clean = scan(bytes).unwrap();
    let sectors = (bytes.len() / 512) as u64;
    let mut rng = Rng::new(77);
    let mut dev_errors = 0;
    for _ in 0..200 {
        let mut d = FaultyDisk::new(MemDisk::borrowed(bytes));
        // A few bad sectors among the first 4 MiB, where the metadata and most data live.
        for _ in 0..3 {
            d.fail_sector(rng.next_u64() % sectors.min(8192));
        }
        match Ext4::open(d) {
            Err(Error::Dev(DevError::Io { code: -5, .. })) => dev_errors += 1,
            Err(e) => panic!("unexpected mount error {e:?}"),
            Ok(mut fs) => {
                let st = fs.scan(100_000, 1 << 20);
                if st.errors > 0 {
                    assert!(
                        matches!(st.first_error, Some(Error::Dev(_))),
                        "{:?}",
                        st.first_error
                    );
                    dev_errors += 1;
                } else {
                    assert_eq!(st, clean, "a scan without errors must read everything");
                }
            }
        }
    }
    assert!(
        dev_errors > 20,
        "only {dev_errors} of 200 runs hit a bad sector"
    );
}
