//! 9P2000.L conformance of request handling: Tflush and out-of-order replies, pipelined tags,
//! malformed and oversized messages, and the fid limit.
#![allow(clippy::unwrap_used, reason = "tests")]

use pvfs_9p::fs::{Attr, DirVisitor, FsResult, FsStat, Ino};
use pvfs_9p::host::ServeOptions;
use pvfs_9p::memfs::MemFs;
use pvfs_9p::server::{ExportConfig, Server};
use pvfs_9p::wire::{self, Rmsg, Tmsg};
use pvfs_9p::Filesystem;
use pvfs_tests::p9client::errno::{EBADMSG, EMFILE, EOPNOTSUPP};
use pvfs_tests::p9client::{o, Client, TestServer};
use pvfs_tests::p9memfs::{memfs_server, mount, put};
use std::sync::{Arc, Condvar, Mutex};

/// A filesystem whose reads block until released, to hold a request in flight; `entered`
/// counts the reads that have reached it.
struct GateFs {
    inner: MemFs,
    gate: Arc<(Mutex<bool>, Condvar)>,
    entered: Arc<(Mutex<usize>, Condvar)>,
}

/// Waits until `n` reads have reached the filesystem (at most 10 s).
fn wait_entered(entered: &(Mutex<usize>, Condvar), n: usize) {
    let (m, cv) = entered;
    let (got, _) = cv
        .wait_timeout_while(m.lock().unwrap(), std::time::Duration::from_secs(10), |k| {
            *k < n
        })
        .unwrap();
    assert!(*got >= n, "the read never reached the filesystem");
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
        {
            let (m, cv) = &*self.entered;
            *m.lock().unwrap() += 1;
            cv.notify_all();
        }
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
    let entered = Arc::new((Mutex::new(0usize), Condvar::new()));
    let fs = GateFs {
        inner: MemFs::new(),
        gate: gate.clone(),
        entered: entered.clone(),
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
    // Flush the blocked read: no Rflush until it completes, then no Rread at all. (Only once
    // the read is inside the filesystem: a read still queued may be cancelled at once.)
    wait_entered(&entered, 1);
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
