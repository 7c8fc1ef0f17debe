//! One topic of a log: the append side (offsets, memory tail, records not
//! yet written) and the disk side (its segments).
//!
//! Two locks, taken in this order when both are needed: `state` is held
//! for the few hundred nanoseconds of an append; `store` is held by the
//! writer while it writes the topic's records and by readers while they
//! look up a segment. Neither is held across an fsync.
//!
//! When storage fails under a batch, the topic is rolled back to where it
//! stood before the batch (`Mark`): the segment files are cut back (or the
//! cut is retried before the next write), the batch's records and every
//! record appended after them are failed, and the next append reuses the
//! first failed offset, which no reader ever saw.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::config::{LogConfig, Retention};
use crate::error::{LogError, Result};
use crate::files::FileCache;
use crate::health::StorageFault;
use crate::position::Epoch;
use crate::record::Record;
use crate::segment::header::SegmentHeader;
use crate::segment::index::{self, ENTRY_LEN, INDEX_HEADER_LEN};
use crate::segment::info::SegmentInfo;
use crate::segment::{index_path, segment_path};
use crate::stats::Counters;
use crate::storage::{self, OpenMode, Storage, write_all_at};
use crate::tail::Tail;

/// A topic and everything the log holds for it.
pub struct Topic {
    /// The topic name.
    pub name: Arc<str>,
    /// The topic's directory.
    pub dir: PathBuf,
    /// The history this object serves. A new history is a new `Topic`.
    pub epoch: Epoch,
    /// Append side.
    pub state: Mutex<TopicState>,
    /// Disk side.
    pub store: Mutex<TopicStore>,
    /// Offset after the newest record readers may see (written, and
    /// fsynced when the policy is `always`).
    pub visible: AtomicU64,
    /// Publishes `visible` to async waiters.
    pub watch: watch::Sender<u64>,
    /// Offset after the newest record the append listener has been told
    /// of; trails `visible` by one listener call, so `flush` can promise
    /// that the listener saw everything appended before it.
    pub told: AtomicU64,
    /// Last append or read, in milliseconds of the log's clock (LRU order
    /// of the memory tails).
    pub last_access_ms: AtomicU64,
}

/// The append side of a topic.
pub struct TopicState {
    /// Offset the next append gets.
    pub next_offset: u64,
    /// The newest records, in memory.
    pub tail: Tail,
    /// Appended records the writer has not written yet.
    pub pending: Vec<Record>,
    /// True while the topic is in the writer's queue.
    pub queued: bool,
    /// The fate of `pending`, shared by their `Appended` handles: the
    /// writer takes it with them and fails it if storage fails them.
    pub outcome: Arc<BatchOutcome>,
    /// The topic was deleted; appends must look it up again.
    pub deleted: bool,
}

/// The disk side of a topic.
pub struct TopicStore {
    /// Segments, oldest first; the last is the active one. Empty until the
    /// first record is written.
    pub segments: Vec<SegmentInfo>,
    /// Offset of the first record of this history when nothing is on disk.
    pub start_offset: u64,
    /// Retention for this topic, if it differs from the log's default.
    pub retention: Option<Retention>,
    /// The topic was deleted; the writer drops its records.
    pub deleted: bool,
    /// File changes a rollback could not make yet (storage was failing);
    /// done before anything else is written to the topic.
    pub repairs: Vec<Repair>,
}

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

impl TopicStore {
    /// Oldest offset still stored.
    pub fn first_offset(&self) -> u64 {
        self.segments.first().map_or(self.start_offset, |s| s.base)
    }

    /// Total bytes of the topic's segments.
    pub fn bytes(&self) -> u64 {
        self.segments.iter().map(SegmentInfo::bytes).sum()
    }

    /// The segment holding `offset`, if any.
    pub fn segment_for(&self, offset: u64) -> Option<&SegmentInfo> {
        let i = self.segments.partition_point(|s| s.base <= offset);
        i.checked_sub(1)
            .map(|i| &self.segments[i])
            .filter(|s| offset < s.end_offset)
    }
}

