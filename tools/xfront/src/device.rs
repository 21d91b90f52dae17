//! Attaching to and leaving a 9pfs device, as Linux's `9pnet_xen` does (one ring).

use std::cell::Cell;

use crate::ring::FrontRing;
use crate::{err, Platform, Res};

/// Xenbus states used here.
pub mod state {
    /// InitWait: the backend published its limits.
    pub const INIT_WAIT: u32 = 2;
    /// Initialised: the frontend wrote its ring keys.
    pub const INITIALISED: u32 = 3;
    /// Connected.
    pub const CONNECTED: u32 = 4;
    /// Closing.
    pub const CLOSING: u32 = 5;
    /// Closed.
    pub const CLOSED: u32 = 6;
}

/// Largest ring order this frontend asks for: 8 pages, 16 KiB per direction.
pub const ORDER: u32 = 3;

/// A connected device: the frontend directory, the backend's, and the ring.
#[derive(Debug)]
pub struct Device<M> {
    /// `/local/domain/0/device/9pfs/<devid>`.
    pub fe: String,
    /// The backend directory in pvfs's domain.
    pub be: String,
    /// pvfs's domain id.
    pub be_id: u16,
    /// The event channel (local port).
    pub port: u32,
    /// The data ring.
    pub ring: FrontRing<M>,
    /// When the backend's state was last read, and whether it had dropped the device: a
    /// xenstore read is a process in dom0, so it is read at most every [`STATE_POLL_MS`].
    seen: Cell<(Option<u64>, bool)>,
}

/// How often [`Device::dropped`] reads the backend's state.
pub const STATE_POLL_MS: u64 = 250;

/// The frontend directory of dom0's 9pfs device with `tag`.
pub fn find_by_tag<P: Platform>(p: &mut P, tag: &str) -> Res<String> {
    let base = "/local/domain/0/device/9pfs";
    for id in p.xs_list(base) {
        let dir = format!("{base}/{id}");
        if p.xs_read(&format!("{dir}/tag")).as_deref() == Some(tag) {
            return Ok(dir);
        }
    }
    Err(err(format!("dom0 has no 9pfs device tagged {tag:?}")))
}

/// The backend's xenbus state (`None`: its directory is gone).
pub fn backend_state<P: Platform>(p: &mut P, be: &str) -> Option<u32> {
    p.xs_read(&format!("{be}/state"))
        .and_then(|s| s.trim().parse().ok())
}

/// Waits up to `ms` for the backend state to satisfy `ok`; returns the last state seen.
pub fn wait_backend<P: Platform>(
    p: &mut P,
    be: &str,
    ms: u64,
    ok: impl Fn(Option<u32>) -> bool,
) -> (bool, Option<u32>) {
    let t0 = p.now_ms();
    loop {
        let s = backend_state(p, be);
        if ok(s) {
            return (true, s);
        }
        if p.now_ms().saturating_sub(t0) >= ms {
            return (false, s);
        }
        p.sleep_ms(20);
    }
}

/// Connects to the device whose frontend directory is `fe`: grants one ring, binds an event
/// channel, writes the frontend keys and waits (up to `ms`) for Connected.
pub fn connect<P: Platform>(p: &mut P, fe: &str, ms: u64) -> Res<Device<P::Mem>> {
    let be = p
        .xs_read(&format!("{fe}/backend"))
        .ok_or_else(|| err(format!("{fe}/backend is missing")))?;
    let be_id: u16 = p
        .xs_read(&format!("{fe}/backend-id"))
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| err(format!("{fe}/backend-id is missing")))?;
    let (ok, st) = wait_backend(p, &be, ms, |s| s == Some(state::INIT_WAIT));
    if !ok {
        return Err(err(format!(
            "backend never reached InitWait (state {st:?})"
        )));
    }
    let max: u32 = p
        .xs_read(&format!("{be}/max-ring-page-order"))
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0);
    let order = max.min(ORDER);
    let (irefs, intf) = p.grant(be_id, 1)?;
    let (drefs, data) = p.grant(be_id, 1 << order)?;
    let ring = FrontRing::new(intf, data, order, &drefs)?;
    let port = p.bind_unbound(be_id)?;
    let intf_ref = irefs
        .first()
        .copied()
        .ok_or_else(|| err("no grant for the interface page"))?;
    for (k, v) in [
        ("version", "1".to_string()),
        ("num-rings", "1".to_string()),
        ("ring-ref0", intf_ref.to_string()),
        ("event-channel-0", port.to_string()),
        ("state", state::INITIALISED.to_string()),
    ] {
        p.xs_write(&format!("{fe}/{k}"), &v)?;
    }
    let (ok, st) = wait_backend(p, &be, ms, |s| s == Some(state::CONNECTED));
    if !ok {
        let why = p.xs_read(&format!("{be}/error")).unwrap_or_default();
        return Err(err(format!(
            "backend did not connect (state {st:?}; error {why:?})"
        )));
    }
    p.xs_write(&format!("{fe}/state"), &state::CONNECTED.to_string())?;
    Ok(Device {
        fe: fe.to_string(),
        be,
        be_id,
        port,
        ring,
        seen: Cell::new((None, false)),
    })
}

impl<M: pvfs_ring::shmem::SharedMem> Device<M> {
    /// Tells pvfs there is something to do.
    pub fn kick<P: Platform<Mem = M>>(&self, p: &mut P) -> Res<()> {
        p.notify(self.port)
    }

    /// Whether pvfs has given up on the device (Closing, Closed or its directory gone), as
    /// of at most [`STATE_POLL_MS`] ago.
    pub fn dropped<P: Platform<Mem = M>>(&self, p: &mut P) -> bool {
        let now = p.now_ms();
        let (at, gone) = self.seen.get();
        if gone || at.is_some_and(|t| now.saturating_sub(t) < STATE_POLL_MS) {
            return gone;
        }
        let gone = !matches!(backend_state(p, &self.be), Some(s) if s <= state::CONNECTED);
        self.seen.set((Some(now), gone));
        gone
    }

    /// Leaves as a frontend does: Closing, wait (up to `ms`) for the backend to close, Closed.
    pub fn close<P: Platform<Mem = M>>(&self, p: &mut P, ms: u64) -> Res<Option<u32>> {
        p.xs_write(&format!("{}/state", self.fe), &state::CLOSING.to_string())?;
        let (_, st) = wait_backend(
            p,
            &self.be,
            ms,
            |s| !matches!(s, Some(s) if s <= state::CONNECTED),
        );
        p.xs_write(&format!("{}/state", self.fe), &state::CLOSED.to_string())?;
        Ok(st)
    }
}
