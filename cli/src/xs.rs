//! xenstore access for the dom0 commands: the [`Store`] trait the share logic runs on, and
//! [`XsConn`], its implementation over `/dev/xen/xenbus` (or xenstored's unix socket) with the
//! project's own wire codec (`pvfs_ring::xenstore`). No `xenstore-*` programs, no ioctls: the
//! device takes one whole request per `write` and hands back whole replies on `read`.

use pvfs_ring::xenstore::{nul, parse_directory, Client, MsgType, WireError, PAYLOAD_MAX};
use std::fmt;
use std::io::{Read, Write};

/// A transaction id; [`NO_TX`] outside a transaction.
pub type Tx = u32;
/// Outside any transaction.
pub const NO_TX: Tx = 0;

/// A xenstore operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XsError {
    /// `EAGAIN`: the transaction conflicted with another writer; start it again.
    Again,
    /// `EACCES`/`EPERM`: not allowed (not dom0, or not root).
    Denied(String),
    /// `ENOSPC`/`EQUOTA`/`E2BIG`: a xenstored quota was reached.
    Quota(String),
    /// `ENOENT` where the node had to exist.
    NoEnt(String),
    /// The transport failed (no xenstored, connection closed).
    Io(String),
    /// Any other error text from xenstored, or a malformed reply.
    Other(String),
}

impl fmt::Display for XsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XsError::Again => write!(f, "transaction conflict (EAGAIN)"),
            XsError::Denied(p) => write!(f, "{p}: permission denied"),
            XsError::Quota(p) => write!(f, "{p}: xenstored quota reached"),
            XsError::NoEnt(p) => write!(f, "{p}: no such node"),
            XsError::Io(e) => write!(f, "xenstore connection: {e}"),
            XsError::Other(e) => write!(f, "xenstore: {e}"),
        }
    }
}

/// Access granted by one permission entry (`n`, `r`, `w`, `b` on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `n`: none.
    None,
    /// `r`: read.
    Read,
    /// `w`: write.
    #[cfg_attr(not(test), allow(dead_code))] // the commands grant read only
    Write,
    /// `b`: read and write.
    #[cfg_attr(not(test), allow(dead_code))]
    Both,
}

/// One entry of a node's permission list. The first entry names the owner (who may do
/// anything) and the access of every domain not listed; later entries grant one domain access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm {
    /// The domain.
    pub domid: u16,
    /// What it may do.
    pub access: Access,
}

impl Perm {
    /// A permission entry.
    pub fn new(domid: u16, access: Access) -> Self {
        Self { domid, access }
    }

    /// The wire text, e.g. `r5`.
    pub fn encode(&self) -> String {
        let c = match self.access {
            Access::None => 'n',
            Access::Read => 'r',
            Access::Write => 'w',
            Access::Both => 'b',
        };
        format!("{c}{}", self.domid)
    }

    /// Whether the entry lets its domain read.
    #[cfg_attr(not(test), allow(dead_code))] // the fake store's permission checks
    pub fn can_read(&self) -> bool {
        matches!(self.access, Access::Read | Access::Both)
    }
}

/// The xenstore operations the dom0 commands need. Paths are absolute. `tx` is a transaction
/// from [`tx_start`](Store::tx_start) or [`NO_TX`].
pub trait Store {
    /// Reads a node; `Ok(None)` if it does not exist.
    fn read(&mut self, tx: Tx, path: &str) -> Result<Option<String>, XsError>;
    /// Writes a node, creating missing parents.
    fn write(&mut self, tx: Tx, path: &str, value: &str) -> Result<(), XsError>;
    /// Creates a node (empty value) if it does not exist.
    fn mkdir(&mut self, tx: Tx, path: &str) -> Result<(), XsError>;
    /// Removes a node and everything under it; no error if it does not exist.
    fn rm(&mut self, tx: Tx, path: &str) -> Result<(), XsError>;
    /// The children's names; empty if the node does not exist.
    fn directory(&mut self, tx: Tx, path: &str) -> Result<Vec<String>, XsError>;
    /// Replaces the node's permission list (owner first).
    fn set_perms(&mut self, tx: Tx, path: &str, perms: &[Perm]) -> Result<(), XsError>;
    /// Starts a transaction.
    fn tx_start(&mut self) -> Result<Tx, XsError>;
    /// Ends a transaction: commits it (`commit`) or aborts it. [`XsError::Again`] if the
    /// commit conflicted: nothing of it was applied.
    fn tx_end(&mut self, tx: Tx, commit: bool) -> Result<(), XsError>;
    /// Waits `ms` milliseconds before the store is looked at again (the commands poll).
    fn sleep_ms(&mut self, ms: u64);
    /// Milliseconds on a monotonic clock.
    fn now_ms(&mut self) -> u64;
    /// Sends an `XS_CONTROL` command, one word a string (`["quota", "7"]`, `["quota", "set",
    /// "nodes", "2000"]`, as `xenstore-control` sends them), and returns the reply's text.
    /// Only dom0 may; what a xenstored understands is its own (C xenstored's `quota` commands:
    /// `docs/pvfs-share.md`).
    fn control(&mut self, args: &[&str]) -> Result<String, XsError>;
}

