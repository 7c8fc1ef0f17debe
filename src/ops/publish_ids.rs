//! The idempotence window of a single node: a publish that carries an id
//! (an `Idempotency-Key`, a batch item's `id`, a client `publish`'s `id`,
//! Python's `publish_with_id`) is stored once per topic, however often it
//! is sent, as long as its first copy is among the topic's last
//! `cluster.dedup_window` identified publishes.
//!
//! Why a single node needs one: its acknowledgement never times out, but
//! the publisher can die between sending and hearing the answer (a `wse
//! replay` killed mid-batch and resumed, a backend restarted after a
//! crash). Sending again with the same id then costs nothing.
//!
//! The semantics are the cluster's (`wse-replication`'s `dedup.rs`): a
//! publish whose id is in the window is not appended, and is answered with
//! the first copy's position. Two differences, both of scope: the window is
//! per topic (a single node has no shards to bound it by), and it lives in
//! memory only, so a restart forgets it (the cluster rebuilds its window
//! from snapshots and the Raft log). A topic's window is emptied when the
//! topic starts a new epoch: its positions name a history that is gone.
//!
//! A first copy is remembered from the moment it is appended, not when it
//! becomes durable, so a retry racing its first copy is not stored twice:
//! the retry then shares the first copy's fate ([`FirstCopy::Pending`]).
//! If storage fails the first copy, its id is forgotten and the next retry
//! is stored.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use parking_lot::Mutex;
use wse_log::{Appended, Epoch, Log, LogError, Position};

/// Where a duplicate's first copy stands.
#[derive(Clone, Debug)]
pub enum FirstCopy {
    /// Visible (durable by the policy): its position.
    Stored(Position),
    /// Appended and not yet visible: the duplicate is acknowledged (or
    /// fails) with it.
    Pending(Appended),
}

/// What [`PublishIds::publish`] did.
pub(crate) enum Taken {
    /// The id was new: the record appended for it.
    New(Appended),
    /// The id is in the window: nothing appended.
    Duplicate(FirstCopy),
}

/// Every topic's window, created at its first identified publish.
pub(crate) struct PublishIds {
    /// Ids remembered per topic (`cluster.dedup_window`; 0: none).
    capacity: usize,
    /// One lock per topic, held while a publish is checked and appended,
    /// so that two copies sent at once are not both appended; the map's
    /// own lock is held only to find a topic's window.
    topics: Mutex<HashMap<String, Arc<Mutex<Window>>>>,
}

impl PublishIds {
    /// Windows of `capacity` ids per topic (0: no deduplication).
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            topics: Mutex::new(HashMap::new()),
        }
    }

    /// Publish `id` on `topic`: the first copy's fate when the window holds
    /// the id, else `append()` (called with the topic's window locked) and
    /// the id remembered.
    pub(crate) fn publish(
        &self,
        log: &Log,
        topic: &str,
        id: &str,
        append: impl FnOnce() -> Result<Appended, LogError>,
    ) -> Result<Taken, LogError> {
        if self.capacity == 0 {
            return append().map(Taken::New);
        }
        let window = self.window(topic);
        let mut w = window.lock();
        w.follow_epoch(log.position(topic).map(|p| p.epoch));
        w.settle();
        if let Some(first) = w.get(id) {
            return Ok(Taken::Duplicate(first));
        }
        let appended = append()?;
        w.follow_epoch(Some(appended.position.epoch));
        w.insert(id, appended.clone(), self.capacity);
        Ok(Taken::New(appended))
    }

    /// Forget `topic`'s window (its history was deleted).
    pub(crate) fn forget(&self, topic: &str) {
        self.topics.lock().remove(topic);
    }

    fn window(&self, topic: &str) -> Arc<Mutex<Window>> {
        self.topics
            .lock()
            .entry(topic.to_owned())
            .or_default()
            .clone()
    }
}

/// One remembered publish.
enum Entry {
    /// Appended, fate unknown when last looked at.
    Pending(Appended),
    /// Visible at this position.
    Stored(Position),
}

/// The last `capacity` identified publishes of one topic.
#[derive(Default)]
struct Window {
    /// The history the positions belong to.
    epoch: Option<Epoch>,
    /// Ids oldest first with the number they were inserted as, for
    /// eviction (an id forgotten after a failure and sent again is in it
    /// twice; the number tells which one its entry is).
    order: VecDeque<(u64, String)>,
    /// Each remembered id: its insertion number and entry.
    seen: HashMap<String, (u64, Entry)>,
    /// Ids whose entry is still `Pending`, in append order: records of a
    /// topic become visible in offset order, so they settle from the front.
    /// Settled here rather than kept pending, so a window does not hold
    /// records it no longer needs.
    pending: VecDeque<String>,
    /// The next insertion number.
    next: u64,
}

impl Window {
    /// Empty the window when the topic's history is not the one its
    /// positions name (deleted, replaced, or never created).
    fn follow_epoch(&mut self, epoch: Option<Epoch>) {
        if self.epoch != epoch {
            *self = Window {
                epoch,
                next: self.next,
                ..Window::default()
            };
        }
    }

