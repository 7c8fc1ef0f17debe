//! The hand-off from the log's writer thread to fan-out.
//!
//! The writer thread writes and fsyncs, and nothing else: when records
//! become visible (durable by the policy), the log tells its listener, the
//! [`Feed`], which notes them under its topic and returns. The fan-out
//! thread (`wse-fanout`) takes what was noted, frames it into each topic's
//! ring, wakes the subscribers and serves the queue groups. So framing,
//! channel locks and queue-group pushes never delay an fsync, and a slow
//! disk never delays the delivery of what is already durable.
//!
//! What waits for the fan-out thread is bounded without ever blocking the
//! writer: a topic keeps at most as many noted records as its ring keeps
//! frames (`fanout_frames_per_topic`). Older ones would leave the ring at
//! once anyway; dropping them leaves a gap the ring restarts after, and
//! subscribers whose cursor falls in it read those records from the log,
//! as any subscriber behind the ring does. Only queue groups, which have no
//! cursor, miss them; they are counted as slow-consumer drops.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};
use wse_log::{AppendListener, Epoch, Record};

use super::Fanout;
use crate::metrics::Metrics;

/// The log's listener: notes visible records for the fan-out thread.
pub(crate) struct Feed {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the writer thread and the fan-out thread share.
struct Shared {
    fanout: Arc<Fanout>,
    inbox: Mutex<Inbox>,
    wake: Condvar,
    /// Signalled when the fan-out thread finished a round (see
    /// `Inbox::rounds_done`).
    delivered: Condvar,
    /// Records noted per topic at most (the ring's size).
    per_topic: usize,
}

/// Records noted and not yet fanned out.
#[derive(Default)]
struct Inbox {
    /// Per topic, its records in order.
    topics: HashMap<Arc<str>, VecDeque<Record>>,
    /// Topics in the order they were first noted (each once).
    order: Vec<Arc<str>>,
    /// Records dropped because their topic had a full backlog.
    dropped: u64,
    /// Rounds the fan-out thread took from the inbox, and delivered: a
    /// deletion waits until every round taken before it is delivered, so
    /// no record of the deleted history is framed after its ring restarts.
    rounds_taken: u64,
    rounds_done: u64,
    /// Histories deleted (topic, epoch) whose records may still be
    /// announced by a writer that raced the deletion: dropped. An entry
    /// goes when the topic's next history announces its first records
    /// (the writer announces in order, so nothing older follows).
    deleted: HashMap<Arc<str>, Epoch>,
    stop: bool,
}

impl Feed {
    /// Start the fan-out thread for `fanout`, keeping at most `per_topic`
    /// noted records per topic.
    pub(crate) fn start(fanout: Arc<Fanout>, per_topic: usize) -> std::io::Result<Arc<Self>> {
        let shared = Arc::new(Shared {
            fanout,
            inbox: Mutex::new(Inbox::default()),
            wake: Condvar::new(),
            delivered: Condvar::new(),
            per_topic: per_topic.max(1),
        });
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("wse-fanout".into())
            .spawn(move || worker.run())?;
        Ok(Arc::new(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        }))
    }

    /// Fan out what is noted, then end the thread (idempotent). Call after
    /// the log is closed, so nothing is noted afterwards.
    pub(crate) fn stop(&self) {
        self.shared.inbox.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        self.shared.inbox.lock().stop = true;
        self.shared.wake.notify_one();
    }
}

impl AppendListener for Feed {
    /// On the writer thread: note the records if anyone may want them,
    /// and return.
    fn on_visible(&self, topic: &str, epoch: Epoch, records: &[Record]) {
        if records.is_empty() || !self.shared.fanout.is_wanted(topic) {
            return;
        }
        let mut inbox = self.shared.inbox.lock();
        if !inbox.deleted.is_empty()
            && let Some(&gone) = inbox.deleted.get(topic)
        {
            if gone == epoch {
                return;
            }
            inbox.deleted.remove(topic);
        }
        let was_empty = inbox.order.is_empty();
        inbox.note(topic, records, self.shared.per_topic);
        drop(inbox);
        if was_empty {
            self.shared.wake.notify_one();
        }
    }

    /// On the deleting thread, before the topic's next history can exist:
    /// drop what is noted of the topic, wait until a round the fan-out
    /// thread already took is delivered (it may hold records of the
    /// deleted history), then restart the topic's ring. Afterwards nothing
    /// of the deleted history reaches the ring: a batch of it the writer
    /// announces late is dropped (`Inbox::deleted`). The wait is for
    /// framing and channel locks only, never for the disk.
    fn on_deleted(&self, topic: &str, epoch: Epoch) {
        let mut inbox = self.shared.inbox.lock();
        inbox.deleted.insert(Arc::from(topic), epoch);
        if inbox.topics.remove(topic).is_some() {
            inbox.order.retain(|t| &**t != topic);
        }
        let taken = inbox.rounds_taken;
        while inbox.rounds_done < taken {
            self.shared.delivered.wait(&mut inbox);
        }
        drop(inbox);
        self.shared.fanout.restart(topic);
    }
}

