//! 9P2000.L conformance under export settings: read-only exports, uid/gid translation and quotas.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::fs::Errno;
use pvfs_9p::host::ServeOptions;
use pvfs_9p::memfs::MemFs;
use pvfs_9p::policy::{IdMap, QuotaLimits};
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::wire::{setattr as sa, SetattrReq};
use pvfs_9p::Filesystem;
use pvfs_tests::p9client::errno::{EDQUOT, EROFS};
use pvfs_tests::p9client::{o, Client, TestServer};
use pvfs_tests::p9memfs::{memfs_server, mount, open_memfs_server};

#[test]
fn read_only_export() {
    let fs = MemFs::new();
    let f = fs
        .create(
            1,
            b"f",
            &pvfs_9p::fs::NewInode {
                mode: 0o100644,
                uid: 0,
                gid: 0,
                rdev: 0,
            },
        )
        .unwrap();
    fs.write(f.ino, 0, b"ro data").unwrap();
    let ts = TestServer::start(
        Server::new(
            fs,
            ExportConfig {
                read_only: true,
                ..Default::default()
            },
        ),
        2,
        ServeOptions::default(),
    );
    let mut c = mount(&ts);
    c.walk(0, 1, &[]).unwrap();
    assert_eq!(c.lcreate(1, "new", o::RDWR, 0o644, 0), Err(EROFS));
    assert_eq!(c.mkdir(0, "d", 0o755, 0), Err(EROFS));
    assert_eq!(c.symlink(0, "l", "f", 0), Err(EROFS));
    assert_eq!(c.unlinkat(0, "f", 0), Err(EROFS));
    assert_eq!(c.renameat(0, "f", 0, "g"), Err(EROFS));
    c.walk(0, 2, &["f"]).unwrap();
    assert_eq!(c.lopen(2, o::RDWR), Err(EROFS));
    assert_eq!(c.lopen(2, o::RDONLY | o::TRUNC), Err(EROFS));
    assert_eq!(
        c.setattr(
            2,
            SetattrReq {
                valid: sa::MODE,
                mode: 0o777,
                ..Default::default()
            }
        ),
        Err(EROFS)
    );
    assert_eq!(c.xattrcreate(2, "user.x", 1, 0), Err(EROFS));
    c.lopen(2, o::RDONLY).unwrap();
    assert_eq!(c.read_all(2, 100).unwrap(), b"ro data");
    assert_eq!(c.remove(2), Err(EROFS));
}

#[test]
fn uid_gid_translation() {
    // Squash everything to 4242 (in a world-writable root: the server checks permissions for
    // a mapped share).
    let ts = open_memfs_server(ExportConfig {
        uid_map: IdMap::squash_all(4242),
        gid_map: IdMap::squash_all(4343),
        ..Default::default()
    });
    let mut c = Client::connect(&ts.addr);
    c.version(8192).unwrap();
    c.attach(0, "/", 0).unwrap();
    c.walk(0, 1, &[]).unwrap();
    let q = c.lcreate(1, "owned", o::RDWR, 0o644, 0).unwrap();
    let a = ts.server.fs().lookup(1, b"owned").unwrap();
    assert_eq!(
        (a.uid, a.gid),
        (4242, 4343),
        "guest root squashed on the host"
    );
    assert_eq!(a.ino & 0xffff_ffff, q.path & 0xffff_ffff);
    let g = c.getattr(1).unwrap();
    assert_eq!((g.uid, g.gid), (4242, 4343));
    // chown by the guest is squashed too.
    c.setattr(
        1,
        SetattrReq {
            valid: sa::UID | sa::GID,
            uid: 0,
            gid: 0,
            ..Default::default()
        },
    )
    .unwrap();
    let a = ts.server.fs().lookup(1, b"owned").unwrap();
    assert_eq!((a.uid, a.gid), (4242, 4343));

    // Range map: guest 0..1000 -> host 100000..; unmapped guest ids become nobody.
    let ts = open_memfs_server(ExportConfig {
        uid_map: IdMap::parse("map:0:100000:1000").unwrap(),
        gid_map: IdMap::parse("map:0:200000:1000").unwrap(),
        ..Default::default()
    });
    let mut c = Client::connect(&ts.addr);
    c.version(8192).unwrap();
    c.attach(0, "/", 7).unwrap();
    c.attach(5, "/", 5000).unwrap();
    c.mkdir(0, "mine", 0o755, 8).unwrap();
    c.mkdir(5, "theirs", 0o755, 9999).unwrap();
    let a = ts.server.fs().lookup(1, b"mine").unwrap();
    assert_eq!((a.uid, a.gid), (100007, 200008));
    let b = ts.server.fs().lookup(1, b"theirs").unwrap();
    assert_eq!((b.uid, b.gid), (65534, 65534));
    c.walk(0, 1, &["mine"]).unwrap();
    let g = c.getattr(1).unwrap();
    assert_eq!((g.uid, g.gid), (7, 8), "host ids mapped back for the guest");
}

#[test]
fn quota_hooks() {
    let ts = memfs_server(ExportConfig {
        quota: QuotaLimits {
            max_bytes: Some(1000),
            max_files: Some(3),
            max_open_files: Some(2),
        },
        ..Default::default()
    });
    let mut c = mount(&ts);
    // Open files.
    c.walk(0, 1, &[]).unwrap();
    c.lcreate(1, "a", o::RDWR, 0o644, 0).unwrap();
    c.walk(0, 2, &["a"]).unwrap();
    c.lopen(2, o::RDONLY).unwrap();
    c.walk(0, 3, &["a"]).unwrap();
    assert_eq!(c.lopen(3, o::RDONLY), Err(EDQUOT));
    c.clunk(2).unwrap();
    c.lopen(3, o::RDONLY).unwrap();
    c.clunk(3).unwrap();
    // Bytes.
    c.write(1, 0, &[1u8; 800]).unwrap();
    assert_eq!(c.write(1, 800, &[1u8; 300]), Err(EDQUOT));
    c.write(1, 0, &[2u8; 800]).unwrap(); // overwrite costs nothing
    c.setattr(
        1,
        SetattrReq {
            valid: sa::SIZE,
            size: 100,
            ..Default::default()
        },
    )
    .unwrap();
    c.write(1, 100, &[1u8; 850]).unwrap();
    assert_eq!(ts.server.quota().usage().bytes, 950);
    c.clunk(1).unwrap();
    // Files.
    c.mkdir(0, "d1", 0o755, 0).unwrap();
    c.symlink(0, "s", "a", 0).unwrap();
    assert_eq!(c.mkdir(0, "d2", 0o755, 0), Err(EDQUOT));
    c.walk(0, 1, &[]).unwrap();
    assert_eq!(c.lcreate(1, "b", o::RDWR, 0o644, 0), Err(EDQUOT));
    c.unlinkat(0, "d1", 0x200).unwrap();
    c.lcreate(1, "b", o::RDWR, 0o644, 0).unwrap();
    c.clunk(1).unwrap();
    c.unlinkat(0, "a", 0).unwrap();
    assert_eq!(
        ts.server.quota().usage(),
        pvfs_9p::policy::QuotaUsage {
            bytes: 0,
            files: 2,
            open_files: 0
        }
    );
    // The filesystem's own errors still come through as themselves.
    assert_eq!(Errno::ENOSPC.0, 28);
}
