//! `wse bench idle`: the server's memory per idle connection.
//!
//! Start `wse serve`, note its resident memory (after one connection came
//! and went, so what every server has anyway is in the baseline), open N
//! connections that complete the upgrade and receive `server_ready`, note
//! the memory again: the difference over N is the cost of an idle
//! connection (user-space memory; the kernel's socket buffers are not in
//! RSS). Then close them all and note how much of it the server gave back,
//! and open them once more: memory that was kept rather than returned to
//! the system is reused then (no growth), while a leak grows again.

use std::time::{Duration, Instant};

use serde::Serialize;

use super::Machine;
use super::proc_stats;
use super::server_process::{ServerProcess, Setup};
use super::wire::{self, Greeting};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// Connections opened at once.
const OPEN_PARALLEL: usize = 128;
/// Read buffer of an idle client connection.
const CLIENT_BUF: usize = 1024;
/// Time for the server to settle before a memory reading.
const SETTLE: Duration = Duration::from_millis(500);
/// How long to wait for the memory to stop falling after the close.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);

/// Server memory per idle connection, and whether it comes back.
///
/// (The long help, `--help`, is on the subcommand in `bench/mod.rs`.)
#[derive(Debug, clap::Args)]
pub struct IdleBenchArgs {
    /// Idle connections to open.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    connections: usize,
    #[command(flatten)]
    setup: Setup,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// The figures.
#[derive(Clone, Debug, Serialize)]
struct IdleReport {
    machine: Machine,
    connections: usize,
    /// Seconds to open them all.
    open_seconds: f64,
    rss_before_bytes: u64,
    rss_connected_bytes: u64,
    /// (connected - before) / connections.
    bytes_per_connection: f64,
    rss_after_close_bytes: u64,
    /// Share of the growth given back after the close, percent.
    returned_percent: f64,
    /// RSS with the connections open a second time.
    rss_reopened_bytes: u64,
    /// (reopened - after close) / connections: about 0 when the memory
    /// kept after the first close is reused, about `bytes_per_connection`
    /// when it leaked.
    regrowth_bytes_per_connection: f64,
}

impl Run for IdleBenchArgs {
    fn run(self) -> Result<u8, CliError> {
        self.setup.validate()?;
        if self.connections == 0 {
            return Err(CliError::Usage("--connections must be at least 1".into()));
        }
        proc_stats::raise_open_file_limit(self.connections as u64 + 64)?;
        let mut server = ServerProcess::start(&self.setup, &[])?;
        let rt = self.setup.client_runtime()?;
        let addr = server.addr();
        let open = |n| {
            rt.block_on(wire::open_many(
                addr,
                n,
                CLIENT_BUF,
                Greeting::ServerReady,
                OPEN_PARALLEL,
            ))
        };
        // Warm up: the first connection allocates what every server has.
        drop(open(1)?);
        std::thread::sleep(SETTLE);
        let before = server.sample()?;

        let start = Instant::now();
        let conns = open(self.connections)?;
        let open_seconds = start.elapsed().as_secs_f64();
        std::thread::sleep(SETTLE);
        let connected = server.sample()?;

        drop(conns);
        let after = settled_rss(&mut server)?;
        let again = open(self.connections)?;
        std::thread::sleep(SETTLE);
        let reopened = server.sample()?;
        drop(again);
        rt.shutdown_timeout(Duration::from_secs(2));
        server.stop()?;

        let grown = connected.rss_bytes.saturating_sub(before.rss_bytes);
        let report = IdleReport {
            machine: Machine::detect(),
            connections: self.connections,
            open_seconds,
            rss_before_bytes: before.rss_bytes,
            rss_connected_bytes: connected.rss_bytes,
            bytes_per_connection: grown as f64 / self.connections as f64,
            rss_after_close_bytes: after,
            returned_percent: 100.0 * connected.rss_bytes.saturating_sub(after) as f64
                / grown.max(1) as f64,
            rss_reopened_bytes: reopened.rss_bytes,
            regrowth_bytes_per_connection: reopened.rss_bytes.saturating_sub(after) as f64
                / self.connections as f64,
        };
        let mut out = Out::stdout();
        if self.json {
            out.json_pretty(&report)?;
        } else {
            print(&mut out, &report)?;
        }
        out.flush()?;
        Ok(0)
    }
}

/// The server's RSS once it stopped falling after the clients left (or
/// after [`RELEASE_TIMEOUT`]).
fn settled_rss(server: &mut ServerProcess) -> Result<u64, CliError> {
    let deadline = Instant::now() + RELEASE_TIMEOUT;
    let mut last = server.sample()?.rss_bytes;
    loop {
        std::thread::sleep(SETTLE);
        let now = server.sample()?.rss_bytes;
        if now >= last || Instant::now() >= deadline {
            return Ok(now.min(last));
        }
        last = now;
    }
}

fn print(out: &mut Out, r: &IdleReport) -> Result<(), CliError> {
    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    out.line(format_args!("machine: {}", r.machine))?;
    out.line(format_args!(
        "idle connections: {} opened in {:.2} s (upgrade + server_ready each)",
        r.connections, r.open_seconds
    ))?;
    out.line(format_args!(
        "server RSS: {:.1} MiB before, {:.1} MiB with them open, {:.1} MiB after they closed",
        mib(r.rss_before_bytes),
        mib(r.rss_connected_bytes),
        mib(r.rss_after_close_bytes)
    ))?;
    out.line(format_args!(
        "per idle connection: {:.0} bytes ({:.2} KiB); returned after close: {:.0}%",
        r.bytes_per_connection,
        r.bytes_per_connection / 1024.0,
        r.returned_percent
    ))?;
    out.line(format_args!(
        "opened again: {:.1} MiB, {:.0} bytes more per connection (about 0: the memory \
         kept is reused; about the figure above: it leaked)",
        mib(r.rss_reopened_bytes),
        r.regrowth_bytes_per_connection
    ))?;
    Ok(())
}
