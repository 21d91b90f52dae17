//! The ext4 adapter behind the 9P server, in-process over loopback: walk, getattr, read,
//! readdir, readlink, xattrs, statfs and qids against an image made by `mkfs.ext4 -d` from a
//! known tree; every modification is refused with EROFS. The write path, cold reads put
//! aside, early writes, and a volume growing with its device (`Filesystem::grow`: statfs
//! follows at once, a share's space quota stays its size).
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::ext4::Ext4Fs;
use pvfs_9p::host::ServeOptions;
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::wire::{qid_type, setattr as sa, SetattrReq};
use pvfs_9p::Filesystem;
use pvfs_tests::p9client::{o, require_tool, temp_dir, Client, TestServer};
use pvfs_tests::wimg::mkfs_sized;
use std::os::unix::fs::MetadataExt;
use std::process::Command;

const EROFS: u32 = 30;

fn image() -> (std::path::PathBuf, std::path::PathBuf) {
    require_tool("mkfs.ext4");
    require_tool("setfattr");
    let dir = temp_dir("p9-ext4");
    let src = dir.join("src");
    std::fs::create_dir_all(src.join("d/e")).unwrap();
    std::fs::write(src.join("d/e/f.txt"), b"inside e\n").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(src.join("big"), &big).unwrap();
    std::os::unix::fs::symlink("d/e/f.txt", src.join("sl")).unwrap();
    let st = Command::new("setfattr")
        .args(["-n", "user.color", "-v", "blue"])
        .arg(src.join("big"))
        .status()
        .unwrap();
    assert!(st.success(), "setfattr");
    let img = dir.join("img.ext4");
    mkfs_sized(&img, "8M", &["-d", src.to_str().unwrap()]);
    (src, img)
}

