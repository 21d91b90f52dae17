//! `pvfs share add|rm|ls|set` and `pvfs status`: dom0 commands that attach, detach, list and
//! tune pvfs shares by writing xenstore as libxl does (`libxl__device_generic_add`), over the
//! [`Store`] trait, so that all of it runs against an in-memory store in host tests.
//!
//! Nodes of one share (device `<dev>` of guest `<fe>`, pvfs in domain `<be>`):
//! - `/local/domain/<be>/backend/9pfs/<fe>/<dev>/`: owned by `<be>`, readable by `<fe>`;
//!   `frontend`, `frontend-id`, `online`, `state`, `path`, `security_model`, and optionally
//!   `mode=ro` and the quota keys `max-space` (MiB), `max-files`, `max-open-files`; also
//!   `versions`, `max-rings`, `max-ring-page-order` with the values pvfs publishes, for
//!   frontends older than Linux 6.3 that read them when the device appears.
//! - `/local/domain/<fe>/device/9pfs/<dev>/`: owned by `<fe>`, readable by `<be>`; `backend`,
//!   `backend-id`, `state`, `tag`.
//! - `/libxl/<fe>/device/9pfs/<dev>/`: dom0's own record, as libxl keeps for every device
//!   (`frontend`, `backend` and a copy of the backend keys), so that `xl destroy` and
//!   `xl shutdown` of the guest remove the device as they remove one from its config.
//!
//! Details and exit statuses: `docs/pvfs-share.md`.

use crate::xs::{Access, Perm, Store, Tx, XsError, NO_TX};
use clap::{Args, Subcommand};
use pvfs_ring::xenbus::{BackendConfig, XenbusState};
use std::fmt::Write as _;

/// How often the commands look at xenstore while they wait.
pub const POLL_MS: u64 = 100;
/// After pvfs answered InitWait, how long `add` waits for the guest's driver to start
/// connecting before it reports the share as waiting for the guest (paused guest, no driver).
pub const GUEST_GRACE_MS: u64 = 2000;
/// After `rm` asked pvfs to close a device (`online=0`, Closing), how long it waits for pvfs
/// to remove the backend directory before it writes Closed, as libxl does on its way out.
pub const CLOSE_GRACE_MS: u64 = 1000;
/// Transaction attempts before giving up on conflicts.
pub const TX_ATTEMPTS: u32 = 16;

/// The kinds of failure, each with its exit status (the table in `docs/pvfs-share.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// 1: anything else (xenstore protocol errors, transactions that kept conflicting).
    Other = 1,
    /// 2: bad arguments.
    Usage = 2,
    /// 3: no xenstore access: not dom0, not root, or no xenstored.
    NoAccess = 3,
    /// 4: no pvfs domain (or it is not ready).
    NoPvfs = 4,
    /// 5: no such guest domain.
    UnknownGuest = 5,
    /// 6: the guest has no pvfs share with that tag.
    NoSuchShare = 6,
    /// 7: the guest already has a 9pfs device with that tag.
    DuplicateTag = 7,
    /// 8: pvfs refused the device (its `error` node says why).
    Refused = 8,
    /// 9: a xenstored quota was reached.
    Quota = 9,
    /// 10: pvfs did not answer in time.
    Timeout = 10,
    /// 11: the guest is connected to the share and `--force` was not given.
    InUse = 11,
}

/// A failure: its kind (exit status) and the one line printed for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The kind.
    pub kind: Kind,
    /// The message.
    pub msg: String,
    /// A transaction conflict seen inside a transaction body: the body is run again.
    conflict: bool,
}

impl Failure {
    /// A failure of `kind`.
    pub fn new(kind: Kind, msg: impl Into<String>) -> Self {
        Self {
            kind,
            msg: msg.into(),
            conflict: false,
        }
    }

    /// The exit status.
    pub fn code(&self) -> u8 {
        self.kind as u8
    }
}

/// How to raise xenstored's node quota, for the quota message.
pub const QUOTA_HINT: &str = "raise xenstored's per-domain node quota, e.g. `xenstore-control quota set nodes 8192` (C xenstored 4.17+), or start xenstored with `--entry-nb 8192` (`-E 8192`)";

impl From<XsError> for Failure {
    fn from(e: XsError) -> Self {
        match e {
            XsError::Again => Self {
                kind: Kind::Other,
                msg: "xenstore transaction conflict".into(),
                conflict: true,
            },
            XsError::Denied(p) => Failure::new(
                Kind::NoAccess,
                format!("xenstore denied access to {p}: run pvfs as root in dom0"),
            ),
            XsError::Io(e) => Failure::new(
                Kind::NoAccess,
                format!("cannot reach xenstored ({e}): run pvfs as root in dom0, with xenstored running"),
            ),
            XsError::Quota(p) => Failure::new(
                Kind::Quota,
                format!("xenstored quota reached at {p}; nothing was written: {QUOTA_HINT}"),
            ),
            XsError::NoEnt(p) => Failure::new(Kind::Other, format!("xenstore: {p}: no such node")),
            XsError::Other(e) => Failure::new(Kind::Other, format!("xenstore: {e}")),
        }
    }
}

type Res<T> = Result<T, Failure>;

