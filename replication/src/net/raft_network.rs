//! openraft's network for one shard of this node, over the node's shared
//! peer connections ([`Peers`]).
//!
//! Errors are mapped so openraft reacts as it should: a peer we cannot
//! connect to, or whose connection broke, is
//! [`RPCError::Unreachable`] (openraft backs off before retrying); a peer
//! that got the request but did not answer in time is
//! [`RPCError::Timeout`] (retried at once, as when openraft's own deadline
//! fires); an error raised by the remote Raft is
//! [`RPCError::RemoteError`]; an `AppendEntries` too large for one frame is
//! [`RPCError::PayloadTooLarge`], so openraft sends fewer entries.

use super::error::{FrameError, NetError};
use super::message::{PeerRequest, PeerResponse};
use super::peers::Peers;
use crate::types::{NodeId, TypeConfig};
use openraft::error::{
    InstallSnapshotError, PayloadTooLarge, RPCError, RaftError, RemoteError, Timeout, Unreachable,
};
use openraft::network::{Backoff, RPCOption, RPCTypes, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, LogId};
use std::time::Duration;

/// The network factory of one shard: links to the shard's peers.
pub struct ShardNetwork {
    /// The node's connections, shared by all of its shards.
    peers: Peers,
    /// The shard whose Raft uses this network.
    shard: u32,
}

impl ShardNetwork {
    pub(crate) fn new(peers: Peers, shard: u32) -> ShardNetwork {
        ShardNetwork { peers, shard }
    }
}

impl RaftNetworkFactory<TypeConfig> for ShardNetwork {
    type Network = PeerLink;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> PeerLink {
        PeerLink {
            peers: self.peers.clone(),
            shard: self.shard,
            target,
            addr: node.addr.clone(),
            unanswered: None,
        }
    }
}

/// One shard's link to one peer (openraft's network client).
pub struct PeerLink {
    /// The node's connections, shared with its other shards.
    peers: Peers,
    /// The shard this link's requests are for.
    shard: u32,
    /// The peer's node id.
    target: NodeId,
    /// The peer's address, from its membership entry.
    addr: String,
    /// The last entry of the newest AppendEntries with entries that got no
    /// answer in time (see [`PeerLink::append_entries`]).
    unanswered: Option<LogId<NodeId>>,
}

/// An RPC error of this network.
type LinkError<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl PeerLink {
    /// Send `request`, waiting no longer than openraft allows (its soft
    /// deadline, so we answer before it cancels) nor `rpc_timeout`.
    async fn send<E: std::error::Error>(
        &self,
        action: RPCTypes,
        request: PeerRequest,
        option: &RPCOption,
    ) -> Result<PeerResponse, LinkError<E>> {
        let timeout = option.soft_ttl().min(self.peers.options().rpc_timeout);
        let sent = self
            .peers
            .call(self.target, &self.addr, &request, timeout)
            .await;
        sent.map_err(|e| self.rpc_error(action, e, &request, timeout))
    }

    /// What openraft is told about a request that got no answer.
    fn rpc_error<E: std::error::Error>(
        &self,
        action: RPCTypes,
        e: NetError,
        request: &PeerRequest,
        timeout: Duration,
    ) -> LinkError<E> {
        match (e, request) {
            (NetError::Timeout(_), _) => RPCError::Timeout(Timeout {
                action,
                id: self.peers.me(),
                target: self.target,
                timeout,
            }),
            (
                e @ NetError::Frame(FrameError::TooLarge { .. }),
                PeerRequest::AppendEntries(_, r),
            ) => {
                let hint = (r.entries.len() as u64 / 2).max(1);
                RPCError::PayloadTooLarge(
                    PayloadTooLarge::new_entries_hint(hint).with_source_error(&e),
                )
            }
            (e, _) => RPCError::Unreachable(Unreachable::new(&e)),
        }
    }

    /// A remote Raft's error as openraft's.
    fn remote<E: std::error::Error>(&self, e: RaftError<NodeId, E>) -> LinkError<E> {
        RPCError::RemoteError(RemoteError::new(self.target, e))
    }

    /// A response of the wrong kind, or the peer's refusal to serve.
    fn unserved<E: std::error::Error>(
        &self,
        response: PeerResponse,
        kind: &'static str,
    ) -> LinkError<E> {
        let e = match response {
            PeerResponse::Failed(reason) => NetError::Failed(reason),
            _ => NetError::Unexpected(kind),
        };
        RPCError::Unreachable(Unreachable::new(&e))
    }
}

