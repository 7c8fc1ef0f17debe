//! A connect/disconnect storm of 10,000 authenticated connections over
//! loopback, in waves of at most 500 open sockets, with malformed,
//! oversized and invalid-UTF-8 frames, bad, expired and `alg=none` tokens,
//! plain HTTP and abandoned sockets interleaved. Afterwards the server must
//! be healthy (a fresh client subscribes, receives, gets its PONG) and
//! hold nothing: no connection, no subscriber, no queued event, no slot.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use support::jwt::{self, OTHER_SECRET, SECRET, claims, cookie, hs256, now_secs, sign};
use support::raw::{http_exchange, masked, upgrade_request};
use support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use wse::{AppEvent, ServerConfig};

/// Authenticated connections that open and close.
const GOOD: usize = 10_000;
/// Sockets open at once (at most).
const WAVE: usize = 500;
/// Of every wave, this many are hostile or broken.
const HOSTILE_PER_WAVE: usize = 100;
/// Sockets at most between `connect` and the server's first answer. The
/// server listens with std's default backlog of 128: a burst of 500
/// connects overflows it and the kernel drops SYNs, each costing the client
/// a 1 s retransmission (the storm then takes 20-25 s instead of ~8 s).
const CONNECTING: usize = 64;

/// What one socket of the storm does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    /// Upgrade, `server_ready`, subscribe, one app message, Close 1000.
    Good,
    /// Upgrade, `server_ready`, then the socket is dropped without a Close.
    GoodAbrupt,
    /// An unmasked frame: Close 1002.
    Unmasked,
    /// A frame header announcing more than `max_message_size`: Close 1009.
    Oversized,
    /// A text frame that is not UTF-8: Close 1007.
    BadUtf8,
    /// A token signed with another key: AUTH_FAILED, 4401.
    WrongKey,
    /// An expired token: AUTH_FAILED, 4401.
    Expired,
    /// An `alg=none` token: AUTH_FAILED, 4401.
    AlgNone,
    /// No token: AUTH_REQUIRED, 4401.
    NoToken,
    /// A plain HTTP request: 400.
    PlainHttp,
    /// Half an upgrade request, then the socket is dropped.
    HalfRequest,
}

const HOSTILE: [Kind; 10] = [
    Kind::GoodAbrupt,
    Kind::Unmasked,
    Kind::Oversized,
    Kind::BadUtf8,
    Kind::WrongKey,
    Kind::Expired,
    Kind::AlgNone,
    Kind::NoToken,
    Kind::PlainHttp,
    Kind::HalfRequest,
];

impl Kind {
    /// Does the app hear about this connection (a valid token upgraded)?
    fn registers(self) -> bool {
        matches!(
            self,
            Kind::Good | Kind::GoodAbrupt | Kind::Unmasked | Kind::Oversized | Kind::BadUtf8
        )
    }
}

/// Tokens prepared once (signing 10,000 times is not what is tested).
struct Tokens {
    good: String,
    wrong_key: String,
    expired: String,
    alg_none: String,
}

