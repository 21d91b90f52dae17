//! 9P2000.L conformance: every message and error path, driven by the test client over a real
//! loopback socket to an in-process server (same transport as `pvfs serve`), on the
//! in-memory filesystem.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::fs::{Attr, DirVisitor, Errno, FsResult, FsStat, Ino};
use pvfs_9p::host::ServeOptions;
use pvfs_9p::memfs::MemFs;
use pvfs_9p::policy::{IdMap, QuotaLimits};
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::wire::{self, lock as lk, qid_type, setattr as sa, Rmsg, SetattrReq, Tmsg};
use pvfs_9p::Filesystem;
use pvfs_tests::p9client::{o, Client, TestServer};
use std::sync::{Arc, Condvar, Mutex};

const ENOENT: u32 = 2;
const EBADF: u32 = 9;
const EEXIST: u32 = 17;
const ENOTDIR: u32 = 20;
const EISDIR: u32 = 21;
const EINVAL: u32 = 22;
const EMFILE: u32 = 24;
const EROFS: u32 = 30;
const ENOTEMPTY: u32 = 39;
const EPROTO: u32 = 71;
const EBADMSG: u32 = 74;
const EOPNOTSUPP: u32 = 95;
const EDQUOT: u32 = 122;

fn memfs_server(cfg: ExportConfig) -> TestServer<MemFs> {
    TestServer::start(Server::new(MemFs::new(), cfg), 4, ServeOptions::default())
}

/// [`memfs_server`] with a root of mode 0777.
fn open_memfs_server(cfg: ExportConfig) -> TestServer<MemFs> {
    let fs = MemFs::new();
    let set = pvfs_9p::fs::SetAttr {
        mode: Some(0o777),
        ..Default::default()
    };
    fs.setattr(fs.root(), &set).unwrap();
    TestServer::start(Server::new(fs, cfg), 4, ServeOptions::default())
}

fn mount(ts: &TestServer<impl Filesystem + 'static>) -> Client {
    Client::mount(&ts.addr, 65536, "/")
}

/// Creates `path` (in the root) with `data`, leaving no fids behind.
fn put(c: &mut Client, name: &str, data: &[u8]) {
    c.walk(0, 90, &[]).unwrap();
    c.lcreate(90, name, o::RDWR, 0o644, 0).unwrap();
    let chunk = (c.msize - 24) as usize;
    for (i, part) in data.chunks(chunk).enumerate() {
        assert_eq!(
            c.write(90, (i * chunk) as u64, part).unwrap() as usize,
            part.len()
        );
    }
    c.clunk(90).unwrap();
}

#[test]
fn version_negotiation() {
    let ts = memfs_server(ExportConfig {
        max_msize: 128 * 1024,
        ..Default::default()
    });
    let mut c = Client::connect(&ts.addr);
    // Requests before Tversion are refused.
    assert_eq!(c.attach(0, "/", 0), Err(EPROTO));
    // msize below the minimum.
    assert_eq!(c.version(4095), Err(EINVAL));
    assert_eq!(c.version(1024), Err(EINVAL));
    // Capped at the transport maximum.
    assert_eq!(c.version(1 << 24).unwrap(), 128 * 1024);
    assert_eq!(c.version(8192).unwrap(), 8192);
    // Unknown version.
    let r = c
        .call(&Tmsg::Version {
            msize: 8192,
            version: b"9P2000",
        })
        .unwrap();
    assert_eq!(
        r.msg(),
        Rmsg::Version {
            msize: 8192,
            version: b"unknown"
        }
    );
    // A new Tversion resets the session: old fids are gone.
    c.version(8192).unwrap();
    c.attach(0, "", 0).unwrap();
    c.version(8192).unwrap();
    assert_eq!(c.getattr(0), Err(EBADF));
}

