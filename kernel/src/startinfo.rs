//! The PVH `hvm_start_info` structure (`xen/include/public/arch-x86/hvm/start_info.h`): the
//! magic, the command line, the modules and the memory map, read from physical memory through
//! [`PhysRead`] so that the parser runs on the host against fake memory.
//!
//! Everything here is bounded: at most [`MAX_MODULES`] modules and [`MAX_MEMMAP`] memory-map
//! entries are kept; a larger count is truncated and reported.

use byteorder::{ByteOrder, LittleEndian as LE};
use heapless::Vec;

/// `XEN_HVM_START_MAGIC_VALUE`.
pub const MAGIC: u32 = 0x336e_c578;
/// Modules kept.
pub const MAX_MODULES: usize = 8;
/// Memory-map entries kept.
pub const MAX_MEMMAP: usize = 64;
/// Longest command line read.
pub const CMDLINE_MAX: usize = 2048;

/// Reads guest-physical memory.
pub trait PhysRead {
    /// Copies `buf.len()` bytes at `paddr`; false if the range is not readable.
    fn read(&self, paddr: u64, buf: &mut [u8]) -> bool;
}

/// Memory-map entry types (E820 numbering).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemType {
    /// Usable RAM.
    Ram,
    /// Anything else, with its raw type.
    Other(u32),
}

/// One memory-map entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemEntry {
    /// Start address.
    pub addr: u64,
    /// Length in bytes.
    pub size: u64,
    /// Type.
    pub kind: MemType,
}

/// A module (QEMU `-initrd`, or a Xen `module`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Module {
    /// Physical address.
    pub paddr: u64,
    /// Size in bytes.
    pub size: u64,
}

/// What the start-info block told us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartInfo {
    /// Structure version (0 has no memory map).
    pub version: u32,
    /// Command line bytes (without the NUL), possibly empty.
    pub cmdline: Vec<u8, CMDLINE_MAX>,
    /// Modules.
    pub modules: Vec<Module, MAX_MODULES>,
    /// Memory map, if version ≥ 1.
    pub memmap: Vec<MemEntry, MAX_MEMMAP>,
    /// Modules or memory-map entries that did not fit.
    pub truncated: bool,
    /// Physical ranges holding the start-info structures themselves (to keep out of the heap).
    pub own_ranges: Vec<(u64, u64), 4>,
}

/// Why the start-info block could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartInfoError {
    /// Wrong magic value.
    BadMagic(u32),
    /// A pointer led to unreadable memory.
    Unreadable(u64),
}

/// Byte ranges of the fields read, in the three structs of `start_info.h` (each copied whole
/// into a fixed-size buffer first, so every range lies inside it).
mod field {
    /// A field's bytes in its struct.
    pub(super) type Field = core::ops::Range<usize>;

    /// Size of `struct hvm_start_info` (version 1).
    pub(super) const START_INFO_SIZE: usize = 56;
    /// `hvm_start_info.magic`.
    pub(super) const MAGIC: Field = 0..4;
    /// `hvm_start_info.version`.
    pub(super) const VERSION: Field = 4..8;
    /// `hvm_start_info.nr_modules`.
    pub(super) const NR_MODULES: Field = 12..16;
    /// `hvm_start_info.modlist_paddr`.
    pub(super) const MODLIST_PADDR: Field = 16..24;
    /// `hvm_start_info.cmdline_paddr`.
    pub(super) const CMDLINE_PADDR: Field = 24..32;
    /// `hvm_start_info.memmap_paddr` (version 1).
    pub(super) const MEMMAP_PADDR: Field = 40..48;
    /// `hvm_start_info.memmap_entries` (version 1).
    pub(super) const MEMMAP_ENTRIES: Field = 48..52;

    /// Size of `struct hvm_modlist_entry`.
    pub(super) const MODLIST_ENTRY_SIZE: usize = 32;
    /// `hvm_modlist_entry.paddr`.
    pub(super) const MOD_PADDR: Field = 0..8;
    /// `hvm_modlist_entry.size`.
    pub(super) const MOD_SIZE: Field = 8..16;

