//! The text tables of `wse bench cluster`, a line per run as it finishes.

use super::Report;
use super::acks::AckRun;
use super::catchup::CatchupRun;
use super::delivery::DeliveryRun;
use crate::bench::paced::Pace;
use crate::bench::server_process::Setup;
use crate::error::CliError;
use crate::output::Out;

/// The machine and the settings.
pub fn header(out: &mut Out, r: &Report, setup: &Setup) -> Result<(), CliError> {
    if let Some(m) = &r.machine {
        out.line(format_args!("machine: {m}"))?;
    }
    out.line(format_args!(
        "cluster: {} nodes on 127.0.0.1, {} shards, topic logs durability {} (Raft log fsynced \
         per append); {}-byte messages, {} s per run; each server {} worker threads, load \
         generator {}",
        r.nodes,
        r.shards,
        r.durability,
        r.message_bytes,
        r.seconds_per_run,
        setup.server_threads,
        setup.client_threads
    ))?;
    out.flush()
}

/// A fan-out run: rate, loss, latency, CPU per delivery (all servers and
/// each).
pub fn fanout_row(out: &mut Out, what: &str, r: &DeliveryRun) -> Result<(), CliError> {
    let per_node: Vec<String> = (0..r.cpu_seconds.len())
        .map(|i| format!("{:.1}", r.cpu_ns_per_delivery_of(i)))
        .collect();
    out.line(format_args!(
        "fanout  {what:<7} subs {:>5}: {:>11.0} deliveries/s, published {:>8}, loss {} dups {} \
         disc {}, p50 {:.0} µs p99 {:.0} µs, server cpu {:.2} s = {:.1} ns/delivery (per process: {}){}",
        r.subscribers,
        r.deliveries_per_sec,
        r.published,
        r.counts.loss,
        r.counts.duplicates,
        r.counts.disconnected,
        r.latency.p50_us,
        r.latency.p99_us,
        r.cpu_seconds.iter().sum::<f64>(),
        r.cpu_ns_per_delivery,
        per_node.join(" / "),
        drain_note(r),
    ))?;
    out.flush()
}

/// An acknowledged-publish run, with its write amplification.
pub fn acks_row(out: &mut Out, r: &AckRun) -> Result<(), CliError> {
    let cpu: Vec<String> = r
        .nodes
        .iter()
        .map(|n| format!("{:.2}", n.cpu_seconds))
        .collect();
    out.line(format_args!(
        "acks    {:>3} publishers on {} topics: {:>8.0} acks/s ({} acked, {} errors), ack p50 {:.0} µs \
         p99 {:.0} µs p99.9 {:.0} µs; node cpu s {}",
        r.publishers,
        r.topics,
        r.acks_per_sec,
        r.acked,
        r.errors,
        r.latency.p50_us,
        r.latency.p99_us,
        r.latency.p999_us,
        cpu.join(" / "),
    ))?;
    let payload = r.payload_bytes.max(1) as f64;
    for (i, n) in r.nodes.iter().enumerate() {
        out.line(format_args!(
            "        node {}: written {:.2} B per payload byte (raft files +{:.2}, topic logs +{:.2})",
            i + 1,
            n.write_bytes as f64 / payload,
            n.raft_bytes as f64 / payload,
            n.topic_bytes as f64 / payload,
        ))?;
    }
    out.line(format_args!(
        "        all nodes: written {:.2} B per payload byte ({:.1} MiB of payload)",
        r.write_amplification(),
        payload / f64::from(1 << 20)
    ))?;
    out.flush()
}

/// A publish-on-node-1, deliver-on-node-2 run.
pub fn latency_row(out: &mut Out, pace: Pace, r: &DeliveryRun) -> Result<(), CliError> {
    let pace = match pace {
        Pace::Rate(x) => format!("{x}/s"),
        Pace::Window(w) => format!("max (window {w})"),
    };
    out.line(format_args!(
        "latency node 1 -> node 2 at {pace}: {:.0} delivered/s, p50 {:.0} µs p99 {:.0} µs \
         p99.9 {:.0} µs max {:.0} µs, loss {} dups {}{}",
        r.deliveries_per_sec,
        r.latency.p50_us,
        r.latency.p99_us,
        r.latency.p999_us,
        r.latency.max_us,
        r.counts.loss,
        r.counts.duplicates,
        drain_note(r),
    ))?;
    out.flush()
}

/// The catch-up run.
pub fn catchup_row(out: &mut Out, r: &CatchupRun) -> Result<(), CliError> {
    out.line(format_args!(
        "catchup node {} (led {} shards) stopped with {:?} for {:.1} s: {} records ({} Raft \
         entries) committed meanwhile, {} publishes refused; restarted: accepting connections \
         after {:.2} s, caught up after {:.2} s = {:.0} records/s",
        r.node,
        r.led_shards,
        r.signal,
        r.down_seconds,
        r.records_behind,
        r.entries_behind,
        r.publish_errors,
        r.start_seconds,
        r.catchup_seconds,
        r.records_per_sec,
    ))?;
    out.flush()
}

fn drain_note(r: &DeliveryRun) -> &'static str {
    if r.drained { "" } else { " (drain timed out)" }
}
