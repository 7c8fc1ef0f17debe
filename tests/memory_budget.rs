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

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use support::raw::{RawWs, masked, upgrade_request};
use support::*;
use tokio::net::TcpSocket;
use wse::ServerConfig;

const BUDGET: usize = 8 << 20;
const HOSTILE: usize = 100;
const ASKS: usize = 250;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_stay_within_the_budget_and_others_are_served() {
    let ts = TestServer::start(ServerConfig {
        queue_memory_budget: BUDGET,
        client_publish: true,
        ..standalone()
    });
    let mut reader = ts.client().await;
    reader.hello().await;
    let reply = reader.subscribe(&["news"], None).await;
    assert_eq!(reply["p"]["success"], true, "{reply}");
    let mut flood = Vec::new();
    for _ in 0..HOSTILE {
        flood.push(hostile(ts.addr).await);
    }
    let before = rss();
    let received_before = metric(&ts, "wse_bytes_received_total");
    let topics: Vec<String> = (0..TOPICS)
        .map(|i| format!("t{i:03}-{}", "x".repeat(195)))
        .collect();
    let ask = masked(
        1,
        json!({"c": "WSE", "t": "subscription_update",
            "p": {"action": "subscribe", "topics": topics}})
        .to_string()
        .as_bytes(),
    );
    // Sent from tasks of their own: a paused server stops taking them.
    let mut sends = tokio::task::JoinSet::new();
    for mut ws in flood {
        let ask = ask.clone();
        sends.spawn(async move {
            for _ in 0..ASKS {
                ws.send_lenient(&ask).await;
            }
            std::future::pending::<()>().await; // hold the socket open
        });
    }
    // The server has read every ask, or as many as the budget lets it (a
    // read buffer past its floor waits for room that these clients never
    // make: their replies are never read).
    let sent = (HOSTILE * ASKS * ask.len()) as u64;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let read = metric(&ts, "wse_bytes_received_total") - received_before;
        // Full: no room for one more reply (~15 KB) past the floors.
        let full = metric(&ts, "wse_queue_memory_bytes") as usize + (64 << 10) >= BUDGET;
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
    let bound = BUDGET + (HOSTILE + 1) * FLOOR_PER_CONN;
    assert!(
        counted <= bound,
        "the budget counts {counted} bytes, bound {bound}"
    );
    // What the count leaves out: the clients' side of this process, the
    // allocator's slack.
    let slack = 24 << 20;
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
    sends.abort_all();
}
