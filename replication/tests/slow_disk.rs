//! A follower whose disk is slower than the leader's patience: each fsync
//! of its Raft log takes longer than the leader waits for an
//! AppendEntries answer (openraft: one heartbeat interval). With a steady
//! stream of publishes and that follower as the only other voter, the
//! shard must keep committing. It stalled before: every retry brought a
//! new entry to fsync, so none was answered in time until 32 entries were
//! unconfirmed (here 18 of 30 publishes failed; each is acknowledged
//! within about two fsyncs, ~0.4 s, now).

mod common;

use bytes::Bytes;
use common::tcp::TcpCluster;
use common::{Acked, assert_identical_logs, fast_options};
use std::time::Duration;
use tokio::task::JoinSet;
use wse_log::storage::{FaultAction, FaultRule, StorageOp};
use wse_replication::{Publish, ShardOptions};

/// Publishes sent, one every [`EVERY`], whatever the acknowledgements: a
/// steady stream at a modest rate. Each of the leader's retries (every
/// 37.5 ms) then carries an entry the follower has not fsynced yet, and
/// the retries reach the newest entries until 32 of them are unconfirmed
/// (openraft's retry starts at the last confirmed entry, at most 32
/// entries per request), which at this rate takes 3.2 s.
const PUBLISHES: usize = 30;
const EVERY: Duration = Duration::from_millis(100);

/// How long each fsync of the slow follower's Raft log takes.
const SLOW_FSYNC: Duration = Duration::from_millis(200);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_slower_than_the_heartbeat_keeps_a_steady_stream_committing() {
    // Heartbeat 50 ms (the leader waits 37.5 ms for an answer); a publish
    // not committed within 1.5 s fails.
    let options = ShardOptions {
        publish_timeout: Duration::from_millis(1_500),
        ..fast_options()
    };
    let mut c = TcpCluster::start_with(3, options).await;
    let shard = 0;
    let leader = c.leader(shard, &c.ids).await;
    let others: Vec<_> = c.ids.iter().copied().filter(|&id| id != leader).collect();
    let (slow, stopped) = (others[0], others[1]);
    c.stop_node(stopped).await;
    c.disk(slow).inject(
        FaultRule::new(StorageOp::Sync, FaultAction::Delay(SLOW_FSYNC)).path_contains("raft-log"),
    );
    // An open loop, as clients publish: a publish waiting for its commit
    // does not hold the next one back.
    let s = c.node(leader).shards[shard as usize].clone();
    let mut pending = JoinSet::new();
    let mut tick = tokio::time::interval(EVERY);
    for i in 0..PUBLISHES {
        tick.tick().await;
        let s = s.clone();
        pending.spawn(async move {
            let (topic, payload) = ("s0/a".to_owned(), Bytes::from(format!("m-{i}")));
            let at = s.publish(vec![Publish::new(topic.clone(), payload.clone())]);
            at.await.map(|p| Acked {
                topic,
                offset: p[0].offset,
                payload,
            })
        });
    }
    let (mut acked, mut failed) = (Vec::new(), Vec::new());
    while let Some(r) = pending.join_next().await {
        match r.unwrap() {
            Ok(a) => acked.push(a),
            Err(e) => failed.push(e.to_string()),
        }
    }
    assert!(c.disk(slow).injected() > 0, "the slow disk was not used");
    assert_eq!(
        failed.len(),
        0,
        "{} of {PUBLISHES} publishes failed, first: {:?}",
        failed.len(),
        failed.first()
    );
    c.disk(slow).clear();
    c.converge(shard, leader, &[leader, slow]).await;
    assert_identical_logs(&c.logs(&[leader, slow]), &["s0/a"], &acked);
}
