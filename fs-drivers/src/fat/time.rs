//! DOS dates and times (local time taken as UTC, 2 s resolution for times) to and from Unix
//! seconds.

/// Seconds of 1980-01-01 00:00:00 UTC, the first DOS date.
pub const DOS_EPOCH: i64 = 315_532_800;
/// Seconds of 2107-12-31 23:59:58 UTC, the last DOS time.
pub const DOS_END: i64 = 4_354_819_198;

/// Days since 1970-01-01 of a civil date (proleptic Gregorian).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// Unix seconds of a DOS date, time and 10 ms count (invalid fields are clamped, as Linux
/// does not refuse them either).
pub fn to_unix(date: u16, time: u16, centis: u8) -> (i64, u32) {
    let year = 1980 + i64::from(date >> 9);
    let month = i64::from((date >> 5) & 0xF).clamp(1, 12);
    let day = i64::from(date & 0x1F).max(1);
    let hour = i64::from(time >> 11).min(23);
    let min = i64::from((time >> 5) & 0x3F).min(59);
    let sec2 = i64::from(time & 0x1F).min(29);
    let centis = i64::from(centis.min(199));
    let secs = days_from_civil(year, month, day) * 86_400
        + hour * 3600
        + min * 60
        + sec2 * 2
        + centis / 100;
    (secs, ((centis % 100) * 10_000_000) as u32)
}

/// DOS date, time and 10 ms count of Unix seconds (clamped to the DOS range).
pub fn from_unix(secs: i64, nsec: u32) -> (u16, u16, u8) {
    let s = secs.clamp(DOS_EPOCH, DOS_END);
    let (y, m, d) = civil_from_days(s.div_euclid(86_400));
    let rem = s.rem_euclid(86_400);
    let date = (((y - 1980) as u16) << 9) | ((m as u16) << 5) | d as u16;
    let time = (((rem / 3600) as u16) << 11)
        | ((((rem / 60) % 60) as u16) << 5)
        | (((rem % 60) / 2) as u16);
    let centis = if s == secs {
        ((rem % 2) * 100) as u8 + (nsec.min(999_999_999) / 10_000_000) as u8
    } else {
        0
    };
    (date, time, centis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_known_dates() {
        // 2024-02-29 12:34:56 UTC
        let t = 1_709_210_096;
        let (d, tm, c) = from_unix(t, 500_000_000);
        assert_eq!(d, ((2024 - 1980) << 9) | (2 << 5) | 29);
        assert_eq!(tm, (12 << 11) | (34 << 5) | 28);
        assert_eq!(c, 50);
        assert_eq!(to_unix(d, tm, c), (t, 500_000_000));
        assert_eq!(to_unix(d, tm, 0), (t, 0));
        assert_eq!(from_unix(0, 0), (1 << 5 | 1, 0, 0));
        assert_eq!(to_unix(0x21, 0, 0), (DOS_EPOCH, 0));
        let (d, tm, _) = from_unix(i64::MAX, 0);
        assert_eq!(to_unix(d, tm, 0).0, DOS_END);
    }
}
