//! `verify`: check every segment header, every record's CRC, offset and
//! epoch, and every index entry of a data directory, and list each bad
//! location; then read every topic through as the log would and list every
//! damaged range ([`Damage`]: which offsets are unreadable and where reading
//! resumes), not just the first. Read-only; safe beside a running writer (a record found
//! incomplete at the very end of a segment is re-checked once, since a
//! writer may be in the middle of writing it).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use crate::damage::Damage;
use crate::error::{LogError, Result};
use crate::files::FileCache;
use crate::layout::{self, Layout};
use crate::load::{self, Loaded, ScanSettings, misplaced, read_header};
use crate::position::Epoch;
use crate::read::{DiskRead, ReadLimits, seek_in};
use crate::segment::cursor::{self, CursorStop, RecordCursor};
use crate::segment::index;
use crate::segment::{index_path, segment_path};
use crate::topic_name::topic_key;

/// One bad location.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// Byte position in the file, when it applies.
    pub position: Option<u64>,
    /// The offset concerned, when known.
    pub offset: Option<u64>,
    /// What is wrong.
    pub what: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(p) = self.position {
            write!(f, " at byte {p}")?;
        }
        if let Some(o) = self.offset {
            write!(f, " (offset {o})")?;
        }
        write!(f, ": {}", self.what)
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct VerifyReport {
    /// Topic directories checked.
    pub topics: usize,
    /// Segment files checked.
    pub segments: usize,
    /// Valid records seen.
    pub records: u64,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Bad locations.
    pub problems: Vec<Problem>,
    /// Every range of offsets a read cannot return, per topic in offset
    /// order: what a reader of the log meets as [`LogError::Damaged`].
    pub damaged: Vec<Damage>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty() && self.damaged.is_empty()
    }
}

/// Verify the data directory of `layout`, reading through `files`.
pub(crate) fn verify_dir(
    layout: &Layout,
    files: &FileCache,
    settings: ScanSettings,
) -> Result<VerifyReport> {
    let mut report = VerifyReport::default();
    let dirs = layout
        .list_topic_dirs()
        .map_err(|e| LogError::io("list", layout.topics_dir(), e))?;
    for (key, dir) in dirs {
        report.topics += 1;
        verify_topic(&dir, key, settings, &mut report)
            .map_err(|e| LogError::io("read", &dir, e))?;
        damaged_ranges(&dir, key, files, settings, &mut report)?;
    }
    Ok(report)
}

/// Read the topic in `dir` from its first offset to its head as the log
/// would, and list each damaged range met on the way.
fn damaged_ranges(
    dir: &Path,
    key: u128,
    files: &FileCache,
    settings: ScanSettings,
    report: &mut VerifyReport,
) -> Result<()> {
    let loaded =
        load::load_topic_dir(dir, key, settings).map_err(|e| LogError::io("scan", dir, e))?;
    let Loaded::Topic(lt) = loaded else {
        return Ok(());
    };
    let disk = DiskRead {
        files,
        topic: &lt.name,
        epoch: lt.epoch,
        max_payload: settings.max_payload,
    };
    let page = ReadLimits {
        max_records: 4096,
        max_bytes: 16 << 20,
    };
    let (mut from, to) = (lt.segments.first().map_or(0, |s| s.base), lt.next_offset());
    while from < to {
        match disk.read(from, to, page, |o| seek_in(&lt.segments, o)) {
            Ok(records) => match records.last() {
                Some(r) => from = r.offset() + 1,
                None => break,
            },
            Err(None) => break,
            Err(Some(LogError::Damaged(d))) => {
                let next = d.resume_at;
                report.damaged.push(d);
                match next {
                    Some(r) => from = r,
                    None => break,
                }
            }
            Err(Some(e)) => return Err(e),
        }
    }
    Ok(())
}

fn problem(
    path: &Path,
    position: Option<u64>,
    offset: Option<u64>,
    what: impl Into<String>,
) -> Problem {
    Problem {
        path: path.to_owned(),
        position,
        offset,
        what: what.into(),
    }
}

