//! When each record may be published.
//!
//! By default at once: the replay goes as fast as the destination
//! acknowledges (back-pressure comes from the bounded batches in flight).
//! With `--speed X` a record is due at the replay's start plus its distance
//! from the first replayed record in the source's append times, divided by
//! X (10: ten times faster; 0.5: half speed). With `--max-rate N` the k-th
//! record is due no earlier than k/N seconds after the start. With both, the
//! later of the two. Times are tokio's, so waits are timer events rather
//! than sleeping threads.

use std::time::Duration;

use tokio::time::Instant;

/// The schedule of one replay.
#[derive(Debug)]
pub(crate) struct Pacer {
    /// `--speed`: the source's timing divided by this.
    speed: Option<f64>,
    /// `--max-rate`: records per second at most.
    max_rate: Option<f64>,
    /// When the first record went, and its source time (µs).
    origin: Option<(Instant, u64)>,
    /// Records scheduled so far (for the rate cap).
    scheduled: u64,
}

impl Pacer {
    /// A schedule; `None` for either limit leaves it out.
    pub(crate) fn new(speed: Option<f64>, max_rate: Option<f64>) -> Self {
        Self {
            speed,
            max_rate,
            origin: None,
            scheduled: 0,
        }
    }

    /// Does the pacer ever hold a record back?
    pub(crate) fn is_paced(&self) -> bool {
        self.speed.is_some() || self.max_rate.is_some()
    }

    /// When the next record, appended at `ts_us` at the source, is due
    /// (the first one: now, `now` being when it is asked).
    pub(crate) fn due(&mut self, ts_us: u64, now: Instant) -> Instant {
        let (start, first_ts) = *self.origin.get_or_insert((now, ts_us));
        let k = self.scheduled;
        self.scheduled += 1;
        let by_speed = self.speed.map_or(start, |speed| {
            let span = Duration::from_micros(ts_us.saturating_sub(first_ts));
            start + span.div_f64(speed)
        });
        let by_rate = self.max_rate.map_or(start, |rate| {
            start + Duration::from_secs_f64(k as f64 / rate)
        });
        by_speed.max(by_rate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_scales_the_source_timing_and_the_rate_caps_it() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Some(2.0), None);
        assert_eq!(p.due(1_000_000, t0), t0);
        assert_eq!(p.due(3_000_000, t0), t0 + Duration::from_secs(1));
        assert_eq!(p.due(500_000, t0), t0, "an older record is due at once");
        let mut p = Pacer::new(Some(0.5), Some(1.0));
        assert_eq!(p.due(0, t0), t0);
        assert_eq!(p.due(100_000, t0), t0 + Duration::from_secs(1), "rate: 1/s");
        assert_eq!(
            p.due(2_000_000, t0),
            t0 + Duration::from_secs(4),
            "speed 0.5"
        );
        let mut p = Pacer::new(None, None);
        assert!(!p.is_paced());
        assert_eq!(
            p.due(9_000_000, t0 + Duration::from_secs(3)),
            t0 + Duration::from_secs(3)
        );
    }
}
