//! The dom0 commands against the in-memory store, with pvfs played by its real xenbus machine
//! (`pvfs_ring::xenbus::P9Backend`, run as domain 7 with domain 7's permissions) and the guest by
//! a small model of Linux's `trans_xen.c` (run with the guest's permissions). So a node written
//! with the wrong permissions shows up as pvfs or the guest being denied.

use super::{add::*, cli::*, domains::*, failure::*, json::*, ls::*, nodes::*, rm::*, set::*};
use super::{policy::PolicyArgs, status::*, xsquota::*, POLL_MS};
use crate::xs::{Access, Perm, Store, XsError, NO_TX};
use crate::xs_fake::{FakeStore, Hook, Xenstored};
use pvfs_ring::xenbus::{
    scan_backends, BackendAction, BackendConfig, P9Backend, StoreError as PStoreError, XenbusError,
    XenbusState,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

const PVFS: u16 = 7;
const GUEST: u16 = 3;

/// `pvfs_ring::xenbus::Store` over the fake, as domain `dom`.
struct As<'a> {
    s: &'a mut FakeStore,
    dom: u16,
}

impl As<'_> {
    fn run<T>(
        &mut self,
        f: impl FnOnce(&mut FakeStore) -> Result<T, XsError>,
    ) -> Result<T, PStoreError> {
        let saved = std::mem::replace(&mut self.s.caller, self.dom);
        let r = f(self.s);
        self.s.caller = saved;
        r.map_err(|e| match e {
            XsError::Denied(_) => PStoreError::Denied,
            XsError::Quota(_) => PStoreError::Quota,
            e => PStoreError::Other(e.to_string()),
        })
    }
}

impl pvfs_ring::xenbus::Store for As<'_> {
    fn read(&mut self, path: &str) -> Result<Option<String>, PStoreError> {
        self.run(|s| s.read(NO_TX, path))
    }
    fn write(&mut self, path: &str, value: &str) -> Result<(), PStoreError> {
        self.run(|s| s.write(NO_TX, path, value))
    }
    fn directory(&mut self, path: &str) -> Result<Vec<String>, PStoreError> {
        self.run(|s| s.directory(NO_TX, path))
    }
    fn remove(&mut self, path: &str) -> Result<(), PStoreError> {
        self.run(|s| s.rm(NO_TX, path))
    }
    fn watch(&mut self, _: &str, _: &str) -> Result<(), PStoreError> {
        Ok(())
    }
    fn unwatch(&mut self, _: &str, _: &str) -> Result<(), PStoreError> {
        Ok(())
    }
}

/// pvfs (its xenbus machine, with exports that exist on its "volume") and the guests' 9pfs
/// drivers.
#[derive(Default)]
struct World {
    machines: BTreeMap<(u16, u32), P9Backend>,
    /// Directories on the volume.
    dirs: BTreeSet<String>,
    /// Guests whose driver runs (a paused guest, or one without 9pnet_xen, is absent).
    running: BTreeSet<u16>,
    /// pvfs is up (it answers).
    pvfs_up: bool,
    /// Errors pvfs's machine hit (a permission problem would show here).
    errors: Vec<XenbusError>,
    /// The guests run Linux before 6.3: the driver reads the backend's keys when it probes a
    /// new device (and fails the probe for good without them), and runs before pvfs here.
    old_linux: bool,
    /// Devices whose probe failed, by frontend path.
    probe_failed: BTreeSet<String>,
    /// Whether pvfs's machine asked for each device to be served read-only, at its last connect.
    read_only: BTreeMap<(u16, u32), bool>,
    /// Fids the guest has in use per device (its mounts), as pvfs's fid tables hold them.
    fids: BTreeMap<(u16, u32), usize>,
    /// pvfs publishes `fids` (a test of the race turns this off: a mount pvfs has served but
    /// not yet published).
    publish_fids: bool,
}

impl World {
    fn tick(&mut self, s: &mut FakeStore) {
        if self.old_linux {
            for g in self.running.clone() {
                self.step_guest(s, g);
            }
        }
        if self.pvfs_up {
            self.step_pvfs(s);
        }
        if !self.old_linux {
            for g in self.running.clone() {
                self.step_guest(s, g);
            }
        }
    }