fn verify_topic(
    dir: &Path,
    key: u128,
    settings: ScanSettings,
    report: &mut VerifyReport,
) -> io::Result<()> {
    let bases = layout::list_segments(dir)?;
    let mut topic: Option<(String, Epoch)> = None;
    let mut expected_next: Option<u64> = None;
    for (i, &base) in bases.iter().enumerate() {
        let last = i + 1 == bases.len();
        let path = segment_path(dir, base);
        let file = File::open(&path)?;
        report.segments += 1;
        let (header, header_len) = match read_header(&file)? {
            Ok(h) => h,
            Err(e) => {
                report.problems.push(problem(
                    &path,
                    Some(0),
                    None,
                    format!("segment header: {e}"),
                ));
                continue;
            }
        };
        match &topic {
            None => {
                if topic_key(&header.topic) != key {
                    report.problems.push(problem(
                        &path,
                        Some(0),
                        None,
                        format!("topic {:?} does not belong in this directory", header.topic),
                    ));
                }
                topic = Some((header.topic.clone(), header.epoch));
            }
            Some((name, epoch)) => {
                if *name != header.topic || *epoch != header.epoch {
                    report.problems.push(problem(
                        &path,
                        Some(0),
                        None,
                        format!("header says topic {:?} epoch {}, first segment says {name:?} epoch {epoch}", header.topic, header.epoch),
                    ));
                }
            }
        }
        if header.base_offset != base {
            report.problems.push(problem(
                &path,
                Some(0),
                None,
                format!(
                    "header base offset {} differs from the file name",
                    header.base_offset
                ),
            ));
        }
        if let Some(next) = expected_next
            && next != base
        {
            report.problems.push(problem(
                &path,
                None,
                Some(next.min(base)),
                format!("offsets {next}..{base} are missing between segments"),
            ));
        }
        let epoch = topic.as_ref().map_or(header.epoch, |t| t.1);
        let starts = scan_records(
            &file,
            &path,
            base,
            header_len as u64,
            epoch,
            last,
            settings,
            report,
        )?;
        expected_next = Some(starts.next_offset);
        verify_index(dir, base, &starts.starts, report)?;
    }
    Ok(())
}

/// Record starts (position → offset) of a segment and where it ended.
struct Scanned {
    starts: HashMap<u64, u64>,
    next_offset: u64,
}

#[allow(clippy::too_many_arguments)]
fn scan_records(
    file: &File,
    path: &Path,
    base: u64,
    header_len: u64,
    epoch: Epoch,
    last: bool,
    settings: ScanSettings,
    report: &mut VerifyReport,
) -> io::Result<Scanned> {
    let mut len = file.metadata()?.len();
    let mut starts = HashMap::new();
    let mut pos = header_len;
    let mut expected = base;
    let mut rechecked = false;
    loop {
        let mut c = RecordCursor::new(file, pos, len, settings.max_payload);
        let stop = loop {
            let at = c.position();
            match c.next_record() {
                Ok(r) => {
                    if let Some(reason) = misplaced(&r, expected, epoch) {
                        report.problems.push(problem(
                            path,
                            Some(at),
                            Some(expected),
                            reason.to_string(),
                        ));
                    }
                    starts.insert(at, r.offset());
                    report.records += 1;
                    expected = r.offset() + 1;
                }
                Err(stop) => break stop,
            }
        };
        match stop {
            CursorStop::End => break,
            CursorStop::Io(e) => return Err(e),
            CursorStop::Truncated { at, error } if last && !rechecked => {
                // A writer may be appending right now: look once more.
                let now = file.metadata()?.len();
                rechecked = true;
                if now != len {
                    len = now;
                    pos = at;
                    continue;
                }
                report.problems.push(problem(
                    path,
                    Some(at),
                    Some(expected),
                    format!(
                        "torn tail: {error} (an incomplete write; cut when the log is next opened)"
                    ),
                ));
                break;
            }
            CursorStop::Truncated { at, error } | CursorStop::Invalid { at, error } => {
                report
                    .problems
                    .push(problem(path, Some(at), Some(expected), error.to_string()));
                match cursor::resync(file, at + 1, len, settings.max_payload, epoch)? {
                    Some((resume, r)) => {
                        if r.offset() != expected {
                            report.problems.push(problem(
                                path,
                                Some(resume),
                                Some(expected),
                                format!("offsets {expected}..{} unreadable", r.offset()),
                            ));
                        }
                        pos = resume;
                        expected = r.offset();
                    }
                    None => break,
                }
            }
        }
    }
    report.bytes += len;
    Ok(Scanned {
        starts,
        next_offset: expected,
    })
}

fn verify_index(
    dir: &Path,
    base: u64,
    starts: &HashMap<u64, u64>,
    report: &mut VerifyReport,
) -> io::Result<()> {
    let path = index_path(dir, base);
    let buf = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let entries = match index::parse(&buf, base, u64::MAX) {
        Ok(e) => e,
        Err((good, e)) => {
            report
                .problems
                .push(problem(&path, None, None, format!("index: {e}")));
            good
        }
    };
    for (i, e) in entries.iter().enumerate() {
        let offset = base + u64::from(e.rel_offset);
        if starts.get(&u64::from(e.position)) != Some(&offset) {
            report.problems.push(problem(
                &path,
                Some((index::INDEX_HEADER_LEN + i * index::ENTRY_LEN) as u64),
                Some(offset),
                format!("index entry {i} points at byte {}, which does not start the record of offset {offset}", e.position),
            ));
        }
    }
    Ok(())
}
