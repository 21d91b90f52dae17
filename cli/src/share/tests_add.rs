//! `pvfs share add` that succeeds: the nodes and permissions it writes in one transaction, the
//! connect through pvfs and the guest, read-only shares, paused guests and retried transactions.

use super::*;

#[test]
fn add_writes_libxls_nodes_with_permissions_in_one_transaction() {
    let (mut s, _) = setup();
    // pvfs does not answer; the first poll takes a copy of what add committed.
    let captured: Rc<RefCell<Option<FakeStore>>> = Rc::new(RefCell::new(None));
    let c = captured.clone();
    s.hook = Some(Box::new(move |s: &mut FakeStore| {
        if c.borrow().is_none() {
            let mut copy = FakeStore::new();
            copy.nodes = s.nodes.clone();
            *c.borrow_mut() = Some(copy);
        }
    }));
    let o = AddOpts {
        max_space_mib: Some(64),
        max_files: Some(1000),
        read_only: true,
        timeout_ms: 300,
        ..opts("data", "/exports/vm1")
    };
    let log_before = s.log.len();
    let err = add(&mut s, &be(), &vm1(), &o).unwrap_err();
    assert_eq!(err.kind, Kind::Timeout);
    // Every write of add happened inside one transaction, committed once.
    let add_log: Vec<_> = s.log[log_before..].to_vec();
    let commit_at = add_log
        .iter()
        .position(|(_, w)| w.starts_with("commit"))
        .unwrap();
    assert!(commit_at > 20, "{add_log:?}");
    assert!(add_log[..commit_at].iter().all(|(tx, _)| *tx != NO_TX));
    let tx = add_log[0].0;
    assert!(add_log[..commit_at].iter().all(|(t, _)| *t == tx));
    let s = captured.borrow_mut().take().expect("add polled");
    let bd = backend_dir(PVFS, GUEST, 0);
    let fd = frontend_dir(GUEST, 0);
    let ld = libxl_dir(GUEST, 0);
    // The backend's keys and libxl's copy of them below (as xl writes both) are each listed
    // in full: every node the transaction must write is spelled out where it is checked.
    assert_eq!(
        s.subtree(&bd),
        map(&[
            ("", ""),
            ("frontend", &fd),
            ("frontend-id", "3"),
            ("online", "1"),
            ("state", "1"),
            ("path", "/exports/vm1"),
            ("security_model", "none"),
            ("mode", "ro"),
            ("max-space", "64"),
            ("max-files", "1000"),
            ("versions", "1"),
            ("max-rings", "2"),
            ("max-ring-page-order", "9"),
        ])
    );
    assert_eq!(
        s.subtree(&fd),
        map(&[
            ("", ""),
            ("backend", &bd),
            ("backend-id", "7"),
            ("state", "1"),
            ("tag", "data"),
        ])
    );
    // libxl's copy of the backend's keys above, listed in full like them.
    assert_eq!(
        s.subtree(&ld),
        map(&[
            ("", ""),
            ("frontend", &fd),
            ("backend", &bd),
            ("frontend-id", "3"),
            ("online", "1"),
            ("state", "1"),
            ("path", "/exports/vm1"),
            ("security_model", "none"),
            ("mode", "ro"),
            ("max-space", "64"),
            ("max-files", "1000"),
        ])
    );
    let be_perms = vec![
        Perm::new(PVFS, Access::None),
        Perm::new(GUEST, Access::Read),
    ];
    let fe_perms = vec![
        Perm::new(GUEST, Access::None),
        Perm::new(PVFS, Access::Read),
    ];
    for (k, _) in s.subtree(&bd) {
        let p = if k.is_empty() {
            bd.clone()
        } else {
            format!("{bd}/{k}")
        };
        assert_eq!(perms(&s, &p), be_perms, "{p}");
    }
    for (k, _) in s.subtree(&fd) {
        let p = if k.is_empty() {
            fd.clone()
        } else {
            format!("{fd}/{k}")
        };
        assert_eq!(perms(&s, &p), fe_perms, "{p}");
    }
    // libxl's record stays dom0's.
    assert_eq!(perms(&s, &format!("{ld}/path"))[0].domid, 0);
}

#[test]
fn add_connects_through_pvfs_and_the_guest() {
    let (mut s, world) = setup();
    let added = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    assert_eq!((added.devid, added.verdict), (0, Verdict::Connected));
    assert_no_errors(&world);
    assert_eq!(
        s.get(&format!("{}/state", backend_dir(PVFS, GUEST, 0))),
        Some("4")
    );
    // A second share gets the next id, and a freed id is reused.
    let added = add(&mut s, &be(), &vm1(), &opts("logs", "/exports/vm1")).unwrap();
    assert_eq!(added.devid, 1);
    s.set(&format!("/local/domain/{GUEST}/device/9pfs/2/tag"), "other");
    let added = add(&mut s, &be(), &vm1(), &opts("third", "/exports/vm1")).unwrap();
    assert_eq!(added.devid, 3);
}

