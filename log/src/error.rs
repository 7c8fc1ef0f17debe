//! Errors of the log, as types a caller can match on.

use std::io;
use std::path::PathBuf;

use crate::damage::Damage;
use crate::meta::MetaError;
use crate::position::{Epoch, Position};
use crate::record::DecodeError;
use crate::segment::header::HeaderError;
use crate::topic_name::TopicNameError;

/// Everything that can go wrong in the log.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The topic name cannot be stored (empty, too long, NUL byte).
    #[error(transparent)]
    InvalidTopic(#[from] TopicNameError),
    /// The payload is larger than `max_record_bytes`.
    #[error("record payload of {size} bytes exceeds the limit of {limit} bytes")]
    RecordTooLarge {
        /// Size of the rejected payload.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// Another process holds the data directory.
    #[error("data directory {dir} is in use by another process (lock file {lock})")]
    Locked {
        /// The data directory.
        dir: PathBuf,
        /// The lock file that could not be taken.
        lock: PathBuf,
    },
    /// An operating-system error, with the file and the operation.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done (`open`, `write`, `fsync`, ...).
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// The metadata store failed (the store's error is the source).
    #[error("metadata store: {0}")]
    Meta(#[from] MetaError),
    /// The requested history cannot be served (see [`NotRecoverable`]).
    #[error(transparent)]
    NotRecoverable(#[from] NotRecoverable),
    /// The offsets asked for are stored but unreadable (a record failed
    /// validation, a segment is cut short, missing or quarantined). The
    /// [`Damage`] says which offsets are lost and from which offset the
    /// topic is readable again; records on either side stay readable.
    #[error(transparent)]
    Damaged(#[from] Damage),
    /// A topic directory whose history cannot be trusted as a whole.
    #[error("{}: {why}", dir.display())]
    Unreadable {
        /// The topic directory.
        dir: PathBuf,
        /// Why.
        why: String,
    },
    /// A topic cannot be created with the epoch asked for: it exists with
    /// another one (`existing`), or had this one before (`existing: None`:
    /// a retired history never comes back).
    #[error("topic {topic:?} cannot take epoch {requested}: {}", match existing {
        Some(e) => format!("it has epoch {e}"),
        None => "the topic had that epoch before".to_owned(),
    })]
    EpochConflict {
        /// The topic.
        topic: String,
        /// The epoch asked for.
        requested: Epoch,
        /// The topic's epoch, when it exists.
        existing: Option<Epoch>,
    },
    /// A record restored at an exact position ([`crate::Log::append_exact`])
    /// is not the topic's next: restoring it would leave a gap, overwrite
    /// a record or mix two histories.
    #[error("topic {topic:?} takes its next record at {next}, not at {requested}")]
    PositionConflict {
        /// The topic.
        topic: String,
        /// The position asked for.
        requested: crate::Position,
        /// The position the topic's next record gets.
        next: crate::Position,
    },
    /// No such topic in this log.
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    /// Storage failed under the writer (a write, fsync, file creation or
    /// truncation: ENOSPC, EMFILE, EIO...). The append was not made
    /// visible and never will be; appends fail fast like this while the
    /// condition lasts, and the log resumes by itself once it clears (see
    /// `LogConfig::fault_retry_min`). `source` tells the cause:
    /// `source.raw_os_error()` is e.g. `Some(libc::ENOSPC)`.
    #[error("storage unavailable ({op} {}): {source}", path.display())]
    Unavailable {
        /// The operation that failed (`write`, `fsync`, `create`, ...).
        op: &'static str,
        /// The file or directory it failed on.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The log was closed.
    #[error("the log is closed")]
    Closed,
    /// The configuration is inconsistent.
    #[error("invalid log configuration: {0}")]
    Config(String),
}

/// What is wrong with a record found on disk.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CorruptReason {
    /// The bytes do not decode as a record.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// A valid record carries another offset than its place demands.
    #[error("record carries offset {found}")]
    WrongOffset {
        /// The offset in the record.
        found: u64,
    },
    /// A valid record carries another epoch than its segment.
    #[error("record carries epoch {found}")]
    WrongEpoch {
        /// The epoch in the record.
        found: Epoch,
    },
    /// The segment's header is damaged: none of its records can be trusted
    /// to belong here, so the segment is quarantined as a whole.
    #[error("segment header: {0}")]
    BadHeader(HeaderError),
    /// The offsets end before the next segment begins.
    #[error("offsets {from}..{to} are missing")]
    Missing {
        /// First missing offset.
        from: u64,
        /// First offset present again.
        to: u64,
    },
}

impl LogError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            op,
            path: path.into(),
            source,
        }
    }
}

/// Why a position cannot be read from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum NotRecoverableReason {
    /// The position belongs to another history of the topic.
    EpochMismatch,
    /// Retention removed the requested offsets.
    Removed,
    /// The offset is beyond the newest record of this history.
    Ahead,
}

/// A read asked for history this log cannot serve, with the topic's current
/// state so the caller can tell the client where it stands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "topic {topic:?} cannot serve {requested}: {reason:?} (epoch {epoch}, offsets {first_offset}..{next_offset})"
)]
pub struct NotRecoverable {
    /// The topic.
    pub topic: String,
    /// The position that was asked for.
    pub requested: Position,
    /// Why it cannot be served.
    pub reason: NotRecoverableReason,
    /// The topic's current epoch.
    pub epoch: Epoch,
    /// Oldest offset still stored.
    pub first_offset: u64,
    /// Offset the next record will get (newest + 1).
    pub next_offset: u64,
}

impl NotRecoverable {
    /// The newest offset of the topic, if it has any record.
    pub fn last_offset(&self) -> Option<u64> {
        self.next_offset.checked_sub(1)
    }
}

/// Shorthand for results of the log.
pub type Result<T, E = LogError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use std::error::Error;

    use super::*;

    #[test]
    fn a_metadata_error_keeps_its_cause() {
        let cause = io::Error::new(io::ErrorKind::PermissionDenied, "denied");
        let e = LogError::from(MetaError::new("flush", cause));
        assert_eq!(e.to_string(), "metadata store: flush: denied");
        let meta = e.source().expect("the store's error");
        let io = meta.source().expect("its cause");
        assert_eq!(
            io.downcast_ref::<io::Error>().map(io::Error::kind),
            Some(io::ErrorKind::PermissionDenied)
        );
    }
}
