//! The boot sequence and the service loop.

use crate::{arch, console, heap, kprint, power, xen};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use pvfs_kernel::cmdline::{self, Fault, LogLevel, Options};
use pvfs_kernel::frames::FrameAllocator;
use pvfs_kernel::memmap::{self, Range};
use pvfs_kernel::startinfo::{self, MemType, PhysRead, StartInfo};

/// Version banner; the test bed looks for lines starting with `pvfs`.
pub const BANNER: &str = concat!("pvfs ", env!("CARGO_PKG_VERSION"));

extern "C" {
    static __kernel_start: u8;
    static __kernel_end: u8;
}

/// Reads identity-mapped physical memory below 4 GiB.
struct Identity;

impl PhysRead for Identity {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> bool {
        let Some(end) = paddr.checked_add(buf.len() as u64) else {
            return false;
        };
        if paddr == 0 || end > (1 << 32) {
            return false;
        }
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: the boot page tables identity-map all of [0, 4 GiB), checked above. The
            // start-info block and what it points to are plain RAM written by the loader.
            *b = unsafe { core::ptr::read_volatile((paddr as usize + i) as *const u8) };
        }
        true
    }
}

fn kernel_range() -> Range {
    let (s, e) = (
        core::ptr::addr_of!(__kernel_start) as u64,
        core::ptr::addr_of!(__kernel_end) as u64,
    );
    Range { start: s, end: e }
}

/// Everything after `boot/`.
pub fn main(start_info_paddr: u64) -> ! {
    crate::stack::paint();
    arch::gdt::init();
    arch::idt::init();
    let guards = arch::paging::install_guards();
    let detected = xen::detect();
    if detected.is_none() {
        console::init_com1();
    }
    let si = match startinfo::read(&Identity, start_info_paddr) {
        Ok(si) => si,
        Err(e) => {
            kprint!("pvfs: cannot read hvm_start_info at {start_info_paddr:#x}: {e:?}\n");
            power::crash();
        }
    };
    let line = core::str::from_utf8(&si.cmdline).unwrap_or("");
    let (opts, warnings) = cmdline::parse(line);
    console::init_log(match opts.log {
        LogLevel::Error => 1,
        LogLevel::Warn => 2,
        LogLevel::Info => 3,
        LogLevel::Debug => 4,
        LogLevel::Trace => 5,
    });
    match &detected {
        Some(d) => kprint!(
            "{BANNER}: booting as a PVH domain on Xen {}.{}\n",
            d.major,
            d.minor
        ),
        None => kprint!("{BANNER}: booting as a PVH guest without Xen (plain QEMU)\n"),
    }
    log::info!("command line: {line:?}");
    match guards {
        Ok(()) => {
            for s in arch::paging::stacks() {
                log::info!(
                    "stack: {} of {} KiB, guard page at {:#x}",
                    s.name,
                    s.size >> 10,
                    s.guard
                );
            }
        }
        Err(e) => log::warn!("stacks: no guard pages ({e:?}); an overflow would go unnoticed"),
    }
    for w in &warnings {
        log::warn!("command line: ignored {w:?}");
    }

    let heap_bytes = init_memory(&si, &opts);
    log::info!("heap: {} MiB", heap_bytes >> 20);

    match detected {
        Some(d) => {
            xen::init_hypercalls(&d);
            match xen::tsc_info(&d) {
                Some(t) if t.emulated => log::warn!(
                    "clock: Xen emulates the TSC for this domain (tsc_mode {}): every clock \
                     read traps into Xen, which slows every request; set tsc_mode = \"native\" \
                     in the domain's config (pvfs-stubdom.cfg does)",
                    t.mode
                ),
                Some(t) => log::info!("clock: native TSC, {} kHz (tsc_mode {})", t.khz, t.mode),
                None => {}
            }
            let platform = match init_xen(&si) {
                Ok(p) => p,
                Err(e) => {
                    log::error!("xen platform setup failed: {e}");
                    power::crash();
                }
            };
            maybe_fault(&opts);
            serve(platform, &opts)
        }
        None => {
            maybe_fault(&opts);
            match selftest(&si, &opts) {
                Ok(()) => {
                    log::info!("selftest PASS");
                    power::poweroff()
                }
                Err(e) => {
                    log::error!("selftest FAIL: {e}");
                    power::crash()
                }
            }
        }
    }
}

