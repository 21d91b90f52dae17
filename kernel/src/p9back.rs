//! The Xen 9pfs backend: unmodified Linux guests mount pvfs with
//! `mount -t 9p -o trans=xen,version=9p2000.L TAG /mnt`.
//!
//! The protocol logic is host-tested in `pvfs_ring` (`xenbus::P9Backend`, `connect_rings`,
//! `p9ring::Backend9pRing`) and the 9P server in `pvfs_9p`; this module supplies the platform
//! (xenstore, grant mapping, event channels) and runs the service loop:
//! - one subtree watch on `/local/domain/<self>/backend/9pfs` (xenstored allows an unprivileged
//!   domain 128 watches) plus `@releaseDomain`;
//! - per device, the xenbus machine decides; we map the rings, bind the event channels and
//!   start a 9P connection on the export named by the `path` key;
//! - per ring, whole requests are copied out once and validated, run through the server, and
//!   each reply is written whole before `in_prod` is published; replies that do not fit wait
//!   without blocking other rings or guests, and while too many wait no more requests are
//!   taken from that ring (`pvfs_9p::channel`, in `p9back/ring.rs`);
//! - a ring protocol violation disconnects that device only.

use crate::blkfront::{BackendEvent, Blkfront};
use crate::xen::gnttab;
use crate::xen::shmem::PageMem;
use crate::xen::store::XsStore;
use crate::xen::{events, store};
use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::AtomicBool;
use pvfs_9p::channel::RingWork;
use pvfs_9p::volume::VolumeFs;
use pvfs_9p::{Connection, Server};
use pvfs_kernel::devstats::DevStats;
use pvfs_kernel::ringclock::{Profile, RingClock};
use pvfs_kernel::stackuse::KindPeaks;
use pvfs_kernel::throttle::Throttle;
use pvfs_ring::xenbus::{
    self, BackendAction, BackendConfig, ConnectedRing, P9Backend, Platform, QuotaKeys, RateKeys,
    Route, StoreError, XenbusError,
};

/// Largest ring order we offer (`max-ring-page-order`): 2^9 pages per direction pair, the
/// Linux maximum, so a mount grants 2 × (1 + 512) pages. Each new device is offered the
/// order that what is left of the 1 GiB frame window (also Xen's default maptrack limit)
/// allows (`pvfs_kernel::ringorder`, `budget`).
pub const MAX_RING_ORDER: u32 = 9;
/// Rings a device may have (`max-rings`; Linux uses 2).
const RINGS: u32 = 2;
/// Largest msize we accept.
pub const MAX_MSIZE: u32 = 512 * 1024;
/// Requests accepted from one ring and not yet run, at most: the guest's ring space is freed
/// as soon as a request is copied out, so this (with [`MAX_QUEUED_BYTES`]) bounds the
/// requests a guest can make pvfs buffer; the replies waiting for its ring space are bounded
/// by `pvfs_9p::channel` (no more requests are taken while too many wait).
const MAX_QUEUED: usize = 64;
/// Bytes of accepted requests held per ring, at most (one out ring's worth at order 9).
const MAX_QUEUED_BYTES: usize = 1 << 20;

type Fs = Arc<VolumeFs<Blkfront>>;
/// What a device's connection serves: its export of the volume, merged with a template
/// directory for a template share.
type ShareFs = pvfs_9p::overlay::ShareFs<Fs>;

mod budget;
mod counters;
mod detach;
mod export;
mod idpolicy;
mod rates;
mod ring;
mod stats;
pub use counters::Counters;
use export::{quota_limits, seed_quota_once};
use ring::serve_ring;

/// Foreign pages mapped as one region.
struct Mapped {
    mem: PageMem,
    run: gnttab::Run,
}

pvfs_ring::delegate_shared_mem!(Mapped, mem: PageMem);

/// Grant mapping and event channels for the xenbus code.
struct XenPlatform;

impl Platform for XenPlatform {
    type Mem = Mapped;
    type Error = String;

