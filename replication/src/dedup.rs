//! The idempotence window of a shard: a publish that carries an id is
//! stored once per topic, however often it is sent, as long as its first
//! copy is among the shard's last `capacity` identified publishes.
//!
//! A publish whose commit timed out may still be committed; its publisher
//! (or the node forwarding it) sends it again with the same id, and the
//! state machine answers the retry with the first copy's position instead
//! of appending it twice. The window is part of the replicated state: every
//! replica applies the same entries to it in the same order, so every
//! replica suppresses the same publishes. It is bounded by a count, not a
//! time, so that no clock enters the decision. A snapshot carries its
//! contents ([`Dedup::entries`]), since the Raft log entries that filled it
//! are purged behind snapshots; after a restart it is built again from the
//! latest snapshot and the applied entries of the Raft log after it (see
//! [`crate::StateMachine`]).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use wse_log::Position;

/// One remembered publish, as a snapshot stores the window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowEntry {
    /// The publish's topic.
    pub topic: String,
    /// Its id.
    pub id: String,
    /// Where its first copy was stored.
    pub position: Position,
}

/// A publish's identity: its topic and its id.
type Key = (String, String);

/// The last `capacity` identified publishes of a shard and where each went.
#[derive(Debug)]
pub(crate) struct Dedup {
    capacity: usize,
    /// Oldest first, for eviction.
    order: VecDeque<Key>,
    seen: HashMap<Key, Position>,
}

impl Dedup {
    /// An empty window of `capacity` ids (0: no deduplication).
    pub(crate) fn new(capacity: usize) -> Dedup {
        Dedup {
            capacity,
            order: VecDeque::new(),
            seen: HashMap::new(),
        }
    }

    /// Where the publish `id` on `topic` was stored, if it is in the window.
    pub(crate) fn get(&self, topic: &str, id: &str) -> Option<Position> {
        if self.capacity == 0 {
            return None;
        }
        self.seen.get(&(topic.to_owned(), id.to_owned())).copied()
    }

    /// Remember that publish `id` on `topic` was stored at `position`,
    /// forgetting the oldest one when the window is full.
    pub(crate) fn insert(&mut self, topic: &str, id: &str, position: Position) {
        if self.capacity == 0 {
            return;
        }
        let key = (topic.to_owned(), id.to_owned());
        if self.seen.insert(key.clone(), position).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > self.capacity {
            if let Some(old) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
    }

    /// Forget every id (the shard's topics started a new epoch).
    pub(crate) fn clear(&mut self) {
        self.order.clear();
        self.seen.clear();
    }

    /// Every remembered id, oldest first: what a snapshot stores.
    pub(crate) fn entries(&self) -> Vec<WindowEntry> {
        self.order
            .iter()
            .filter_map(|key| {
                let position = *self.seen.get(key)?;
                Some(WindowEntry {
                    topic: key.0.clone(),
                    id: key.1.clone(),
                    position,
                })
            })
            .collect()
    }

    /// Forget every id, then remember `entries` (oldest first), as a
    /// snapshot stored them.
    pub(crate) fn restore(&mut self, entries: &[WindowEntry]) {
        self.clear();
        for e in entries {
            self.insert(&e.topic, &e.id, e.position);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wse_log::Epoch;

    fn at(offset: u64) -> Position {
        Position::new(Epoch(7), offset)
    }

    #[test]
    fn an_id_is_remembered_per_topic_until_it_falls_out_of_the_window() {
        let mut d = Dedup::new(2);
        d.insert("a", "x", at(0));
        d.insert("b", "x", at(5));
        assert_eq!(d.get("a", "x"), Some(at(0)));
        assert_eq!(d.get("b", "x"), Some(at(5)), "ids are scoped by topic");
        d.insert("a", "y", at(1));
        assert_eq!(d.get("a", "x"), None, "the oldest is forgotten");
        assert_eq!(d.get("a", "y"), Some(at(1)));
        let mut off = Dedup::new(0);
        off.insert("a", "x", at(0));
        assert_eq!(off.get("a", "x"), None, "capacity 0 turns it off");
    }

    #[test]
    fn entries_restore_the_same_window_in_the_same_order() {
        let mut d = Dedup::new(2);
        d.insert("a", "x", at(0));
        d.insert("a", "y", at(1));
        let mut back = Dedup::new(2);
        back.restore(&d.entries());
        assert_eq!(back.entries(), d.entries());
        back.insert("a", "z", at(2));
        assert_eq!(back.get("a", "x"), None, "the oldest goes first, as before");
    }
}
