//! Xenbus: device states (`io/xenbus.h`) and pure state machines for the two devices pvfs
//! drives, over a small [`Store`] trait (xenstore) and a [`Platform`] trait (grant mapping and
//! event channels), both with in-memory fakes for host tests.
//!
//! - [`P9Backend`]: the 9pfs backend for one `/local/domain/<self>/backend/9pfs/<fe>/<dev>`
//!   (xen `docs/misc/9pfs.pandoc`, `io/9pfs.h`).
//! - [`VbdFrontend`]: the block frontend for one `device/vbd/<id>` (`io/blkif.h`).
//! - [`route`] and [`scan_backends`]: map watch events to devices, so one subtree watch on
//!   `backend/9pfs` (plus one per frontend state node) drives every device: xenstored allows
//!   an unprivileged domain 128 watches.
//!
//! The machines are *level-triggered*: `step` reads the current state of both ends and decides
//! what to do, so it can be called on any watch event, spurious or repeated, in any order.
//! Work that needs the platform (mapping grants, binding event channels, allocating a ring)
//! is returned as an action; the caller performs it and reports back.
//!
//! No-panic contract: every value read from xenstore is untrusted (the frontend writes its
//! keys, the toolstack writes ours, a guest may write garbage). Missing, non-numeric or
//! out-of-range values are typed errors ([`XenbusError`]) or a refusal to connect, never a
//! panic. Loops are bounded by the ring count limit and by [`MAX_DEVICES`].

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Debug;

use alloc::rc::Rc;

use crate::p9ring::{Backend9pRing, Interface, P9RingError, MAX_RING_ORDER, PAGE_SIZE};
use crate::shmem::{LocalMem, OutOfBounds, SharedMem};

/// Device states (`enum xenbus_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u32)]
pub enum XenbusState {
    /// 0: not yet known.
    Unknown = 0,
    /// 1: the device is being set up.
    Initialising = 1,
    /// 2: waiting for information from the peer (backend only).
    InitWait = 2,
    /// 3: ring details published, waiting for the peer to connect.
    Initialised = 3,
    /// 4: connected.
    Connected = 4,
    /// 5: the device is being shut down.
    Closing = 5,
    /// 6: shut down.
    Closed = 6,
    /// 7: reconfiguring.
    Reconfiguring = 7,
    /// 8: reconfigured.
    Reconfigured = 8,
}

impl XenbusState {
    /// Decodes a numeric state.
    pub fn from_u32(v: u32) -> Option<Self> {
        use XenbusState::*;
        Some(match v {
            0 => Unknown,
            1 => Initialising,
            2 => InitWait,
            3 => Initialised,
            4 => Connected,
            5 => Closing,
            6 => Closed,
            7 => Reconfiguring,
            8 => Reconfigured,
            _ => return None,
        })
    }

    /// Parses the decimal text stored in a `state` node (surrounding whitespace allowed).
    pub fn parse(s: &str) -> Option<Self> {
        s.trim().parse::<u32>().ok().and_then(Self::from_u32)
    }

    /// The text written to a `state` node.
    pub fn as_str(self) -> &'static str {
        ["0", "1", "2", "3", "4", "5", "6", "7", "8"]
            .get(self as usize)
            .copied()
            .unwrap_or("0")
    }

    /// The name used in `xenbus.h` (`XenbusStateConnected` → `"Connected"`).
    pub fn name(self) -> &'static str {
        use XenbusState::*;
        match self {
            Unknown => "Unknown",
            Initialising => "Initialising",
            InitWait => "InitWait",
            Initialised => "Initialised",
            Connected => "Connected",
            Closing => "Closing",
            Closed => "Closed",
            Reconfiguring => "Reconfiguring",
            Reconfigured => "Reconfigured",
        }
    }
}

/// A xenstore operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// Permission denied (`EACCES`).
    Denied,
    /// Quota exceeded (`EQUOTA`/`ENOSPC`).
    Quota,
    /// Anything else, with the error text.
    Other(String),
}

/// The xenstore operations the machines need. Paths are absolute (`/local/domain/…`) or
/// relative to the caller's home (`device/vbd/768`), exactly as given.
pub trait Store {
    /// Reads a node. `Ok(None)` if it does not exist.
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError>;
    /// Writes a node, creating parents.
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError>;
    /// Lists the children of a node; empty if it does not exist.
    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError>;
    /// Removes a node and everything under it; no error if absent.
    fn remove(&mut self, path: &str) -> Result<(), StoreError>;
    /// Registers a watch on `path` (and its subtree) with `token`.
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError>;
    /// Removes a watch registered with the same `path` and `token`.
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError>;
}

/// An in-memory [`Store`] for tests and host tools: a flat map of full paths to values, with
/// implicit parents.
#[derive(Debug, Default, Clone)]
pub struct MemStore {
    /// The nodes.
    pub nodes: BTreeMap<String, String>,
    /// Watches registered, as `(path, token)`.
    pub watches: Vec<(String, String)>,
    /// When set, every write fails with this error (fault injection).
    pub fail_writes: Option<StoreError>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets a node (test setup).
    pub fn set(&mut self, path: &str, value: &str) {
        self.nodes.insert(path.to_string(), value.to_string());
    }

    /// Reads a node (test inspection).
    pub fn get(&self, path: &str) -> Option<&str> {
        self.nodes.get(path).map(String::as_str)
    }

    /// True if `path` or anything under it exists.
    pub fn exists(&self, path: &str) -> bool {
        let prefix = format!("{path}/");
        self.nodes
            .keys()
            .any(|k| k == path || k.starts_with(&prefix))
    }
}

