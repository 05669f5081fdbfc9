//! Time as the machines take it, and the two date formats express-session
//! uses.
//!
//! Machines measure deadlines on a monotonic clock ([`Instant`]) and use
//! the wall clock ([`SystemTime`]) only for what is stored: expiry dates
//! and TTLs. The caller reads both clocks once, when it starts a machine
//! ([`Now`]); the wall time of any later step is derived from the monotonic
//! one, so a wall clock that is stepped forward or back while a machine
//! runs changes nothing about it.
//!
//! Dates are ISO-8601 (`Date#toISOString`, in stored records) and
//! IMF-fixdate (`Date#toUTCString`, in `Set-Cookie` `Expires`), from
//! milliseconds since the Unix epoch, as in JavaScript.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The time a machine starts at: both clocks, read once by the caller (the
/// core reads no clock).
///
/// ```
/// use std::time::{Instant, SystemTime};
/// use session_sockets_core::time::Now;
///
/// let now = Now { instant: Instant::now(), wall: SystemTime::now() };
/// # let _ = now;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Now {
    /// The monotonic time: deadlines count from it.
    pub instant: Instant,
    /// The wall-clock time at `instant`: expiry dates and TTLs count from
    /// it.
    pub wall: SystemTime,
}

impl Now {
    /// Both clocks as read at the same moment.
    pub fn new(instant: Instant, wall: SystemTime) -> Self {
        Now { instant, wall }
    }

    /// The wall time at `instant`, counted from this one:
    /// `wall + (instant - self.instant)` (or minus, for an earlier
    /// instant). The wall clock is not read again, so stepping it changes
    /// nothing.
    pub fn wall_at(&self, instant: Instant) -> SystemTime {
        // `SystemTime` spans hundreds of years either way on every platform,
        // far more than any machine runs; at its ends it stays put.
        match instant.checked_duration_since(self.instant) {
            Some(later) => self.wall.checked_add(later).unwrap_or(self.wall),
            None => self
                .wall
                .checked_sub(self.instant.duration_since(instant))
                .unwrap_or(self.wall),
        }
    }

    /// This time as of `instant`: that instant and the wall time derived
    /// for it ([`Self::wall_at`]).
    pub fn at(&self, instant: Instant) -> Now {
        Now {
            instant,
            wall: self.wall_at(instant),
        }
    }
}

/// Milliseconds since the Unix epoch (negative before it), like a
/// JavaScript `Date`'s value.
pub fn millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |m| -m),
    }
}