#[test]
fn auth_and_attach() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = Client::connect(&ts.addr);
    c.version(8192).unwrap();
    let e = c
        .call(&Tmsg::Auth {
            afid: 5,
            uname: b"u",
            aname: b"",
            n_uname: 0,
        })
        .unwrap_err();
    assert_eq!(e, ENOENT, "no authentication required");
    // afid other than NOFID is refused (no authentication).
    let e = c
        .call(&Tmsg::Attach {
            fid: 1,
            afid: 5,
            uname: b"",
            aname: b"",
            n_uname: 0,
        })
        .unwrap_err();
    assert_eq!(e, EINVAL);
    let q = c.attach(1, "/", 0).unwrap();
    assert_eq!(q.ty, qid_type::DIR);
    // fid in use.
    assert_eq!(c.attach(1, "/", 0), Err(EBADF));
    // aname selects a path inside the export.
    c.mkdir(1, "sub", 0o755, 0).unwrap();
    let q2 = c.attach(2, "/sub", 0).unwrap();
    assert_ne!(q2.path, q.path);
    assert_eq!(c.attach(3, "/nope", 0), Err(ENOENT));
    // ".." in aname does not escape.
    assert_eq!(c.attach(4, "/../../..", 0).unwrap().path, q.path);
}

#[test]
fn walk_semantics() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    let root = c.getattr(0).unwrap().qid;
    c.mkdir(0, "a", 0o755, 0).unwrap();
    c.walk(0, 1, &["a"]).unwrap();
    c.mkdir(1, "b", 0o755, 0).unwrap();
    c.clunk(1).unwrap();
    // Clone with zero names.
    assert_eq!(c.walk(0, 1, &[]).unwrap(), vec![]);
    assert_eq!(c.getattr(1).unwrap().qid.path, root.path);
    // newfid in use.
    assert_eq!(c.walk(0, 1, &["a"]), Err(EBADF));
    c.clunk(1).unwrap();
    // Full walk.
    let q = c.walk(0, 1, &["a", "b"]).unwrap();
    assert_eq!(q.len(), 2);
    assert!(q.iter().all(|q| q.ty == qid_type::DIR));
    // Walking fid onto itself.
    c.walk(1, 1, &[".."]).unwrap();
    assert_eq!(c.getattr(1).unwrap().qid, q[0]);
    c.clunk(1).unwrap();
    // Partial walk: fewer qids, newfid not created.
    let q = c.walk(0, 2, &["a", "missing", "b"]).unwrap();
    assert_eq!(q.len(), 1);
    assert_eq!(c.getattr(2), Err(EBADF));
    // First element fails: error.
    assert_eq!(c.walk(0, 2, &["missing"]), Err(ENOENT));
    // Past the root: ".." at the export root stays there.
    let root = c.getattr(0).unwrap().qid;
    let q = c.walk(0, 2, &["..", "..", "a", "..", ".."]).unwrap();
    assert_eq!(q.len(), 5);
    assert_eq!(q[0], root);
    assert_eq!(q[4], root);
    assert_eq!(c.getattr(2).unwrap().qid, root);
    c.clunk(2).unwrap();
    // More than 16 names.
    let many = vec!["a"; 17];
    assert!(c.walk(0, 2, &many).is_err());
    // Bad fid, and names with '/'.
    assert_eq!(c.walk(77, 2, &["a"]), Err(EBADF));
    assert_eq!(c.walk(0, 2, &["a/b"]), Err(EINVAL));
    // Walking through a file.
    put(&mut c, "f", b"x");
    assert_eq!(c.walk(0, 2, &["f", "x"]).unwrap().len(), 1);
    c.walk(0, 2, &["f"]).unwrap();
    assert_eq!(c.walk(2, 3, &["x"]), Err(ENOTDIR));
}

