//! `wse token`, `wse cert` and standalone presence, through the `wse`
//! binary and real sockets: tokens the CLI mints are accepted (or refused)
//! by a running `wse serve` configured with the same key, their topic
//! claims restrict subscriptions, and with `--presence` authenticated
//! subscribers see each other join and leave.

use std::io::{BufRead, BufReader, Read as _, Write as _};
use std::net::TcpStream as StdStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long any expected frame may take.
const EVENT_TIMEOUT: Duration = Duration::from_secs(20);
const SECRET: &str = "a-test-secret-of-32-bytes-or-more";

/// Run `wse args...`: (exit status, stdout, stderr).
fn wse(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wse"))
        .args(args)
        .output()
        .expect("run wse");
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (
        out.status.code().unwrap_or(-1),
        text(out.stdout),
        text(out.stderr),
    )
}

/// A token from `wse token args...` (the whole of its stdout, one line).
fn token(args: &[&str]) -> String {
    let (code, out, err) = wse(&[&["token"], args].concat());
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "the token alone: {out:?}");
    assert_eq!(lines[0].split('.').count(), 3, "a JWT: {out:?}");
    lines[0].to_owned()
}

/// A `wse serve` on free loopback ports, killed when dropped.
struct Serve {
    child: Child,
    ws: String,
    http: String,
    _data: tempfile::TempDir,
}

