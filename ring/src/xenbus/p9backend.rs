//! The xenbus machine of one 9pfs backend device ([`P9Backend`]).

use super::{
    join, read_bool, read_num, read_opt_num, read_req, read_state, BackendConfig, ConnectPlan,
    ExportConfig, RingKeys, Store, XenbusError, XenbusState,
};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt::Debug;

use crate::p9ring::MAX_RING_ORDER;

/// What the caller must do after [`P9Backend::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendAction {
    /// Nothing to do now.
    Idle,
    /// Map and bind these rings ([`connect_rings`]), then call
    /// [`P9Backend::connected`] or [`P9Backend::connect_failed`].
    Connect(ConnectPlan),
    /// Unmap the rings, close the event channels and free the fids, then call
    /// [`P9Backend::torn_down`].
    Teardown,
    /// The device is finished and its backend directory removed: drop it.
    Remove,
    /// The toolstack asks for the device to be detached if the guest has nothing attached
    /// (`detach` = [`DETACH_IF_IDLE`], written by `pvfs share rm`): call
    /// [`P9Backend::detach_idle`] if the device has no fid in use and no request in flight,
    /// [`P9Backend::detach_refused`] if it has fids in use, or step again later (a request
    /// still being served, e.g. an attach) without taking new work in between.
    DetachIfIdle,
}

/// The backend key through which the toolstack asks for a detach of an unused device, and
/// through which pvfs answers a refusal ([`DETACH_BUSY`]); a detach that goes ahead removes
/// the backend directory.
pub const DETACH_KEY: &str = "detach";
/// [`DETACH_KEY`]'s request: detach the device unless the guest has anything attached.
pub const DETACH_IF_IDLE: &str = "if-idle";
/// [`DETACH_KEY`]'s answer when the guest has fids in use: the device stays as it was.
pub const DETACH_BUSY: &str = "busy";
/// The backend key with the number of fids the guest has in use on the device (its mounts'
/// files and directories), rewritten by pvfs at most about once a second while it changes.
pub const FIDS_KEY: &str = "fids";
/// The backend key with the device's statistics (`key=value` pairs, see
/// `pvfs_kernel::devstats`), rewritten by pvfs at most about once a second while they change;
/// `pvfs top` reads it.
pub const STATS_KEY: &str = "stats";
/// The fields of [`STATS_KEY`]'s value, in order, each `name=value` (a number, or `-` where
/// not measured); then `types=` with the requests by 9P type (`walk:12,read:40`).
pub const STATS_FIELDS: [&str; 18] = [
    "requests",
    "read_bytes",
    "written_bytes",
    "errors",
    "quota_refusals",
    "lat_count",
    "lat_sum_us",
    "lat_p50_us",
    "lat_p90_us",
    "lat_p99_us",
    "lat_max_us",
    "used_bytes",
    "used_files",
    "open_files",
    "max_iops",
    "max_bps",
    "throttle_waits",
    "throttled_ms",
];

/// Where a [`P9Backend`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendPhase {
    /// Not yet published.
    New,
    /// Keys published, state InitWait.
    InitWait,
    /// A [`BackendAction::Connect`] is with the caller.
    Connecting,
    /// Rings live, state Connected.
    Connected,
    /// A [`BackendAction::Teardown`] is with the caller.
    TearingDown,
    /// State Closed, rings released; may reconnect if the frontend reinitialises.
    Closed,
    /// Directory removed.
    Removed,
}

/// The xenbus machine of one 9pfs backend device.
#[derive(Debug, Clone)]
pub struct P9Backend {
    be: String,
    fe_domid: u16,
    devid: u32,
    cfg: BackendConfig,
    phase: BackendPhase,
    fe_watch: Option<String>,
    /// The toolstack itself wrote our state as Closed: it wants the device gone and waits for
    /// the backend directory to disappear.
    toolstack_closed: bool,
    /// Refused before it was offered ([`P9Backend::refuse`]): it stays closed.
    refused: bool,
    /// The state we wrote last.
    written: Option<XenbusState>,
}