#[test]
fn symlinks_never_followed() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    c.mkdir(0, "d", 0o755, 0).unwrap();
    let q = c.symlink(0, "up", "/", 0).unwrap();
    assert_eq!(q.ty, qid_type::SYMLINK);
    c.symlink(0, "dl", "d", 0).unwrap();
    c.walk(0, 1, &["up"]).unwrap();
    assert_eq!(c.readlink(1).unwrap(), b"/");
    assert_eq!(c.getattr(1).unwrap().mode & 0o170000, 0o120000);
    // Walking through a symlink fails rather than following it.
    assert_eq!(c.walk(0, 2, &["dl", "x"]).unwrap().len(), 1);
    assert_eq!(c.walk(1, 2, &["x"]), Err(ENOTDIR));
    assert_eq!(c.attach(5, "/dl", 0), Err(ENOTDIR));
    assert_eq!(c.lopen(1, o::RDONLY), Err(40));
}

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
fn directory_ops() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    let d = c.mkdir(0, "d", 0o750, 0).unwrap();
    assert_eq!(d.ty, qid_type::DIR);
    assert_eq!(c.mkdir(0, "d", 0o750, 0), Err(EEXIST));
    assert_eq!(c.mkdir(0, "..", 0o750, 0), Err(EINVAL));
    c.walk(0, 1, &["d"]).unwrap();
    put(&mut c, "f", b"abc");
    // link
    c.walk(0, 2, &["f"]).unwrap();
    c.link(1, 2, "hard").unwrap();
    assert_eq!(c.getattr(2).unwrap().nlink, 2);
    assert_eq!(c.link(1, 1, "dirlink"), Err(1), "hard link to a directory");
    // mknod
    let q = c.mknod(1, "null", 0o020666, 1, 3).unwrap();
    c.walk(1, 3, &["null"]).unwrap();
    let g = c.getattr(3).unwrap();
    assert_eq!(g.qid, q);
    assert_eq!(g.mode, 0o020666);
    assert_eq!(g.rdev, (1 << 8) | 3);
    c.clunk(3).unwrap();
    // renameat
    c.renameat(1, "hard", 0, "moved").unwrap();
    c.walk(0, 3, &["moved"]).unwrap();
    assert_eq!(
        c.getattr(3).unwrap().qid.path,
        c.getattr(2).unwrap().qid.path
    );
    c.clunk(3).unwrap();
    assert_eq!(c.renameat(1, "hard", 0, "x"), Err(ENOENT));
    // rename (by fid)
    c.rename(2, 1, "f2").unwrap();
    assert_eq!(c.walk(0, 3, &["f"]), Err(ENOENT));
    c.walk(1, 3, &["f2"]).unwrap();
    c.clunk(3).unwrap();
    // rename of the root fid has no parent.
    assert!(c.rename(0, 1, "root").is_err());
    // unlinkat
    assert_eq!(c.unlinkat(0, "d", 0), Err(EISDIR));
    assert_eq!(c.unlinkat(0, "d", 0x200), Err(ENOTEMPTY));
    assert_eq!(c.unlinkat(0, "moved", 0x200), Err(ENOTDIR));
    c.unlinkat(0, "moved", 0).unwrap();
    assert_eq!(c.unlinkat(0, "moved", 0), Err(ENOENT));
    // remove clunks the fid.
    c.remove(2).unwrap();
    assert_eq!(c.getattr(2), Err(EBADF));
    // Tremove through a fid whose name now belongs to another file removes nothing.
    put(&mut c, "victim", b"1");
    c.walk(0, 2, &["victim"]).unwrap();
    c.renameat(0, "victim", 0, "moved-away").unwrap();
    put(&mut c, "victim", b"2");
    assert_eq!(c.remove(2), Err(ENOENT));
    assert_eq!(c.getattr(2), Err(EBADF), "clunked even on failure");
    c.walk(0, 2, &["victim"]).unwrap();
    c.clunk(2).unwrap();
    c.unlinkat(0, "victim", 0).unwrap();
    c.unlinkat(0, "moved-away", 0).unwrap();
    c.unlinkat(1, "null", 0).unwrap();
    c.clunk(1).unwrap();
    c.unlinkat(0, "d", 0x200).unwrap();
    // statfs
    let s = c.statfs(0).unwrap();
    assert_eq!(s.bsize, 4096);
    assert_eq!(s.namelen, 255);
    assert!(s.bfree <= s.blocks);
    assert_eq!(c.statfs(42), Err(EBADF));
}