impl Store for MemStore {
    fn read(&mut self, path: &str) -> Result<Option<String>, StoreError> {
        Ok(self.nodes.get(path).cloned())
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), StoreError> {
        if let Some(e) = &self.fail_writes {
            return Err(e.clone());
        }
        self.set(path, value);
        Ok(())
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, StoreError> {
        let prefix = format!("{path}/");
        let mut out: Vec<String> = Vec::new();
        for k in self.nodes.keys() {
            if let Some(rest) = k.strip_prefix(&prefix) {
                let child = rest.split('/').next().unwrap_or("");
                if !child.is_empty() && out.last().map(String::as_str) != Some(child) {
                    out.push(child.to_string());
                }
            }
        }
        out.dedup();
        Ok(out)
    }
    fn remove(&mut self, path: &str) -> Result<(), StoreError> {
        let prefix = format!("{path}/");
        self.nodes
            .retain(|k, _| k != path && !k.starts_with(&prefix));
        Ok(())
    }
    fn watch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.watches.push((path.to_string(), token.to_string()));
        Ok(())
    }
    fn unwatch(&mut self, path: &str, token: &str) -> Result<(), StoreError> {
        self.watches.retain(|(p, t)| p != path || t != token);
        Ok(())
    }
}

/// Errors from the xenbus machines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XenbusError {
    /// A xenstore operation failed.
    Store(StoreError),
    /// A required key is missing.
    Missing(String),
    /// A key has an unusable value.
    Invalid {
        /// The key's path.
        key: String,
        /// The value read.
        value: String,
    },
}

impl From<StoreError> for XenbusError {
    fn from(e: StoreError) -> Self {
        XenbusError::Store(e)
    }
}

fn join(base: &str, key: &str) -> String {
    format!("{base}/{key}")
}

fn read_req<S: Store + ?Sized>(s: &mut S, path: &str) -> Result<String, XenbusError> {
    s.read(path)?
        .ok_or_else(|| XenbusError::Missing(path.to_string()))
}

fn parse_num<T: core::str::FromStr>(path: &str, v: &str) -> Result<T, XenbusError> {
    v.trim().parse().map_err(|_| XenbusError::Invalid {
        key: path.to_string(),
        value: v.to_string(),
    })
}

fn read_num<T: core::str::FromStr, S: Store + ?Sized>(
    s: &mut S,
    path: &str,
) -> Result<T, XenbusError> {
    let v = read_req(s, path)?;
    parse_num(path, &v)
}

fn read_opt_num<T: core::str::FromStr, S: Store + ?Sized>(
    s: &mut S,
    path: &str,
) -> Result<Option<T>, XenbusError> {
    match s.read(path)? {
        None => Ok(None),
        Some(v) => parse_num(path, &v).map(Some),
    }
}

fn read_bool<S: Store + ?Sized>(s: &mut S, path: &str) -> Result<bool, XenbusError> {
    Ok(read_opt_num::<u64, S>(s, path)?.unwrap_or(0) != 0)
}

fn read_state<S: Store + ?Sized>(s: &mut S, path: &str) -> Result<Option<XenbusState>, StoreError> {
    // A state node with garbage reads as Unknown: the peer is broken.
    Ok(s.read(path)?
        .map(|v| XenbusState::parse(&v).unwrap_or(XenbusState::Unknown)))
}

// ---------------------------------------------------------------------------------------------
// Platform

/// Grant mapping and event channels, implemented by the kernel (and by [`FakePlatform`]).
pub trait Platform {
    /// A mapped run of foreign pages, contiguous in our address space, in `refs` order.
    type Mem: SharedMem;
    /// Platform error (hypercall status).
    type Error: Debug;
    /// Maps `refs` granted by `domid`, read-write, contiguously.
    fn map_grants(&mut self, domid: u16, refs: &[u32]) -> Result<Self::Mem, Self::Error>;
    /// Unmaps a mapping made by [`map_grants`](Self::map_grants).
    fn unmap(&mut self, mem: Self::Mem);
    /// Binds `remote_port` of `domid`; returns our local port.
    fn bind_interdomain(&mut self, domid: u16, remote_port: u32) -> Result<u32, Self::Error>;
    /// Closes a local port.
    fn close_evtchn(&mut self, port: u32);
}

/// A fake [`Platform`] for host tests: "grants" are pages registered with
/// [`grant`](Self::grant), shared (not copied) between the test's frontend and the mappings,
/// and it counts live mappings and ports so tests can check for leaks.
#[derive(Debug, Default)]
pub struct FakePlatform {
    /// Granted pages by `(domid, ref)`.
    pub pages: BTreeMap<(u16, u32), Rc<LocalMem>>,
    /// Remote ports that may be bound, by `(domid, port)`.
    pub ports: BTreeMap<(u16, u32), bool>,
    /// Live mappings (number of pages).
    pub mapped_pages: usize,
    /// Live local ports.
    pub bound: Vec<u32>,
    next_port: u32,
}

/// Errors of [`FakePlatform`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FakeError {
    /// No such grant.
    BadRef(u32),
    /// No such remote port.
    BadPort(u32),
}

impl FakePlatform {
    /// A platform with no grants.
    pub fn new() -> Self {
        Self::default()
    }
    /// Grants a page holding `contents` (zero-padded to a page); returns the page so the test
    /// can play the granting domain.
    pub fn grant(&mut self, domid: u16, gref: u32, contents: Vec<u8>) -> Rc<LocalMem> {
        let page = Rc::new(LocalMem::new(PAGE_SIZE));
        let n = contents.len().min(PAGE_SIZE);
        let _ = page.write_bytes(0, contents.get(..n).unwrap_or(&[]));
        self.pages.insert((domid, gref), page.clone());
        page
    }
    /// Registers an unbound remote port.
    pub fn offer_port(&mut self, domid: u16, port: u32) {
        self.ports.insert((domid, port), true);
    }
}

/// Pages seen as one contiguous region (what [`FakePlatform`] maps; also usable by a test
/// frontend to view its own data area).
#[derive(Debug, Clone)]
pub struct PageRun {
    /// The pages, in order.
    pub pages: Vec<Rc<LocalMem>>,
}

