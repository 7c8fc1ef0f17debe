//! `wse log topics DIR [--json]`: one line per topic.

use serde::Serialize;
use wse_log::TopicSummary;

use super::{DirArg, is_internal, open_reader, readable, record_count};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// List the topics of a data directory: name, epoch, first..next offsets,
/// records, segments, bytes. Directories that cannot be read as a topic
/// are listed on stderr.
#[derive(Debug, clap::Args)]
pub struct TopicsArgs {
    #[command(flatten)]
    dir: DirArg,
    /// One JSON document: {"topics": [...], "unreadable": [...]}.
    #[arg(long)]
    json: bool,
    /// Also list WSE's own streams (presence, node runs), marked internal.
    #[arg(long)]
    all: bool,
}

/// A topic as `topics --json` prints it.
#[derive(Serialize)]
struct TopicRow {
    /// The stored name, exactly (JSON escapes its control characters).
    name: String,
    /// The name as the table shows it (see `readable`).
    display_name: String,
    /// One of WSE's own streams.
    internal: bool,
    /// 8 lowercase hex digits, as clients see it.
    epoch: String,
    first_offset: u64,
    next_offset: u64,
    records: u64,
    segments: usize,
    bytes: u64,
}

impl From<&TopicSummary> for TopicRow {
    fn from(t: &TopicSummary) -> Self {
        Self {
            name: t.name.clone(),
            display_name: readable(&t.name),
            internal: is_internal(&t.name),
            epoch: t.epoch.to_string(),
            first_offset: t.first_offset,
            next_offset: t.next_offset,
            records: record_count(t),
            segments: t.segments.len(),
            bytes: t.bytes,
        }
    }
}

/// A directory that is not a readable topic.
#[derive(Serialize)]
struct UnreadableRow {
    dir: String,
    why: String,
}

/// Everything `topics --json` prints.
#[derive(Serialize)]
struct TopicsJson {
    topics: Vec<TopicRow>,
    unreadable: Vec<UnreadableRow>,
}

impl Run for TopicsArgs {
    fn run(self) -> Result<u8, CliError> {
        let reader = open_reader(&self.dir.dir)?;
        let (topics, unreadable) = reader.topics()?;
        for u in &unreadable {
            eprintln!("unreadable topic directory {}: {}", u.dir.display(), u.why);
        }
        let rows: Vec<TopicRow> = topics
            .iter()
            .filter(|t| self.all || !is_internal(&t.name))
            .map(TopicRow::from)
            .collect();
        let hidden = topics.len() - rows.len();
        let mut out = Out::stdout();
        if self.json {
            out.json_pretty(&TopicsJson {
                topics: rows,
                unreadable: unreadable
                    .iter()
                    .map(|u| UnreadableRow {
                        dir: u.dir.display().to_string(),
                        why: u.why.clone(),
                    })
                    .collect(),
            })?;
        } else if rows.is_empty() {
            eprintln!("no topics in {}", self.dir.dir.display());
        } else {
            print_table(&mut out, &rows, self.all)?;
        }
        if hidden > 0 && !self.json {
            let streams = if hidden == 1 { "stream" } else { "streams" };
            eprintln!("({hidden} internal {streams} not shown; --all lists them)");
        }
        out.flush()?;
        Ok(0)
    }
}

/// Aligned columns under a header.
fn print_table(out: &mut Out, rows: &[TopicRow], all: bool) -> Result<(), CliError> {
    let offsets: Vec<String> = rows
        .iter()
        .map(|r| format!("{}..{}", r.first_offset, r.next_offset))
        .collect();
    let names: Vec<&str> = rows.iter().map(|r| r.display_name.as_str()).collect();
    let name_w = names
        .iter()
        .map(|n| n.chars().count())
        .max()
        .unwrap_or(0)
        .max(5);
    let off_w = offsets.iter().map(String::len).max().unwrap_or(0).max(7);
    let kind_header = if all { "  KIND" } else { "" };
    out.line(format_args!(
        "{:<name_w$}  {:<8}  {:<off_w$}  {:>10}  {:>8}  {:>12}{kind_header}",
        "TOPIC", "EPOCH", "OFFSETS", "RECORDS", "SEGMENTS", "BYTES"
    ))?;
    for ((r, o), name) in rows.iter().zip(&offsets).zip(&names) {
        let kind = match (all, r.internal) {
            (false, _) => "",
            (true, true) => "  internal",
            (true, false) => "  topic",
        };
        out.line(format_args!(
            "{:<name_w$}  {:<8}  {:<off_w$}  {:>10}  {:>8}  {:>12}{kind}",
            name, r.epoch, o, r.records, r.segments, r.bytes
        ))?;
    }
    Ok(())
}