    fn map_grants(&mut self, domid: u16, refs: &[u32]) -> Result<Mapped, String> {
        let run = gnttab::map_run(domid, refs)
            .map_err(|e| format!("map {} grants of domain {domid}: {e:?}", refs.len()))?;
        // SAFETY: the run's frames were just mapped to the guest's pages and stay mapped until
        // `unmap` consumes this value; they are reached only through this PageMem.
        let mem = unsafe { PageMem::new(run.addr as usize, run.len()) };
        Ok(Mapped { mem, run })
    }
    fn unmap(&mut self, m: Mapped) {
        gnttab::unmap_run(m.run);
    }
    fn bind_interdomain(&mut self, domid: u16, remote_port: u32) -> Result<u32, String> {
        events::bind_interdomain(domid, remote_port)
            .map_err(|e| format!("bind port {remote_port} of domain {domid}: {e:?}"))
    }
    fn close_evtchn(&mut self, port: u32) {
        let _ = events::close(port);
    }
}

struct Link {
    /// The device's rings, in ring order.
    rings: Vec<RingState>,
    conn: Connection<ShareFs>,
    /// What the device's `stats` key shows (`pvfs_kernel::devstats`, `stats` module).
    stats: DevStats,
    /// Its rate limits (`rates` module).
    throttle: Throttle,
}

/// One connected ring and the work pvfs holds for it.
struct RingState {
    ring: ConnectedRing<Mapped>,
    /// The ring's budget ran out with requests possibly left: revisit without an event.
    hot: bool,
    /// Requests accepted from the ring and waiting to run (see `pvfs_9p::sched`), and
    /// replies waiting for ring space (bounded, `pvfs_9p::channel`).
    work: RingWork,
    /// Where the ring's time goes (`pvfs_kernel::ringclock`).
    clock: RingClock,
}

impl RingState {
    fn new(ring: ConnectedRing<Mapped>, early_writes: bool) -> Self {
        let mut work = RingWork::new(MAX_QUEUED, MAX_QUEUED_BYTES);
        work.queue.set_early_writes(early_writes);
        Self {
            ring,
            hot: true,
            work,
            clock: RingClock::default(),
        }
    }
}

/// Unmaps a device's rings and closes their event channels.
fn disconnect(rings: Vec<RingState>) {
    xenbus::disconnect_rings(
        &mut XenPlatform,
        rings.into_iter().map(|r| r.ring).collect(),
    );
}

struct Device {
    machine: P9Backend,
    /// The ring order offered (`max-ring-page-order`, `ringorder`); `None`: no room left.
    offered: Option<u32>,
    link: Option<Link>,
    /// The number of fids last written to the device's `fids` key (`detach::publish_fids`).
    fids_published: Option<usize>,
    /// Service passes a detach request has waited for the rings to fall quiet; 0: none.
    detach_waits: u32,
}

/// The 9pfs backend service.
pub struct Service {
    base: String,
    fs: Option<Fs>,
    /// Exports served read-only even when the volume is writable (`pvfs.ro_exports`).
    read_only_export: fn(&str) -> bool,
    /// By export path and `mode=ro`: devices of one path and mode share a server.
    servers: BTreeMap<String, Server<ShareFs>>,
    devices: BTreeMap<(u16, u32), Device>,
    /// Counters.
    pub counters: Counters,
    /// Held and turnaround time by kind of request, since the last device disconnected
    /// (logged then; `pvfs_kernel::ringclock`).
    profile: Profile,
    /// Times the volume's disk completed posted requests; reads put aside wait for it to move.
    disk_progress: u64,
    /// The serve loop is polling: every ring is looked at on each pass, their ports masked.
    polling: bool,
    /// Dirty file data (KiB) from which background write-back starts; 0: none.
    write_back_kib: u32,
    /// Answer Twrites before running them where they can only fail with a disk error.
    early_writes: bool,
    /// The deepest point of the stack each kind of request has reached (`stack::measure`).
    pub stack_peaks: KindPeaks,
    /// The device whose `stats` were written last (`stats`: busy devices take turns).
    stats_turn: Option<(u16, u32)>,
    /// When the earliest device held back by its rate limits may be served (`rates`).
    throttle_due: Option<u64>,
}

