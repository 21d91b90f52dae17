use super::*;
use crate::byte_ring::{Consumer, Producer};
use crate::p9ring::{layouts, Joined, P9RingError, PAGE_SIZE, REFS, RING_ORDER};
use crate::shmem::SharedMem;

const BE: &str = "/local/domain/7/backend/9pfs/5/0";
const FE: &str = "/local/domain/5/device/9pfs/0";
const BASE: &str = "/local/domain/7/backend/9pfs";

/// The keys xl 4.17 writes for `p9=["tag=share,path=/exports/vm1,security_model=none,…"]`.
fn libxl_store() -> MemStore {
    let mut s = MemStore::new();
    s.set(&format!("{BE}/frontend"), FE);
    s.set(&format!("{BE}/frontend-id"), "5");
    s.set(&format!("{BE}/online"), "1");
    s.set(&format!("{BE}/state"), "1");
    s.set(&format!("{BE}/path"), "/exports/vm1");
    s.set(&format!("{BE}/security_model"), "none");
    s.set(&format!("{FE}/backend"), BE);
    s.set(&format!("{FE}/backend-id"), "7");
    s.set(&format!("{FE}/state"), "1");
    s.set(&format!("{FE}/tag"), "share");
    s
}

/// What Linux's 9pnet_xen writes before going Initialised.
fn frontend_connects(s: &mut MemStore, rings: &[(u32, u32)]) {
    s.set(&format!("{FE}/version"), "1");
    s.set(&format!("{FE}/num-rings"), &rings.len().to_string());
    for (i, (r, e)) in rings.iter().enumerate() {
        s.set(&format!("{FE}/ring-ref{i}"), &r.to_string());
        s.set(&format!("{FE}/event-channel-{i}"), &e.to_string());
    }
    s.set(&format!("{FE}/state"), "3");
}

fn intf_page(order: u32, first_ref: u32) -> Vec<u8> {
    let mut p = vec![0u8; PAGE_SIZE];
    p[RING_ORDER..RING_ORDER + 4].copy_from_slice(&order.to_le_bytes());
    for i in 0..(1u32 << order) {
        let o = REFS + 4 * i as usize;
        p[o..o + 4].copy_from_slice(&(first_ref + i).to_le_bytes());
    }
    p
}

/// A platform where domain 5 granted two rings of `order`: interface pages 10 and 11, data
/// pages from 100 and 200; remote ports 30 and 31.
fn platform(order: u32) -> FakePlatform {
    let mut p = FakePlatform::new();
    p.grant(5, 10, intf_page(order, 100));
    p.grant(5, 11, intf_page(order, 200));
    for i in 0..(1u32 << order) {
        p.grant(5, 100 + i, vec![]);
        p.grant(5, 200 + i, vec![]);
    }
    p.offer_port(5, 30);
    p.offer_port(5, 31);
    p
}

#[test]
fn states_round_trip() {
    for v in 0..9 {
        let st = XenbusState::from_u32(v).unwrap();
        assert_eq!(XenbusState::parse(st.as_str()), Some(st));
        assert_eq!(st as u32, v);
    }
    assert_eq!(XenbusState::Connected.name(), "Connected");
    assert_eq!(XenbusState::InitWait.name(), "InitWait");
    assert_eq!(XenbusState::parse(" 4\n"), Some(XenbusState::Connected));
    assert_eq!(XenbusState::parse("9"), None);
    assert_eq!(XenbusState::parse("x"), None);
    assert_eq!(XenbusState::parse("-1"), None);
}

#[test]
fn mem_store_directory_and_remove() {
    let mut s = MemStore::new();
    s.set("a/1/x", "1");
    s.set("a/1/y", "1");
    s.set("a/2", "1");
    s.set("ab/3", "1");
    assert_eq!(s.directory("a").unwrap(), ["1", "2"]);
    assert!(s.directory("zz").unwrap().is_empty());
    s.remove("a/1").unwrap();
    assert!(!s.exists("a/1"));
    assert!(s.exists("a/2"));
    assert!(s.exists("ab"));
}