impl PageRun {
    fn split(&self, off: usize) -> Option<(&LocalMem, usize)> {
        Some((self.pages.get(off / PAGE_SIZE)?, off % PAGE_SIZE))
    }
}

impl SharedMem for PageRun {
    fn len(&self) -> usize {
        self.pages.len() * PAGE_SIZE
    }
    fn load_u32_acquire(&self, off: usize) -> Result<u32, OutOfBounds> {
        let (p, o) = self.split(off).ok_or(OutOfBounds { off, len: 4 })?;
        p.load_u32_acquire(o)
            .map_err(|_| OutOfBounds { off, len: 4 })
    }
    fn store_u32_release(&self, off: usize, val: u32) -> Result<(), OutOfBounds> {
        let (p, o) = self.split(off).ok_or(OutOfBounds { off, len: 4 })?;
        p.store_u32_release(o, val)
            .map_err(|_| OutOfBounds { off, len: 4 })
    }
    fn read_bytes(&self, off: usize, dst: &mut [u8]) -> Result<(), OutOfBounds> {
        crate::shmem::check_range(off, dst.len(), self.len())?;
        let mut done = 0;
        while done < dst.len() {
            let (p, o) = self.split(off + done).ok_or(OutOfBounds {
                off,
                len: dst.len(),
            })?;
            let n = (PAGE_SIZE - o).min(dst.len() - done);
            let d = dst.get_mut(done..done + n).unwrap_or(&mut []);
            p.read_bytes(o, d)?;
            done += n;
        }
        Ok(())
    }
    fn write_bytes(&self, off: usize, src: &[u8]) -> Result<(), OutOfBounds> {
        crate::shmem::check_range(off, src.len(), self.len())?;
        let mut done = 0;
        while done < src.len() {
            let (p, o) = self.split(off + done).ok_or(OutOfBounds {
                off,
                len: src.len(),
            })?;
            let n = (PAGE_SIZE - o).min(src.len() - done);
            p.write_bytes(o, src.get(done..done + n).unwrap_or(&[]))?;
            done += n;
        }
        Ok(())
    }
    fn full_barrier(&self) {}
}

impl Platform for FakePlatform {
    type Mem = PageRun;
    type Error = FakeError;
    fn map_grants(&mut self, domid: u16, refs: &[u32]) -> Result<PageRun, FakeError> {
        let pages = refs
            .iter()
            .map(|r| {
                self.pages
                    .get(&(domid, *r))
                    .cloned()
                    .ok_or(FakeError::BadRef(*r))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.mapped_pages += pages.len();
        Ok(PageRun { pages })
    }
    fn unmap(&mut self, mem: PageRun) {
        self.mapped_pages -= mem.pages.len();
    }
    fn bind_interdomain(&mut self, domid: u16, remote_port: u32) -> Result<u32, FakeError> {
        if self.ports.get(&(domid, remote_port)) != Some(&true) {
            return Err(FakeError::BadPort(remote_port));
        }
        self.next_port += 1;
        self.bound.push(self.next_port);
        Ok(self.next_port)
    }
    fn close_evtchn(&mut self, port: u32) {
        self.bound.retain(|p| *p != port);
    }
}

// ---------------------------------------------------------------------------------------------
// 9pfs backend

/// Largest number of 9pfs devices [`scan_backends`] returns.
pub const MAX_DEVICES: usize = 256;

/// What this backend advertises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackendConfig {
    /// `max-rings` (Linux requires ≥ 2).
    pub max_rings: u32,
    /// `max-ring-page-order` (≤ 9).
    pub max_ring_page_order: u32,
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self {
            max_rings: 2,
            max_ring_page_order: MAX_RING_ORDER,
        }
    }
}

/// The quota keys of a device's backend directory. The toolstack may write them before the
/// device connects, and an administrator may change or remove them at any time.
pub const QUOTA_KEYS: [&str; 3] = ["max-files", "max-open-files", "max-space"];

/// A device's quota (backend keys [`QUOTA_KEYS`]; a missing key is no limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QuotaKeys {
    /// `max-files`.
    pub max_files: Option<u64>,
    /// `max-open-files`.
    pub max_open_files: Option<u64>,
    /// `max-space`, in MiB.
    pub max_space_mib: Option<u64>,
}

impl QuotaKeys {
    /// Reads the quota keys under `be`; a key that is present but not a number is an error.
    pub fn read<S: Store + ?Sized>(s: &mut S, be: &str) -> Result<Self, XenbusError> {
        Ok(Self {
            max_files: read_opt_num(s, &join(be, "max-files"))?,
            max_open_files: read_opt_num(s, &join(be, "max-open-files"))?,
            max_space_mib: read_opt_num(s, &join(be, "max-space"))?,
        })
    }

    /// Whether the watch event `path` is one of a device's quota keys.
    pub fn is_key(path: &str) -> bool {
        key_name(path).is_some_and(|k| QUOTA_KEYS.contains(&k))
    }
}

/// The last component of a watch event's path: the key that changed.
fn key_name(path: &str) -> Option<&str> {
    path.rsplit('/').next()
}

/// The key of a device's backend directory that makes the device read-only: `ro`, or `rw`
/// (the same as no key). The toolstack writes it (`pvfs share add --ro`); an administrator may
/// change or remove it at any time.
pub const MODE_KEY: &str = "mode";

/// Reads a device's [`MODE_KEY`] under `be`: whether it asks for the device to be read-only.
/// A value other than `ro` or `rw` is an error.
pub fn read_mode<S: Store + ?Sized>(s: &mut S, be: &str) -> Result<bool, XenbusError> {
    let key = join(be, MODE_KEY);
    match s.read(&key)? {
        None => Ok(false),
        Some(v) => match v.trim() {
            "rw" => Ok(false),
            "ro" => Ok(true),
            _ => Err(XenbusError::Invalid { key, value: v }),
        },
    }
}

