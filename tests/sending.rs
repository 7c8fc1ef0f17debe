//! Sending through real sockets (CLIENT_PROTOCOL.md §4.1, §5.1-§5.3, §6,
//! §10, §15): `send`, `send_bytes`, the `send_event` pipeline (envelope,
//! zlib, dedup, unknown ids, rate limit) and the broadcasts to everyone.

mod support;

use std::io::Read;

use serde_json::{Map, Value, json};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use wse::ServerConfig;

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn inflate(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(body)
        .read_to_end(&mut out)
        .expect("a valid zlib stream");
    out
}

/// A server and one connected client with its connection id.
async fn one_client(config: ServerConfig) -> (TestServer, Client, String) {
    let ts = TestServer::start(config);
    let c = ts.client().await;
    let id = Events::new(&ts.server).connect().await.0;
    (ts, c, id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_is_a_verbatim_text_frame_and_send_bytes_a_verbatim_binary_frame() {
    let (ts, mut c, id) = one_client(ServerConfig::default()).await;
    for text in [
        r#"{"t":"x","p":1}"#,
        "not json at all",
        r#"WSE{"t":"y"}"#,
        "",
    ] {
        ts.server.send(&id, text).unwrap();
        match c.next().await {
            Some(Message::Text(t)) => assert_eq!(t.as_str(), text, "no `c` injected"),
            other => panic!("expected text, got {other:?}"),
        }
    }
    for bytes in [
        vec![0u8, 1, 2, 255],
        b"C:not really zlib".to_vec(),
        vec![7u8; 70_000],
    ] {
        ts.server.send_bytes(&id, &bytes).unwrap();
        assert_eq!(c.next_binary().await, bytes);
    }
    // Unknown or malformed ids are ignored.
    ts.server
        .send("0190f3a4-0000-7000-8000-000000000000", "lost")
        .unwrap();
    ts.server.send("not-an-id", "lost").unwrap();
    ts.server.send_bytes("not-an-id", b"lost").unwrap();
    ts.server.send(&id, "marker").unwrap();
    assert_eq!(c.next_text().await, "marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_builds_the_envelope_in_a_binary_frame() {
    let (ts, mut c, id) = one_client(ServerConfig::default()).await;
    let n = ts
        .server
        .send_event(
            &id,
            &obj(json!({"t": "order_update", "p": {"qty": 3}, "c": "S", "v": 9, "cid": "k"})),
            1024,
        )
        .unwrap();
    let body = c.next_binary().await;
    assert_eq!(body.len(), n, "the return value is the body size");
    let env: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(env["c"], "U", "c is computed, the given one dropped");
    assert_eq!(env["t"], "order_update");
    assert_eq!(env["p"], json!({"qty": 3}));
    assert_eq!(env["cid"], "k");
    assert_eq!(env["v"], 1, "v is forced to 1");
    let uid = uuid::Uuid::parse_str(env["id"].as_str().unwrap()).unwrap();
    assert_eq!(uid.get_version_num(), 7);
    let seq0 = env["seq"].as_u64().expect("seq");
    let ts_text = env["ts"].as_str().unwrap();
    assert!(ts_text.ends_with('Z') && ts_text.len() == 24, "{ts_text}");
    assert_eq!(env.as_object().unwrap().len(), 8);

    // Given id/seq/ts are kept; the sequence counts up across calls.
    ts.server
        .send_event(
            &id,
            &obj(json!({"t": "a", "id": "mine", "seq": 99, "ts": "then"})),
            1024,
        )
        .unwrap();
    let env: Value = serde_json::from_slice(&c.next_binary().await).unwrap();
    assert_eq!(
        (env["id"].as_str(), env["seq"].as_u64(), env["ts"].as_str()),
        (Some("mine"), Some(99), Some("then"))
    );
    ts.server
        .send_event(&id, &obj(json!({"t": "b"})), 1024)
        .unwrap();
    let env: Value = serde_json::from_slice(&c.next_binary().await).unwrap();
    assert!(env["seq"].as_u64().unwrap() > seq0);

    // The category rule.
    for (t, cat) in [
        (json!("user_snapshot"), "S"),
        (json!("snapshot_complete"), "S"),
        (json!("error"), "WSE"),
        (json!("PONG"), "WSE"),
        (json!("subscription_update"), "WSE"),
        (json!("snapshots"), "U"),
        (json!(5), "U"),
    ] {
        ts.server
            .send_event(&id, &obj(json!({"t": t})), 1024)
            .unwrap();
        let env: Value = serde_json::from_slice(&c.next_binary().await).unwrap();
        assert_eq!(env["c"], cat, "t = {t}");
    }
    ts.server
        .send_event(&id, &obj(json!({"p": 1})), 1024)
        .unwrap();
    let env: Value = serde_json::from_slice(&c.next_binary().await).unwrap();
    assert_eq!(env["c"], "U");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_compresses_bodies_above_the_threshold() {
    let (ts, mut c, id) = one_client(ServerConfig::default()).await;
    // With id/seq/ts given, the JSON length is known in advance.
    let event = |id: &str| {
        obj(
            json!({"t": "big", "id": id, "seq": 1, "ts": "x", "p": {"text": "lorem ipsum ".repeat(200)}}),
        )
    };
    let plain_len = ts.server.send_event(&id, &event("id-0001"), 0).unwrap();
    let plain = c.next_binary().await;
    assert_eq!(plain.len(), plain_len);
    assert_eq!(plain[0], b'{', "threshold 0 never compresses");

    // Strictly above the threshold only.
    let n = ts
        .server
        .send_event(&id, &event("id-0002"), plain_len)
        .unwrap();
    assert_eq!(n, plain_len);
    assert_eq!(c.next_binary().await[0], b'{');

    let n = ts
        .server
        .send_event(&id, &event("id-0003"), plain_len - 1)
        .unwrap();
    let body = c.next_binary().await;
    assert_eq!(body.len(), n);
    assert!(n < plain_len / 4, "{n} vs {plain_len}");
    assert_eq!(&body[..2], b"C:");
    let json = inflate(&body[2..]);
    let env: Value = serde_json::from_slice(&json).unwrap();
    let expected: Value = serde_json::from_slice(&plain).unwrap();
    assert_eq!(env["id"], "id-0003");
    assert_eq!(env["p"], expected["p"]);
    assert_eq!(json.len(), plain_len);

    // The default threshold (1024) applies to small events: no compression.
    ts.server
        .send_event(&id, &obj(json!({"t": "small"})), 1024)
        .unwrap();
    assert_eq!(c.next_binary().await[0], b'{');
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_deduplicates_ids_per_connection() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut a = ts.client().await;
    let a_id = events.connect().await.0;
    let mut b = ts.client().await;
    let b_id = events.connect().await.0;

    let ev = obj(json!({"t": "once", "id": "evt-1"}));
    assert!(ts.server.send_event(&a_id, &ev, 1024).unwrap() > 0);
    assert_eq!(ts.server.send_event(&a_id, &ev, 1024).unwrap(), 0);
    assert_eq!(ts.server.send_event(&a_id, &ev, 0).unwrap(), 0);
    // Another connection may get the same id.
    assert!(ts.server.send_event(&b_id, &ev, 1024).unwrap() > 0);
    // Without an id there is nothing to deduplicate.
    let anon = obj(json!({"t": "anon"}));
    assert!(ts.server.send_event(&a_id, &anon, 1024).unwrap() > 0);
    assert!(ts.server.send_event(&a_id, &anon, 1024).unwrap() > 0);

    let env: Value = serde_json::from_slice(&a.next_binary().await).unwrap();
    assert_eq!(env["id"], "evt-1");
    for _ in 0..2 {
        let env: Value = serde_json::from_slice(&a.next_binary().await).unwrap();
        assert_eq!(env["t"], "anon", "the duplicate was not sent");
    }
    ts.server.send(&a_id, "marker").unwrap();
    assert_eq!(a.next_text().await, "marker");
    let env: Value = serde_json::from_slice(&b.next_binary().await).unwrap();
    assert_eq!(env["id"], "evt-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_to_an_unknown_connection_still_returns_the_byte_count() {
    let (ts, mut c, id) = one_client(ServerConfig::default()).await;
    let ev = obj(json!({"t": "x", "id": "fixed", "seq": 1, "ts": "t", "p": "y".repeat(3000)}));
    let unknown = ts
        .server
        .send_event("0190f3a4-0000-7000-8000-000000000000", &ev, 1024)
        .unwrap();
    let malformed = ts.server.send_event("not-a-connection", &ev, 1024).unwrap();
    let real = ts.server.send_event(&id, &ev, 1024).unwrap();
    assert!(real > 0);
    assert_eq!(unknown, real);
    assert_eq!(malformed, real);
    assert_eq!(c.next_binary().await.len(), real);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_event_is_rate_limited_per_connection() {
    let (ts, mut c, id) = one_client(ServerConfig {
        rate_limit_capacity: 5.0,
        rate_limit_refill: 0.001,
        ..ServerConfig::default()
    })
    .await;
    let mut sizes = Vec::new();
    for i in 0..8 {
        sizes.push(
            ts.server
                .send_event(&id, &obj(json!({"t": "tick", "p": i})), 1024)
                .unwrap(),
        );
    }
    assert!(sizes[..5].iter().all(|&n| n > 0), "{sizes:?}");
    assert_eq!(&sizes[5..], &[0, 0, 0], "{sizes:?}");
    ts.server.send(&id, "marker").unwrap();

    // Five events, one warning (under 20 % left), one RATE_LIMITED error
    // (at most one per second), then the marker.
    let mut ticks = Vec::new();
    let (mut warnings, mut errors) = (Vec::new(), Vec::new());
    loop {
        match c.next_data().await {
            Message::Binary(b) => {
                let env: Value = serde_json::from_slice(&b).unwrap();
                assert!(errors.is_empty(), "an event after the rate-limit error");
                ticks.push(env["p"].as_i64().unwrap());
            }
            Message::Text(t) if t.as_str() == "marker" => break,
            Message::Text(t) => {
                let v: Value = serde_json::from_str(&t).unwrap();
                match v["t"].as_str() {
                    Some("rate_limit_warning") => warnings.push(v),
                    Some("error") => {
                        assert_eq!(
                            t.as_str(),
                            r#"{"c":"WSE","t":"error","p":{"code":"RATE_LIMITED","message":"Rate limit exceeded","retry_after":1.0},"v":1}"#
                        );
                        errors.push(v);
                    }
                    _ => panic!("unexpected {t}"),
                }
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(ticks, vec![0, 1, 2, 3, 4]);
    assert_eq!(errors.len(), 1);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let w = &warnings[0];
    assert_eq!(w["c"], "WSE");
    assert_eq!(w["v"], 1);
    assert_eq!(w["p"]["limit"], 5);
    assert_eq!(w["p"]["retry_after"], 1.0);
    let remaining = w["p"]["remaining"].as_i64().unwrap();
    assert!(remaining <= 1, "{w}");
    // current_rate = capacity - tokens and remaining = tokens, each
    // truncated to an integer.
    let current = w["p"]["current_rate"].as_i64().unwrap();
    assert!((4..=5).contains(&(current + remaining)), "{w}");
    let metrics = ts.server.prometheus_metrics();
    assert!(
        metrics.contains("\nwse_rate_limited_total 3\n"),
        "{metrics}"
    );

    // The bucket is per connection.
    let mut other = ts.client().await;
    let other_id = Events::new(&ts.server).connect().await.0;
    assert_ne!(other_id, id);
    assert!(
        ts.server
            .send_event(&other_id, &obj(json!({"t": "fresh"})), 1024)
            .unwrap()
            > 0
    );
    let env: Value = serde_json::from_slice(&other.next_binary().await).unwrap();
    assert_eq!(env["t"], "fresh");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_all_reaches_every_connection_with_c_injected() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut clients = Vec::new();
    for _ in 0..3 {
        clients.push(ts.client().await);
        events.connect().await;
    }
    // A msgpack connection gets broadcasts as JSON text too.
    clients.push(Client::connect(&ts.url("?format=msgpack"), &[]).await);
    events.connect().await;
    for (sent, seen) in [
        (r#"{"t":"news","p":1}"#, r#"{"c":"U","t":"news","p":1}"#),
        (
            r#"{"t":"feed_snapshot","p":[]}"#,
            r#"{"c":"S","t":"feed_snapshot","p":[]}"#,
        ),
        (r#"{"c":"X","t":"kept"}"#, r#"{"c":"X","t":"kept"}"#),
        (r#"{"p":{"t":"inner"}}"#, r#"{"p":{"t":"inner"}}"#),
        ("plain text", "plain text"),
    ] {
        ts.server.broadcast_all(sent).unwrap();
        for c in &mut clients {
            assert_eq!(c.next_text().await, seen);
        }
    }
    ts.server.broadcast_all_bytes(&[9, 8, 7]).unwrap();
    for c in &mut clients {
        assert_eq!(c.next_binary().await, vec![9, 8, 7]);
    }
    // Nothing is stored or stamped.
    assert!(ts.server.position("news").unwrap().is_none());
}
