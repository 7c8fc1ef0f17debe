//! Which records a replay covers: offsets `--from`/`--to` (first..next,
//! the end excluded, as the log writes ranges) or append times
//! `--since`/`--until` (RFC 3339, or a duration meaning that long before
//! now), resolved once against the source at the start. A resumed replay
//! takes its range from the checkpoint instead, so `--since 1h` does not
//! slide while it runs.

use std::time::SystemTime;

use super::error::ReplayError;
use super::source::{Source, SourceTopic};
use crate::error::CliError;
pub(crate) use crate::time_arg::TimeArg;

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
