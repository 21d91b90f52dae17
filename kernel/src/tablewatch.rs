//! Watching the memory the CPU needs to deliver an interrupt: the IDT, the GDT and TSS, the
//! page-table entries that map them, the entry stubs, and the descriptor registers. Nothing
//! writes these after boot, so any change is a corruption, and the next interrupt may then
//! triple-fault the domain without a word (the CPU cannot run a handler to report it). The
//! service checks them each time it goes idle, just before it enables interrupts and halts,
//! and stops with a report naming what changed (`arch::integrity`). Here it is plain
//! bookkeeping over a reader, tested on the host.

use alloc::vec::Vec;

/// How a region is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Byte for byte.
    Bytes,
    /// As 8-byte page-table entries, ignoring the accessed and dirty bits the CPU sets.
    PageTable,
}

/// Bits of a page-table entry the CPU may set by itself: accessed (5) and dirty (6).
pub const AD_BITS: u64 = 0x60;

/// One watched region: a name for reports, where it is, how to compare it, and its content
/// when it was last seen.
#[derive(Debug, Clone)]
pub struct Region {
    /// What the region is, for reports.
    pub name: &'static str,
    /// Its address (the reader's notion of one).
    pub addr: u64,
    kind: Kind,
    saved: Vec<u8>,
}

/// A difference found by [`Watch::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Change {
    /// The region's name.
    pub name: &'static str,
    /// Offset of the first changed 8-byte word in the region.
    pub offset: usize,
    /// The word as it was saved.
    pub was: u64,
    /// The word as it is now.
    pub now: u64,
}

/// The watched regions.
#[derive(Debug, Default)]
pub struct Watch {
    regions: Vec<Region>,
    /// Checks made so far.
    pub checks: u64,
}

fn word(b: &[u8], off: usize) -> u64 {
    let mut w = [0u8; 8];
    let end = b.len().min(off + 8);
    if let Some(src) = b.get(off..end) {
        w[..src.len()].copy_from_slice(src);
    }
    u64::from_le_bytes(w)
}

impl Watch {
    /// An empty watch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Watches `len` bytes at `addr`, saving their content now through `read`.
    pub fn add(
        &mut self,
        name: &'static str,
        addr: u64,
        len: usize,
        kind: Kind,
        read: &mut impl FnMut(u64, &mut [u8]),
    ) {
        let mut saved = alloc::vec![0u8; len];
        read(addr, &mut saved);
        self.regions.push(Region {
            name,
            addr,
            kind,
            saved,
        });
    }

    /// Bytes watched in all.
    pub fn bytes(&self) -> usize {
        self.regions.iter().map(|r| r.saved.len()).sum()
    }

    /// Compares every region with its content now, read through `read` in chunks of at most
    /// 256 bytes (no allocation). Returns the first change, after saving the region's new
    /// content, so that one corruption is reported once.
    pub fn check(&mut self, read: &mut impl FnMut(u64, &mut [u8])) -> Option<Change> {
        self.checks += 1;
        let mut buf = [0u8; 256];
        for r in &mut self.regions {
            let mut off = 0;
            while off < r.saved.len() {
                let n = (r.saved.len() - off).min(buf.len());
                let now = &mut buf[..n];
                read(r.addr + off as u64, now);
                let old = &r.saved[off..off + n];
                if let Some(at) = first_difference(old, now, r.kind) {
                    let change = Change {
                        name: r.name,
                        offset: off + at,
                        was: word(old, at),
                        now: word(now, at),
                    };
                    r.saved[off..off + n].copy_from_slice(now);
                    return Some(change);
                }
                off += n;
            }
        }
        None
    }
}

/// Offset of the first 8-byte word that differs between `a` and `b` (same length), with the
/// accessed and dirty bits masked for page tables.
fn first_difference(a: &[u8], b: &[u8], kind: Kind) -> Option<usize> {
    // word by word: `a == b` would be a byte loop in the kernel's `memcmp`
    if a.len() == b.len()
        && a.chunks(8)
            .zip(b.chunks(8))
            .all(|(x, y)| word(x, 0) == word(y, 0))
    {
        return None;
    }
    let mask = match kind {
        Kind::Bytes => u64::MAX,
        Kind::PageTable => !AD_BITS,
    };
    (0..a.len())
        .step_by(8)
        .find(|&off| word(a, off) & mask != word(b, off) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(mem: &[u8]) -> impl FnMut(u64, &mut [u8]) + '_ {
        move |addr, buf| {
            let a = addr as usize;
            buf.copy_from_slice(&mem[a..a + buf.len()]);
        }
    }

    #[test]
    fn unchanged_memory_passes_and_counts_checks() {
        let mem: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let mut w = Watch::new();
        w.add("idt", 0, 4096, Kind::Bytes, &mut reader(&mem));
        w.add("pt", 1000, 600, Kind::PageTable, &mut reader(&mem));
        assert_eq!(w.bytes(), 4696);
        for _ in 0..3 {
            assert_eq!(w.check(&mut reader(&mem)), None);
        }
        assert_eq!(w.checks, 3);
    }

    #[test]
    fn a_changed_byte_is_reported_once_with_its_word() {
        let mut mem = vec![0u8; 4096];
        let mut w = Watch::new();
        w.add("gdt", 0, 40, Kind::Bytes, &mut reader(&mem));
        w.add("idt", 512, 4096 - 512, Kind::Bytes, &mut reader(&mem));
        mem[512 + 3000 + 5] = 0xAB;
        let c = w.check(&mut reader(&mem)).expect("a change");
        assert_eq!(c.name, "idt");
        assert_eq!(c.offset, 3000);
        assert_eq!(c.was, 0);
        assert_eq!(c.now, 0xAB << 40);
        assert_eq!(w.check(&mut reader(&mem)), None, "reported once");
        mem[7] = 1;
        assert_eq!(
            w.check(&mut reader(&mem)).map(|c| (c.name, c.offset)),
            Some(("gdt", 0))
        );
    }

    #[test]
    fn page_tables_ignore_accessed_and_dirty_bits_only() {
        let mut mem = vec![0u8; 64];
        mem[8] = 0x83; // present, writable, large
        let mut w = Watch::new();
        w.add("pd", 0, 64, Kind::PageTable, &mut reader(&mem));
        mem[8] |= 0x60;
        assert_eq!(w.check(&mut reader(&mem)), None);
        mem[8] &= !0x02; // writable cleared
        let c = w.check(&mut reader(&mem)).expect("a change");
        assert_eq!((c.offset, c.was & 0xFF, c.now & 0xFF), (8, 0x83, 0xE1));
        // bytes regions see the same bits
        let mut w = Watch::new();
        w.add("raw", 0, 64, Kind::Bytes, &mut reader(&mem));
        mem[8] ^= 0x20;
        assert!(w.check(&mut reader(&mem)).is_some());
    }

    #[test]
    fn regions_longer_than_the_chunk_and_odd_lengths() {
        let mut mem = vec![0u8; 1000];
        let mut w = Watch::new();
        w.add("odd", 3, 997, Kind::Bytes, &mut reader(&mem));
        mem[999] = 9;
        let c = w.check(&mut reader(&mem)).expect("a change");
        assert_eq!(c.offset, 992);
        assert_eq!(c.now, 9 << 32);
    }
}
