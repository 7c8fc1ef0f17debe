//! `wse log backup DIR DEST` and `wse log restore BACKUP DIR`: a copy of a
//! data directory taken beside a running server, and putting one back.
//!
//! Why this is safe beside a writer: a segment only ever grows at its end
//! until it is sealed, and sealed segments never change (retention deletes
//! them whole, oldest first). So the backup scans the directory once, then
//! copies each segment up to the end of its last complete record as the
//! scan saw it: every record copied is the record the source holds at that
//! offset, however far the writer has gone meanwhile. The metadata (retired
//! epochs, retention overrides) is read from a copy of the sled store
//! taken before the scan. A manifest records, per segment, the bytes and
//! CRC-32 that were copied; restore checks them before writing anything.
//!
//! A backup is also a data directory (the same `topics/` tree); the
//! manifest adds what the segments do not say (metadata) and what proves
//! the copy whole.

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use wse::protocol::{read_stamp, write_stamped};
use wse_log::layout::sync_dir;
use wse_log::{
    DirReader, Epoch, Log, LogConfig, MetaStore, Position, ReadLimits, RecordKind, SledMeta,
    TopicMeta,
};

use super::{meta_snapshot, open_reader, readable};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// The manifest's file name in a backup.
const MANIFEST: &str = "wse-backup.json";
/// The manifest format this code writes and reads.
const VERSION: u32 = 1;

/// Copy a data directory, beside a running server or not, into DEST (which
/// must not exist or be empty): every topic's segments up to their last
/// complete record, the metadata, and a manifest with each file's size and
/// CRC-32. `wse log restore` puts it back.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The data directory to back up.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Where to write the backup.
    #[arg(value_name = "DEST")]
    dest: PathBuf,
}

/// Restore a backup made by `wse log backup` into DIR (which must not
/// exist or be empty; stop the server and move the old directory aside
/// first). Every file is checked against the manifest before anything is
/// written; the restored log is opened and each topic's epoch and offsets
/// compared with the manifest.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup directory.
    #[arg(value_name = "BACKUP")]
    backup: PathBuf,
    /// The data directory to create.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Give every restored topic a new epoch (records keep their offsets,
    /// times and payloads; message stamps name the new epoch). Use it when
    /// the backup is older than what clients have seen: a client that
    /// recovers is then told its history is gone and resynchronises,
    /// instead of silently missing what was published after the backup.
    #[arg(long)]
    new_epochs: bool,
}

