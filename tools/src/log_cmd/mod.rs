//! `wse log ...`: look into a data directory, and append to a stopped one.
//!
//! Every reading command goes through [`wse_log::DirReader`], which takes no
//! lock and never writes, so it works on the directory of a running server
//! without disturbing it. Only `append` opens a [`wse_log::Log`], which
//! needs the directory to itself.
//!
//! # Layout
//!
//! - `topics`, `inspect`, `dump`, `tail`, `verify`, `append`: one file per
//!   subcommand.
//! - `records`: how `dump` and `tail` print records (JSON lines or raw).
//! - `range`: which records (`--from/--to`, `--since/--until`).
//! - `export`, `import` and the file format they share, `archive`.
//! - `backup`: `backup` and `restore`.
//! - `meta_snapshot`: reads retention from a copy of the sled metadata,
//!   which a running server holds locked.

mod append;
pub(crate) mod archive;
mod backup;
mod dump;
mod export;
mod import;
mod inspect;
mod meta_snapshot;
mod range;
mod records;
mod tail;
mod topics;
mod verify;

use std::path::{Path, PathBuf};

use wse_log::{DirReader, TopicSummary};

use crate::error::CliError;

subcommands! {
    /// The `wse log` subcommands.
    pub enum LogCommand {
        /// List the topics of a data directory.
        Topics(topics::TopicsArgs),
        /// Show one topic: epoch, offsets, segments, retention.
        Inspect(inspect::InspectArgs),
        /// Print a topic's records.
        Dump(dump::DumpArgs),
        /// Print a topic's newest records, and with --follow new ones as
        /// they are appended.
        Tail(tail::TailArgs),
        /// Check every segment, record and index entry of a data directory.
        Verify(verify::VerifyArgs),
        /// Append stdin to a topic, one record per line (needs the data
        /// directory to itself: not beside a running server).
        Append(append::AppendArgs),
        /// Write a range of a topic's history (epoch, offsets, times,
        /// bytes) as an export file: JSON lines or binary.
        Export(export::ExportArgs),
        /// Recreate exported history in a data directory (needs the
        /// directory to itself).
        Import(import::ImportArgs),
        /// Copy a data directory, safely beside a running server, with a
        /// manifest that proves the copy whole.
        Backup(backup::BackupArgs),
        /// Put a backup back into a new data directory (checked first).
        Restore(backup::RestoreArgs),
    }
}

/// The data directory argument, shared by every `wse log` command.
#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// The data directory (the server's `--data-dir`, default ./wse-data).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Open `dir` for reading (no lock taken). A directory that holds neither
/// `topics/` nor `meta/` is not a data directory: saying "no topics" about
/// it would make a mistyped path look fine.
fn open_reader(dir: &Path) -> Result<DirReader, CliError> {
    let reader = DirReader::open(dir)?;
    let layout = reader.layout();
    if !layout.topics_dir().is_dir() && !layout.meta_dir().is_dir() {
        return Err(CliError::NotADataDir(dir.to_owned()));
    }
    Ok(reader)
}

/// Streams WSE writes for itself (presence, node runs) have names that
/// start with this control character, which no client topic can contain.
const INTERNAL_PREFIX: char = '\u{1}';

/// Is `name` one of WSE's own streams?
fn is_internal(name: &str) -> bool {
    name.starts_with(INTERNAL_PREFIX)
}

/// `name` as the commands show it: an internal stream without its control
/// character (`presence:lobby`, `node`; `--internal` tells it apart), and
/// control and bidirectional characters escaped.
fn readable(name: &str) -> String {
    crate::output::escaped(name.strip_prefix(INTERNAL_PREFIX).unwrap_or(name)).into_owned()
}

/// The stored name of the topic argument `arg`: with `internal`, WSE's own
/// stream of that readable name.
fn stored_name(arg: &str, internal: bool) -> String {
    if internal {
        format!("{INTERNAL_PREFIX}{arg}")
    } else {
        arg.to_owned()
    }
}

/// The stored topic `name`, or [`CliError::UnknownTopic`].
fn find_topic(reader: &DirReader, dir: &Path, name: &str) -> Result<TopicSummary, CliError> {
    reader.topic(name)?.ok_or_else(|| CliError::UnknownTopic {
        dir: dir.to_owned(),
        topic: name.to_owned(),
    })
}

/// Records of a stored topic (offsets are dense).
fn record_count(t: &TopicSummary) -> u64 {
    t.next_offset.saturating_sub(t.first_offset)
}