#[test]
fn backend_full_lifecycle_with_reconnect() {
    let (mut s, mut m) = waiting_backend();
    let mut p = platform(2);
    assert_eq!(s.get(&format!("{BE}/versions")), Some("1"));
    assert_eq!(s.get(&format!("{BE}/max-rings")), Some("2"));
    assert_eq!(s.get(&format!("{BE}/max-ring-page-order")), Some("9"));
    assert_eq!(s.get(&format!("{BE}/hotplug-status")), Some("connected"));
    assert_eq!(s.get(&format!("{BE}/state")), Some("2"));
    assert_eq!(m.phase(), BackendPhase::InitWait);
    // Spurious events change nothing.
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);

    frontend_connects(&mut s, &[(10, 30), (11, 31)]);
    let BackendAction::Connect(plan) = m.step(&mut s).unwrap() else {
        panic!("expected Connect");
    };
    assert_eq!(plan.fe_domid, 5);
    assert_eq!(plan.export.path, "/exports/vm1");
    assert_eq!(
        plan.rings,
        [
            RingKeys {
                intf_ref: 10,
                evtchn: 30
            },
            RingKeys {
                intf_ref: 11,
                evtchn: 31
            }
        ]
    );
    // While the caller connects, events are ignored.
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    let rings = connect_rings(&mut p, &plan, 9, 65536).unwrap();
    assert_eq!(rings.len(), 2);
    assert_eq!(rings[0].ring.order(), 2);
    assert_eq!(p.mapped_pages, 2 * (1 + 4));
    assert_eq!(p.bound.len(), 2);
    m.connected(&mut s).unwrap();
    assert_eq!(s.get(&format!("{BE}/state")), Some("4"));
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);

    // Frontend closes (module unload): teardown, Closing, directory kept (still online).
    s.set(&format!("{FE}/state"), "5");
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Teardown);
    assert_eq!(s.get(&format!("{BE}/state")), Some("5"));
    disconnect_rings(&mut p, rings);
    assert_eq!(p.mapped_pages, 0);
    assert!(p.bound.is_empty());
    assert_eq!(m.torn_down(&mut s).unwrap(), BackendAction::Idle);
    assert_eq!(s.get(&format!("{BE}/state")), Some("5"));
    s.set(&format!("{FE}/state"), "6");
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    assert!(s.exists(BE));

    // The frontend starts over: we publish again and reconnect.
    s.set(&format!("{FE}/state"), "1");
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    assert_eq!(s.get(&format!("{BE}/state")), Some("2"));
    frontend_connects(&mut s, &[(10, 30), (11, 31)]);
    assert!(matches!(m.step(&mut s).unwrap(), BackendAction::Connect(_)));
}

#[test]
fn frontend_already_initialised_connects_at_once() {
    // Linux < 6.3 reads the backend keys at probe time and may be in state 3 first.
    let mut s = libxl_store();
    frontend_connects(&mut s, &[(10, 30), (11, 31)]);
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    assert!(matches!(m.step(&mut s).unwrap(), BackendAction::Connect(_)));
    assert_eq!(s.get(&format!("{BE}/versions")), Some("1"));
}

#[test]
fn guest_death_tears_down_and_removes_directory() {
    let mut s = libxl_store();
    let mut p = platform(0);
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    frontend_connects(&mut s, &[(10, 30), (11, 31)]);
    let BackendAction::Connect(plan) = m.step(&mut s).unwrap() else {
        panic!("expected Connect");
    };
    let rings = connect_rings(&mut p, &plan, 9, 8192).unwrap();
    m.connected(&mut s).unwrap();
    // xl destroy: the guest's whole directory vanishes.
    s.remove("/local/domain/5").unwrap();
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Teardown);
    released_then_removed(&mut s, &mut p, &mut m, rings);
    assert_eq!(m.phase(), BackendPhase::Removed);
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Remove);
    assert_eq!(p.mapped_pages, 0);
    // The frontend state watch went with the device.
    assert!(s.watches.is_empty());
}

#[test]
fn guest_death_before_connect_removes_directory() {
    let (mut s, mut m) = waiting_backend();
    s.remove("/local/domain/5").unwrap();
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Remove);
    assert!(!s.exists(BE));
}

/// A backend on libxl's store after its first step: waiting for the frontend (InitWait).
#[track_caller]
fn waiting_backend() -> (MemStore, P9Backend) {
    let mut s = libxl_store();
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    (s, m)
}

/// After a `Teardown`: the rings are released and the backend's directory removed.
#[track_caller]
fn released_then_removed(
    s: &mut MemStore,
    p: &mut FakePlatform,
    m: &mut P9Backend,
    rings: Vec<ConnectedRing<<FakePlatform as Platform>::Mem>>,
) {
    disconnect_rings(p, rings);
    assert_eq!(m.torn_down(s).unwrap(), BackendAction::Remove);
    assert!(!s.exists(BE));
}

/// The toolstack writes Closed to a device with no rings mapped: it is removed at once.
#[track_caller]
fn toolstack_closed_removes(s: &mut MemStore, m: &mut P9Backend) {
    s.set(&format!("{BE}/state"), "6");
    assert_eq!(m.step(s).unwrap(), BackendAction::Remove);
    assert!(!s.exists(BE));
}

/// A device connected with two order-0 rings, as libxl and Linux set it up.
fn connected_device() -> (
    MemStore,
    FakePlatform,
    P9Backend,
    Vec<ConnectedRing<<FakePlatform as Platform>::Mem>>,
) {
    let mut s = libxl_store();
    let mut p = platform(0);
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    frontend_connects(&mut s, &[(10, 30), (11, 31)]);
    let BackendAction::Connect(plan) = m.step(&mut s).unwrap() else {
        panic!("expected Connect");
    };
    let rings = connect_rings(&mut p, &plan, 9, 8192).unwrap();
    m.connected(&mut s).unwrap();
    (s, p, m, rings)
}

