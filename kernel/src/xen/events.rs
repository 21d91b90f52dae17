//! Event channels: shared_info, the HVM callback-vector upcall, and per-port wake flags.
//!
//! The upcall runs with interrupts off. It clears `evtchn_upcall_pending`, then moves every
//! pending, unmasked port from shared_info into the [`FIRED`] bitmap and returns. Code outside
//! interrupt context takes flags with [`take`] and sleeps with [`wait`], which halts the vCPU
//! (`sti; hlt`, which Xen handles like SCHEDOP_block) until the next upcall.

use super::shinfo::{self, SharedInfo};
use super::{hvm_set_param, map_shared_info, HvmParam, XenError};
use crate::arch::idt::UPCALL_VECTOR;
use core::sync::atomic::{AtomicU64, Ordering};

static FIRED: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
static UPCALLS: AtomicU64 = AtomicU64::new(0);
/// Set by every upcall that found a port; cleared by `wait(None)`.
static ANY: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Maps shared_info at frame `gpfn` and routes upcalls to [`UPCALL_VECTOR`].
pub fn init(gpfn: u64) -> Result<(), XenError> {
    map_shared_info(gpfn)?;
    shinfo::publish(gpfn);
    // HVM_PARAM_CALLBACK_IRQ type 2 (vector) in bits 63:56.
    hvm_set_param(
        HvmParam::CallbackIrq,
        (2u64 << 56) | u64::from(UPCALL_VECTOR),
    )
}

/// The upcall handler (interrupt context).
pub fn upcall() {
    let Some(si) = SharedInfo::get() else {
        return;
    };
    UPCALLS.fetch_add(1, Ordering::Relaxed);
    // Cleared before scanning, so a new event re-raises the upcall.
    si.upcall_pending().store(0, Ordering::SeqCst);
    loop {
        let sel = si.pending_sel().swap(0, Ordering::AcqRel);
        if sel == 0 {
            break;
        }
        let mut s = sel;
        while s != 0 {
            let i = s.trailing_zeros() as usize;
            s &= s - 1;
            let (Some(pending), Some(mask), Some(fired)) =
                (si.pending(i), si.mask(i), FIRED.get(i))
            else {
                continue;
            };
            let bits = pending.load(Ordering::Acquire) & !mask.load(Ordering::Acquire);
            if bits != 0 {
                pending.fetch_and(!bits, Ordering::AcqRel);
                fired.fetch_or(bits, Ordering::AcqRel);
                ANY.store(true, Ordering::Release);
            }
        }
    }
}

/// Takes the wake flag of `port`: true if an event arrived since the last take.
pub fn take(port: u32) -> bool {
    let p = port as usize;
    match FIRED.get(p / 64) {
        Some(w) => {
            let bit = 1u64 << (p % 64);
            w.fetch_and(!bit, Ordering::AcqRel) & bit != 0
        }
        None => false,
    }
}

/// Sleeps until `port` fires, or with `None` until any event arrives after the previous
/// `wait(None)` (per-port flags are left for [`take`]).
pub fn wait(port: Option<u32>) {
    loop {
        // What the CPU needs to deliver the next interrupt is checked just before it may halt
        // (a corrupted table would otherwise triple-fault silently), with interrupts still on:
        // an event that arrives while they are off waits for the `sti` of the halt, and the
        // window with interrupts off stays a few instructions long.
        crate::arch::integrity::check_or_stop();
        crate::arch::disable_interrupts();
        let ready = match port {
            Some(p) => take(p),
            None => ANY.swap(false, Ordering::AcqRel),
        };
        if ready {
            crate::arch::enable_interrupts();
            return;
        }
        super::block();
    }
}

/// Upcalls handled so far.
pub fn upcall_count() -> u64 {
    UPCALLS.load(Ordering::Relaxed)
}

#[repr(C)]
struct AllocUnbound {
    dom: u16,
    remote_dom: u16,
    port: u32,
}

#[repr(C)]
struct BindInterdomain {
    remote_dom: u16,
    _pad: u16,
    remote_port: u32,
    local_port: u32,
}

const EVTCHNOP_BIND_INTERDOMAIN: u64 = 0;
const EVTCHNOP_BIND_VIRQ: u64 = 1;
const EVTCHNOP_CLOSE: u64 = 3;
const EVTCHNOP_ALLOC_UNBOUND: u64 = 6;
const EVTCHNOP_BIND_IPI: u64 = 7;

#[repr(C)]
struct BindIpi {
    vcpu: u32,
    port: u32,
}

/// EVTCHNOP_bind_ipi for vCPU 0: a port whose other end is pvfs itself, so that signalling it
/// raises an upcall on pvfs's own vCPU. Returns the (unmasked) port.
pub fn bind_ipi() -> Result<u32, XenError> {
    let mut a = BindIpi { vcpu: 0, port: 0 };
    evtchn_op(EVTCHNOP_BIND_IPI, core::ptr::addr_of_mut!(a) as u64)?;
    let _ = unmask(a.port);
    Ok(a.port)
}

