//! The checksums of on-disk metadata, from the `crc` crate (`no_std`, tables built at compile
//! time): CRC32C (Castagnoli) for `metadata_csum` and jbd2, and the CRC-16 of `uninit_bg`
//! group descriptors.
//!
//! ext4 and jbd2 chain CRC32C the way Linux's `crc32c(seed, data, len)` does: no inversion
//! at the end, the running value passed on as the next seed. [`crc32c_raw`] is that form; the
//! standard CRC32C of `data` is `!crc32c_raw(!0, data)`.

use crc::{Crc, Table, CRC_16_ARC, CRC_32_ISCSI};

/// CRC-32/ISCSI (CRC32C), 16 bytes a step.
static CASTAGNOLI: Crc<u32, Table<16>> = Crc::<u32, Table<16>>::new(&CRC_32_ISCSI);
/// CRC-16/ARC: polynomial 0x8005 reflected, as Linux `crc16`.
static ARC: Crc<u16, Table<1>> = Crc::<u16, Table<1>>::new(&CRC_16_ARC);

/// CRC32C update without pre/post inversion, like Linux's `crc32c(seed, data, len)` (which
/// ext4 and jbd2 chain): the standard CRC32C of `data` is `!crc32c_raw(!0, data)`.
pub fn crc32c_raw(seed: u32, data: &[u8]) -> u32 {
    // The crate takes the initial value unreflected, and CRC-32/ISCSI inverts the result.
    let mut d = CASTAGNOLI.digest_with_initial(seed.reverse_bits());
    d.update(data);
    !d.finalize()
}

/// CRC32C's polynomial, reflected (bit 31 is x^0), as the raw update works on it.
const POLY: u32 = 0x82F6_3B78;

/// `p · x mod POLY`, reflected: one step of the bit-wise update.
const fn times_x(p: u32) -> u32 {
    if p & 1 != 0 {
        (p >> 1) ^ POLY
    } else {
        p >> 1
    }
}

/// `p · x^8 mod POLY`, reflected: a byte's eight steps.
const fn times_x8(mut p: u32) -> u32 {
    let mut k = 0;
    while k < 8 {
        p = times_x(p);
        k += 1;
    }
    p
}

/// `a · b mod POLY`, both reflected.
const fn mul_mod(a: u32, mut b: u32) -> u32 {
    let mut p = 0u32;
    let mut m = 1u32 << 31;
    while m != 0 {
        if a & m != 0 {
            p ^= b;
        }
        b = times_x(b);
        m >>= 1;
    }
    p
}

/// `X2N[k]` = x^(2^k) mod POLY, reflected.
const X2N: [u32; 32] = {
    let mut t = [0u32; 32];
    t[0] = 1 << 30;
    let mut k = 1;
    while k < 32 {
        t[k] = mul_mod(t[k - 1], t[k - 1]);
        k += 1;
    }
    t
};

/// The byte-at-a-time table of the raw update (1 KiB, built at compile time).
static BYTE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = times_x8(i as u32);
        i += 1;
    }
    t
};

/// `crc32c_raw(crc, &v.to_le_bytes())`, four table steps: for the seeds ext4 derives from
/// inode numbers and generations, which the general update's setup would outweigh.
pub fn crc32c_raw_u32(crc: u32, v: u32) -> u32 {
    let mut c = crc;
    for b in v.to_le_bytes() {
        c = (c >> 8) ^ BYTE[usize::from((c as u8) ^ b)];
    }
    c
}

/// Zero runs up to this many bytes (a 4 KiB block) are carried with one multiplication.
const ZEROS_TABLE: usize = 4096;

/// `X8N[n]` = x^(8n) mod POLY, reflected: the factor that `n` zero bytes multiply a running
/// value by (16 KiB, built at compile time, each entry eight steps of multiplying by x from
/// the one before).
static X8N: [u32; ZEROS_TABLE] = {
    let mut t = [0u32; ZEROS_TABLE];
    t[0] = 1 << 31;
    let mut n = 1;
    while n < ZEROS_TABLE {
        t[n] = times_x8(t[n - 1]);
        n += 1;
    }
    t
};

