//! Extended attributes of host files, for `put` onto ext4: read with one
//! `getfattr -h -P -R -d -m - -e hex --absolute-names` run (std has no xattr calls).

use std::collections::HashMap;
use std::path::Path;

/// Host path (as bytes) → its extended attributes (name, value).
pub(crate) type HostXattrs = HashMap<Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>>;

/// The extended attributes of every file under `src`, symlinks not followed.
pub(crate) fn host_xattrs(src: &Path) -> Result<HostXattrs, String> {
    let out = std::process::Command::new("getfattr")
        .args([
            "-h",
            "-P",
            "-R",
            "-d",
            "-m",
            "-",
            "-e",
            "hex",
            "--absolute-names",
        ])
        .arg(src)
        .output()
        .map_err(|e| format!("getfattr (package attr) is needed to copy xattrs: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{}: getfattr: {}",
            src.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    parse_getfattr(&out.stdout)
        .ok_or_else(|| format!("{}: cannot parse getfattr's output", src.display()))
}

/// Undo getfattr's `\ooo` escapes.
fn unescape(s: &[u8]) -> Option<Vec<u8>> {
    let mut v = Vec::with_capacity(s.len());
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        if c == b'\\' {
            let oct = s.get(i + 1..i + 4)?;
            let mut b = 0u32;
            for &d in oct {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                b = b * 8 + u32::from(d - b'0');
            }
            v.push(u8::try_from(b).ok()?);
            i += 4;
        } else {
            v.push(c);
            i += 1;
        }
    }
    Some(v)
}

fn parse_getfattr(text: &[u8]) -> Option<HostXattrs> {
    let mut map = HostXattrs::new();
    let mut cur: Option<Vec<u8>> = None;
    for line in text.split(|&c| c == b'\n') {
        if line.is_empty() {
            continue;
        }
        if let Some(p) = line.strip_prefix(b"# file: ") {
            cur = Some(unescape(p)?);
            continue;
        }
        let path = cur.clone()?;
        let eq = line.iter().position(|&c| c == b'=');
        let (name, value) = match eq {
            Some(k) => (line.get(..k)?, line.get(k + 1..)?),
            None => (line, &b"0x"[..]),
        };
        let hex = value.strip_prefix(b"0x")?;
        if hex.len() % 2 != 0 {
            return None;
        }
        let mut bytes = Vec::with_capacity(hex.len() / 2);
        for pair in hex.chunks(2) {
            let h = std::str::from_utf8(pair).ok()?;
            bytes.push(u8::from_str_radix(h, 16).ok()?);
        }
        map.entry(path).or_default().push((unescape(name)?, bytes));
    }
    Some(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn getfattr_output_is_parsed() {
        let text = b"# file: xs/f\nuser.a=0x0102\nuser.empty=0x\n\n# file: xs/d/we ird\\012name\\134\nuser.b=0x6869\n\n";
        let m = parse_getfattr(text).unwrap();
        assert_eq!(
            m[&b"xs/f"[..]],
            vec![
                (b"user.a".to_vec(), vec![1, 2]),
                (b"user.empty".to_vec(), vec![])
            ]
        );
        assert_eq!(
            m[&b"xs/d/we ird\nname\\"[..]],
            vec![(b"user.b".to_vec(), b"hi".to_vec())]
        );
        assert!(parse_getfattr(b"user.a=0x01\n").is_none(), "no file line");
        assert!(
            parse_getfattr(b"# file: x\nuser.a=0x1\n").is_none(),
            "odd hex"
        );
    }
}