    /// Size of `struct hvm_memmap_table_entry`.
    pub(super) const MEMMAP_ENTRY_SIZE: usize = 24;
    /// `hvm_memmap_table_entry.addr`.
    pub(super) const MEM_ADDR: Field = 0..8;
    /// `hvm_memmap_table_entry.size`.
    pub(super) const MEM_SIZE: Field = 8..16;
    /// `hvm_memmap_table_entry.type`.
    pub(super) const MEM_TYPE: Field = 16..20;
}

/// Reads the start-info block at `paddr`.
pub fn read(mem: &impl PhysRead, paddr: u64) -> Result<StartInfo, StartInfoError> {
    let mut hdr = [0u8; field::START_INFO_SIZE];
    if !mem.read(paddr, &mut hdr) {
        return Err(StartInfoError::Unreadable(paddr));
    }
    let magic = LE::read_u32(&hdr[field::MAGIC]);
    if magic != MAGIC {
        return Err(StartInfoError::BadMagic(magic));
    }
    let version = LE::read_u32(&hdr[field::VERSION]);
    let nr_modules = LE::read_u32(&hdr[field::NR_MODULES]);
    let modlist = LE::read_u64(&hdr[field::MODLIST_PADDR]);
    let cmdline_paddr = LE::read_u64(&hdr[field::CMDLINE_PADDR]);
    let mut si = StartInfo {
        version,
        cmdline: Vec::new(),
        modules: Vec::new(),
        memmap: Vec::new(),
        truncated: false,
        own_ranges: Vec::new(),
    };
    let _ = si.own_ranges.push((paddr, field::START_INFO_SIZE as u64));

    if cmdline_paddr != 0 {
        // Read in small chunks until the NUL, so we never read past readable memory.
        let mut chunk = [0u8; 64];
        'outer: while si.cmdline.len() < CMDLINE_MAX {
            let at = cmdline_paddr + si.cmdline.len() as u64;
            if !mem.read(at, &mut chunk) {
                // Fall back to byte reads near the end of readable memory.
                let mut one = [0u8; 1];
                if !mem.read(at, &mut one) {
                    break;
                }
                chunk[0] = one[0];
                if one[0] == 0 || si.cmdline.push(one[0]).is_err() {
                    break;
                }
                continue;
            }
            for &c in &chunk {
                if c == 0 || si.cmdline.push(c).is_err() {
                    break 'outer;
                }
            }
        }
        let _ = si
            .own_ranges
            .push((cmdline_paddr, si.cmdline.len() as u64 + 1));
    }

    read_table::<{ field::MODLIST_ENTRY_SIZE }>(
        mem,
        &mut si,
        modlist,
        nr_modules as usize,
        MAX_MODULES,
        |si, e| {
            let m = Module {
                paddr: LE::read_u64(&e[field::MOD_PADDR]),
                size: LE::read_u64(&e[field::MOD_SIZE]),
            };
            if m.size != 0 {
                let _ = si.modules.push(m);
            }
        },
    )?;

    if version >= 1 {
        let table = LE::read_u64(&hdr[field::MEMMAP_PADDR]);
        let entries = LE::read_u32(&hdr[field::MEMMAP_ENTRIES]) as usize;
        read_table::<{ field::MEMMAP_ENTRY_SIZE }>(
            mem,
            &mut si,
            table,
            entries,
            MAX_MEMMAP,
            |si, e| {
                let kind = match LE::read_u32(&e[field::MEM_TYPE]) {
                    1 => MemType::Ram,
                    t => MemType::Other(t),
                };
                let _ = si.memmap.push(MemEntry {
                    addr: LE::read_u64(&e[field::MEM_ADDR]),
                    size: LE::read_u64(&e[field::MEM_SIZE]),
                    kind,
                });
            },
        )?;
    }
    Ok(si)
}