/// Whether the watch event `path` is a device's [`MODE_KEY`].
pub fn is_mode_key(path: &str) -> bool {
    key_name(path) == Some(MODE_KEY)
}

/// The export the toolstack configured for one device (backend keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportConfig {
    /// `path`: the exported directory inside the volume.
    pub path: String,
    /// `max-files`, `max-open-files`, `max-space`.
    pub quota: QuotaKeys,
    /// `mode=ro`: the device is served read-only.
    pub read_only: bool,
    /// `auto-delete`.
    pub auto_delete: bool,
}

impl ExportConfig {
    /// Reads and validates the export keys under `be` (`security_model` must be `none`, `mode`
    /// `ro`, `rw` or absent, the quota keys numbers).
    pub fn read<S: Store + ?Sized>(s: &mut S, be: &str) -> Result<Self, XenbusError> {
        let path_key = join(be, "path");
        let path = read_req(s, &path_key)?;
        if path.is_empty() || path.contains('\0') {
            return Err(XenbusError::Invalid {
                key: path_key,
                value: path,
            });
        }
        let sm_key = join(be, "security_model");
        let sm = read_req(s, &sm_key)?;
        if sm != "none" {
            return Err(XenbusError::Invalid {
                key: sm_key,
                value: sm,
            });
        }
        Ok(Self {
            path,
            quota: QuotaKeys::read(s, be)?,
            read_only: read_mode(s, be)?,
            auto_delete: read_bool(s, &join(be, "auto-delete"))?,
        })
    }
}

/// One ring the frontend published: `ring-ref<N>` (its interface page) and
/// `event-channel-<N>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingKeys {
    /// Grant reference of the interface page.
    pub intf_ref: u32,
    /// The frontend's event channel port.
    pub evtchn: u32,
}

/// The rings to connect, read and validated from the frontend's keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectPlan {
    /// Frontend domain.
    pub fe_domid: u16,
    /// The export.
    pub export: ExportConfig,
    /// One entry per ring, in ring order.
    pub rings: Vec<RingKeys>,
}

/// What the caller must do after [`P9Backend::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendAction {
    /// Nothing to do now.
    Idle,
    /// Map and bind these rings ([`connect_rings`]), then call
    /// [`P9Backend::connected`] or [`P9Backend::connect_failed`].
    Connect(ConnectPlan),
    /// Unmap the rings, close the event channels and free the fids, then call
    /// [`P9Backend::torn_down`].
    Teardown,
    /// The device is finished and its backend directory removed: drop it.
    Remove,
}

/// Where a [`P9Backend`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendPhase {
    /// Not yet published.
    New,
    /// Keys published, state InitWait.
    InitWait,
    /// A [`BackendAction::Connect`] is with the caller.
    Connecting,
    /// Rings live, state Connected.
    Connected,
    /// A [`BackendAction::Teardown`] is with the caller.
    TearingDown,
    /// State Closed, rings released; may reconnect if the frontend reinitialises.
    Closed,
    /// Directory removed.
    Removed,
}

/// The xenbus machine of one 9pfs backend device.
#[derive(Debug, Clone)]
pub struct P9Backend {
    be: String,
    fe_domid: u16,
    devid: u32,
    cfg: BackendConfig,
    phase: BackendPhase,
    fe_watch: Option<String>,
    /// The toolstack itself wrote our state as Closed: it wants the device gone and waits for
    /// the backend directory to disappear.
    toolstack_closed: bool,
    /// The state we wrote last.
    written: Option<XenbusState>,
}

