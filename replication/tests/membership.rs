//! Membership changes at run time with whole `ClusterNode`s in this
//! process, talking over their TCP peer ports on 127.0.0.1: a node that
//! starts with a peer list the running cluster does not match joins
//! instead of founding; `add_node` (from a node, or from a tool over the
//! peer port) makes it a learner, then a voter, of every shard; it holds
//! the same records; `remove_node` takes it (or a leader) out again.

mod common;

use common::{EVENT_TIMEOUT, log_contents};
use openraft::BasicNode;
use openraft::RaftMetrics;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tempfile::TempDir;
use wse::cluster::Replicator;
use wse::config::ClusterConfig;
use wse_log::{Log, LogConfig};
use wse_replication::force::force_node;
use wse_replication::membership::{MembershipChange, request_change};
use wse_replication::{ClusterNode, MembershipError, NetOptions, NodeId, ShardError, query_status};

const SHARDS: u32 = 2;
/// How long a membership change may take in these tests.
const CHANGE_TIMEOUT: Duration = Duration::from_secs(20);

/// An address on 127.0.0.1 whose port was free a moment ago, below the
/// kernel's ephemeral range (32768 and up), so no outgoing connection
/// takes it before the node binds it; each call gets another port, and
/// each test process its own range.
fn free_addr() -> String {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let base = 10_000 + (std::process::id() % 400) as u16 * 25;
    let _ = NEXT.compare_exchange(0, base, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        assert!(port < 20_000, "no free port left");
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return format!("127.0.0.1:{port}");
        }
    }
}

struct Nodes {
    root: TempDir,
    addrs: BTreeMap<NodeId, String>,
    running: BTreeMap<NodeId, (ClusterNode, Arc<Log>)>,
}

impl Nodes {
    fn new() -> Nodes {
        Nodes {
            root: tempfile::tempdir().unwrap(),
            addrs: BTreeMap::new(),
            running: BTreeMap::new(),
        }
    }

    /// Start node `id` with `peers` as its `--cluster-peers`.
    async fn start(&mut self, id: NodeId, peers: &[NodeId]) {
        let addr = self.addrs.entry(id).or_insert_with(free_addr).clone();
        for &p in peers {
            self.addrs.entry(p).or_insert_with(free_addr);
        }
        let config = ClusterConfig {
            node_id: Some(id),
            listen: Some(addr),
            peers: peers.iter().map(|p| (*p, self.addrs[p].clone())).collect(),
            insecure: true,
            shards: SHARDS,
            heartbeat: Duration::from_millis(50),
            election_timeout: Duration::from_millis(300),
            publish_timeout: Duration::from_secs(5),
            dedup_window: 100,
            ..ClusterConfig::default()
        };
        let dir = self.dir(id);
        let log = Arc::new(Log::open(dir, LogConfig::default()).unwrap());
        let node = ClusterNode::start(config, log.clone(), wse_replication::shard::verbatim())
            .await
            .unwrap();
        self.running.insert(id, (node, log));
    }

    fn node(&self, id: NodeId) -> &ClusterNode {
        &self.running[&id].0
    }

    fn metrics(&self, id: NodeId, shard: u32) -> RaftMetrics<NodeId, BasicNode> {
        self.node(id)
            .raft(shard)
            .unwrap()
            .metrics()
            .borrow()
            .clone()
    }

    /// Wait until node `id` sees, for every shard, a leader and exactly
    /// `voters` as voters (uniform, not joint).
    async fn wait_voters(&self, id: NodeId, voters: &[NodeId]) {
        for shard in 0..SHARDS {
            self.node(id)
                .raft(shard)
                .unwrap()
                .wait(Some(EVENT_TIMEOUT))
                .metrics(
                    |m| {
                        let c = m.membership_config.membership();
                        m.current_leader.is_some_and(|l| voters.contains(&l))
                            && c.get_joint_config().len() == 1
                            && c.voter_ids().collect::<Vec<_>>() == voters
                    },
                    "the voters",
                )
                .await
                .unwrap();
        }
    }

    /// Wait until nodes `id` and `like` applied every shard as far as the
    /// furthest running node (the leader applies an entry before it
    /// answers; a node that forwarded the publish may apply it later).
    async fn converge(&self, id: NodeId, like: NodeId) {
        for shard in 0..SHARDS {
            let last = self
                .running
                .keys()
                .filter_map(|&n| self.metrics(n, shard).last_applied.map(|l| l.index))
                .max();
            for n in [id, like] {
                self.node(n)
                    .raft(shard)
                    .unwrap()
                    .wait(Some(EVENT_TIMEOUT))
                    .applied_index_at_least(last, "caught up")
                    .await
                    .unwrap();
            }
        }
    }

