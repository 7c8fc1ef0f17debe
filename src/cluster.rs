//! The seam between the server and a cluster: how a broadcast becomes a
//! record when the log is replicated.
//!
//! A single node appends a broadcast to its own log. In a cluster the
//! server hands it to a [`Replicator`] instead (the `wse-replication`
//! crate implements one with a Raft group per shard of topics); the
//! replicator appends it to this node's log only once a majority committed
//! it, so the log listener, fan-out and recovery see committed records
//! only, and every node holds them at the same (epoch, offset).
//!
//! The server depends on this trait, never on the replication crate: the
//! arrow stays `log ← server ← replication`, and `wse serve` or the Python
//! module plug a cluster in through [`crate::Server::with_cluster`].

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use wse_log::{Log, LogError, Position};

/// A boxed future that can move between threads.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A replicated publish on its way: resolves once committed and applied.
pub type Commit = BoxFuture<'static, Result<Position, PublishError>>;

/// Writes the stored bytes of a published message once its position is
/// known: `(topic, text, position, buffer)`. The server's encoder stamps
/// the position into the message, exactly as a single node does, so a
/// record reads the same on every node and on a single node.
pub type RecordEncoder = Arc<dyn Fn(&str, &[u8], Position, &mut BytesMut) + Send + Sync>;

/// Why a publish is not acknowledged (on a single node only `Log` occurs).
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// No leader could take the publish (an election is running, or this
    /// node is in a minority partition). Nothing was appended; retry.
    #[error("cluster unavailable for topic {topic:?}: {reason}")]
    Unavailable {
        /// The topic.
        topic: String,
        /// What the cluster said.
        reason: String,
    },
    /// The commit was not seen in time. The publish may still be committed
    /// later: retry with the same idempotence key to avoid a duplicate.
    #[error("publish to {topic:?} not committed within {after_ms} ms; it may still be committed")]
    Timeout {
        /// The topic.
        topic: String,
        /// How long it waited.
        after_ms: u64,
    },
    /// The cluster refused the message itself (too large, invalid topic).
    #[error(transparent)]
    Log(#[from] LogError),
    /// The cluster is stopped.
    #[error("the cluster is stopped")]
    Stopped,
}

/// Why a membership change did not finish (some shards may have changed:
/// asking again finishes the others).
#[derive(Debug, thiserror::Error)]
#[error("membership change failed: {reason}")]
pub struct MembershipFailed {
    /// What the cluster said.
    pub reason: String,
}

