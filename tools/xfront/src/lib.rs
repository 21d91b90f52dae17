//! `xfront`: a hostile 9pfs frontend for the real-Xen test bed (`ci/xen/scenarios/p9-hostile.sh`).
//!
//! It runs in dom0 and attaches to a 9pfs device that `pvfs share add 0 …` created for dom0,
//! as Linux's `9pnet_xen` would (`docs/architecture.md`, design notes §2): it grants its own
//! interface page and data area to the pvfs domain, allocates an event channel, writes
//! `version`, `num-rings`, `ring-ref0`, `event-channel-0` and state Initialised, and waits for
//! Connected. Then it misbehaves in one of the ways of [`cases::Case`] and reports what pvfs
//! did, in one `XFRONT` line.
//!
//! `xfront load` (module [`load`]) instead attaches to many such devices at once and runs a
//! normal session on each: a load generator for the scale test.
//!
//! Everything here is logic over the [`Platform`] trait; the binary's `sys` module is the only
//! place that touches `/dev/xen/gntalloc` and `/dev/xen/evtchn` (`unsafe`), and xenstore is
//! reached through the `xenstore-*` programs. `fake` (tests only) plays pvfs's side with the
//! real backend ring code of `pvfs-ring`.
#![forbid(unsafe_code)]

pub mod cases;
pub mod device;
pub mod load;
pub mod ring;
pub mod wire;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

use pvfs_ring::shmem::SharedMem;

/// What went wrong talking to Xen or to the backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub String);

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shorthand for results of this crate.
pub type Res<T> = Result<T, Error>;

/// Builds an [`Error`] from anything printable.
pub fn err(what: impl core::fmt::Display) -> Error {
    Error(what.to_string())
}

/// The few things a frontend needs from dom0's kernel and xenstore.
pub trait Platform {
    /// Granted memory, reached by copies only.
    type Mem: SharedMem;
    /// Allocates `pages` zeroed pages, grants them writable to `domid` and maps them as one
    /// region; returns the grant references in page order.
    fn grant(&mut self, domid: u16, pages: usize) -> Res<(Vec<u32>, Self::Mem)>;
    /// Allocates an event channel whose other end `remote` may bind; returns the local port.
    fn bind_unbound(&mut self, remote: u16) -> Res<u32>;
    /// Signals the event channel `port`.
    fn notify(&mut self, port: u32) -> Res<()>;
    /// Reads a xenstore node (`None`: it does not exist).
    fn xs_read(&mut self, path: &str) -> Option<String>;
    /// Writes a xenstore node.
    fn xs_write(&mut self, path: &str, value: &str) -> Res<()>;
    /// Lists a xenstore directory (empty when it does not exist).
    fn xs_list(&mut self, path: &str) -> Vec<String>;
    /// Waits `ms` milliseconds (the fake backend does its work here).
    fn sleep_ms(&mut self, ms: u64);
    /// Milliseconds since an arbitrary start.
    fn now_ms(&mut self) -> u64;
}
