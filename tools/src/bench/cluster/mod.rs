//! `wse bench cluster`: a cluster of `wse serve` processes on 127.0.0.1
//! (3 by default, each with its own data directory), driven by the load
//! generator in this process.
//!
//! Phases, in this order, each optional (--phases):
//! 1. `fanout`: one publisher, N subscribers split over the nodes, against
//!    a single node (`wse serve` without cluster flags) with the same N and
//!    the same code first, then the cluster: deliveries/s and server CPU
//!    per delivery, summed over the nodes and per node.
//! 2. `acks`: P concurrent publishers spread over the nodes, each waiting
//!    for its ack before the next: acks/s and ack latency, and over the
//!    same window what every node wrote to disk per payload byte.
//! 3. `latency`: publisher on node 1, subscriber on node 2: publish-to-
//!    delivery latency at a fixed rate and at the most the subscriber
//!    keeps up with.
//! 4. `catchup`: a node stopped under load, restarted, timed until it has
//!    applied what was committed meanwhile (it disturbs the cluster, so it
//!    runs last).
//!
//! # Layout
//!
//! - `nodes`: the node processes: start, stop, restart, status, /proc.
//! - `load`: the publishers (acknowledged, and paced).
//! - `readers`: the subscribers and their counts.
//! - `acks`, `delivery`, `catchup`: the workloads and their figures.
//! - `report`: the text tables.
//! - this file: the command and the order of the phases.

mod acks;
mod catchup;
mod delivery;
mod load;
mod nodes;
mod readers;
mod report;

use std::time::Duration;

use serde::Serialize;
use wse_log::Durability;

use super::Machine;
use super::fanout::positive;
use super::proc_stats;
use super::server_process::{ServerProcess, Setup};
use crate::Run;
use crate::bench::paced::{self, Pace};
use crate::error::CliError;
use crate::output::Out;
use delivery::{Servers, Spec};
use nodes::{ClusterProcs, StopSignal};

/// How long the first elections may take.
const STABLE_TIMEOUT: Duration = Duration::from_secs(60);

/// A phase of the benchmark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum Phase {
    /// Fan-out, single node then cluster.
    Fanout,
    /// Acknowledged publishes and write amplification.
    Acks,
    /// Publish-to-delivery latency across nodes.
    Latency,
    /// A node's catch-up after a stop.
    Catchup,
}

/// Throughput, latency, fan-out cost, catch-up and write amplification of
/// a cluster of `wse serve` processes on this machine.
///
/// (The long help, `--help`, is on the subcommand in `bench/mod.rs`.)
#[derive(Debug, clap::Args)]
pub struct ClusterBenchArgs {
    /// Nodes of the cluster.
    #[arg(long, value_name = "N", default_value_t = 3)]
    nodes: usize,
    /// The cluster's shards (Raft groups), as `wse serve --cluster-shards`.
    #[arg(long, value_name = "S", default_value_t = 16)]
    shards: u32,
    /// Which phases to run, in the fixed order fanout, acks, latency,
    /// catchup.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "fanout,acks,latency,catchup"
    )]
    phases: Vec<Phase>,
    /// Seconds of publishing per measurement.
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    seconds: f64,
    /// Bytes of each published `message` object (at least ~50).
    #[arg(long, value_name = "B", default_value_t = 100)]
    size: usize,
    /// Concurrent acknowledged publishers, one run each.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    publishers: Vec<usize>,
    /// Topics the acknowledged publishers spread over (publisher i on
    /// topic i % T; topics hash to shards).
    #[arg(long, value_name = "T", default_value_t = 16)]
    topics: usize,
    /// Publishes per second of the fixed-rate latency run (the other runs
    /// at the most the subscriber keeps up with).
    #[arg(long, value_name = "R", default_value_t = 1000.0)]
    latency_rate: f64,
    /// Fan-out subscriber counts, split evenly over the nodes; one run
    /// each on the single node and on the cluster.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    subscribers: Vec<usize>,
    /// At the most rate: messages the publisher may be ahead of the
    /// slowest subscriber.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    window: u64,
    /// Seconds to wait after publishing for the last deliveries.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    drain_seconds: f64,
    /// Seconds the stopped node stays down in the catch-up phase.
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    down_seconds: f64,
    /// How the catch-up phase stops the node.
    #[arg(long, value_enum, default_value_t = StopSignal::Kill)]
    stop_signal: StopSignal,
    /// Acknowledged publishers loading the other nodes while it is down.
    #[arg(long, value_name = "N", default_value_t = 16)]
    catchup_publishers: usize,
    /// The nodes' topic-log durability (always, interval[:<ms>], never);
    /// the Raft log is fsynced on every append whatever this says.
    #[arg(long, default_value = "interval", value_parser = parse_durability)]
    durability: String,
    #[command(flatten)]
    setup: Setup,
    /// Print one JSON document at the end instead of tables.
    #[arg(long)]
    json: bool,
}

