//! A cluster of in-process nodes for the tests: each node has its own
//! wse-log data directory and Raft files in a shared temp dir, and talks
//! through a [`Loopback`] network whose links the tests cut. `tcp` holds
//! the same over the TCP peer transport.

#![allow(dead_code)] // each test binary uses part of it

pub mod tcp;

use bytes::Bytes;
use openraft::{BasicNode, ServerState};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use wse_log::{Log, LogConfig, Position, ReadLimits};
use wse_replication::{ClusterError, Loopback, NodeId, Publish, Shard, ShardOptions};

/// Wait until a node of `among` leads, as `raft_of(node)` sees it, and that
/// node sees itself leading (shared by the loopback and the TCP clusters).
pub async fn leader_among(
    raft_of: impl Fn(NodeId) -> wse_replication::Raft,
    among: &[NodeId],
) -> NodeId {
    let allowed: BTreeSet<NodeId> = among.iter().copied().collect();
    let m = raft_of(among[0])
        .wait(Some(EVENT_TIMEOUT))
        .metrics(
            |m| m.current_leader.is_some_and(|l| allowed.contains(&l)),
            "a leader among the nodes",
        )
        .await
        .unwrap();
    let leader = m.current_leader.unwrap();
    raft_of(leader)
        .wait(Some(EVENT_TIMEOUT))
        .state(ServerState::Leader, "leader sees itself leading")
        .await
        .unwrap();
    leader
}

/// Longest wait for a Raft event before a test fails.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

/// A publish that was acknowledged: where it went and what it held.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Acked {
    pub topic: String,
    pub offset: u64,
    pub payload: Bytes,
}

/// One running node.
pub struct Node {
    pub log: Arc<Log>,
    pub shard: Arc<Shard>,
}

/// Nodes 1..=n of one shard.
pub struct Cluster {
    pub net: Loopback,
    root: TempDir,
    pub ids: Vec<NodeId>,
    pub nodes: BTreeMap<NodeId, Node>,
    pub options: ShardOptions,
}

/// Options that fail over quickly on a loopback network.
pub fn fast_options() -> ShardOptions {
    ShardOptions {
        heartbeat: Duration::from_millis(50),
        election_timeout: (Duration::from_millis(200), Duration::from_millis(400)),
        publish_timeout: Duration::from_secs(2),
        ..ShardOptions::default()
    }
}

impl Cluster {
    /// Start `n` nodes and initialize the shard on node 1; returns once a
    /// leader is elected.
    pub async fn start(n: u64) -> Cluster {
        Cluster::start_with(n, fast_options()).await
    }

    /// [`Cluster::start`] with `options`.
    pub async fn start_with(n: u64, options: ShardOptions) -> Cluster {
        let mut c = Cluster {
            net: Loopback::new(),
            root: tempfile::tempdir().unwrap(),
            ids: (1..=n).collect(),
            nodes: BTreeMap::new(),
            options,
        };
        for id in c.ids.clone() {
            c.start_node(id).await;
        }
        let members: BTreeMap<NodeId, BasicNode> = c
            .ids
            .iter()
            .map(|&id| (id, BasicNode::new(format!("loopback:{id}"))))
            .collect();
        c.node(1).shard.initialize(members).await.unwrap();
        c.leader(&c.ids.clone()).await;
        c
    }

    fn dir(&self, id: NodeId) -> PathBuf {
        self.root.path().join(format!("node-{id}"))
    }

    /// Start (or restart, over the same files) node `id`.
    pub async fn start_node(&mut self, id: NodeId) {
        let log = Arc::new(Log::open(self.dir(id).join("log"), LogConfig::default()).unwrap());
        let options = ShardOptions {
            // A node installing a snapshot reads missing records straight
            // from another node's log.
            fetch: Arc::new(self.net.clone()),
            ..self.options.clone()
        };
        let shard = Shard::start(
            id,
            0,
            &self.dir(id).join("shard-0"),
            log.clone(),
            self.net.endpoint(id),
            &options,
        )
        .await
        .unwrap();
        self.net.register(id, shard.raft().clone());
        self.net.serve_log(id, log.clone());
        self.nodes.insert(
            id,
            Node {
                log,
                shard: Arc::new(shard),
            },
        );
    }

    /// Stop node `id` (its Raft and its log); its files stay.
    pub async fn stop_node(&mut self, id: NodeId) {
        self.net.unregister(id);
        let node = self.nodes.remove(&id).expect("running");
        node.shard.shutdown().await;
        node.log.close().unwrap();
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[&id]
    }

    /// Wait until a node of `among` leads, as seen by itself.
    pub async fn leader(&self, among: &[NodeId]) -> NodeId {
        leader_among(|id| self.node(id).shard.raft().clone(), among).await
    }

    /// Wait until every node of `ids` applied up to `leader`'s last applied entry.
    pub async fn converge(&self, leader: NodeId, ids: &[NodeId]) {
        let last = self
            .node(leader)
            .shard
            .metrics()
            .last_applied
            .map(|l| l.index);
        for &id in ids {
            self.node(id)
                .shard
                .raft()
                .wait(Some(EVENT_TIMEOUT))
                .applied_index_at_least(last, "follower applied the leader's entries")
                .await
                .unwrap();
        }
    }

