//! `wse log import DIR FILE...`: recreate exported history
//! ([`super::archive`]) in a data directory.

use std::fs::File;
use std::io::{self, BufReader, Seek};
use std::path::{Path, PathBuf};

use wse_log::{Appended, Log, LogConfig, LogError, Position};

use super::archive::{ArchiveError, ArchiveReader, Header};
use crate::Run;
use crate::error::CliError;
use crate::output::{Out, escaped};

/// Recreate the history in each export: the topic gets the export's epoch,
/// and every record its offset, append time, kind and bytes. A topic that
/// exists must have the same epoch and end exactly where the export
/// begins (no gap, no offset twice). Each file is checked whole (checksum,
/// dense offsets) before anything of it is written. Needs the directory to
/// itself: refused beside a running server (publish through its API then).
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The data directory (created if missing).
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Export files, in either form; `-` reads standard input.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<PathBuf>,
}

impl Run for ImportArgs {
    fn run(self) -> Result<u8, CliError> {
        // Every file is checked before the directory is touched.
        let mut checked = Vec::with_capacity(self.files.len());
        for path in &self.files {
            let mut file = open_input(path)?;
            let (header, records) = verify(&mut file).map_err(|e| CliError::Archive {
                file: path.clone(),
                source: e,
            })?;
            file.rewind()
                .map_err(|e| CliError::io(format!("rewind {}", path.display()), e))?;
            checked.push((path, file, header, records));
        }
        let log = Log::open(&self.dir, LogConfig::default())?;
        let mut out = Out::stdout();
        for (path, file, header, records) in checked {
            let result = import_one(&log, file, &header).map_err(|e| e.into_cli(path));
            if let Err(e) = result {
                // What was imported before the failure stays, durable.
                let _ = log.close();
                return Err(e);
            }
            out.line(format_args!(
                "imported {records} records into {} (epoch {}, offsets {}..{})",
                escaped(&header.topic),
                header.epoch,
                header.first_offset,
                header.first_offset + records
            ))?;
        }
        log.close()?;
        out.flush()?;
        Ok(0)
    }
}

/// `path` opened for two passes; standard input is first copied to an
/// unnamed temporary file.
fn open_input(path: &Path) -> Result<File, CliError> {
    if path == Path::new("-") {
        let mut spool = tempfile::tempfile()
            .map_err(|e| CliError::io("create a temporary file for standard input", e))?;
        io::copy(&mut io::stdin().lock(), &mut spool)
            .map_err(|e| CliError::io("read standard input", e))?;
        return Ok(spool);
    }
    File::open(path).map_err(|e| CliError::io(format!("open {}", path.display()), e))
}

/// Read `file` through to its trailer: its header and record count.
fn verify(file: &mut File) -> Result<(Header, u64), ArchiveError> {
    let mut reader = ArchiveReader::open(BufReader::with_capacity(1 << 20, &*file))?;
    let mut records = 0u64;
    while reader.next_record()?.is_some() {
        records += 1;
    }
    Ok((reader.header().clone(), records))
}

/// Why one file could not be imported.
enum ImportFailure {
    Archive(ArchiveError),
    Log(LogError),
    Refused(String),
}

impl ImportFailure {
    fn into_cli(self, path: &Path) -> CliError {
        match self {
            Self::Archive(source) => CliError::Archive {
                file: path.to_owned(),
                source,
            },
            Self::Log(e) => e.into(),
            Self::Refused(why) => CliError::Usage(format!("{}: {why}", path.display())),
        }
    }
}

impl From<ArchiveError> for ImportFailure {
    fn from(e: ArchiveError) -> Self {
        Self::Archive(e)
    }
}

impl From<LogError> for ImportFailure {
    fn from(e: LogError) -> Self {
        Self::Log(e)
    }
}

/// Append the records of a verified export to `log`.
fn import_one(log: &Log, file: File, header: &Header) -> Result<(), ImportFailure> {
    let topic = header.topic.as_str();
    match log.position(topic) {
        None => {
            log.create_topic_at(topic, header.epoch, header.first_offset)
                .map_err(|e| match e {
                    LogError::EpochConflict { .. } => ImportFailure::Refused(format!(
                        "topic {:?} had epoch {} before and deleted it: a deleted history is never brought back",
                        topic, header.epoch
                    )),
                    other => other.into(),
                })?;
        }
        Some(here) if here.epoch != header.epoch => {
            return Err(ImportFailure::Refused(format!(
                "topic {topic:?} has epoch {} here and {} in the export: two histories are never mixed",
                here.epoch, header.epoch
            )));
        }
        Some(here) if here.next_offset < header.first_offset => {
            return Err(ImportFailure::Refused(format!(
                "topic {topic:?} ends at offset {} here and the export starts at {}: importing it would leave a gap",
                here.next_offset, header.first_offset
            )));
        }
        Some(here) if here.next_offset > header.first_offset => {
            return Err(ImportFailure::Refused(format!(
                "topic {topic:?} already holds offsets up to {} and the export starts at {}: importing it would store offsets twice",
                here.next_offset, header.first_offset
            )));
        }
        Some(_) => {}
    }
    let mut reader = ArchiveReader::open(BufReader::with_capacity(1 << 20, file))?;
    let mut last: Option<Appended> = None;
    while let Some(r) = reader.next_record()? {
        let at = Position::new(header.epoch, r.offset);
        last = Some(log.append_exact(topic, at, r.timestamp_us, r.kind, &r.payload)?);
    }
    if let Some(a) = last {
        a.wait()?;
    }
    Ok(())
}