    fn step_pvfs(&mut self, s: &mut FakeStore) {
        let base = format!("/local/domain/{PVFS}/backend/9pfs");
        let mut st = As { s, dom: PVFS };
        for (fe, dev) in scan_backends(&mut st, &base).unwrap() {
            self.machines.entry((fe, dev)).or_insert_with(|| {
                P9Backend::new(
                    &backend_dir(PVFS, fe, dev),
                    fe,
                    dev,
                    BackendConfig::default(),
                )
            });
        }
        let keys: Vec<_> = self.machines.keys().copied().collect();
        for k in keys {
            let m = self.machines.get_mut(&k).unwrap();
            let action = match m.step(&mut st) {
                Ok(a) => a,
                Err(e) => {
                    self.errors.push(e);
                    continue;
                }
            };
            match action {
                BackendAction::Connect(plan) => {
                    self.read_only.insert(k, plan.export.read_only);
                    if self.dirs.contains(&plan.export.path) {
                        m.connected(&mut st).unwrap();
                    } else {
                        let why = format!("export path {:?}: errno 2", plan.export.path);
                        m.connect_failed(&mut st, &why).unwrap();
                    }
                }
                BackendAction::Teardown => {
                    if m.torn_down(&mut st).unwrap() == BackendAction::Remove {
                        self.machines.remove(&k);
                    }
                }
                BackendAction::Remove => {
                    self.machines.remove(&k);
                }
                BackendAction::DetachIfIdle => {
                    if self.fids.get(&k).copied().unwrap_or(0) > 0 {
                        m.detach_refused(&mut st).unwrap();
                    } else {
                        m.detach_idle(&mut st).unwrap();
                    }
                }
                BackendAction::Idle => {}
            }
            let connected = self
                .machines
                .get(&k)
                .is_some_and(|m| m.phase() == pvfs_ring::xenbus::BackendPhase::Connected);
            if self.publish_fids && connected {
                let n = self.fids.get(&k).copied().unwrap_or(0).to_string();
                let key = format!("{}/fids", backend_dir(PVFS, k.0, k.1));
                use pvfs_ring::xenbus::Store as _;
                if st.read(&key).unwrap().as_deref() != Some(n.as_str()) {
                    st.write(&key, &n).unwrap();
                }
            }
        }
    }

    /// Linux `trans_xen.c`: on the backend's InitWait it publishes two rings and goes
    /// Initialised; Connected follows the backend's; Closing/Closed close it.
    fn step_guest(&mut self, s: &mut FakeStore, g: u16) {
        let mut st = As { s, dom: g };
        use pvfs_ring::xenbus::Store as _;
        let devs = st
            .directory(&format!("/local/domain/{g}/device/9pfs"))
            .unwrap();
        for d in devs {
            let fd = format!("/local/domain/{g}/device/9pfs/{d}");
            let Some(be) = st.read(&format!("{fd}/backend")).unwrap() else {
                continue;
            };
            let mine = st.read(&format!("{fd}/state")).unwrap();
            let theirs = st.read(&format!("{be}/state")).unwrap();
            if self.probe_failed.contains(&fd) {
                continue;
            }
            let probe_now = self.old_linux && mine.as_deref() == Some("1");
            if probe_now && st.read(&format!("{be}/versions")).unwrap().is_none() {
                self.probe_failed.insert(fd);
                continue;
            }
            match (mine.as_deref(), theirs.as_deref()) {
                (Some("1"), _) if probe_now => {
                    st.write(&format!("{fd}/version"), "1").unwrap();
                    st.write(&format!("{fd}/num-rings"), "2").unwrap();
                    for i in 0..2 {
                        st.write(&format!("{fd}/ring-ref{i}"), "8").unwrap();
                        st.write(&format!("{fd}/event-channel-{i}"), "9").unwrap();
                    }
                    st.write(&format!("{fd}/state"), "3").unwrap();
                }
                (Some("1"), Some("2")) => {
                    // The backend's keys must be readable by the guest.
                    assert_eq!(
                        st.read(&format!("{be}/versions")).unwrap().as_deref(),
                        Some("1")
                    );
                    st.write(&format!("{fd}/version"), "1").unwrap();
                    st.write(&format!("{fd}/num-rings"), "2").unwrap();
                    for i in 0..2 {
                        st.write(&format!("{fd}/ring-ref{i}"), "8").unwrap();
                        st.write(&format!("{fd}/event-channel-{i}"), "9").unwrap();
                    }
                    st.write(&format!("{fd}/state"), "3").unwrap();
                }
                (Some("3"), Some("4")) => st.write(&format!("{fd}/state"), "4").unwrap(),
                (Some(m), Some("5" | "6")) if m != "6" => {
                    st.write(&format!("{fd}/state"), "6").unwrap()
                }
                _ => {}
            }
        }
    }
}

