//! `RustPriorityMessageQueue`: five fixed priority levels, batch dequeue,
//! and a drop policy that sacrifices low-priority traffic first
//! (PYTHON_API.md §3.4).
//!
//! Levels are the `EventPriority` values of the Python package:
//! CRITICAL 10, HIGH 8, NORMAL 5, LOW 3, BACKGROUND 1. Any other priority
//! is snapped to the nearest level (ties go to the higher one).

use std::collections::VecDeque;
use std::time::Instant;

use serde::Serialize;
use serde::ser::SerializeMap as _;

/// The priority levels in serving order (highest first).
pub const PRIORITY_LEVELS: [u8; 5] = [10, 8, 5, 3, 1];

/// Levels whose oldest message is dropped, in this order, to make room
/// when the queue is full. HIGH and CRITICAL are never dropped for room.
const DROP_ORDER: [u8; 3] = [1, 3, 5];

/// Default `max_size` of the Python class.
pub const DEFAULT_MAX_SIZE: usize = 1000;

/// Default `batch_size` of the Python class.
pub const DEFAULT_BATCH_SIZE: usize = 10;

/// Default `priority` of `enqueue` (NORMAL).
pub const DEFAULT_PRIORITY: i32 = 5;

/// Snaps any priority to the nearest of 1/3/5/8/10; on a tie the higher
/// level wins (4 → 5, 9 → 10, 2 → 3).
pub fn snap_priority(priority: i32) -> u8 {
    let mut best = PRIORITY_LEVELS[0];
    let mut best_distance = i64::MAX;
    for level in PRIORITY_LEVELS {
        let distance = (i64::from(level) - i64::from(priority)).abs();
        if distance < best_distance {
            best = level;
            best_distance = distance;
        }
    }
    best
}

/// Position of a level in [`PRIORITY_LEVELS`]; only called with snapped
/// levels.
fn slot(level: u8) -> usize {
    PRIORITY_LEVELS
        .iter()
        .position(|&l| l == level)
        .unwrap_or(2)
}

/// One count per priority level; serializes as `{10: n, 8: n, 5: n, 3: n,
/// 1: n}` like the Python dicts `priority_distribution` and
/// `dropped_by_priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PriorityCounts([u64; 5]);

impl PriorityCounts {
    /// The count of one level (0 for a value that is not a level).
    pub fn get(&self, level: u8) -> u64 {
        PRIORITY_LEVELS
            .iter()
            .position(|&l| l == level)
            .map_or(0, |i| self.0[i])
    }

    /// `(level, count)` pairs, highest level first.
    pub fn iter(&self) -> impl Iterator<Item = (u8, u64)> + '_ {
        PRIORITY_LEVELS.iter().copied().zip(self.0.iter().copied())
    }

    /// Sum over the levels.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }
}

impl Serialize for PriorityCounts {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(PRIORITY_LEVELS.len()))?;
        for (level, count) in self.iter() {
            map.serialize_entry(&level, &count)?;
        }
        map.end()
    }
}

/// Queue depth per level; serializes with the Python key names
/// `{"priority_10_depth": n, ...}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueDepths(pub PriorityCounts);

impl Serialize for QueueDepths {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(PRIORITY_LEVELS.len()))?;
        for (level, count) in self.0.iter() {
            map.serialize_entry(&format!("priority_{level}_depth"), &count)?;
        }
        map.end()
    }
}

/// `get_stats()` of the Python class; field names are the dict keys.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageQueueStats {
    /// Messages queued now.
    pub size: usize,
    /// `max_size`.
    pub capacity: usize,
    /// `size / capacity * 100` (0.0 for a zero capacity).
    pub utilization_percent: f64,
    /// Messages queued per level.
    pub priority_distribution: PriorityCounts,
    /// The same counts under the `priority_<level>_depth` keys.
    pub priority_queue_depths: QueueDepths,
    /// Messages dropped per level since creation (victims of the drop
    /// policy and rejected newcomers; `clear()` does not count).
    pub dropped_by_priority: PriorityCounts,
    /// Sum of `dropped_by_priority`.
    pub total_dropped: u64,
    /// True above 80% utilization.
    pub backpressure: bool,
    /// Seconds since the oldest queued message was enqueued; `None` when
    /// empty.
    pub oldest_message_age: Option<f64>,
    /// Always 0.0 (upstream placeholder, kept for the dict shape).
    pub processing_rate: f64,
}

/// A queued message and when it arrived.
#[derive(Debug)]
struct Queued<T> {
    enqueued_at: Instant,
    message: T,
}