impl P9Backend {
    /// A machine for the device whose backend directory is `be_path`
    /// (`/local/domain/<self>/backend/9pfs/<fe>/<dev>`).
    pub fn new(be_path: &str, fe_domid: u16, devid: u32, cfg: BackendConfig) -> Self {
        Self {
            be: be_path.to_string(),
            fe_domid,
            devid,
            cfg: BackendConfig {
                max_rings: cfg.max_rings.max(1),
                max_ring_page_order: cfg.max_ring_page_order.min(MAX_RING_ORDER),
            },
            phase: BackendPhase::New,
            fe_watch: None,
            toolstack_closed: false,
            refused: false,
            written: None,
        }
    }

    /// The current phase.
    pub fn phase(&self) -> BackendPhase {
        self.phase
    }

    /// `(frontend domid, devid)`.
    pub fn id(&self) -> (u16, u32) {
        (self.fe_domid, self.devid)
    }

    /// The backend directory.
    pub fn path(&self) -> &str {
        &self.be
    }

    fn set_state<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
        st: XenbusState,
    ) -> Result<(), XenbusError> {
        s.write(&join(&self.be, "state"), st.as_str())?;
        self.written = Some(st);
        Ok(())
    }

    fn publish<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<(), XenbusError> {
        s.write(&join(&self.be, "versions"), "1")?;
        s.write(
            &join(&self.be, "max-rings"),
            &self.cfg.max_rings.to_string(),
        )?;
        s.write(
            &join(&self.be, "max-ring-page-order"),
            &self.cfg.max_ring_page_order.to_string(),
        )?;
        s.write(&join(&self.be, "hotplug-status"), "connected")?;
        self.set_state(s, XenbusState::InitWait)?;
        self.phase = BackendPhase::InitWait;
        Ok(())
    }

    fn frontend_path<S: Store + ?Sized>(&self, s: &mut S) -> Result<Option<String>, XenbusError> {
        let Some(fe) = s.read(&join(&self.be, "frontend"))? else {
            return Ok(None);
        };
        // The toolstack writes frontend-id; a mismatch means a confused or hostile writer.
        if let Some(id) = read_opt_num::<u32, S>(s, &join(&self.be, "frontend-id"))? {
            if id != u32::from(self.fe_domid) {
                return Err(XenbusError::Invalid {
                    key: join(&self.be, "frontend-id"),
                    value: id.to_string(),
                });
            }
        }
        Ok(Some(fe))
    }

    /// Reads and validates the frontend's ring keys.
    fn read_plan<S: Store + ?Sized>(
        &self,
        s: &mut S,
        fe: &str,
    ) -> Result<ConnectPlan, XenbusError> {
        let export = ExportConfig::read(s, &self.be)?;
        let vkey = join(fe, "version");
        let version = read_req(s, &vkey)?;
        if version.trim() != "1" {
            return Err(XenbusError::Invalid {
                key: vkey,
                value: version,
            });
        }
        let nkey = join(fe, "num-rings");
        let n: u32 = read_num(s, &nkey)?;
        if n == 0 || n > self.cfg.max_rings {
            return Err(XenbusError::Invalid {
                key: nkey,
                value: n.to_string(),
            });
        }
        let mut rings = Vec::with_capacity(n as usize);
        for i in 0..n {
            rings.push(RingKeys {
                intf_ref: read_num(s, &format!("{fe}/ring-ref{i}"))?,
                evtchn: read_num(s, &format!("{fe}/event-channel-{i}"))?,
            });
        }
        Ok(ConnectPlan {
            fe_domid: self.fe_domid,
            export,
            rings,
        })
    }

    /// Reads both ends' state and decides what to do. Call on every watch event for this
    /// device (backend subtree or frontend state) and once after creation.
    pub fn step<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<BackendAction, XenbusError> {
        use BackendPhase as P;
        use XenbusState as X;
        if matches!(self.phase, P::Removed) {
            return Ok(BackendAction::Remove);
        }
        if matches!(self.phase, P::Connecting | P::TearingDown) {
            // Waiting on the caller.
            return Ok(BackendAction::Idle);
        }
        let be_state = read_state(s, &join(&self.be, "state"))?;
        let online = read_bool(s, &join(&self.be, "online"))?;
        let fe = self.frontend_path(s)?;
        if let (Some(fe), None) = (&fe, &self.fe_watch) {
            // One watch per device on the frontend's state: the subtree watch on our backend
            // directory does not see it. Removed with the device.
            let w = join(fe, "state");
            s.watch(&w, &self.be)?;
            self.fe_watch = Some(w);
        }
        let fe_state = match &fe {
            Some(fe) => read_state(s, &join(fe, "state"))?,
            None => None,
        };
        if self.phase == P::New {
            if be_state.is_none() {
                // The toolstack removed the device before we ever published.
                self.remove_dir(s)?;
                return Ok(BackendAction::Remove);
            }
            if matches!(fe_state, None | Some(X::Unknown)) {
                // The frontend directory is not there yet.
                return Ok(BackendAction::Idle);
            }
        }
        log::debug!(
            "{}: phase {:?}, backend state {:?}, online {online}, frontend state {:?}",
            self.be,
            self.phase,
            be_state,
            fe_state
        );
        let fe_gone = matches!(fe_state, None | Some(X::Unknown)) || be_state.is_none();
        let fe_closing = matches!(fe_state, Some(X::Closing | X::Closed));
        // We write Closed only when a device fails (with an `error` node); a closed device
        // otherwise stays in Closing. A Closed we did not write is the toolstack's: libxl 4.17
        // writes it when it destroys a guest whose 9pfs device it takes for a QEMU one (the
        // guest is paused, shut down or dying; 2 s after it starts, if the state is not Closed
        // yet), then waits up to 10 s for the backend directory to be removed, while the
        // frontend may still read Connected and `online` stays 1.
        if be_state == Some(X::Closed) && self.written != Some(X::Closed) {
            self.toolstack_closed = true;
        }
        let mut online = online;
        if online
            && !fe_gone
            && s.read(&join(&self.be, DETACH_KEY))?.as_deref() == Some(DETACH_IF_IDLE)
        {
            if matches!(self.phase, P::Connected) {
                return Ok(BackendAction::DetachIfIdle);
            }
            // Nothing is served on it: detach at once.
            s.write(&join(&self.be, "online"), "0")?;
            online = false;
        }
        let toolstack_closing = !online
            || (be_state == Some(X::Closing) && self.written != Some(X::Closing))
            || self.toolstack_closed;

        if fe_gone || fe_closing || toolstack_closing {
            if matches!(self.phase, P::Connected) {
                self.phase = P::TearingDown;
                if !fe_gone && !self.toolstack_closed {
                    self.set_state(s, X::Closing)?;
                }
                return Ok(BackendAction::Teardown);
            }
            // A refused device never served the guest: taken offline, it goes.
            return self.close(
                s,
                fe_gone
                    || (fe_state == Some(X::Closed) && !online)
                    || self.toolstack_closed
                    || (self.refused && !online),
            );
        }

        match self.phase {
            P::New | P::Closed => {
                if self.refused || (self.phase == P::Closed && fe_state != Some(X::Initialising)) {
                    // Stay closed until the frontend starts over.
                    return Ok(BackendAction::Idle);
                }
                self.publish(s)?;
                // Linux < 6.3 may already be Initialised: fall through to check.
                self.try_connect(s, fe.as_deref(), fe_state)
            }
            P::InitWait => self.try_connect(s, fe.as_deref(), fe_state),
            _ => Ok(BackendAction::Idle),
        }
    }

    fn try_connect<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
        fe: Option<&str>,
        fe_state: Option<XenbusState>,
    ) -> Result<BackendAction, XenbusError> {
        let (Some(fe), Some(XenbusState::Initialised | XenbusState::Connected)) = (fe, fe_state)
        else {
            return Ok(BackendAction::Idle);
        };
        match self.read_plan(s, fe) {
            Ok(plan) => {
                self.phase = BackendPhase::Connecting;
                Ok(BackendAction::Connect(plan))
            }
            Err(e) => {
                self.fail(s, &e)?;
                Err(e)
            }
        }
    }

    /// Records an error for the toolstack (`error` node) and closes the device.
    fn fail<S: Store + ?Sized>(&mut self, s: &mut S, e: &XenbusError) -> Result<(), XenbusError> {
        let _ = s.write(&join(&self.be, "error"), &format!("{e:?}"));
        self.set_state(s, XenbusState::Closing)?;
        self.set_state(s, XenbusState::Closed)?;
        self.phase = BackendPhase::Closed;
        Ok(())
    }

    fn close<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
        remove: bool,
    ) -> Result<BackendAction, XenbusError> {
        if remove {
            self.remove_dir(s)?;
            return Ok(BackendAction::Remove);
        }
        if self.phase != BackendPhase::Closed {
            // Closing, not Closed: see `step` (a toolstack Closed asks for removal).
            if self.written != Some(XenbusState::Closing) {
                self.set_state(s, XenbusState::Closing)?;
            }
            self.phase = BackendPhase::Closed;
        }
        Ok(BackendAction::Idle)
    }

    /// Removes the backend directory and the frontend state watch.
    fn remove_dir<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<(), XenbusError> {
        if let Some(w) = self.fe_watch.take() {
            s.unwatch(&w, &self.be)?;
        }
        s.remove(&self.be)?;
        self.phase = BackendPhase::Removed;
        Ok(())
    }

    /// After [`BackendAction::DetachIfIdle`]: the guest has nothing attached, so the device
    /// goes offline (`online` = 0, as the toolstack takes a device away) and the next
    /// [`step`](Self::step) tears it down and removes it.
    pub fn detach_idle<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<(), XenbusError> {
        s.write(&join(&self.be, "online"), "0")?;
        Ok(())
    }

    /// After [`BackendAction::DetachIfIdle`]: the guest has fids in use (a mount), so the
    /// request is answered [`DETACH_BUSY`] and the device keeps serving.
    pub fn detach_refused<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<(), XenbusError> {
        s.write(&join(&self.be, DETACH_KEY), DETACH_BUSY)?;
        Ok(())
    }

    /// The caller connected the rings of the last [`BackendAction::Connect`]: go Connected.
    pub fn connected<S: Store + ?Sized>(&mut self, s: &mut S) -> Result<(), XenbusError> {
        if self.phase != BackendPhase::Connecting {
            return Ok(());
        }
        self.set_state(s, XenbusState::Connected)?;
        self.phase = BackendPhase::Connected;
        Ok(())
    }

    /// Refuses the device before it is offered to the guest (its export cannot be served):
    /// records `why` in the `error` node and closes it, as a failed connect does, so the
    /// toolstack learns it without waiting for the guest.
    pub fn refuse<S: Store + ?Sized>(&mut self, s: &mut S, why: &str) -> Result<(), XenbusError> {
        if self.phase != BackendPhase::New {
            return Ok(());
        }
        let e = XenbusError::Invalid {
            key: join(&self.be, "path"),
            value: why.to_string(),
        };
        self.refused = true;
        self.fail(s, &e)
    }

    /// Connecting failed (bad ring order, unmappable grant…): record it and close.
    pub fn connect_failed<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
        why: &str,
    ) -> Result<(), XenbusError> {
        let e = XenbusError::Invalid {
            key: join(&self.be, "rings"),
            value: why.to_string(),
        };
        self.fail(s, &e)
    }

    /// The caller released everything after [`BackendAction::Teardown`]. Removes the backend
    /// directory if the frontend is gone or the toolstack took the device offline or wrote
    /// Closed (libxl waits for that removal on `xl destroy` and after a guest shut down);
    /// otherwise the state stays Closing and the device may reconnect. Returns
    /// [`BackendAction::Remove`] when the device is finished.
    pub fn torn_down<S: Store + ?Sized>(
        &mut self,
        s: &mut S,
    ) -> Result<BackendAction, XenbusError> {
        self.phase = BackendPhase::Closed;
        let online = read_bool(s, &join(&self.be, "online"))?;
        let fe = self.frontend_path(s).unwrap_or(None);
        let fe_state = match &fe {
            Some(fe) => read_state(s, &join(fe, "state"))?,
            None => None,
        };
        let gone = matches!(fe_state, None | Some(XenbusState::Unknown));
        if gone || !online || self.toolstack_closed {
            self.remove_dir(s)?;
            return Ok(BackendAction::Remove);
        }
        // The device stays, in Closing: the toolstack asks for its removal by writing Closed
        // (libxl does so once the guest has shut down), and the frontend may start over.
        if self.written != Some(XenbusState::Closing) {
            self.set_state(s, XenbusState::Closing)?;
        }
        Ok(BackendAction::Idle)
    }
}
