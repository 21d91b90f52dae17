//! A small synchronous 9P2000.L client over a socket, built on `pvfs_9p::wire`, plus helpers
//! to run a server in-process. Protocol errors come back as `Err(errno)`; I/O errors panic
//! (a broken connection fails the test).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helper: a failed unwrap is a failed test"
)]

use pvfs_9p::fs::Filesystem;
use pvfs_9p::host::{self, ListenAddr, Listener, ServeOptions};
use pvfs_9p::server::Server;
use pvfs_9p::wire::{
    DirEntries, Frame, Getattr, LockRepr, Qid, Rmsg, SetattrReq, StatfsRepr, Tmsg, NOFID,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

/// One received message.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The reply's tag.
    pub tag: u16,
    /// The whole message.
    pub buf: Vec<u8>,
}

impl Reply {
    /// Decodes the message (panics on a malformed reply: that is a server bug).
    pub fn msg(&self) -> Rmsg<'_> {
        let f = Frame::new_checked(&self.buf[..]).expect("reply frame");
        Rmsg::parse(&f).expect("reply body")
    }
    /// The errno if this is an Rlerror.
    pub fn errno(&self) -> Option<u32> {
        match self.msg() {
            Rmsg::Lerror { ecode } => Some(ecode),
            _ => None,
        }
    }
}

/// A directory entry from Rreaddir.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dirent {
    /// Qid.
    pub qid: Qid,
    /// Resume cookie.
    pub offset: u64,
    /// DT_* type.
    pub ty: u8,
    /// Name.
    pub name: Vec<u8>,
}

/// The client.
pub struct Client {
    r: Box<dyn Read + Send>,
    w: Box<dyn Write + Send>,
    next_tag: u16,
    /// Negotiated msize.
    pub msize: u32,
}

/// Linux open flags used by tests.
pub mod o {
    /// O_RDONLY.
    pub const RDONLY: u32 = 0;
    /// O_WRONLY.
    pub const WRONLY: u32 = 1;
    /// O_RDWR.
    pub const RDWR: u32 = 2;
    /// O_TRUNC.
    pub const TRUNC: u32 = 0o1000;
    /// O_APPEND.
    pub const APPEND: u32 = 0o2000;
    /// O_DIRECTORY.
    pub const DIRECTORY: u32 = 0o200000;
}

/// Linux errno values, as replies carry them (the client's `Err(errno)`).
pub mod errno {
    /// ENOENT: No such file or directory.
    pub const ENOENT: u32 = 2;
    /// EBADF: Bad file descriptor.
    pub const EBADF: u32 = 9;
    /// EEXIST: File exists.
    pub const EEXIST: u32 = 17;
    /// ENOTDIR: Not a directory.
    pub const ENOTDIR: u32 = 20;
    /// EISDIR: Is a directory.
    pub const EISDIR: u32 = 21;
    /// EINVAL: Invalid argument.
    pub const EINVAL: u32 = 22;
    /// EMFILE: Too many open files.
    pub const EMFILE: u32 = 24;
    /// EROFS: Read-only file system.
    pub const EROFS: u32 = 30;
    /// ENOTEMPTY: Directory not empty.
    pub const ENOTEMPTY: u32 = 39;
    /// EPROTO: Protocol error.
    pub const EPROTO: u32 = 71;
    /// EBADMSG: Bad message.
    pub const EBADMSG: u32 = 74;
    /// EOPNOTSUPP: Operation not supported.
    pub const EOPNOTSUPP: u32 = 95;
    /// EDQUOT: Disk quota exceeded.
    pub const EDQUOT: u32 = 122;
}

impl Client {
    /// Connects to `tcp:HOST:PORT`, `unix:PATH`, or a bare `HOST:PORT`.
    pub fn connect(addr: &str) -> Client {
        if let Some(p) = addr.strip_prefix("unix:") {
            let s = UnixStream::connect(p).expect("connect unix");
            let w = s.try_clone().unwrap();
            return Client::from_parts(Box::new(s), Box::new(w));
        }
        let a = addr.strip_prefix("tcp:").unwrap_or(addr);
        let s = TcpStream::connect(a).expect("connect tcp");
        s.set_nodelay(true).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let w = s.try_clone().unwrap();
        Client::from_parts(Box::new(s), Box::new(w))
    }

    /// Wraps a reader and writer.
    pub fn from_parts(r: Box<dyn Read + Send>, w: Box<dyn Write + Send>) -> Client {
        let r = Box::new(std::io::BufReader::with_capacity(64 << 10, r));
        Client {
            r,
            w,
            next_tag: 1,
            msize: 0,
        }
    }

