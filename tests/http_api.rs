//! The HTTP API through real sockets: probes open, everything else behind
//! the admin token; acknowledged publishes that subscribers receive;
//! records and topics; presence; retention; deleting a topic's history
//! (WebSocket clients that follow, recover or fail to recover across it);
//! connections; per-address rate limits; and the errors of bad input, each
//! as `{"error": {"code", "message"}}` with its status.

mod support;

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::{Value, json};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wse::http::AdminToken;
use wse::{AppEvent, Server, ServerConfig};

const TOKEN: &str = "s3cret-admin-token";

/// A running server with its HTTP API: (server, WebSocket address, HTTP
/// address, data directory).
fn start(
    token: Option<&str>,
    config: ServerConfig,
) -> (Arc<Server>, SocketAddr, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(
        Server::new(ServerConfig {
            host: "127.0.0.1".into(),
            port: 0,
            data_dir: Some(dir.path().join("data")),
            http_listen: Some("127.0.0.1:0".parse().unwrap()),
            admin_token: token.and_then(AdminToken::new),
            ..config
        })
        .unwrap(),
    );
    let ws = server.start().unwrap();
    let http = wse::http::start(&server)
        .unwrap()
        .expect("http_listen is set");
    (server, ws, http, dir)
}

/// One HTTP/1.1 request (`Connection: close`): the status and the body.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let (status, _, body) = request_with_head(addr, method, path, token, body).await;
    (status, body)
}

/// `request`, with the response's head (status line and headers) too.
async fn request_with_head(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await.unwrap();
    // A refused body may be answered before it is all sent.
    let _ = s.write_all(body).await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out))
        .await
        .expect("a response");
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

