//! `pvfs top`: each share's figures as pvfs publishes them (the `stats` key of its backend
//! directory, `pvfs_kernel::devstats`), as a table that refreshes like `xentop`, or once as
//! JSON.

use super::domains::pvfs_domain;
use super::failure::{Failure, Kind, Res};
use super::json::{columns, json_num_or_str, json_opt, json_str};
use super::nodes::{shares, Share};
use crate::xs::Store;
use pvfs_ring::xenbus::XenbusState;
use std::fmt::Write as _;

/// One share's published figures: `key=value` pairs in order, and the requests by type.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Figures {
    /// The pairs before `types=`, as published.
    pub pairs: Vec<(String, String)>,
    /// `types=`: requests by 9P type name, in the published order.
    pub types: Vec<(String, u64)>,
}

impl Figures {
    /// Parses a `stats` value; words that are not `key=value` are skipped.
    pub fn parse(v: &str) -> Self {
        let mut f = Figures::default();
        for w in v.split_whitespace() {
            let Some((k, val)) = w.split_once('=') else {
                continue;
            };
            if k == "types" {
                f.types = val
                    .split(',')
                    .filter_map(|t| t.split_once(':'))
                    .filter_map(|(n, c)| Some((n.to_string(), c.parse().ok()?)))
                    .collect();
            } else {
                f.pairs.push((k.to_string(), val.to_string()));
            }
        }
        f
    }

    /// A counter, if published as a number.
    pub fn num(&self, key: &str) -> Option<u64> {
        self.pairs
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| v.parse().ok())
    }
}

/// A share's figures, if pvfs has published any.
pub fn figures(sh: &Share) -> Option<Figures> {
    sh.stats.as_deref().map(Figures::parse)
}

/// Microseconds as text: `850us`, `12.5ms`, `1.2s`.
fn duration(us: u64) -> String {
    match us {
        0..=999 => format!("{us}us"),
        1_000..=999_999 => format!("{:.1}ms", us as f64 / 1e3),
        _ => format!("{:.1}s", us as f64 / 1e6),
    }
}

/// Seconds a rate limit has held the share back (`-` without a limit).
fn held(f: &Figures) -> String {
    let limited = f.num("max_iops").is_some() || f.num("max_bps").is_some();
    match f.num("throttled_ms") {
        Some(ms) if limited || ms > 0 => format!("{:.1}", ms as f64 / 1000.0),
        _ => "-".into(),
    }
}

/// Bytes as MiB with one decimal.
fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1u64 << 20) as f64)
}

/// A rate per second from two samples of a counter, `ms` apart.
fn rate(now: Option<u64>, before: Option<u64>, ms: u64) -> Option<f64> {
    let d = now?.checked_sub(before?)?;
    (ms > 0).then(|| d as f64 * 1000.0 / ms as f64)
}

/// The table's columns (documented in docs/pvfs-share.md, "pvfs top").
pub const TOP_COLUMNS: [&str; 15] = [
    "GUEST",
    "DOMID",
    "DEV",
    "TAG",
    "STATE",
    "REQS",
    "REQ/S",
    "READ-MIB/S",
    "WRITE-MIB/S",
    "ERRORS",
    "LAT-P50",
    "LAT-P99",
    "LAT-MAX",
    "HELD-S",
    "USED-MIB",
];

/// The `pvfs top` table of `now`; rates come from `before`, a sample taken `ms` earlier (the
/// same share is matched by guest and device), and are `-` without one.
pub fn top_table(now: &[Share], before: Option<(&[Share], u64)>) -> String {
    let mut rows: Vec<Vec<String>> = vec![TOP_COLUMNS.iter().map(|h| h.to_string()).collect()];
    let dash = || String::from("-");
    for sh in now {
        let f = figures(sh).unwrap_or_default();
        let prev = before.and_then(|(b, ms)| {
            b.iter()
                .find(|p| p.guest.domid == sh.guest.domid && p.devid == sh.devid)
                .map(|p| (figures(p).unwrap_or_default(), ms))
        });
        let r = |key: &str, scale: f64, decimals: usize| -> String {
            prev.as_ref()
                .and_then(|(p, ms)| rate(f.num(key), p.num(key), *ms))
                .map_or_else(dash, |v| format!("{:.decimals$}", v / scale))
        };
        let n = |key: &str| f.num(key).map_or_else(dash, |v| v.to_string());
        let lat = |key: &str| f.num(key).map_or_else(dash, duration);
        rows.push(vec![
            if sh.guest.name.is_empty() {
                dash()
            } else {
                sh.guest.name.clone()
            },
            sh.guest.domid.to_string(),
            sh.devid.to_string(),
            sh.tag.clone().unwrap_or_else(dash),
            sh.state.map_or("-", XenbusState::name).to_string(),
            n("requests"),
            r("requests", 1.0, 0),
            r("read_bytes", (1u64 << 20) as f64, 1),
            r("written_bytes", (1u64 << 20) as f64, 1),
            n("errors"),
            lat("lat_p50_us"),
            lat("lat_p99_us"),
            lat("lat_max_us"),
            held(&f),
            f.num("used_bytes").map_or_else(dash, mib),
        ]);
    }
    columns(&rows)
}

