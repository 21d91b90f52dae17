//! `pvfs dedup`: the request it writes, and what it makes of pvfs's answers.

use super::*;
use crate::share::dedup;
use pvfs_fs::dedup::control::parse_request;

/// A hook playing pvfs: takes the request after 200 ms, answers `then` 1 s later.
fn pvfs_answers(s: &mut FakeStore, then: &'static str) {
    let d = format!("/local/domain/{PVFS}/data/pvfs/dedup");
    s.hook = Some(Box::new(move |s: &mut FakeStore| {
        let Some(id) = s
            .get(&format!("{d}/request"))
            .and_then(parse_request)
            .map(String::from)
        else {
            return;
        };
        if s.now == 200 {
            s.set(&format!("{d}/state"), &format!("running {id}"));
        }
        if s.now == 1200 {
            if then == "done" {
                s.set(
                    &format!("{d}/result"),
                    "{\"files_scanned\":9,\"files_merged\":4,\"stores_created\":2,\"mismatches\":0,\"bytes_saved\":16384}",
                );
                s.set(&format!("{d}/state"), &format!("done {id}"));
            } else {
                s.set(&format!("{d}/state"), &format!("{then} {id}: why not"));
            }
        }
    }));
}

#[test]
fn dedup_waits_for_pvfs_and_prints_its_figures() {
    let (mut s, _) = setup();
    pvfs_answers(&mut s, "done");
    let out = dedup::run_dedup(&mut s, "pvfs", 5000, false).unwrap();
    assert_eq!(
        out,
        "merged 4 files (2 new shared contents), saved 16384 bytes; 9 files scanned\n"
    );
    assert_eq!(s.now, 1200);
    let (mut s, _) = setup();
    pvfs_answers(&mut s, "done");
    let out = dedup::run_dedup(&mut s, "pvfs", 5000, true).unwrap();
    assert!(
        out.starts_with("{\"files_scanned\":9,") && out.ends_with("}\n"),
        "{out}"
    );
}

#[test]
fn dedup_failures_and_timeouts() {
    let (mut s, _) = setup();
    pvfs_answers(&mut s, "failed");
    let e = dedup::run_dedup(&mut s, "pvfs", 5000, false).unwrap_err();
    assert_eq!(e.kind, Kind::Other);
    assert!(e.msg.ends_with(": why not"), "{}", e.msg);
    let (mut s, _) = setup();
    pvfs_answers(&mut s, "busy");
    let e = dedup::run_dedup(&mut s, "pvfs", 5000, false).unwrap_err();
    assert!(e.msg.ends_with(": busy: why not"), "{}", e.msg);
    // Still running when the wait is up: exit 10, and the run is not called off.
    let (mut s, _) = setup();
    pvfs_answers(&mut s, "done");
    let e = dedup::run_dedup(&mut s, "pvfs", 1000, false).unwrap_err();
    assert_eq!((e.kind, e.code()), (Kind::Timeout, 10));
    assert!(e.msg.contains("is still running"), "{}", e.msg);
    // No pvfs that answers: not taken up.
    let (mut s, _) = setup();
    let e = dedup::run_dedup(&mut s, "pvfs", 1000, false).unwrap_err();
    assert!(e.msg.contains("was not taken up"), "{}", e.msg);
    let req = s
        .get(&format!("/local/domain/{PVFS}/data/pvfs/dedup/request"))
        .unwrap()
        .to_string();
    assert!(parse_request(&req).is_some(), "{req}");
}
