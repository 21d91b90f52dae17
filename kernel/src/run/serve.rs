//! The service loop of a Xen domain: the 9pfs devices, the data volume, status keys and
//! shutdown.

use super::boot::{grant_selfcheck, Platform, BANNER};
use super::publish::Publisher;
use super::volume::mount_volume;
use crate::{heap, kprint, power, xen};
use alloc::format;
use pvfs_kernel::cmdline::Options;
use pvfs_kernel::commitclock::{Commit, CommitClock};

pub(super) fn serve(p: Platform, opts: &Options) -> ! {
    RO_EXPORTS.call_once(|| opts.clone());
    match grant_selfcheck(p.domid as u16) {
        Ok(()) => log::info!("grant self-check ok"),
        Err(e) => log::error!("grant self-check failed: {e}"),
    }
    let base = format!("/local/domain/{}/data/pvfs", p.domid);
    let status = format!("{base}/status");
    let volume = mount_volume(&p, opts);
    if let Err(e) = publish_status(&base) {
        log::error!("cannot write {status}: {e:?}");
        power::crash();
    }
    let _ = xen::store::watch("control/shutdown", "shutdown");
    kprint!(
        "{BANNER}: ready (domain {} {:?}); status written to {status}\n",
        p.domid,
        p.name
    );
    let mut service = crate::p9back::Service::start(p.domid, volume, read_only_export);
    service.set_write_back_threshold(opts.writeback_kib);
    service.set_early_writes(opts.early_writes);
    crate::p9back::TRACE_9P.store(opts.trace9p, core::sync::atomic::Ordering::Relaxed);
    let mut publisher = Publisher::new(&base);
    let mut dedup = super::dedup::LiveDedup::new(&base);
    // Changes guests make without fsync are written back at most COMMIT_INTERVAL_NS after
    // the first of them, like ext4's default commit interval.
    let timer = xen::events::bind_virq(xen::events::VIRQ_TIMER);
    if let Err(e) = timer {
        log::warn!("no timer event ({e:?}): changes are written back only on fsync and shutdown");
    }
    let mut commit = CommitClock::new(COMMIT_INTERVAL_NS, TIMER_SLOP_NS);
    let mut armed: Option<u64> = None;
    let mut poll_window = pvfs_kernel::pollwin::PollWindow::new(u64::from(opts.poll_us) * 1000);
    match opts.poll_us {
        0 => log::info!("serve loop: halts as soon as there is no work (pvfs.poll_us=0)"),
        us => log::info!(
            "serve loop: polls the rings for {us} us after the last request before halting"
        ),
    }
    loop {
        while let Ok(Some(ev)) = xen::store::next_watch_event() {
            log::debug!("xenstore watch event {} (token {})", ev.path, ev.token);
            match ev.token.as_str() {
                "shutdown" => {
                    if shutdown_requested() {
                        shut_down(service, timer.is_ok());
                    }
                }
                super::dedup::TOKEN => dedup.on_request(service.dedup_unavailable()),
                // The data disk's backend state (token: its device path).
                t if service.on_volume_event(t) => {}
                // The 9pfs subtree watch, @releaseDomain, and per-device frontend watches
                // (whose token is the device's backend path).
                _ => service.on_watch(&ev.path),
            }
        }
        if xen::store::take_watch_overflow() {
            // Events were dropped: look at everything a watch covers.
            log::warn!("xenstore: watch events were dropped; rescanning every device");
            if shutdown_requested() {
                shut_down(service, timer.is_ok());
            }
            service.resync();
        }
        xen::events::dispatch();
        let busy = service.poll();
        if busy {
            let now = xen::time::now_ns();
            if poll_window.busy(now) {
                service.set_polling(true);
            }
            // A server that never idles still publishes its figures once a second, and still
            // writes back what guests changed without fsync once an interval.
            if publisher.due(now) {
                publisher.tick(&mut service, now, false);
            }
            if timer.is_ok() && commit.check(now, service.volume_dirty()) == Commit::Now {
                service.commit_volume();
            }
            continue;
        }
        // Idle: a live dedup's next step, while it runs (guests' requests went first).
        if dedup.running() {
            dedup.step(&service);
            continue;
        }
        // Idle: write file data back in the background; the disk's completions wake this
        // loop to start more.
        service.write_back_step();
        // Grants a backend still had mapped when we ended access: retry now.
        let _ = xen::gnttab::reclaim();
        let now = xen::time::now_ns();
        // The timer is single-shot: once it has fired (or its deadline passed), re-arm.
        let fired = timer.as_ref().is_ok_and(|&port| xen::events::take(port));
        if fired || armed.is_some_and(|t| now.saturating_add(TIMER_SLOP_NS) >= t) {
            armed = None;
        }
        // Counters and each device's figures, when they changed and at most once a second.
        let stats_due = publisher.tick(&mut service, now, timer.is_ok());
        let mut commit_due = None;
        if timer.is_ok() {
            match commit.check(now, service.volume_dirty()) {
                Commit::Now => {
                    service.commit_volume();
                    continue;
                }
                Commit::At(t) => commit_due = Some(t),
                Commit::Clean => {}
            }
        }
        if timer.is_ok() {
            // the earliest of: counters due, a commit due, a device held back by its rate
            // limits that may be served again
            let next = [stats_due, commit_due, service.throttle_due()]
                .into_iter()
                .flatten()
                .min();
            if let Some(t) = next {
                if armed != Some(t) && xen::set_timer(t).is_ok() {
                    armed = Some(t);
                }
            }
        }
        // While the disk has requests in flight, its backend (in dom0) needs a physical CPU
        // to finish them; spinning here would take one from it or from the guests, so the
        // loop halts and the disk's completion (or a guest's request) wakes it.
        if poll_window.keep_polling(xen::time::now_ns())
            && (opts.poll_disk || !service.disk_in_flight())
        {
            core::hint::spin_loop();
            continue;
        }
        if poll_window.stop() {
            service.set_polling(false);
        }
        service.halting();
        xen::events::wait(None);
    }
}

