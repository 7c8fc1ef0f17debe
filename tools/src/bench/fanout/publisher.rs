//! The fan-out benchmark's publishing plan: how fast (`--rate`, `--window`),
//! how large and how long. The publishing itself is
//! [`crate::bench::paced::PacedPublisher`], shared with `wse bench cluster`.

use std::time::Duration;

use serde::Serialize;

use crate::bench::paced::{self, Pace};

/// How fast to publish.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// As fast as the subscribers keep up (bounded by the window).
    Max,
    /// This many messages per second, whatever the subscribers do.
    PerSecond(f64),
}

impl Rate {
    /// `max` or a positive number.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "max" {
            return Ok(Self::Max);
        }
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Self::PerSecond(r)),
            _ => Err(format!(
                "--rate takes `max` or messages per second > 0, not {s:?}"
            )),
        }
    }
}

impl Serialize for Rate {
    /// `"max"` or the number of messages per second.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Max => s.serialize_str("max"),
            Self::PerSecond(r) => s.serialize_f64(*r),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Max => f.write_str("max"),
            Self::PerSecond(r) => write!(f, "{r}/s"),
        }
    }
}

/// What to publish, how fast, how long.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The pace.
    pub rate: Rate,
    /// With [`Rate::Max`]: messages the publisher may be ahead of the
    /// slowest connected subscriber (0: no limit).
    pub window: u64,
    /// Target size of the `message` object, bytes.
    pub size: usize,
    /// How long to publish.
    pub run_time: Duration,
}

impl Plan {
    /// The publisher's pace for this plan.
    pub fn pace(&self) -> Pace {
        match self.rate {
            Rate::Max => Pace::Window(self.window),
            Rate::PerSecond(r) => Pace::Rate(r),
        }
    }
}

/// The size of the published message at `size` (at least the smallest
/// message).
pub fn message_bytes(size: usize) -> usize {
    paced::message_bytes(paced::pad_for(size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_and_plans_pace_the_publisher() {
        assert_eq!(Rate::parse("max"), Ok(Rate::Max));
        assert_eq!(Rate::parse("5000"), Ok(Rate::PerSecond(5000.0)));
        for bad in ["0", "-1", "fast", "inf", "NaN"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        let plan = |rate, window| Plan {
            rate,
            window,
            size: 100,
            run_time: Duration::from_secs(1),
        };
        assert_eq!(plan(Rate::Max, 64).pace(), Pace::Window(64));
        assert_eq!(plan(Rate::PerSecond(10.0), 64).pace(), Pace::Rate(10.0));
        assert_eq!(message_bytes(100), 100);
        assert_eq!(
            message_bytes(1),
            message_bytes(0),
            "at least the smallest message"
        );
    }
}