/// `crc32c_raw(crc, &[0; zeros])` without reading the zeros: the running value multiplied by
/// x^(8 · zeros) (one multiplication up to 4 KiB, a few more past it, where the bytes would
/// take thousands of steps). With it a checksum over a block follows a change of a few bytes
/// (see [`crc32c_raw_change`]).
pub fn crc32c_raw_zeros(crc: u32, zeros: usize) -> u32 {
    if let Some(&f) = X8N.get(zeros) {
        return mul_mod(f, crc);
    }
    let mut p = crc;
    let mut n = zeros as u64;
    let mut k = 3; // a byte is x^8 = x^(2^3)
    while n != 0 {
        if n & 1 != 0 {
            p = mul_mod(X2N[k % 32], p);
        }
        n >>= 1;
        k += 1;
    }
    p
}

/// The raw checksum (any seed) over `len` bytes after bytes `at..at + old.len()` of them
/// changed from `old` to `new`, given `crc`, the checksum before the change: the CRC is
/// linear, so the change's own checksum, carried over the `len - at - old.len()` bytes after
/// it, is what it adds. `None` if the range is not inside `len` or the lengths differ.
pub fn crc32c_raw_change(crc: u32, len: usize, at: usize, old: &[u8], new: &[u8]) -> Option<u32> {
    let end = at.checked_add(old.len())?;
    if old.len() != new.len() || end > len {
        return None;
    }
    let mut d = 0u32;
    let mut buf = [0u8; 64];
    for (o, n) in old.chunks(64).zip(new.chunks(64)) {
        for (x, (a, b)) in buf.iter_mut().zip(o.iter().zip(n)) {
            *x = a ^ b;
        }
        d = crc32c_raw(d, buf.get(..o.len()).unwrap_or(&[]));
    }
    Some(crc ^ crc32c_raw_zeros(d, len - end))
}

/// The first and last index at which `a` and `b` differ (compared a word at a time).
fn changed_range(a: &[u8], b: &[u8]) -> Option<(usize, usize)> {
    let n = a.len().min(b.len());
    let word = |x: &[u8], i: usize| {
        let mut w = [0u8; 8];
        if let Some(s) = x.get(i..i + 8) {
            w.copy_from_slice(s);
        }
        u64::from_ne_bytes(w)
    };
    let words = n / 8;
    let first_word = (0..words).find(|&k| word(a, 8 * k) != word(b, 8 * k));
    let from = first_word.map_or(8 * words, |k| 8 * k);
    let first = (from..n).find(|&i| a.get(i) != b.get(i))?;
    let tail_from = 8 * words;
    let last = (tail_from..n)
        .rev()
        .find(|&i| a.get(i) != b.get(i))
        .or_else(|| {
            let k = (0..words)
                .rev()
                .find(|&k| word(a, 8 * k) != word(b, 8 * k))?;
            (8 * k..8 * k + 8).rev().find(|&i| a.get(i) != b.get(i))
        })?;
    Some((first, last))
}

/// The raw checksum over `new` (any seed), given `crc`, the checksum over `old`, the same
/// bytes before a change: carried over the bytes that differ ([`crc32c_raw_change`]).
/// `old` and `new` must have the same length (otherwise: `None`).
pub fn crc32c_raw_rechecked(crc: u32, old: &[u8], new: &[u8]) -> Option<u32> {
    if old.len() != new.len() {
        return None;
    }
    let Some((i, j)) = changed_range(old, new) else {
        return Some(crc);
    };
    crc32c_raw_change(crc, new.len(), i, old.get(i..=j)?, new.get(i..=j)?)
}

/// Standard CRC32C of `data` (with inversions).
pub fn crc32c(data: &[u8]) -> u32 {
    CASTAGNOLI.checksum(data)
}

