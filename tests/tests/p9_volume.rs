//! The served volume (`pvfs_9p::volume`), as the domain uses it: `detect` tells ext4 from FAT
//! (FAT12, FAT16, FAT32) by the disk's first 2 KiB; a `VolumeFs` over a `mkfs.vfat` image and
//! one over a `mkfs.ext4` image, each behind the 9P server in-process: walk, read, write,
//! create, quotas seeded from what the export already holds and then enforced, statfs; on
//! FAT, what it cannot store refused with vfat's errno, a read-only mount refusing changes
//! with EROFS, growing refused, no dirty data or cache; closing gives the device back with
//! the image clean (`fsck.fat -n`, and ext4 reopened with the data written).
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::ext4::Ext4Fs;
use pvfs_9p::fat::{FatFs, MSDOS_SUPER_MAGIC};
use pvfs_9p::host::ServeOptions;
use pvfs_9p::policy::QuotaLimits;
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::volume::{detect, Kind, VolumeFs, DETECT_BYTES};
use pvfs_9p::{Errno, Filesystem};
use pvfs_fs::block::{BlockDevice, FileDisk};
use pvfs_tests::fatimg;
use pvfs_tests::p9client::errno::{EDQUOT, EROFS};
use pvfs_tests::p9client::{o, require_tool, temp_dir, Client, TestServer};
use pvfs_tests::wimg::mkfs_sized;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

const EPERM: u32 = 1;

fn head(img: &Path) -> Vec<u8> {
    let mut b = vec![0u8; DETECT_BYTES];
    std::fs::File::open(img)
        .unwrap()
        .read_exact(&mut b)
        .unwrap();
    b
}

#[test]
fn detect_tells_ext4_from_fat() {
    fatimg::require_tools();
    require_tool("mkfs.ext4");
    let dir = temp_dir("p9_volume_detect");
    for (bits, kib) in [(12, 2_000), (16, 20_000), (32, 70_000)] {
        let img = dir.join(format!("fat{bits}.img"));
        fatimg::mkfs(&img, kib, bits, 1);
        assert_eq!(detect(&head(&img)), Some(Kind::Fat), "FAT{bits}");
        // The boot sector alone is enough for FAT.
        assert_eq!(detect(&head(&img)[..512]), Some(Kind::Fat), "FAT{bits}");
        let fs = VolumeFs::Fat(FatFs::new(fatimg::open(&img, false)));
        assert_eq!(fs.kind_name(), format!("fat{bits}"));
    }
    let ext = dir.join("v.ext4");
    mkfs_sized(&ext, "4M", &[]);
    assert_eq!(detect(&head(&ext)), Some(Kind::Ext4));
    // The ext4 superblock is at 1 KiB: a first sector alone says nothing.
    assert_eq!(detect(&head(&ext)[..512]), None);
    assert_eq!(detect(&[0u8; DETECT_BYTES]), None);
    assert_eq!(detect(&[]), None);
}

fn clock() -> pvfs_9p::fs::Timespec {
    pvfs_9p::fs::Timespec {
        sec: 1_750_000_000,
        nsec: 0,
    }
}

fn quota(bytes: u64, files: u64) -> ExportConfig {
    ExportConfig {
        quota: QuotaLimits {
            max_bytes: Some(bytes),
            max_files: Some(files),
            max_open_files: None,
        },
        ..ExportConfig::default()
    }
}