/// The toolstack asked for shutdown: guests are disconnected and the volume is written back
/// and marked clean before the disk is closed, then the domain powers off. With a timer event
/// (`timer`), the disk's backend gets up to [`CLOSE_WAIT_NS`] to let go of our pages; without
/// one, pvfs does not wait at all.
fn shut_down(service: crate::p9back::Service, timer: bool) -> ! {
    if let Some(dev) = service.shutdown() {
        let deadline = xen::time::now_ns().saturating_add(CLOSE_WAIT_NS);
        let armed = timer && xen::set_timer(deadline).is_ok();
        dev.close(armed.then_some(deadline));
    }
    power::poweroff();
}

/// How long a clean shutdown waits for the disk's backend to answer Closing.
const CLOSE_WAIT_NS: u64 = 1_000_000_000;

/// A timer may fire this much before its deadline (Xen's timer slop); deadlines this close
/// count as reached.
const TIMER_SLOP_NS: u64 = 1_000_000;

/// The longest a change stays only in pvfs's memory when no guest asks for fsync.
const COMMIT_INTERVAL_NS: u64 = 5_000_000_000;

/// `pvfs.ro_exports`, kept for the 9pfs service (the options live for the whole run).
static RO_EXPORTS: spin::Once<Options> = spin::Once::new();

fn read_only_export(path: &str) -> bool {
    RO_EXPORTS
        .get()
        .is_some_and(|o| o.export_is_read_only(path))
}

/// Publishes version, heap figures and `status = ready` in one xenstore transaction, so a
/// reader that sees `ready` also sees the rest.
fn publish_status(base: &str) -> Result<(), xen::store::XsError> {
    let mut attempt = 0;
    loop {
        let tx = xen::store::transaction_start()?;
        let hs = heap::stats();
        xen::store::write_in(tx, &format!("{base}/version"), env!("CARGO_PKG_VERSION"))?;
        xen::store::write_in(
            tx,
            &format!("{base}/stats"),
            &format!(
                "heap_live_bytes={} heap_peak_bytes={} upcalls={}",
                hs.live_bytes,
                hs.peak_bytes,
                xen::events::upcall_count()
            ),
        )?;
        xen::store::write_in(tx, &format!("{base}/status"), "ready")?;
        match xen::store::transaction_end(tx, true) {
            Err(xen::store::XsError::Wire(pvfs_ring::xenstore::WireError::Xs(e)))
                if e == "EAGAIN" && attempt < 8 =>
            {
                attempt += 1
            }
            r => return r,
        }
    }
}

/// Reads `control/shutdown`; true (after acknowledging it) for a power-off request.
fn shutdown_requested() -> bool {
    let Ok(req) = xen::store::read("control/shutdown") else {
        return false;
    };
    match req.trim() {
        "" => false,
        "poweroff" | "halt" | "reboot" => {
            let _ = xen::store::write("control/shutdown", "");
            log::info!(
                "shutdown requested by the toolstack ({req}); disconnecting guests and the volume"
            );
            true
        }
        other => {
            log::warn!("ignoring unsupported shutdown request {other:?}");
            false
        }
    }
}