/// A durability policy as `wse serve --durability` takes it.
fn parse_durability(s: &str) -> Result<String, String> {
    Durability::parse(s).map(|_| s.to_owned())
}

/// Everything `--json` prints.
#[derive(Debug, Default, Serialize)]
struct Report {
    machine: Option<Machine>,
    nodes: usize,
    shards: u32,
    durability: String,
    message_bytes: usize,
    seconds_per_run: f64,
    /// Fan-out on the single node, per subscriber count.
    single_fanout: Vec<delivery::DeliveryRun>,
    /// Fan-out on the cluster, per subscriber count.
    cluster_fanout: Vec<delivery::DeliveryRun>,
    acks: Vec<acks::AckRun>,
    /// Publish on node 1, subscriber on node 2: fixed rate, then most.
    latency: Vec<delivery::DeliveryRun>,
    catchup: Option<catchup::CatchupRun>,
}

impl Run for ClusterBenchArgs {
    fn run(self) -> Result<u8, CliError> {
        let times = self.validate()?;
        let most = self.subscribers.iter().copied().max().unwrap_or(0);
        proc_stats::raise_open_file_limit(most as u64 + 256)?;
        let pad = paced::pad_for(self.size);
        let mut report = Report {
            machine: Some(Machine::detect()),
            nodes: self.nodes,
            shards: self.shards,
            durability: self.durability.clone(),
            message_bytes: paced::message_bytes(pad),
            seconds_per_run: self.seconds,
            ..Report::default()
        };
        let mut out = Out::stdout();
        let text = !self.json;
        if text {
            report::header(&mut out, &report, &self.setup)?;
        }
        if self.phases.contains(&Phase::Fanout) {
            for &n in &self.subscribers {
                let run = self.single_fanout(n, pad, times)?;
                if text {
                    report::fanout_row(&mut out, "single", &run)?;
                }
                report.single_fanout.push(run);
            }
        }
        if !self.phases.is_empty() {
            self.cluster_phases(&mut out, &mut report, pad, times)?;
        }
        if self.json {
            out.json_pretty(&report)?;
        }
        out.flush()?;
        Ok(0)
    }
}

/// The durations of the arguments: (publishing, drain, down).
type Times = (Duration, Duration, Duration);

impl ClusterBenchArgs {
    /// Check the arguments; their durations.
    fn validate(&self) -> Result<Times, CliError> {
        self.setup.validate()?;
        if self.nodes < 3 {
            return Err(CliError::Usage("--nodes must be at least 3".into()));
        }
        if self.publishers.contains(&0) || self.subscribers.contains(&0) || self.topics == 0 {
            return Err(CliError::Usage(
                "--publishers, --subscribers and --topics need counts of at least 1".into(),
            ));
        }
        if self.size > 512 * 1024
            || !self.latency_rate.is_finite()
            || self.latency_rate <= 0.0
            || self.window == 0
        {
            return Err(CliError::Usage(
                "--size at most 512 KiB, --latency-rate and --window above 0".into(),
            ));
        }
        Ok((
            positive("--seconds", self.seconds)?,
            positive("--drain-seconds", self.drain_seconds)?,
            positive("--down-seconds", self.down_seconds)?,
        ))
    }

