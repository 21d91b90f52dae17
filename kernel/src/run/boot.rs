//! From `boot/`'s hand-off to a running platform: exception tables, the command line, memory,
//! and the Xen interfaces the service needs.

use super::fault::maybe_fault;
use super::selftest::selftest;
use super::serve::serve;
use crate::{arch, console, heap, kprint, power, xen};
use alloc::format;
use alloc::string::String;
use pvfs_kernel::cmdline::{self, LogLevel, Options};
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
pub(super) struct Identity;

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
    let image = kernel_range();
    arch::integrity::init(image.start..image.end);

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
            if opts.exit_storm_secs > 0 {
                super::storm::run(opts.exit_storm_secs);
            }
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
pub(super) struct Platform {
    pub(super) domid: u32,
    pub(super) name: String,
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
pub(super) fn grant_selfcheck(domid: u16) -> Result<(), String> {
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
