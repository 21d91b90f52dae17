//! Stack use per kind of 9P request: the deepest point each kind has reached, and how it is
//! found. Before a request runs, the stack below the caller is painted with a pattern; after
//! it, [`deepest`] scans down from the caller for the lowest word the request wrote. The
//! kernel (`stack::measure`) does the painting; this half is plain arithmetic, tested on the
//! host.

use alloc::string::String;
use core::fmt::Write;

/// Scans down from `start` (exclusive, 8-aligned) towards `bottom` for the lowest word that no
/// longer holds `paint`, stopping once `run` painted words in a row were seen below the last
/// one written. Returns that word's address, or `start` if none was written.
pub fn deepest(
    start: usize,
    bottom: usize,
    run: usize,
    paint: u64,
    read: impl Fn(usize) -> u64,
) -> usize {
    let mut lowest = start;
    let mut clean = 0;
    let mut a = start;
    while a >= bottom + 8 && clean < run {
        a -= 8;
        if read(a) == paint {
            clean += 1;
        } else {
            lowest = a;
            clean = 0;
        }
    }
    lowest
}

/// Name of a 9P2000.L T-message type, for the statistics.
pub fn type_name(ty: u8) -> &'static str {
    match ty {
        8 => "statfs",
        12 => "lopen",
        14 => "lcreate",
        16 => "symlink",
        18 => "mknod",
        20 => "rename",
        22 => "readlink",
        24 => "getattr",
        26 => "setattr",
        30 => "xattrwalk",
        32 => "xattrcreate",
        40 => "readdir",
        50 => "fsync",
        52 => "lock",
        54 => "getlock",
        70 => "link",
        72 => "mkdir",
        74 => "renameat",
        76 => "unlinkat",
        100 => "version",
        104 => "attach",
        108 => "flush",
        110 => "walk",
        116 => "read",
        118 => "write",
        120 => "clunk",
        122 => "remove",
        _ => "other",
    }
}

/// The deepest stack use seen per request type.
#[derive(Debug, Clone)]
pub struct KindPeaks {
    peak: [u32; 256],
}

impl Default for KindPeaks {
    fn default() -> Self {
        Self { peak: [0; 256] }
    }
}

impl KindPeaks {
    /// Records that a request of type `ty` used `bytes` of stack; true if that is a new
    /// deepest for its type.
    pub fn note(&mut self, ty: u8, bytes: usize) -> bool {
        let b = u32::try_from(bytes).unwrap_or(u32::MAX);
        let p = &mut self.peak[usize::from(ty)];
        if b > *p {
            *p = b;
            true
        } else {
            false
        }
    }

    /// The deepest use of any type, with its type.
    pub fn max(&self) -> Option<(u8, u32)> {
        (0..=255u8)
            .map(|t| (t, self.peak[usize::from(t)]))
            .filter(|&(_, b)| b > 0)
            .max_by_key(|&(_, b)| b)
    }

    /// `name=bytes` for every type seen, in type order.
    pub fn render(&self) -> String {
        let mut s = String::new();
        for t in 0..=255u8 {
            let b = self.peak[usize::from(t)];
            if b > 0 {
                let _ = write!(
                    s,
                    "{}{}={}",
                    if s.is_empty() { "" } else { " " },
                    type_name(t),
                    b
                );
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: u64 = 0xAAAA;

    /// A fake stack of 64 words from 0x1000, painted except where `used` says.
    fn stack(used: &[usize]) -> impl Fn(usize) -> u64 + '_ {
        move |a| if used.contains(&a) { 1 } else { P }
    }

    #[test]
    fn finds_the_lowest_written_word_across_small_gaps() {
        // start at 0x1200; words written at 0x11f8, 0x11e0 (after 2 clean words) and 0x11c0
        // (after 3 clean words)
        let used = [0x11f8, 0x11e0, 0x11c0];
        assert_eq!(deepest(0x1200, 0x1000, 4, P, stack(&used)), 0x11c0);
        // a run of 3 clean words ends the scan before the second gap is crossed
        assert_eq!(deepest(0x1200, 0x1000, 3, P, stack(&used)), 0x11e0);
    }

    #[test]
    fn nothing_written_and_the_bottom_bound() {
        assert_eq!(deepest(0x1200, 0x1000, 8, P, stack(&[])), 0x1200);
        // written down to the bottom word: never reads below it
        let all: alloc::vec::Vec<usize> = (0x1000..0x1200).step_by(8).collect();
        assert_eq!(
            deepest(0x1200, 0x1000, 8, P, |a| {
                assert!(a >= 0x1000);
                if all.contains(&a) {
                    1
                } else {
                    P
                }
            }),
            0x1000
        );
    }

    #[test]
    fn peaks_per_kind_and_rendering() {
        let mut k = KindPeaks::default();
        assert!(k.note(110, 3000));
        assert!(!k.note(110, 2000));
        assert!(k.note(110, 4000));
        assert!(k.note(116, 9000));
        assert!(k.note(250, 100));
        assert_eq!(k.max(), Some((116, 9000)));
        assert_eq!(k.render(), "walk=4000 read=9000 other=100");
    }
}
