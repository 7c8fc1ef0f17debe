//! `wse log append DIR TOPIC [--kind ..] [--durability ..]`: stdin to a
//! topic, one record per line.

use std::io::{self, BufRead};
use std::path::PathBuf;

use wse_log::{Appended, Durability, Log, LogConfig, LogError, Position, RecordKind};

use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// Append standard input to a topic, one record per line (the newline is
/// not part of the record; bytes need not be UTF-8). Opens the directory as
/// the writer, so it fails (exit status 2) while a server holds it.
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
}

fn parse_kind(s: &str) -> Result<RecordKind, String> {
    s.parse()
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
            let a = log.append_with(&self.topic, self.kind, line.len(), |_, buf| {
                buf.extend_from_slice(&line)
            })?;
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
