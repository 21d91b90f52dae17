//! The identity-policy options of `pvfs share add` and `set` (`--ro`/`--rw`, `--uid-map`,
//! `--gid-map`, `--squash-root`, `--squash-all`, `--unmapped-ids`): validated here with
//! pvfs's own parser (`pvfs_9p::idpolicy`), then written as the device's backend keys, which
//! pvfs reads when the device connects and again whenever one changes (docs/identity.md).

use super::failure::{Failure, Kind, Res};
use clap::Args;
use pvfs_9p::idpolicy::{parse_map, parse_pair};
use pvfs_ring::xenbus::MODE_KEY;

/// The policy keys a share may have, in the order of `Share::policy`.
pub const POLICY_KEYS: [&str; 4] = ["uid-map", "gid-map", "squash-root", "unmapped-ids"];

/// The id of nobody, what `--squash-root` squashes to without a value.
const NOBODY: &str = "65534:65534";

/// The identity-policy options.
#[derive(Args, Debug, Default, Clone)]
pub struct PolicyArgs {
    /// Serve the share read-only (writes `mode=ro`; guests get EROFS on writes; live with `set`)
    #[arg(long, conflicts_with = "rw")]
    pub(super) ro: bool,
    /// Serve the share read-write again (removes `mode`)
    #[arg(long)]
    pub(super) rw: bool,
    /// Guest uids to host uids: `identity`, `all:ID`, or ranges `GUEST:HOST:COUNT[,…]`
    #[arg(long, value_name = "MAP", conflicts_with = "squash_all")]
    pub(super) uid_map: Option<String>,
    /// Guest gids to host gids, as --uid-map
    #[arg(long, value_name = "MAP", conflicts_with = "squash_all")]
    pub(super) gid_map: Option<String>,
    /// Guest root becomes host UID:GID (65534:65534 without a value)
    #[arg(long, value_name = "UID:GID", num_args = 0..=1, require_equals = true, default_missing_value = NOBODY, conflicts_with = "no_squash_root")]
    pub(super) squash_root: Option<String>,
    /// Stop squashing guest root (removes `squash-root`)
    #[arg(long)]
    pub(super) no_squash_root: bool,
    /// Every guest uid and gid becomes host UID:GID (uid-map all:UID, gid-map all:GID)
    #[arg(long, value_name = "UID:GID")]
    pub(super) squash_all: Option<String>,
    /// The host ids of guest ids outside every range (default 65534:65534)
    #[arg(long, value_name = "UID:GID")]
    pub(super) unmapped_ids: Option<String>,
}

/// One key change: `Some` writes the value, `None` removes the key.
pub type KeyChange = (&'static str, Option<String>);

fn usage(opt: &str, v: &str, why: String) -> Failure {
    Failure::new(Kind::Usage, format!("--{opt} {v}: {why}"))
}

impl PolicyArgs {
    /// The key changes these options ask for, validated (exit 2 with one line if not).
    pub fn changes(&self) -> Res<Vec<KeyChange>> {
        let mut out: Vec<KeyChange> = Vec::new();
        if self.ro {
            out.push((MODE_KEY, Some("ro".into())));
        }
        if self.rw {
            out.push((MODE_KEY, None));
        }
        for (opt, key, v) in [
            ("uid-map", "uid-map", &self.uid_map),
            ("gid-map", "gid-map", &self.gid_map),
        ] {
            if let Some(v) = v {
                parse_map(v).map_err(|e| usage(opt, v, e))?;
                out.push((key, Some(v.trim().to_string())));
            }
        }
        if let Some(v) = &self.squash_all {
            let (u, g) = parse_pair(v).map_err(|e| usage("squash-all", v, e))?;
            out.push(("uid-map", Some(format!("all:{u}"))));
            out.push(("gid-map", Some(format!("all:{g}"))));
        }
        for (opt, v) in [
            ("squash-root", &self.squash_root),
            ("unmapped-ids", &self.unmapped_ids),
        ] {
            if let Some(v) = v {
                let (u, g) = parse_pair(v).map_err(|e| usage(opt, v, e))?;
                out.push((opt, Some(format!("{u}:{g}"))));
            }
        }
        if self.no_squash_root {
            out.push(("squash-root", None));
        }
        Ok(out)
    }
}

/// A share's policy in a few words, for `share ls` and `share set`: `rw`/`ro` aside, the keys
/// that are set (`identity` if none).
pub fn policy_summary(policy: &[Option<String>; 4]) -> String {
    let names = ["uid", "gid", "root", "unmapped"];
    let parts: Vec<String> = names
        .iter()
        .zip(policy)
        .filter_map(|(n, v)| v.as_ref().map(|v| format!("{n}={v}")))
        .collect();
    if parts.is_empty() {
        "identity".into()
    } else {
        parts.join(" ")
    }
}