/// A bounded five-level priority queue of `T` with batch dequeue.
#[derive(Debug)]
pub struct PriorityMessageQueue<T> {
    /// One FIFO per level, indexed like [`PRIORITY_LEVELS`].
    queues: [VecDeque<Queued<T>>; 5],
    /// Total capacity across levels.
    max_size: usize,
    /// Most messages one `dequeue_batch` returns.
    batch_size: usize,
    /// Drop counters per level, indexed like [`PRIORITY_LEVELS`].
    dropped: [u64; 5],
}

impl<T> Default for PriorityMessageQueue<T> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_SIZE, DEFAULT_BATCH_SIZE)
    }
}

impl<T> PriorityMessageQueue<T> {
    /// `RustPriorityMessageQueue(max_size=1000, batch_size=10)`.
    pub fn new(max_size: usize, batch_size: usize) -> Self {
        Self {
            queues: Default::default(),
            max_size,
            batch_size,
            dropped: [0; 5],
        }
    }

    /// `enqueue(message, priority=5)` with the wall clock.
    pub fn enqueue(&mut self, message: T, priority: i32) -> Result<(), T> {
        self.enqueue_at(message, priority, Instant::now())
    }

    /// Queues `message` at the snapped `priority`.
    ///
    /// When the queue is full, the oldest BACKGROUND message is dropped to
    /// make room, else the oldest LOW, else the oldest NORMAL; if there is
    /// none of those, the newcomer is refused (handed back in `Err`, Python
    /// `False`) and counted as dropped at its own level. Note that a
    /// BACKGROUND newcomer may thus displace a NORMAL message, as upstream.
    pub fn enqueue_at(&mut self, message: T, priority: i32, now: Instant) -> Result<(), T> {
        let level = snap_priority(priority);
        if self.size() >= self.max_size {
            let victim = DROP_ORDER
                .iter()
                .map(|&l| slot(l))
                .find(|&i| !self.queues[i].is_empty());
            match victim {
                Some(i) => {
                    self.queues[i].pop_front();
                    self.dropped[i] += 1;
                }
                None => {
                    self.dropped[slot(level)] += 1;
                    return Err(message);
                }
            }
        }
        self.queues[slot(level)].push_back(Queued {
            enqueued_at: now,
            message,
        });
        Ok(())
    }

    /// `dequeue_batch()`: up to `batch_size` `(priority, message)` pairs,
    /// highest level first, FIFO within a level.
    pub fn dequeue_batch(&mut self) -> Vec<(u8, T)> {
        let mut batch = Vec::with_capacity(self.batch_size.min(self.size()));
        for (i, level) in PRIORITY_LEVELS.iter().enumerate() {
            while batch.len() < self.batch_size {
                let Some(q) = self.queues[i].pop_front() else {
                    break;
                };
                batch.push((*level, q.message));
            }
        }
        batch
    }

    /// The `size` property: messages queued across all levels.
    pub fn size(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queues.iter().all(VecDeque::is_empty)
    }

    /// `max_size`.
    pub fn capacity(&self) -> usize {
        self.max_size
    }

    /// `batch_size`.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// `clear()`: drops every queued message (drop counters are kept).
    pub fn clear(&mut self) {
        self.queues.iter_mut().for_each(VecDeque::clear);
    }

    /// `get_stats()` with the wall clock.
    pub fn stats(&self) -> MessageQueueStats {
        self.stats_at(Instant::now())
    }

