//! The ISO 8601 timestamps of event envelopes: parse one, and measure how
//! old it is.
//!
//! `rust_transform_event` adds `latency_ms` (now minus the event's
//! timestamp) when the timestamp parses. Accepted forms are those
//! upstream's chrono calls take: RFC 3339 with `Z` or a `±HH:MM` offset, or
//! a naive `YYYY-MM-DDTHH:MM:SS[.fraction]` read as UTC. A space may stand
//! for the `T` (what Python's `str(datetime)` prints).

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds per second.
const NANOS: i128 = 1_000_000_000;

/// Parses an ISO 8601 / RFC 3339 timestamp into nanoseconds since the Unix
/// epoch. `None` when it is not one of the accepted forms.
pub fn parse_iso8601_nanos(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(range)?;
        part.iter().all(u8::is_ascii_digit).then_some(())?;
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    let sep = |i: usize, allowed: &[u8]| b.get(i).is_some_and(|c| allowed.contains(c));

    if !(sep(4, b"-") && sep(7, b"-") && sep(10, b"Tt ") && sep(13, b":") && sep(16, b":")) {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }

    let mut pos = 19;
    let mut nanos: i128 = 0;
    if b.get(pos) == Some(&b'.') {
        let start = pos + 1;
        let digits = b[start..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        for i in 0..9 {
            let d = if i < digits {
                i128::from(b[start + i] - b'0')
            } else {
                0
            };
            nanos = nanos * 10 + d;
        }
        pos = start + digits;
    }

    let offset_secs: i64 = match b.get(pos) {
        None => 0,
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if pos + 6 == b.len() && sep(pos + 3, b":") => {
            let (oh, om) = (num(pos + 1..pos + 3)?, num(pos + 4..pos + 6)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if sign == b'-' { -secs } else { secs }
        }
        _ => return None,
    };

    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some(i128::from(secs) * NANOS + nanos)
}

/// Milliseconds from `timestamp` to `now`, truncated toward zero (negative
/// for a timestamp in the future); `None` if it does not parse.
pub fn latency_ms(timestamp: &str, now: SystemTime) -> Option<i64> {
    let then = parse_iso8601_nanos(timestamp)?;
    let delta = unix_nanos(now) - then;
    i64::try_from(delta / 1_000_000).ok()
}

/// `now` as RFC 3339 UTC with microseconds, e.g.
/// `2024-05-01T12:00:00.123456Z` (the default `ts` of an envelope).
pub fn format_rfc3339_micros(now: SystemTime) -> String {
    humantime::format_rfc3339_micros(now).to_string()
}

fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(text: &str) -> Option<i128> {
        parse_iso8601_nanos(text).map(|n| n / NANOS)
    }

    #[test]
    fn parses_the_accepted_forms() {
        // 2024-05-01T12:00:00Z = 1714564800 (date -u -d ... +%s).
        assert_eq!(secs("2024-05-01T12:00:00Z"), Some(1_714_564_800));
        assert_eq!(secs("2024-05-01T12:00:00+00:00"), Some(1_714_564_800));
        assert_eq!(secs("2024-05-01T14:30:00+02:30"), Some(1_714_564_800));
        assert_eq!(secs("2024-05-01T09:00:00-03:00"), Some(1_714_564_800));
        assert_eq!(secs("2024-05-01 12:00:00"), Some(1_714_564_800));
        assert_eq!(secs("2024-05-01t12:00:00z"), Some(1_714_564_800));
        assert_eq!(secs("1970-01-01T00:00:00"), Some(0));
        assert_eq!(secs("1969-12-31T23:59:59Z"), Some(-1));
        assert_eq!(secs("2000-02-29T00:00:00Z"), Some(951_782_400));
        assert_eq!(
            parse_iso8601_nanos("2024-05-01T12:00:00.123456789123Z"),
            Some(1_714_564_800 * NANOS + 123_456_789)
        );
        assert_eq!(
            parse_iso8601_nanos("2024-05-01T12:00:00.5"),
            Some(1_714_564_800 * NANOS + 500_000_000)
        );
    }

    #[test]
    fn rejects_everything_else() {
        for bad in [
            "",
            "2024-05-01",
            "2024-05-01T12:00",
            "2024-13-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+0200",
            "2024-05-01T12:00:00+24:00",
            "2024-05-01T12:00:00Zjunk",
            "2024-05-01T12:00:00 UTC",
            "+024-05-01T12:00:00Z",
            "２０２４-05-01T12:00:00Z",
            "1714564800",
        ] {
            assert_eq!(parse_iso8601_nanos(bad), None, "{bad}");
        }
    }

    #[test]
    fn latency_is_now_minus_then() {
        let now = UNIX_EPOCH + Duration::from_millis(1_714_564_800_250);
        assert_eq!(latency_ms("2024-05-01T12:00:00Z", now), Some(250));
        assert_eq!(latency_ms("2024-05-01T12:00:01Z", now), Some(-750));
        assert_eq!(latency_ms("not a time", now), None);
    }

    #[test]
    fn formats_with_microseconds_and_z() {
        let t = UNIX_EPOCH + Duration::from_micros(1_714_564_800_123_456);
        assert_eq!(format_rfc3339_micros(t), "2024-05-01T12:00:00.123456Z");
        let parsed = parse_iso8601_nanos(&format_rfc3339_micros(t)).unwrap();
        assert_eq!(parsed, 1_714_564_800_123_456_000);
    }

    proptest::proptest! {
        #[test]
        fn prop_any_text_is_safe(text in "\\PC{0,40}") {
            let _ = parse_iso8601_nanos(&text);
        }

        #[test]
        fn prop_formatted_times_parse_back(micros in 0u64..4_102_444_800_000_000) {
            let t = UNIX_EPOCH + Duration::from_micros(micros);
            let parsed = parse_iso8601_nanos(&format_rfc3339_micros(t));
            proptest::prop_assert_eq!(parsed, Some(i128::from(micros) * 1000));
        }
    }
}
