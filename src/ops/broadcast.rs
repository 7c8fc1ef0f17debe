//! A broadcast to a topic: one record in the topic's log, which the fan-out
//! delivers once the log makes it visible.
//!
//! On a single node the record is appended here and now. In a cluster it
//! goes to the topic's shard first ([`crate::cluster::Replicator`]) and is
//! appended on every node only once a majority committed it; the bytes are
//! the same either way ([`encode`]), so a record reads alike on a single
//! node and on every member of a cluster.

use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use wse_log::{Appended, LogError, Position, RecordKind, topic_name};

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
        }
    }

    /// The position, when already known (a local append).
    pub fn position(&self) -> Option<Position> {
        match self {
            Broadcast::Appended(a) => Some(a.position),
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
/// `id` is the publisher's id for the message; in a cluster a publish whose
/// id is already stored on the topic is not stored again (the idempotent
/// producer). A single node has no retries to absorb (a publish there is
/// either stored or refused) and ignores it.
pub fn broadcast(
    state: &ServerState,
    topic: &str,
    text: &str,
    id: Option<&str>,
) -> Result<Broadcast, LogError> {
    let stamp = state.config.recovery_enabled;
    let taken = match &state.cluster {
        None => Broadcast::Appended(state.log.append_with(
            topic,
            RecordKind::Message,
            text.len() + topic.len() + 48,
            |pos, buf| encode(stamp, topic, text, pos, buf),
        )?),
        Some(cluster) => {
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