    /// `get_stats()` with ages measured at `now`.
    pub fn stats_at(&self, now: Instant) -> MessageQueueStats {
        let mut depths = [0u64; 5];
        for (d, q) in depths.iter_mut().zip(&self.queues) {
            *d = q.len() as u64;
        }
        let size = self.size();
        let dropped = PriorityCounts(self.dropped);
        let oldest = self
            .queues
            .iter()
            .filter_map(|q| q.front().map(|e| e.enqueued_at))
            .min();
        MessageQueueStats {
            size,
            capacity: self.max_size,
            utilization_percent: if self.max_size > 0 {
                size as f64 / self.max_size as f64 * 100.0
            } else {
                0.0
            },
            priority_distribution: PriorityCounts(depths),
            priority_queue_depths: QueueDepths(PriorityCounts(depths)),
            dropped_by_priority: dropped,
            total_dropped: dropped.total(),
            backpressure: size as f64 > self.max_size as f64 * 0.8,
            oldest_message_age: oldest.map(|t| now.saturating_duration_since(t).as_secs_f64()),
            processing_rate: 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn priorities_snap_to_the_nearest_level() {
        let cases = [
            (i32::MIN, 1),
            (-5, 1),
            (0, 1),
            (1, 1),
            (2, 3),
            (3, 3),
            (4, 5),
            (5, 5),
            (6, 5),
            (7, 8),
            (8, 8),
            (9, 10),
            (10, 10),
            (11, 10),
            (i32::MAX, 10),
        ];
        for (input, level) in cases {
            assert_eq!(snap_priority(input), level, "{input}");
        }
    }

    #[test]
    fn batches_come_out_by_priority_then_fifo() {
        let mut q = PriorityMessageQueue::new(100, 4);
        for (m, p) in [("a", 1), ("b", 5), ("c", 10), ("d", 5), ("e", 7), ("f", 3)] {
            q.enqueue(m, p).unwrap();
        }
        assert_eq!(q.size(), 6);
        assert_eq!(
            q.dequeue_batch(),
            vec![(10, "c"), (8, "e"), (5, "b"), (5, "d")]
        );
        assert_eq!(q.dequeue_batch(), vec![(3, "f"), (1, "a")]);
        assert!(q.dequeue_batch().is_empty());
        assert!(q.is_empty());
    }

    #[test]
    fn full_queue_drops_oldest_of_the_lowest_level() {
        let mut q = PriorityMessageQueue::new(3, 10);
        q.enqueue("n1", 5).unwrap();
        q.enqueue("b1", 1).unwrap();
        q.enqueue("b2", 1).unwrap();
        q.enqueue("h1", 8).unwrap(); // drops b1
        q.enqueue("l1", 3).unwrap(); // drops b2
        q.enqueue("c1", 10).unwrap(); // drops l1
        q.enqueue("b3", 1).unwrap(); // drops n1: a BACKGROUND newcomer displaces NORMAL
        let s = q.stats();
        assert_eq!(s.dropped_by_priority.get(1), 2);
        assert_eq!(s.dropped_by_priority.get(3), 1);
        assert_eq!(s.dropped_by_priority.get(5), 1);
        assert_eq!(s.total_dropped, 4);
        assert_eq!(q.dequeue_batch(), vec![(10, "c1"), (8, "h1"), (1, "b3")]);
    }

    #[test]
    fn full_of_high_priority_refuses_the_newcomer() {
        let mut q = PriorityMessageQueue::new(2, 10);
        q.enqueue("c", 10).unwrap();
        q.enqueue("h", 8).unwrap();
        assert_eq!(q.enqueue("x", 10), Err("x"));
        assert_eq!(q.enqueue("y", 1), Err("y"));
        let s = q.stats();
        assert_eq!(s.dropped_by_priority.get(10), 1);
        assert_eq!(s.dropped_by_priority.get(1), 1);
        assert_eq!(s.size, 2);
    }

    #[test]
    fn zero_capacity_refuses_everything() {
        let mut q = PriorityMessageQueue::new(0, 10);
        assert_eq!(q.enqueue(1, 5), Err(1));
        let s = q.stats();
        assert_eq!(s.utilization_percent, 0.0);
        assert!(!s.backpressure);
        assert_eq!(s.total_dropped, 1);
    }

    #[test]
    fn stats_shape_and_values() {
        let t0 = Instant::now();
        let mut q = PriorityMessageQueue::new(10, 10);
        for i in 0..9 {
            q.enqueue_at(
                i,
                if i % 2 == 0 { 10 } else { 3 },
                t0 + Duration::from_secs(i as u64),
            )
            .unwrap();
        }
        let s = q.stats_at(t0 + Duration::from_secs(20));
        assert_eq!(s.size, 9);
        assert_eq!(s.capacity, 10);
        assert!((s.utilization_percent - 90.0).abs() < 1e-9);
        assert!(s.backpressure);
        assert_eq!(s.priority_distribution.get(10), 5);
        assert_eq!(s.priority_distribution.get(3), 4);
        assert_eq!(s.priority_queue_depths.0, s.priority_distribution);
        assert_eq!(s.oldest_message_age, Some(20.0));
        assert_eq!(s.processing_rate, 0.0);

        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["priority_queue_depths"],
            serde_json::json!({"priority_10_depth": 5, "priority_8_depth": 0,
                "priority_5_depth": 0, "priority_3_depth": 4, "priority_1_depth": 0})
        );
        assert_eq!(json["priority_distribution"]["10"], 5);

        q.dequeue_batch();
        assert_eq!(q.stats_at(t0).oldest_message_age, None);
        q.enqueue(1, 5).unwrap();
        q.clear();
        assert_eq!(q.size(), 0);
        assert_eq!(q.capacity(), 10);
        assert_eq!(q.batch_size(), 10);
    }

    #[test]
    fn default_matches_the_python_defaults() {
        let q: PriorityMessageQueue<()> = PriorityMessageQueue::default();
        assert_eq!(
            (q.capacity(), q.batch_size()),
            (DEFAULT_MAX_SIZE, DEFAULT_BATCH_SIZE)
        );
        assert_eq!(snap_priority(DEFAULT_PRIORITY), 5);
    }
}