    /// Turn pending entries whose record became visible into positions,
    /// and forget those that storage failed, from the oldest on.
    fn settle(&mut self) {
        while let Some(id) = self.pending.front() {
            let Some((_, Entry::Pending(a))) = self.seen.get(id) else {
                self.pending.pop_front();
                continue;
            };
            match a.settled() {
                None => return,
                Some(Ok(())) => {
                    let position = a.position;
                    if let Some(e) = self.seen.get_mut(id) {
                        e.1 = Entry::Stored(position);
                    }
                }
                Some(Err(_)) => {
                    self.seen.remove(id);
                }
            }
            self.pending.pop_front();
        }
    }

    /// The first copy of `id`, if remembered.
    fn get(&self, id: &str) -> Option<FirstCopy> {
        match &self.seen.get(id)?.1 {
            Entry::Stored(p) => Some(FirstCopy::Stored(*p)),
            Entry::Pending(a) => match a.settled() {
                // Failed: not stored, so not a duplicate; forgotten at the
                // next settle.
                Some(Err(_)) => None,
                Some(Ok(())) => Some(FirstCopy::Stored(a.position)),
                None => Some(FirstCopy::Pending(a.clone())),
            },
        }
    }

    /// Remember `id` as appended, forgetting the oldest beyond `capacity`.
    fn insert(&mut self, id: &str, appended: Appended, capacity: usize) {
        let n = self.next;
        self.next += 1;
        self.seen
            .insert(id.to_owned(), (n, Entry::Pending(appended)));
        self.order.push_back((n, id.to_owned()));
        self.pending.push_back(id.to_owned());
        while self.order.len() > capacity {
            let Some((n, old)) = self.order.pop_front() else {
                break;
            };
            if self.seen.get(&old).is_some_and(|e| e.0 == n) {
                self.seen.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wse_log::{LogConfig, RecordKind};

    fn log() -> (tempfile::TempDir, Log) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = Log::open(dir.path(), LogConfig::default()).unwrap_or_else(|e| panic!("{e}"));
        (dir, log)
    }

    fn publish(ids: &PublishIds, log: &Log, topic: &str, id: &str) -> (bool, Position) {
        let taken = ids
            .publish(log, topic, id, || {
                log.append_with(topic, RecordKind::Message, 8, |_, b| {
                    b.extend_from_slice(id.as_bytes());
                })
            })
            .unwrap_or_else(|e| panic!("{e}"));
        match taken {
            Taken::New(a) => {
                a.wait().unwrap_or_else(|e| panic!("{e}"));
                (false, a.position)
            }
            Taken::Duplicate(FirstCopy::Stored(p)) => (true, p),
            Taken::Duplicate(FirstCopy::Pending(a)) => {
                a.wait().unwrap_or_else(|e| panic!("{e}"));
                (true, a.position)
            }
        }
    }

    #[test]
    fn an_id_is_stored_once_per_topic_until_it_leaves_the_window() {
        let (_dir, log) = log();
        let ids = PublishIds::new(2);
        let (dup, first) = publish(&ids, &log, "a", "x");
        assert!(!dup);
        assert_eq!(publish(&ids, &log, "a", "x"), (true, first));
        assert!(!publish(&ids, &log, "b", "x").0, "ids are scoped by topic");
        publish(&ids, &log, "a", "y");
        publish(&ids, &log, "a", "z");
        let (dup, again) = publish(&ids, &log, "a", "x");
        assert!(!dup, "x left the window of 2");
        assert_eq!(again.offset, 3);
        assert_eq!(log.position("a").map(|p| p.next_offset), Some(4));
    }

    #[test]
    fn a_pending_first_copy_answers_its_retry_and_a_new_epoch_forgets() {
        let (_dir, log) = log();
        let ids = PublishIds::new(10);
        let append = || {
            log.append_with("t", RecordKind::Message, 2, |_, b| {
                b.extend_from_slice(b"{}")
            })
        };
        let Ok(Taken::New(first)) = ids.publish(&log, "t", "k", append) else {
            panic!("not appended")
        };
        // At once, before the writer may have made the first copy visible.
        let answered = match ids.publish(&log, "t", "k", || unreachable!("not appended twice")) {
            Ok(Taken::Duplicate(FirstCopy::Pending(a))) => a.position,
            Ok(Taken::Duplicate(FirstCopy::Stored(p))) => p,
            _ => panic!("the retry was not a duplicate"),
        };
        assert_eq!(answered, first.position);
        first.wait().unwrap_or_else(|e| panic!("{e}"));
        assert!(log.delete_topic("t").unwrap_or_else(|e| panic!("{e}")));
        let (dup, p) = publish(&ids, &log, "t", "k");
        assert!(!dup, "a deleted history's ids are forgotten");
        assert_eq!(p.offset, 0);
        assert_ne!(p.epoch, first.position.epoch);
    }

    #[test]
    fn capacity_zero_turns_it_off() {
        let (_dir, log) = log();
        let ids = PublishIds::new(0);
        assert!(!publish(&ids, &log, "a", "x").0);
        assert!(!publish(&ids, &log, "a", "x").0);
    }
}
