//! The live dedup (`pvfs dedup` in dom0): a request in `data/pvfs/dedup/request` starts a run
//! over the whole volume, which the serve loop steps while no guest request is waiting, and
//! answers in `data/pvfs/dedup/state` (and `result`). The protocol and the run are
//! `pvfs_fs::dedup::control`, tested on the host; this is the loop's side of it.

use crate::xen;
use alloc::format;
use alloc::string::String;
use pvfs_fs::dedup::control::{Answer, DedupCtl};

/// Bytes a step reads at most (file data hashed or compared), so a step is short next to
/// the guests' requests it makes wait.
const STEP_BYTES: u64 = 1 << 20;

/// The xenstore watch token of the request key.
pub(super) const TOKEN: &str = "dedup";

pub(super) struct LiveDedup {
    ctl: DedupCtl,
    /// `/local/domain/<pvfs>/data/pvfs/dedup`.
    dir: String,
}

impl LiveDedup {
    /// Watches the request key under `base` (`…/data/pvfs`).
    pub(super) fn new(base: &str) -> Self {
        let dir = format!("{base}/dedup");
        if let Err(e) = xen::store::watch(&format!("{dir}/request"), TOKEN) {
            log::warn!("dedup: cannot watch {dir}/request ({e:?}); pvfs dedup will get no answer");
        }
        Self {
            ctl: DedupCtl::new(),
            dir,
        }
    }

    /// The request key changed (or may have): start a run, or say why not (`unavailable`: why
    /// the volume cannot be deduplicated).
    pub(super) fn on_request(&mut self, unavailable: Option<&str>) {
        let Ok(v) = xen::store::read(&format!("{}/request", self.dir)) else {
            return;
        };
        let Some(answer) = self.ctl.on_request(&v) else {
            return;
        };
        if let Some(why) = unavailable.filter(|_| self.ctl.running()) {
            // Nothing to deduplicate: finish the run at once with an error.
            let id = String::from(answer.state.trim_start_matches("running "));
            self.ctl = DedupCtl::new();
            self.answer(&Answer {
                state: format!("failed {id}: {why}"),
                result: None,
            });
            return;
        }
        log::info!("dedup: {}", answer.state);
        self.answer(&answer);
    }

    /// Whether a run is going (the loop steps it instead of halting).
    pub(super) fn running(&self) -> bool {
        self.ctl.running()
    }

    /// One step of the run on the service's volume.
    pub(super) fn step(&mut self, service: &crate::p9back::Service) {
        let ctl = &mut self.ctl;
        match service.with_volume(|e| ctl.step(e, STEP_BYTES)) {
            Some(Some(a)) => {
                log::info!("dedup: {} {}", a.state, a.result.as_deref().unwrap_or(""));
                self.answer(&a);
            }
            Some(None) => {}
            // The volume is gone (closed): end the run.
            None => self.ctl = DedupCtl::new(),
        }
    }

    /// Writes an answer: the result first, so a reader that sees `done` finds it.
    fn answer(&self, a: &Answer) {
        if let Some(r) = &a.result {
            if let Err(e) = xen::store::write(&format!("{}/result", self.dir), r) {
                log::warn!("dedup: cannot write the result: {e:?}");
            }
        }
        if let Err(e) = xen::store::write(&format!("{}/state", self.dir), &a.state) {
            log::warn!("dedup: cannot write the state: {e:?}");
        }
    }
}
