//! The public handle of an open log.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;

use bytes::BytesMut;
use parking_lot::Mutex;

use crate::clock::{Clock, SystemClock};
use crate::config::{LogConfig, Retention};
use crate::error::{LogError, Result};
use crate::files::FileCache;
use crate::health::Health;
use crate::layout::Layout;
use crate::meta::{MetaStore, SledMeta, TopicMeta};
use crate::open::{self, DirLock, OpenReport};
use crate::position::{Epoch, Position};
use crate::read::{ReadBatch, ReadLimits};
use crate::record::{Record, RecordKind};
use crate::rollback::BatchOutcome;
use crate::shared::{AppendListener, Queue, Shared};
use crate::stats::{Counters, LogStats};
use crate::storage::{FsStorage, Storage};
use crate::topic::Topic;
use crate::writer;

mod lifecycle;

/// A set of per-topic logs in one data directory, open for appending.
///
/// One process at a time may hold a data directory open as a `Log` (a lock
/// file enforces it); read-only tools use [`crate::DirReader`] instead and
/// work beside a running writer.
pub struct Log {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    report: OpenReport,
    /// Released at close, so the directory can be opened again at once.
    lock: Mutex<Option<DirLock>>,
}

/// Options for opening a log beyond its [`LogConfig`].
pub struct LogBuilder {
    dir: std::path::PathBuf,
    config: LogConfig,
    meta: Option<Box<dyn MetaStore>>,
    clock: Arc<dyn Clock>,
    listener: Option<Arc<dyn AppendListener>>,
    storage: Arc<dyn Storage>,
}

impl LogBuilder {
    /// Use `config` (default: [`LogConfig::default`]).
    pub fn config(mut self, config: LogConfig) -> Self {
        self.config = config;
        self
    }

    /// Keep metadata in `meta` instead of sled in `<dir>/meta`.
    pub fn meta(mut self, meta: impl MetaStore + 'static) -> Self {
        self.meta = Some(Box::new(meta));
        self
    }

    /// Take time from `clock` (tests move time instead of sleeping).
    pub fn clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Tell `listener` about records as soon as they become visible.
    pub fn listener(mut self, listener: Arc<dyn AppendListener>) -> Self {
        self.listener = Some(listener);
        self
    }

    /// Do the writer's file operations through `storage` (default: real
    /// files, [`FsStorage`]); tests pass a [`crate::FaultyStorage`].
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Open the log: lock the directory, load and repair every topic, start
    /// the writer thread.
    pub fn open(self) -> Result<Log> {
        self.config.validate().map_err(LogError::Config)?;
        let layout = Layout::new(self.dir);
        let storage = self.storage;
        storage
            .create_dir_all(layout.root())
            .map_err(|e| LogError::io("create", layout.root(), e))?;
        let lock = open::lock_dir(&layout)?;
        let (unclean, os_restarted) =
            open::mark_running(&*storage, &layout, &self.config.boot_id_path)?;
        let meta = match self.meta {
            Some(m) => m,
            None => Box::new(SledMeta::open(&layout.meta_dir()).map_err(LogError::Meta)?),
        };
        let health = Health::new(self.config.fault_retry_min, self.config.fault_retry_max);
        let shared = Arc::new(Shared {
            files: FileCache::new(
                storage,
                self.config.max_open_files,
                true,
                self.config.durability != crate::config::Durability::Never,
            ),
            layout,
            config: self.config,
            meta,
            clock: self.clock,
            topics: Default::default(),
            queue: Mutex::new(Queue::default()),
            queue_cv: Default::default(),
            progress: Mutex::new(()),
            progress_cv: Default::default(),
            pending_bytes: Default::default(),
            pending_records: Default::default(),
            tail_bytes: Default::default(),
            counters: Counters::default(),
            listener: self.listener,
            health,
            needs_repair: Mutex::new(Vec::new()),
            topic_lifecycle: Mutex::new(()),
            closed: Default::default(),
        });
        let report = open::load_topics(&shared, unclean, os_restarted)?;
        let w = shared.clone();
        let handle = std::thread::Builder::new()
            .name("wse-log-writer".into())
            .spawn(move || writer::run(w))
            .map_err(|e| LogError::io("spawn writer thread for", shared.layout.root(), e))?;
        Ok(Log {
            shared,
            writer: Mutex::new(Some(handle)),
            report,
            lock: Mutex::new(Some(lock)),
        })
    }
}

