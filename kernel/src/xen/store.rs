//! A xenstore client over the shared ring (`io/xs_wire.h`). The wire codec and the matching of
//! replies to requests live in `pvfs_ring::xenstore` and are tested on the host; this module
//! moves bytes and sleeps on the event channel.

use super::events;
use super::shmem::PageMem;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use pvfs_ring::byte_ring::{Consumer, Producer, RingError};
use pvfs_ring::xenbus::{Store as XenbusStore, StoreError};
use pvfs_ring::xenstore::{iface, nul, parse_directory, Client, MsgType, WatchEvent, WireError};
use spin::Mutex;

/// Xenstore errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XsError {
    /// The store is not connected.
    NotConnected,
    /// The ring indices were corrupt.
    Ring(RingError),
    /// A protocol error, or an error reply such as `ENOENT`.
    Wire(WireError),
}

impl From<RingError> for XsError {
    fn from(e: RingError) -> Self {
        XsError::Ring(e)
    }
}
impl From<WireError> for XsError {
    fn from(e: WireError) -> Self {
        XsError::Wire(e)
    }
}

struct Store {
    mem: PageMem,
    req: Producer,
    rsp: Consumer,
    port: u32,
    client: Client,
}

static STORE: Mutex<Option<Store>> = Mutex::new(None);

/// Connects to the xenstore page at `pfn` with event channel `port`.
pub fn init(pfn: u64, port: u32) -> Result<(), XsError> {
    // SAFETY: the xenstore page is a Xen-provided magic page at `pfn`, identity-mapped, used
    // only through this PageMem.
    let mem = unsafe { PageMem::new((pfn << 12) as usize, 4096) };
    let req = Producer::attach(iface::REQ, &mem)?;
    let rsp = Consumer::attach(iface::RSP, &mem)?;
    let _ = super::evtchn_unmask(port);
    *STORE.lock() = Some(Store {
        mem,
        req,
        rsp,
        port,
        client: Client::new(),
    });
    Ok(())
}

impl Store {
    fn pump(&mut self) -> Result<bool, XsError> {
        let mut buf = [0u8; 1024];
        let n = self.rsp.read(&self.mem, &mut buf)?;
        if n > 0 {
            self.client.feed(buf.get(..n).unwrap_or(&[]))?;
            let _ = super::evtchn_send(self.port);
        }
        Ok(n > 0)
    }

    fn transact(&mut self, ty: MsgType, tx: u32, parts: &[&[u8]]) -> Result<Vec<u8>, XsError> {
        let (id, bytes) = self.client.request(ty, tx, parts)?;
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let n = self.req.write(&self.mem, rest)?;
            rest = rest.get(n..).unwrap_or(&[]);
            let _ = super::evtchn_send(self.port);
            if !rest.is_empty() {
                // Drain replies while waiting, so xenstored is never stuck on a full rsp ring.
                if !self.pump()? {
                    events::wait(Some(self.port));
                }
            }
        }
        loop {
            self.pump()?;
            if let Some(m) = self.client.take_reply(id) {
                return Ok(m.into_reply(ty)?);
            }
            events::wait(Some(self.port));
        }
    }
}

fn with<T>(f: impl FnOnce(&mut Store) -> Result<T, XsError>) -> Result<T, XsError> {
    let mut g = STORE.lock();
    let s = g.as_mut().ok_or(XsError::NotConnected)?;
    f(s)
}

/// Reads a node as text.
pub fn read(path: &str) -> Result<String, XsError> {
    let v = with(|s| s.transact(MsgType::Read, 0, &[&nul(path)]))?;
    String::from_utf8(v).map_err(|_| XsError::Wire(WireError::NotUtf8))
}

/// Writes a node.
pub fn write(path: &str, value: &str) -> Result<(), XsError> {
    with(|s| s.transact(MsgType::Write, 0, &[&nul(path), value.as_bytes()])).map(|_| ())
}

/// Lists a directory.
pub fn directory(path: &str) -> Result<Vec<String>, XsError> {
    let v = with(|s| s.transact(MsgType::Directory, 0, &[&nul(path)]))?;
    Ok(parse_directory(&v)?)
}