impl Service {
    /// Starts watching `/local/domain/<domid>/backend/9pfs` and picks up existing devices.
    /// `read_only_export(path)` says whether a guest's export must be read-only although the
    /// volume is writable.
    pub fn start(
        domid: u32,
        volume: Option<VolumeFs<Blkfront>>,
        read_only_export: fn(&str) -> bool,
    ) -> Self {
        let base = format!("/local/domain/{domid}/backend/9pfs");
        let mut s = Self {
            base,
            fs: volume.map(Arc::new),
            read_only_export,
            servers: BTreeMap::new(),
            devices: BTreeMap::new(),
            counters: Counters::default(),
            profile: Profile::default(),
            disk_progress: 0,
            polling: false,
            write_back_kib: pvfs_kernel::cmdline::DEFAULT_WRITEBACK_KIB,
            early_writes: true,
            stack_peaks: KindPeaks::default(),
            stats_turn: None,
            throttle_due: None,
        };
        if let Err(e) = store::watch(&s.base, "9pfs") {
            log::error!("9pfs: cannot watch {}: {e:?}", s.base);
        }
        let _ = store::watch("@releaseDomain", "9pfs");
        s.rescan();
        log::info!(
            "9pfs backend: watching {} (max-ring-page-order {MAX_RING_ORDER})",
            s.base
        );
        s
    }

    /// Looks at every device: the ones that appeared are taken up, and every device is
    /// stepped (for `@releaseDomain`, a watch overflow and the subtree's own events).
    fn rescan(&mut self) {
        let found = xenbus::scan_backends(&mut XsStore, &self.base).unwrap_or_default();
        let mut new = Vec::new();
        for (fe, dev) in found {
            if !self.devices.contains_key(&(fe, dev)) {
                self.insert_device(fe, dev);
                new.push((fe, dev));
            }
        }
        for k in new {
            self.check_export(k);
            self.check_budget(k);
        }
        let keys: Vec<_> = self.devices.keys().copied().collect();
        for k in keys {
            self.step(k);
        }
    }

    /// A watch event under a device directory pvfs does not know yet (the toolstack is
    /// adding it): that device alone is taken up, without stepping every other device, so
    /// adding a device costs the same with 1,000 devices as with one.
    fn add_device(&mut self, fe: u16, dev: u32) {
        let dir = format!("{}/{fe}/{dev}", self.base);
        if self.devices.len() >= xenbus::MAX_DEVICES || store::read(&dir).is_err() {
            return; // not there (an event of its removal), or too many devices
        }
        self.insert_device(fe, dev);
        self.check_export((fe, dev));
        self.check_budget((fe, dev));
        self.step((fe, dev));
    }

    /// Takes up a new device: its xenbus machine, offered the ring order the mapping budget
    /// allows (`budget`).
    fn insert_device(&mut self, fe: u16, dev: u32) {
        let path = format!("{}/{fe}/{dev}", self.base);
        let offer = self.ring_offer();
        log::info!(
            "9pfs: new device {path} (offered ring order {})",
            offer.map_or_else(|| String::from("none"), |o| format!("{o}"))
        );
        self.devices.insert(
            (fe, dev),
            Device {
                machine: P9Backend::new(
                    &path,
                    fe,
                    dev,
                    BackendConfig {
                        max_rings: RINGS,
                        max_ring_page_order: offer.unwrap_or(0),
                    },
                ),
                offered: offer,
                link: None,
                fids_published: None,
                detach_waits: 0,
            },
        );
    }

    /// A new device whose export cannot be served (missing, not a directory, no volume) is
    /// refused at once, before it is offered to the guest: the toolstack (or `pvfs share
    /// add`) sees state Closed and the `error` node without waiting for the guest to connect.
    fn check_export(&mut self, key: (u16, u32)) {
        let path_key = format!("{}/{}/{}/path", self.base, key.0, key.1);
        let Ok(export) = store::read(&path_key) else {
            return;
        };
        let template_key = format!("{}/{}/{}/{}", self.base, key.0, key.1, xenbus::TEMPLATE_KEY);
        let template = store::read(&template_key).ok();
        let checked = self.export_dir(&export).and_then(|_| match &template {
            Some(t) => self.export_dir(t).map(|_| ()),
            None => Ok(()),
        });
        if let Err(why) = checked {
            log::warn!("9pfs: guest {} device {}: refused: {why}", key.0, key.1);
            if let Some(d) = self.devices.get_mut(&key) {
                let _ = d.machine.refuse(&mut XsStore, &why);
            }
        }
    }

