//! The memory budget of the connections' queues (`queue_memory_budget`,
//! issue 11): clients that never read and ask for large replies again and
//! again cannot make the server's memory grow past the budget plus a
//! small floor per connection, and a client that reads is still served.
//!
//! Scaled for CI: 100 hostile connections asking for ~3.7 MB of replies
//! each, against a budget of 8 MiB. Their sockets' receive buffers are
//! made small, so that the kernel takes fewer replies off the server's
//! hands. Without the budget the server held 540 MB of replies and this
//! process grew by as much; with it, 8 MiB counted and 13 MB of growth.
//!
//! At full size (outside CI; docs/BENCHMARKS.md keeps the figures):
//! `WSE_BUDGET_FULL=1 cargo test --release --test memory_budget --
//! --nocapture` runs 10,000 hostile connections, each asking for ~150 KB
//! of replies, against the default budget of 256 MiB.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use support::raw::{RawWs, masked, upgrade_request};
use support::*;
use tokio::net::TcpSocket;
use wse::ServerConfig;

/// (budget, hostile connections, asks per connection): scaled for CI, or
/// full size with `WSE_BUDGET_FULL` set.
fn scale() -> (usize, usize, usize) {
    if std::env::var_os("WSE_BUDGET_FULL").is_some() {
        (256 << 20, 10_000, 10)
    } else {
        (8 << 20, 100, 250)
    }
}
/// Topics per subscription update; each name is 200 bytes, so an ask is
/// ~14 KB (under the read buffer's floor: the asks are all read) and a
/// reply listing them ~15 KB.
const TOPICS: usize = 70;
/// What each connection may hold whatever the count: 16 KiB of frames and
/// 16 KiB of read buffer (docs/OPERATIONS.md).
const FLOOR_PER_CONN: usize = 32 * 1024;

/// The server's value of Prometheus metric `name`.
fn metric(ts: &TestServer, name: &str) -> u64 {
    ts.server
        .prometheus_metrics()
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0)
}

/// Resident memory of this process (server and clients), in bytes.
fn rss() -> usize {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// A client that never reads, with a 4 KiB receive buffer.
async fn hostile(addr: SocketAddr) -> RawWs {
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let stream = socket.connect(addr).await.unwrap();
    RawWs::upgrade(stream, upgrade_request("/wse", &[]).as_bytes()).await
}

/// The ask every hostile client sends again and again: subscribe to
/// `TOPICS` long topic names (the reply lists them all).
fn ask() -> Vec<u8> {
    let topics: Vec<String> = (0..TOPICS)
        .map(|i| format!("t{i:03}-{}", "x".repeat(195)))
        .collect();
    masked(
        1,
        json!({"c": "WSE", "t": "subscription_update",
            "p": {"action": "subscribe", "topics": topics}})
        .to_string()
        .as_bytes(),
    )
}

/// Open `conns` clients that never read, wait for `go`, then have each
/// send `asks` asks from a task of its own (a paused server stops taking
/// them) and hold its socket open.
async fn flood(
    addr: SocketAddr,
    conns: usize,
    asks: usize,
    go: impl std::future::Future<Output = ()>,
) -> tokio::task::JoinSet<()> {
    let mut open = Vec::new();
    for _ in 0..conns {
        open.push(hostile(addr).await);
    }
    go.await;
    let ask = ask();
    let mut sends = tokio::task::JoinSet::new();
    for mut ws in open {
        let ask = ask.clone();
        sends.spawn(async move {
            for _ in 0..asks {
                ws.send_lenient(&ask).await;
            }
            std::future::pending::<()>().await; // hold the socket open
        });
    }
    sends
}

/// The hostile clients of the full-size run, in a process of their own
/// (this test binary run again, see `Clients::spawn`): the server's
/// process then holds only the server, and each process stays under the
/// open-file limit. Without `WSE_BUDGET_ADDR` it does nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the client side of the full-size run; started by it"]
async fn hostile_clients_process() {
    let Some(addr) = std::env::var("WSE_BUDGET_ADDR").ok() else {
        return;
    };
    let (_, conns, asks) = scale();
    raise_open_files(conns as u64 + 256);
    let go = async {
        println!("connected");
        let mut line = String::new();
        let _ = tokio::task::spawn_blocking(move || std::io::stdin().read_line(&mut line)).await;
    };
    let _sends = flood(addr.parse().unwrap(), conns, asks, go).await;
    std::future::pending::<()>().await;
}

/// Where the hostile clients run.
enum Clients {
    /// Tasks of this process (the CI scale).
    Here(tokio::task::JoinSet<()>),
    /// A child process (the full size).
    Child(std::process::Child),
}

impl Clients {
    /// Connect the clients, call `connected`, then start the asks.
    async fn start(
        addr: SocketAddr,
        conns: usize,
        asks: usize,
        full: bool,
        connected: impl FnOnce(),
    ) -> Self {
        if !full {
            return Self::Here(flood(addr, conns, asks, async { connected() }).await);
        }
        use std::io::{BufRead, Write};
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "hostile_clients_process",
                "--nocapture",
            ])
            .env("WSE_BUDGET_ADDR", addr.to_string())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("connected") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "the client process ended"
            );
        }
        connected();
        child.stdin.take().unwrap().write_all(b"go\n").unwrap();
        Self::Child(child)
    }
}