    /// `count` single-message publishes through `leader`, `parallel` at a
    /// time, round-robin over `topics`.
    pub async fn publish_many(
        &self,
        leader: NodeId,
        topics: &[&str],
        tag: &str,
        count: usize,
        parallel: usize,
    ) -> Vec<Acked> {
        let shard = self.node(leader).shard.clone();
        publish_many(&shard, topics, tag, count, parallel).await
    }

    /// One publish on node `id`, its result as is.
    pub async fn publish_on(
        &self,
        id: NodeId,
        topic: &str,
        payload: &str,
    ) -> Result<Vec<Position>, ClusterError> {
        self.node(id)
            .shard
            .publish(vec![Publish::new(topic, payload.to_owned())])
            .await
    }

    /// Every record of `topic` on node `id`: (offset, payload).
    pub fn contents(&self, id: NodeId, topic: &str) -> Vec<(u64, Bytes)> {
        log_contents(&self.node(id).log, topic)
    }

    /// Assert every node of `ids` holds the same records of `topics` under
    /// the same epoch, and each acknowledged publish is there at its offset.
    pub fn assert_identical(&self, ids: &[NodeId], topics: &[&str], acked: &[Acked]) {
        let logs: Vec<(NodeId, &Log)> = ids.iter().map(|&id| (id, &*self.node(id).log)).collect();
        assert_identical_logs(&logs, topics, acked);
    }
}

/// `count` single-message publishes through `shard` (its leader),
/// `parallel` at a time, round-robin over `topics`.
pub async fn publish_many(
    shard: &Arc<Shard>,
    topics: &[&str],
    tag: &str,
    count: usize,
    parallel: usize,
) -> Vec<Acked> {
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..parallel {
        let shard = shard.clone();
        let topics: Vec<String> = topics.iter().map(|s| s.to_string()).collect();
        let tag = tag.to_owned();
        tasks.spawn(async move {
            let mut acked = Vec::new();
            for i in (t..count).step_by(parallel) {
                let topic = topics[i % topics.len()].clone();
                let payload = Bytes::from(format!("{tag}-{i}"));
                let pos = shard
                    .publish(vec![Publish::new(topic.clone(), payload.clone())])
                    .await
                    .unwrap();
                acked.push(Acked {
                    topic,
                    offset: pos[0].offset,
                    payload,
                });
            }
            acked
        });
    }
    let mut all = Vec::new();
    while let Some(r) = tasks.join_next().await {
        all.extend(r.unwrap());
    }
    all
}

/// Every record of `topic` in `log`: (offset, payload).
pub fn log_contents(log: &Log, topic: &str) -> Vec<(u64, Bytes)> {
    let Some(p) = log.position(topic) else {
        return Vec::new();
    };
    let mut at = Position::new(p.epoch, p.first_offset);
    let mut out = Vec::new();
    loop {
        let batch = log.read(topic, at, ReadLimits::default()).unwrap();
        out.extend(batch.records.iter().map(|r| (r.offset(), r.payload())));
        if batch.at_head() {
            return out;
        }
        at.offset = batch.next_offset;
    }
}

/// Assert every log of `logs` holds the same records of `topics` under the
/// same epoch, and each acknowledged publish is there at its offset.
pub fn assert_identical_logs(logs: &[(NodeId, &Log)], topics: &[&str], acked: &[Acked]) {
    // Applied means appended; a record is readable once its log made it
    // visible, a moment later: wait for that first.
    for (_, log) in logs {
        log.flush().unwrap();
    }
    let (first, first_log) = logs[0];
    for topic in topics {
        let reference = log_contents(first_log, topic);
        let offsets: Vec<u64> = reference.iter().map(|(o, _)| *o).collect();
        let dense: Vec<u64> = (offsets.first().copied().unwrap_or(0)..)
            .take(offsets.len())
            .collect();
        assert_eq!(offsets, dense, "topic {topic}: offsets are dense");
        let epoch = first_log.position(topic).map(|p| p.epoch);
        for &(id, log) in &logs[1..] {
            assert_eq!(
                log.position(topic).map(|p| p.epoch),
                epoch,
                "topic {topic}: node {id} has another epoch than node {first}"
            );
            assert_eq!(
                log_contents(log, topic),
                reference,
                "topic {topic}: node {id} differs from node {first}"
            );
        }
    }
    for &(id, log) in logs {
        let held: BTreeMap<(&str, u64), Bytes> = topics
            .iter()
            .flat_map(|t| {
                log_contents(log, t)
                    .into_iter()
                    .map(move |(o, p)| ((*t, o), p))
            })
            .collect();
        for a in acked {
            assert_eq!(
                held.get(&(a.topic.as_str(), a.offset)),
                Some(&a.payload),
                "node {id}: acked {a:?}"
            );
        }
    }
}