/// Runs `body` in a transaction and commits it, starting over (up to [`TX_ATTEMPTS`] times)
/// when xenstored answers `EAGAIN`. A failing body aborts the transaction: nothing is written.
pub fn transact<S: Store + ?Sized, T>(
    s: &mut S,
    mut body: impl FnMut(&mut S, Tx) -> Res<T>,
) -> Res<T> {
    for _ in 0..TX_ATTEMPTS {
        let tx = s.tx_start()?;
        match body(s, tx) {
            Ok(v) => match s.tx_end(tx, true) {
                Ok(()) => return Ok(v),
                Err(XsError::Again) => continue,
                Err(e) => return Err(e.into()),
            },
            Err(f) => {
                let _ = s.tx_end(tx, false);
                if f.conflict {
                    continue;
                }
                return Err(f);
            }
        }
    }
    Err(Failure::new(
        Kind::Other,
        format!("xenstore transaction still conflicting after {TX_ATTEMPTS} attempts; try again"),
    ))
}

/// A domain, by id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Domain {
    /// Domain id.
    pub domid: u16,
    /// `/local/domain/<id>/name` (empty if none).
    pub name: String,
}

impl Domain {
    /// `name (id)`, or `domain id` without a name.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            format!("domain {}", self.domid)
        } else {
            format!("{} ({})", self.name, self.domid)
        }
    }
}

/// Every domain under `/local/domain`, by id.
pub fn domains<S: Store + ?Sized>(s: &mut S) -> Res<Vec<Domain>> {
    let mut ids: Vec<u16> = s
        .directory(NO_TX, "/local/domain")?
        .iter()
        .filter_map(|d| d.parse().ok())
        .collect();
    ids.sort_unstable();
    let mut out = Vec::with_capacity(ids.len());
    for domid in ids {
        let name = s
            .read(NO_TX, &format!("/local/domain/{domid}/name"))?
            .unwrap_or_default();
        out.push(Domain { domid, name });
    }
    if out.is_empty() {
        return Err(Failure::new(
            Kind::NoAccess,
            "xenstore lists no domains under /local/domain: run pvfs in dom0",
        ));
    }
    Ok(out)
}

/// Resolves a domain name or id; `None` if there is no such domain.
pub fn find_domain<S: Store + ?Sized>(s: &mut S, spec: &str) -> Res<Option<Domain>> {
    let all = domains(s)?;
    Ok(match spec.parse::<u16>() {
        Ok(id) => all.into_iter().find(|d| d.domid == id),
        Err(_) => all.into_iter().find(|d| d.name == spec),
    })
}

/// Resolves the guest DOMAIN argument.
pub fn guest<S: Store + ?Sized>(s: &mut S, spec: &str) -> Res<Domain> {
    find_domain(s, spec)?.ok_or_else(|| {
        Failure::new(
            Kind::UnknownGuest,
            if spec.parse::<u16>().is_ok() {
                format!("no domain with id {spec} (see `xl list`)")
            } else {
                format!("no domain named {spec:?} (see `xl list`)")
            },
        )
    })
}

/// The pvfs domain's `data/pvfs` directory.
fn data_dir(be: u16) -> String {
    format!("/local/domain/{be}/data/pvfs")
}

/// Resolves `--backend` to a domain that runs pvfs. With `ready`, its status must be `ready`.
pub fn pvfs_domain<S: Store + ?Sized>(s: &mut S, spec: &str, ready: bool) -> Res<Domain> {
    let d = find_domain(s, spec)?.ok_or_else(|| {
        Failure::new(
            Kind::NoPvfs,
            format!("no pvfs domain: no domain {spec:?} is running (start it with `xl create pvfs-stubdom.cfg`, or name it with --backend)"),
        )
    })?;
    match s.read(NO_TX, &format!("{}/status", data_dir(d.domid)))? {
        None => Err(Failure::new(
            Kind::NoPvfs,
            format!("{} does not run pvfs (no data/pvfs/status)", d.label()),
        )),
        Some(st) if ready && st != "ready" => Err(Failure::new(
            Kind::NoPvfs,
            format!("pvfs in {} is not ready (status: {st})", d.label()),
        )),
        Some(_) => Ok(d),
    }
}

/// `/local/domain/<be>/backend/9pfs/<fe>/<dev>`.
pub fn backend_dir(be: u16, fe: u16, dev: u32) -> String {
    format!("/local/domain/{be}/backend/9pfs/{fe}/{dev}")
}

/// `/local/domain/<fe>/device/9pfs/<dev>`.
pub fn frontend_dir(fe: u16, dev: u32) -> String {
    format!("/local/domain/{fe}/device/9pfs/{dev}")
}

/// `/libxl/<fe>/device/9pfs/<dev>`.
pub fn libxl_dir(fe: u16, dev: u32) -> String {
    format!("/libxl/{fe}/device/9pfs/{dev}")
}

fn read_state<S: Store + ?Sized>(s: &mut S, tx: Tx, path: &str) -> Res<Option<XenbusState>> {
    Ok(s.read(tx, path)?
        .map(|v| XenbusState::parse(&v).unwrap_or(XenbusState::Unknown)))
}

