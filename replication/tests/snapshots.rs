//! Snapshots and purging, on three in-process nodes of one shard with a
//! small `snapshot_every`: the Raft log stays bounded, a node that was
//! stopped while the others purged installs a snapshot and fetches the
//! records it lacks, and the idempotence window survives the purge.

mod common;

use common::{Acked, Cluster, EVENT_TIMEOUT, fast_options};
use wse_replication::{NodeId, Publish, ShardOptions};

const TOPICS: [&str; 3] = ["chat/a", "chat/b", "chat/c"];
/// Entries between snapshots in these tests.
const EVERY: u64 = 50;
/// Entries kept behind a snapshot.
const KEEP: u64 = 20;

fn snapshot_options() -> ShardOptions {
    ShardOptions {
        snapshot_every: EVERY,
        snapshot_keep: KEEP,
        ..fast_options()
    }
}

/// Wait until node `id` has purged its Raft log up to at least `index`.
async fn purged_past(c: &Cluster, id: NodeId, index: u64) {
    c.node(id)
        .shard
        .raft()
        .wait(Some(EVENT_TIMEOUT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index >= index),
            "the Raft log purged behind a snapshot",
        )
        .await
        .unwrap();
}

/// Wait until node `id` holds fewer than `EVERY + KEEP` Raft entries
/// (it built its latest snapshot and purged behind it).
async fn bounded(c: &Cluster, id: NodeId) {
    c.node(id)
        .shard
        .raft()
        .wait(Some(EVENT_TIMEOUT))
        .metrics(
            |m| {
                let last = m.last_log_index.unwrap_or(0);
                let purged = m.purged.map_or(0, |p| p.index);
                last - purged < EVERY + KEEP
            },
            "the Raft log bounded by the snapshot policy",
        )
        .await
        .unwrap();
}

/// Which records of `topic` on node `id` hold `payload`.
fn copies(c: &Cluster, id: NodeId, topic: &str, payload: &str) -> usize {
    c.contents(id, topic)
        .iter()
        .filter(|(_, p)| p.as_ref() == payload.as_bytes())
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_raft_log_is_purged_behind_snapshots_and_every_node_holds_the_same_records() {
    let c = Cluster::start_with(3, snapshot_options()).await;
    let leader = c.leader(&c.ids).await;
    let acked = c.publish_many(leader, &TOPICS, "m", 1000, 20).await;
    c.converge(leader, &c.ids).await;
    for &id in &c.ids {
        bounded(&c, id).await;
        let (memory, file) = c.node(id).shard.raft_log_held();
        assert!(
            memory < (EVERY + KEEP) as usize && file < (EVERY + KEEP) as usize,
            "node {id} holds {memory} entries in memory, {file} in its file"
        );
        let m = c.node(id).shard.metrics();
        assert!(m.snapshot.is_some(), "node {id} built a snapshot");
    }
    c.assert_identical(&c.ids, &TOPICS, &acked);
    let total: usize = TOPICS.iter().map(|t| c.contents(1, t).len()).sum();
    assert_eq!(total, 1000);
}

/// A follower is stopped; the others publish past several snapshots and
/// purge the entries it lacks, among them an identified publish. When it
/// starts again on its files it can only catch up by installing a
/// snapshot: it fetches the records from a peer and ends with the same
/// records at the same (epoch, offset). The identified publish sent again
/// is stored by no node: the restarted node's window came with the
/// snapshot (had it not, it would append the copy and differ).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_stopped_during_purges_installs_a_snapshot_and_fetches_the_records() {
    let mut c = Cluster::start_with(3, snapshot_options()).await;
    let leader = c.leader(&c.ids).await;
    let mut acked = c.publish_many(leader, &TOPICS, "before", 100, 10).await;
    let stopped = c.ids.iter().copied().find(|&i| i != leader).unwrap();
    c.converge(leader, &c.ids).await;
    let had = c.node(stopped).shard.metrics().last_log_index.unwrap();
    c.stop_node(stopped).await;

    let shard = c.node(leader).shard.clone();
    let first = shard
        .publish(vec![Publish::new("chat/a", "once").with_id("x-1")])
        .await
        .unwrap();
    acked.push(Acked {
        topic: "chat/a".into(),
        offset: first[0].offset,
        payload: "once".into(),
    });
    acked.extend(c.publish_many(leader, &TOPICS, "during", 600, 10).await);
    purged_past(&c, leader, had + EVERY).await;

    c.start_node(stopped).await;
    c.converge(leader, &c.ids).await;
    let m = c.node(stopped).shard.metrics();
    assert!(
        m.snapshot.is_some_and(|s| s.index > had) && m.purged.is_some_and(|p| p.index > had),
        "node {stopped} caught up through a snapshot: {m:?}"
    );
    c.assert_identical(&c.ids, &TOPICS, &acked);

    let again = shard
        .publish(vec![Publish::new("chat/a", "once").with_id("x-1")])
        .await
        .unwrap();
    assert_eq!(again, first, "the copy answers with the first position");
    c.converge(leader, &c.ids).await;
    c.assert_identical(&c.ids, &TOPICS, &acked);
    for &id in &c.ids {
        assert_eq!(copies(&c, id, "chat/a", "once"), 1, "node {id}");
    }
}

