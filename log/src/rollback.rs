//! Rolling a topic back when storage fails under one of its batches.
//!
//! Before the writer writes a topic's batch it takes a [`Mark`] of the
//! active segment and the batch's [`BatchOutcome`] (shared by the batch's
//! `Appended` handles). If storage fails, the topic goes back to the mark:
//! segments the batch created are forgotten and removed, the active one
//! and its index are cut back to their marked lengths (a file change that
//! fails now is owed, as a [`Repair`], and done before anything else is
//! written to the topic), the outcome is failed, every record appended
//! behind the batch fails too, the memory tail drops them, and the next
//! append gets the first offset that is not visible. No reader saw the
//! failed offsets, so reusing them keeps offsets dense without a gap or a
//! duplicate anyone could notice.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use crate::error::{LogError, Result};
use crate::files::FileCache;
use crate::health::StorageFault;
use crate::record::Record;
use crate::segment::index::{ENTRY_LEN, INDEX_HEADER_LEN};
use crate::segment::index_path;
use crate::storage;
use crate::topic::{Topic, TopicStore};

/// Whether a batch of a topic's appends failed. Success needs no flag: a
/// record whose batch did not fail succeeded once its offset is visible.
#[derive(Debug, Default)]
pub struct BatchOutcome {
    failed: OnceLock<Arc<StorageFault>>,
}

impl BatchOutcome {
    /// The fault that failed the batch, if it failed.
    pub(crate) fn failure(&self) -> Option<&Arc<StorageFault>> {
        self.failed.get()
    }

    fn fail(&self, fault: &Arc<StorageFault>) {
        let _ = self.failed.set(fault.clone());
    }
}

/// A file change owed to a rollback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Repair {
    /// Cut a segment file back to its last good length.
    Truncate {
        /// The segment file.
        path: PathBuf,
        /// Its good length.
        len: u64,
    },
    /// Remove a file created by a failed batch.
    Remove(PathBuf),
}

/// Where a topic's segments stood before a batch was written: what the
/// batch is rolled back to when storage fails under it.
#[derive(Clone, Debug)]
pub struct Mark {
    active: Option<ActiveMark>,
}

/// The active segment's figures in a [`Mark`].
#[derive(Clone, Debug)]
struct ActiveMark {
    base: u64,
    len: u64,
    end_offset: u64,
    first_ts_us: u64,
    last_ts_us: u64,
    index_len: usize,
    index_persisted: usize,
}

/// Records dropped from a topic's append side by a rollback.
#[derive(Debug, Default)]
pub struct Dropped {
    /// Records that were pending (not taken by the writer).
    pub pending_records: usize,
    /// Their encoded bytes.
    pub pending_bytes: usize,
}

impl Topic {
    /// Where the topic's segments stand now (before a batch is written).
    pub fn mark(&self) -> Mark {
        let store = self.store.lock();
        Mark {
            active: store.segments.last().map(|s| ActiveMark {
                base: s.base,
                len: s.len,
                end_offset: s.end_offset,
                first_ts_us: s.first_ts_us,
                last_ts_us: s.last_ts_us,
                index_len: s.index.len(),
                index_persisted: s.index_persisted,
            }),
        }
    }