#[test]
fn fat_volume_served() {
    fatimg::require_tools();
    let dir = temp_dir("p9_volume_fat");
    let img = dir.join("v.img");
    fatimg::mkfs(&img, 20_000, 16, 4);
    let tree = dir.join("tree");
    std::fs::create_dir_all(tree.join("pre")).unwrap();
    let seed: Vec<u8> = (0..5000u32).map(|i| (i % 249) as u8).collect();
    std::fs::write(tree.join("pre/seed.bin"), &seed).unwrap();
    fatimg::mtools_put(&img, &tree);

    let fs = Arc::new(VolumeFs::Fat(
        FatFs::new(fatimg::open(&img, true)).with_clock(clock),
    ));
    assert_eq!(fs.kind_name(), "fat16");
    assert!(fs.is_writable());
    let server = Server::new(fs.clone(), quota(20_000, 4));
    let usage = server.seed_quota(1000).unwrap();
    assert_eq!(
        (usage.bytes, usage.files),
        (5000, 2),
        "the directory and the file already there count"
    );
    let ts = TestServer::start(server, 1, ServeOptions::default());
    let mut c = Client::mount(&ts.addr, 65536, "/");
    c.walk(0, 1, &["pre", "seed.bin"]).unwrap();
    c.lopen(1, o::RDONLY).unwrap();
    assert_eq!(c.read_all(1, 4096).unwrap(), seed);
    c.clunk(1).unwrap();
    c.walk(0, 2, &["pre"]).unwrap();
    c.lcreate(2, "new file.txt", o::RDWR, 0o644, 0).unwrap();
    assert_eq!(c.write(2, 0, &[7u8; 10_000]).unwrap(), 10_000);
    assert_eq!(
        c.write(2, 10_000, &[7u8; 6_000]),
        Err(EDQUOT),
        "past max-space with the seeded 5000 bytes"
    );
    c.fsync(2).unwrap();
    c.clunk(2).unwrap();
    assert_eq!(c.symlink(0, "sl", "pre", 0), Err(EPERM), "vfat's answer");
    c.mkdir(0, "d", 0o755, 0).unwrap();
    assert_eq!(c.mkdir(0, "e", 0o755, 0), Err(EDQUOT), "past max-files");
    let st = c.statfs(0).unwrap();
    assert_eq!(st.ty, MSDOS_SUPER_MAGIC);
    // Nothing waits in memory; FAT cannot grow while served.
    assert!(!fs.is_dirty());
    assert_eq!(fs.cache_bytes(), (0, 0));
    assert_eq!(fs.start_write_back(1, 1024), Ok(0));
    assert_eq!(fs.grow(64 << 20), Err(Errno::EOPNOTSUPP));
    assert_eq!(fs.with_device(|d| d.sector_count()), Some(40_000));
    drop(c);
    drop(ts);
    let dev = VolumeFs::close(fs).unwrap().unwrap();
    drop(dev);
    fatimg::fsck_clean(&img);
    let back = dir.join("back");
    fatimg::mtools_get(&img, &back);
    assert_eq!(
        std::fs::read(back.join("pre/new file.txt")).unwrap(),
        vec![7u8; 10_000]
    );
    assert!(back.join("d").is_dir());

    // Read-only (pvfs.ro, a read-only disk): every change is refused with EROFS.
    let ro = Arc::new(VolumeFs::Fat(FatFs::new(fatimg::open(&img, false))));
    assert!(!ro.is_writable());
    let ts = TestServer::start(
        Server::new(ro, ExportConfig::default()),
        1,
        ServeOptions::default(),
    );
    let mut c = Client::mount(&ts.addr, 65536, "/");
    c.walk(0, 1, &["pre"]).unwrap();
    assert_eq!(c.lcreate(1, "x", o::RDWR, 0o644, 0), Err(EROFS));
    assert_eq!(c.mkdir(0, "x", 0o755, 0), Err(EROFS));
    c.walk(0, 2, &["pre", "new file.txt"]).unwrap();
    c.lopen(2, o::RDONLY).unwrap();
    assert_eq!(c.read_all(2, 4096).unwrap(), vec![7u8; 10_000]);
}

#[test]
fn ext4_volume_served() {
    require_tool("mkfs.ext4");
    let dir = temp_dir("p9_volume_ext4");
    let tree = dir.join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    std::fs::write(tree.join("old"), [3u8; 3000]).unwrap();
    let img = dir.join("v.ext4");
    mkfs_sized(&img, "8M", &["-d", tree.to_str().unwrap()]);
    let engine =
        pvfs_fs::ext4::Ext4::open_rw(FileDisk::open_rw(&img).unwrap(), &Default::default())
            .unwrap();
    let fs = Arc::new(VolumeFs::Ext4(Ext4Fs::new(engine).with_clock(clock)));
    assert_eq!(fs.kind_name(), "ext4");
    assert!(fs.is_writable());
    let server = Server::new(fs.clone(), quota(10_000, 4));
    let usage = server.seed_quota(1000).unwrap();
    assert_eq!((usage.bytes, usage.files), (3000, 2), "old and lost+found");
    let ts = TestServer::start(server, 1, ServeOptions::default());
    let mut c = Client::mount(&ts.addr, 65536, "/");
    c.walk(0, 1, &["old"]).unwrap();
    c.lopen(1, o::RDONLY).unwrap();
    assert_eq!(c.read_all(1, 4096).unwrap(), vec![3u8; 3000]);
    c.walk(0, 2, &[]).unwrap();
    c.lcreate(2, "new", o::RDWR, 0o644, 0).unwrap();
    assert_eq!(c.write(2, 0, &[9u8; 5000]).unwrap(), 5000);
    assert_eq!(c.write(2, 5000, &[9u8; 3000]), Err(EDQUOT));
    c.symlink(0, "sl", "new", 0).unwrap();
    assert_eq!(c.mkdir(0, "d", 0o755, 0), Err(EDQUOT), "past max-files");
    assert!(fs.is_dirty(), "written data waits in the block cache");
    assert!(fs.cache_bytes().1 > 0);
    assert_eq!(c.statfs(0).unwrap().ty, 0xEF53);
    c.clunk(2).unwrap();
    drop(c);
    drop(ts);
    let dev = VolumeFs::close(fs).unwrap().unwrap();
    let again = Ext4Fs::new(pvfs_fs::ext4::Ext4::open(dev).unwrap());
    let new = again.lookup(again.root(), b"new").unwrap();
    let mut buf = vec![0u8; 6000];
    assert_eq!(again.read(new.ino, 0, &mut buf).unwrap(), 5000);
    assert_eq!(&buf[..5000], &[9u8; 5000][..]);
    assert_eq!(
        again
            .readlink(again.lookup(again.root(), b"sl").unwrap().ino)
            .unwrap(),
        b"new"
    );
}