/// CRC-16 (poly 0x8005 reflected, as Linux `crc16(crc, data, len)`) used by `uninit_bg`
/// group checksums: `crc` is the running value (`!0` to start).
pub fn crc16(crc: u16, data: &[u8]) -> u16 {
    // The crate takes the initial value unreflected; CRC-16/ARC has no final inversion.
    let mut d = ARC.digest_with_initial(crc.reverse_bits());
    d.update(data);
    d.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bitwise references: the definitions the table-driven crate must agree with.
    fn crc32c_bitwise(mut c: u32, d: &[u8]) -> u32 {
        for &b in d {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0x82F6_3B78
                } else {
                    c >> 1
                };
            }
        }
        c
    }

    fn crc16_bitwise(mut c: u16, d: &[u8]) -> u16 {
        for &b in d {
            c ^= u16::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    (c >> 1) ^ 0xA001
                } else {
                    c >> 1
                };
            }
        }
        c
    }

    #[test]
    fn known_vectors() {
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
        // CRC-16/ARC check value.
        assert_eq!(crc16(0, b"123456789"), 0xBB3D);
        let data: alloc::vec::Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in [0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 999, 1000] {
            let d = &data[..n];
            let c = crc32c_bitwise(!0, d);
            assert_eq!(crc32c_raw(!0, d), c, "len {n}");
            // Chaining, and seeds other than !0 (ext4 seeds with its checksum seed).
            let (a, b) = d.split_at(n / 3);
            assert_eq!(crc32c_raw(crc32c_raw(!0, a), b), c);
            assert_eq!(crc32c_raw(0x1234_5678, d), crc32c_bitwise(0x1234_5678, d));
            assert_eq!(crc16(!0, d), crc16_bitwise(!0, d), "crc16 len {n}");
            assert_eq!(crc16(crc16(!0, a), b), crc16_bitwise(!0, d));
        }
    }

    #[test]
    fn zeros_and_changes_match_the_bytes() {
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for _ in 0..200 {
            let seed = next() as u32;
            let n = (next() % 5000) as usize;
            let zeros = alloc::vec![0u8; n];
            assert_eq!(
                crc32c_raw_zeros(seed, n),
                crc32c_raw(seed, &zeros),
                "{n} zeros"
            );
            let len = 1 + (next() % 4096) as usize;
            let mut block: alloc::vec::Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let before = crc32c_raw(seed, &block);
            let at = (next() as usize) % len;
            let w = (next() as usize) % (len - at + 1);
            let old = block[at..at + w].to_vec();
            for b in &mut block[at..at + w] {
                *b ^= next() as u8;
            }
            let after = crc32c_raw_change(before, len, at, &old, &block[at..at + w]);
            assert_eq!(
                after,
                Some(crc32c_raw(seed, &block)),
                "len {len} at {at} w {w}"
            );
        }
        // whole ranges: the changed bytes found, anywhere (word edges, ends, nothing)
        for _ in 0..300 {
            let seed = next() as u32;
            let len = (next() % 1100) as usize;
            let old: alloc::vec::Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let mut new = old.clone();
            for _ in 0..(next() % 4) {
                if len > 0 {
                    let i = (next() as usize) % len;
                    new[i] ^= 1 << (next() % 8);
                }
            }
            let before = crc32c_raw(seed, &old);
            assert_eq!(
                crc32c_raw_rechecked(before, &old, &new),
                Some(crc32c_raw(seed, &new)),
                "len {len}"
            );
        }
        assert_eq!(crc32c_raw_rechecked(7, &[1, 2], &[1, 2]), Some(7));
        assert_eq!(crc32c_raw_rechecked(7, &[1, 2], &[1]), None);
        assert_eq!(crc32c_raw_change(0, 10, 8, &[0; 3], &[1; 3]), None);
        for _ in 0..1000 {
            let (c, v) = (next() as u32, next() as u32);
            assert_eq!(crc32c_raw_u32(c, v), crc32c_raw(c, &v.to_le_bytes()));
        }
        assert_eq!(crc32c_raw_change(0, 10, 0, &[0; 3], &[1; 2]), None);
    }

    #[test]
    fn crc_raw_matches_linux_convention() {
        // Linux: crc32c(~0, "123456789") without final xor = ~0xE3069283.
        assert_eq!(crc32c_raw(!0, b"123456789"), !0xE306_9283);
    }
}
