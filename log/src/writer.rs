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
use crate::record::Record;
use crate::retention;
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
        let failing = w.shared.clone();
        w.syncer = Some(Syncer::spawn(w.shared.clone(), move |e| fail(&failing, e)));
    }
    loop {
        let (batch, stop) = w.next_batch();
        if !batch.is_empty() {
            w.write_batch(batch);
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
    /// so, then publish.
    fn write_batch(&mut self, batch: Vec<Arc<Topic>>) {
        let always = self.shared.config.durability == Durability::Always;
        let mut written: Vec<(Arc<Topic>, Vec<Record>)> = Vec::new();
        let mut bytes = 0usize;
        let mut taken = 0usize;
        Counters::add(&self.shared.counters.batches, 1);
        for topic in batch {
            let records = {
                let mut st = topic.state.lock();
                st.queued = false;
                std::mem::take(&mut st.pending)
            };
            if records.is_empty() {
                continue;
            }
            self.shared
                .pending_records
                .fetch_sub(records.len(), Ordering::AcqRel);
            taken += records.len();
            let n: usize = records.iter().map(Record::encoded_len).sum();
            bytes += n;
            let mut ctx = WriteCtx {
                config: &self.shared.config,
                files: &self.shared.files,
                counters: &self.shared.counters,
                now_us: self.shared.now_us(),
                buf: &mut self.buf,
            };
            if let Err(e) = topic.write_records(&mut ctx, &records) {
                self.fail(&e);
                return;
            }
            self.unsynced_bytes += n as u64;
            self.unsynced_since.get_or_insert_with(Instant::now);
            written.push((topic, records));
            if always && written.len() >= ALWAYS_CHUNK {
                if !self.sync() {
                    return;
                }
                self.publish(std::mem::take(&mut written));
            }
        }
        self.last_batch = taken;
        if always && !self.sync() {
            return;
        }
        self.publish(written);
        self.shared.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.shared.announce_progress();
        if self.shared.tail_bytes.load(Ordering::Relaxed) > self.shared.config.tail.memory_budget {
            retention::evict_tails_over_budget(&self.shared);
        }
    }

    /// Make written records visible and tell the listener.
    fn publish(&self, written: Vec<(Arc<Topic>, Vec<Record>)>) {
        for (topic, records) in written {
            let Some(last) = records.last() else { continue };
            let next = last.offset() + 1;
            topic.publish(next);
            if let Some(l) = &self.shared.listener {
                l.on_visible(&topic.name, topic.epoch, &records);
            }
            topic.told.store(next, Ordering::Release);
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
            if due {
                // The fsync runs beside the writer, which keeps writing.
                if let Some(s) = &self.syncer {
                    s.request();
                }
                self.unsynced_bytes = 0;
                self.unsynced_since = None;
            }
        }
    }

    /// fsync every dirty file and directory. False (and the log failed)
    /// when an fsync failed.
    fn sync(&mut self) -> bool {
        match self.shared.files.sync_dirty() {
            Ok(n) => {
                Counters::add(&self.shared.counters.fsyncs, n as u64);
                self.unsynced_bytes = 0;
                self.unsynced_since = None;
                true
            }
            Err((path, e)) => {
                self.fail(&LogError::io("fsync", path, e));
                false
            }
        }
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

    /// Final fsync at close (of whatever the policy tracked as unsynced).
    fn finish(&mut self) {
        if let Some(s) = self.syncer.take() {
            s.stop();
        }
        if self.shared.failure().is_none() {
            self.sync();
        }
        if let Err(e) = self.shared.meta.flush() {
            tracing::warn!(error = %e, "metadata flush at close failed");
        }
    }

    /// Enter the failed state: no more appends, every waiter woken.
    fn fail(&self, e: &LogError) {
        fail(&self.shared, e);
    }
}

/// Enter the failed state: no more appends, every waiter woken.
fn fail(shared: &Shared, e: &LogError) {
    tracing::error!(error = %e, "log write failed; refusing further appends");
    *shared.failure.lock() = Some(e.to_string());
    shared.failed.store(true, Ordering::Release);
    for t in shared.topics.iter() {
        t.watch.send_modify(|_| {});
    }
    shared.announce_progress();
}

/// How long appenders wait for room before checking the failure flag again.
pub const ROOM_POLL: Duration = Duration::from_millis(100);
