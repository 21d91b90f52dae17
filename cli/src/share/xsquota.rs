//! xenstored's per-domain quotas, checked before `share add` writes a device.
//!
//! C xenstored (Xen 4.17 to 4.20: `tools/xenstore/`, then `tools/xenstored/`) gives every
//! unprivileged domain the same quotas, by default 1000 nodes (`nodes`, `--entry-nb`/`-E`) and
//! 128 watches (`watches`, `--watch-nb`/`-W`). A node counts against the domain that owns it,
//! whoever wrote it: the backend directory of a share is written by dom0 but owned by pvfs's
//! domain. xenstored checks the node quota only when an unprivileged domain creates a node
//! itself, so dom0's writes always go through, and it is pvfs that fails later, when it
//! creates `hotplug-status` or an `error` node, or watches the guest's state: the device then
//! never connects. So `add` looks first: `XS_CONTROL quota` gives the settings, `XS_CONTROL
//! quota <domid>` what pvfs's domain uses. If the new device would not fit, it raises the
//! quota with `XS_CONTROL quota set` (dom0 only). In 4.17 and 4.20 that value is global: it is
//! the quota of every unprivileged domain, until xenstored restarts. Where xenstored refuses,
//! or with `--no-raise-xenstore-quota`, `add` fails with exit 9 and says how to raise it,
//! before writing anything. oxenstored (which Debian's init script prefers when both are installed)
//! answers `quota <domid>` with `dom7 quota: 42/1000` and cannot change a quota while it
//! runs: `add` checks the nodes and, if short, fails the same way, naming
//! `/etc/xen/oxenstored.conf`. A xenstored that answers neither is not checked ahead; a
//! quota problem there shows as pvfs not answering (exit 10).

use super::failure::{Failure, Kind, Res};
use crate::xs::{Store, XsError};

/// What one device adds to pvfs's domain in xenstore.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    /// Nodes owned by pvfs's domain: those `add` writes into its backend directory (and the
    /// directories above it that are missing), plus the `hotplug-status` node pvfs writes.
    pub nodes: usize,
    /// Watches pvfs adds: one on the guest's state node.
    pub watches: usize,
}

/// A quota and pvfs's use of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// What pvfs's domain uses.
    pub used: usize,
    /// The quota.
    pub quota: usize,
}

