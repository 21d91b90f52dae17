//! Memory-map carving: RAM from the start-info memory map, minus everything that is in use
//! (the kernel image, the modules, the start-info structures, the first MiB), page aligned.
//! Also finds a window of guest-physical frames that RAM does not back, where Xen frames
//! (shared_info, grant-table frames, foreign mappings) are placed without displacing RAM.

use crate::startinfo::{MemEntry, MemType};
use heapless::Vec;

/// Page size.
pub const PAGE: u64 = 4096;
/// Free ranges kept.
pub const MAX_RANGES: usize = 32;

/// A half-open physical range `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Range {
    /// First byte.
    pub start: u64,
    /// One past the last byte.
    pub end: u64,
}

impl Range {
    /// `[start, start+len)`, saturating at the top of the address space.
    pub fn from_len(start: u64, len: u64) -> Self {
        Self {
            start,
            end: start.saturating_add(len),
        }
    }
    /// Length in bytes.
    pub fn len(&self) -> u64 {
        self.end.saturating_sub(self.start)
    }
    /// True if empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

const fn align_up(x: u64, a: u64) -> u64 {
    match x.checked_add(a - 1) {
        Some(v) => v & !(a - 1),
        None => !(a - 1),
    }
}

const fn align_down(x: u64, a: u64) -> u64 {
    x & !(a - 1)
}

/// Free RAM: every RAM entry, page-aligned inwards, minus `used` ranges (page-aligned
/// outwards), sorted by address. Ranges that do not fit in [`MAX_RANGES`] are dropped, smallest
/// first; the second value reports whether that happened.
pub fn carve(map: &[MemEntry], used: &[Range]) -> (Vec<Range, MAX_RANGES>, bool) {
    let mut free: Vec<Range, MAX_RANGES> = Vec::new();
    let mut dropped = false;
    let mut push = |r: Range, free: &mut Vec<Range, MAX_RANGES>| {
        if r.is_empty() {
            return;
        }
        if free.push(r).is_err() {
            dropped = true;
            // Replace the smallest range if this one is larger.
            if let Some((i, small)) = free.iter().enumerate().min_by_key(|(_, x)| x.len()) {
                if small.len() < r.len() {
                    free[i] = r;
                }
            }
        }
    };
    for e in map.iter().filter(|e| e.kind == MemType::Ram) {
        let start = align_up(e.addr, PAGE);
        let end = align_down(e.addr.saturating_add(e.size), PAGE);
        if start >= end {
            continue;
        }
        // Subtract every used range from [start, end), walking them in address order.
        let mut pieces: Vec<Range, MAX_RANGES> = Vec::new();
        let _ = pieces.push(Range { start, end });
        for u in used {
            let us = align_down(u.start, PAGE);
            let ue = align_up(u.end, PAGE);
            let mut next: Vec<Range, MAX_RANGES> = Vec::new();
            for p in &pieces {
                if ue <= p.start || us >= p.end {
                    let _ = next.push(*p);
                    continue;
                }
                if us > p.start {
                    let _ = next.push(Range {
                        start: p.start,
                        end: us,
                    });
                }
                if ue < p.end {
                    let _ = next.push(Range {
                        start: ue,
                        end: p.end,
                    });
                }
            }
            pieces = next;
        }
        for p in pieces {
            push(p, &mut free);
        }
    }
    free.sort_unstable();
    (free, dropped)
}

/// Finds `size` bytes (aligned to `align`, a power of two) of guest-physical address space that
/// no memory-map entry covers and that lies above all RAM and below `limit`. Xen frames mapped
/// there never displace RAM.
pub fn unbacked_window(map: &[MemEntry], size: u64, align: u64, limit: u64) -> Option<Range> {
    let ram_top = map
        .iter()
        .filter(|e| e.kind == MemType::Ram)
        .map(|e| e.addr.saturating_add(e.size))
        .max()
        .unwrap_or(0);
    let mut start = align_up(ram_top, align);
    // Move past any entry that overlaps the candidate, until one fits or we hit the limit.
    'retry: loop {
        let end = start.checked_add(size)?;
        if end > limit {
            return None;
        }
        for e in map {
            let es = e.addr;
            let ee = e.addr.saturating_add(e.size);
            if es < end && ee > start {
                start = align_up(ee, align);
                continue 'retry;
            }
        }
        return Some(Range { start, end });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram(addr: u64, size: u64) -> MemEntry {
        MemEntry {
            addr,
            size,
            kind: MemType::Ram,
        }
    }
    fn rsv(addr: u64, size: u64) -> MemEntry {
        MemEntry {
            addr,
            size,
            kind: MemType::Other(2),
        }
    }

    #[test]
    fn carves_kernel_and_modules_out() {
        let map = [
            ram(0, 0x9fc00),
            rsv(0xf0000, 0x10000),
            ram(0x10_0000, 0x7ef_0000),
        ];
        let used = [
            Range {
                start: 0,
                end: 0x10_0000,
            }, // first MiB
            Range {
                start: 0x10_0000,
                end: 0x18_3456,
            }, // kernel image
            Range::from_len(0x200_0000, 0x1001), // a module, 1 page + 1 byte
        ];
        let (free, dropped) = carve(&map, &used);
        assert!(!dropped);
        assert_eq!(
            free.as_slice(),
            &[
                Range {
                    start: 0x18_4000,
                    end: 0x200_0000
                },
                Range {
                    start: 0x200_2000,
                    end: 0x7ff_0000
                }
            ]
        );
    }

    #[test]
    fn unaligned_and_tiny_ram_entries() {
        let map = [ram(0x1001, 0x1000), ram(0x10_0800, 0x3000)];
        let (free, _) = carve(&map, &[]);
        assert_eq!(
            free.as_slice(),
            &[Range {
                start: 0x10_1000,
                end: 0x10_3000
            }]
        );
    }

    #[test]
    fn non_ram_is_never_free_and_overflow_is_safe() {
        let map = [rsv(0, 1 << 30), ram(u64::MAX - 0x1000, 0x5000)];
        let (free, _) = carve(
            &map,
            &[Range {
                start: u64::MAX - 10,
                end: u64::MAX,
            }],
        );
        assert!(free.iter().all(|r| r.start >= u64::MAX - 0x1000));
    }

    #[test]
    fn too_many_ranges_keeps_the_largest() {
        let map: std::vec::Vec<_> = (0..40u64).map(|i| ram(i << 24, (i + 1) * PAGE)).collect();
        let (free, dropped) = carve(&map, &[]);
        assert!(dropped);
        assert_eq!(free.len(), MAX_RANGES);
        assert!(free.iter().all(|r| r.len() > 8 * PAGE));
    }

    #[test]
    fn window_above_ram_skips_reserved_entries() {
        let map = [
            ram(0, 0x1000_0000),
            rsv(0x1000_0000, 0x10_0000),
            rsv(0xfc00_0000, 0x400_0000),
        ];
        let w = unbacked_window(&map, 0x100_0000, 0x100_0000, 1 << 32).unwrap();
        assert_eq!(
            w,
            Range {
                start: 0x1100_0000,
                end: 0x1200_0000
            }
        );
        // A window that cannot fit below the limit.
        assert_eq!(
            unbacked_window(&map, 0x1_0000_0000, 0x100_0000, 1 << 32),
            None
        );
    }
}
