//! What a frame carries: requests one node sends another, and their
//! responses. Raft RPCs name their shard (one connection serves every
//! shard); their responses are openraft's own result types, so a remote
//! Raft error arrives as it was raised.

use super::error::ForwardRefused;
use crate::membership::{MembershipChange, MembershipError, Outcome, Report, ShardError};
use crate::transfer::FetchedRecord;
use crate::types::{NodeId, Publish, TypeConfig};
use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::{Deserialize, Serialize};
use wse_log::Position;

/// A request, answered by exactly one [`PeerResponse`] with its id.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum PeerRequest {
    /// openraft's log replication (and heartbeat) for a shard.
    AppendEntries(u32, AppendEntriesRequest<TypeConfig>),
    /// openraft's vote request for a shard.
    Vote(u32, VoteRequest<NodeId>),
    /// A chunk of a snapshot for a shard.
    InstallSnapshot(u32, InstallSnapshotRequest<TypeConfig>),
    /// A publish batch for a shard, sent to its leader by a node that does
    /// not lead it.
    Forward(u32, Vec<Publish>),
    /// The node's status, for `wse cluster status`.
    Status,
    /// Apply a membership change to every shard (from a tool: `wse cluster
    /// add-node` / `remove-node`); the node asked routes each shard's part
    /// to that shard's leader.
    Membership {
        /// The change.
        change: MembershipChange,
        /// How long the shards may take, in milliseconds.
        timeout_ms: u64,
    },
    /// Apply a membership change to one shard; sent to its leader, which
    /// refuses with `NotLeader` rather than pass it on.
    ShardMembership {
        /// The shard.
        shard: u32,
        /// The change.
        change: MembershipChange,
        /// How long it may take, in milliseconds.
        timeout_ms: u64,
    },
    /// Records of a topic from a position, read from the node's topic log
    /// (a node installing a snapshot fetches what it lacks; at most
    /// `transfer::MAX_RECORDS` records or `transfer::MAX_BYTES` bytes).
    ReadRecords {
        /// The topic.
        topic: String,
        /// The first record wanted (its epoch must be the topic's).
        from: Position,
    },
}

/// The answer to a [`PeerRequest`] of the same name.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum PeerResponse {
    /// The shard's Raft answer to `AppendEntries`.
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    /// The shard's Raft answer to `Vote`.
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    /// The shard's Raft answer to `InstallSnapshot`.
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    /// Where the forwarded publishes went, or why not.
    Forward(Result<Vec<Position>, ForwardRefused>),
    /// The node's status.
    Status(serde_json::Value),
    /// What the change did on every shard, or which shards failed.
    Membership(Result<Report, MembershipError>),
    /// What the change did to the shard.
    ShardMembership(Result<Outcome, ShardError>),
    /// The records read, consecutive from the asked position (none when
    /// the node has none there yet), or why they cannot be read.
    Records(Result<Vec<FetchedRecord>, String>),
    /// The request could not be served at all (e.g. the node has no such
    /// shard, or the answer could not be encoded).
    Failed(String),
}
