//! Reading a topic from a position: from the memory tail when the range is
//! there, from segment files when it is older.
//!
//! Every record read from disk is validated (length, CRC, offset, epoch);
//! a bad one is never returned. A batch stops right before damage; a read
//! that starts in it gets [`LogError::Damaged`], which says where readable
//! history resumes (see `damage` and `resync`).

use std::io;
use std::path::PathBuf;

use crate::damage::Damage;
use crate::error::{CorruptReason, LogError, NotRecoverable, NotRecoverableReason, Result};
use crate::files::FileCache;
use crate::load::misplaced;
use crate::position::{Epoch, Position};
use crate::record::Record;
use crate::resync::{self, Resume};
use crate::segment::cursor::{CursorStop, RecordCursor};
use crate::segment::header::HeaderError;
use crate::segment::info::SegmentInfo;
use crate::shared::Shared;
use crate::stats::Counters;
use crate::storage::StorageFile;
use crate::topic::Topic;

/// How much one read may return.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct ReadLimits {
    /// Most records.
    pub max_records: usize,
    /// Most payload-plus-header bytes (at least one record is returned).
    pub max_bytes: usize,
}

impl ReadLimits {
    /// At most `n` records, any size.
    pub fn records(n: usize) -> Self {
        Self {
            max_records: n,
            max_bytes: usize::MAX,
        }
    }
}

impl Default for ReadLimits {
    /// 1,000 records or 4 MiB.
    fn default() -> Self {
        Self {
            max_records: 1000,
            max_bytes: 4 << 20,
        }
    }
}

/// Records read from a topic.
#[derive(Clone, Debug)]
pub struct ReadBatch {
    /// The records, consecutive, starting at the requested offset.
    pub records: Vec<Record>,
    /// The offset to read from next.
    pub next_offset: u64,
    /// Offset after the newest visible record when the read was made.
    pub head: u64,
    /// True when the records came from the memory tail.
    pub from_memory: bool,
}

impl ReadBatch {
    /// True when the read reached the newest record.
    pub fn at_head(&self) -> bool {
        self.next_offset >= self.head
    }
}

/// Where a disk read starts.
pub(crate) struct Seek {
    pub(crate) path: PathBuf,
    position: u64,
    offset: u64,
    pub(crate) header_len: u64,
    pub(crate) base: u64,
    /// Records are read (and, past damage, searched for) up to here.
    pub(crate) scan_end: u64,
    pub(crate) end_offset: u64,
    pub(crate) bad_header: Option<HeaderError>,
}

impl Seek {
    /// Where to start reading `offset` in `seg`.
    pub(crate) fn new(seg: &SegmentInfo, offset: u64) -> Self {
        let (position, at_offset) = seg.seek(offset);
        Self {
            path: seg.path.clone(),
            position,
            offset: at_offset,
            header_len: seg.header_len,
            base: seg.base,
            scan_end: seg.scan_end(),
            end_offset: seg.end_offset,
            bad_header: seg.bad_header.clone(),
        }
    }
}

/// Where to start reading `offset` among `segments` (oldest first), if one
/// of them holds it.
pub(crate) fn seek_in(segments: &[SegmentInfo], offset: u64) -> Option<Seek> {
    let i = segments.partition_point(|s| s.base <= offset);
    i.checked_sub(1)
        .map(|i| &segments[i])
        .filter(|s| offset < s.end_offset)
        .map(|s| Seek::new(s, offset))
}

/// A read of consecutive records from segment files (the writer's log and
/// the read-only tools share it).
pub(crate) struct DiskRead<'a> {
    pub files: &'a FileCache,
    pub topic: &'a str,
    pub epoch: Epoch,
    pub max_payload: usize,
}

/// Where a bad spot was met: byte position, first unreadable offset, why.
type BadSpot = (u64, u64, CorruptReason);

