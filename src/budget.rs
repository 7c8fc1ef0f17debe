//! The memory budget of the connections' queues: one count, for the whole
//! server, of the bytes that wait for clients (a connection's own frames
//! and what was gathered for its socket but not written) and of the read
//! buffers holding partial messages.
//!
//! Why: each connection's queue is bounded (`max_outbound_bytes`), but
//! ten thousand clients that never read, each filling its queue with
//! replies, would hold ten thousand times that. With the budget, once the
//! count reaches `queue_memory_budget` a connection that already holds
//! more than [`FLOOR`] gets nothing more queued (the frame is refused as
//! for a full queue: the slow-consumer policy applies) and a read buffer
//! may not grow past [`FLOOR`] (reading from that client pauses until there
//! is room). Every
//! connection keeps its first [`FLOOR`] bytes whatever the count, so a
//! client that reads its replies is never starved by the others; memory
//! stays under the budget plus [`FLOOR`] per connection.
//!
//! Broadcast frames are not counted: they are shared by every subscriber
//! (a slice of the topic's ring), bounded by the ring's size.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What every connection may hold whatever the budget's count.
pub(crate) const FLOOR: usize = 16 * 1024;

/// The count and its limit.
#[derive(Debug, Default)]
pub(crate) struct MemoryBudget {
    /// Bytes at most (0: no limit; the count is still kept, for the
    /// metric).
    limit: usize,
    used: AtomicUsize,
}

impl MemoryBudget {
    /// A budget of `limit` bytes (0: unlimited).
    pub(crate) fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicUsize::new(0),
        })
    }

    /// No limit (tests, and a server configured without one).
    #[cfg(test)]
    pub(crate) fn unlimited() -> Arc<Self> {
        Self::new(0)
    }

    /// Bytes counted now.
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether a connection holding `held` bytes may add `n`: yes within
    /// its floor, else if the count has room. Counted when yes.
    pub(crate) fn admit(&self, held: usize, n: usize) -> bool {
        if self.limit == 0 || held + n <= FLOOR {
            self.charge(n);
            return true;
        }
        let mut used = self.used.load(Ordering::Relaxed);
        loop {
            if used + n > self.limit {
                return false;
            }
            match self.used.compare_exchange_weak(
                used,
                used + n,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => used = now,
            }
        }
    }

    /// Count `n` bytes that are held whatever the count (a pong replacing
    /// a smaller one, frames sealed again, a log read's frames).
    pub(crate) fn charge(&self, n: usize) {
        self.used.fetch_add(n, Ordering::Relaxed);
    }

    /// `n` counted bytes were written or dropped.
    pub(crate) fn release(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }
}

/// Bytes one holder (a connection's queues, a read buffer) has counted;
/// released when it is dropped.
#[derive(Debug)]
pub(crate) struct Held {
    budget: Arc<MemoryBudget>,
    bytes: AtomicUsize,
}

impl Held {
    /// Nothing held yet, against `budget`.
    pub(crate) fn new(budget: Arc<MemoryBudget>) -> Self {
        Self {
            budget,
            bytes: AtomicUsize::new(0),
        }
    }

    /// Bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Add `n` bytes if the budget admits them (see
    /// [`MemoryBudget::admit`]).
    pub(crate) fn admit(&self, n: usize) -> bool {
        let ok = self.budget.admit(self.bytes(), n);
        if ok {
            self.bytes.fetch_add(n, Ordering::Relaxed);
        }
        ok
    }

    /// Add `n` bytes whatever the count.
    pub(crate) fn charge(&self, n: usize) {
        self.budget.charge(n);
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }

    /// Whether `n` more bytes would be admitted now (nothing counted).
    pub(crate) fn has_room(&self, n: usize) -> bool {
        let held = self.bytes();
        self.budget.limit == 0 || held + n <= FLOOR || self.budget.used() + n <= self.budget.limit
    }

    /// Give back up to `n` bytes; returns how many were given back.
    pub(crate) fn release(&self, n: usize) -> usize {
        let mut held = self.bytes();
        if held == 0 || n == 0 {
            // The common case: a client that reads holds nothing counted.
            return 0;
        }
        loop {
            let r = n.min(held);
            match self.bytes.compare_exchange_weak(
                held,
                held - r,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => {
                    self.budget.release(r);
                    return r;
                }
                Err(now) => held = now,
            }
        }
    }

    /// Hold exactly `n` bytes (charging or releasing the difference).
    pub(crate) fn set(&self, n: usize) {
        let held = self.bytes();
        if n > held {
            self.charge(n - held);
        } else {
            self.release(held - n);
        }
    }

    /// Bytes held as `old` became `new` (a frame replaced, frames sealed):
    /// charge or give back the difference, whatever the count.
    pub(crate) fn replace(&self, old: usize, new: usize) {
        if new > old {
            self.charge(new - old);
        } else {
            self.release(old - new);
        }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.release(*self.bytes.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_limit_only_the_floor_is_admitted_and_drops_give_it_back() {
        let budget = MemoryBudget::new(100 * 1024);
        let big = Held::new(budget.clone());
        assert!(big.admit(90 * 1024));
        assert!(!big.admit(20 * 1024), "over the limit");
        let small = Held::new(budget.clone());
        assert!(small.admit(FLOOR), "the floor is admitted over the limit");
        assert!(!small.admit(1));
        assert_eq!(budget.used(), 90 * 1024 + FLOOR);
        assert_eq!(big.release(100 * 1024), 90 * 1024, "no more than held");
        assert!(small.admit(1));
        drop(small);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn set_charges_or_releases_the_difference() {
        let budget = MemoryBudget::new(0);
        let h = Held::new(budget.clone());
        h.set(500);
        h.set(200);
        h.replace(50, 80);
        assert_eq!((h.bytes(), budget.used()), (230, 230));
    }
}