fn numeric_children<S: Store + ?Sized>(s: &mut S, tx: Tx, path: &str) -> Res<Vec<u32>> {
    let mut v: Vec<u32> = s
        .directory(tx, path)?
        .iter()
        .filter_map(|d| d.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// One share as found in xenstore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// The guest.
    pub guest: Domain,
    /// Device id.
    pub devid: u32,
    /// The pvfs domain.
    pub backend: u16,
    /// The frontend's `tag`.
    pub tag: Option<String>,
    /// The backend's `path`.
    pub path: Option<String>,
    /// The backend's `state`.
    pub state: Option<XenbusState>,
    /// The frontend's `state`.
    pub guest_state: Option<XenbusState>,
    /// The backend's `mode` is `ro`.
    pub read_only: bool,
    /// `max-space` (MiB), `max-files`, `max-open-files`, as written.
    pub quota: [Option<String>; 3],
    /// The backend's `error` node.
    pub error: Option<String>,
}

/// The quota keys, in the order of [`Share::quota`].
pub const QUOTA_KEYS: [&str; 3] = ["max-space", "max-files", "max-open-files"];

/// The shares pvfs in `be` has, for every guest or one.
pub fn shares<S: Store + ?Sized>(s: &mut S, be: u16, only: Option<u16>) -> Res<Vec<Share>> {
    let doms = domains(s)?;
    let base = format!("/local/domain/{be}/backend/9pfs");
    let mut out = Vec::new();
    let mut fes: Vec<u16> = s
        .directory(NO_TX, &base)?
        .iter()
        .filter_map(|d| d.parse().ok())
        .collect();
    fes.sort_unstable();
    for fe in fes {
        if only.is_some_and(|o| o != fe) {
            continue;
        }
        let guest = doms
            .iter()
            .find(|d| d.domid == fe)
            .cloned()
            .unwrap_or(Domain {
                domid: fe,
                name: String::new(),
            });
        for devid in numeric_children(s, NO_TX, &format!("{base}/{fe}"))? {
            let b = backend_dir(be, fe, devid);
            let f = s
                .read(NO_TX, &format!("{b}/frontend"))?
                .unwrap_or_else(|| frontend_dir(fe, devid));
            let mut quota: [Option<String>; 3] = Default::default();
            for (q, k) in quota.iter_mut().zip(QUOTA_KEYS) {
                *q = s.read(NO_TX, &format!("{b}/{k}"))?;
            }
            out.push(Share {
                guest: guest.clone(),
                devid,
                backend: be,
                tag: s.read(NO_TX, &format!("{f}/tag"))?,
                path: s.read(NO_TX, &format!("{b}/path"))?,
                state: read_state(s, NO_TX, &format!("{b}/state"))?,
                guest_state: read_state(s, NO_TX, &format!("{f}/state"))?,
                read_only: s.read(NO_TX, &format!("{b}/mode"))?.as_deref() == Some("ro"),
                quota,
                error: s.read(NO_TX, &format!("{b}/error"))?,
            });
        }
    }
    Ok(out)
}

/// The share of `guest` tagged `tag`.
pub fn find_share<S: Store + ?Sized>(s: &mut S, be: u16, guest: &Domain, tag: &str) -> Res<Share> {
    shares(s, be, Some(guest.domid))?
        .into_iter()
        .find(|sh| sh.tag.as_deref() == Some(tag))
        .ok_or_else(|| {
            Failure::new(
                Kind::NoSuchShare,
                format!(
                    "{} has no pvfs share tagged {tag:?} (see `pvfs share ls`)",
                    guest.label()
                ),
            )
        })
}

/// What `share add` writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddOpts {
    /// The frontend's `tag` (what the guest mounts).
    pub tag: String,
    /// The export, a directory inside pvfs's volume.
    pub path: String,
    /// Write `mode=ro`.
    pub read_only: bool,
    /// `max-space` (MiB).
    pub max_space_mib: Option<u64>,
    /// `max-files`.
    pub max_files: Option<u64>,
    /// `max-open-files`.
    pub max_open_files: Option<u64>,
    /// How long to wait for pvfs's verdict.
    pub timeout_ms: u64,
}

/// How an added share stands when `add` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// pvfs connected the guest's rings: the guest can mount it.
    Connected,
    /// pvfs accepted the device (InitWait) and the guest has not started connecting (paused,
    /// or its 9pfs driver is not loaded): pvfs checks the path when it does.
    WaitingForGuest,
}

/// The result of `add`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The device id chosen.
    pub devid: u32,
    /// The verdict.
    pub verdict: Verdict,
}

fn check_tag(tag: &str) -> Res<()> {
    if tag.is_empty()
        || tag.len() > 255
        || tag
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/' || c == ',')
    {
        return Err(Failure::new(
            Kind::Usage,
            format!("--tag {tag:?}: a tag is 1 to 255 characters, without spaces, '/' or ','"),
        ));
    }
    Ok(())
}