    /// A fan-out run of `n` subscribers on a fresh single node.
    fn single_fanout(
        &self,
        n: usize,
        pad: usize,
        times: Times,
    ) -> Result<delivery::DeliveryRun, CliError> {
        let mut server = ServerProcess::start(&self.setup, &["--durability", &self.durability])?;
        let spec = self.fanout_spec(n, 1, pad, times);
        let run = delivery::run(&self.setup, &mut Servers::Single(&mut server), &spec)?;
        server.stop()?;
        Ok(run)
    }

    /// `n` subscribers split over `servers`, publisher on the first, as
    /// fast as they keep up.
    fn fanout_spec(
        &self,
        n: usize,
        servers: usize,
        pad: usize,
        (run_time, drain, _): Times,
    ) -> Spec {
        Spec {
            topic: static_topic(format!("fan-{n}")),
            subscribers: split(n, servers),
            publisher_at: 0,
            pace: Pace::Window(self.window),
            pad,
            run_time,
            drain,
        }
    }

    /// Start the cluster, run the phases that need it, stop it.
    fn cluster_phases(
        &self,
        out: &mut Out,
        report: &mut Report,
        pad: usize,
        times: Times,
    ) -> Result<(), CliError> {
        let (run_time, drain, down) = times;
        let rt = self.setup.client_runtime()?;
        let mut cluster =
            ClusterProcs::start(&self.setup, self.nodes, self.shards, &self.durability)?;
        rt.block_on(cluster.wait_stable(STABLE_TIMEOUT))?;
        let text = !self.json;
        if self.phases.contains(&Phase::Fanout) {
            for &n in &self.subscribers {
                let spec = self.fanout_spec(n, self.nodes, pad, times);
                let run = delivery::run(&self.setup, &mut Servers::Cluster(&mut cluster), &spec)?;
                if text {
                    report::fanout_row(out, "cluster", &run)?;
                }
                report.cluster_fanout.push(run);
            }
        }
        if self.phases.contains(&Phase::Acks) {
            for &p in &self.publishers {
                let sizes = (pad, report.message_bytes);
                let run = acks::run(&rt, &mut cluster, p, self.topics, sizes, run_time)?;
                if text {
                    report::acks_row(out, &run)?;
                }
                report.acks.push(run);
            }
        }
        if self.phases.contains(&Phase::Latency) {
            for (name, pace) in [
                (
                    format!("lat-{}", self.latency_rate),
                    Pace::Rate(self.latency_rate),
                ),
                ("lat-max".to_owned(), Pace::Window(self.window)),
            ] {
                let spec = Spec {
                    topic: static_topic(name),
                    subscribers: vec![0, 1],
                    publisher_at: 0,
                    pace,
                    pad,
                    run_time,
                    drain,
                };
                let run = delivery::run(&self.setup, &mut Servers::Cluster(&mut cluster), &spec)?;
                if text {
                    report::latency_row(out, pace, &run)?;
                }
                report.latency.push(run);
            }
        }
        if self.phases.contains(&Phase::Catchup) {
            let plan = catchup::Plan {
                signal: self.stop_signal,
                down,
                publishers: self.catchup_publishers,
                topics: self.topics,
                pad,
            };
            let run = catchup::run(&rt, &mut cluster, &plan)?;
            if text {
                report::catchup_row(out, &run)?;
            }
            report.catchup = Some(run);
        }
        rt.shutdown_timeout(Duration::from_secs(2));
        cluster.stop_all()
    }
}

/// A topic name that lives as long as the process: the subscribers'
/// greeting takes a `&'static str`, and a run makes a handful of them.
fn static_topic(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

/// `n` subscribers over `servers` servers, as evenly as they go (the first
/// ones get one more).
fn split(n: usize, servers: usize) -> Vec<usize> {
    (0..servers)
        .map(|i| n / servers + usize::from(i < n % servers))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscribers_are_split_evenly() {
        assert_eq!(split(100, 3), [34, 33, 33]);
        assert_eq!(split(1000, 1), [1000]);
        assert_eq!(split(2, 3), [1, 1, 0]);
    }
}
