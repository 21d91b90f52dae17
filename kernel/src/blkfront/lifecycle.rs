//! Connecting the device (the xenbus handshake), following the backend's state, and
//! closing and releasing it.

use super::{
    Blkfront, SetupError, INDIRECT_PAGES, MAX_INDIRECT_SEGS, MAX_RING_ORDER, POOL_PAGES,
    SETUP_WAKEUPS,
};
use crate::pages::Pages;
use crate::xen::events;
use crate::xen::gnttab::{self, GrantRef};
use crate::xen::shmem::PageMem;
use crate::xen::store::{self, XsStore};
use alloc::format;
use alloc::vec::Vec;
use pvfs_ring::blkif;
use pvfs_ring::shared_ring::FrontRing;
use pvfs_ring::xenbus::{VbdAction, VbdFrontend, VbdRing};

impl Blkfront {
    /// Runs the xenbus handshake for `device/vbd/<devid>` and returns a connected device. The
    /// decisions (which keys, which states, when) are made by the host-tested
    /// `pvfs_ring::xenbus::VbdFrontend`; this function allocates and grants what it asks for.
    pub fn connect(devid: u32) -> Result<Self, SetupError> {
        let fe = format!("device/vbd/{devid}");
        let mut machine = VbdFrontend::new(&fe, true);
        let mut ring: Option<(Pages, Vec<GrantRef>, u32, u16)> = None;
        let mut wakeups = 0u32;
        let info = loop {
            match machine
                .step(&mut XsStore)
                .map_err(|e| SetupError(format!("{fe}: {e:?}")))?
            {
                VbdAction::Idle => {
                    wakeups += 1;
                    if wakeups > SETUP_WAKEUPS {
                        return Err(SetupError(format!(
                            "{fe}: timed out waiting for the backend"
                        )));
                    }
                    // The machine watches the backend state; drain events, then sleep.
                    while let Ok(Some(_)) = store::next_watch_event() {}
                    events::wait(None);
                }
                VbdAction::AllocateRing { order, backend_id } => {
                    let npages = 1usize << order.min(MAX_RING_ORDER);
                    let pages = Pages::new(npages)
                        .ok_or_else(|| SetupError("no memory for the ring".into()))?;
                    let mut refs = Vec::new();
                    for i in 0..npages {
                        refs.push(
                            gnttab::grant(backend_id, pages.pfn(i), false)
                                .map_err(|e| SetupError(format!("grant ring: {e:?}")))?,
                        );
                    }
                    let port = events::alloc_unbound(backend_id)
                        .map_err(|e| SetupError(format!("evtchn: {e:?}")))?;
                    let keys = VbdRing {
                        refs: refs.clone(),
                        evtchn: port,
                    };
                    ring = Some((pages, refs, port, backend_id));
                    machine
                        .ring_ready(&mut XsStore, &keys)
                        .map_err(|e| SetupError(format!("{fe}: {e:?}")))?;
                }
                VbdAction::Connected(info) => break info,
                VbdAction::Drain | VbdAction::Closed => {
                    return Err(SetupError(format!(
                        "{fe}: backend closed during the handshake"
                    )))
                }
            }
        };
        let (ring_pages, ring_refs, port, be_id) =
            ring.ok_or_else(|| SetupError("connected without a ring".into()))?;
        let npages = ring_refs.len();
        // SAFETY: the ring pages are owned by this Blkfront (kept alive in `ring_pages`) and
        // are accessed only through this PageMem once granted.
        let mem = unsafe { PageMem::new(ring_pages.addr(), npages * 4096) };
        let ring = FrontRing::init(&mem, blkif::ENTRY_SIZE)
            .map_err(|e| SetupError(format!("ring init: {e:?}")))?;

        // Persistent bounce pages for data and indirect descriptors. With feature-persistent,
        // blkback maps every grant read-write (indirect pages included), so none is read-only.
        let pool = Pages::new(POOL_PAGES)
            .ok_or_else(|| SetupError("no memory for the bounce pool".into()))?;
        let mut pool_refs = Vec::with_capacity(POOL_PAGES);
        for i in 0..POOL_PAGES {
            pool_refs.push(
                gnttab::grant(be_id, pool.pfn(i), false)
                    .map_err(|e| SetupError(format!("grant pool: {e:?}")))?,
            );
        }
        let indirect = Pages::new(INDIRECT_PAGES)
            .ok_or_else(|| SetupError("no memory for indirect pages".into()))?;
        let mut indirect_refs = Vec::with_capacity(INDIRECT_PAGES);
        for i in 0..INDIRECT_PAGES {
            indirect_refs.push(
                gnttab::grant(be_id, indirect.pfn(i), false)
                    .map_err(|e| SetupError(format!("grant indirect: {e:?}")))?,
            );
        }
        let flush_op = if info.flush_cache {
            Some(false)
        } else if info.barrier {
            Some(true)
        } else {
            None
        };
        let max_segs = if info.max_indirect_segments > blkif::MAX_SEGMENTS as u32 {
            info.max_indirect_segments.min(MAX_INDIRECT_SEGS)
        } else {
            blkif::MAX_SEGMENTS as u32
        };
        let nr = ring.geometry().nr_ents() as usize;
        log::info!(
            "blkfront: vbd {devid} connected: {} MiB, {}-byte sectors{}, ring {npages} page(s)/{nr} slots, {max_segs} segments/request{}, persistent grants: {}, flush: {flush_op:?}",
            (info.sectors * 512) >> 20,
            info.sector_size,
            if info.read_only() { ", read-only" } else { "" },
            if info.max_indirect_segments > 0 { " (indirect)" } else { "" },
            info.persistent,
        );
        if info.sector_size > 4096 {
            return Err(SetupError(format!(
                "unsupported sector-size {}",
                info.sector_size
            )));
        }
        Ok(Self {
            devid,
            machine,
            fe,
            be_id,
            ring_pages,
            ring_refs,
            mem,
            ring,
            port,
            // `sectors` is in 512-byte units (blkif).
            sectors: info.sectors,
            sector_size: info.sector_size,
            readonly: info.read_only(),
            flush_op,
            max_segs,
            pool,
            pool_refs,
            free_pages: (0..POOL_PAGES as u16).rev().collect(),
            indirect,
            indirect_refs,
            free_indirect: (0..INDIRECT_PAGES as u16).rev().collect(),
            slots: (0..nr).map(|_| None).collect(),
            posted_err: None,
            ready: Vec::new(),
            ready_buf: Vec::new(),
            broken: false,
            closed: false,
            completed: 0,
        })
    }