#[test]
fn readdir_offsets_survive_changes() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = Client::mount(&ts.addr, 4096, "/");
    for i in 0..50 {
        put(&mut c, &format!("file{i:02}"), b"");
    }
    c.walk(0, 1, &[]).unwrap();
    assert_eq!(
        c.readdir(1, 0, 4096),
        Err(EBADF),
        "readdir needs an open fid"
    );
    c.lopen(1, o::RDONLY | o::DIRECTORY).unwrap();
    let first = c.readdir(1, 0, 200).unwrap();
    assert!(!first.is_empty() && first.len() < 52);
    assert_eq!(first[0].name, b".");
    assert_eq!(first[1].name, b"..");
    assert_eq!(
        first[1].qid, first[0].qid,
        "'..' at the export root is the root"
    );
    // Change the directory between calls: delete a listed and an unlisted entry, add one.
    let last = first.last().unwrap().clone();
    c.unlinkat(0, std::str::from_utf8(&first[2].name).unwrap(), 0)
        .unwrap();
    c.unlinkat(0, "file49", 0).unwrap();
    put(&mut c, "zzz", b"");
    let mut names: Vec<Vec<u8>> = first.iter().map(|e| e.name.clone()).collect();
    let mut off = last.offset;
    loop {
        let v = c.readdir(1, off, 300).unwrap();
        let Some(l) = v.last() else { break };
        off = l.offset;
        names.extend(v.into_iter().map(|e| e.name));
    }
    let mut expect: Vec<Vec<u8>> = vec![b".".to_vec(), b"..".to_vec()];
    expect.extend((0..49).map(|i| format!("file{i:02}").into_bytes()));
    expect.push(b"zzz".to_vec());
    assert_eq!(names, expect, "no entry lost or repeated");
    // Count too small for one entry.
    assert_eq!(c.readdir(1, 0, 10), Err(EINVAL));
    // Readdir on a file fid.
    put(&mut c, "plain", b"");
    c.walk(0, 2, &["plain"]).unwrap();
    c.lopen(2, o::RDONLY).unwrap();
    assert_eq!(c.readdir(2, 0, 4096), Err(ENOTDIR));
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

/// A filesystem whose reads block until released, to hold a request in flight.
struct GateFs {
    inner: MemFs,
    gate: Arc<(Mutex<bool>, Condvar)>,
}

impl Filesystem for GateFs {
    fn root(&self) -> Ino {
        self.inner.root()
    }
    fn lookup(&self, dir: Ino, name: &[u8]) -> FsResult<Attr> {
        self.inner.lookup(dir, name)
    }
    fn getattr(&self, ino: Ino) -> FsResult<Attr> {
        self.inner.getattr(ino)
    }
    fn read(&self, ino: Ino, off: u64, buf: &mut [u8]) -> FsResult<usize> {
        let (m, cv) = &*self.gate;
        let mut open = m.lock().unwrap();
        while !*open {
            open = cv.wait(open).unwrap();
        }
        self.inner.read(ino, off, buf)
    }
    fn readdir(&self, dir: Ino, cookie: u64, f: DirVisitor<'_>) -> FsResult<()> {
        self.inner.readdir(dir, cookie, f)
    }
    fn readlink(&self, ino: Ino) -> FsResult<Vec<u8>> {
        self.inner.readlink(ino)
    }
    fn statfs(&self) -> FsResult<FsStat> {
        self.inner.statfs()
    }
    fn create(&self, dir: Ino, name: &[u8], new: &pvfs_9p::fs::NewInode) -> FsResult<Attr> {
        self.inner.create(dir, name, new)
    }
    fn write(&self, ino: Ino, off: u64, data: &[u8]) -> FsResult<usize> {
        self.inner.write(ino, off, data)
    }
}

