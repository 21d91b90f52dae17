//! The Xen platform from inside a PVH domain: detection through CPUID, the hypercall page, and
//! thin typed wrappers around the hypercalls pvfs uses. Constants come from Xen's public
//! headers (`xen.h`, `sched.h`, `memory.h`, `hvm/params.h`, `hvm/hvm_op.h`, `event_channel.h`).

pub mod console;
pub mod events;
pub mod gnttab;
pub mod granted;
pub mod shinfo;
pub mod shmem;
pub mod store;
pub mod time;

use crate::arch;
use byteorder::{ByteOrder, LittleEndian};
use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static PRESENT: AtomicBool = AtomicBool::new(false);

/// True once the hypercall page is installed.
pub fn present() -> bool {
    PRESENT.load(Ordering::Acquire)
}

pub(crate) mod nr {
    pub const MEMORY_OP: usize = 12;
    pub const GRANT_TABLE_OP: usize = 20;
    pub const VCPU_OP: usize = 24;
    pub const SCHED_OP: usize = 29;
    pub const EVENT_CHANNEL_OP: usize = 32;
    pub const HVM_OP: usize = 34;
}

extern "C" {
    static __hypercall_page: u8;
}

/// A Xen error (negative errno from a hypercall).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XenError(pub i64);

fn check(rc: i64) -> Result<u64, XenError> {
    if rc < 0 {
        Err(XenError(rc))
    } else {
        Ok(rc as u64)
    }
}

/// Hypercalls issued so far (each is a world switch into Xen and back).
static HYPERCALLS: AtomicU64 = AtomicU64::new(0);

/// Hypercalls issued so far.
pub fn hypercall_count() -> u64 {
    HYPERCALLS.load(Ordering::Relaxed)
}

/// Issues hypercall `nr` with up to three arguments.
///
/// # Safety
/// The arguments must be what hypercall `nr` expects; pointer arguments must point to live,
/// correctly laid out structures that Xen may read and write.
pub(crate) unsafe fn hypercall3(nr: usize, a1: u64, a2: u64, a3: u64) -> i64 {
    HYPERCALLS.fetch_add(1, Ordering::Relaxed);
    let entry = core::ptr::addr_of!(__hypercall_page) as u64 + (nr as u64) * 32;
    let ret: i64;
    // SAFETY: the hypercall page was filled by Xen (see `init`); each 32-byte slot is a stub
    // that issues hypercall `nr` and returns. Argument registers are clobbered by Xen.
    unsafe {
        asm!(
            "call {entry}",
            entry = in(reg) entry,
            inlateout("rdi") a1 => _,
            inlateout("rsi") a2 => _,
            inlateout("rdx") a3 => _,
            lateout("rax") ret,
            lateout("rcx") _,
            lateout("r11") _,
            lateout("r8") _,
            lateout("r10") _,
        )
    };
    ret
}

/// What CPUID said about the hypervisor.
#[derive(Debug, Clone, Copy)]
pub struct Detected {
    /// CPUID base leaf (0x40000000 or a multiple of 0x100 above it).
    pub base: u32,
    /// Xen major version.
    pub major: u32,
    /// Xen minor version.
    pub minor: u32,
    /// Largest Xen CPUID leaf.
    pub max_leaf: u32,
}

/// How Xen presents the TSC to this domain (CPUID leaf base+3, subleaf 0).
#[derive(Debug, Clone, Copy)]
pub struct TscInfo {
    /// Xen emulates `rdtsc`: every clock read traps into the hypervisor.
    pub emulated: bool,
    /// The domain's `tsc_mode` (0 default, 1 always emulate, 2 native, 3 native + TSC_AUX).
    pub mode: u32,
    /// TSC frequency in kHz.
    pub khz: u32,
}

/// Reads [`TscInfo`]; `None` if Xen has no such leaf.
pub fn tsc_info(d: &Detected) -> Option<TscInfo> {
    if d.max_leaf < d.base + 3 {
        return None;
    }
    let r = arch::cpuid(d.base + 3, 0);
    Some(TscInfo {
        emulated: r.eax & 1 != 0,
        mode: r.ebx,
        khz: r.ecx,
    })
}