impl Serve {
    fn start(args: &[&str]) -> Serve {
        let data = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_wse"))
            .args(["serve", "--port", "0", "--http-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(data.path())
            .args(["--http-public-metrics", "--e2e-hello-wait-ms", "0"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start wse serve");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut ws, mut http) = (String::new(), String::new());
        while ws.is_empty() || http.is_empty() {
            let line = lines.next().expect("wse serve stopped").unwrap();
            if let Some(rest) = line.split("listening on ").nth(1) {
                ws = rest.split_whitespace().next().unwrap().to_owned();
            }
            if let Some(rest) = line.strip_prefix("HTTP API on http://") {
                http = rest.split_whitespace().next().unwrap().to_owned();
            }
        }
        // Keep reading stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Serve {
            child,
            ws,
            http,
            _data: data,
        }
    }

    /// A gauge or counter of `GET /metrics`.
    fn metric(&self, name: &str) -> Option<f64> {
        let mut s = StdStream::connect(&self.http).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut text = String::new();
        s.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A client connected with `Authorization: Bearer <token>` (if any).
struct Client {
    ws: Ws,
}

impl Client {
    async fn connect(url: &str, token: Option<&str>) -> Client {
        let mut req = url.into_client_request().unwrap();
        if let Some(t) = token {
            req.headers_mut()
                .insert("Authorization", format!("Bearer {t}").parse().unwrap());
        }
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .expect("connect");
        Client { ws }
    }

    async fn send(&mut self, v: Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    /// The next message (JSON), or the Close frame's code.
    async fn next(&mut self) -> Result<Value, Option<CloseCode>> {
        loop {
            let msg = tokio::time::timeout(EVENT_TIMEOUT, self.ws.next())
                .await
                .expect("a frame in time");
            match msg {
                Some(Ok(Message::Text(t))) => return Ok(serde_json::from_str(&t).unwrap()),
                Some(Ok(Message::Close(c))) => return Err(c.map(|c| c.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Err(None),
            }
        }
    }

    /// The next message of type `t` (skipping others: pings, hellos).
    async fn expect(&mut self, t: &str) -> Value {
        loop {
            match self.next().await {
                Ok(v) if v["t"] == t => return v,
                Ok(_) => continue,
                Err(close) => panic!("closed ({close:?}) while waiting for {t}"),
            }
        }
    }

    /// Subscribe to `topics`; the server's reply.
    async fn subscribe(&mut self, topics: &[&str]) -> Value {
        self.send(json!({"t":"subscription_update","p":{"action":"subscribe","topics":topics}}))
            .await;
        self.expect("subscription_update").await["p"].clone()
    }

    async fn unsubscribe(&mut self, topics: &[&str]) {
        self.send(json!({"t":"subscription_update","p":{"action":"unsubscribe","topics":topics}}))
            .await;
        self.expect("subscription_update").await;
    }

    /// The next presence frame: (kind, user, data).
    async fn presence(&mut self) -> (String, String, Value) {
        loop {
            let v = self.next().await.expect("open");
            let t = v["t"].as_str().unwrap_or_default();
            if t.starts_with("presence_") {
                let p = &v["p"];
                return (
                    t.to_owned(),
                    p["user_id"].as_str().unwrap().to_owned(),
                    p["data"].clone(),
                );
            }
        }
    }
}

fn join(user: &str) -> (String, String, Value) {
    ("presence_join".into(), user.into(), json!({}))
}

fn leave(user: &str) -> (String, String, Value) {
    ("presence_leave".into(), user.into(), json!({}))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minted_hs256_token_is_accepted_and_its_topic_claim_restricts_subscriptions() {
    let server = Serve::start(&["--jwt-secret", SECRET]);
    let alice = token(&[
        "--secret",
        SECRET,
        "--sub",
        "alice",
        "--allow",
        "chat.*",
        "--deny",
        "chat.admin",
    ]);
    let mut c = Client::connect(&server.ws, Some(&alice)).await;
    let ready = c.expect("server_ready").await;
    assert_eq!(ready["p"]["details"]["user_id"], "alice", "{ready}");
    let reply = c.subscribe(&["chat.room", "chat.admin", "news"]).await;
    assert_eq!(reply["success_topics"], json!(["chat.room"]), "{reply}");
    assert_eq!(
        reply["failed_topics"],
        json!(["chat.admin", "news"]),
        "{reply}"
    );

    // Expired (and signed with the right key): one error frame, Close 4401.
    let expired = token(&[
        "--secret",
        SECRET,
        "--sub",
        "alice",
        "--expires-at",
        "2020-01-01T00:00:00Z",
    ]);
    let mut c = Client::connect(&server.ws, Some(&expired)).await;
    let error = c.next().await.expect("an error frame");
    assert_eq!(error["p"]["code"], "AUTH_FAILED", "{error}");
    assert_eq!(c.next().await, Err(Some(CloseCode::from(4401))));

    // Another secret's token: refused the same way.
    let other = token(&["--secret", &"z".repeat(32), "--sub", "alice"]);
    let mut c = Client::connect(&server.ws, Some(&other)).await;
    assert_eq!(c.next().await.unwrap()["p"]["code"], "AUTH_FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_minted_es256_token_meets_the_issuer_audience_and_key_id_the_server_requires() {
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let (private, public) = (
        dir.path().join("jwt.key.pem"),
        dir.path().join("jwt.pub.pem"),
    );
    std::fs::write(&private, pair.serialize_pem()).unwrap();
    std::fs::write(&public, pair.public_key_pem()).unwrap();
    let server = Serve::start(&[
        "--jwt-algorithm",
        "ES256",
        "--jwt-secret-file",
        arg(&public),
        "--jwt-issuer",
        "https://auth.example",
        "--jwt-audience",
        "wse",
        "--jwt-key-id",
        "k1",
    ]);
    let rules = [
        "--iss",
        "https://auth.example",
        "--aud",
        "wse",
        "--kid",
        "k1",
    ];
    let good = token(&[&["--key", arg(&private), "--sub", "bob"], &rules[..]].concat());
    let mut c = Client::connect(&server.ws, Some(&good)).await;
    assert_eq!(
        c.expect("server_ready").await["p"]["details"]["user_id"],
        "bob"
    );
    // Without the audience the server requires: refused.
    let no_aud = token(&[
        "--key",
        arg(&private),
        "--sub",
        "bob",
        "--iss",
        "https://auth.example",
        "--kid",
        "k1",
    ]);
    let mut c = Client::connect(&server.ws, Some(&no_aud)).await;
    assert_eq!(c.next().await.unwrap()["p"]["code"], "AUTH_FAILED");
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authenticated_subscribers_see_each_other_join_and_leave() {
    let server = Serve::start(&[
        "--jwt-secret",
        SECRET,
        "--presence",
        "--presence-tick-ms",
        "20",
    ]);
    let mint = |sub: &str| token(&["--secret", SECRET, "--sub", sub]);
    let mut alice = Client::connect(&server.ws, Some(&mint("alice"))).await;
    alice.subscribe(&["room"]).await;
    assert_eq!(
        alice.presence().await,
        join("alice"),
        "the joining connection is told too"
    );

    let mut bob = Client::connect(&server.ws, Some(&mint("bob"))).await;
    bob.subscribe(&["room"]).await;
    assert_eq!(alice.presence().await, join("bob"));
    assert_eq!(bob.presence().await, join("bob"));
    assert_eq!(server.metric("wse_presence_users"), Some(2.0));

    // A second connection of bob's is no second join; bob leaves when
    // his last connection unsubscribes, and alice is told.
    let mut bob2 = Client::connect(&server.ws, Some(&mint("bob"))).await;
    bob2.subscribe(&["room"]).await;
    bob.unsubscribe(&["room"]).await;
    assert_eq!(
        server.metric("wse_presence_users"),
        Some(2.0),
        "bob2 keeps bob present"
    );
    drop(bob2);
    assert_eq!(alice.presence().await, leave("bob"), "a disconnect leaves");

    // A token whose topic claim excludes the room: not subscribed, not present.
    let carol = token(&["--secret", SECRET, "--sub", "carol", "--allow", "elsewhere"]);
    let mut carol = Client::connect(&server.ws, Some(&carol)).await;
    assert_eq!(
        carol.subscribe(&["room"]).await["failed_topics"],
        json!(["room"])
    );
    assert_eq!(server.metric("wse_presence_users"), Some(1.0));

    // Patterns are subscriptions, not presence.
    let mut dave = Client::connect(&server.ws, Some(&mint("dave"))).await;
    dave.subscribe(&["ro*"]).await;
    assert_eq!(server.metric("wse_presence_users"), Some(1.0));
    dave.subscribe(&["room"]).await;
    assert_eq!(alice.presence().await, join("dave"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_subscribers_are_not_tracked() {
    let server = Serve::start(&["--presence"]);
    let mut anon = Client::connect(&server.ws, None).await;
    assert_eq!(
        anon.subscribe(&["room"]).await["success_topics"],
        json!(["room"])
    );
    assert_eq!(server.metric("wse_presence_users"), Some(0.0));
    // Without --presence nothing is tracked (nor reported).
    let off = Serve::start(&["--jwt-secret", SECRET]);
    let mut c = Client::connect(
        &off.ws,
        Some(&token(&["--secret", SECRET, "--sub", "alice"])),
    )
    .await;
    c.subscribe(&["room"]).await;
    assert_eq!(off.metric("wse_presence_users"), None);
}

#[test]
fn wse_cert_writes_the_files_it_promises_and_keeps_them_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, node) = (dir.path().join("ca"), dir.path().join("node"));
    let (code, out, err) = wse(&[
        "cert",
        "ca",
        "--out-dir",
        arg(&ca),
        "--name",
        "Test CA",
        "--days",
        "30",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("ca.pem") && out.contains("ca.key.pem"),
        "{out}"
    );
    let issue = |extra: &[&str]| {
        let base = [
            "cert",
            "issue",
            "--ca-dir",
            arg(&ca),
            "--out-dir",
            arg(&node),
            "--san",
            "localhost",
            "--san",
            "127.0.0.1",
        ];
        wse(&[&base[..], extra].concat())
    };
    let (code, _, err) = issue(&["--name", "node1", "--days", "2"]);
    assert_eq!(code, 0, "{err}");
    for f in [
        "ca/ca.pem",
        "ca/ca.key.pem",
        "node/cert.pem",
        "node/key.pem",
    ] {
        let text = std::fs::read_to_string(dir.path().join(f)).unwrap();
        assert!(text.starts_with("-----BEGIN "), "{f}");
    }
    let (code, _, err) = issue(&[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("cert.pem exists") && err.contains("--force"),
        "{err}"
    );
    let (code, _, err) = issue(&[
        "--force",
        "--not-before",
        "2020-01-01T00:00:00Z",
        "--days",
        "1",
    ]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = wse(&[
        "cert",
        "issue",
        "--ca-dir",
        arg(&node),
        "--out-dir",
        arg(&node),
        "--san",
        "x",
        "--force",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("ca.pem"), "a missing CA is named: {err}");
}