    /// Handles a xenstore watch event whose token is ours.
    pub fn on_watch(&mut self, path: &str) {
        match xenbus::route(&self.base, path) {
            Route::Device { fe, dev } if self.devices.contains_key(&(fe, dev)) => {
                // Only the keys in our backend directory: a guest may write a key of the same
                // name in its own frontend directory, which routes to the same device.
                if path.starts_with(&self.base) && QuotaKeys::is_key(path) {
                    self.reload_quota((fe, dev));
                }
                if path.starts_with(&self.base) && idpolicy::is_policy_key(path) {
                    self.reload_policy((fe, dev));
                }
                if path.starts_with(&self.base) && RateKeys::is_key(path) {
                    self.reload_rates((fe, dev));
                }
                self.step((fe, dev))
            }
            Route::Device { fe, dev } if path.starts_with(&self.base) => self.add_device(fe, dev),
            Route::Ignore => {}
            _ => self.rescan(),
        }
    }

    fn step(&mut self, key: (u16, u32)) {
        for _ in 0..4 {
            let Some(d) = self.devices.get_mut(&key) else {
                return;
            };
            let action = match d.machine.step(&mut XsStore) {
                Ok(a) => a,
                Err(XenbusError::Store(StoreError::Denied)) => {
                    let fe_dir = format!("/local/domain/{}/device/9pfs/{}", key.0, key.1);
                    log::info!(
                        "9pfs: guest {} device {}: xenstore access denied (frontend state {:?}, domain {:?})",
                        key.0,
                        key.1,
                        store::read(&format!("{fe_dir}/state")),
                        store::read(&format!("/local/domain/{}/name", key.0)),
                    );
                    // A dead guest's nodes become unreadable before they disappear: the
                    // frontend is gone. Release everything and remove our backend directory,
                    // which libxl waits for when it destroys the guest.
                    if let Some(link) = d.link.take() {
                        disconnect(link.rings);
                        self.counters.disconnects += 1;
                    }
                    let path = format!("{}/{}/{}", self.base, key.0, key.1);
                    // The machine's watch on the frontend state (token: our backend path);
                    // watches count against xenstored's per-domain quota.
                    let fe_state = format!("/local/domain/{}/device/9pfs/{}/state", key.0, key.1);
                    let _ = store::unwatch(&fe_state, &path);
                    let _ = store::rm(&path);
                    self.devices.remove(&key);
                    log::info!("9pfs: guest {} is gone; device {} removed", key.0, key.1);
                    return;
                }
                Err(e) => {
                    log::warn!("9pfs: device {}/{}: {e:?}", key.0, key.1);
                    return;
                }
            };
            match action {
                BackendAction::Idle => return,
                BackendAction::DetachIfIdle => {
                    if !self.on_detach_request(key) {
                        return;
                    }
                }
                BackendAction::Connect(plan) => {
                    let limits = quota_limits(plan.export.quota);
                    let be = format!("{}/{}/{}", self.base, key.0, key.1);
                    let prepared = idpolicy::read_policy(&be)
                        .map_err(|e| format!("policy keys not valid: {e}"))
                        .and_then(|p| {
                            let template = plan.export.template.as_deref();
                            Ok((self.export(&plan.export.path, template)?, p))
                        });
                    let (server, policy) = match prepared {
                        Ok(sp) => sp,
                        Err(e) => {
                            log::warn!("9pfs: guest {}: {e}", plan.fe_domid);
                            if let Some(d) = self.devices.get_mut(&key) {
                                let _ = d.machine.connect_failed(&mut XsStore, &e);
                            }
                            return;
                        }
                    };
                    server.quota().set_limits(limits);
                    seed_quota_once(server.quota(), |n| server.seed_quota(n), &plan.export.path);
                    let Some(d) = self.devices.get_mut(&key) else {
                        return;
                    };
                    match xenbus::connect_rings(&mut XenPlatform, &plan, MAX_RING_ORDER, MAX_MSIZE)
                    {
                        Ok(rings) => {
                            let n = rings.len();
                            let early_writes = self.early_writes;
                            let ports: Vec<u32> = rings.iter().map(|r| r.port).collect();
                            d.link = Some(Link {
                                rings: rings
                                    .into_iter()
                                    .map(|r| RingState::new(r, early_writes))
                                    .collect(),
                                conn: server.connect(),
                                stats: DevStats::default(),
                                throttle: Throttle::default(),
                            });
                            if let Some(l) = d.link.as_mut() {
                                rates::apply_rates(l, d.machine.path(), key);
                                log::info!(
                                    "9pfs: guest {} device {}: policy {}",
                                    key.0,
                                    key.1,
                                    idpolicy::describe(&policy)
                                );
                                l.conn.set_policy(policy);
                            }
                            let _ = d.machine.connected(&mut XsStore);
                            self.counters.connects += 1;
                            log::info!(
                                "9pfs: guest {} device {} connected: export {:?}, {n} rings, ports {ports:?}, {} pages mapped",
                                plan.fe_domid,
                                key.1,
                                plan.export.path,
                                gnttab::stats().mapped
                            );
                        }
                        Err(e) => {
                            log::warn!(
                                "9pfs: guest {}: connecting rings failed: {e:?}",
                                plan.fe_domid
                            );
                            let _ = d.machine.connect_failed(&mut XsStore, &format!("{e:?}"));
                            return;
                        }
                    }
                }
                BackendAction::Teardown => {
                    if let Some(link) = d.link.take() {
                        disconnect(link.rings);
                        drop(link.conn);
                        self.counters.disconnects += 1;
                        log::info!("9pfs: guest {} device {} disconnected", key.0, key.1);
                        // The request counts and the per-request profile go out at debug level
                        // (`pvfs.log=debug`, which the benchmark sets): at info level they were
                        // a dozen console lines, each a VM exit and a console signal, at every
                        // disconnect, which is when the emulated test bed's faults of pvfs's
                        // vCPU cluster (ci/xen/README.md, "Known problem").
                        log::debug!(
                            "9pfs: requests so far by 9P message type: {}",
                            self.counters.by_type
                        );
                        if log::log_enabled!(log::Level::Debug) {
                            log::debug!(
                                "9pfs: per-request times since the last report (type/size class; held in pvfs, then until the guest's next request; {} mixed intervals):",
                                self.profile.mixed
                            );
                            for line in self.profile.lines() {
                                log::debug!("9pfs:   {line}");
                            }
                            // The same by range of µs: an average hides whether a few very
                            // slow round trips or many slightly slow ones make it.
                            for line in self.profile.histogram_lines() {
                                log::debug!("9pfs:   {line}");
                            }
                            log::debug!(
                                "9pfs: signals to guests after replies, by µs: {}",
                                self.profile.notify
                            );
                        }
                        self.profile.clear();
                    }
                    if let Some(d) = self.devices.get_mut(&key) {
                        if let Ok(BackendAction::Remove) = d.machine.torn_down(&mut XsStore) {
                            self.devices.remove(&key);
                            log::info!("9pfs: device {}/{} removed", key.0, key.1);
                            return;
                        }
                    }
                }
                BackendAction::Remove => {
                    if let Some(mut d) = self.devices.remove(&key) {
                        if let Some(link) = d.link.take() {
                            disconnect(link.rings);
                        }
                    }
                    log::info!("9pfs: device {}/{} removed", key.0, key.1);
                    return;
                }
            }
        }
    }

