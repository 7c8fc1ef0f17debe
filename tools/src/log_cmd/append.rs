//! `wse log append DIR TOPIC [--kind ..] [--durability ..]`: stdin to a
//! topic, one record per line, stored as the server stores a publish.

use std::borrow::Cow;
use std::io::{self, BufRead};
use std::path::PathBuf;

use wse::protocol::{StampedAt, read_stamp, write_stored_message};
use wse_log::{Appended, Durability, Epoch, Log, LogConfig, LogError, Position, RecordKind};

use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// Append standard input to a topic, one record per line (the newline is
/// not part of the record). Opens the directory as the writer, so it fails
/// (exit status 2) while a server holds it.
///
/// Messages are stored as `wse serve` stores a publish: a line must be
/// UTF-8, one that starts with `{` must be a JSON object, and objects get
/// the category (`c`) and the recovery stamp (`tp`, `e`, `o`) of their
/// position. A line that already carries a stamp (from `wse log dump
/// --format raw`) is stamped again with its new position; when it starts a
/// topic that does not exist yet, the topic takes the stamp's epoch and
/// offset, so a dump fed back into an empty directory gives the same bytes.
/// `--raw` stores lines unchanged; `--unstamped` stores them as a server
/// with recovery off does.
///
/// Prints `appended N records to TOPIC: offsets A..B, epoch E`, where
/// `A..B` is first..next like `wse log topics` shows offsets (B = last + 1).
#[derive(Debug, clap::Args)]
pub struct AppendArgs {
    /// The data directory (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// The topic name (created if missing).
    topic: String,
    /// What the records carry: message, presence or control.
    #[arg(long, default_value = "message", value_parser = parse_kind)]
    kind: RecordKind,
    /// fsync policy while appending: always, interval[:<ms>] or never
    /// (everything is fsynced when the command ends, whatever the policy).
    #[arg(long, default_value = "interval", value_parser = Durability::parse)]
    durability: Durability,
    /// Store each line's bytes unchanged (no checks, no stamp).
    #[arg(long)]
    raw: bool,
    /// Messages without the recovery stamp (a server with recovery off).
    #[arg(long, conflicts_with = "raw")]
    unstamped: bool,
}

fn parse_kind(s: &str) -> Result<RecordKind, String> {
    s.parse()
}

/// How lines become records.
enum Storing {
    /// Bytes unchanged.
    Raw,
    /// As the server stores a publish.
    Message {
        /// With the recovery stamp.
        stamp: bool,
        /// The topic is new: a first line with a stamp sets its epoch and
        /// first offset.
        adopt: bool,
    },
}

impl AppendArgs {
    fn storing(&self) -> Storing {
        if self.raw || self.kind != RecordKind::Message {
            Storing::Raw
        } else {
            Storing::Message {
                stamp: !self.unstamped,
                adopt: true,
            }
        }
    }
}

/// Line `number` as the text of a message: UTF-8, and a JSON object when
/// it starts like one (the server stamps objects; a broken one would be
/// stored broken).
fn message_text(line: &[u8], number: u64) -> Result<&str, CliError> {
    let text = std::str::from_utf8(line).map_err(|e| {
        CliError::Usage(format!(
            "line {number} is not UTF-8 ({e}): a published message is text (--raw stores bytes)"
        ))
    })?;
    if text.trim_start().starts_with('{') {
        serde_json::from_str::<serde::de::IgnoredAny>(text).map_err(|e| {
            CliError::Usage(format!(
                "line {number} starts a JSON object but is not one ({e}); --raw stores it unchanged"
            ))
        })?;
    }
    Ok(text)
}

/// Create `topic` with the history a stamped record came from, unless the
/// topic exists: the record then lands where it was.
fn adopt_history(log: &Log, topic: &str, at: &StampedAt) -> Result<(), CliError> {
    if log.position(topic).is_some() {
        return Ok(());
    }
    match log.create_topic_at(topic, Epoch(at.epoch), at.offset) {
        // The topic had that epoch once and deleted it: a deleted history
        // never comes back, so the records start a new one.
        Ok(_) | Err(LogError::EpochConflict { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Run for AppendArgs {
    fn run(self) -> Result<u8, CliError> {
        let config = LogConfig {
            durability: self.durability,
            ..LogConfig::default()
        };
        // Before opening (which creates the directory): a bad name is a
        // usage error even when stdin is empty.
        wse_log::topic_name::validate(&self.topic, config.max_topic_bytes)
            .map_err(LogError::from)?;
        let log = Log::open(&self.dir, config)?;
        let mut first: Option<Position> = None;
        let mut last: Option<Appended> = None;
        let mut count = 0u64;
        let mut line = Vec::new();
        let mut stdin = io::stdin().lock();
        let mut store = self.storing();
        loop {
            line.clear();
            let n = stdin
                .read_until(b'\n', &mut line)
                .map_err(|e| CliError::io("read standard input", e))?;
            if n == 0 {
                break;
            }
            if line.last() == Some(&b'\n') {
                line.pop();
            }
            // No wait per record: the writer batches them; only the last
            // one is waited for below.
            let a = match &mut store {
                Storing::Raw => log.append_with(&self.topic, self.kind, line.len(), |_, buf| {
                    buf.extend_from_slice(&line)
                })?,
                Storing::Message { stamp, adopt } => {
                    let text = message_text(&line, count + 1)?;
                    let text = match read_stamp(text) {
                        Some((at, unstamped)) => {
                            if *adopt && at.topic == self.topic {
                                adopt_history(&log, &self.topic, &at)?;
                            }
                            Cow::Owned(unstamped)
                        }
                        None => Cow::Borrowed(text),
                    };
                    *adopt = false;
                    let stamp = *stamp;
                    log.append_with(&self.topic, self.kind, text.len() + 64, |pos, buf| {
                        write_stored_message(
                            buf,
                            stamp,
                            &text,
                            &self.topic,
                            pos.epoch.0,
                            pos.offset,
                        )
                    })?
                }
            };
            count += 1;
            first.get_or_insert(a.position);
            last = Some(a);
        }
        if let Some(a) = &last {
            a.wait()?;
        }
        log.close()?;
        let mut out = Out::stdout();
        match (first, last) {
            (Some(f), Some(l)) => out.line(format_args!(
                "appended {count} records to {}: offsets {}..{}, epoch {}",
                self.topic,
                f.offset,
                l.position.offset + 1,
                l.position.epoch
            ))?,
            _ => out.line(format_args!("appended 0 records to {}", self.topic))?,
        }
        out.flush()?;
        Ok(0)
    }
}
