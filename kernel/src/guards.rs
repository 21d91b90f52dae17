//! Guard pages: the arithmetic of unmapping single 4 KiB pages inside the boot page tables'
//! 2 MiB identity mapping. A large page that holds a guard is replaced by a page table that
//! maps the same 2 MiB page by page with the same attributes, less the guard pages.
//! `arch::paging` applies this to the live tables; here it is plain arithmetic, tested on the
//! host.

/// Size of a small page.
pub const PAGE: u64 = 4096;
/// Size of a large (2 MiB) page.
pub const LARGE: u64 = 2 << 20;
/// Entries in one page table.
pub const ENTRIES: usize = 512;

const PRESENT: u64 = 1 << 0;
const HUGE: u64 = 1 << 7;
/// PAT bit of a large-page entry (bit 7 in a 4 KiB entry).
const LARGE_PAT: u64 = 1 << 12;
const SMALL_PAT: u64 = 1 << 7;
/// P, RW, US, PWT, PCD, A, D and G: the bits both entry kinds share at the same place.
const COMMON_FLAGS: u64 = 0x17F & !HUGE;
const NX: u64 = 1 << 63;

/// Why a large page cannot be split.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SplitError {
    /// The directory entry is not present or not a large page.
    NotLarge,
    /// `base` is not 2 MiB aligned, or the entry maps another address.
    Misaligned,
    /// A guard page lies outside the 2 MiB at `base`.
    GuardOutside(u64),
}

/// The 512 entries of a page table mapping the 2 MiB at `base` as the large-page directory
/// entry `pde` does (same frames, same attributes), with the pages that start at the
/// addresses in `guards` left unmapped.
pub fn split(pde: u64, base: u64, guards: &[u64]) -> Result<[u64; ENTRIES], SplitError> {
    if pde & PRESENT == 0 || pde & HUGE == 0 {
        return Err(SplitError::NotLarge);
    }
    let frame = pde & 0x000F_FFFF_FFE0_0000;
    if !base.is_multiple_of(LARGE) || frame != base {
        return Err(SplitError::Misaligned);
    }
    let mut flags = pde & COMMON_FLAGS;
    if pde & LARGE_PAT != 0 {
        flags |= SMALL_PAT;
    }
    flags |= pde & NX;
    let mut pt = [0u64; ENTRIES];
    for (i, e) in pt.iter_mut().enumerate() {
        *e = (base + i as u64 * PAGE) | flags;
    }
    for &g in guards {
        let off = g.wrapping_sub(base);
        if g < base || off >= LARGE || !g.is_multiple_of(PAGE) {
            return Err(SplitError::GuardOutside(g));
        }
        pt[(off / PAGE) as usize] = 0;
    }
    Ok(pt)
}

/// The 2 MiB-aligned bases of the large pages that hold the pages at `addrs`, in order and
/// without repeats.
pub fn large_pages(addrs: &[u64]) -> heapless::Vec<u64, 8> {
    let mut v: heapless::Vec<u64, 8> = heapless::Vec::new();
    for &a in addrs {
        let b = a & !(LARGE - 1);
        if !v.contains(&b) {
            let _ = v.push(b);
        }
    }
    v.sort_unstable();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_frames_and_attributes_and_unmaps_the_guards() {
        // present | writable | huge | global | PAT, at 2 MiB
        let pde = 0x20_0000 | 0x1 | 0x2 | HUGE | (1 << 8) | LARGE_PAT;
        let pt = split(pde, 0x20_0000, &[0x20_0000, 0x23_0000]).unwrap();
        assert_eq!(pt[0], 0);
        assert_eq!(pt[0x30], 0);
        assert_eq!(pt[1], 0x20_1000 | 0x3 | (1 << 8) | SMALL_PAT);
        assert_eq!(pt[511], 0x3F_F000 | 0x3 | (1 << 8) | SMALL_PAT);
        assert_eq!(pt.iter().filter(|&&e| e == 0).count(), 2);
        for e in pt.iter().filter(|&&e| e != 0) {
            assert_eq!(e & HUGE & !SMALL_PAT, 0);
        }
    }

    #[test]
    fn split_refuses_what_it_cannot_do() {
        assert_eq!(split(0x20_0003, 0x20_0000, &[]), Err(SplitError::NotLarge));
        assert_eq!(split(0x20_0082, 0x20_0000, &[]), Err(SplitError::NotLarge));
        assert_eq!(
            split(0x20_0083, 0x40_0000, &[]),
            Err(SplitError::Misaligned)
        );
        assert_eq!(
            split(0x20_0083, 0x20_0000, &[0x40_0000]),
            Err(SplitError::GuardOutside(0x40_0000))
        );
        assert_eq!(
            split(0x20_0083, 0x20_0000, &[0x1F_F000]),
            Err(SplitError::GuardOutside(0x1F_F000))
        );
        assert_eq!(
            split(0x20_0083, 0x20_0000, &[0x20_0800]),
            Err(SplitError::GuardOutside(0x20_0800))
        );
    }

    #[test]
    fn large_pages_of_a_region_that_crosses_a_boundary() {
        let v = large_pages(&[0x3F_F000, 0x20_0000, 0x40_1000, 0x3F_0000]);
        assert_eq!(v.as_slice(), &[0x20_0000, 0x40_0000]);
    }
}
