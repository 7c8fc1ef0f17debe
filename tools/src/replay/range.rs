//! Which records a replay covers: offsets `--from`/`--to` (first..next,
//! the end excluded, as the log writes ranges) or append times
//! `--since`/`--until` (RFC 3339, or a duration meaning that long before
//! now), resolved once against the source at the start. A resumed replay
//! takes its range from the checkpoint instead, so `--since 1h` does not
//! slide while it runs.

use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::error::ReplayError;
use super::source::{Source, SourceTopic};
use crate::error::CliError;

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

/// Where a range starts or ends, as asked.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Bound {
    /// An offset.
    Offset(u64),
    /// The first record appended at or after this time.
    Time(TimeArg),
}

/// The offsets `from..to` of a topic's current history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    /// The first offset replayed.
    pub(crate) from: u64,
    /// The offset after the last one replayed.
    pub(crate) to: u64,
}

/// The range `start..end` of `topic` (`None`: its first offset, its next
/// offset). An end past the topic's head is cut to the head: a replay
/// copies what is stored when it starts. Refuses a start before the oldest
/// stored offset and an empty range.
pub(crate) async fn resolve(
    source: &mut Source,
    topic: &SourceTopic,
    start: Option<Bound>,
    end: Option<Bound>,
    now: SystemTime,
) -> Result<Range, CliError> {
    let from = match start {
        None => topic.first_offset,
        Some(Bound::Offset(o)) => {
            if o < topic.first_offset {
                return Err(ReplayError::BeforeRetention {
                    topic: topic.name.clone(),
                    from: o,
                    first: topic.first_offset,
                }
                .into());
            }
            o
        }
        Some(Bound::Time(t)) => source.offset_at_time(topic, t.micros(now)).await?,
    };
    let to = match end {
        None => topic.next_offset,
        Some(Bound::Offset(o)) => o.min(topic.next_offset),
        Some(Bound::Time(t)) => source.offset_at_time(topic, t.micros(now)).await?,
    };
    if from >= to {
        return Err(ReplayError::EmptyRange {
            topic: topic.name.clone(),
            from,
            to,
            first: topic.first_offset,
            next: topic.next_offset,
        }
        .into());
    }
    Ok(Range { from, to })
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
