//! What the log knows about one segment while it runs.

use std::path::PathBuf;

use super::header::HeaderError;
use super::index::{self, IndexEntry};

/// The in-memory description of a segment file.
#[derive(Clone, Debug)]
pub struct SegmentInfo {
    /// Offset of the segment's first record.
    pub base: u64,
    /// The segment file.
    pub path: PathBuf,
    /// Bytes of the file header (records start here).
    pub header_len: u64,
    /// Bytes of valid data: the end of the last valid record.
    pub len: u64,
    /// Offset after the segment's last record.
    pub end_offset: u64,
    /// Append time of the first record (0 when empty).
    pub first_ts_us: u64,
    /// Append time of the last record (0 when empty).
    pub last_ts_us: u64,
    /// Sparse index entries, in order.
    pub index: Vec<IndexEntry>,
    /// How many of `index` are already in the index file.
    pub index_persisted: usize,
    /// Byte position of a corrupt record; reads stop there and no append
    /// goes to this segment any more.
    pub corrupt_at: Option<u64>,
    /// Bytes of the file when it was loaded. Past a corrupt record, reads
    /// look for intact records up to here (`len` stops at the bad one).
    pub file_len: u64,
    /// The file's header is damaged: the segment only stands for the
    /// offsets it covered, which read as damaged (read-only scans; the
    /// writer quarantines such a segment at open).
    pub bad_header: Option<HeaderError>,
}

impl SegmentInfo {
    /// A new, empty segment.
    pub fn new(base: u64, path: PathBuf, header_len: u64) -> Self {
        Self {
            base,
            path,
            header_len,
            len: header_len,
            end_offset: base,
            first_ts_us: 0,
            last_ts_us: 0,
            index: Vec::new(),
            index_persisted: 0,
            corrupt_at: None,
            file_len: header_len,
            bad_header: None,
        }
    }

    /// A segment whose header is damaged, standing for offsets
    /// `base..end_offset` (nothing in it is read).
    pub fn bad_header(base: u64, path: PathBuf, end_offset: u64, error: HeaderError) -> Self {
        Self {
            len: 0,
            end_offset,
            corrupt_at: Some(0),
            file_len: 0,
            bad_header: Some(error),
            ..Self::new(base, path, 0)
        }
    }

    /// Where intact records may be looked for: past a corrupt record, the
    /// whole file as loaded; otherwise the valid data.
    pub fn scan_end(&self) -> u64 {
        match self.corrupt_at {
            Some(_) => self.file_len.max(self.len),
            None => self.len,
        }
    }

    /// Records in the segment.
    pub fn records(&self) -> u64 {
        self.end_offset - self.base
    }

    /// Bytes of the segment file (header included).
    pub fn bytes(&self) -> u64 {
        self.len
    }

    /// The byte position to start reading at to find `offset`, and the
    /// offset of the record there.
    pub fn seek(&self, offset: u64) -> (u64, u64) {
        let rel = (offset.saturating_sub(self.base)).min(u32::MAX as u64) as u32;
        match index::floor(&self.index, rel) {
            Some(e) => (u64::from(e.position), self.base + u64::from(e.rel_offset)),
            None => (self.header_len, self.base),
        }
    }

    /// Position of the last index entry (or the header end), the start of
    /// the stretch an index entry is due after.
    pub fn last_indexed_position(&self) -> u64 {
        self.index
            .last()
            .map_or(self.header_len, |e| u64::from(e.position))
    }

    /// Record an index entry for the record of `offset` at `position` if
    /// `interval` bytes passed since the last one.
    pub fn maybe_index(&mut self, offset: u64, position: u64, interval: u64) {
        if position >= self.last_indexed_position() + interval {
            self.index.push(IndexEntry {
                rel_offset: (offset - self.base) as u32,
                position: position as u32,
            });
        }
    }
}