impl P9Backend {
    /// A machine for the device whose backend directory is `be_path`
    /// (`/local/domain/<self>/backend/9pfs/<fe>/<dev>`).
    pub fn new(be_path: &str, fe_domid: u16, devid: u32, cfg: BackendConfig) -> Self {
        Self {
            be: be_path.to_string(),
            fe_domid,
            devid,
            cfg: BackendConfig {
                max_rings: cfg.max_rings.max(1),
                max_ring_page_order: cfg.max_ring_page_order.min(MAX_RING_ORDER),
            },
            phase: BackendPhase::New,
            fe_watch: None,
            toolstack_closed: false,
            written: None,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> BackendPhase {
        self.phase
    }

    /// `(frontend domid, devid)`.
    pub fn id(&self) -> (u16, u32) {
        (self.fe_domid, self.devid)
    }

    /// The backend directory.
    pub fn path(&self) -> &str {
        &self.be
    }

    fn set_state<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
        st: XenbusState,
    ) -> Result<(), XenbusError> {
        s.write(&join(&self.be, "state"), st.as_str())?;
        self.written = Some(st);
        Ok(())
    }

    fn publish<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<(), XenbusError> {
        s.write(&join(&self.be, "versions"), "1")?;
        s.write(
            &join(&self.be, "max-rings"),
            &self.cfg.max_rings.to_string(),
        )?;
        s.write(
            &join(&self.be, "max-ring-page-order"),
            &self.cfg.max_ring_page_order.to_string(),
        )?;
        s.write(&join(&self.be, "hotplug-status"), "connected")?;
        self.set_state(s, XenbusState::InitWait)?;
        self.phase = BackendPhase::InitWait;
        Ok(())
    }

    fn frontend_path<S: Store + ?Sized>(&self, s: &mut S) -> Result<Option<String>, XenbusError> {
        let Some(fe) = s.read(&join(&self.be, "frontend"))? else {
            return Ok(None);
        };
        // The toolstack writes frontend-id; a mismatch means a confused or hostile writer.
        if let Some(id) = read_opt_num::<u32, S>(s, &join(&self.be, "frontend-id"))? {
            if id != u32::from(self.fe_domid) {
                return Err(XenbusError::Invalid {
                    key: join(&self.be, "frontend-id"),
                    value: id.to_string(),
                });
            }
        }
        Ok(Some(fe))
    }

    /// Reads and validates the frontend's ring keys.
    fn read_plan<S: Store + ?Sized>(
        &self,
        s: &mut S,
        fe: &str,
    ) -> Result<ConnectPlan, XenbusError> {
        let export = ExportConfig::read(s, &self.be)?;
        let vkey = join(fe, "version");
        let version = read_req(s, &vkey)?;
        if version.trim() != "1" {
            return Err(XenbusError::Invalid {
                key: vkey,
                value: version,
            });
        }
        let nkey = join(fe, "num-rings");
        let n: u32 = read_num(s, &nkey)?;
        if n == 0 || n > self.cfg.max_rings {
            return Err(XenbusError::Invalid {
                key: nkey,
                value: n.to_string(),
            });
        }
        let mut rings = Vec::with_capacity(n as usize);
        for i in 0..n {
            rings.push(RingKeys {
                intf_ref: read_num(s, &format!("{fe}/ring-ref{i}"))?,
                evtchn: read_num(s, &format!("{fe}/event-channel-{i}"))?,
            });
        }
        Ok(ConnectPlan {
            fe_domid: self.fe_domid,
            export,
            rings,
        })
    }

    /// Reads both ends' state and decides what to do. Call on every watch event for this
    /// device (backend subtree or frontend state) and once after creation.
    pub fn step<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<BackendAction, XenbusError> {
        use BackendPhase as P;
        use XenbusState as X;
        if matches!(self.phase, P::Removed) {
            return Ok(BackendAction::Remove);
        }
        if matches!(self.phase, P::Connecting | P::TearingDown) {
            // Waiting on the caller.
            return Ok(BackendAction::Idle);
        }
        let be_state = read_state(s, &join(&self.be, "state"))?;
        let online = read_bool(s, &join(&self.be, "online"))?;
        let fe = self.frontend_path(s)?;
        if let (Some(fe), None) = (&fe, &self.fe_watch) {
            // One watch per device on the frontend's state: the subtree watch on our backend
            // directory does not see it. Removed with the device.
            let w = join(fe, "state");
            s.watch(&w, &self.be)?;
            self.fe_watch = Some(w);
        }
        let fe_state = match &fe {
            Some(fe) => read_state(s, &join(fe, "state"))?,
            None => None,
        };
        if self.phase == P::New {
            if be_state.is_none() {
                // The toolstack removed the device before we ever published.
                self.remove_dir(s)?;
                return Ok(BackendAction::Remove);
            }
            if matches!(fe_state, None | Some(X::Unknown)) {
                // The frontend directory is not there yet.
                return Ok(BackendAction::Idle);
            }
        }
        log::debug!(
            "{}: phase {:?}, backend state {:?}, online {online}, frontend state {:?}",
            self.be,
            self.phase,
            be_state,
            fe_state
        );
        let fe_gone = matches!(fe_state, None | Some(X::Unknown)) || be_state.is_none();
        let fe_closing = matches!(fe_state, Some(X::Closing | X::Closed));
        // We write Closed only when a device fails (with an `error` node); a closed device
        // otherwise stays in Closing. A Closed we did not write is the toolstack's: libxl 4.17
        // writes it when it destroys a guest whose 9pfs device it takes for a QEMU one (the
        // guest is paused, shut down or dying; 2 s after it starts, if the state is not Closed
        // yet), then waits up to 10 s for the backend directory to be removed, while the
        // frontend may still read Connected and `online` stays 1.
        if be_state == Some(X::Closed) && self.written != Some(X::Closed) {
            self.toolstack_closed = true;
        }
        let toolstack_closing = !online
            || (be_state == Some(X::Closing) && self.written != Some(X::Closing))
            || self.toolstack_closed;

        if fe_gone || fe_closing || toolstack_closing {
            if matches!(self.phase, P::Connected) {
                self.phase = P::TearingDown;
                if !fe_gone && !self.toolstack_closed {
                    self.set_state(s, X::Closing)?;
                }
                return Ok(BackendAction::Teardown);
            }
            return self.close(
                s,
                fe_gone || (fe_state == Some(X::Closed) && !online) || self.toolstack_closed,
            );
        }

        match self.phase {
            P::New | P::Closed => {
                if self.phase == P::Closed && fe_state != Some(X::Initialising) {
                    // Stay closed until the frontend starts over.
                    return Ok(BackendAction::Idle);
                }
                self.publish(s)?;
                // Linux < 6.3 may already be Initialised: fall through to check.
                self.try_connect(s, fe.as_deref(), fe_state)
            }
            P::InitWait => self.try_connect(s, fe.as_deref(), fe_state),
            _ => Ok(BackendAction::Idle),
        }
    }

    fn try_connect<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
        fe: Option<&str>,
        fe_state: Option<XenbusState>,
    ) -> Result<BackendAction, XenbusError> {
        let (Some(fe), Some(XenbusState::Initialised | XenbusState::Connected)) = (fe, fe_state)
        else {
            return Ok(BackendAction::Idle);
        };
        match self.read_plan(s, fe) {
            Ok(plan) => {
                self.phase = BackendPhase::Connecting;
                Ok(BackendAction::Connect(plan))
            }
            Err(e) => {
                self.fail(s, &e)?;
                Err(e)
            }
        }
    }

    /// Records an error for the toolstack (`error` node) and closes the device.
    fn fail<S: Store + ?Sized>(&mut self, s: &mut S, e: &XenbusError) -> Result<(), XenbusError> {
        let _ = s.write(&join(&self.be, "error"), &format!("{e:?}"));
        self.set_state(s, XenbusState::Closing)?;
        self.set_state(s, XenbusState::Closed)?;
        self.phase = BackendPhase::Closed;
        Ok(())
    }