/// Every node restarts after its Raft log was purged past an identified
/// publish: the window is rebuilt from the stored snapshot (and the
/// entries after it), so the publish sent again is not stored twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restarted_after_a_purge_still_deduplicates() {
    let mut c = Cluster::start_with(3, snapshot_options()).await;
    let leader = c.leader(&c.ids).await;
    let first = c
        .node(leader)
        .shard
        .publish(vec![Publish::new("chat/a", "once").with_id("x-1")])
        .await
        .unwrap();
    let mut acked = vec![Acked {
        topic: "chat/a".into(),
        offset: first[0].offset,
        payload: "once".into(),
    }];
    // The Raft log index of the identified publish, or later.
    let x = c.node(leader).shard.metrics().last_applied.unwrap().index;
    acked.extend(c.publish_many(leader, &TOPICS, "m", 300, 10).await);
    c.converge(leader, &c.ids).await;
    for &id in &c.ids {
        purged_past(&c, id, x).await;
    }
    for id in c.ids.clone() {
        c.stop_node(id).await;
    }
    for id in c.ids.clone() {
        c.start_node(id).await;
    }
    let leader = c.leader(&c.ids).await;
    let again = c
        .node(leader)
        .shard
        .publish(vec![Publish::new("chat/a", "once").with_id("x-1")])
        .await
        .unwrap();
    assert_eq!(again, first, "the rebuilt window still knows x-1");
    c.converge(leader, &c.ids).await;
    c.assert_identical(&c.ids, &TOPICS, &acked);
    for &id in &c.ids {
        assert_eq!(copies(&c, id, "chat/a", "once"), 1, "node {id}");
    }
}

/// The figure behind the default policy: Raft entries held (memory and
/// file) and the process's resident memory after 100,000 publishes of
/// about 200 bytes (each its own entry) on three nodes, with the default
/// `snapshot_every` / `snapshot_keep` and with snapshots off (as before).
/// Slow: run with `--ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore]
async fn measure_raft_log_held_after_100k_publishes() {
    let tag = "x".repeat(200);
    for (name, every) in [
        ("default", ShardOptions::default().snapshot_every),
        ("never", 0),
    ] {
        let options = ShardOptions {
            snapshot_every: every,
            ..fast_options()
        };
        let c = Cluster::start_with(3, options).await;
        let leader = c.leader(&c.ids).await;
        let acked = c.publish_many(leader, &TOPICS, &tag, 100_000, 200).await;
        c.converge(leader, &c.ids).await;
        let held: Vec<(usize, usize)> = c
            .ids
            .iter()
            .map(|&id| c.node(id).shard.raft_log_held())
            .collect();
        let rss = std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .find(|l| l.starts_with("VmRSS"))
            .unwrap_or("")
            .to_owned();
        println!(
            "{name}: {} publishes; entries held per node (memory, file): {held:?}; process {rss}",
            acked.len()
        );
    }
}
