//! `wse log export DIR TOPIC [-o FILE] [--format jsonl|binary] [range]`:
//! a range of a topic's history in the export format ([`super::archive`]).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use wse_log::ReadLimits;

use super::archive::{ArchiveWriter, Form, Header};
use super::range::RangeArgs;
use super::{DirArg, find_topic, open_reader};
use crate::Run;
use crate::error::CliError;

/// Write a range of a topic's records, with their epoch, offsets, append
/// times and bytes, as an export that `wse log import` recreates exactly.
/// Reads beside a running server (no lock taken). Prints a summary line on
/// stderr.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    dir: DirArg,
    /// The topic name.
    topic: String,
    /// TOPIC names one of WSE's own streams, as `topics --all` shows it
    /// (`presence:lobby`, `node`).
    #[arg(long)]
    internal: bool,
    /// Where to write the export (default: standard output). The file is
    /// written beside its final name and renamed when complete.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// jsonl (one JSON object per line, for people and scripts) or binary
    /// (compact, faster to write and read).
    #[arg(long, value_enum, default_value_t)]
    format: Form,
    #[command(flatten)]
    range: RangeArgs,
}

/// Records per read: bounds memory whatever the topic's size.
const PAGE: usize = 1000;

impl Run for ExportArgs {
    fn run(mut self) -> Result<u8, CliError> {
        self.topic = super::stored_name(&self.topic, self.internal);
        let reader = open_reader(&self.dir.dir)?;
        let topic = find_topic(&reader, &self.dir.dir, &self.topic)?;
        let (from, to) = self.range.resolve(&reader, &topic)?;
        let header = Header::new(
            &topic.name,
            topic.epoch,
            from,
            humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
        );
        let (sink, finish): (Box<dyn Write>, Option<(PathBuf, PathBuf)>) = match &self.output {
            None => (Box::new(io::stdout().lock()), None),
            Some(path) => {
                let partial = partial_name(path);
                let file = File::create(&partial)
                    .map_err(|e| CliError::io(format!("create {}", partial.display()), e))?;
                (Box::new(file), Some((partial, path.clone())))
            }
        };
        let target = self.output.clone().unwrap_or_else(|| PathBuf::from("-"));
        let failed = |source| CliError::Archive {
            file: target.clone(),
            source,
        };
        let mut writer = ArchiveWriter::new(
            BufWriter::with_capacity(1 << 20, sink),
            self.format,
            &header,
        )
        .map_err(failed)?;
        let mut next = from;
        while next < to {
            let page = reader.read(&topic, next, ReadLimits::records(PAGE))?;
            let Some(last) = page.last() else {
                return Err(CliError::Removed {
                    topic: topic.name,
                    from: next,
                });
            };
            let last = last.offset();
            for r in page.iter().take_while(|r| r.offset() < to) {
                writer.record(r).map_err(failed)?;
            }
            next = last + 1;
        }
        let (buffered, records) = writer.finish().map_err(failed)?;
        let mut sink = buffered
            .into_inner()
            .map_err(|e| CliError::io("write the export", e.into_error()))?;
        sink.flush()
            .map_err(|e| CliError::io("write the export", e))?;
        drop(sink);
        if let Some((partial, path)) = finish {
            File::open(&partial)
                .and_then(|f| f.sync_all())
                .and_then(|()| std::fs::rename(&partial, &path))
                .map_err(|e| CliError::io(format!("complete {}", path.display()), e))?;
        }
        eprintln!(
            "exported {records} records of {} (epoch {}, offsets {from}..{})",
            crate::output::escaped(&topic.name),
            topic.epoch,
            from + records
        );
        Ok(0)
    }
}

/// `path` with `.partial` appended: where an export is written until it is
/// complete, so a file under the final name is always whole.
fn partial_name(path: &std::path::Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}
