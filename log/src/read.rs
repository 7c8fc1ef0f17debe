//! Reading a topic from a position: from the memory tail when the range is
//! there, from segment files when it is older.
//!
//! Every record read from disk is validated (length, CRC, offset, epoch);
//! a bad one ends the read with [`LogError::Corrupt`] and is never returned.

use std::io;
use std::path::PathBuf;

use crate::error::{CorruptReason, LogError, NotRecoverable, NotRecoverableReason, Result};
use crate::files::FileCache;
use crate::load::misplaced;
use crate::position::{Epoch, Position};
use crate::record::Record;
use crate::segment::cursor::{CursorStop, RecordCursor};
use crate::segment::info::SegmentInfo;
use crate::shared::Shared;
use crate::stats::Counters;
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
    path: PathBuf,
    position: u64,
    offset: u64,
    header_len: u64,
    base: u64,
    data_end: u64,
    end_offset: u64,
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
            data_end: seg.corrupt_at.unwrap_or(seg.len),
            end_offset: seg.end_offset,
        }
    }
}

/// A read of consecutive records from segment files (the writer's log and
/// the read-only tools share it).
pub(crate) struct DiskRead<'a> {
    pub files: &'a FileCache,
    pub topic: &'a str,
    pub epoch: Epoch,
    pub max_payload: usize,
}

impl DiskRead<'_> {
    /// Records `from..to`, within `limits`, finding segments with `seek`.
    /// `Err(None)` means the offsets are no longer stored.
    pub fn read(
        &self,
        from: u64,
        to: u64,
        limits: ReadLimits,
        seek: impl Fn(u64) -> Option<Seek>,
    ) -> std::result::Result<Vec<Record>, Option<LogError>> {
        let mut out: Vec<Record> = Vec::new();
        let mut bytes = 0usize;
        let mut offset = from;
        let max_records = limits.max_records.max(1);
        while offset < to && out.len() < max_records {
            let Some(seek) = seek(offset) else {
                if out.is_empty() {
                    return Err(None);
                }
                break;
            };
            let file = match self.files.get(&seek.path) {
                Ok(f) => f,
                // Retention deleted it after the lookup.
                Err(e) if e.kind() == io::ErrorKind::NotFound && out.is_empty() => {
                    return Err(None);
                }
                Err(e) => return Err(Some(LogError::io("open", &seek.path, e))),
            };
            let mut at = seek.position;
            let mut expected = seek.offset;
            let mut cursor = RecordCursor::new(&*file, at, seek.data_end, self.max_payload);
            let stop = seek.end_offset.min(to);
            while expected < stop {
                let r = match cursor.next_record() {
                    Ok(r) => r,
                    Err(CursorStop::Io(e)) => {
                        return Err(Some(LogError::io("read", &seek.path, e)));
                    }
                    Err(CursorStop::End) => {
                        let reason = CorruptReason::Missing {
                            from: expected,
                            to: stop,
                        };
                        return self.corrupt(&seek, at, expected, reason, out);
                    }
                    Err(
                        CursorStop::Truncated { at, error } | CursorStop::Invalid { at, error },
                    ) => {
                        return self.corrupt(&seek, at, expected, error.into(), out);
                    }
                };
                if let Some(reason) = misplaced(&r, expected, self.epoch) {
                    if seek.position != seek.header_len && expected == seek.offset {
                        // The index entry lied: scan this segment from its start.
                        tracing::warn!(segment = %seek.path.display(), "index entry does not match its record; scanning");
                        at = seek.header_len;
                        expected = seek.base;
                        cursor = RecordCursor::new(&*file, at, seek.data_end, self.max_payload);
                        continue;
                    }
                    return self.corrupt(&seek, at, expected, reason, out);
                }
                at = cursor.position();
                expected += 1;
                if r.offset() < offset {
                    continue;
                }
                if out.len() >= max_records
                    || (!out.is_empty() && bytes + r.encoded_len() > limits.max_bytes)
                {
                    return Ok(out);
                }
                bytes += r.encoded_len();
                out.push(r);
            }
            offset = expected;
        }
        Ok(out)
    }

    /// Return what was read before a bad record, or the error if nothing was.
    fn corrupt(
        &self,
        seek: &Seek,
        at: u64,
        offset: u64,
        reason: CorruptReason,
        out: Vec<Record>,
    ) -> std::result::Result<Vec<Record>, Option<LogError>> {
        if !out.is_empty() {
            return Ok(out);
        }
        Err(Some(LogError::Corrupt {
            topic: self.topic.to_owned(),
            segment: seek.path.clone(),
            file_position: at,
            offset,
            reason,
        }))
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
        let disk = DiskRead {
            files: &self.files,
            topic: &topic.name,
            epoch: topic.epoch,
            max_payload: self.config.max_record_bytes,
        };
        let records = match disk.read(from.offset, head, limits, |o| self.seek(topic, o)) {
            Ok(r) => r,
            Err(None) => return Err(not_recoverable(NotRecoverableReason::Removed)),
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

    /// Where to start reading `offset`, if a segment holds it.
    fn seek(&self, topic: &Topic, offset: u64) -> Option<Seek> {
        topic
            .store
            .lock()
            .segment_for(offset)
            .map(|s| Seek::new(s, offset))
    }
}
