//! Catch-up: a node is stopped while acknowledged publishers keep loading
//! the others, then started again on its files; how long until it has
//! applied, on every shard, everything the cluster committed meanwhile.
//!
//! The stopped node is the one leading the fewest shards (a follower of
//! most of them; the shards it led elect another leader, which costs an
//! election timeout of errors to their publishers). The load stops when the
//! node is restarted, so "caught up" is a fixed target: per shard, the
//! highest index applied on the running nodes by then.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use super::acks::collect;
use super::load::{AckCounts, acked_publisher};
use super::nodes::{ClusterProcs, POLL, Status, StopSignal};
use crate::bench::wire::{WireError, WsConn};
use crate::error::CliError;

/// Longest wait for a restarted node to catch up.
const CATCHUP_TIMEOUT: Duration = Duration::from_secs(900);
/// Publishing before the node is stopped.
const WARM_UP: Duration = Duration::from_millis(500);

/// What to do.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// How the node is stopped.
    pub signal: StopSignal,
    /// How long it stays down.
    pub down: Duration,
    /// Acknowledged publishers on the other nodes meanwhile.
    pub publishers: usize,
    /// Topics they publish on.
    pub topics: usize,
    /// Padding of each message.
    pub pad: usize,
}

/// The figures.
#[derive(Clone, Debug, Serialize)]
pub struct CatchupRun {
    /// The node stopped and restarted.
    pub node: u64,
    /// How it was stopped.
    pub signal: StopSignal,
    /// Shards it led before it was stopped.
    pub led_shards: usize,
    /// Seconds it was down.
    pub down_seconds: f64,
    /// Publishes acknowledged while it was down.
    pub records_behind: u64,
    /// Publishes refused while it was down (elections of the shards it led).
    pub publish_errors: u64,
    /// Raft entries (batches of publishes) it had to apply, over all
    /// shards.
    pub entries_behind: u64,
    /// Restart until it accepted client connections.
    pub start_seconds: f64,
    /// Restart until its applied index reached the target on every shard.
    pub catchup_seconds: f64,
    /// `records_behind` per `catchup_seconds`.
    pub records_per_sec: f64,
}

/// Stop a node under load, restart it, time its catch-up.
pub fn run(
    rt: &tokio::runtime::Runtime,
    cluster: &mut ClusterProcs,
    plan: &Plan,
) -> Result<CatchupRun, CliError> {
    let views = rt.block_on(cluster.wait_stable(Duration::from_secs(60)))?;
    let victim = pick(&views);
    let led_shards = views[victim].led();
    let others: Vec<usize> = (0..cluster.len()).filter(|&i| i != victim).collect();
    let addrs: Vec<_> = others.iter().map(|&i| cluster.client_addr(i)).collect();
    let conns = rt.block_on(async {
        let mut conns = Vec::with_capacity(plan.publishers);
        for i in 0..plan.publishers {
            let mut c = WsConn::connect(addrs[i % addrs.len()], 4096).await?;
            c.wait_for_text(br#""t":"server_ready""#).await?;
            conns.push(c);
        }
        Ok::<_, WireError>(conns)
    })?;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(AckCounts::default());
    let mut tasks = JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let topic = format!("catchup-{}", i % plan.topics.max(1));
        let publisher = acked_publisher(
            conn,
            topic,
            format!("c{i}"),
            plan.pad,
            stop.clone(),
            counts.clone(),
        );
        tasks.spawn_on(publisher, rt.handle());
    }
    std::thread::sleep(WARM_UP);

    let before = rt
        .block_on(cluster.status(victim))
        .ok_or_else(|| CliError::Bench(format!("node {} does not answer", cluster.id(victim))))?;
    let (acked0, errors0) = (counts.acked.load(Relaxed), counts.errors.load(Relaxed));
    let down_at = Instant::now();
    cluster.stop_node(victim, plan.signal)?;
    std::thread::sleep(plan.down);
    stop.store(true, Relaxed);
    rt.block_on(collect(tasks))?;
    let records_behind = counts.acked.load(Relaxed) - acked0;
    let publish_errors = counts.errors.load(Relaxed) - errors0;
    let target = rt.block_on(applied_max(cluster, &others))?;
    let entries_behind = target
        .iter()
        .zip(&before.shards)
        .map(|(t, s)| t.saturating_sub(s.applied))
        .sum();

    let restart = Instant::now();
    let down_seconds = (restart - down_at).as_secs_f64();
    cluster.restart_node(victim)?;
    let start_seconds = restart.elapsed().as_secs_f64();
    rt.block_on(wait_applied(cluster, victim, &target))?;
    let catchup_seconds = restart.elapsed().as_secs_f64();
    Ok(CatchupRun {
        node: cluster.id(victim),
        signal: plan.signal,
        led_shards,
        down_seconds,
        records_behind,
        publish_errors,
        entries_behind,
        start_seconds,
        catchup_seconds,
        records_per_sec: records_behind as f64 / catchup_seconds.max(1e-9),
    })
}

/// The node leading the fewest shards (the last such).
fn pick(views: &[Status]) -> usize {
    let fewest = views.iter().map(Status::led).min().unwrap_or(0);
    views.iter().rposition(|v| v.led() == fewest).unwrap_or(0)
}

/// Per shard, the highest index applied on any of `nodes`.
async fn applied_max(cluster: &ClusterProcs, nodes: &[usize]) -> Result<Vec<u64>, CliError> {
    let mut max: Vec<u64> = Vec::new();
    for &i in nodes {
        let s = cluster
            .status(i)
            .await
            .ok_or_else(|| CliError::Bench(format!("node {} does not answer", cluster.id(i))))?;
        max.resize(max.len().max(s.shards.len()), 0);
        for (m, shard) in max.iter_mut().zip(&s.shards) {
            *m = (*m).max(shard.applied);
        }
    }
    Ok(max)
}

/// Wait until node `i` has applied `target` on every shard.
async fn wait_applied(cluster: &ClusterProcs, i: usize, target: &[u64]) -> Result<(), CliError> {
    let deadline = Instant::now() + CATCHUP_TIMEOUT;
    loop {
        if let Some(s) = cluster.status(i).await
            && s.shards.len() >= target.len()
            && s.shards.iter().zip(target).all(|(s, &t)| s.applied >= t)
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(CliError::Bench(format!(
                "node {} did not catch up within {} s",
                cluster.id(i),
                CATCHUP_TIMEOUT.as_secs()
            )));
        }
        tokio::time::sleep(POLL).await; // polling a remote status
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::cluster::nodes::ShardView;

    fn leading(shards: &[bool]) -> Status {
        Status {
            shards: shards
                .iter()
                .map(|&leading| ShardView {
                    leader: Some(1),
                    term: 1,
                    leading,
                    last_log_index: 0,
                    applied: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn the_node_leading_fewest_shards_is_stopped() {
        let views = [
            leading(&[true, false, true]),
            leading(&[false, false, false]),
            leading(&[false, true, false]),
        ];
        assert_eq!(pick(&views), 1);
        let tie = [leading(&[true, false]), leading(&[false, true])];
        assert_eq!(pick(&tie), 1);
    }
}
