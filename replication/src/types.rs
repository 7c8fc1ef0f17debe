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
    /// The publisher's id for this message, when it gave one: a publish
    /// whose id is already stored on its topic (within the shard's
    /// idempotence window) is not stored again, and gets the first copy's
    /// position. Lets a publish whose commit timed out be sent again.
    pub id: Option<String>,
    /// What the record is: a message (the default, and what entries
    /// written before this field existed hold) or a presence operation.
    #[serde(default, skip_serializing_if = "PublishKind::is_message")]
    pub kind: PublishKind,
}

/// The kind of record a [`Publish`] becomes.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PublishKind {
    /// A topic message: stored as the server's encoder writes it (with its
    /// position stamped in), fanned out to subscribers, recoverable.
    #[default]
    Message,
    /// A presence operation, for the presence stream named by the topic:
    /// stored as given, never stamped, never delivered as a message.
    Presence,
}

impl PublishKind {
    fn is_message(&self) -> bool {
        *self == PublishKind::Message
    }
}

impl Publish {
    /// A publish without an id (never deduplicated).
    pub fn new(topic: impl Into<String>, payload: impl Into<Bytes>) -> Self {
        Publish {
            topic: topic.into(),
            payload: payload.into(),
            id: None,
            kind: PublishKind::Message,
        }
    }

    /// A presence operation for the presence stream `stream`.
    pub fn presence(stream: impl Into<String>, op: impl Into<Bytes>) -> Self {
        Publish {
            kind: PublishKind::Presence,
            ..Publish::new(stream, op)
        }
    }

    /// The same publish, identified by `id` (see [`Publish::id`]).
    #[must_use]
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

/// The payload of a Raft entry: publishes applied in order, together.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The publishes, in the order their records are appended.
    pub publishes: Vec<Publish>,
    /// Written only by `force-membership`, in an entry of its own after
    /// the forced membership: every topic of the shard is deleted here,
    /// and starts a new epoch (offsets from 0) when it is written next, so
    /// a client holding a
    /// position of the old history is told "not recovered" rather than
    /// given records that may differ from what it saw. Absent (false) in
    /// entries written before it existed.
    #[serde(default)]
    pub new_epoch: bool,
}

impl Request {
    /// An entry of `publishes`.
    pub fn new(publishes: Vec<Publish>) -> Request {
        Request {
            publishes,
            new_epoch: false,
        }
    }
}

/// What applying a [`Request`] gave: one position per publish, in order.
///
/// Positions (epoch and offset) are the same on every node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// Where each publish went.
    pub positions: Vec<Position>,
}
