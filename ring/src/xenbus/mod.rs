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

mod connect;
mod keys;
mod p9backend;
mod platform;
mod route;
mod store;
mod vbd;

pub use connect::{connect_rings, disconnect_rings, ConnectError, ConnectedRing};
pub use keys::{
    is_mode_key, read_mode, BackendConfig, ConnectPlan, ExportConfig, QuotaKeys, RateKeys,
    RingKeys, MAX_DEVICES, MODE_KEY, QUOTA_KEYS, RATE_KEYS, TEMPLATE_KEY,
};
pub use p9backend::{
    BackendAction, BackendPhase, P9Backend, DETACH_BUSY, DETACH_IF_IDLE, DETACH_KEY, FIDS_KEY,
    STATS_FIELDS, STATS_KEY,
};
pub use platform::{FakeError, FakePlatform, PageRun, Platform};
pub use route::{route, scan_backends, Route};
pub use store::{MemStore, Store, StoreError};
pub use vbd::{
    VbdAction, VbdFrontend, VbdInfo, VbdPhase, VbdRing, VdiskInfo, VBD_MAX_BYTES,
    VBD_MAX_RING_ORDER, VBD_MAX_SECTOR_SIZE,
};

use alloc::format;
use alloc::string::{String, ToString};

// A table of `io/xenbus.h`'s numbers; `MsgType` (xenstore.rs), the kernel's `HvmParam` and
// the share tool's exit `Kind` look the same only because each is a numbered C-style enum.
u32_enum! {
/// Device states (`enum xenbus_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
}

impl XenbusState {
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

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_vbd_resize;
