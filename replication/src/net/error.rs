//! What the peer transport reports: a frame it cannot read or write
//! ([`FrameError`]), a peer it cannot reach or that answered wrongly
//! ([`NetError`]), and the two outcomes of a forwarded publish that are
//! not positions ([`ForwardRefused`], said by the leader's service, and
//! [`ForwardError`], what the forwarding node sees).

use crate::error::ClusterError;
use crate::types::NodeId;
use serde::{Deserialize, Serialize};
use std::io;
use std::sync::Arc;
use std::time::Duration;

/// A frame that cannot be encoded or decoded. Any of them on an accepted
/// connection closes it: after a bad frame the stream cannot be trusted.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// A body (on the wire or decompressed) larger than `max_frame`.
    #[error("frame body of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// The size claimed or reached.
        len: usize,
        /// `NetOptions::max_frame`.
        max: usize,
    },
    /// Flag bits this version does not know.
    #[error("unknown frame flags {0:#04x}")]
    Flags(u8),
    /// The stream ended inside a frame body.
    #[error("stream ended after {got} of {len} body bytes")]
    Truncated {
        /// The body length the header announced.
        len: usize,
        /// The bytes that came.
        got: usize,
    },
    /// A compressed body that zstd cannot decompress.
    #[error("zstd decompression: {0}")]
    Decompress(#[source] io::Error),
    /// zstd failed to compress (out of memory).
    #[error("zstd compression: {0}")]
    Compress(#[source] io::Error),
    /// A body that is not the MessagePack of a message.
    #[error("undecodable message: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    /// A message MessagePack cannot encode.
    #[error("unencodable message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// Reading the socket failed.
    #[error("read: {0}")]
    Io(#[from] io::Error),
}

/// Why a request to a peer got no answer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The TCP connection could not be made.
    #[error("connect to {addr}: {source}")]
    Connect {
        /// The peer's address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The connection or its handshake took longer than allowed.
    #[error("connect to {addr}: no connection within {after:?}")]
    ConnectTimeout {
        /// The peer's address.
        addr: String,
        /// How long we waited.
        after: Duration,
    },
    /// The handshake failed on our side (I/O error, wrong answer).
    #[error("handshake with {addr}: {source}")]
    Handshake {
        /// The peer's address.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// The peer refused the handshake (another version or cluster).
    #[error("{addr} refused the connection: {reason}")]
    Refused {
        /// The peer's address.
        addr: String,
        /// The peer's reason.
        reason: String,
    },
    /// A previous connection attempt failed less than the reconnect
    /// backoff ago; no new attempt was made.
    #[error("{addr} is unreachable (last attempt: {last}); retrying after the backoff")]
    Backoff {
        /// The peer's address.
        addr: String,
        /// Why the last attempt failed.
        last: Arc<NetError>,
    },
    /// The connection broke (or was already broken) before the answer.
    #[error("connection to {addr} lost: {reason}")]
    Lost {
        /// The peer's address.
        addr: String,
        /// Why it broke.
        reason: String,
    },
    /// The request could not be framed (e.g. larger than `max_frame`).
    #[error("request not sent: {0}")]
    Frame(#[from] FrameError),
    /// The peer got the request but answered nothing within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The peer could not serve the request (e.g. it has no such shard).
    #[error("the peer could not serve the request: {0}")]
    Failed(String),
    /// The peer answered with a response of another kind (a bug).
    #[error("unexpected response to a {0} request")]
    Unexpected(&'static str),
}

/// Why the leader's service refused a forwarded publish. Travels to the
/// forwarding node, which tells its client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum ForwardRefused {
    /// The node does not lead the shard (any more); `leader` is the one it
    /// knows of, to retry there.
    #[error("not the leader (leader: {leader:?})")]
    NotLeader {
        /// The leader the refusing node knows of, if any.
        leader: Option<NodeId>,
    },
    /// The shard cannot take writes now (stopped, storage failure, no
    /// such shard on that node).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The publish was not committed in time; it may still be.
    #[error("not committed within {after_ms} ms")]
    Timeout {
        /// How long the leader waited.
        after_ms: u64,
    },
    /// The batch itself is refused (message too large, invalid topic).
    #[error("invalid publish: {0}")]
    Invalid(String),
}

impl From<ClusterError> for ForwardRefused {
    /// What a forwarding node is told when the leader's own publish fails.
    fn from(e: ClusterError) -> Self {
        match e {
            ClusterError::NotLeader { leader, .. } => ForwardRefused::NotLeader { leader },
            ClusterError::Timeout { after, .. } => ForwardRefused::Timeout {
                after_ms: after.as_millis().try_into().unwrap_or(u64::MAX),
            },
            other => ForwardRefused::Unavailable(other.to_string()),
        }
    }
}

/// Why a forwarded publish got no positions.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The leader could not be reached, or the connection broke before its
    /// answer: the publish may or may not have been committed.
    #[error("forward: {0}")]
    Unreachable(#[source] NetError),
    /// The leader answered with a refusal.
    #[error("forward refused: {0}")]
    Refused(#[source] ForwardRefused),
    /// No answer within the timeout: the publish may still be committed.
    #[error("forward: no answer within {0:?}")]
    Timeout(Duration),
}
