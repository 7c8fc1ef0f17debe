//! Utilities that Python apps call through `wse_server._wse_accel`
//! (PYTHON_API.md §3.4, §3.5), as plain Rust for the `pybind/` crate to wrap.
//!
//! Containers are generic over the message type `T` (the binding stores
//! Python objects); event helpers work on `serde_json` values. Statistics
//! are plain structs whose field names are the keys of the Python dicts
//! (and which serialize to exactly those dicts).
//!
//! | module | type / function | Python name |
//! |---|---|---|
//! | [`priority_queue`] | [`PriorityQueue`] | `RustPriorityQueue` |
//! | [`message_queue`] | [`PriorityMessageQueue`]: five levels, drop policy, stats | `RustPriorityMessageQueue` |
//! | [`sequencer`] | [`Sequencer`]: counter and dedup window | `RustSequencer` |
//! | [`event_sequencer`] | [`EventSequencer`]: dedup and per-topic reordering | `RustEventSequencer` |
//! | [`event_match`] | [`match_event`]: MongoDB-style filters, Python comparisons | `rust_match_event` |
//! | [`event_transform`] | [`transform_event`]: the envelope builder | `rust_transform_event` |
//! | [`timestamp`] | ISO 8601 parsing and formatting for envelopes | |
//!
//! Private helpers: `pyvalue` (Python `==`, ordering and `str()` on JSON
//! values) and `regex_cache` (the bounded `$regex` cache).

pub mod event_match;
pub mod event_sequencer;
pub mod event_transform;
pub mod message_queue;
pub mod priority_queue;
mod pyvalue;
mod regex_cache;
pub mod sequencer;
pub mod timestamp;

pub use event_match::{MatchError, match_event, try_match_event};
pub use event_sequencer::{
    BufferStats, EventSequencer, SequenceGap, SequenceStats, TopicBufferStats, TopicSequenceStats,
};
pub use event_transform::{transform_event, transform_event_at};
pub use message_queue::{MessageQueueStats, PriorityCounts, PriorityMessageQueue, QueueDepths};
pub use priority_queue::PriorityQueue;
pub use regex_cache::{MAX_PATTERN_LEN, REGEX_CACHE_CAPACITY};
pub use sequencer::Sequencer;
