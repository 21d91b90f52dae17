//! `pvfs share rm` against the xenstore fake, with pvfs's xenbus machine deciding detach
//! requests from the fids the guest has in use: refused while mounted (exit 11, nothing
//! changed), detached without `--force` once unmounted although the guest's driver stays
//! Connected, a mount racing `rm` refused by pvfs, `--force`, a pvfs that does not answer, and
//! the guest's other shares left as they were.

use super::*;

/// Share `data` added to vm1, connected, and its state published by pvfs (one poll).
fn published_share() -> (FakeStore, Rc<RefCell<World>>) {
    let (mut s, world) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    s.sleep_ms(POLL_MS);
    (s, world)
}

#[test]
fn rm_refuses_while_mounted_and_works_with_force() {
    let (mut s, world) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    world.borrow_mut().fids.insert((GUEST, 0), 3);
    s.sleep_ms(POLL_MS); // pvfs publishes the fids
    assert_eq!(
        s.get(&format!("{}/fids", backend_dir(PVFS, GUEST, 0))),
        Some("3")
    );
    let before = s.nodes.clone();
    let e = rm(&mut s, &be(), &vm1(), "data", false, 5000).unwrap_err();
    assert_eq!((e.kind, e.code()), (Kind::InUse, 11));
    // pvfs refused the detach request; rm withdrew it
    let bd = backend_dir(PVFS, GUEST, 0);
    assert!(s
        .log
        .iter()
        .any(|(_, w)| w == &format!("write {bd}/detach=busy")));
    assert!(e.msg.contains("has share \"data\" mounted"), "{}", e.msg);
    assert!(e.msg.contains("--force"));
    assert!(!e.msg.contains('\n'));
    assert_eq!(s.nodes, before);
    let sh = rm(&mut s, &be(), &vm1(), "data", true, 5000).unwrap();
    assert_eq!(sh.devid, 0);
    assert_clean(&s, 0);
    assert!(world.borrow().machines.is_empty());
    assert_no_errors(&world);
    let e = rm(&mut s, &be(), &vm1(), "data", true, 5000).unwrap_err();
    assert_eq!((e.kind, e.code()), (Kind::NoSuchShare, 6));
}

/// The guest unmounted but its driver stays Connected (Linux keeps the device bound): pvfs
/// has no fid in use, so `rm` detaches it without `--force`; pvfs goes Closing, the guest's
/// driver closes its side, and nothing is left.
#[test]
fn rm_after_unmount_detaches_a_connected_share_without_force() {
    let (mut s, world) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    let fe = format!("{}/state", frontend_dir(GUEST, 0));
    assert_eq!(s.get(&fe), Some("4"));
    world.borrow_mut().fids.insert((GUEST, 0), 2);
    s.sleep_ms(POLL_MS);
    world.borrow_mut().fids.insert((GUEST, 0), 0); // umount clunked every fid
    s.sleep_ms(POLL_MS);
    rm(&mut s, &be(), &vm1(), "data", false, 5000).unwrap();
    assert_clean(&s, 0);
    assert!(world.borrow().machines.is_empty());
    assert_no_errors(&world);
    let bd = backend_dir(PVFS, GUEST, 0);
    let log: Vec<_> = s.log.iter().map(|(_, w)| w.as_str()).collect();
    assert!(
        log.contains(&format!("write {bd}/detach=if-idle").as_str()),
        "{log:?}"
    );
    // pvfs took it offline itself and went Closing (for the guest's driver to close).
    assert!(
        log.contains(&format!("write {bd}/online=0").as_str()),
        "{log:?}"
    );
    assert!(
        log.contains(&format!("write {bd}/state=5").as_str()),
        "{log:?}"
    );
}

