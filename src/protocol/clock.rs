//! Time as the wire protocol writes it.
//!
//! Two formats appear in server frames: RFC 3339 UTC with exactly three
//! fractional digits and a `Z` suffix (`2026-11-27T05:15:54.450Z`: `ts`,
//! `server_time`, `timestamp`), and integer milliseconds since the Unix epoch
//! (`server_timestamp` in `PONG`). Frame builders take the instant as a
//! [`SystemTime`] argument so tests can pin it; [`Clock`] lets longer-lived
//! code (sessions, the ping ticker) be handed a fake clock the same way.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The latest instant RFC 3339 can express (`9999-12-31T23:59:59.999Z`);
/// later instants are clamped to it instead of failing to format.
const MAX_RFC3339_SECS: u64 = 253_402_300_799;

/// A source of "now".
///
/// Exists so code that stamps frames can be tested with a fixed instant.
pub trait Clock: Send + Sync {
    /// The current wall-clock time.
    fn now(&self) -> SystemTime;
}

/// The real wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that always reports the same instant (tests, replay tools).
#[derive(Clone, Copy, Debug)]
pub struct FixedClock(pub SystemTime);

impl Clock for FixedClock {
    fn now(&self) -> SystemTime {
        self.0
    }
}

/// Format `t` as RFC 3339 UTC with millisecond precision and a `Z` suffix,
/// the only timestamp text format the server puts on the wire.
///
/// Instants before 1970 are written as the epoch and instants after year
/// 9999 as the last representable millisecond (the formatter cannot express
/// them; a wrong clock must not crash a connection).
#[must_use]
pub fn rfc3339_millis(t: SystemTime) -> String {
    let mut out = String::with_capacity(24);
    push_rfc3339_millis(&mut out, t);
    out
}

/// Append the [`rfc3339_millis`] form of `t` to `out` (no allocation of its own).
pub fn push_rfc3339_millis(out: &mut String, t: SystemTime) {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    let clamped = if since_epoch.as_secs() > MAX_RFC3339_SECS {
        UNIX_EPOCH + Duration::new(MAX_RFC3339_SECS, 999_000_000)
    } else {
        t.max(UNIX_EPOCH)
    };
    // Cannot fail: writing to a String never errors and the instant is in
    // the formatter's range.
    let _ = write!(out, "{}", humantime::format_rfc3339_millis(clamped));
}

/// Milliseconds since the Unix epoch (negative before 1970, saturating at
/// the `i64` range), as used by `PONG.server_timestamp`.
#[must_use]
pub fn epoch_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    #[test]
    fn formats_with_millis_and_z() {
        assert_eq!(
            rfc3339_millis(at(1_795_756_554_450)),
            "2026-11-27T05:15:54.450Z"
        );
        assert_eq!(rfc3339_millis(at(0)), "1970-01-01T00:00:00.000Z");
        // Sub-millisecond digits are truncated, not rounded.
        let t = UNIX_EPOCH + Duration::from_nanos(1_999_999);
        assert_eq!(rfc3339_millis(t), "1970-01-01T00:00:00.001Z");
    }

    #[test]
    fn out_of_range_instants_are_clamped() {
        let before = UNIX_EPOCH - Duration::from_secs(10);
        assert_eq!(rfc3339_millis(before), "1970-01-01T00:00:00.000Z");
        let far = UNIX_EPOCH + Duration::from_secs(400_000_000_000);
        assert_eq!(rfc3339_millis(far), "9999-12-31T23:59:59.999Z");
    }

    #[test]
    fn epoch_millis_both_sides_of_1970() {
        assert_eq!(epoch_millis(at(1_795_756_556_321)), 1_795_756_556_321);
        assert_eq!(epoch_millis(UNIX_EPOCH - Duration::from_millis(5)), -5);
    }

    #[test]
    fn clocks() {
        let fixed = FixedClock(at(42));
        assert_eq!(fixed.now(), at(42));
        assert!(SystemClock.now() > at(1_700_000_000_000));
    }
}
