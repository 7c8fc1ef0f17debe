//! The state every part of an open log shares: topics, open files, the
//! writer's queue, counters and the health of storage.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use dashmap::DashMap;
use parking_lot::{Condvar, Mutex};

use crate::clock::Clock;
use crate::config::LogConfig;
use crate::files::FileCache;
use crate::health::Health;
use crate::layout::Layout;
use crate::meta::MetaStore;
use crate::position::Epoch;
use crate::record::Record;
use crate::stats::Counters;
use crate::topic::Topic;

/// Told about records as soon as readers may see them: the server's fan-out
/// and the replication sender hook in here instead of polling.
pub trait AppendListener: Send + Sync {
    /// `records` (consecutive, oldest first) of `topic` just became visible.
    /// Runs on the log's writer thread: hand the work off, do not block.
    fn on_visible(&self, topic: &str, epoch: Epoch, records: &[Record]);

    /// History `epoch` of `topic` was deleted ([`crate::Log::delete_topic`]).
    /// Called on the deleting thread before any record of a later history
    /// of `topic` exists: a listener that caches records (the server's
    /// framed rings) resets here. A batch of `epoch` the writer was
    /// announcing meanwhile may still arrive after this call (the writer
    /// does not take the topic's lock to announce, which would slow every
    /// append): such a listener drops records of a deleted epoch. Must not
    /// wait for the log.
    fn on_deleted(&self, topic: &str, epoch: Epoch) {
        let _ = (topic, epoch);
    }
}

/// The writer's inbox.
#[derive(Default)]
pub struct Queue {
    /// Topics with records to write, each at most once.
    pub dirty: Vec<Arc<Topic>>,
    /// Write what is queued, sync, and stop.
    pub shutdown: bool,
    /// The writer is waiting for work (so appenders know to wake it).
    pub idle: bool,
}

/// Shared state of an open log.
pub struct Shared {
    /// Paths of the data directory.
    pub layout: Layout,
    /// Configuration.
    pub config: LogConfig,
    /// Topic registry and epochs.
    pub meta: Box<dyn MetaStore>,
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Live topics by name.
    pub topics: DashMap<Arc<str>, Arc<Topic>>,
    /// Open segment files and unsynced paths.
    pub files: FileCache,
    /// The writer's inbox.
    pub queue: Mutex<Queue>,
    /// Wakes the writer.
    pub queue_cv: Condvar,
    /// Held while the writer announces progress (see `progress_cv`).
    pub progress: Mutex<()>,
    /// Wakes appenders that wait for visibility or for room.
    pub progress_cv: Condvar,
    /// Bytes appended but not yet written.
    pub pending_bytes: AtomicUsize,
    /// Records appended and not yet taken by the writer (group commit
    /// watches it to gather a full batch).
    pub pending_records: AtomicUsize,
    /// Bytes held by all memory tails.
    pub tail_bytes: AtomicUsize,
    /// Counters.
    pub counters: Counters,
    /// Told about newly visible records.
    pub listener: Option<Arc<dyn AppendListener>>,
    /// Whether storage works (and since when it does not).
    pub health: Health,
    /// Topics whose rollback still owes file changes (retried by the
    /// writer's probe).
    pub needs_repair: Mutex<Vec<Arc<Topic>>>,
    /// Held while a topic is created or deleted (metadata store and
    /// directory I/O). The topic map's own locks are never held across
    /// that I/O, so readers and appenders of other topics never wait on
    /// it; creations and deletions wait for each other, so a topic's
    /// epochs stay consistent in the metadata store.
    pub topic_lifecycle: Mutex<()>,
    /// Set once the log is closing.
    pub closed: AtomicBool,
}

impl Shared {
    /// Now in microseconds.
    pub fn now_us(&self) -> u64 {
        self.clock.now_us()
    }

    /// Now in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.clock.now_us() / 1000
    }

    /// Wake everyone who waits for progress.
    pub fn announce_progress(&self) {
        let _g = self.progress.lock();
        self.progress_cv.notify_all();
    }

    /// Adjust the tail byte total by a signed delta.
    pub fn add_tail_bytes(&self, delta: isize) {
        if delta >= 0 {
            self.tail_bytes.fetch_add(delta as usize, Ordering::Relaxed);
        } else {
            self.tail_bytes
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }
}
