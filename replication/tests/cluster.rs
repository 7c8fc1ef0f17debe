//! Three in-process nodes of one shard: every node applies the same
//! records at the same offsets, through leader failure, restart and
//! partitions.

mod common;

use common::{Cluster, EVENT_TIMEOUT};
use wse_replication::ClusterError;

const TOPICS: [&str; 3] = ["chat/a", "chat/b", "chat/c"];

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_hold_the_same_records() {
    let c = Cluster::start(3).await;
    let leader = c.leader(&c.ids).await;
    let acked = c.publish_many(leader, &TOPICS, "m", 1000, 20).await;
    assert_eq!(acked.len(), 1000);
    c.converge(leader, &c.ids).await;
    c.assert_identical(&c.ids, &TOPICS, &acked);
    let total: usize = TOPICS.iter().map(|t| c.contents(1, t).len()).sum();
    assert_eq!(total, 1000, "each publish applied exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_failure_loses_nothing_and_a_restarted_node_catches_up() {
    let mut c = Cluster::start(3).await;
    let old = c.leader(&c.ids).await;
    let mut acked = c.publish_many(old, &TOPICS, "before", 200, 10).await;

    c.stop_node(old).await;
    let rest: Vec<u64> = c.ids.iter().copied().filter(|&i| i != old).collect();
    let new = c.leader(&rest).await;
    assert_ne!(new, old);
    acked.extend(c.publish_many(new, &TOPICS, "after", 200, 10).await);
    c.converge(new, &rest).await;
    c.assert_identical(&rest, &TOPICS, &acked);

    c.start_node(old).await;
    c.converge(new, &c.ids).await;
    c.assert_identical(&c.ids, &TOPICS, &acked);
    let total: usize = TOPICS.iter().map(|t| c.contents(old, t).len()).sum();
    assert_eq!(total, 400, "the restarted node re-applied nothing twice");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_minority_cannot_commit_and_converges_after_healing() {
    let c = Cluster::start(3).await;
    let old = c.leader(&c.ids).await;
    let mut acked = c.publish_many(old, &TOPICS, "before", 50, 5).await;

    // A follower cut off: it refuses (it does not lead).
    let follower = c.ids.iter().copied().find(|&i| i != old).unwrap();
    c.net.isolate(follower, c.ids.clone());
    let refused = c
        .publish_on(follower, "chat/a", "from-isolated-follower")
        .await;
    assert!(
        matches!(refused, Err(ClusterError::NotLeader { .. })),
        "{refused:?}"
    );
    c.net.heal();
    c.converge(old, &c.ids).await;

    // The leader cut off: its publish cannot commit; the majority elects
    // another leader and goes on.
    c.net.isolate(old, c.ids.clone());
    let lost = c.publish_on(old, "chat/a", "from-isolated-leader").await;
    assert!(
        matches!(lost, Err(ClusterError::Timeout { .. })),
        "{lost:?}"
    );
    let rest: Vec<u64> = c.ids.iter().copied().filter(|&i| i != old).collect();
    let new = c.leader(&rest).await;
    acked.extend(c.publish_many(new, &TOPICS, "during", 50, 5).await);

    c.net.heal();
    c.node(old)
        .shard
        .raft()
        .wait(Some(EVENT_TIMEOUT))
        .metrics(
            |m| m.current_leader == Some(new),
            "the old leader follows the new one",
        )
        .await
        .unwrap();
    c.converge(new, &c.ids).await;
    c.assert_identical(&c.ids, &TOPICS, &acked);
    for id in c.ids.clone() {
        let a = c.contents(id, "chat/a");
        assert!(
            a.iter().all(|(_, p)| !p.starts_with(b"from-isolated")),
            "node {id} applied a publish that was never committed"
        );
    }
}

/// The idempotent producer: a publish sent again with its id is stored
/// once, and the copy's answer is the first position; after every node
/// restarts (the window is rebuilt from the Raft log) it still is.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_publish_sent_again_with_its_id_is_stored_once_even_after_restarts() {
    use wse_replication::Publish;
    let mut c = Cluster::start(3).await;
    let leader = c.leader(&c.ids).await;
    let shard = |c: &Cluster, id| c.node(id).shard.clone();
    let first = shard(&c, leader)
        .publish(vec![
            Publish::new("chat/a", "one").with_id("p-1"),
            Publish::new("chat/a", "two").with_id("p-2"),
            // Ids are per topic: the same id elsewhere is another message.
            Publish::new("chat/b", "one-b").with_id("p-1"),
        ])
        .await
        .unwrap();
    // Again, in one entry with a new message and a copy of a copy.
    let again = shard(&c, leader)
        .publish(vec![
            Publish::new("chat/a", "two").with_id("p-2"),
            Publish::new("chat/a", "three").with_id("p-3"),
            Publish::new("chat/a", "three").with_id("p-3"),
        ])
        .await
        .unwrap();
    assert_eq!(
        again[0], first[1],
        "the copy answers with the first position"
    );
    assert_eq!(again[1], again[2]);
    c.converge(leader, &c.ids).await;
    for id in c.ids.clone() {
        let a: Vec<_> = c
            .contents(id, "chat/a")
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(a, ["one", "two", "three"], "node {id}");
        assert_eq!(c.contents(id, "chat/b").len(), 1, "node {id}");
    }
    for id in c.ids.clone() {
        c.stop_node(id).await;
    }
    for id in c.ids.clone() {
        c.start_node(id).await;
    }
    let leader = c.leader(&c.ids).await;
    let after = shard(&c, leader)
        .publish(vec![
            Publish::new("chat/a", "one").with_id("p-1"),
            Publish::new("chat/a", "four").with_id("p-4"),
        ])
        .await
        .unwrap();
    assert_eq!(after[0], first[0], "the rebuilt window still knows p-1");
    c.converge(leader, &c.ids).await;
    for id in c.ids.clone() {
        // Applied means appended; a follower's record is readable once its
        // log made it visible, a moment later: wait for that first.
        c.node(id).log.flush().unwrap();
        let a: Vec<_> = c
            .contents(id, "chat/a")
            .into_iter()
            .map(|(_, p)| p)
            .collect();
        assert_eq!(a, ["one", "two", "three", "four"], "node {id}");
    }
}