/// What a backup holds.
#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    /// Always `wse-backup`.
    format: String,
    version: u32,
    created_at: String,
    /// The data directory it was taken from.
    source: PathBuf,
    topics: Vec<TopicEntry>,
    /// The metadata store's entries (retired epochs, retention overrides).
    meta: Vec<TopicMeta>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TopicEntry {
    name: String,
    epoch: String,
    first_offset: u64,
    next_offset: u64,
    segments: Vec<SegmentEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct SegmentEntry {
    /// Relative to the backup (and to the data directory).
    file: PathBuf,
    bytes: u64,
    crc32: String,
}

impl Run for BackupArgs {
    fn run(self) -> Result<u8, CliError> {
        // Metadata first: a topic created after it simply has no entry
        // (its segments say everything else).
        let reader = open_reader(&self.dir)?;
        let meta = meta_snapshot::snapshot(&self.dir).map_err(|why| {
            CliError::Usage(format!(
                "cannot read the metadata of {}: {why}",
                self.dir.display()
            ))
        })?;
        let (topics, unreadable) = reader.topics()?;
        if let Some(u) = unreadable.first() {
            return Err(CliError::Usage(format!(
                "{} cannot be read as a topic ({}); `wse log verify` says more",
                u.dir.display(),
                u.why
            )));
        }
        empty_dir(&self.dest)?;
        let mut entries = Vec::with_capacity(topics.len());
        let (mut files, mut bytes) = (0u64, 0u64);
        for t in &topics {
            let mut segments = Vec::with_capacity(t.segments.len());
            let mut first_offset = t.first_offset;
            for (i, seg) in t.segments.iter().enumerate() {
                let rel = seg
                    .path
                    .strip_prefix(&self.dir)
                    .map_err(|_| {
                        CliError::Usage(format!(
                            "{} is outside {}",
                            seg.path.display(),
                            self.dir.display()
                        ))
                    })?
                    .to_owned();
                match copy_prefix(&seg.path, &self.dest.join(&rel), seg.bytes) {
                    Ok(crc) => {
                        files += 1;
                        bytes += seg.bytes;
                        segments.push(SegmentEntry {
                            file: rel,
                            bytes: seg.bytes,
                            crc32: format!("{crc:08x}"),
                        });
                    }
                    // Retention deleted the oldest segments since the scan:
                    // the backup starts after them.
                    Err(e) if e.kind() == io::ErrorKind::NotFound && segments.is_empty() => {
                        first_offset = t
                            .segments
                            .get(i + 1)
                            .map_or(t.next_offset, |s| s.base_offset);
                    }
                    Err(e) => return Err(CliError::io(format!("copy {}", seg.path.display()), e)),
                }
            }
            entries.push(TopicEntry {
                name: t.name.clone(),
                epoch: t.epoch.to_string(),
                first_offset,
                next_offset: t.next_offset,
                segments,
            });
        }
        let manifest = Manifest {
            format: "wse-backup".into(),
            version: VERSION,
            created_at: humantime::format_rfc3339_micros(SystemTime::now()).to_string(),
            source: fs::canonicalize(&self.dir).unwrap_or_else(|_| self.dir.clone()),
            topics: entries,
            meta,
        };
        write_manifest(&self.dest, &manifest)?;
        eprintln!(
            "backed up {} topics ({files} segments, {bytes} bytes) from {} to {}",
            manifest.topics.len(),
            self.dir.display(),
            self.dest.display()
        );
        Ok(0)
    }
}

impl Run for RestoreArgs {
    fn run(self) -> Result<u8, CliError> {
        let manifest = read_manifest(&self.backup)?;
        for t in &manifest.topics {
            for s in &t.segments {
                check_segment(&self.backup, s)?;
            }
        }
        empty_dir(&self.dir)?;
        for t in &manifest.topics {
            for s in &t.segments {
                copy_prefix(&self.backup.join(&s.file), &self.dir.join(&s.file), s.bytes)
                    .map_err(|e| CliError::io(format!("copy {}", s.file.display()), e))?;
            }
        }
        {
            let layout = wse_log::layout::Layout::new(&self.dir);
            let store = SledMeta::open(&layout.meta_dir()).map_err(wse_log::LogError::Meta)?;
            for m in &manifest.meta {
                store.put(m).map_err(wse_log::LogError::Meta)?;
            }
            store.close().map_err(wse_log::LogError::Meta)?;
        }
        // Open the restored log: it checks every segment, builds the
        // indexes, and must show what the manifest says.
        let log = Log::open(&self.dir, LogConfig::default())?;
        let mut out = Out::stdout();
        for t in &manifest.topics {
            let mut epoch: Epoch = t
                .epoch
                .parse()
                .map_err(|e| damaged_backup(format!("{e}")))?;
            if self.new_epochs && t.first_offset < t.next_offset {
                epoch = renew_epoch(&log, &self.backup, t)?;
            }
            let here = log.position(&t.name);
            let matches = here.as_ref().is_some_and(|p| {
                p.epoch == epoch
                    && p.first_offset == t.first_offset
                    && p.next_offset == t.next_offset
            }) || (here.is_none() && t.first_offset == t.next_offset);
            if !matches {
                let _ = log.close();
                return Err(damaged_backup(format!(
                    "topic {:?} restored as {here:?}; the manifest says epoch {}, offsets {}..{}",
                    t.name, t.epoch, t.first_offset, t.next_offset
                )));
            }
            out.line(format_args!(
                "restored {} (epoch {epoch}, offsets {}..{})",
                readable(&t.name),
                t.first_offset,
                t.next_offset
            ))?;
        }
        log.close()?;
        out.flush()?;
        Ok(0)
    }
}

/// Replace topic `t` of the restored `log` by the same records under an
/// epoch it never had: the restored history is deleted (its epoch retired)
/// and the backup's records appended again at their offsets with their
/// times, message stamps rewritten for the new epoch. Returns the epoch.
fn renew_epoch(log: &Log, backup: &Path, t: &TopicEntry) -> Result<Epoch, CliError> {
    let reader = DirReader::open(backup)?;
    let summary = reader.topic(&t.name)?.ok_or_else(|| {
        damaged_backup(format!(
            "topic {:?} is not in the backup's segments",
            t.name
        ))
    })?;
    log.delete_topic(&t.name)?;
    let epoch = log.create_fresh_topic_at(&t.name, t.first_offset)?;
    let mut next = t.first_offset;
    let mut last = None;
    let mut payload = BytesMut::new();
    while next < t.next_offset {
        let page = reader.read(&summary, next, ReadLimits::default())?;
        let Some(end) = page.last().map(|r| r.offset() + 1) else {
            return Err(damaged_backup(format!(
                "topic {:?} ends at offset {next}",
                t.name
            )));
        };
        for r in page.iter().take_while(|r| r.offset() < t.next_offset) {
            payload.clear();
            let stamped = (r.kind() == RecordKind::Message)
                .then(|| std::str::from_utf8(r.payload_ref()).ok())
                .flatten()
                .and_then(read_stamp)
                .filter(|(at, _)| at.topic == t.name);
            match stamped {
                Some((_, text)) => {
                    write_stamped(&mut payload, &text, &t.name, epoch.0, r.offset());
                }
                None => payload.extend_from_slice(r.payload_ref()),
            }
            let at = Position::new(epoch, r.offset());
            last = Some(log.append_exact(&t.name, at, r.timestamp_us(), r.kind(), &payload)?);
        }
        next = end;
    }
    if let Some(a) = last {
        a.wait()?;
    }
    Ok(epoch)
}

/// `dir` exists and is empty, or is created.
fn empty_dir(dir: &Path) -> Result<(), CliError> {
    match fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(CliError::Usage(format!(
                    "{} is not empty: give a new or empty directory",
                    dir.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => fs::create_dir_all(dir)
            .map_err(|e| CliError::io(format!("create {}", dir.display()), e)),
        Err(e) => Err(CliError::io(format!("read {}", dir.display()), e)),
    }
}

/// Copy the first `len` bytes of `from` to a new file `to` (and its
/// directories), fsynced. Returns their CRC-32. A source shorter than
/// `len` is an error: the scan saw those bytes, so they must be there.
fn copy_prefix(from: &Path, to: &Path, len: u64) -> io::Result<u32> {
    let mut src = File::open(from)?;
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    let mut dst = File::create(to)?;
    let mut crc = crc32fast::Hasher::new();
    let mut left = len;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(buf.len()));
        let n = src.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("{} holds fewer than {len} bytes", from.display()),
            ));
        }
        crc.update(&buf[..n]);
        dst.write_all(&buf[..n])?;
        left -= n as u64;
    }
    dst.sync_all()?;
    if let Some(parent) = to.parent() {
        sync_dir(parent)?;
    }
    Ok(crc.finalize())
}