#[test]
fn add_template_writes_the_key_and_ls_shows_it() {
    let (mut s, _world) = setup();
    let o = AddOpts {
        template: Some("/templates/debian".into()),
        ..opts("root", "/exports/vm1")
    };
    let added = add(&mut s, &be(), &vm1(), &o).unwrap();
    let key = format!("{}/template", backend_dir(PVFS, GUEST, added.devid));
    assert_eq!(s.get(&key), Some("/templates/debian"));
    let shares = shares(&mut s, PVFS, None).unwrap();
    assert_eq!(shares[0].template.as_deref(), Some("/templates/debian"));
    let json = ls_json(&shares);
    assert!(
        json.contains("\"path\":\"/exports/vm1\",\"template\":\"/templates/debian\""),
        "{json}"
    );
}

#[test]
fn add_ro_is_read_by_pvfs() {
    let (mut s, world) = setup();
    let o = AddOpts {
        read_only: true,
        ..opts("data", "/exports/vm1")
    };
    add(&mut s, &be(), &vm1(), &o).unwrap();
    add(&mut s, &be(), &vm1(), &opts("logs", "/exports/vm1")).unwrap();
    let ro = world.borrow().read_only.clone();
    assert_eq!(
        ro,
        BTreeMap::from([((GUEST, 0), true), ((GUEST, 1), false)])
    );
}

#[test]
fn add_to_a_guest_whose_driver_probes_at_once() {
    let (mut s, world) = setup();
    world.borrow_mut().old_linux = true;
    let added = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    assert_eq!(added.verdict, Verdict::Connected);
    assert!(world.borrow().probe_failed.is_empty());
    assert_no_errors(&world);
}

#[test]
fn add_to_a_paused_guest_is_accepted_and_waits_for_it() {
    let (mut s, world) = setup();
    world.borrow_mut().running.clear();
    let t0 = s.now;
    let added = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    assert_eq!(added.verdict, Verdict::WaitingForGuest);
    assert!(s.now - t0 >= GUEST_GRACE_MS && s.now - t0 < 5000);
    // The guest is unpaused: it connects.
    accepted_then_connects(&mut s, &world);
}

#[test]
fn add_without_guest_wait_returns_once_pvfs_accepted() {
    let (mut s, world) = setup();
    world.borrow_mut().running.clear();
    let t0 = s.now;
    let o = AddOpts {
        no_guest_wait: true,
        ..opts("data", "/exports/vm1")
    };
    let added = add(&mut s, &be(), &vm1(), &o).unwrap();
    assert_eq!(added.verdict, Verdict::WaitingForGuest);
    assert!(s.now - t0 < GUEST_GRACE_MS, "waited {} ms", s.now - t0);
    // A running guest still connects afterwards.
    accepted_then_connects(&mut s, &world);
}

/// pvfs answered InitWait for the guest's device 0; once the guest runs, it connects.
fn accepted_then_connects(s: &mut FakeStore, world: &Rc<RefCell<World>>) {
    assert_eq!(
        s.get(&format!("{}/state", backend_dir(PVFS, GUEST, 0))),
        Some("2")
    );
    world.borrow_mut().running.insert(GUEST);
    for _ in 0..5 {
        s.sleep_ms(POLL_MS);
    }
    assert_eq!(
        s.get(&format!("{}/state", frontend_dir(GUEST, 0))),
        Some("4")
    );
}

#[test]
fn transaction_is_retried_on_eagain() {
    let (mut s, world) = setup();
    s.fail_commits = 2;
    let added = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    assert_eq!(added.verdict, Verdict::Connected);
    assert_eq!(s.conflicts, 2);
    assert_no_errors(&world);
    // Written once: one device, not three.
    assert_eq!(
        s.directory(NO_TX, &format!("/local/domain/{GUEST}/device/9pfs"))
            .unwrap(),
        ["0"]
    );
}

#[test]
fn a_concurrent_writer_is_seen_on_the_retry() {
    let (mut s, _) = setup();
    // Between our transaction's start and its commit, another tool attaches tag "data".
    s.on_tx_start = Some(Box::new(|s: &mut FakeStore| {
        s.set(&format!("/local/domain/{GUEST}/device/9pfs/0/tag"), "data");
    }));
    let err = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap_err();
    assert_eq!(err.kind, Kind::DuplicateTag);
    assert_eq!(s.conflicts, 1);
    assert!(!s.exists(&backend_dir(PVFS, GUEST, 0)));
    assert!(!s.exists(&libxl_dir(GUEST, 0)));
}