#[test]
fn toolstack_offline_closes_then_removes() {
    let (mut s, mut p, mut m, rings) = connected_device();
    s.set(&format!("{BE}/online"), "0");
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Teardown);
    released_then_removed(&mut s, &mut p, &mut m, rings);
}

/// `xl destroy` of a running guest (libxl 4.17): the guest is paused, libxl writes our state
/// as Closed itself (online stays 1, the frontend still reads Connected) and then waits for the
/// backend directory to disappear.
#[test]
fn toolstack_writing_closed_tears_down_and_removes() {
    let (mut s, mut p, mut m, rings) = connected_device();
    s.set(&format!("{FE}/state"), "4");
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    s.set(&format!("{BE}/state"), "6");
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Teardown);
    // The toolstack's Closed is left as it is while we release the rings.
    assert_eq!(s.get(&format!("{BE}/state")), Some("6"));
    released_then_removed(&mut s, &mut p, &mut m, rings);
}

/// Before the frontend ever connected: a toolstack Closed removes the device at once.
#[test]
fn toolstack_writing_closed_before_connect_removes() {
    let (mut s, mut m) = waiting_backend();
    assert_eq!(s.get(&format!("{BE}/state")), Some("2"));
    toolstack_closed_removes(&mut s, &mut m);
}

/// A guest that unmounts and powers itself off: its frontend goes Closing, then Closed (Linux
/// answers our Closing); the device stays, in Closing. Once the guest has shut down, libxl
/// writes Closed and waits for the backend directory: it goes at once.
#[test]
fn guest_shutdown_then_toolstack_closed_removes() {
    let (mut s, mut p, mut m, rings) = connected_device();
    s.set(&format!("{FE}/state"), "5");
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Teardown);
    disconnect_rings(&mut p, rings);
    assert_eq!(m.torn_down(&mut s).unwrap(), BackendAction::Idle);
    s.set(&format!("{FE}/state"), "6");
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    assert_eq!(s.get(&format!("{BE}/state")), Some("5"));
    assert!(s.exists(BE));
    toolstack_closed_removes(&mut s, &mut m);
}

fn expect_refusal(edit: impl FnOnce(&mut MemStore)) -> XenbusError {
    let mut s = libxl_store();
    frontend_connects(&mut s, &[(10, 30), (11, 31)]);
    edit(&mut s);
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    let e = m.step(&mut s).unwrap_err();
    assert_eq!(s.get(&format!("{BE}/state")), Some("6"), "{e:?}");
    assert!(s.get(&format!("{BE}/error")).is_some());
    assert_eq!(m.phase(), BackendPhase::Closed);
    // A closed device does not connect on later events.
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    e
}

#[test]
fn hostile_or_bad_keys_are_refused() {
    let e = expect_refusal(|s| s.set(&format!("{BE}/security_model"), "mapped"));
    assert!(matches!(e, XenbusError::Invalid { ref value, .. } if value == "mapped"));
    let e = expect_refusal(|s| s.set(&format!("{FE}/num-rings"), "3"));
    assert!(matches!(e, XenbusError::Invalid { ref value, .. } if value == "3"));
    expect_refusal(|s| s.set(&format!("{FE}/num-rings"), "0"));
    expect_refusal(|s| s.set(&format!("{FE}/num-rings"), "99999999999999999999"));
    expect_refusal(|s| s.set(&format!("{FE}/version"), "2"));
    expect_refusal(|s| s.set(&format!("{FE}/ring-ref1"), "abc"));
    expect_refusal(|s| s.set(&format!("{FE}/event-channel-0"), "-1"));
    let e = expect_refusal(|s| {
        s.nodes.remove(&format!("{FE}/ring-ref1"));
    });
    assert_eq!(e, XenbusError::Missing(format!("{FE}/ring-ref1")));
    expect_refusal(|s| s.set(&format!("{BE}/max-space"), "lots"));
    let e = expect_refusal(|s| s.set(&format!("{BE}/mode"), "r"));
    assert!(matches!(e, XenbusError::Invalid { ref value, .. } if value == "r"));
    expect_refusal(|s| {
        s.nodes.remove(&format!("{BE}/path"));
    });
}

#[test]
fn frontend_id_mismatch_is_an_error() {
    let mut s = libxl_store();
    s.set(&format!("{BE}/frontend-id"), "6");
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    assert!(matches!(m.step(&mut s), Err(XenbusError::Invalid { .. })));
}

#[test]
fn rate_keys_are_read_and_zero_or_garbage_is_refused() {
    let mut s = libxl_store();
    assert_eq!(RateKeys::read(&mut s, BE).unwrap(), RateKeys::default());
    s.set(&format!("{BE}/max-iops"), "500");
    s.set(&format!("{BE}/max-bps"), "1048576");
    assert_eq!(
        RateKeys::read(&mut s, BE).unwrap(),
        RateKeys {
            max_iops: Some(500),
            max_bps: Some(1 << 20),
        }
    );
    for bad in ["0", "-5", "fast", ""] {
        s.set(&format!("{BE}/max-bps"), bad);
        assert!(
            matches!(RateKeys::read(&mut s, BE), Err(XenbusError::Invalid { .. })),
            "{bad:?}"
        );
    }
    Store::remove(&mut s, &format!("{BE}/max-bps")).unwrap();
    assert_eq!(RateKeys::read(&mut s, BE).unwrap().max_bps, None);
    for k in RATE_KEYS {
        assert!(RateKeys::is_key(&format!("{BE}/{k}")), "{k}");
        assert!(!QuotaKeys::is_key(&format!("{BE}/{k}")), "{k}");
    }
    assert!(!RateKeys::is_key(&format!("{BE}/max-space")));
}

