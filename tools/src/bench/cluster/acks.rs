//! Acknowledged publishes: P connections spread over the nodes, each
//! publishing with an id and waiting for its `publish_ack` before the next,
//! on T topics (so several shards, led by different nodes, take part).
//! Acks per second and ack latency; over the same window, each node's CPU
//! and what it wrote to disk per payload byte acknowledged (write
//! amplification).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use super::load::{AckCounts, acked_publisher};
use super::nodes::{ClusterProcs, DiskUse, NodeSample};
use crate::bench::hist::{Histogram, Percentiles};
use crate::bench::wire::{WireError, WsConn};
use crate::error::CliError;

/// One run's figures.
#[derive(Clone, Debug, Serialize)]
pub struct AckRun {
    /// Concurrent publishers.
    pub publishers: usize,
    /// Topics they publish on (publisher i on topic i % topics).
    pub topics: usize,
    /// Publishes acknowledged.
    pub acked: u64,
    /// Publishes answered with an error or not at all.
    pub errors: u64,
    /// From the first publish until the last publisher stopped.
    pub seconds: f64,
    /// Acknowledged publishes per second.
    pub acks_per_sec: f64,
    /// Publish-to-ack latency.
    pub latency: Percentiles,
    /// Per node: CPU, disk writes and data growth over the run.
    pub nodes: Vec<NodeCost>,
    /// Payload (message object) bytes acknowledged.
    pub payload_bytes: u64,
}

/// What one node spent over a run.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct NodeCost {
    /// CPU time, seconds.
    pub cpu_seconds: f64,
    /// Bytes written to storage (/proc/<pid>/io `write_bytes`).
    pub write_bytes: u64,
    /// Growth of the Raft files.
    pub raft_bytes: u64,
    /// Growth of the topic logs.
    pub topic_bytes: u64,
}

impl AckRun {
    /// Bytes written to storage by every node per payload byte.
    pub fn write_amplification(&self) -> f64 {
        let written: u64 = self.nodes.iter().map(|n| n.write_bytes).sum();
        written as f64 / self.payload_bytes.max(1) as f64
    }
}

/// Run `publishers` acknowledged publishers for `run_time`, publisher i on
/// node i % n and topic `<prefix>-<i % topics>`, messages of
/// `message_bytes` bytes (`pad` bytes of padding).
pub fn run(
    rt: &tokio::runtime::Runtime,
    cluster: &mut ClusterProcs,
    publishers: usize,
    topics: usize,
    (pad, message_bytes): (usize, usize),
    run_time: Duration,
) -> Result<AckRun, CliError> {
    let addrs: Vec<_> = (0..cluster.len()).map(|i| cluster.client_addr(i)).collect();
    let conns = rt.block_on(async {
        let mut conns = Vec::with_capacity(publishers);
        for i in 0..publishers {
            let mut c = WsConn::connect(addrs[i % addrs.len()], 4096).await?;
            c.wait_for_text(br#""t":"server_ready""#).await?;
            conns.push(c);
        }
        Ok::<_, WireError>(conns)
    })?;
    let (samples, disks) = usage(cluster)?;
    let stop = Arc::new(AtomicBool::new(false));
    let counts = Arc::new(AckCounts::default());
    let start = Instant::now();
    let mut tasks = JoinSet::new();
    for (i, conn) in conns.into_iter().enumerate() {
        let topic = format!("ack{publishers}-{}", i % topics.max(1));
        tasks.spawn_on(
            acked_publisher(
                conn,
                topic,
                format!("p{i}"),
                pad,
                stop.clone(),
                counts.clone(),
            ),
            rt.handle(),
        );
    }
    std::thread::sleep(run_time);
    stop.store(true, Relaxed);
    let latency = rt.block_on(collect(tasks))?;
    let seconds = start.elapsed().as_secs_f64();
    let (samples_after, disks_after) = usage(cluster)?;
    let acked = counts.acked.load(Relaxed);
    Ok(AckRun {
        publishers,
        topics,
        acked,
        errors: counts.errors.load(Relaxed),
        seconds,
        acks_per_sec: acked as f64 / seconds.max(1e-9),
        latency: latency.percentiles(),
        nodes: costs(&samples, &samples_after, &disks, &disks_after),
        payload_bytes: acked * message_bytes as u64,
    })
}

/// Every node's process sample and data directory size.
fn usage(cluster: &mut ClusterProcs) -> Result<(Vec<NodeSample>, Vec<DiskUse>), CliError> {
    let samples = cluster.sample_all()?;
    let disks = (0..cluster.len())
        .map(|i| cluster.disk_use(i))
        .collect::<Result<_, _>>()?;
    Ok((samples, disks))
}

/// Per node, the differences between two samples.
fn costs(
    before: &[NodeSample],
    after: &[NodeSample],
    disk_before: &[DiskUse],
    disk_after: &[DiskUse],
) -> Vec<NodeCost> {
    (0..before.len())
        .map(|i| NodeCost {
            cpu_seconds: (after[i].cpu_seconds - before[i].cpu_seconds).max(0.0),
            write_bytes: after[i].write_bytes.saturating_sub(before[i].write_bytes),
            raft_bytes: disk_after[i]
                .raft_bytes
                .saturating_sub(disk_before[i].raft_bytes),
            topic_bytes: disk_after[i]
                .topic_bytes
                .saturating_sub(disk_before[i].topic_bytes),
        })
        .collect()
}

/// Wait for every publisher; their latencies merged. A publisher whose
/// connection failed fails the run.
pub async fn collect(
    mut tasks: JoinSet<Result<Histogram, WireError>>,
) -> Result<Histogram, CliError> {
    let mut all = Histogram::default();
    while let Some(done) = tasks.join_next().await {
        let h = done.map_err(|e| CliError::Bench(format!("a publisher panicked: {e}")))??;
        all.merge(&h);
    }
    Ok(all)
}
