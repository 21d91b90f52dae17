//! The live dedup's control protocol, shared by the domain and `pvfs dedup` in dom0
//! (`docs/pvfs-share.md`): dom0 writes `data/pvfs/dedup/request = start ID`; pvfs answers in
//! `data/pvfs/dedup/state` with `running ID`, then `done ID` (with the figures in
//! `data/pvfs/dedup/result`, one JSON object, written first) or `failed ID: why`; a request
//! while a run is going is answered `busy ID: …`. The run ([`Job`]) goes in paced steps while
//! pvfs has nothing else to do, so guests' requests go first.

use super::{DedupReport, Job};
use crate::block::BlockDevice;
use crate::ext4::Ext4;
use alloc::format;
use alloc::string::String;

/// File data read per step of a run in the domain (hashing and comparing).
pub const STEP_BYTES: u64 = 1 << 20;

/// The request for run `id`.
pub fn request(id: &str) -> String {
    format!("start {id}")
}

/// What `state` says about run `id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Not an answer to this request (yet).
    Other,
    /// The run is going.
    Running,
    /// The run finished; its figures are in `result`.
    Done,
    /// The run failed, or another was going: the reason.
    Failed(String),
}

/// Read a `state` value as an answer to run `id`.
pub fn parse_state(v: &str, id: &str) -> State {
    let v = v.trim();
    let Some((word, rest)) = v.split_once(' ') else {
        return State::Other;
    };
    let (rid, why) = match rest.split_once(": ") {
        Some((r, w)) => (r, w),
        None => (rest, ""),
    };
    if rid != id {
        return State::Other;
    }
    match word {
        "running" => State::Running,
        "done" => State::Done,
        "failed" | "busy" => State::Failed(if word == "busy" {
            format!("busy: {why}")
        } else {
            why.into()
        }),
        _ => State::Other,
    }
}

/// The longest request id accepted (what dom0 chooses; echoed back).
const MAX_ID: usize = 64;

/// What the serve loop writes back (`data/pvfs/dedup/state`, and `result` when done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The new `state`.
    pub state: String,
    /// The new `result` (a finished run's figures, one JSON object).
    pub result: Option<String>,
}

/// A request parsed from `data/pvfs/dedup/request`: `start ID` (ID: 1–64 letters, digits,
/// `-`, `_` or `.`).
pub fn parse_request(v: &str) -> Option<&str> {
    let id = v.trim().strip_prefix("start ")?.trim();
    let ok = !id.is_empty()
        && !id.contains(' ')
        && id.len() <= MAX_ID
        && id
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'));
    ok.then_some(id)
}

/// A finished run's figures as `pvfs image dedup --json` prints them.
pub fn result_json(r: &DedupReport) -> String {
    format!(
        "{{\"files_scanned\":{},\"files_merged\":{},\"stores_created\":{},\"mismatches\":{},\"bytes_saved\":{}}}",
        r.files_scanned, r.files_merged, r.stores_created, r.mismatches, r.bytes_saved
    )
}

/// The live dedup: at most one run at a time.
#[derive(Default)]
pub struct DedupCtl {
    run: Option<(String, Job)>,
    /// The last request acted on, so that a watch firing again for it starts nothing.
    last: Option<String>,
}

impl DedupCtl {
    /// A new, idle controller.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether a run is going (the serve loop then steps it instead of halting).
    pub fn running(&self) -> bool {
        self.run.is_some()
    }

    /// The request key changed to `value`: start a run (whole volume) unless one runs, or
    /// ignore it (not a request, or the one acted on already).
    pub fn on_request(&mut self, value: &str) -> Option<Answer> {
        let id = parse_request(value)?;
        if self.last.as_deref() == Some(id) {
            return None;
        }
        self.last = Some(id.into());
        if let Some((cur, _)) = &self.run {
            return Some(Answer {
                state: format!("busy {id}: run {cur} is going"),
                result: None,
            });
        }
        self.run = Some((id.into(), Job::new(&[b"/"])));
        Some(Answer {
            state: format!("running {id}"),
            result: None,
        })
    }

    /// One paced step of the run on the volume; an answer when it finished or failed.
    pub fn step<D: BlockDevice>(&mut self, fs: &mut Ext4<D>, budget: u64) -> Option<Answer> {
        let (id, job) = self.run.as_mut()?;
        let answer = match job.step(fs, budget) {
            Ok(false) => return None,
            Ok(true) => Answer {
                state: format!("done {id}"),
                result: Some(result_json(&job.report())),
            },
            Err(e) => Answer {
                state: format!("failed {id}: {e}"),
                result: None,
            },
        };
        self.run = None;
        Some(answer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_states_round_trip() {
        assert_eq!(parse_request(&request("42-a.b_c")), Some("42-a.b_c"));
        assert_eq!(parse_request("start 7\n"), Some("7"));
        assert_eq!(parse_request("start "), None);
        assert_eq!(parse_request("stop 1"), None);
        assert_eq!(parse_request("start a b"), None);
        assert_eq!(parse_request(&request(&"x".repeat(65))), None);
        assert_eq!(parse_state("running 7", "7"), State::Running);
        assert_eq!(parse_state("done 7", "7"), State::Done);
        assert_eq!(parse_state("done 8", "7"), State::Other);
        assert_eq!(parse_state("", "7"), State::Other);
        assert_eq!(
            parse_state("failed 7: corrupt inode", "7"),
            State::Failed("corrupt inode".into())
        );
        assert_eq!(
            parse_state("busy 7: run 6 is going", "7"),
            State::Failed("busy: run 6 is going".into())
        );
    }
}
