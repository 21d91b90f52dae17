//! Connecting the device (the xenbus handshake), following the backend's state, and
//! closing and releasing it.

use super::{
    BackendEvent, Blkfront, Io, Port, SetupError, INDIRECT_PAGES, MAX_INDIRECT_SEGS,
    MAX_RING_ORDER, POOL_PAGES, SETUP_WAKEUPS,
};
use crate::xen::events;
use crate::xen::granted::GrantedPages;
use crate::xen::store::{self, XsStore};
use alloc::format;
use pvfs_ring::blkif::engine::{DiskConfig, Engine, FlushOp};
use pvfs_ring::blkif::MAX_SEGMENTS;
use pvfs_ring::xenbus::{VbdAction, VbdFrontend, VbdInfo, VbdRing};

impl Blkfront {
    /// Runs the xenbus handshake for `device/vbd/<devid>` and returns a connected device. The
    /// decisions (which keys, which states, when) are made by the host-tested
    /// `pvfs_ring::xenbus::VbdFrontend`; this function allocates and grants what it asks for.
    /// On failure every page granted so far is released through [`GrantedPages`]' drop:
    /// access ended, or the page leaked and counted if the backend already maps it.
    pub fn connect(devid: u32) -> Result<Self, SetupError> {
        let fe = format!("device/vbd/{devid}");
        let mut machine = VbdFrontend::new(&fe, true);
        let mut ring: Option<(GrantedPages, u32, u16)> = None;
        let mut wakeups = 0u32;
        let result = loop {
            let step = match machine.step(&mut XsStore) {
                Ok(s) => s,
                Err(e) => break Err(SetupError(format!("{fe}: {e:?}"))),
            };
            match step {
                VbdAction::Idle => {
                    wakeups += 1;
                    if wakeups > SETUP_WAKEUPS {
                        break Err(SetupError(format!(
                            "{fe}: timed out waiting for the backend"
                        )));
                    }
                    // The machine watches the backend state; drain events, then sleep.
                    while let Ok(Some(_)) = store::next_watch_event() {}
                    events::wait(None);
                }
                VbdAction::AllocateRing { order, backend_id } => {
                    let npages = 1usize << order.min(MAX_RING_ORDER);
                    let pages = match GrantedPages::new(npages, backend_id) {
                        Ok(p) => p,
                        Err(e) => break Err(SetupError(format!("ring: {e}"))),
                    };
                    let port = match events::alloc_unbound(backend_id) {
                        Ok(p) => p,
                        Err(e) => break Err(SetupError(format!("evtchn: {e:?}"))),
                    };
                    let keys = VbdRing {
                        refs: pages.refs().to_vec(),
                        evtchn: port,
                    };
                    ring = Some((pages, port, backend_id));
                    if let Err(e) = machine.ring_ready(&mut XsStore, &keys) {
                        break Err(SetupError(format!("{fe}: {e:?}")));
                    }
                }
                VbdAction::Connected(info) => break Ok(info),
                // Only once connected; the handshake goes on.
                VbdAction::Grew { .. } | VbdAction::ShrinkRefused { .. } => {}
                VbdAction::Drain | VbdAction::Closed => {
                    break Err(SetupError(format!(
                        "{fe}: backend closed during the handshake"
                    )))
                }
            }
        };
        let Some((ring_pages, port, be_id)) = ring else {
            return Err(result
                .err()
                .unwrap_or_else(|| SetupError("connected without a ring".into())));
        };
        let io = result.and_then(|info| Self::engine(devid, &info, ring_pages, port, be_id));
        match io {
            Ok((io, info)) => Ok(Self {
                devid,
                machine,
                fe,
                be_id,
                port,
                sectors: info.sectors,
                sector_size: info.sector_size,
                readonly: info.read_only(),
                io: Some(io),
            }),
            Err(e) => {
                // The pages went with the engine or the error; the port goes now.
                let _ = events::close(port);
                Err(e)
            }
        }
    }

