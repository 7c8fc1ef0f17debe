//! A slow disk holds up only what waits for it. With the log's writes
//! stalled and its backlog full, a client that keeps publishing is paused
//! (its session stops reading until the log has room) while every other
//! connection is served on the same, single Tokio worker; when the disk
//! comes back, every publish is acknowledged, in order.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use wse::ServerConfig;
use wse_log::{Durability, FaultAction, FaultRule, FaultyStorage, Gate, StorageOp};

const PUBLISHES: usize = 64;

struct ReopenOnDrop(Gate);

impl Drop for ReopenOnDrop {
    fn drop(&mut self) {
        self.0.open();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_waiting_for_a_stalled_disk_does_not_stall_other_connections() {
    let storage = FaultyStorage::default();
    let (server, addr, _dir) = start_on_storage(
        &storage,
        ServerConfig {
            client_publish: true,
            // One worker: anything blocking on it would stop every connection.
            worker_threads: 1,
            log: wse_log::LogConfig {
                durability: Durability::Never,
                max_pending_bytes: 16 << 10,
                ..Default::default()
            },
            ..standalone()
        },
    );
    let url = format!("ws://{addr}/wse");

    let mut bystander = Client::connect(&url, &[]).await;
    bystander.expect_type("server_ready").await;
    let mut publisher = Client::connect(&url, &[]).await;
    publisher.expect_type("server_ready").await;

    // The disk stops taking writes; the publisher sends four times what
    // the log's backlog holds.
    let gate = Gate::new();
    // Should an assertion fail, the disk comes back before the server is
    // dropped, so the failure is reported instead of hanging its stop.
    let _reopen = ReopenOnDrop(gate.clone());
    storage.inject(
        FaultRule::new(StorageOp::Write, FaultAction::Stall(gate.clone())).path_contains(".seg"),
    );
    let text = "x".repeat(1000);
    for i in 0..PUBLISHES {
        publisher
            .send_json(&json!({"t": "publish", "id": i,
                "p": {"topic": "slow", "message": {"t": "m", "p": {"text": text}}}}))
            .await;
    }
    // Wait until the backlog is full (no event marks it: look again).
    let log = server.log().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while log.stats().pending_bytes < 16 << 10 {
        assert!(Instant::now() < deadline, "the backlog never filled");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // The other connection is served meanwhile.
    bystander
        .send_json(&json!({"c": "WSE", "t": "ping", "p": {"client_timestamp": 1}}))
        .await;
    bystander.expect_type("PONG").await;

    // The disk comes back: every publish is acknowledged, in order.
    gate.open();
    storage.clear();
    for i in 0..PUBLISHES {
        let ack = publisher.expect_type("publish_ack").await;
        assert_eq!(ack["p"]["id"], i, "{ack}");
        assert_eq!(ack["p"]["offset"], i as u64, "{ack}");
    }
    server.stop().unwrap();
}
