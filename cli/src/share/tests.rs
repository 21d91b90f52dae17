//! The dom0 commands against the in-memory store, with pvfs played by its real xenbus machine
//! (`pvfs_ring::xenbus::P9Backend`, run as domain 7 with domain 7's permissions) and the guest by
//! a small model of Linux's `trans_xen.c` (run with the guest's permissions). So a node written
//! with the wrong permissions shows up as pvfs or the guest being denied.
//!
//! The tests themselves are in the `tests_*.rs` modules declared at the end, one for each
//! command or concern; this module is the world they run in and the helpers they share.

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
                // and, as the guest's requests come, `stats`
                let key = format!("{}/stats", backend_dir(PVFS, k.0, k.1));
                if st.read(&key).unwrap().is_none() {
                    st.write(&key, "requests=1").unwrap();
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
                    publish_rings(&mut st, &fd);
                }
                (Some("1"), Some("2")) => {
                    // The backend's keys must be readable by the guest.
                    assert_eq!(
                        st.read(&format!("{be}/versions")).unwrap().as_deref(),
                        Some("1")
                    );
                    publish_rings(&mut st, &fd);
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

#[path = "tests_add.rs"]
mod add_tests;
#[path = "tests_dedup.rs"]
mod dedup_tests;
#[path = "tests_failure.rs"]
mod failure_tests;
#[path = "tests_ls_status.rs"]
mod ls_status_tests;
#[path = "tests_policy.rs"]
mod policy;
#[path = "tests_rm.rs"]
mod rm_tests;
#[path = "tests_set.rs"]
mod set_tests;
#[path = "tests_top.rs"]
mod top_tests;
#[path = "tests_wire.rs"]
mod wire_tests;
#[path = "tests_xsquota.rs"]
mod xsquota_tests;

/// What a Linux frontend writes under its device node `fd` to connect: protocol version 1,
/// two rings (grant references and event channels), then Initialised (3).
fn publish_rings(st: &mut As<'_>, fd: &str) {
    use pvfs_ring::xenbus::Store as _;
    st.write(&format!("{fd}/version"), "1").unwrap();
    st.write(&format!("{fd}/num-rings"), "2").unwrap();
    for i in 0..2 {
        st.write(&format!("{fd}/ring-ref{i}"), "8").unwrap();
        st.write(&format!("{fd}/event-channel-{i}"), "9").unwrap();
    }
    st.write(&format!("{fd}/state"), "3").unwrap();
}

/// `pvfs share add vm1 data /exports/vm1` on the pvfs backend, with a 5 s timeout and the
/// given `--max-space`, as the tests over the wire client send it.
fn add_vm1_data(max_space: Option<u64>) -> ShareCmd {
    ShareCmd::Add(AddArgs {
        domain: "vm1".into(),
        tag: "data".into(),
        path: "/exports/vm1".into(),
        template: None,
        policy: PolicyArgs::default(),
        max_space,
        max_files: None,
        max_open_files: None,
        max_iops: None,
        max_bps: None,
        be: BackendArg {
            backend: "pvfs".into(),
        },
        timeout: 5,
        no_raise_xenstore_quota: false,
        no_guest_wait: false,
    })
}
