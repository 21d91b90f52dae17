//! The failures of the share commands: each one's kind, exit status and message, nothing left
//! in xenstore, and the exit statuses in `docs/pvfs-share.md`.

use super::*;

#[test]
fn duplicate_tag_is_refused_and_writes_nothing() {
    let (mut s, _) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    let before = s.nodes.clone();
    let err = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap_err();
    assert_eq!(err.kind, Kind::DuplicateTag);
    assert_eq!(err.code(), 7);
    assert!(
        err.msg
            .contains("vm1 (3) already has a 9pfs device tagged \"data\""),
        "{}",
        err.msg
    );
    assert_eq!(s.nodes, before);
}

#[test]
fn unknown_guest_and_missing_pvfs() {
    let (mut s, _) = setup();
    let e = guest(&mut s, "nosuch").unwrap_err();
    assert_eq!((e.kind, e.code()), (Kind::UnknownGuest, 5));
    assert_eq!(guest(&mut s, "42").unwrap_err().kind, Kind::UnknownGuest);
    assert_eq!(guest(&mut s, "3").unwrap(), vm1());
    assert_eq!(guest(&mut s, "vm1").unwrap(), vm1());
    assert_eq!(guest(&mut s, "0").unwrap().name, "Domain-0");

    let e = pvfs_domain(&mut s, "pvfs2", true).unwrap_err();
    assert_eq!((e.kind, e.code()), (Kind::NoPvfs, 4));
    // A domain of that name that does not run pvfs.
    let e = pvfs_domain(&mut s, "vm1", true).unwrap_err();
    assert_eq!(e.kind, Kind::NoPvfs);
    assert!(e.msg.contains("does not run pvfs"), "{}", e.msg);
    s.set(
        &format!("/local/domain/{PVFS}/data/pvfs/status"),
        "starting",
    );
    assert_eq!(
        pvfs_domain(&mut s, "pvfs", true).unwrap_err().kind,
        Kind::NoPvfs
    );
    assert_eq!(pvfs_domain(&mut s, "7", false).unwrap(), be());
}

#[test]
fn refusal_reports_the_error_node_and_cleans_up() {
    let (mut s, world) = setup();
    let err = add(&mut s, &be(), &vm1(), &opts("data", "/exports/nosuch")).unwrap_err();
    assert_eq!((err.kind, err.code()), (Kind::Refused, 8));
    assert!(
        err.msg
            .contains("export path \\\"/exports/nosuch\\\": errno 2"),
        "{}",
        err.msg
    );
    assert!(err.msg.contains("nothing was left in xenstore"));
    assert_clean(&s, 0);
    // pvfs lets go of the device once its directory is gone.
    s.sleep_ms(POLL_MS);
    assert!(world.borrow().machines.is_empty());
}

#[test]
fn timeout_when_pvfs_does_not_answer_cleans_up() {
    let (mut s, world) = setup();
    world.borrow_mut().pvfs_up = false;
    let o = AddOpts {
        timeout_ms: 3000,
        ..opts("data", "/exports/vm1")
    };
    let t0 = s.now;
    let err = add(&mut s, &be(), &vm1(), &o).unwrap_err();
    assert_eq!((err.kind, err.code()), (Kind::Timeout, 10));
    assert!(s.now - t0 >= 3000 && s.now - t0 < 3500);
    assert!(
        err.msg.contains("did not take up the device"),
        "{}",
        err.msg
    );
    assert_clean(&s, 0);
}

#[test]
fn quota_reached_names_the_fix_and_writes_nothing() {
    let (mut s, _) = setup();
    // pvfs's domain owns 4 nodes; the backend directory and its keys would exceed 6.
    s.quota.insert(PVFS, s.owned_by(PVFS) + 2);
    let before = s.nodes.clone();
    let err = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap_err();
    assert_eq!((err.kind, err.code()), (Kind::Quota, 9));
    assert!(
        err.msg.contains("xenstore-control quota set nodes"),
        "{}",
        err.msg
    );
    assert!(err.msg.contains("--entry-nb"), "{}", err.msg);
    assert_eq!(s.nodes, before);
}

#[test]
fn no_access_outside_dom0() {
    let (mut s, _) = setup();
    s.caller = GUEST; // a guest's own xenbus device: it cannot list other domains' nodes
    s.chmod("/local/domain", &[Perm::new(0, Access::None)]);
    let e = run_share(
        &mut s,
        ShareCmd::Ls(LsArgs {
            domain: None,
            json: false,
            be: BackendArg {
                backend: "pvfs".into(),
            },
        }),
    )
    .unwrap_err();
    assert_eq!((e.kind, e.code()), (Kind::NoAccess, 3));
    assert!(e.msg.contains("run pvfs as root in dom0"), "{}", e.msg);
    let e = Failure::from(XsError::Io(
        "/dev/xen/xenbus: No such file or directory".into(),
    ));
    assert_eq!(e.kind, Kind::NoAccess);
}

#[test]
fn bad_arguments() {
    let (mut s, _) = setup();
    for (tag, path) in [("", "/x"), ("a b", "/x"), ("a/b", "/x"), ("ok", "relative")] {
        let e = add(&mut s, &be(), &vm1(), &opts(tag, path)).unwrap_err();
        assert_eq!((e.kind, e.code()), (Kind::Usage, 2), "{tag:?} {path:?}");
    }
    let e = add(&mut s, &be(), &be(), &opts("t", "/x")).unwrap_err();
    assert_eq!(e.kind, Kind::Usage);
}

#[test]
fn exit_statuses_are_documented() {
    let doc = include_str!("../../../docs/pvfs-share.md");
    let kinds = [
        (Kind::Other, "other error"),
        (Kind::Usage, "bad arguments"),
        (Kind::NoAccess, "no xenstore access"),
        (Kind::NoPvfs, "no pvfs domain"),
        (Kind::UnknownGuest, "unknown guest"),
        (Kind::NoSuchShare, "no such share"),
        (Kind::DuplicateTag, "duplicate tag"),
        (Kind::Refused, "pvfs refused the share"),
        (Kind::Quota, "a xenstored quota was reached"),
        (Kind::Timeout, "timeout"),
        (Kind::InUse, "the guest has the share mounted"),
    ];
    for (k, what) in kinds {
        let row = format!("| {} | {what}", k as u8);
        assert!(doc.contains(&row), "docs/pvfs-share.md lacks {row:?}");
    }
}
