//! The writer thread: takes what appenders queued, writes each topic's new
//! records with one write per segment, forces them to disk as the
//! durability policy demands, and only then makes them visible.
//!
//! Group commit falls out of the loop: while one batch is written and
//! synced, appends pile up in the topics' pending lists, and the next batch
//! takes all of them. Under `always` every waiting appender of a batch
//! shares the batch's fsyncs.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::config::Durability;
use crate::error::LogError;
use crate::health::StorageFault;
use crate::record::Record;
use crate::retention;
use crate::rollback::{BatchOutcome, Mark};
use crate::shared::Shared;
use crate::stats::Counters;
use crate::syncer::Syncer;
use crate::topic::{Topic, WriteCtx};

/// Topics written between two fsyncs under `always`, so the files waiting
/// for their fsync stay few even when a batch spans many topics.
const ALWAYS_CHUNK: usize = 64;
/// Under `always`, how long the writer lets the appenders released by the
/// last fsync come back before it starts the next one (see `gather`).
const GROUP_COMMIT_WAIT: Duration = Duration::from_micros(100);

/// The writer's own state.
struct Writer {
    shared: Arc<Shared>,
    buf: Vec<u8>,
    unsynced_since: Option<Instant>,
    unsynced_bytes: u64,
    next_maintenance: Instant,
    /// Records in the last batch (under `always`: how many appenders an
    /// fsync released, and will likely append again at once).
    last_batch: usize,
    /// The background fsync of the `interval` policy.
    syncer: Option<Syncer>,
}

/// One topic's records taken by the writer and not yet visible.
struct InFlight {
    topic: Arc<Topic>,
    records: Vec<Record>,
    /// Failed if storage fails them.
    outcome: Arc<BatchOutcome>,
    /// What to roll the topic's segments back to then.
    mark: Mark,
}

/// Run the writer until the log closes.
pub fn run(shared: Arc<Shared>) {
    let next_maintenance = Instant::now() + shared.config.maintenance_interval;
    let mut w = Writer {
        shared,
        buf: Vec::new(),
        unsynced_since: None,
        unsynced_bytes: 0,
        next_maintenance,
        last_batch: 0,
        syncer: None,
    };
    if matches!(w.shared.config.durability, Durability::Interval { .. }) {
        let s = w.shared.clone();
        w.syncer = Some(Syncer::spawn(w.shared.clone(), move |e| {
            fault(&s, e);
        }));
    }
    loop {
        let (batch, stop) = w.next_batch();
        if !batch.is_empty() {
            w.write_batch(batch);
        } else if !stop {
            // Failures are recorded; appends see them.
            let _ = w.probe_if_due();
        }
        w.sync_if_due();
        if Instant::now() >= w.next_maintenance {
            w.maintain();
        }
        if stop {
            w.finish();
            return;
        }
    }
}

impl Writer {
    /// Wait for work, a due fsync or due maintenance. Returns the topics to
    /// write and whether to stop after them.
    fn next_batch(&mut self) -> (Vec<Arc<Topic>>, bool) {
        let mut q = self.shared.queue.lock();
        loop {
            if !q.dirty.is_empty() {
                drop(q);
                self.gather();
                q = self.shared.queue.lock();
                return (std::mem::take(&mut q.dirty), false);
            }
            if q.shutdown {
                return (Vec::new(), true);
            }
            let mut deadline = self.next_maintenance;
            if let (Some(since), Durability::Interval { max_delay, .. }) =
                (self.unsynced_since, self.shared.config.durability)
            {
                deadline = deadline.min(since + max_delay);
            }
            if let Some(retry) = self.shared.health.retry_at() {
                // Probe storage again (pending fsyncs and repairs).
                deadline = deadline.min(retry);
            }
            if Instant::now() >= deadline {
                return (Vec::new(), false);
            }
            q.idle = true;
            self.shared.queue_cv.wait_until(&mut q, deadline);
            q.idle = false;
        }
    }

    /// Group commit under `always`: the appenders an fsync released come
    /// back microseconds apart, and starting the next fsync with the first
    /// of them would split them over two fsyncs (each waiting for two). So
    /// wait, yielding the CPU to them, until as many records as the last
    /// batch held are pending again, or `GROUP_COMMIT_WAIT` passed.
    fn gather(&self) {
        if self.shared.config.durability != Durability::Always || self.last_batch < 2 {
            return;
        }
        let deadline = Instant::now() + GROUP_COMMIT_WAIT;
        while self.shared.pending_records.load(Ordering::Acquire) < self.last_batch
            && Instant::now() < deadline
        {
            std::thread::yield_now();
        }
    }