/// Maps an error text from xenstored.
pub fn map_error(text: &str, path: &str) -> XsError {
    match text {
        "EAGAIN" => XsError::Again,
        "EACCES" | "EPERM" => XsError::Denied(path.to_string()),
        "ENOSPC" | "EQUOTA" | "E2BIG" => XsError::Quota(format!("{path} ({text})")),
        "ENOENT" => XsError::NoEnt(path.to_string()),
        _ => XsError::Other(format!("{path}: {text}")),
    }
}

/// Where xenstored is reached, in the order tried.
pub const XENBUS_DEVICE: &str = "/dev/xen/xenbus";
/// xenstored's unix sockets (the second is the pre-`/run` spelling).
pub const XENSTORED_SOCKETS: [&str; 2] = ["/run/xenstored/socket", "/var/run/xenstored/socket"];

/// A byte transport to xenstored.
pub enum Transport {
    /// `/dev/xen/xenbus`.
    Device(std::fs::File),
    /// xenstored's unix socket.
    Socket(std::os::unix::net::UnixStream),
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Transport::Device(f) => f.read(buf),
            Transport::Socket(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Transport::Device(f) => f.write(buf),
            Transport::Socket(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A connection to xenstored over any byte stream, speaking `xs_wire` with
/// [`pvfs_ring::xenstore::Client`].
pub struct XsConn<T> {
    io: T,
    client: Client,
    buf: Vec<u8>,
    start: std::time::Instant,
}

impl XsConn<Transport> {
    /// Opens `/dev/xen/xenbus`, or else xenstored's unix socket; only the socket named by
    /// `XENSTORED_PATH` if that is set (as libxenstore does). The error says what was tried.
    pub fn open() -> Result<Self, XsError> {
        if let Some(p) = std::env::var_os("XENSTORED_PATH") {
            return std::os::unix::net::UnixStream::connect(&p)
                .map(|s| Self::new(Transport::Socket(s)))
                .map_err(|e| XsError::Io(format!("XENSTORED_PATH={}: {e}", p.to_string_lossy())));
        }
        let mut tried = Vec::new();
        match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(XENBUS_DEVICE)
        {
            Ok(f) => return Ok(Self::new(Transport::Device(f))),
            Err(e) => tried.push(format!("{XENBUS_DEVICE}: {e}")),
        }
        for p in XENSTORED_SOCKETS {
            match std::os::unix::net::UnixStream::connect(p) {
                Ok(s) => return Ok(Self::new(Transport::Socket(s))),
                Err(e) => tried.push(format!("{p}: {e}")),
            }
        }
        Err(XsError::Io(tried.join("; ")))
    }
}

impl<T: Read + Write> XsConn<T> {
    /// A connection over `io`.
    pub fn new(io: T) -> Self {
        Self {
            io,
            client: Client::new(),
            buf: vec![0; 2 * PAYLOAD_MAX],
            start: std::time::Instant::now(),
        }
    }

    /// Sends one request and waits for its reply (watch events, which these commands never
    /// ask for, are left queued in the client).
    fn request(
        &mut self,
        ty: MsgType,
        tx: Tx,
        parts: &[&[u8]],
        path: &str,
    ) -> Result<Vec<u8>, XsError> {
        let (id, bytes) = self
            .client
            .request(ty, tx, parts)
            .map_err(|e| XsError::Other(format!("{path}: {e:?}")))?;
        // One write per whole request: the xenbus device parses what one write delivers.
        let n = self
            .io
            .write(&bytes)
            .map_err(|e| XsError::Io(e.to_string()))?;
        if n != bytes.len() {
            self.io
                .write_all(bytes.get(n..).unwrap_or(&[]))
                .map_err(|e| XsError::Io(e.to_string()))?;
        }
        loop {
            if let Some(m) = self.client.take_reply(id) {
                return m.into_reply(ty).map_err(|e| match e {
                    WireError::Xs(text) => map_error(&text, path),
                    other => XsError::Other(format!("{path}: {other:?}")),
                });
            }
            let n = self
                .io
                .read(&mut self.buf)
                .map_err(|e| XsError::Io(e.to_string()))?;
            if n == 0 {
                return Err(XsError::Io("xenstored closed the connection".into()));
            }
            self.client
                .feed(self.buf.get(..n).unwrap_or(&[]))
                .map_err(|e| XsError::Io(format!("{e:?}")))?;
        }
    }
}

fn text(payload: Vec<u8>) -> String {
    let mut s = String::from_utf8_lossy(&payload).into_owned();
    while s.ends_with('\0') {
        s.pop();
    }
    s
}

impl<T: Read + Write> Store for XsConn<T> {
    fn read(&mut self, tx: Tx, path: &str) -> Result<Option<String>, XsError> {
        match self.request(MsgType::Read, tx, &[&nul(path)], path) {
            Ok(v) => Ok(Some(text(v))),
            Err(XsError::NoEnt(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
    fn write(&mut self, tx: Tx, path: &str, value: &str) -> Result<(), XsError> {
        self.request(MsgType::Write, tx, &[&nul(path), value.as_bytes()], path)
            .map(drop)
    }
    fn mkdir(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        self.request(MsgType::Mkdir, tx, &[&nul(path)], path)
            .map(drop)
    }
    fn rm(&mut self, tx: Tx, path: &str) -> Result<(), XsError> {
        match self.request(MsgType::Rm, tx, &[&nul(path)], path) {
            Ok(_) | Err(XsError::NoEnt(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
    fn directory(&mut self, tx: Tx, path: &str) -> Result<Vec<String>, XsError> {
        match self.request(MsgType::Directory, tx, &[&nul(path)], path) {
            Ok(v) => parse_directory(&v).map_err(|e| XsError::Other(format!("{path}: {e:?}"))),
            Err(XsError::NoEnt(_)) => Ok(Vec::new()),
            // E2BIG here is a listing longer than one reply, not a quota.
            Err(XsError::Quota(q)) if q.ends_with("(E2BIG)") => Err(XsError::Other(format!(
                "{path}: too many entries for one reply (E2BIG)"
            ))),
            Err(e) => Err(e),
        }
    }
    fn set_perms(&mut self, tx: Tx, path: &str, perms: &[Perm]) -> Result<(), XsError> {
        let mut parts: Vec<Vec<u8>> = vec![nul(path)];
        parts.extend(perms.iter().map(|p| nul(&p.encode())));
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        self.request(MsgType::SetPerms, tx, &refs, path).map(drop)
    }
    fn tx_start(&mut self) -> Result<Tx, XsError> {
        let v = self.request(MsgType::TransactionStart, NO_TX, &[b"\0"], "transaction")?;
        let t = text(v);
        t.trim()
            .parse()
            .map_err(|_| XsError::Other(format!("transaction id {t:?}")))
    }
    fn tx_end(&mut self, tx: Tx, commit: bool) -> Result<(), XsError> {
        let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
        self.request(MsgType::TransactionEnd, tx, &[arg], "transaction")
            .map(drop)
    }
    fn sleep_ms(&mut self, ms: u64) {
        std::thread::sleep(std::time::Duration::from_millis(ms));
    }
    fn now_ms(&mut self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
    fn control(&mut self, args: &[&str]) -> Result<String, XsError> {
        let parts: Vec<Vec<u8>> = args.iter().map(|a| nul(a)).collect();
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        let what = format!("XS_CONTROL {}", args.join(" "));
        self.request(MsgType::Control, NO_TX, &refs, &what)
            .map(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pvfs_ring::xenstore::{encode_request, Header, HEADER_LEN};
    use std::collections::VecDeque;

    /// A scripted xenstored: records each write, answers from a queue of replies.
    struct Script {
        sent: Vec<Vec<u8>>,
        replies: VecDeque<(MsgType, Vec<u8>)>,
        out: Vec<u8>,
    }

    impl Read for Script {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.out.len().min(buf.len()).min(5); // awkward pieces
            buf[..n].copy_from_slice(&self.out[..n]);
            self.out.drain(..n);
            Ok(n)
        }
    }

    impl Write for Script {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            let h = Header::parse(buf).unwrap();
            assert_eq!(
                buf.len(),
                HEADER_LEN + h.len as usize,
                "one whole request per write"
            );
            self.sent.push(buf.to_vec());
            let (ty, payload) = self.replies.pop_front().unwrap();
            self.out
                .extend(encode_request(ty, h.req_id, h.tx_id, &[&payload]).unwrap());
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn conn(replies: &[(MsgType, &[u8])]) -> XsConn<Script> {
        XsConn::new(Script {
            sent: Vec::new(),
            replies: replies.iter().map(|(t, p)| (*t, p.to_vec())).collect(),
            out: Vec::new(),
        })
    }

    #[test]
    fn requests_on_the_wire_and_replies() {
        let mut c = conn(&[
            (MsgType::TransactionStart, b"17\0"),
            (MsgType::SetPerms, b"OK\0"),
            (MsgType::Read, b"ready"),
            (MsgType::Error, b"ENOENT\0"),
            (MsgType::Directory, b"0\x001\x00"),
            (MsgType::Error, b"EAGAIN\0"),
            (MsgType::Error, b"ENOSPC\0"),
            (MsgType::Error, b"EACCES\0"),
            (MsgType::Error, b"E2BIG\0"),
            (MsgType::Control, b"Domain 7:\nnodes : 12\n\0"),
        ]);
        let tx = c.tx_start().unwrap();
        assert_eq!(tx, 17);
        c.set_perms(
            tx,
            "/a",
            &[Perm::new(5, Access::None), Perm::new(7, Access::Read)],
        )
        .unwrap();
        assert_eq!(c.read(NO_TX, "/s").unwrap().as_deref(), Some("ready"));
        assert_eq!(c.read(NO_TX, "/t").unwrap(), None);
        assert_eq!(c.directory(NO_TX, "/d").unwrap(), ["0", "1"]);
        assert_eq!(c.tx_end(tx, true), Err(XsError::Again));
        assert!(matches!(c.write(NO_TX, "/q", "1"), Err(XsError::Quota(_))));
        assert_eq!(c.rm(NO_TX, "/x"), Err(XsError::Denied("/x".into())));
        assert!(matches!(c.directory(NO_TX, "/big"), Err(XsError::Other(_))));
        assert_eq!(
            c.control(&["quota", "7"]).unwrap(),
            "Domain 7:\nnodes : 12\n"
        );
        let sent = &c.io.sent;
        // XS_CONTROL: each word NUL-terminated, as xenstore-control sends them.
        let h = Header::parse(&sent[9]).unwrap();
        assert_eq!(h.ty, MsgType::Control as u32);
        assert_eq!(&sent[9][HEADER_LEN..], b"quota\x007\0");
        // SET_PERMS inside the transaction: path, then one NUL-terminated entry each.
        let h = Header::parse(&sent[1]).unwrap();
        assert_eq!(h.ty, MsgType::SetPerms as u32);
        assert_eq!(h.tx_id, 17);
        assert_eq!(&sent[1][HEADER_LEN..], b"/a\0n5\0r7\0");
        // TRANSACTION_END commits with "T".
        assert_eq!(&sent[5][HEADER_LEN..], b"T\0");
        assert_eq!(&sent[6][HEADER_LEN..], b"/q\x001");
    }

    #[test]
    fn perm_text() {
        assert_eq!(Perm::new(12, Access::Both).encode(), "b12");
        assert_eq!(Perm::new(3, Access::Write).encode(), "w3");
        assert_eq!(Perm::new(0, Access::None).encode(), "n0");
    }
}
