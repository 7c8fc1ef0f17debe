//! One topic of a log: the append side (offsets, memory tail, records not
//! yet written) and the disk side (its segments).
//!
//! Two locks, taken in this order when both are needed: `state` is held
//! for the few hundred nanoseconds of an append; `store` is held by the
//! writer while it writes the topic's records and by readers while they
//! look up a segment. Neither is held across an fsync.
//!
//! When storage fails under a batch, `rollback` puts the topic back where
//! it stood before the batch.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::watch;

use crate::config::{LogConfig, Retention};
use crate::damage::KnownDamage;
use crate::error::{LogError, Result};
use crate::files::FileCache;
use crate::position::Epoch;
use crate::record::Record;
use crate::rollback::{BatchOutcome, Repair};
use crate::segment::header::SegmentHeader;
use crate::segment::index::{self, ENTRY_LEN, INDEX_HEADER_LEN};
use crate::segment::info::SegmentInfo;
use crate::segment::{index_path, segment_path};
use crate::stats::Counters;
use crate::storage::{OpenMode, Storage, write_all_at};
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
    /// Damaged ranges reads found, so a retry is answered without a rescan
    /// and each range is reported once.
    pub(crate) damage: Mutex<KnownDamage>,
    /// The oldest offset stored, kept beside `store` so that asking where
    /// a topic stands never waits for the writer, which holds `store`
    /// while it writes. Follows every change made through
    /// [`Topic::store_mut`].
    first: AtomicU64,
}

/// The disk side of a topic, locked for a change; when dropped, the
/// topic's lock-free first offset follows what the change left.
pub(crate) struct StoreGuard<'a> {
    topic: &'a Topic,
    guard: parking_lot::MutexGuard<'a, TopicStore>,
}

impl std::ops::Deref for StoreGuard<'_> {
    type Target = TopicStore;
    fn deref(&self) -> &TopicStore {
        &self.guard
    }
}

impl std::ops::DerefMut for StoreGuard<'_> {
    fn deref_mut(&mut self) -> &mut TopicStore {
        &mut self.guard
    }
}

impl Drop for StoreGuard<'_> {
    fn drop(&mut self) {
        self.topic
            .first
            .store(self.guard.first_offset(), Ordering::Release);
    }
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
        let first = segments.first().map_or(start_offset, |s| s.base);
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
            damage: Mutex::default(),
            first: AtomicU64::new(first),
        }
    }

    /// The disk side, locked for a change (see [`StoreGuard`]).
    pub(crate) fn store_mut(&self) -> StoreGuard<'_> {
        StoreGuard {
            topic: self,
            guard: self.store.lock(),
        }
    }

    /// Oldest offset stored, without waiting for the writer.
    pub fn first_offset(&self) -> u64 {
        self.first.load(Ordering::Acquire)
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
        let mut store = self.store_mut();
        if store.deleted || records.is_empty() {
            return Ok(());
        }
        self.repair(ctx.files, &mut store)?;
        // A damaged segment is never appended to, and a segment only holds
        // consecutive offsets (after a quarantine the head may lie beyond
        // the last segment's end).
        let needs_segment = store
            .segments
            .last()
            .is_none_or(|s| s.corrupt_at.is_some() || s.end_offset != records[0].offset());
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
