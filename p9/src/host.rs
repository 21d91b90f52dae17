//! Host transport (feature `std`): serves a [`Server`] over TCP or unix-domain sockets.
//!
//! Each connection has a reader thread that frames messages and submits them. Metadata-only
//! requests run inline on the reader thread (lowest latency); the others go to a shared
//! worker pool, so a slow request never holds up the rest of the connection, and replies are
//! written as they complete, out of order.

use crate::fs::Filesystem;
use crate::server::{Connection, Server, Submitted};
use crate::wire::{peek_size, HEADER_LEN};
use alloc::boxed::Box;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::thread;
use std::time::Duration;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed pool of worker threads.
pub struct WorkerPool {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<thread::JoinHandle<()>>>,
}

impl WorkerPool {
    /// Starts `n` workers (at least 1).
    pub fn new(n: usize) -> Arc<Self> {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let rx = rx.clone();
            let t = thread::Builder::new()
                .name(std::format!("9p-worker-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(j) => j(),
                        Err(_) => return,
                    }
                });
            if let Ok(t) = t {
                threads.push(t);
            }
        }
        Arc::new(WorkerPool {
            tx: Mutex::new(Some(tx)),
            threads: Mutex::new(threads),
        })
    }

    /// Queues a job; runs it inline if the pool is shut down.
    pub fn spawn(&self, job: Job) {
        let tx = self.tx.lock().ok().and_then(|g| g.clone());
        match tx {
            Some(tx) => {
                if let Err(mpsc::SendError(job)) = tx.send(job) {
                    job();
                }
            }
            None => job(),
        }
    }

    /// Stops accepting jobs and waits for the queued ones.
    pub fn shutdown(&self) {
        if let Ok(mut g) = self.tx.lock() {
            g.take();
        }
        let threads = self
            .threads
            .lock()
            .map(|mut t| core::mem::take(&mut *t))
            .unwrap_or_default();
        for t in threads {
            let _ = t.join();
        }
    }
}

/// Transport options.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Run metadata-only requests on the reader thread.
    pub inline_cheap: bool,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { inline_cheap: true }
    }
}

fn send(w: &Mutex<Box<dyn Write + Send>>, replies: Vec<Vec<u8>>) {
    if replies.is_empty() {
        return;
    }
    if let Ok(mut w) = w.lock() {
        for r in replies {
            if w.write_all(&r).is_err() {
                return;
            }
        }
        let _ = w.flush();
    }
}

/// Serves one connection until the peer closes it or sends an unframeable message.
/// Returns the number of messages handled.
pub fn serve_connection<F: Filesystem + 'static>(
    server: &Server<F>,
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
    pool: &Arc<WorkerPool>,
    opts: ServeOptions,
) -> io::Result<u64> {
    // One recv usually brings in a whole message (or several); large writes bypass the buffer.
    let mut reader = io::BufReader::with_capacity(64 << 10, reader);
    let conn: Arc<Connection<F>> = Arc::new(server.connect());
    let writer = Arc::new(Mutex::new(writer));
    let mut count = 0u64;
    loop {
        let mut hdr = [0u8; 4];
        match reader.read_exact(&mut hdr) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(count),
            Err(e) => return Err(e),
        }
        let size = peek_size(&hdr).unwrap_or(0);
        if (size as usize) < HEADER_LEN || size > conn.max_message() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                std::format!("bad message size {size}"),
            ));
        }
        let mut msg = vec![0u8; size as usize];
        msg[..4].copy_from_slice(&hdr);
        reader.read_exact(&mut msg[4..])?;
        count += 1;
        match conn.submit(msg) {
            Submitted::Reply(r) => send(&writer, vec![r]),
            Submitted::Pending => {}
            Submitted::Run(req) => {
                if opts.inline_cheap && req.is_cheap() {
                    send(&writer, conn.execute(req));
                } else {
                    let conn = conn.clone();
                    let writer = writer.clone();
                    pool.spawn(Box::new(move || send(&writer, conn.execute(req))));
                }
            }
        }
    }
}

/// Where to listen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    /// `tcp:HOST:PORT`.
    Tcp(String),
    /// `unix:PATH`.
    Unix(std::path::PathBuf),
}

impl ListenAddr {
    /// Parses `tcp:HOST:PORT` or `unix:PATH`.
    pub fn parse(s: &str) -> Option<Self> {
        if let Some(a) = s.strip_prefix("tcp:") {
            Some(ListenAddr::Tcp(a.to_string()))
        } else {
            s.strip_prefix("unix:").map(|p| ListenAddr::Unix(p.into()))
        }
    }
}

/// A bound listener.
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix-domain stream socket.
    Unix(UnixListener, std::path::PathBuf),
}

/// An accepted connection: reader, writer, and a peer description for logs.
pub type Accepted = (Box<dyn Read + Send>, Box<dyn Write + Send>, String);

impl Listener {
    /// Binds (a stale unix socket file is replaced).
    pub fn bind(a: &ListenAddr) -> io::Result<Self> {
        match a {
            ListenAddr::Tcp(h) => Ok(Listener::Tcp(TcpListener::bind(h.as_str())?)),
            ListenAddr::Unix(p) => {
                let _ = std::fs::remove_file(p);
                Ok(Listener::Unix(UnixListener::bind(p)?, p.clone()))
            }
        }
    }

    /// The bound address, as `tcp:…` / `unix:…`.
    pub fn local_addr(&self) -> String {
        match self {
            Listener::Tcp(l) => l
                .local_addr()
                .map(|a| std::format!("tcp:{a}"))
                .unwrap_or_default(),
            Listener::Unix(_, p) => std::format!("unix:{}", p.display()),
        }
    }

    fn set_nonblocking(&self, nb: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(nb),
            Listener::Unix(l, _) => l.set_nonblocking(nb),
        }
    }

    /// Accepts one connection (blocking).
    pub fn accept(&self) -> io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => {
                let (s, peer): (TcpStream, _) = l.accept()?;
                s.set_nonblocking(false)?;
                s.set_nodelay(true)?;
                let w = s.try_clone()?;
                Ok((Box::new(s), Box::new(w), peer.to_string()))
            }
            Listener::Unix(l, p) => {
                let (s, _): (UnixStream, _) = l.accept()?;
                s.set_nonblocking(false)?;
                let w = s.try_clone()?;
                Ok((Box::new(s), Box::new(w), std::format!("{}", p.display())))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Accepts connections until `stop` is set, serving each on its own thread with a shared
/// worker pool of `workers` threads. `log` gets one line per connection. On return the
/// filesystem has been synced.
pub fn serve<F: Filesystem + 'static>(
    server: Server<F>,
    listener: Listener,
    workers: usize,
    opts: ServeOptions,
    stop: Arc<AtomicBool>,
    log: fn(&str),
) -> io::Result<()> {
    let pool = WorkerPool::new(workers);
    listener.set_nonblocking(true)?;
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((r, w, peer)) => {
                let server = server.clone();
                let pool = pool.clone();
                log(&std::format!("connection from {peer}"));
                let _ = thread::Builder::new()
                    .name("9p-conn".into())
                    .spawn(move || {
                        // A clean close needs no second line; a broken stream does.
                        if let Err(e) = serve_connection(&server, r, w, &pool, opts) {
                            log(&std::format!("connection from {peer} dropped: {e}"));
                        }
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(20))
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    pool.shutdown();
    server
        .fs()
        .sync()
        .map_err(|e| io::Error::other(std::format!("sync failed: errno {}", e.0)))
}