/// Looks for the "XenVMMXenVMM" signature in the hypervisor CPUID leaves.
pub fn detect() -> Option<Detected> {
    let mut base = 0x4000_0000u32;
    while base < 0x4001_0000 {
        let r = arch::cpuid(base, 0);
        let mut sig = [0u8; 12];
        LittleEndian::write_u32_into(&[r.ebx, r.ecx, r.edx], &mut sig);
        if &sig == b"XenVMMXenVMM" && r.eax >= base + 2 {
            let v = arch::cpuid(base + 1, 0).eax;
            return Some(Detected {
                base,
                major: v >> 16,
                minor: v & 0xFFFF,
                max_leaf: r.eax,
            });
        }
        base += 0x100;
    }
    None
}

/// Installs the hypercall page through the MSR named by CPUID leaf base+2.
pub fn init_hypercalls(d: &Detected) {
    let r = arch::cpuid(d.base + 2, 0);
    let page = core::ptr::addr_of!(__hypercall_page) as u64;
    // SAFETY: the MSR comes from Xen's own CPUID leaf, and the page is a 4 KiB, page-aligned
    // region of .text reserved for this purpose by the linker script (identity-mapped, so its
    // virtual address is its guest-physical address).
    unsafe { arch::wrmsr(r.ebx, page) };
    PRESENT.store(true, Ordering::Release);
}

/// Reasons for SCHEDOP_shutdown.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum ShutdownReason {
    /// Normal power-off.
    Poweroff = 0,
    /// The domain crashed.
    Crash = 3,
}

/// Shuts the domain down. Returns only if Xen refused.
pub fn shutdown(reason: ShutdownReason) {
    let arg: u32 = reason as u32;
    // SAFETY: SCHEDOP_shutdown (2) takes a pointer to `struct sched_shutdown { u32 reason }`.
    unsafe { hypercall3(nr::SCHED_OP, 2, core::ptr::addr_of!(arg) as u64, 0) };
}

/// Blocks the vCPU until an event arrives. Call with interrupts disabled, after checking
/// that there is no work: `sti; hlt` enables interrupts and halts atomically (the STI
/// shadow), so an upcall that arrives after the check still wakes us. Xen handles an HVM
/// `hlt` by blocking the vCPU exactly as SCHEDOP_block does; the hypercall itself cannot be
/// used here, because an upcall taken between `sti` and the hypercall clears
/// `evtchn_upcall_pending` and Xen would then block with the wake-up already consumed.
pub fn block() {
    // SAFETY: `sti; hlt` only enables interrupts (the IDT is loaded) and halts until one.
    unsafe { asm!("sti", "hlt", options(nomem, nostack)) };
}

#[repr(C)]
struct SingleshotTimer {
    timeout_abs_ns: u64,
    flags: u32,
}

/// VCPUOP_set_singleshot_timer on vCPU 0: a `VIRQ_TIMER` event at Xen system time
/// `deadline_ns` (see [`time::now_ns`]), or at once if that is already past. Replaces any
/// earlier deadline.
pub fn set_timer(deadline_ns: u64) -> Result<(), XenError> {
    let mut t = SingleshotTimer {
        timeout_abs_ns: deadline_ns,
        flags: 0,
    };
    // SAFETY: VCPUOP_set_singleshot_timer (8) for vCPU 0 reads a
    // `struct vcpu_set_singleshot_timer` we own.
    check(unsafe { hypercall3(nr::VCPU_OP, 8, 0, core::ptr::addr_of_mut!(t) as u64) }).map(|_| ())
}

// A table of `hvm/params.h`'s numbers (the few pvfs reads); ring's `XenbusState` and
// `MsgType` look the same, but each copies its own header, and this one is never decoded.
/// HVM parameters (`hvm/params.h`).
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum HvmParam {
    /// HVM_PARAM_CALLBACK_IRQ
    CallbackIrq = 0,
    /// HVM_PARAM_STORE_PFN
    StorePfn = 1,
    /// HVM_PARAM_STORE_EVTCHN
    StoreEvtchn = 2,
    /// HVM_PARAM_CONSOLE_PFN
    ConsolePfn = 17,
    /// HVM_PARAM_CONSOLE_EVTCHN
    ConsoleEvtchn = 18,
}