/// The lowest device id that no 9pfs device of `fe` uses (frontend, libxl or our backend).
fn free_devid<S: Store + ?Sized>(s: &mut S, tx: Tx, be: u16, fe: u16) -> Res<u32> {
    let mut used = numeric_children(s, tx, &format!("/local/domain/{fe}/device/9pfs"))?;
    used.extend(numeric_children(
        s,
        tx,
        &format!("/libxl/{fe}/device/9pfs"),
    )?);
    used.extend(numeric_children(
        s,
        tx,
        &format!("/local/domain/{be}/backend/9pfs/{fe}"),
    )?);
    used.sort_unstable();
    used.dedup();
    let mut id = 0;
    for u in used {
        if u == id {
            id += 1;
        } else if u > id {
            break;
        }
    }
    Ok(id)
}

/// Removes `path`, then its parents while they are empty (no value, no children), stopping
/// below `keep`, as libxl's `libxl__xs_path_cleanup` does (without `keep`).
fn path_cleanup<S: Store + ?Sized>(s: &mut S, tx: Tx, path: &str, keep: &str) -> Res<()> {
    s.rm(tx, path)?;
    let mut p = path;
    while let Some(i) = p.rfind('/') {
        p = p.get(..i).unwrap_or("");
        if p.is_empty() || p == keep {
            break;
        }
        let empty = s.read(tx, p)?.is_some_and(|v| v.is_empty());
        if !empty || !s.directory(tx, p)?.is_empty() {
            break;
        }
        s.rm(tx, p)?;
    }
    Ok(())
}

/// Removes the nodes of one device in one transaction, with the directories that only held
/// them: the frontend and libxl paths as libxl does when it removes a device, and pvfs's
/// `backend/9pfs/<guest>` (each empty node counts against pvfs's xenstore quota).
fn remove_nodes<S: Store + ?Sized>(s: &mut S, be: u16, fe: u16, dev: u32) -> Res<()> {
    transact(s, |s, tx| {
        path_cleanup(s, tx, &frontend_dir(fe, dev), "")?;
        path_cleanup(
            s,
            tx,
            &backend_dir(be, fe, dev),
            &format!("/local/domain/{be}/backend/9pfs"),
        )?;
        path_cleanup(s, tx, &libxl_dir(fe, dev), "")?;
        Ok(())
    })
}

/// `share add`: writes the device in one transaction, then waits for pvfs's verdict. A
/// refusal or a timeout removes the nodes again.
pub fn add<S: Store + ?Sized>(s: &mut S, be: &Domain, guest: &Domain, o: &AddOpts) -> Res<Added> {
    check_tag(&o.tag)?;
    if !o.path.starts_with('/') || o.path.contains('\0') {
        return Err(Failure::new(
            Kind::Usage,
            format!(
                "--path {:?}: give an absolute path inside pvfs's volume",
                o.path
            ),
        ));
    }
    if guest.domid == be.domid {
        return Err(Failure::new(
            Kind::Usage,
            format!("{} is the pvfs domain itself", guest.label()),
        ));
    }
    let (b, f) = (be.domid, guest.domid);
    let devid = transact(s, |s, tx| {
        // Read inside the transaction: a concurrent writer makes the commit fail and this
        // runs again with what it wrote.
        for d in numeric_children(s, tx, &format!("/local/domain/{f}/device/9pfs"))? {
            let t = s.read(tx, &format!("{}/tag", frontend_dir(f, d)))?;
            if t.as_deref() == Some(o.tag.as_str()) {
                return Err(Failure::new(
                    Kind::DuplicateTag,
                    format!(
                        "{} already has a 9pfs device tagged {:?} (device {d})",
                        guest.label(),
                        o.tag
                    ),
                ));
            }
        }
        let dev = free_devid(s, tx, b, f)?;
        let (bd, fd, ld) = (
            backend_dir(b, f, dev),
            frontend_dir(f, dev),
            libxl_dir(f, dev),
        );
        s.rm(tx, &ld)?;
        s.write(tx, &format!("{ld}/frontend"), &fd)?;
        s.write(tx, &format!("{ld}/backend"), &bd)?;
        // The frontend directory: the guest owns it, pvfs may read it.
        s.mkdir(tx, &fd)?;
        s.set_perms(
            tx,
            &fd,
            &[Perm::new(f, Access::None), Perm::new(b, Access::Read)],
        )?;
        for (k, v) in [
            ("backend", bd.as_str()),
            ("backend-id", &b.to_string()),
            ("state", XenbusState::Initialising.as_str()),
            ("tag", &o.tag),
        ] {
            s.write(tx, &format!("{fd}/{k}"), v)?;
        }
        // The backend directory: pvfs owns it, the guest may read it.
        s.mkdir(tx, &bd)?;
        s.set_perms(
            tx,
            &bd,
            &[Perm::new(b, Access::None), Perm::new(f, Access::Read)],
        )?;
        s.write(tx, &format!("{bd}/frontend"), &fd)?;
        let mut bents: Vec<(&str, String)> = vec![
            ("frontend-id", f.to_string()),
            ("online", "1".into()),
            ("state", XenbusState::Initialising.as_str().into()),
            ("path", o.path.clone()),
            ("security_model", "none".into()),
        ];
        if o.read_only {
            bents.push(("mode", "ro".into()));
        }
        for (k, v) in QUOTA_KEYS
            .iter()
            .zip([o.max_space_mib, o.max_files, o.max_open_files])
        {
            if let Some(v) = v {
                bents.push((k, v.to_string()));
            }
        }
        for (k, v) in &bents {
            s.write(tx, &format!("{bd}/{k}"), v)?;
        }
        // The keys pvfs publishes before InitWait, with the values it publishes: Linux before
        // 6.3 reads them when it probes the device, which on a running guest happens as soon
        // as this transaction commits, before pvfs has seen the device.
        let cfg = BackendConfig::default();
        for (k, v) in [
            ("versions", "1".to_string()),
            ("max-rings", cfg.max_rings.to_string()),
            ("max-ring-page-order", cfg.max_ring_page_order.to_string()),
        ] {
            s.write(tx, &format!("{bd}/{k}"), &v)?;
        }
        // libxl's copy of the backend keys.
        for (k, v) in &bents {
            s.write(tx, &format!("{ld}/{k}"), v)?;
        }
        Ok(dev)
    })?;
    let verdict = wait_verdict(s, b, f, devid, o.timeout_ms);
    match verdict {
        Ok(v) => Ok(Added { devid, verdict: v }),
        Err(fail) => {
            remove_nodes(s, b, f, devid)?;
            Err(Failure::new(
                fail.kind,
                format!("{}; nothing was left in xenstore", fail.msg),
            ))
        }
    }
}

