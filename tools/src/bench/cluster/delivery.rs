//! Deliveries: one publisher (no acks) on one server, subscribers of the
//! same topic spread over the servers, at a fixed rate or as fast as the
//! slowest subscriber keeps up. Used for publish-to-delivery latency across
//! nodes (one subscriber on another node) and for fan-out (N subscribers),
//! against the cluster or a single node, with the same code on both sides.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::nodes::ClusterProcs;
use super::readers::{Counts, Readers};
use crate::bench::hist::Percentiles;
use crate::bench::paced::{Pace, PacedPublisher};
use crate::bench::server_process::{ServerProcess, Setup};
use crate::bench::wire::{self, Greeting, WsConn};
use crate::error::CliError;

/// Connections opened at once.
const OPEN_PARALLEL: usize = 128;
/// Read buffers of all subscribers together at most (each 4..64 KiB).
const READ_BUFFERS_TOTAL: usize = 256 << 20;

/// The servers a workload runs against.
pub enum Servers<'a> {
    /// The nodes of the cluster.
    Cluster(&'a mut ClusterProcs),
    /// One `wse serve` without cluster flags.
    Single(&'a mut ServerProcess),
}

impl Servers<'_> {
    /// Client addresses, in node order.
    fn addrs(&self) -> Vec<SocketAddr> {
        match self {
            Self::Cluster(c) => (0..c.len()).map(|i| c.client_addr(i)).collect(),
            Self::Single(s) => vec![s.addr()],
        }
    }

    /// CPU time of each server process, seconds.
    fn cpu(&mut self) -> Result<Vec<f64>, CliError> {
        match self {
            Self::Cluster(c) => Ok(c.sample_all()?.iter().map(|s| s.cpu_seconds).collect()),
            Self::Single(s) => Ok(vec![s.sample()?.cpu_seconds]),
        }
    }
}

/// One delivery workload.
#[derive(Clone, Debug)]
pub struct Spec {
    /// A topic nobody published on yet (offsets from 0).
    pub topic: &'static str,
    /// Subscribers on each server (index: server); missing servers get 0.
    pub subscribers: Vec<usize>,
    /// The server the publisher is connected to.
    pub publisher_at: usize,
    /// How fast.
    pub pace: Pace,
    /// Padding of each message.
    pub pad: usize,
    /// How long to publish.
    pub run_time: Duration,
    /// How long to wait afterwards for the last deliveries.
    pub drain: Duration,
}

/// One run's figures.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryRun {
    /// Subscribers in all.
    pub subscribers: usize,
    /// Messages published (offsets 0..published).
    pub published: u64,
    /// Publishes the server refused.
    pub publish_errors: u64,
    /// First publish to the last delivery (or the drain timeout).
    pub seconds: f64,
    /// Every subscriber got the last message in time.
    pub drained: bool,
    #[serde(flatten)]
    pub counts: Counts,
    /// Deliveries per second over `seconds`.
    pub deliveries_per_sec: f64,
    /// Messages published per second while publishing.
    pub published_per_sec: f64,
    /// Send-to-receive latency.
    pub latency: Percentiles,
    /// CPU time of each server process over the window, seconds.
    pub cpu_seconds: Vec<f64>,
    /// All servers' CPU time per delivery, nanoseconds.
    pub cpu_ns_per_delivery: f64,
}

impl DeliveryRun {
    /// Server `i`'s CPU time per delivery (of all deliveries), ns.
    pub fn cpu_ns_per_delivery_of(&self, i: usize) -> f64 {
        self.cpu_seconds[i] * 1e9 / self.counts.deliveries.max(1) as f64
    }
}

/// Run `spec` against `servers`, the load generator in a runtime of its
/// own (dropped at the end, which closes every connection of the run).
pub fn run(setup: &Setup, servers: &mut Servers<'_>, spec: &Spec) -> Result<DeliveryRun, CliError> {
    let rt = setup.client_runtime()?;
    let addrs = servers.addrs();
    let total: usize = spec.subscribers.iter().sum();
    let buf = (READ_BUFFERS_TOTAL / total.max(1)).clamp(4096, 64 * 1024);
    let mut conns = Vec::with_capacity(total);
    for (i, &n) in spec.subscribers.iter().enumerate() {
        let addr = *addrs
            .get(i)
            .ok_or_else(|| CliError::Usage(format!("no server {i} for subscribers")))?;
        conns.extend(rt.block_on(wire::open_many(
            addr,
            n,
            buf,
            Greeting::Subscribe(spec.topic),
            OPEN_PARALLEL,
        ))?);
    }
    let publisher_addr = addrs[spec.publisher_at.min(addrs.len() - 1)];
    let conn = rt.block_on(async {
        let mut c = WsConn::connect(publisher_addr, 4096).await?;
        c.wait_for_text(br#""t":"server_ready""#).await?;
        Ok::<_, wire::WireError>(c)
    })?;
    let readers = Readers::spawn(&rt, spec.topic, conns);
    let mut publisher = PacedPublisher::new(conn)?;

    let before = servers.cpu()?;
    let start = Instant::now();
    let published = publisher.publish(spec.topic, spec.pad, spec.pace, spec.run_time, || {
        readers.slowest()
    })?;
    let publish_time = start.elapsed();
    let drained = readers.wait_delivered(published, spec.drain);
    let seconds = start.elapsed().as_secs_f64();
    let after = servers.cpu()?;
    let publish_errors = publisher.finish();
    let latency = readers.latency().percentiles();

    let counts = readers.counts(published);
    drop(readers);
    rt.shutdown_timeout(Duration::from_secs(2));
    let cpu_seconds: Vec<f64> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| (a - b).max(0.0))
        .collect();
    let cpu_all: f64 = cpu_seconds.iter().sum();
    Ok(DeliveryRun {
        subscribers: total,
        published,
        publish_errors,
        seconds,
        drained,
        deliveries_per_sec: counts.deliveries as f64 / seconds.max(1e-9),
        published_per_sec: published as f64 / publish_time.as_secs_f64().max(1e-9),
        latency,
        cpu_ns_per_delivery: cpu_all * 1e9 / counts.deliveries.max(1) as f64,
        cpu_seconds,
        counts,
    })
}