    /// One service pass: every ring with work gets its replies written, its new requests
    /// accepted, and one of its accepted requests run. Passes repeat while there is work, so
    /// the rings of all guests take turns request by request. Returns true if anything was
    /// done.
    pub fn poll(&mut self) -> bool {
        let disk = self.disk_state();
        let mut did = false;
        let mut broken: Vec<((u16, u32), String)> = Vec::new();
        let now = crate::xen::time::now_ns();
        self.throttle_due = None;
        for (key, d) in self.devices.iter_mut() {
            let Some(link) = d.link.as_mut() else {
                continue;
            };
            // A device held back by its rate limits is left alone (its events stay pending)
            // until the time `rates::admit` gives; other devices are served meanwhile.
            if !rates::admit(link, now, &mut self.throttle_due) {
                continue;
            }
            let answered = link.stats.answered();
            for i in 0..link.rings.len() {
                let Some(rs) = link.rings.get(i) else {
                    break;
                };
                let fired = events::take(rs.ring.port) || self.polling;
                if !fired && rs.work.is_idle() && !rs.hot {
                    continue;
                }
                match serve_ring(
                    link,
                    i,
                    &mut self.counters,
                    &mut self.profile,
                    &mut self.stack_peaks,
                    disk,
                ) {
                    Ok(worked) => {
                        did |= worked;
                        // Revisit on the next pass while the ring keeps producing work.
                        if let Some(rs) = link.rings.get_mut(i) {
                            rs.hot = worked || !rs.work.queue.is_empty();
                        }
                    }
                    Err(e) => {
                        broken.push((*key, e));
                        break;
                    }
                }
            }
            if link.throttle.is_limited() {
                let (ops, bytes) = link.stats.answered();
                link.throttle.charge(
                    ops.saturating_sub(answered.0),
                    bytes.saturating_sub(answered.1),
                );
            }
        }
        for (key, why) in broken {
            log::warn!(
                "9pfs: guest {} device {}: {why}; disconnecting it",
                key.0,
                key.1
            );
            self.counters.violations += 1;
            if let Some(d) = self.devices.get_mut(&key) {
                if let Some(link) = d.link.take() {
                    // Silence a misbehaving frontend at once, then release its rings.
                    for r in &link.rings {
                        events::mask(r.ring.port);
                    }
                    disconnect(link.rings);
                }
                let _ = d.machine.connect_failed(&mut XsStore, &why);
            }
        }
        // Detach requests waiting for their rings to fall quiet are looked at again.
        let waiting: Vec<_> = self
            .devices
            .iter()
            .filter(|(_, d)| d.detach_waits > 0)
            .map(|(k, _)| *k)
            .collect();
        for k in waiting {
            self.step(k);
            did = true;
        }
        did
    }

