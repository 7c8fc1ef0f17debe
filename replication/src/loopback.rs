//! An in-process network: each node's Raft calls the target's [`Raft`]
//! handle directly, and a node installing a snapshot reads the records it
//! lacks straight from the source node's [`Log`] ([`Fetch`]). For tests;
//! links can be cut to simulate partitions.
//!
//! Shaped after the router of openraft's examples.

use crate::net::BoxFuture;
use crate::transfer::{self, Fetch, FetchRequest, FetchedRecord};
use crate::types::{NodeId, Raft, TypeConfig};
use openraft::BasicNode;
use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use parking_lot::Mutex;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use wse_log::Log;

/// The nodes reachable in this process and the links that are cut.
#[derive(Clone, Default)]
pub struct Loopback {
    inner: Arc<Mutex<Wires>>,
}

#[derive(Default)]
struct Wires {
    /// Each registered node's Raft handle.
    nodes: BTreeMap<NodeId, Raft>,
    /// Each registered node's topic logs, for record fetches.
    logs: BTreeMap<NodeId, Arc<Log>>,
    /// Cut links, one direction each: `(from, to)`.
    cut: BTreeSet<(NodeId, NodeId)>,
}

/// Why a message did not arrive.
#[derive(Debug, thiserror::Error)]
#[error("loopback link {from} -> {to} is down")]
pub struct LinkDown {
    from: NodeId,
    to: NodeId,
}

impl Loopback {
    /// An empty network.
    pub fn new() -> Self {
        Self::default()
    }

    /// Make `raft` reachable as node `id` (replacing a previous one).
    pub fn register(&self, id: NodeId, raft: Raft) {
        self.inner.lock().nodes.insert(id, raft);
    }

    /// Serve node `id`'s topic logs to peers installing a snapshot.
    pub fn serve_log(&self, id: NodeId, log: Arc<Log>) {
        self.inner.lock().logs.insert(id, log);
    }

    /// Make node `id` unreachable (it stopped).
    pub fn unregister(&self, id: NodeId) {
        let mut w = self.inner.lock();
        w.nodes.remove(&id);
        w.logs.remove(&id);
    }

    /// Cut messages from `from` to `to` (one direction).
    pub fn cut(&self, from: NodeId, to: NodeId) {
        self.inner.lock().cut.insert((from, to));
    }

    /// Cut every link to and from `id`, other nodes among `peers`.
    pub fn isolate(&self, id: NodeId, peers: impl IntoIterator<Item = NodeId>) {
        let mut w = self.inner.lock();
        for p in peers.into_iter().filter(|&p| p != id) {
            w.cut.insert((id, p));
            w.cut.insert((p, id));
        }
    }

    /// Restore every link.
    pub fn heal(&self) {
        self.inner.lock().cut.clear();
    }

    /// The network factory of node `id`.
    pub fn endpoint(&self, id: NodeId) -> Endpoint {
        Endpoint {
            net: self.clone(),
            from: id,
        }
    }

    /// The target's Raft, if the link is up.
    fn reach(&self, from: NodeId, to: NodeId) -> Result<Raft, Unreachable> {
        let w = self.inner.lock();
        match w.nodes.get(&to) {
            Some(r) if !w.cut.contains(&(from, to)) => Ok(r.clone()),
            _ => Err(Unreachable::new(&LinkDown { from, to })),
        }
    }

    /// The answer of `to`, if the way back is up (a reply can be lost
    /// after the request arrived).
    fn back<T>(&self, from: NodeId, to: NodeId, answer: T) -> Result<T, Unreachable> {
        if self.inner.lock().cut.contains(&(to, from)) {
            return Err(Unreachable::new(&LinkDown { from: to, to: from }));
        }
        Ok(answer)
    }
}

impl Fetch for Loopback {
    fn fetch(
        &self,
        request: FetchRequest,
    ) -> BoxFuture<'static, Result<Vec<FetchedRecord>, String>> {
        let (from, to) = (request.asker, request.source);
        let log = {
            let w = self.inner.lock();
            match w.logs.get(&to) {
                Some(log) if !w.cut.contains(&(from, to)) && !w.cut.contains(&(to, from)) => {
                    Ok(log.clone())
                }
                _ => Err(LinkDown { from, to }.to_string()),
            }
        };
        Box::pin(async move {
            let log = log?;
            tokio::task::spawn_blocking(move || {
                transfer::read_records(&log, &request.topic, request.from)
            })
            .await
            .map_err(|e| e.to_string())?
        })
    }
}

/// One node's side of the loopback network (openraft's network factory).
pub struct Endpoint {
    net: Loopback,
    from: NodeId,
}

impl RaftNetworkFactory<TypeConfig> for Endpoint {
    type Network = Link;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Link {
        Link {
            net: self.net.clone(),
            from: self.from,
            to: target,
        }
    }
}

/// A link from one node to another.
pub struct Link {
    net: Loopback,
    from: NodeId,
    to: NodeId,
}

/// An RPC error of the loopback network.
type LinkError<E = openraft::error::Infallible> = RPCError<NodeId, BasicNode, RaftError<NodeId, E>>;

impl Link {
    /// Deliver one request with `call` and bring its answer back.
    async fn deliver<T, E, F>(&self, call: impl FnOnce(Raft) -> F) -> Result<T, LinkError<E>>
    where
        E: std::error::Error,
        F: Future<Output = Result<T, RaftError<NodeId, E>>>,
    {
        let raft = self.net.reach(self.from, self.to)?;
        let answer = call(raft)
            .await
            .map_err(|e| RPCError::RemoteError(RemoteError::new(self.to, e)))?;
        Ok(self.net.back(self.from, self.to, answer)?)
    }
}

impl RaftNetwork<TypeConfig> for Link {
    async fn append_entries(
        &mut self,
        req: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, LinkError> {
        self.deliver(|r| async move { r.append_entries(req).await })
            .await
    }

    async fn install_snapshot(
        &mut self,
        req: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<InstallSnapshotResponse<NodeId>, LinkError<InstallSnapshotError>> {
        self.deliver(|r| async move { r.install_snapshot(req).await })
            .await
    }

    async fn vote(
        &mut self,
        req: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, LinkError> {
        self.deliver(|r| async move { r.vote(req).await }).await
    }
}