/// What the check did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Headroom {
    /// xenstored has no `XS_CONTROL quota` (or would not answer it): not checked.
    Unknown(String),
    /// The device fits.
    Enough,
    /// The device fits after raising these quotas (`(name, from, to)`).
    Raised(Vec<(&'static str, usize, usize)>),
}

/// Parses `name : value …` lines (`quota` and `quota <domid>` replies of Xen 4.17 and 4.20).
pub fn parse_quota_lines(text: &str) -> Vec<(String, usize)> {
    text.lines()
        .filter_map(|l| {
            let (name, rest) = l.split_once(':')?;
            let v = rest.split_whitespace().next()?.parse().ok()?;
            Some((name.trim().to_string(), v))
        })
        .collect()
}

fn lookup(list: &[(String, usize)], name: &str) -> Option<usize> {
    list.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
}

/// The value a quota is raised to: by 1000 nodes (or 128 watches) at least, so that one raise
/// covers many more devices, and to what the new device needs at least.
pub fn raised(u: Usage, need: usize, step: usize) -> usize {
    (u.quota + step).max(u.used + need)
}

/// How to raise the quotas by hand, for the messages.
pub fn how_to_raise(nodes: usize, watches: Option<usize>) -> String {
    let mut set = format!("`xenstore-control quota set nodes {nodes}`");
    let mut opt = format!("`--entry-nb {nodes}`");
    if let Some(w) = watches {
        set.push_str(&format!(" and `xenstore-control quota set watches {w}`"));
        opt.push_str(&format!(" `--watch-nb {w}`"));
    }
    format!(
        "raise it in dom0 with {set} (C xenstored 4.17+, every unprivileged domain, until xenstored restarts) and for good with {opt} in XENSTORED_ARGS (/etc/default/xen on Debian, /etc/default/xencommons with Xen's own scripts)"
    )
}

/// oxenstored's answer to `quota <domid>`: `dom7 quota: 42/1000` (nodes used, node quota).
pub fn parse_oxenstored(text: &str, be: u16) -> Option<Usage> {
    let rest = text
        .trim_end_matches('\0')
        .trim()
        .strip_prefix(&format!("dom{be} quota: "))?;
    let (used, quota) = rest.split_once('/')?;
    Some(Usage {
        used: used.trim().parse().ok()?,
        quota: quota.trim().parse().ok()?,
    })
}

/// How to raise oxenstored's quotas, for the messages.
pub fn how_to_raise_oxenstored(nodes: usize) -> String {
    format!(
        "oxenstored reads its quotas only when it starts: set `quota-maxentity = {nodes}` (and `quota-maxwatch` above the number of shares) in /etc/xen/oxenstored.conf and reboot dom0, or run C xenstored (`XENSTORED=/usr/sbin/xenstored` in /etc/default/xen)"
    )
}

/// Checks that pvfs's domain `be` can take `need` more, raising the quotas if `raise` and
/// xenstored lets dom0. Fails with [`Kind::Quota`] otherwise; writes nothing but the quota.
pub fn ensure_headroom<S: Store + ?Sized>(
    s: &mut S,
    be: u16,
    need: Need,
    raise: bool,
) -> Res<Headroom> {
    let usage_text = match s.control(&["quota", &be.to_string()]) {
        Ok(t) => t,
        Err(e) => return Ok(Headroom::Unknown(e.to_string())),
    };
    // oxenstored (Debian's default xenstored): node use and quota in one line, no watch
    // count, and no way to change a quota while it runs.
    if let Some(u) = parse_oxenstored(&usage_text, be) {
        if u.used + need.nodes <= u.quota {
            return Ok(Headroom::Enough);
        }
        return Err(Failure::new(
            Kind::Quota,
            format!(
                "pvfs's domain {be} owns {} of its {} xenstore nodes and the share needs {} more; nothing was written: {}",
                u.used,
                u.quota,
                need.nodes,
                how_to_raise_oxenstored(raised(u, need.nodes, 1000))
            ),
        ));
    }
    let usage = parse_quota_lines(&usage_text);
    let settings = match s.control(&["quota"]) {
        Ok(t) => parse_quota_lines(&t),
        Err(e) => return Ok(Headroom::Unknown(e.to_string())),
    };
    let get = |name: &str| -> Option<Usage> {
        Some(Usage {
            used: lookup(&usage, name)?,
            quota: lookup(&settings, name)?,
        })
    };
    let (Some(nodes), watches) = (get("nodes"), get("watches")) else {
        return Ok(Headroom::Unknown(
            "xenstored's `quota` reply has no node count".into(),
        ));
    };
    let short_nodes = nodes.used + need.nodes > nodes.quota;
    let short_watches = watches.is_some_and(|w| w.used + need.watches > w.quota);
    if !short_nodes && !short_watches {
        return Ok(Headroom::Enough);
    }
    let new_nodes = if short_nodes {
        raised(nodes, need.nodes, 1000)
    } else {
        nodes.quota
    };
    let new_watches = watches
        .filter(|_| short_watches)
        .map(|w| raised(w, need.watches, 128));
    let mut what = Vec::new();
    if short_nodes {
        what.push(format!(
            "owns {} of its {} xenstore nodes and the share needs {} more",
            nodes.used, nodes.quota, need.nodes
        ));
    }
    if let Some(w) = watches.filter(|_| short_watches) {
        what.push(format!(
            "holds {} of its {} xenstore watches and the share needs {} more",
            w.used, w.quota, need.watches
        ));
    }
    let what = format!("pvfs's domain {be} {}", what.join(" and "));
    let refuse = |why: String| {
        Failure::new(
            Kind::Quota,
            format!(
                "{what}; {why}; nothing was written: {}",
                how_to_raise(new_nodes, new_watches)
            ),
        )
    };
    if !raise {
        return Err(refuse("--no-raise-xenstore-quota was given".into()));
    }
    let mut done = Vec::new();
    let mut sets: Vec<(&'static str, usize, usize)> = Vec::new();
    if short_nodes {
        sets.push(("nodes", nodes.quota, new_nodes));
    }
    if let (Some(w), Some(nw)) = (watches, new_watches) {
        sets.push(("watches", w.quota, nw));
    }
    for (name, from, to) in sets {
        // Read back: a xenstored that does not know the command may acknowledge it anyway.
        let set = s
            .control(&["quota", "set", name, &to.to_string()])
            .and_then(|_| s.control(&["quota"]));
        match set {
            Ok(t) if lookup(&parse_quota_lines(&t), name) == Some(to) => {
                done.push((name, from, to))
            }
            Ok(_) => {
                return Err(refuse(
                    "xenstored acknowledged `quota set` but the quota did not change".into(),
                ))
            }
            Err(e) => {
                let why = match e {
                    XsError::Denied(_) => {
                        "xenstored did not let pvfs raise the quota (EACCES)".to_string()
                    }
                    e => format!("xenstored did not raise the quota ({e})"),
                };
                return Err(refuse(why));
            }
        }
    }
    Ok(Headroom::Raised(done))
}