#[test]
fn quota_keys_are_read_again_and_recognised_in_watch_paths() {
    let mut s = libxl_store();
    assert_eq!(QuotaKeys::read(&mut s, BE).unwrap(), QuotaKeys::default());
    s.set(&format!("{BE}/max-space"), "8");
    s.set(&format!("{BE}/max-files"), "10");
    assert_eq!(
        QuotaKeys::read(&mut s, BE).unwrap(),
        QuotaKeys {
            max_files: Some(10),
            max_open_files: None,
            max_space_mib: Some(8),
        }
    );
    Store::remove(&mut s, &format!("{BE}/max-space")).unwrap();
    assert_eq!(QuotaKeys::read(&mut s, BE).unwrap().max_space_mib, None);
    s.set(&format!("{BE}/max-open-files"), "-1");
    assert!(matches!(
        QuotaKeys::read(&mut s, BE),
        Err(XenbusError::Invalid { .. })
    ));
    for k in QUOTA_KEYS {
        assert!(QuotaKeys::is_key(&format!("{BE}/{k}")), "{k}");
    }
    for p in [
        format!("{BE}/state"),
        format!("{BE}/path"),
        format!("{BE}/max-spaces"),
        BE.to_string(),
        "max-space-x".to_string(),
    ] {
        assert!(!QuotaKeys::is_key(&p), "{p}");
    }
}

#[test]
fn export_config_with_quotas() {
    let mut s = libxl_store();
    s.set(&format!("{BE}/max-files"), "1000");
    s.set(&format!("{BE}/max-open-files"), "64");
    s.set(&format!("{BE}/max-space"), "512");
    s.set(&format!("{BE}/auto-delete"), "1");
    assert_eq!(
        ExportConfig::read(&mut s, BE).unwrap(),
        ExportConfig {
            path: "/exports/vm1".into(),
            quota: QuotaKeys {
                max_files: Some(1000),
                max_open_files: Some(64),
                max_space_mib: Some(512),
            },
            read_only: false,
            auto_delete: true,
            template: None,
        }
    );
}

#[test]
fn template_key_names_the_template() {
    let mut s = libxl_store();
    s.set(&format!("{BE}/template"), "/templates/debian");
    let e = ExportConfig::read(&mut s, BE).unwrap();
    assert_eq!(e.template.as_deref(), Some("/templates/debian"));
    s.set(&format!("{BE}/template"), "");
    assert!(
        ExportConfig::read(&mut s, BE).is_err(),
        "an empty template was accepted"
    );
}

#[test]
fn mode_key_makes_the_export_read_only() {
    let mut s = libxl_store();
    assert!(!ExportConfig::read(&mut s, BE).unwrap().read_only);
    s.set(&format!("{BE}/mode"), "ro");
    assert!(ExportConfig::read(&mut s, BE).unwrap().read_only);
    s.set(&format!("{BE}/mode"), "rw");
    assert!(!ExportConfig::read(&mut s, BE).unwrap().read_only);
    // Read again while connected: written, then removed.
    s.set(&format!("{BE}/mode"), "ro");
    assert_eq!(read_mode(&mut s, BE), Ok(true));
    Store::remove(&mut s, &format!("{BE}/mode")).unwrap();
    assert_eq!(read_mode(&mut s, BE), Ok(false));
    s.set(&format!("{BE}/mode"), "readonly");
    assert_eq!(
        read_mode(&mut s, BE),
        Err(XenbusError::Invalid {
            key: format!("{BE}/mode"),
            value: "readonly".into(),
        })
    );
    assert!(is_mode_key(&format!("{BE}/mode")));
    for p in [
        format!("{BE}/state"),
        format!("{BE}/modes"),
        format!("{BE}/max-space"),
        BE.to_string(),
    ] {
        assert!(!is_mode_key(&p), "{p}");
    }
}

#[test]
fn a_device_with_mode_ro_connects_read_only() {
    let mut s = libxl_store();
    s.set(&format!("{BE}/mode"), "ro");
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    frontend_connects(&mut s, &[(10, 30), (11, 31)]);
    match m.step(&mut s).unwrap() {
        BackendAction::Connect(plan) => assert!(plan.export.read_only),
        a => panic!("{a:?}"),
    }
}

