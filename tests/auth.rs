//! JWT at the handshake, through real sockets (CLIENT_PROTOCOL.md §2,
//! §3.1): token sources, algorithms, `iss`/`aud`, `kid` and key rotation,
//! every refusal (one error frame, Close 4401, no app event), and the
//! `wse_topics` ACL claim.

mod support;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use support::jwt::{self, OTHER_SECRET, SECRET, claims, cookie, fixture, hs256, now_secs, sign};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use wse::auth::{JwtAlgorithm, JwtOptions};

/// Connect with `headers` and expect a refusal: exactly one text frame
/// (the error, returned), then Close 4401 "Authentication failed", then
/// the end of the connection.
async fn refused(ts: &TestServer, headers: &[(&str, &str)]) -> Value {
    let mut c = Client::try_connect(&ts.url(""), headers)
        .await
        .expect("auth happens after the upgrade: the handshake succeeds");
    let err = match c.next().await {
        Some(Message::Text(t)) => {
            assert!(t.starts_with('{'), "{t}");
            serde_json::from_str::<Value>(&t).unwrap()
        }
        other => panic!("expected the error text frame, got {other:?}"),
    };
    assert_eq!(err["c"], "WSE");
    assert_eq!(err["t"], "error");
    assert_eq!(err["v"], 1);
    let stamp = err["p"]["timestamp"].as_str().expect("timestamp");
    assert!(stamp.ends_with('Z') && stamp.len() == 24, "{stamp}");
    match c.next().await {
        Some(Message::Close(Some(f))) => {
            assert_eq!(u16::from(f.code), 4401);
            assert_eq!(f.reason.as_str(), "Authentication failed");
        }
        other => panic!("expected Close 4401 right after the error, got {other:?}"),
    }
    assert!(c.ended().await, "nothing follows the Close");
    err
}

/// Expect `AUTH_FAILED` / `Authentication failed`.
async fn auth_failed(ts: &TestServer, headers: &[(&str, &str)]) {
    let err = refused(ts, headers).await;
    assert_eq!(err["p"]["code"], "AUTH_FAILED", "{headers:?}");
    assert_eq!(err["p"]["message"], "Authentication failed");
}

/// Connect with `headers` and expect acceptance as `user`: `server_ready`
/// is the first frame, then the app hears `AuthConnect`.
async fn accepted(
    ts: &TestServer,
    events: &mut Events<'_>,
    headers: &[(&str, &str)],
    user: &str,
) -> (Client, String) {
    let mut c = Client::connect(&ts.url(""), headers).await;
    let ready = match c.next().await {
        Some(Message::Text(t)) => serde_json::from_str::<Value>(&t).unwrap(),
        other => panic!("expected server_ready first, got {other:?}"),
    };
    assert_eq!(ready["t"], "server_ready", "{ready}");
    assert_eq!(ready["p"]["details"]["user_id"], user);
    let (conn, user_id) = events.auth_connect().await;
    assert_eq!(user_id, user);
    assert_eq!(ready["p"]["details"]["connection_id"], conn.as_str());
    (c, conn)
}