/// The `pvfs top --json` document: an array with one object a share; `stats` is null until
/// pvfs has published the share's figures (it does once the guest has sent a request).
pub fn top_json(now: &[Share]) -> String {
    let items: Vec<String> = now
        .iter()
        .map(|sh| {
            let stats = figures(sh).map_or_else(
                || "null".to_string(),
                |f| {
                    let mut fields: Vec<String> = f
                        .pairs
                        .iter()
                        .map(|(k, v)| {
                            let v = if v == "-" { None } else { Some(v.as_str()) };
                            format!("{}:{}", json_str(k), json_num_or_str(v))
                        })
                        .collect();
                    let types: Vec<String> = f
                        .types
                        .iter()
                        .map(|(k, v)| format!("{}:{v}", json_str(k)))
                        .collect();
                    fields.push(format!("\"types\":{{{}}}", types.join(",")));
                    format!("{{{}}}", fields.join(","))
                },
            );
            format!(
                "{{\"guest\":{},\"domid\":{},\"devid\":{},\"tag\":{},\"state\":{},\"stats\":{stats}}}",
                json_str(&sh.guest.name),
                sh.guest.domid,
                sh.devid,
                json_opt(sh.tag.as_deref()),
                json_opt(sh.state.map(XenbusState::name)),
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}

/// What `pvfs top` does.
#[derive(Debug, Clone)]
pub struct TopOpts {
    /// The pvfs domain (name or id).
    pub backend: String,
    /// Print JSON once.
    pub json: bool,
    /// Seconds between refreshes.
    pub delay_s: u64,
    /// Refreshes before exiting; `None`: until interrupted.
    pub iterations: Option<u64>,
    /// Clear the screen before each table (a terminal); otherwise tables follow each other.
    pub clear: bool,
}

/// Runs `pvfs top`, writing each frame to `out`.
pub fn top<S: Store + ?Sized>(s: &mut S, o: &TopOpts, out: &mut dyn std::io::Write) -> Res<()> {
    let io = |e: std::io::Error| Failure::new(Kind::Other, format!("writing the table: {e}"));
    if o.delay_s == 0 {
        return Err(Failure::new(
            Kind::Usage,
            "--delay must be at least 1 second",
        ));
    }
    let be = pvfs_domain(s, &o.backend, false)?;
    if o.json {
        let now = shares(s, be.domid, None)?;
        return out.write_all(top_json(&now).as_bytes()).map_err(io);
    }
    let mut before: Option<(Vec<Share>, u64)> = None;
    let mut frame = 0u64;
    loop {
        let t = s.now_ms();
        let now = shares(s, be.domid, None)?;
        let prev = before
            .as_ref()
            .map(|(b, at)| (b.as_slice(), t.saturating_sub(*at)));
        let mut text = String::new();
        if o.clear {
            // cursor home, clear the screen
            text.push_str("\x1b[H\x1b[2J");
        } else if frame > 0 {
            text.push('\n');
        }
        let _ = writeln!(
            text,
            "pvfs top: {}, {} share{}, every {} s",
            be.label(),
            now.len(),
            if now.len() == 1 { "" } else { "s" },
            o.delay_s
        );
        text.push_str(&top_table(&now, prev));
        out.write_all(text.as_bytes()).map_err(io)?;
        out.flush().map_err(io)?;
        frame += 1;
        if o.iterations.is_some_and(|n| frame >= n) {
            return Ok(());
        }
        before = Some((now, t));
        s.sleep_ms(o.delay_s.saturating_mul(1000));
    }
}
