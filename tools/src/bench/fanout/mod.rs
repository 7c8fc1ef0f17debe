//! `wse bench fanout`: one publisher, N subscribers of one topic, the
//! server in another process.
//!
//! Per subscriber count (and durability policy): start `wse serve`, open N
//! connections that subscribe to the topic with the core
//! `subscription_update`, then publish with a client `publish` for S
//! seconds. Every broadcast is appended to the server's log and stamped
//! with its offset `o`; every subscriber must receive offsets 0..published
//! exactly once, in order (anything else is loss or duplicates). Latency is
//! from the send time the publisher embeds (same machine clock) to the read
//! that brought the frame. After publishing stops, the run waits (bounded)
//! until every subscriber has the last offset; the measured window runs
//! from the first publish to then. The server's CPU time over the window is
//! divided by the deliveries: on two cores the load generator competes
//! with the server, so this is the figure that does not depend on it.
//!
//! With `--tls` the server serves a throwaway certificate and every
//! connection (subscribers and publisher) speaks TLS: compared with a
//! plain run, the server CPU per delivery shows what encrypting each
//! delivery costs.
//!
//! # Layout
//!
//! - `subscriber`: the reading tasks and their counts.
//! - `publisher`: the publishing thread and its pacing.
//! - this file: the command, one run, and the report.

mod publisher;
mod subscriber;

use std::time::{Duration, Instant};

use serde::Serialize;
use wse_log::Durability;

use super::Machine;
use super::hist::Percentiles;
use super::paced::{self, PacedPublisher};
use super::proc_stats::{self, ProcSample};
use super::server_process::{ServerProcess, Setup};
use super::tls::BenchTls;
use super::wire::{self, ClientTls, Greeting, WsConn};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;
use publisher::{Plan, Rate};
use subscriber::{Subscribers, Totals};

/// The topic of every run.
const TOPIC: &str = "bench";
/// Connections opened at once.
const OPEN_PARALLEL: usize = 128;
/// Read buffers of all subscribers together at most (each gets 4..64 KiB).
const READ_BUFFERS_TOTAL: usize = 256 << 20;

/// Fan-out throughput, loss and latency from one publisher to N subscribers.
///
/// (The long help, `--help`, is on the subcommand in `bench/mod.rs`.)
#[derive(Debug, clap::Args)]
pub struct FanoutBenchArgs {
    /// Subscriber counts, one run each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000,10000")]
    subscribers: Vec<usize>,
    /// Seconds of publishing per run.
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    seconds: f64,
    /// Bytes of each published `message` object (subscribers receive it
    /// with the ~40-byte recovery stamp; at least ~50 bytes).
    #[arg(long, value_name = "B", default_value_t = 100)]
    size: usize,
    /// Messages per second, or `max`: as fast as the slowest subscriber
    /// keeps up with (see --window).
    #[arg(long, value_name = "R|max", default_value = "max", value_parser = Rate::parse)]
    rate: Rate,
    /// With `--rate max`: messages the publisher may be ahead of the
    /// slowest subscriber (0: no limit, an open loop in which the server
    /// disconnects subscribers that fall too far behind).
    #[arg(long, value_name = "N", default_value_t = 1024)]
    window: u64,
    /// The server's log durability: always, interval[:<ms>] or never; a run
    /// per policy and subscriber count.
    #[arg(long, value_delimiter = ',', default_value = "interval",
          value_parser = parse_durability)]
    durability: Vec<String>,
    /// Seconds to wait after publishing for every subscriber to receive
    /// the last message (what is missing then counts as loss).
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    drain_seconds: f64,
    /// Subscribers negotiate end-to-end encryption: every delivery is
    /// sealed for each subscriber (and opened by the load generator).
    #[arg(long)]
    e2e: bool,
    /// Subscribers agree per-message deflate (as browsers do): messages of
    /// at least the server's `deflate_min_size` arrive compressed, and the
    /// load generator inflates them. Use with --size above 256.
    #[arg(long, conflicts_with = "e2e")]
    deflate: bool,
    /// Connect over TLS: the server serves a throwaway certificate (made
    /// in a temporary directory) and every connection, subscribers and
    /// publisher, runs TLS (1.3, rustls with ring on both ends).
    #[arg(long)]
    tls: bool,
    #[command(flatten)]
    setup: Setup,
    /// Print one JSON document at the end instead of a table.
    #[arg(long)]
    json: bool,
}