#[test]
fn flush_and_out_of_order_completion() {
    let gate = Arc::new((Mutex::new(true), Condvar::new()));
    let fs = GateFs {
        inner: MemFs::new(),
        gate: gate.clone(),
    };
    let ts = TestServer::start(
        Server::new(fs, ExportConfig::default()),
        4,
        ServeOptions::default(),
    );
    let mut c = mount(&ts);
    put(&mut c, "slow", b"payload");
    c.walk(0, 1, &["slow"]).unwrap();
    c.lopen(1, o::RDONLY).unwrap();
    *gate.0.lock().unwrap() = false;
    // A read that blocks in the filesystem.
    c.send(
        100,
        &Tmsg::Read {
            fid: 1,
            offset: 0,
            count: 10,
        },
    );
    // Other requests on the same connection complete meanwhile.
    c.send(
        101,
        &Tmsg::Getattr {
            fid: 1,
            mask: wire::getattr::ALL,
        },
    );
    let r = c.recv().unwrap();
    assert_eq!(r.tag, 101);
    assert!(matches!(r.msg(), Rmsg::Getattr(_)));
    // Flush of an unknown tag is answered at once.
    c.send(102, &Tmsg::Flush { oldtag: 999 });
    let r = c.recv().unwrap();
    assert_eq!((r.tag, r.msg()), (102, Rmsg::Flush));
    // Flush the blocked read: no Rflush until it completes, then no Rread at all.
    c.send(103, &Tmsg::Flush { oldtag: 100 });
    // Messages are submitted in order: once this getattr is answered, the flush is registered
    // (and has no reply yet, because the read is still blocked).
    c.send(
        104,
        &Tmsg::Getattr {
            fid: 1,
            mask: wire::getattr::ALL,
        },
    );
    let r = c.recv().unwrap();
    assert_eq!(r.tag, 104, "no Rflush before the flushed request completes");
    {
        let (m, cv) = &*gate;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    let r = c.recv().unwrap();
    assert_eq!((r.tag, r.msg()), (103, Rmsg::Flush));
    // The next reply on the wire is for the next request, not the flushed Rread.
    let g = c.getattr(1).unwrap();
    assert_eq!(g.size, 7);
    // A second in-flight read that is not flushed completes normally, out of order.
    *gate.0.lock().unwrap() = false;
    c.send(
        200,
        &Tmsg::Read {
            fid: 1,
            offset: 0,
            count: 3,
        },
    );
    c.send(201, &Tmsg::Statfs { fid: 0 });
    assert_eq!(c.recv().unwrap().tag, 201);
    {
        let (m, cv) = &*gate;
        *m.lock().unwrap() = true;
        cv.notify_all();
    }
    let r = c.recv().unwrap();
    assert_eq!((r.tag, r.msg()), (200, Rmsg::Read { data: b"pay" }));
}

#[test]
fn malformed_and_oversized_messages() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = Client::mount(&ts.addr, 8192, "/");
    // Unknown type.
    c.send_raw(&[7, 0, 0, 0, 200, 5, 0]);
    let r = c.recv().unwrap();
    assert_eq!((r.tag, r.errno()), (5, Some(EOPNOTSUPP)));
    // Truncated body (Tgetattr without mask), trailing bytes (Tclunk + 1).
    c.send_raw(&[11, 0, 0, 0, wire::ty::TGETATTR, 6, 0, 0, 0, 0, 0]);
    assert_eq!(c.recv().unwrap().errno(), Some(EBADMSG));
    c.send_raw(&[12, 0, 0, 0, wire::ty::TCLUNK, 6, 0, 0, 0, 0, 0, 9]);
    assert_eq!(c.recv().unwrap().errno(), Some(EBADMSG));
    // An R-message sent as a request.
    c.send_raw(&[7, 0, 0, 0, wire::ty::RCLUNK, 6, 0]);
    assert_eq!(c.recv().unwrap().errno(), Some(EOPNOTSUPP));
    // Twrite whose count claims more than the message holds.
    let mut m = Vec::new();
    Tmsg::Write {
        fid: 0,
        offset: 0,
        data: b"abcd",
    }
    .emit(8, &mut m)
    .unwrap();
    m[22] = 0xff; // high byte of count
    c.send_raw(&m);
    assert_eq!(c.recv().unwrap().errno(), Some(EBADMSG));
    // Still usable.
    c.getattr(0).unwrap();
    // A message larger than msize ends the connection.
    let big = vec![0u8; 9000];
    let mut m = Vec::new();
    Tmsg::Write {
        fid: 0,
        offset: 0,
        data: &big,
    }
    .emit(9, &mut m)
    .unwrap();
    c.send_raw(&m);
    assert!(c.recv().is_err(), "connection closed");
    // A size field below the header size also ends it.
    let mut c = Client::mount(&ts.addr, 8192, "/");
    c.send_raw(&[3, 0, 0, 0]);
    assert!(c.recv().is_err());
}

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

