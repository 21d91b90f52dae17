//! Xen system time from `vcpu_info[0].time` in shared_info (`struct vcpu_time_info`): the
//! nanoseconds since boot that Xen publishes, extrapolated with the TSC. Uses `rdtsc` only
//! (never `rdtscp`, which nested SVM under QEMU TCG mishandles). The fields are read through
//! the typed accessors of [`super::shinfo`].

use super::shinfo::SharedInfo;

/// Nanoseconds of Xen system time, or 0 before shared_info is mapped.
pub fn now_ns() -> u64 {
    let Some(si) = SharedInfo::get() else {
        return 0;
    };
    let t = si.vcpu_time();
    // SAFETY: rdtsc has no side effects and is available on every x86_64 CPU.
    let tsc = unsafe { core::arch::x86_64::_rdtsc() };
    let mut delta = tsc.wrapping_sub(t.tsc_stamp);
    if t.shift >= 0 {
        delta = delta.checked_shl(t.shift as u32).unwrap_or(0);
    } else {
        delta = delta
            .checked_shr(u32::from(t.shift.unsigned_abs()))
            .unwrap_or(0);
    }
    let ns = ((u128::from(delta) * u128::from(t.mul)) >> 32) as u64;
    t.system_time.wrapping_add(ns)
}

/// Wall-clock time (seconds, nanoseconds since the epoch): Xen's wall clock at system time
/// zero plus [`now_ns`]. `(0, 0)` before shared_info is mapped.
pub fn wall_clock() -> (u64, u32) {
    let Some(si) = SharedInfo::get() else {
        return (0, 0);
    };
    let (sec, nsec) = si.wall_clock_base();
    let total = u128::from(sec) * 1_000_000_000 + u128::from(nsec) + u128::from(now_ns());
    (
        (total / 1_000_000_000) as u64,
        (total % 1_000_000_000) as u32,
    )
}
