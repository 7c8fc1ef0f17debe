//! `wse bench inbound`: N clients sending to an application, the server
//! in another process.
//!
//! The server runs `wse serve --bench-app`: its events go through the
//! application event queue, and an app thread drains them like a real app
//! and counts the messages of each connection. Every client sends
//! ~`--size`-byte messages as fast as its socket takes them for
//! `--seconds` (when the queue is full the server stops reading, and TCP
//! slows the clients down: back-pressure, not drops), then asks the app
//! with `{"t":"bench_stats"}` how many of its messages it got. The events
//! of a connection reach the app in order, so the answer counts everything
//! the client sent before asking: sent minus counted is loss, and must be
//! 0. The measured window runs from the first send to the last answer.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::Machine;
use super::fanout::positive;
use super::proc_stats;
use super::scan;
use super::server_process::{ServerProcess, Setup};
use super::wire::{self, Greeting, WireError, WsConn};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// Connections opened at once.
const OPEN_PARALLEL: usize = 128;
/// Bytes of messages per write.
const CHUNK_BYTES: usize = 16 * 1024;

/// Messages per second an application receives from N clients, and that
/// none is lost.
///
/// (The long help, `--help`, is on the subcommand in `bench/mod.rs`.)
#[derive(Debug, clap::Args)]
pub struct InboundBenchArgs {
    /// Client counts, one run each.
    #[arg(long, value_delimiter = ',', default_value = "100,1000")]
    clients: Vec<usize>,
    /// Seconds of sending per run.
    #[arg(long, value_name = "S", default_value_t = 5.0)]
    seconds: f64,
    /// Bytes of each message.
    #[arg(long, value_name = "B", default_value_t = 100)]
    size: usize,
    /// Seconds each client waits for the app's count once it stopped
    /// sending (the app first works through the backlog).
    #[arg(long, value_name = "S", default_value_t = 60.0)]
    drain_seconds: f64,
    #[command(flatten)]
    setup: Setup,
    /// Print one JSON document at the end instead of a table.
    #[arg(long)]
    json: bool,
}

/// One run's figures.
#[derive(Clone, Debug, Serialize)]
struct InboundRun {
    clients: usize,
    message_bytes: usize,
    /// Messages the clients sent.
    sent: u64,
    /// Messages the app counted (its total at the last answer).
    received: u64,
    /// Sent minus counted, over the clients that got an answer.
    loss: u64,
    /// Clients that got no answer before the drain timeout (their loss is
    /// unknown).
    unanswered: u64,
    /// Fairness of the back-pressure: the fewest and the most messages a
    /// client got to send.
    sent_per_client_min: u64,
    sent_per_client_max: u64,
    /// First send to last answer.
    seconds: f64,
    received_per_sec: f64,
    server_cpu_seconds: f64,
    server_cpu_ns_per_message: f64,
    /// Server memory once the app caught up, and its peak (the event queue
    /// full).
    server_rss_bytes: u64,
    server_peak_rss_bytes: u64,
    generator_cpu_seconds: f64,
}

/// Everything `--json` prints.
#[derive(Serialize)]
struct Report {
    machine: Machine,
    seconds_per_run: f64,
    server_threads: usize,
    client_threads: usize,
    runs: Vec<InboundRun>,
}

/// What one client found.
struct ClientResult {
    sent: u64,
    /// The app's count for this client, and its total, when it answered.
    answer: Option<(u64, u64)>,
}