impl DiskRead<'_> {
    /// Records `from..to`, within `limits`, finding segments with `seek`.
    /// `Err(None)` means the offsets are no longer stored. A batch stops
    /// right before damage; a read that starts in damage gets
    /// [`LogError::Damaged`].
    pub fn read(
        &self,
        from: u64,
        to: u64,
        limits: ReadLimits,
        seek: impl Fn(u64) -> Option<Seek>,
    ) -> std::result::Result<Vec<Record>, Option<LogError>> {
        let mut batch = Batch {
            from,
            to,
            limits,
            out: Vec::new(),
            bytes: 0,
        };
        let mut offset = from;
        while offset < to && !batch.full() {
            let Some(s) = seek(offset) else {
                if batch.out.is_empty() {
                    return Err(None);
                }
                break;
            };
            match self.read_segment(&s, &mut batch, &seek)? {
                Some(next) => offset = next,
                None => break,
            }
        }
        Ok(batch.out)
    }

    /// Read `seek`'s segment into `batch`; the offset after the segment
    /// when it was read to its end, `None` when the batch is complete.
    fn read_segment(
        &self,
        seek: &Seek,
        batch: &mut Batch,
        find: &dyn Fn(u64) -> Option<Seek>,
    ) -> std::result::Result<Option<u64>, Option<LogError>> {
        if let Some(e) = &seek.bad_header {
            let spot = (0, seek.base, CorruptReason::BadHeader(e.clone()));
            self.damaged(None, seek, spot, batch, find)?;
            return Ok(None);
        }
        let file = match self.files.get(&seek.path) {
            Ok(f) => f,
            // Retention deleted it after the lookup.
            Err(e) if e.kind() == io::ErrorKind::NotFound && batch.out.is_empty() => {
                return Err(None);
            }
            Err(e) => return Err(Some(LogError::io("open", &seek.path, e))),
        };
        let mut at = seek.position;
        let mut expected = seek.offset;
        let mut from_index = seek.position != seek.header_len;
        let mut cursor = RecordCursor::new(&*file, at, seek.scan_end, self.max_payload);
        let stop = seek.end_offset.min(batch.to);
        while expected < stop {
            let spot = match cursor.next_record() {
                Ok(r) => match misplaced(&r, expected, self.epoch) {
                    None => {
                        at = cursor.position();
                        expected += 1;
                        if r.offset() >= batch.from && !batch.push(r) {
                            return Ok(None);
                        }
                        continue;
                    }
                    Some(reason) => (at, expected, reason),
                },
                Err(CursorStop::Io(e)) => return Err(Some(LogError::io("read", &seek.path, e))),
                Err(CursorStop::End) => (
                    at,
                    expected,
                    CorruptReason::Missing {
                        from: expected,
                        to: stop,
                    },
                ),
                Err(CursorStop::Truncated { at, error } | CursorStop::Invalid { at, error }) => {
                    (at, expected, error.into())
                }
            };
            if from_index && spot.0 == seek.position {
                // The index entry points at no record of its offset: scan
                // this segment from its start (once: the scan may meet the
                // same bad record, which is then damage).
                tracing::debug!(segment = %seek.path.display(), "index entry does not match its record; scanning");
                from_index = false;
                at = seek.header_len;
                expected = seek.base;
                cursor = RecordCursor::new(&*file, at, seek.scan_end, self.max_payload);
                continue;
            }
            let Some((p, r)) = self.damaged(Some(&*file), seek, spot, batch, find)? else {
                return Ok(None);
            };
            // Resynchronized before the offsets asked for: read on from there.
            at = p;
            expected = r;
            cursor = RecordCursor::new(&*file, at, seek.scan_end, self.max_payload);
        }
        Ok(Some(expected))
    }

    /// Damage at `spot`. A batch with records ends right before it
    /// (`Ok(None)`). Otherwise find where reading resumes: the position and
    /// offset to read on from when that is still before the offsets asked
    /// for, or else the [`LogError::Damaged`] to answer with.
    fn damaged(
        &self,
        file: Option<&dyn StorageFile>,
        seek: &Seek,
        (at, first_missing, reason): BadSpot,
        batch: &mut Batch,
        find: &dyn Fn(u64) -> Option<Seek>,
    ) -> std::result::Result<Option<(u64, u64)>, Option<LogError>> {
        if !batch.out.is_empty() {
            return Ok(None);
        }
        let resume = resync::resume(self, file, seek, at, first_missing, batch.to, find)
            .map_err(|e| Some(LogError::io("read", &seek.path, e)))?;
        match resume {
            Some(Resume {
                offset,
                position: Some(p),
            }) if offset <= batch.from => Ok(Some((p, offset))),
            _ => Err(Some(LogError::Damaged(Damage {
                topic: self.topic.to_owned(),
                segment: seek.path.clone(),
                file_position: at,
                first_missing,
                resume_at: resume.map(|r| r.offset),
                reason,
            }))),
        }
    }
}