/// Removes a node and its children.
pub fn rm(path: &str) -> Result<(), XsError> {
    with(|s| s.transact(MsgType::Rm, 0, &[&nul(path)])).map(|_| ())
}

/// Removes a watch.
pub fn unwatch(path: &str, token: &str) -> Result<(), XsError> {
    with(|s| s.transact(MsgType::Unwatch, 0, &[&nul(path), &nul(token)])).map(|_| ())
}

/// Registers a watch on `path` (and its subtree) with `token`.
pub fn watch(path: &str, token: &str) -> Result<(), XsError> {
    with(|s| s.transact(MsgType::Watch, 0, &[&nul(path), &nul(token)])).map(|_| ())
}

/// Starts a transaction; returns its id.
pub fn transaction_start() -> Result<u32, XsError> {
    let v = with(|s| s.transact(MsgType::TransactionStart, 0, &[b"\0"]))?;
    let text = core::str::from_utf8(&v).map_err(|_| XsError::Wire(WireError::NotUtf8))?;
    text.trim_end_matches('\0')
        .parse()
        .map_err(|_| XsError::Wire(WireError::UnexpectedType(0)))
}

/// Reads a node as text inside transaction `tx`.
pub fn read_in(tx: u32, path: &str) -> Result<String, XsError> {
    let v = with(|s| s.transact(MsgType::Read, tx, &[&nul(path)]))?;
    String::from_utf8(v).map_err(|_| XsError::Wire(WireError::NotUtf8))
}

/// Writes a node inside transaction `tx`.
pub fn write_in(tx: u32, path: &str, value: &str) -> Result<(), XsError> {
    with(|s| s.transact(MsgType::Write, tx, &[&nul(path), value.as_bytes()])).map(|_| ())
}

/// Ends transaction `tx`, committing it if `commit`. `Err(Wire(Xs("EAGAIN")))` means retry.
pub fn transaction_end(tx: u32, commit: bool) -> Result<(), XsError> {
    let arg: &[u8] = if commit { b"T\0" } else { b"F\0" };
    with(|s| s.transact(MsgType::TransactionEnd, tx, &[arg])).map(|_| ())
}

/// Returns a queued watch event, pulling new bytes from the ring first.
pub fn next_watch_event() -> Result<Option<WatchEvent>, XsError> {
    with(|s| {
        s.pump()?;
        Ok(s.client.take_event())
    })
}

/// Whether watch events were dropped because pvfs fell behind (the client's queue holds at
/// most `pvfs_ring::xenstore::MAX_QUEUED_EVENTS`): the caller must then look at every node
/// it watches.
pub fn take_watch_overflow() -> bool {
    with(|s| Ok(s.client.take_overflow())).unwrap_or(false)
}

/// The kernel's xenstore client as the `Store` the host-tested xenbus machines drive.
pub struct XsStore;

fn store_err(e: XsError) -> StoreError {
    match e {
        XsError::Wire(WireError::Xs(s)) if s == "EACCES" => StoreError::Denied,
        XsError::Wire(WireError::Xs(s)) if s == "EQUOTA" || s == "ENOSPC" => StoreError::Quota,
        other => StoreError::Other(format!("{other:?}")),
    }
}

impl XenbusStore for XsStore {
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
        match read(path) {
            Ok(v) => Ok(Some(v)),
            Err(XsError::Wire(WireError::Xs(s))) if s == "ENOENT" => Ok(None),
            Err(e) => Err(store_err(e)),
        }
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        write(path, value).map_err(store_err)
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError> {
        match directory(path) {
            Ok(v) => Ok(v),
            Err(XsError::Wire(WireError::Xs(s))) if s == "ENOENT" => Ok(Vec::new()),
            Err(e) => Err(store_err(e)),
        }
    }
    fn remove(&mut self, path: &str) -> Result<(), StoreError> {
        match rm(path) {
            Ok(()) => Ok(()),
            Err(XsError::Wire(WireError::Xs(s))) if s == "ENOENT" => Ok(()),
            Err(e) => Err(store_err(e)),
        }
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        watch(path, token).map_err(store_err)
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        unwatch(path, token).map_err(store_err)
    }
}
