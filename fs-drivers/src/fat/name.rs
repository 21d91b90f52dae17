//! Names: VFAT long names (UTF-16 in 13-unit slots, with the short entry's checksum), 8.3
//! short names as Linux shows them, and the short alias a new long name gets (`NAME~N.EXT`).

use super::Error;
use alloc::string::String;
use alloc::vec::Vec;

/// Longest long name, in UTF-16 units.
pub const MAX_LFN: usize = 255;

/// The LFN checksum of an 11-byte short name.
pub fn checksum(short: &[u8; 11]) -> u8 {
    short
        .iter()
        .fold(0u8, |s, &c| (s >> 1).wrapping_add(s << 7).wrapping_add(c))
}

/// Characters Linux's vfat refuses in a long name.
fn bad_long_char(c: char) -> bool {
    (c as u32) < 0x20 || matches!(c, '*' | '?' | '<' | '>' | '|' | '"' | ':' | '/' | '\\')
}

/// Characters allowed in a short name besides letters and digits.
fn short_char_ok(c: u8) -> bool {
    c.is_ascii_uppercase() || c.is_ascii_digit() || b"$%'-_@~`!(){}^#&".contains(&c)
}

/// A name checked for storing: UTF-8 without the characters vfat refuses, trailing dots
/// dropped (Linux stores `a.` as `a`), at most 255 UTF-16 units. Returns the UTF-16 units.
pub fn long_units(name: &[u8]) -> Result<Vec<u16>, Error> {
    let s = core::str::from_utf8(name).map_err(|_| Error::InvalidName)?;
    let s = s.trim_end_matches('.');
    if s.is_empty() || s.chars().any(bad_long_char) {
        return Err(Error::InvalidName);
    }
    let units: Vec<u16> = s.encode_utf16().collect();
    if units.len() > MAX_LFN {
        return Err(Error::NameTooLong);
    }
    Ok(units)
}

/// The name as stored (trailing dots dropped), for comparisons.
pub fn stored_form(name: &[u8]) -> &[u8] {
    let mut n = name;
    while let [rest @ .., b'.'] = n {
        n = rest;
    }
    n
}

/// Whether two names are the same to vfat (ASCII letters compare without case).
pub fn same_name(a: &[u8], b: &[u8]) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// A short name as Linux shows it: `BASE.EXT` without padding, lower case where the entry's
/// case bits (`0x08` base, `0x10` extension) say so; bytes above 0x7F read as Latin-1.
pub fn short_display(short: &[u8; 11], case_bits: u8) -> Vec<u8> {
    let mut s = String::new();
    let base_end = short[..8]
        .iter()
        .rposition(|&c| c != b' ')
        .map_or(0, |p| p + 1);
    let ext_end = short[8..]
        .iter()
        .rposition(|&c| c != b' ')
        .map_or(0, |p| p + 1);
    let push = |s: &mut String, c: u8, lower: bool| {
        let c = if lower { c.to_ascii_lowercase() } else { c };
        s.push(char::from(c));
    };
    for (i, &c) in short[..base_end].iter().enumerate() {
        let c = if i == 0 && c == 0x05 { 0xE5 } else { c };
        push(&mut s, c, case_bits & 0x08 != 0);
    }
    if ext_end > 0 {
        s.push('.');
        for &c in &short[8..8 + ext_end] {
            push(&mut s, c, case_bits & 0x10 != 0);
        }
    }
    s.into_bytes()
}

