//! Counters of a log, read by health snapshots and benchmarks.

use std::sync::atomic::{AtomicU64, Ordering};

/// Running totals since the log was opened.
#[derive(Default)]
pub struct Counters {
    pub(crate) appends: AtomicU64,
    pub(crate) append_bytes: AtomicU64,
    pub(crate) writes: AtomicU64,
    pub(crate) bytes_written: AtomicU64,
    pub(crate) fsyncs: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) tail_reads: AtomicU64,
    pub(crate) disk_reads: AtomicU64,
    pub(crate) disk_records_read: AtomicU64,
    pub(crate) segments_created: AtomicU64,
    pub(crate) segments_deleted: AtomicU64,
    pub(crate) tails_evicted: AtomicU64,
    pub(crate) write_failures: AtomicU64,
    pub(crate) damaged_reads: AtomicU64,
}

/// A snapshot of a log's counters and gauges.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LogStats {
    /// Records appended.
    pub appends: u64,
    /// Encoded bytes appended.
    pub append_bytes: u64,
    /// Write system calls to segment files.
    pub writes: u64,
    /// Bytes written to segment files.
    pub bytes_written: u64,
    /// fsync calls (files and directories).
    pub fsyncs: u64,
    /// Writer batches (each writes every topic that had appends).
    pub batches: u64,
    /// Reads answered from the memory tail.
    pub tail_reads: u64,
    /// Reads that went to segment files.
    pub disk_reads: u64,
    /// Records read from segment files.
    pub disk_records_read: u64,
    /// Segments created.
    pub segments_created: u64,
    /// Segments deleted by retention.
    pub segments_deleted: u64,
    /// Topic tails dropped by the memory budget or the idle TTL.
    pub tails_evicted: u64,
    /// Storage operations of the writer that failed (writes, fsyncs, file
    /// creations, truncations): each failed the appends of its batch.
    pub write_failures: u64,
    /// Reads answered with `LogError::Damaged`: they asked for stored
    /// offsets that are unreadable (a corrupt record, a segment cut short,
    /// missing or quarantined). Non-zero means the disk lost data.
    pub damaged_reads: u64,
    /// Topics in the log.
    pub topics: u64,
    /// Bytes held by all memory tails.
    pub tail_bytes: u64,
    /// Bytes appended but not yet written.
    pub pending_bytes: u64,
    /// Segment files open right now.
    pub open_files: u64,
}

impl LogStats {
    /// Share of reads answered from memory (1.0 when there were none).
    pub fn tail_hit_ratio(&self) -> f64 {
        let total = self.tail_reads + self.disk_reads;
        if total == 0 {
            1.0
        } else {
            self.tail_reads as f64 / total as f64
        }
    }
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