#[test]
fn fid_limit() {
    let ts = memfs_server(ExportConfig {
        max_fids: 4,
        ..Default::default()
    });
    let mut c = mount(&ts);
    for f in 1..4 {
        c.walk(0, f, &[]).unwrap();
    }
    assert_eq!(c.walk(0, 4, &[]), Err(EMFILE));
    c.clunk(3).unwrap();
    c.walk(0, 4, &[]).unwrap();
}

#[test]
fn pipelined_requests_complete_by_tag() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = mount(&ts);
    let data: Vec<u8> = (0..64 * 1024u32).map(|i| (i / 1024) as u8).collect();
    put(&mut c, "p", &data);
    c.walk(0, 1, &["p"]).unwrap();
    c.lopen(1, o::RDONLY).unwrap();
    // 48 requests in flight at once: reads of every 1 KiB chunk, interleaved with getattrs.
    let mut expect = std::collections::BTreeMap::new();
    for i in 0..48u16 {
        let tag = 1000 + i;
        if i % 3 == 2 {
            c.send(
                tag,
                &Tmsg::Getattr {
                    fid: 1,
                    mask: wire::getattr::ALL,
                },
            );
        } else {
            c.send(
                tag,
                &Tmsg::Read {
                    fid: 1,
                    offset: u64::from(i) * 1024,
                    count: 1024,
                },
            );
        }
        expect.insert(tag, i);
    }
    for _ in 0..48 {
        let r = c.recv().unwrap();
        let i = expect
            .remove(&r.tag)
            .expect("a reply for a tag in flight, once");
        match r.msg() {
            Rmsg::Read { data: d } => assert_eq!(d, &data[i as usize * 1024..][..1024]),
            Rmsg::Getattr(g) => assert_eq!(g.size, data.len() as u64),
            m => panic!("unexpected {m:?}"),
        }
    }
    assert!(expect.is_empty());
    // Many connections at once, each writing and reading its own file.
    let addr = ts.addr.clone();
    let threads: Vec<_> = (0..8)
        .map(|k| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut c = Client::mount(&addr, 16384, "/");
                let name = format!("conn{k}");
                c.walk(0, 1, &[]).unwrap();
                c.lcreate(1, &name, o::RDWR, 0o644, 0).unwrap();
                let body: Vec<u8> = (0..50_000u32).map(|i| (i as u8) ^ k).collect();
                for (j, chunk) in body.chunks(7000).enumerate() {
                    c.write(1, (j * 7000) as u64, chunk).unwrap();
                }
                assert_eq!(c.read_all(1, 3000).unwrap(), body);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    c.walk(0, 2, &[]).unwrap();
    c.lopen(2, o::RDONLY).unwrap();
    let n = c
        .readdir_all(2)
        .unwrap()
        .iter()
        .filter(|e| e.name.starts_with(b"conn"))
        .count();
    assert_eq!(n, 8);
}

#[test]
fn readdir_reply_capped_by_msize() {
    let ts = memfs_server(ExportConfig::default());
    let mut c = Client::mount(&ts.addr, 4096, "/");
    for i in 0..300 {
        put(&mut c, &format!("a-rather-long-file-name-{i:04}"), b"");
    }
    c.walk(0, 1, &[]).unwrap();
    c.lopen(1, o::RDONLY).unwrap();
    let r = c
        .call(&Tmsg::Readdir {
            fid: 1,
            offset: 0,
            count: 1 << 30,
        })
        .unwrap();
    assert!(r.buf.len() <= 4096);
    let Rmsg::Readdir { data } = r.msg() else {
        panic!()
    };
    assert!(
        data.len() <= 4096 - 11 && data.len() > 4096 - 11 - 60,
        "filled up to the cap"
    );
    assert_eq!(c.readdir_all(1).unwrap().len(), 302);
}
