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
//! - `meta_snapshot`: reads retention from a copy of the sled metadata,
//!   which a running server holds locked.

mod append;
mod dump;
mod inspect;
mod meta_snapshot;
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
    }
}

/// The data directory argument, shared by every `wse log` command.
#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// The data directory (the server's `--data-dir`, default ./wse-data).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// Open `dir` for reading (no lock taken).
fn open_reader(dir: &Path) -> Result<DirReader, CliError> {
    Ok(DirReader::open(dir)?)
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