impl RaftNetwork<TypeConfig> for PeerLink {
    /// How long openraft waits before it tries an unreachable follower
    /// again: the link's reconnect backoff, not openraft's default 500 ms.
    /// A follower that was down (or not yet started) then hears from the
    /// leader within one backoff of coming up, well inside its election
    /// timeout, instead of starting an election that deposes a healthy
    /// leader. A dead peer still costs one connect attempt per backoff.
    fn backoff(&self) -> Backoff {
        Backoff::new(std::iter::repeat(self.peers.options().reconnect_backoff))
    }

    /// Send `req`, or only its entries up to the last one of a request
    /// that timed out, answering `PartialSuccess` for those (openraft lets
    /// a network send a prefix of the entries).
    ///
    /// Why: openraft waits one heartbeat interval for an answer and then
    /// sends again from the last entry the follower confirmed, with every
    /// entry since, new ones included. A follower whose fsync takes longer
    /// than that (a slow or busy disk) has stored the entries of the
    /// request that timed out, but each new request brings new entries to
    /// fsync, so it timed out too: under a steady stream of publishes no
    /// answer ever came back in time and the shard stopped committing,
    /// though the follower was up to date. Sending only what the follower
    /// already got lets it answer without an fsync; the leader learns how
    /// far it is, commits, and the next request carries the new entries.
    async fn append_entries(
        &mut self,
        mut req: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, LinkError> {
        let resent = self.unanswered.filter(|u| {
            req.entries.last().is_some_and(|e| e.log_id.index > u.index)
                && req.entries.iter().any(|e| e.log_id == *u)
        });
        if let Some(u) = resent {
            req.entries.retain(|e| e.log_id.index <= u.index);
        }
        // Noted before sending: openraft drops this future when its own
        // deadline passes first, and that is a timeout too.
        if let Some(last) = req.entries.last() {
            self.unanswered = Some(last.log_id);
        }
        let request = PeerRequest::AppendEntries(self.shard, req);
        let answer = match self.send(RPCTypes::AppendEntries, request, &option).await {
            Ok(PeerResponse::AppendEntries(r)) => r.map_err(|e| self.remote(e)),
            Ok(other) => Err(self.unserved(other, "append-entries")),
            Err(e) => Err(e),
        };
        if !matches!(answer, Err(RPCError::Timeout(_))) {
            self.unanswered = None;
        }
        match answer? {
            AppendEntriesResponse::Success if resent.is_some() => {
                Ok(AppendEntriesResponse::PartialSuccess(resent))
            }
            other => Ok(other),
        }
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, LinkError<InstallSnapshotError>> {
        let request = PeerRequest::InstallSnapshot(self.shard, req);
        match self
            .send(RPCTypes::InstallSnapshot, request, &option)
            .await?
        {
            PeerResponse::InstallSnapshot(r) => r.map_err(|e| self.remote(e)),
            other => Err(self.unserved(other, "install-snapshot")),
        }
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, LinkError> {
        let request = PeerRequest::Vote(self.shard, req);
        match self.send(RPCTypes::Vote, request, &option).await? {
            PeerResponse::Vote(r) => r.map_err(|e| self.remote(e)),
            other => Err(self.unserved(other, "vote")),
        }
    }
}
