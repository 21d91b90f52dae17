//! Xen system time from `vcpu_info[0].time` in shared_info (`struct vcpu_time_info`): the
//! nanoseconds since boot that Xen publishes, extrapolated with the TSC. Uses `rdtsc` only
//! (never `rdtscp`, which nested SVM under QEMU TCG mishandles).

use core::sync::atomic::{fence, Ordering};

const TIME_OFF: usize = 32;

fn rd<T: Copy>(base: usize, off: usize) -> T {
    // SAFETY: `base` is the identity-mapped shared_info page (non-zero only after
    // `events::init`), and every offset used here lies inside vcpu_info[0].time.
    unsafe { core::ptr::read_volatile((base + TIME_OFF + off) as *const T) }
}

/// Nanoseconds of Xen system time, or 0 before shared_info is mapped.
pub fn now_ns() -> u64 {
    let base = super::events::shared_info_addr();
    if base == 0 {
        return 0;
    }
    loop {
        let v1: u32 = rd(base, 0);
        fence(Ordering::Acquire);
        let tsc_stamp: u64 = rd(base, 8);
        let sys: u64 = rd(base, 16);
        let mul: u32 = rd(base, 24);
        let shift: i8 = rd(base, 28);
        fence(Ordering::Acquire);
        let v2: u32 = rd(base, 0);
        if v1 % 2 == 1 || v1 != v2 {
            core::hint::spin_loop();
            continue;
        }
        // SAFETY: rdtsc has no side effects and is available on every x86_64 CPU.
        let tsc = unsafe { core::arch::x86_64::_rdtsc() };
        let mut delta = tsc.wrapping_sub(tsc_stamp);
        if shift >= 0 {
            delta <<= shift as u32;
        } else {
            delta >>= (-shift) as u32;
        }
        let ns = ((u128::from(delta) * u128::from(mul)) >> 32) as u64;
        return sys.wrapping_add(ns);
    }
}

/// Offsets in `struct shared_info` (x86_64): after 32 `vcpu_info` of 64 bytes and the two
/// 64-word event channel bitmaps come `wc_version`, `wc_sec`, `wc_nsec`, `wc_sec_hi`.
const WC_VERSION: usize = 3072;

fn rd_shared<T: Copy>(base: usize, off: usize) -> T {
    // SAFETY: `base` is the identity-mapped shared_info page (non-zero only after
    // `events::init`), and the wall-clock fields lie inside it (offsets 3072..3088 < 4096).
    unsafe { core::ptr::read_volatile((base + off) as *const T) }
}

/// Wall-clock time (seconds, nanoseconds since the epoch): Xen's wall clock at system time
/// zero plus [`now_ns`]. `(0, 0)` before shared_info is mapped.
pub fn wall_clock() -> (u64, u32) {
    let base = super::events::shared_info_addr();
    if base == 0 {
        return (0, 0);
    }
    let (sec, nsec) = loop {
        let v1: u32 = rd_shared(base, WC_VERSION);
        fence(Ordering::Acquire);
        let lo: u32 = rd_shared(base, WC_VERSION + 4);
        let nsec: u32 = rd_shared(base, WC_VERSION + 8);
        let hi: u32 = rd_shared(base, WC_VERSION + 12);
        fence(Ordering::Acquire);
        let v2: u32 = rd_shared(base, WC_VERSION);
        if v1.is_multiple_of(2) && v1 == v2 {
            break ((u64::from(hi) << 32) | u64::from(lo), nsec);
        }
        core::hint::spin_loop();
    };
    let total = u128::from(sec) * 1_000_000_000 + u128::from(nsec) + u128::from(now_ns());
    (
        (total / 1_000_000_000) as u64,
        (total % 1_000_000_000) as u32,
    )
}