impl Topic {
    /// A topic object for a history of `epoch`, continuing at `next_offset`
    /// over the given segments.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: Arc<str>,
        dir: PathBuf,
        epoch: Epoch,
        segments: Vec<SegmentInfo>,
        start_offset: u64,
        retention: Option<Retention>,
        now_ms: u64,
    ) -> Self {
        let next = segments.last().map_or(start_offset, |s| s.end_offset);
        Self {
            name,
            dir,
            epoch,
            state: Mutex::new(TopicState {
                next_offset: next,
                tail: Tail::default(),
                pending: Vec::new(),
                queued: false,
                outcome: Arc::default(),
                deleted: false,
            }),
            store: Mutex::new(TopicStore {
                segments,
                start_offset,
                retention,
                deleted: false,
                repairs: Vec::new(),
            }),
            visible: AtomicU64::new(next),
            watch: watch::Sender::new(next),
            told: AtomicU64::new(next),
            last_access_ms: AtomicU64::new(now_ms),
        }
    }

    /// Offset after the newest visible record.
    pub fn visible(&self) -> u64 {
        self.visible.load(Ordering::Acquire)
    }

    /// Offset after the newest record the append listener has seen.
    pub fn told(&self) -> u64 {
        self.told.load(Ordering::Acquire)
    }

    /// Record an access for the tail's LRU order.
    pub fn touch(&self, now_ms: u64) {
        self.last_access_ms.store(now_ms, Ordering::Relaxed);
    }

    /// Make records up to `next` visible and wake whoever waits for them.
    pub fn publish(&self, next: u64) {
        self.visible.store(next, Ordering::Release);
        self.watch.send_replace(next);
    }
}

/// Everything the writer needs to put records of one topic on disk.
pub struct WriteCtx<'a> {
    /// The log's configuration.
    pub config: &'a LogConfig,
    /// Open files and the files waiting for an fsync.
    pub files: &'a FileCache,
    /// Counters.
    pub counters: &'a Counters,
    /// Now, in microseconds.
    pub now_us: u64,
    /// Reused buffer for one write.
    pub buf: &'a mut Vec<u8>,
}

impl Topic {
    /// Write `records` (consecutive, after everything already written) to
    /// the topic's segments, creating and rolling segments as needed.
    /// Durability is the caller's business: written files are marked dirty.
    pub fn write_records(&self, ctx: &mut WriteCtx<'_>, records: &[Record]) -> Result<()> {
        let mut store = self.store.lock();
        if store.deleted || records.is_empty() {
            return Ok(());
        }
        self.repair(ctx.files, &mut store)?;
        let needs_segment = store.segments.last().is_none_or(|s| s.corrupt_at.is_some());
        if needs_segment {
            self.create_segment(ctx, &mut store, records[0].offset())?;
        }
        let max = ctx.config.segment_max_bytes;
        let max_age_us = ctx.config.segment_max_age.as_micros() as u64;
        let mut i = 0;
        while i < records.len() {
            let seg = store.segments.last().expect("a segment exists");
            let too_big = seg.len + records[i].encoded_len() as u64 > max;
            let too_old =
                seg.first_ts_us != 0 && ctx.now_us.saturating_sub(seg.first_ts_us) > max_age_us;
            if seg.records() > 0 && (too_big || too_old) {
                self.seal_active(ctx, &mut store)?;
                self.create_segment(ctx, &mut store, records[i].offset())?;
                continue;
            }
            let seg = store.segments.last_mut().expect("a segment exists");
            ctx.buf.clear();
            let start = seg.len;
            while let Some(r) = records.get(i) {
                let pos = start + ctx.buf.len() as u64;
                if !ctx.buf.is_empty() && pos + r.encoded_len() as u64 > max {
                    break;
                }
                if seg.records() == 0 && ctx.buf.is_empty() {
                    seg.first_ts_us = r.timestamp_us();
                }
                seg.maybe_index(r.offset(), pos, ctx.config.index_interval_bytes);
                ctx.buf.extend_from_slice(r.encoded());
                seg.end_offset = r.offset() + 1;
                seg.last_ts_us = r.timestamp_us();
                i += 1;
            }
            let file = ctx
                .files
                .get(&seg.path)
                .map_err(|e| LogError::io("open", &seg.path, e))?;
            // Dirty before the write: a write that fails half-way still
            // leaves bytes the rollback's cut must reach the disk with.
            ctx.files.mark_dirty(&seg.path);
            write_all_at(&*file, ctx.buf, start)
                .map_err(|e| LogError::io("write", &seg.path, e))?;
            seg.len = start + ctx.buf.len() as u64;
            Counters::add(&ctx.counters.writes, 1);
            Counters::add(&ctx.counters.bytes_written, ctx.buf.len() as u64);
            persist_index(ctx.files.storage(), &self.dir, seg)
                .map_err(|e| LogError::io("write index of", index_path(&self.dir, seg.base), e))?;
        }
        Ok(())
    }

