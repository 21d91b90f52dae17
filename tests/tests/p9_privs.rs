//! Linux's rules that the server applies for the guest: set-user-ID and set-group-ID bits
//! cleared when a caller without CAP_FSETID writes, truncates or changes the owner of a file,
//! and nanosecond times kept on symbolic links. Checked over 9P on the in-memory filesystem
//! and on the real ext4 engine (the `pvfs serve` path), against Linux's behaviour
//! (`setattr_should_drop_suidgid`, as pjdfstest's chmod/12.t expects it).
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::ext4::Ext4Fs;
use pvfs_9p::host::ServeOptions;
use pvfs_9p::memfs::MemFs;
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::wire::{setattr as sa, SetattrReq};
use pvfs_9p::Filesystem;
use pvfs_tests::p9client::{o, require_tool, temp_dir, Client, TestServer};
use pvfs_tests::wimg::{debugfs, e2fsck_clean, mkfs_sized};

const ENAMETOOLONG: u32 = 36;

const NOBODY: u32 = 65534;

fn chmod(c: &mut Client, fid: u32, mode: u32) {
    c.setattr(
        fid,
        SetattrReq {
            valid: sa::MODE,
            mode,
            ..Default::default()
        },
    )
    .unwrap();
}

fn mode_of(c: &mut Client, fid: u32) -> u32 {
    c.getattr(fid).unwrap().mode & 0o7777
}

/// As root: a file `name` of mode `m` in the root, world-writable so that others may write.
fn make(c: &mut Client, name: &str, m: u32) {
    c.walk(0, 50, &[]).unwrap();
    c.lcreate(50, name, o::RDWR, 0o644, 0).unwrap();
    c.clunk(50).unwrap();
    c.walk(0, 51, &[name]).unwrap();
    chmod(c, 51, m);
    assert_eq!(mode_of(c, 51), m);
    c.clunk(51).unwrap();
}

/// Every rule, through a root attach (fid 0) and a nobody attach (fid 100).
fn check_rules(ts: &TestServer<impl Filesystem + 'static>) {
    let mut c = Client::mount(&ts.addr, 65536, "/");
    c.attach(100, "/", NOBODY).unwrap();
    let cases = [
        ("w4", 0o4777, 0o777),
        ("w2", 0o2777, 0o777),
        ("w6", 0o6777, 0o777),
        ("lock", 0o2766, 0o2766),
    ];
    // Writes by nobody (chmod/12.t): open for writing keeps the bits, the write clears them.
    for (name, before, after) in cases {
        make(&mut c, name, before);
        c.walk(100, 101, &[name]).unwrap();
        c.lopen(101, o::WRONLY).unwrap();
        assert_eq!(mode_of(&mut c, 101), before, "{name}: open alone");
        assert_eq!(c.write(101, 0, b"x").unwrap(), 1);
        assert_eq!(
            mode_of(&mut c, 101),
            after,
            "{name}: after a write by nobody"
        );
        c.clunk(101).unwrap();
    }
    // Root keeps them.
    make(&mut c, "r6", 0o6777);
    c.walk(0, 102, &["r6"]).unwrap();
    c.lopen(102, o::WRONLY).unwrap();
    c.write(102, 0, b"x").unwrap();
    assert_eq!(mode_of(&mut c, 102), 0o6777, "root's write");
    c.clunk(102).unwrap();
    // A truncate and a chgrp by nobody clear them; a chmod by nobody that sets them keeps
    // what it sets.
    for (name, valid) in [("t6", sa::SIZE), ("g6", sa::GID), ("u6", sa::UID)] {
        make(&mut c, name, 0o6777);
        c.walk(100, 103, &[name]).unwrap();
        c.setattr(
            103,
            SetattrReq {
                valid,
                uid: NOBODY,
                gid: NOBODY,
                size: 0,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(mode_of(&mut c, 103), 0o777, "{name}");
        chmod(&mut c, 103, 0o6755);
        assert_eq!(mode_of(&mut c, 103), 0o6755, "{name}: explicit chmod");
        c.clunk(103).unwrap();
    }
    // Directories keep them (set-group-ID on a directory is inheritance, not privilege).
    c.walk(0, 104, &[]).unwrap();
    c.mkdir(104, "d", 0o2777, 0).unwrap();
    c.walk(0, 105, &["d"]).unwrap();
    chmod(&mut c, 105, 0o2777);
    c.walk(100, 106, &["d"]).unwrap();
    c.setattr(
        106,
        SetattrReq {
            valid: sa::GID,
            gid: NOBODY,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(mode_of(&mut c, 105), 0o2777, "directory");
}

/// utimensat(..., AT_SYMLINK_NOFOLLOW) on a symlink (utimensat/08.t): both times keep their
/// nanoseconds.
fn check_symlink_times(ts: &TestServer<impl Filesystem + 'static>) {
    let mut c = Client::mount(&ts.addr, 65536, "/");
    c.walk(0, 10, &[]).unwrap();
    c.symlink(10, "ln", "target", 0).unwrap();
    c.walk(0, 11, &["ln"]).unwrap();
    c.setattr(
        11,
        SetattrReq {
            valid: sa::ATIME | sa::ATIME_SET | sa::MTIME | sa::MTIME_SET,
            atime_sec: 1_900_000_000,
            atime_nsec: 100_000_000,
            mtime_sec: 1_950_000_000,
            mtime_nsec: 200_000_000,
            ..Default::default()
        },
    )
    .unwrap();
    c.clunk(11).unwrap();
    c.walk(0, 12, &["ln"]).unwrap();
    let g = c.getattr(12).unwrap();
    assert_eq!(
        (g.atime_sec, g.atime_nsec, g.mtime_sec, g.mtime_nsec),
        (1_900_000_000, 100_000_000, 1_950_000_000, 200_000_000)
    );
    // A target longer than the file system stores (PATH_MAX on both; a block less one byte
    // on ext4) is ENAMETOOLONG, as Linux answers symlink(2), not EINVAL (fsstress's random
    // targets up to 4095 bytes compare the logs on a share and on tmpfs).
    assert_eq!(
        c.symlink(10, "toolong", &"x".repeat(4096), 0),
        Err(ENAMETOOLONG)
    );
}

#[test]
fn memfs_follows_linux() {
    let ts = TestServer::start(
        Server::new(MemFs::new(), ExportConfig::default()),
        2,
        ServeOptions::default(),
    );
    check_rules(&ts);
    check_symlink_times(&ts);
}

#[test]
fn ext4_follows_linux() {
    require_tool("mkfs.ext4");
    require_tool("e2fsck");
    let dir = temp_dir("p9-privs");
    let img = dir.join("v.img");
    mkfs_sized(&img, "16M", &[]);
    {
        let disk = pvfs_fs::block::FileDisk::open_rw(&img).unwrap();
        let engine = pvfs_fs::ext4::Ext4::open_rw(disk, &Default::default()).unwrap();
        let fs = std::sync::Arc::new(Ext4Fs::new(engine));
        let ts = TestServer::start(
            Server::new(fs.clone(), ExportConfig::default()),
            2,
            ServeOptions::default(),
        );
        check_rules(&ts);
        check_symlink_times(&ts);
        drop(ts);
        fs.sync().unwrap();
    }
    e2fsck_clean(&img);
    // debugfs sees the cleared bits on disk.
    let out = debugfs(&img, "stat /w6");
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("Mode:  0777"), "debugfs: {text}");
}