fn wait_verdict<S: Store + ?Sized>(
    s: &mut S,
    be: u16,
    fe: u16,
    dev: u32,
    timeout_ms: u64,
) -> Res<Verdict> {
    let (bd, fd) = (backend_dir(be, fe, dev), frontend_dir(fe, dev));
    let start = s.now_ms();
    let mut initwait_since: Option<u64> = None;
    loop {
        let now = s.now_ms();
        let state = read_state(s, NO_TX, &format!("{bd}/state"))?;
        let error = s.read(NO_TX, &format!("{bd}/error"))?;
        if let Some(e) = error {
            return Err(Failure::new(
                Kind::Refused,
                format!("pvfs refused the share: {e}"),
            ));
        }
        match state {
            None => {
                return Err(Failure::new(
                    Kind::Refused,
                    "pvfs removed the device (the guest closed it?)",
                ))
            }
            Some(XenbusState::Closed) => {
                return Err(Failure::new(Kind::Refused, "pvfs closed the device"))
            }
            Some(XenbusState::Connected) => return Ok(Verdict::Connected),
            Some(st) if st >= XenbusState::InitWait => {
                let gs = read_state(s, NO_TX, &format!("{fd}/state"))?;
                if matches!(
                    gs,
                    None | Some(XenbusState::Unknown | XenbusState::Initialising)
                ) {
                    let since = *initwait_since.get_or_insert(now);
                    if now.saturating_sub(since) >= GUEST_GRACE_MS.min(timeout_ms) {
                        return Ok(Verdict::WaitingForGuest);
                    }
                } else {
                    initwait_since = None;
                }
            }
            Some(_) => {}
        }
        if now.saturating_sub(start) >= timeout_ms {
            let what = match state {
                Some(XenbusState::Initialising) | Some(XenbusState::Unknown) => format!(
                    "pvfs (domain {be}) did not take up the device (is it running? at its xenstore node quota? see `xenstore-control quota {be}` and pvfs's console)"
                ),
                _ => format!("pvfs (domain {be}) did not connect the guest"),
            };
            return Err(Failure::new(
                Kind::Timeout,
                format!(
                    "{what} within {} s (backend state {})",
                    timeout_ms / 1000,
                    state.map_or("gone", XenbusState::name)
                ),
            ));
        }
        s.sleep_ms(POLL_MS);
    }
}

/// `share rm`: asks pvfs to release the device (`online=0`, state Closing, as libxl does),
/// writes Closed if pvfs keeps the directory (a device the guest never connected), waits for
/// pvfs to remove its backend directory, then removes the frontend and libxl nodes. Refuses
/// while the guest is connected unless `force`.
pub fn rm<S: Store + ?Sized>(
    s: &mut S,
    be: &Domain,
    guest: &Domain,
    tag: &str,
    force: bool,
    timeout_ms: u64,
) -> Res<Share> {
    let sh = find_share(s, be.domid, guest, tag)?;
    if sh.guest_state == Some(XenbusState::Connected) && !force {
        return Err(Failure::new(
            Kind::InUse,
            format!(
                "{} is connected to share {tag:?} (its 9pfs driver holds the rings; it may have it mounted): unmount it in the guest, then use --force",
                guest.label()
            ),
        ));
    }
    let (b, f, dev) = (be.domid, guest.domid, sh.devid);
    let bd = backend_dir(b, f, dev);
    let state_key = format!("{bd}/state");
    transact(s, |s, tx| {
        let Some(st) = read_state(s, tx, &state_key)? else {
            return Ok(()); // pvfs removed it already
        };
        s.write(tx, &format!("{bd}/online"), "0")?;
        if st != XenbusState::Closed {
            s.write(tx, &state_key, XenbusState::Closing.as_str())?;
        }
        Ok(())
    })?;
    let start = s.now_ms();
    let mut wrote_closed = false;
    loop {
        if s.read(NO_TX, &bd)?.is_none() {
            break;
        }
        let waited = s.now_ms().saturating_sub(start);
        if !wrote_closed && waited >= CLOSE_GRACE_MS {
            // pvfs leaves a device it never connected in Closing; Closed from the toolstack
            // asks it to remove the directory.
            transact(s, |s, tx| {
                if s.read(tx, &state_key)?.is_some() {
                    s.write(tx, &state_key, XenbusState::Closed.as_str())?;
                }
                Ok(())
            })?;
            wrote_closed = true;
        }
        if waited >= timeout_ms {
            if force {
                remove_nodes(s, b, f, dev)?;
                return Ok(sh);
            }
            return Err(Failure::new(
                Kind::Timeout,
                format!(
                    "pvfs (domain {b}) did not release share {tag:?} of {} within {} s; its nodes are left offline (online=0): `pvfs share rm --force` removes them",
                    guest.label(),
                    timeout_ms / 1000
                ),
            ));
        }
        s.sleep_ms(POLL_MS);
    }
    remove_nodes(s, b, f, dev)?;
    Ok(sh)
}