/// A durability policy as `wse serve --durability` takes it.
fn parse_durability(s: &str) -> Result<String, String> {
    Durability::parse(s).map(|_| s.to_owned())
}

/// One run's figures.
#[derive(Clone, Debug, Serialize)]
struct FanoutRun {
    subscribers: usize,
    /// Subscribers were end-to-end encrypted.
    e2e: bool,
    /// Subscribers agreed per-message deflate.
    deflate: bool,
    /// Every connection ran over TLS.
    tls: bool,
    durability: String,
    /// Size of each published message object, bytes.
    message_bytes: usize,
    /// Messages published (offsets 0..published).
    published: u64,
    /// Publishes the server refused (an `error` reply).
    publish_errors: u64,
    /// The measured window: first publish to the last delivery (or the
    /// drain timeout).
    seconds: f64,
    /// Every subscriber received the last offset before the drain timeout.
    drained: bool,
    #[serde(flatten)]
    totals: Totals,
    deliveries_per_sec: f64,
    published_per_sec: f64,
    /// Send-to-receive latency of the deliveries.
    latency: Percentiles,
    /// Server CPU time (user + system) over the window.
    server_cpu_seconds: f64,
    /// `server_cpu_seconds` per delivery, nanoseconds.
    server_cpu_ns_per_delivery: f64,
    /// Server memory at the end of the window, and its peak.
    server_rss_bytes: u64,
    server_peak_rss_bytes: u64,
    /// The load generator's own CPU time over the window.
    generator_cpu_seconds: f64,
}

/// Everything `--json` prints.
#[derive(Serialize)]
struct Report {
    machine: Machine,
    seconds_per_run: f64,
    rate: Rate,
    window: u64,
    server_threads: usize,
    client_threads: usize,
    runs: Vec<FanoutRun>,
}

impl Run for FanoutBenchArgs {
    fn run(self) -> Result<u8, CliError> {
        let (run_time, drain) = self.validate()?;
        let most = self.subscribers.iter().copied().max().unwrap_or(0);
        proc_stats::raise_open_file_limit(most as u64 + 64)?;
        let tls = self.tls.then(BenchTls::make).transpose()?;
        let mut out = Out::stdout();
        let text = !self.json;
        let mut report = Report {
            machine: Machine::detect(),
            seconds_per_run: self.seconds,
            rate: self.rate,
            window: self.window,
            server_threads: self.setup.server_threads,
            client_threads: self.setup.client_threads,
            runs: Vec::new(),
        };
        if text {
            out.line(format_args!("machine: {}", report.machine))?;
            out.line(format_args!(
                "fan-out: one publisher, topic {TOPIC:?}, {}-byte messages{}{}, {} s per run, \
                 rate {}{}; server: {} worker threads, load generator: {}",
                publisher::message_bytes(self.size),
                if self.e2e {
                    ", end-to-end encrypted subscribers"
                } else if self.deflate {
                    ", deflate subscribers"
                } else {
                    ""
                },
                if self.tls {
                    ", TLS subscribers (and publisher)"
                } else {
                    ""
                },
                self.seconds,
                self.rate,
                if self.rate == Rate::Max {
                    format!(" (window {})", self.window)
                } else {
                    String::new()
                },
                self.setup.server_threads,
                self.setup.client_threads,
            ))?;
            out.line(format_args!(
                "{:>6} {:<9} {:>10} {:>13} {:>7} {:>5} {:>5} {:>9} {:>9} {:>9} {:>8} {:>8} {:>8} {:>7}",
                "subs",
                "durabil.",
                "published",
                "deliveries/s",
                "loss",
                "dups",
                "disc",
                "p50 µs",
                "p99 µs",
                "max µs",
                "srv cpu",
                "ns/deliv",
                "srv MiB",
                "gen cpu"
            ))?;
            out.flush()?;
        }
        for durability in &self.durability {
            for &n in &self.subscribers {
                let plan = Plan {
                    rate: self.rate,
                    window: self.window,
                    size: self.size,
                    run_time,
                };
                let greeting = if self.e2e {
                    Greeting::SubscribeEncrypted(TOPIC)
                } else if self.deflate {
                    Greeting::SubscribeDeflate(TOPIC)
                } else {
                    Greeting::Subscribe(TOPIC)
                };
                let row = run_one(
                    &self.setup,
                    n,
                    durability,
                    &plan,
                    drain,
                    greeting,
                    tls.as_ref(),
                )?;
                if text {
                    print_row(&mut out, &row)?;
                }
                report.runs.push(row);
            }
        }
        if self.json {
            out.json_pretty(&report)?;
        }
        out.flush()?;
        Ok(0)
    }
}

