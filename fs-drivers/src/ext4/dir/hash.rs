//! Directory-index (htree) name hashes: legacy (`dx_hack_hash`), half-MD4 and TEA, each in a
//! signed-char and an unsigned-char flavour, as e2fsprogs and Linux compute them.

/// Hash versions stored in the dx root (`dx_root_info.hash_version`).
pub const LEGACY: u8 = 0;
/// Half-MD4.
pub const HALF_MD4: u8 = 1;
/// TEA.
pub const TEA: u8 = 2;
/// Legacy, unsigned chars.
pub const LEGACY_UNSIGNED: u8 = 3;
/// Half-MD4, unsigned chars.
pub const HALF_MD4_UNSIGNED: u8 = 4;
/// TEA, unsigned chars.
pub const TEA_UNSIGNED: u8 = 5;

const DEFAULT_SEED: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

fn ch(b: u8, signed: bool) -> u32 {
    if signed {
        b as i8 as i32 as u32
    } else {
        u32::from(b)
    }
}

fn dx_hack_hash(name: &[u8], signed: bool) -> u32 {
    let (mut h0, mut h1) = (0x12a3_fe2d_u32, 0x37ab_e8f9_u32);
    for &b in name {
        let mut h = h1.wrapping_add(h0 ^ ch(b, signed).wrapping_mul(7_152_373));
        if h & 0x8000_0000 != 0 {
            h = h.wrapping_sub(0x7fff_ffff);
        }
        h1 = h0;
        h0 = h;
    }
    h0 << 1
}

/// Pack up to `out.len() * 4` bytes of `msg` into words, padded as Linux's `str2hashbuf`.
fn str2hashbuf(msg: &[u8], out: &mut [u32], signed: bool) {
    let len = msg.len() as u32;
    let mut pad = len | (len << 8);
    pad |= pad << 16;
    let mut val = pad;
    let take = msg.len().min(out.len() * 4);
    let mut w = 0usize;
    for (i, &b) in msg.iter().take(take).enumerate() {
        val = ch(b, signed).wrapping_add(val << 8);
        if i % 4 == 3 {
            if let Some(o) = out.get_mut(w) {
                *o = val;
            }
            w += 1;
            val = pad;
        }
    }
    if w < out.len() {
        if let Some(o) = out.get_mut(w) {
            *o = val;
        }
        w += 1;
    }
    for o in out.iter_mut().skip(w) {
        *o = pad;
    }
}

fn half_md4(buf: &mut [u32; 4], inp: &[u32; 8]) {
    let f = |x: u32, y: u32, z: u32| z ^ (x & (y ^ z));
    let g = |x: u32, y: u32, z: u32| (x & y).wrapping_add((x ^ y) & z);
    let h = |x: u32, y: u32, z: u32| x ^ y ^ z;
    let [mut a, mut b, mut c, mut d] = *buf;
    macro_rules! round {
        ($f:expr, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $s:expr) => {
            $a = $a
                .wrapping_add($f($b, $c, $d))
                .wrapping_add($x)
                .rotate_left($s);
        };
    }
    const K2: u32 = 0x5A82_7999;
    const K3: u32 = 0x6ED9_EBA1;
    round!(f, a, b, c, d, inp[0], 3);
    round!(f, d, a, b, c, inp[1], 7);
    round!(f, c, d, a, b, inp[2], 11);
    round!(f, b, c, d, a, inp[3], 19);
    round!(f, a, b, c, d, inp[4], 3);
    round!(f, d, a, b, c, inp[5], 7);
    round!(f, c, d, a, b, inp[6], 11);
    round!(f, b, c, d, a, inp[7], 19);
    round!(g, a, b, c, d, inp[1].wrapping_add(K2), 3);
    round!(g, d, a, b, c, inp[3].wrapping_add(K2), 5);
    round!(g, c, d, a, b, inp[5].wrapping_add(K2), 9);
    round!(g, b, c, d, a, inp[7].wrapping_add(K2), 13);
    round!(g, a, b, c, d, inp[0].wrapping_add(K2), 3);
    round!(g, d, a, b, c, inp[2].wrapping_add(K2), 5);
    round!(g, c, d, a, b, inp[4].wrapping_add(K2), 9);
    round!(g, b, c, d, a, inp[6].wrapping_add(K2), 13);
    round!(h, a, b, c, d, inp[3].wrapping_add(K3), 3);
    round!(h, d, a, b, c, inp[7].wrapping_add(K3), 9);
    round!(h, c, d, a, b, inp[2].wrapping_add(K3), 11);
    round!(h, b, c, d, a, inp[6].wrapping_add(K3), 15);
    round!(h, a, b, c, d, inp[1].wrapping_add(K3), 3);
    round!(h, d, a, b, c, inp[5].wrapping_add(K3), 9);
    round!(h, c, d, a, b, inp[0].wrapping_add(K3), 11);
    round!(h, b, c, d, a, inp[4].wrapping_add(K3), 15);
    buf[0] = buf[0].wrapping_add(a);
    buf[1] = buf[1].wrapping_add(b);
    buf[2] = buf[2].wrapping_add(c);
    buf[3] = buf[3].wrapping_add(d);
}