    /// Stop appending to the active segment (its remaining index entries
    /// are written; its data is synced with everything else that is dirty).
    fn seal_active(&self, ctx: &WriteCtx<'_>, store: &mut TopicStore) -> Result<()> {
        if let Some(seg) = store.segments.last_mut() {
            persist_index(ctx.files.storage(), &self.dir, seg)
                .map_err(|e| LogError::io("write index of", index_path(&self.dir, seg.base), e))?;
        }
        Ok(())
    }

    /// Create a new active segment starting at `base` (and the topic's
    /// directory for its first segment).
    fn create_segment(
        &self,
        ctx: &mut WriteCtx<'_>,
        store: &mut TopicStore,
        base: u64,
    ) -> Result<()> {
        let storage = ctx.files.storage();
        if store.segments.is_empty() {
            storage
                .create_dir_all(&self.dir)
                .map_err(|e| LogError::io("create", &self.dir, e))?;
            // New directory entries up to the data directory must survive a
            // power failure too.
            let mut d = self.dir.parent();
            for _ in 0..2 {
                if let Some(p) = d {
                    ctx.files.mark_dir_dirty(p);
                    d = p.parent();
                }
            }
        }
        let header = SegmentHeader {
            topic: self.name.to_string(),
            epoch: self.epoch,
            base_offset: base,
            created_us: ctx.now_us,
        }
        .encode();
        let path = segment_path(&self.dir, base);
        let file = match ctx.files.create(&path) {
            Ok(f) => f,
            // A leftover without records (a crash while creating it).
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                ctx.files.forget(&path);
                storage
                    .remove_file(&path)
                    .map_err(|e| LogError::io("remove", &path, e))?;
                ctx.files
                    .create(&path)
                    .map_err(|e| LogError::io("create", &path, e))?
            }
            Err(e) => return Err(LogError::io("create", &path, e)),
        };
        // In the list before the header is written, so a failed write is
        // rolled back (the file removed) like any other.
        store
            .segments
            .push(SegmentInfo::new(base, path.clone(), header.len() as u64));
        ctx.files.mark_dirty(&path);
        ctx.files.mark_dir_dirty(&self.dir);
        write_all_at(&*file, &header, 0).map_err(|e| LogError::io("write", &path, e))?;
        Counters::add(&ctx.counters.segments_created, 1);
        Ok(())
    }

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
        let mut store = self.store.lock();
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

/// Write the index entries of `seg` that are not in its index file yet.
/// The index is a hint that is rebuilt when damaged, so it is never synced.
pub fn persist_index(storage: &dyn Storage, dir: &Path, seg: &mut SegmentInfo) -> io::Result<()> {
    if seg.index_persisted == seg.index.len() {
        return Ok(());
    }
    let path = index_path(dir, seg.base);
    let file = storage.open(&path, OpenMode::CreateOrOpen)?;
    let from = seg.index_persisted;
    let mut buf = Vec::with_capacity(INDEX_HEADER_LEN + (seg.index.len() - from) * ENTRY_LEN);
    let at = if from == 0 {
        buf.extend_from_slice(&index::encode_header(seg.base));
        0
    } else {
        (INDEX_HEADER_LEN + from * ENTRY_LEN) as u64
    };
    for e in &seg.index[from..] {
        buf.extend_from_slice(&e.encode());
    }
    write_all_at(&*file, &buf, at)?;
    if from == 0 {
        // Replaces a damaged file completely.
        file.set_len(buf.len() as u64)?;
    }
    seg.index_persisted = seg.index.len();
    Ok(())
}
