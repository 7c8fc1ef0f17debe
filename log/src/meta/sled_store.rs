//! The sled-backed metadata store (sled pinned to 0.34.7).

use std::path::Path;

use super::{MetaError, MetaStore, TopicMeta};

/// Metadata in a sled database: one tree, topic name → JSON entry.
pub struct SledMeta {
    /// `None` once closed (sled releases its lock when the database drops).
    open: parking_lot::Mutex<Option<(sled::Db, sled::Tree)>>,
}

fn err(op: &'static str, e: impl std::error::Error + Send + Sync + 'static) -> MetaError {
    MetaError::new(op, e)
}

/// The store was used after `close`.
fn closed(op: &'static str) -> MetaError {
    MetaError {
        op,
        message: "the metadata store is closed".into(),
        source: None,
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
        Ok(Self {
            open: parking_lot::Mutex::new(Some((db, topics))),
        })
    }

    fn with<T>(
        &self,
        op: &'static str,
        f: impl FnOnce(&sled::Db, &sled::Tree) -> Result<T, MetaError>,
    ) -> Result<T, MetaError> {
        match self.open.lock().as_ref() {
            Some((db, tree)) => f(db, tree),
            None => Err(closed(op)),
        }
    }
}

impl MetaStore for SledMeta {
    fn load(&self) -> Result<Vec<TopicMeta>, MetaError> {
        self.with("load", |_, topics| {
            topics
                .iter()
                .values()
                .map(|v| {
                    let v = v.map_err(|e| err("load", e))?;
                    serde_json::from_slice(&v).map_err(|e| err("load", e))
                })
                .collect()
        })
    }

    fn get(&self, name: &str) -> Result<Option<TopicMeta>, MetaError> {
        self.with("get", |_, topics| {
            match topics.get(name.as_bytes()).map_err(|e| err("get", e))? {
                Some(v) => serde_json::from_slice(&v)
                    .map(Some)
                    .map_err(|e| err("get", e)),
                None => Ok(None),
            }
        })
    }

    fn put(&self, meta: &TopicMeta) -> Result<(), MetaError> {
        let v = serde_json::to_vec(meta).map_err(|e| err("put", e))?;
        self.with("put", |_, topics| {
            topics
                .insert(meta.name.as_bytes(), v)
                .map_err(|e| err("put", e))?;
            Ok(())
        })
    }

    fn flush(&self) -> Result<(), MetaError> {
        self.with("flush", |db, _| {
            db.flush().map_err(|e| err("flush", e))?;
            Ok(())
        })
    }

    fn close(&self) -> Result<(), MetaError> {
        if let Some((db, _)) = self.open.lock().take() {
            db.flush().map_err(|e| err("close", e))?;
        }
        Ok(())
    }
}
