//! `pvfs dedup`: asks the running pvfs domain to deduplicate its volume while guests keep
//! using it, and waits for the figures (protocol: `pvfs_fs::dedup::control`).

use super::domains::{data_dir, pvfs_domain};
use super::failure::{Failure, Kind, Res};
use super::POLL_MS;
use crate::xs::{Store, NO_TX};
use pvfs_fs::dedup::control::{parse_state, request, State};
use pvfs_fs::dedup::DedupReport;

/// The figures of a `result` value (one JSON object of numbers).
fn report_of(json: &str) -> DedupReport {
    let num = |key: &str| -> u64 {
        let pat = format!("\"{key}\":");
        json.find(&pat)
            .and_then(|at| {
                json.get(at + pat.len()..)?
                    .split(|c: char| !c.is_ascii_digit())
                    .next()?
                    .parse()
                    .ok()
            })
            .unwrap_or(0)
    };
    DedupReport {
        files_scanned: num("files_scanned"),
        files_merged: num("files_merged"),
        stores_created: num("stores_created"),
        mismatches: num("mismatches"),
        bytes_saved: num("bytes_saved"),
    }
}

/// Starts a live dedup in pvfs (`backend`) and waits up to `wait_ms` for it: the one-line
/// summary `pvfs image dedup` prints, or with `json` pvfs's result object. A run that fails
/// (or finds another going) is [`Kind::Other`]; one not done in time is [`Kind::Timeout`],
/// and goes on in pvfs.
pub fn run_dedup<S: Store + ?Sized>(
    s: &mut S,
    backend: &str,
    wait_ms: u64,
    json: bool,
) -> Res<String> {
    let domain = pvfs_domain(s, backend, true)?;
    let d = data_dir(domain.domid);
    let id = format!("{}-{}", std::process::id(), s.now_ms());
    s.write(NO_TX, &format!("{d}/dedup/request"), &request(&id))?;
    let start = s.now_ms();
    loop {
        let st = s
            .read(NO_TX, &format!("{d}/dedup/state"))?
            .unwrap_or_default();
        let state = parse_state(&st, &id);
        match state {
            State::Done => {
                let r = s
                    .read(NO_TX, &format!("{d}/dedup/result"))?
                    .unwrap_or_default();
                return Ok(if json {
                    format!("{}\n", r.trim())
                } else {
                    crate::dedup::summary(&report_of(&r), false)
                });
            }
            State::Failed(why) => {
                return Err(Failure::new(
                    Kind::Other,
                    format!("{}: dedup {id}: {why}", domain.label()),
                ))
            }
            State::Running | State::Other => {}
        }
        if s.now_ms().saturating_sub(start) >= wait_ms {
            let what = if state == State::Running {
                "is still running (it goes on; see data/pvfs/dedup/state)"
            } else {
                "was not taken up"
            };
            return Err(Failure::new(
                Kind::Timeout,
                format!(
                    "{}: dedup {id} {what} after {} s",
                    domain.label(),
                    wait_ms / 1000
                ),
            ));
        }
        s.sleep_ms(POLL_MS);
    }
}
