//! Replication of WSE topic logs: one Raft group per shard of topics.
//!
//! Topics hash into a fixed number of shards; each shard is a Raft group
//! run by [openraft](https://docs.rs/openraft/0.9) (leader choice, commit,
//! truncation of divergent suffixes are openraft's, never ours). A publish
//! is a Raft entry ([`Request`], a batch of [`Publish`]es); the state
//! machine applies committed entries in log order by appending to the
//! node's [`wse_log::Log`], so every node holds the same records at the
//! same offsets.
//!
//! A [`Shard`] is one node's part of one shard: a [`LogStore`] (the Raft
//! log, in its own file), a [`StateMachine`] (applies to the topic logs),
//! and a network: [`net`] (TCP between nodes: one peer listener and one
//! connection per peer, shared by all of a node's shards, see [`Peers`] and
//! [`PeerListener`]) or [`Loopback`] (in-process, for tests).
//!
//! A [`ClusterNode`] is a node's part of the whole cluster: every shard,
//! the peer listener, and the publish path the server calls through
//! `wse::cluster::Replicator` (`wse serve` starts one with [`Starter`]).
//! Every replica creates a topic with the same epoch, derived from the
//! entry that first wrote it, so records have the same (epoch, offset) on
//! every node.
//!
//! # Layout
//!
//! - [`types`]: the Raft type configuration, entry payload and response.
//! - `log_file`: the Raft log file (frames with a CRC, truncate, rewrite).
//! - [`log_store`]: openraft's log storage on that file, vote and markers.
//! - `durable_file`: small state files replaced atomically.
//! - `dedup`: the idempotence window (publish ids seen per topic).
//! - [`state_machine`]: applying entries to topic logs, exactly once;
//!   building and installing snapshots.
//! - [`snapshot`]: what a snapshot holds (positions, epochs and the
//!   idempotence window, never records), its file, and installing one.
//! - [`transfer`]: fetching the records a snapshot names from a peer
//!   ([`Fetch`]) and appending them at the same offsets.
//! - [`shard`]: a node's shard handle (start, initialize, submit, publish).
//! - [`membership`]: adding and removing nodes at run time (through each
//!   shard's leader), and whether a starting node founds or joins.
//! - [`force`]: forcing a membership offline when a majority of a shard's
//!   replicas lost their data; the shard's topics start a new epoch.
//! - [`node`]: the node: topic → shard, a batching queue per shard,
//!   forwarding to leaders, status; the server's `Replicator`.
//! - `lag`: followers' lag in time and leader changes, sampled from
//!   openraft's metrics for the status.
//! - [`loopback`]: the in-process network with cuttable links.
//! - [`net`]: the TCP peer transport: frames, handshake, per-peer
//!   connections, each shard's openraft network, forwarding, the peer
//!   listener and the service it serves.
//! - [`error`]: what a shard operation can fail with ([`ClusterError`]).

mod dedup;
mod durable_file;
pub mod error;
pub mod force;
mod lag;
mod log_file;
pub mod log_store;
pub mod loopback;
pub mod membership;
pub mod net;
pub mod node;
pub mod shard;
pub mod snapshot;
pub mod state_machine;
pub mod transfer;
pub mod types;

pub use dedup::WindowEntry;
pub use error::ClusterError;
pub use log_store::LogStore;
pub use loopback::Loopback;
pub use membership::{MembershipChange, MembershipError, Outcome, Report, ShardError};
pub use net::{
    ForwardError, ForwardRefused, ListenerHandle, NetError, NetOptions, PeerListener, PeerService,
    Peers, ShardNetwork, query_status,
};
pub use node::{ClusterNode, Starter, shard_of};
pub use shard::{Shard, ShardOptions};
pub use snapshot::SnapshotData;
pub use state_machine::{Applied, StateMachine};
pub use transfer::{Fetch, FetchRequest, FetchedRecord};
pub use types::{NodeId, Publish, PublishKind, Raft, Receipt, Request, TypeConfig};
