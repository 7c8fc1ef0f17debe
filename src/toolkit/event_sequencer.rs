//! `RustEventSequencer`: deduplication plus per-topic in-order delivery
//! with a bounded reorder buffer (PYTHON_API.md §3.4).
//!
//! Each topic expects consecutive sequence numbers. An event that arrives
//! early is buffered (up to `max_out_of_order` ahead) and released when the
//! gap fills; one that jumps further ahead resets the topic; a late one is
//! dropped.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use serde::Serialize;

/// Default `window_size` of the Python class.
pub const DEFAULT_WINDOW_SIZE: usize = 10_000;

/// Default `max_out_of_order` of the Python class.
pub const DEFAULT_MAX_OUT_OF_ORDER: u64 = 100;

/// Buffered events older than this are discarded by `cleanup`.
pub const BUFFERED_EVENT_TTL: Duration = Duration::from_secs(300);

/// An early event waiting for its predecessors.
#[derive(Debug)]
struct Buffered<T> {
    received_at: Instant,
    event: T,
}

/// Ordering state of one topic.
#[derive(Debug)]
struct TopicState<T> {
    /// The sequence number that is delivered next.
    expected: u64,
    /// Early events by sequence number (all greater than `expected`).
    buffer: BTreeMap<u64, Buffered<T>>,
}

/// `get_buffer_stats()["topics"][topic]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicBufferStats {
    /// Next sequence number the topic will deliver.
    pub expected_sequence: u64,
    /// Events waiting in the buffer.
    pub buffered_count: usize,
    /// Their sequence numbers, ascending.
    pub buffered_sequences: Vec<u64>,
    /// Distance from `expected_sequence` to the first buffered event.
    pub gap_size: u64,
    /// Age in seconds of the oldest buffered event.
    pub oldest_buffered_age: f64,
}

/// `get_buffer_stats()`; only topics with buffered events are listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BufferStats {
    /// Topics being tracked (buffered or not).
    pub total_topics: usize,
    /// Events buffered across all topics.
    pub total_buffered: usize,
    /// Per-topic details of topics that have buffered events.
    pub topics: BTreeMap<String, TopicBufferStats>,
}

/// One run of missing sequence numbers in a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct SequenceGap {
    /// First missing number.
    pub start: u64,
    /// Last missing number.
    pub end: u64,
    /// `end - start + 1`.
    pub size: u64,
}

/// `get_sequence_stats()["topics"][topic]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TopicSequenceStats {
    /// Next sequence number the topic will deliver.
    pub expected: u64,
    /// Events waiting in the buffer.
    pub buffered: usize,
    /// Missing runs among the buffered events. Upstream's rule is kept:
    /// the first run starts at `expected + 1`, not `expected` (with
    /// `expected` 2 and 5 buffered the gap is 3..=4, and with 3 buffered
    /// there is none).
    pub gaps: Vec<SequenceGap>,
    /// Sequence numbers of the buffered events, ascending.
    pub buffered_sequences: Vec<u64>,
}

/// `get_sequence_stats()`; every tracked topic is listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SequenceStats {
    /// Last value returned by `next_seq`.
    pub current_sequence: u64,
    /// `is_duplicate` calls that found a duplicate.
    pub duplicate_count: u64,
    /// Events that arrived ahead of the expected sequence.
    pub out_of_order_count: u64,
    /// Events lost: late arrivals, numbers skipped by a reset, buffered
    /// events expired by `cleanup`.
    pub dropped_count: u64,
    /// Per-topic ordering details.
    pub topics: BTreeMap<String, TopicSequenceStats>,
    /// Topics being tracked.
    pub total_topics: usize,
    /// Events buffered across all topics.
    pub total_buffered: usize,
    /// Ids in the dedup window.
    pub seen_ids_count: usize,
}

