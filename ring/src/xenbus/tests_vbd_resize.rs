//! The block frontend machine when the backend's disk changes size while connected.

use super::tests::{backend_connected, vbd_ring_ready, VBE};
use super::*;

/// A connected frontend on a disk of 2,097,152 sectors (1 GiB).
fn connected() -> (MemStore, VbdFrontend) {
    let (mut s, mut f) = vbd_ring_ready();
    backend_connected(&mut s);
    assert!(matches!(f.step(&mut s).unwrap(), VbdAction::Connected(_)));
    assert_eq!(f.sectors(), 2097152);
    (s, f)
}

/// What Linux's blkback does when its backing device grows: `sectors`, then `state` again.
fn announce(s: &mut MemStore, sectors: &str) {
    s.set(&format!("{VBE}/sectors"), sectors);
    s.set(&format!("{VBE}/state"), "4");
}

#[test]
fn a_state_event_without_a_new_size_changes_nothing() {
    let (mut s, mut f) = connected();
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Idle);
    assert_eq!(f.sectors(), 2097152);
}

#[test]
fn the_disk_grows_while_connected() {
    let (mut s, mut f) = connected();
    announce(&mut s, "4194304");
    assert_eq!(
        f.step(&mut s).unwrap(),
        VbdAction::Grew {
            before: 2097152,
            sectors: 4194304
        }
    );
    assert_eq!(f.sectors(), 4194304);
    // Reported once.
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Idle);
    // And again when it grows further.
    announce(&mut s, "4194312");
    assert_eq!(
        f.step(&mut s).unwrap(),
        VbdAction::Grew {
            before: 4194304,
            sectors: 4194312
        }
    );
}

#[test]
fn a_smaller_disk_is_refused_and_the_size_kept() {
    let (mut s, mut f) = connected();
    announce(&mut s, "1048576");
    assert_eq!(
        f.step(&mut s).unwrap(),
        VbdAction::ShrinkRefused {
            kept: 2097152,
            announced: 1048576
        }
    );
    assert_eq!(f.sectors(), 2097152);
    // Back to the size it had: nothing to do.
    announce(&mut s, "2097152");
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Idle);
}

#[test]
fn a_new_size_out_of_range_is_an_error_and_the_size_kept() {
    for bad in ["0", "-1", "x", "2199023255553", "18446744073709551615"] {
        let (mut s, mut f) = connected();
        announce(&mut s, bad);
        assert!(
            matches!(f.step(&mut s), Err(XenbusError::Invalid { .. })),
            "{bad}"
        );
        assert_eq!(f.sectors(), 2097152, "{bad}");
    }
}

#[test]
fn a_closing_backend_still_drains_after_a_resize() {
    let (mut s, mut f) = connected();
    announce(&mut s, "4194304");
    assert!(matches!(f.step(&mut s).unwrap(), VbdAction::Grew { .. }));
    s.set(&format!("{VBE}/state"), "5");
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Drain);
}
