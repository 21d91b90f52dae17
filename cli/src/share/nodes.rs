//! Where the nodes of one share are, reading shares back from them, and removing them.
//!
//! Nodes of one share (device `<dev>` of guest `<fe>`, pvfs in domain `<be>`):
//! - `/local/domain/<be>/backend/9pfs/<fe>/<dev>/`: owned by `<be>`, readable by `<fe>`;
//!   `frontend`, `frontend-id`, `online`, `state`, `path`, `security_model`, and optionally
//!   `mode=ro` and the quota keys `max-space` (MiB), `max-files`, `max-open-files`; pvfs's
//!   `fids`, `stats` (`pvfs top`) and `error`; also
//!   `versions`, `max-rings`, `max-ring-page-order` with the values pvfs publishes, for
//!   frontends older than Linux 6.3 that read them when the device appears.
//! - `/local/domain/<fe>/device/9pfs/<dev>/`: owned by `<fe>`, readable by `<be>`; `backend`,
//!   `backend-id`, `state`, `tag`.
//! - `/libxl/<fe>/device/9pfs/<dev>/`: dom0's own record, as libxl keeps for every device
//!   (`frontend`, `backend` and a copy of the backend keys), so that `xl destroy` and
//!   `xl shutdown` of the guest remove the device as they remove one from its config.

use super::domains::{domains, Domain};
use super::failure::{transact, Failure, Kind, Res};
use crate::xs::{Store, Tx, NO_TX};
use pvfs_ring::xenbus::{XenbusState, MODE_KEY, STATS_KEY};
use std::str::FromStr;

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

pub fn read_state<S: Store + ?Sized>(s: &mut S, tx: Tx, path: &str) -> Res<Option<XenbusState>> {
    Ok(s.read(tx, path)?
        .map(|v| XenbusState::parse(&v).unwrap_or(XenbusState::Unknown)))
}

/// The children of `path` whose names are numbers (domain or device ids), in order.
pub fn numeric_children<S: Store + ?Sized, N: FromStr + Ord>(
    s: &mut S,
    tx: Tx,
    path: &str,
) -> Res<Vec<N>> {
    let mut v: Vec<N> = s
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
    /// The backend's `template`.
    pub template: Option<String>,
    /// The backend's `state`.
    pub state: Option<XenbusState>,
    /// The frontend's `state`.
    pub guest_state: Option<XenbusState>,
    /// The backend's `mode` is `ro`.
    pub read_only: bool,
    /// `max-space` (MiB), `max-files`, `max-open-files`, `max-iops`, `max-bps`, as written.
    pub quota: [Option<String>; 5],
    /// `uid-map`, `gid-map`, `squash-root`, `unmapped-ids`, as written.
    pub policy: [Option<String>; 4],
    /// The backend's `error` node.
    pub error: Option<String>,
    /// The backend's `stats` node: what pvfs publishes about the device (`pvfs top`).
    pub stats: Option<String>,
}

/// The quota keys and the rate limits, in the order of [`Share::quota`].
pub const QUOTA_KEYS: [&str; 5] = [
    "max-space",
    "max-files",
    "max-open-files",
    "max-iops",
    "max-bps",
];

/// The shares pvfs in `be` has, for every guest or one.
pub fn shares<S: Store + ?Sized>(s: &mut S, be: u16, only: Option<u16>) -> Res<Vec<Share>> {
    let doms = domains(s)?;
    let base = format!("/local/domain/{be}/backend/9pfs");
    let mut out = Vec::new();
    for fe in numeric_children::<_, u16>(s, NO_TX, &base)? {
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
            let mut quota: [Option<String>; 5] = Default::default();
            for (q, k) in quota.iter_mut().zip(QUOTA_KEYS) {
                *q = s.read(NO_TX, &format!("{b}/{k}"))?;
            }
            let mut policy: [Option<String>; 4] = Default::default();
            for (p, k) in policy.iter_mut().zip(super::policy::POLICY_KEYS) {
                *p = s.read(NO_TX, &format!("{b}/{k}"))?;
            }
            out.push(Share {
                guest: guest.clone(),
                devid,
                backend: be,
                tag: s.read(NO_TX, &format!("{f}/tag"))?,
                path: s.read(NO_TX, &format!("{b}/path"))?,
                template: s.read(NO_TX, &format!("{b}/template"))?,
                state: read_state(s, NO_TX, &format!("{b}/state"))?,
                guest_state: read_state(s, NO_TX, &format!("{f}/state"))?,
                read_only: s.read(NO_TX, &format!("{b}/{MODE_KEY}"))?.as_deref() == Some("ro"),
                quota,
                policy,
                error: s.read(NO_TX, &format!("{b}/error"))?,
                stats: s.read(NO_TX, &format!("{b}/{STATS_KEY}"))?,
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
pub fn remove_nodes<S: Store + ?Sized>(s: &mut S, be: u16, fe: u16, dev: u32) -> Res<()> {
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
