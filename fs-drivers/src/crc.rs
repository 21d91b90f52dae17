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
    fn crc_raw_matches_linux_convention() {
        // Linux: crc32c(~0, "123456789") without final xor = ~0xE3069283.
        assert_eq!(crc32c_raw(!0, b"123456789"), !0xE306_9283);
    }
}
