//! Metadata of a log: the topic registry, the epochs every topic has used,
//! and per-topic retention settings.
//!
//! Metadata is an index, not the truth: segments describe themselves, so a
//! log whose metadata was deleted reopens from its segments. What only the
//! metadata knows is which epochs a topic used before (so a recreated topic
//! never reuses one) and retention overrides; losing it loses those, and
//! the log says so when it opens.
//!
//! The store is a small trait so the log does not depend on sled's API:
//! [`SledMeta`] in production, [`MemoryMeta`] in tests.

mod memory;
mod sled_store;

pub use memory::MemoryMeta;
pub use sled_store::SledMeta;

use serde::{Deserialize, Serialize};

use crate::config::Retention;

/// What the registry knows of one topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    /// The topic name.
    pub name: String,
    /// The epoch of the topic's live history, if it has one.
    pub epoch: Option<u32>,
    /// Epochs of earlier histories, never to be used again.
    #[serde(default)]
    pub retired_epochs: Vec<u32>,
    /// Retention for this topic instead of the log's default.
    #[serde(default)]
    pub retention: Option<Retention>,
}

impl TopicMeta {
    /// A fresh entry for a topic with a live history of `epoch`.
    pub fn new(name: &str, epoch: u32) -> Self {
        Self {
            name: name.to_owned(),
            epoch: Some(epoch),
            retired_epochs: Vec::new(),
            retention: None,
        }
    }

    /// Has this topic ever used `epoch`?
    pub fn has_used(&self, epoch: u32) -> bool {
        self.epoch == Some(epoch) || self.retired_epochs.contains(&epoch)
    }

    /// Retire the live epoch (its history is gone).
    pub fn retire(&mut self) {
        if let Some(e) = self.epoch.take()
            && !self.retired_epochs.contains(&e)
        {
            self.retired_epochs.push(e);
        }
    }
}

/// A metadata store failure, with what was being done and, when the store
/// has one, its own typed error as the source.
#[derive(Debug, thiserror::Error)]
#[error("{op}: {message}")]
pub struct MetaError {
    /// The operation (`open`, `load`, `put`, `flush`).
    pub op: &'static str,
    /// What went wrong.
    pub message: String,
    /// The underlying error (sled's, serde's...), if any.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl MetaError {
    /// A failure of `op` caused by `source`.
    pub fn new(op: &'static str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self {
            op,
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }
}

/// Where a log keeps its metadata.
pub trait MetaStore: Send + Sync {
    /// Every topic entry.
    fn load(&self) -> Result<Vec<TopicMeta>, MetaError>;
    /// The entry of one topic.
    fn get(&self, name: &str) -> Result<Option<TopicMeta>, MetaError>;
    /// Insert or replace an entry (not yet durable; see `flush`).
    fn put(&self, meta: &TopicMeta) -> Result<(), MetaError>;
    /// Make every earlier `put` durable.
    fn flush(&self) -> Result<(), MetaError>;
    /// Flush and release the store (and any lock it holds on its files).
    fn close(&self) -> Result<(), MetaError> {
        self.flush()
    }
}