#[test]
fn connect_rolls_back_on_failure() {
    let plan = ConnectPlan {
        fe_domid: 5,
        export: ExportConfig::read(&mut libxl_store(), BE).unwrap(),
        rings: vec![
            RingKeys {
                intf_ref: 10,
                evtchn: 30,
            },
            RingKeys {
                intf_ref: 11,
                evtchn: 31,
            },
        ],
    };
    // Second ring's order above what we advertised.
    let mut p = platform(2);
    p.grant(5, 11, intf_page(3, 200));
    let e = connect_rings(&mut p, &plan, 2, 8192).unwrap_err();
    assert!(matches!(
        e,
        ConnectError::Ring(P9RingError::BadOrder { order: 3, max: 2 })
    ));
    assert_eq!(p.mapped_pages, 0);
    assert!(p.bound.is_empty());
    // Unknown data ref.
    let mut p = platform(1);
    p.pages.remove(&(5, 201));
    assert!(matches!(
        connect_rings(&mut p, &plan, 9, 8192),
        Err(ConnectError::Platform(FakeError::BadRef(201)))
    ));
    assert_eq!(p.mapped_pages, 0);
    assert!(p.bound.is_empty());
    // Unbindable port.
    let mut p = platform(1);
    p.ports.clear();
    p.offer_port(5, 30);
    assert!(matches!(
        connect_rings(&mut p, &plan, 9, 8192),
        Err(ConnectError::Platform(FakeError::BadPort(31)))
    ));
    assert_eq!(p.mapped_pages, 0);
    assert!(p.bound.is_empty());
}

#[test]
fn connect_failure_closes_device() {
    let mut s = libxl_store();
    frontend_connects(&mut s, &[(10, 30), (11, 31)]);
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    assert!(matches!(m.step(&mut s).unwrap(), BackendAction::Connect(_)));
    m.connect_failed(&mut s, "bad order").unwrap();
    assert_eq!(s.get(&format!("{BE}/state")), Some("6"));
    assert_eq!(m.phase(), BackendPhase::Closed);
}

#[test]
fn repeated_attach_detach_does_not_leak() {
    let mut s = libxl_store();
    let mut p = platform(1);
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    for _ in 0..20 {
        s.set(&format!("{FE}/state"), "1");
        m.step(&mut s).unwrap();
        frontend_connects(&mut s, &[(10, 30), (11, 31)]);
        let BackendAction::Connect(plan) = m.step(&mut s).unwrap() else {
            panic!("expected Connect");
        };
        let rings = connect_rings(&mut p, &plan, 9, 8192).unwrap();
        m.connected(&mut s).unwrap();
        s.set(&format!("{FE}/state"), "6");
        assert_eq!(m.step(&mut s).unwrap(), BackendAction::Teardown);
        disconnect_rings(&mut p, rings);
        m.torn_down(&mut s).unwrap();
        assert_eq!(p.mapped_pages, 0);
        assert!(p.bound.is_empty());
        // One frontend watch, however many cycles.
        assert_eq!(s.watches, [(format!("{FE}/state"), BE.to_string())]);
    }
}

#[test]
fn routing_watch_paths() {
    assert_eq!(route(BASE, BASE), Route::Rescan);
    assert_eq!(route(BASE, &format!("{BASE}/5")), Route::Rescan);
    assert_eq!(
        route(BASE, &format!("{BASE}/5/0")),
        Route::Device { fe: 5, dev: 0 }
    );
    assert_eq!(
        route(BASE, &format!("{BASE}/5/3/state")),
        Route::Device { fe: 5, dev: 3 }
    );
    assert_eq!(
        route(BASE, &format!("{BASE}/5/3/a/b/c/d")),
        Route::Device { fe: 5, dev: 3 }
    );
    assert_eq!(
        route(BASE, "/local/domain/9/device/9pfs/2/state"),
        Route::Device { fe: 9, dev: 2 }
    );
    assert_eq!(route(BASE, "@releaseDomain"), Route::ReleaseDomain);
    assert_eq!(route(BASE, &format!("{BASE}x/5/0")), Route::Ignore);
    assert_eq!(route(BASE, &format!("{BASE}/70000/0")), Route::Ignore);
    assert_eq!(route(BASE, &format!("{BASE}/5/zz")), Route::Ignore);
    // the backend's own figures, rewritten about once a second, step nothing
    assert_eq!(route(BASE, &format!("{BASE}/5/3/stats")), Route::Ignore);
    assert_eq!(route(BASE, &format!("{BASE}/5/3/fids")), Route::Ignore);
    // the same names below the frontend's directory still route (a guest cannot silence
    // its device's frontend state this way, and nothing there is the backend's)
    assert_eq!(
        route(BASE, "/local/domain/9/device/9pfs/2/stats"),
        Route::Device { fe: 9, dev: 2 }
    );
    // a key that only starts with the name is not one of them
    assert_eq!(
        route(BASE, &format!("{BASE}/5/3/stats-x")),
        Route::Device { fe: 5, dev: 3 }
    );
    assert_eq!(
        route(BASE, "/local/domain/9/device/vbd/2/state"),
        Route::Ignore
    );
    assert_eq!(route(BASE, ""), Route::Ignore);
    let long = format!("{BASE}/{}", "9".repeat(5000));
    assert_eq!(route(BASE, &long), Route::Ignore);
}