#[repr(C)]
struct XenHvmParam {
    domid: u16,
    _pad: u16,
    index: u32,
    value: u64,
}

pub(crate) const DOMID_SELF: u16 = 0x7FF0;

/// HVMOP_get_param.
pub fn hvm_get_param(p: HvmParam) -> Result<u64, XenError> {
    let mut a = XenHvmParam {
        domid: DOMID_SELF,
        _pad: 0,
        index: p as u32,
        value: 0,
    };
    // SAFETY: HVMOP_get_param (1) reads and writes a `struct xen_hvm_param` we own.
    check(unsafe { hypercall3(nr::HVM_OP, 1, core::ptr::addr_of_mut!(a) as u64, 0) })?;
    Ok(a.value)
}

/// HVMOP_set_param.
pub fn hvm_set_param(p: HvmParam, value: u64) -> Result<(), XenError> {
    let mut a = XenHvmParam {
        domid: DOMID_SELF,
        _pad: 0,
        index: p as u32,
        value,
    };
    // SAFETY: HVMOP_set_param (0) reads a `struct xen_hvm_param` we own.
    check(unsafe { hypercall3(nr::HVM_OP, 0, core::ptr::addr_of_mut!(a) as u64, 0) }).map(|_| ())
}

#[repr(C)]
struct AddToPhysmap {
    domid: u16,
    size: u16,
    space: u32,
    idx: u64,
    gpfn: u64,
}

/// `XENMAPSPACE_shared_info`.
const MAPSPACE_SHARED_INFO: u32 = 0;
/// `XENMAPSPACE_grant_table`.
pub(crate) const MAPSPACE_GRANT_TABLE: u32 = 1;

/// XENMEM_add_to_physmap: places frame `idx` of map space `space` at frame `gpfn`. Callers
/// pass frames from a window no RAM backs (`memmap::unbacked_window`), so no RAM page is
/// displaced: shared_info (`map_shared_info`) and the grant table (`gnttab::init`).
pub(crate) fn add_to_physmap(space: u32, idx: u64, gpfn: u64) -> Result<(), XenError> {
    let mut a = AddToPhysmap {
        domid: DOMID_SELF,
        size: 0,
        space,
        idx,
        gpfn,
    };
    // SAFETY: XENMEM_add_to_physmap (7) reads a `struct xen_add_to_physmap` we own. The target
    // frame lies in a window no RAM backs (see above).
    check(unsafe { hypercall3(nr::MEMORY_OP, 7, core::ptr::addr_of_mut!(a) as u64, 0) }).map(|_| ())
}

/// XENMEM_add_to_physmap with XENMAPSPACE_shared_info: places shared_info at frame `gpfn`.
pub fn map_shared_info(gpfn: u64) -> Result<(), XenError> {
    add_to_physmap(MAPSPACE_SHARED_INFO, 0, gpfn)
}

/// An event-channel operation whose argument is `{ u32 port }` (`struct evtchn_send`,
/// `struct evtchn_unmask`).
fn evtchn_port_op(cmd: u64, port: u32) -> Result<(), XenError> {
    let mut p = port;
    // SAFETY: EVTCHNOP_send (4) and EVTCHNOP_unmask (9) read one `u32 port` we own.
    check(unsafe {
        hypercall3(
            nr::EVENT_CHANNEL_OP,
            cmd,
            core::ptr::addr_of_mut!(p) as u64,
            0,
        )
    })
    .map(|_| ())
}

/// EVTCHNOP_send: notifies the other end of `port`.
pub fn evtchn_send(port: u32) -> Result<(), XenError> {
    evtchn_port_op(4, port)
}

/// EVTCHNOP_unmask: unmasks `port` (and redelivers a pending event).
pub fn evtchn_unmask(port: u32) -> Result<(), XenError> {
    evtchn_port_op(9, port)
}
