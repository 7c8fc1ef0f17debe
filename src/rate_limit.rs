//! Token bucket rate limiter.
//!
//! The server keeps one [`TokenBucket`] per connection for outbound
//! `send_event` calls (capacity 100 000, refill 10 000/s, 1 token per call;
//! CLIENT_PROTOCOL.md §15) and may keep another for inbound client messages.
//! Python apps get the same type as `RustTokenBucket` (PYTHON_API.md §3.4).
//!
//! The bucket is a plain value: no lock, no atomics, no clock of its own
//! beyond the `Instant` of its last refill. Its owner decides how to share
//! it. Every time-dependent method has an `_at(now)` twin so tests (and a
//! caller that already read the clock) can pass the time in.

use std::time::Instant;

/// A token bucket holding up to `capacity` tokens, refilled continuously at
/// `refill_rate` tokens per second.
///
/// Tokens are `f64`, so fractional costs and rates work as in Python.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    /// Upper bound of the token count after a refill.
    capacity: f64,
    /// Tokens added per second of elapsed time.
    refill_rate: f64,
    /// Tokens available as of `last_refill`.
    tokens: f64,
    /// When `tokens` was last brought up to date.
    last_refill: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: f64, refill_rate: f64) -> Self {
        Self::new_at(capacity, refill_rate, None, Instant::now())
    }

    /// `RustTokenBucket(capacity, refill_rate, initial_tokens=None)`: starts
    /// with `initial_tokens`, or full when `None`.
    pub fn with_initial_tokens(
        capacity: f64,
        refill_rate: f64,
        initial_tokens: Option<f64>,
    ) -> Self {
        Self::new_at(capacity, refill_rate, initial_tokens, Instant::now())
    }

    /// Like [`TokenBucket::with_initial_tokens`], with the clock passed in.
    pub fn new_at(
        capacity: f64,
        refill_rate: f64,
        initial_tokens: Option<f64>,
        now: Instant,
    ) -> Self {
        Self {
            capacity,
            refill_rate,
            tokens: initial_tokens.unwrap_or(capacity),
            last_refill: now,
        }
    }

    /// The maximum number of tokens.
    pub fn capacity(&self) -> f64 {
        self.capacity
    }

    /// Tokens added per second.
    pub fn refill_rate(&self) -> f64 {
        self.refill_rate
    }

    /// Refills, then takes `tokens` if that many are available. Returns
    /// false, leaving the bucket unchanged, when there are not enough.
    pub fn acquire(&mut self, tokens: f64) -> bool {
        self.acquire_at(tokens, Instant::now())
    }

    /// [`TokenBucket::acquire`] at a given time.
    pub fn acquire_at(&mut self, tokens: f64, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= tokens {
            self.tokens -= tokens;
            true
        } else {
            false
        }
    }

    /// Takes `tokens` whether or not they are there, going into debt, and
    /// returns how long until the debt is paid back (`None`: there was
    /// enough). For costs known only once the work arrived (the bytes of
    /// a message already read): the work is done, and the caller waits
    /// this long before taking more.
    pub fn charge_at(&mut self, tokens: f64, now: Instant) -> Option<std::time::Duration> {
        self.refill(now);
        self.tokens -= tokens;
        if self.tokens >= 0.0 || self.refill_rate <= 0.0 {
            return None;
        }
        Some(std::time::Duration::from_secs_f64(
            -self.tokens / self.refill_rate,
        ))
    }

    /// The `tokens` property: the count after refilling.
    pub fn tokens(&mut self) -> f64 {
        self.tokens_at(Instant::now())
    }

    /// [`TokenBucket::tokens`] at a given time.
    pub fn tokens_at(&mut self, now: Instant) -> f64 {
        self.refill(now);
        self.tokens
    }

    /// Fills the bucket to capacity and restarts the refill clock.
    pub fn reset(&mut self) {
        self.reset_at(Instant::now());
    }

    /// [`TokenBucket::reset`] at a given time.
    pub fn reset_at(&mut self, now: Instant) {
        self.tokens = self.capacity;
        self.last_refill = now;
    }

    /// Adds the tokens earned since the last refill, capped at capacity.
    ///
    /// A `now` earlier than the last refill (a caller mixing clocks) adds
    /// nothing and does not move the refill clock back.
    fn refill(&mut self, now: Instant) {
        let elapsed = now
            .saturating_duration_since(self.last_refill)
            .as_secs_f64();
        if elapsed > 0.0 {
            self.tokens = (self.tokens + elapsed * self.refill_rate).min(self.capacity);
            self.last_refill = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_charge_past_the_tokens_is_a_debt_paid_back_at_the_refill_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(100.0, 50.0, None, t0);
        let secs = |w: Option<Duration>| w.map(|d| (d.as_secs_f64() * 1e3).round() / 1e3);
        assert_eq!(b.charge_at(60.0, t0), None);
        assert_eq!(secs(b.charge_at(90.0, t0)), Some(1.0));
        assert_eq!(secs(b.charge_at(0.0, t0 + ms(400))), Some(0.6));
        assert_eq!(b.charge_at(0.0, t0 + ms(1001)), None);
        assert!(!b.acquire_at(1.0, t0 + ms(1001)));
    }

    #[test]
    fn starts_full_and_drains() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(3.0, 1.0, None, t0);
        assert!(b.acquire_at(1.0, t0));
        assert!(b.acquire_at(2.0, t0));
        assert!(!b.acquire_at(1.0, t0));
        assert_eq!(b.tokens_at(t0), 0.0);
    }

    #[test]
    fn refills_with_time_up_to_capacity() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(10.0, 100.0, Some(0.0), t0);
        assert!(!b.acquire_at(1.0, t0));
        assert!((b.tokens_at(t0 + ms(50)) - 5.0).abs() < 1e-9);
        assert!(b.acquire_at(5.0, t0 + ms(50)));
        assert_eq!(b.tokens_at(t0 + ms(10_000)), 10.0);
    }

    #[test]
    fn failed_acquire_keeps_the_tokens() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(5.0, 0.0, Some(2.5), t0);
        assert!(!b.acquire_at(3.0, t0));
        assert_eq!(b.tokens_at(t0), 2.5);
        assert!(b.acquire_at(0.5, t0));
        assert_eq!(b.tokens_at(t0), 2.0);
    }

    #[test]
    fn initial_tokens_above_capacity_are_trimmed_on_first_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(5.0, 1.0, Some(50.0), t0);
        assert_eq!(b.tokens_at(t0), 50.0, "no time passed: no refill, no trim");
        assert_eq!(b.tokens_at(t0 + ms(1)), 5.0);
    }

    #[test]
    fn reset_fills_and_restarts_the_clock() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new_at(4.0, 1.0, Some(0.0), t0);
        b.reset_at(t0 + ms(100));
        assert_eq!(b.tokens_at(t0 + ms(100)), 4.0);
        assert!(b.acquire_at(4.0, t0 + ms(100)));
        assert!((b.tokens_at(t0 + ms(1100)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn time_going_backwards_adds_nothing() {
        let t0 = Instant::now() + ms(1000);
        let mut b = TokenBucket::new_at(10.0, 1000.0, Some(0.0), t0);
        assert_eq!(b.tokens_at(t0 - ms(500)), 0.0);
        assert!((b.tokens_at(t0 + ms(1)) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn wall_clock_variants_work() {
        let mut b = TokenBucket::with_initial_tokens(2.0, 0.0, None);
        assert_eq!(b.capacity(), 2.0);
        assert_eq!(b.refill_rate(), 0.0);
        assert!(b.acquire(2.0));
        assert!(!b.acquire(1.0));
        b.reset();
        assert_eq!(b.tokens(), 2.0);
        assert_eq!(TokenBucket::new(7.0, 1.0).tokens(), 7.0);
    }
}