fn evtchn_op(cmd: u64, arg: u64) -> Result<(), XenError> {
    // SAFETY: callers pass a pointer to the struct that `cmd` expects, which they own.
    let rc = unsafe { super::hypercall3(super::nr::EVENT_CHANNEL_OP, cmd, arg, 0) };
    if rc < 0 {
        Err(XenError(rc))
    } else {
        Ok(())
    }
}

/// EVTCHNOP_alloc_unbound: a new port that `remote` may bind to.
pub fn alloc_unbound(remote: u16) -> Result<u32, XenError> {
    let mut a = AllocUnbound {
        dom: super::DOMID_SELF,
        remote_dom: remote,
        port: 0,
    };
    evtchn_op(EVTCHNOP_ALLOC_UNBOUND, core::ptr::addr_of_mut!(a) as u64)?;
    let _ = unmask(a.port);
    Ok(a.port)
}

/// EVTCHNOP_bind_interdomain: connects to `remote_port` of domain `remote`; returns our port.
pub fn bind_interdomain(remote: u16, remote_port: u32) -> Result<u32, XenError> {
    let mut a = BindInterdomain {
        remote_dom: remote,
        _pad: 0,
        remote_port,
        local_port: 0,
    };
    evtchn_op(EVTCHNOP_BIND_INTERDOMAIN, core::ptr::addr_of_mut!(a) as u64)?;
    let _ = unmask(a.local_port);
    Ok(a.local_port)
}

#[repr(C)]
struct BindVirq {
    virq: u32,
    vcpu: u32,
    port: u32,
}

/// `VIRQ_TIMER`: fires when the deadline set with [`super::set_timer`] passes.
pub const VIRQ_TIMER: u32 = 0;

/// EVTCHNOP_bind_virq for vCPU 0; returns the (unmasked) port.
pub fn bind_virq(virq: u32) -> Result<u32, XenError> {
    let mut a = BindVirq {
        virq,
        vcpu: 0,
        port: 0,
    };
    evtchn_op(EVTCHNOP_BIND_VIRQ, core::ptr::addr_of_mut!(a) as u64)?;
    let _ = unmask(a.port);
    Ok(a.port)
}

/// EVTCHNOP_close; also forgets the port's handler and wake flag.
pub fn close(port: u32) -> Result<(), XenError> {
    unregister(port);
    let _ = take(port);
    let mut p = port;
    evtchn_op(EVTCHNOP_CLOSE, core::ptr::addr_of_mut!(p) as u64)
}

/// Masks `port` (no upcalls for it until [`unmask`]).
pub fn mask(port: u32) {
    if let Some(mask) = SharedInfo::get().and_then(|si| si.mask(port as usize / 64)) {
        mask.fetch_or(1 << (port % 64), Ordering::AcqRel);
    }
}

/// Unmasks `port`; an event that arrived while masked is delivered.
pub fn unmask(port: u32) -> Result<(), XenError> {
    super::evtchn_unmask(port)
}

/// Unmasks `port` without a hypercall (for ports masked with [`mask`] while the serve loop
/// polls). An event that arrived while it was masked left the port pending without an
/// upcall, and Xen raises no upcall for a port that is already pending; so a pending port is
/// cleared here and recorded as fired, as the upcall would have: the next [`take`] sees it
/// and [`wait`] returns at once. An event after the unmask raises an upcall as usual.
pub fn unmask_quietly(port: u32) {
    let i = port as usize / 64;
    let Some(si) = SharedInfo::get() else {
        return;
    };
    let (Some(fired), Some(mask), Some(pending)) = (FIRED.get(i), si.mask(i), si.pending(i)) else {
        return;
    };
    let bit = 1u64 << (port % 64);
    mask.fetch_and(!bit, Ordering::AcqRel);
    if pending.fetch_and(!bit, Ordering::AcqRel) & bit != 0 {
        fired.fetch_or(bit, Ordering::AcqRel);
        ANY.store(true, Ordering::Release);
    }
}

/// Signals the other end of `port`.
pub fn notify(port: u32) -> Result<(), XenError> {
    super::evtchn_send(port)
}

/// A handler run (outside interrupt context) when its port fires.
pub type Handler = fn(port: u32);

static HANDLERS: spin::Mutex<heapless::Vec<(u32, Handler), 256>> =
    spin::Mutex::new(heapless::Vec::new());

/// Registers `h` for `port`, replacing any earlier handler. False if the table is full.
pub fn register(port: u32, h: Handler) -> bool {
    let mut t = HANDLERS.lock();
    if let Some(slot) = t.iter_mut().find(|(p, _)| *p == port) {
        slot.1 = h;
        return true;
    }
    t.push((port, h)).is_ok()
}

/// Removes the handler of `port`.
pub fn unregister(port: u32) {
    HANDLERS.lock().retain(|(p, _)| *p != port);
}

/// Runs the handlers of every port that fired; returns how many ran.
pub fn dispatch() -> usize {
    let table: heapless::Vec<(u32, Handler), 256> = HANDLERS.lock().clone();
    let mut ran = 0;
    for (port, h) in table {
        if take(port) {
            h(port);
            ran += 1;
        }
    }
    ran
}
