//! `pvfs status`: the pvfs domain, its volume, version and counters, as text or JSON.

use super::domains::{data_dir, pvfs_domain, Domain};
use super::failure::{Failure, Kind, Res};
use super::json::{json_num_or_str, json_opt, json_str};
use super::nodes::shares;
use super::POLL_MS;
use crate::xs::{Store, NO_TX};
use std::fmt::Write as _;

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

/// `pvfs status --wait`: waits up to `timeout_ms` for the pvfs domain to exist and publish
/// `data/pvfs/status = ready` (what the systemd unit waits for before xendomains starts the
/// guests), then reads its status. A domain that is not there yet, or not ready, is waited
/// for; it is a [`Kind::Timeout`] (exit 10) once the time is up.
pub fn wait_ready<S: Store + ?Sized>(s: &mut S, backend: &str, timeout_ms: u64) -> Res<Status> {
    let start = s.now_ms();
    loop {
        let last = match status(s, backend) {
            Ok(st) if st.status.as_deref() == Some("ready") => return Ok(st),
            Ok(st) => format!(
                "{} has status {}",
                st.domain.label(),
                st.status.as_deref().unwrap_or("(none)")
            ),
            Err(f) if f.kind == Kind::NoPvfs => f.msg,
            Err(f) => return Err(f),
        };
        if s.now_ms().saturating_sub(start) >= timeout_ms {
            return Err(Failure::new(
                Kind::Timeout,
                format!("pvfs was not ready within {} s: {last}", timeout_ms / 1000),
            ));
        }
        s.sleep_ms(POLL_MS);
    }
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