/// A store with dom0, pvfs (domain 7, ready) and a guest `vm1` (domain 3) whose driver runs;
/// pvfs's volume has `/exports/vm1`.
fn setup() -> (FakeStore, Rc<RefCell<World>>) {
    let mut s = FakeStore::new();
    for (id, name) in [(0u16, "Domain-0"), (PVFS, "pvfs"), (GUEST, "vm1")] {
        let d = format!("/local/domain/{id}");
        s.set(&d, "");
        s.chmod(&d, &[Perm::new(id, Access::None)]);
        s.set(&format!("{d}/name"), name);
        s.chmod(&format!("{d}/name"), &[Perm::new(0, Access::Read)]);
        s.set(&format!("{d}/device"), "");
        s.chmod(&format!("{d}/device"), &[Perm::new(id, Access::None)]);
    }
    s.set(&format!("/local/domain/{PVFS}/backend"), "");
    s.chmod(
        &format!("/local/domain/{PVFS}/backend"),
        &[Perm::new(PVFS, Access::None)],
    );
    s.set(&format!("/local/domain/{PVFS}/data/pvfs/status"), "ready");
    s.set(&format!("/local/domain/{PVFS}/data/pvfs/version"), "0.1.0");
    s.set(
        &format!("/local/domain/{PVFS}/data/pvfs/volume"),
        "label data, 64 MiB",
    );
    s.set(
        &format!("/local/domain/{PVFS}/data/pvfs/stats"),
        "heap_live_bytes=4096 devices_connected=1 connects=3 odd",
    );
    s.set("/libxl", "");
    let world = Rc::new(RefCell::new(World {
        pvfs_up: true,
        publish_fids: true,
        ..World::default()
    }));
    world.borrow_mut().dirs.insert("/exports/vm1".into());
    world.borrow_mut().running.insert(GUEST);
    let w = world.clone();
    let hook: Hook = Box::new(move |s: &mut FakeStore| w.borrow_mut().tick(s));
    s.hook = Some(hook);
    (s, world)
}

fn be() -> Domain {
    Domain {
        domid: PVFS,
        name: "pvfs".into(),
    }
}

fn vm1() -> Domain {
    Domain {
        domid: GUEST,
        name: "vm1".into(),
    }
}

fn opts(tag: &str, path: &str) -> AddOpts {
    AddOpts {
        tag: tag.into(),
        path: path.into(),
        timeout_ms: 5000,
        ..AddOpts::default()
    }
}

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn perms(s: &FakeStore, path: &str) -> Vec<Perm> {
    s.nodes[path].perms.clone()
}

/// Neither pvfs nor the guest's driver reported an error.
#[track_caller]
fn assert_no_errors(world: &RefCell<World>) {
    let errors = &world.borrow().errors;
    assert!(errors.is_empty(), "{errors:?}");
}

