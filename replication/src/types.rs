//! The Raft type configuration of a shard and its entry payload.
//!
//! A Raft entry carries a [`Request`]: a batch of publishes, so one
//! consensus round (one fsync on each member) can carry many messages. The
//! state machine answers with a [`Receipt`]: the position each publish got
//! in its topic's log on the node that applied it.

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::io::Cursor;
use wse_log::Position;

/// A node of the cluster, stable for the node's life.
pub type NodeId = u64;

openraft::declare_raft_types!(
    /// The Raft types of a shard: node ids are `u64`, a node is its
    /// address ([`openraft::BasicNode`]), an entry is a [`Request`].
    pub TypeConfig:
        D = Request,
        R = Receipt,
        NodeId = NodeId,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

/// The openraft handle of one shard's Raft group on this node.
pub type Raft = openraft::Raft<TypeConfig>;

/// One message for one topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publish {
    /// The topic the message is appended to.
    pub topic: String,
    /// The message, stored as the record's payload unchanged.
    pub payload: Bytes,
    /// Who sent it, for the idempotent producer of a later step: a retried
    /// publish with the same `(producer, seq)` will not be appended twice.
    /// Carried but not yet checked.
    pub producer: Option<ProducerSeq>,
}

/// An idempotence key: a producer and its sequence number.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerSeq {
    /// The producer, unique in the cluster.
    pub producer_id: u64,
    /// Its sequence number, increasing per producer.
    pub seq: u64,
}

impl Publish {
    /// A publish without an idempotence key.
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
            producer: None,
        }
    }
}

/// The payload of a Raft entry: publishes applied in order, together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The publishes, in the order their records are appended.
    pub publishes: Vec<Publish>,
}

/// What applying a [`Request`] gave: one position per publish, in order.
///
/// Positions (epoch and offset) are the same on every node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Where each publish went.
    pub positions: Vec<Position>,
}