    /// Grants the bounce pool and the indirect pages and starts the engine over them and
    /// the ring.
    fn engine(
        devid: u32,
        info: &VbdInfo,
        ring_pages: GrantedPages,
        port: u32,
        be_id: u16,
    ) -> Result<(Io, VbdInfo), SetupError> {
        let npages = ring_pages.refs().len();
        // Persistent bounce pages for data and indirect descriptors. With feature-persistent,
        // blkback maps every grant read-write (indirect pages included), so none is read-only.
        let pool = GrantedPages::new(POOL_PAGES, be_id)
            .map_err(|e| SetupError(format!("bounce pool: {e}")))?;
        let indirect = GrantedPages::new(INDIRECT_PAGES, be_id)
            .map_err(|e| SetupError(format!("indirect pages: {e}")))?;
        let flush = if info.flush_cache {
            Some(FlushOp::DiskCache)
        } else if info.barrier {
            Some(FlushOp::Barrier)
        } else {
            None
        };
        let max_segments = if info.max_indirect_segments > MAX_SEGMENTS as u32 {
            info.max_indirect_segments.min(MAX_INDIRECT_SEGS)
        } else {
            MAX_SEGMENTS as u32
        };
        let cfg = DiskConfig {
            handle: devid as u16,
            // In 512-byte units (blkif), range-checked by `VbdFrontend`.
            sectors: info.sectors,
            sector_size: info.sector_size,
            read_only: info.read_only(),
            flush,
            max_segments,
        };
        let io = Engine::new(cfg, ring_pages, pool, indirect, Port(port))
            .map_err(|e| SetupError(format!("vbd {devid}: {e:?}")))?;
        log::info!(
            "blkfront: vbd {devid} connected: {} MiB, {}-byte sectors{}, ring {npages} page(s)/{} slots, {} segments/request{}, persistent grants: {}, flush: {flush:?}",
            info.size_bytes() >> 20,
            info.sector_size,
            if info.read_only() { ", read-only" } else { "" },
            io.ring_slots(),
            io.config().max_segments,
            if info.max_indirect_segments > 0 { " (indirect)" } else { "" },
            info.persistent,
        );
        Ok((io, *info))
    }

    /// The xenstore watch token of this device's backend-state watch.
    pub fn watch_token(&self) -> &str {
        &self.fe
    }

    /// Handles a change of the backend's state. When the backend (or the toolstack, e.g.
    /// `xl block-detach`) starts closing, every request in flight completes first, then the
    /// device goes Closed and releases its ring, grants and event channel; later requests fail
    /// with an I/O error instead of hanging. When the backend announces a larger disk while
    /// connected (its backing device grew), requests may reach the new end from now on; a
    /// smaller one is logged and the size kept.
    pub fn on_backend_event(&mut self) -> BackendEvent {
        if self.io.is_none() {
            return BackendEvent::Closed;
        }
        match self.machine.step(&mut XsStore) {
            Ok(VbdAction::Drain) | Ok(VbdAction::Closed) => {
                log::warn!(
                    "blkfront: vbd {}: backend is closing; draining and disconnecting",
                    self.devid
                );
                if let Some(io) = self.io.as_mut() {
                    io.drain();
                }
                let _ = self.machine.drained(&mut XsStore);
                self.release();
                BackendEvent::Closed
            }
            Ok(VbdAction::Grew { before, sectors }) => {
                let grown = self.io.as_mut().map(|io| io.grow_to(sectors));
                match grown {
                    Some(Ok(())) => {
                        self.sectors = sectors;
                        log::info!(
                            "blkfront: vbd {}: the disk grew from {} to {} MiB",
                            self.devid,
                            before / 2048,
                            sectors / 2048
                        );
                        BackendEvent::Grew(self.size_bytes())
                    }
                    Some(Err(e)) => {
                        log::warn!(
                            "blkfront: vbd {}: the disk grew to {sectors} sectors, which cannot be used: {e:?}",
                            self.devid
                        );
                        BackendEvent::Nothing
                    }
                    None => BackendEvent::Closed,
                }
            }
            Ok(VbdAction::ShrinkRefused { kept, announced }) => {
                log::warn!(
                    "blkfront: vbd {}: the backend announced {announced} sectors, fewer than the {kept} in use; keeping {kept} (a mounted volume cannot shrink; its last blocks may now fail)",
                    self.devid
                );
                BackendEvent::Nothing
            }
            Ok(_) => BackendEvent::Nothing,
            Err(e) => {
                log::warn!("blkfront: vbd {}: {e:?}", self.devid);
                BackendEvent::Nothing
            }
        }
    }

    /// Stops the engine, closes the event channel and releases the grants: dropping the
    /// engine drops its [`GrantedPages`], which end the backend's access, or leak and count
    /// pages the backend still maps.
    fn release(&mut self) {
        let Some(mut io) = self.io.take() else {
            return;
        };
        io.stop();
        let _ = events::close(self.port);
        drop(io);
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
        if let Some(io) = self.io.as_mut() {
            io.drain();
        }
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