#[test]
fn ext4_export_read_path() {
    let (src, img) = image();
    let fs = Ext4Fs::new(pvfs_fs::host::open_image(&img).unwrap());
    // Not flagged read-only: the adapter itself must refuse writes.
    let ts = TestServer::start(
        Server::new(fs, ExportConfig::default()),
        2,
        ServeOptions::default(),
    );
    let mut c = Client::mount(&ts.addr, 65536, "/");

    // getattr of a file matches the source tree.
    let q = c.walk(0, 1, &["big"]).unwrap()[0];
    let g = c.getattr(1).unwrap();
    let md = std::fs::metadata(src.join("big")).unwrap();
    assert_eq!(g.size, md.len());
    assert_eq!(g.mode & 0o7777, md.mode() & 0o7777);
    assert_eq!(g.mode & 0o170000, 0o100000);
    assert_eq!(g.mtime_sec, md.mtime() as u64);
    assert_eq!(g.qid, q);
    assert_eq!(q.path & 0xffff_ffff, g.qid.path & 0xffff_ffff);
    assert_eq!(q.path >> 32, g.gen, "qid.path carries the generation");
    // Read the whole file.
    c.lopen(1, o::RDONLY).unwrap();
    assert_eq!(
        c.read_all(1, 8192).unwrap(),
        std::fs::read(src.join("big")).unwrap()
    );
    // xattrs.
    let n = c.xattrwalk(1, 2, "user.color").unwrap();
    assert_eq!(n, 4);
    assert_eq!(c.read(2, 0, 100).unwrap(), b"blue");
    c.clunk(2).unwrap();
    c.xattrwalk(1, 2, "").unwrap();
    let list = c.read(2, 0, 1000).unwrap();
    assert!(
        list.split(|&b| b == 0).any(|n| n == b"user.color"),
        "{list:?}"
    );
    c.clunk(2).unwrap();
    assert_eq!(c.xattrwalk(1, 2, "user.none"), Err(61));
    assert_eq!(c.xattrcreate(1, "user.x", 1, 0), Err(9), "open fid");

    // Symlink: not followed; readlink gives the target.
    let q = c.walk(0, 3, &["sl"]).unwrap();
    assert_eq!(q[0].ty, qid_type::SYMLINK);
    assert_eq!(c.readlink(3).unwrap(), b"d/e/f.txt");
    assert_eq!(c.walk(3, 4, &["x"]), Err(20));

    // Readdir of a subdirectory, and ".." out of the export root stays at the root.
    c.walk(0, 5, &["d", "e"]).unwrap();
    c.lopen(5, o::RDONLY).unwrap();
    let mut names = c.readdir_names(5).unwrap();
    names.sort();
    assert_eq!(names, [b".".to_vec(), b"..".to_vec(), b"f.txt".to_vec()]);
    let root = c.getattr(0).unwrap().qid;
    let q = c.walk(0, 6, &["..", "..", "d", "..", ".."]).unwrap();
    assert_eq!(q[4], root);
    c.lopen(6, o::RDONLY).unwrap();
    let top = c.readdir_all(6).unwrap();
    let dotdot = top.iter().find(|e| e.name == b"..").unwrap();
    assert_eq!(
        dotdot.qid.path, root.path,
        "'..' of the export root is the root"
    );
    let mut top: Vec<Vec<u8>> = top.into_iter().map(|e| e.name).collect();
    top.sort();
    assert_eq!(
        top,
        [&b"."[..], b"..", b"big", b"d", b"lost+found", b"sl"].map(|s| s.to_vec())
    );

    // statfs is ext4's.
    let s = c.statfs(0).unwrap();
    assert_eq!(s.ty, 0xEF53);
    assert!(s.blocks > 0 && s.files > 0);

    // Every modification: EROFS.
    c.walk(0, 7, &[]).unwrap();
    assert_eq!(c.lcreate(7, "n", o::RDWR, 0o644, 0), Err(EROFS));
    assert_eq!(c.mkdir(0, "n", 0o755, 0), Err(EROFS));
    assert_eq!(c.symlink(0, "n", "t", 0), Err(EROFS));
    assert_eq!(c.unlinkat(0, "big", 0), Err(EROFS));
    assert_eq!(c.renameat(0, "big", 0, "b2"), Err(EROFS));
    assert_eq!(c.link(0, 1, "h"), Err(EROFS));
    assert_eq!(c.mknod(0, "p", 0o010644, 0, 0), Err(EROFS));
    c.walk(0, 8, &["big"]).unwrap();
    assert_eq!(
        c.setattr(
            8,
            SetattrReq {
                valid: sa::MODE,
                mode: 0o600,
                ..Default::default()
            }
        ),
        Err(EROFS)
    );
    c.lopen(8, o::RDWR).unwrap();
    assert_eq!(c.write(8, 0, b"x"), Err(EROFS));
    c.clunk(8).unwrap();
    c.walk(0, 8, &["big"]).unwrap();
    c.xattrcreate(8, "user.color", 3, 0).unwrap();
    c.write(8, 0, b"red").unwrap();
    assert_eq!(c.clunk(8), Err(EROFS), "commit at clunk refused");
    // Nothing changed.
    c.xattrwalk(1, 2, "user.color").unwrap();
    assert_eq!(c.read(2, 0, 100).unwrap(), b"blue");
}

#[test]
fn ext4_export_subtree() {
    let (_src, img) = image();
    let fs = Ext4Fs::new(pvfs_fs::host::open_image(&img).unwrap());
    let root = fs.lookup(2, b"d").unwrap().ino;
    let cfg = ExportConfig {
        root: Some(root),
        read_only: true,
        ..Default::default()
    };
    let ts = TestServer::start(Server::new(fs, cfg), 1, ServeOptions::default());
    let mut c = Client::mount(&ts.addr, 8192, "");
    // The export is /d: "big" is above it and unreachable.
    assert_eq!(c.walk(0, 1, &["..", "big"]).unwrap().len(), 1);
    c.walk(0, 1, &["..", "e", "f.txt"]).unwrap();
    c.lopen(1, o::RDONLY).unwrap();
    assert_eq!(c.read_all(1, 100).unwrap(), b"inside e\n");
    // aname selects inside the export.
    c.attach(2, "/e", 0).unwrap();
    c.walk(2, 3, &["f.txt"]).unwrap();
    assert_eq!(c.attach(4, "/../big", 0), Err(2));
}

