//! xenstored's quotas for pvfs's domain: the fake's checks, the replies parsed, the headroom
//! `pvfs share add` checks ahead and the quota it raises (or says how to raise).

use super::*;

/// C xenstored's quotas, pvfs's domain owning `spare` nodes fewer than its node quota allows.
fn xenstored(s: &mut FakeStore, spare: usize) {
    s.xenstored = Some(Xenstored {
        nodes: s.owned_by(PVFS) + spare,
        ..Xenstored::default()
    });
}

#[test]
fn fake_xenstored_checks_the_node_quota_of_unprivileged_writers_only() {
    let (mut s, _) = setup();
    xenstored(&mut s, 0);
    let dir = format!("/local/domain/{PVFS}/backend/x");
    // dom0 may create a node pvfs owns past pvfs's quota (C xenstored checks the writer)...
    s.write(NO_TX, &dir, "").unwrap();
    assert_eq!(perms(&s, &dir)[0].domid, PVFS);
    // ...and pvfs may then create none.
    s.caller = PVFS;
    assert!(matches!(
        s.write(NO_TX, &format!("{dir}/y"), "1"),
        Err(XsError::Quota(_))
    ));
    // It may still rewrite one it has.
    s.write(NO_TX, &dir, "v").unwrap();
    assert!(matches!(s.control(&["quota"]), Err(XsError::Denied(_))));
}

#[test]
fn quota_replies_of_xen_417_and_420_parse() {
    // `xenstore-control quota` and `quota <domid>` as Xen 4.17 and 4.20 answer them.
    let settings = "Quota settings:\nnodes            :     1000 Nodes per domain\nwatches          :      128 Watches per domain\ntransactions     :       10 Transactions per domain\n";
    let u417 = "Domain 7:\nnodes           :       42\nwatches         :        3\ntransactions    :        0\noutstanding     :        0\nmemory          :     4660\n";
    let u420 = "Domain 7:\nnodes            :       42 (max       57)\nwatches          :        3 (max        4)\n";
    let p = parse_quota_lines(settings);
    assert_eq!(p[0], ("nodes".into(), 1000));
    assert_eq!(p[1], ("watches".into(), 128));
    for u in [u417, u420] {
        let p = parse_quota_lines(u);
        assert_eq!(p[0], ("nodes".into(), 42), "{u}");
        assert_eq!(p[1], ("watches".into(), 3), "{u}");
    }
    assert_eq!(
        raised(
            Usage {
                used: 995,
                quota: 1000
            },
            14,
            1000
        ),
        2000
    );
    assert_eq!(
        raised(
            Usage {
                used: 1995,
                quota: 1000
            },
            14,
            1000
        ),
        2009
    );
}

#[test]
fn headroom_enough_adds_without_raising() {
    for f417 in [false, true] {
        let (mut s, world) = setup();
        xenstored(&mut s, 100);
        s.xenstored.as_mut().unwrap().format_417 = f417;
        let added = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
        assert_eq!(added.verdict, Verdict::Connected);
        assert_eq!(added.headroom, Headroom::Enough);
        assert!(s.xenstored.as_ref().unwrap().sets.is_empty());
        assert_no_errors(&world);
    }
}

#[test]
fn headroom_estimate_covers_what_the_device_and_pvfs_create() {
    // Exactly the estimated number of nodes to spare: the share connects, pvfs's own
    // `hotplug-status` included. One fewer: `add` raises the quota.
    let (mut s, world) = setup();
    let before = s.owned_by(PVFS);
    let mut o = opts("data", "/exports/vm1");
    o.max_space_mib = Some(8);
    o.read_only = true;
    // backend dir, frontend, 5 keys + mode + max-space, 3 published, hotplug-status, fids,
    // stats, the detach request of a later `share rm`, and the missing backend/9pfs and
    // backend/9pfs/<guest>.
    let need = 1 + 1 + 7 + 3 + 1 + 1 + 1 + 1 + 2;
    xenstored(&mut s, need);
    let added = add(&mut s, &be(), &vm1(), &o).unwrap();
    assert_eq!(added.headroom, Headroom::Enough);
    assert_eq!(added.verdict, Verdict::Connected);
    s.sleep_ms(POLL_MS); // pvfs publishes fids and stats
    assert_eq!(s.owned_by(PVFS), before + need - 1);
    let e = rm(&mut s, &be(), &vm1(), "data", false, 5000);
    assert!(e.is_ok(), "{e:?}");
    assert_no_errors(&world);

    let (mut s, _) = setup();
    xenstored(&mut s, need - 1);
    let added = add(&mut s, &be(), &vm1(), &o).unwrap();
    assert!(matches!(added.headroom, Headroom::Raised(_)));
}

#[test]
fn headroom_short_raises_the_quota_and_pvfs_connects() {
    let (mut s, world) = setup();
    xenstored(&mut s, 3);
    let q = s.xenstored.as_ref().unwrap().nodes;
    let added = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    assert_eq!(
        added.headroom,
        Headroom::Raised(vec![("nodes", q, q + 1000)])
    );
    assert_eq!(added.verdict, Verdict::Connected);
    assert_eq!(
        s.xenstored.as_ref().unwrap().sets,
        [("nodes".to_string(), q + 1000)]
    );
    // pvfs wrote its own nodes (hotplug-status) under the raised quota.
    assert_no_errors(&world);
    assert_eq!(
        s.get(&format!("{}/hotplug-status", backend_dir(PVFS, GUEST, 0))),
        Some("connected")
    );
}