/// A backup file that does not match its manifest entry is damage.
fn check_segment(backup: &Path, s: &SegmentEntry) -> Result<(), CliError> {
    // A manifest names files under topics/ only: never `..` or a root.
    let inside = s.file.starts_with("topics")
        && s.file
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
    if !inside {
        return Err(damaged_backup(format!(
            "the manifest names {}, outside topics/",
            s.file.display()
        )));
    }
    let path = backup.join(&s.file);
    let mut file =
        File::open(&path).map_err(|e| damaged_backup(format!("{}: {e}", path.display())))?;
    let mut crc = crc32fast::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = file
            .read(&mut buf)
            .map_err(|e| CliError::io(format!("read {}", path.display()), e))?;
        if n == 0 {
            break;
        }
        crc.update(&buf[..n]);
        total += n as u64;
    }
    let sum = format!("{:08x}", crc.finalize());
    if total != s.bytes || sum != s.crc32 {
        return Err(damaged_backup(format!(
            "{}: {total} bytes with CRC-32 {sum}; the manifest says {} bytes with {}",
            path.display(),
            s.bytes,
            s.crc32
        )));
    }
    Ok(())
}

fn damaged_backup(why: String) -> CliError {
    CliError::DamagedBackup(why)
}

fn write_manifest(dest: &Path, manifest: &Manifest) -> Result<(), CliError> {
    let path = dest.join(MANIFEST);
    let partial = dest.join(format!("{MANIFEST}.partial"));
    let text = serde_json::to_vec_pretty(manifest)
        .map_err(|e| CliError::io("encode the manifest", io::Error::other(e)))?;
    (|| {
        let mut f = File::create(&partial)?;
        f.write_all(&text)?;
        f.sync_all()?;
        fs::rename(&partial, &path)?;
        sync_dir(dest)
    })()
    .map_err(|e| CliError::io(format!("write {}", path.display()), e))
}

fn read_manifest(backup: &Path) -> Result<Manifest, CliError> {
    let path = backup.join(MANIFEST);
    let text = fs::read(&path).map_err(|e| {
        CliError::io(
            format!(
                "{} is not a backup made by `wse log backup` (read {})",
                backup.display(),
                path.display()
            ),
            e,
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .map_err(|e| damaged_backup(format!("{}: {e}", path.display())))?;
    if manifest.format != "wse-backup" || manifest.version != VERSION {
        return Err(CliError::Usage(format!(
            "{}: format {:?} version {} (this build reads wse-backup version {VERSION})",
            path.display(),
            manifest.format,
            manifest.version
        )));
    }
    Ok(manifest)
}