    /// The serve loop is about to halt until the next event (for the request profile).
    pub fn halting(&mut self) {
        self.profile.halting();
    }

    /// Starts or ends polling (`crate::pollwin`). While polling, every connected ring is
    /// looked at on each [`poll`](Self::poll) and the rings' ports are masked, so a guest's
    /// signal costs pvfs no upcall; when polling ends they are unmasked, and a signal that came
    /// meanwhile counts as fired (`events::unmask_quietly`), so nothing is missed.
    pub fn set_polling(&mut self, on: bool) {
        self.polling = on;
        for d in self.devices.values() {
            for r in d.link.iter().flat_map(|l| l.rings.iter()) {
                if on {
                    events::mask(r.ring.port);
                } else {
                    events::unmask_quietly(r.ring.port);
                }
            }
        }
    }

    /// Whether the volume's disk has posted requests (background write-back, readahead) still
    /// in flight: its backend in dom0 needs a physical CPU to finish them.
    pub fn disk_in_flight(&self) -> bool {
        self.fs
            .as_ref()
            .and_then(|fs| fs.with_device(|d| pvfs_fs::block::BlockDevice::posted(d) > 0))
            .unwrap_or(false)
    }

    /// Collects the disk's finished posted requests: returns the progress count (it moves
    /// when some finished) and whether nothing is in flight any more.
    fn disk_state(&mut self) -> (u64, bool) {
        let Some(fs) = &self.fs else {
            return (self.disk_progress, true);
        };
        let (moved, idle) = fs
            .with_device(|dev| {
                let moved = pvfs_fs::block::BlockDevice::reap(dev);
                (moved, pvfs_fs::block::BlockDevice::posted(dev) == 0)
            })
            .unwrap_or((false, true));
        self.note_reaped(moved);
        (self.disk_progress, idle)
    }