fn init_memory(si: &StartInfo, opts: &Options) -> u64 {
    for e in &si.memmap {
        log::debug!(
            "memmap: {:#012x}-{:#012x} {:?}",
            e.addr,
            e.addr.saturating_add(e.size),
            e.kind
        );
    }
    let mut used_fixed: heapless::Vec<Range, 16> = heapless::Vec::new();
    let _ = used_fixed.push(Range {
        start: 0,
        end: 0x10_0000,
    });
    let _ = used_fixed.push(kernel_range());
    for m in &si.modules {
        let _ = used_fixed.push(Range::from_len(m.paddr, m.size));
    }
    for &(a, l) in &si.own_ranges {
        let _ = used_fixed.push(Range::from_len(a, l));
    }
    let map: heapless::Vec<startinfo::MemEntry, { startinfo::MAX_MEMMAP }> = if si.memmap.is_empty()
    {
        // Version-0 start info has no memory map; assume 64 MiB, the smallest sensible size.
        let mut v = heapless::Vec::new();
        let _ = v.push(startinfo::MemEntry {
            addr: 0,
            size: 64 << 20,
            kind: MemType::Ram,
        });
        v
    } else {
        si.memmap.clone()
    };
    let (free, dropped) = memmap::carve(&map, &used_fixed);
    if dropped {
        kprint!("pvfs: memory map has more free ranges than kept; small ones are unused\n");
    }
    heap::init(&free, u64::from(opts.heap_mib) << 20)
}

/// Xen platform state kept for the service loop.
struct Platform {
    domid: u32,
    name: String,
}

#[derive(Debug)]
struct SetupError(String);

impl core::fmt::Display for SetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(&self.0)
    }
}

fn init_xen(si: &StartInfo) -> Result<Platform, SetupError> {
    // Xen frames (shared_info, grant-table frames, foreign mappings) go into a window of
    // frames that no RAM backs, so no RAM page is lost. 1 GiB holds 262k mappings, the
    // maptrack limit; fall back to smaller windows on a crowded memory map.
    let window = [1u64 << 30, 256 << 20, 16 << 20]
        .iter()
        .find_map(|&size| memmap::unbacked_window(&si.memmap, size, 16 << 20, 0xF000_0000))
        .ok_or_else(|| SetupError("no unbacked guest-physical window below 3.75 GiB".into()))?;
    log::info!(
        "xen frame window at {:#x}-{:#x} ({} MiB)",
        window.start,
        window.end,
        window.len() >> 20
    );
    let mut frames = FrameAllocator::new(window.start >> 12, window.end >> 12);
    let si_pfn = frames
        .alloc_contiguous(1)
        .ok_or_else(|| SetupError("frame window is empty".into()))?;
    xen::events::init(si_pfn)
        .map_err(|e| SetupError(format!("shared_info/upcall setup: {e:?}")))?;
    arch::enable_interrupts();
    let gs = xen::gnttab::init(frames, 32)
        .map_err(|e| SetupError(format!("grant table setup: {e:?}")))?;
    log::info!("grant table: {} entries", gs.capacity);

    let con_pfn = xen::hvm_get_param(xen::HvmParam::ConsolePfn);
    let con_port = xen::hvm_get_param(xen::HvmParam::ConsoleEvtchn);
    match (con_pfn, con_port) {
        (Ok(pfn), Ok(port)) if pfn != 0 => {
            if xen::console::init(pfn, port as u32) {
                log::info!("PV console connected (pfn {pfn:#x}, port {port})");
            }
        }
        _ => log::warn!("no PV console; output goes to the hypervisor log only"),
    }

    let st_pfn = xen::hvm_get_param(xen::HvmParam::StorePfn)
        .map_err(|e| SetupError(format!("HVM_PARAM_STORE_PFN: {e:?}")))?;
    let st_port = xen::hvm_get_param(xen::HvmParam::StoreEvtchn)
        .map_err(|e| SetupError(format!("HVM_PARAM_STORE_EVTCHN: {e:?}")))?;
    if st_pfn == 0 {
        return Err(SetupError(
            "no xenstore page (HVM_PARAM_STORE_PFN = 0)".into(),
        ));
    }
    xen::store::init(st_pfn, st_port as u32)
        .map_err(|e| SetupError(format!("xenstore ring: {e:?}")))?;
    let domid: u32 = xen::store::read("domid")
        .map_err(|e| SetupError(format!("xenstore read domid: {e:?}")))?
        .trim()
        .parse()
        .map_err(|_| SetupError("xenstore domid is not a number".into()))?;
    let name = xen::store::read("name").unwrap_or_else(|_| String::from("?"));
    log::info!("xenstore connected: domid {domid}, name {name:?}");
    Ok(Platform { domid, name })
}