impl Run for InboundBenchArgs {
    fn run(self) -> Result<u8, CliError> {
        self.setup.validate()?;
        let run_time = positive("--seconds", self.seconds)?;
        let drain = positive("--drain-seconds", self.drain_seconds)?;
        if self.clients.is_empty() || self.clients.contains(&0) {
            return Err(CliError::Usage(
                "--clients needs counts of at least 1".into(),
            ));
        }
        if self.size > 512 * 1024 {
            return Err(CliError::Usage(format!(
                "--size {} exceeds 512 KiB (the server takes messages up to 1 MiB)",
                self.size
            )));
        }
        let most = self.clients.iter().copied().max().unwrap_or(0);
        proc_stats::raise_open_file_limit(most as u64 + 64)?;
        let message = message(self.size);
        let mut out = Out::stdout();
        let text = !self.json;
        let mut report = Report {
            machine: Machine::detect(),
            seconds_per_run: self.seconds,
            server_threads: self.setup.server_threads,
            client_threads: self.setup.client_threads,
            runs: Vec::new(),
        };
        if text {
            out.line(format_args!("machine: {}", report.machine))?;
            out.line(format_args!(
                "inbound: clients -> app event queue -> app thread, {}-byte messages, {} s per \
                 run; server: {} worker threads, load generator: {}",
                message.len(),
                self.seconds,
                self.setup.server_threads,
                self.setup.client_threads
            ))?;
            out.line(format_args!(
                "{:>7} {:>11} {:>11} {:>6} {:>10} {:>12} {:>8} {:>8} {:>8} {:>8} {:>7}  {}",
                "clients",
                "sent",
                "received",
                "loss",
                "unanswered",
                "received/s",
                "srv cpu",
                "ns/msg",
                "srv MiB",
                "peak MiB",
                "gen cpu",
                "sent per client (min..max)"
            ))?;
            out.flush()?;
        }
        for &n in &self.clients {
            let row = run_one(&self.setup, n, &message, run_time, drain)?;
            if text {
                out.line(format_args!(
                    "{:>7} {:>11} {:>11} {:>6} {:>10} {:>12.0} {:>8.2} {:>8.1} {:>8.1} {:>8.1} {:>7.2}  {}..{}",
                    row.clients,
                    row.sent,
                    row.received,
                    row.loss,
                    row.unanswered,
                    row.received_per_sec,
                    row.server_cpu_seconds,
                    row.server_cpu_ns_per_message,
                    row.server_rss_bytes as f64 / f64::from(1 << 20),
                    row.server_peak_rss_bytes as f64 / f64::from(1 << 20),
                    row.generator_cpu_seconds,
                    row.sent_per_client_min,
                    row.sent_per_client_max
                ))?;
                out.flush()?;
            }
            report.runs.push(row);
        }
        if self.json {
            out.json_pretty(&report)?;
        }
        out.flush()?;
        Ok(0)
    }
}

