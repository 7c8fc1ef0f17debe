//! `wse bench presence`: presence joins and leaves per second, and memory
//! per tracked member.
//!
//! Presence is set by the application, so this benchmark is the
//! application: it runs a server in this process (presence on, its log in
//! a scratch directory under --dir), opens N connections (each its own user,
//! no JWT), and for each connection calls `subscribe_with_presence` on one
//! of --rooms topics, then `unsubscribe`, timing both passes. Every join
//! and leave is an operation appended to the topic's presence stream in the
//! log, applied to the CRDT, and sent (coalesced per tick) to the room's
//! subscribers, whom reader tasks keep draining. Memory per member is the
//! process's RSS growth from before the joins to after them, over N: the
//! CRDT entries, the presence stream's memory tail, the per-connection
//! bookkeeping (connections and the load generator were there before).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use wse::{EventDelivery, Server, ServerConfig};

use super::Machine;
use super::proc_stats;
use super::server_process::Setup;
use super::wire::{self, Greeting, WsConn};
use crate::Run;
use crate::error::CliError;
use crate::output::Out;

/// Connections opened at once.
const OPEN_PARALLEL: usize = 128;
/// Read buffer of a member's connection.
const CLIENT_BUF: usize = 4096;
/// Time for the presence tick to send and memory to settle.
const SETTLE: Duration = Duration::from_millis(500);

/// Presence operations/s and memory per tracked member.
///
/// (The long help, `--help`, is on the subcommand in `bench/mod.rs`.)
#[derive(Debug, clap::Args)]
pub struct PresenceBenchArgs {
    /// Members (connections, one user each; each costs two sockets here,
    /// the server's and the client's).
    #[arg(long, value_name = "N", default_value_t = 5_000)]
    members: usize,
    /// Topics the members are spread over (each member's presence goes to
    /// every subscriber of its topic: N²/rooms frames in all).
    #[arg(long, value_name = "R", default_value_t = 100)]
    rooms: usize,
    #[command(flatten)]
    setup: Setup,
    /// Print one JSON document instead of text.
    #[arg(long)]
    json: bool,
}

/// The figures.
#[derive(Clone, Debug, Serialize)]
struct PresenceReport {
    machine: Machine,
    members: usize,
    rooms: usize,
    /// `subscribe_with_presence` calls per second (one thread).
    joins_per_sec: f64,
    /// `unsubscribe` calls per second (one thread), each a leave.
    leaves_per_sec: f64,
    /// Users present after the joins, over all rooms (must be `members`).
    present_after_joins: usize,
    /// And after the leaves (must be 0).
    present_after_leaves: usize,
    rss_before_bytes: u64,
    rss_joined_bytes: u64,
    /// (joined - before) / members.
    bytes_per_member: f64,
}

impl Run for PresenceBenchArgs {
    fn run(self) -> Result<u8, CliError> {
        self.setup.validate()?;
        if self.members == 0 || self.rooms == 0 {
            return Err(CliError::Usage(
                "--members and --rooms must be at least 1".into(),
            ));
        }
        proc_stats::raise_open_file_limit(2 * self.members as u64 + 256)?;
        let scratch = tempfile::Builder::new()
            .prefix("wse-bench-presence-")
            .tempdir_in(self.setup.dir.clone().unwrap_or_else(|| ".".into()))
            .map_err(|e| CliError::io("create the scratch directory", e))?;
        let server = Arc::new(
            Server::new(ServerConfig {
                port: 0,
                data_dir: Some(scratch.path().join("data")),
                presence_enabled: true,
                server_ready_without_auth: true,
                event_delivery: EventDelivery::Discard,
                max_connections: self.members + 16,
                worker_threads: self.setup.server_threads,
                ..ServerConfig::default()
            })
            .map_err(|e| CliError::Config(e.to_string()))?,
        );
        let addr = server.start()?;
        let rt = self.setup.client_runtime()?;
        let conns = rt.block_on(wire::open_many(
            addr,
            self.members,
            CLIENT_BUF,
            Greeting::ServerReady,
            OPEN_PARALLEL,
        ))?;
        for c in conns {
            rt.spawn(drain(c));
        }
        let ids = server.connections()?;
        let rooms: Vec<String> = (0..self.rooms).map(|r| format!("room-{r}")).collect();
        let data = json!({"status": "online", "client": "wse-bench"});
        std::thread::sleep(SETTLE);
        let before = proc_stats::sample(None)?;

        let start = Instant::now();
        for (i, id) in ids.iter().enumerate() {
            let room = std::slice::from_ref(&rooms[i % rooms.len()]);
            server
                .subscribe_with_presence(id, room, None, Some(&data))
                .map_err(|e| CliError::Config(format!("join refused: {e}")))?;
        }
        let joins_per_sec = ids.len() as f64 / start.elapsed().as_secs_f64().max(1e-9);
        std::thread::sleep(SETTLE);
        let joined = proc_stats::sample(None)?;
        let present = |s: &Server| rooms.iter().map(|r| s.presence_stats(r).0).sum::<usize>();
        let present_after_joins = present(&server);

        let start = Instant::now();
        for (i, id) in ids.iter().enumerate() {
            let room = std::slice::from_ref(&rooms[i % rooms.len()]);
            server.unsubscribe(id, Some(room))?;
        }
        let leaves_per_sec = ids.len() as f64 / start.elapsed().as_secs_f64().max(1e-9);
        let present_after_leaves = present(&server);
        rt.shutdown_timeout(Duration::from_secs(2));
        server.stop()?;

        let report = PresenceReport {
            machine: Machine::detect(),
            members: ids.len(),
            rooms: self.rooms,
            joins_per_sec,
            leaves_per_sec,
            present_after_joins,
            present_after_leaves,
            rss_before_bytes: before.rss_bytes,
            rss_joined_bytes: joined.rss_bytes,
            bytes_per_member: joined.rss_bytes.saturating_sub(before.rss_bytes) as f64
                / ids.len().max(1) as f64,
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

/// Read and discard what a member's connection receives (its room's
/// presence frames), answering nothing: the benchmark ends within seconds.
async fn drain(mut conn: WsConn) {
    while matches!(conn.fill().await, Ok(n) if n > 0) {
        while let Ok(Some(_)) = conn.next_frame() {}
    }
}

fn print(out: &mut Out, r: &PresenceReport) -> Result<(), CliError> {
    out.line(format_args!("machine: {}", r.machine))?;
    out.line(format_args!(
        "presence: {} members (one connection and user each) over {} rooms, server in this process",
        r.members, r.rooms
    ))?;
    out.line(format_args!(
        "joins: {:.0}/s (present after: {}), leaves: {:.0}/s (present after: {})",
        r.joins_per_sec, r.present_after_joins, r.leaves_per_sec, r.present_after_leaves
    ))?;
    out.line(format_args!(
        "memory per tracked member: {:.0} bytes (RSS {:.1} -> {:.1} MiB)",
        r.bytes_per_member,
        r.rss_before_bytes as f64 / f64::from(1 << 20),
        r.rss_joined_bytes as f64 / f64::from(1 << 20)
    ))?;
    Ok(())
}
