//! `RustPriorityQueue`: a bounded max-priority queue, FIFO within a
//! priority (PYTHON_API.md §3.4).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// One queued message with the keys that order it.
#[derive(Debug)]
struct Entry<T> {
    /// Larger is served first.
    priority: i32,
    /// Insertion counter: smaller (older) is served first among equals.
    seq: u64,
    message: T,
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Entry<T> {}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Entry<T> {
    /// "Greater" pops first from the max-heap: higher priority, then older.
    fn cmp(&self, other: &Self) -> Ordering {
        self.priority
            .cmp(&other.priority)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// A bounded priority queue of `T`.
///
/// `pop` returns the highest priority first and, among equal priorities,
/// the oldest first. Pushing into a full queue is refused.
#[derive(Debug)]
pub struct PriorityQueue<T> {
    /// Max-heap ordered by (priority, age).
    heap: BinaryHeap<Entry<T>>,
    /// Next insertion number; gives FIFO order within a priority.
    next_seq: u64,
    /// Pushes beyond this many queued messages are refused.
    max_size: usize,
}

impl<T> PriorityQueue<T> {
    /// `RustPriorityQueue(max_size)`.
    pub fn new(max_size: usize) -> Self {
        Self {
            // Cap the up-front reservation: a huge max_size must not allocate.
            heap: BinaryHeap::with_capacity(max_size.min(1024)),
            next_seq: 0,
            max_size,
        }
    }

    /// `push(priority, message)`: queues the message, or hands it back in
    /// `Err` when the queue is full (Python: `False`).
    pub fn push(&mut self, priority: i32, message: T) -> Result<(), T> {
        if self.is_full() {
            return Err(message);
        }
        self.next_seq += 1;
        self.heap.push(Entry {
            priority,
            seq: self.next_seq,
            message,
        });
        Ok(())
    }

    /// `pop()`: the highest-priority, oldest message; `None` when empty.
    pub fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|e| e.message)
    }

    /// `drain(max_count)`: up to `max_count` messages in `pop` order.
    pub fn drain(&mut self, max_count: usize) -> Vec<T> {
        let n = max_count.min(self.heap.len());
        (0..n).filter_map(|_| self.pop()).collect()
    }

    /// `len()`.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// `is_full()`: true when a push would be refused.
    pub fn is_full(&self) -> bool {
        self.heap.len() >= self.max_size
    }

    /// The bound given at construction.
    pub fn max_size(&self) -> usize {
        self.max_size
    }

    /// `clear()`: drops every queued message.
    pub fn clear(&mut self) {
        self.heap.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn highest_priority_first_fifo_within_priority() {
        let mut q = PriorityQueue::new(10);
        for (p, m) in [(1, "a"), (5, "b"), (5, "c"), (10, "d"), (1, "e"), (-3, "f")] {
            q.push(p, m).unwrap();
        }
        assert_eq!(q.len(), 6);
        assert_eq!(q.drain(4), vec!["d", "b", "c", "a"]);
        assert_eq!(q.pop(), Some("e"));
        assert_eq!(q.pop(), Some("f"));
        assert_eq!(q.pop(), None);
        assert!(q.is_empty());
    }

    #[test]
    fn full_queue_refuses_and_returns_the_message() {
        let mut q = PriorityQueue::new(2);
        q.push(1, 1).unwrap();
        q.push(1, 2).unwrap();
        assert!(q.is_full());
        assert_eq!(q.push(100, 3), Err(3));
        assert_eq!(q.len(), 2);
        q.clear();
        assert!(!q.is_full());
        assert_eq!(q.max_size(), 2);
    }

    #[test]
    fn zero_capacity_never_accepts() {
        let mut q = PriorityQueue::new(0);
        assert!(q.is_full());
        assert_eq!(q.push(1, "x"), Err("x"));
    }

    #[test]
    fn drain_more_than_queued_returns_everything() {
        let mut q = PriorityQueue::new(usize::MAX);
        q.push(i32::MIN, 1).unwrap();
        q.push(i32::MAX, 2).unwrap();
        assert_eq!(q.drain(100), vec![2, 1]);
        assert!(q.drain(5).is_empty());
    }

    proptest::proptest! {
        #[test]
        fn prop_pop_order_is_a_stable_sort(priorities in proptest::collection::vec(-5i32..5, 0..200)) {
            let mut q = PriorityQueue::new(usize::MAX);
            for (i, p) in priorities.iter().enumerate() {
                q.push(*p, i).unwrap();
            }
            let mut expected: Vec<usize> = (0..priorities.len()).collect();
            expected.sort_by_key(|&i| std::cmp::Reverse(priorities[i]));
            proptest::prop_assert_eq!(q.drain(usize::MAX), expected);
        }
    }
}
