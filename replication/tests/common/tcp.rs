//! A cluster of in-process nodes that talk over the TCP peer transport:
//! each node binds its peer listener on 127.0.0.1 (port 0 at first, the
//! same port again on restart), runs `SHARDS` shards that share its one
//! [`Peers`], and serves a [`TestService`] that hands out the shards'
//! Rafts and publishes forwarded batches. Each node's Raft log files go
//! through its own [`FaultyStorage`] (real files until a test injects a
//! fault, see [`TcpCluster::disk`]).

use super::{EVENT_TIMEOUT, fast_options};
use openraft::BasicNode;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tempfile::TempDir;
use wse_log::storage::FaultyStorage;
use wse_log::{Log, LogConfig, Position};
use wse_replication::net::BoxFuture;
use wse_replication::transfer;
use wse_replication::{
    FetchedRecord, ForwardRefused, ListenerHandle, NetOptions, NodeId, PeerListener, PeerService,
    Peers, Publish, Raft, Shard, ShardOptions,
};

/// Shards per node: more than one, so the connections are shared.
pub const SHARDS: u32 = 2;

/// A node's service to its peers: its shards.
pub struct TestService {
    /// Our node id, reported by `status`.
    pub node: NodeId,
    /// The node's shards, by shard number.
    pub shards: Vec<Arc<Shard>>,
    /// The node's topic logs, read by peers installing a snapshot.
    pub log: Arc<Log>,
}

impl PeerService for TestService {
    fn raft(&self, shard: u32) -> Option<Raft> {
        let shard = self.shards.get(shard as usize)?;
        Some(shard.raft().clone())
    }

    fn forward(
        &self,
        shard: u32,
        batch: Vec<Publish>,
    ) -> BoxFuture<'static, Result<Vec<Position>, ForwardRefused>> {
        let Some(shard) = self.shards.get(shard as usize).cloned() else {
            return Box::pin(async move {
                Err(ForwardRefused::Unavailable(format!("no shard {shard}")))
            });
        };
        Box::pin(async move { shard.publish(batch).await.map_err(ForwardRefused::from) })
    }

    fn status(&self) -> serde_json::Value {
        let leaders: Vec<Option<NodeId>> = self
            .shards
            .iter()
            .map(|s| s.metrics().current_leader)
            .collect();
        serde_json::json!({ "node": self.node, "leaders": leaders })
    }

    fn read_records(
        &self,
        topic: String,
        from: Position,
    ) -> BoxFuture<'static, Result<Vec<FetchedRecord>, String>> {
        let log = self.log.clone();
        Box::pin(async move {
            tokio::task::spawn_blocking(move || transfer::read_records(&log, &topic, from))
                .await
                .map_err(|e| e.to_string())?
        })
    }
}

/// One running node.
pub struct TcpNode {
    pub log: Arc<Log>,
    pub shards: Vec<Arc<Shard>>,
    pub peers: Peers,
    listener: ListenerHandle,
}

/// Nodes 1..=n, each with `SHARDS` shards, over TCP.
pub struct TcpCluster {
    root: TempDir,
    pub ids: Vec<NodeId>,
    /// Each node's peer address, kept across restarts.
    pub addrs: BTreeMap<NodeId, SocketAddr>,
    pub nodes: BTreeMap<NodeId, TcpNode>,
    pub options: ShardOptions,
    pub net: NetOptions,
    /// Each node's disk for its Raft logs, kept across restarts.
    disks: BTreeMap<NodeId, FaultyStorage>,
}

impl TcpCluster {
    /// Start `n` nodes, initialize every shard on node 1, and return once
    /// every shard has a leader.
    pub async fn start(n: u64) -> TcpCluster {
        TcpCluster::start_with(n, fast_options()).await
    }