    fn close<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
        remove: bool,
    ) -> Result<BackendAction, XenbusError> {
        if remove {
            self.remove_dir(s)?;
            return Ok(BackendAction::Remove);
        }
        if self.phase != BackendPhase::Closed {
            // Closing, not Closed: see `step` (a toolstack Closed asks for removal).
            if self.written != Some(XenbusState::Closing) {
                self.set_state(s, XenbusState::Closing)?;
            }
            self.phase = BackendPhase::Closed;
        }
        Ok(BackendAction::Idle)
    }

    /// Removes the backend directory and the frontend state watch.
    fn remove_dir<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<(), XenbusError> {
        if let Some(w) = self.fe_watch.take() {
            s.unwatch(&w, &self.be)?;
        }
        s.remove(&self.be)?;
        self.phase = BackendPhase::Removed;
        Ok(())
    }

    /// The caller connected the rings of the last [`BackendAction::Connect`]: go Connected.
    pub fn connected<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<(), XenbusError> {
        if self.phase != BackendPhase::Connecting {
            return Ok(());
        }
        self.set_state(s, XenbusState::Connected)?;
        self.phase = BackendPhase::Connected;
        Ok(())
    }

    /// Connecting failed (bad ring order, unmappable grant…): record it and close.
    pub fn connect_failed<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
        why: &str,
    ) -> Result<(), XenbusError> {
        let e = XenbusError::Invalid {
            key: join(&self.be, "rings"),
            value: why.to_string(),
        };
        self.fail(s, &e)
    }

    /// The caller released everything after [`BackendAction::Teardown`]. Removes the backend
    /// directory if the frontend is gone or the toolstack took the device offline or wrote
    /// Closed (libxl waits for that removal on `xl destroy` and after a guest shut down);
    /// otherwise the state stays Closing and the device may reconnect. Returns
    /// [`BackendAction::Remove`] when the device is finished.
    pub fn torn_down<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
    ) -> Result<BackendAction, XenbusError> {
        self.phase = BackendPhase::Closed;
        let online = read_bool(s, &join(&self.be, "online"))?;
        let fe = self.frontend_path(s).unwrap_or(None);
        let fe_state = match &fe {
            Some(fe) => read_state(s, &join(fe, "state"))?,
            None => None,
        };
        let gone = matches!(fe_state, None | Some(XenbusState::Unknown));
        if gone || !online || self.toolstack_closed {
            self.remove_dir(s)?;
            return Ok(BackendAction::Remove);
        }
        // The device stays, in Closing: the toolstack asks for its removal by writing Closed
        // (libxl does so once the guest has shut down), and the frontend may start over.
        if self.written != Some(XenbusState::Closing) {
            self.set_state(s, XenbusState::Closing)?;
        }
        Ok(BackendAction::Idle)
    }
}

/// One connected 9pfs ring: its mappings, local event channel and data ring.
#[derive(Debug)]
pub struct ConnectedRing<M> {
    /// The interface page.
    pub intf: M,
    /// The data area (`2^order` pages).
    pub data: M,
    /// Our local event channel port.
    pub port: u32,
    /// The data ring.
    pub ring: Backend9pRing,
}

/// Why [`connect_rings`] failed.
#[derive(Debug)]
pub enum ConnectError<E> {
    /// The platform refused a mapping or a binding.
    Platform(E),
    /// A ring's interface page is invalid.
    Ring(P9RingError),
}

/// Maps and binds every ring of `plan`: the interface page, then (after validating its
/// `ring_order` against `max_order`) the data pages, then the event channel. On any failure
/// everything mapped or bound so far is released, so nothing leaks.
pub fn connect_rings<P: Platform>(
    p: &mut P,
    plan: &ConnectPlan,
    max_order: u32,
    max_msg: u32,
) -> Result<Vec<ConnectedRing<P::Mem>>, ConnectError<P::Error>> {
    let mut done: Vec<ConnectedRing<P::Mem>> = Vec::with_capacity(plan.rings.len());
    for rk in &plan.rings {
        match connect_one(p, plan.fe_domid, rk, max_order, max_msg) {
            Ok(r) => done.push(r),
            Err(e) => {
                disconnect_rings(p, done);
                return Err(e);
            }
        }
    }
    Ok(done)
}

fn connect_one<P: Platform>(
    p: &mut P,
    domid: u16,
    rk: &RingKeys,
    max_order: u32,
    max_msg: u32,
) -> Result<ConnectedRing<P::Mem>, ConnectError<P::Error>> {
    let intf = p
        .map_grants(domid, core::slice::from_ref(&rk.intf_ref))
        .map_err(ConnectError::Platform)?;
    let info = match Interface::read(&intf, max_order) {
        Ok(i) => i,
        Err(e) => {
            p.unmap(intf);
            return Err(ConnectError::Ring(e));
        }
    };
    let data = match p.map_grants(domid, &info.refs) {
        Ok(d) => d,
        Err(e) => {
            p.unmap(intf);
            return Err(ConnectError::Platform(e));
        }
    };
    let ring = match Backend9pRing::attach(&intf, &data, info.ring_order, max_msg) {
        Ok(r) => r,
        Err(e) => {
            p.unmap(data);
            p.unmap(intf);
            return Err(ConnectError::Ring(e));
        }
    };
    let port = match p.bind_interdomain(domid, rk.evtchn) {
        Ok(port) => port,
        Err(e) => {
            p.unmap(data);
            p.unmap(intf);
            return Err(ConnectError::Platform(e));
        }
    };
    Ok(ConnectedRing {
        intf,
        data,
        port,
        ring,
    })
}

/// Closes the event channels and unmaps every ring.
pub fn disconnect_rings<P: Platform>(p: &mut P, rings: Vec<ConnectedRing<P::Mem>>) {
    for r in rings {
        p.close_evtchn(r.port);
        p.unmap(r.data);
        p.unmap(r.intf);
    }
}