/// A message of about `size` bytes the app counts.
fn message(size: usize) -> Vec<u8> {
    let empty = br#"{"t":"bench_msg","p":{"pad":""}}"#.len();
    let pad = "x".repeat(size.saturating_sub(empty));
    format!(r#"{{"t":"bench_msg","p":{{"pad":"{pad}"}}}}"#).into_bytes()
}

fn run_one(
    setup: &Setup,
    n: usize,
    message: &[u8],
    run_time: Duration,
    drain: Duration,
) -> Result<InboundRun, CliError> {
    let mut server = ServerProcess::start(setup, &["--bench-app"])?;
    let rt = setup.client_runtime()?;
    let conns = rt.block_on(wire::open_many(
        server.addr(),
        n,
        4096,
        Greeting::ServerReady,
        OPEN_PARALLEL,
    ))?;
    let frame = wire::text_frame(message);
    let per_chunk = (CHUNK_BYTES / frame.len()).max(1);
    let chunk: Arc<[u8]> = frame.repeat(per_chunk).into();

    // Every client is running and waiting before the clock starts, so
    // none starts late (a task polled for the first time after the
    // deadline would send nothing).
    let (go, wait) = tokio::sync::watch::channel(None);
    let ready = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = conns
        .into_iter()
        .map(|c| {
            let start = Start {
                ready: ready.clone(),
                go: wait.clone(),
            };
            rt.spawn(client(c, chunk.clone(), per_chunk as u64, start, drain))
        })
        .collect();
    while ready.load(Ordering::Acquire) < n {
        std::thread::sleep(Duration::from_millis(1));
    }
    let before = server.sample()?;
    let gen_before = proc_stats::sample(None)?;
    let start = Instant::now();
    go.send_replace(Some(tokio::time::Instant::from_std(start + run_time)));
    let results = rt.block_on(async {
        let mut results = Vec::with_capacity(tasks.len());
        for t in tasks {
            results.push(
                t.await
                    .map_err(|e| CliError::Bench(format!("a client task failed: {e}")))??,
            );
        }
        Ok::<_, CliError>(results)
    })?;
    let seconds = start.elapsed().as_secs_f64();
    let after = server.sample()?;
    let gen_after = proc_stats::sample(None)?;
    rt.shutdown_timeout(Duration::from_secs(2));
    server.stop()?;

    let sent: u64 = results.iter().map(|r| r.sent).sum();
    let received = results
        .iter()
        .filter_map(|r| r.answer.map(|(_, total)| total))
        .max()
        .unwrap_or(0);
    let loss = results
        .iter()
        .filter_map(|r| r.answer.map(|(mine, _)| r.sent.saturating_sub(mine)))
        .sum();
    let unanswered = results.iter().filter(|r| r.answer.is_none()).count() as u64;
    let sent_per_client_min = results.iter().map(|r| r.sent).min().unwrap_or(0);
    let sent_per_client_max = results.iter().map(|r| r.sent).max().unwrap_or(0);
    let cpu = (after.cpu_seconds - before.cpu_seconds).max(0.0);
    Ok(InboundRun {
        clients: n,
        message_bytes: message.len(),
        sent,
        received,
        loss,
        unanswered,
        sent_per_client_min,
        sent_per_client_max,
        seconds,
        received_per_sec: received as f64 / seconds.max(1e-9),
        server_cpu_seconds: cpu,
        server_cpu_ns_per_message: cpu * 1e9 / received.max(1) as f64,
        server_rss_bytes: after.rss_bytes,
        server_peak_rss_bytes: after.peak_rss_bytes,
        generator_cpu_seconds: gen_after.cpu_seconds - gen_before.cpu_seconds,
    })
}

/// How the clients start together.
struct Start {
    /// Clients waiting for the start.
    ready: Arc<AtomicUsize>,
    /// The deadline, once the clock started.
    go: tokio::sync::watch::Receiver<Option<tokio::time::Instant>>,
}

/// Wait for the start, send chunks of messages until the deadline, then
/// ask the app for its count (waiting at most `drain`).
async fn client(
    mut conn: WsConn,
    chunk: Arc<[u8]>,
    per_chunk: u64,
    mut start: Start,
    drain: Duration,
) -> Result<ClientResult, CliError> {
    start.ready.fetch_add(1, Ordering::Release);
    let deadline = match start.go.wait_for(Option::is_some).await {
        Ok(d) => d.unwrap_or_else(tokio::time::Instant::now),
        Err(_) => return Err(CliError::Bench("the run was abandoned".into())),
    };
    let mut sent = 0u64;
    while tokio::time::Instant::now() < deadline {
        conn.send(&chunk).await?;
        sent += per_chunk;
        // A write the kernel takes at once does not yield; without this a
        // few clients could keep the load generator's threads to
        // themselves.
        tokio::task::yield_now().await;
    }
    conn.send_text(br#"{"t":"bench_stats"}"#).await?;
    let answer = match tokio::time::timeout(drain, conn.wait_for_text(br#""t":"bench_stats""#))
        .await
    {
        Err(_) => None,
        Ok(reply) => {
            let reply = reply?;
            let mine = scan::number_after(&reply, br#""conn_received":"#);
            let total = scan::number_after(&reply, br#""received":"#);
            match (mine, total) {
                (Some(m), Some(t)) => Some((m, t)),
                _ => {
                    return Err(WireError::Protocol("a bench_stats answer without counts").into());
                }
            }
        }
    };
    Ok(ClientResult { sent, answer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_asked_size() {
        assert_eq!(message(100).len(), 100);
        let small = message(1);
        assert!(serde_json::from_slice::<serde_json::Value>(&small).is_ok());
    }
}