    /// Write every queued topic's pending records, sync if the policy says
    /// so, then publish. When storage fails, the records it failed are
    /// rolled back (see `fail`) and the rest of the batch fails with them.
    fn write_batch(&mut self, batch: Vec<Arc<Topic>>) {
        Counters::add(&self.shared.counters.batches, 1);
        let mut topics = batch.into_iter();
        let mut bytes = 0usize;
        let attempt = self.shared.health.attempt();
        if let Err(f) = self.probe_if_due() {
            self.fail(Vec::new(), topics, &f);
        } else if let Err((f, failed)) = self.write_topics(&mut topics, &mut bytes) {
            self.fail(failed, topics, &f);
        } else if bytes > 0 {
            // Written (and under `always` synced): storage works, unless
            // the syncer failed meanwhile.
            self.shared.health.recovered(attempt);
        }
        self.shared.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.shared.announce_progress();
        if self.shared.tail_bytes.load(Ordering::Relaxed) > self.shared.config.tail.memory_budget {
            retention::evict_tails_over_budget(&self.shared);
        }
    }

    /// Write (and under `always` sync, then publish) each topic's pending
    /// records. `bytes` counts what was taken from the pending lists. On a
    /// storage fault, returns it with the records that must be rolled back;
    /// the topics not reached yet stay in `topics`.
    fn write_topics(
        &mut self,
        topics: &mut std::vec::IntoIter<Arc<Topic>>,
        bytes: &mut usize,
    ) -> Result<(), (Arc<StorageFault>, Vec<InFlight>)> {
        let always = self.shared.config.durability == Durability::Always;
        let mut written: Vec<InFlight> = Vec::new();
        let mut taken = 0usize;
        for topic in topics.by_ref() {
            let (records, outcome) = {
                let mut st = topic.state.lock();
                st.queued = false;
                let records = std::mem::take(&mut st.pending);
                let outcome = std::mem::take(&mut st.outcome);
                (records, outcome)
            };
            if records.is_empty() {
                continue;
            }
            self.shared
                .pending_records
                .fetch_sub(records.len(), Ordering::AcqRel);
            taken += records.len();
            let n: usize = records.iter().map(Record::encoded_len).sum();
            *bytes += n;
            let mark = topic.mark();
            let mut ctx = WriteCtx {
                config: &self.shared.config,
                files: &self.shared.files,
                counters: &self.shared.counters,
                now_us: self.shared.now_us(),
                buf: &mut self.buf,
            };
            let result = topic.write_records(&mut ctx, &records);
            let flight = InFlight {
                topic,
                records,
                outcome,
                mark,
            };
            if let Err(e) = result {
                let f = self.fault(e);
                // Under `always` nothing written in this chunk is synced:
                // it fails too. Otherwise what was written is safe to show.
                if !always {
                    self.publish(std::mem::take(&mut written));
                }
                written.push(flight);
                return Err((f, written));
            }
            self.unsynced_bytes += n as u64;
            self.unsynced_since.get_or_insert_with(Instant::now);
            written.push(flight);
            if always && written.len() >= ALWAYS_CHUNK {
                if let Err(f) = self.sync() {
                    return Err((f, written));
                }
                self.publish(std::mem::take(&mut written));
            }
        }
        self.last_batch = taken;
        if always && let Err(f) = self.sync() {
            return Err((f, written));
        }
        self.publish(written);
        Ok(())
    }

    /// Storage failed: roll back the records in flight (their files and
    /// their topics' append sides), fail every record pending in the
    /// topics not reached, and wake every waiter.
    fn fail(
        &mut self,
        in_flight: Vec<InFlight>,
        rest: std::vec::IntoIter<Arc<Topic>>,
        fault: &Arc<StorageFault>,
    ) {
        for f in in_flight {
            // With the cached handles: under EMFILE no other can be opened.
            f.topic.roll_back_store(&self.shared.files, &f.mark);
            self.drop_appends(&f.topic, Some(&f.outcome), fault);
            let mut owed = self.shared.needs_repair.lock();
            if f.topic.needs_repair() && !owed.iter().any(|t| Arc::ptr_eq(t, &f.topic)) {
                owed.push(f.topic.clone());
            }
        }
        // Handles may be broken (EIO) or hold the descriptors that are
        // missing (EMFILE): reopen them when needed.
        self.shared.files.clear();
        for t in rest {
            t.state.lock().queued = false;
            self.drop_appends(&t, None, fault);
        }
        self.last_batch = 0;
    }

    /// Fail a topic's appends back to its visible head.
    fn drop_appends(&self, t: &Topic, in_flight: Option<&BatchOutcome>, fault: &Arc<StorageFault>) {
        let (dropped, freed) = t.roll_back_appends(in_flight, fault);
        self.shared
            .pending_bytes
            .fetch_sub(dropped.pending_bytes, Ordering::AcqRel);
        self.shared
            .pending_records
            .fetch_sub(dropped.pending_records, Ordering::AcqRel);
        self.shared.add_tail_bytes(-(freed as isize));
    }

