//! The FAT adapter (`pvfs_9p::fat::FatFs`) behind the 9P server, in-process over loopback, on
//! a `mkfs.vfat` image: files and directories made, written, read, listed and renamed over
//! 9P; owners and modes from vfat's mapping; what FAT cannot store refused with vfat's errno
//! (EPERM for symlinks, hard links, device nodes, FIFOs, foreign owners and modes it cannot
//! keep, EINVAL for names it refuses); a file open across a rename keeps its qid, one open
//! across an unlink stays readable; statfs says MSDOS; the image is `fsck.fat -n` clean.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::fat::{FatFs, MSDOS_SUPER_MAGIC};
use pvfs_9p::host::ServeOptions;
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::wire::{setattr as sa, SetattrReq};
use pvfs_tests::fatimg;
use pvfs_tests::p9client::{o, temp_dir, Client, TestServer};

const EPERM: u32 = 1;
const EINVAL: u32 = 22;

#[test]
fn fat_export_over_9p() {
    fatimg::require_tools();
    let dir = temp_dir("p9_fat");
    let img = dir.join("v.img");
    fatimg::mkfs(&img, 20_000, 16, 4);
    fn clock() -> pvfs_9p::fs::Timespec {
        pvfs_9p::fs::Timespec {
            sec: 1_750_000_000,
            nsec: 0,
        }
    }
    let fs = std::sync::Arc::new(FatFs::new(fatimg::open(&img, true)).with_clock(clock));
    let ts = TestServer::start(
        Server::new(fs.clone(), ExportConfig::default()),
        1,
        ServeOptions::default(),
    );
    let mut c = Client::mount(&ts.addr, 65536, "/");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 253) as u8).collect();
    c.mkdir(0, "Ünïcode directory", 0o700, 0).unwrap();
    c.walk(0, 1, &["Ünïcode directory"]).unwrap();
    c.lcreate(1, "a long file name.bin", o::RDWR, 0o600, 0)
        .unwrap();
    let mut off = 0;
    for chunk in data.chunks(60_000) {
        assert_eq!(c.write(1, off, chunk).unwrap() as usize, chunk.len());
        off += chunk.len() as u64;
    }
    c.fsync(1).unwrap();
    let g = c.getattr(1).unwrap();
    assert_eq!(
        (g.mode, g.uid, g.gid, g.size),
        (0o100755, 0, 0, data.len() as u64)
    );
    assert_eq!(
        g.mtime_sec, 1_750_000_000,
        "stamped with the adapter's clock"
    );
    let qid = c
        .walk(0, 2, &["Ünïcode directory", "a long file name.bin"])
        .unwrap();
    // Renamed while open: same qid, still readable.
    c.renameat(0, "Ünïcode directory", 0, "renamed").unwrap();
    let again = c.walk(0, 3, &["renamed", "A LONG FILE NAME.BIN"]).unwrap();
    assert_eq!(qid.last().unwrap().path, again.last().unwrap().path);
    c.clunk(1).unwrap();
    c.lopen(2, o::RDONLY).unwrap();
    // Unlinked while open: its data stays readable until the fid goes.
    c.walk(0, 4, &["renamed"]).unwrap();
    c.unlinkat(4, "a long file name.bin", 0).unwrap();
    assert_eq!(c.read_all(2, 65536).unwrap(), data);
    c.clunk(2).unwrap();
    // What FAT cannot store.
    assert_eq!(c.symlink(0, "sl", "renamed", 0), Err(EPERM));
    assert_eq!(c.mknod(0, "fifo", 0o010644, 0, 0), Err(EPERM));
    c.lcreate(4, "f", o::RDWR, 0o644, 0).unwrap();
    c.walk(0, 5, &["renamed", "f"]).unwrap();
    assert_eq!(c.link(0, 5, "hard"), Err(EPERM));
    let set = |valid, mode, uid| SetattrReq {
        valid,
        mode,
        uid,
        ..Default::default()
    };
    assert_eq!(c.setattr(5, set(sa::UID, 0, 1000)), Err(EPERM));
    assert_eq!(c.setattr(5, set(sa::MODE, 0o644, 0)), Err(EPERM));
    c.setattr(5, set(sa::MODE, 0o555, 0)).unwrap();
    assert_eq!(c.getattr(5).unwrap().mode, 0o100555, "read-only attribute");
    c.setattr(5, set(sa::MODE, 0o755, 0)).unwrap();
    assert_eq!(c.getattr(5).unwrap().mode, 0o100755);
    assert_eq!(c.mkdir(0, "a:b", 0o755, 0), Err(EINVAL));
    assert_eq!(
        c.mkdir(0, "RENAMED", 0o755, 0),
        Err(17),
        "names compare without case"
    );
    c.walk(0, 6, &["renamed"]).unwrap();
    c.lopen(6, o::RDONLY).unwrap();
    let names = c.readdir_names(6).unwrap();
    assert_eq!(names, [b".".to_vec(), b"..".to_vec(), b"f".to_vec()]);
    let st = c.statfs(0).unwrap();
    assert_eq!(
        (st.ty, st.bsize, st.namelen),
        (MSDOS_SUPER_MAGIC, 2048, 255)
    );
    for fid in [4, 5, 6] {
        c.clunk(fid).unwrap();
    }
    drop(c);
    drop(ts);
    let fs = std::sync::Arc::try_unwrap(fs).ok().unwrap();
    let mut engine = fs.into_inner();
    engine.sync().unwrap();
    drop(engine);
    fatimg::fsck_clean(&img);
    let _ = std::fs::remove_dir_all(&dir);
}