/// The records of one read as they are collected.
struct Batch {
    /// First offset asked for.
    from: u64,
    /// Offset after the newest visible record.
    to: u64,
    limits: ReadLimits,
    out: Vec<Record>,
    bytes: usize,
}

impl Batch {
    fn full(&self) -> bool {
        self.out.len() >= self.limits.max_records.max(1)
    }

    /// Take `r` unless the batch is complete (at least one record is always
    /// taken, whatever its size); false when it is.
    fn push(&mut self, r: Record) -> bool {
        let over = !self.out.is_empty() && self.bytes + r.encoded_len() > self.limits.max_bytes;
        if self.full() || over {
            return false;
        }
        self.bytes += r.encoded_len();
        self.out.push(r);
        true
    }
}

impl Shared {
    /// Read `topic` from `from` (inclusive).
    pub fn read(&self, topic: &Topic, from: Position, limits: ReadLimits) -> Result<ReadBatch> {
        topic.touch(self.now_ms());
        let head = topic.visible();
        let first = topic.store.lock().first_offset();
        let not_recoverable = |reason| {
            LogError::NotRecoverable(NotRecoverable {
                topic: topic.name.to_string(),
                requested: from,
                reason,
                epoch: topic.epoch,
                first_offset: first,
                next_offset: head,
            })
        };
        if from.epoch != topic.epoch {
            return Err(not_recoverable(NotRecoverableReason::EpochMismatch));
        }
        if from.offset > head {
            return Err(not_recoverable(NotRecoverableReason::Ahead));
        }
        if from.offset < first {
            return Err(not_recoverable(NotRecoverableReason::Removed));
        }
        let max_records = limits.max_records.max(1);
        if let Some(records) =
            topic
                .state
                .lock()
                .tail
                .range(from.offset, head, max_records, limits.max_bytes)
        {
            Counters::add(&self.counters.tail_reads, 1);
            let next_offset = from.offset + records.len() as u64;
            return Ok(ReadBatch {
                records,
                next_offset,
                head,
                from_memory: true,
            });
        }
        Counters::add(&self.counters.disk_reads, 1);
        // Damage found before is answered without another scan.
        let known = topic.damage.lock().covering(from.offset);
        if let Some(d) = known {
            return Err(self.damaged_read(topic, d));
        }
        let disk = DiskRead {
            files: &self.files,
            topic: &topic.name,
            epoch: topic.epoch,
            max_payload: self.config.max_record_bytes,
        };
        let records = match disk.read(from.offset, head, limits, |o| self.seek(topic, o)) {
            Ok(r) => r,
            Err(None) => return Err(not_recoverable(NotRecoverableReason::Removed)),
            Err(Some(LogError::Damaged(d))) => return Err(self.damaged_read(topic, d)),
            Err(Some(e)) => return Err(e),
        };
        Counters::add(&self.counters.disk_records_read, records.len() as u64);
        let next_offset = from.offset + records.len() as u64;
        Ok(ReadBatch {
            records,
            next_offset,
            head,
            from_memory: false,
        })
    }

    /// Count a read answered with `d`, and warn the first time its range is
    /// seen (a reader retrying it must not flood the log).
    fn damaged_read(&self, topic: &Topic, d: Damage) -> LogError {
        Counters::add(&self.counters.damaged_reads, 1);
        if topic.damage.lock().remember(&d) {
            tracing::warn!(topic = %topic.name, "{d}");
        }
        LogError::Damaged(d)
    }

    /// Where to start reading `offset`, if a segment holds it.
    fn seek(&self, topic: &Topic, offset: u64) -> Option<Seek> {
        topic
            .store
            .lock()
            .segment_for(offset)
            .map(|s| Seek::new(s, offset))
    }
}