impl FanoutBenchArgs {
    /// The publishing and drain durations, after checking the arguments.
    fn validate(&self) -> Result<(Duration, Duration), CliError> {
        self.setup.validate()?;
        let run_time = positive("--seconds", self.seconds)?;
        let drain = positive("--drain-seconds", self.drain_seconds)?;
        if self.subscribers.is_empty() || self.subscribers.contains(&0) {
            return Err(CliError::Usage(
                "--subscribers needs counts of at least 1".into(),
            ));
        }
        if self.durability.is_empty() {
            return Err(CliError::Usage("--durability needs a policy".into()));
        }
        if self.size > 512 * 1024 {
            return Err(CliError::Usage(format!(
                "--size {} exceeds 512 KiB (the server takes messages up to 1 MiB)",
                self.size
            )));
        }
        Ok((run_time, drain))
    }
}

/// A duration from a positive number of seconds.
pub(super) fn positive(flag: &str, seconds: f64) -> Result<Duration, CliError> {
    Duration::try_from_secs_f64(seconds)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| CliError::Usage(format!("{flag} must be positive, got {seconds}")))
}

/// One run: server, subscribers, publishing, drain, figures, cleanup.
fn run_one(
    setup: &Setup,
    n: usize,
    durability: &str,
    plan: &Plan,
    drain: Duration,
    greeting: Greeting,
    tls: Option<&BenchTls>,
) -> Result<FanoutRun, CliError> {
    let mut args = vec!["--durability".to_owned(), durability.to_owned()];
    args.extend(tls.map(BenchTls::serve_args).unwrap_or_default());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = ServerProcess::start(setup, &args)?;
    let rt = setup.client_runtime()?;
    let addr = server.addr();
    let buf = (READ_BUFFERS_TOTAL / n).clamp(4096, 64 * 1024);
    let client_tls: Option<&ClientTls> = tls.map(BenchTls::client);
    let conns = rt.block_on(wire::open_many_with(
        addr,
        client_tls,
        n,
        buf,
        greeting,
        OPEN_PARALLEL,
    ))?;
    let publisher_conn = rt.block_on(async {
        let mut c = WsConn::connect_with(addr, 4096, false, client_tls).await?;
        c.wait_for_text(br#""t":"server_ready""#).await?;
        Ok::<_, wire::WireError>(c)
    })?;
    let subs = Subscribers::spawn(&rt, conns);
    let mut publisher = PacedPublisher::new(publisher_conn)?;

    let before = server.sample()?;
    let gen_before = proc_stats::sample(None)?;
    let start = Instant::now();
    let pad = paced::pad_for(plan.size);
    let published = publisher.publish(TOPIC, pad, plan.pace(), plan.run_time, || subs.slowest())?;
    let publish_time = start.elapsed();
    let drained = subs.wait_delivered(published, drain);
    let seconds = start.elapsed().as_secs_f64();
    let after = server.sample()?;
    let gen_after = proc_stats::sample(None)?;

    let totals = subs.totals(published);
    let latency = subs.latency().percentiles();
    let publish_errors = publisher.finish();
    rt.shutdown_timeout(Duration::from_secs(2));
    server.stop()?;
    Ok(figures(Measured {
        n,
        greeting,
        tls: tls.is_some(),
        durability,
        size: plan.size,
        published,
        publish_errors,
        publish_time,
        seconds,
        drained,
        totals,
        latency,
        before,
        after,
        generator_cpu: gen_after.cpu_seconds - gen_before.cpu_seconds,
    }))
}

/// The raw results of one run.
struct Measured<'a> {
    n: usize,
    greeting: Greeting,
    tls: bool,
    durability: &'a str,
    size: usize,
    published: u64,
    publish_errors: u64,
    publish_time: Duration,
    seconds: f64,
    drained: bool,
    totals: Totals,
    latency: Percentiles,
    before: ProcSample,
    after: ProcSample,
    generator_cpu: f64,
}

