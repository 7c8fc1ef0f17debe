//! Storage faults seen from the server: the log's file operations go
//! through a seam that injects ENOSPC, EMFILE and EIO. Publishes during the
//! fault are refused with a clear error (a client's `STORAGE_UNAVAILABLE`,
//! `Server::publish`'s typed error), subscribers never see a refused record,
//! the server resumes by itself when the fault clears, and `stop()` works
//! while it lasts.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;
use wse::{Server, ServerConfig, ServerError};
use wse_log::storage::{EIO, EMFILE, ENOSPC};
use wse_log::{Durability, FaultRule, FaultyStorage, LogError, StorageOp};

fn publish(id: &str, text: &str) -> Value {
    json!({"t": "publish", "id": id,
           "p": {"topic": "chat", "message": {"t": "chat", "p": {"text": text}}}})
}

/// A started server whose log writes through `storage`.
fn start(storage: &FaultyStorage) -> (Server, std::net::SocketAddr, tempfile::TempDir) {
    start_on_storage(
        storage,
        ServerConfig {
            client_publish: true,
            log: wse_log::LogConfig {
                durability: Durability::Always,
                ..Default::default()
            },
            ..standalone()
        },
    )
}

/// Publish through `Server::publish` until it succeeds again (the log
/// retries with backoff once the fault is gone); the position it got.
fn publish_until_it_succeeds(server: &Server, text: &str) -> wse_log::Position {
    let deadline = Instant::now() + WAIT;
    loop {
        match server.publish("chat", text) {
            Ok(p) => return p,
            Err(e) => assert!(Instant::now() < deadline, "still failing: {e}"),
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

async fn survive(errno: i32, op: StorageOp) {
    let storage = FaultyStorage::default();
    let (server, addr, _dir) = start(&storage);
    let url = format!("ws://{addr}/wse");
    let mut subscriber = Client::connect(&url, &[]).await;
    subscriber.hello().await;
    subscriber.subscribe(&["chat"], None).await;
    let mut publisher = Client::connect(&url, &[]).await;
    publisher.hello().await;

    publisher.send_json(&publish("before", "one")).await;
    assert_eq!(publisher.expect_type("publish_ack").await["p"]["offset"], 0);

    storage.inject(FaultRule::fail(op, errno));
    publisher.send_json(&publish("during", "lost")).await;
    let err = publisher.expect_type("error").await;
    assert_eq!(err["p"]["code"], "STORAGE_UNAVAILABLE", "{err}");
    assert_eq!(err["p"]["details"]["id"], "during");
    match server.publish("chat", r#"{"t":"chat","p":{"text":"also lost"}}"#) {
        Err(ServerError::Log(LogError::Unavailable { source, .. })) => {
            assert_eq!(source.raw_os_error(), Some(errno));
        }
        other => panic!("expected a storage error, got {other:?}"),
    }
    assert!(server.health().log_write_failures > 0);

    storage.clear();
    let after = publish_until_it_succeeds(&server, r#"{"t":"chat","p":{"text":"two"}}"#);
    assert_eq!(after.offset, 1, "the refused records left no gap");
    publisher.send_json(&publish("after", "three")).await;
    assert_eq!(publisher.expect_type("publish_ack").await["p"]["offset"], 2);

    // The subscriber got exactly the acknowledged records, in order.
    let mut texts = Vec::new();
    while texts.len() < 3 {
        let v = subscriber.next_json().await;
        if v["tp"] == "chat" {
            texts.push((
                v["o"].as_u64().unwrap(),
                v["p"]["text"].as_str().unwrap().to_owned(),
            ));
        }
    }
    assert_eq!(
        texts,
        [(0, "one".into()), (1, "two".into()), (2, "three".into())]
    );
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_publishes_until_it_has_room_again() {
    survive(ENOSPC, StorageOp::Write).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_file_descriptors_at_fsync_is_survived() {
    survive(EMFILE, StorageOp::Sync).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_io_error_is_survived() {
    survive(EIO, StorageOp::Write).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_works_while_storage_keeps_failing() {
    let storage = FaultyStorage::default();
    let (server, _addr, _dir) = start(&storage);
    server.publish("chat", r#"{"t":"x"}"#).unwrap();
    storage.inject(FaultRule::fail(StorageOp::Write, EIO));
    storage.inject(FaultRule::fail(StorageOp::Sync, EIO));
    assert!(server.publish("chat", r#"{"t":"y"}"#).is_err());
    // While the log is down, appends fail at once rather than queue up.
    assert!(server.broadcast_local("chat", r#"{"t":"z"}"#).is_err());
    assert!(
        !matches!(server.flush(Some(WAIT)), Err(ServerError::Timeout(_))),
        "flush answers instead of hanging"
    );
    server.stop().unwrap();
    assert!(!server.is_running());
}