/// Nothing of device `dev` of the guest is left anywhere; with no other device, neither are
/// the directories that held it.
fn assert_clean(s: &FakeStore, dev: u32) {
    for p in [
        backend_dir(PVFS, GUEST, dev),
        frontend_dir(GUEST, dev),
        libxl_dir(GUEST, dev),
    ] {
        assert!(!s.exists(&p), "{p} left behind: {:?}", s.subtree(&p));
    }
    for p in [
        format!("/local/domain/{PVFS}/backend/9pfs/{GUEST}"),
        format!("/local/domain/{GUEST}/device/9pfs"),
        format!("/libxl/{GUEST}"),
    ] {
        assert!(!s.exists(&p), "{p} left behind: {:?}", s.subtree(&p));
    }
    // What was there before stays.
    assert_eq!(s.get(&format!("/local/domain/{GUEST}/name")), Some("vm1"));
    assert!(s.exists(&format!("/local/domain/{PVFS}/backend/9pfs")));
}

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
    assert_eq!(
        s.get(&format!("{}/state", backend_dir(PVFS, GUEST, 0))),
        Some("2")
    );
    // The guest is unpaused: it connects.
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
fn set_and_lift_quotas() {
    let (mut s, _) = setup();
    let o = AddOpts {
        max_files: Some(10),
        ..opts("data", "/exports/vm1")
    };
    add(&mut s, &be(), &vm1(), &o).unwrap();
    let bd = backend_dir(PVFS, GUEST, 0);
    let sh = set(
        &mut s,
        &be(),
        &vm1(),
        "data",
        [Some(Some(128)), Some(None), None],
        &[],
    )
    .unwrap();
    assert_eq!(s.get(&format!("{bd}/max-space")), Some("128"));
    assert!(!s.exists(&format!("{bd}/max-files")));
    assert!(!s.exists(&format!("{bd}/max-open-files")));
    assert_eq!(sh.quota, [Some("128".into()), None, None]);
    // The key belongs to pvfs's domain like the rest of the directory.
    assert_eq!(perms(&s, &format!("{bd}/max-space"))[0].domid, PVFS);
    set(
        &mut s,
        &be(),
        &vm1(),
        "data",
        [None, None, Some(Some(5))],
        &[],
    )
    .unwrap();
    assert_eq!(s.get(&format!("{bd}/max-space")), Some("128"));
    assert_eq!(s.get(&format!("{bd}/max-open-files")), Some("5"));
    let e = set(&mut s, &be(), &vm1(), "data", [None, None, None], &[]).unwrap_err();
    assert_eq!(e.kind, Kind::Usage);
    let e = set(
        &mut s,
        &be(),
        &vm1(),
        "nosuch",
        [Some(None), None, None],
        &[],
    )
    .unwrap_err();
    assert_eq!(e.kind, Kind::NoSuchShare);
}

#[test]
fn ls_table_and_json() {
    let (mut s, _) = setup();
    let o = AddOpts {
        max_space_mib: Some(64),
        read_only: true,
        ..opts("data", "/exports/vm1")
    };
    add(&mut s, &be(), &vm1(), &o).unwrap();
    s.set(
        &format!("/local/domain/{PVFS}/backend/9pfs/{GUEST}/0/max-files"),
        "x\"y",
    );
    let list = shares(&mut s, PVFS, None).unwrap();
    assert_eq!(list.len(), 1);
    let t = ls_table(&list);
    let lines: Vec<&str> = t.lines().collect();
    assert_eq!(lines.len(), 2);
    let cols: Vec<&str> = lines[0].split_whitespace().collect();
    // Written out, not taken from `ls_table`: the documented column names are what is checked.
    assert_eq!(
        cols,
        [
            "GUEST",
            "DOMID",
            "DEV",
            "TAG",
            "PATH",
            "STATE",
            "GUEST-STATE",
            "RO",
            "MAX-SPACE",
            "MAX-FILES",
            "MAX-OPEN",
            "USED",
            "IDS"
        ]
    );
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row,
        [
            "vm1",
            "3",
            "0",
            "data",
            "/exports/vm1",
            "Connected",
            "Connected",
            "yes",
            "64MiB",
            "x\"y",
            "-",
            "-",
            "identity"
        ]
    );
    assert_eq!(
        ls_json(&list),
        "[{\"guest\":\"vm1\",\"domid\":3,\"devid\":0,\"backend\":7,\"tag\":\"data\",\"path\":\"/exports/vm1\",\"state\":\"Connected\",\"guest_state\":\"Connected\",\"read_only\":true,\"max_space_mib\":64,\"max_files\":\"x\\\"y\",\"max_open_files\":null,\"space_used_mib\":null,\"files_used\":null,\"open_files_used\":null,\"uid_map\":null,\"gid_map\":null,\"squash_root\":null,\"unmapped_ids\":null,\"error\":null}]\n"
    );
    // Filtered to another guest: empty.
    assert!(shares(&mut s, PVFS, Some(0)).unwrap().is_empty());
    assert_eq!(ls_json(&[]), "[]\n");
}

