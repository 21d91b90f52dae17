//! The domains the commands name: the guest (`DOMAIN`) and the pvfs domain (`--backend`).

use super::failure::{Failure, Kind, Res};
use super::nodes::numeric_children;
use crate::xs::{Store, NO_TX};

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
    let ids: Vec<u16> = numeric_children(s, NO_TX, "/local/domain")?;
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
pub fn data_dir(be: u16) -> String {
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