#[test]
fn scanning_is_bounded_and_skips_junk() {
    let mut s = MemStore::new();
    s.set(&format!("{BASE}/5/0/state"), "1");
    s.set(&format!("{BASE}/5/1/state"), "1");
    s.set(&format!("{BASE}/6/0/state"), "1");
    s.set(&format!("{BASE}/junk/0/state"), "1");
    s.set(&format!("{BASE}/6/x/state"), "1");
    assert_eq!(
        scan_backends(&mut s, BASE).unwrap(),
        [(5, 0), (5, 1), (6, 0)]
    );
    let mut s = MemStore::new();
    for fe in 0..70 {
        for dev in 0..70 {
            s.set(&format!("{BASE}/{fe}/{dev}/state"), "1");
        }
    }
    const { assert!(70 * 70 > MAX_DEVICES) };
    assert_eq!(scan_backends(&mut s, BASE).unwrap().len(), MAX_DEVICES);
}

// ---- vbd frontend ----

const VBD: &str = "device/vbd/51712";
pub(super) const VBE: &str = "/local/domain/0/backend/vbd/7/51712";

fn vbd_store() -> MemStore {
    let mut s = MemStore::new();
    s.set(&format!("{VBD}/backend"), VBE);
    s.set(&format!("{VBD}/backend-id"), "0");
    s.set(&format!("{VBD}/state"), "1");
    s.set(&format!("{VBE}/state"), "1");
    s
}

pub(super) fn backend_connected(s: &mut MemStore) {
    s.set(&format!("{VBE}/sectors"), "2097152");
    s.set(&format!("{VBE}/sector-size"), "512");
    s.set(&format!("{VBE}/info"), "0");
    s.set(&format!("{VBE}/feature-flush-cache"), "1");
    s.set(&format!("{VBE}/feature-persistent"), "1");
    s.set(&format!("{VBE}/feature-max-indirect-segments"), "256");
    s.set(&format!("{VBE}/state"), "4");
}

#[test]
fn vbd_single_page_lifecycle() {
    let mut s = vbd_store();
    let mut f = VbdFrontend::new(VBD, true);
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Idle);
    assert_eq!(s.watches, [(format!("{VBE}/state"), VBD.to_string())]);
    s.set(&format!("{VBE}/state"), "2");
    assert_eq!(
        f.step(&mut s).unwrap(),
        VbdAction::AllocateRing {
            order: 0,
            backend_id: 0
        }
    );
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Idle);
    f.ring_ready(
        &mut s,
        &VbdRing {
            refs: vec![8],
            evtchn: 12,
        },
    )
    .unwrap();
    assert_eq!(s.get(&format!("{VBD}/ring-ref")), Some("8"));
    assert_eq!(s.get(&format!("{VBD}/ring-page-order")), None);
    assert_eq!(s.get(&format!("{VBD}/event-channel")), Some("12"));
    assert_eq!(s.get(&format!("{VBD}/protocol")), Some("x86_64-abi"));
    assert_eq!(s.get(&format!("{VBD}/feature-persistent")), Some("1"));
    assert_eq!(s.get(&format!("{VBD}/state")), Some("3"));
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Idle);
    backend_connected(&mut s);
    let VbdAction::Connected(info) = f.step(&mut s).unwrap() else {
        panic!("expected Connected");
    };
    assert_eq!(info.sectors, 2097152);
    assert_eq!(info.sector_size, 512);
    assert!(!info.read_only());
    assert!(info.flush_cache && info.persistent && !info.barrier);
    assert_eq!(info.max_indirect_segments, 256);
    assert_eq!(s.get(&format!("{VBD}/state")), Some("4"));
    // Backend closing: drain first, then Closed.
    s.set(&format!("{VBE}/state"), "5");
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Drain);
    assert_eq!(s.get(&format!("{VBD}/state")), Some("5"));
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Idle);
    f.drained(&mut s).unwrap();
    assert_eq!(s.get(&format!("{VBD}/state")), Some("6"));
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Closed);
}

#[test]
fn vbd_multi_page_ring_and_read_only() {
    let mut s = vbd_store();
    s.set(&format!("{VBE}/max-ring-page-order"), "10");
    s.set(&format!("{VBE}/state"), "2");
    let mut f = VbdFrontend::new(VBD, false);
    assert_eq!(
        f.step(&mut s).unwrap(),
        VbdAction::AllocateRing {
            order: VBD_MAX_RING_ORDER,
            backend_id: 0
        }
    );
    f.ring_ready(
        &mut s,
        &VbdRing {
            refs: vec![20, 21, 22, 23],
            evtchn: 3,
        },
    )
    .unwrap();
    assert_eq!(s.get(&format!("{VBD}/ring-page-order")), Some("2"));
    assert_eq!(s.get(&format!("{VBD}/ring-ref0")), Some("20"));
    assert_eq!(s.get(&format!("{VBD}/ring-ref3")), Some("23"));
    assert_eq!(s.get(&format!("{VBD}/ring-ref")), None);
    assert_eq!(s.get(&format!("{VBD}/feature-persistent")), Some("0"));
    backend_connected(&mut s);
    s.set(&format!("{VBE}/info"), "4");
    let VbdAction::Connected(info) = f.step(&mut s).unwrap() else {
        panic!("expected Connected");
    };
    assert!(info.read_only());
    // We did not offer persistent grants, so they are not in use.
    assert!(!info.persistent);
}