/// A cluster's publish path, as the server uses it.
pub trait Replicator: Send + Sync + 'static {
    /// Replicate `text` on `topic` (already checked: a valid topic, a
    /// record within the size limit). With an `id`, a publish of the same
    /// id already stored on the topic (within the cluster's idempotence
    /// window) is not stored again: the future gives the first copy's
    /// position. The publish is handed on before this
    /// returns, so publishes handed in one after another by one caller are
    /// committed in that order, and dropping the future does not cancel it
    /// (fire-and-forget). The future resolves with the record's position
    /// once a majority of the topic's shard committed it and the shard's
    /// leader applied it; this node applies it as the commit reaches it
    /// (at once when it is the leader), and its subscribers get it then.
    fn publish(&self, topic: &str, text: &str, id: Option<&str>) -> Commit;

    /// Replicate the presence operation `op` (its stored bytes) of
    /// `topic`, in the topic's shard, to the log stream `stream` (the
    /// topic's presence stream). Committed records reach every node's
    /// log as records of kind `Presence`, stored as given, and each node
    /// folds them into its presence. Never deduplicated: applying a
    /// presence operation twice changes nothing.
    fn publish_presence(&self, topic: &str, stream: &str, op: Vec<u8>) -> Commit;

    /// How long this node has been the leader of `topic`'s shard (`None`:
    /// it is not the leader now). The leader is who writes the leaves of a
    /// dead node's users, and the presence snapshots, for the topics of
    /// its shards; it judges a node dead only after leading long enough
    /// for every live member to have answered its heartbeats.
    fn leader_for(&self, topic: &str) -> Option<Duration>;

    /// How long node `node` has not answered this node (zero for this
    /// node). On a shard's leader, which calls every member once per
    /// heartbeat, this is how long the member has been unreachable.
    fn silent_for(&self, node: u64) -> Duration;

    /// This node's id in the cluster.
    fn node_id(&self) -> u64;

    /// Make node `id`, whose peer listener is at `addr`, a voter of every
    /// shard (a learner first, promoted once caught up), through each
    /// shard's leader, within `timeout`. The node must run, started to
    /// join. Idempotent: asked again after a failure, it finishes the
    /// shards left. Returns the shards whose membership changed.
    fn add_node(
        &self,
        id: u64,
        addr: &str,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u32>, MembershipFailed>>;

    /// Take node `id` out of every shard's membership, within `timeout`;
    /// the shards whose membership changed.
    fn remove_node(
        &self,
        id: u64,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Vec<u32>, MembershipFailed>>;

    /// The node's view of the cluster now: members, and per shard its
    /// role, leader, term, log and applied index, followers' lag.
    fn status(&self) -> ClusterStatus;

    /// Stop replicating (shards, peer listener). Called by `Server::stop`
    /// before the log closes; the Raft files stay for a restart.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
}

/// Starts a [`Replicator`] on a server's log; `Server::start` calls it on
/// the server's runtime, after the log is open and before clients are
/// accepted.
pub trait ClusterStarter: Send + Sync + 'static {
    /// Start the node's part of the cluster, applying committed records to
    /// `log`, encoding each with `encode`.
    fn start(
        &self,
        log: Arc<Log>,
        encode: RecordEncoder,
    ) -> BoxFuture<'static, Result<Arc<dyn Replicator>, Box<dyn std::error::Error + Send + Sync>>>;
}

/// A node's view of the cluster (`wse cluster status`, `Server::cluster_status`,
/// the `wse_cluster_shard_*` Prometheus series).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClusterStatus {
    /// This node.
    pub node_id: u64,
    /// The members of the first shard's membership, id → peer address.
    pub members: BTreeMap<u64, String>,
    /// Every shard, in order.
    pub shards: Vec<ShardStatus>,
    /// The peers this node has an open connection to (connections are
    /// opened when first needed: a peer this node never had to talk to is
    /// not listed).
    pub connected_peers: Vec<u64>,
}

/// One shard as this node sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ShardStatus {
    /// The shard.
    pub shard: u32,
    /// This node's role: `leader`, `follower`, `candidate`, `learner` or
    /// `shutdown`.
    pub state: String,
    /// The voting members of the shard's membership.
    pub voters: Vec<u64>,
    /// Its learners (added, catching up, not voting yet).
    pub learners: Vec<u64>,
    /// The leader this node knows of.
    pub leader: Option<u64>,
    /// The current term; it grows by one or more with every election.
    pub term: u64,
    /// The last entry in this node's Raft log.
    pub last_log_index: Option<u64>,
    /// The last entry applied to the topic logs (committed, by definition).
    pub applied: Option<u64>,
    /// On the leader: how long ago a majority last acknowledged it.
    pub millis_since_quorum_ack: Option<u64>,
    /// On the leader: entries each follower lacks.
    pub lag: Option<BTreeMap<u64, u64>>,
    /// On the leader: per follower, milliseconds since it last held every
    /// entry of the leader's log (0 for one that keeps up).
    #[serde(default)]
    pub lag_millis: Option<BTreeMap<u64, u64>>,
    /// Times this node saw the shard's leader change (failovers, as this
    /// node witnessed them).
    #[serde(default)]
    pub leader_changes: u64,
}

/// A per-shard Prometheus series: name, type, help, and its value for a
/// shard (absent: not reported for that shard).
type Series = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ShardStatus) -> Option<f64>,
);