impl Inbox {
    /// Note `records` (consecutive, oldest first) of `topic`, keeping at
    /// most `per_topic` of the newest.
    fn note(&mut self, topic: &str, records: &[Record], per_topic: usize) {
        let Some(first) = records.first() else { return };
        let queue = match self.topics.get_mut(topic) {
            Some(q) => q,
            None => {
                let name: Arc<str> = Arc::from(topic);
                self.order.push(name.clone());
                self.topics.entry(name).or_default()
            }
        };
        if queue
            .back()
            .is_some_and(|last| last.offset() + 1 != first.offset())
        {
            // Records in between were not noted (nobody wanted the topic
            // then): any channel now starts after them, so the older ones
            // are of no use, and a ring takes consecutive records only.
            queue.clear();
        }
        queue.extend(records.iter().cloned());
        let excess = queue.len().saturating_sub(per_topic);
        queue.drain(..excess);
        self.dropped += excess as u64;
    }
}

impl Shared {
    /// The fan-out thread: take everything noted, deliver it topic by
    /// topic in the order noted, until stopped with nothing left.
    fn run(&self) {
        loop {
            let (mut topics, order, dropped, round) = {
                let mut inbox = self.inbox.lock();
                while inbox.order.is_empty() && !inbox.stop {
                    self.wake.wait(&mut inbox);
                }
                if inbox.order.is_empty() {
                    return;
                }
                inbox.rounds_taken += 1;
                (
                    std::mem::take(&mut inbox.topics),
                    std::mem::take(&mut inbox.order),
                    std::mem::take(&mut inbox.dropped),
                    inbox.rounds_taken,
                )
            };
            if dropped > 0 {
                Metrics::add(&self.fanout.metrics.slow_consumer_drops, dropped);
                tracing::debug!(
                    dropped,
                    "fan-out fell a ring behind; subscribers catch up from the log"
                );
            }
            for topic in order {
                if let Some(mut records) = topics.remove(&topic) {
                    self.fanout.deliver(&topic, records.make_contiguous());
                }
            }
            self.inbox.lock().rounds_done = round;
            self.delivered.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wse_log::{Log, LogConfig, Position, ReadLimits, RecordKind};

    /// `n` records of one topic, as a real log returns them.
    fn records(n: usize) -> (tempfile::TempDir, Vec<Record>) {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::open(dir.path().join("log"), LogConfig::default()).unwrap();
        for i in 0..n {
            log.append("t", RecordKind::Message, format!("m{i}").as_bytes())
                .unwrap();
        }
        let epoch = log.position("t").unwrap().epoch;
        let limits = ReadLimits {
            max_records: n,
            max_bytes: usize::MAX,
        };
        let batch = log.read("t", Position::new(epoch, 0), limits).unwrap();
        log.close().unwrap();
        (dir, batch.records)
    }

    fn offsets(inbox: &Inbox, topic: &str) -> Vec<u64> {
        inbox.topics[topic].iter().map(Record::offset).collect()
    }

    #[test]
    fn consecutive_notes_join_and_a_gap_drops_what_came_before_it() {
        let (_dir, r) = records(10);
        let mut inbox = Inbox::default();
        inbox.note("t", &r[0..3], 100);
        inbox.note("t", &r[3..5], 100);
        assert_eq!(offsets(&inbox, "t"), [0, 1, 2, 3, 4]);
        // 5 and 6 were never noted: a ring cannot take 0..5 and 7.. as one
        // run, and no channel needs 0..5 any more.
        inbox.note("t", &r[7..9], 100);
        assert_eq!(offsets(&inbox, "t"), [7, 8]);
        assert_eq!(inbox.order.len(), 1, "each topic once in the order");
        assert_eq!(inbox.dropped, 0);
    }

    #[test]
    fn a_topic_keeps_only_its_newest_records_and_counts_the_rest() {
        let (_dir, r) = records(10);
        let mut inbox = Inbox::default();
        inbox.note("t", &r[0..6], 4);
        inbox.note("t", &r[6..10], 4);
        assert_eq!(offsets(&inbox, "t"), [6, 7, 8, 9]);
        assert_eq!(inbox.dropped, 6);
    }

    #[test]
    fn a_stuck_fan_out_does_not_hold_up_durable_appends() {
        let dir = tempfile::tempdir().unwrap();
        let fanout = Arc::new(Fanout::new(64, usize::MAX, Arc::new(Metrics::default())));
        let channel = fanout.with_channel("t", || (None, 0), Arc::clone);
        let feed = Feed::start(fanout, 64).unwrap();
        let log = Arc::new(
            Log::builder(dir.path().join("log"))
                .config(LogConfig::default())
                .listener(feed.clone())
                .open()
                .unwrap(),
        );
        // Fan-out is stuck on the channel's ring (as behind a slow
        // subscriber lock or a long sealing run) ...
        let stuck = channel.ring.write();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let appender = {
            let log = log.clone();
            std::thread::spawn(move || {
                for i in 0..100 {
                    log.append("t", RecordKind::Message, format!("m{i}").as_bytes())
                        .unwrap();
                }
                done_tx.send(()).unwrap();
            })
        };
        // ... and appends still become durable: the writer thread does not
        // wait for it. (The bound only turns a hang into a failure.)
        done_rx
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("appends were held up by a stuck fan-out");
        appender.join().unwrap();
        drop(stuck);
        log.close().unwrap();
        feed.stop();
        assert_eq!(
            channel.ring.read().head(),
            100,
            "everything fanned out in the end"
        );
    }
}
