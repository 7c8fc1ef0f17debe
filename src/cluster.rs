//! The seam between the server and a cluster: how a broadcast becomes a
//! record when the log is replicated.
//!
//! A single node appends a broadcast to its own log. In a cluster the
//! server hands it to a [`Replicator`] instead (the `wse-replication`
//! crate implements one with a Raft group per shard of topics); the
//! replicator appends it to this node's log only once a majority committed
//! it, so the log listener, fan-out and recovery see committed records
//! only, and every node holds them at the same (epoch, offset).
//!
//! The server depends on this trait, never on the replication crate: the
//! arrow stays `log ← server ← replication`, and `wse serve` or the Python
//! module plug a cluster in through [`crate::Server::with_cluster`].

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::BytesMut;
use wse_log::{Log, LogError, Position};

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A replicated publish on its way: resolves once committed and applied.
pub type Commit = BoxFuture<'static, Result<Position, PublishError>>;

/// Writes the stored bytes of a published message once its position is
/// known: `(topic, text, position, buffer)`. The server's encoder stamps
/// the position into the message, exactly as a single node does, so a
/// record reads the same on every node and on a single node.
pub type RecordEncoder = Arc<dyn Fn(&str, &[u8], Position, &mut BytesMut) + Send + Sync>;

/// Why a publish is not acknowledged (on a single node only `Log` occurs).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No leader could take the publish (an election is running, or this
    /// node is in a minority partition). Nothing was appended; retry.
    #[error("cluster unavailable for topic {topic:?}: {reason}")]
    Unavailable {
        /// The topic.
        topic: String,
        /// What the cluster said.
        reason: String,
    },
    /// The commit was not seen in time. The publish may still be committed
    /// later: retry with the same idempotence key to avoid a duplicate.
    #[error("publish to {topic:?} not committed within {after_ms} ms; it may still be committed")]
    Timeout {
        /// The topic.
        topic: String,
        /// How long it waited.
        after_ms: u64,
    },
    /// The cluster refused the message itself (too large, invalid topic).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The cluster is stopped.
    #[error("the cluster is stopped")]
    Stopped,
}

/// A cluster's publish path, as the server uses it.
pub trait Replicator: Send + Sync + 'static {
    /// Replicate `text` on `topic` (already checked: a valid topic, a
    /// record within the size limit). With an `id`, a publish of the same
    /// id already stored on the topic (within the cluster's idempotence
    /// window) is not stored again: the future gives the first copy's
    /// position. The publish is handed on before this
    /// returns, so publishes handed in one after another by one caller are
    /// committed in that order, and dropping the future does not cancel it
    /// (fire-and-forget). The future resolves with the record's position
    /// once a majority of the topic's shard committed it and this node
    /// applied it (so this node's subscribers already got it, or are about
    /// to from its log).
    fn publish(&self, topic: &str, text: &str, id: Option<&str>) -> Commit;

    /// The cluster as the health report shows it (members, and per shard
    /// the leader, term, commit and applied index), a JSON object.
    fn status(&self) -> serde_json::Value;

    /// Stop replicating (shards, peer listener). Called by `Server::stop`
    /// before the log closes; the Raft files stay for a restart.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Starts a [`Replicator`] on a server's log; `Server::start` calls it on
/// the server's runtime, after the log is open and before clients are
/// accepted.
pub trait ClusterStarter: Send + Sync + 'static {
    /// Start the node's part of the cluster, applying committed records to
    /// `log`, encoding each with `encode`.
    fn start(
        &self,
        log: Arc<Log>,
        encode: RecordEncoder,
    ) -> BoxFuture<'static, Result<Arc<dyn Replicator>, Box<dyn std::error::Error + Send + Sync>>>;
}
