//! An in-memory metadata store, for tests and read-only views.

use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::{MetaError, MetaStore, TopicMeta};

/// Metadata kept in memory; clones share the same map, so a test can
/// "restart" a log over the same metadata.
#[derive(Clone, Default)]
pub struct MemoryMeta {
    topics: Arc<Mutex<BTreeMap<String, TopicMeta>>>,
}

impl MemoryMeta {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl MetaStore for MemoryMeta {
    fn load(&self) -> Result<Vec<TopicMeta>, MetaError> {
        Ok(self.topics.lock().values().cloned().collect())
    }

    fn get(&self, name: &str) -> Result<Option<TopicMeta>, MetaError> {
        Ok(self.topics.lock().get(name).cloned())
    }

    fn put(&self, meta: &TopicMeta) -> Result<(), MetaError> {
        self.topics.lock().insert(meta.name.clone(), meta.clone());
        Ok(())
    }

    fn flush(&self) -> Result<(), MetaError> {
        Ok(())
    }
}