/// A record that was appended: its position, the record itself, and a way
/// to wait until readers (and, under `always`, the disk) have it.
#[derive(Clone)]
pub struct Appended {
    /// Where the record went.
    pub position: Position,
    /// The record, shared with the memory tail.
    pub record: Record,
    topic: Arc<Topic>,
    /// Failed if storage fails the record's batch.
    outcome: Arc<BatchOutcome>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Appended {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Appended")
            .field("topic", &self.topic.name)
            .field("position", &self.position)
            .finish()
    }
}

impl Appended {
    /// True once readers can see the record (false for good if storage
    /// failed it).
    pub fn is_visible(&self) -> bool {
        self.outcome.failure().is_none() && self.topic.visible() > self.position.offset
    }

    /// Block until the record is visible: written to the OS, and under the
    /// `always` policy fsynced. [`LogError::Unavailable`] when storage
    /// failed under its batch: then it never becomes visible.
    pub fn wait(&self) -> Result<()> {
        loop {
            if let Some(r) = self.settled() {
                return r;
            }
            let mut g = self.shared.progress.lock();
            if let Some(r) = self.settled() {
                return r;
            }
            self.shared.progress_cv.wait(&mut g);
        }
    }

    /// Wait (async) until the record is visible (see [`Appended::wait`]).
    pub async fn visible(&self) -> Result<()> {
        let mut rx = self.topic.watch.subscribe();
        loop {
            rx.borrow_and_update();
            if let Some(r) = self.settled() {
                return r;
            }
            if rx.changed().await.is_err() {
                return Err(LogError::Closed);
            }
        }
    }

    /// The record's fate without waiting: `None` while it is neither
    /// visible nor failed, `Ok` once visible, the error once storage failed
    /// it (or its topic was deleted). For holders that look again later
    /// rather than wait (the server's publish-id window).
    pub fn settled(&self) -> Option<Result<()>> {
        // The visible head first: a failed record's offset is reused, and
        // its failure is recorded before the reuse can become visible.
        let visible = self.topic.visible() > self.position.offset;
        if let Some(f) = self.outcome.failure() {
            return Some(Err(f.error()));
        }
        if visible {
            return Some(Ok(()));
        }
        if self.topic.state.lock().deleted {
            return Some(Err(LogError::UnknownTopic(self.topic.name.to_string())));
        }
        None
    }
}

/// Where a topic stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TopicPosition {
    /// The current history.
    pub epoch: Epoch,
    /// Oldest offset still stored.
    pub first_offset: u64,
    /// Offset after the newest visible record.
    pub next_offset: u64,
}

impl TopicPosition {
    /// The newest offset, if the topic has a record.
    pub fn last_offset(&self) -> Option<u64> {
        self.next_offset.checked_sub(1)
    }
}

/// A topic with its figures, as `topics()` lists them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TopicInfo {
    /// The topic name.
    pub name: String,
    /// The current history.
    pub epoch: Epoch,
    /// Oldest offset still stored.
    pub first_offset: u64,
    /// Offset after the newest visible record.
    pub next_offset: u64,
    /// Segment files.
    pub segments: usize,
    /// Bytes of segment files.
    pub bytes: u64,
    /// Records held by the memory tail.
    pub tail_records: usize,
    /// Retention in force for the topic.
    pub retention: Retention,
}