/// Exercises the grant table once at boot: grant a page, copy through Xen, end access.
fn grant_selfcheck(domid: u16) -> Result<(), String> {
    let mut page = alloc::vec![0u8; 8192];
    // A 4 KiB-aligned page inside the 8 KiB buffer (identity-mapped: address = frame << 12).
    let base = page.as_ptr() as u64;
    let aligned = (base + 4095) & !4095;
    let off = (aligned - base) as usize;
    let src = page.get_mut(off..off + 4096).ok_or("page slice")?;
    src[..5].copy_from_slice(b"grant");
    let mut dst = alloc::vec![0u8; 8192];
    // A mutable pointer escapes to Xen, which writes through it.
    let dst_ptr = dst.as_mut_ptr();
    let dbase = dst_ptr as u64;
    let daligned = (dbase + 4095) & !4095;
    // Granted to ourselves, so the copy below goes through the grant (foreign) path.
    let r = xen::gnttab::grant(domid, aligned >> 12, true).map_err(|e| format!("grant: {e:?}"))?;
    xen::gnttab::copy(
        xen::gnttab::CopyPtr::Foreign {
            domid,
            gref: r,
            offset: 0,
        },
        xen::gnttab::CopyPtr::Local {
            pfn: daligned >> 12,
            offset: 16,
        },
        5,
    )
    .map_err(|e| format!("grant copy: {e:?}"))?;
    let doff = (daligned - dbase) as usize + 16;
    if dst.get(doff..doff + 5) != Some(b"grant".as_slice()) {
        return Err("grant copy did not copy".into());
    }
    xen::gnttab::end_access(r).map_err(|e| format!("end access: {e:?}"))?;
    if xen::gnttab::stats().granted != 0 {
        return Err(format!("grant leak: {:?}", xen::gnttab::stats()));
    }
    drop(page);
    Ok(())
}