    /// Publish `count` messages on node `on`, over `topics`.
    async fn publish(&self, on: NodeId, topics: &[&str], tag: &str, count: usize) {
        for i in 0..count {
            let topic = topics[i % topics.len()];
            self.node(on)
                .publish(topic, &format!("{tag}-{i}"), None)
                .await
                .unwrap();
        }
    }

    /// Assert nodes `ids` hold the same records of `topics`, same epoch.
    fn assert_same(&self, ids: &[NodeId], topics: &[&str]) {
        // Applied means appended; a record is readable once its log made
        // it visible, a moment later: wait for that first.
        for id in ids {
            self.running[id].1.flush().unwrap();
        }
        for topic in topics {
            let first = &self.running[&ids[0]].1;
            for id in &ids[1..] {
                let log = &self.running[id].1;
                assert_eq!(
                    log.position(topic).map(|p| (p.epoch, p.next_offset)),
                    first.position(topic).map(|p| (p.epoch, p.next_offset)),
                    "{topic} on node {id}"
                );
                assert_eq!(log_contents(log, topic), log_contents(first, topic));
            }
        }
    }

    /// Stop node `id`; its files stay.
    async fn stop(&mut self, id: NodeId) {
        let (node, log) = self.running.remove(&id).unwrap();
        node.shutdown().await;
        drop(node);
        log.close().unwrap();
    }

    fn dir(&self, id: NodeId) -> std::path::PathBuf {
        self.root.path().join(format!("node-{id}"))
    }

    async fn shutdown(self) {
        for (node, _) in self.running.values() {
            node.shutdown().await;
        }
    }
}