// ---------------------------------------------------------------------------------------------
// Watch routing

/// What a watch event means for the 9pfs backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// Step the machine of this device.
    Device {
        /// Frontend domain.
        fe: u16,
        /// Device id.
        dev: u32,
    },
    /// Devices may have appeared or gone: rescan with [`scan_backends`].
    Rescan,
    /// A domain died (`@releaseDomain`): step every device (their frontend state reads
    /// will show which are gone).
    ReleaseDomain,
    /// Not ours.
    Ignore,
}

/// Maps a watch event path to a device. `backend_base` is the watched subtree, e.g.
/// `/local/domain/7/backend/9pfs` (the same spelling as registered). Frontend state paths
/// `/local/domain/<fe>/device/9pfs/<dev>/…` route to their device as well. Work is bounded
/// by the path's component count (at most a few are looked at).
pub fn route(backend_base: &str, path: &str) -> Route {
    if path == "@releaseDomain" {
        return Route::ReleaseDomain;
    }
    if let Some(rest) = path.strip_prefix(backend_base) {
        if rest.is_empty() {
            return Route::Rescan;
        }
        let Some(rest) = rest.strip_prefix('/') else {
            return Route::Ignore;
        };
        let mut it = rest.splitn(3, '/');
        let fe = it.next().and_then(|f| f.parse::<u16>().ok());
        let dev = it.next().map(|d| d.parse::<u32>().ok());
        return match (fe, dev) {
            (Some(_), None) => Route::Rescan,
            (Some(fe), Some(Some(dev))) => Route::Device { fe, dev },
            _ => Route::Ignore,
        };
    }
    if let Some(rest) = path.strip_prefix("/local/domain/") {
        let mut it = rest.splitn(5, '/');
        let fe = it.next().and_then(|f| f.parse::<u16>().ok());
        let kind = (it.next(), it.next());
        let dev = it.next().and_then(|d| d.parse::<u32>().ok());
        if let (Some(fe), (Some("device"), Some("9pfs")), Some(dev)) = (fe, kind, dev) {
            return Route::Device { fe, dev };
        }
    }
    Route::Ignore
}

/// Lists the devices under `backend_base` as `(frontend domid, devid)`, at most
/// [`MAX_DEVICES`]; non-numeric entries are skipped.
pub fn scan_backends<S: Store + ?Sized>(
    s: &mut S,
    backend_base: &str,
) -> Result<Vec<(u16, u32)>, StoreError> {
    let mut out = Vec::new();
    for fe in s.directory(backend_base)? {
        let Ok(fe_id) = fe.parse::<u16>() else {
            continue;
        };
        for dev in s.directory(&join(backend_base, &fe))? {
            if out.len() >= MAX_DEVICES {
                return Ok(out);
            }
            if let Ok(d) = dev.parse::<u32>() {
                out.push((fe_id, d));
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// vbd frontend

/// `info` bit: the disk is read-only (`VDISK_READONLY`).
pub const VDISK_READONLY: u32 = 4;
/// `info` bit: CD-ROM (`VDISK_CDROM`).
pub const VDISK_CDROM: u32 = 1;
/// `info` bit: removable (`VDISK_REMOVABLE`).
pub const VDISK_REMOVABLE: u32 = 2;
/// Largest ring page order the frontend asks for (Linux's `xen_blkif_max_ring_order` cap).
pub const VBD_MAX_RING_ORDER: u32 = 4;

/// Features and geometry the block backend advertised, read when it is Connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VbdInfo {
    /// Disk size in 512-byte sectors (`sectors`).
    pub sectors: u64,
    /// Logical sector size in bytes (`sector-size`).
    pub sector_size: u32,
    /// The `info` bits.
    pub info: u32,
    /// `feature-max-indirect-segments` (0: no indirect descriptors).
    pub max_indirect_segments: u32,
    /// `feature-persistent`.
    pub persistent: bool,
    /// `feature-flush-cache`.
    pub flush_cache: bool,
    /// `feature-barrier`.
    pub barrier: bool,
    /// `feature-discard`.
    pub discard: bool,
}

impl VbdInfo {
    /// True if the disk is read-only.
    pub fn read_only(&self) -> bool {
        self.info & VDISK_READONLY != 0
    }
}

/// The ring the caller allocated for a [`VbdAction::AllocateRing`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VbdRing {
    /// Grant references of the ring pages (`1 << order` of them).
    pub refs: Vec<u32>,
    /// Our unbound event channel port, allocated for the backend domain.
    pub evtchn: u32,
}

/// What the caller must do after [`VbdFrontend::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VbdAction {
    /// Nothing now.
    Idle,
    /// Allocate and grant `1 << order` ring pages to `backend_id`, initialise the shared ring
    /// over them, allocate an unbound event channel for it, then call
    /// [`VbdFrontend::ring_ready`].
    AllocateRing {
        /// Ring page order.
        order: u32,
        /// The backend domain.
        backend_id: u16,
    },
    /// The disk is usable.
    Connected(VbdInfo),
    /// The backend is closing: stop queueing, finish in-flight requests (no lost writes),
    /// release the ring, then call [`VbdFrontend::drained`].
    Drain,
    /// The device is closed.
    Closed,
}

/// Where a [`VbdFrontend`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VbdPhase {
    /// Waiting for the backend's InitWait.
    New,
    /// An [`VbdAction::AllocateRing`] is with the caller.
    Allocating,
    /// Keys written, state Initialised.
    Initialised,
    /// State Connected.
    Connected,
    /// A [`VbdAction::Drain`] is with the caller.
    Draining,
    /// State Closed.
    Closed,
}

/// The xenbus machine of one block frontend device (`device/vbd/<id>`).
#[derive(Debug, Clone)]
pub struct VbdFrontend {
    dev: String,
    backend: Option<String>,
    backend_id: u16,
    persistent: bool,
    phase: VbdPhase,
}

