//! Little-endian field access on raw on-disk bytes, bounds-checked: a read out of range gives
//! 0 (rejected later by validation), a write out of range does nothing.
//!
//! These four wrap `byteorder`, the one little-endian codec of the workspace (see
//! `docs/architecture.md`, "External dependencies"). Elsewhere a fixed-size struct is
//! length-checked once and its named field ranges are read with `byteorder` directly; ext4
//! reads inode records of varying size and directory, extent and xattr entries at offsets
//! computed from what the disk says, so each access checks its own bounds here. Offsets of
//! fixed on-disk structs have names next to their parsers: `sb::s` (superblock), `sb::bg`
//! (group descriptors), `inode::I_*`, `extent::{eh, ee, ei}`, `xattr::{H_*, e}`, `dir::dx`.

use byteorder::{ByteOrder, LittleEndian as LE};

pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    b.get(off..off.wrapping_add(2)).map_or(0, LE::read_u16)
}

pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    b.get(off..off.wrapping_add(4)).map_or(0, LE::read_u32)
}

pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    if let Some(d) = b.get_mut(off..off.wrapping_add(2)) {
        LE::write_u16(d, v);
    }
}

pub(crate) fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(d) = b.get_mut(off..off.wrapping_add(4)) {
        LE::write_u32(d, v);
    }
}
