//! A broadcast to a topic: one record in the topic's log, which the fan-out
//! delivers once the log makes it visible.
//!
//! On a single node the record is appended here and now. In a cluster it
//! goes to the topic's shard first ([`crate::cluster::Replicator`]) and is
//! appended on every node only once a majority committed it; the bytes are
//! the same either way ([`encode`]), so a record reads alike on a single
//! node and on every member of a cluster.
//!
//! A publish that carries an id is stored once per topic within a window
//! of recent ids: in a cluster by the shard's state machine, on a single
//! node by [`super::publish_ids`]. A duplicate is answered with the first
//! copy's position.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use wse_log::{Appended, LogError, Position, RecordKind, topic_name};

pub use super::publish_ids::FirstCopy;
use super::publish_ids::Taken;
use crate::cluster::{Commit, PublishError, RecordEncoder};
use crate::metrics::Metrics;
use crate::protocol::stamp;
use crate::state::ServerState;

/// A broadcast the server took, not yet acknowledged.
pub enum Broadcast {
    /// Appended to this node's log; acknowledged once durable by the policy.
    Appended(Appended),
    /// Handed to the cluster; acknowledged once committed and applied here.
    Replicating(Commit),
    /// On a single node, a publish whose id the topic's window holds: not
    /// appended again, acknowledged as its first copy is.
    Duplicate(FirstCopy),
}

impl Broadcast {
    /// Wait until the broadcast is acknowledged: durable by the log's
    /// policy, and in a cluster committed by a majority. Its position.
    pub async fn acknowledged(self) -> Result<Position, PublishError> {
        match self {
            Broadcast::Appended(a) => {
                a.visible().await?;
                Ok(a.position)
            }
            Broadcast::Replicating(commit) => commit.await,
            Broadcast::Duplicate(FirstCopy::Stored(p)) => Ok(p),
            Broadcast::Duplicate(FirstCopy::Pending(a)) => {
                a.visible().await?;
                Ok(a.position)
            }
        }
    }

    /// [`Broadcast::acknowledged`] for a caller that may block its thread
    /// (not a runtime worker); `None` for a replicated publish, which only
    /// the runtime can wait for.
    pub fn wait_local(&self) -> Option<Result<Position, LogError>> {
        let a = match self {
            Broadcast::Appended(a) | Broadcast::Duplicate(FirstCopy::Pending(a)) => a,
            Broadcast::Duplicate(FirstCopy::Stored(p)) => return Some(Ok(*p)),
            Broadcast::Replicating(_) => return None,
        };
        Some(a.wait().map(|()| a.position))
    }

    /// The position, when already known (a local append or a duplicate).
    pub fn position(&self) -> Option<Position> {
        match self {
            Broadcast::Appended(a) | Broadcast::Duplicate(FirstCopy::Pending(a)) => {
                Some(a.position)
            }
            Broadcast::Duplicate(FirstCopy::Stored(p)) => Some(*p),
            Broadcast::Replicating(_) => None,
        }
    }
}

/// Publish `text` on `topic`: its record (with `c` injected, and stamped
/// with `tp`/`e`/`o` when recovery is on) goes to the topic's log, through
/// the cluster when there is one. Errors that the message itself causes
/// (an invalid topic, too large) are found here, before anything is
/// replicated: a committed entry must apply on every node.
///
/// `id` is the publisher's id for the message: a publish whose id is
/// already stored on the topic, within the last `cluster.dedup_window`
/// identified publishes (of the shard in a cluster, of the topic on a
/// single node), is not stored again (the idempotent producer), and is
/// acknowledged with the first copy's position.
pub fn broadcast(
    state: &ServerState,
    topic: &str,
    text: &str,
    id: Option<&str>,
) -> Result<Broadcast, LogError> {
    let stamp = state.config.recovery_enabled;
    let append = || {
        state.log.append_with(
            topic,
            RecordKind::Message,
            text.len() + topic.len() + 48,
            |pos, buf| encode(stamp, topic, text, pos, buf),
        )
    };
    let taken = match (&state.cluster, id) {
        (None, None) => Broadcast::Appended(append()?),
        (None, Some(id)) => match state.publish_ids.publish(&state.log, topic, id, append)? {
            Taken::New(a) => Broadcast::Appended(a),
            Taken::Duplicate(first) => {
                Metrics::add(&state.metrics.publish_duplicates, 1);
                return Ok(Broadcast::Duplicate(first));
            }
        },
        (Some(cluster), _) => {
            check_replicable(state, stamp, topic, text)?;
            Broadcast::Replicating(cluster.publish(topic, text, id))
        }
    };
    Metrics::add(&state.metrics.broadcasts, 1);
    state.metrics.count_topic(topic);
    Ok(taken)
}

/// Refuse what the log of every node would refuse: an invalid topic name,
/// or a record over the size limit at the largest position it can get.
fn check_replicable(
    state: &ServerState,
    stamp: bool,
    topic: &str,
    text: &str,
) -> Result<(), LogError> {
    let config = state.log.config();
    topic_name::validate(topic, config.max_topic_bytes)?;
    let mut largest = BytesMut::new();
    encode(
        stamp,
        topic,
        text,
        Position::new(wse_log::Epoch(u32::MAX), u64::MAX),
        &mut largest,
    );
    if largest.len() > config.max_record_bytes {
        return Err(LogError::RecordTooLarge {
            size: largest.len(),
            limit: config.max_record_bytes,
        });
    }
    Ok(())
}

/// The stored bytes of a message published at `pos`
/// ([`stamp::write_stored_message`]).
pub(crate) fn encode(stamp: bool, topic: &str, text: &str, pos: Position, buf: &mut BytesMut) {
    stamp::write_stored_message(buf, stamp, text, topic, pos.epoch.0, pos.offset);
}

/// [`encode`] as the cluster applies committed publishes. Their text came
/// from [`broadcast`], so it is UTF-8; bytes that are not (a peer that
/// lies) are stored as they are rather than stop the shard.
pub(crate) fn record_encoder(stamp: bool) -> RecordEncoder {
    Arc::new(
        move |topic, text, pos, buf| match std::str::from_utf8(text) {
            Ok(text) => encode(stamp, topic, text, pos, buf),
            Err(_) => buf.put_slice(text),
        },
    )
}