    /// Counts a reap of the disk that collected finished posted requests (see `disk_state`).
    fn note_reaped(&mut self, moved: bool) {
        if moved {
            self.disk_progress = self.disk_progress.wrapping_add(1);
        }
    }

    /// Disconnects every guest and gives back the volume's device, so it can be closed cleanly.
    pub fn shutdown(mut self) -> Option<Blkfront> {
        let keys: Vec<_> = self.devices.keys().copied().collect();
        for k in keys {
            if let Some(mut d) = self.devices.remove(&k) {
                if let Some(link) = d.link.take() {
                    disconnect(link.rings);
                }
                let _ = d
                    .machine
                    .connect_failed(&mut XsStore, "pvfs is shutting down");
            }
        }
        self.servers.clear();
        let fs = self.fs.take()?;
        let ext4 = matches!(*fs, VolumeFs::Ext4(_));
        match VolumeFs::close(fs)? {
            Ok(dev) => {
                let how = if ext4 { " and marked clean" } else { "" };
                log::info!("volume: written back{how}");
                Some(dev)
            }
            Err(e) if ext4 => {
                log::error!("volume: closing failed, the next mount needs e2fsck: {e}");
                None
            }
            Err(e) => {
                log::error!("volume: closing failed: {e}");
                None
            }
        }
    }

    /// Passes a watch event to the volume's block device if it is its token; true if it was.
    pub fn on_volume_event(&self, token: &str) -> bool {
        let Some(fs) = &self.fs else { return false };
        let event =
            fs.with_device(|dev| (dev.watch_token() == token).then(|| dev.on_backend_event()));
        match event.flatten() {
            None => false,
            Some(ev) => {
                self.volume_changed(ev);
                true
            }
        }
    }

    /// Acts on what the volume's disk did: gone, or grown (the volume grows into it; statfs
    /// reports the new size at once).
    fn volume_changed(&self, ev: BackendEvent) {
        let Some(fs) = &self.fs else { return };
        match ev {
            BackendEvent::Nothing => {}
            BackendEvent::Closed => {
                log::warn!("volume: its disk is gone; guests now get I/O errors")
            }
            BackendEvent::Grew(bytes) => match pvfs_9p::Filesystem::grow(&**fs, bytes) {
                Ok(size) => {
                    log::info!(
                        "volume: grown to {} MiB on a disk of {} MiB",
                        size >> 20,
                        bytes >> 20
                    );
                    // `data/pvfs/volume` (next to `backend/9pfs`) describes the new size.
                    if let Some(desc) = crate::volume::describe_volume(fs) {
                        let dom = self.base.trim_end_matches("backend/9pfs");
                        let _ = crate::xen::store::write(&format!("{dom}data/pvfs/volume"), &desc);
                    }
                }
                Err(_) if matches!(**fs, VolumeFs::Fat(_)) => log::warn!(
                    "volume: the disk grew to {} MiB, but FAT volumes cannot grow online; it keeps its size",
                    bytes >> 20
                ),
                Err(e) => log::warn!(
                    "volume: the disk grew to {} MiB but the volume did not (errno {}); it keeps its size",
                    bytes >> 20,
                    e.0
                ),
            },
        }
    }

    /// The block cache's memory (buffers and bookkeeping) and its buffers' capacity, in bytes
    /// (both 0 without a volume).
    pub fn cache_bytes(&self) -> (usize, usize) {
        self.fs.as_ref().map_or((0, 0), |fs| fs.cache_bytes())
    }

    /// Looks at everything the watches cover, for when xenstore watch events were dropped
    /// (`store::take_watch_overflow`): the volume's disk backend, every device's state,
    /// quota and policy keys, and devices that came or went.
    pub fn resync(&mut self) {
        if let Some(fs) = &self.fs {
            if let Some(ev) = fs.with_device(|d| d.on_backend_event()) {
                self.volume_changed(ev);
            }
        }
        let keys: Vec<_> = self.devices.keys().copied().collect();
        for k in keys {
            self.reload_quota(k);
            self.reload_policy(k);
            self.reload_rates(k);
        }
        self.rescan();
    }

