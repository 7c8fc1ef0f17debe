//! What the `send_event` pipeline remembers between calls: the recent
//! (connection, id) pairs it sent, so a retried event is not sent twice,
//! and the sequence numbers it stamps.

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::conn::ConnId;

/// Pairs remembered for deduplication.
const DEDUP_WINDOW: usize = 50_000;

/// The `send_event` pipeline's memory.
pub(crate) struct SendLedger {
    dedup: Mutex<DedupWindow>,
    seq: AtomicU64,
}

impl SendLedger {
    /// Nothing sent yet; sequence numbers from 0.
    pub(crate) fn new() -> Self {
        Self {
            dedup: Mutex::new(DedupWindow::new(DEDUP_WINDOW)),
            seq: AtomicU64::new(0),
        }
    }

    /// Record that `id` goes to `conn`; false when it recently did.
    pub(crate) fn first_time(&self, conn: ConnId, id: &str) -> bool {
        self.dedup.lock().insert(conn, id)
    }

    /// The next sequence number.
    pub(crate) fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }
}

/// The last `capacity` (connection, id) pairs sent.
struct DedupWindow {
    seen: HashSet<(ConnId, String)>,
    order: VecDeque<(ConnId, String)>,
    capacity: usize,
}

impl DedupWindow {
    fn new(capacity: usize) -> Self {
        Self {
            seen: HashSet::new(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Record the pair; false when it was already in the window.
    fn insert(&mut self, conn: ConnId, id: &str) -> bool {
        let key = (conn, id.to_owned());
        if self.seen.contains(&key) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_window_forgets_the_oldest_pairs() {
        let mut w = DedupWindow::new(2);
        assert!(w.insert(ConnId(1), "a"));
        assert!(!w.insert(ConnId(1), "a"));
        assert!(w.insert(ConnId(2), "a"));
        assert!(w.insert(ConnId(1), "b"));
        assert!(w.insert(ConnId(1), "a"), "the oldest pair left the window");
    }

    #[test]
    fn sequence_numbers_count_from_zero() {
        let l = SendLedger::new();
        assert_eq!((l.next_seq(), l.next_seq()), (0, 1));
        assert!(l.first_time(ConnId(7), "x"));
        assert!(!l.first_time(ConnId(7), "x"));
        assert!(l.first_time(ConnId(8), "x"), "per connection");
    }
}
