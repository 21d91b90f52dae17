//! The exit storm (`pvfs.exitstorm=SECS`): a test of the platform pvfs runs on, not of pvfs.
//! For SECS seconds pvfs alternates two kinds of rounds, with interrupts on:
//! - it signals an event channel bound to its own vCPU, so every `EVTCHNOP_send` exits to
//!   Xen and returns with an upcall for Xen to inject;
//! - it arms Xen's one-shot timer a few microseconds ahead and halts (`sti; hlt`), so Xen
//!   deschedules the vCPU and resumes it from the timer with the upcall to inject.
//!
//! Between two signals it writes a byte of a random page of a large buffer, so that the
//! emulator's TLB keeps missing and walking pvfs's page tables, as serving a guest from a
//! large block cache does.
//!
//! Those are the moments at which pvfs's triple faults under the emulated test bed were seen
//! (right after a hypercall, a `hlt` or a port write). The code between them is a handful of
//! instructions and the CPU tables are checked after every round, so a fault here is the
//! platform's.

use crate::arch;
use crate::xen::{events, time};

/// Signals per round, between two checks of the CPU tables.
const ROUND: u64 = 1024;
/// Timer halts per round.
const HALTS: u64 = 64;
/// How far ahead each halt's timer is armed.
const HALT_NS: u64 = 20_000;
/// The buffer whose pages are touched between signals.
const TOUCH_BYTES: usize = 96 << 20;

pub(super) fn run(secs: u32) {
    let port = match events::bind_ipi() {
        Ok(p) => p,
        Err(e) => {
            log::error!("exit storm: cannot bind an event channel to our own vCPU: {e:?}");
            return;
        }
    };
    let timer = match events::bind_virq(events::VIRQ_TIMER) {
        Ok(p) => p,
        Err(e) => {
            log::error!("exit storm: cannot bind VIRQ_TIMER: {e:?}");
            let _ = events::close(port);
            return;
        }
    };
    arch::enable_interrupts();
    let start = time::now_ns();
    let end = start.saturating_add(u64::from(secs) * 1_000_000_000);
    let upcalls0 = events::upcall_count();
    let mut touch = alloc::vec![0u8; TOUCH_BYTES];
    let pages = (TOUCH_BYTES / 4096) as u64;
    let mut seed = start | 1;
    log::info!(
        "exit storm: {secs} s of EVTCHNOP_send to our own port {port} and timer halts, interrupts on"
    );
    let mut sends = 0u64;
    let mut halts = 0u64;
    let mut failed = 0u64;
    let mut next_report = start.saturating_add(10_000_000_000);
    loop {
        for _ in 0..ROUND {
            if events::notify(port).is_err() {
                failed += 1;
            }
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            if let Some(b) = touch.get_mut(((seed >> 33) % pages) as usize * 4096) {
                *b = core::hint::black_box(b.wrapping_add(1));
            }
            let _ = events::take(port);
        }
        sends += ROUND;
        arch::integrity::check_or_stop();
        for _ in 0..HALTS {
            if crate::xen::set_timer(time::now_ns().saturating_add(HALT_NS)).is_ok() {
                events::wait(Some(timer));
                halts += 1;
            } else {
                failed += 1;
            }
        }
        let now = time::now_ns();
        if now >= end {
            break;
        }
        if now >= next_report {
            log::info!(
                "exit storm: {sends} sends, {halts} halts, {} upcalls, {} s",
                events::upcall_count() - upcalls0,
                (now - start) / 1_000_000_000
            );
            next_report = next_report.saturating_add(10_000_000_000);
        }
    }
    let upcalls = events::upcall_count() - upcalls0;
    let _ = events::close(port);
    let _ = events::close(timer);
    log::info!(
        "exit storm: done: {sends} sends, {halts} halts ({failed} refused), {upcalls} upcalls in {secs} s; CPU tables intact"
    );
}
