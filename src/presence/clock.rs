//! A hybrid logical clock: wall-clock milliseconds in the high bits, a
//! counter in the low 16, never going backwards and always moving past any
//! stamp it has seen. It orders presence data writes; membership never
//! depends on it (see `crdt`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Bits of the logical counter.
const LOGICAL_BITS: u32 = 16;

/// A hybrid logical clock shared by the threads of one replica.
#[derive(Debug, Default)]
pub struct Hlc {
    last: AtomicU64,
}

impl Hlc {
    /// A clock that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A stamp greater than every stamp this clock issued or observed.
    pub fn now(&self) -> u64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
            << LOGICAL_BITS;
        let mut last = self.last.load(Ordering::Acquire);
        loop {
            let next = wall.max(last + 1);
            match self
                .last
                .compare_exchange_weak(last, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }

    /// Move past a stamp seen from elsewhere.
    pub fn observe(&self, stamp: u64) {
        self.last.fetch_max(stamp, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_always_increase_even_past_a_clock_from_the_future() {
        let c = Hlc::new();
        let a = c.now();
        let b = c.now();
        assert!(b > a);
        let future = a + (1_000_000 << LOGICAL_BITS);
        c.observe(future);
        assert!(c.now() > future);
    }
}
