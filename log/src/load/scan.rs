//! Scanning one segment of a topic directory: its index as far as it
//! checks out, its records from the last good index entry on, and how it
//! ends (cleanly, at a bad record, with a torn tail).

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::{Finding, ScanSettings, Slot, misplaced};
use crate::error::CorruptReason;
use crate::position::Epoch;
use crate::segment::cursor::{self, CursorStop, RecordCursor};
use crate::segment::index::{self, IndexEntry};
use crate::segment::index_path;
use crate::segment::info::SegmentInfo;

/// Scan one segment from its last good index entry to its end: what it
/// holds, and what is wrong with it (a bad record, a torn tail, an index
/// to rebuild).
pub(super) fn scan_segment(
    dir: &Path,
    slot: &Slot,
    header_len: u64,
    epoch: Epoch,
    next_base: Option<u64>,
    settings: ScanSettings,
) -> io::Result<(SegmentInfo, Vec<Finding>)> {
    let Slot {
        base, path, file, ..
    } = slot;
    let file_len = file.metadata()?.len();
    let mut info = SegmentInfo::new(*base, path.clone(), header_len);
    info.first_ts_us = first_timestamp(file, header_len, file_len, settings)?;
    info.file_len = file_len;
    let index = load_index(dir, file, *base, epoch, file_len, settings)?;
    info.index = index.entries;
    info.index_persisted = if index.problem.is_some() {
        0
    } else {
        info.index.len()
    };
    let start = index.start.unwrap_or((header_len, *base));
    let stop = scan_records(file, start, epoch, settings, &mut info)?;
    let mut findings = Vec::new();
    findings.extend(match next_base {
        Some(next) => sealed_end(path, stop, next, &mut info),
        None => active_end(file, path, stop, epoch, settings, &mut info)?,
    });
    if let Some(reason) = index.problem {
        findings.push(Finding::IndexRebuilt {
            index: index.path,
            reason,
        });
    }
    Ok((info, findings))
}

/// A segment's index, as far as it checks out.
struct IndexScan {
    /// The index file.
    path: PathBuf,
    /// The entries kept: each points at a valid record of its offset.
    entries: Vec<IndexEntry>,
    /// Where the last kept entry points (position, offset): the record
    /// scan starts there rather than at the segment's first record.
    start: Option<(u64, u64)>,
    /// Why the index file must be rewritten, if it must.
    problem: Option<String>,
}