/// Dedup window plus per-topic reordering of events of type `T`.
#[derive(Debug)]
pub struct EventSequencer<T> {
    /// Last number handed out by `next_seq`.
    sequence: u64,
    /// Ids in the dedup window.
    seen: HashSet<String>,
    /// The same ids in arrival order, for FIFO eviction.
    seen_order: VecDeque<String>,
    /// How many ids the dedup window keeps.
    window_size: usize,
    /// How far ahead an event may be and still be buffered.
    max_out_of_order: u64,
    /// Ordering state per topic.
    topics: HashMap<String, TopicState<T>>,
    /// Counters behind `get_sequence_stats`.
    duplicate_count: u64,
    out_of_order_count: u64,
    dropped_count: u64,
}

impl<T> Default for EventSequencer<T> {
    fn default() -> Self {
        Self::new(DEFAULT_WINDOW_SIZE, DEFAULT_MAX_OUT_OF_ORDER)
    }
}

impl<T> EventSequencer<T> {
    /// `RustEventSequencer(window_size=10000, max_out_of_order=100)`.
    pub fn new(window_size: usize, max_out_of_order: u64) -> Self {
        Self {
            sequence: 0,
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            window_size,
            max_out_of_order,
            topics: HashMap::new(),
            duplicate_count: 0,
            out_of_order_count: 0,
            dropped_count: 0,
        }
    }

    /// `next_seq()`: increments and returns the global counter (first 1).
    pub fn next_seq(&mut self) -> u64 {
        self.sequence = self.sequence.saturating_add(1);
        self.sequence
    }

    /// `get_current_sequence()`.
    pub fn current_sequence(&self) -> u64 {
        self.sequence
    }

    /// `is_duplicate(event_id)`: true (and counted) if the id is in the
    /// window; otherwise the id is recorded, evicting the oldest when the
    /// window is full.
    pub fn is_duplicate(&mut self, event_id: &str) -> bool {
        if self.seen.contains(event_id) {
            self.duplicate_count += 1;
            return true;
        }
        if self.seen_order.len() >= self.window_size
            && let Some(oldest) = self.seen_order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(event_id.to_owned());
        self.seen_order.push_back(event_id.to_owned());
        false
    }

    /// `process_sequenced_event(topic, sequence, event)` with the wall clock.
    pub fn process_sequenced_event(
        &mut self,
        topic: &str,
        sequence: u64,
        event: T,
    ) -> Option<Vec<T>> {
        self.process_sequenced_event_at(topic, sequence, event, Instant::now())
    }

    /// Feeds one event of `topic`; returns the events now deliverable in
    /// order, or `None` when the event was buffered or dropped.
    ///
    /// - first event of a topic: delivered; the topic then expects
    ///   `sequence + 1`;
    /// - `sequence == expected`: delivered with every buffered successor;
    /// - ahead by at most `max_out_of_order`: buffered (replacing an event
    ///   already buffered under that number);
    /// - ahead by more: the skipped numbers count as dropped, the buffer is
    ///   discarded, the event is delivered and the topic restarts after it;
    /// - behind: dropped.
    pub fn process_sequenced_event_at(
        &mut self,
        topic: &str,
        sequence: u64,
        event: T,
        now: Instant,
    ) -> Option<Vec<T>> {
        let Some(state) = self.topics.get_mut(topic) else {
            self.topics.insert(
                topic.to_owned(),
                TopicState {
                    expected: sequence.saturating_add(1),
                    buffer: BTreeMap::new(),
                },
            );
            return Some(vec![event]);
        };

        if sequence == state.expected {
            let mut delivered = vec![event];
            let mut next = sequence.saturating_add(1);
            while let Some(buffered) = state.buffer.remove(&next) {
                delivered.push(buffered.event);
                next = next.saturating_add(1);
            }
            state.expected = next;
            Some(delivered)
        } else if sequence > state.expected {
            self.out_of_order_count += 1;
            let ahead = sequence - state.expected;
            if ahead > self.max_out_of_order {
                self.dropped_count = self.dropped_count.saturating_add(ahead - 1);
                state.expected = sequence.saturating_add(1);
                state.buffer.clear();
                Some(vec![event])
            } else {
                state.buffer.insert(
                    sequence,
                    Buffered {
                        received_at: now,
                        event,
                    },
                );
                None
            }
        } else {
            self.dropped_count += 1;
            None
        }
    }