/// Reads the first `max` of the `n` entries of `N` bytes each in the table at `paddr`, handing
/// each to `each`; marks `si` truncated when there were more, and records the part read as one
/// of its own ranges.
fn read_table<const N: usize>(
    mem: &impl PhysRead,
    si: &mut StartInfo,
    paddr: u64,
    n: usize,
    max: usize,
    mut each: impl FnMut(&mut StartInfo, &[u8; N]),
) -> Result<(), StartInfoError> {
    if n > max {
        si.truncated = true;
    }
    for i in 0..n.min(max) {
        let mut e = [0u8; N];
        let at = paddr.saturating_add((i * N) as u64);
        if !mem.read(at, &mut e) {
            return Err(StartInfoError::Unreadable(at));
        }
        each(si, &e);
    }
    if n > 0 {
        let _ = si.own_ranges.push((paddr, (n.min(max) * N) as u64));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake(std::vec::Vec<u8>);
    impl PhysRead for Fake {
        fn read(&self, paddr: u64, buf: &mut [u8]) -> bool {
            let Ok(start) = usize::try_from(paddr) else {
                return false;
            };
            match self.0.get(start..start.saturating_add(buf.len())) {
                Some(s) if s.len() == buf.len() => {
                    buf.copy_from_slice(s);
                    true
                }
                _ => false,
            }
        }
    }

    fn put(m: &mut [u8], off: usize, b: &[u8]) {
        m[off..off + b.len()].copy_from_slice(b);
    }

    fn image(nr_mod: u32, entries: u32) -> Fake {
        let mut m = std::vec![0u8; 8192];
        put(&mut m, 0, &MAGIC.to_le_bytes());
        put(&mut m, 4, &1u32.to_le_bytes());
        put(&mut m, 12, &nr_mod.to_le_bytes());
        put(&mut m, 16, &0x100u64.to_le_bytes());
        put(&mut m, 24, &0x800u64.to_le_bytes());
        put(&mut m, 40, &0x1000u64.to_le_bytes());
        put(&mut m, 48, &entries.to_le_bytes());
        put(&mut m, 0x800, b"pvfs.log=debug\0");
        put(&mut m, 0x100, &0x20_0000u64.to_le_bytes());
        put(&mut m, 0x108, &0x1234u64.to_le_bytes());
        for i in 0..(entries as usize).min(MAX_MEMMAP) {
            let at = 0x1000 + i * 24;
            put(&mut m, at, &((i as u64) << 20).to_le_bytes());
            put(&mut m, at + 8, &(1u64 << 20).to_le_bytes());
            put(
                &mut m,
                at + 16,
                &(if i % 2 == 0 { 1u32 } else { 2 }).to_le_bytes(),
            );
        }
        Fake(m)
    }

    #[test]
    fn reads_a_version_1_block() {
        let si = read(&image(1, 3), 0).unwrap();
        assert_eq!(si.version, 1);
        assert_eq!(si.cmdline.as_slice(), b"pvfs.log=debug");
        assert_eq!(
            si.modules.as_slice(),
            &[Module {
                paddr: 0x20_0000,
                size: 0x1234
            }]
        );
        assert_eq!(si.memmap.len(), 3);
        assert_eq!(
            si.memmap[1],
            MemEntry {
                addr: 1 << 20,
                size: 1 << 20,
                kind: MemType::Other(2)
            }
        );
        assert!(!si.truncated);
        assert_eq!(si.own_ranges.len(), 4);
    }

    #[test]
    fn rejects_bad_magic_and_unreadable_tables() {
        let mut f = image(0, 0);
        f.0[0] = 0;
        assert!(matches!(read(&f, 0), Err(StartInfoError::BadMagic(_))));
        let f = image(0, 400); // table runs off the end of fake memory
        let si = read(&f, 0).unwrap();
        assert!(si.truncated);
        let mut f = image(0, 0);
        put(&mut f.0, 40, &0xFFFF_FFFFu64.to_le_bytes());
        put(&mut f.0, 48, &2u32.to_le_bytes());
        assert_eq!(read(&f, 0), Err(StartInfoError::Unreadable(0xFFFF_FFFF)));
    }

    #[test]
    fn cmdline_at_end_of_memory_without_nul() {
        let mut f = image(0, 0);
        let len = f.0.len();
        put(&mut f.0, 24, &((len - 3) as u64).to_le_bytes());
        put(&mut f.0, len - 3, b"abc");
        let si = read(&f, 0).unwrap();
        assert_eq!(si.cmdline.as_slice(), b"abc");
    }
}
