//! The HTTP API through real sockets: probes open, everything else behind
//! the admin token; acknowledged publishes that subscribers receive;
//! records and topics; connections; per-address rate limits; and the
//! errors of bad input, each as `{"error": {"code", "message"}}` with its
//! status. What concerns a topic's history (deletion, retention, presence)
//! is in `http_topics.rs`.

mod support;

use serde_json::{Value, json};
use support::http::{TOKEN, call, code, request, request_with_head, start};
use support::*;
use wse::ServerConfig;

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
