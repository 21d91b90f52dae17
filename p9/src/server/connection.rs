//! [`Connection`]: one client's state (negotiated msize, fid table, requests in flight, spare
//! buffers) and what a transport may ask of it outside requests.

use super::export::{seed_quota, SeedError, Shared};
use super::fids::Fid;
use super::MIN_MSIZE;
use crate::fs::{Errno, Filesystem};
use crate::idpolicy::SharePolicy;
use crate::policy::{Quota, QuotaUsage};
use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec::Vec;
use spin::Mutex;

/// A request between [`Connection::submit`] and the end of its execution.
#[derive(Debug, Default)]
pub(super) struct InFlight {
    /// A Tflush named it: its reply is not sent.
    pub(super) flushed: bool,
    /// Tags of the Tflushes waiting for it, answered after it.
    pub(super) flushes: Vec<u16>,
}

#[derive(Debug)]
pub(super) struct ConnState {
    /// 0 until Tversion.
    pub(super) msize: u32,
    pub(super) fids: BTreeMap<u32, Fid>,
    pub(super) inflight: BTreeMap<u16, InFlight>,
    /// Sent replies handed back for reuse ([`Connection::recycle`]).
    pub(super) spare: Vec<Vec<u8>>,
}

/// One client connection.
pub struct Connection<F: Filesystem> {
    pub(super) shared: Arc<Shared<F>>,
    pub(super) id: u64,
    pub(super) state: Mutex<ConnState>,
    /// The share's identity policy ([`Connection::set_policy`]).
    pub(super) policy: Mutex<Arc<SharePolicy>>,
}

impl<F: Filesystem> Connection<F> {
    /// This connection's id (unique within its server).
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The quota of this connection's export (shared with the export's other connections).
    pub fn quota(&self) -> &Quota {
        &self.shared.quota
    }

    /// [`Server::seed_quota`](super::Server::seed_quota) for this connection's export.
    pub fn seed_quota(&self, max_entries: u64) -> Result<QuotaUsage, SeedError> {
        seed_quota(&self.shared, max_entries)
    }

    /// The negotiated msize (0 before Tversion).
    pub fn msize(&self) -> u32 {
        self.state.lock().msize
    }

    /// The largest message the transport should accept next: the negotiated msize, or the
    /// export maximum before Tversion.
    pub fn max_message(&self) -> u32 {
        match self.msize() {
            0 => self.shared.cfg.max_msize.max(MIN_MSIZE),
            m => m,
        }
    }

    /// Number of fids in use.
    pub fn fid_count(&self) -> usize {
        self.state.lock().fids.len()
    }

    pub(super) fn fs(&self) -> &F {
        &self.shared.fs
    }

    /// Fails with `EROFS` on a read-only export or share.
    pub(super) fn writable(&self) -> Result<(), Errno> {
        if self.shared.cfg.read_only || self.policy.lock().read_only {
            Err(Errno::EROFS)
        } else {
            Ok(())
        }
    }
}

impl<F: Filesystem> Drop for Connection<F> {
    fn drop(&mut self) {
        self.clunk_all();
    }
}
