//! `wse-log`: per-topic logical logs in one data directory, the single
//! source of truth of WSE.
//!
//! A [`Log`] holds topics. Appending to a topic gives the record the next
//! offset of the topic's current history (its [`Epoch`]) and returns its
//! [`Position`]. A record becomes visible to readers once the writer thread
//! has handed it to the operating system, and under [`Durability::Always`]
//! once it is fsynced; visibility is what readers, the server's fan-out
//! (an [`AppendListener`]) and waiting appenders observe. Reading a topic
//! from a position returns records from the memory tail or from segment
//! files, or [`NotRecoverable`] when that history is not (or no longer)
//! here, or [`LogError::Damaged`] when it is stored but unreadable: the
//! [`Damage`] tells which offsets are lost and where reading resumes. [`DirReader`] reads a data directory without locking it, which is
//! how the `wse log` tools work beside a running server.
//!
//! Storage can fail (a full disk, too many open files, an I/O error). The
//! appends it failed get [`LogError::Unavailable`] and are never visible;
//! appends fail fast while it lasts, and the log resumes by itself once it
//! clears. Every file operation of the writer goes through a
//! [`Storage`], so tests inject such faults with a [`FaultyStorage`].
//!
//! # Layout
//!
//! - [`position`]: epochs and positions.
//! - [`record`]: the record encoding (disk, memory tail and peer wire).
//! - [`segment`]: segment files, their header, sparse index and cursor.
//! - [`config`]: durability, segments, retention, tail, limits.
//! - [`topic_name`]: name validation and hashed directory names.
//! - [`layout`]: where things live in a data directory.
//! - [`storage`]: the storage seam (real files, or faults injected for
//!   tests); `health`: what the writer does while storage fails.
//! - [`files`]: the bounded cache of open files and the unsynced set.
//! - [`meta`]: the metadata store trait, sled and in-memory stores.
//! - [`tail`]: the in-memory tail of a topic.
//! - `topic`: a topic's append side and disk side; `rollback`: putting
//!   a topic back when storage fails under a batch.
//! - `writer`: the writer thread (batching, group commit, visibility);
//!   `syncer`: the background fsync of the `interval` policy.
//! - `read`: reads from the tail and from segment files.
//! - [`damage`]: unreadable offset ranges ([`Damage`]) and the ranges a
//!   topic already found; `resync`: where readable history resumes after
//!   damage (record framing and CRC, then the following segments).
//! - `retention`: segment deletion and memory-tail eviction.
//! - `load`/`open`: loading topics from disk, repairs, epoch decisions
//!   (`finding`: what a scan found);
//!   `quarantine`: setting aside a segment whose header is damaged.
//! - [`verify`]: full checks of a data directory.
//! - [`dir_reader`]: the read-only view used by tools.
//! - [`clock`], [`stats`]: time source and counters.

pub mod clock;
pub mod config;
pub mod damage;
pub mod dir_reader;
pub mod error;
pub mod files;
pub mod layout;
pub mod meta;
pub mod position;
pub mod record;
pub mod segment;
pub mod stats;
pub mod storage;
pub mod tail;
pub mod topic_name;
pub mod verify;

mod finding;
mod health;
mod load;
mod log;
mod open;
mod quarantine;
mod read;
mod resync;
mod retention;
mod rollback;
mod shared;
mod syncer;
mod topic;
mod writer;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Durability, LogConfig, Retention, TailConfig};
pub use damage::Damage;
pub use dir_reader::{DirReader, SegmentSummary, TopicSummary, Unreadable};
pub use error::{CorruptReason, LogError, NotRecoverable, NotRecoverableReason};
pub use load::Finding;
pub use log::{Appended, Log, LogBuilder, TopicInfo, TopicPosition, TopicWatch};
pub use meta::{MemoryMeta, MetaStore, SledMeta, TopicMeta};
pub use open::{EpochChange, OpenReport};
pub use position::{Epoch, ParseEpochError, Position};
pub use read::{ReadBatch, ReadLimits};
pub use record::{Record, RecordKind};
pub use shared::AppendListener;
pub use stats::LogStats;
pub use storage::{
    FaultAction, FaultRule, FaultyStorage, FsStorage, Gate, OpenMode, Storage, StorageFile,
    StorageOp,
};
pub use verify::{Problem, VerifyReport};
