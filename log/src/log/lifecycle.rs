//! Creating and deleting topics: the metadata store and directory I/O they
//! need run under the log's topic lifecycle lock, never under the topic
//! map's locks, so readers and appenders of other topics never wait for
//! them (see `Shared::topic_lifecycle`).

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::Log;
use crate::error::{LogError, Result};
use crate::open;
use crate::position::Epoch;
use crate::record::Record;
use crate::topic::Topic;
use crate::topic_name;

impl Log {
    /// Create `topic` with the given `epoch` unless it exists: the way
    /// replicas agree on a topic's epoch (the cluster derives it from the
    /// replicated log and every node creates the topic with it). Creating a
    /// topic that already has this epoch is a no-op (`false`); one with
    /// another epoch, or with an epoch the topic had before (retired: a
    /// history must never come back), is [`LogError::EpochConflict`].
    pub fn create_topic(&self, topic: &str, epoch: Epoch) -> Result<bool> {
        self.create_topic_at(topic, epoch, 0)
    }

    /// [`Log::create_topic`] for a history restored from elsewhere (an
    /// export, a backup): the topic's first record will be at
    /// `first_offset`, so a range cut from the middle of a history keeps
    /// its offsets. A topic that exists with this epoch is left as it is
    /// (`false`); the caller checks where it ends.
    pub fn create_topic_at(&self, topic: &str, epoch: Epoch, first_offset: u64) -> Result<bool> {
        topic_name::validate(topic, self.shared.config.max_topic_bytes)?;
        let _lifecycle = self.shared.topic_lifecycle.lock();
        match self.shared.topics.get(topic).map(|t| t.epoch) {
            Some(existing) if existing == epoch => Ok(false),
            Some(existing) => Err(LogError::EpochConflict {
                topic: topic.to_owned(),
                requested: epoch,
                existing: Some(existing),
            }),
            None => self
                .create_locked(topic, Some(epoch.0), first_offset)
                .map(|_| true),
        }
    }

    /// Create `topic` with an epoch it never had, its first record at
    /// `first_offset`: a restored history that clients must not take for
    /// the one they saw (`wse log restore --new-epochs`). Returns the
    /// epoch; a topic that exists is [`LogError::EpochConflict`].
    pub fn create_fresh_topic_at(&self, topic: &str, first_offset: u64) -> Result<Epoch> {
        topic_name::validate(topic, self.shared.config.max_topic_bytes)?;
        let _lifecycle = self.shared.topic_lifecycle.lock();
        if let Some(t) = self.shared.topics.get(topic) {
            return Err(LogError::EpochConflict {
                topic: topic.to_owned(),
                requested: t.epoch,
                existing: Some(t.epoch),
            });
        }
        Ok(self.create_locked(topic, None, first_offset)?.epoch)
    }

    /// The topic, created with a fresh epoch if it does not exist.
    pub(super) fn topic_for_append(&self, name: &str) -> Result<Arc<Topic>> {
        if let Some(t) = self.shared.topics.get(name) {
            return Ok(t.clone());
        }
        topic_name::validate(name, self.shared.config.max_topic_bytes)?;
        // The metadata store is written outside the topic map's locks (see
        // `Shared::topic_lifecycle`).
        let _lifecycle = self.shared.topic_lifecycle.lock();
        if let Some(t) = self.shared.topics.get(name) {
            return Ok(t.clone());
        }
        self.create_locked(name, None, 0)
    }

    /// Create `name` (absent from the map; the lifecycle lock is held) with
    /// `epoch`, or a fresh one, its first record at `start_offset`.
    fn create_locked(
        &self,
        name: &str,
        epoch: Option<u32>,
        start_offset: u64,
    ) -> Result<Arc<Topic>> {
        let mut meta = self.topic_meta(name, None)?;
        meta.retire();
        let epoch = match epoch {
            Some(e) if meta.has_used(e) => {
                return Err(LogError::EpochConflict {
                    topic: name.to_owned(),
                    requested: Epoch(e),
                    existing: None,
                });
            }
            Some(e) => e,
            None => open::fresh_epoch(&meta),
        };
        meta.epoch = Some(epoch);
        self.shared.meta.put(&meta).map_err(LogError::Meta)?;
        let key = topic_name::topic_key(name);
        let name: Arc<str> = Arc::from(name);
        let topic = Arc::new(Topic::new(
            name.clone(),
            self.shared.layout.topic_dir(key),
            Epoch(epoch),
            Vec::new(),
            start_offset,
            meta.retention,
            self.shared.now_ms(),
        ));
        self.shared.topics.insert(name, topic.clone());
        Ok(topic)
    }

    /// Delete a topic and its history. The next append starts a new
    /// history with an epoch the topic never had. Returns false when there
    /// was no such topic.
    ///
    /// The append listener hears of it ([`crate::AppendListener::on_deleted`])
    /// while the lifecycle lock is still held: after every announcement of
    /// the deleted history and before the next history can be created.
    pub fn delete_topic(&self, topic: &str) -> Result<bool> {
        let _lifecycle = self.shared.topic_lifecycle.lock();
        let Some((_, t)) = self.shared.topics.remove(topic) else {
            return Ok(false);
        };
        let dropped = {
            let mut st = t.state.lock();
            st.deleted = true;
            let freed = st.tail.clear();
            self.shared.add_tail_bytes(-(freed as isize));
            std::mem::take(&mut st.pending)
        };
        if let Some(l) = &self.shared.listener {
            l.on_deleted(topic, t.epoch);
        }
        let bytes: usize = dropped.iter().map(Record::encoded_len).sum();
        self.shared.pending_bytes.fetch_sub(bytes, Ordering::AcqRel);
        self.shared
            .pending_records
            .fetch_sub(dropped.len(), Ordering::AcqRel);
        {
            let mut store = t.store.lock();
            store.deleted = true;
            self.shared.files.forget_dir(&t.dir);
            let storage = self.shared.files.storage();
            match storage.remove_dir_all(&t.dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(LogError::io("remove", &t.dir, e)),
            }
            if let Some(parent) = t.dir.parent() {
                storage
                    .sync_dir(parent)
                    .map_err(|e| LogError::io("fsync", parent, e))?;
            }
        }
        let mut meta = self.topic_meta(topic, Some(t.epoch.0))?;
        meta.epoch = Some(t.epoch.0);
        meta.retire();
        self.store_meta(&meta)?;
        t.watch.send_modify(|_| {});
        self.shared.announce_progress();
        Ok(true)
    }
}
