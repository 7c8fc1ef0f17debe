//! The in-memory tail of a topic: its newest records, kept as the same
//! shared `Bytes` that were appended, so reads of recent history (live
//! catch-up, client recovery after a short disconnect) never touch disk.
//!
//! Offsets in a tail are contiguous, so finding a record is arithmetic.
//! Tails are bounded per topic (records) and together (a byte budget the
//! log enforces by dropping the tails of the least recently used topics).

use std::collections::VecDeque;

use crate::record::Record;

/// The newest records of one topic, oldest first.
#[derive(Default)]
pub struct Tail {
    records: VecDeque<Record>,
    bytes: usize,
}

impl Tail {
    /// Add the next record (its offset follows the newest one, or the tail
    /// is empty), dropping the oldest beyond `capacity`. Returns the change
    /// of the tail's size in bytes.
    pub fn push(&mut self, record: Record, capacity: usize) -> isize {
        if let Some(last) = self.records.back() {
            debug_assert_eq!(
                last.offset() + 1,
                record.offset(),
                "tail offsets are contiguous"
            );
        }
        let mut delta = record.encoded_len() as isize;
        self.bytes += record.encoded_len();
        self.records.push_back(record);
        while self.records.len() > capacity {
            if let Some(old) = self.records.pop_front() {
                self.bytes -= old.encoded_len();
                delta -= old.encoded_len() as isize;
            }
        }
        delta
    }

    /// Offset of the oldest record held.
    pub fn first_offset(&self) -> Option<u64> {
        self.records.front().map(Record::offset)
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records held.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Records `from..to` (at most `max_records`, and stopping once
    /// `max_bytes` is reached but always at least one), or `None` when
    /// `from` is older than the tail.
    pub fn range(
        &self,
        from: u64,
        to: u64,
        max_records: usize,
        max_bytes: usize,
    ) -> Option<Vec<Record>> {
        let first = self.first_offset()?;
        if from < first {
            return None;
        }
        let start = (from - first) as usize;
        let end = ((to.saturating_sub(first)) as usize).min(self.records.len());
        let mut out = Vec::with_capacity(end.saturating_sub(start).min(max_records));
        let mut bytes = 0;
        for r in self.records.range(start.min(end)..end) {
            if out.len() >= max_records || (!out.is_empty() && bytes + r.encoded_len() > max_bytes)
            {
                break;
            }
            bytes += r.encoded_len();
            out.push(r.clone());
        }
        Some(out)
    }

    /// Drop every record. Returns the bytes freed.
    pub fn clear(&mut self) -> usize {
        let freed = self.bytes;
        self.records = VecDeque::new();
        self.bytes = 0;
        freed
    }

    /// Drop records at `offset` and newer (records of a batch that failed
    /// to reach storage). Returns the bytes freed.
    pub fn truncate_from(&mut self, offset: u64) -> usize {
        let mut freed = 0;
        while self.records.back().is_some_and(|r| r.offset() >= offset) {
            if let Some(r) = self.records.pop_back() {
                freed += r.encoded_len();
            }
        }
        self.bytes -= freed;
        freed
    }

    /// Drop records older than `offset`. Returns the bytes freed.
    pub fn trim_before(&mut self, offset: u64) -> usize {
        let mut freed = 0;
        while self.records.front().is_some_and(|r| r.offset() < offset) {
            if let Some(r) = self.records.pop_front() {
                freed += r.encoded_len();
            }
        }
        self.bytes -= freed;
        freed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::{Epoch, Position};
    use crate::record::RecordKind;

    fn rec(o: u64) -> Record {
        Record::from_parts(Position::new(Epoch(1), o), 0, RecordKind::Message, b"x")
    }

    #[test]
    fn keeps_the_newest_records_within_capacity() {
        let mut t = Tail::default();
        for o in 0..10 {
            t.push(rec(o), 4);
        }
        assert_eq!(t.len(), 4);
        assert_eq!(t.first_offset(), Some(6));
        assert!(t.range(5, 10, 100, usize::MAX).is_none());
        let r = t.range(7, 10, 100, usize::MAX).unwrap();
        assert_eq!(r.iter().map(Record::offset).collect::<Vec<_>>(), [7, 8, 9]);
        assert_eq!(t.range(10, 10, 100, usize::MAX).unwrap().len(), 0);
        assert_eq!(t.range(6, 10, 2, usize::MAX).unwrap().len(), 2);
        assert_eq!(t.range(6, 10, 100, 1).unwrap().len(), 1);
        let size = rec(0).encoded_len();
        assert_eq!(t.bytes(), 4 * size);
        assert_eq!(t.trim_before(8), 2 * size);
        assert_eq!(t.truncate_from(9), size);
        assert_eq!(t.range(8, 10, 100, usize::MAX).unwrap().len(), 1);
        assert_eq!(t.clear(), size);
        assert!(t.is_empty());
    }
}