    /// Connects, negotiates `msize` and attaches fid 0 to `aname` as uid 0.
    pub fn mount(addr: &str, msize: u32, aname: &str) -> Client {
        let mut c = Client::connect(addr);
        c.version(msize).expect("version");
        c.attach(0, aname, 0).expect("attach");
        c
    }

    /// A fresh tag.
    pub fn tag(&mut self) -> u16 {
        let t = self.next_tag;
        self.next_tag = if t >= 0xfff0 { 1 } else { t + 1 };
        t
    }

    /// Sends raw bytes.
    pub fn send_raw(&mut self, b: &[u8]) {
        self.w.write_all(b).expect("send");
    }

    /// Sends `m` with `tag`.
    pub fn send(&mut self, tag: u16, m: &Tmsg<'_>) {
        let mut out = Vec::new();
        m.emit(tag, &mut out).expect("emit");
        self.send_raw(&out);
    }

    /// Receives one message.
    pub fn recv(&mut self) -> std::io::Result<Reply> {
        let mut hdr = [0u8; 4];
        self.r.read_exact(&mut hdr)?;
        let size = u32::from_le_bytes(hdr) as usize;
        assert!((7..=(1 << 24)).contains(&size), "reply size {size}");
        let mut buf = vec![0u8; size];
        buf[..4].copy_from_slice(&hdr);
        self.r.read_exact(&mut buf[4..])?;
        let tag = u16::from_le_bytes([buf[5], buf[6]]);
        Ok(Reply { tag, buf })
    }

    /// Tread into a reusable buffer (no per-call allocation): `buf` receives the whole Rread
    /// message; returns the data range inside it. For benchmarks.
    pub fn read_into(
        &mut self,
        fid: u32,
        offset: u64,
        count: u32,
        buf: &mut Vec<u8>,
    ) -> Result<std::ops::Range<usize>, u32> {
        let tag = self.tag();
        self.send(tag, &Tmsg::Read { fid, offset, count });
        let mut hdr = [0u8; 4];
        self.r.read_exact(&mut hdr).expect("recv");
        let size = u32::from_le_bytes(hdr) as usize;
        assert!((7..=(1 << 24)).contains(&size), "reply size {size}");
        buf.resize(size, 0);
        buf[..4].copy_from_slice(&hdr);
        self.r.read_exact(&mut buf[4..]).expect("recv");
        assert_eq!(u16::from_le_bytes([buf[5], buf[6]]), tag, "reply tag");
        if buf[4] == pvfs_9p::wire::ty::RLERROR {
            return Err(u32::from_le_bytes([buf[7], buf[8], buf[9], buf[10]]));
        }
        assert_eq!(buf[4], pvfs_9p::wire::ty::RREAD);
        let n = u32::from_le_bytes([buf[7], buf[8], buf[9], buf[10]]) as usize;
        assert!(n <= count as usize && 11 + n == size, "Rread count");
        Ok(11..11 + n)
    }

    /// Sends `m` and waits for its reply. `Err(errno)` for Rlerror.
    pub fn call(&mut self, m: &Tmsg<'_>) -> Result<Reply, u32> {
        let tag = if matches!(m, Tmsg::Version { .. }) {
            0xffff
        } else {
            self.tag()
        };
        self.send(tag, m);
        let r = self.recv().expect("recv");
        assert_eq!(r.tag, tag, "reply tag");
        match r.errno() {
            Some(e) => Err(e),
            None => Ok(r),
        }
    }

