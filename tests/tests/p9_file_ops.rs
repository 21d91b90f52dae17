//! 9P2000.L conformance of the file messages: read/write with their qids, Tsetattr/Tgetattr, open
//! files that are unlinked, xattrs and POSIX locks, against the in-memory filesystem.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::server::ExportConfig;
use pvfs_9p::wire::{self, lock as lk, qid_type, setattr as sa, SetattrReq};
use pvfs_9p::Filesystem;
use pvfs_tests::p9client::errno::{EBADF, EEXIST, EINVAL, EISDIR, ENOENT};
use pvfs_tests::p9client::o;
use pvfs_tests::p9memfs::{memfs_server, mount, put};

#[test]
fn file_io_and_qids() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    c.walk(0, 1, &[]).unwrap();
    let q = c.lcreate(1, "f", o::RDWR, 0o640, 0).unwrap();
    assert_eq!(q.ty, qid_type::FILE);
    // lcreate on an existing name.
    c.walk(0, 2, &[]).unwrap();
    assert_eq!(c.lcreate(2, "f", o::RDWR, 0o640, 0), Err(EEXIST));
    c.clunk(2).unwrap();
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
    let mut off = 0;
    for chunk in data.chunks(30000) {
        assert_eq!(c.write(1, off, chunk).unwrap() as usize, chunk.len());
        off += chunk.len() as u64;
    }
    let g = c.getattr(1).unwrap();
    assert_eq!(g.size, data.len() as u64);
    assert_eq!(g.mode, 0o100640);
    assert_eq!(g.qid.path, q.path, "qid.path stable");
    assert_ne!(
        g.qid.version, q.version,
        "qid.version changes on modification"
    );
    // Rread is capped by count and by msize - 11.
    assert_eq!(c.read(1, 0, 100).unwrap(), data[..100]);
    let big = c.read(1, 0, 10 << 20).unwrap();
    assert_eq!(big.len(), 65536 - 11);
    assert_eq!(big, data[..big.len()]);
    assert_eq!(c.read_all(1, 8192).unwrap(), data);
    assert!(c.read(1, 1 << 40, 10).unwrap().is_empty());
    c.clunk(1).unwrap();
    // Read needs an open fid, write needs write mode.
    c.walk(0, 1, &["f"]).unwrap();
    assert_eq!(c.read(1, 0, 10), Err(EBADF));
    c.lopen(1, o::RDONLY).unwrap();
    assert_eq!(c.lopen(1, o::RDONLY), Err(EBADF), "already open");
    assert_eq!(c.write(1, 0, b"x"), Err(EBADF));
    c.clunk(1).unwrap();
    // O_TRUNC, then O_APPEND.
    c.walk(0, 1, &["f"]).unwrap();
    c.lopen(1, o::WRONLY | o::TRUNC).unwrap();
    assert_eq!(c.getattr(1).unwrap().size, 0);
    assert_eq!(c.read(1, 0, 10), Err(EBADF), "write-only");
    c.write(1, 0, b"hello").unwrap();
    c.clunk(1).unwrap();
    c.walk(0, 1, &["f"]).unwrap();
    c.lopen(1, o::RDWR | o::APPEND).unwrap();
    c.write(1, 0, b" world").unwrap();
    assert_eq!(c.read_all(1, 3).unwrap(), b"hello world");
    c.fsync(1).unwrap();
    c.clunk(1).unwrap();
    // Clunk of a bad fid.
    assert_eq!(c.clunk(1), Err(EBADF));
    // Directories: lopen for write fails, read fails.
    c.walk(0, 1, &[]).unwrap();
    assert_eq!(c.lopen(1, o::RDWR), Err(EISDIR));
    c.lopen(1, o::RDONLY | o::DIRECTORY).unwrap();
    assert_eq!(c.read(1, 0, 10), Err(EISDIR));
}

#[test]
fn setattr_and_getattr() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    put(&mut c, "f", b"0123456789");
    c.walk(0, 1, &["f"]).unwrap();
    let v0 = c.getattr(1).unwrap().qid.version;
    c.setattr(
        1,
        SetattrReq {
            valid: sa::MODE | sa::SIZE | sa::MTIME | sa::MTIME_SET | sa::UID | sa::GID,
            mode: 0o600,
            uid: 1234,
            gid: 99,
            size: 4,
            mtime_sec: 1_000_000,
            mtime_nsec: 5,
            ..Default::default()
        },
    )
    .unwrap();
    let g = c.getattr(1).unwrap();
    assert_eq!((g.mode, g.size, g.uid, g.gid), (0o100600, 4, 1234, 99));
    assert_eq!((g.mtime_sec, g.mtime_nsec), (1_000_000, 5));
    assert_ne!(g.qid.version, v0);
    assert_eq!(g.valid, wire::getattr::ALL);
    c.walk(0, 2, &[]).unwrap();
    let e = c.setattr(
        2,
        SetattrReq {
            valid: sa::SIZE,
            size: 1,
            ..Default::default()
        },
    );
    assert_eq!(e, Err(EISDIR));
    assert_eq!(c.setattr(55, SetattrReq::default()), Err(EBADF));
}

