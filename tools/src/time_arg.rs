//! A time given on the command line: an RFC 3339 instant, or a duration
//! meaning that long before now. `wse replay` and the `wse log` ranges
//! (`--since`, `--until`) take the same forms.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A time given on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TimeArg {
    /// An instant (RFC 3339).
    At(SystemTime),
    /// That long before now (`1h`, `30m`, `1h30m`, `90s`).
    Ago(Duration),
}

impl FromStr for TimeArg {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Ok(t) = humantime::parse_rfc3339_weak(s) {
            return Ok(Self::At(t));
        }
        humantime::parse_duration(s).map(Self::Ago).map_err(|_| {
            format!(
                "{s:?} is not a time (RFC 3339, e.g. 2026-01-31T12:00:00Z) nor a \
                     duration before now (e.g. 1h, 30m, 90s)"
            )
        })
    }
}

impl TimeArg {
    /// Microseconds since the Unix epoch, `now` being the time of the
    /// replay's start.
    pub(crate) fn micros(self, now: SystemTime) -> u64 {
        let t = match self {
            Self::At(t) => t,
            Self::Ago(d) => now.checked_sub(d).unwrap_or(UNIX_EPOCH),
        };
        t.duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_instants_or_durations_before_now() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        let ago: TimeArg = "1h".parse().unwrap();
        assert_eq!(ago.micros(now), 6_400 * 1_000_000);
        let ago: TimeArg = "30m".parse().unwrap();
        assert_eq!(ago.micros(now), 8_200 * 1_000_000);
        let at: TimeArg = "1970-01-01T00:00:01.5Z".parse().unwrap();
        assert_eq!(at.micros(now), 1_500_000);
        assert_eq!(
            "3h".parse::<TimeArg>().unwrap().micros(now),
            0,
            "before 1970: 0"
        );
        assert!("yesterday".parse::<TimeArg>().is_err());
    }
}
