//! One hostile connection cannot hurt the others (issue 11, item 1):
//! documents built to be expensive to parse and floods of patterns are
//! bounded per connection, and the server's one worker thread still
//! answers a probe client promptly meanwhile.
//!
//! The servers here run a single worker thread, so that a connection
//! holding it would stall everyone; the probe's round trip (its `ping`
//! answered with `PONG`, a publish delivered back to it) is the measure.
//! The 500 ms bound is the issue's: it shows "not stalled", not speed.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::raw::masked;
use support::*;
use wse::ServerConfig;

/// Hostile 1 MiB documents sent back to back.
const FLOOD: usize = 48;

/// The tests here measure a bound on one worker thread: run one at a
/// time, so that they do not share the machine with each other.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A round trip slower than this means the probe was stalled.
const STALLED: Duration = Duration::from_millis(500);

fn one_worker() -> ServerConfig {
    ServerConfig {
        worker_threads: 1,
        client_publish: true,
        ..standalone()
    }
}

/// The probe's slowest of `n` round trips: a `ping` answered by `PONG`,
/// then a publish to `probe` (which it subscribes to) delivered back.
async fn slowest_round_trip(probe: &mut Client, n: usize) -> Duration {
    let mut slowest = Duration::ZERO;
    for i in 0..n {
        let t0 = Instant::now();
        probe
            .send_json(&json!({"t": "ping", "p": {"timestamp": i}}))
            .await;
        probe.expect_type("PONG").await;
        probe
            .send_json(&json!({"t": "publish",
                "p": {"topic": "probe", "message": {"t": "probe", "p": {"i": i}}}}))
            .await;
        loop {
            let v = probe.next_json().await;
            if v["t"] == "probe" && v["p"]["i"] == i {
                break;
            }
        }
        slowest = slowest.max(t0.elapsed());
    }
    slowest
}

