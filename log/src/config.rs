//! Configuration of a log: durability, segments, retention, the memory
//! tail and limits. Every knob has a documented default; docs/OPERATIONS.md
//! explains the trade-offs.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// When appended records are forced to stable storage.
///
/// The policy decides the data-loss window on power failure or OS crash.
/// A process crash (SIGKILL) never loses a record that readers could see,
/// whatever the policy: records become visible only after they were handed
/// to the operating system.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "policy")]
pub enum Durability {
    /// Group commit: an append returns (and its record becomes visible) only
    /// after an fsync that covers it; concurrent appends share one fsync.
    /// Nothing acknowledged is ever lost.
    Always,
    /// fsync when `max_delay` has passed since the first unsynced write or
    /// `max_bytes` of unsynced data accumulated, whichever comes first.
    Interval {
        /// Longest time written data stays unsynced (default 100 ms).
        #[serde(with = "millis")]
        max_delay: Duration,
        /// Most unsynced bytes before an early fsync (default 16 KiB).
        max_bytes: u64,
    },
    /// Never fsync; the operating system writes data back when it likes.
    Never,
}

impl Default for Durability {
    fn default() -> Self {
        Self::Interval {
            max_delay: Duration::from_millis(100),
            max_bytes: 16 * 1024,
        }
    }
}

impl Durability {
    /// Parse `always`, `never`, `interval` or `interval:<ms>`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "always" => Ok(Self::Always),
            "never" => Ok(Self::Never),
            "interval" => Ok(Self::default()),
            other => match other.strip_prefix("interval:") {
                Some(ms) => {
                    let ms: u64 = ms
                        .parse()
                        .map_err(|_| format!("invalid interval milliseconds in {other:?}"))?;
                    Ok(Self::Interval {
                        max_delay: Duration::from_millis(ms.max(1)),
                        max_bytes: 16 * 1024,
                    })
                }
                None => Err(format!(
                    "unknown durability {other:?} (always, interval, interval:<ms>, never)"
                )),
            },
        }
    }

    /// The policy's name as tools print it.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Interval { .. } => "interval",
            Self::Never => "never",
        }
    }
}

/// How much history a topic keeps. Only whole sealed segments are deleted,
/// and only while what remains still satisfies every limit, so a topic
/// always keeps at least the configured amount.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Most bytes of segments per topic (`None` = unlimited).
    pub max_bytes: Option<u64>,
    /// Oldest record age (`None` = unlimited).
    #[serde(with = "opt_secs")]
    pub max_age: Option<Duration>,
    /// Most records per topic (`None` = unlimited).
    pub max_records: Option<u64>,
}

impl Default for Retention {
    /// 1 GiB and 7 days per topic, no record limit.
    fn default() -> Self {
        Self {
            max_bytes: Some(1 << 30),
            max_age: Some(Duration::from_secs(7 * 24 * 3600)),
            max_records: None,
        }
    }
}

impl Retention {
    /// Keep everything.
    pub fn unlimited() -> Self {
        Self {
            max_bytes: None,
            max_age: None,
            max_records: None,
        }
    }
}

/// The in-memory tail: the newest records of each topic, served to readers
/// without touching disk.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TailConfig {
    /// Records kept per topic (default 1024).
    pub records_per_topic: usize,
    /// Total bytes of all tails (default 256 MiB). Above it, the tails of
    /// the topics used least recently are dropped first.
    pub memory_budget: usize,
    /// A topic's tail is dropped after this long without an append or a
    /// read (default 300 s).
    #[serde(with = "millis")]
    pub idle_ttl: Duration,
}

impl Default for TailConfig {
    fn default() -> Self {
        Self {
            records_per_topic: 1024,
            memory_budget: 256 << 20,
            idle_ttl: Duration::from_secs(300),
        }
    }
}