    /// Tversion; returns the negotiated msize.
    pub fn version(&mut self, msize: u32) -> Result<u32, u32> {
        let r = self.call(&Tmsg::Version {
            msize,
            version: b"9P2000.L",
        })?;
        match r.msg() {
            Rmsg::Version { msize, .. } => {
                self.msize = msize;
                Ok(msize)
            }
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Tattach.
    pub fn attach(&mut self, fid: u32, aname: &str, uid: u32) -> Result<Qid, u32> {
        let r = self.call(&Tmsg::Attach {
            fid,
            afid: NOFID,
            uname: b"",
            aname: aname.as_bytes(),
            n_uname: uid,
        })?;
        match r.msg() {
            Rmsg::Attach { qid } => Ok(qid),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Twalk with `/`-free names.
    pub fn walk(&mut self, fid: u32, newfid: u32, names: &[&str]) -> Result<Vec<Qid>, u32> {
        let names: Vec<&[u8]> = names.iter().map(|n| n.as_bytes()).collect();
        let r = self.call(&Tmsg::Walk { fid, newfid, names })?;
        match r.msg() {
            Rmsg::Walk { qids } => Ok(qids),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Walks a `/`-separated path (any length) from `fid` to `newfid`. Fails unless every
    /// component is found.
    pub fn walk_path(&mut self, fid: u32, newfid: u32, path: &str) -> Result<Qid, u32> {
        let comps: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
        if comps.is_empty() {
            self.walk(fid, newfid, &[])?;
            return self.getattr(newfid).map(|g| g.qid);
        }
        let mut from = fid;
        let mut last = Qid::default();
        for chunk in comps.chunks(16) {
            let q = self.walk(from, newfid, chunk)?;
            if q.len() != chunk.len() {
                if from == newfid {
                    let _ = self.clunk(newfid);
                }
                return Err(2);
            }
            last = *q.last().unwrap();
            from = newfid;
        }
        Ok(last)
    }

    /// Tlopen.
    pub fn lopen(&mut self, fid: u32, flags: u32) -> Result<Qid, u32> {
        match self.call(&Tmsg::Lopen { fid, flags })?.msg() {
            Rmsg::Lopen { qid, .. } => Ok(qid),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Tlcreate.
    // Like `mknod` below, one method per message: the fields are the message's own, spelled
    // out so that each test call reads as the request it sends.
    pub fn lcreate(
        &mut self,
        fid: u32,
        name: &str,
        flags: u32,
        mode: u32,
        gid: u32,
    ) -> Result<Qid, u32> {
        match self
            .call(&Tmsg::Lcreate {
                fid,
                name: name.as_bytes(),
                flags,
                mode,
                gid,
            })?
            .msg()
        {
            Rmsg::Lcreate { qid, .. } => Ok(qid),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Tread.
    pub fn read(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<u8>, u32> {
        match self.call(&Tmsg::Read { fid, offset, count })?.msg() {
            Rmsg::Read { data } => Ok(data.to_vec()),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Reads a whole open file with `chunk`-sized reads.
    pub fn read_all(&mut self, fid: u32, chunk: u32) -> Result<Vec<u8>, u32> {
        let mut out = Vec::new();
        loop {
            let d = self.read(fid, out.len() as u64, chunk)?;
            if d.is_empty() {
                return Ok(out);
            }
            out.extend_from_slice(&d);
        }
    }

    /// Twrite.
    pub fn write(&mut self, fid: u32, offset: u64, data: &[u8]) -> Result<u32, u32> {
        match self.call(&Tmsg::Write { fid, offset, data })?.msg() {
            Rmsg::Write { count } => Ok(count),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Tclunk.
    pub fn clunk(&mut self, fid: u32) -> Result<(), u32> {
        self.call(&Tmsg::Clunk { fid }).map(|_| ())
    }

    /// Tremove.
    pub fn remove(&mut self, fid: u32) -> Result<(), u32> {
        self.call(&Tmsg::Remove { fid }).map(|_| ())
    }

    /// Tgetattr.
    pub fn getattr(&mut self, fid: u32) -> Result<Getattr, u32> {
        match self
            .call(&Tmsg::Getattr {
                fid,
                mask: pvfs_9p::wire::getattr::ALL,
            })?
            .msg()
        {
            Rmsg::Getattr(g) => Ok(g),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Tsetattr.
    pub fn setattr(&mut self, fid: u32, attr: SetattrReq) -> Result<(), u32> {
        self.call(&Tmsg::Setattr { fid, attr }).map(|_| ())
    }

    /// Tstatfs.
    pub fn statfs(&mut self, fid: u32) -> Result<StatfsRepr, u32> {
        match self.call(&Tmsg::Statfs { fid })?.msg() {
            Rmsg::Statfs(s) => Ok(s),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// One Treaddir.
    pub fn readdir(&mut self, fid: u32, offset: u64, count: u32) -> Result<Vec<Dirent>, u32> {
        let r = self.call(&Tmsg::Readdir { fid, offset, count })?;
        match r.msg() {
            Rmsg::Readdir { data } => {
                assert!(data.len() <= count as usize, "Rreaddir larger than count");
                Ok(DirEntries::new(data)
                    .map(|e| {
                        let e = e.expect("dirent");
                        Dirent {
                            qid: e.qid,
                            offset: e.offset,
                            ty: e.ty,
                            name: e.name.to_vec(),
                        }
                    })
                    .collect())
            }
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Lists an open directory fully.
    pub fn readdir_all(&mut self, fid: u32) -> Result<Vec<Dirent>, u32> {
        let mut out: Vec<Dirent> = Vec::new();
        let mut off = 0;
        loop {
            let v = self.readdir(fid, off, 4096)?;
            match v.last() {
                None => return Ok(out),
                Some(l) => off = l.offset,
            }
            out.extend(v);
        }
    }

    /// The names in an open directory, in the server's order (`.` and `..` included).
    pub fn readdir_names(&mut self, fid: u32) -> Result<Vec<Vec<u8>>, u32> {
        Ok(self.readdir_all(fid)?.into_iter().map(|e| e.name).collect())
    }

    /// Tmkdir.
    pub fn mkdir(&mut self, dfid: u32, name: &str, mode: u32, gid: u32) -> Result<Qid, u32> {
        match self
            .call(&Tmsg::Mkdir {
                dfid,
                name: name.as_bytes(),
                mode,
                gid,
            })?
            .msg()
        {
            Rmsg::Mkdir { qid } => Ok(qid),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Tsymlink.
    pub fn symlink(&mut self, fid: u32, name: &str, target: &str, gid: u32) -> Result<Qid, u32> {
        match self
            .call(&Tmsg::Symlink {
                fid,
                name: name.as_bytes(),
                target: target.as_bytes(),
                gid,
            })?
            .msg()
        {
            Rmsg::Symlink { qid } => Ok(qid),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Treadlink.
    pub fn readlink(&mut self, fid: u32) -> Result<Vec<u8>, u32> {
        match self.call(&Tmsg::Readlink { fid })?.msg() {
            Rmsg::Readlink { target } => Ok(target.to_vec()),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Tmknod.
    // Like `lcreate` above, one method per message: the fields are the message's own, spelled
    // out so that each test call reads as the request it sends.
    pub fn mknod(
        &mut self,
        dfid: u32,
        name: &str,
        mode: u32,
        major: u32,
        minor: u32,
    ) -> Result<Qid, u32> {
        match self
            .call(&Tmsg::Mknod {
                dfid,
                name: name.as_bytes(),
                mode,
                major,
                minor,
                gid: 0,
            })?
            .msg()
        {
            Rmsg::Mknod { qid } => Ok(qid),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Tlink.
    pub fn link(&mut self, dfid: u32, fid: u32, name: &str) -> Result<(), u32> {
        self.call(&Tmsg::Link {
            dfid,
            fid,
            name: name.as_bytes(),
        })
        .map(|_| ())
    }

    /// Trename.
    pub fn rename(&mut self, fid: u32, dfid: u32, name: &str) -> Result<(), u32> {
        self.call(&Tmsg::Rename {
            fid,
            dfid,
            name: name.as_bytes(),
        })
        .map(|_| ())
    }

    /// Trenameat.
    pub fn renameat(
        &mut self,
        olddirfid: u32,
        oldname: &str,
        newdirfid: u32,
        newname: &str,
    ) -> Result<(), u32> {
        self.call(&Tmsg::Renameat {
            olddirfid,
            oldname: oldname.as_bytes(),
            newdirfid,
            newname: newname.as_bytes(),
        })
        .map(|_| ())
    }

    /// Tunlinkat.
    pub fn unlinkat(&mut self, dirfid: u32, name: &str, flags: u32) -> Result<(), u32> {
        self.call(&Tmsg::Unlinkat {
            dirfid,
            name: name.as_bytes(),
            flags,
        })
        .map(|_| ())
    }

    /// Tfsync.
    pub fn fsync(&mut self, fid: u32) -> Result<(), u32> {
        self.call(&Tmsg::Fsync { fid, datasync: 0 }).map(|_| ())
    }

    /// Txattrwalk; returns the size.
    pub fn xattrwalk(&mut self, fid: u32, newfid: u32, name: &str) -> Result<u64, u32> {
        match self
            .call(&Tmsg::Xattrwalk {
                fid,
                newfid,
                name: name.as_bytes(),
            })?
            .msg()
        {
            Rmsg::Xattrwalk { size } => Ok(size),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Txattrcreate.
    pub fn xattrcreate(&mut self, fid: u32, name: &str, size: u64, flags: u32) -> Result<(), u32> {
        self.call(&Tmsg::Xattrcreate {
            fid,
            name: name.as_bytes(),
            size,
            flags,
        })
        .map(|_| ())
    }

    /// Tlock; returns the status.
    pub fn lock(
        &mut self,
        fid: u32,
        ty: u8,
        flags: u32,
        start: u64,
        length: u64,
        proc_id: u32,
    ) -> Result<u8, u32> {
        let lock = LockRepr {
            ty,
            start,
            length,
            proc_id,
            client_id: b"test",
        };
        match self.call(&Tmsg::Lock { fid, flags, lock })?.msg() {
            Rmsg::Lock { status } => Ok(status),
            m => panic!("unexpected {m:?}"),
        }
    }

    /// Tgetlock; returns (type, start, length, proc_id).
    pub fn getlock(
        &mut self,
        fid: u32,
        ty: u8,
        start: u64,
        length: u64,
        proc_id: u32,
    ) -> Result<(u8, u64, u64, u32), u32> {
        let lock = LockRepr {
            ty,
            start,
            length,
            proc_id,
            client_id: b"test",
        };
        match self.call(&Tmsg::Getlock { fid, lock })?.msg() {
            Rmsg::Getlock { lock } => Ok((lock.ty, lock.start, lock.length, lock.proc_id)),
            m => panic!("unexpected {m:?}"),
        }
    }
}

/// A server running in-process on a loopback TCP port, with the same transport `pvfs serve`
/// uses. Stops when dropped.
pub struct TestServer<F: Filesystem + 'static> {
    /// `tcp:127.0.0.1:PORT`.
    pub addr: String,
    /// The server (to inspect the filesystem, quota, locks).
    pub server: Server<F>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl<F: Filesystem + 'static> TestServer<F> {
    /// Starts serving `server` with `workers` worker threads.
    pub fn start(server: Server<F>, workers: usize, opts: ServeOptions) -> Self {
        let l = Listener::bind(&ListenAddr::Tcp("127.0.0.1:0".into())).unwrap();
        let addr = l.local_addr();
        let stop = Arc::new(AtomicBool::new(false));
        let (s2, st2) = (server.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            host::serve(s2, l, workers, opts, st2, |m| eprintln!("server: {m}")).unwrap();
        });
        TestServer {
            addr,
            server,
            stop,
            thread: Some(thread),
        }
    }
}

impl<F: Filesystem + 'static> Drop for TestServer<F> {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The `pvfs` binary of this build (`target/<profile>/pvfs`), built (or brought up to date)
/// once per test process with the same cargo, target directory and profile as the test.
pub fn pvfs_bin() -> &'static std::path::Path {
    static BIN: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().unwrap();
        let profile_dir = exe.parent().unwrap().parent().unwrap().to_path_buf(); // target/<profile>
        let target_dir = profile_dir.parent().unwrap().to_path_buf();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = std::process::Command::new(cargo);
        cmd.args(["build", "-q", "-p", "pvfs-cli", "--bin", "pvfs"])
            .env("CARGO_TARGET_DIR", &target_dir)
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let st = cmd.status().expect("run cargo build for the pvfs binary");
        assert!(st.success(), "building pvfs failed");
        let bin = profile_dir.join("pvfs");
        assert!(bin.exists(), "{} missing", bin.display());
        bin
    })
}

/// A free loopback TCP port (bound and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `pvfs serve` process. Killed when dropped.
pub struct ServeProcess {
    /// The child.
    pub child: std::process::Child,
    /// `tcp:127.0.0.1:PORT`.
    pub addr: String,
    /// `127.0.0.1:PORT`, for diod's clients.
    pub host_port: String,
    /// File receiving the server's stderr.
    pub log: std::path::PathBuf,
}

impl ServeProcess {
    /// Starts `pvfs serve ARGS --listen tcp:127.0.0.1:<free port>` and waits until it accepts.
    pub fn start(args: &[&str], log: &std::path::Path) -> ServeProcess {
        let port = free_port();
        let host_port = format!("127.0.0.1:{port}");
        let addr = format!("tcp:{host_port}");
        let child = std::process::Command::new(pvfs_bin())
            .arg("serve")
            .args(args)
            .args(["--listen", &addr])
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .expect("spawn pvfs serve");
        let p = ServeProcess {
            child,
            addr,
            host_port,
            log: log.to_path_buf(),
        };
        for _ in 0..800 {
            if TcpStream::connect(&p.host_port).is_ok() {
                return p;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "pvfs serve did not start: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
    }

    /// Sends SIGTERM and waits; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        let st = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        self.child.wait().unwrap().success()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh empty temporary directory, unique to this process and call.
pub fn temp_dir(tag: &str) -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("pvfs-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Requires a host tool, failing loudly if it is missing.
pub fn require_tool(name: &str) {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
        .unwrap_or(false)
        || std::path::Path::new("/usr/sbin").join(name).is_file()
        || std::path::Path::new("/sbin").join(name).is_file();
    assert!(
        found,
        "required host tool `{name}` is not installed (see ci/host-deps.sh)"
    );
}