/// The first frame after the upgrade must be `server_ready` for `user`.
async fn expect_ready(ws: &mut RawWs) {
    let f = ws.read_frame().await.expect("server_ready");
    assert_eq!(f.opcode, op::TEXT);
    assert!(f.text().contains(r#""t":"server_ready""#), "{}", f.text());
    assert!(f.text().contains(r#""user_id":"storm""#), "{}", f.text());
}

/// Expect exactly one error text frame with `code`, then Close 4401.
async fn expect_refusal(ws: &mut RawWs, code: &str) {
    let (before, close) = ws.read_until_close().await;
    assert_eq!(before.len(), 1, "{before:?}");
    let err: Value = serde_json::from_slice(&before[0].payload).unwrap();
    assert_eq!(err["p"]["code"], code);
    assert_eq!(close.close_code(), Some(4401));
}

/// Expect a Close with `code` and nothing before it.
async fn expect_close(ws: &mut RawWs, code: u16) {
    let (before, close) = ws.read_until_close().await;
    assert!(before.is_empty(), "{before:?}");
    assert_eq!(close.close_code(), Some(code));
}

/// Run one socket of the storm; panics when the server misbehaves.
/// `connecting` is held until the server has answered (accepted the
/// socket), so at most its size wait in the listen backlog (see the
/// module docs).
async fn one(addr: SocketAddr, kind: Kind, n: usize, tokens: &Tokens, connecting: &Semaphore) {
    let permit = connecting.acquire().await.unwrap();
    let with = |t: &str| vec![("Cookie", cookie(t))];
    let headers: Vec<(&str, String)> = match kind {
        Kind::WrongKey => with(&tokens.wrong_key),
        Kind::Expired => with(&tokens.expired),
        Kind::AlgNone => with(&tokens.alg_none),
        Kind::NoToken => Vec::new(),
        _ => with(&tokens.good),
    };
    let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let request = upgrade_request("/wse", &headers);
    match kind {
        Kind::Good => {
            let mut ws = RawWs::connect_with(addr, request.as_bytes()).await;
            drop(permit);
            expect_ready(&mut ws).await;
            let sub = json!({"c":"WSE","t":"subscription_update","p":{"action":"subscribe","topics":["storm"]}});
            ws.send_frame(op::TEXT, sub.to_string().as_bytes()).await;
            let reply = ws.read_frame().await.expect("subscription reply");
            assert!(
                reply.text().contains(r#""success_topics":["storm"]"#),
                "{}",
                reply.text()
            );
            let mut bye = masked(
                op::TEXT,
                json!({"t": "hello", "p": n}).to_string().as_bytes(),
            );
            bye.extend(masked(op::CLOSE, &1000u16.to_be_bytes()));
            ws.send(&bye).await;
            expect_close(&mut ws, 1000).await;
            assert!(ws.ends().await);
        }
        Kind::GoodAbrupt => {
            let mut ws = RawWs::connect_with(addr, request.as_bytes()).await;
            drop(permit);
            expect_ready(&mut ws).await;
        }
        Kind::Unmasked | Kind::Oversized | Kind::BadUtf8 => {
            let mut ws = RawWs::connect_with(addr, request.as_bytes()).await;
            drop(permit);
            expect_ready(&mut ws).await;
            let (bytes, code) = match kind {
                Kind::Unmasked => (support::raw::client_frame(0x81, b"{}", None), 1002),
                // Only the header: the server refuses it before any payload.
                Kind::Oversized => {
                    let mut h = vec![0x82, 0x80 | 127];
                    h.extend_from_slice(&(1u64 << 20).to_be_bytes());
                    h.extend_from_slice(&support::raw::MASK);
                    (h, 1009)
                }
                _ => (masked(op::TEXT, b"caf\xe9 \xff"), 1007),
            };
            ws.send_lenient(&bytes).await;
            expect_close(&mut ws, code).await;
            assert!(ws.ends().await);
        }
        Kind::WrongKey | Kind::Expired | Kind::AlgNone | Kind::NoToken => {
            let mut ws = RawWs::connect_with(addr, request.as_bytes()).await;
            drop(permit);
            let code = if kind == Kind::NoToken {
                "AUTH_REQUIRED"
            } else {
                "AUTH_FAILED"
            };
            expect_refusal(&mut ws, code).await;
            assert!(ws.ends().await);
        }
        Kind::PlainHttp => {
            let resp = http_exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
            drop(permit);
            assert!(
                resp.starts_with(b"HTTP/1.1 400 "),
                "{:?}",
                String::from_utf8_lossy(&resp)
            );
        }
        Kind::HalfRequest => {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(&request.as_bytes()[..request.len() / 2])
                .await
                .unwrap();
            drop(permit);
        }
    }
}

/// Raise this process's soft open-files limit to at least `want` (up to the
/// hard limit) when it is lower, with util-linux `prlimit` (no unsafe code).
fn raise_nofile(want: u64) {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let Some(line) = limits.lines().find(|l| l.starts_with("Max open files")) else {
        return;
    };
    let nums: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (soft, hard) = match nums[..] {
        [s, h, ..] => (s, h),
        [s] => (s, u64::MAX),
        _ => return,
    };
    if soft >= want {
        return;
    }
    let new = want.min(hard);
    let status = std::process::Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={new}:{hard}"))
        .status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "open-files limit {soft} is too low and prlimit failed: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_storm_with_garbage_leaves_the_server_healthy_and_empty() {
    raise_nofile(4 * WAVE as u64 + 512);
    let started = Instant::now();
    let ts = TestServer::start(ServerConfig {
        core_subscriptions: true,
        max_message_size: 64 * 1024,
        // Closed sockets of one wave may still be finishing on the server
        // when the next wave connects: the limits must not refuse them.
        max_connections: 4 * WAVE,
        max_pending_handshakes: 4 * WAVE,
        // Every socket comes from 127.0.0.1, many at once.
        max_pending_handshakes_per_ip: 0,
        ..jwt::hs256_config()
    });
    let tokens = std::sync::Arc::new(Tokens {
        good: hs256("storm"),
        wrong_key: sign(Algorithm::HS256, OTHER_SECRET, &claims("storm"), None),
        expired: sign(
            Algorithm::HS256,
            SECRET,
            &json!({"sub": "storm", "exp": now_secs() - 3600}),
            None,
        ),
        alg_none: jwt::unsigned(&claims("storm")),
    });

    // The plan: waves of WAVE sockets, HOSTILE_PER_WAVE of them hostile.
    let good_per_wave = WAVE - HOSTILE_PER_WAVE;
    let waves = GOOD.div_ceil(good_per_wave);
    let mut plan: BTreeMap<Kind, usize> = BTreeMap::new();
    let mut n = 0;
    let connecting = std::sync::Arc::new(Semaphore::new(CONNECTING));
    for w in 0..waves {
        let mut set = tokio::task::JoinSet::new();
        for i in 0..WAVE {
            let kind = if i % (WAVE / HOSTILE_PER_WAVE) == 0 {
                HOSTILE[(w * HOSTILE_PER_WAVE + i / (WAVE / HOSTILE_PER_WAVE)) % HOSTILE.len()]
            } else {
                Kind::Good
            };
            *plan.entry(kind).or_default() += 1;
            let (addr, tokens, connecting) = (ts.addr, tokens.clone(), connecting.clone());
            n += 1;
            let id = n;
            set.spawn(async move { one(addr, kind, id, &tokens, &connecting).await });
        }
        while let Some(r) = set.join_next().await {
            r.expect("a storm socket saw the server misbehave");
        }
    }
    let storm_took = started.elapsed();
    assert_eq!(plan[&Kind::Good], GOOD);

    // Nothing is left.
    wait_until("all connections gone", || ts.server.connection_count() == 0).await;
    assert_eq!(ts.server.health().connections, 0);
    assert_eq!(ts.server.subscriber_count("storm"), 0);
    assert!(ts.server.prometheus_metrics().contains("\nwse_topics 0\n"));

    // Every registered connection produced connect, its messages, and one
    // disconnect, in that order; refused ones produced nothing.
    let registered: usize = plan
        .iter()
        .filter(|(k, _)| k.registers())
        .map(|(_, n)| n)
        .sum();
    let mut events = Events::new(&ts.server);
    let mut open = HashSet::new();
    let mut closed = HashSet::new();
    let mut hellos = 0;
    while closed.len() < registered {
        match events.next().await {
            AppEvent::AuthConnect { conn, user_id } => {
                assert_eq!(user_id, "storm");
                assert!(open.insert(conn) && !closed.contains(&conn));
            }
            AppEvent::Message { conn, value } => {
                assert!(open.contains(&conn), "a message outside its connection");
                assert_eq!(value["t"], "hello");
                hellos += 1;
            }
            AppEvent::Disconnect { conn } => {
                assert!(open.remove(&conn), "disconnect without connect");
                assert!(closed.insert(conn));
            }
            other => panic!("unexpected event {other:?}"),
        }
    }
    assert!(open.is_empty());
    assert_eq!(hellos, GOOD);
    assert!(
        events.ready().is_empty(),
        "events beyond the registered connections"
    );
    assert_eq!(ts.server.inbound_queue_depth(), 0);
    assert_eq!(ts.server.inbound_dropped_count(), 0);

    // A fresh client works normally.
    let mut c = Client::connect(&ts.url(""), &[("Cookie", &cookie(&tokens.good))]).await;
    assert_eq!(c.next_text_json().await["t"], "server_ready");
    let reply = c.subscribe(&["after"], None).await;
    assert_eq!(reply["p"]["success_topics"], json!(["after"]));
    assert_eq!(ts.server.subscriber_count("after"), 1);
    ts.server
        .broadcast_local("after", r#"{"t":"news","p":1}"#)
        .unwrap();
    assert_eq!(c.next_text().await, r#"{"c":"U","t":"news","p":1}"#);
    c.send_json(&json!({"c":"WSE","t":"ping","p":{"timestamp":123},"v":1}))
        .await;
    let pong = c.next_text().await;
    assert!(pong.starts_with(r#"{"c":"WSE","t":"PONG""#), "{pong}");
    assert_eq!(
        serde_json::from_str::<Value>(&pong).unwrap()["p"]["client_timestamp"],
        123
    );
    c.ws.close(None).await.unwrap();
    assert!(
        c.close_frame().await.is_some(),
        "the server answers the Close"
    );
    wait_until("the fresh client gone", || {
        ts.server.connection_count() == 0
    })
    .await;

    // No connection slot leaked: stop waits (up to 3 s) only for slots in use.
    let stopping = Instant::now();
    tokio::task::block_in_place(|| ts.server.stop()).unwrap();
    assert!(
        stopping.elapsed() < Duration::from_secs(2),
        "stop waited {:?}",
        stopping.elapsed()
    );
    eprintln!("storm: {plan:?} in {storm_took:?}");
}

/// A burst of simultaneous connects (a reconnect storm after a restart)
/// must not overflow the listen backlog: an overflow drops the SYN and the
/// client retries only after 1 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_connects_is_not_dropped_by_the_listen_backlog() {
    let ts = TestServer::start(ServerConfig {
        max_connections: 2 * WAVE,
        // Every client is 127.0.0.1: no per-address cap (a load generator
        // on one host, as OPERATIONS.md says).
        max_pending_handshakes_per_ip: 0,
        ..ServerConfig::default()
    });
    let request = upgrade_request("/wse", &[]);
    for round in 0..5 {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..WAVE {
            let (addr, request) = (ts.addr, request.clone());
            set.spawn(async move {
                let start = Instant::now();
                let ws = RawWs::connect_with(addr, request.as_bytes()).await;
                (start.elapsed(), ws)
            });
        }
        let mut slowest = Duration::ZERO;
        let mut open = Vec::new();
        while let Some(r) = set.join_next().await {
            let (took, ws) = r.unwrap();
            slowest = slowest.max(took);
            open.push(ws);
        }
        // Without drops the slowest upgrade takes milliseconds; a dropped
        // SYN costs at least 1 s.
        assert!(
            slowest < Duration::from_millis(900),
            "round {round}: slowest upgrade {slowest:?}"
        );
        drop(open);
        wait_until("all closed", || ts.server.connection_count() == 0).await;
    }
}