/// Everything a [`crate::Log`] can be configured with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogConfig {
    /// fsync policy (default `interval`, 100 ms or 16 KiB).
    pub durability: Durability,
    /// A segment is sealed and a new one started once it reaches this size
    /// (default 64 MiB; at most 4 GiB, the index stores 32-bit positions).
    pub segment_max_bytes: u64,
    /// ...or once its first record is this old (default 1 hour), so that
    /// age-based retention can delete history of quiet topics.
    #[serde(with = "millis")]
    pub segment_max_age: Duration,
    /// One sparse index entry per this many segment bytes (default 4 KiB).
    pub index_interval_bytes: u64,
    /// Retention applied to topics without their own setting.
    pub retention: Retention,
    /// How often retention and tail expiry are checked (default 1 s).
    #[serde(with = "millis")]
    pub maintenance_interval: Duration,
    /// The in-memory tail.
    pub tail: TailConfig,
    /// Longest topic name in bytes (default 256).
    pub max_topic_bytes: usize,
    /// Largest payload of one record (default 16 MiB).
    pub max_record_bytes: usize,
    /// Open segment files kept in the handle cache (default 256). The log
    /// keeps at most this many segment files open however many topics it
    /// holds, so 100,000 topics work under a 1,024 open-file limit.
    pub max_open_files: usize,
    /// Appended bytes not yet written to disk before appenders wait
    /// (default 64 MiB): back-pressure instead of unbounded memory when the
    /// disk is slower than the producers.
    pub max_pending_bytes: usize,
    /// After a storage fault (ENOSPC, EMFILE, EIO on a write or fsync),
    /// how long appends fail fast before the writer tries storage again
    /// (default 10 ms). Each failed retry doubles the wait, up to
    /// `fault_retry_max`; a success resets it. Shorter notices a cleared
    /// fault sooner; longer wastes less work on a disk that stays full.
    #[serde(default = "default_fault_retry_min", with = "millis")]
    pub fault_retry_min: Duration,
    /// Longest wait between two retries of failing storage (default 1 s).
    #[serde(default = "default_fault_retry_max", with = "millis")]
    pub fault_retry_max: Duration,
    /// Where the kernel's boot id is read from; an unclean shutdown under a
    /// different boot id means the OS itself went down, so unsynced data may
    /// be gone (see docs/OPERATIONS.md). Overridable for tests.
    pub boot_id_path: std::path::PathBuf,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            durability: Durability::default(),
            segment_max_bytes: 64 << 20,
            segment_max_age: Duration::from_secs(3600),
            index_interval_bytes: 4096,
            retention: Retention::default(),
            maintenance_interval: Duration::from_secs(1),
            tail: TailConfig::default(),
            max_topic_bytes: 256,
            max_record_bytes: 16 << 20,
            max_open_files: 256,
            max_pending_bytes: 64 << 20,
            fault_retry_min: default_fault_retry_min(),
            fault_retry_max: default_fault_retry_max(),
            boot_id_path: "/proc/sys/kernel/random/boot_id".into(),
        }
    }
}

fn default_fault_retry_min() -> Duration {
    Duration::from_millis(10)
}

fn default_fault_retry_max() -> Duration {
    Duration::from_secs(1)
}

impl LogConfig {
    /// Check that the values can work together.
    pub fn validate(&self) -> Result<(), String> {
        if self.segment_max_bytes < 1024 || self.segment_max_bytes > u32::MAX as u64 {
            return Err(format!(
                "segment_max_bytes must be between 1 KiB and 4 GiB, got {}",
                self.segment_max_bytes
            ));
        }
        if self.segment_max_age.is_zero() {
            return Err("segment_max_age must be positive".into());
        }
        if self.index_interval_bytes == 0 {
            return Err("index_interval_bytes must be positive".into());
        }
        if self.max_open_files < 4 {
            return Err("max_open_files must be at least 4".into());
        }
        if self.max_topic_bytes == 0 {
            return Err("max_topic_bytes must be positive".into());
        }
        // A record that does not fit goes alone into a fresh segment, so a
        // segment can exceed its size by one record; positions are 32-bit.
        if self.max_record_bytes == 0
            || self.segment_max_bytes + self.max_record_bytes as u64 + 65_600 > u32::MAX as u64
        {
            return Err(
                "max_record_bytes must be positive and, with segment_max_bytes, stay below 4 GiB"
                    .into(),
            );
        }
        if self.fault_retry_min.is_zero() || self.fault_retry_max < self.fault_retry_min {
            return Err("fault_retry_min must be positive and at most fault_retry_max".into());
        }
        if self.tail.records_per_topic == 0 {
            return Err("tail.records_per_topic must be positive".into());
        }
        Ok(())
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durability_parses_every_form() {
        assert_eq!(Durability::parse("always").unwrap(), Durability::Always);
        assert_eq!(Durability::parse("never").unwrap(), Durability::Never);
        assert_eq!(
            Durability::parse("interval").unwrap(),
            Durability::default()
        );
        assert_eq!(
            Durability::parse("interval:5").unwrap(),
            Durability::Interval {
                max_delay: Duration::from_millis(5),
                max_bytes: 16 * 1024
            }
        );
        assert!(Durability::parse("sometimes").is_err());
        assert!(Durability::parse("interval:x").is_err());
    }

    #[test]
    fn default_config_is_valid() {
        LogConfig::default().validate().unwrap();
        let bad = LogConfig {
            segment_max_bytes: 100,
            ..LogConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