/// `share set`: for each quota key, `Some(Some(v))` writes it, `Some(None)` removes it (no
/// limit), `None` leaves it. One transaction; pvfs watches the keys and applies them live.
pub fn set<S: Store + ?Sized>(
    s: &mut S,
    be: &Domain,
    guest: &Domain,
    tag: &str,
    changes: [Option<Option<u64>>; 3],
) -> Res<Share> {
    if changes.iter().all(Option::is_none) {
        return Err(Failure::new(
            Kind::Usage,
            "nothing to change: give --max-space, --max-files, --max-open-files or their --no- forms",
        ));
    }
    let sh = find_share(s, be.domid, guest, tag)?;
    let bd = backend_dir(be.domid, guest.domid, sh.devid);
    transact(s, |s, tx| {
        if s.read(tx, &format!("{bd}/state"))?.is_none() {
            return Err(Failure::new(
                Kind::NoSuchShare,
                format!("share {tag:?} of {} went away", guest.label()),
            ));
        }
        for (k, c) in QUOTA_KEYS.iter().zip(changes) {
            match c {
                Some(Some(v)) => s.write(tx, &format!("{bd}/{k}"), &v.to_string())?,
                Some(None) => s.rm(tx, &format!("{bd}/{k}"))?,
                None => {}
            }
        }
        Ok(())
    })?;
    find_share(s, be.domid, guest, tag)
}

/// What `pvfs status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The pvfs domain.
    pub domain: Domain,
    /// `data/pvfs/status`.
    pub status: Option<String>,
    /// `data/pvfs/volume`.
    pub volume: Option<String>,
    /// `data/pvfs/version`.
    pub version: Option<String>,
    /// `data/pvfs/stats`, split into `key=value` pairs, in order.
    pub stats: Vec<(String, String)>,
    /// Devices under pvfs's backend directory.
    pub shares: usize,
}

/// Reads `pvfs status`.
pub fn status<S: Store + ?Sized>(s: &mut S, backend: &str) -> Res<Status> {
    let domain = pvfs_domain(s, backend, false)?;
    let d = data_dir(domain.domid);
    let stats = s
        .read(NO_TX, &format!("{d}/stats"))?
        .unwrap_or_default()
        .split_whitespace()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect();
    let shares = shares(s, domain.domid, None)?.len();
    Ok(Status {
        status: s.read(NO_TX, &format!("{d}/status"))?,
        volume: s.read(NO_TX, &format!("{d}/volume"))?,
        version: s.read(NO_TX, &format!("{d}/version"))?,
        stats,
        shares,
        domain,
    })
}

// ---------------------------------------------------------------------------------------------
// Output

/// A JSON string literal.
pub fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(v: Option<&str>) -> String {
    v.map_or_else(|| "null".into(), json_str)
}

/// A number if the text is one, else a string (a quota key someone wrote garbage into).
fn json_num_or_str(v: Option<&str>) -> String {
    match v {
        None => "null".into(),
        Some(t) if t.parse::<u64>().is_ok() => t.to_string(),
        Some(t) => json_str(t),
    }
}

fn state_name(s: Option<XenbusState>) -> &'static str {
    s.map_or("-", XenbusState::name)
}

