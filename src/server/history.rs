//! The server's view of the log: where a topic stands, reading its
//! history, and the operator's changes to it (deleting a topic, its
//! retention), which a cluster node refuses.

use std::sync::Arc;

use wse_log::{Epoch, Log, LogError, Position, ReadBatch, ReadLimits, Retention, TopicPosition};

use super::{Server, ServerError};

impl Server {
    /// Where `topic` stands in the log.
    pub fn position(&self, topic: &str) -> Result<Option<TopicPosition>, ServerError> {
        Ok(self.state()?.log.position(topic))
    }

    /// Read `topic` from `(epoch, offset)` (inclusive), at most `limit`
    /// records.
    pub fn read(
        &self,
        topic: &str,
        from: Position,
        limit: usize,
    ) -> Result<ReadBatch, ServerError> {
        Ok(self
            .state()?
            .log
            .read(topic, from, ReadLimits::records(limit))?)
    }

    /// The log itself (tools and tests).
    pub fn log(&self) -> Result<Arc<Log>, ServerError> {
        Ok(self.state()?.log.clone())
    }

    /// Delete `topic`'s history: its next publish starts a new one (a new
    /// epoch, offsets from 0), so a client recovering from a position of
    /// the deleted history is answered not-recovered. Subscribers stay
    /// subscribed and receive the new history from its first message;
    /// the topic's framed ring forgets the deleted records before the new
    /// history can exist (`AppendListener::on_deleted`). Returns the
    /// deleted epoch, `None` when the topic has no history. Blocks on the
    /// disk (keep it off async workers). Refused on a cluster node: a
    /// deletion is not replicated, and the shards' offsets are agreed.
    pub fn delete_topic(&self, topic: &str) -> Result<Option<Epoch>, ServerError> {
        let state = self.state()?;
        if state.cluster.is_some() {
            return Err(ServerError::NotReplicated("deleting a topic"));
        }
        let Some(at) = state.log.position(topic) else {
            return Ok(None);
        };
        let deleted = state.log.delete_topic(topic)?;
        // Its publish ids name positions of the history just deleted.
        state.publish_ids.forget(topic);
        Ok(deleted.then_some(at.epoch))
    }

    /// Set (`None`: clear, back to `log.retention`) the retention of
    /// `topic`, durably, and apply it at once. Returns the retention now
    /// in force; `None` when the topic does not exist. Blocks on the disk.
    /// Refused on a cluster node: every replica must hold the same records
    /// (a snapshot install reads them from a peer), and this setting would
    /// reach this node only.
    pub fn set_retention(
        &self,
        topic: &str,
        retention: Option<Retention>,
    ) -> Result<Option<Retention>, ServerError> {
        let state = self.state()?;
        if state.cluster.is_some() {
            return Err(ServerError::NotReplicated("setting a topic's retention"));
        }
        let applied = state
            .log
            .set_retention(topic, retention)
            .and_then(|()| state.log.enforce_retention(topic));
        match applied {
            Ok(_) => Ok(state.log.topic_info(topic).map(|t| t.retention)),
            // No such topic, or deleted meanwhile.
            Err(LogError::UnknownTopic(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
