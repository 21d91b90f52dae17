//! `pvfs share ls`: the shares as a table or as JSON.

use super::json::{columns, json_num_or_str, json_opt, json_str};
use super::nodes::Share;
use super::policy::policy_summary;
use super::top::figures;
use pvfs_ring::xenbus::XenbusState;

fn state_name(s: Option<XenbusState>) -> &'static str {
    s.map_or("-", XenbusState::name)
}

/// A share's use as pvfs last published it (`stats`): MiB of file data and files, measured
/// where the export has a byte or file quota; open files always.
fn used(sh: &Share) -> (Option<u64>, Option<u64>, Option<u64>) {
    let f = figures(sh);
    let n = |k: &str| f.as_ref().and_then(|f| f.num(k));
    (n("used_bytes"), n("used_files"), n("open_files"))
}

/// The `USED` column: `12.5MiB/340f` (space and files, where measured), or `-`.
fn used_summary(sh: &Share) -> String {
    match used(sh) {
        (Some(b), Some(f), _) => format!("{:.1}MiB/{f}f", b as f64 / (1u64 << 20) as f64),
        _ => "-".into(),
    }
}

/// The `share ls` table.
pub fn ls_table(shares: &[Share]) -> String {
    // The columns `docs/pvfs-share.md` documents; the test `ls_table_and_json` (tests.rs)
    // lists them again on purpose, so that a renamed column fails it.
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
        "MAX-IOPS",
        "MAX-BPS",
        "USED",
        "IDS",
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
            match (&sh.path, &sh.template) {
                (Some(p), Some(t)) => format!("{p} (template {t})"),
                (p, _) => p.clone().unwrap_or_else(|| "-".into()),
            },
            state,
            state_name(sh.guest_state).into(),
            if sh.read_only { "yes" } else { "no" }.into(),
            q(0, "MiB"),
            q(1, ""),
            q(2, ""),
            q(3, ""),
            q(4, ""),
            used_summary(sh),
            policy_summary(&sh.policy),
        ]);
    }
    columns(&rows)
}

/// The `share ls --json` document: an array of objects.
pub fn ls_json(shares: &[Share]) -> String {
    let items: Vec<String> = shares
        .iter()
        .map(|sh| {
            let used = used(sh);
            let num = |v: Option<u64>| v.map_or_else(|| "null".to_string(), |v| v.to_string());
            format!(
                "{{\"guest\":{},\"domid\":{},\"devid\":{},\"backend\":{},\"tag\":{},\"path\":{},\"template\":{},\"state\":{},\"guest_state\":{},\"read_only\":{},\"max_space_mib\":{},\"max_files\":{},\"max_open_files\":{},\"max_iops\":{},\"max_bps\":{},\"space_used_mib\":{},\"files_used\":{},\"open_files_used\":{},\"uid_map\":{},\"gid_map\":{},\"squash_root\":{},\"unmapped_ids\":{},\"error\":{}}}",
                json_str(&sh.guest.name),
                sh.guest.domid,
                sh.devid,
                sh.backend,
                json_opt(sh.tag.as_deref()),
                json_opt(sh.path.as_deref()),
                json_opt(sh.template.as_deref()),
                json_opt(sh.state.map(XenbusState::name)),
                json_opt(sh.guest_state.map(XenbusState::name)),
                sh.read_only,
                json_num_or_str(sh.quota[0].as_deref()),
                json_num_or_str(sh.quota[1].as_deref()),
                json_num_or_str(sh.quota[2].as_deref()),
                json_num_or_str(sh.quota[3].as_deref()),
                json_num_or_str(sh.quota[4].as_deref()),
                num(used.0.map(|b| b.div_ceil(1 << 20))),
                num(used.1),
                num(used.2),
                json_opt(sh.policy[0].as_deref()),
                json_opt(sh.policy[1].as_deref()),
                json_opt(sh.policy[2].as_deref()),
                json_opt(sh.policy[3].as_deref()),
                json_opt(sh.error.as_deref()),
            )
        })
        .collect();
    format!("[{}]\n", items.join(","))
}