/// The `share ls` table.
pub fn ls_table(shares: &[Share]) -> String {
    let head = [
        "GUEST",
        "DOMID",
        "DEV",
        "TAG",
        "PATH",
        "STATE",
        "GUEST-STATE",
        "RO",
        "MAX-SPACE",
        "MAX-FILES",
        "MAX-OPEN",
        "USED",
    ];
    let mut rows: Vec<Vec<String>> = vec![head.iter().map(|h| h.to_string()).collect()];
    for sh in shares {
        let q = |i: usize, unit: &str| -> String {
            sh.quota
                .get(i)
                .cloned()
                .flatten()
                .map_or_else(|| "-".into(), |v| format!("{v}{unit}"))
        };
        let mut state = state_name(sh.state).to_string();
        if sh.error.is_some() {
            state.push_str("(error)");
        }
        rows.push(vec![
            if sh.guest.name.is_empty() {
                "-".into()
            } else {
                sh.guest.name.clone()
            },
            sh.guest.domid.to_string(),
            sh.devid.to_string(),
            sh.tag.clone().unwrap_or_else(|| "-".into()),
            sh.path.clone().unwrap_or_else(|| "-".into()),
            state,
            state_name(sh.guest_state).into(),
            if sh.read_only { "yes" } else { "no" }.into(),
            q(0, "MiB"),
            q(1, ""),
            q(2, ""),
            // pvfs publishes no per-share use yet.
            "-".into(),
        ]);
    }
    let widths: Vec<usize> = (0..head.len())
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c + 1 == r.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The `share ls --json` document: an array of objects.
pub fn ls_json(shares: &[Share]) -> String {
    let items: Vec<String> = shares
        .iter()
        .map(|sh| {
            format!(
                "{{\"guest\":{},\"domid\":{},\"devid\":{},\"backend\":{},\"tag\":{},\"path\":{},\"state\":{},\"guest_state\":{},\"read_only\":{},\"max_space_mib\":{},\"max_files\":{},\"max_open_files\":{},\"space_used_mib\":null,\"files_used\":null,\"open_files_used\":null,\"error\":{}}}",
                json_str(&sh.guest.name),
                sh.guest.domid,
                sh.devid,
                sh.backend,
                json_opt(sh.tag.as_deref()),
                json_opt(sh.path.as_deref()),
                json_opt(sh.state.map(XenbusState::name)),
                json_opt(sh.guest_state.map(XenbusState::name)),
                sh.read_only,
                json_num_or_str(sh.quota[0].as_deref()),
                json_num_or_str(sh.quota[1].as_deref()),
                json_num_or_str(sh.quota[2].as_deref()),
                json_opt(sh.error.as_deref()),
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}

/// `pvfs status` as text.
pub fn status_text(st: &Status) -> String {
    let mut out = String::new();
    let o = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "domain:  {}", st.domain.label());
    let _ = writeln!(out, "status:  {}", o(&st.status));
    let _ = writeln!(out, "version: {}", o(&st.version));
    let _ = writeln!(out, "volume:  {}", o(&st.volume));
    let _ = writeln!(out, "shares:  {}", st.shares);
    if st.stats.is_empty() {
        let _ = writeln!(out, "stats:   -");
    } else {
        let _ = writeln!(out, "stats:");
        let w = st.stats.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
        for (k, v) in &st.stats {
            let _ = writeln!(out, "  {k:<w$}  {v}");
        }
    }
    out
}

/// `pvfs status --json`.
pub fn status_json(st: &Status) -> String {
    let stats: Vec<String> = st
        .stats
        .iter()
        .map(|(k, v)| format!("{}:{}", json_str(k), json_num_or_str(Some(v))))
        .collect();
    format!(
        "{{\"domain\":{{\"name\":{},\"domid\":{}}},\"status\":{},\"version\":{},\"volume\":{},\"shares\":{},\"stats\":{{{}}}}}\n",
        json_str(&st.domain.name),
        st.domain.domid,
        json_opt(st.status.as_deref()),
        json_opt(st.version.as_deref()),
        json_opt(st.volume.as_deref()),
        st.shares,
        stats.join(",")
    )
}

// ---------------------------------------------------------------------------------------------
// Command line

/// `pvfs share …`.
#[derive(Subcommand)]
pub enum ShareCmd {
    /// Attach a share to a running or paused guest (no device model involved).
    Add(AddArgs),
    /// Detach a share: pvfs releases it and its xenstore nodes go away.
    Rm(RmArgs),
    /// List the shares pvfs serves: guests, tags, paths, states, read-only, quotas.
    Ls(LsArgs),
    /// Change a share's quota while it is in use (pvfs applies it at once).
    Set(SetArgs),
}

/// `--backend`, common to the commands.
#[derive(Args)]
pub struct BackendArg {
    /// The pvfs domain (name or id)
    #[arg(long, default_value = "pvfs")]
    backend: String,
}

/// `pvfs share add`.
#[derive(Args)]
pub struct AddArgs {
    /// The guest (name or domain id; 0 is dom0)
    domain: String,
    /// The tag the guest mounts (`mount -t 9p -o trans=xen TAG /mnt`)
    #[arg(long)]
    tag: String,
    /// The exported directory, inside pvfs's volume
    #[arg(long)]
    path: String,
    /// Write `mode=ro` (not yet read by pvfs: see docs/pvfs-share.md)
    #[arg(long)]
    ro: bool,
    /// Quota: MiB of file data
    #[arg(long, value_name = "MIB")]
    max_space: Option<u64>,
    /// Quota: number of files
    #[arg(long, value_name = "N")]
    max_files: Option<u64>,
    /// Quota: files open at once
    #[arg(long, value_name = "N")]
    max_open_files: Option<u64>,
    #[command(flatten)]
    be: BackendArg,
    /// Seconds to wait for pvfs's verdict
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
}

/// `pvfs share rm`.
#[derive(Args)]
pub struct RmArgs {
    /// The guest (name or domain id)
    domain: String,
    /// The share's tag
    tag: String,
    /// Detach even while the guest is connected (its mount, if any, stops working)
    #[arg(long)]
    force: bool,
    #[command(flatten)]
    be: BackendArg,
    /// Seconds to wait for pvfs to release the device
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    timeout: u64,
}

/// `pvfs share ls`.
#[derive(Args)]
pub struct LsArgs {
    /// Only this guest (name or domain id)
    domain: Option<String>,
    /// JSON instead of a table
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    be: BackendArg,
}

/// `pvfs share set`.
#[derive(Args)]
pub struct SetArgs {
    /// The guest (name or domain id)
    domain: String,
    /// The share's tag
    tag: String,
    /// Quota: MiB of file data
    #[arg(long, value_name = "MIB", conflicts_with = "no_max_space")]
    max_space: Option<u64>,
    /// Lift the max-space quota
    #[arg(long)]
    no_max_space: bool,
    /// Quota: number of files
    #[arg(long, value_name = "N", conflicts_with = "no_max_files")]
    max_files: Option<u64>,
    /// Lift the max-files quota
    #[arg(long)]
    no_max_files: bool,
    /// Quota: files open at once
    #[arg(long, value_name = "N", conflicts_with = "no_max_open_files")]
    max_open_files: Option<u64>,
    /// Lift the max-open-files quota
    #[arg(long)]
    no_max_open_files: bool,
    #[command(flatten)]
    be: BackendArg,
}

/// `pvfs status`.
#[derive(Args)]
pub struct StatusArgs {
    /// JSON instead of text
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    be: BackendArg,
}

fn change(v: Option<u64>, lift: bool) -> Option<Option<u64>> {
    match (v, lift) {
        (Some(v), _) => Some(Some(v)),
        (None, true) => Some(None),
        (None, false) => None,
    }
}

fn quota_summary(sh: &Share) -> String {
    let parts: Vec<String> = QUOTA_KEYS
        .iter()
        .zip(&sh.quota)
        .map(|(k, v)| format!("{k}={}", v.as_deref().unwrap_or("none")))
        .collect();
    parts.join(" ")
}

/// Runs a `share` command on `s`; returns what to print on stdout.
pub fn run_share<S: Store + ?Sized>(s: &mut S, cmd: ShareCmd) -> Res<String> {
    match cmd {
        ShareCmd::Add(a) => {
            let be = pvfs_domain(s, &a.be.backend, true)?;
            let g = guest(s, &a.domain)?;
            let o = AddOpts {
                tag: a.tag,
                path: a.path,
                read_only: a.ro,
                max_space_mib: a.max_space,
                max_files: a.max_files,
                max_open_files: a.max_open_files,
                timeout_ms: a.timeout.saturating_mul(1000),
            };
            let added = add(s, &be, &g, &o)?;
            let mut out = format!(
                "share {:?} of {}: device {}, path {}: ",
                o.tag,
                g.label(),
                added.devid,
                o.path
            );
            match added.verdict {
                Verdict::Connected => {
                    let _ = writeln!(
                        out,
                        "connected; mount it in the guest with `mount -t 9p -o trans=xen,version=9p2000.L {} /mnt`",
                        o.tag
                    );
                }
                Verdict::WaitingForGuest => out.push_str(
                    "accepted by pvfs; the guest has not connected yet (paused, or 9pnet_xen not loaded); pvfs checks the path when it does\n",
                ),
            }
            if o.read_only {
                out.push_str("note: pvfs does not read mode=ro yet; list the path in pvfs.ro_exports to serve it read-only\n");
            }
            Ok(out)
        }
        ShareCmd::Rm(a) => {
            let be = pvfs_domain(s, &a.be.backend, false)?;
            let g = guest(s, &a.domain)?;
            let sh = rm(s, &be, &g, &a.tag, a.force, a.timeout.saturating_mul(1000))?;
            Ok(format!(
                "share {:?} of {} (device {}) removed\n",
                a.tag,
                g.label(),
                sh.devid
            ))
        }
        ShareCmd::Ls(a) => {
            let be = pvfs_domain(s, &a.be.backend, false)?;
            let only = match &a.domain {
                Some(d) => Some(guest(s, d)?.domid),
                None => None,
            };
            let list = shares(s, be.domid, only)?;
            Ok(if a.json {
                ls_json(&list)
            } else {
                ls_table(&list)
            })
        }
        ShareCmd::Set(a) => {
            let be = pvfs_domain(s, &a.be.backend, false)?;
            let g = guest(s, &a.domain)?;
            let sh = set(
                s,
                &be,
                &g,
                &a.tag,
                [
                    change(a.max_space, a.no_max_space),
                    change(a.max_files, a.no_max_files),
                    change(a.max_open_files, a.no_max_open_files),
                ],
            )?;
            Ok(format!(
                "share {:?} of {}: {}\n",
                a.tag,
                g.label(),
                quota_summary(&sh)
            ))
        }
    }
}

/// Runs `pvfs status` on `s`.
pub fn run_status<S: Store + ?Sized>(s: &mut S, a: StatusArgs) -> Res<String> {
    let st = status(s, &a.be.backend)?;
    Ok(if a.json {
        status_json(&st)
    } else {
        status_text(&st)
    })
}

#[cfg(test)]
mod tests;
