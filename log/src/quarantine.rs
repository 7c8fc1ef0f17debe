//! Quarantining a segment whose header is damaged.
//!
//! A damaged header means none of the segment's records can be proven to
//! belong to the topic, but the topic's other segments are intact and stay
//! served. At open the writer moves the bad file to `lost+found/` and puts
//! an empty segment (a valid header, no records) under its name: the
//! offsets the file covered then read as damaged (a sealed segment that
//! ends before the next one begins), now and after every later restart,
//! and retention removes the placeholder like any other segment.
//!
//! The head never goes back. The metadata store does not record a topic's
//! head (the segments do), so when the damaged segment is the newest one
//! its end is recovered from the file itself ([`recovered_end`]) and
//! recorded by one more empty segment starting there: the next append gets
//! an offset past every record the file may have held.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{LogError, Result};
use crate::load::{self, Finding, Loaded, LoadedTopic, ScanSettings};
use crate::position::Epoch;
use crate::record::HEADER_LEN;
use crate::segment::cursor::{RecordCursor, resync_where};
use crate::segment::header::SegmentHeader;
use crate::segment::{index_path, segment_path};
use crate::shared::Shared;
use crate::storage::{self, OpenMode, write_all_at};
use crate::topic_name::key_hex;

/// The offset after every record the newest segment of a topic, starting
/// at `base` and with a damaged header, may have held.
///
/// Its intact records are found by framing and CRC (records of `epoch`
/// with offsets from `base` on); bytes after the newest of them that do not
/// decode may still have held records, at least [`HEADER_LEN`] bytes each,
/// so the end is pushed past as many as they could hold. A file whose only
/// damage is its header ends with an intact record, and its end is exact.
pub(crate) fn recovered_end(
    file: &File,
    base: u64,
    topic: &str,
    epoch: Epoch,
    settings: ScanSettings,
) -> io::Result<u64> {
    let file_len = file.metadata()?.len();
    let header = SegmentHeader {
        topic: topic.to_owned(),
        epoch,
        base_offset: base,
        created_us: 0,
    };
    // Offset after the newest intact record, and the byte after it.
    let (mut next, mut end) = (base, (header.encode().len() as u64).min(file_len));
    let mut pos = 0;
    let max = settings.max_payload;
    while let Some((at, _)) = resync_where(file, pos, file_len, max, epoch, |r| r.offset() >= base)?
    {
        let mut c = RecordCursor::new(file, at, file_len, max);
        pos = at + 1;
        while let Ok(r) = c.next_record() {
            if r.epoch() != epoch || r.offset() < base {
                break;
            }
            if r.offset() >= next {
                next = r.offset() + 1;
                end = c.position();
            }
            pos = c.position();
        }
    }
    Ok(next + file_len.saturating_sub(end) / HEADER_LEN as u64)
}

/// Set aside every segment of `lt` whose header is damaged (see the module
/// doc) and load the topic again; returns it with the quarantines among its
/// findings, or `lt` unchanged when there was none.
pub(crate) fn quarantine_bad_headers(
    shared: &Shared,
    dir: &Path,
    key: u128,
    lt: LoadedTopic,
    settings: ScanSettings,
) -> Result<LoadedTopic> {
    let newest = lt.segments.last().map(|s| s.base);
    let mut moved = Vec::new();
    for f in &lt.findings {
        let Finding::BadHeader {
            segment,
            error,
            from,
            to,
            ..
        } = f
        else {
            continue;
        };
        let head = (newest == Some(*from) && to > from).then_some(*to);
        let dest = set_aside(shared, dir, key, &lt, *from, head)?;
        tracing::warn!(
            topic = %lt.name,
            "segment {} has a damaged header ({error}): moved to {}; offsets {from}..{to} read as damaged",
            segment.display(),
            dest.display()
        );
        moved.push(Finding::BadHeader {
            segment: segment.clone(),
            error: error.clone(),
            from: *from,
            to: *to,
            moved_to: Some(dest),
        });
    }
    if moved.is_empty() {
        return Ok(lt);
    }
    match load::load_topic_dir(dir, key, settings).map_err(|e| LogError::io("scan", dir, e))? {
        Loaded::Topic(mut again) if !has_bad_header(&again) => {
            moved.append(&mut again.findings);
            again.findings = moved;
            Ok(again)
        }
        _ => Err(LogError::Unreadable {
            dir: dir.to_owned(),
            why: "still unreadable after quarantining segments with damaged headers".into(),
        }),
    }
}

fn has_bad_header(lt: &LoadedTopic) -> bool {
    lt.findings
        .iter()
        .any(|f| matches!(f, Finding::BadHeader { .. }))
}

/// Move the segment at `base` to `lost+found/` and leave an empty one in
/// its place; for the newest segment, first record the head with an empty
/// segment at `head`. Returns where the damaged file went.
///
/// The order keeps a crash harmless: the head is recorded before anything
/// moves, and the placeholder is complete before it takes the file's name.
/// A crash between the move and the rename leaves a gap without its
/// placeholder, which still reads as damage unless it was the oldest
/// segment.
fn set_aside(
    shared: &Shared,
    dir: &Path,
    key: u128,
    lt: &LoadedTopic,
    base: u64,
    head: Option<u64>,
) -> Result<PathBuf> {
    let storage = shared.files.storage();
    if let Some(h) = head {
        write_empty_segment(shared, lt, &segment_path(dir, h), h)?;
        let _ = storage::remove_if_present(storage, &index_path(dir, h));
    }
    let path = segment_path(dir, base);
    let tmp = path.with_extension("seg.placeholder");
    write_empty_segment(shared, lt, &tmp, base)?;
    let lf = shared.layout.lost_found_dir();
    storage
        .create_dir_all(&lf)
        .map_err(|e| LogError::io("create", &lf, e))?;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("segment");
    let dest = lf.join(format!(
        "{}-{}-{}-{name}",
        key_hex(key),
        lt.epoch,
        shared.now_us()
    ));
    shared.files.forget(&path);
    storage
        .rename(&path, &dest)
        .map_err(|e| LogError::io("rename", &path, e))?;
    let idx = index_path(dir, base);
    storage::remove_if_present(storage, &idx).map_err(|e| LogError::io("remove", &idx, e))?;
    storage
        .rename(&tmp, &path)
        .map_err(|e| LogError::io("rename", &tmp, e))?;
    for d in [dir, lf.as_path()] {
        storage
            .sync_dir(d)
            .map_err(|e| LogError::io("fsync", d, e))?;
    }
    Ok(dest)
}

/// Write a segment with a header and no record at `path`, durably.
fn write_empty_segment(shared: &Shared, lt: &LoadedTopic, path: &Path, base: u64) -> Result<()> {
    let header = SegmentHeader {
        topic: lt.name.clone(),
        epoch: lt.epoch,
        base_offset: base,
        created_us: shared.now_us(),
    }
    .encode();
    let file = shared
        .files
        .storage()
        .open(path, OpenMode::CreateTruncate)
        .map_err(|e| LogError::io("create", path, e))?;
    write_all_at(&*file, &header, 0)
        .and_then(|()| file.sync_all())
        .map_err(|e| LogError::io("write", path, e))
}
