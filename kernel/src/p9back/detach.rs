//! What a device's guest has attached: the `fids` key pvfs publishes in each device's backend
//! directory, and the toolstack's request to detach a device only if the guest has nothing
//! attached (`detach` = `if-idle`, written by `pvfs share rm` without `--force`).
//!
//! pvfs decides a detach request itself, in its single service thread, from the connection's
//! live fid table, so a mount cannot slip in between the check and the teardown: either the
//! guest's attach was served first (the device is in use and the request is answered `busy`)
//! or the device is offline and torn down in the same step, and no request of its rings is
//! served any more.

use super::{Link, Service};
use crate::xen::store;
use crate::xen::store::XsStore;
use alloc::format;
pub(super) use pvfs_kernel::detach::{verdict, Verdict};
use pvfs_ring::xenbus::FIDS_KEY;

/// Whether none of a device's rings has a request produced, queued or unanswered.
pub(super) fn quiet(link: &Link) -> bool {
    link.rings
        .iter()
        .all(|r| r.work.is_idle() && r.ring.ring.request_bytes(&r.ring.intf, &r.ring.data) == Ok(0))
}

impl Service {
    /// Writes each device's number of fids in use to its `fids` key where it changed since
    /// the last write (called with the counters, so at most about once a second). A write
    /// goes into a transaction that checks the device's `state` is still there, so a device
    /// the toolstack has just removed does not get a node back.
    pub fn publish_fids(&mut self) {
        for (key, d) in self.devices.iter_mut() {
            let now = d.link.as_ref().map(|l| l.conn.fid_count());
            let target = now.unwrap_or(0);
            let due = match d.fids_published {
                Some(p) => p != target,
                None => now.is_some(),
            };
            if !due {
                continue;
            }
            let be = format!("{}/{}/{}", self.base, key.0, key.1);
            if write_if_present(&be, FIDS_KEY, &format!("{target}")) {
                d.fids_published = Some(target);
            }
        }
    }
}

/// Writes `<dir>/<key>` = `value` if `<dir>/state` exists, in one transaction; false if it
/// was not written (the directory is gone, or xenstored asked for a retry: the next call
/// tries again).
pub(super) fn write_if_present(dir: &str, key: &str, value: &str) -> bool {
    let Ok(tx) = store::transaction_start() else {
        return false;
    };
    let present = store::read_in(tx, &format!("{dir}/state")).is_ok();
    let wrote = present && store::write_in(tx, &format!("{dir}/{key}"), value).is_ok();
    store::transaction_end(tx, wrote).is_ok() && wrote
}

impl Service {
    /// Decides a detach request for device `key` (`BackendAction::DetachIfIdle`). Returns
    /// true if the device was taken offline and must be stepped again at once (to be torn
    /// down in the same service step); false if it was refused or waits for a later pass.
    pub(super) fn on_detach_request(&mut self, key: (u16, u32)) -> bool {
        let Some(d) = self.devices.get_mut(&key) else {
            return false;
        };
        let (fids, quiet) = match &d.link {
            Some(l) => (l.conn.fid_count(), quiet(l)),
            None => (0, true),
        };
        match verdict(fids, quiet, d.detach_waits) {
            Verdict::Busy => {
                d.detach_waits = 0;
                log::info!(
                    "9pfs: guest {} device {}: detach refused, the guest has {fids} fids in use",
                    key.0,
                    key.1
                );
                let _ = d.machine.detach_refused(&mut XsStore);
                false
            }
            Verdict::Wait => {
                d.detach_waits += 1;
                if let Some(l) = d.link.as_mut() {
                    for r in &mut l.rings {
                        r.hot = true;
                    }
                }
                false
            }
            Verdict::Detach => {
                d.detach_waits = 0;
                log::info!(
                    "9pfs: guest {} device {}: nothing attached; detaching it as asked",
                    key.0,
                    key.1
                );
                d.machine.detach_idle(&mut XsStore).is_ok()
            }
        }
    }
}