    /// Runs `f` on the volume's ext4 engine (`None` without a volume, once it is closed, or
    /// on a FAT volume).
    pub fn with_volume<R>(
        &self,
        f: impl FnOnce(&mut pvfs_fs::ext4::Ext4<Blkfront>) -> R,
    ) -> Option<R> {
        match self.fs.as_deref()? {
            VolumeFs::Ext4(fs) => fs.with_engine(f),
            VolumeFs::Fat(_) => None,
        }
    }

    /// Why the volume cannot be deduplicated, if it cannot: pvfs serves none, or a FAT one
    /// (FAT has no shared contents).
    pub fn dedup_unavailable(&self) -> Option<&'static str> {
        match self.fs.as_deref() {
            None => Some("pvfs serves no volume"),
            Some(VolumeFs::Fat(_)) => Some("the volume is FAT; dedup needs ext4"),
            Some(VolumeFs::Ext4(_)) => None,
        }
    }

    /// Whether the volume holds changes not written back yet.
    pub fn volume_dirty(&self) -> bool {
        self.fs.as_ref().is_some_and(|fs| fs.is_dirty())
    }

    /// Sets the amount of dirty file data (KiB) from which background write-back starts
    /// (`pvfs.writeback_kib`); 0 leaves file data to fsync, the periodic commit and a full
    /// cache.
    pub fn set_write_back_threshold(&mut self, kib: u32) {
        self.write_back_kib = kib;
    }

    /// Whether Twrites that can only fail with a disk error are answered before they run
    /// (`pvfs.early_writes`; applies to rings connected from now on).
    pub fn set_early_writes(&mut self, on: bool) {
        self.early_writes = on;
    }

    /// Background write-back, for when no request is waiting: collects finished disk writes
    /// and, once the dirty file data reaches the threshold (`pvfs.writeback_kib`), starts
    /// writing it (as much as the disk's queue takes) without waiting, so a later `fsync`
    /// or commit finds it written. Returns true if it started any.
    pub fn write_back_step(&mut self) -> bool {
        let Some(fs) = &self.fs else { return false };
        let kib = self.write_back_kib;
        let moved = fs
            .with_device(pvfs_fs::block::BlockDevice::reap)
            .unwrap_or(false);
        let n = match kib {
            0 => 0,
            kib => match fs.start_write_back(kib, WRITE_BACK_MAX_BLOCKS) {
                Ok(n) => n,
                Err(err) => {
                    log::error!("volume: background write-back failed: {err}");
                    0
                }
            },
        };
        self.note_reaped(moved);
        self.counters.early_blocks += n as u64;
        n > 0
    }

    /// Writes the volume's changes back (the periodic commit).
    pub fn commit_volume(&mut self) {
        if let Some(fs) = &self.fs {
            self.counters.periodic_commits += 1;
            let t = crate::xen::time::now_ns();
            if let Err(e) = pvfs_9p::Filesystem::sync(&**fs) {
                log::error!("volume: periodic write-back failed: errno {}", e.0);
            }
            let c = &mut self.counters;
            Counters::add_ns(&mut c.commit_ns, &mut c.commit_ms, t);
        }
    }

    /// Connected devices.
    pub fn connected(&self) -> usize {
        self.devices.values().filter(|d| d.link.is_some()).count()
    }
}

/// Blocks examined per background write-back step (the disk's queue takes at most 2 MiB).
const WRITE_BACK_MAX_BLOCKS: usize = 1024;

/// Wall-clock time for inode timestamps.
pub(crate) fn wall_clock() -> pvfs_9p::fs::Timespec {
    let (sec, nsec) = crate::xen::time::wall_clock();
    pvfs_9p::fs::Timespec { sec, nsec }
}

/// `pvfs.trace9p`: log every message taken off a ring and every reply written (`9p>`/`9p<`).
pub static TRACE_9P: AtomicBool = AtomicBool::new(false);
