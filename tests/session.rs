//! A session through real sockets (CLIENT_PROTOCOL.md §3.2-§5.4, §8,
//! §16): hello, heartbeats, WebSocket Ping, frame limits and protocol
//! violations, legacy prefixes and key normalisation, `raw` and `bin`.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Value, json};
use support::raw::{MASK, client_frame, masked};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use wse::{AppEvent, ServerConfig};

/// The epoch milliseconds of now.
fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_hello_gets_server_hello_and_is_not_forwarded() {
    let ts = TestServer::start(ServerConfig {
        recovery_enabled: true,
        rate_limit_capacity: 1234.0,
        rate_limit_refill: 56.0,
        max_message_size: 65_536,
        ping_interval: Duration::from_secs(7),
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let (id, _) = events.connect().await;
    for (asked, expected) in [
        (json!(1), 1),
        (json!(2), 2),
        (json!(5), 2),
        (json!(0), 0),
        (Value::Null, 1),
        (json!("3"), 1),
        (json!(-1), 1),
    ] {
        let mut p = json!({"client_version": "2.0.7", "features": {"compression": true}});
        if !asked.is_null() {
            p["protocol_version"] = asked.clone();
        }
        c.send_json(&json!({"c": "WSE", "t": "client_hello", "p": p, "v": 1}))
            .await;
        let hello = c.next_text_json().await;
        assert_eq!(hello["t"], "server_hello", "{hello}");
        assert_eq!(hello["c"], "WSE");
        assert_eq!(hello["v"], 1);
        for absent in ["id", "ts", "seq"] {
            assert!(hello.get(absent).is_none(), "{absent} in {hello}");
        }
        let p = &hello["p"];
        assert_eq!(p["protocol_version"], expected, "asked {asked}");
        assert_eq!(p["connection_id"], id.as_str());
        assert_eq!(
            p["features"],
            json!({"batching": true, "cluster": false, "compression": true, "encryption": false,
                   "msgpack": true, "priority_queue": true, "recovery": true})
        );
        assert_eq!(
            p["limits"],
            json!({"max_message_size": 65536, "rate_limit_capacity": 1234, "rate_limit_refill": 56})
        );
        assert_eq!(p["ping_interval"], 7000);
        assert!(p["server_time"].as_str().unwrap().ends_with('Z'));
        assert!(p["server_version"].is_string());
        assert!(p.get("encryption_public_key").is_none());
    }
    // The app never saw a client_hello: the next event is the marker.
    c.send_json(&json!({"t": "marker"})).await;
    assert_eq!(events.message(&id).await, json!({"t": "marker"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ping_gets_an_exact_pong_and_pongs_are_swallowed() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let (id, _) = events.connect().await;

    let n = now_ms() - 5;
    c.send_text(format!(
        r#"{{"c":"WSE","t":"ping","p":{{"timestamp":{n}}},"v":1}}"#
    ))
    .await;
    let text = c.next_text().await;
    assert!(text.starts_with(r#"{"c":"WSE","t":"PONG""#), "{text}");
    let pong: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(pong["p"]["client_timestamp"], n);
    let server = pong["p"]["server_timestamp"].as_i64().unwrap();
    assert!(server >= n + 5 && server <= now_ms(), "{pong}");
    assert_eq!(pong["p"]["latency"], server - n);
    assert_eq!(pong["v"], 1);

    // A timestamp that is not an integer is echoed as 0; latency is never
    // negative.
    for p in [
        json!({"timestamp": "soon"}),
        json!({}),
        json!(null),
        json!({"timestamp": 1.5}),
    ] {
        c.send_json(&json!({"t": "ping", "p": p})).await;
        let pong = c.next_text_json().await;
        assert_eq!(pong["t"], "PONG");
        assert_eq!(pong["p"]["client_timestamp"], 0, "{p}");
    }
    c.send_json(&json!({"t": "ping", "p": {"timestamp": now_ms() + 60_000}}))
        .await;
    assert_eq!(c.next_text_json().await["p"]["latency"], 0);

    // Replies to server pings are swallowed; none of this reached the app.
    c.send_json(&json!({"c": "WSE", "t": "PONG", "p": {"server_timestamp": "x"}, "v": 1}))
        .await;
    c.send_json(&json!({"t": "pong"})).await;
    c.send_json(&json!({"t": "marker"})).await;
    assert_eq!(events.message(&id).await, json!({"t": "marker"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_ping_is_an_exact_text_frame_every_ping_interval() {
    let ts = TestServer::start(ServerConfig {
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_secs(2),
        ..ServerConfig::default()
    });
    let mut c = ts.client().await;
    let mut stamps = Vec::new();
    while stamps.len() < 2 {
        match c.next().await {
            Some(Message::Text(t)) => {
                assert!(
                    t.starts_with(r#"{"c":"WSE","t":"ping","p":{"server_time":""#),
                    "{t}"
                );
                let v: Value = serde_json::from_str(&t).unwrap();
                assert_eq!(v.as_object().unwrap().len(), 3, "no v: {t}");
                let stamp = v["p"]["server_time"].as_str().unwrap().to_owned();
                assert!(stamp.ends_with('Z') && stamp.len() == 24, "{stamp}");
                stamps.push(stamp);
                c.send_json(&json!({"c":"WSE","t":"PONG","p":{"server_timestamp": v["p"]["server_time"]},"v":1}))
                    .await;
            }
            other => panic!("expected only server pings, got {other:?}"),
        }
    }
    assert!(stamps[0] < stamps[1], "{stamps:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_websocket_ping_is_answered_with_a_pong() {
    let ts = TestServer::start(ServerConfig::default());
    let mut c = ts.client().await;
    for payload in [&b"abc"[..], b"", &[7u8; 125][..]] {
        c.ws.send(Message::Ping(payload.to_vec().into()))
            .await
            .unwrap();
        match c.next().await {
            Some(Message::Pong(p)) => assert_eq!(&p[..], payload),
            other => panic!("expected a Pong, got {other:?}"),
        }
    }
    // Also through a raw socket: the Pong is an exact, unmasked frame.
    let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
    raw.send_frame(op::PING, b"hi").await;
    let pong = raw.read_frame().await.unwrap();
    assert_eq!(
        pong,
        RawFrame {
            fin: true,
            compressed: false,
            opcode: op::PONG,
            payload: b"hi".to_vec()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_over_max_message_size_closes_1009() {
    let ts = TestServer::start(ServerConfig {
        max_message_size: 1024,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let (id, _) = events.connect().await;
    // Exactly at the limit is fine.
    let at_limit = format!(r#"{{"t":"big","p":"{}"}}"#, "x".repeat(1024 - 18));
    assert_eq!(at_limit.len(), 1024);
    c.send_text(at_limit.clone()).await;
    assert_eq!(events.message(&id).await["p"].as_str().unwrap().len(), 1006);
    // One byte more closes the connection with 1009, and no event but the
    // disconnect follows.
    c.send_text(format!("{at_limit} ")).await;
    let close = c.close_frame().await.expect("a Close frame");
    assert_eq!(close.map(|(code, _)| code), Some(1009));
    events.disconnect(&id).await;
    assert_eq!(ts.server.connection_count(), 0);

    // Binary too, and a fragmented message whose parts are each small.
    let mut c = ts.client().await;
    let (id, _) = events.connect().await;
    c.ws.send(Message::binary(vec![0u8; 2000])).await.unwrap();
    assert_eq!(c.close_frame().await.unwrap().map(|f| f.0), Some(1009));
    events.disconnect(&id).await;

    let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
    let (id, _) = events.connect().await;
    raw.send(&client_frame(op::TEXT, &[b'a'; 600], Some(MASK)))
        .await;
    raw.send_lenient(&client_frame(0x80 | op::CONT, &[b'b'; 600], Some(MASK)))
        .await;
    let (before, close) = raw.read_until_close().await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(close.close_code(), Some(1009));
    assert!(raw.ends().await);
    events.disconnect(&id).await;
    assert_eq!(ts.server.connection_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_text_closes_1007() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    for frames in [
        vec![masked(op::TEXT, b"{\"t\":\"a\xff\xfe\"}")],
        // Split inside a valid character is fine; invalid as a whole is not.
        vec![
            client_frame(op::TEXT, b"ok \xc3", Some(MASK)),
            client_frame(0x80 | op::CONT, b"\xa9 then \xc0\xaf", Some(MASK)),
        ],
    ] {
        let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
        let (id, _) = events.connect().await;
        for f in &frames {
            raw.send_lenient(f).await;
        }
        let (before, close) = raw.read_until_close().await;
        assert!(before.is_empty(), "{before:?}");
        assert_eq!(close.close_code(), Some(1007));
        assert!(raw.ends().await);
        events.disconnect(&id).await;
    }
    // A character split across fragments is reassembled.
    let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
    let (id, _) = events.connect().await;
    raw.send(&client_frame(op::TEXT, b"caf\xc3", Some(MASK)))
        .await;
    raw.send(&client_frame(0x80 | op::CONT, b"\xa9", Some(MASK)))
        .await;
    match events.next().await {
        AppEvent::Raw { conn, text } => {
            assert_eq!(conn.to_string(), id);
            assert_eq!(text, "café");
        }
        other => panic!("expected Raw, got {other:?}"),
    }
    assert_eq!(ts.server.connection_count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protocol_violations_close_1002() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "unmasked text",
            client_frame(0x80 | op::TEXT, b"{\"t\":\"x\"}", None),
        ),
        (
            "unmasked close",
            client_frame(0x80 | op::CLOSE, &1000u16.to_be_bytes(), None),
        ),
        ("RSV1", client_frame(0xC0 | op::TEXT, b"hi", Some(MASK))),
        ("RSV2", client_frame(0xA0 | op::BINARY, b"hi", Some(MASK))),
        ("RSV3", client_frame(0x90 | op::TEXT, b"hi", Some(MASK))),
        ("reserved data opcode", masked(0x3, b"hi")),
        ("reserved control opcode", masked(0xB, b"hi")),
        ("continuation first", masked(op::CONT, b"hi")),
        ("control frame of 126 bytes", masked(op::PING, &[0u8; 126])),
        ("fragmented ping", client_frame(op::PING, b"hi", Some(MASK))),
        ("new message inside a fragmented one", {
            let mut b = client_frame(op::TEXT, b"part", Some(MASK));
            b.extend(masked(op::TEXT, b"other"));
            b
        }),
        // Close frames to the letter (RFC 6455 §5.5.1, §7.4).
        ("close with a 1-byte payload", masked(op::CLOSE, &[0x03])),
        (
            "close with reserved code 1005",
            masked(op::CLOSE, &1005u16.to_be_bytes()),
        ),
        (
            "close with reserved code 1006",
            masked(op::CLOSE, &1006u16.to_be_bytes()),
        ),
        (
            "close with reserved code 1015",
            masked(op::CLOSE, &1015u16.to_be_bytes()),
        ),
        (
            "close with code 999",
            masked(op::CLOSE, &999u16.to_be_bytes()),
        ),
        (
            "close with code 5000",
            masked(op::CLOSE, &5000u16.to_be_bytes()),
        ),
    ];
    for (why, bytes) in &cases {
        let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
        let (id, _) = events.connect().await;
        raw.send_lenient(bytes).await;
        let (before, close) = raw.read_until_close().await;
        assert!(before.is_empty(), "{why}: {before:?}");
        assert_eq!(close.close_code(), Some(1002), "{why}");
        assert!(raw.ends().await);
        // No message reached the app: its next event is the disconnect.
        events.disconnect(&id).await;
    }
    // What was due before the bad frame still goes out before the Close:
    // a ping's pong, then 1002.
    let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
    let (id, _) = events.connect().await;
    let mut bytes = masked(op::PING, b"first");
    bytes.extend(masked(op::CLOSE, &[0x03]));
    raw.send_lenient(&bytes).await;
    let (before, close) = raw.read_until_close().await;
    assert!(
        before
            .iter()
            .any(|f| f.opcode == 0xA && f.payload == b"first"),
        "{before:?}"
    );
    assert_eq!(close.close_code(), Some(1002));
    events.disconnect(&id).await;
    // The same bytes right behind the upgrade request (one write).
    let mut first = support::raw::upgrade_request("/wse", &[]).into_bytes();
    first.extend(client_frame(0x80 | op::TEXT, b"x", None));
    let mut raw = RawWs::upgrade(
        tokio::net::TcpStream::connect(ts.addr).await.unwrap(),
        &first,
    )
    .await;
    let (id, _) = events.connect().await;
    assert_eq!(raw.read_until_close().await.1.close_code(), Some(1002));
    events.disconnect(&id).await;
    assert_eq!(ts.server.connection_count(), 0);
    assert_eq!(ts.server.health().connections, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legacy_prefixes_and_long_keys_are_normalised_before_the_app() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let (id, _) = events.connect().await;
    for (sent, seen) in [
        (
            r#"WSE{"t":"a","p":{"x":1}}"#,
            json!({"t": "a", "p": {"x": 1}}),
        ),
        (r#"S{"t":"b","p":[1]}"#, json!({"t": "b", "p": [1]})),
        (
            r#"U{"type":"c","payload":{"y":2}}"#,
            json!({"t": "c", "p": {"y": 2}}),
        ),
        (
            r#"{"type":"d","payload":3,"id":"q"}"#,
            json!({"t": "d", "p": 3, "id": "q"}),
        ),
        // `type`/`payload` only fill in a missing `t`/`p`.
        (
            r#"{"t":"e","type":"f","p":1,"payload":2}"#,
            json!({"t": "e", "type": "f", "p": 1, "payload": 2}),
        ),
        (
            r#"{"c":"WSE","t":"subscription_update","p":{"topics":["x"]}}"#,
            json!({"c": "WSE", "t": "subscription_update", "p": {"topics": ["x"]}}),
        ),
    ] {
        c.send_text(sent).await;
        assert_eq!(events.message(&id).await, seen, "{sent}");
    }
    // A prefixed ping is still the core's.
    c.send_text(r#"WSE{"t":"ping","p":{"timestamp":77}}"#).await;
    let pong = c.next_text_json().await;
    assert_eq!(pong["t"], "PONG");
    assert_eq!(pong["p"]["client_timestamp"], 77);
    c.send_text(r#"U{"t":"client_hello","p":{"protocol_version":2}}"#)
        .await;
    assert_eq!(c.next_text_json().await["p"]["protocol_version"], 2);
    c.send_text(r#"{"t":"marker"}"#).await;
    assert_eq!(events.message(&id).await, json!({"t": "marker"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_that_is_not_a_json_object_is_raw_and_binary_is_bin() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let (id, _) = events.connect().await;
    for text in [
        "hello",
        "[1,2]",
        "{bad json",
        "WSE:PING:123",
        "PONG:1795756556316",
        "U[1]",
        " {\"t\":\"x\"}",
        "",
    ] {
        c.send_text(text).await;
        match events.next().await {
            AppEvent::Raw { conn, text: got } => {
                assert_eq!(conn.to_string(), id);
                assert_eq!(got, text);
            }
            other => panic!("{text:?}: expected Raw, got {other:?}"),
        }
    }
    let zlib = {
        let mut b = b"C:".to_vec();
        b.extend([0x78, 0x01, 0x01, 0x00, 0x00, 0xff, 0xff]);
        b
    };
    for bytes in [
        vec![1u8, 2, 3],
        br#"{"t":"json in binary"}"#.to_vec(),
        zlib,
        vec![],
    ] {
        c.ws.send(Message::binary(bytes.clone())).await.unwrap();
        match events.next().await {
            AppEvent::Binary { conn, data } => {
                assert_eq!(conn.to_string(), id);
                assert_eq!(
                    &data[..],
                    &bytes[..],
                    "binary is passed as is, never decoded"
                );
            }
            other => panic!("expected Binary, got {other:?}"),
        }
    }
    // An `E:` frame without a negotiated key is dropped silently.
    c.ws.send(Message::binary(b"E:0123456789abcdefghijklmnop".to_vec()))
        .await
        .unwrap();
    c.send_text(r#"{"t":"marker"}"#).await;
    assert_eq!(events.message(&id).await, json!({"t": "marker"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_frames_may_come_between_the_fragments_of_a_message() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
    let (id, _) = events.connect().await;
    let mut bytes = client_frame(op::TEXT, br#"{"t":"frag","#, Some(MASK));
    bytes.extend(masked(op::PING, b"mid"));
    bytes.extend(client_frame(op::CONT, br#""p":"#, Some(MASK)));
    bytes.extend(masked(op::PONG, b""));
    bytes.extend(client_frame(0x80 | op::CONT, b"[1,2]}", Some(MASK)));
    raw.send(&bytes).await;
    assert_eq!(
        raw.read_frame().await.unwrap(),
        RawFrame {
            fin: true,
            compressed: false,
            opcode: op::PONG,
            payload: b"mid".to_vec()
        }
    );
    assert_eq!(events.message(&id).await, json!({"t": "frag", "p": [1, 2]}));
    // A client Close is answered with the same code, then the socket ends.
    raw.send_frame(op::CLOSE, &4000u16.to_be_bytes()).await;
    let (before, close) = raw.read_until_close().await;
    assert!(before.is_empty());
    assert_eq!(close.close_code(), Some(4000));
    assert!(raw.ends().await);
    events.disconnect(&id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_still_sending_a_large_message_is_not_idle() {
    // Liveness counts bytes: a client on a slow link whose message takes
    // longer than idle_timeout to arrive (its reply to the server's ping
    // waits behind it) stays connected, and the message is handled.
    let ts = TestServer::start(ServerConfig {
        ping_interval: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(1),
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
    let (id, _) = events.connect().await;
    let text = format!(r#"{{"t":"slow","p":"{}"}}"#, "x".repeat(3000));
    let frame = masked(op::TEXT, text.as_bytes());
    // A slow link: the frame arrives over ~2.5 s, idle_timeout is 1 s.
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    for chunk in frame.chunks(frame.len() / 25 + 1) {
        tick.tick().await;
        raw.send(chunk).await;
    }
    let v = events.message(&id).await;
    assert_eq!(v["t"], "slow");
    assert_eq!(v["p"].as_str().map(str::len), Some(3000));
    assert_eq!(
        ts.server
            .prometheus_metrics()
            .lines()
            .find(|l| l.starts_with("wse_idle_timeouts_total")),
        Some("wse_idle_timeouts_total 0")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_pings_in_one_write_get_ten_pongs_in_order() {
    // Autobahn 2.10 and 2.11 (byte by byte): a client that reads gets an
    // answer to every ping, as long as only a few wait at once.
    let ts = TestServer::start(ServerConfig::default());
    for chunked in [false, true] {
        let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
        let mut pings = Vec::new();
        for i in 0..10 {
            pings.extend(masked(op::PING, format!("payload-{i}").as_bytes()));
        }
        if chunked {
            for b in &pings {
                raw.send(std::slice::from_ref(b)).await;
            }
        } else {
            raw.send(&pings).await;
        }
        for i in 0..10 {
            let f = raw.read_frame().await.expect("a pong");
            assert_eq!(f.opcode, op::PONG);
            assert_eq!(f.text(), format!("payload-{i}"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pings_from_a_client_that_does_not_read_are_answered_by_the_latest_pong() {
    // 200,000 pings of 125 bytes (25 MB of pongs, more than the socket
    // buffers hold) from a client that reads nothing until the end: the
    // pongs the socket cannot take are coalesced into the latest one
    // (RFC 6455 §5.5.3), so the server's queue does not grow by a pong per
    // ping, and the last ping is still answered.
    let ts = TestServer::start(ServerConfig {
        inbound_bytes_capacity: 1 << 30,
        inbound_bytes_refill: 1 << 30,
        ..ServerConfig::default()
    });
    let mut raw = RawWs::connect(ts.addr, "/wse", &[]).await;
    const PINGS: u32 = 200_000;
    let mut flood = Vec::new();
    for i in 0..PINGS {
        let mut payload = [b'.'; 125];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        flood.extend_from_slice(&masked(op::PING, &payload));
    }
    raw.send(&flood).await;
    let mut pongs = 0u32;
    loop {
        let f = raw.read_frame().await.expect("connection open");
        if f.opcode == op::PONG {
            pongs += 1;
            if f.payload[..4] == (PINGS - 1).to_be_bytes() {
                break;
            }
        }
    }
    assert!(pongs < PINGS / 2, "{pongs} pongs for {PINGS} pings");
}
