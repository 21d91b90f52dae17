//! A device's rate limits (`max-iops`, `max-bps`; `pvfs_kernel::throttle`): read when it
//! connects and whenever a key changes, checked before its rings are served, and the time
//! at which a held-back device may be served again, for the serve loop's timer.

use super::{Link, Service};
use crate::xen::store::XsStore;
use alloc::format;
use pvfs_ring::xenbus::RateKeys;

impl Service {
    /// Reads a connected device's rate keys again; they apply from the next pass. A key that
    /// is not a positive number leaves the limits as they were, with a warning.
    pub(super) fn reload_rates(&mut self, key: (u16, u32)) {
        let be = format!("{}/{}/{}", self.base, key.0, key.1);
        let Some(link) = self.devices.get_mut(&key).and_then(|d| d.link.as_mut()) else {
            return;
        };
        apply_rates(link, &be, key);
    }

    /// When the earliest held-back device may be served again (ns), if one is held back.
    pub fn throttle_due(&self) -> Option<u64> {
        self.throttle_due
    }
}

/// Reads the rate keys under `be` into `link`'s throttle.
pub(super) fn apply_rates(link: &mut Link, be: &str, key: (u16, u32)) {
    match RateKeys::read(&mut XsStore, be) {
        Ok(r) => {
            let now = crate::xen::time::now_ns();
            let before = link.throttle.limits();
            link.throttle.set(r.max_iops, r.max_bps, now);
            if link.throttle.limits() != before {
                log::info!(
                    "9pfs: guest {} device {}: rate limits now max-iops {:?} max-bps {:?}",
                    key.0,
                    key.1,
                    r.max_iops,
                    r.max_bps
                );
                link.stats.touch();
            }
        }
        Err(e) => log::warn!(
            "9pfs: guest {} device {}: rate keys not valid ({e:?}); limits unchanged",
            key.0,
            key.1
        ),
    }
}

/// Whether `link` may be served at `now`: if it is held back by its limits, when it may be
/// served, folded into `due`.
pub(super) fn admit(link: &mut Link, now: u64, due: &mut Option<u64>) -> bool {
    if !link.throttle.is_limited() {
        return true;
    }
    match link.throttle.admit(now) {
        Ok(()) => true,
        Err(wait) => {
            let at = now.saturating_add(wait);
            *due = Some(due.map_or(at, |d| d.min(at)));
            // the held time shows in `stats` while it lasts
            link.stats.touch();
            false
        }
    }
}