const TOPICS: [&str; 4] = ["a", "b", "c", "d"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_joins_catches_up_votes_and_leaves_again() {
    let mut c = Nodes::new();
    for id in 1..=3 {
        c.start(id, &[1, 2, 3]).await;
    }
    c.wait_voters(1, &[1, 2, 3]).await;
    c.publish(1, &TOPICS, "before", 40).await;

    // Started with a list the running cluster does not match: it joins,
    // its shards stay without a membership until it is added.
    c.start(4, &[1, 2, 3, 4]).await;
    for shard in 0..SHARDS {
        let m = c.metrics(4, shard);
        assert_eq!(m.membership_config.membership().voter_ids().count(), 0);
        assert_eq!(m.current_leader, None);
    }

    // Added through node 2, which forwards to each shard's leader.
    let addr4 = c.addrs[&4].clone();
    let report = c.node(2).add_node(4, &addr4, CHANGE_TIMEOUT).await.unwrap();
    assert_eq!(report.changed, vec![0, 1]);
    c.wait_voters(1, &[1, 2, 3, 4]).await;
    c.wait_voters(4, &[1, 2, 3, 4]).await;
    c.converge(4, 1).await;
    c.assert_same(&[1, 2, 3, 4], &TOPICS);

    // The same again changes nothing; another address is refused.
    let again = c.node(3).add_node(4, &addr4, CHANGE_TIMEOUT).await.unwrap();
    assert_eq!(again.unchanged, vec![0, 1]);
    let moved = c.node(1).add_node(4, "127.0.0.1:1", CHANGE_TIMEOUT).await;
    assert!(
        matches!(&moved, Err(MembershipError::Shards { failed, .. })
            if failed.len() == 2 && failed.iter().all(|(_, e)| matches!(e, ShardError::Conflict(_)))),
        "{moved:?}"
    );

    // The new node publishes (through the leaders) and votes.
    c.publish(4, &TOPICS, "from-4", 20).await;
    let status = query_status(&c.addrs[&4], &NetOptions::default(), EVENT_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(
        status["shards"][0]["voters"],
        serde_json::json!([1, 2, 3, 4])
    );

    // Removed again, through itself.
    let report = c.node(4).remove_node(4, CHANGE_TIMEOUT).await.unwrap();
    assert_eq!(report.changed, vec![0, 1]);
    c.wait_voters(1, &[1, 2, 3]).await;
    let again = c.node(1).remove_node(4, CHANGE_TIMEOUT).await.unwrap();
    assert_eq!(again.unchanged, vec![0, 1]);
    c.publish(2, &TOPICS, "after", 20).await;
    c.converge(3, 1).await;
    c.converge(1, 3).await;
    c.assert_same(&[1, 2, 3], &TOPICS);
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_tool_changes_membership_and_a_removed_leader_steps_down() {
    let mut c = Nodes::new();
    for id in 1..=3 {
        c.start(id, &[1, 2, 3]).await;
    }
    c.wait_voters(1, &[1, 2, 3]).await;
    c.publish(2, &TOPICS, "before", 20).await;
    let net = NetOptions::default();

    // A node that never starts: it stays a learner, the change times out
    // (shard by shard), and it can be removed again.
    let ghost = MembershipChange::Add {
        id: 9,
        addr: free_addr(),
    };
    let timed_out = request_change(&c.addrs[&3], ghost, &net, Duration::from_secs(2)).await;
    assert!(
        matches!(&timed_out, Err(MembershipError::Shards { failed, .. })
            if failed.iter().all(|(_, e)| matches!(e, ShardError::Timeout { .. }))),
        "{timed_out:?}"
    );
    for shard in 0..SHARDS {
        let leader = c.metrics(1, shard).current_leader.unwrap();
        let m = c.metrics(leader, shard);
        let learners: Vec<NodeId> = m.membership_config.membership().learner_ids().collect();
        assert_eq!(learners, vec![9], "shard {shard}");
    }
    let removed = request_change(
        &c.addrs[&1],
        MembershipChange::Remove { id: 9 },
        &net,
        CHANGE_TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(removed.changed, vec![0, 1]);

    // Remove the leader of shard 0 through the tool: another node leads.
    let leader = c.metrics(1, 0).current_leader.unwrap();
    let rest: Vec<NodeId> = (1..=3).filter(|&i| i != leader).collect();
    let removed = request_change(
        &c.addrs[&rest[0]],
        MembershipChange::Remove { id: leader },
        &net,
        CHANGE_TIMEOUT,
    )
    .await
    .unwrap();
    assert_eq!(removed.changed, vec![0, 1]);
    c.wait_voters(rest[0], &rest).await;
    c.wait_voters(rest[1], &rest).await;
    c.publish(rest[1], &TOPICS, "after", 20).await;
    c.converge(rest[0], rest[1]).await;
    c.converge(rest[1], rest[0]).await;
    c.assert_same(&rest, &TOPICS);

    // The last voter is never removed; id 0 is refused at once.
    let zero = request_change(
        &c.addrs[&rest[0]],
        MembershipChange::Remove { id: 0 },
        &net,
        CHANGE_TIMEOUT,
    )
    .await;
    assert!(matches!(zero, Err(MembershipError::Invalid(_))), "{zero:?}");
    c.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forced_membership_leads_alone_and_starts_new_epochs() {
    let mut c = Nodes::new();
    for id in 1..=3 {
        c.start(id, &[1, 2, 3]).await;
    }
    c.wait_voters(1, &[1, 2, 3]).await;
    c.publish(2, &TOPICS, "before", 40).await;
    c.converge(1, 2).await;
    c.converge(1, 3).await;
    let old: Vec<_> = TOPICS
        .iter()
        .map(|t| c.running[&1].1.position(t).unwrap())
        .collect();

    // Nodes 2 and 3 lost their data; node 1, stopped, is forced alone.
    for id in 1..=3 {
        c.stop(id).await;
    }
    let alone = BTreeMap::from([(1, BasicNode::new(c.addrs[&1].clone()))]);
    let forced = force_node(&c.dir(1), 1, &alone).unwrap();
    assert_eq!(forced.len(), SHARDS as usize);

    c.start(1, &[1, 2, 3]).await;
    c.wait_voters(1, &[1]).await;
    for f in &forced {
        c.node(1)
            .raft(f.shard)
            .unwrap()
            .wait(Some(EVENT_TIMEOUT))
            .applied_index_at_least(Some(f.new_epoch.index), "the new epoch applied")
            .await
            .unwrap();
    }
    for topic in TOPICS {
        let now = c.running[&1].1.position(topic);
        assert!(now.is_none(), "{topic}: the old history is gone: {now:?}");
    }
    c.publish(1, &TOPICS, "after", 8).await;
    for (topic, before) in TOPICS.iter().zip(&old) {
        let now = c.running[&1].1.position(topic).unwrap();
        assert_ne!(now.epoch, before.epoch, "{topic}: a new epoch");
        assert_eq!((now.first_offset, now.next_offset), (0, 2), "{topic}");
    }

    // A new node joins the forced cluster; it replays the whole log and
    // ends with the same epochs and records.
    c.start(4, &[1, 4]).await;
    let addr4 = c.addrs[&4].clone();
    c.node(1).add_node(4, &addr4, CHANGE_TIMEOUT).await.unwrap();
    c.wait_voters(4, &[1, 4]).await;
    c.converge(4, 1).await;
    c.assert_same(&[1, 4], &TOPICS);
    c.publish(4, &TOPICS, "joined", 8).await;
    c.converge(1, 4).await;
    c.assert_same(&[1, 4], &TOPICS);
    c.shutdown().await;
}