#[test]
fn status_text_and_json() {
    let (mut s, _) = setup();
    add(&mut s, &be(), &vm1(), &opts("data", "/exports/vm1")).unwrap();
    let st = status(&mut s, "pvfs").unwrap();
    assert_eq!(st.shares, 1);
    assert_eq!(
        st.stats,
        [
            ("heap_live_bytes".to_string(), "4096".to_string()),
            ("devices_connected".into(), "1".into()),
            ("connects".into(), "3".into()),
            ("odd".into(), String::new()),
        ]
    );
    let t = status_text(&st);
    assert!(t.starts_with("domain:  pvfs (7)\nstatus:  ready\nversion: 0.1.0\nvolume:  label data, 64 MiB\nshares:  1\nstats:\n"), "{t}");
    assert!(t.contains("\n  heap_live_bytes    4096\n"), "{t}");
    assert_eq!(
        status_json(&st),
        "{\"domain\":{\"name\":\"pvfs\",\"domid\":7},\"status\":\"ready\",\"version\":\"0.1.0\",\"volume\":\"label data, 64 MiB\",\"shares\":1,\"stats\":{\"heap_live_bytes\":4096,\"devices_connected\":1,\"connects\":3,\"odd\":\"\"}}\n"
    );
    assert_eq!(status(&mut s, "nosuch").unwrap_err().kind, Kind::NoPvfs);
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
fn json_strings_are_escaped() {
    assert_eq!(json_str("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
}

/// The commands over the real wire client (`XsConn`) and a unix socket, against the fake
/// served as xenstored would serve it.
#[test]
fn commands_over_the_wire() {
    let (client, server) = std::os::unix::net::UnixStream::pair().unwrap();
    let t = std::thread::spawn(move || {
        let (s, world) = setup();
        // The guest mounts the share it is given: `rm` without --force is refused.
        world.borrow_mut().fids.insert((GUEST, 0), 1);
        crate::xs_fake::serve(s, server);
    });
    let mut c = crate::xs::XsConn::new(client);
    let be_arg = || BackendArg {
        backend: "pvfs".into(),
    };
    let out = run_share(
        &mut c,
        ShareCmd::Add(AddArgs {
            domain: "vm1".into(),
            tag: "data".into(),
            path: "/exports/vm1".into(),
            policy: PolicyArgs::default(),
            max_space: Some(32),
            max_files: None,
            max_open_files: None,
            be: be_arg(),
            timeout: 5,
            no_raise_xenstore_quota: false,
        }),
    )
    .unwrap();
    assert_eq!(
        out,
        "share \"data\" of vm1 (3): device 0, path /exports/vm1: connected; mount it in the guest with `mount -t 9p -o trans=xen,version=9p2000.L data /mnt`\n"
    );
    let out = run_share(
        &mut c,
        ShareCmd::Set(SetArgs {
            domain: "3".into(),
            tag: "data".into(),
            max_space: None,
            no_max_space: true,
            max_files: Some(9),
            no_max_files: false,
            max_open_files: None,
            no_max_open_files: false,
            policy: PolicyArgs::default(),
            be: be_arg(),
        }),
    )
    .unwrap();
    assert_eq!(
        out,
        "share \"data\" of vm1 (3): rw max-space=none max-files=9 max-open-files=none identity\n"
    );
    let out = run_share(
        &mut c,
        ShareCmd::Ls(LsArgs {
            domain: Some("vm1".into()),
            json: true,
            be: be_arg(),
        }),
    )
    .unwrap();
    assert!(out.contains("\"state\":\"Connected\""), "{out}");
    assert!(out.contains("\"max_files\":9"), "{out}");
    let e = run_share(
        &mut c,
        ShareCmd::Rm(RmArgs {
            domain: "vm1".into(),
            tag: "data".into(),
            force: false,
            be: be_arg(),
            timeout: 5,
        }),
    )
    .unwrap_err();
    assert_eq!(e.kind, Kind::InUse);
    run_share(
        &mut c,
        ShareCmd::Rm(RmArgs {
            domain: "vm1".into(),
            tag: "data".into(),
            force: true,
            be: be_arg(),
            timeout: 5,
        }),
    )
    .unwrap();
    let out = run_status(
        &mut c,
        StatusArgs {
            json: false,
            wait: Some(2),
            be: be_arg(),
        },
    )
    .unwrap();
    assert!(out.contains("shares:  0\n"), "{out}");
    drop(c);
    t.join().unwrap();
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

/// `XsConn::open` follows `XENSTORED_PATH` to a unix socket (the only test that opens a
/// connection itself).
#[test]
fn open_follows_xenstored_path() {
    let dir = std::env::temp_dir().join(format!("pvfs-xs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("socket");
    let _ = std::fs::remove_file(&sock);
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let t = std::thread::spawn(move || {
        let (conn, _) = listener.accept().unwrap();
        let (s, _world) = setup();
        crate::xs_fake::serve(s, conn);
    });
    std::env::set_var("XENSTORED_PATH", &sock);
    let c = crate::xs::XsConn::open();
    std::env::remove_var("XENSTORED_PATH");
    let mut c = c.unwrap();
    let out = run_status(
        &mut c,
        StatusArgs {
            json: true,
            wait: None,
            be: BackendArg {
                backend: "7".into(),
            },
        },
    )
    .unwrap();
    assert!(
        out.starts_with("{\"domain\":{\"name\":\"pvfs\",\"domid\":7},\"status\":\"ready\""),
        "{out}"
    );
    drop(c);
    t.join().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

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
    // the detach request of a later `share rm`, and the missing backend/9pfs and
    // backend/9pfs/<guest>.
    let need = 1 + 1 + 7 + 3 + 1 + 1 + 1 + 2;
    xenstored(&mut s, need);
    let added = add(&mut s, &be(), &vm1(), &o).unwrap();
    assert_eq!(added.headroom, Headroom::Enough);
    assert_eq!(added.verdict, Verdict::Connected);
    s.sleep_ms(POLL_MS); // pvfs publishes fids
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
                "pvfs's domain {PVFS} owns {used} of its {q} xenstore nodes and the share needs 15 more; "
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
    let out = run_share(
        &mut c,
        ShareCmd::Add(AddArgs {
            domain: "vm1".into(),
            tag: "data".into(),
            path: "/exports/vm1".into(),
            policy: PolicyArgs::default(),
            max_space: None,
            max_files: None,
            max_open_files: None,
            be: BackendArg {
                backend: "pvfs".into(),
            },
            timeout: 5,
            no_raise_xenstore_quota: false,
        }),
    )
    .unwrap();
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
fn status_wait_waits_for_the_domain_and_ready() {
    // No pvfs domain at first; it appears after 1 s and is ready after 2 s.
    let (mut s, _) = setup();
    let d = format!("/local/domain/{PVFS}");
    let saved = s.subtree(&d);
    s.rm(NO_TX, &d).unwrap();
    s.hook = Some(Box::new(move |s: &mut FakeStore| {
        if s.now == 1000 {
            s.set(&format!("/local/domain/{PVFS}/name"), "pvfs");
            s.set(&format!("/local/domain/{PVFS}/data/pvfs/version"), "0.1.0");
        }
        if s.now == 2000 {
            for (k, v) in &saved {
                let p = if k.is_empty() {
                    format!("/local/domain/{PVFS}")
                } else {
                    format!("/local/domain/{PVFS}/{k}")
                };
                s.set(&p, v);
            }
        }
    }));
    let st = wait_ready(&mut s, "pvfs", 5000).unwrap();
    assert_eq!(st.status.as_deref(), Some("ready"));
    assert_eq!(s.now, 2000);

    // Never ready: exit 10, saying what it saw last.
    let (mut s, _) = setup();
    s.set(
        &format!("/local/domain/{PVFS}/data/pvfs/status"),
        "starting",
    );
    let err = wait_ready(&mut s, "pvfs", 3000).unwrap_err();
    assert_eq!((err.kind, err.code()), (Kind::Timeout, 10));
    assert_eq!(
        err.msg,
        "pvfs was not ready within 3 s: pvfs (7) has status starting"
    );
    let (mut s, _) = setup();
    s.rm(NO_TX, &format!("/local/domain/{PVFS}")).unwrap();
    let err = wait_ready(&mut s, "pvfs", 1000).unwrap_err();
    assert_eq!(err.code(), 10);
    assert!(
        err.msg.contains("no domain \"pvfs\" is running"),
        "{}",
        err.msg
    );
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

#[path = "tests_policy.rs"]
mod policy;
#[path = "tests_rm.rs"]
mod rm_tests;
