//! `--to-stdout` (the default) and `--to-file PATH`: one JSON object per
//! line, `{"topic", "offset", "timestamp_us", "id", "text"}`: the destination
//! topic, the source offset and append time, the publish id, and the exact
//! text that would be published (a string, so any text fits on one line).
//!
//! A batch is acknowledged once written; into a file with a checkpoint,
//! once fsynced too, so the checkpoint never runs ahead of the file. A file
//! is appended to, never truncated: a resumed run continues it. Lines
//! written after the last checkpoint of a run that crashed are written
//! again on resume (a file has no dedup window); their `id`s tell them apart.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;

use super::{Acked, Batch};
use crate::error::CliError;
use crate::output::Out;

/// One line.
#[derive(Serialize)]
struct Line<'a> {
    topic: &'a str,
    offset: u64,
    timestamp_us: u64,
    id: &'a str,
    text: &'a str,
}

/// Where lines go.
enum Sink {
    /// Standard output (a closed pipe ends the replay quietly).
    Stdout(Out),
    /// A file, and whether each batch is fsynced.
    File(BufWriter<File>, bool),
}

/// JSON lines as the destination.
pub(crate) struct Lines {
    /// The writer.
    sink: Sink,
    /// The destination topic written in each line.
    topic: String,
}

impl Lines {
    /// Lines on standard output.
    pub(crate) fn stdout(topic: &str) -> Self {
        Self {
            sink: Sink::Stdout(Out::stdout()),
            topic: topic.to_owned(),
        }
    }

    /// Lines appended to `path`; fsynced per batch when `durable`.
    pub(crate) fn file(path: &Path, topic: &str, durable: bool) -> Result<Self, CliError> {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| CliError::io(format!("open {}", path.display()), e))?;
        Ok(Self {
            sink: Sink::File(BufWriter::with_capacity(256 * 1024, f), durable),
            topic: topic.to_owned(),
        })
    }

    /// Write `batch`; acknowledged at once.
    pub(crate) fn submit(&mut self, batch: &Batch, acked: &mut Vec<Acked>) -> Result<(), CliError> {
        let mut text = Vec::with_capacity(batch.bytes + batch.items.len() * 96);
        for item in &batch.items {
            let line = Line {
                topic: &self.topic,
                offset: item.offset,
                timestamp_us: item.timestamp_us,
                id: &item.id,
                text: &item.text,
            };
            // Into a Vec: only an unencodable value could fail, and a
            // struct of strings and numbers has none.
            serde_json::to_writer(&mut text, &line)
                .map_err(|e| CliError::io("encode a line", std::io::Error::other(e)))?;
            text.push(b'\n');
        }
        match &mut self.sink {
            Sink::Stdout(out) => out.bytes(&text)?,
            Sink::File(w, _) => w
                .write_all(&text)
                .map_err(|e| CliError::io("write the output file", e))?,
        }
        self.flush()?;
        acked.push(batch.acked());
        Ok(())
    }

    /// Flush (and fsync) what is written.
    pub(crate) fn finish(&mut self) -> Result<(), CliError> {
        self.flush()
    }

    fn flush(&mut self) -> Result<(), CliError> {
        match &mut self.sink {
            Sink::Stdout(out) => out.flush(),
            Sink::File(w, durable) => w
                .flush()
                .and_then(|()| {
                    if *durable {
                        w.get_ref().sync_data()
                    } else {
                        Ok(())
                    }
                })
                .map_err(|e| CliError::io("write the output file", e)),
        }
    }
}
