//! Little-endian field access on raw on-disk bytes, bounds-checked: a read out of range gives
//! 0 (rejected later by validation), a write out of range does nothing.

pub(crate) fn le16(b: &[u8], off: usize) -> u16 {
    match b.get(off..off.wrapping_add(2)) {
        Some(&[x, y]) => u16::from_le_bytes([x, y]),
        _ => 0,
    }
}

pub(crate) fn le32(b: &[u8], off: usize) -> u32 {
    match b.get(off..off.wrapping_add(4)) {
        Some(&[a, c, d, e]) => u32::from_le_bytes([a, c, d, e]),
        _ => 0,
    }
}

pub(crate) fn put16(b: &mut [u8], off: usize, v: u16) {
    if let Some(d) = b.get_mut(off..off + 2) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}

pub(crate) fn put32(b: &mut [u8], off: usize, v: u32) {
    if let Some(d) = b.get_mut(off..off + 4) {
        d.copy_from_slice(&v.to_le_bytes());
    }
}
