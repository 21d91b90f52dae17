//! The mapping budget: which ring order a new device is offered (`pvfs_kernel::ringorder`),
//! and refusing a device when nothing is left, so that pvfs stays up and the toolstack sees
//! why.

use super::{Service, RINGS};
use crate::xen::gnttab;
use crate::xen::store::XsStore;
use alloc::format;
use pvfs_kernel::ringorder::{frames_needed, offer_order};
use pvfs_ring::xenbus::BackendPhase;

impl Service {
    /// Frames promised to devices that were offered an order but have not connected yet
    /// (their rings are not mapped, so the window does not count them).
    fn promised_frames(&self) -> u64 {
        self.devices
            .values()
            .filter(|d| d.link.is_none())
            .filter(|d| {
                matches!(
                    d.machine.phase(),
                    BackendPhase::New | BackendPhase::InitWait | BackendPhase::Connecting
                )
            })
            .filter_map(|d| d.offered)
            .map(|o| frames_needed(o, RINGS))
            .fold(0u64, u64::saturating_add)
    }

    /// The ring order to offer a new device, from what is left of the mapping window.
    pub(super) fn ring_offer(&self) -> Option<u32> {
        let free = gnttab::window_free_frames().saturating_sub(self.promised_frames());
        offer_order(free, RINGS, super::MAX_RING_ORDER)
    }

    /// A new device that was offered no order is refused at once (state Closed, `error`):
    /// the mapping window has no room for even the smallest rings.
    pub(super) fn check_budget(&mut self, key: (u16, u32)) {
        let promised = self.promised_frames();
        let Some(d) = self.devices.get_mut(&key) else {
            return;
        };
        if d.offered.is_some() {
            return;
        }
        let why = format!(
            "no room to map the device's rings: {} frames of pvfs's mapping window free, {promised} promised to devices not yet connected, {} needed at least (README, Limits)",
            gnttab::window_free_frames(),
            frames_needed(0, RINGS)
        );
        log::warn!("9pfs: guest {} device {}: refused: {why}", key.0, key.1);
        let _ = d.machine.refuse(&mut XsStore, &why);
    }
}
