//! `wse replay`, run as the built binary against real data directories and
//! real `wse serve` processes on loopback: a large replay checked by a
//! subscriber, `--speed` timing, resume after `kill -9`, the server's
//! single-node publish-id window, the HTTP source and the WebSocket
//! destination, and bad input.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wse_log::{DirReader, Epoch, Log, ManualClock, ReadLimits, RecordKind};

const TOKEN: &str = "replay-admin-token";

/// Longest wait for something that should happen soon (a bound on a hang,
/// not a sleep).
const EVENT_TIMEOUT: Duration = Duration::from_secs(60);

fn wse() -> Command {
    Command::new(env!("CARGO_BIN_EXE_wse"))
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Run `wse replay args...` to completion.
fn replay(args: &[&str]) -> Output {
    wse()
        .arg("replay")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run wse replay")
}

/// The message published as number `n`: members in an order no encoder
/// would choose (`t` before `p`, `z` before `a`), so a re-encoding shows.
fn original(n: u64) -> String {
    format!(
        r#"{{"c":"U","t":"m","p":{{"z":"{}","n":{n},"a":[1, 2]}}}}"#,
        "x".repeat((n % 7) as usize)
    )
}

/// The `n` of a replayed message's text.
fn number(text: &str) -> u64 {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    v["p"]["n"]
        .as_u64()
        .unwrap_or_else(|| panic!("no p.n in {text}"))
}

/// A data directory whose topic `topic` holds `count` messages stamped as
/// a server with recovery on stores them, appended `step_us` apart by a
/// manual clock, with a presence record after every 10,000th message.
fn source_dir(dir: &Path, topic: &str, count: u64, step_us: u64) {
    let clock = ManualClock::new(1_700_000_000_000_000);
    let log = Log::builder(dir)
        .clock(clock.clone())
        .open()
        .expect("open the source log");
    for n in 0..count {
        let text = original(n);
        log.append_with(topic, RecordKind::Message, text.len() + 64, |pos, buf| {
            let mut stamped = bytes::BytesMut::new();
            wse::protocol::write_stamped(&mut stamped, &text, topic, pos.epoch.0, pos.offset);
            buf.extend_from_slice(&stamped);
        })
        .expect("append");
        if n % 10_000 == 9_999 {
            log.append(topic, RecordKind::Presence, br#"{"op":"join"}"#)
                .expect("append presence");
        }
        clock.advance(Duration::from_micros(step_us));
    }
    log.close().expect("close the source log");
}

/// A `wse serve` on free loopback ports (HTTP API with [`TOKEN`]), killed
/// when dropped.
struct Serve {
    child: Child,
    /// `ws://127.0.0.1:port/wse`.
    ws: String,
    /// `http://127.0.0.1:port`.
    http: String,
    data: tempfile::TempDir,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let data = tempfile::tempdir().expect("tempdir");
        let mut child = wse()
            .args(["serve", "--port", "0", "--http-listen", "127.0.0.1:0"])
            .args(["--admin-token", TOKEN, "--e2e-hello-wait-ms", "0"])
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wse serve");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let (mut ws, mut http) = (String::new(), String::new());
        while ws.is_empty() || http.is_empty() {
            let line = lines.next().expect("wse serve stopped").expect("a line");
            if let Some(rest) = line.split("listening on ").nth(1) {
                ws = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
            if let Some(rest) = line.strip_prefix("HTTP API on ") {
                http = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
            }
        }
        // Keep reading stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Serve {
            child,
            ws,
            http,
            data,
        }
    }

    /// One request with the admin token: the status and the body as JSON.
    async fn call(&self, method: &str, path: &str, body: &str, key: Option<&str>) -> (u16, Value) {
        let addr = self.http.trim_start_matches("http://").to_owned();
        let mut s = TcpStream::connect(addr)
            .await
            .expect("connect to the HTTP API");
        let key = key.map_or(String::new(), |k| format!("Idempotency-Key: {k}\r\n"));
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
             Authorization: Bearer {TOKEN}\r\n{key}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        s.write_all(head.as_bytes()).await.expect("send");
        let mut out = String::new();
        s.read_to_string(&mut out).await.expect("read");
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
        (status, serde_json::from_str(body).unwrap_or(Value::Null))
    }

    /// Every record of `topic` in the server's data directory (read beside
    /// it): offset and text.
    fn stored(&self, topic: &str) -> Vec<(u64, String)> {
        stored(self.data.path(), topic)
    }

    /// A counter of `GET /metrics`.
    async fn metric(&self, name: &str) -> f64 {
        let addr = self.http.trim_start_matches("http://").to_owned();
        let mut s = TcpStream::connect(addr).await.expect("connect");
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let req = format!(
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\n\r\n"
        );
        s.write_all(req.as_bytes()).await.expect("send");
        let mut text = String::new();
        s.read_to_string(&mut text).await.expect("read");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every record of `topic` in the data directory `dir`: offset and text.
fn stored(dir: &Path, topic: &str) -> Vec<(u64, String)> {
    let reader = DirReader::open(dir).expect("open the data directory");
    let Some(t) = reader.topic(topic).expect("load the topic") else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut from = t.first_offset;
    while from < t.next_offset {
        let page = reader.read(&t, from, ReadLimits::default()).expect("read");
        let Some(last) = page.last() else { break };
        from = last.offset() + 1;
        for r in page {
            out.push((
                r.offset(),
                String::from_utf8_lossy(r.payload_ref()).into_owned(),
            ));
        }
    }
    out
}

/// The text of a stored (stamped) record as it was published.
fn unstamped(stored: &str) -> String {
    wse::protocol::read_stamp(stored)
        .map(|(_, text)| text)
        .unwrap_or_else(|| panic!("not stamped: {stored}"))
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A subscriber of `topic` on `url`, its subscription confirmed.
async fn subscriber(url: &str, topic: &str) -> Ws {
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("connect");
    let hello = json!({"t":"client_hello","p":{"client_version":"replay-test",
        "protocol_version":2,"features":{"encryption":false}}});
    ws.send(Message::text(hello.to_string()))
        .await
        .expect("hello");
    let sub = json!({"t":"subscription_update","p":{"action":"subscribe","topics":[topic]}});
    ws.send(Message::text(sub.to_string()))
        .await
        .expect("subscribe");
    loop {
        let text = next_text(&mut ws).await;
        if text.contains(r#""t":"subscription_update""#) {
            assert!(text.contains(r#""success":true"#), "{text}");
            return ws;
        }
    }
}

/// The next text frame (a bound on a hang, not a sleep).
async fn next_text(ws: &mut Ws) -> String {
    loop {
        let frame = tokio::time::timeout(EVENT_TIMEOUT, ws.next())
            .await
            .expect("no frame in time")
            .expect("connection ended")
            .expect("a frame");
        if let Message::Text(t) = frame {
            if t.contains(r#""t":"ping""#) {
                let pong = r#"{"c":"WSE","t":"PONG","p":{},"v":1}"#;
                ws.send(Message::text(pong)).await.expect("pong");
                continue;
            }
            return t.to_string();
        }
    }
}

/// The next delivered message of the test's type `m`.
async fn next_message(ws: &mut Ws) -> String {
    loop {
        let text = next_text(ws).await;
        if text.contains(r#""t":"m""#) {
            return text;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_100k_records_from_a_data_directory_into_a_live_server() {
    const N: u64 = 100_000;
    let src = tempfile::tempdir().expect("tempdir");
    source_dir(src.path(), "orders", N, 10);
    let server = Serve::start(&[]);
    let mut sub = subscriber(&server.ws, "orders-copy").await;
    let watching = tokio::spawn(async move {
        let mut got = Vec::with_capacity(N as usize);
        while (got.len() as u64) < N {
            got.push(next_message(&mut sub).await);
        }
        got
    });
    let out = tokio::task::spawn_blocking({
        let dir = src.path().to_owned();
        let http = server.http.clone();
        move || {
            replay(&[
                "orders",
                "--data-dir",
                path(&dir),
                "--to-http",
                &http,
                "--token",
                TOKEN,
                "--to-topic",
                "orders-copy",
            ])
        }
    })
    .await
    .expect("join");
    assert!(out.status.success(), "replay failed: {}", stderr(&out));
    let summary = stderr(&out);
    assert!(
        summary.contains(&format!("{N} published, 10 presence/control skipped")),
        "{summary}"
    );
    let got = watching.await.expect("the subscriber");
    // Same payloads, same order, each once: the subscriber's n-th message
    // is the n-th original at destination offset n.
    for (n, text) in got.iter().enumerate() {
        let (at, published) = wse::protocol::read_stamp(text).expect("stamped by the destination");
        assert_eq!(
            at.offset, n as u64,
            "destination offsets are dense and in order"
        );
        assert_eq!(published, original(n as u64), "at {n}");
    }
    let (status, topics) = server.call("GET", "/v1/topics", "", None).await;
    assert_eq!(status, 200);
    let copy = topics["topics"]
        .as_array()
        .and_then(|t| t.iter().find(|t| t["name"] == "orders-copy"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(copy["next_offset"], N, "nothing stored twice: {copy}");
}

#[test]
fn speed_2_replays_two_seconds_of_history_in_one() {
    let src = tempfile::tempdir().expect("tempdir");
    // 41 records 50 ms apart: 2 s of history by the manual clock.
    source_dir(src.path(), "ticks", 41, 50_000);
    let out = replay(&[
        "ticks",
        "--data-dir",
        path(src.path()),
        "--speed",
        "2",
        "-q",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 41);
    let summary = stderr(&out);
    let secs: f64 = summary
        .split(" in ")
        .last()
        .and_then(|s| s.split(' ').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no duration in {summary}"));
    assert!(
        (secs - 1.0).abs() <= 0.05,
        "took {secs} s, not 1 s ± 5%: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_kill_9_stores_every_record_exactly_once() {
    const N: u64 = 30_000;
    let src = tempfile::tempdir().expect("tempdir");
    source_dir(src.path(), "feed", N, 10);
    let server = Serve::start(&[]);
    let checkpoint = src.path().join("feed.checkpoint");
    let args = |resume: bool| {
        let mut a: Vec<String> = [
            "replay",
            "feed",
            "--data-dir",
            path(src.path()),
            "--to-http",
            &server.http,
            "--token",
            TOKEN,
            "--checkpoint",
            path(&checkpoint),
            "-q",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        if resume {
            a.push("--resume".into());
        } else {
            // Slow enough to be caught mid-run.
            a.extend(["--max-rate".into(), "10000".into()]);
        }
        a
    };
    let (first_args, resume_args) = (args(false), args(true));
    let mut sub = subscriber(&server.ws, "feed").await;
    let mut first = wse()
        .args(&first_args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    // Kill it once records arrive and the checkpoint shows progress: each
    // delivered record is the event that says to look again.
    let mut seen = 0u64;
    loop {
        next_message(&mut sub).await;
        seen += 1;
        let progress = std::fs::read(&checkpoint)
            .ok()
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .and_then(|c| c["next"].as_u64())
            .unwrap_or(0);
        if progress > 0 && seen > 1_000 {
            break;
        }
        assert!(seen < N, "the checkpoint never moved");
    }
    first.kill().expect("kill -9");
    let status = first.wait().expect("reap");
    assert!(!status.success(), "killed mid-run, not finished: {status}");
    drop(sub);
    let before = stored(server.data.path(), "feed").len() as u64;
    assert!(before < N, "the first run was cut short ({before} stored)");

    let out = tokio::task::spawn_blocking(move || {
        wse()
            .args(&resume_args)
            .stdin(Stdio::null())
            .output()
            .expect("resume")
    })
    .await
    .expect("join");
    assert!(out.status.success(), "resume failed: {}", stderr(&out));
    let records = server.stored("feed");
    let numbers: Vec<u64> = records.iter().map(|(_, t)| number(&unstamped(t))).collect();
    let distinct: BTreeSet<u64> = numbers.iter().copied().collect();
    assert_eq!(
        numbers.len() as u64,
        N,
        "{} duplicates",
        numbers.len() - distinct.len()
    );
    assert_eq!(distinct, (0..N).collect(), "missing records");
    assert!(numbers.windows(2).all(|w| w[0] < w[1]), "out of order");
    eprintln!(
        "resume: {before} stored before, {} duplicates suppressed by the server",
        server.metric("wse_publish_duplicates_total").await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_stores_an_id_once_and_forgets_it_beyond_the_window() {
    let server = Serve::start(&["--cluster-dedup-window", "3", "--client-publish", "true"]);
    let msg = r#"{"t":"m","p":{"k":1}}"#;
    let publish = |key: &'static str| {
        let server = &server;
        async move {
            let (status, body) = server
                .call("POST", "/v1/topics/ids/publish", msg, Some(key))
                .await;
            assert_eq!(status, 200, "{body}");
            body["position"]["offset"].as_u64().expect("an offset")
        }
    };
    let first = publish("k1").await;
    assert_eq!(
        publish("k1").await,
        first,
        "the same id: the first copy's position"
    );
    // A batch item with the same id, and a new one.
    let batch =
        json!({"items": [{"id": "k1", "message": {"t":"m"}}, {"id": "k2", "message": {"t":"m"}}]});
    let (status, body) = server
        .call("POST", "/v1/topics/ids/batch", &batch.to_string(), None)
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["positions"][0]["offset"], first, "{body}");
    assert_eq!(body["positions"][1]["offset"], first + 1, "{body}");
    // A client publish with the same id.
    let (mut ws, _) = tokio_tungstenite::connect_async(&server.ws)
        .await
        .expect("connect");
    let p = json!({"t":"publish","id":"k2","p":{"topic":"ids","message":{"t":"m"}}});
    ws.send(Message::text(p.to_string()))
        .await
        .expect("publish");
    let ack = loop {
        let t = next_text(&mut ws).await;
        if t.contains("publish_ack") {
            break serde_json::from_str::<Value>(&t).expect("JSON");
        }
    };
    assert_eq!(ack["p"]["offset"], first + 1, "{ack}");
    assert_eq!(
        stored(server.data.path(), "ids").len(),
        2,
        "two records for two ids"
    );
    // k3, k4, k5 push k1 and k2 out of a window of 3.
    for key in ["k3", "k4", "k5"] {
        publish(key).await;
    }
    let again = publish("k1").await;
    assert_eq!(again, first + 5, "k1 left the window: stored again");
    assert_eq!(stored(server.data.path(), "ids").len(), 6);
    assert_eq!(server.metric("wse_publish_duplicates_total").await, 3.0);
    // The bare-array form still works and stores each message as sent.
    let raw = r#"[{"t":"m","p":{"z":1,"a":2}}]"#;
    let (status, body) = server.call("POST", "/v1/topics/ids/batch", raw, None).await;
    assert_eq!(status, 200, "{body}");
    let last = stored(server.data.path(), "ids").pop().expect("a record");
    assert_eq!(unstamped(&last.1), r#"{"c":"U","t":"m","p":{"z":1,"a":2}}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replays_from_a_servers_http_api_into_a_websocket() {
    let server = Serve::start(&["--client-publish", "true"]);
    for n in 0..50 {
        let (status, body) = server
            .call("POST", "/v1/topics/a/publish", &original(n), None)
            .await;
        assert_eq!(status, 200, "{body}");
    }
    let (http, ws) = (server.http.clone(), server.ws.clone());
    let http2 = http.clone();
    let out = tokio::task::spawn_blocking(move || {
        replay(&[
            "a",
            "--source-http",
            &http2,
            "--source-token",
            TOKEN,
            "--since",
            "1h",
            "--from",
            "0",
        ])
    })
    .await
    .expect("join");
    assert!(!out.status.success(), "--from and --since conflict");
    let out = tokio::task::spawn_blocking(move || {
        replay(&[
            "a",
            "--source-http",
            &http,
            "--source-token",
            TOKEN,
            "--since",
            "1h",
            "--to",
            "40",
            "--to-ws",
            &ws,
            "--to-topic",
            "b",
            "-q",
        ])
    })
    .await
    .expect("join");
    assert!(out.status.success(), "{}", stderr(&out));
    let copied = server.stored("b");
    assert_eq!(copied.len(), 40);
    for (n, (offset, text)) in copied.iter().enumerate() {
        assert_eq!(*offset, n as u64);
        // Through a client publish the server re-encodes the message:
        // equal as JSON.
        let got: Value = serde_json::from_str(&unstamped(text)).expect("JSON");
        let want: Value = serde_json::from_str(&original(n as u64)).expect("JSON");
        assert_eq!(got, want);
    }
}

#[test]
fn bad_input_fails_clearly() {
    let src = tempfile::tempdir().expect("tempdir");
    let dir = src.path().join("data");
    {
        let log = Log::open(&dir, Default::default()).expect("open");
        // A history whose first stored offset is 100, as after retention.
        log.create_topic_at("late", Epoch(0x1234_5678), 100)
            .expect("create");
        for _ in 0..5 {
            log.append("late", RecordKind::Message, br#"{"t":"m"}"#)
                .expect("append");
        }
        log.close().expect("close");
    }
    let d = path(&dir);
    let fails = |args: &[&str], want: &str| {
        let out = replay(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(want),
            "{args:?}: {:?} lacks {want:?}",
            stderr(&out)
        );
    };
    fails(&["nope", "--data-dir", d], "no topic \"nope\"");
    fails(
        &["late", "--data-dir", d, "--from", "102", "--to", "102"],
        "nothing to replay",
    );
    fails(
        &["late", "--data-dir", d, "--since", "2999-01-01T00:00:00Z"],
        "nothing to replay",
    );
    fails(
        &["late", "--data-dir", d, "--from", "50"],
        "--from 50 is before the oldest stored offset of \"late\" (100)",
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = closed.local_addr().expect("addr").port();
    drop(closed);
    let url = format!("http://127.0.0.1:{port}");
    fails(
        &["late", "--data-dir", d, "--to-http", &url, "--token", "t"],
        "connect to http://127.0.0.1",
    );
    let ws = format!("ws://127.0.0.1:{port}/wse");
    fails(
        &["late", "--data-dir", d, "--to-ws", &ws],
        "connect to ws://127.0.0.1",
    );
    fails(
        &["late", "--data-dir", d, "--to-http", &url],
        "--to-http needs the server's admin token",
    );
    fails(
        &["late", "--data-dir", &format!("{d}-missing")],
        "no such data directory",
    );
    let out = replay(&["late", "--data-dir", d, "--resume"]);
    assert_eq!(out.status.code(), Some(2), "--resume needs --checkpoint");
    // The range that does exist replays.
    let out = replay(&["late", "--data-dir", d, "--from", "101", "-q"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
}
