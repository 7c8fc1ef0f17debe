//! `wse log tail DIR TOPIC [-n N | --since T] [--follow] [--format json|raw]`.

use std::io;
use std::path::Path;
use std::time::Duration;

use wse_log::{DirReader, Epoch, LogError, TopicSummary};

use super::records::{self, RecordFormat};
use super::{DirArg, find_topic, open_reader};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// How often `--follow` looks at the directory again.
const POLL: Duration = Duration::from_millis(100);

/// Print a topic's newest records; with `--follow`, keep printing records
/// as they are appended (by polling the directory), across epoch changes.
#[derive(Debug, clap::Args)]
pub struct TailArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The topic name.
    topic: String,
    /// TOPIC names one of WSE's own streams, as `topics --all` shows it
    /// (`presence:lobby`, `node`).
    #[arg(long)]
    internal: bool,
    /// How many of the newest records to print first.
    #[arg(short = 'n', long = "lines", value_name = "N", default_value_t = 10)]
    lines: u64,
    /// Print first every record appended at or after TIME instead of the
    /// newest N: RFC 3339, or that long ago (`15m`, `1h`).
    #[arg(long, value_name = "TIME", value_parser = super::range::parse_time, conflicts_with = "lines")]
    since: Option<u64>,
    /// Keep printing new records until interrupted; a topic that does not
    /// exist yet is waited for.
    #[arg(short, long)]
    follow: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    format: RecordFormat,
}

/// Where a follower stands in the history it prints.
#[derive(Copy, Clone, Debug)]
struct Cursor {
    /// The history being printed.
    epoch: Epoch,
    /// The first offset not printed yet.
    next: u64,
}

impl Run for TailArgs {
    fn run(mut self) -> Result<u8, CliError> {
        self.topic = super::stored_name(&self.topic, self.internal);
        let dir = self.dir.dir.as_path();
        let reader = open_reader(dir)?;
        let mut out = Out::stdout();
        let cursor = if self.follow {
            match reader.topic(&self.topic)? {
                Some(t) => Some(self.print_newest(&mut out, &reader, &t)?),
                None => {
                    eprintln!(
                        "waiting for topic {:?} to appear in {}",
                        self.topic,
                        dir.display()
                    );
                    None
                }
            }
        } else {
            let t = find_topic(&reader, dir, &self.topic)?;
            self.print_newest(&mut out, &reader, &t)?;
            return Ok(0);
        };
        self.follow(&mut out, reader, dir, cursor)
    }
}

impl TailArgs {
    /// Print the last `lines` records of `t` as it is now.
    fn print_newest(
        &self,
        out: &mut Out,
        reader: &DirReader,
        t: &TopicSummary,
    ) -> Result<Cursor, CliError> {
        let mut next = match self.since {
            Some(ts) => reader.offset_at_time(t, ts)?,
            None => t.next_offset.saturating_sub(self.lines).max(t.first_offset),
        };
        let result =
            records::print_range(out, reader, t, &mut next, t.next_offset, None, self.format);
        out.flush()?;
        result?;
        Ok(Cursor {
            epoch: t.epoch,
            next,
        })
    }

    /// Poll the directory and print what is new, until stdout closes (seen
    /// at the next write), a record is corrupt or reading fails. A topic
    /// that disappears is waited for.
    ///
    /// The reader is replaced whenever the topic's history changes: a
    /// `DirReader` keeps segment files open by path, and a new history of
    /// the topic reuses the paths of the old one (its first segment is
    /// `00000000000000000000.seg` again), so a reader that saw the old
    /// history would go on reading the deleted file.
    fn follow(
        &self,
        out: &mut Out,
        mut reader: DirReader,
        dir: &Path,
        mut cursor: Option<Cursor>,
    ) -> Result<u8, CliError> {
        // Said once per disappearance, not once per poll.
        let mut reported_gone = false;
        loop {
            std::thread::sleep(POLL);
            let mut t = match reader.topic(&self.topic) {
                Ok(Some(t)) => t,
                Ok(None) => {
                    if cursor.is_some() && !reported_gone {
                        eprintln!(
                            "topic {:?} is gone from {}; waiting for it to reappear",
                            self.topic,
                            dir.display()
                        );
                        reported_gone = true;
                        reader = open_reader(dir)?;
                    }
                    continue;
                }
                Err(e) if is_transient(&e) => continue,
                Err(e) => return Err(e.into()),
            };
            reported_gone = false;
            if cursor.is_some_and(|c| c.epoch != t.epoch) {
                reader = open_reader(dir)?;
                t = match reader.topic(&self.topic) {
                    Ok(Some(t)) => t,
                    Ok(None) => continue,
                    Err(e) if is_transient(&e) => continue,
                    Err(e) => return Err(e.into()),
                };
            }
            let mut next = match cursor {
                // New topic (or back after being deleted): all of it is new.
                None => t.first_offset,
                Some(c) if c.epoch != t.epoch => {
                    eprintln!(
                        "topic {:?}: epoch changed from {} to {} (a new history); continuing from offset {}",
                        self.topic, c.epoch, t.epoch, t.first_offset
                    );
                    t.first_offset
                }
                Some(c) if c.next < t.first_offset => {
                    eprintln!(
                        "topic {:?}: offsets {}..{} were removed by retention before they were printed",
                        self.topic, c.next, t.first_offset
                    );
                    t.first_offset
                }
                Some(c) => c.next,
            };
            let result = records::print_range(
                out,
                &reader,
                &t,
                &mut next,
                t.next_offset,
                None,
                self.format,
            );
            out.flush()?;
            cursor = Some(Cursor {
                epoch: t.epoch,
                next,
            });
            match result {
                Ok(()) | Err(CliError::Removed { .. }) => {}
                Err(CliError::Log(e)) if is_transient(&e) => {}
                Err(CliError::Log(e @ LogError::Damaged(_))) => {
                    // Real corruption, or the history was replaced between
                    // loading the topic and reading it: look again.
                    reader = open_reader(dir)?;
                    match reader.topic(&self.topic) {
                        Ok(Some(now)) if now.epoch == t.epoch => return Err(e.into()),
                        _ => {}
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Errors a concurrent writer causes for a moment: retention deleted a
/// segment between listing and opening it. The next poll sees the new state.
fn is_transient(e: &LogError) -> bool {
    matches!(e, LogError::Io { source, .. } if source.kind() == io::ErrorKind::NotFound)
}