/// The `SystemTime` of a JavaScript millisecond timestamp.
pub fn from_millis(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH.checked_add(d).unwrap_or(UNIX_EPOCH)
    } else {
        UNIX_EPOCH.checked_sub(d).unwrap_or(UNIX_EPOCH)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `(year, month 1-12, day 1-31)` of a day count since 1970-01-01.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// `Date#toISOString`: `YYYY-MM-DDTHH:mm:ss.sssZ` (years 0-9999).
pub fn to_iso(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// [`to_iso`]'s bytes without an allocation, for years 0 to 9999 (the
/// form `Date#toISOString` gives them); `None` for other years.
pub(crate) fn iso_bytes(ms: i64) -> Option<[u8; 24]> {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, mo, d) = civil_from_days(days);
    if !(0..=9999).contains(&y) {
        return None;
    }
    let mut out = *b"0000-00-00T00:00:00.000Z";
    let mut put = |at: usize, width: usize, mut v: i64| {
        for i in (0..width).rev() {
            // `v % 10` is a digit: every part is non-negative here.
            out[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, 4, y);
    put(5, 2, mo);
    put(8, 2, d);
    put(11, 2, rem / 3_600_000);
    put(14, 2, rem / 60_000 % 60);
    put(17, 2, rem / 1000 % 60);
    put(20, 3, rem % 1000);
    Some(out)
}

/// `Date#toUTCString`: `Sun, 29 Nov 2026 13:14:27 GMT`, the `Expires`
/// format of `Set-Cookie`.
pub fn to_http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000) / 1000;
    let (y, mo, d) = civil_from_days(days);
    // Indexes are in range: rem_euclid(7) is 0..7 and mo is 1..=12.
    let wd = DAYS[days.rem_euclid(7) as usize];
    let mon = MONTHS[(mo - 1) as usize];
    format!(
        "{wd}, {d:02} {mon} {y:04} {:02}:{:02}:{:02} GMT",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

/// Parses an ISO-8601 date-time as `new Date(string)` does for the strings
/// express-session stores: `YYYY-MM-DDTHH:mm[:ss[.fff...]]` then `Z` or
/// `±HH:mm`. `None` for anything else (a malformed record).
pub fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(r)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        digits
            .iter()
            .try_fold(0i64, |acc, &c| Some(acc * 10 + i64::from(c - b'0')))
    };
    let sep = |i: usize, c: u8| b.get(i) == Some(&c);
    if !(sep(4, b'-') && sep(7, b'-') && sep(10, b'T') && sep(13, b':')) {
        return None;
    }
    let (y, mo, d, h, mi) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
    );
    let mut i = 16;
    let mut sec = 0;
    let mut milli = 0;
    if sep(i, b':') {
        sec = num(i + 1..i + 3)?;
        i += 3;
        if sep(i, b'.') {
            let start = i + 1;
            let mut end = start;
            while b.get(end).is_some_and(u8::is_ascii_digit) {
                end += 1;
            }
            if end == start {
                return None;
            }
            // Milliseconds from the first three digits, padded.
            let frac = &b[start..end.min(start + 3)];
            milli = frac
                .iter()
                .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0'))
                * 10i64.pow(3 - frac.len() as u32);
            i = end;
        }
    }
    let offset_min = match b.get(i..) {
        Some(b"Z") => 0,
        Some([sign @ (b'+' | b'-'), ..]) if b.len() == i + 6 && sep(i + 3, b':') => {
            let m = num(i + 1..i + 3)? * 60 + num(i + 4..i + 6)?;
            if *sign == b'+' { m } else { -m }
        }
        _ => return None,
    };
    let valid = (1..=12).contains(&mo)
        && (1..=days_in_month(y, mo)).contains(&d)
        && (h < 24 || (h == 24 && mi == 0 && sec == 0 && milli == 0))
        && mi < 60
        && sec < 60;
    if !valid {
        return None;
    }
    let days = days_from_civil(y, mo, d);
    Some(((days * 24 + h) * 60 + mi - offset_min) * 60_000 + sec * 1000 + milli)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trips_and_matches_javascript() {
        // Values from the shared connect-redis records.
        let ms = parse_iso("2026-11-29T13:14:27.949Z").unwrap();
        assert_eq!(ms, 1_795_958_067_949);
        assert_eq!(to_iso(ms), "2026-11-29T13:14:27.949Z");
        assert_eq!(to_http_date(ms), "Sun, 29 Nov 2026 13:14:27 GMT");
        assert_eq!(to_iso(0), "1970-01-01T00:00:00.000Z");
        for ms in [
            0,
            1,
            951_782_400_000,
            1_796_044_467_949,
            253_402_300_799_999,
            -1,
        ] {
            assert_eq!(
                iso_bytes(ms).map(|b| b.to_vec()),
                Some(to_iso(ms).into_bytes())
            );
        }
        assert_eq!(iso_bytes(253_402_300_800_000), None, "year 10000");
        assert_eq!(to_http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(to_iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(parse_iso("2000-02-29T00:00:00Z"), Some(951_782_400_000));
        assert_eq!(
            parse_iso("2000-02-29T01:00:00+01:00"),
            Some(951_782_400_000)
        );
        assert_eq!(parse_iso("2000-02-29T00:00:00.5Z"), Some(951_782_400_500));
        assert_eq!(
            parse_iso("2000-02-29T00:00:00.123456Z"),
            Some(951_782_400_123)
        );
    }

    #[test]
    fn every_day_for_centuries_round_trips() {
        let mut ms = -86_400_000i64 * 365 * 70;
        while ms < 86_400_000i64 * 365 * 300 {
            assert_eq!(parse_iso(&to_iso(ms)), Some(ms));
            ms += 86_400_000 + 3_723_004;
        }
    }

    #[test]
    fn malformed_dates_are_refused() {
        for bad in [
            "",
            "2026-11-29",
            "2026-11-29T13:14:27.949",
            "2026-13-01T00:00:00Z",
            "2026-02-29T00:00:00Z",
            "2026-11-29T13:60:00Z",
            "2026-11-29T13:14:27.Z",
            "2026-11-29 13:14:27Z",
            "Sun, 29 Nov 2026 13:14:27 GMT",
            "2026-11-29T13:14:27Zjunk",
            "２０２６-11-29T13:14:27Z",
        ] {
            assert_eq!(parse_iso(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_wall_time_of_a_later_step_follows_the_monotonic_clock() {
        let start = Now::new(
            Instant::now() + Duration::from_secs(1),
            from_millis(1_000_000),
        );
        let later = start.instant + Duration::from_millis(2500);
        assert_eq!(millis(start.wall_at(later)), 1_002_500);
        assert_eq!(start.at(later).instant, later);
        assert_eq!(millis(start.wall_at(start.instant)), 1_000_000);
        let earlier = start.instant - Duration::from_millis(500);
        assert_eq!(millis(start.wall_at(earlier)), 999_500);
    }

    #[test]
    fn millis_converts_both_ways() {
        for ms in [0, 1, 1_795_958_067_949, -1000] {
            assert_eq!(millis(from_millis(ms)), ms);
        }
    }
}