/// A frontend that has published its ring, and the backend Initialising.
pub(super) fn vbd_ring_ready() -> (MemStore, VbdFrontend) {
    let mut s = vbd_store();
    s.set(&format!("{VBE}/state"), "2");
    let mut f = VbdFrontend::new(VBD, false);
    f.step(&mut s).unwrap();
    f.ring_ready(
        &mut s,
        &VbdRing {
            refs: vec![1],
            evtchn: 1,
        },
    )
    .unwrap();
    (s, f)
}

#[test]
fn vbd_bad_backend_values() {
    for (key, val) in [
        ("sector-size", "100"),
        ("sector-size", "0"),
        ("sector-size", "4097"),
        ("sector-size", "8192"),
        ("sector-size", "65536"),
        ("sectors", "-5"),
        ("sectors", "0"),
        // sectors * 512 wraps u64.
        ("sectors", "36028797018963968"),
        ("sectors", "18446744073709551615"),
        // One sector beyond the 1 PiB bound.
        ("sectors", "2199023255553"),
        ("info", "x"),
    ] {
        let (mut s, mut f) = vbd_ring_ready();
        backend_connected(&mut s);
        s.set(&format!("{VBE}/{key}"), val);
        assert!(
            matches!(f.step(&mut s), Err(XenbusError::Invalid { .. })),
            "{key}={val}"
        );
    }
    let mut s = vbd_store();
    s.set(&format!("{VBD}/backend-id"), "65536");
    assert!(VbdFrontend::new(VBD, false).step(&mut s).is_err());
    let mut s = vbd_store();
    s.nodes.remove(&format!("{VBD}/backend"));
    assert!(matches!(
        VbdFrontend::new(VBD, false).step(&mut s),
        Err(XenbusError::Missing(_))
    ));
}

#[test]
fn vbd_largest_disk_accepted() {
    let (mut s, mut f) = vbd_ring_ready();
    backend_connected(&mut s);
    let max = VBD_MAX_BYTES / 512;
    s.set(&format!("{VBE}/sectors"), &max.to_string());
    s.set(&format!("{VBE}/sector-size"), "4096");
    let VbdAction::Connected(info) = f.step(&mut s).unwrap() else {
        panic!("not connected")
    };
    assert_eq!(info.size_bytes(), VBD_MAX_BYTES);
    assert_eq!(info.sector_size, VBD_MAX_SECTOR_SIZE);
}

#[test]
fn vbd_backend_vanishes_before_connect() {
    let (mut s, mut f) = vbd_ring_ready();
    s.remove(VBE).unwrap();
    assert_eq!(f.step(&mut s).unwrap(), VbdAction::Closed);
    assert_eq!(f.phase(), VbdPhase::Closed);
}

#[test]
fn page_run_spans_pages() {
    let mut p = FakePlatform::new();
    let a = p.grant(1, 1, vec![]);
    let b = p.grant(1, 2, vec![]);
    let run = p.map_grants(1, &[1, 2]).unwrap();
    assert_eq!(run.len(), 2 * PAGE_SIZE);
    run.write_bytes(PAGE_SIZE - 2, &[1, 2, 3, 4]).unwrap();
    let mut x = [0u8; 2];
    a.read_bytes(PAGE_SIZE - 2, &mut x).unwrap();
    assert_eq!(x, [1, 2]);
    b.read_bytes(0, &mut x).unwrap();
    assert_eq!(x, [3, 4]);
    let mut y = [0u8; 4];
    run.read_bytes(PAGE_SIZE - 2, &mut y).unwrap();
    assert_eq!(y, [1, 2, 3, 4]);
    assert!(run.read_bytes(2 * PAGE_SIZE - 1, &mut y).is_err());
    assert!(run.load_u32_acquire(PAGE_SIZE - 2).is_err());
    run.store_u32_release(PAGE_SIZE + 8, 7).unwrap();
    assert_eq!(b.load_u32_acquire(8).unwrap(), 7);
    p.unmap(run);
    assert_eq!(p.mapped_pages, 0);
}