fn serve(p: Platform, opts: &Options) -> ! {
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
    let stats_key = format!("{base}/stats");
    let stack_key = format!("{base}/stack");
    let mut last_stats = None;
    // Changes guests make without fsync are written back at most COMMIT_INTERVAL_NS after
    // the first of them, like ext4's default commit interval.
    let timer = xen::events::bind_virq(xen::events::VIRQ_TIMER);
    if let Err(e) = timer {
        log::warn!("no timer event ({e:?}): changes are written back only on fsync and shutdown");
    }
    let mut dirty_since: Option<u64> = None;
    // Counters are published at most every STATS_INTERVAL_NS: a xenstore write is a round
    // trip through dom0's xenstored, which must not sit between a guest's requests.
    let mut stats_due: Option<u64> = None;
    let mut last_publish: u64 = 0;
    let mut armed: Option<u64> = None;
    let mut stack_warned = false;
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
                        // Guests are disconnected and the volume is written back and marked
                        // clean before the disk is closed.
                        if let Some(dev) = service.shutdown() {
                            // Give the disk's backend up to a second to let go of our pages;
                            // without a timer event, do not wait at all.
                            let deadline = xen::time::now_ns().saturating_add(CLOSE_WAIT_NS);
                            let armed = timer.is_ok() && xen::set_timer(deadline).is_ok();
                            dev.close(armed.then_some(deadline));
                        }
                        power::poweroff();
                    }
                }
                // The data disk's backend state (token: its device path).
                t if service.on_volume_event(t) => {}
                // The 9pfs subtree watch, @releaseDomain, and per-device frontend watches
                // (whose token is the device's backend path).
                _ => service.on_watch(&ev.path),
            }
        }
        xen::events::dispatch();
        let busy = service.poll();
        if busy {
            if poll_window.busy(xen::time::now_ns()) {
                service.set_polling(true);
            }
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
        // Publish counters when they change, so tests and operators can watch for leaks. Only
        // counter changes trigger a write (heap figures ride along): a write's own reply wakes
        // this loop, so writing on every heap wobble would never go idle.
        let gs = xen::gnttab::stats();
        let c = service.counters;
        let change_key = (gs, c, service.connected());
        if Some(change_key) != last_stats {
            let due = last_publish.saturating_add(STATS_INTERVAL_NS);
            if timer.is_err() || now.saturating_add(TIMER_SLOP_NS) >= due {
                let hs = heap::stats();
                let stack = crate::stack::peak_used();
                if stack > crate::stack::SIZE / 4 * 3 && !stack_warned {
                    log::warn!(
                        "stack: {stack} of {} bytes used at the deepest point so far",
                        crate::stack::SIZE
                    );
                    stack_warned = true;
                }
                let stats = format!(
                    "heap_live_bytes={} heap_live_allocs={} heap_peak_bytes={} grants_granted={} grants_mapped={} window_free_frames={} devices_connected={} connects={} disconnects={} requests={} violations={} busy_ms={} reads={} read_ms={} writes={} write_ms={} early_blocks={} deferred_reads={} early_writes={} late_write_errors={} held_ms={} turnarounds={} turnaround_ms={} take_ms={} reply_ms={} notify_ms={} hypercalls={} upcalls={} stack_peak_bytes={}",
                    hs.live_bytes, hs.live_allocs, hs.peak_bytes, gs.granted, gs.mapped, xen::gnttab::window_free_frames(),
                    service.connected(), c.connects, c.disconnects, c.requests, c.violations, c.busy_ms,
                    c.reads, c.read_ms, c.writes, c.write_ms, c.early_blocks, c.deferred_reads, c.early_writes, c.late_write_errors, c.held_ms, c.turnarounds, c.turnaround_ms, c.take_ms, c.reply_ms, c.notify_ms, xen::hypercall_count(),
                    xen::events::upcall_count(), stack
                );
                let _ = xen::store::write(&stats_key, &stats);
                if last_stats.is_none_or(|(_, old, _)| old.stack_updates != c.stack_updates) {
                    let kinds = service.stack_peaks.render();
                    let _ = xen::store::write(
                        &stack_key,
                        &format!("peak={stack} size={} {kinds}", crate::stack::SIZE),
                    );
                }
                last_stats = Some(change_key);
                last_publish = xen::time::now_ns();
                stats_due = None;
            } else {
                stats_due = Some(due);
            }
        }
        let mut commit_due = None;
        if timer.is_ok() && service.volume_dirty() {
            let since = *dirty_since.get_or_insert(now);
            let due = since.saturating_add(COMMIT_INTERVAL_NS);
            if now.saturating_add(TIMER_SLOP_NS) >= due {
                service.commit_volume();
                dirty_since = None;
                continue;
            }
            commit_due = Some(due);
        } else {
            dirty_since = None;
        }
        if timer.is_ok() {
            let next = match (stats_due, commit_due) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
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

/// How long a clean shutdown waits for the disk's backend to answer Closing.
const CLOSE_WAIT_NS: u64 = 1_000_000_000;

/// How often at most the counters in `data/pvfs/stats` are rewritten while they change.
const STATS_INTERVAL_NS: u64 = 1_000_000_000;

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

#[inline(never)]
fn maybe_fault(opts: &Options) {
    let Some(f) = opts.fault else { return };
    log::warn!("raising {f:?} on request (pvfs.fault)");
    match f {
        // SAFETY: deliberately raises #UD to exercise the exception path.
        Fault::InvalidOpcode => unsafe { core::arch::asm!("ud2") },
        Fault::GeneralProtection => {
            // SAFETY: a load from a non-canonical address raises #GP before touching memory.
            let v = unsafe { core::ptr::read_volatile(0x8000_0000_0000_0000u64 as *const u64) };
            log::error!("non-canonical load returned {v}");
        }
        Fault::PageFault => {
            // SAFETY: 64 GiB is outside the identity map, so the write raises #PF.
            unsafe { core::ptr::write_volatile((64u64 << 30) as *mut u64, 1) };
        }
        // SAFETY: `div` by a zero register raises #DE; the registers are declared clobbered.
        Fault::DivideError => unsafe {
            core::arch::asm!("xor edx, edx", "xor ecx, ecx", "mov eax, 1", "div ecx", out("eax") _, out("ecx") _, out("edx") _)
        },
        Fault::Panic => panic!("panic requested with pvfs.fault=panic"),
        Fault::StackOverflow => {
            let depth = recurse(0);
            log::error!("recursion returned at depth {depth}");
        }
    }
    log::error!("requested fault {f:?} did not trap");
    power::crash();
}

/// Recurses without bound, 1 KiB of stack a level (`pvfs.fault=stack`).
#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = core::hint::black_box([depth; 128]);
    if core::hint::black_box(depth) == u64::MAX {
        return frame[0];
    }
    recurse(depth + 1).wrapping_add(core::hint::black_box(frame[127]))
}

/// The plain-QEMU self-test: memory map, heap, modules.
fn selftest(si: &StartInfo, opts: &Options) -> Result<(), String> {
    let ram: u64 = si
        .memmap
        .iter()
        .filter(|e| e.kind == MemType::Ram)
        .map(|e| e.size)
        .sum();
    log::info!(
        "selftest: memory map has {} entries, {} MiB RAM",
        si.memmap.len(),
        ram >> 20
    );
    if si.memmap.is_empty() || ram < (16 << 20) {
        return Err(format!(
            "implausible memory map ({} entries, {ram} bytes of RAM)",
            si.memmap.len()
        ));
    }

    let before = heap::stats();
    {
        let mut boxes: Vec<Vec<u8>> = Vec::new();
        for i in 0..512usize {
            let n = 1 + (i * 7919) % 8192;
            boxes.push(alloc::vec![(i % 251) as u8; n]);
        }
        let big: Vec<u64> = (0..(1u64 << 19)).collect(); // 4 MiB
        if big.iter().enumerate().any(|(i, &v)| v != i as u64) {
            return Err("heap: 4 MiB vector readback mismatch".into());
        }
        for (i, b) in boxes.iter().enumerate() {
            if b.iter().any(|&x| x != (i % 251) as u8) {
                return Err(format!("heap: allocation {i} corrupted"));
            }
        }
        let during = heap::stats();
        if during.live_bytes < before.live_bytes + (4 << 20) {
            return Err(format!("heap: bookkeeping missed allocations ({during:?})"));
        }
    }
    let after = heap::stats();
    if after.live_bytes != before.live_bytes || after.live_allocs != before.live_allocs {
        return Err(format!(
            "heap: leak after free: before {before:?} after {after:?}"
        ));
    }
    log::info!(
        "selftest: heap ok (peak {} KiB, {} allocations)",
        after.peak_bytes >> 10,
        after.total_allocs
    );

    log::info!("selftest: {} module(s)", si.modules.len());
    for (i, m) in si.modules.iter().enumerate() {
        let crc32c = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
        let mut digest = crc32c.digest();
        let mut off = 0u64;
        let mut buf = alloc::vec![0u8; 64 * 1024];
        while off < m.size {
            let n = (m.size - off).min(buf.len() as u64) as usize;
            let chunk = buf.get_mut(..n).ok_or("module chunk")?;
            if !Identity.read(m.paddr + off, chunk) {
                return Err(format!(
                    "module {i} at {:#x} (+{off}) is not readable",
                    m.paddr
                ));
            }
            digest.update(chunk);
            off += n as u64;
        }
        let crc = digest.finalize();
        log::info!(
            "selftest: module {i}: paddr={:#x} size={} crc32c={crc:#010x}",
            m.paddr,
            m.size
        );
    }
    if let Some(m) = si.modules.first() {
        selftest_ext4_module(m, opts)?;
    }
    Ok(())
}

/// Mounts module 0 as ext4 (read-only, straight from memory) and checksums the file named by
/// `pvfs.selftest.file`. A module that is not ext4 is only reported.
fn selftest_ext4_module(m: &startinfo::Module, opts: &Options) -> Result<(), String> {
    let len = usize::try_from(m.size).map_err(|_| "module too large")?;
    let end = m
        .paddr
        .checked_add(m.size)
        .ok_or("module range overflows")?;
    if m.paddr == 0 || end > (1 << 32) {
        return Err(format!(
            "module at {:#x}+{} is outside the identity map",
            m.paddr, m.size
        ));
    }
    // SAFETY: the module lies inside the identity-mapped first 4 GiB (checked above), was
    // placed there by the loader, and is carved out of the heap (`init_memory`), so nothing
    // else writes it; the slice is only read.
    let bytes: &'static [u8] =
        unsafe { core::slice::from_raw_parts(m.paddr as usize as *const u8, len) };
    let disk = pvfs_fs::block::MemDisk::borrowed(bytes);
    let mut fs = match pvfs_fs::ext4::Ext4::open(disk) {
        Ok(fs) => fs,
        Err(e) => {
            if opts.selftest_file.is_some() {
                return Err(format!("module 0 is not a usable ext4 image: {e}"));
            }
            log::info!("selftest: module 0 is not ext4 ({e}); skipping the file-system check");
            return Ok(());
        }
    };
    log::info!(
        "selftest: module 0 is ext4: {}",
        crate::volume::describe(&fs)
    );
    if let Some(path) = &opts.selftest_file {
        let ino = fs
            .lookup_path(path.as_bytes())
            .map_err(|e| format!("{path}: {e}"))?;
        let (sum, size) =
            crate::volume::checksum(&mut fs, ino).map_err(|e| format!("{path}: {e}"))?;
        log::info!("selftest: file {path} sha256={sum} size={size}");
    }
    Ok(())
}

/// The mounted data volume.
type Volume = pvfs_fs::ext4::Ext4<crate::blkfront::Blkfront>;

/// Connects the first virtual block device and mounts ext4 from it; publishes
/// `data/pvfs/volume`. Without a disk pvfs still runs (and says so).
fn mount_volume(p: &Platform, opts: &Options) -> Option<Volume> {
    let key = format!("/local/domain/{}/data/pvfs/volume", p.domid);
    let ids = crate::blkfront::discover();
    let Some(&devid) = ids.first() else {
        log::warn!("no virtual block device: add disk=[...] to pvfs-stubdom.cfg to serve a volume");
        let _ = xen::store::write(&key, "none");
        return None;
    };
    let dev = match crate::blkfront::Blkfront::connect(devid) {
        Ok(d) => d,
        Err(e) => {
            log::error!("vbd {devid}: {}", e.0);
            let _ = xen::store::write(&key, &format!("error: vbd {devid}: {}", e.0));
            return None;
        }
    };
    let mut dev = dev;
    if opts.blkbench_mib > 0 {
        blkbench(&mut dev, opts.blkbench_mib);
    }
    let mut fs = match open_volume(dev, opts) {
        Ok(fs) => fs,
        Err(e) => {
            log::error!("vbd {devid}: cannot mount ext4: {e}");
            let _ = xen::store::write(&key, &format!("error: vbd {devid}: {e}"));
            return None;
        }
    };
    let desc = crate::volume::describe(&fs);
    log::info!("volume: vbd {devid}: {desc}");
    let _ = xen::store::write(&key, &desc);
    if let Some(dir) = &opts.checksum_dir {
        match crate::volume::checksum_tree(&mut fs, dir, 4096) {
            Ok(list) => {
                for (path, sum, size) in &list {
                    kprint!("pvfs: checksum {sum} {size} {path}\n");
                }
                kprint!("pvfs: checksums done: {} files under {dir}\n", list.len());
            }
            Err(e) => kprint!("pvfs: checksums failed: {e}\n"),
        }
    }
    Some(fs)
}

/// Mounts the volume read-write unless `pvfs.ro` is given, the disk is read-only, or the
/// engine refuses (a feature it cannot maintain, a file system that needs e2fsck): then
/// read-only, with the reason logged.
fn open_volume(
    dev: crate::blkfront::Blkfront,
    opts: &Options,
) -> Result<Volume, pvfs_fs::ext4::Error> {
    use pvfs_fs::block::BlockDevice;
    if opts.read_only || dev.read_only() {
        log::info!(
            "volume: mounting read-only ({})",
            if opts.read_only {
                "pvfs.ro"
            } else {
                "the disk is read-only"
            }
        );
        return pvfs_fs::ext4::Ext4::open_with(dev, &engine_options(opts));
    }
    // A refused read-write mount would consume the device: ask the read-only mount first,
    // and keep it when the answer is no.
    let probe = pvfs_fs::ext4::Ext4::open(dev)?;
    if let Err(why) = probe.check_writable() {
        log::warn!("volume: mounting read-only: {why}");
        return Ok(probe);
    }
    let dev = probe.into_device();
    match pvfs_fs::ext4::Ext4::open_rw(dev, &engine_options(opts)) {
        Ok(mut fs) => {
            let (sec, nsec) = xen::time::wall_clock();
            fs.set_clock(pvfs_fs::ext4::Timestamp {
                sec: i64::try_from(sec).unwrap_or(i64::MAX),
                nsec,
            });
            log::info!("volume: mounted read-write");
            Ok(fs)
        }
        Err(e) => Err(e),
    }
}

/// Engine options for the volume: the block cache gets `pvfs.cache_mib`, or by default half
/// of the heap still free (the rest is for guests' fids, request and reply buffers). The
/// cache holds metadata and file data (written data until it is written back, and what was
/// read while there is room), so it is what lets guests re-read files at memory speed.
fn engine_options(opts: &Options) -> pvfs_fs::ext4::Options {
    let free = heap::total().saturating_sub(heap::stats().live_bytes as u64);
    let bytes = match opts.cache_mib {
        0 => free / 2,
        n => u64::from(n) << 20,
    };
    let bytes = usize::try_from(bytes)
        .unwrap_or(usize::MAX)
        .max(pvfs_fs::ext4::DEFAULT_CACHE_BYTES);
    log::info!("volume: block cache {} MiB", bytes >> 20);
    pvfs_fs::ext4::Options { cache_bytes: bytes }
}

/// Raw sequential read through blkfront, 1 MiB per request, several requests per batch.
fn blkbench(dev: &mut crate::blkfront::Blkfront, mib: u32) {
    use pvfs_fs::block::{BlockDevice, Request};
    let total = (u64::from(mib) << 20).min(dev.size_bytes());
    let ss = u64::from(dev.sector_size());
    let mut bufs: Vec<Vec<u8>> = (0..4).map(|_| alloc::vec![0u8; 1 << 20]).collect();
    let t0 = xen::time::now_ns();
    let mut pos = 0u64;
    let crc32c = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut crc = crc32c.digest();
    while pos < total {
        let mut reqs: Vec<Request<'_>> = Vec::new();
        let mut at = pos;
        for b in bufs.iter_mut() {
            if at >= total {
                break;
            }
            let n = (total - at).min(1 << 20) as usize;
            let (head, _) = b.split_at_mut(n);
            reqs.push(Request::Read {
                lba: at / ss,
                buf: head,
            });
            at += n as u64;
        }
        if let Err(e) = dev.submit(&mut reqs) {
            log::error!("blkbench: read at {pos}: {e}");
            return;
        }
        for r in &reqs {
            if let Request::Read { buf, .. } = r {
                crc.update(buf);
            }
        }
        pos = at;
    }
    let ns = xen::time::now_ns().saturating_sub(t0).max(1);
    let mibps = (total as f64 / (1u64 << 20) as f64) / (ns as f64 / 1e9);
    kprint!(
        "pvfs: blkbench read {} MiB in {:.3} s = {mibps:.1} MiB/s ({} requests completed, crc32c={:#010x})\n",
        total >> 20,
        ns as f64 / 1e9,
        dev.completed,
        crc.finalize()
    );
}
