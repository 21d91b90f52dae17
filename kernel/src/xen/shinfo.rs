//! Typed access to the shared_info page (`struct shared_info`, x86_64): the event-channel
//! words of `vcpu_info[0]`, the pending and mask bitmaps, `vcpu_info[0].time` and the wall
//! clock. Each field has its own accessor at a fixed offset, and the bitmap words are indexed
//! with a checked index, so no caller chooses a raw offset into the page.
//!
//! Layout: 32 `vcpu_info` of 64 bytes (`evtchn_upcall_pending`@0 u8, `evtchn_pending_sel`@8
//! u64, `time`@32: `version`@0 u32, `tsc_timestamp`@8 u64, `system_time`@16 u64,
//! `tsc_to_system_mul`@24 u32, `tsc_shift`@28 i8), then `evtchn_pending[64]`@2048 and
//! `evtchn_mask[64]`@2560 (u64 each), then `wc_version`@3072, `wc_sec`@3076, `wc_nsec`@3080,
//! `wc_sec_hi`@3084 (u32 each).

use core::sync::atomic::{fence, AtomicU64, AtomicU8, AtomicUsize, Ordering};

/// Words in each event-channel bitmap (4096 ports).
pub const BITMAP_WORDS: usize = 64;

const PAGE: usize = 4096;
const SEL_OFF: usize = 8;
const PENDING_OFF: usize = 2048;
const MASK_OFF: usize = PENDING_OFF + BITMAP_WORDS * 8;

/// A field of type `T` at a fixed offset in the page. Made only by [`field`] in the constants
/// below, whose evaluation fails the build unless the field is aligned and inside the page.
#[derive(Clone, Copy)]
struct Field<T> {
    off: usize,
    _t: core::marker::PhantomData<T>,
}

const fn field<T>(off: usize) -> Field<T> {
    assert!(off.is_multiple_of(core::mem::align_of::<T>()));
    assert!(off + core::mem::size_of::<T>() <= PAGE);
    Field {
        off,
        _t: core::marker::PhantomData,
    }
}

const T_VERSION: Field<u32> = field(32);
const T_TSC: Field<u64> = field(32 + 8);
const T_SYS: Field<u64> = field(32 + 16);
const T_MUL: Field<u32> = field(32 + 24);
const T_SHIFT: Field<i8> = field(32 + 28);
const WC_VERSION: Field<u32> = field(3072);
const WC_SEC: Field<u32> = field(3076);
const WC_NSEC: Field<u32> = field(3080);
const WC_SEC_HI: Field<u32> = field(3084);

/// Identity-mapped address of shared_info, 0 until [`publish`].
static BASE: AtomicUsize = AtomicUsize::new(0);

/// Records that shared_info is mapped at frame `gpfn` (called once Xen has placed it there;
/// it stays mapped for the domain's life).
pub(super) fn publish(gpfn: u64) {
    BASE.store((gpfn << 12) as usize, Ordering::Release);
}

/// `vcpu_info[0].time`, one consistent snapshot.
#[derive(Debug, Clone, Copy)]
pub struct VcpuTime {
    /// TSC at the last update.
    pub tsc_stamp: u64,
    /// System time (ns) at the last update.
    pub system_time: u64,
    /// TSC → ns multiplier (32.32 fixed point).
    pub mul: u32,
    /// TSC shift applied before the multiply.
    pub shift: i8,
}

/// The mapped shared_info page. Only [`SharedInfo::get`] makes one, and only after
/// [`publish`], so every accessor reaches a mapped page.
#[derive(Debug, Clone, Copy)]
pub struct SharedInfo {
    base: usize,
}

impl SharedInfo {
    /// The page, or `None` before it is mapped.
    pub fn get() -> Option<Self> {
        match BASE.load(Ordering::Acquire) {
            0 => None,
            base => Some(Self { base }),
        }
    }

    /// # Safety
    /// `off` must be 8-aligned and `off + 8 <= 4096`.
    unsafe fn word_at(self, off: usize) -> &'static AtomicU64 {
        debug_assert!(off.is_multiple_of(8) && off + 8 <= PAGE);
        // SAFETY: `base` is the identity-mapped shared_info page (only `publish` sets it, after
        // the mapping), which stays mapped for the domain's life; the caller keeps `off` an
        // aligned word inside it. Xen updates these words atomically.
        unsafe { AtomicU64::from_ptr((self.base + off) as *mut u64) }
    }

    /// `vcpu_info[0].evtchn_upcall_pending`.
    pub fn upcall_pending(self) -> &'static AtomicU8 {
        // SAFETY: byte 0 of the mapped page (see `word_at`); Xen sets it, the upcall clears it.
        unsafe { AtomicU8::from_ptr(self.base as *mut u8) }
    }

    /// `vcpu_info[0].evtchn_pending_sel`.
    pub fn pending_sel(self) -> &'static AtomicU64 {
        // SAFETY: offset 8, aligned and inside the page.
        unsafe { self.word_at(SEL_OFF) }
    }

    /// `evtchn_pending[word]`, or `None` past the bitmap.
    pub fn pending(self, word: usize) -> Option<&'static AtomicU64> {
        if word >= BITMAP_WORDS {
            return None;
        }
        // SAFETY: word < 64, so the offset is 2048 + 8 * word < 2560: aligned, in the page.
        Some(unsafe { self.word_at(PENDING_OFF + word * 8) })
    }

    /// `evtchn_mask[word]`, or `None` past the bitmap.
    pub fn mask(self, word: usize) -> Option<&'static AtomicU64> {
        if word >= BITMAP_WORDS {
            return None;
        }
        // SAFETY: word < 64, so the offset is 2560 + 8 * word < 3072: aligned, in the page.
        Some(unsafe { self.word_at(MASK_OFF + word * 8) })
    }

    /// Reads a field with a volatile load.
    fn read<T: Copy>(self, f: Field<T>) -> T {
        // SAFETY: a `Field` is aligned for `T` and lies inside the page (checked when its
        // constant is evaluated), and the page is mapped (see `word_at`).
        unsafe { core::ptr::read_volatile((self.base + f.off) as *const T) }
    }

    /// A consistent snapshot of `vcpu_info[0].time` (retries while Xen updates it).
    pub fn vcpu_time(self) -> VcpuTime {
        loop {
            let v1 = self.read(T_VERSION);
            fence(Ordering::Acquire);
            let t = VcpuTime {
                tsc_stamp: self.read(T_TSC),
                system_time: self.read(T_SYS),
                mul: self.read(T_MUL),
                shift: self.read(T_SHIFT),
            };
            fence(Ordering::Acquire);
            let v2 = self.read(T_VERSION);
            if v1.is_multiple_of(2) && v1 == v2 {
                return t;
            }
            core::hint::spin_loop();
        }
    }

    /// Xen's wall clock at system time zero: seconds and nanoseconds since the epoch.
    pub fn wall_clock_base(self) -> (u64, u32) {
        loop {
            let v1 = self.read(WC_VERSION);
            fence(Ordering::Acquire);
            let lo = self.read(WC_SEC);
            let nsec = self.read(WC_NSEC);
            let hi = self.read(WC_SEC_HI);
            fence(Ordering::Acquire);
            let v2 = self.read(WC_VERSION);
            if v1.is_multiple_of(2) && v1 == v2 {
                return ((u64::from(hi) << 32) | u64::from(lo), nsec);
            }
            core::hint::spin_loop();
        }
    }
}