#[test]
fn watch_quota_short_is_raised_too() {
    let (mut s, _) = setup();
    xenstored(&mut s, 100);
    s.xenstored.as_mut().unwrap().watches_used.insert(PVFS, 128);
    let added = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    assert_eq!(
        added.headroom,
        Headroom::Raised(vec![("watches", 128, 256)])
    );
}

#[test]
fn headroom_short_and_raise_refused_fails_with_exit_9_and_writes_nothing() {
    for no_raise in [false, true] {
        let (mut s, _) = setup();
        xenstored(&mut s, 3);
        s.xenstored.as_mut().unwrap().settable = no_raise;
        let q = s.xenstored.as_ref().unwrap().nodes;
        let before = s.nodes.clone();
        let mut o = opts("data", "/exports/vm1");
        o.no_raise_quota = no_raise;
        let err = add(&mut s, &be(), &vm1(), &o).unwrap_err();
        assert_eq!((err.kind, err.code()), (Kind::Quota, 9));
        assert!(!err.msg.contains('\n'), "{}", err.msg);
        let used = q - 3;
        assert!(
            err.msg.starts_with(&format!(
                "pvfs's domain {PVFS} owns {used} of its {q} xenstore nodes and the share needs 16 more; "
            )),
            "{}",
            err.msg
        );
        assert!(
            err.msg
                .contains(&format!("`xenstore-control quota set nodes {}`", q + 1000)),
            "{}",
            err.msg
        );
        assert!(err.msg.contains("--entry-nb"), "{}", err.msg);
        if no_raise {
            assert!(err.msg.contains("--no-raise-xenstore-quota"), "{}", err.msg);
        } else {
            assert!(err.msg.contains("EACCES"), "{}", err.msg);
        }
        assert_eq!(s.nodes, before);
        assert!(s.xenstored.as_ref().unwrap().sets.is_empty());
    }
}

#[test]
fn xenstored_without_quota_commands_is_not_checked_ahead() {
    let (mut s, _) = setup();
    let added = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    assert!(matches!(added.headroom, Headroom::Unknown(_)));
    assert_eq!(added.verdict, Verdict::Connected);
}

#[test]
fn quota_is_raised_over_the_wire() {
    let (client, server) = std::os::unix::net::UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let (mut s, _world) = setup();
        xenstored(&mut s, 3);
        s.xenstored.as_mut().unwrap().format_417 = true;
        crate::xs_fake::serve(s, server);
    });
    let mut c = crate::xs::XsConn::new(client);
    let out = run_share(&mut c, add_vm1_data(None)).unwrap();
    let mut lines = out.lines();
    let first = lines.next().unwrap();
    assert!(
        first.starts_with("raised xenstored's nodes quota for unprivileged domains from "),
        "{out}"
    );
    assert!(lines.next().unwrap().ends_with("data /mnt`"), "{out}");
    drop(c);
    t.join().unwrap();
}

#[test]
fn oxenstored_is_checked_and_named_in_the_fix() {
    let (mut s, _) = setup();
    xenstored(&mut s, 100);
    s.xenstored.as_mut().unwrap().oxenstored = true;
    let added = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    assert_eq!(added.headroom, Headroom::Enough);

    let (mut s, _) = setup();
    xenstored(&mut s, 3);
    s.xenstored.as_mut().unwrap().oxenstored = true;
    let before = s.nodes.clone();
    let err = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap_err();
    assert_eq!(err.code(), 9);
    assert!(err.msg.contains("quota-maxentity = "), "{}", err.msg);
    assert!(err.msg.contains("/etc/xen/oxenstored.conf"), "{}", err.msg);
    assert_eq!(s.nodes, before);
    assert_eq!(
        parse_oxenstored("dom7 quota: 42/1000\0", 7),
        Some(Usage {
            used: 42,
            quota: 1000
        })
    );
    assert_eq!(parse_oxenstored("dom7 quota: not set", 7), None);
}

#[test]
fn a_quota_set_that_changes_nothing_is_a_failure() {
    let (mut s, _) = setup();
    xenstored(&mut s, 3);
    s.xenstored.as_mut().unwrap().ignore_sets = true;
    let before = s.nodes.clone();
    let err = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap_err();
    assert_eq!(err.code(), 9);
    assert!(err.msg.contains("did not change"), "{}", err.msg);
    assert_eq!(s.nodes, before);
}

#[test]
fn a_duplicate_tag_raises_no_quota_and_a_failed_add_says_it_raised_one() {
    let (mut s, _) = setup();
    xenstored(&mut s, 3);
    s.set(&format!("/local/domain/{GUEST}/device/9pfs/0/tag"), "data");
    let err = add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap_err();
    assert_eq!(err.kind, Kind::DuplicateTag);
    assert!(s.xenstored.as_ref().unwrap().sets.is_empty());

    // Raised, then refused by pvfs (no such export): the message says the quota stays raised.
    let (mut s, _) = setup();
    xenstored(&mut s, 3);
    let q = s.xenstored.as_ref().unwrap().nodes;
    let err = add(&mut s, &be(), &vm1(), &opts("data", "/exports/none")).unwrap_err();
    assert_eq!(err.kind, Kind::Refused, "{}", err.msg);
    assert!(
        err.msg.ends_with(&format!(
            "nothing was left in xenstore (xenstored's nodes quota stays raised from {q} to {})",
            q + 1000
        )),
        "{}",
        err.msg
    );
}
