//! Each device's `stats` key (`pvfs_kernel::devstats`): written with the service's counters,
//! so at most about once a second, for the devices whose figures changed; with many busy
//! devices, [`MAX_PUBLISH_PER_PASS`] of them a pass, in turn.

use super::detach::write_if_present;
use super::Service;
use alloc::format;
use alloc::vec::Vec;
use pvfs_kernel::devstats::{publish_turn, QuotaFigures, RateFigures, MAX_PUBLISH_PER_PASS};
use pvfs_ring::xenbus::STATS_KEY;

impl Service {
    /// Whether some device's `stats` are due to be written.
    pub fn device_stats_pending(&self) -> bool {
        self.devices
            .values()
            .any(|d| d.link.as_ref().is_some_and(|l| l.stats.dirty()))
    }

    /// Writes the `stats` of the devices whose figures changed since their last write.
    pub fn publish_device_stats(&mut self) {
        let dirty: Vec<(u16, u32)> = self
            .devices
            .iter()
            .filter(|(_, d)| d.link.as_ref().is_some_and(|l| l.stats.dirty()))
            .map(|(k, _)| *k)
            .collect();
        for key in publish_turn(&dirty, self.stats_turn, MAX_PUBLISH_PER_PASS) {
            self.stats_turn = Some(key);
            let Some(link) = self.devices.get_mut(&key).and_then(|d| d.link.as_mut()) else {
                continue;
            };
            let quota = link.conn.quota();
            let usage = quota.usage();
            let measured = quota.seeded();
            let figures = QuotaFigures {
                bytes: measured.then_some(usage.bytes),
                files: measured.then_some(usage.files),
                open_files: usage.open_files,
            };
            let (max_iops, max_bps) = link.throttle.limits();
            let rates = RateFigures {
                max_iops,
                max_bps,
                waits: link.throttle.waits,
                held_ms: link.throttle.held_ms(crate::xen::time::now_ns()),
            };
            let value = link.stats.render(figures, rates);
            let be = format!("{}/{}/{}", self.base, key.0, key.1);
            // A device the toolstack has just removed gets no node back; a write that did
            // not happen (xenstored asked for a retry) is due again on the next pass.
            if !write_if_present(&be, STATS_KEY, &value) {
                link.stats.touch();
            }
        }
    }
}