/// The server's `wse_bytes_received_total`.
fn bytes_received(ts: &TestServer) -> u64 {
    ts.server
        .prometheus_metrics()
        .lines()
        .find_map(|l| l.strip_prefix("wse_bytes_received_total "))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn probe_client(ts: &TestServer) -> Client {
    let mut probe = ts.client().await;
    probe.hello().await;
    let reply = probe.subscribe(&["probe"], None).await;
    assert_eq!(reply["p"]["success"], true, "{reply}");
    probe
}

/// A frame of about `size` bytes: an object whose array holds empty
/// objects, the shape that costs most per byte to build into values.
fn empty_objects_json(size: usize) -> String {
    let mut text = String::with_capacity(size + 16);
    text.push_str(r#"{"t":"x","p":["#);
    while text.len() < size - 8 {
        text.push_str("{},");
    }
    text.push_str("{}]}");
    text
}

/// A server whose byte budget does not pace the floods below, so that
/// what keeps the probe served is the shape limit and the per-pass share.
fn one_worker_no_byte_pacing() -> ServerConfig {
    ServerConfig {
        inbound_bytes_capacity: 1 << 30,
        inbound_bytes_refill: 1 << 30,
        ..one_worker()
    }
}

/// Send `frame` (masked once, written as is) `FLOOD` times on a raw
/// connection to `path`, as fast as the server takes it, while the probe
/// measures; then read the server's answer to each.
async fn flood_while_probing(ts: &TestServer, path: &str, frame: Vec<u8>) -> Vec<Value> {
    let mut probe = probe_client(ts).await;
    let mut hostile = RawWs::connect(ts.addr, path, &[]).await;
    let all = frame.repeat(FLOOD);
    let flood = tokio::spawn(async move {
        hostile.send(&all).await;
        hostile
    });
    // The probe measures once the server is reading the flood.
    wait_until("the flood arriving", || bytes_received(ts) > 4 << 20).await;
    let slowest = slowest_round_trip(&mut probe, 20).await;
    let mut hostile = flood.await.unwrap();
    assert!(slowest < STALLED, "probe stalled for {slowest:?}");
    let mut errors = Vec::new();
    while errors.len() < FLOOD {
        let f = hostile
            .read_frame()
            .await
            .expect("the hostile client is answered");
        if f.opcode == op::TEXT {
            let v: Value = serde_json::from_str(f.text()).unwrap_or_default();
            if v["t"] == "error" {
                errors.push(v);
            }
        }
    }
    errors
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_of_empty_objects_are_refused_and_do_not_stall_a_probe() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = TestServer::start(one_worker_no_byte_pacing());
    let frame = masked(op::TEXT, empty_objects_json(1 << 20).as_bytes());
    // Every document of the flood was refused with a reason, not handed on.
    for refused in flood_while_probing(&ts, "/wse", frame).await {
        assert_eq!(refused["p"]["code"], "MESSAGE_TOO_COMPLEX", "{refused}");
        let text = refused["p"]["message"].as_str().unwrap_or_default();
        assert!(text.contains("more than 100000 values"), "{text}");
    }
    assert!(
        ts.server
            .prometheus_metrics()
            .contains(&format!("wse_messages_too_complex_total {FLOOD}")),
        "every hostile document counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msgpack_of_a_million_empty_maps_is_refused_and_does_not_stall_a_probe() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = TestServer::start(one_worker_no_byte_pacing());
    // array32 of ~1M fixmaps of size 0: one byte per value.
    let n: u32 = (1 << 20) - 8;
    let mut doc = vec![0xdd];
    doc.extend_from_slice(&n.to_be_bytes());
    doc.resize(doc.len() + n as usize, 0x80);
    let frame = masked(op::BINARY, &doc);
    for refused in flood_while_probing(&ts, "/wse?format=msgpack", frame).await {
        assert_eq!(refused["p"]["code"], "MESSAGE_TOO_COMPLEX", "{refused}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deep_document_is_refused_and_the_connection_goes_on() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = TestServer::start(ServerConfig {
        max_message_depth: 8,
        ..one_worker()
    });
    let mut c = ts.client().await;
    c.hello().await;
    let deep = format!(r#"{{"t":"x","p":{}1{}}}"#, "[".repeat(20), "]".repeat(20));
    c.send_text(deep).await;
    let refused = c.expect_type("error").await;
    assert_eq!(refused["p"]["code"], "MESSAGE_TOO_COMPLEX");
    assert!(
        refused["p"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("deeper than 8")),
        "{refused}"
    );
    // Within the limit, the same connection is served.
    let reply = c.subscribe(&["fine"], None).await;
    assert_eq!(reply["p"]["success"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bytes_past_the_budget_slow_the_client_down_instead_of_failing_it() {
    let _serial = ONE_AT_A_TIME.lock().await;
    // 64 KiB burst, 256 KiB/s: 32 messages of 16 KiB take ~1.75 s to be
    // read, all of them handled, in order.
    let ts = TestServer::start(ServerConfig {
        inbound_bytes_capacity: 64 << 10,
        inbound_bytes_refill: 256 << 10,
        max_message_size: 16 << 10,
        ..one_worker()
    });
    let mut c = ts.client().await;
    c.hello().await;
    c.subscribe(&["bulk"], None).await;
    let pad = "x".repeat(16_000);
    let t0 = Instant::now();
    for i in 0..32 {
        c.send_json(&json!({"t": "publish",
            "p": {"topic": "bulk", "message": {"t": "bulk", "p": {"i": i, "pad": pad}}}}))
            .await;
    }
    for i in 0..32 {
        let v: Value = loop {
            let v = c.next_json().await;
            if v["t"] == "bulk" {
                break v;
            }
        };
        assert_eq!(v["p"]["i"], i);
    }
    // The budget, not a failure, is what took the time: 448 KiB past the
    // burst at 256 KiB/s.
    assert!(
        t0.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        t0.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patterns_past_the_cap_are_refused_with_the_rest_subscribed() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let ts = TestServer::start(ServerConfig {
        max_patterns_per_connection: 3,
        ..one_worker()
    });
    let mut c = ts.client().await;
    c.hello().await;
    let reply = c
        .subscribe(&["a.*", "b.*", "plain", "c.*", "d.*", "other"], None)
        .await;
    assert_eq!(
        reply["p"]["success_topics"],
        json!(["a.*", "b.*", "plain", "c.*", "other"])
    );
    assert_eq!(reply["p"]["failed_topics"], json!(["d.*"]));
    // At the cap, a pattern the connection holds is still "subscribed".
    let again = c.subscribe(&["a.*"], None).await;
    assert_eq!(again["p"]["success_topics"], json!(["a.*"]), "{again}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_subscribing_tens_of_thousands_of_patterns_does_not_stall_a_probe() {
    let _serial = ONE_AT_A_TIME.lock().await;
    // No cap here: what is under test is that each pattern costs the same
    // however many there are (they were a list searched on each
    // subscribe: quadratic, seconds of one worker for 50,000).
    let ts = TestServer::start(ServerConfig {
        max_patterns_per_connection: 0,
        max_subscriptions_per_connection: 0,
        ..one_worker()
    });
    let mut probe = probe_client(&ts).await;
    let mut hostile = ts.client().await;
    hostile.hello().await;
    // 50 messages of 1,000: one message is one unit of the session's work,
    // and what is measured is the cost per pattern as they accumulate.
    const CHUNKS: usize = 50;
    for chunk in 0..CHUNKS {
        let topics: Vec<String> = (0..1_000)
            .map(|i| format!("hostile.{chunk}.{i}.*"))
            .collect();
        hostile
            .send_json(&json!({"c": "WSE", "t": "subscription_update",
                "p": {"action": "subscribe", "topics": topics}}))
            .await;
    }
    let slowest = slowest_round_trip(&mut probe, 20).await;
    for _ in 0..CHUNKS {
        let reply = hostile.expect_type("subscription_update").await;
        assert_eq!(reply["p"]["failed_topics"], json!([]));
    }
    assert!(slowest < STALLED, "probe stalled for {slowest:?}");
    // The patterns work: a topic one of them matches reaches the client.
    let mut publisher = ts.client().await;
    publisher
        .send_json(&json!({"t": "publish",
            "p": {"topic": "hostile.49.999.x", "message": {"t": "hit"}}}))
        .await;
    assert_eq!(hostile.expect_type("hit").await["t"], "hit");
}
