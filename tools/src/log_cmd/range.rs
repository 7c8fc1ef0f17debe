//! Which records of a topic a command reads: offsets (`--from`, `--to`)
//! or append times (`--since`, `--until`), shared by `dump`, `tail` and
//! `export`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use wse_log::{DirReader, TopicSummary};

use crate::error::CliError;

/// A range of a topic, by offset or by time.
#[derive(Debug, Default, clap::Args)]
pub struct RangeArgs {
    /// First offset (default: the oldest stored).
    #[arg(long, value_name = "N", conflicts_with = "since")]
    pub from: Option<u64>,
    /// Stop before this offset (default: the newest record included).
    #[arg(long, value_name = "N", conflicts_with = "until")]
    pub to: Option<u64>,
    /// First record appended at or after TIME: RFC 3339
    /// (`2026-12-07T10:00:00Z`) or that long ago (`90s`, `15m`, `1h`, `2d`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<u64>,
    /// Stop before the first record appended at or after TIME (same forms
    /// as --since).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub until: Option<u64>,
}

impl RangeArgs {
    /// Offsets `from..to` of `topic` that the arguments name, within what
    /// is stored. A `--from` older than the oldest stored record is an
    /// error (those records are gone, and saying nothing would hide it).
    pub fn resolve(
        &self,
        reader: &DirReader,
        topic: &TopicSummary,
    ) -> Result<(u64, u64), CliError> {
        let from = match (self.from, self.since) {
            (Some(from), _) if from < topic.first_offset => {
                return Err(CliError::Usage(format!(
                    "--from {from}: topic {:?} keeps offsets {}..{} (older ones were removed by retention)",
                    topic.name, topic.first_offset, topic.next_offset
                )));
            }
            (Some(from), _) => from,
            (None, Some(t)) => reader.offset_at_time(topic, t)?,
            (None, None) => topic.first_offset,
        };
        let to = match (self.to, self.until) {
            (Some(to), _) => to.min(topic.next_offset),
            (None, Some(t)) => reader.offset_at_time(topic, t)?,
            (None, None) => topic.next_offset,
        };
        Ok((from, to.max(from)))
    }
}

/// `text` as microseconds since the Unix epoch: an RFC 3339 time, or a
/// duration (`humantime` syntax) before now.
pub fn parse_time(text: &str) -> Result<u64, String> {
    let time = match humantime::parse_rfc3339_weak(text) {
        Ok(t) => t,
        Err(_) => {
            let ago = humantime::parse_duration(text).map_err(|_| {
                format!("{text:?} is neither an RFC 3339 time nor a duration like 15m or 1h")
            })?;
            SystemTime::now()
                .checked_sub(ago)
                .ok_or_else(|| format!("{text:?} reaches before 1970"))?
        }
    };
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    u64::try_from(since_epoch.as_micros()).map_err(|_| format!("{text:?} is too far ahead"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_duration_ago() {
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Ok(1_000_000));
        assert_eq!(
            parse_time("2026-12-07T10:00:00.5Z"),
            Ok(1_796_637_600_500_000)
        );
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let hour_ago = parse_time("1h").unwrap_or_default();
        let want = now.as_micros() as u64 - 3_600_000_000;
        assert!(hour_ago.abs_diff(want) < 60_000_000, "{hour_ago} vs {want}");
        assert!(parse_time("yesterday").is_err());
    }
}
