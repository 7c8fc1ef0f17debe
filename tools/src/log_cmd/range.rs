//! Which records of a topic a command reads: offsets (`--from`, `--to`)
//! or append times (`--since`, `--until`), shared by `dump`, `tail` and
//! `export`.

use std::time::SystemTime;

use wse_log::{DirReader, TopicSummary};

use crate::error::CliError;
use crate::time_arg::TimeArg;

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

/// `text` ([`TimeArg`]: RFC 3339, or a duration before now) as
/// microseconds since the Unix epoch.
pub fn parse_time(text: &str) -> Result<u64, String> {
    Ok(text.parse::<TimeArg>()?.micros(SystemTime::now()))
}
