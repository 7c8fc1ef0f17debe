//! The peer transport: Raft and application RPCs between the nodes of a
//! cluster, over TCP.
//!
//! A node runs one [`PeerListener`] (the peer port, never the client
//! WebSocket port) and keeps one outgoing connection per peer, shared by
//! every shard it hosts: a node with 16 shards and 2 peers holds 2
//! outgoing connections, not 32. Requests on a connection are multiplexed
//! (each carries an id its response echoes), so a slow `AppendEntries` of
//! one shard does not hold up the heartbeats of another.
//!
//! The parts, client side first:
//! - [`Peers`] owns the outgoing connections, opens each lazily and again
//!   after it broke (at most one attempt per
//!   [`NetOptions::reconnect_backoff`]); [`Peers::network`] gives a shard
//!   its openraft network ([`ShardNetwork`]); [`Peers::forward`] sends a
//!   publish batch to the leader; [`query_status`] asks a node how it is.
//! - [`PeerListener`] accepts peer connections and hands each request to
//!   the node's [`PeerService`] (its Rafts, its publish path, its status).
//!
//! On the wire (see the crate's `README.md`, "Peer transport"): a
//! versioned handshake, then length-prefixed frames of MessagePack, zstd
//! compressed above [`NetOptions::compress_above`].
//!
//! # Layout
//!
//! - `frame`: the frame codec (length, flags, compression, limits).
//! - `handshake`: the first bytes of a connection (magic, version, node,
//!   cluster name) and their answer.
//! - `message`: the requests and responses a frame carries.
//! - [`error`]: what the transport reports ([`NetError`],
//!   [`ForwardRefused`], [`ForwardError`]).
//! - `outbound`: one outgoing connection (writer task, reader task,
//!   requests waiting for their answer).
//! - [`peers`]: the outgoing connection per peer, reconnecting; forwarding.
//! - [`raft_network`]: openraft's network of one shard over [`Peers`].
//! - `inbound`: serving one accepted connection.
//! - [`listener`]: the accept loop and its shutdown.

pub mod error;
mod frame;
mod handshake;
mod inbound;
pub mod listener;
pub(crate) mod message;
mod outbound;
pub mod peers;
pub mod raft_network;

pub use error::{ForwardError, ForwardRefused, FrameError, NetError};
pub use listener::{ListenerHandle, PeerListener, PeerService};
pub(crate) use peers::call_as_tool;
pub use peers::{Peers, query_status};
pub use raft_network::{PeerLink, ShardNetwork};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed future that can move between threads, as [`PeerService`]
/// returns it (a trait object cannot have an `async fn`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// How the peer transport behaves; the same on every node of a cluster
/// (the cluster name must be).
#[derive(Clone, Debug)]
pub struct NetOptions {
    /// The cluster's name, checked in the handshake so that nodes of two
    /// clusters sharing a network never exchange Raft messages. Default
    /// `"wse"`.
    pub cluster_name: String,
    /// The largest frame body accepted or sent, before and after
    /// decompression. Default 64 MiB: a peer claiming more is disconnected
    /// rather than trusted with our memory. It bounds an `AppendEntries`
    /// batch too (a larger one is split by openraft).
    pub max_frame: usize,
    /// Bodies larger than this are compressed with zstd. Default 4096
    /// bytes: smaller ones (votes, heartbeats, acks) gain little and would
    /// pay the compressor's latency.
    pub compress_above: usize,
    /// The longest an RPC waits for its answer (openraft's own deadline
    /// wins when smaller). Default 2 s.
    pub rpc_timeout: Duration,
    /// The longest a connection attempt (TCP connect and handshake) takes.
    /// Default 1 s.
    pub connect_timeout: Duration,
    /// The least time between two connection attempts to one peer, so a
    /// dead peer does not cause a connect storm from every shard's Raft.
    /// Default 200 ms.
    pub reconnect_backoff: Duration,
}

impl Default for NetOptions {
    fn default() -> Self {
        NetOptions {
            cluster_name: "wse".to_owned(),
            max_frame: 64 << 20,
            compress_above: 4096,
            rpc_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(1),
            reconnect_backoff: Duration::from_millis(200),
        }
    }
}