/// A long name from its UTF-16 units (up to the first NUL); unpaired surrogates become U+FFFD.
pub fn from_units(units: &[u16]) -> Vec<u8> {
    let end = units.iter().position(|&u| u == 0).unwrap_or(units.len());
    char::decode_utf16(units[..end].iter().copied())
        .map(|r| r.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect::<String>()
        .into_bytes()
}

/// The 8.3 form of `name` if it is one exactly as given (upper case, valid characters, at
/// most 8 + 3): such a name needs no long entries.
pub fn exact_short(name: &[u8]) -> Option<[u8; 11]> {
    if name.is_empty() || name[0] == b'.' || name[0] == b' ' {
        return None;
    }
    let (base, ext) = match name.iter().position(|&c| c == b'.') {
        Some(p) => (&name[..p], &name[p + 1..]),
        None => (name, &name[..0]),
    };
    if base.is_empty() || base.len() > 8 || ext.len() > 3 || ext.contains(&b'.') {
        return None;
    }
    if !base.iter().chain(ext).all(|&c| short_char_ok(c)) {
        return None;
    }
    let mut out = [b' '; 11];
    out[..base.len()].copy_from_slice(base);
    out[8..8 + ext.len()].copy_from_slice(ext);
    if out[0] == 0xE5 {
        out[0] = 0x05;
    }
    Some(out)
}

/// Base and extension characters of an alias for `name`: upper case, characters a short name
/// cannot hold replaced by `_`, spaces and extra dots dropped. Also whether that lost
/// anything (then the alias needs a `~N` tail even if it is free).
fn alias_parts(name: &str) -> (Vec<u8>, Vec<u8>, bool) {
    let trimmed = name.trim_start_matches('.');
    let mut lossy = trimmed.len() != name.len();
    let (base, ext) = match trimmed.rfind('.') {
        Some(p) => (&trimmed[..p], &trimmed[p + 1..]),
        None => (trimmed, ""),
    };
    let conv = |part: &str, max: usize, lossy: &mut bool| {
        let mut out = Vec::new();
        for c in part.chars() {
            if c == ' ' || c == '.' {
                *lossy = true;
                continue;
            }
            let u = c.to_ascii_uppercase();
            let b = if u.is_ascii() && short_char_ok(u as u8) {
                u as u8
            } else {
                *lossy = true;
                b'_'
            };
            if out.len() < max {
                out.push(b);
            } else {
                *lossy = true;
            }
        }
        out
    };
    let b = conv(base, 8, &mut lossy);
    let e = conv(ext, 3, &mut lossy);
    (b, e, lossy)
}

/// The short alias for long name `name` (valid UTF-8): the plain upper-case 8.3 form when it
/// loses nothing and `taken` does not hold it, else `BASE~N.EXT` with the smallest free `N`.
pub fn make_alias(name: &[u8], taken: &dyn Fn(&[u8; 11]) -> bool) -> Result<[u8; 11], Error> {
    let s = core::str::from_utf8(name).map_err(|_| Error::InvalidName)?;
    let (mut base, ext, lossy) = alias_parts(s);
    if base.is_empty() {
        base.push(b'_');
    }
    let mut out = [b' '; 11];
    out[8..8 + ext.len()].copy_from_slice(&ext);
    if !lossy {
        out[..base.len()].copy_from_slice(&base);
        if !taken(&out) {
            return Ok(out);
        }
    }
    for n in 1u32..1_000_000 {
        let mut tail = [0u8; 8];
        let mut digits = 0;
        let mut v = n;
        while v > 0 {
            tail[7 - digits] = b'0' + (v % 10) as u8;
            v /= 10;
            digits += 1;
        }
        let keep = base.len().min(7 - digits);
        let mut o = out;
        o[..8].fill(b' ');
        o[..keep].copy_from_slice(&base[..keep]);
        o[keep] = b'~';
        o[keep + 1..keep + 1 + digits].copy_from_slice(&tail[8 - digits..]);
        if !taken(&o) {
            return Ok(o);
        }
    }
    Err(Error::Exists)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_matches_the_specification() {
        // From a directory written by Linux: "README  TXT" has checksum 0x73... computed
        // by the rotate-and-add rule; check the rule on a hand-computed case.
        let mut s = 0u8;
        for &c in b"FOO     BAR" {
            s = (s >> 1).wrapping_add(s << 7).wrapping_add(c);
        }
        assert_eq!(checksum(b"FOO     BAR"), s);
        assert_ne!(checksum(b"FOO     BAR"), checksum(b"FOO     BAS"));
    }

    #[test]
    fn aliases() {
        let none = |_: &[u8; 11]| false;
        assert_eq!(&make_alias(b"readme.txt", &none).unwrap(), b"README  TXT");
        assert_eq!(
            &make_alias(b"Long File Name.text", &none).unwrap(),
            b"LONGFI~1TEX"
        );
        assert_eq!(&make_alias(b".bashrc", &none).unwrap(), b"BASHRC~1   ");
        assert_eq!(
            &make_alias("é.txt".as_bytes(), &none).unwrap(),
            b"_~1     TXT"
        );
        let taken = |s: &[u8; 11]| s == b"README  TXT" || s == b"README~1TXT";
        assert_eq!(&make_alias(b"readme.txt", &taken).unwrap(), b"README~2TXT");
        let many = |s: &[u8; 11]| s[..6] == *b"ABCDEF" || s[..6] == *b"ABCDE~";
        assert_eq!(&make_alias(b"abcdefghij", &many).unwrap(), b"ABCD~100   ");
    }

    #[test]
    fn names() {
        assert_eq!(exact_short(b"README.TXT"), Some(*b"README  TXT"));
        assert_eq!(exact_short(b"readme.txt"), None);
        assert_eq!(exact_short(b"A.B.C"), None);
        assert_eq!(short_display(b"README  TXT", 0x18), b"readme.txt");
        assert_eq!(short_display(b"NOEXT      ", 0), b"NOEXT");
        assert!(long_units(b"a:b").is_err());
        assert!(long_units(&[0xff]).is_err());
        assert_eq!(
            long_units(b"ab..").unwrap(),
            [u16::from(b'a'), u16::from(b'b')]
        );
        assert!(matches!(long_units(&[b'x'; 256]), Err(Error::NameTooLong)));
        assert_eq!(
            from_units(&[0x61, 0xD800, 0x62, 0]),
            "a\u{FFFD}b".as_bytes()
        );
    }
}
