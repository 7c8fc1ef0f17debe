//! The options of a node in a cluster. The server itself only checks them;
//! the replication crate (plugged in with [`crate::Server::with_cluster`])
//! runs the cluster they describe.

use std::time::Duration;

use super::ConfigError;

/// How this node takes part in a cluster (by default it does not: a single
/// node, whose log is its own).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClusterConfig {
    /// This node's id, stable for the node's life and unique in the
    /// cluster (default `None`: no cluster).
    pub node_id: Option<u64>,
    /// Address the peer listener binds, `host:port`; peer frames never
    /// travel on the client port (default `None`; required in a cluster).
    pub listen: Option<String>,
    /// Every voting member at the cluster's first start, this node
    /// included, as `(id, "host:port")` (default none). Later changes of
    /// membership are made at run time and stored in the Raft logs; this
    /// list is then only read for nodes the logs do not know.
    pub peers: Vec<(u64, String)>,
    /// Allow the peer link in plaintext (default false). Until mutual TLS
    /// lands a cluster does not start without it, so nobody runs an
    /// unauthenticated peer port by accident.
    pub insecure: bool,
    /// Shards topics are hashed into, each its own Raft group (default 16).
    /// Fixed for the cluster's life: a topic's shard must never change.
    pub shards: u32,
    /// Leader heartbeat period (default 150 ms).
    pub heartbeat: Duration,
    /// A follower that hears no leader for a random time between this and
    /// twice this starts an election (default 1 s). Shorter fails over
    /// sooner; too short turns a slow fsync or a busy machine into needless
    /// elections.
    pub election_timeout: Duration,
    /// How long a publish waits for its commit before it is reported as
    /// failed (default 5 s). A publish that timed out may still be
    /// committed later.
    pub publish_timeout: Duration,
    /// Publish ids remembered per shard (default 10,000; 0: none). A
    /// publish that carries an id already stored on its topic within this
    /// window is not stored again (the idempotent producer): a retry after
    /// a timeout must come before that many other identified publishes of
    /// its shard. A single node (no cluster) keeps a window of this many
    /// ids per topic, in memory only (`ops::publish_ids`): one option, as
    /// the semantics are the same.
    pub dedup_window: usize,
    /// A node a shard's leader has not heard from this long is taken for
    /// dead (default 3 s): the leader removes the presence entries of its
    /// connections from the topics of its shards, so its users leave on
    /// every node. Shorter tells a crash sooner; too short makes users of
    /// a node behind a slow link leave and join again.
    pub node_timeout: Duration,
    /// Join a running cluster at this node's first start instead of
    /// founding it (default false: a node founds unless a listed peer
    /// already has a membership). For a node added with `wse cluster
    /// add-node` while its peers may be unreachable.
    pub join: bool,
    /// Applied Raft entries between two snapshots of a shard (default
    /// 20,000; 0: never, and the Raft log grows without bound). Each
    /// snapshot lets the shard purge its Raft log, which every node keeps
    /// in memory too: a shard holds at most about this plus
    /// `snapshot_keep` entries (an entry is one batch of publishes, up to
    /// 1 MiB). A snapshot is small (positions and publish ids, never
    /// records), but each purge rewrites the `snapshot_keep` entries kept,
    /// so a smaller value trades memory for that rewrite (at 20,000 and
    /// 1,000 it adds about 5% to the Raft log's writes).
    pub snapshot_every: u64,
    /// Raft entries kept behind a snapshot (default 1,000), so a follower
    /// that fell only that far behind catches up from the log; one further
    /// behind installs a snapshot and fetches the records it lacks from a
    /// peer.
    pub snapshot_keep: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            node_id: None,
            listen: None,
            peers: Vec::new(),
            insecure: false,
            shards: 16,
            heartbeat: Duration::from_millis(150),
            election_timeout: Duration::from_secs(1),
            publish_timeout: Duration::from_secs(5),
            dedup_window: 10_000,
            node_timeout: Duration::from_secs(3),
            join: false,
            snapshot_every: 20_000,
            snapshot_keep: 1_000,
        }
    }
}