/// A read-write engine behind the 9P server: files and directories made, written and removed
/// over 9P land in the image, which is e2fsck-clean after the engine is closed and holds
/// exactly what the client wrote (checked with debugfs).
#[test]
fn ext4_export_write_path() {
    let (_src, img) = image();
    let disk = pvfs_fs::block::FileDisk::open_rw(&img).unwrap();
    let engine = pvfs_fs::ext4::Ext4::open_rw(disk, &Default::default()).unwrap();
    fn clock() -> pvfs_9p::fs::Timespec {
        pvfs_9p::fs::Timespec {
            sec: 1_750_000_000,
            nsec: 42,
        }
    }
    let fs = std::sync::Arc::new(Ext4Fs::new(engine).with_clock(clock));
    let ts = TestServer::start(
        Server::new(fs.clone(), ExportConfig::default()),
        2,
        ServeOptions::default(),
    );
    let mut c = Client::mount(&ts.addr, 65536, "/");
    let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7 % 253) as u8).collect();

    c.mkdir(0, "new", 0o750, 0).unwrap();
    c.walk(0, 1, &["new"]).unwrap();
    c.lcreate(1, "f", o::RDWR, 0o640, 0).unwrap();
    let mut off = 0;
    for chunk in data.chunks(60_000) {
        assert_eq!(c.write(1, off, chunk).unwrap() as usize, chunk.len());
        off += chunk.len() as u64;
    }
    c.fsync(1).unwrap();
    assert_eq!(c.read_all(1, 8192).unwrap(), data);
    let g = c.getattr(1).unwrap();
    assert_eq!(g.size, data.len() as u64);
    assert_eq!(g.mode, 0o100640);
    assert_eq!(
        g.mtime_sec, 1_750_000_000,
        "stamped with the adapter's clock"
    );
    c.clunk(1).unwrap();
    // Create and remove: a file and a directory.
    c.walk(0, 2, &[]).unwrap();
    c.lcreate(2, "gone", o::RDWR, 0o600, 0).unwrap();
    c.clunk(2).unwrap();
    c.unlinkat(0, "gone", 0).unwrap();
    c.mkdir(0, "d2", 0o700, 0).unwrap();
    assert_eq!(
        c.unlinkat(0, "d", 0x200),
        Err(39),
        "rmdir of a non-empty dir"
    );
    c.unlinkat(0, "d2", 0x200).unwrap();
    assert_eq!(c.mkdir(0, "new", 0o700, 0), Err(17));
    // Special files, links, attributes.
    c.mknod(0, "fifo", 0o010644, 0, 0).unwrap();
    c.symlink(0, "sl2", "new/f", 0).unwrap();
    c.walk(0, 3, &["new", "f"]).unwrap();
    c.link(0, 3, "hard").unwrap();
    assert_eq!(c.getattr(3).unwrap().nlink, 2);
    c.setattr(
        3,
        SetattrReq {
            valid: sa::MODE | sa::UID | sa::GID | sa::MTIME | sa::MTIME_SET,
            mode: 0o604,
            uid: 1234,
            gid: 5678,
            mtime_sec: 1_600_000_000,
            mtime_nsec: 5,
            ..Default::default()
        },
    )
    .unwrap();
    let g = c.getattr(3).unwrap();
    assert_eq!(
        (g.mode, g.uid, g.gid, g.mtime_sec),
        (0o100604, 1234, 5678, 1_600_000_000)
    );
    // An xattr set over 9P (committed at clunk), replaced, refused with XATTR_CREATE.
    for (v, flags) in [("first", 0), ("second", 2)] {
        c.walk(3, 4, &[]).unwrap();
        c.xattrcreate(4, "user.k", v.len() as u64, flags).unwrap();
        c.write(4, 0, v.as_bytes()).unwrap();
        c.clunk(4).unwrap();
    }
    c.walk(3, 4, &[]).unwrap();
    c.xattrcreate(4, "user.k", 1, 1).unwrap();
    c.write(4, 0, b"x").unwrap();
    assert_eq!(c.clunk(4), Err(17), "XATTR_CREATE on an existing name");
    let n = c.xattrwalk(3, 5, "user.k").unwrap();
    assert_eq!(c.read(5, 0, n as u32).unwrap(), b"second");
    c.clunk(5).unwrap();
    // Rename: over an existing file, and a directory into another one.
    c.walk(0, 6, &[]).unwrap();
    c.lcreate(6, "victim", o::RDWR, 0o600, 0).unwrap();
    c.clunk(6).unwrap();
    c.renameat(0, "sl2", 0, "victim").unwrap();
    c.mkdir(0, "moved", 0o755, 0).unwrap();
    c.walk(0, 6, &["new"]).unwrap();
    c.renameat(0, "moved", 6, "inner").unwrap();
    assert_eq!(
        c.renameat(0, "new", 6, "loop"),
        Err(22),
        "into its own subtree"
    );
    // Truncate through setattr, and an open file unlinked: still readable until clunked.
    c.walk(0, 7, &[]).unwrap();
    c.lcreate(7, "tmp", o::RDWR, 0o600, 0).unwrap();
    c.write(7, 0, &data[..50_000]).unwrap();
    c.setattr(
        7,
        SetattrReq {
            valid: sa::SIZE,
            size: 1000,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(c.getattr(7).unwrap().size, 1000);
    c.unlinkat(0, "tmp", 0).unwrap();
    assert_eq!(c.read_all(7, 4096).unwrap(), &data[..1000]);
    c.write(7, 1000, b"more").unwrap();
    assert_eq!(c.getattr(7).unwrap().size, 1004);
    let free_open = c.statfs(0).unwrap().ffree;
    c.clunk(7).unwrap();
    assert_eq!(
        c.statfs(0).unwrap().ffree,
        free_open + 1,
        "freed at the last clunk"
    );
    drop(c);
    drop(ts);

    fs.close().expect("still mounted").unwrap();
    assert!(fs.close().is_none(), "closed once");
    assert_eq!(fs.getattr(2).unwrap_err().0, 5, "EIO after close");
    pvfs_tests::wimg::e2fsck_clean(&img);
    assert_eq!(pvfs_tests::wimg::debugfs(&img, "cat /new/f"), data);
    assert_eq!(pvfs_tests::wimg::debugfs(&img, "cat /hard"), data);
    let st = String::from_utf8(pvfs_tests::wimg::debugfs(&img, "stat /new/f")).unwrap();
    assert!(
        st.contains("Mode:  0604") && st.contains("User:  1234") && st.contains("Group:  5678"),
        "{st}"
    );
    assert!(st.contains("Links: 2"), "{st}");
    let ea = String::from_utf8(pvfs_tests::wimg::debugfs(&img, "ea_get /new/f user.k")).unwrap();
    assert!(ea.contains("second"), "{ea}");
    let st = String::from_utf8(pvfs_tests::wimg::debugfs(&img, "stat /victim")).unwrap();
    assert!(st.contains("Fast link dest: \"new/f\""), "{st}");
    let st = String::from_utf8(pvfs_tests::wimg::debugfs(&img, "stat /fifo")).unwrap();
    assert!(st.contains("Type: FIFO"), "{st}");
    let ls = String::from_utf8(pvfs_tests::wimg::debugfs(&img, "ls /new")).unwrap();
    assert!(ls.contains("inner") && ls.contains("f"), "{ls}");
    let ls = String::from_utf8(pvfs_tests::wimg::debugfs(&img, "ls /")).unwrap();
    assert!(
        ls.contains("new") && !ls.contains("gone") && !ls.contains("d2") && !ls.contains("sl2"),
        "{ls}"
    );
}

fn msg(tag: u16, m: &pvfs_9p::wire::Tmsg<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    m.emit(tag, &mut out).unwrap();
    out
}

/// A connection to `fs` driven through a per-channel queue, as the 9pfs backend drives it:
/// Tversion (`msize`), Tattach of fid 0, then `then` in order, each of which must succeed.
#[allow(clippy::type_complexity, reason = "test helper")]
fn queued_session<D: pvfs_fs::block::BlockDevice + Send + 'static>(
    fs: &std::sync::Arc<Ext4Fs<D>>,
    msize: u32,
    then: &[pvfs_9p::wire::Tmsg<'_>],
) -> (
    Server<std::sync::Arc<Ext4Fs<D>>>,
    pvfs_9p::Connection<std::sync::Arc<Ext4Fs<D>>>,
    pvfs_9p::sched::Queue,
) {
    use pvfs_9p::sched::{Queue, Step};
    use pvfs_9p::wire::{ty, Tmsg};
    let server = Server::new(fs.clone(), ExportConfig::default());
    let c = server.connect();
    let mut q = Queue::new(64, 1 << 20);
    let mut out = Vec::new();
    let start = [
        Tmsg::Version {
            msize,
            version: b"9P2000.L",
        },
        Tmsg::Attach {
            fid: 0,
            afid: u32::MAX,
            uname: b"",
            aname: b"",
            n_uname: 0,
        },
    ];
    for (t, m) in start.iter().chain(then).enumerate() {
        q.accept(&c, msg(t as u16 + 1, m), &mut out);
        while matches!(q.step(&c, 0, true, &mut out), Step::Ran { .. }) {}
    }
    assert!(out.iter().all(|r| r[4] != ty::RLERROR), "setup failed");
    (server, c, q)
}

/// The whole path of a read whose data is on the disk: the ext4 adapter says it would wait and
/// starts fetching (posted reads on a queued device), the per-channel queue puts it aside and
/// runs the next request, and once the disk has completed, the read answers with the file's
/// data from memory, without a synchronous disk read.
#[test]
fn a_cold_read_is_put_aside_while_the_disk_fetches_and_other_requests_run() {
    use pvfs_9p::sched::Step;
    use pvfs_9p::wire::{ty, Frame, Rmsg, Tmsg};
    use pvfs_fs::block::{BlockDevice, MemDisk, QueueDisk};

    let (src, img) = image();
    let disk = QueueDisk::new(MemDisk::new(std::fs::read(&img).unwrap()), 16);
    let engine = pvfs_fs::ext4::Ext4::open(disk).unwrap();
    let fs = std::sync::Arc::new(Ext4Fs::new(engine));
    let (_server, c, mut q) = queued_session(
        &fs,
        65536,
        &[
            Tmsg::Walk {
                fid: 0,
                newfid: 1,
                names: vec![&b"big"[..]],
            },
            Tmsg::Lopen { fid: 1, flags: 0 },
        ],
    );
    let mut out = Vec::new();

    // 32 KiB from the middle of "big": not cached yet.
    let read = Tmsg::Read {
        fid: 1,
        offset: 131_072,
        count: 32_768,
    };
    q.accept(&c, msg(20, &read), &mut out);
    assert_eq!(q.step(&c, 0, false, &mut out), Step::Deferred);
    let started = fs.with_engine(|e| e.device_mut().reads_started).unwrap();
    assert!(started > 0, "the adapter started reading the data");
    // Another request runs while the disk works.
    let walk = Tmsg::Walk {
        fid: 0,
        newfid: 2,
        names: vec![&b"sl"[..]],
    };
    q.accept(&c, msg(21, &walk), &mut out);
    assert!(matches!(
        q.step(&c, 0, false, &mut out),
        Step::Ran { ty: ty::TWALK, .. }
    ));
    assert_eq!(
        q.step(&c, 0, false, &mut out),
        Step::Idle,
        "the read waits for the disk"
    );
    let misses = fs.with_engine(|e| e.cache().stats().misses).unwrap();
    // The disk completes (the walk's own disk reads may already have waited for the posted
    // reads ahead of them); the read runs, as the 9pfs backend decides it: progress or idle.
    let (moved, idle) = fs
        .with_engine(|e| {
            let moved = e.device_mut().reap();
            (moved, e.device_mut().posted() == 0)
        })
        .unwrap();
    assert!(moved || idle, "nothing left in flight");
    assert!(matches!(
        q.step(&c, u64::from(moved), idle, &mut out),
        Step::Ran { ty: ty::TREAD, .. }
    ));
    let tags: Vec<u16> = out
        .iter()
        .map(|r| u16::from_le_bytes([r[5], r[6]]))
        .collect();
    assert_eq!(tags, vec![21, 20], "the walk was answered first");
    let f = Frame::new_checked(&out[1][..]).unwrap();
    let want = std::fs::read(src.join("big")).unwrap();
    match Rmsg::parse(&f).unwrap() {
        Rmsg::Read { data } => assert!(data == &want[131_072..131_072 + 32_768], "contents"),
        other => panic!("{other:?}"),
    }
    let after = fs.with_engine(|e| e.cache().stats().misses).unwrap();
    assert_eq!(
        after, misses,
        "the data came from the posted reads, not a synchronous read"
    );
}

/// Writes answered before they run, over the real engine: the per-channel queue answers each
/// `Twrite` of a new file (128 KiB requests at offsets that are not block-aligned, as Linux's
/// client sends `dd bs=1M`) with its full count before the engine has it, the transport runs
/// it after the reply, a read sees every byte, `Tfsync` succeeds, and the image the engine
/// leaves passes `e2fsck -fn` with the file's exact contents. A write the engine cannot
/// promise (past the largest file) runs before its reply and fails there.
#[test]
fn writes_answered_before_they_run_reach_the_volume() {
    use pvfs_9p::sched::Step;
    use pvfs_9p::wire::{ty, Frame, Rmsg, Tmsg};
    use pvfs_fs::block::FileDisk;
    use pvfs_tests::wimg::{debugfs, e2fsck_clean};

    let (_src, img) = image();
    let engine = pvfs_fs::ext4::Ext4::open_rw(
        FileDisk::open_rw(&img).unwrap(),
        &pvfs_fs::ext4::Options::default(),
    )
    .unwrap();
    let fs = std::sync::Arc::new(Ext4Fs::new(engine));
    let (server, c, mut q) = queued_session(
        &fs,
        131_072,
        &[
            Tmsg::Walk {
                fid: 0,
                newfid: 1,
                names: vec![],
            },
            Tmsg::Lcreate {
                fid: 1,
                name: b"behind",
                flags: 2,
                mode: 0o644,
                gid: 0,
            },
        ],
    );
    let mut out = Vec::new();

    let data: Vec<u8> = (0..(1u32 << 20) + 192)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    let chunk = 131_072 - 24;
    for (k, part) in data.chunks(chunk).enumerate() {
        let w = Tmsg::Write {
            fid: 1,
            offset: (k * chunk) as u64,
            data: part,
        };
        q.accept(&c, msg(100 + k as u16, &w), &mut out);
        assert!(matches!(
            q.step(&c, 0, true, &mut out),
            Step::Ran { ty: ty::TWRITE, .. }
        ));
        assert!(q.has_write_behind(), "write {k} answered before it ran");
        match Rmsg::parse(&Frame::new_checked(&out[k][..]).unwrap()).unwrap() {
            Rmsg::Write { count } => assert_eq!(count as usize, part.len()),
            other => panic!("{other:?}"),
        }
        assert_eq!(q.finish_write(&c), Some(Ok(part.len())));
    }
    out.clear();
    let read = Tmsg::Read {
        fid: 1,
        offset: 500_000,
        count: 100_000,
    };
    q.accept(&c, msg(200, &read), &mut out);
    while !matches!(q.step(&c, 0, true, &mut out), Step::Idle) {}
    match Rmsg::parse(&Frame::new_checked(&out[0][..]).unwrap()).unwrap() {
        Rmsg::Read { data: got } => assert!(got == &data[500_000..600_000], "read back"),
        other => panic!("{other:?}"),
    }
    let far = Tmsg::Write {
        fid: 1,
        offset: 1 << 45,
        data: b"x",
    };
    q.accept(&c, msg(201, &far), &mut out);
    q.step(&c, 0, true, &mut out);
    assert!(!q.has_write_behind(), "not answered early");
    assert_eq!(out[1][4], ty::RLERROR);
    q.accept(
        &c,
        msg(
            202,
            &Tmsg::Fsync {
                fid: 1,
                datasync: 0,
            },
        ),
        &mut out,
    );
    q.step(&c, 0, true, &mut out);
    assert_eq!(out[2][4], ty::RFSYNC);
    drop(c);
    drop(server);
    fs.close().unwrap().unwrap();
    e2fsck_clean(&img);
    assert!(
        debugfs(&img, "cat /behind") == data,
        "contents on the volume"
    );
}

/// A disk whose capacity can grow while it is mounted, as a Xen backend's `sectors` does:
/// the medium holds `visible` sectors of a larger buffer.
struct GrowingDisk {
    inner: pvfs_fs::block::MemDisk<'static>,
    visible: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl GrowingDisk {
    fn check(&self, lba: u64, len: usize) -> Result<(), pvfs_fs::block::DevError> {
        let sectors = (len / 512) as u64;
        let capacity = pvfs_fs::block::BlockDevice::sector_count(self);
        if lba + sectors > capacity {
            return Err(pvfs_fs::block::DevError::OutOfRange {
                lba,
                sectors,
                capacity,
            });
        }
        Ok(())
    }
}

impl pvfs_fs::block::BlockDevice for GrowingDisk {
    fn sector_size(&self) -> u32 {
        512
    }
    fn sector_count(&self) -> u64 {
        self.visible
            .load(std::sync::atomic::Ordering::Relaxed)
            .min(self.inner.sector_count())
    }
    fn read(&mut self, lba: u64, buf: &mut [u8]) -> Result<(), pvfs_fs::block::DevError> {
        self.check(lba, buf.len())?;
        self.inner.read(lba, buf)
    }
    fn write(&mut self, lba: u64, buf: &[u8], fua: bool) -> Result<(), pvfs_fs::block::DevError> {
        self.check(lba, buf.len())?;
        self.inner.write(lba, buf, fua)
    }
    fn flush(&mut self) -> Result<(), pvfs_fs::block::DevError> {
        self.inner.flush()
    }
}

#[test]
fn ext4_export_grows_with_its_device_and_statfs_follows() {
    use std::sync::atomic::{AtomicU64, Ordering};
    let dir = temp_dir("p9-ext4-grow");
    let img = pvfs_tests::wimg::mkfs(&dir, "img.ext4", 4096, 64, &[]);
    let mut bytes = std::fs::read(&img).unwrap();
    bytes.resize(256 << 20, 0);
    let visible = std::sync::Arc::new(AtomicU64::new((64 << 20) / 512));
    let disk = GrowingDisk {
        inner: pvfs_fs::block::MemDisk::new(bytes),
        visible: visible.clone(),
    };
    let engine = pvfs_fs::ext4::Ext4::open_rw(disk, &Default::default()).unwrap();
    let fs = std::sync::Arc::new(Ext4Fs::new(engine));
    let ts = TestServer::start(
        Server::new(fs.clone(), ExportConfig::default()),
        2,
        ServeOptions::default(),
    );
    // A share with a space quota keeps its quota as its size.
    let mut quota = ExportConfig::default();
    quota.quota.max_bytes = Some(32 << 20);
    let tq = TestServer::start(Server::new(fs.clone(), quota), 1, ServeOptions::default());
    let mut c = Client::mount(&ts.addr, 65536, "/");
    let mut cq = Client::mount(&tq.addr, 65536, "/");
    let before = c.statfs(0).unwrap();
    assert_eq!((before.bsize, before.blocks), (4096, 16384));
    let quota_before = cq.statfs(0).unwrap();
    assert_eq!(quota_before.blocks, 8192);

    // Not past the device, never smaller.
    assert_eq!(fs.grow(256 << 20), Err(pvfs_9p::Errno::EINVAL));
    assert_eq!(fs.grow(32 << 20), Err(pvfs_9p::Errno::EINVAL));
    visible.store((256 << 20) / 512, Ordering::Relaxed);
    assert_eq!(fs.grow(256 << 20), Ok(256 << 20));
    let after = c.statfs(0).unwrap();
    assert_eq!(after.blocks, 65536);
    // Group 0 completed, group 1 added with its superblock and descriptor copies and 7
    // reserved blocks; its bitmaps and inode table went into group 0.
    assert_eq!(after.bfree, before.bfree + 65536 - 16384 - 9 - 2 - 1024);
    assert_eq!(cq.statfs(0).unwrap().blocks, quota_before.blocks);

    // The new space is usable: more than the old volume held.
    c.walk(0, 1, &[]).unwrap();
    c.lcreate(1, "big", o::RDWR, 0o644, 0).unwrap();
    let chunk = vec![0x5au8; 60_000];
    let mut off = 0u64;
    while off < (80 << 20) {
        assert_eq!(c.write(1, off, &chunk).unwrap() as usize, chunk.len());
        off += chunk.len() as u64;
    }
    c.fsync(1).unwrap();
    c.clunk(1).unwrap();
    drop((c, cq, ts, tq));
    let engine = std::sync::Arc::try_unwrap(fs)
        .ok()
        .expect("the servers are gone")
        .into_inner()
        .unwrap();
    let out = engine.close().unwrap().inner.into_vec().unwrap();
    let grown = dir.join("grown.ext4");
    std::fs::write(&grown, out).unwrap();
    pvfs_tests::wimg::e2fsck_clean(&grown);
    // A filesystem that cannot grow while served says so.
    assert_eq!(
        pvfs_9p::memfs::MemFs::new().grow(1 << 30),
        Err(pvfs_9p::Errno::EOPNOTSUPP)
    );
}