    /// [`TcpCluster::start`] with `options`.
    pub async fn start_with(n: u64, options: ShardOptions) -> TcpCluster {
        let mut c = TcpCluster {
            root: tempfile::tempdir().unwrap(),
            ids: (1..=n).collect(),
            addrs: BTreeMap::new(),
            nodes: BTreeMap::new(),
            options,
            net: NetOptions::default(),
            disks: BTreeMap::new(),
        };
        let mut listeners = Vec::new();
        for &id in &c.ids {
            let listener = PeerListener::bind("127.0.0.1:0").await.unwrap();
            c.addrs.insert(id, listener.local_addr().unwrap());
            listeners.push((id, listener));
        }
        for (id, listener) in listeners {
            c.run_node(id, listener).await;
        }
        let members = c.members();
        for shard in 0..SHARDS {
            c.node(1).shards[shard as usize]
                .initialize(members.clone())
                .await
                .unwrap();
            c.leader(shard, &c.ids).await;
        }
        c
    }

    /// Every node, at its peer address.
    pub fn members(&self) -> BTreeMap<NodeId, BasicNode> {
        self.addrs
            .iter()
            .map(|(&id, addr)| (id, BasicNode::new(addr.to_string())))
            .collect()
    }

    fn dir(&self, id: NodeId) -> PathBuf {
        self.root.path().join(format!("node-{id}"))
    }

    /// Restart node `id` over its files, on its old port.
    pub async fn start_node(&mut self, id: NodeId) {
        let listener = PeerListener::bind(self.addrs[&id]).await.unwrap();
        self.run_node(id, listener).await;
    }

    /// Start node `id`'s shards, then serve them on `listener`.
    async fn run_node(&mut self, id: NodeId, listener: PeerListener) {
        let log = Arc::new(Log::open(self.dir(id).join("log"), LogConfig::default()).unwrap());
        let peers = Peers::new(id, self.net.clone());
        let disk = self.disks.entry(id).or_default().clone();
        let options = ShardOptions {
            fetch: Arc::new(peers.clone()),
            storage: Arc::new(disk),
            ..self.options.clone()
        };
        let mut shards = Vec::new();
        for shard in 0..SHARDS {
            let started = Shard::start(
                id,
                shard,
                &self.dir(id).join(format!("shard-{shard}")),
                log.clone(),
                peers.network(shard),
                &options,
            )
            .await
            .unwrap();
            shards.push(Arc::new(started));
        }
        let service = TestService {
            node: id,
            shards: shards.clone(),
            log: log.clone(),
        };
        let listener = listener
            .with_options(self.net.clone())
            .serve(Arc::new(service));
        let node = TcpNode {
            log,
            shards,
            peers,
            listener,
        };
        self.nodes.insert(id, node);
    }

    /// Stop node `id`: its peer port, its shards, its log; files stay.
    pub async fn stop_node(&mut self, id: NodeId) {
        let node = self.nodes.remove(&id).expect("running");
        node.listener.shutdown().await;
        for shard in &node.shards {
            shard.shutdown().await;
        }
        node.log.close().unwrap();
    }

    /// Node `id`'s disk for its Raft logs, to inject faults into.
    pub fn disk(&self, id: NodeId) -> &FaultyStorage {
        &self.disks[&id]
    }

    pub fn node(&self, id: NodeId) -> &TcpNode {
        &self.nodes[&id]
    }

    pub fn raft(&self, id: NodeId, shard: u32) -> &Raft {
        self.node(id).shards[shard as usize].raft()
    }

    /// Wait until a node of `among` leads `shard`, as seen by itself.
    pub async fn leader(&self, shard: u32, among: &[NodeId]) -> NodeId {
        super::leader_among(|id| self.raft(id, shard).clone(), among).await
    }

    /// Wait until every node of `ids` applied `shard` up to `leader`'s
    /// last applied entry.
    pub async fn converge(&self, shard: u32, leader: NodeId, ids: &[NodeId]) {
        let last = self.node(leader).shards[shard as usize]
            .metrics()
            .last_applied
            .map(|l| l.index);
        for &id in ids {
            self.raft(id, shard)
                .wait(Some(EVENT_TIMEOUT))
                .applied_index_at_least(last, "follower applied the leader's entries")
                .await
                .unwrap();
        }
    }

    /// The logs of `ids`, for `assert_identical_logs`.
    pub fn logs(&self, ids: &[NodeId]) -> Vec<(NodeId, &Log)> {
        ids.iter().map(|&id| (id, &*self.node(id).log)).collect()
    }
}