#[test]
fn end_to_end_9pfs_over_connected_rings() {
    // Domain 5 grants two rings of order 1; the backend machine connects them; then the
    // frontend sends a request on each ring and the backend answers through the mappings.
    let mut s = libxl_store();
    let mut p = platform(1);
    frontend_connects(&mut s, &[(10, 30), (11, 31)]);
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    let BackendAction::Connect(plan) = m.step(&mut s).unwrap() else {
        panic!("expected Connect");
    };
    let mut rings = connect_rings(&mut p, &plan, 9, 8192).unwrap();
    m.connected(&mut s).unwrap();
    for (i, first_data_ref) in [(0usize, 100u32), (1, 200)] {
        let intf = p.pages[&(5, 10 + i as u32)].clone();
        let data = PageRun {
            pages: vec![
                p.pages[&(5, first_data_ref)].clone(),
                p.pages[&(5, first_data_ref + 1)].clone(),
            ],
        };
        let fe_mem = Joined {
            a: &*intf,
            b: &data,
        };
        let (in_l, out_l) = layouts(PAGE_SIZE, 1);
        let mut out = Producer::attach(out_l, &fe_mem).unwrap();
        let mut inr = Consumer::attach(in_l, &fe_mem).unwrap();
        let req = [11u8, 0, 0, 0, 100, i as u8, 0, 0xaa, 0xbb, 0xcc, 0xdd];
        out.write(&fe_mem, &req).unwrap();
        let r = &mut rings[i];
        let got = r.ring.next_request(&r.intf, &r.data).unwrap().unwrap();
        assert_eq!(got, req);
        let rsp = [7u8, 0, 0, 0, 101, i as u8, 0];
        assert!(r.ring.write_response(&r.intf, &r.data, &rsp).unwrap());
        let mut back = [0u8; 7];
        assert_eq!(inr.read(&fe_mem, &mut back).unwrap(), 7);
        assert_eq!(back, rsp);
    }
    disconnect_rings(&mut p, rings);
    assert_eq!(p.mapped_pages, 0);
}

/// A device whose export pvfs cannot serve is refused before it is offered: state Closed and
/// an `error` node at once, never InitWait, even while the guest's frontend waits in
/// Initialising; the toolstack removing it then removes the directory.
#[test]
fn a_refused_device_stays_closed_until_the_toolstack_removes_it() {
    let mut s = libxl_store();
    let mut m = P9Backend::new(BE, 5, 0, BackendConfig::default());
    m.refuse(
        &mut s,
        "export path \"/exports/vm1\": errno 20 (not a directory)",
    )
    .unwrap();
    assert_eq!(s.get(&format!("{BE}/state")), Some("6"));
    let err = s.get(&format!("{BE}/error")).unwrap().to_string();
    assert!(err.contains("not a directory"), "{err}");
    for _ in 0..3 {
        assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
        assert_eq!(s.get(&format!("{BE}/state")), Some("6"));
        assert_eq!(s.get(&format!("{BE}/versions")), None);
    }
    // A second refusal, or one after the device was offered, changes nothing.
    m.refuse(&mut s, "again").unwrap();
    assert!(s
        .get(&format!("{BE}/error"))
        .unwrap()
        .contains("not a directory"));
    // `pvfs share rm` (or libxl) takes it offline: the directory goes.
    s.set(&format!("{BE}/online"), "0");
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Remove);
    assert!(!s.exists(BE));
}

/// `pvfs share rm` without `--force` (`detach` = `if-idle`) on a connected device: the machine
/// hands the decision to the caller, which knows whether the guest has fids in use. In use:
/// the request is answered `busy` and the device keeps serving; idle: it goes offline, is torn
/// down (Closing, so the frontend closes its side) and its directory removed.
#[test]
fn detach_if_idle_asks_the_caller_and_refuses_or_removes() {
    let (mut s, mut p, mut m, rings) = connected_device();
    s.set(&format!("{BE}/{DETACH_KEY}"), DETACH_IF_IDLE);
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::DetachIfIdle);
    // Still busy with a request: asked again on the next step, nothing written meanwhile.
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::DetachIfIdle);
    m.detach_refused(&mut s).unwrap();
    assert_eq!(s.get(&format!("{BE}/{DETACH_KEY}")), Some(DETACH_BUSY));
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    assert_eq!(s.get(&format!("{BE}/state")), Some("4"));
    assert_eq!(s.get(&format!("{BE}/online")), Some("1"));
    // Asked again once the guest unmounted.
    s.set(&format!("{BE}/{DETACH_KEY}"), DETACH_IF_IDLE);
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::DetachIfIdle);
    m.detach_idle(&mut s).unwrap();
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Teardown);
    assert_eq!(s.get(&format!("{BE}/state")), Some("5"));
    released_then_removed(&mut s, &mut p, &mut m, rings);
}

/// A detach request for a device the guest never connected goes ahead at once: nothing is
/// served on it. It stays in Closing until the toolstack writes Closed, as after `online` = 0.
#[test]
fn detach_if_idle_before_connect_takes_the_device_offline() {
    let (mut s, mut m) = waiting_backend();
    s.set(&format!("{BE}/{DETACH_KEY}"), DETACH_IF_IDLE);
    assert_eq!(m.step(&mut s).unwrap(), BackendAction::Idle);
    assert_eq!(s.get(&format!("{BE}/online")), Some("0"));
    assert_eq!(s.get(&format!("{BE}/state")), Some("5"));
    toolstack_closed_removes(&mut s, &mut m);
}
