//! Per-message deflate (RFC 7692) through real sockets: what the upgrade
//! agrees, broadcasts compressed once and shared by every deflate
//! subscriber (plain for the others and below the threshold), compressed
//! client messages inflated, and what a bad one gets.

mod support;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use serde_json::json;
use support::raw::{MASK, RawWs, client_frame, op};
use support::*;
use wse::ServerConfig;

const OFFER: (&str, &str) = (
    "Sec-WebSocket-Extensions",
    "permessage-deflate; client_max_window_bits",
);
const AGREED: &str = "sec-websocket-extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover\r\n";

/// A compressed message as a client sends it: raw deflate, sync flush,
/// the 4-byte tail removed.
fn deflate(data: &[u8]) -> Vec<u8> {
    let mut c = Compress::new(Compression::default(), false);
    let mut out = Vec::with_capacity(data.len() + 64);
    c.compress_vec(data, &mut out, FlushCompress::Sync).unwrap();
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

/// A compressed message's payload inflated (the tail put back).
fn inflate(payload: &[u8]) -> Vec<u8> {
    let mut d = Decompress::new(false);
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(1 << 20);
    d.decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .unwrap();
    out
}

/// Connect a raw client (offering deflate or not) and subscribe it to
/// `topic`; returns it and the response head, lower-cased.
async fn subscriber(
    ts: &TestServer,
    events: &mut Events<'_>,
    offer: bool,
    topic: &str,
) -> (RawWs, String, String) {
    let headers: &[(&str, &str)] = if offer { &[OFFER] } else { &[] };
    let (raw, head) = RawWs::connect_head(ts.addr, "/wse", headers).await;
    let (id, _) = events.connect().await;
    ts.server.subscribe(&id, &[topic.to_owned()], None).unwrap();
    (raw, head.to_ascii_lowercase(), id)
}

/// The next data frame (skipping whatever the server sends first, such as
/// `server_ready`, which is small and never compressed).
async fn next_broadcast(raw: &mut RawWs, min_len: usize) -> support::raw::RawFrame {
    loop {
        let f = raw.read_frame().await.expect("a frame");
        if f.opcode == op::TEXT && (f.compressed || f.payload.len() >= min_len) {
            return f;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_is_compressed_once_and_shared_by_deflate_subscribers() {
    let ts = TestServer::start(ServerConfig {
        deflate_min_size: 256,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let (mut a, head_a, _) = subscriber(&ts, &mut events, true, "prices").await;
    let (mut b, _, _) = subscriber(&ts, &mut events, true, "prices").await;
    let (mut plain, head_plain, _) = subscriber(&ts, &mut events, false, "prices").await;
    assert!(head_a.contains(AGREED), "{head_a}");
    assert!(
        !head_plain.contains("sec-websocket-extensions"),
        "{head_plain}"
    );

    let big = json!({"t": "price", "p": {"rows": vec!["ABC 101.25 101.50"; 200]}}).to_string();
    ts.server.publish("prices", &big).unwrap();
    let plain_frame = next_broadcast(&mut plain, 256).await;
    assert!(!plain_frame.compressed);
    let fa = next_broadcast(&mut a, 1).await;
    let fb = next_broadcast(&mut b, 1).await;
    assert!(fa.compressed, "RSV1 set on the large broadcast");
    assert!(
        fa.payload.len() * 10 < plain_frame.payload.len(),
        "{} compressed vs {} plain",
        fa.payload.len(),
        plain_frame.payload.len()
    );
    assert_eq!(fa, fb, "both deflate subscribers get the same bytes");
    assert_eq!(inflate(&fa.payload), plain_frame.payload);

    // Below the threshold: plain for everyone.
    ts.server
        .publish("prices", r#"{"t":"price","p":1}"#)
        .unwrap();
    for c in [&mut a, &mut b, &mut plain] {
        let f = c.read_frame().await.unwrap();
        assert!(!f.compressed);
        assert!(f.text().contains(r#""p":1"#), "{}", f.text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compressed_client_messages_reach_the_app_inflated() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let (mut raw, _, id) = subscriber(&ts, &mut events, true, "t").await;
    let msg = json!({"t": "chat", "p": {"text": "héllo ".repeat(100)}});
    let packed = deflate(msg.to_string().as_bytes());
    raw.send(&client_frame(0xC0 | op::TEXT, &packed, Some(MASK)))
        .await;
    assert_eq!(events.message(&id).await, msg);
    // Fragmented, RSV1 on the first frame only.
    let (x, y) = packed.split_at(packed.len() / 2);
    raw.send(&client_frame(0x40 | op::TEXT, x, Some(MASK)))
        .await;
    raw.send(&client_frame(0x80 | op::CONT, y, Some(MASK)))
        .await;
    assert_eq!(events.message(&id).await, msg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compression_bomb_closes_1009_and_bad_deflate_1007() {
    let ts = TestServer::start(ServerConfig {
        max_message_size: 64 * 1024,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    // 8 MiB of spaces is a few kilobytes compressed: the limit applies to
    // the inflated message.
    let bomb = deflate(&vec![b' '; 8 << 20]);
    assert!(bomb.len() < 64 * 1024);
    for (payload, code) in [(bomb, 1009), (vec![0xff; 16], 1007)] {
        let (mut raw, _, id) = subscriber(&ts, &mut events, true, "t").await;
        raw.send(&client_frame(0xC0 | op::TEXT, &payload, Some(MASK)))
            .await;
        let (_, close) = raw.read_until_close().await;
        assert_eq!(close.close_code(), Some(code));
        events.disconnect(&id).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_deflate_nothing_is_agreed_and_rsv1_is_a_protocol_error() {
    let ts = TestServer::start(ServerConfig {
        permessage_deflate: false,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let (mut raw, head, id) = subscriber(&ts, &mut events, true, "t").await;
    assert!(!head.contains("sec-websocket-extensions"), "{head}");
    raw.send(&client_frame(0xC0 | op::TEXT, &deflate(b"{}"), Some(MASK)))
        .await;
    let (_, close) = raw.read_until_close().await;
    assert_eq!(close.close_code(), Some(1002));
    events.disconnect(&id).await;

    // A limited server window is granted, and messages then go plain.
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let (mut raw, head) = RawWs::connect_head(
        ts.addr,
        "/wse",
        &[(
            "Sec-WebSocket-Extensions",
            "permessage-deflate; server_max_window_bits=10",
        )],
    )
    .await;
    let (id, _) = events.connect().await;
    assert!(head.contains("server_max_window_bits=10"), "{head}");
    ts.server.subscribe(&id, &["t".to_owned()], None).unwrap();
    let big = json!({"t": "x", "p": "a".repeat(4096)}).to_string();
    ts.server.publish("t", &big).unwrap();
    let f = next_broadcast(&mut raw, 4096).await;
    assert!(!f.compressed);
}
