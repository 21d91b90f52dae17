//! `pvfs share add`: writes a device's nodes as libxl does and waits for pvfs's verdict.

use super::domains::Domain;
use super::failure::{transact, Failure, Kind, Res};
use super::nodes::{
    backend_dir, frontend_dir, libxl_dir, numeric_children, read_state, remove_nodes, QUOTA_KEYS,
};
use super::xsquota::{ensure_headroom, Headroom, Need};
use super::POLL_MS;
use crate::xs::{Access, Perm, Store, Tx, NO_TX};
use pvfs_ring::xenbus::{BackendConfig, XenbusState, MODE_KEY, TEMPLATE_KEY};

/// After pvfs answered InitWait, how long `add` waits for the guest's driver to start
/// connecting before it reports the share as waiting for the guest (paused guest, no driver).
pub const GUEST_GRACE_MS: u64 = 2000;

/// What `share add` writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddOpts {
    /// The frontend's `tag` (what the guest mounts).
    pub tag: String,
    /// The export, a directory inside pvfs's volume.
    pub path: String,
    /// A template directory inside pvfs's volume, merged under `path` copy-on-write (the
    /// `template` key).
    pub template: Option<String>,
    /// Write `mode=ro`.
    pub read_only: bool,
    /// Identity-policy keys to write (`uid-map`, `gid-map`, `squash-root`, `unmapped-ids`),
    /// validated.
    pub policy: Vec<(&'static str, String)>,
    /// `max-space` (MiB).
    pub max_space_mib: Option<u64>,
    /// `max-files`.
    pub max_files: Option<u64>,
    /// `max-open-files`.
    pub max_open_files: Option<u64>,
    /// `max-iops`: requests a second.
    pub max_iops: Option<u64>,
    /// `max-bps`: bytes of file data a second.
    pub max_bps: Option<u64>,
    /// How long to wait for pvfs's verdict.
    pub timeout_ms: u64,
    /// Fail (exit 9) rather than raise xenstored's quotas when pvfs's domain is short of
    /// headroom.
    pub no_raise_quota: bool,
    /// Return as soon as pvfs has accepted the device (InitWait), without giving the guest's
    /// driver time to connect (for scripts that add many shares, or to guests not yet
    /// running).
    pub no_guest_wait: bool,
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
    /// What the check of xenstored's quotas found (or did) before writing.
    pub headroom: Headroom,
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

/// Fails with [`Kind::DuplicateTag`] if `guest` has a 9pfs device tagged `tag`.
fn check_duplicate<S: Store + ?Sized>(s: &mut S, tx: Tx, guest: &Domain, tag: &str) -> Res<()> {
    let f = guest.domid;
    for d in numeric_children::<_, u32>(s, tx, &format!("/local/domain/{f}/device/9pfs"))? {
        let t = s.read(tx, &format!("{}/tag", frontend_dir(f, d)))?;
        if t.as_deref() == Some(tag) {
            return Err(Failure::new(
                Kind::DuplicateTag,
                format!(
                    "{} already has a 9pfs device tagged {tag:?} (device {d})",
                    guest.label()
                ),
            ));
        }
    }
    Ok(())
}

/// The lowest device id that no 9pfs device of `fe` uses (frontend, libxl or our backend).
fn free_devid<S: Store + ?Sized>(s: &mut S, tx: Tx, be: u16, fe: u16) -> Res<u32> {
    let mut used: Vec<u32> = Vec::new();
    for dir in [
        format!("/local/domain/{fe}/device/9pfs"),
        format!("/libxl/{fe}/device/9pfs"),
        format!("/local/domain/{be}/backend/9pfs/{fe}"),
    ] {
        used.extend(numeric_children::<_, u32>(s, tx, &dir)?);
    }
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

/// Creates `dir` owned by domain `owner`, with no access for other domains but `reader`, who
/// may read it; the keys written into it inherit that.
fn owned_dir<S: Store + ?Sized>(s: &mut S, tx: Tx, dir: &str, owner: u16, reader: u16) -> Res<()> {
    s.mkdir(tx, dir)?;
    s.set_perms(
        tx,
        dir,
        &[
            Perm::new(owner, Access::None),
            Perm::new(reader, Access::Read),
        ],
    )?;
    Ok(())
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
    let mut bents: Vec<(&str, String)> = vec![
        ("frontend-id", f.to_string()),
        ("online", "1".into()),
        ("state", XenbusState::Initialising.as_str().into()),
        ("path", o.path.clone()),
        ("security_model", "none".into()),
    ];
    if let Some(t) = &o.template {
        bents.push((TEMPLATE_KEY, t.clone()));
    }
    if o.read_only {
        bents.push((MODE_KEY, "ro".into()));
    }
    for (k, v) in &o.policy {
        bents.push((k, v.clone()));
    }
    for (k, v) in QUOTA_KEYS.iter().zip([
        o.max_space_mib,
        o.max_files,
        o.max_open_files,
        o.max_iops,
        o.max_bps,
    ]) {
        if let Some(v) = v {
            bents.push((k, v.to_string()));
        }
    }
    // What the device adds to pvfs's domain in xenstore: the backend directory, `frontend`,
    // these keys, the three pvfs publishes (written below too), its `hotplug-status`,
    // `fids` and `stats`, the `detach` request `share rm` writes, and the directories above
    // that are missing (they would be pvfs's too).
    let mut nodes = 1 + 1 + bents.len() + 3 + 1 + 1 + 1 + 1;
    for dir in [
        format!("/local/domain/{b}/backend"),
        format!("/local/domain/{b}/backend/9pfs"),
        format!("/local/domain/{b}/backend/9pfs/{f}"),
    ] {
        if s.read(NO_TX, &dir)?.is_none() {
            nodes += 1;
        }
    }
    // A duplicate tag fails before any quota is raised (and again inside the transaction,
    // which is what counts against a concurrent writer).
    check_duplicate(s, NO_TX, guest, &o.tag)?;
    let headroom = ensure_headroom(s, b, Need { nodes, watches: 1 }, !o.no_raise_quota)?;
    let devid = transact(s, |s, tx| {
        // Read inside the transaction: a concurrent writer makes the commit fail and this
        // runs again with what it wrote.
        check_duplicate(s, tx, guest, &o.tag)?;
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
        owned_dir(s, tx, &fd, f, b)?;
        for (k, v) in [
            ("backend", bd.as_str()),
            ("backend-id", &b.to_string()),
            ("state", XenbusState::Initialising.as_str()),
            ("tag", &o.tag),
        ] {
            s.write(tx, &format!("{fd}/{k}"), v)?;
        }
        // The backend directory: pvfs owns it, the guest may read it.
        owned_dir(s, tx, &bd, b, f)?;
        s.write(tx, &format!("{bd}/frontend"), &fd)?;
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
    let grace_ms = if o.no_guest_wait {
        0
    } else {
        GUEST_GRACE_MS.min(o.timeout_ms)
    };
    let verdict = wait_verdict(s, b, f, devid, o.timeout_ms, grace_ms);
    match verdict {
        Ok(v) => Ok(Added {
            devid,
            verdict: v,
            headroom,
        }),
        Err(fail) => {
            remove_nodes(s, b, f, devid)?;
            let mut msg = format!("{}; nothing was left in xenstore", fail.msg);
            if let Headroom::Raised(sets) = &headroom {
                for (name, from, to) in sets {
                    msg.push_str(&format!(
                        " (xenstored's {name} quota stays raised from {from} to {to})"
                    ));
                }
            }
            Err(Failure::new(fail.kind, msg))
        }
    }
}

fn wait_verdict<S: Store + ?Sized>(
    s: &mut S,
    be: u16,
    fe: u16,
    dev: u32,
    timeout_ms: u64,
    grace_ms: u64,
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
                    if now.saturating_sub(since) >= grace_ms {
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