/// The `wse_cluster_shard_*` series of `status`, in Prometheus text.
pub(crate) fn write_prometheus(out: &mut String, status: &ClusterStatus) {
    let series: [Series; 6] = [
        (
            "wse_cluster_shard_leader",
            "gauge",
            "The shard's leader as this node knows it (0: none)",
            |s| Some(s.leader.unwrap_or(0) as f64),
        ),
        (
            "wse_cluster_shard_term",
            "counter",
            "The shard's Raft term (each election adds at least one)",
            |s| Some(s.term as f64),
        ),
        (
            "wse_cluster_shard_last_log_index",
            "gauge",
            "Last entry of this node's Raft log of the shard",
            |s| s.last_log_index.map(|v| v as f64),
        ),
        (
            "wse_cluster_shard_applied_index",
            "gauge",
            "Last entry of the shard applied (committed) on this node",
            |s| s.applied.map(|v| v as f64),
        ),
        (
            "wse_cluster_shard_leader_changes_total",
            "counter",
            "Times this node saw the shard's leader change",
            |s| Some(s.leader_changes as f64),
        ),
        (
            "wse_cluster_shard_quorum_ack_age_seconds",
            "gauge",
            "On the leader: time since a majority last acknowledged it",
            |s| s.millis_since_quorum_ack.map(|v| v as f64 / 1000.0),
        ),
    ];
    for (name, kind, help, read) in series {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for s in &status.shards {
            if let Some(v) = read(s) {
                let _ = writeln!(out, "{name}{{shard=\"{}\"}} {v}", s.shard);
            }
        }
    }
    let lag = "wse_cluster_follower_lag_entries";
    let _ = writeln!(
        out,
        "# HELP {lag} On the leader: entries a follower lacks\n# TYPE {lag} gauge"
    );
    for s in &status.shards {
        for (node, n) in s.lag.iter().flatten() {
            let _ = writeln!(out, "{lag}{{shard=\"{}\",node=\"{node}\"}} {n}", s.shard);
        }
    }
    let behind = "wse_cluster_follower_lag_seconds";
    let _ = writeln!(
        out,
        "# HELP {behind} On the leader: time since a follower last held the whole log\n# TYPE {behind} gauge"
    );
    for s in &status.shards {
        for (node, ms) in s.lag_millis.iter().flatten() {
            let secs = *ms as f64 / 1000.0;
            let _ = writeln!(
                out,
                "{behind}{{shard=\"{}\",node=\"{node}\"}} {secs}",
                s.shard
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shard_and_follower_is_a_series() {
        let status = ClusterStatus {
            node_id: 1,
            connected_peers: vec![2],
            members: BTreeMap::from([(1, "a:1".into()), (2, "b:2".into())]),
            shards: vec![
                ShardStatus {
                    shard: 0,
                    state: "leader".into(),
                    voters: vec![1, 2],
                    learners: Vec::new(),
                    leader: Some(1),
                    term: 3,
                    last_log_index: Some(9),
                    applied: Some(9),
                    millis_since_quorum_ack: Some(1500),
                    lag: Some(BTreeMap::from([(2, 4)])),
                    lag_millis: Some(BTreeMap::from([(2, 2500)])),
                    leader_changes: 2,
                },
                ShardStatus {
                    shard: 1,
                    state: "follower".into(),
                    term: 2,
                    ..ShardStatus::default()
                },
            ],
        };
        let mut out = String::new();
        write_prometheus(&mut out, &status);
        for line in [
            "wse_cluster_shard_leader{shard=\"0\"} 1",
            "wse_cluster_shard_leader{shard=\"1\"} 0",
            "wse_cluster_shard_term{shard=\"1\"} 2",
            "wse_cluster_shard_quorum_ack_age_seconds{shard=\"0\"} 1.5",
            "wse_cluster_follower_lag_entries{shard=\"0\",node=\"2\"} 4",
            "wse_cluster_follower_lag_seconds{shard=\"0\",node=\"2\"} 2.5",
            "wse_cluster_shard_leader_changes_total{shard=\"0\"} 2",
        ] {
            assert!(out.lines().any(|l| l == line), "{line} in\n{out}");
        }
        assert!(
            !out.contains("wse_cluster_shard_applied_index{shard=\"1\"}"),
            "absent values are left out"
        );
    }
}