fn tea(buf: &mut [u32; 4], inp: &[u32; 4]) {
    let (mut b0, mut b1) = (buf[0], buf[1]);
    let [a, b, c, d] = *inp;
    let mut sum = 0u32;
    for _ in 0..16 {
        sum = sum.wrapping_add(0x9E37_79B9);
        b0 = b0.wrapping_add(
            (b1 << 4).wrapping_add(a) ^ b1.wrapping_add(sum) ^ (b1 >> 5).wrapping_add(b),
        );
        b1 = b1.wrapping_add(
            (b0 << 4).wrapping_add(c) ^ b0.wrapping_add(sum) ^ (b0 >> 5).wrapping_add(d),
        );
    }
    buf[0] = buf[0].wrapping_add(b0);
    buf[1] = buf[1].wrapping_add(b1);
}

/// Mixes `name` into `buf` with `mix`, `4 * N` bytes at a time (the last chunk padded by
/// [`str2hashbuf`]), as Linux's `ext4fs_dirhash` does for half-MD4 (`N` = 8) and TEA (4).
fn walk_chunks<const N: usize>(
    name: &[u8],
    signed: bool,
    buf: &mut [u32; 4],
    mix: fn(&mut [u32; 4], &[u32; N]),
) {
    let mut inp = [0u32; N];
    let mut p = name;
    loop {
        str2hashbuf(p, &mut inp, signed);
        mix(buf, &inp);
        if p.len() <= 4 * N {
            break;
        }
        p = p.get(4 * N..).unwrap_or(&[]);
    }
}

/// The (major) hash of `name` for hash `version` with `seed` (all-zero seed = default).
/// Returns `None` for an unknown version.
pub fn dirhash(name: &[u8], version: u8, seed: [u32; 4]) -> Option<u32> {
    let mut buf = if seed.iter().all(|&s| s == 0) {
        DEFAULT_SEED
    } else {
        seed
    };
    let hash = match version {
        LEGACY | LEGACY_UNSIGNED => dx_hack_hash(name, version == LEGACY),
        HALF_MD4 | HALF_MD4_UNSIGNED => {
            walk_chunks(name, version == HALF_MD4, &mut buf, half_md4);
            buf[1]
        }
        TEA | TEA_UNSIGNED => {
            walk_chunks(name, version == TEA, &mut buf, tea);
            buf[0]
        }
        _ => return None,
    };
    let hash = hash & !1;
    Some(if hash == 0x7fff_ffff << 1 {
        (0x7fff_ffff - 1) << 1
    } else {
        hash
    })
}
