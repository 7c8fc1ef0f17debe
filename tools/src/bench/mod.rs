//! `wse bench ...`: throughput figures for docs/BENCHMARKS.md.
//!
//! The connection benchmarks (`fanout`, `inbound`, `idle`) run the server
//! as `wse serve` in a process of their own, on a free loopback port with
//! a scratch data directory, and drive it from a load generator in this
//! process; the server's CPU time and memory come from /proc. On a small
//! machine the load generator competes with the server for CPU, so every
//! rate is reported beside the server's CPU time per message.
//!
//! # Layout
//!
//! - `log`: `wse bench log`, the log's append and read paths.
//! - `disk`: the disk's sequential write bandwidth (what `dd ...
//!   conv=fdatasync` reports), the yardstick for append throughput.
//! - `fanout`: `wse bench fanout`, one publisher to N subscribers.
//! - `cluster`: `wse bench cluster`, the same and more on a cluster of
//!   `wse serve` processes, against a single node.
//! - `inbound`: `wse bench inbound`, N clients to the application.
//! - `idle`: `wse bench idle`, memory per idle connection.
//! - `presence`: `wse bench presence`, presence operations/s and memory per
//!   member (the server in this process: presence is driven by the app).
//! - `server_process`: the server under test in its own process, and the
//!   flags saying how it and the load generator run.
//! - `tls`: a throwaway CA and server certificate for `fanout --tls`.
//! - `wire`: the load generator's minimal WebSocket client (plain or TLS).
//! - `scan`: numbers out of JSON text without parsing it.
//! - `hist`: the latency histogram.
//! - `proc_stats`: CPU time and memory from /proc; the open-file limit.
//! - this file: the subcommand list and [`Machine`], printed with every
//!   result.

mod cluster;
mod disk;
mod fanout;
mod hist;
mod idle;
mod inbound;
mod log;
mod paced;
mod presence;
mod proc_stats;
mod scan;
mod server_process;
mod tls;
mod wire;

use serde::Serialize;

subcommands! {
    /// The `wse bench` subcommands.
    pub enum BenchCommand {
        /// Append and read throughput of the log under each durability
        /// policy, against the disk's own write bandwidth.
        Log(log::LogBenchArgs),
        /// Fan-out from one publisher to N subscribers of a topic:
        /// deliveries/s, loss, latency, and server CPU per delivery, with
        /// every broadcast appended to the log.
        ///
        /// For each subscriber count (and durability policy) a fresh
        /// `wse serve` runs in its own process (this binary, or
        /// --server-bin), N connections subscribe to one topic with the
        /// core `subscription_update`, and one connection publishes
        /// ~--size-byte messages with a client `publish` for --seconds:
        /// with `--rate max` as fast as the slowest subscriber keeps up
        /// with (at most --window messages ahead of it), or at a fixed rate.
        /// Every subscriber must receive the offsets 0..published once and
        /// in order; anything else is reported as loss or duplicates.
        /// Latency runs from the send time embedded in each message to the
        /// read that brought it (under `--rate max` it includes the wait in
        /// the window: it is latency at saturation; use --rate for latency
        /// at a given load). The server's CPU time over the run is divided
        /// by the deliveries: on a small machine the load generator competes
        /// for CPU, so this figure matters beside the rate. It depends on
        /// the load: a busy server writes many frames per system call.
        /// With --tls the server serves a throwaway certificate and every
        /// connection speaks TLS: against a plain run, the CPU per delivery
        /// shows what encrypting each delivery costs.
        Fanout(fanout::FanoutBenchArgs),
        /// Messages/s N clients get through to the application's event
        /// queue, with no loss (back-pressure instead of drops), and server
        /// CPU per message.
        ///
        /// For each client count a fresh `wse serve --bench-app` runs in
        /// its own process: its events go through the application event
        /// queue to an app thread that drains and counts them, like a real
        /// app. Every client sends ~--size-byte messages as fast as the
        /// server takes them for --seconds (a full queue makes the server
        /// stop reading: TCP slows the clients down), then asks the app with
        /// `{"t":"bench_stats"}` how many of its messages arrived. Sent
        /// minus counted is loss and must be 0. The rate is over the whole
        /// run, from the first send until the app has counted everything
        /// (the kernel's socket buffers hold much of what was sent).
        Inbound(inbound::InboundBenchArgs),
        /// Server memory per idle connection, and whether it is returned
        /// when they close.
        ///
        /// Starts `wse serve`, reads its resident memory (VmRSS), opens
        /// --connections connections that complete the upgrade, receive
        /// `server_ready` and stay idle, reads it again and reports the
        /// growth per connection (user-space memory; the kernel's socket
        /// buffers are not in it). Then closes them, reports the memory
        /// after, and opens them once more: memory the allocator kept is
        /// reused then, a leak grows again.
        Idle(idle::IdleBenchArgs),
        /// Presence joins and leaves per second, and memory per tracked
        /// member.
        ///
        /// Runs a server with presence in this process (presence is set by
        /// the application, which this benchmark plays), opens --members
        /// connections (one user each), and calls `subscribe_with_presence`
        /// for each on one of --rooms topics, then `unsubscribe`, timing
        /// each pass. Every join and leave is appended to the topic's
        /// presence stream in the log and sent (coalesced per tick) to the
        /// room's subscribers. Memory per member is the RSS growth over the
        /// joins divided by the members.
        Presence(presence::PresenceBenchArgs),
        /// A cluster of `wse serve` processes on 127.0.0.1 (3 by default,
        /// each with its own data directory): acknowledged publishes,
        /// latency across nodes, fan-out against a single node, catch-up of
        /// a restarted node, and write amplification.
        ///
        /// Phases (--phases), in this order: `fanout`: one publisher, N
        /// subscribers split over the nodes, first on a single `wse serve`
        /// then on the cluster, with the same load generator: deliveries/s
        /// and the servers' CPU time per delivery, summed over the nodes and
        /// per node. `acks`: P connections spread over the nodes, each
        /// publishing with an id and waiting for its `publish_ack` before the
        /// next, on --topics topics: acks/s and ack latency, and what each
        /// node wrote to disk (/proc/<pid>/io, and the growth of its Raft
        /// files and topic logs) per payload byte acknowledged. `latency`:
        /// a publisher on node 1, a subscriber on node 2, at --latency-rate
        /// and at the most the subscriber keeps up with: publish-to-delivery
        /// latency. `catchup`: the node leading the fewest shards is stopped
        /// (--stop-signal) while acknowledged publishers load the others for
        /// --down-seconds, then restarted with the load stopped: the time
        /// until it has applied, on every shard, what the others applied.
        /// The nodes wait for agreed leaders of every shard before any
        /// measurement; on a small machine they share its CPUs with each
        /// other and with the load generator.
        Cluster(cluster::ClusterBenchArgs),
    }
}

/// The machine a benchmark ran on, printed with its figures.
#[derive(Clone, Debug, Serialize)]
pub struct Machine {
    /// CPUs available to the process.
    pub nproc: usize,
    /// The CPU's model name from /proc/cpuinfo, if readable.
    pub cpu_model: Option<String>,
}

impl Machine {
    /// Describe this machine.
    pub fn detect() -> Self {
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|info| {
                info.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_owned())
            });
        Self {
            nproc: std::thread::available_parallelism().map_or(1, usize::from),
            cpu_model,
        }
    }
}

impl std::fmt::Display for Machine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} CPUs, {}",
            self.nproc,
            self.cpu_model.as_deref().unwrap_or("unknown model")
        )
    }
}