    /// Undo on disk what a failed batch wrote since `mark`: forget the
    /// segments it created (and remove their files), cut the active one
    /// back to its length at `mark`. File operations that fail now are
    /// kept and retried before the next write (see `repair`); until then
    /// the bytes past the good length are never read (reads stop at the
    /// in-memory length) and never written after.
    pub fn roll_back_store(&self, files: &FileCache, mark: &Mark) {
        let mut store = self.store_mut();
        if store.deleted {
            return;
        }
        let store = &mut *store;
        // Retention may delete old segments meanwhile: find the marked one
        // by its base offset, not its place.
        let keep = match &mark.active {
            Some(a) => store.segments.partition_point(|s| s.base <= a.base),
            None => 0,
        };
        for seg in store.segments.drain(keep..) {
            files.forget(&seg.path);
            files.mark_dir_dirty(&self.dir);
            owe(&mut store.repairs, Repair::Remove(seg.path.clone()));
            owe(
                &mut store.repairs,
                Repair::Remove(index_path(&self.dir, seg.base)),
            );
        }
        if let (Some(a), true) = (&mark.active, store.segments.is_empty()) {
            // Retention took the marked segment too: nothing is stored, and
            // the history goes on at the visible head.
            store.start_offset = a.end_offset;
        }
        if let (Some(a), Some(seg)) = (&mark.active, store.segments.last_mut()) {
            seg.len = a.len;
            seg.end_offset = a.end_offset;
            seg.first_ts_us = a.first_ts_us;
            seg.last_ts_us = a.last_ts_us;
            seg.index.truncate(a.index_len);
            // The batch may have written index entries (whole or in part)
            // past the good data: cut the index file back to the entries
            // that were persisted at the mark, or remove it if none were.
            let keep = a.index_persisted.min(a.index_len);
            seg.index_persisted = keep;
            let path = index_path(&self.dir, seg.base);
            let fix = if keep == 0 {
                Repair::Remove(path)
            } else {
                let len = (INDEX_HEADER_LEN + keep * ENTRY_LEN) as u64;
                Repair::Truncate { path, len }
            };
            owe(&mut store.repairs, fix);
            let cut = Repair::Truncate {
                path: seg.path.clone(),
                len: a.len,
            };
            owe(&mut store.repairs, cut);
        }
        let _ = self.repair(files, store);
    }

    /// Do the file changes rollbacks still owe. Each one done is dropped;
    /// the others stay owed, and the first failure is returned.
    pub fn repair(&self, files: &FileCache, store: &mut TopicStore) -> Result<()> {
        if store.deleted {
            // Its files are gone, and nothing is owed for them.
            store.repairs.clear();
            return Ok(());
        }
        let mut first_error = None;
        store.repairs.retain(|r| match do_repair(files, r) {
            Ok(()) => false,
            Err(e) => {
                first_error.get_or_insert(e);
                true
            }
        });
        first_error.map_or(Ok(()), Err)
    }

    /// True when rollbacks still owe file changes.
    pub fn needs_repair(&self) -> bool {
        !self.store.lock().repairs.is_empty()
    }

    /// Fail the append side back to the visible head: `in_flight` (the
    /// outcome of the batch the writer took, if any) and every record
    /// still pending fail with `fault`, the memory tail drops them, and
    /// the next append gets the first offset that is not visible. Returns
    /// what was dropped from the pending list (the caller fixes the log's
    /// pending totals).
    pub fn roll_back_appends(
        &self,
        in_flight: Option<&BatchOutcome>,
        fault: &Arc<StorageFault>,
    ) -> (Dropped, usize) {
        let mut st = self.state.lock();
        if let Some(o) = in_flight {
            o.fail(fault);
        }
        let outcome = std::mem::take(&mut st.outcome);
        outcome.fail(fault);
        let pending = std::mem::take(&mut st.pending);
        let dropped = Dropped {
            pending_records: pending.len(),
            pending_bytes: pending.iter().map(Record::encoded_len).sum(),
        };
        let visible = self.visible();
        st.next_offset = visible;
        let freed = st.tail.truncate_from(visible);
        drop(st);
        // Async waiters re-check their outcome.
        self.watch.send_modify(|_| {});
        (dropped, freed)
    }
}

/// Make one owed file change.
fn do_repair(files: &FileCache, repair: &Repair) -> Result<()> {
    match repair {
        Repair::Truncate { path, len } => {
            let file = match files.get(path) {
                Ok(f) => f,
                // Removed meanwhile (retention): nothing left to cut.
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(LogError::io("open", path, e)),
            };
            file.set_len(*len)
                .map_err(|e| LogError::io("truncate", path, e))?;
            // The cut must reach the disk with the next fsync.
            files.mark_dirty(path);
        }
        Repair::Remove(path) => {
            storage::remove_if_present(files.storage(), path)
                .map_err(|e| LogError::io("remove", path, e))?;
        }
    }
    Ok(())
}

/// Owe `repair`, replacing what was owed for the same file.
fn owe(repairs: &mut Vec<Repair>, repair: Repair) {
    let path = match &repair {
        Repair::Truncate { path, .. } | Repair::Remove(path) => path.clone(),
    };
    repairs.retain(
        |r| !matches!(r, Repair::Truncate { path: p, .. } | Repair::Remove(p) if *p == path),
    );
    repairs.push(repair);
}