    /// The xenstore watch token of this device's backend-state watch.
    pub fn watch_token(&self) -> &str {
        &self.fe
    }

    /// Handles a change of the backend's state. When the backend (or the toolstack, e.g.
    /// `xl block-detach`) starts closing, every request in flight completes first, then the
    /// device goes Closed and releases its ring, grants and event channel; later requests fail
    /// with an I/O error instead of hanging. Returns true once the device is closed.
    pub fn on_backend_event(&mut self) -> bool {
        if self.closed {
            return true;
        }
        match self.machine.step(&mut XsStore) {
            Ok(VbdAction::Drain) | Ok(VbdAction::Closed) => {
                log::warn!(
                    "blkfront: vbd {}: backend is closing; draining and disconnecting",
                    self.devid
                );
                let _ = self.kick();
                let _ = self.complete(&mut [], 1);
                let _ = self.machine.drained(&mut XsStore);
                self.release();
                true
            }
            Ok(_) => false,
            Err(e) => {
                log::warn!("blkfront: vbd {}: {e:?}", self.devid);
                false
            }
        }
    }

    /// Releases the event channel and the grants. Pages the backend still has mapped are
    /// never reused: they are leaked rather than returned to the heap.
    fn release(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.broken = true;
        let _ = events::close(self.port);
        let mut busy = false;
        for r in self
            .ring_refs
            .drain(..)
            .chain(self.pool_refs.drain(..))
            .chain(self.indirect_refs.drain(..))
        {
            busy |= gnttab::end_access(r).is_err();
        }
        if busy {
            log::warn!(
                "blkfront: vbd {}: backend still maps some pages; leaking them",
                self.devid
            );
            let pages = [
                core::mem::replace(&mut self.ring_pages, Pages::empty()),
                core::mem::replace(&mut self.pool, Pages::empty()),
                core::mem::replace(&mut self.indirect, Pages::empty()),
            ];
            alloc::boxed::Box::leak(alloc::boxed::Box::new(pages));
        }
        log::info!(
            "blkfront: vbd {} (backend domain {}) closed",
            self.devid,
            self.be_id
        );
    }

    /// Closes the device from our side (clean shutdown): completes in-flight requests, goes
    /// Closing, then Closed, each time waiting until `deadline_ns` (Xen system time; the caller
    /// arms a timer for it) for the backend to follow — blkback unmaps its persistent grants
    /// when the frontend is Closed, so ours can be ended after that — and releases everything.
    /// With `None` it does not wait (what the backend still maps is then leaked).
    pub fn close(mut self, deadline_ns: Option<u64>) {
        let _ = self.kick();
        let _ = self.complete(&mut [], 1);
        let be_state = self.machine.backend().map(|b| format!("{b}/state"));
        let fe_state = format!("{}/state", self.fe);
        for (ours, theirs) in [("5", ["5", "6"]), ("6", ["6", "6"])] {
            if store::write(&fe_state, ours).is_err() {
                break;
            }
            let (Some(deadline), Some(be_state)) = (deadline_ns, be_state.as_deref()) else {
                continue;
            };
            loop {
                match store::read(be_state) {
                    Ok(v) if theirs.contains(&v.as_str()) => break,
                    Ok(_) => {}
                    // The backend directory is gone: nothing left to wait for.
                    Err(_) => break,
                }
                if crate::xen::time::now_ns() >= deadline {
                    log::warn!(
                        "blkfront: vbd {}: the backend did not follow state {ours} in time",
                        self.devid
                    );
                    break;
                }
                // Wakes on the backend state watch or on the caller's timer. Pending watch
                // events are dropped: the domain is shutting down.
                while let Ok(Some(_)) = store::next_watch_event() {}
                events::wait(None);
            }
        }
        self.release();
    }
}