/// Read the index of the segment at `base` and keep its entries up to the
/// last that points at the record it names (a torn or stale index is
/// rebuilt, never trusted).
fn load_index(
    dir: &Path,
    file: &File,
    base: u64,
    epoch: Epoch,
    file_len: u64,
    settings: ScanSettings,
) -> io::Result<IndexScan> {
    let path = index_path(dir, base);
    let (mut entries, problem) = match fs::read(&path) {
        Ok(buf) => match index::parse(&buf, base, file_len) {
            Ok(e) => (e, None),
            Err((good, e)) => (good, Some(e.to_string())),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => (Vec::new(), None),
        Err(e) => return Err(e),
    };
    let parsed = entries.len();
    let mut start = None;
    while let Some(last) = entries.last().copied() {
        if entry_checks_out(file, last, base, epoch, file_len, settings)? {
            start = Some((u64::from(last.position), base + u64::from(last.rel_offset)));
            break;
        }
        entries.pop();
    }
    let problem = problem.or_else(|| {
        (entries.len() < parsed).then(|| "entries point at no matching record".to_owned())
    });
    Ok(IndexScan {
        path,
        entries,
        start,
        problem,
    })
}

/// Read records from `start` (a position and the offset expected there),
/// indexing as it goes, until the file's end or the first record that is
/// torn, invalid or misplaced; `info` then ends after the last good one.
/// Returns where and why the scan stopped early.
fn scan_records(
    file: &File,
    start: (u64, u64),
    epoch: Epoch,
    settings: ScanSettings,
    info: &mut SegmentInfo,
) -> io::Result<Option<(u64, CorruptReason)>> {
    let (mut pos, mut expected) = start;
    let mut cursor = RecordCursor::new(file, pos, info.file_len, settings.max_payload);
    let stop = loop {
        match cursor.next_record() {
            Ok(r) => {
                if let Some(reason) = misplaced(&r, expected, epoch) {
                    break Some((pos, reason));
                }
                info.maybe_index(expected, pos, settings.index_interval);
                info.last_ts_us = r.timestamp_us();
                expected += 1;
                pos = cursor.position();
            }
            Err(CursorStop::End) => break None,
            Err(CursorStop::Truncated { at, error }) => break Some((at, error.into())),
            Err(CursorStop::Invalid { at, error }) => break Some((at, error.into())),
            Err(CursorStop::Io(e)) => return Err(e),
        }
    };
    info.len = pos;
    info.end_offset = expected;
    Ok(stop)
}

/// A sealed segment must end cleanly where the next one begins. One that
/// does not (a bad record, or records missing at its end) still covers
/// every offset up to the next one: reads of the offsets it cannot give
/// stop there with an error.
fn sealed_end(
    path: &Path,
    stop: Option<(u64, CorruptReason)>,
    next: u64,
    info: &mut SegmentInfo,
) -> Option<Finding> {
    let expected = info.end_offset;
    let (at, reason) = match stop {
        None if expected == next => return None,
        None => (
            info.len,
            CorruptReason::Missing {
                from: expected,
                to: next,
            },
        ),
        Some(stop) => stop,
    };
    info.corrupt_at = Some(at);
    info.end_offset = next;
    Some(Finding::Corruption {
        segment: path.to_owned(),
        at,
        offset: expected,
        reason,
    })
}

/// The active segment ends at its last good record: what follows is a
/// torn tail (cut at open), unless valid records of later offsets follow
/// the bad one; then the bad record is corruption, and the segment (never
/// appended to again) ends after the records that follow.
fn active_end(
    file: &File,
    path: &Path,
    stop: Option<(u64, CorruptReason)>,
    epoch: Epoch,
    settings: ScanSettings,
    info: &mut SegmentInfo,
) -> io::Result<Option<Finding>> {
    let Some((at, reason)) = stop else {
        return Ok(None);
    };
    let (expected, file_len) = (info.end_offset, info.file_len);
    match cursor::resync(file, at + 1, file_len, settings.max_payload, epoch)? {
        Some((resume, r)) if r.offset() > expected => {
            info.corrupt_at = Some(at);
            let (end, end_offset, last_ts) =
                scan_after_resync(file, resume, r.offset(), file_len, epoch, settings)?;
            info.len = end;
            info.end_offset = end_offset;
            info.last_ts_us = last_ts;
            Ok(Some(Finding::Corruption {
                segment: path.to_owned(),
                at,
                offset: expected,
                reason,
            }))
        }
        _ => Ok(Some(Finding::TornTail {
            segment: path.to_owned(),
            at,
            cut_bytes: file_len - at,
        })),
    }
}

/// After a hole, count the valid records that follow (for the end of a
/// segment that is kept but never appended to again).
fn scan_after_resync(
    file: &File,
    from: u64,
    offset: u64,
    file_len: u64,
    epoch: Epoch,
    settings: ScanSettings,
) -> io::Result<(u64, u64, u64)> {
    let mut cursor = RecordCursor::new(file, from, file_len, settings.max_payload);
    let (mut end, mut expected, mut last_ts) = (from, offset, 0);
    while let Ok(r) = cursor.next_record() {
        if misplaced(&r, expected, epoch).is_some() {
            break;
        }
        expected += 1;
        last_ts = r.timestamp_us();
        end = cursor.position();
    }
    Ok((end, expected, last_ts))
}

/// Does the index entry point at a valid record with the offset it names?
fn entry_checks_out(
    file: &File,
    e: IndexEntry,
    base: u64,
    epoch: Epoch,
    file_len: u64,
    settings: ScanSettings,
) -> io::Result<bool> {
    let mut c = RecordCursor::new(file, u64::from(e.position), file_len, settings.max_payload);
    Ok(match c.next_record() {
        Ok(r) => misplaced(&r, base + u64::from(e.rel_offset), epoch).is_none(),
        Err(CursorStop::Io(err)) => return Err(err),
        Err(_) => false,
    })
}

/// The time of the segment's first record (0 when it has none).
fn first_timestamp(
    file: &File,
    header_len: u64,
    file_len: u64,
    settings: ScanSettings,
) -> io::Result<u64> {
    let mut c = RecordCursor::new(file, header_len, file_len, settings.max_payload);
    match c.next_record() {
        Ok(r) => Ok(r.timestamp_us()),
        Err(CursorStop::Io(e)) => Err(e),
        Err(_) => Ok(0),
    }
}
