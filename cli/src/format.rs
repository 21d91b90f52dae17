//! How `pvfs image` shows names, modes and times: `\xHH` escapes, `ls -l` mode strings and
//! UTC timestamps with nanoseconds. Part of the interface (`docs/pvfs-image.md`).

use pvfs_fs::ext4::{FileType, Timestamp};

/// Bytes shown as UTF-8 where valid, `\xHH` otherwise (and for control characters).
pub fn escape(b: &[u8]) -> String {
    let mut s = String::new();
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c.is_control() || c == '\\' {
                let mut buf = [0u8; 4];
                for byte in c.encode_utf8(&mut buf).bytes() {
                    s.push_str(&format!("\\x{byte:02x}"));
                }
            } else {
                s.push(c);
            }
        }
        for byte in chunk.invalid() {
            s.push_str(&format!("\\x{byte:02x}"));
        }
    }
    s
}

/// `ls -l` style mode string.
pub fn mode_string(mode: u16) -> String {
    let t = match FileType::from_mode(mode) {
        FileType::Directory => 'd',
        FileType::Symlink => 'l',
        FileType::CharDev => 'c',
        FileType::BlockDev => 'b',
        FileType::Fifo => 'p',
        FileType::Socket => 's',
        FileType::Regular => '-',
        FileType::Unknown => '?',
    };
    let mut s = String::from(t);
    let bit = |m: u16, c: char| if mode & m != 0 { c } else { '-' };
    let special =
        |x: u16, sbit: u16, lower: char, upper: char| match (mode & x != 0, mode & sbit != 0) {
            (true, true) => lower,
            (false, true) => upper,
            (true, false) => 'x',
            (false, false) => '-',
        };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(special(0o100, 0o4000, 's', 'S'));
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(special(0o010, 0o2000, 's', 'S'));
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(special(0o001, 0o1000, 't', 'T'));
    s
}

/// `YYYY-MM-DD HH:MM:SS.NNNNNNNNN` (UTC).
pub fn fmt_time(t: Timestamp) -> String {
    let days = t.sec.div_euclid(86_400);
    let secs = t.sec.rem_euclid(86_400);
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:09}",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60,
        t.nsec
    )
}

/// A `stat` time field: `YYYY-MM-DD HH:MM:SS.NNNNNNNNN (SECONDS.NANOS)`.
pub fn time_field(t: Timestamp) -> String {
    format!("{} ({}.{:09})", fmt_time(t), t.sec, t.nsec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(mode_string(0o104755), "-rwsr-xr-x");
        assert_eq!(mode_string(0o041777), "drwxrwxrwt");
        assert_eq!(mode_string(0o120777), "lrwxrwxrwx");
        assert_eq!(
            fmt_time(Timestamp { sec: 0, nsec: 5 }),
            "1970-01-01 00:00:00.000000005"
        );
        assert_eq!(
            fmt_time(Timestamp {
                sec: 1_600_000_000,
                nsec: 0
            }),
            "2020-09-13 12:26:40.000000000"
        );
        assert_eq!(
            fmt_time(Timestamp {
                sec: -86_400 * 365,
                nsec: 0
            }),
            "1969-01-01 00:00:00.000000000"
        );
        assert_eq!(escape(b"a\xffb\n"), "a\\xffb\\x0a");
    }
}