impl ClusterConfig {
    /// True when this node is a member of a cluster.
    #[must_use]
    pub fn enabled(&self) -> bool {
        self.node_id.is_some()
    }

    /// Read a peer list written `1=host:port,2=host:port`.
    pub fn parse_peers(text: &str) -> Result<Vec<(u64, String)>, ConfigError> {
        let bad = |part: &str| {
            ConfigError(format!(
                "cluster peer {part:?} is not id=host:port (e.g. 1=127.0.0.1:7101)"
            ))
        };
        let mut peers = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (id, addr) = part.split_once('=').ok_or_else(|| bad(part))?;
            let id: u64 = id.trim().parse().map_err(|_| bad(part))?;
            let addr = addr.trim();
            if id == 0 || !addr.contains(':') {
                return Err(bad(part));
            }
            peers.push((id, addr.to_owned()));
        }
        Ok(peers)
    }

    /// Check that the values describe a cluster this node can join.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let err = |m: &str| Err(ConfigError(format!("cluster: {m}")));
        let Some(me) = self.node_id else {
            if !self.peers.is_empty() || self.listen.is_some() {
                return err("peers or a listen address need a node id (--node-id)");
            }
            return Ok(());
        };
        if me == 0 {
            return err("node id 0 is reserved (tools use it); pick 1 or more");
        }
        if self.listen.is_none() {
            return err("a node needs a peer listen address (--cluster-listen)");
        }
        if !self.peers.iter().any(|(id, _)| *id == me) {
            return err("the peer list must name this node too");
        }
        let mut ids: Vec<u64> = self.peers.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() != self.peers.len() {
            return err("a node id appears twice in the peer list");
        }
        if !self.insecure {
            return err(
                "the peer link has no TLS yet: pass --cluster-insecure to run it in plaintext",
            );
        }
        if self.shards == 0 {
            return err("shards must be at least 1");
        }
        if self.heartbeat.is_zero() || self.election_timeout <= self.heartbeat * 2 {
            return err("election_timeout must be more than twice the heartbeat");
        }
        if self.publish_timeout.is_zero() {
            return err("publish_timeout must be positive");
        }
        if self.node_timeout <= self.heartbeat * 2 {
            return err("node_timeout must be more than twice the heartbeat");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(peers: &str) -> ClusterConfig {
        ClusterConfig {
            node_id: Some(1),
            listen: Some("127.0.0.1:7101".into()),
            peers: ClusterConfig::parse_peers(peers).unwrap(),
            insecure: true,
            ..ClusterConfig::default()
        }
    }

    #[test]
    fn peers_parse_and_a_valid_node_passes() {
        let c = node("1=127.0.0.1:7101, 2=127.0.0.1:7102,3=localhost:7103");
        assert_eq!(c.peers[2], (3, "localhost:7103".to_owned()));
        c.validate().unwrap();
        ClusterConfig::default().validate().unwrap();
    }

    #[test]
    fn bad_peer_lists_and_nodes_are_refused_with_the_reason() {
        for bad in ["1", "x=a:1", "0=a:1", "1=nohost"] {
            assert!(ClusterConfig::parse_peers(bad).is_err(), "{bad}");
        }
        let missing_me = node("2=a:1,3=b:2");
        assert!(missing_me.validate().unwrap_err().0.contains("this node"));
        let twice = node("1=a:1,1=b:2");
        assert!(twice.validate().unwrap_err().0.contains("twice"));
        let plaintext = ClusterConfig {
            insecure: false,
            ..node("1=a:1")
        };
        assert!(
            plaintext
                .validate()
                .unwrap_err()
                .0
                .contains("--cluster-insecure")
        );
        let no_id = ClusterConfig {
            node_id: None,
            ..node("1=a:1")
        };
        assert!(no_id.validate().unwrap_err().0.contains("node id"));
    }
}
