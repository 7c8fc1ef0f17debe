//! The sled-backed metadata store (sled pinned to 0.34.7).

use std::path::Path;

use super::{MetaError, MetaStore, TopicMeta};

/// Metadata in a sled database: one tree, topic name → JSON entry.
pub struct SledMeta {
    db: sled::Db,
    topics: sled::Tree,
}

fn err(op: &'static str, e: impl std::fmt::Display) -> MetaError {
    MetaError {
        op,
        message: e.to_string(),
    }
}

impl SledMeta {
    /// Open (or create) the database in `dir`.
    pub fn open(dir: &Path) -> Result<Self, MetaError> {
        let db = sled::Config::new()
            .path(dir)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(|e| err("open", e))?;
        let topics = db.open_tree("topics").map_err(|e| err("open", e))?;
        Ok(Self { db, topics })
    }
}

impl MetaStore for SledMeta {
    fn load(&self) -> Result<Vec<TopicMeta>, MetaError> {
        self.topics
            .iter()
            .values()
            .map(|v| {
                let v = v.map_err(|e| err("load", e))?;
                serde_json::from_slice(&v).map_err(|e| err("load", e))
            })
            .collect()
    }

    fn get(&self, name: &str) -> Result<Option<TopicMeta>, MetaError> {
        match self
            .topics
            .get(name.as_bytes())
            .map_err(|e| err("get", e))?
        {
            Some(v) => Ok(Some(serde_json::from_slice(&v).map_err(|e| err("get", e))?)),
            None => Ok(None),
        }
    }

    fn put(&self, meta: &TopicMeta) -> Result<(), MetaError> {
        let v = serde_json::to_vec(meta).map_err(|e| err("put", e))?;
        self.topics
            .insert(meta.name.as_bytes(), v)
            .map_err(|e| err("put", e))?;
        Ok(())
    }

    fn flush(&self) -> Result<(), MetaError> {
        self.db.flush().map_err(|e| err("flush", e))?;
        Ok(())
    }
}