impl VbdFrontend {
    /// A machine for the device at `dev_path` (e.g. `device/vbd/51712`). `persistent`:
    /// whether to offer persistent grants (`feature-persistent`).
    pub fn new(dev_path: &str, persistent: bool) -> Self {
        Self {
            dev: dev_path.to_string(),
            backend: None,
            backend_id: 0,
            persistent,
            phase: VbdPhase::New,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> VbdPhase {
        self.phase
    }

    /// The backend directory, once known.
    pub fn backend(&self) -> Option<&str> {
        self.backend.as_deref()
    }

    fn set_state<S: Store + ?Sized>(&self, s: &mut S, st: XenbusState) -> Result<(), XenbusError> {
        s.write(&join(&self.dev, "state"), st.as_str())?;
        Ok(())
    }

    fn backend_path<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<String, XenbusError> {
        if let Some(b) = &self.backend {
            return Ok(b.clone());
        }
        let b = read_req(s, &join(&self.dev, "backend"))?;
        let id: u32 = read_num(s, &join(&self.dev, "backend-id"))?;
        self.backend_id = u16::try_from(id).map_err(|_| XenbusError::Invalid {
            key: join(&self.dev, "backend-id"),
            value: id.to_string(),
        })?;
        // Watch the backend's state (one watch per disk).
        s.watch(&join(&b, "state"), &self.dev)?;
        self.backend = Some(b.clone());
        Ok(b)
    }

    /// Reads the backend's state and decides what to do. Call on every event for the backend
    /// state node and once at start.
    pub fn step<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<VbdAction, XenbusError> {
        use VbdPhase as P;
        use XenbusState as X;
        if matches!(self.phase, P::Allocating | P::Draining) {
            return Ok(VbdAction::Idle);
        }
        if self.phase == P::Closed {
            return Ok(VbdAction::Closed);
        }
        let be = self.backend_path(s)?;
        let be_state = read_state(s, &join(&be, "state"))?;
        match (self.phase, be_state) {
            (P::Connected | P::Initialised, None | Some(X::Closing | X::Closed | X::Unknown)) => {
                if self.phase == P::Connected {
                    self.phase = P::Draining;
                    self.set_state(s, X::Closing)?;
                    Ok(VbdAction::Drain)
                } else {
                    self.drained(s)?;
                    Ok(VbdAction::Closed)
                }
            }
            (P::New, Some(X::InitWait | X::Initialised | X::Connected)) => {
                let max: u32 = read_opt_num(s, &join(&be, "max-ring-page-order"))?.unwrap_or(0);
                self.set_state(s, X::Initialising)?;
                self.phase = P::Allocating;
                Ok(VbdAction::AllocateRing {
                    order: max.min(VBD_MAX_RING_ORDER),
                    backend_id: self.backend_id,
                })
            }
            (P::Initialised, Some(X::Connected)) => {
                let info = self.read_info(s, &be)?;
                self.set_state(s, X::Connected)?;
                self.phase = P::Connected;
                Ok(VbdAction::Connected(info))
            }
            _ => Ok(VbdAction::Idle),
        }
    }

    fn read_info<S: Store + ?Sized>(&self, s: &mut S, be: &str) -> Result<VbdInfo, XenbusError> {
        let sectors: u64 = read_num(s, &join(be, "sectors"))?;
        let sskey = join(be, "sector-size");
        let sector_size: u32 = read_num(s, &sskey)?;
        if !(512..=65536).contains(&sector_size) || !sector_size.is_power_of_two() {
            return Err(XenbusError::Invalid {
                key: sskey,
                value: sector_size.to_string(),
            });
        }
        Ok(VbdInfo {
            sectors,
            sector_size,
            info: read_opt_num(s, &join(be, "info"))?.unwrap_or(0),
            max_indirect_segments: read_opt_num(s, &join(be, "feature-max-indirect-segments"))?
                .unwrap_or(0),
            persistent: self.persistent && read_bool(s, &join(be, "feature-persistent"))?,
            flush_cache: read_bool(s, &join(be, "feature-flush-cache"))?,
            barrier: read_bool(s, &join(be, "feature-barrier"))?,
            discard: read_bool(s, &join(be, "feature-discard"))?,
        })
    }

    /// The caller allocated the ring for [`VbdAction::AllocateRing`]: publish `ring-ref`
    /// (order 0) or `ring-page-order` + `ring-ref<i>`, `event-channel`, `protocol` and
    /// `feature-persistent`, then go Initialised.
    pub fn ring_ready<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
        ring: &VbdRing,
    ) -> Result<(), XenbusError> {
        let d = &self.dev;
        if ring.refs.len() == 1 {
            s.write(
                &join(d, "ring-ref"),
                &ring.refs.first().copied().unwrap_or(0).to_string(),
            )?;
        } else {
            let order = ring.refs.len().trailing_zeros();
            s.write(&join(d, "ring-page-order"), &order.to_string())?;
            s.write(&join(d, "num-ring-pages"), &ring.refs.len().to_string())?;
            for (i, r) in ring.refs.iter().enumerate() {
                s.write(&format!("{d}/ring-ref{i}"), &r.to_string())?;
            }
        }
        s.write(&join(d, "event-channel"), &ring.evtchn.to_string())?;
        s.write(&join(d, "protocol"), "x86_64-abi")?;
        s.write(
            &join(d, "feature-persistent"),
            if self.persistent { "1" } else { "0" },
        )?;
        self.set_state(s, XenbusState::Initialised)?;
        self.phase = VbdPhase::Initialised;
        Ok(())
    }

    /// The caller finished every in-flight request and released the ring: go Closed.
    pub fn drained<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<(), XenbusError> {
        self.set_state(s, XenbusState::Closed)?;
        self.phase = VbdPhase::Closed;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