#[test]
fn xattrs_commit_at_clunk() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    put(&mut c, "f", b"");
    c.walk(0, 1, &["f"]).unwrap();
    c.walk(1, 2, &[]).unwrap();
    c.xattrcreate(2, "user.k", 5, 0).unwrap();
    c.write(2, 0, b"va").unwrap();
    // Not committed before clunk.
    assert_eq!(c.xattrwalk(1, 3, "user.k"), Err(61));
    c.write(2, 2, b"lue").unwrap();
    assert_eq!(c.write(2, 5, b"!"), Err(EINVAL), "beyond the declared size");
    c.clunk(2).unwrap();
    assert_eq!(c.xattrwalk(1, 3, "user.k").unwrap(), 5);
    assert_eq!(c.read(3, 0, 100).unwrap(), b"value");
    assert_eq!(c.read(3, 2, 2).unwrap(), b"lu");
    c.clunk(3).unwrap();
    // List.
    let n = c.xattrwalk(1, 3, "").unwrap();
    assert_eq!(c.read(3, 0, 100).unwrap(), b"user.k\0");
    assert_eq!(n, 7);
    c.clunk(3).unwrap();
    // Short write: the commit fails at clunk.
    c.walk(1, 2, &[]).unwrap();
    c.xattrcreate(2, "user.short", 10, 0).unwrap();
    c.write(2, 0, b"abc").unwrap();
    assert_eq!(c.clunk(2), Err(EINVAL));
    assert_eq!(c.xattrwalk(1, 3, "user.short"), Err(61));
    // Size 0 removes.
    c.walk(1, 2, &[]).unwrap();
    c.xattrcreate(2, "user.k", 0, 0).unwrap();
    c.clunk(2).unwrap();
    assert_eq!(c.xattrwalk(1, 3, "user.k"), Err(61));
    // Oversized declared size.
    c.walk(1, 2, &[]).unwrap();
    assert_eq!(c.xattrcreate(2, "user.big", 1 << 30, 0), Err(7));
}

#[test]
fn locks_between_connections() {
    let ts = memfs_server(ExportConfig::default());
    let mut a = mount(&ts);
    let mut b = mount(&ts);
    put(&mut a, "lockme", b"data");
    for c in [&mut a, &mut b] {
        c.walk(0, 1, &["lockme"]).unwrap();
        c.lopen(1, o::RDWR).unwrap();
    }
    assert_eq!(
        a.lock(1, lk::WRLCK, 0, 0, 100, 1).unwrap(),
        lk::STATUS_SUCCESS
    );
    assert_eq!(
        b.lock(1, lk::RDLCK, lk::FLAG_BLOCK, 50, 10, 2).unwrap(),
        lk::STATUS_BLOCKED
    );
    assert_eq!(
        b.getlock(1, lk::RDLCK, 0, 0, 2).unwrap(),
        (lk::WRLCK, 0, 100, 1)
    );
    assert_eq!(
        b.lock(1, lk::WRLCK, 0, 100, 0, 2).unwrap(),
        lk::STATUS_SUCCESS,
        "beyond a's range"
    );
    // a unlocks the middle: the range splits and b can take the hole.
    assert_eq!(
        a.lock(1, lk::UNLCK, 0, 40, 20, 1).unwrap(),
        lk::STATUS_SUCCESS
    );
    assert_eq!(
        b.lock(1, lk::RDLCK, 0, 45, 10, 2).unwrap(),
        lk::STATUS_SUCCESS
    );
    assert_eq!(b.getlock(1, lk::WRLCK, 0, 40, 2).unwrap().0, lk::WRLCK);
    assert_eq!(b.getlock(1, lk::WRLCK, 60, 40, 2).unwrap().0, lk::WRLCK);
    // Shared locks coexist.
    assert_eq!(
        a.lock(1, lk::RDLCK, 0, 45, 5, 1).unwrap(),
        lk::STATUS_SUCCESS
    );
    assert_eq!(a.getlock(1, lk::RDLCK, 45, 5, 1).unwrap().0, lk::UNLCK);
    // Closing a's fid drops a's locks.
    a.clunk(1).unwrap();
    assert_eq!(b.getlock(1, lk::WRLCK, 0, 0, 2).unwrap().0, lk::UNLCK);
    assert_eq!(
        b.lock(1, lk::WRLCK, 0, 0, 0, 2).unwrap(),
        lk::STATUS_SUCCESS
    );
    assert_eq!(b.lock(1, 7, 0, 0, 0, 2), Err(EINVAL));
    // A connection that goes away drops its locks.
    drop(b);
    a.walk(0, 1, &["lockme"]).unwrap();
    a.lopen(1, o::RDWR).unwrap();
    let mut tries = 0;
    while a.lock(1, lk::WRLCK, 0, 0, 0, 1).unwrap() != lk::STATUS_SUCCESS {
        tries += 1;
        assert!(tries < 1000, "lock of a closed connection never released");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
}

#[test]
fn open_unlink() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    put(&mut c, "tmp", b"still here");
    c.walk(0, 1, &["tmp"]).unwrap();
    c.lopen(1, o::RDWR).unwrap();
    c.unlinkat(0, "tmp", 0).unwrap();
    assert_eq!(c.walk(0, 2, &["tmp"]), Err(ENOENT));
    assert_eq!(c.read_all(1, 4).unwrap(), b"still here");
    c.write(1, 10, b"!").unwrap();
    assert_eq!(c.read_all(1, 100).unwrap(), b"still here!");
    assert_eq!(c.getattr(1).unwrap().nlink, 0);
    c.clunk(1).unwrap();
    // The inode is gone once the last fid is clunked.
    let s = ts.server.fs().statfs().unwrap();
    assert_eq!(s.files - s.ffree, 1, "only the root is left");
}