fn figures(m: Measured<'_>) -> FanoutRun {
    let cpu = (m.after.cpu_seconds - m.before.cpu_seconds).max(0.0);
    let deliveries = m.totals.deliveries;
    FanoutRun {
        subscribers: m.n,
        e2e: matches!(m.greeting, Greeting::SubscribeEncrypted(_)),
        deflate: matches!(m.greeting, Greeting::SubscribeDeflate(_)),
        tls: m.tls,
        durability: m.durability.to_owned(),
        message_bytes: publisher::message_bytes(m.size),
        published: m.published,
        publish_errors: m.publish_errors,
        seconds: m.seconds,
        drained: m.drained,
        deliveries_per_sec: deliveries as f64 / m.seconds.max(1e-9),
        published_per_sec: m.published as f64 / m.publish_time.as_secs_f64().max(1e-9),
        totals: m.totals,
        latency: m.latency,
        server_cpu_seconds: cpu,
        server_cpu_ns_per_delivery: cpu * 1e9 / deliveries.max(1) as f64,
        server_rss_bytes: m.after.rss_bytes,
        server_peak_rss_bytes: m.after.peak_rss_bytes,
        generator_cpu_seconds: m.generator_cpu,
    }
}

fn print_row(out: &mut Out, r: &FanoutRun) -> Result<(), CliError> {
    out.line(format_args!(
        "{:>6} {:<9} {:>10} {:>13.0} {:>7} {:>5} {:>5} {:>9.0} {:>9.0} {:>9.0} {:>8.2} {:>8.1} {:>8.1} {:>7.2}{}",
        r.subscribers,
        r.durability,
        r.published,
        r.deliveries_per_sec,
        r.totals.loss,
        r.totals.duplicates,
        r.totals.disconnected,
        r.latency.p50_us,
        r.latency.p99_us,
        r.latency.max_us,
        r.server_cpu_seconds,
        r.server_cpu_ns_per_delivery,
        r.server_rss_bytes as f64 / f64::from(1 << 20),
        r.generator_cpu_seconds,
        if r.drained {
            ""
        } else {
            "  (drain timed out)"
        }
    ))?;
    if r.publish_errors > 0 {
        out.line(format_args!(
            "       the server refused {} publishes",
            r.publish_errors
        ))?;
    }
    if !r.totals.close_codes.is_empty() {
        out.line(format_args!(
            "       disconnected subscribers by close code (0: no Close): {:?}",
            r.totals.close_codes
        ))?;
    }
    out.flush()
}