/// Waits for new records of one topic (async).
pub struct TopicWatch {
    rx: tokio::sync::watch::Receiver<u64>,
}

impl TopicWatch {
    /// Offset after the newest visible record now.
    pub fn head(&self) -> u64 {
        *self.rx.borrow()
    }

    /// Wait until the head moves beyond `offset` (a record at `offset` or
    /// later is visible); returns the new head.
    pub async fn wait_beyond(&mut self, offset: u64) -> Result<u64> {
        loop {
            let head = *self.rx.borrow_and_update();
            if head > offset {
                return Ok(head);
            }
            if self.rx.changed().await.is_err() {
                return Err(LogError::Closed);
            }
        }
    }
}

impl Log {
    /// Open the log in `dir` with `config` and sled metadata.
    pub fn open(dir: impl AsRef<Path>, config: LogConfig) -> Result<Log> {
        Self::builder(dir).config(config).open()
    }

    /// Options for opening the log in `dir`.
    pub fn builder(dir: impl AsRef<Path>) -> LogBuilder {
        LogBuilder {
            dir: dir.as_ref().to_owned(),
            config: LogConfig::default(),
            meta: None,
            clock: Arc::new(SystemClock),
            listener: None,
            storage: Arc::new(FsStorage),
        }
    }

    /// What opening found and repaired.
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        self.shared.layout.root()
    }

    /// The configuration in force.
    pub fn config(&self) -> &LogConfig {
        &self.shared.config
    }

    /// Append `payload` to `topic` and wait until it is visible (under
    /// `always`: fsynced). Returns its position.
    pub fn append(&self, topic: &str, kind: RecordKind, payload: &[u8]) -> Result<Position> {
        let a = self.append_with(topic, kind, payload.len(), |_, buf| {
            buf.extend_from_slice(payload)
        })?;
        a.wait()?;
        Ok(a.position)
    }

    /// Append a record whose payload `fill` writes into the record buffer,
    /// given the position the record gets. Returns at once; the record is
    /// visible to readers after the writer wrote it (see [`Appended`]).
    ///
    /// `fill` runs under the topic's append lock, so positions and payloads
    /// are in the same order; keep it short. `size_hint` is the expected
    /// payload size (for the allocation).
    pub fn append_with(
        &self,
        topic: &str,
        kind: RecordKind,
        size_hint: usize,
        fill: impl FnOnce(Position, &mut BytesMut),
    ) -> Result<Appended> {
        self.append_inner(topic, kind, size_hint, None, fill)
    }

    /// Append a record restored from elsewhere (an export, a backup) as it
    /// was: at `position`, which must be the topic's next (else
    /// [`LogError::PositionConflict`], and nothing is appended), with its
    /// original append time and payload. Create the topic first with
    /// [`Log::create_topic_at`] so that its epoch and first offset match.
    ///
    /// Timestamps are taken as given; retention by age judges the record
    /// by them, so an old history may be trimmed soon after it lands.
    pub fn append_exact(
        &self,
        topic: &str,
        position: Position,
        timestamp_us: u64,
        kind: RecordKind,
        payload: &[u8],
    ) -> Result<Appended> {
        if self.shared.topics.get(topic).is_none() {
            return Err(LogError::UnknownTopic(topic.to_owned()));
        }
        self.append_inner(
            topic,
            kind,
            payload.len(),
            Some((position, timestamp_us)),
            |_, b| b.extend_from_slice(payload),
        )
    }

    /// [`Log::append_with`], at an exact position and time when `exact`
    /// says so.
    fn append_inner(
        &self,
        topic: &str,
        kind: RecordKind,
        size_hint: usize,
        exact: Option<(Position, u64)>,
        fill: impl FnOnce(Position, &mut BytesMut),
    ) -> Result<Appended> {
        self.check_writable()?;
        self.wait_for_room()?;
        let mut fill = Some(fill);
        loop {
            let t = self.topic_for_append(topic)?;
            let (record, outcome, enqueue) = {
                let mut st = t.state.lock();
                if st.deleted {
                    continue;
                }
                let position = Position::new(t.epoch, st.next_offset);
                let timestamp = match exact {
                    None => self.shared.now_us(),
                    Some((wanted, _)) if wanted != position => {
                        return Err(LogError::PositionConflict {
                            topic: topic.to_owned(),
                            requested: wanted,
                            next: position,
                        });
                    }
                    Some((_, timestamp)) => timestamp,
                };
                let f = fill.take().expect("fill runs once");
                let record =
                    Record::build(position, timestamp, kind, size_hint, |b| f(position, b));
                if record.payload_len() > self.shared.config.max_record_bytes {
                    return Err(LogError::RecordTooLarge {
                        size: record.payload_len(),
                        limit: self.shared.config.max_record_bytes,
                    });
                }
                st.next_offset += 1;
                let outcome = st.outcome.clone();
                let delta = st
                    .tail
                    .push(record.clone(), self.shared.config.tail.records_per_topic);
                self.shared.add_tail_bytes(delta);
                st.pending.push(record.clone());
                let enqueue = !st.queued;
                st.queued = true;
                (record, outcome, enqueue)
            };
            t.touch(self.shared.now_ms());
            Counters::add(&self.shared.counters.appends, 1);
            Counters::add(
                &self.shared.counters.append_bytes,
                record.encoded_len() as u64,
            );
            self.shared
                .pending_bytes
                .fetch_add(record.encoded_len(), Ordering::AcqRel);
            self.shared.pending_records.fetch_add(1, Ordering::AcqRel);
            if enqueue {
                let mut q = self.shared.queue.lock();
                q.dirty.push(t.clone());
                if q.idle {
                    self.shared.queue_cv.notify_one();
                }
            }
            return Ok(Appended {
                position: record.position(),
                record,
                topic: t,
                outcome,
                shared: self.shared.clone(),
            });
        }
    }

    /// Append several payloads to one topic, consecutively; waits until the
    /// last one is visible. Returns the position of the first.
    pub fn append_batch<P: AsRef<[u8]>>(
        &self,
        topic: &str,
        kind: RecordKind,
        payloads: &[P],
    ) -> Result<Option<Position>> {
        let mut first = None;
        let mut last = None;
        for p in payloads {
            let p = p.as_ref();
            let a = self.append_with(topic, kind, p.len(), |_, b| b.extend_from_slice(p))?;
            first.get_or_insert(a.position);
            last = Some(a);
        }
        if let Some(a) = last {
            a.wait()?;
        }
        Ok(first)
    }

    /// Read `topic` from `from` (inclusive), within `limits`.
    pub fn read(&self, topic: &str, from: Position, limits: ReadLimits) -> Result<ReadBatch> {
        let t = self.topic(topic)?;
        self.shared.read(&t, from, limits)
    }

    /// Where `topic` stands, if it has a live history.
    pub fn position(&self, topic: &str) -> Option<TopicPosition> {
        let t = self.shared.topics.get(topic)?.clone();
        let first_offset = t.first_offset();
        Some(TopicPosition {
            epoch: t.epoch,
            first_offset,
            next_offset: t.visible(),
        })
    }

    /// Every topic with its figures, sorted by name.
    pub fn topics(&self) -> Vec<TopicInfo> {
        let topics: Vec<Arc<Topic>> = self
            .shared
            .topics
            .iter()
            .map(|t| t.value().clone())
            .collect();
        let mut out: Vec<TopicInfo> = topics.iter().map(|t| self.info(t)).collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// One topic's figures.
    pub fn topic_info(&self, topic: &str) -> Option<TopicInfo> {
        let t = self.shared.topics.get(topic)?.clone();
        Some(self.info(&t))
    }

    fn info(&self, t: &Topic) -> TopicInfo {
        let tail_records = t.state.lock().tail.len();
        let store = t.store.lock();
        TopicInfo {
            name: t.name.to_string(),
            epoch: t.epoch,
            first_offset: store.first_offset(),
            next_offset: t.visible(),
            segments: store.segments.len(),
            bytes: store.bytes(),
            tail_records,
            retention: store.retention.unwrap_or(self.shared.config.retention),
        }
    }

    /// Wait (async) for records of `topic`.
    pub fn watch(&self, topic: &str) -> Result<TopicWatch> {
        let t = self.topic(topic)?;
        Ok(TopicWatch {
            rx: t.watch.subscribe(),
        })
    }

    /// Set (or with `None` clear) the retention of one topic. Durable when
    /// this returns; applied at the next maintenance pass.
    pub fn set_retention(&self, topic: &str, retention: Option<Retention>) -> Result<()> {
        let t = self.topic(topic)?;
        let mut meta = self.topic_meta(topic, Some(t.epoch.0))?;
        meta.retention = retention;
        self.store_meta(&meta)?;
        t.store.lock().retention = retention;
        Ok(())
    }

    /// Apply retention to `topic` now; returns how many segments went.
    pub fn enforce_retention(&self, topic: &str) -> Result<usize> {
        let t = self.topic(topic)?;
        crate::retention::enforce(&self.shared, &t)
    }

    /// Delete the sealed segments of `topic` that hold only offsets below
    /// `offset`, e.g. after a snapshot at `offset` made them redundant.
    /// Later reads of those offsets are `NotRecoverable`. Returns how many
    /// segments went.
    pub fn trim_before(&self, topic: &str, offset: u64) -> Result<usize> {
        let t = self.topic(topic)?;
        crate::retention::trim_before(&self.shared, &t, offset)
    }

    /// Wait until everything appended so far is visible and the append
    /// listener has seen it, then fsync every file written since the last
    /// fsync (under `never` nothing is fsynced: that policy leaves
    /// writeback to the operating system entirely).
    ///
    /// While storage fails, returns [`LogError::Unavailable`] instead:
    /// records it failed will never be visible, and nothing is waited for.
    pub fn flush(&self) -> Result<()> {
        let topics: Vec<Arc<Topic>> = self
            .shared
            .topics
            .iter()
            .map(|t| t.value().clone())
            .collect();
        for t in topics {
            let target = t.state.lock().next_offset;
            let mut g = self.shared.progress.lock();
            // A rollback moves `next_offset` back: failed records are not
            // waited for.
            while t.told() < target.min(t.state.lock().next_offset) && !t.state.lock().deleted {
                self.unavailable()?;
                self.shared.progress_cv.wait(&mut g);
            }
        }
        self.unavailable()?;
        let n = self.shared.files.sync_dirty().map_err(|(p, e)| {
            // Not a fault of the writer's: the paths stay dirty for it.
            LogError::Unavailable {
                op: "fsync",
                path: p,
                source: e,
            }
        })?;
        Counters::add(&self.shared.counters.fsyncs, n as u64);
        Ok(())
    }

    /// `Err` while storage is down.
    fn unavailable(&self) -> Result<()> {
        match self.shared.health.fault() {
            Some(f) => Err(f.error()),
            None => Ok(()),
        }
    }

    /// The log's counters and gauges.
    pub fn stats(&self) -> LogStats {
        let c = &self.shared.counters;
        LogStats {
            appends: Counters::get(&c.appends),
            append_bytes: Counters::get(&c.append_bytes),
            writes: Counters::get(&c.writes),
            bytes_written: Counters::get(&c.bytes_written),
            fsyncs: Counters::get(&c.fsyncs),
            batches: Counters::get(&c.batches),
            tail_reads: Counters::get(&c.tail_reads),
            disk_reads: Counters::get(&c.disk_reads),
            disk_records_read: Counters::get(&c.disk_records_read),
            segments_created: Counters::get(&c.segments_created),
            segments_deleted: Counters::get(&c.segments_deleted),
            tails_evicted: Counters::get(&c.tails_evicted),
            write_failures: Counters::get(&c.write_failures),
            damaged_reads: Counters::get(&c.damaged_reads),
            topics: self.shared.topics.len() as u64,
            tail_bytes: self.shared.tail_bytes.load(Ordering::Relaxed) as u64,
            pending_bytes: self.shared.pending_bytes.load(Ordering::Relaxed) as u64,
            open_files: self.shared.files.open_count() as u64,
        }
    }

    /// Write and fsync everything, stop the writer and mark the directory
    /// cleanly closed. Later appends fail with [`LogError::Closed`]; reads
    /// keep working. Dropping a `Log` closes it too, ignoring errors.
    pub fn close(&self) -> Result<()> {
        self.shutdown()
    }

    fn shutdown(&self) -> Result<()> {
        let Some(handle) = self.writer.lock().take() else {
            return Ok(());
        };
        self.shared.closed.store(true, Ordering::Release);
        {
            let mut q = self.shared.queue.lock();
            q.shutdown = true;
            self.shared.queue_cv.notify_one();
        }
        let _ = handle.join();
        self.shared.announce_progress();
        let result = match self.shared.health.fault() {
            // Leave the running marker: the next open scans everything.
            Some(f) => Err(f.error()),
            None => open::mark_stopped(self.shared.files.storage(), &self.shared.layout),
        };
        let meta = self.shared.meta.close().map_err(LogError::Meta);
        self.lock.lock().take();
        result.and(meta)
    }

    fn check_writable(&self) -> Result<()> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(LogError::Closed);
        }
        // Fail fast while storage is down (until the writer's next retry).
        self.shared.health.check()
    }

    /// Block while more than `max_pending_bytes` wait for the writer.
    /// Might an append to `topic` block now? True when the topic does not
    /// exist yet (creating it writes its directory and the metadata
    /// store) or the writer's backlog is full (the append waits for room).
    /// An async caller hands such an append to a blocking thread.
    pub fn append_may_block(&self, topic: &str) -> bool {
        self.is_backlogged() || !self.shared.topics.contains_key(topic)
    }

    /// Is the writer's backlog full (an append would wait for room)?
    pub fn is_backlogged(&self) -> bool {
        self.shared.pending_bytes.load(Ordering::Acquire) >= self.shared.config.max_pending_bytes
    }

    /// What the metadata store holds for `topic`, or a new entry (with
    /// `epoch` as its current one) when it holds nothing.
    fn topic_meta(&self, topic: &str, epoch: Option<u32>) -> Result<TopicMeta> {
        let stored = self.shared.meta.get(topic).map_err(LogError::Meta)?;
        Ok(stored.unwrap_or_else(|| TopicMeta {
            name: topic.to_owned(),
            epoch,
            retired_epochs: Vec::new(),
            retention: None,
        }))
    }

    /// Store `meta` and flush the store: durable when this returns.
    fn store_meta(&self, meta: &TopicMeta) -> Result<()> {
        self.shared
            .meta
            .put(meta)
            .and_then(|()| self.shared.meta.flush())
            .map_err(LogError::Meta)
    }

    fn wait_for_room(&self) -> Result<()> {
        let max = self.shared.config.max_pending_bytes;
        if self.shared.pending_bytes.load(Ordering::Acquire) < max {
            return Ok(());
        }
        let mut g = self.shared.progress.lock();
        while self.shared.pending_bytes.load(Ordering::Acquire) >= max {
            self.check_writable()?;
            self.shared.progress_cv.wait_for(&mut g, writer::ROOM_POLL);
        }
        Ok(())
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>> {
        self.shared
            .topics
            .get(name)
            .map(|t| t.clone())
            .ok_or_else(|| LogError::UnknownTopic(name.to_owned()))
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            tracing::warn!(error = %e, "closing the log failed");
        }
    }
}
