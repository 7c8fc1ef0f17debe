//! A client's `publish` with an `id`: acknowledged with the record's
//! position once it is durable, in the order the client published, or
//! refused with an error that names the reason and carries the `id`.
//! (That an acknowledged record survives a crash: `kill_durability.rs`.)

mod support;

use serde_json::{Value, json};
use support::*;
use wse::ServerConfig;

fn publish(id: &str, topic: &str, text: &str) -> Value {
    json!({"t": "publish", "id": id,
           "p": {"topic": topic, "message": {"t": "chat", "p": {"text": text}}}})
}

fn config(durability: wse_log::Durability) -> ServerConfig {
    ServerConfig {
        client_publish: true,
        log: wse_log::LogConfig {
            durability,
            max_record_bytes: 4096,
            ..Default::default()
        },
        ..standalone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_come_once_durable_in_publish_order_with_the_position() {
    let ts = TestServer::start(config(wse_log::Durability::Always));
    let mut c = ts.client().await;
    c.expect_type("server_ready").await;
    // Many publishes to three topics, without waiting between them.
    for i in 0..300 {
        c.send_json(&publish(&format!("m{i}"), &format!("t{}", i % 3), "x"))
            .await;
    }
    let log = ts.server.log().unwrap();
    for i in 0..300 {
        let ack = c.expect_type("publish_ack").await;
        let p = &ack["p"];
        assert_eq!(p["id"], format!("m{i}"), "acks in publish order");
        let topic = format!("t{}", i % 3);
        assert_eq!(p["topic"], topic.as_str());
        assert_eq!(p["offset"], i / 3);
        // Acknowledged means readers see it already (under `always`:
        // fsynced first).
        let pos = log.position(&topic).unwrap();
        assert_eq!(p["epoch"], pos.epoch.to_string());
        assert!(
            pos.next_offset > i / 3,
            "ack {i} before its record is visible"
        );
    }
    assert!(log.stats().fsyncs > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_publishes_say_why_and_carry_their_id() {
    let ts = TestServer::start(config(wse_log::Durability::Never));
    let mut c = ts.client().await;
    c.expect_type("server_ready").await;
    c.send_json(&publish("big", "chat", &"x".repeat(5000)))
        .await;
    let err = c.expect_type("error").await;
    assert_eq!(err["p"]["code"], "MESSAGE_TOO_LARGE", "{err}");
    assert_eq!(err["p"]["details"], json!({"id": "big", "topic": "chat"}));
    let appended = |ts: &TestServer| {
        ts.server
            .position("chat")
            .unwrap()
            .map_or(0, |p| p.next_offset)
    };
    assert_eq!(appended(&ts), 0, "nothing appended");

    c.send_json(&publish("ok", "chat", "fits")).await;
    assert_eq!(c.expect_type("publish_ack").await["p"]["offset"], 0);

    // A standalone server whose clients may not publish says so (with an
    // app behind it, a publish is a message for the app instead).
    let off = TestServer::start(ServerConfig {
        client_publish: false,
        ..standalone()
    });
    let mut c = off.client().await;
    c.expect_type("server_ready").await;
    c.send_json(&publish("no", "chat", "hi")).await;
    let err = c.expect_type("error").await;
    assert_eq!(err["p"]["code"], "PUBLISH_DISABLED", "{err}");
    assert_eq!(err["p"]["details"]["id"], "no");
    assert!(off.server.position("chat").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_after_the_log_closed_is_refused_as_storage_unavailable() {
    let ts = TestServer::start(config(wse_log::Durability::Never));
    let mut c = ts.client().await;
    c.expect_type("server_ready").await;
    ts.server.log().unwrap().close().unwrap();
    c.send_json(&publish("late", "chat", "hi")).await;
    let err = c.expect_type("error").await;
    assert_eq!(err["p"]["code"], "STORAGE_UNAVAILABLE", "{err}");
    assert_eq!(err["p"]["details"]["id"], "late");
}