/// The next app event is `user`'s AuthConnect: nothing came from the
/// refused connections before it.
async fn no_event_from_refusals(
    ts: &TestServer,
    events: &mut Events<'_>,
    token: &str,
    user: &str,
) -> (Client, String) {
    assert_eq!(ts.server.connection_count(), 0);
    let cookie = cookie(token);
    let accepted = accepted(ts, events, &[("Cookie", &cookie)], user).await;
    assert_eq!(ts.server.connection_count(), 1);
    accepted
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_token_gets_server_ready_first_then_auth_connect() {
    let ts = TestServer::start(jwt::hs256_config());
    let mut events = Events::new(&ts.server);
    let token = hs256("alice");
    let mut c = Client::connect(&ts.url(""), &[("Cookie", &cookie(&token))]).await;
    let raw = c.next_text().await;
    let ready: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(ready["c"], "WSE");
    assert_eq!(ready["t"], "server_ready");
    assert_eq!(ready["seq"], 1);
    assert_eq!(ready["v"], 1);
    let id = uuid::Uuid::parse_str(ready["id"].as_str().unwrap()).unwrap();
    assert_eq!(id.get_version_num(), 7);
    let d = &ready["p"]["details"];
    assert_eq!(d["user_id"], "alice");
    assert_eq!(d["version"], 1);
    assert_eq!(d["features"]["recovery"], false);
    assert_eq!(d["features"]["encryption"], false);
    assert_eq!(d["features"]["rust_jwt"], true);
    assert_eq!(ready["ts"], d["server_time"]);
    assert_eq!(
        ready["p"]["message"],
        "Connection established (Rust transport)"
    );
    let (conn, user) = events.auth_connect().await;
    assert_eq!(user, "alice");
    assert_eq!(d["connection_id"], conn.as_str());
    assert_eq!(ts.server.connections().unwrap(), vec![conn]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_comes_from_the_cookie_or_the_bearer_header_and_the_cookie_wins() {
    let ts = TestServer::start(jwt::hs256_config());
    let mut events = Events::new(&ts.server);
    let (alice, bob) = (hs256("alice"), hs256("bob"));

    let mut keep = Vec::new();
    let with_other_cookies = format!("theme=dark; access_token={alice}; x=1");
    keep.push(
        accepted(
            &ts,
            &mut events,
            &[("Cookie", &with_other_cookies)],
            "alice",
        )
        .await,
    );
    keep.push(accepted(&ts, &mut events, &[("Authorization", &bearer(&bob))], "bob").await);
    let lower = format!("bearer {bob}");
    keep.push(accepted(&ts, &mut events, &[("Authorization", &lower)], "bob").await);
    // Both: the cookie wins, even when the bearer token is the good one.
    let both = [("Cookie", cookie(&alice)), ("Authorization", bearer(&bob))];
    let both: Vec<(&str, &str)> = both.iter().map(|(k, v)| (*k, v.as_str())).collect();
    keep.push(accepted(&ts, &mut events, &both, "alice").await);
    let bad_cookie = cookie("not.a.token");
    auth_failed(
        &ts,
        &[("Cookie", &bad_cookie), ("Authorization", &bearer(&bob))],
    )
    .await;
    // Unusable cookie values are skipped, then the header is used.
    let skipped = "access_token=; access_token=undefined; access_token=null";
    keep.push(
        accepted(
            &ts,
            &mut events,
            &[("Cookie", skipped), ("Authorization", &bearer(&bob))],
            "bob",
        )
        .await,
    );
    // No query-string token.
    let mut c = Client::connect(
        &ts.url(&format!("?access_token={alice}&token={alice}")),
        &[],
    )
    .await;
    let err = c.next_text_json().await;
    assert_eq!(err["p"]["code"], "AUTH_REQUIRED");
    assert_eq!(
        c.close_frame().await,
        Some(Some((4401, "Authentication failed".into())))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_cookie_name_is_the_only_cookie_read() {
    let ts = TestServer::start(jwt::config(JwtOptions {
        cookie_name: Some("wse_jwt".into()),
        ..JwtOptions::new(SECRET)
    }));
    let mut events = Events::new(&ts.server);
    let token = hs256("carol");
    let custom = format!("access_token=junk; wse_jwt={token}");
    let _first = accepted(&ts, &mut events, &[("Cookie", &custom)], "carol").await;
    let err = refused(&ts, &[("Cookie", &cookie(&token))]).await;
    assert_eq!(err["p"]["code"], "AUTH_REQUIRED");
    let _second = no_event_from_refusals_after(&ts, &mut events, &custom, "carol").await;
}

/// Like [`no_event_from_refusals`] with a full Cookie header, when one
/// accepted connection is already open.
async fn no_event_from_refusals_after(
    ts: &TestServer,
    events: &mut Events<'_>,
    cookie_header: &str,
    user: &str,
) -> (Client, String) {
    let before = ts.server.connection_count();
    let accepted = accepted(ts, events, &[("Cookie", cookie_header)], user).await;
    assert_eq!(ts.server.connection_count(), before + 1);
    accepted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rs256_and_es256_verify_with_the_public_key_only() {
    for (alg, jalg, private_a, public_a, private_b) in [
        (
            JwtAlgorithm::RS256,
            Algorithm::RS256,
            "rsa_a_private.pem",
            "rsa_a_public.pem",
            "rsa_b_private.pem",
        ),
        (
            JwtAlgorithm::ES256,
            Algorithm::ES256,
            "ec_a_private.pem",
            "ec_a_public.pem",
            "ec_b_private.pem",
        ),
    ] {
        let public = fixture(public_a);
        let ts = TestServer::start(jwt::config(JwtOptions {
            algorithm: Some(alg),
            ..JwtOptions::new(public.clone())
        }));
        let mut events = Events::new(&ts.server);
        let good = sign(jalg, &fixture(private_a), &claims("dave"), None);
        let other_key = sign(jalg, &fixture(private_b), &claims("dave"), None);
        // Algorithm confusion: HS256 keyed with the public PEM.
        let confused = sign(Algorithm::HS256, &public, &claims("dave"), None);
        let hs = hs256("dave");
        for bad in [&other_key, &confused, &hs] {
            auth_failed(&ts, &[("Cookie", &cookie(bad))]).await;
        }
        let _kept = no_event_from_refusals(&ts, &mut events, &good, "dave").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issuer_and_audience_are_checked_when_configured() {
    let ts = TestServer::start(jwt::config(JwtOptions {
        issuer: Some("https://auth.example".into()),
        audience: Some("wse-clients".into()),
        ..JwtOptions::new(SECRET)
    }));
    let mut events = Events::new(&ts.server);
    let exp = now_secs() + 3600;
    let token = |c: Value| sign(Algorithm::HS256, SECRET, &c, None);
    for bad in [
        json!({"sub": "eve", "exp": exp, "iss": "https://evil.example", "aud": "wse-clients"}),
        json!({"sub": "eve", "exp": exp, "iss": "https://auth.example", "aud": "someone-else"}),
        json!({"sub": "eve", "exp": exp, "iss": "https://auth.example", "aud": ["a", "b"]}),
        json!({"sub": "eve", "exp": exp, "iss": ["x"], "aud": "wse-clients"}),
    ] {
        auth_failed(&ts, &[("Cookie", &cookie(&token(bad)))]).await;
    }
    let single = token(
        json!({"sub": "eve", "exp": exp, "iss": "https://auth.example", "aud": "wse-clients"}),
    );
    let _kept = no_event_from_refusals(&ts, &mut events, &single, "eve").await;
    let mut keep = Vec::new();
    let array = token(
        json!({"sub": "frank", "exp": exp, "iss": "https://auth.example", "aud": ["x", "wse-clients"]}),
    );
    keep.push(accepted(&ts, &mut events, &[("Cookie", &cookie(&array))], "frank").await);
    // Unlike upstream, a configured iss/aud must be present: a token that
    // leaves it out is refused like a wrong one.
    let no_iss = token(json!({"sub": "gus", "exp": exp, "aud": "wse-clients"}));
    auth_failed(&ts, &[("Cookie", &cookie(&no_iss))]).await;
    let no_aud = token(json!({"sub": "hal", "exp": exp, "iss": "https://auth.example"}));
    auth_failed(&ts, &[("Cookie", &cookie(&no_aud))]).await;

    // Without iss/aud configured, tokens carrying any iss/aud pass.
    let open = TestServer::start(jwt::hs256_config());
    let mut open_events = Events::new(&open.server);
    let any = token(json!({"sub": "gina", "exp": exp, "iss": "whoever", "aud": "whatever"}));
    accepted(
        &open,
        &mut open_events,
        &[("Cookie", &cookie(&any))],
        "gina",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kid_and_previous_key_rotation() {
    let ts = TestServer::start(jwt::config(JwtOptions {
        key_id: Some("key-2".into()),
        previous_secret: Some(OTHER_SECRET.to_vec()),
        ..JwtOptions::new(SECRET)
    }));
    let mut events = Events::new(&ts.server);
    let c = claims("henry");
    let third = b"a-third-secret-nobody-configured-0123456789";
    for bad in [
        // The current key needs its kid...
        sign(Algorithm::HS256, SECRET, &c, None),
        sign(Algorithm::HS256, SECRET, &c, Some("key-1")),
        // ...and an unknown key fails with any kid.
        sign(Algorithm::HS256, third, &c, Some("key-2")),
        sign(Algorithm::HS256, third, &c, None),
    ] {
        auth_failed(&ts, &[("Cookie", &cookie(&bad))]).await;
    }
    let current = sign(Algorithm::HS256, SECRET, &c, Some("key-2"));
    let _kept = no_event_from_refusals(&ts, &mut events, &current, "henry").await;
    // The previous key is accepted whatever the kid (none is checked on the retry).
    let mut keep = Vec::new();
    for kid in [None, Some("key-1"), Some("key-2")] {
        let old = sign(Algorithm::HS256, OTHER_SECRET, &claims("ivy"), kid);
        keep.push(accepted(&ts, &mut events, &[("Cookie", &cookie(&old))], "ivy").await);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_get_one_error_frame_then_close_4401_and_no_app_event() {
    let ts = TestServer::start(wse::ServerConfig {
        // Room for the over-long token: with the default 8 KiB request
        // limit it would be refused before the upgrade (see the report).
        max_handshake_bytes: 64 * 1024,
        ..jwt::hs256_config()
    });
    let mut events = Events::new(&ts.server);
    let now = now_secs();
    let hs = |c: Value| sign(Algorithm::HS256, SECRET, &c, None);
    let failed = [
        (
            "expired beyond the leeway",
            hs(json!({"sub": "x", "exp": now - 120})),
        ),
        ("no exp", hs(json!({"sub": "x"}))),
        (
            "nbf in the future",
            hs(json!({"sub": "x", "exp": now + 3600, "nbf": now + 600})),
        ),
        ("alg none", jwt::unsigned(&claims("x"))),
        (
            "alg none, no dot",
            jwt::unsigned(&claims("x")).trim_end_matches('.').to_owned(),
        ),
        (
            "wrong key",
            sign(Algorithm::HS256, OTHER_SECRET, &claims("x"), None),
        ),
        ("garbage", "abc.def.ghi".to_owned()),
        ("not a JWT", "hello".to_owned()),
        (
            "too large",
            hs(json!({"sub": "x", "exp": now + 3600, "pad": "p".repeat(9000)})),
        ),
    ];
    let mut refusals = 0;
    for (why, token) in &failed {
        let err = refused(&ts, &[("Cookie", &cookie(token))]).await;
        assert_eq!(err["p"]["code"], "AUTH_FAILED", "{why}");
        assert_eq!(err["p"]["message"], "Authentication failed", "{why}");
        // The same through the bearer header.
        let err = refused(&ts, &[("Authorization", &bearer(token))]).await;
        assert_eq!(err["p"]["code"], "AUTH_FAILED", "{why} (bearer)");
        refusals += 2;
    }
    for missing_sub in [
        json!({"exp": now + 3600}),
        json!({"sub": "", "exp": now + 3600}),
        json!({"sub": 42, "exp": now + 3600}),
    ] {
        let err = refused(&ts, &[("Cookie", &cookie(&hs(missing_sub)))]).await;
        assert_eq!(err["p"]["code"], "AUTH_FAILED");
        assert_eq!(err["p"]["message"], "Token missing user ID");
        refusals += 1;
    }
    for headers in [
        vec![],
        vec![("Cookie", "theme=dark")],
        vec![("Authorization", "Basic dXNlcjpwYXNz")],
    ] {
        let err = refused(&ts, &headers).await;
        assert_eq!(err["p"]["code"], "AUTH_REQUIRED");
        assert_eq!(err["p"]["message"], "No JWT cookie or Authorization header");
        refusals += 1;
    }
    // Within the 30 s leeway an expired token is still good.
    let lenient = hs(json!({"sub": "late", "exp": now - 10}));
    let _kept = no_event_from_refusals(&ts, &mut events, &lenient, "late").await;
    let metrics = ts.server.prometheus_metrics();
    assert!(
        metrics.contains(&format!("\nwse_auth_failures_total {refusals}\n")),
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_wse_topics_claim_restricts_subscriptions() {
    let ts = TestServer::start(jwt::hs256_config());
    let mut events = Events::new(&ts.server);
    let token = sign(
        Algorithm::HS256,
        SECRET,
        &json!({"sub": "jill", "exp": now_secs() + 3600,
                "wse_topics": {"allow": ["chat.*", "news"], "deny": ["chat.secret"]}}),
        None,
    );
    let (mut c, conn) = accepted(&ts, &mut events, &[("Cookie", &cookie(&token))], "jill").await;
    let topics: Vec<String> = ["chat.room", "chat.secret", "news", "sports", "news.x"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    ts.server.subscribe(&conn, &topics, None).unwrap();
    for (topic, n) in [
        ("chat.room", 1),
        ("chat.secret", 0),
        ("news", 1),
        ("sports", 0),
        ("news.x", 0),
    ] {
        assert_eq!(ts.server.subscriber_count(topic), n, "{topic}");
    }
    // A token without the claim may use any topic.
    let (_free, free_conn) = accepted(
        &ts,
        &mut events,
        &[("Cookie", &cookie(&hs256("kim")))],
        "kim",
    )
    .await;
    ts.server.subscribe(&free_conn, &topics, None).unwrap();
    assert_eq!(ts.server.subscriber_count("sports"), 1);
    assert_eq!(ts.server.subscriber_count("chat.secret"), 1);
    // The allowed subscription delivers.
    ts.server
        .broadcast_local("chat.room", r#"{"t":"hello"}"#)
        .unwrap();
    assert_eq!(c.next_text().await, r#"{"c":"U","t":"hello"}"#);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_cookie_header_does_not_break_the_handshake() {
    let ts = TestServer::start(jwt::hs256_config());
    let mut events = Events::new(&ts.server);
    let big = format!(
        "analytics={}; access_token={}",
        "a".repeat(9000),
        hs256("lee")
    );
    let mut c = Client::try_connect(&ts.url(""), &[("Cookie", &big)])
        .await
        .expect("the upgrade succeeds");
    assert_eq!(c.next_text_json().await["t"], "server_ready");
    assert_eq!(events.auth_connect().await.1, "lee");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_close_on_token_expiry_a_connection_is_closed_when_its_token_expires() {
    let ts = TestServer::start(wse::ServerConfig {
        close_on_token_expiry: true,
        ..jwt::hs256_config()
    });
    let mut events = Events::new(&ts.server);
    let soon = sign(
        Algorithm::HS256,
        SECRET,
        &json!({"sub": "brief", "exp": now_secs() + 2}),
        None,
    );
    let later = hs256("lasting");
    let (mut brief, _) = accepted(&ts, &mut events, &[("Cookie", &cookie(&soon))], "brief").await;
    let (mut lasting, lasting_id) =
        accepted(&ts, &mut events, &[("Cookie", &cookie(&later))], "lasting").await;
    assert_eq!(
        brief.close_frame().await,
        Some(Some((4401, "Token expired".into())))
    );
    assert_eq!(ts.server.health().tokens_expired, 1);
    // A token that has not expired keeps its connection.
    ts.server.send(&lasting_id, "still here").unwrap();
    loop {
        if lasting.next_text().await == "still here" {
            break;
        }
    }
}
