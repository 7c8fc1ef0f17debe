//! `RustSequencer`: a counter plus a bounded window of recently seen ids
//! for deduplication (PYTHON_API.md §3.4).

use std::collections::{HashSet, VecDeque};
use std::time::Instant;

/// Sequence counter and FIFO dedup window.
///
/// `is_duplicate` remembers at most `window_size` ids (at least one): when
/// the window is full the oldest id is forgotten. `cleanup` also forgets
/// ids older than a given age.
#[derive(Debug, Clone)]
pub struct Sequencer {
    /// Last number handed out by `next_seq` (0 before the first call).
    sequence: u64,
    /// Ids in the window, for O(1) lookups.
    seen: HashSet<String>,
    /// The same ids in arrival order with their arrival time, for FIFO and
    /// age-based eviction.
    order: VecDeque<(String, Instant)>,
    /// How many ids the window keeps.
    window_size: usize,
}

impl Sequencer {
    /// `RustSequencer(window_size)`.
    pub fn new(window_size: usize) -> Self {
        Self {
            sequence: 0,
            seen: HashSet::new(),
            order: VecDeque::new(),
            window_size,
        }
    }

    /// `next_seq()`: increments and returns the counter (first value 1).
    pub fn next_seq(&mut self) -> u64 {
        self.sequence = self.sequence.saturating_add(1);
        self.sequence
    }

    /// `get_current_seq()`: the last value returned by `next_seq` (0 if
    /// none).
    pub fn current_seq(&self) -> u64 {
        self.sequence
    }

    /// `is_duplicate(event_id)` with the wall clock.
    pub fn is_duplicate(&mut self, event_id: &str) -> bool {
        self.is_duplicate_at(event_id, Instant::now())
    }

    /// True if `event_id` is in the window; otherwise records it (arrival
    /// time `now`) and returns false.
    pub fn is_duplicate_at(&mut self, event_id: &str, now: Instant) -> bool {
        if self.seen.contains(event_id) {
            return true;
        }
        if self.seen.len() >= self.window_size
            && let Some((oldest, _)) = self.order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(event_id.to_owned());
        self.order.push_back((event_id.to_owned(), now));
        false
    }

    /// `cleanup(max_age_secs)` with the wall clock.
    pub fn cleanup(&mut self, max_age_secs: f64) {
        self.cleanup_at(max_age_secs, Instant::now());
    }

    /// Forgets ids recorded more than `max_age_secs` seconds before `now`
    /// (a negative age forgets everything, NaN nothing).
    pub fn cleanup_at(&mut self, max_age_secs: f64, now: Instant) {
        while let Some((id, at)) = self.order.front() {
            if now.saturating_duration_since(*at).as_secs_f64() > max_age_secs {
                self.seen.remove(id);
                self.order.pop_front();
            } else {
                break;
            }
        }
    }

    /// `seen_count()`: ids currently in the window.
    pub fn seen_count(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn counter_starts_at_one() {
        let mut s = Sequencer::new(10);
        assert_eq!(s.current_seq(), 0);
        assert_eq!(s.next_seq(), 1);
        assert_eq!(s.next_seq(), 2);
        assert_eq!(s.current_seq(), 2);
    }

    #[test]
    fn window_is_fifo() {
        let mut s = Sequencer::new(2);
        assert!(!s.is_duplicate("a"));
        assert!(s.is_duplicate("a"));
        assert!(!s.is_duplicate("b"));
        assert!(!s.is_duplicate("c")); // evicts a
        assert_eq!(s.seen_count(), 2);
        assert!(s.is_duplicate("b"));
        assert!(!s.is_duplicate("a")); // forgotten, recorded again; evicts b
        assert!(!s.is_duplicate("b"));
    }

    #[test]
    fn zero_window_still_remembers_the_last_id() {
        let mut s = Sequencer::new(0);
        assert!(!s.is_duplicate("a"));
        assert!(s.is_duplicate("a"));
        assert!(!s.is_duplicate("b"));
        assert!(!s.is_duplicate("a"));
        assert_eq!(s.seen_count(), 1);
    }

    #[test]
    fn cleanup_forgets_by_age() {
        let t0 = Instant::now();
        let mut s = Sequencer::new(100);
        s.is_duplicate_at("old", t0);
        s.is_duplicate_at("new", t0 + Duration::from_secs(10));
        s.cleanup_at(5.0, t0 + Duration::from_secs(12));
        assert_eq!(s.seen_count(), 1);
        assert!(!s.is_duplicate_at("old", t0 + Duration::from_secs(12)));
        assert!(s.is_duplicate("new"));
        s.cleanup_at(f64::NAN, t0 + Duration::from_secs(1000));
        assert_eq!(s.seen_count(), 2);
        s.cleanup(-1.0);
        assert_eq!(s.seen_count(), 0);
    }
}
