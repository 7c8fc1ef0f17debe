//! The upgrade (CLIENT_PROTOCOL.md §1, §2.4, §3.1): paths, msgpack mode,
//! refusals before any HTTP response, the pending-handshake limits (per
//! address; in all, where the oldest idle socket makes room) and timeout,
//! and what a connection gets first without JWT.

mod support;

use std::time::Duration;

use futures_util::SinkExt;

use serde_json::{Value, json};
use support::raw::{http_exchange, read_to_close, time_to_close, upgrade_request};
use support::*;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::MaybeTlsStream;
use tokio_tungstenite::tungstenite::Message;
use wse::{AppEvent, ServerConfig};

/// Send a client `ping` and return the PONG's `client_timestamp`.
async fn ping_pong(c: &mut Client, ts: i64) -> Value {
    c.send_json(&json!({"c":"WSE","t":"ping","p":{"timestamp":ts},"v":1}))
        .await;
    let pong = c.next_text_json().await;
    assert_eq!(pong["t"], "PONG", "{pong}");
    pong["p"]["client_timestamp"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_path_upgrades() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let paths = [
        "/",
        "/wse",
        "/some/deep/path",
        "/x?client_version=2&topics=a,b",
        "/?",
    ];
    let mut clients = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let url = format!("ws://{}{path}", ts.addr);
        let mut c = Client::connect(&url, &[]).await;
        events.connect().await;
        assert_eq!(
            ping_pong(&mut c, i as i64 + 1).await,
            i as i64 + 1,
            "{path}"
        );
        clients.push(c);
    }
    assert_eq!(ts.server.connection_count(), paths.len());
    assert_eq!(ts.server.connections().unwrap().len(), paths.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn format_msgpack_in_the_query_makes_a_msgpack_connection() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut mp = Client::connect(&ts.url("?client_version=2&format=msgpack"), &[]).await;
    let (mp_id, _) = events.connect().await;
    let mut js = Client::connect(&ts.url("?format=json"), &[]).await;
    let (js_id, _) = events.connect().await;

    // Inbound: a msgpack map becomes a Message with the decoded value, and
    // so does a scalar; undecodable bytes stay a Binary event.
    let value = json!({"t": "chat", "p": {"text": "hé", "n": [1, 2.5, null, true]}});
    let packed = rmp_serde::to_vec_named(&value).unwrap();
    mp.ws.send(Message::binary(packed.clone())).await.unwrap();
    assert_eq!(events.message(&mp_id).await, value);
    mp.ws
        .send(Message::binary(rmp_serde::to_vec(&42u32).unwrap()))
        .await
        .unwrap();
    assert_eq!(events.message(&mp_id).await, json!(42));
    mp.ws.send(Message::binary(vec![0xc1])).await.unwrap(); // never-used msgpack byte
    match events.next().await {
        AppEvent::Binary { conn, data } => {
            assert_eq!(conn.to_string(), mp_id);
            assert_eq!(&data[..], &[0xc1]);
        }
        other => panic!("expected Binary, got {other:?}"),
    }
    // The same bytes from a JSON connection are just bytes.
    js.ws.send(Message::binary(packed.clone())).await.unwrap();
    match events.next().await {
        AppEvent::Binary { conn, data } => {
            assert_eq!(conn.to_string(), js_id);
            assert_eq!(&data[..], &packed[..]);
        }
        other => panic!("expected Binary, got {other:?}"),
    }

    // Outbound: send_event is `M:` + msgpack for it, plain JSON otherwise.
    let ev = json!({"t": "tick", "p": {"price": 1.5}});
    let ev = ev.as_object().unwrap();
    let n = ts.server.send_event(&mp_id, ev, 1024).unwrap();
    let body = mp.next_binary().await;
    assert_eq!(body.len(), n);
    assert_eq!(&body[..2], b"M:");
    let env: Value = rmp_serde::from_slice(&body[2..]).unwrap();
    assert_eq!(env["c"], "U");
    assert_eq!(env["t"], "tick");
    assert_eq!(env["p"], json!({"price": 1.5}));
    assert_eq!(env["v"], 1);
    assert!(env["id"].is_string() && env["ts"].is_string() && env["seq"].is_u64());
    ts.server.send_event(&js_id, ev, 1024).unwrap();
    let body = js.next_binary().await;
    let env: Value = serde_json::from_slice(&body).expect("plain JSON");
    assert_eq!(env["t"], "tick");

    // Everything else stays JSON on a msgpack connection.
    assert_eq!(ping_pong(&mut mp, 7).await, 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_is_not_a_websocket_upgrade_gets_400() {
    let ts = TestServer::start(ServerConfig::default());
    let requests: [&[u8]; 4] = [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /wse HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
        b"GET /wse HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n",
    ];
    for req in requests {
        let resp = http_exchange(ts.addr, req).await;
        let resp = String::from_utf8_lossy(&resp);
        assert!(
            resp.starts_with("HTTP/1.1 400 "),
            "{:?} -> {resp:?}",
            String::from_utf8_lossy(req)
        );
    }
    assert_eq!(ts.server.connection_count(), 0);
    // The server still upgrades a real client.
    let mut c = ts.client().await;
    assert_eq!(ping_pong(&mut c, 1).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_connections_closes_further_sockets_before_any_http_response() {
    let ts = TestServer::start(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut a = ts.client().await;
    let (a_id, _) = events.connect().await;
    let _b = ts.client().await;
    events.connect().await;

    // A library client sees a broken handshake; a raw one sees no byte.
    assert!(Client::try_connect(&ts.url(""), &[]).await.is_err());
    let resp = http_exchange(ts.addr, upgrade_request("/wse", &[]).as_bytes()).await;
    assert!(
        resp.is_empty(),
        "expected no HTTP response, got {:?}",
        String::from_utf8_lossy(&resp)
    );
    assert_eq!(ts.server.connection_count(), 2);
    assert_eq!(ts.server.health().connections, 2);
    // The refused sockets produced no event: the next one is a's close.
    a.ws.close(None).await.unwrap();
    events.disconnect(&a_id).await;
    assert_eq!(ts.server.connection_count(), 1);

    // The slot is free again. (The slot is given back right after the
    // Disconnect event is queued, so the first attempt may race it.)
    let mut c = None;
    for _ in 0..100 {
        if let Ok(client) = Client::try_connect(&ts.url(""), &[]).await {
            c = Some(client);
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut c = c.expect("a freed slot accepts a new connection");
    events.connect().await;
    assert_eq!(ping_pong(&mut c, 3).await, 3);
    assert_eq!(ts.server.connection_count(), 2);
    assert!(Client::try_connect(&ts.url(""), &[]).await.is_err());
    assert_eq!(ts.server.connection_count(), 2);
}

/// A real client whose socket is bound to `local` (a loopback address:
/// 127.0.0.0/8 is all loopback on Linux), as if from another host.
async fn client_from(local: &str, ts: &TestServer) -> Client {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    let stream = socket.connect(ts.addr).await.expect("TCP connect");
    assert_eq!(stream.local_addr().unwrap().ip().to_string(), local);
    let (ws, _) = tokio::time::timeout(
        WAIT,
        tokio_tungstenite::client_async(ts.url(""), MaybeTlsStream::Plain(stream)),
    )
    .await
    .expect("upgrade timed out")
    .expect("upgrade failed");
    Client::from_ws(ws)
}

/// Whether the server left `s` open and silent (it neither wrote nor
/// closed it).
fn open_and_silent(s: &TcpStream) -> bool {
    let mut b = [0u8; 1];
    matches!(s.try_read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_at_its_pending_cap_is_closed_at_once_and_others_still_connect() {
    let ts = TestServer::start(ServerConfig {
        max_pending_handshakes_per_ip: 16,
        // Long enough that no close below can be the timeout's
        // (`read_to_close` gives up after 10 s).
        handshake_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    // Sixteen sockets from 127.0.0.1 that never send a request (the
    // accept loop takes sockets in order, so they are in before the next).
    let mut idle = Vec::new();
    for _ in 0..16 {
        idle.push(TcpStream::connect(ts.addr).await.unwrap());
    }
    // The seventeenth is closed at once, without any byte of HTTP; so is
    // one with a complete request.
    let (_, got) = time_to_close(ts.addr, b"").await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    let resp = http_exchange(ts.addr, upgrade_request("/wse", &[]).as_bytes()).await;
    assert!(resp.is_empty(), "{:?}", String::from_utf8_lossy(&resp));
    let health = ts.server.health();
    assert_eq!(health.handshakes_refused, 2);
    assert_eq!(health.connections_rejected, 2);
    assert_eq!(health.handshakes_evicted, 0);

    // A client from another address upgrades, and is served.
    let mut c = client_from("127.0.0.2", &ts).await;
    events.connect().await;
    assert_eq!(ping_pong(&mut c, 3).await, 3);
    assert_eq!(ts.server.connection_count(), 1);
    // Nothing was taken from 127.0.0.1's sixteen to make room.
    assert!(idle.iter().all(open_and_silent));
    let health = ts.server.health();
    assert_eq!(health.handshakes_refused, 2);
    assert_eq!(health.handshakes_evicted, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_pending_place_taken_the_oldest_idle_socket_makes_room() {
    let ts = TestServer::start(ServerConfig {
        max_pending_handshakes: 8,
        max_pending_handshakes_per_ip: 0,
        handshake_timeout: Duration::from_secs(60),
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut idle = Vec::new();
    for _ in 0..8 {
        idle.push(TcpStream::connect(ts.addr).await.unwrap());
    }
    // A real client gets in: the oldest idle socket is closed for it,
    // without any byte, and the others stay.
    let mut c = ts.client().await;
    events.connect().await;
    assert_eq!(ping_pong(&mut c, 1).await, 1);
    let got = read_to_close(&mut idle[0]).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(idle[1..].iter().all(open_and_silent));
    let health = ts.server.health();
    assert_eq!(health.handshakes_evicted, 1);
    assert_eq!(health.connections_rejected, 1);

    // All places taken again (seven idle and a new one): the next client
    // closes the next oldest, not the newest.
    idle.push(TcpStream::connect(ts.addr).await.unwrap());
    let mut d = ts.client().await;
    events.connect().await;
    assert_eq!(ping_pong(&mut d, 2).await, 2);
    let got = read_to_close(&mut idle[1]).await;
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
    assert!(idle[2..].iter().all(open_and_silent));
    let health = ts.server.health();
    assert_eq!(health.handshakes_evicted, 2);
    assert_eq!(health.connections_rejected, 2);
    assert_eq!(health.handshakes_refused, 0);
    assert_eq!(ts.server.connection_count(), 2);

    // An idle socket that sends its request at last still gets in.
    let oldest_left = idle.remove(2);
    let _upgraded = RawWs::upgrade(oldest_left, upgrade_request("/wse", &[]).as_bytes()).await;
    events.connect().await;
    assert_eq!(ts.server.connection_count(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handshake_timeout_closes_a_silent_socket() {
    let ts = TestServer::start(ServerConfig {
        handshake_timeout: Duration::from_millis(300),
        ..ServerConfig::default()
    });
    for sent in [
        &b""[..],
        b"GET /wse HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n",
    ] {
        let (took, got) = time_to_close(ts.addr, sent).await;
        assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(5),
            "closed after {took:?}"
        );
    }
    assert_eq!(ts.server.connection_count(), 0);
    // A client that completes its upgrade in time is not affected.
    let mut c = ts.client().await;
    assert_eq!(ping_pong(&mut c, 5).await, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_jwt_the_app_gets_connect_with_the_raw_cookie_and_the_client_nothing() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let cookie = "theme=dark; access_token=not-checked;  x=1";
    let mut c = Client::connect(&ts.url(""), &[("Cookie", cookie)]).await;
    let (id, cookies) = events.connect().await;
    assert_eq!(cookies, cookie);
    // Nothing was sent before the app's own first frame.
    ts.server.send(&id, r#"{"t":"app_first"}"#).unwrap();
    assert_eq!(c.next_text().await, r#"{"t":"app_first"}"#);

    let mut plain = ts.client().await;
    let (id2, cookies) = events.connect().await;
    assert_eq!(cookies, "");
    ts.server.send(&id2, "marker").unwrap();
    assert_eq!(plain.next_text().await, "marker");
    assert_ne!(id, id2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_ready_without_auth_is_the_first_frame() {
    let ts = TestServer::start(ServerConfig {
        server_ready_without_auth: true,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let (id, _) = events.connect().await;
    let ready = c.next_text().await;
    assert!(ready.starts_with('{'), "{ready}");
    let ready: Value = serde_json::from_str(&ready).unwrap();
    assert_eq!(ready["t"], "server_ready");
    assert_eq!(ready["c"], "WSE");
    assert_eq!(ready["seq"], 1);
    assert_eq!(ready["p"]["details"]["connection_id"], id.as_str());
    assert_eq!(ready["p"]["details"]["features"]["recovery"], false);
    assert_eq!(ready["p"]["details"]["features"]["encryption"], false);
    assert_eq!(ready["ts"], ready["p"]["details"]["server_time"]);
    assert_eq!(ping_pong(&mut c, 11).await, 11);
}