impl Drop for Clients {
    fn drop(&mut self) {
        match self {
            Self::Here(tasks) => tasks.abort_all(),
            Self::Child(child) => {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_stay_within_the_budget_and_others_are_served() {
    let (budget, hostile_conns, asks) = scale();
    let full = std::env::var_os("WSE_BUDGET_FULL").is_some();
    raise_open_files(
        if full {
            256
        } else {
            2 * hostile_conns as u64 + 256
        } + hostile_conns as u64,
    );
    let ts = TestServer::start(ServerConfig {
        queue_memory_budget: budget,
        max_connections: hostile_conns + 16,
        max_pending_handshakes_per_ip: 0,
        client_publish: true,
        ..standalone()
    });
    let mut reader = ts.client().await;
    reader.hello().await;
    let reply = reader.subscribe(&["news"], None).await;
    assert_eq!(reply["p"]["success"], true, "{reply}");
    let mut before = 0;
    let mut received_before = 0;
    let idle = rss();
    let clients = Clients::start(ts.addr, hostile_conns, asks, full, || {
        before = rss();
        received_before = metric(&ts, "wse_bytes_received_total");
    })
    .await;
    let started = std::time::Instant::now();
    let ask = ask();
    // The server has read every ask, or as many as the budget lets it (a
    // read buffer past its floor waits for room that these clients never
    // make: their replies are never read).
    let sent = (hostile_conns * asks * ask.len()) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let read = metric(&ts, "wse_bytes_received_total") - received_before;
        // Full: no room for one more reply (~15 KB) past the floors.
        let full = metric(&ts, "wse_queue_memory_bytes") as usize + (64 << 10) >= budget;
        if read >= sent || (full && metric(&ts, "wse_memory_budget_waits_total") > 0) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "neither all asks read ({read} of {sent} bytes) nor the budget full:\n{}",
            ts.server.prometheus_metrics()
        );
        tokio::time::sleep(Duration::from_millis(20)).await; // polling counters
    }
    let counted = metric(&ts, "wse_queue_memory_bytes") as usize;
    let grown = rss().saturating_sub(before);
    let bound = budget + (hostile_conns + 1) * FLOOR_PER_CONN;
    println!(
        "{hostile_conns} connections, budget {} MiB: asked {} MB, read {} MB in {:.1} s; \
         counted {} MiB, this process grew {} MiB (bound {} MiB), {} replies refused; \
         RSS {} MiB before the clients, {} MiB with them connected, {} MiB at the end",
        budget >> 20,
        sent / 1_000_000,
        (metric(&ts, "wse_bytes_received_total") - received_before) / 1_000_000,
        started.elapsed().as_secs_f64(),
        counted >> 20,
        grown >> 20,
        bound >> 20,
        metric(&ts, "wse_slow_consumer_drops_total"),
        idle >> 20,
        before >> 20,
        rss() >> 20,
    );
    assert!(
        counted <= bound,
        "the budget counts {counted} bytes, bound {bound}"
    );
    // What the count leaves out: the clients' side of this process (a
    // task and a socket each), the allocator's slack.
    let slack = (24 << 20) + if full { 0 } else { hostile_conns * 8 * 1024 };
    assert!(
        grown <= bound + slack,
        "RSS grew by {} MiB (bound {} MiB + {} MiB slack)",
        grown >> 20,
        bound >> 20,
        slack >> 20
    );
    assert!(
        metric(&ts, "wse_slow_consumer_drops_total") > 0,
        "no reply was refused: the test did not reach the budget"
    );
    // The client that reads is still served: a ping, a broadcast.
    reader
        .send_json(&json!({"t": "ping", "p": {"timestamp": 1}}))
        .await;
    reader.expect_type("PONG").await;
    let mut publisher = ts.client().await;
    publisher
        .send_json(&json!({"t": "publish",
            "p": {"topic": "news", "message": {"t": "headline", "p": {"n": 1}}}}))
        .await;
    assert_eq!(reader.expect_type("headline").await["p"]["n"], 1);
    drop(clients);
}