    /// `reset_sequence(topic=None)`: forgets one topic, or all of them.
    pub fn reset_sequence(&mut self, topic: Option<&str>) {
        match topic {
            Some(t) => {
                self.topics.remove(t);
            }
            None => self.topics.clear(),
        }
    }

    /// `cleanup()` with the wall clock.
    pub fn cleanup(&mut self) {
        self.cleanup_at(Instant::now());
    }

    /// Discards buffered events older than [`BUFFERED_EVENT_TTL`] (counted
    /// as dropped), then forgets every topic whose buffer is empty, so
    /// those topics start afresh with their next event (upstream
    /// behaviour). Also trims the dedup window if it grew past 1.5 times
    /// its size.
    pub fn cleanup_at(&mut self, now: Instant) {
        let mut expired = 0u64;
        self.topics.retain(|_, state| {
            state.buffer.retain(|_, b| {
                let keep = now.saturating_duration_since(b.received_at) <= BUFFERED_EVENT_TTL;
                expired += u64::from(!keep);
                keep
            });
            !state.buffer.is_empty()
        });
        self.dropped_count += expired;

        let threshold = (self.window_size as f64 * 1.5) as usize;
        if self.seen.len() > threshold {
            let excess = self.seen_order.len().saturating_sub(self.window_size);
            for id in self.seen_order.drain(..excess) {
                self.seen.remove(&id);
            }
        }
    }

    fn total_buffered(&self) -> usize {
        self.topics.values().map(|s| s.buffer.len()).sum()
    }

    /// `get_buffer_stats()` with the wall clock.
    pub fn buffer_stats(&self) -> BufferStats {
        self.buffer_stats_at(Instant::now())
    }

    /// `get_buffer_stats()` with ages measured at `now`.
    pub fn buffer_stats_at(&self, now: Instant) -> BufferStats {
        let topics = self
            .topics
            .iter()
            .filter_map(|(name, state)| {
                let (&first, _) = state.buffer.first_key_value()?;
                let oldest = state
                    .buffer
                    .values()
                    .map(|b| now.saturating_duration_since(b.received_at).as_secs_f64())
                    .fold(0.0, f64::max);
                let stats = TopicBufferStats {
                    expected_sequence: state.expected,
                    buffered_count: state.buffer.len(),
                    buffered_sequences: state.buffer.keys().copied().collect(),
                    gap_size: first.saturating_sub(state.expected),
                    oldest_buffered_age: oldest,
                };
                Some((name.clone(), stats))
            })
            .collect();
        BufferStats {
            total_topics: self.topics.len(),
            total_buffered: self.total_buffered(),
            topics,
        }
    }

