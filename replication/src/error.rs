//! What can go wrong starting a shard or publishing through it. openraft's
//! errors are large, so they are boxed: a `Result` stays small.

use crate::types::NodeId;
use openraft::BasicNode;
use openraft::ConfigError;
use openraft::error::{ClientWriteError, Fatal, InitializeError};
use std::time::Duration;

/// An error of a [`crate::Shard`] operation.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// This node does not lead the shard; a [`crate::ClusterNode`]
    /// forwards to the leader instead. `leader` is `None` while none is
    /// known, e.g. during an election or in a minority partition.
    #[error("shard {shard}: this node is not the leader (leader: {leader:?})")]
    NotLeader {
        /// The shard.
        shard: u32,
        /// The leader this node knows of, if any.
        leader: Option<NodeId>,
    },
    /// The publish was not committed in time (e.g. the leader lost its
    /// majority). It may still be committed later.
    #[error("shard {shard}: publish not committed within {after:?}")]
    Timeout {
        /// The shard.
        shard: u32,
        /// How long we waited.
        after: Duration,
    },
    /// The shard's Raft stopped (shut down, or a storage failure).
    #[error("shard {shard}: raft stopped: {source}")]
    Stopped {
        /// The shard.
        shard: u32,
        /// Why.
        source: Box<Fatal<NodeId>>,
    },
    /// openraft refused the write for another reason.
    #[error("shard {shard}: write rejected: {source}")]
    Rejected {
        /// The shard.
        shard: u32,
        /// openraft's reason.
        source: Box<ClientWriteError<NodeId, BasicNode>>,
    },
    /// The shard could not be initialized with its members.
    #[error("shard {shard}: initialize failed: {source}")]
    Initialize {
        /// The shard.
        shard: u32,
        /// openraft's reason.
        source: Box<InitializeError<NodeId, BasicNode>>,
    },
    /// The Raft options are invalid.
    #[error("invalid raft options: {0}")]
    Config(#[from] Box<ConfigError>),
    /// The shard's files could not be opened.
    #[error("shard {shard}: storage: {source}")]
    Storage {
        /// The shard.
        shard: u32,
        /// The I/O error.
        source: std::io::Error,
    },
}