    /// While storage is down: before its retry time, the fault appends fail
    /// with (`Err`); after it, retry what is owed (rollback repairs, then
    /// the pending fsync), which is the probe. A probe that fails pushes
    /// the retry time further out.
    fn probe_if_due(&mut self) -> Result<(), Arc<StorageFault>> {
        if !self.shared.health.is_down() {
            return Ok(());
        }
        if let Some(f) = self.shared.health.failing_fast() {
            return Err(f);
        }
        self.probe()
    }

    /// Do what failed storage left owed: rollback repairs and, unless the
    /// policy never syncs, the fsync of every dirty file. An fsync fault
    /// ends when this succeeds; a write fault only when a write does.
    fn probe(&mut self) -> Result<(), Arc<StorageFault>> {
        let topics = std::mem::take(&mut *self.shared.needs_repair.lock());
        let mut result = Ok(());
        for t in &topics {
            if result.is_ok() {
                let mut store = t.store.lock();
                result = t.repair(&self.shared.files, &mut store);
            }
        }
        self.shared
            .needs_repair
            .lock()
            .extend(topics.into_iter().filter(|t| t.needs_repair()));
        if let Err(e) = result {
            return Err(self.fault(e));
        }
        let fsync_fault = self.shared.health.fault().is_some_and(|f| f.is_fsync());
        let attempt = self.shared.health.attempt();
        if self.shared.config.durability != Durability::Never {
            self.sync()?;
        }
        if fsync_fault {
            self.shared.health.recovered(attempt);
        }
        Ok(())
    }

    /// Make written records visible and tell the listener.
    fn publish(&self, written: Vec<InFlight>) {
        for f in written {
            let Some(last) = f.records.last() else {
                continue;
            };
            let next = last.offset() + 1;
            f.topic.publish(next);
            if let Some(l) = &self.shared.listener {
                // Not under the topic's lock (appends take it): a batch of
                // a history deleted meanwhile may still be announced after
                // `on_deleted`, with the deleted epoch, and a listener that
                // caches records drops it (see `AppendListener::on_deleted`).
                l.on_visible(&f.topic.name, f.topic.epoch, &f.records);
            }
            f.topic.told.store(next, Ordering::Release);
        }
        self.shared.announce_progress();
    }

    /// fsync when the interval policy says it is time.
    fn sync_if_due(&mut self) {
        if let Durability::Interval {
            max_delay,
            max_bytes,
        } = self.shared.config.durability
        {
            let due = self.unsynced_bytes >= max_bytes
                || self
                    .unsynced_since
                    .is_some_and(|s| s.elapsed() >= max_delay);
            // While storage is down the writer's probe does the fsync.
            if due && !self.shared.health.is_down() {
                // The fsync runs beside the writer, which keeps writing.
                if let Some(s) = &self.syncer {
                    s.request();
                }
                self.unsynced_bytes = 0;
                self.unsynced_since = None;
            }
        }
    }

    /// fsync every dirty file and directory. On failure the paths stay
    /// dirty and the fault is recorded.
    fn sync(&mut self) -> Result<(), Arc<StorageFault>> {
        match self.shared.files.sync_dirty() {
            Ok(n) => {
                Counters::add(&self.shared.counters.fsyncs, n as u64);
                self.unsynced_bytes = 0;
                self.unsynced_since = None;
                Ok(())
            }
            Err((path, e)) => Err(self.fault(LogError::io("fsync", path, e))),
        }
    }

    /// Record a storage fault.
    fn fault(&self, e: LogError) -> Arc<StorageFault> {
        fault(&self.shared, e)
    }

    /// Retention, idle tails, metadata flush.
    fn maintain(&mut self) {
        self.next_maintenance = Instant::now() + self.shared.config.maintenance_interval;
        if let Err(e) = retention::run(&self.shared) {
            tracing::warn!(error = %e, "retention pass failed");
        }
        retention::expire_idle_tails(&self.shared);
        if let Err(e) = self.shared.meta.flush() {
            tracing::warn!(error = %e, "metadata flush failed");
        }
    }

    /// At close: do what is owed and a final fsync (of whatever the policy
    /// tracked as unsynced). Storage that still fails leaves the log down,
    /// and `close` reports it.
    fn finish(&mut self) {
        if let Some(s) = self.syncer.take() {
            s.stop();
        }
        let attempt = self.shared.health.attempt();
        if self.probe().is_ok() {
            // Nothing is left to write: the files are what they should be.
            self.shared.health.recovered(attempt);
        }
        if let Err(e) = self.shared.meta.flush() {
            tracing::warn!(error = %e, "metadata flush at close failed");
        }
    }
}

/// Record a storage fault of the writer path: count it, enter (or stay
/// in) the down state, wake every waiter.
fn fault(shared: &Shared, e: LogError) -> Arc<StorageFault> {
    Counters::add(&shared.counters.write_failures, 1);
    let f = shared.health.failed(StorageFault::from_error(e));
    shared.announce_progress();
    f
}

/// How long appenders wait for room before checking the storage again.
pub const ROOM_POLL: Duration = Duration::from_millis(100);