    /// `get_sequence_stats()`.
    pub fn sequence_stats(&self) -> SequenceStats {
        let topics = self
            .topics
            .iter()
            .map(|(name, state)| {
                let mut gaps = Vec::new();
                let mut last = state.expected;
                for &seq in state.buffer.keys() {
                    if seq.saturating_sub(last) > 1 {
                        gaps.push(SequenceGap {
                            start: last + 1,
                            end: seq - 1,
                            size: seq - last - 1,
                        });
                    }
                    last = seq;
                }
                let stats = TopicSequenceStats {
                    expected: state.expected,
                    buffered: state.buffer.len(),
                    gaps,
                    buffered_sequences: state.buffer.keys().copied().collect(),
                };
                (name.clone(), stats)
            })
            .collect();
        SequenceStats {
            current_sequence: self.sequence,
            duplicate_count: self.duplicate_count,
            out_of_order_count: self.out_of_order_count,
            dropped_count: self.dropped_count,
            topics,
            total_topics: self.topics.len(),
            total_buffered: self.total_buffered(),
            seen_ids_count: self.seen.len(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_event_then_in_order() {
        let mut s = EventSequencer::new(10, 5);
        assert_eq!(s.process_sequenced_event("t", 7, "a"), Some(vec!["a"]));
        assert_eq!(s.process_sequenced_event("t", 8, "b"), Some(vec!["b"]));
        assert_eq!(s.sequence_stats().topics["t"].expected, 9);
    }

    #[test]
    fn early_events_wait_for_the_gap_to_fill() {
        let mut s = EventSequencer::new(10, 5);
        s.process_sequenced_event("t", 1, "e1");
        assert_eq!(s.process_sequenced_event("t", 4, "e4"), None);
        assert_eq!(s.process_sequenced_event("t", 3, "e3"), None);
        assert_eq!(s.process_sequenced_event("t", 6, "e6"), None);
        let stats = s.sequence_stats();
        let t = &stats.topics["t"];
        assert_eq!(t.buffered_sequences, vec![3, 4, 6]);
        assert_eq!(
            t.gaps,
            vec![SequenceGap {
                start: 5,
                end: 5,
                size: 1
            }]
        );
        assert_eq!(stats.out_of_order_count, 3);
        assert_eq!(
            s.process_sequenced_event("t", 2, "e2"),
            Some(vec!["e2", "e3", "e4"])
        );
        assert_eq!(s.sequence_stats().topics["t"].expected, 5);
        assert_eq!(
            s.process_sequenced_event("t", 5, "e5"),
            Some(vec!["e5", "e6"])
        );
        assert_eq!(s.sequence_stats().total_buffered, 0);
    }

    #[test]
    fn sequence_gaps_follow_upstream_rules() {
        let mut s = EventSequencer::new(10, 100);
        s.process_sequenced_event("t", 1, ()); // expects 2
        s.process_sequenced_event("t", 5, ());
        s.process_sequenced_event("t", 9, ());
        let gaps = &s.sequence_stats().topics["t"].gaps;
        assert_eq!(
            gaps,
            &vec![
                SequenceGap {
                    start: 3,
                    end: 4,
                    size: 2
                },
                SequenceGap {
                    start: 6,
                    end: 8,
                    size: 3
                },
            ]
        );
    }

    #[test]
    fn far_jump_resets_the_topic() {
        let mut s = EventSequencer::new(10, 5);
        s.process_sequenced_event("t", 1, 1);
        assert_eq!(s.process_sequenced_event("t", 4, 4), None);
        assert_eq!(s.process_sequenced_event("t", 20, 20), Some(vec![20]));
        let stats = s.sequence_stats();
        assert_eq!(stats.dropped_count, 17); // 20 - 2 - 1
        assert_eq!(stats.topics["t"].expected, 21);
        assert_eq!(stats.total_buffered, 0);
        // Exactly max_out_of_order ahead is still buffered.
        assert_eq!(s.process_sequenced_event("t", 26, 26), None);
    }

    #[test]
    fn late_events_are_dropped() {
        let mut s = EventSequencer::new(10, 5);
        s.process_sequenced_event("t", 10, ());
        assert_eq!(s.process_sequenced_event("t", 10, ()), None);
        assert_eq!(s.process_sequenced_event("t", 3, ()), None);
        assert_eq!(s.sequence_stats().dropped_count, 2);
    }

    #[test]
    fn topics_are_independent_and_resettable() {
        let mut s = EventSequencer::new(10, 5);
        s.process_sequenced_event("a", 1, ());
        s.process_sequenced_event("b", 100, ());
        s.process_sequenced_event("a", 3, ());
        assert_eq!(s.sequence_stats().total_topics, 2);
        s.reset_sequence(Some("a"));
        assert_eq!(s.process_sequenced_event("a", 50, ()), Some(vec![()]));
        s.reset_sequence(None);
        assert_eq!(s.sequence_stats().total_topics, 0);
    }

    #[test]
    fn buffer_stats_list_only_buffering_topics() {
        let t0 = Instant::now();
        let mut s = EventSequencer::new(10, 50);
        s.process_sequenced_event_at("quiet", 1, (), t0);
        s.process_sequenced_event_at("busy", 1, (), t0);
        s.process_sequenced_event_at("busy", 5, (), t0);
        s.process_sequenced_event_at("busy", 4, (), t0 + Duration::from_secs(2));
        let b = s.buffer_stats_at(t0 + Duration::from_secs(10));
        assert_eq!(b.total_topics, 2);
        assert_eq!(b.total_buffered, 2);
        assert_eq!(b.topics.len(), 1);
        let busy = &b.topics["busy"];
        assert_eq!(busy.expected_sequence, 2);
        assert_eq!(busy.buffered_count, 2);
        assert_eq!(busy.buffered_sequences, vec![4, 5]);
        assert_eq!(busy.gap_size, 2);
        assert_eq!(busy.oldest_buffered_age, 10.0);
    }

    #[test]
    fn cleanup_expires_old_buffers_and_forgets_idle_topics() {
        let t0 = Instant::now();
        let mut s = EventSequencer::new(10, 50);
        s.process_sequenced_event_at("idle", 1, (), t0);
        s.process_sequenced_event_at("t", 1, (), t0);
        s.process_sequenced_event_at("t", 3, (), t0);
        s.process_sequenced_event_at("t", 5, (), t0 + Duration::from_secs(200));
        s.cleanup_at(t0 + Duration::from_secs(301));
        let stats = s.sequence_stats();
        assert_eq!(stats.dropped_count, 1);
        assert_eq!(stats.topics["t"].buffered_sequences, vec![5]);
        assert!(!stats.topics.contains_key("idle"));
        // "idle" starts afresh: any number is a first event again.
        assert_eq!(s.process_sequenced_event("idle", 99, ()), Some(vec![()]));
    }

    #[test]
    fn dedup_window_counts_duplicates() {
        let mut s: EventSequencer<()> = EventSequencer::new(2, 5);
        assert!(!s.is_duplicate("a"));
        assert!(s.is_duplicate("a"));
        assert!(!s.is_duplicate("b"));
        assert!(!s.is_duplicate("c"));
        assert!(!s.is_duplicate("a"));
        let stats = s.sequence_stats();
        assert_eq!(stats.duplicate_count, 1);
        assert_eq!(stats.seen_ids_count, 2);
        assert_eq!(s.next_seq(), 1);
        assert_eq!(s.current_sequence(), 1);
    }

    #[test]
    fn extreme_sequence_numbers_do_not_overflow() {
        let mut s = EventSequencer::new(10, u64::MAX);
        assert!(s.process_sequenced_event("t", u64::MAX, ()).is_some());
        assert!(s.process_sequenced_event("t", u64::MAX, ()).is_some());
        let mut s = EventSequencer::new(10, 5);
        s.process_sequenced_event("t", 0, ());
        assert!(s.process_sequenced_event("t", u64::MAX, ()).is_some());
        let _ = s.sequence_stats();
        let _ = s.buffer_stats();
    }

    #[test]
    fn stats_serialize_with_python_keys() {
        let mut s = EventSequencer::new(10, 5);
        s.process_sequenced_event("t", 1, ());
        s.process_sequenced_event("t", 4, ());
        let v = serde_json::to_value(s.sequence_stats()).unwrap();
        assert_eq!(
            v["topics"]["t"]["gaps"][0],
            serde_json::json!({"start": 3, "end": 3, "size": 1})
        );
        for key in [
            "current_sequence",
            "duplicate_count",
            "out_of_order_count",
            "dropped_count",
            "total_topics",
            "total_buffered",
            "seen_ids_count",
        ] {
            assert!(v.get(key).is_some(), "{key}");
        }
        let b = serde_json::to_value(s.buffer_stats()).unwrap();
        assert_eq!(b["topics"]["t"]["gap_size"], 2);
    }
}