/// A mount pvfs served but has not published yet (`fids` still 0): pvfs itself refuses the
/// detach (`busy`), `rm` fails with exit 11 and withdraws its request, and the device is
/// left as it was.
#[test]
fn rm_racing_a_mount_is_refused_by_pvfs() {
    let (mut s, world) = published_share();
    let before = s.nodes.clone();
    world.borrow_mut().publish_fids = false;
    world.borrow_mut().fids.insert((GUEST, 0), 1);
    let e = rm(&mut s, &be(), &vm1(), "data", false, 5000).unwrap_err();
    assert_eq!((e.kind, e.code()), (Kind::InUse, 11));
    assert!(e.msg.contains("mounted"), "{}", e.msg);
    assert_eq!(s.nodes, before);
    assert_eq!(world.borrow().machines.len(), 1);
    // Once the guest unmounted, the same command goes through.
    world.borrow_mut().fids.insert((GUEST, 0), 0);
    rm(&mut s, &be(), &vm1(), "data", false, 5000).unwrap();
    assert_clean(&s, 0);
}

/// pvfs does not answer a detach request: `rm` gives up after its timeout and leaves the
/// device as it was (still online), without its request.
#[test]
fn rm_of_a_connected_share_without_pvfs_times_out_and_changes_nothing() {
    let (mut s, world) = published_share();
    let before = s.nodes.clone();
    world.borrow_mut().pvfs_up = false;
    let e = rm(&mut s, &be(), &vm1(), "data", false, 2000).unwrap_err();
    assert_eq!((e.kind, e.code()), (Kind::Timeout, 10));
    assert!(e.msg.contains("left as they were"), "{}", e.msg);
    assert_eq!(s.nodes, before);
}

#[test]
fn rm_of_a_share_the_guest_never_connected() {
    let (mut s, world) = setup();
    world.borrow_mut().running.clear();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    // pvfs keeps such a device in Closing after online=0; rm then writes Closed.
    rm(&mut s, &be(), &vm1(), "data", false, 5000).unwrap();
    assert_clean(&s, 0);
    assert!(world.borrow().machines.is_empty());
    assert!(s
        .log
        .iter()
        .any(|(_, w)| w == &format!("write {}/state=6", backend_dir(PVFS, GUEST, 0))));
}

#[test]
fn rm_without_pvfs_times_out_and_leaves_the_nodes_offline() {
    let (mut s, world) = setup();
    world.borrow_mut().running.clear();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    world.borrow_mut().pvfs_up = false;
    let e = rm(&mut s, &be(), &vm1(), "data", false, 2000).unwrap_err();
    assert_eq!((e.kind, e.code()), (Kind::Timeout, 10));
    let bd = backend_dir(PVFS, GUEST, 0);
    assert_eq!(s.get(&format!("{bd}/online")), Some("0"));
    // --force removes them.
    rm(&mut s, &be(), &vm1(), "data", true, 1000).unwrap();
    assert_clean(&s, 0);
}

#[test]
fn rm_leaves_the_other_shares_alone() {
    let (mut s, world) = setup();
    add(&mut s, &be(), &vm1(), &opts("a", "/exports/vm1")).unwrap();
    add(&mut s, &be(), &vm1(), &opts("b", "/exports/vm1")).unwrap();
    let keep: Vec<_> = [
        backend_dir(PVFS, GUEST, 1),
        frontend_dir(GUEST, 1),
        libxl_dir(GUEST, 1),
    ]
    .iter()
    .map(|p| (p.clone(), s.subtree(p)))
    .collect();
    rm(&mut s, &be(), &vm1(), "a", true, 5000).unwrap();
    for p in [
        backend_dir(PVFS, GUEST, 0),
        frontend_dir(GUEST, 0),
        libxl_dir(GUEST, 0),
    ] {
        assert!(!s.exists(&p), "{p}");
    }
    for (p, sub) in keep {
        assert_eq!(s.subtree(&p), sub, "{p}");
    }
    assert_eq!(world.borrow().machines.len(), 1);
    let list = shares(&mut s, PVFS, None).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].tag.as_deref(), Some("b"));
    assert_eq!(list[0].state, Some(XenbusState::Connected));
}
