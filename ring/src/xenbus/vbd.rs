//! The block frontend machine for one `device/vbd/<id>` (`io/blkif.h`).

use super::{
    join, read_bool, read_num, read_opt_num, read_req, read_state, Store, XenbusError, XenbusState,
};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Debug;

bitflags::bitflags! {
    /// The backend's `info` key (`VDISK_*` in `io/blkif.h`). Bits pvfs does not know are kept.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
    pub struct VdiskInfo: u32 {
        /// CD-ROM (`VDISK_CDROM`).
        const CDROM = 1;
        /// Removable (`VDISK_REMOVABLE`).
        const REMOVABLE = 2;
        /// The disk is read-only (`VDISK_READONLY`).
        const READONLY = 4;
    }
}
/// Largest ring page order the frontend asks for (Linux's `xen_blkif_max_ring_order` cap).
pub const VBD_MAX_RING_ORDER: u32 = 4;
/// Largest logical sector size accepted (`sector-size`): a sector must fit one bounce page.
pub const VBD_MAX_SECTOR_SIZE: u32 = 4096;
/// Largest disk accepted, in bytes (1 PiB): byte positions (`sectors * 512`) and every sum of
/// a position and a request length stay far from `u64::MAX`, and ext4's 48-bit block numbers
/// of 4 KiB blocks reach 2^60 bytes, which this stays under.
pub const VBD_MAX_BYTES: u64 = 1 << 50;

/// Features and geometry the block backend advertised, read when it is Connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VbdInfo {
    /// Disk size in 512-byte sectors (`sectors`).
    pub sectors: u64,
    /// Logical sector size in bytes (`sector-size`).
    pub sector_size: u32,
    /// The `info` bits.
    pub info: VdiskInfo,
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
    /// Capacity in bytes (`sectors * 512`; [`VbdFrontend`] accepts only disks for which it
    /// is at most [`VBD_MAX_BYTES`], so this cannot overflow).
    pub fn size_bytes(&self) -> u64 {
        self.sectors.saturating_mul(512)
    }

    /// True if the disk is read-only.
    pub fn read_only(&self) -> bool {
        self.info.contains(VdiskInfo::READONLY)
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
    /// The backend announced a larger disk while connected (Linux's blkback rewrites
    /// `sectors`, then `state`, when its backing device grows): the disk now has `sectors`
    /// 512-byte sectors, `before` until now.
    Grew {
        /// The old size, in 512-byte sectors.
        before: u64,
        /// The new size, in 512-byte sectors (checked like the size at connect).
        sectors: u64,
    },
    /// The backend announced a smaller disk while connected. The machine keeps the size it
    /// had (a mounted file system cannot shrink under its blocks); the caller reports it.
    ShrinkRefused {
        /// The size kept, in 512-byte sectors.
        kept: u64,
        /// What the backend announced.
        announced: u64,
    },
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
    /// The disk's size while connected (512-byte sectors).
    sectors: u64,
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
            sectors: 0,
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
                self.sectors = info.sectors;
                Ok(VbdAction::Connected(info))
            }
            (P::Connected, Some(X::Connected)) => {
                let sectors = read_sectors(s, &be)?;
                let before = self.sectors;
                if sectors > before {
                    self.sectors = sectors;
                    Ok(VbdAction::Grew { before, sectors })
                } else if sectors < before {
                    Ok(VbdAction::ShrinkRefused {
                        kept: before,
                        announced: sectors,
                    })
                } else {
                    Ok(VbdAction::Idle)
                }
            }
            _ => Ok(VbdAction::Idle),
        }
    }

    fn read_info<S: Store + ?Sized>(&self, s: &mut S, be: &str) -> Result<VbdInfo, XenbusError> {
        let sectors = read_sectors(s, be)?;
        let sskey = join(be, "sector-size");
        let sector_size: u32 = read_num(s, &sskey)?;
        if !(512..=VBD_MAX_SECTOR_SIZE).contains(&sector_size) || !sector_size.is_power_of_two() {
            return Err(XenbusError::Invalid {
                key: sskey,
                value: sector_size.to_string(),
            });
        }
        Ok(VbdInfo {
            sectors,
            sector_size,
            info: VdiskInfo::from_bits_retain(read_opt_num(s, &join(be, "info"))?.unwrap_or(0)),
            max_indirect_segments: read_opt_num(s, &join(be, "feature-max-indirect-segments"))?
                .unwrap_or(0),
            persistent: self.persistent && read_bool(s, &join(be, "feature-persistent"))?,
            flush_cache: read_bool(s, &join(be, "feature-flush-cache"))?,
            barrier: read_bool(s, &join(be, "feature-barrier"))?,
            discard: read_bool(s, &join(be, "feature-discard"))?,
        })
    }

    /// The disk's size while connected, in 512-byte sectors (0 before).
    pub fn sectors(&self) -> u64 {
        self.sectors
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

/// The backend's `sectors`, range-checked where it enters (at connect and at every resize):
/// nothing downstream multiplies an unchecked value.
fn read_sectors<S: Store + ?Sized>(s: &mut S, be: &str) -> Result<u64, XenbusError> {
    let skey = join(be, "sectors");
    let sectors: u64 = read_num(s, &skey)?;
    if sectors == 0 || sectors.checked_mul(512).is_none_or(|b| b > VBD_MAX_BYTES) {
        return Err(XenbusError::Invalid {
            key: skey,
            value: sectors.to_string(),
        });
    }
    Ok(sectors)
}