/// `request` with the admin token, the body parsed as JSON.
async fn call(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let (status, body) = request(addr, method, path, Some(TOKEN), body).await;
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

/// The stable code of an error body.
fn code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_are_open_and_everything_else_needs_the_admin_token() {
    let (_server, _, http, _dir) = start(Some(TOKEN), standalone());
    let (status, body) = request(http, "GET", "/health", None, b"").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ok"}"#));
    let (status, body) = request(http, "GET", "/ready", None, b"").await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"ready"}"#));
    for (method, path) in [
        ("GET", "/metrics"),
        ("GET", "/v1/topics"),
        ("POST", "/v1/topics/news/publish"),
        ("GET", "/v1/connections"),
    ] {
        for token in [None, Some("wrong"), Some("s3cret-admin-toke")] {
            let (status, body) = request(http, method, path, token, b"{}").await;
            assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
            assert_eq!(code(&body), "UNAUTHORIZED");
        }
    }
    let (status, body) = request(http, "GET", "/metrics", Some(TOKEN), b"").await;
    assert_eq!(status, 200);
    assert!(
        body.contains("# TYPE wse_connections_accepted_total counter"),
        "{body}"
    );
    let (status, body) = request(http, "GET", "/no/such/thing", Some(TOKEN), b"").await;
    assert_eq!((status, code(&body).as_str()), (404, "NOT_FOUND"));
    let (status, body) = request(http, "DELETE", "/v1/connections", Some(TOKEN), b"").await;
    assert_eq!((status, code(&body).as_str()), (405, "METHOD_NOT_ALLOWED"));
    let (status, body) = request(http, "GET", "/openapi.json", None, b"").await;
    assert_eq!(status, 200);
    let doc: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");

    // Without an admin token nothing can authorize: 403 says what to set.
    let (_server, _, http, _dir) = start(None, standalone());
    let (status, body) = request(http, "GET", "/v1/topics", Some(TOKEN), b"").await;
    assert_eq!((status, code(&body).as_str()), (403, "ADMIN_TOKEN_NOT_SET"));
    assert!(body.contains("--admin-token"), "{body}");
    assert_eq!(request(http, "GET", "/health", None, b"").await.0, 200);
    // Metrics can be opened to scrapers.
    let (_server, _, http, _dir) = start(
        None,
        ServerConfig {
            http_public_metrics: true,
            ..standalone()
        },
    );
    assert_eq!(request(http, "GET", "/metrics", None, b"").await.0, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_is_answered_once_acknowledged_and_subscribers_receive_it() {
    let (server, ws, http, _dir) = start(Some(TOKEN), standalone());
    let mut client = Client::connect(&format!("ws://{ws}/wse"), &[]).await;
    let reply = client.subscribe(&["news"], None).await;
    assert_eq!(reply["p"]["success"], true, "{reply}");

    let (status, body) = call(
        http,
        "POST",
        "/v1/topics/news/publish",
        br#"{"t":"headline","p":{"n":1}}"#,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["topic"], "news");
    assert_eq!(body["position"]["offset"], 0);
    let epoch = body["position"]["epoch"].as_str().unwrap().to_owned();
    // Acknowledged means durable and visible: the log has it already.
    let at = server.position("news").unwrap().unwrap();
    assert_eq!((at.epoch.to_string(), at.next_offset), (epoch.clone(), 1));
    let got = client.expect_type("headline").await;
    assert_eq!(
        (got["p"]["n"].clone(), got["o"].clone()),
        (json!(1), json!(0))
    );

    // A batch: in order, all acknowledged, one position each.
    let batch = json!([{"t": "headline", "p": {"n": 2}}, {"t": "headline", "p": {"n": 3}}]);
    let (status, body) = call(
        http,
        "POST",
        "/v1/topics/news/batch",
        batch.to_string().as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let offsets: Vec<u64> = body["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["offset"].as_u64().unwrap())
        .collect();
    assert_eq!(offsets, [1, 2]);
    for n in [2, 3] {
        assert_eq!(client.expect_type("headline").await["p"]["n"], n);
    }

    // Records and topics show what was published.
    let (status, body) = call(http, "GET", "/v1/topics/news/records?from=1&limit=5", b"").await;
    assert_eq!(status, 200, "{body}");
    let records = body["records"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["offset"], 1);
    assert_eq!(
        records[0]["data"]["p"]["n"], 2,
        "JSON payloads shown as JSON"
    );
    assert_eq!(body["next_offset"], 3);
    let (status, body) = call(http, "GET", "/v1/topics", b"").await;
    assert_eq!(status, 200);
    let news = body["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "news")
        .cloned()
        .unwrap_or_else(|| panic!("no news in {body}"));
    assert_eq!(
        (news["epoch"].as_str(), news["next_offset"].as_u64()),
        (Some(epoch.as_str()), Some(3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_refused_with_its_code_and_nothing_is_published() {
    let (server, _, http, _dir) = start(
        Some(TOKEN),
        ServerConfig {
            max_message_size: 1024,
            ..standalone()
        },
    );
    for (path, body, status, want) in [
        (
            "/v1/topics/news/publish",
            &b"not json"[..],
            422,
            "INVALID_MESSAGE",
        ),
        ("/v1/topics/news/publish", b"[1,2]", 422, "INVALID_MESSAGE"),
        ("/v1/topics/news/publish", b"", 422, "INVALID_MESSAGE"),
        ("/v1/topics/news.*/publish", b"{}", 422, "INVALID_MESSAGE"),
        (
            "/v1/topics/news/batch",
            br#"[{"t":"a"}, 7]"#,
            422,
            "INVALID_MESSAGE",
        ),
        (
            "/v1/topics/news/batch",
            br#"{"t":"a"}"#,
            422,
            "INVALID_MESSAGE",
        ),
    ] {
        let (got, text) = request(http, "POST", path, Some(TOKEN), body).await;
        assert_eq!(
            (got, code(&text).as_str()),
            (status, want),
            "{path} {body:?}: {text}"
        );
    }
    let big = format!(r#"{{"t":"a","p":"{}"}}"#, "x".repeat(2000));
    let (got, text) = request(
        http,
        "POST",
        "/v1/topics/news/publish",
        Some(TOKEN),
        big.as_bytes(),
    )
    .await;
    assert_eq!((got, code(&text).as_str()), (413, "MESSAGE_TOO_LARGE"));
    let long_topic = format!("/v1/topics/{}/publish", "t".repeat(300));
    let (got, _) = request(http, "POST", &long_topic, Some(TOKEN), b"{}").await;
    assert_eq!(got, 422);
    // Nothing of it reached the log.
    assert_eq!(server.position("news").unwrap(), None);
    let (got, text) = request(http, "GET", "/v1/topics/never/records", Some(TOKEN), b"").await;
    assert_eq!((got, code(&text).as_str()), (404, "NOT_FOUND"));
    let (got, text) = request(
        http,
        "GET",
        "/v1/topics/never/records?from=abc",
        Some(TOKEN),
        b"",
    )
    .await;
    assert_eq!((got, code(&text).as_str()), (400, "BAD_REQUEST"));
    // Found by schemathesis: a limit over the documented maximum was
    // clamped instead of refused, and a `from` past the end was a 500.
    server.publish("news", r#"{"t":"a"}"#).unwrap();
    let (got, text) = request(
        http,
        "GET",
        "/v1/topics/news/records?limit=1001",
        Some(TOKEN),
        b"",
    )
    .await;
    assert_eq!((got, code(&text).as_str()), (400, "BAD_REQUEST"));
    let (got, text) = request(
        http,
        "GET",
        "/v1/topics/news/records?from=14979188427",
        Some(TOKEN),
        b"",
    )
    .await;
    assert_eq!(got, 200, "{text}");
    let page: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (
            page["records"].as_array().map(Vec::len),
            page["next_offset"].as_u64()
        ),
        (Some(0), Some(1))
    );
    // A path that is not UTF-8 once decoded.
    let (got, text) = request(http, "POST", "/v1/topics/%FF/publish", Some(TOKEN), b"{}").await;
    assert_eq!((got, code(&text).as_str()), (400, "BAD_REQUEST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_listed_and_one_can_be_closed() {
    let (_server, ws, http, _dir) = start(Some(TOKEN), standalone());
    let mut client = Client::connect(&format!("ws://{ws}/wse"), &[]).await;
    client.expect_type("server_ready").await;
    let (status, body) = call(http, "GET", "/v1/connections", b"").await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(1)));
    let id = body["connections"][0].as_str().unwrap().to_owned();
    let (status, body) = call(
        http,
        "POST",
        &format!("/v1/connections/{id}/disconnect"),
        b"",
    )
    .await;
    assert_eq!(
        (status, body["disconnected"].as_str()),
        (200, Some(id.as_str()))
    );
    // Closed as the app's `disconnect` closes: a Close without status.
    assert_eq!(client.close_frame().await, Some(None));
    let (status, body) = call(
        http,
        "POST",
        &format!("/v1/connections/{id}/disconnect"),
        b"",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("NOT_FOUND"))
    );
}

/// Publish `{"t":"headline","p":{"n":n}}` on `topic` over HTTP: the
/// acknowledged (epoch, offset).
async fn publish_n(http: SocketAddr, topic: &str, n: i64) -> (String, u64) {
    let body = json!({"t": "headline", "p": {"n": n}}).to_string();
    let (status, reply) = call(
        http,
        "POST",
        &format!("/v1/topics/{topic}/publish"),
        body.as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{reply}");
    let p = &reply["position"];
    (
        p["epoch"].as_str().unwrap().to_owned(),
        p["offset"].as_u64().unwrap(),
    )
}

/// The stamp and number of a received headline: (epoch, offset, n).
fn stamp(m: &Value) -> (String, u64, i64) {
    (
        m["e"]
            .as_str()
            .unwrap_or_else(|| panic!("no epoch in {m}"))
            .to_owned(),
        m["o"].as_u64().unwrap(),
        m["p"]["n"].as_i64().unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_topic_starts_a_new_epoch_and_no_client_gets_the_deleted_records() {
    let (_server, ws, http, _dir) = start(Some(TOKEN), standalone());
    let url = format!("ws://{ws}/wse");
    let mut live = Client::connect(&url, &[]).await;
    assert_eq!(live.subscribe(&["news"], None).await["p"]["success"], true);
    for n in 0..5 {
        publish_n(http, "news", n).await;
    }
    let mut old = String::new();
    for n in 0..5 {
        let (e, o, got) = stamp(&live.expect_type("headline").await);
        assert_eq!((o, got), (n as u64, n));
        old = e;
    }

    // Refused: no token, a pattern, a topic without history.
    let (status, body) = request(http, "DELETE", "/v1/topics/news", None, b"").await;
    assert_eq!((status, code(&body).as_str()), (401, "UNAUTHORIZED"));
    let (status, body) = request(http, "DELETE", "/v1/topics/news.*", Some(TOKEN), b"").await;
    assert_eq!((status, code(&body).as_str()), (422, "INVALID_MESSAGE"));
    let (status, body) = request(http, "DELETE", "/v1/topics/never", Some(TOKEN), b"").await;
    assert_eq!((status, code(&body).as_str()), (404, "NOT_FOUND"));

    let (status, body) = call(http, "DELETE", "/v1/topics/news", b"").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["deleted"].as_bool(), body["epoch"].as_str()),
        (Some(true), Some(old.as_str()))
    );
    // Gone: no records, not listed, and a second deletion finds nothing.
    let (status, _) = call(http, "GET", "/v1/topics/news/records", b"").await;
    assert_eq!(status, 404);
    let (_, list) = call(http, "GET", "/v1/topics", b"").await;
    assert!(
        !list["topics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "news"),
        "{list}"
    );
    assert_eq!(call(http, "DELETE", "/v1/topics/news", b"").await.0, 404);

    // The next publishes start a new history at offset 0 ...
    let mut new = String::new();
    for n in 100..103 {
        let (e, o) = publish_n(http, "news", n).await;
        assert_eq!(o, (n - 100) as u64);
        assert_ne!(e, old, "a new epoch");
        new = e;
    }
    // ... which the live subscriber receives from its first message: its
    // cursor (5, in the deleted history) does not hide offsets 0..5 of the
    // new one, as a ring that kept the deleted records' head would.
    for n in 100..103 {
        let got = stamp(&live.expect_type("headline").await);
        assert_eq!(got, (new.clone(), (n - 100) as u64, n));
    }

    // Recovering from the deleted history: not recovered, told the new
    // epoch and its newest offset, and nothing of the old history sent.
    let mut stale = Client::connect(&url, &[]).await;
    let reply = stale
        .subscribe(
            &["news"],
            Some(json!({"news": {"epoch": old, "offset": 1}})),
        )
        .await;
    let r = &reply["p"]["recovery"]["news"];
    assert_eq!(
        (
            r["recovered"].as_bool(),
            r["epoch"].as_str(),
            r["offset"].as_u64()
        ),
        (Some(false), Some(new.as_str()), Some(2)),
        "{reply}"
    );
    let headlines = |c: &mut Client| -> Vec<Value> {
        c.take_backlog()
            .into_iter()
            .filter(|m| m["t"] == "headline")
            .collect()
    };
    assert_eq!(
        headlines(&mut stale),
        Vec::<Value>::new(),
        "nothing replayed"
    );

    // Recovering in the new history replays exactly its missed records,
    // from the new history (a ring still holding offsets 1..5 of the
    // deleted one would send those).
    let mut fresh = Client::connect(&url, &[]).await;
    let reply = fresh
        .subscribe(
            &["news"],
            Some(json!({"news": {"epoch": new, "offset": 0}})),
        )
        .await;
    let r = &reply["p"]["recovery"]["news"];
    assert_eq!(
        (r["recovered"].as_bool(), r["count"].as_u64()),
        (Some(true), Some(2)),
        "{reply}"
    );
    let replayed: Vec<_> = headlines(&mut fresh).iter().map(stamp).collect();
    assert_eq!(
        replayed,
        [(new.clone(), 1, 101), (new.clone(), 2, 102)],
        "only the new history"
    );

    // And everyone follows the new history live.
    publish_n(http, "news", 103).await;
    for c in [&mut live, &mut stale, &mut fresh] {
        assert_eq!(
            stamp(&c.expect_type("headline").await),
            (new.clone(), 3, 103)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deletion_racing_publishes_never_mixes_histories_for_a_live_subscriber() {
    let (server, ws, http, _dir) = start(Some(TOKEN), standalone());
    let mut live = Client::connect(&format!("ws://{ws}/wse"), &[]).await;
    assert_eq!(live.subscribe(&["race"], None).await["p"]["success"], true);
    // Publishes without pause until 100 after the deletion returned.
    let deleted = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let publisher = {
        let (server, deleted) = (server.clone(), deleted.clone());
        std::thread::spawn(move || {
            let mut after = 0;
            for n in 0.. {
                // A publish in flight while its history is deleted may be
                // refused (its topic is gone): it is then never delivered.
                let _ =
                    server.publish("race", &json!({"t": "headline", "p": {"n": n}}).to_string());
                if deleted.load(std::sync::atomic::Ordering::Acquire) {
                    after += 1;
                    if after == 100 {
                        break;
                    }
                }
            }
        })
    };
    // Delete while the publisher runs, once the subscriber got a few.
    let mut got = Vec::new();
    while got.len() < 20 {
        got.push(stamp(&live.expect_type("headline").await));
    }
    let (status, body) = call(http, "DELETE", "/v1/topics/race", b"").await;
    assert_eq!(status, 200, "{body}");
    let first_epoch = body["epoch"].as_str().unwrap().to_owned();
    deleted.store(true, std::sync::atomic::Ordering::Release);
    tokio::task::spawn_blocking(move || publisher.join().unwrap())
        .await
        .unwrap();
    let end = server
        .position("race")
        .unwrap()
        .expect("published after the deletion");
    let last_epoch = end.epoch.to_string();
    assert_ne!(last_epoch, first_epoch);
    // Read until the newest record of the new history arrives.
    let newest = Some((last_epoch.as_str(), end.next_offset - 1));
    while got.last().map(|(e, o, _)| (e.as_str(), *o)) != newest {
        got.push(stamp(&live.expect_type("headline").await));
    }
    // The old history, then the new one from offset 0, each in order, with
    // no offset twice or missing in the new one and nothing after it.
    let split = got.iter().position(|(e, _, _)| *e == last_epoch).unwrap();
    let (before, after) = got.split_at(split);
    assert!(before.iter().all(|(e, _, _)| *e == first_epoch), "{got:?}");
    assert!(
        before.windows(2).all(|w| w[1].1 == w[0].1 + 1),
        "{before:?}"
    );
    let offsets: Vec<u64> = after.iter().map(|(_, o, _)| *o).collect();
    assert_eq!(
        offsets,
        (0..end.next_offset).collect::<Vec<_>>(),
        "{after:?}"
    );
    assert!(
        after.windows(2).all(|w| w[1].2 > w[0].2),
        "in publish order"
    );
    assert!(
        after.iter().all(|(e, _, _)| *e == last_epoch),
        "no record of the deleted history after the new one began: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_is_validated_set_applied_listed_and_cleared() {
    let (server, _, http, _dir) = start(
        Some(TOKEN),
        ServerConfig {
            log: wse_log::LogConfig {
                // A segment per dozen records, so retention has some to drop.
                segment_max_bytes: 1024,
                durability: wse_log::Durability::Never,
                ..Default::default()
            },
            ..standalone()
        },
    );
    for n in 0..60 {
        publish_n(http, "news", n).await;
    }
    let path = "/v1/topics/news/retention";
    for (body, status, want) in [
        (&b"not json"[..], 422, "INVALID_RETENTION"),
        (b"[]", 422, "INVALID_RETENTION"),
        (br#"{"max_records": 0}"#, 422, "INVALID_RETENTION"),
        (br#"{"max_records": -5}"#, 422, "INVALID_RETENTION"),
        (br#"{"max_bytes": "1k"}"#, 422, "INVALID_RETENTION"),
        (br#"{"max_age": 60}"#, 422, "INVALID_RETENTION"),
        (
            br#"{"clear": true, "max_records": 3}"#,
            422,
            "INVALID_RETENTION",
        ),
        (
            br#"{"max_age_seconds": 99999999999}"#,
            422,
            "INVALID_RETENTION",
        ),
    ] {
        let (got, text) = request(http, "PUT", path, Some(TOKEN), body).await;
        assert_eq!(
            (got, code(&text).as_str()),
            (status, want),
            "{}: {text}",
            String::from_utf8_lossy(body)
        );
        assert!(text.contains("message"), "{text}");
    }
    let big = format!(r#"{{"max_records": 5, "pad": "{}"}}"#, "x".repeat(5000));
    let (got, text) = request(http, "PUT", path, Some(TOKEN), big.as_bytes()).await;
    assert_eq!((got, code(&text).as_str()), (413, "MESSAGE_TOO_LARGE"));
    let (got, text) = request(http, "PUT", path, None, br#"{"max_records": 5}"#).await;
    assert_eq!((got, code(&text).as_str()), (401, "UNAUTHORIZED"));
    let (got, text) = request(
        http,
        "PUT",
        "/v1/topics/never/retention",
        Some(TOKEN),
        br#"{"max_records": 5}"#,
    )
    .await;
    assert_eq!((got, code(&text).as_str()), (404, "NOT_FOUND"));
    // Nothing refused touched the topic.
    assert_eq!(server.position("news").unwrap().unwrap().first_offset, 0);

    // Set: answered with what is in force, and applied at once.
    let (status, body) = call(http, "PUT", path, br#"{"max_records": 5}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["retention"],
        json!({"max_bytes": null, "max_age_seconds": null, "max_records": 5})
    );
    let at = server.position("news").unwrap().unwrap();
    assert!(
        at.first_offset > 0 && at.next_offset - at.first_offset >= 5,
        "old segments dropped, at least 5 records kept: {at:?}"
    );
    let (_, list) = call(http, "GET", "/v1/topics", b"").await;
    let news = list["topics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "news")
        .cloned()
        .unwrap();
    assert_eq!(news["retention"]["max_records"], 5, "{news}");
    assert_eq!(news["first_offset"], at.first_offset);

    // Cleared: the server's default applies again.
    let (status, body) = call(http, "PUT", path, br#"{"clear": true}"#).await;
    assert_eq!(status, 200, "{body}");
    let default = wse_log::Retention::default();
    assert_eq!(
        body["retention"],
        json!({"max_bytes": default.max_bytes,
            "max_age_seconds": default.max_age.map(|a| a.as_secs()),
            "max_records": default.max_records})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_lists_who_is_in_a_topic_and_says_when_presence_is_off() {
    let (server, ws, http, _dir) = start(
        Some(TOKEN),
        ServerConfig {
            presence_enabled: true,
            jwt: support::jwt::hs256_config().jwt,
            ..ServerConfig::default()
        },
    );
    let mut events = Events::new(&server);
    let mut clients = Vec::new();
    for (user, data) in [
        ("alice", json!({"status": "online"})),
        ("alice", json!({"status": "online"})),
        ("bob", json!({"status": "away"})),
    ] {
        let token = support::jwt::hs256(user);
        let mut c = Client::connect(
            &format!("ws://{ws}/wse"),
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .await;
        c.expect_type("server_ready").await;
        let conn = loop {
            // Presence events of the joins before may come first.
            if let AppEvent::AuthConnect { conn, .. } = events.next().await {
                break conn.to_string();
            }
        };
        server
            .subscribe_with_presence(&conn, &["room".into()], None, Some(&data))
            .unwrap();
        clients.push((c, conn));
    }
    let (status, body) = call(http, "GET", "/v1/topics/room/presence", b"").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        json!({"topic": "room", "users": 2, "connections": 3, "members": {
            "alice": {"connections": 2, "data": {"status": "online"}},
            "bob": {"connections": 1, "data": {"status": "away"}}}})
    );
    // Bob's socket closes: he leaves (the app hears it), and the API shows it.
    let (bob, bob_id) = clients.pop().unwrap();
    drop(bob);
    loop {
        match events.next().await {
            AppEvent::Disconnect { conn } if conn.to_string() == bob_id => break,
            _ => {}
        }
    }
    let (_, body) = call(http, "GET", "/v1/topics/room/presence", b"").await;
    assert_eq!(
        (body["users"].as_u64(), body["connections"].as_u64()),
        (Some(1), Some(2))
    );
    assert!(body["members"].get("bob").is_none(), "{body}");
    // A topic nobody joined has no members; bad input is refused.
    let (_, body) = call(http, "GET", "/v1/topics/empty/presence", b"").await;
    assert_eq!(body["members"], json!({}));
    let (status, text) = request(http, "GET", "/v1/topics/room/presence", None, b"").await;
    assert_eq!((status, code(&text).as_str()), (401, "UNAUTHORIZED"));
    let (status, text) = request(http, "GET", "/v1/topics/ro*/presence", Some(TOKEN), b"").await;
    assert_eq!((status, code(&text).as_str()), (422, "INVALID_MESSAGE"));

    // Without presence: a clear refusal, not an empty list.
    let (_server, _, http, _dir) = start(Some(TOKEN), standalone());
    let (status, text) = request(http, "GET", "/v1/topics/room/presence", Some(TOKEN), b"").await;
    assert_eq!(
        (status, code(&text).as_str()),
        (409, "PRESENCE_DISABLED"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_admin_token_are_rate_limited_per_address() {
    let (_server, _, http, _dir) = start(
        Some(TOKEN),
        ServerConfig {
            http_rate_limit: 2.0,
            http_rate_burst: 3.0,
            ..standalone()
        },
    );
    // The burst: three requests, whatever they are (a wrong token counts).
    assert_eq!(request(http, "GET", "/health", None, b"").await.0, 200);
    assert_eq!(
        request(http, "GET", "/v1/topics", Some("guess"), b"")
            .await
            .0,
        401
    );
    assert_eq!(request(http, "GET", "/ready", None, b"").await.0, 200);
    // Then 429, with when to come back.
    let (status, head, body) =
        request_with_head(http, "GET", "/v1/topics", Some("guess2"), b"").await;
    assert_eq!(
        (status, code(&body).as_str()),
        (429, "RATE_LIMITED"),
        "{body}"
    );
    let retry: u64 = head
        .lines()
        .find_map(|l| l.strip_prefix("retry-after: "))
        .unwrap_or_else(|| panic!("no Retry-After in {head}"))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(retry, 1, "half a second, rounded up");
    assert_eq!(request(http, "GET", "/health", None, b"").await.0, 429);
    // The admin token is never limited.
    for _ in 0..10 {
        assert_eq!(call(http, "GET", "/v1/topics", b"").await.0, 200);
    }
    // Once the bucket refilled as Retry-After said, requests pass again.
    tokio::time::sleep(std::time::Duration::from_secs(retry)).await;
    assert_eq!(request(http, "GET", "/health", None, b"").await.0, 200);

    // 0 is unlimited.
    let (_server, _, http, _dir) = start(
        Some(TOKEN),
        ServerConfig {
            http_rate_limit: 0.0,
            http_rate_burst: 1.0,
            ..standalone()
        },
    );
    for _ in 0..20 {
        assert_eq!(request(http, "GET", "/health", None, b"").await.0, 200);
    }
}
