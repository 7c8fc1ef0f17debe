//! Test support: a server on a free loopback port with its own data
//! directory, and a real WebSocket client (tokio-tungstenite).

#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wse::{Server, ServerConfig};

/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(10);

/// A started server and its data directory.
pub struct TestServer {
    pub server: Server,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    /// A server with `config` on 127.0.0.1, a free port and a fresh data dir.
    pub fn start(mut config: ServerConfig) -> Self {
        let dir = tempfile::tempdir().unwrap();
        config.host = "127.0.0.1".into();
        config.port = 0;
        config.data_dir = Some(dir.path().join("data"));
        let server = Server::new(config).unwrap();
        let addr = server.start().unwrap();
        Self { server, addr, dir }
    }

    /// The URL of the WebSocket endpoint.
    pub fn url(&self, query: &str) -> String {
        format!("ws://{}/wse{query}", self.addr)
    }

    /// A connected client.
    pub async fn client(&self) -> Client {
        Client::connect(&self.url(""), &[]).await
    }
}

/// A started server on a free loopback port whose log does its file
/// operations through `storage` (the seam where tests inject faults), with
/// its data in a fresh temporary directory.
pub fn start_on_storage(
    storage: &wse_log::FaultyStorage,
    config: ServerConfig,
) -> (Server, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        data_dir: Some(dir.path().join("data")),
        ..config
    })
    .unwrap()
    .with_log_storage(std::sync::Arc::new(storage.clone()));
    let addr = server.start().unwrap();
    (server, addr, dir)
}

/// A standalone-style config: recovery, core subscriptions, `server_ready`
/// without auth, events discarded.
pub fn standalone() -> ServerConfig {
    ServerConfig {
        log: wse_log::LogConfig {
            durability: wse_log::Durability::Never,
            ..Default::default()
        },
        ..ServerConfig::standalone()
    }
}

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A WebSocket client that reads frames with a deadline. Messages skipped
/// while looking for a given type are kept and returned by later reads.
pub struct Client {
    pub ws: Ws,
    backlog: std::collections::VecDeque<Value>,
}

impl Client {
    /// Connect to `url` with extra request headers.
    pub async fn connect(url: &str, headers: &[(&str, &str)]) -> Self {
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let (ws, _) = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect timed out")
            .expect("connect failed");
        Self::from_ws(ws)
    }

    /// A client over an established WebSocket.
    pub fn from_ws(ws: Ws) -> Self {
        Self {
            ws,
            backlog: Default::default(),
        }
    }

    /// The next message (any kind), or None when the connection ended.
    pub async fn next(&mut self) -> Option<Message> {
        match tokio::time::timeout(WAIT, self.ws.next()).await {
            Ok(Some(Ok(m))) => Some(m),
            Ok(Some(Err(_))) | Ok(None) => None,
            Err(_) => panic!("no message within {WAIT:?}"),
        }
    }

    /// Messages passed over by `expect_type`, oldest first (emptied).
    pub fn take_backlog(&mut self) -> Vec<Value> {
        self.backlog.drain(..).collect()
    }

    /// The next text message parsed as JSON (skipping server pings).
    pub async fn next_json(&mut self) -> Value {
        if let Some(v) = self.backlog.pop_front() {
            return v;
        }
        loop {
            match self.next().await {
                Some(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["t"] == "ping" {
                        continue;
                    }
                    return v;
                }
                Some(Message::Binary(b)) => {
                    return serde_json::from_slice(&b).unwrap_or(Value::Null);
                }
                Some(Message::Ping(_)) | Some(Message::Pong(_)) => continue,
                other => panic!("expected a JSON message, got {other:?}"),
            }
        }
    }

    /// Read until a JSON message with `"t" == t` arrives; the messages
    /// passed over stay for later reads.
    pub async fn expect_type(&mut self, t: &str) -> Value {
        if let Some(i) = self.backlog.iter().position(|v| v["t"] == t) {
            return self.backlog.remove(i).expect("index is valid");
        }
        let mut skipped = Vec::new();
        loop {
            let v = self.next_json().await;
            if v["t"] == t {
                self.backlog.extend(skipped);
                return v;
            }
            skipped.push(v);
        }
    }

    /// Send a plain `client_hello` (no encryption) and wait for the
    /// `server_hello`, as both `wse-client` packages do on connecting; the
    /// server holds topic data until then (`e2e_hello_wait`).
    pub async fn hello(&mut self) -> Value {
        self.send_json(&serde_json::json!({"c": "WSE", "t": "client_hello", "p": {
            "client_version": "2.5.1", "protocol_version": 1,
            "features": {"compression": true, "encryption": false}}, "v": 1}))
            .await;
        self.expect_type("server_hello").await
    }

    /// Send a text message.
    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.ws.send(Message::text(text.into())).await.unwrap();
    }

    /// Send JSON.
    pub async fn send_json(&mut self, v: &Value) {
        self.send_text(v.to_string()).await;
    }

    /// The close frame's code (None when the connection ended without one).
    pub async fn close_code(&mut self) -> Option<u16> {
        loop {
            match self.next().await {
                Some(Message::Close(f)) => return f.map(|f| u16::from(f.code)),
                Some(_) => continue,
                None => return None,
            }
        }
    }

    /// Subscribe with the core's `subscription_update` (standalone mode),
    /// optionally recovering, and return the reply.
    pub async fn subscribe(&mut self, topics: &[&str], recovery: Option<Value>) -> Value {
        let mut p = serde_json::json!({"action": "subscribe", "topics": topics});
        if let Some(r) = recovery {
            p["recover"] = Value::Bool(true);
            p["recovery"] = r;
        }
        self.send_json(&serde_json::json!({"c": "WSE", "t": "subscription_update", "p": p}))
            .await;
        self.expect_type("subscription_update").await
    }
}

// ---- more helpers (raw sockets, app events, JWT, exact frames) ----------

pub mod client;
pub mod e2e;
pub mod events;
pub mod http;
pub mod jwt;
pub mod raw;

#[allow(unused_imports)]
pub use events::{Events, event_conn, wait_until};
#[allow(unused_imports)]
pub use raw::{RawFrame, RawWs, op};

/// Raise this process's open-file soft limit to at least `want` (up to the
/// hard limit), for tests that open thousands of sockets.
pub fn raise_open_files(want: u64) {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let now = getrlimit(Resource::Nofile);
    let current = now.current.unwrap_or(u64::MAX);
    if current >= want {
        return;
    }
    let target = now.maximum.map_or(want, |max| want.min(max));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: now.maximum,
        },
    )
    .expect("raise RLIMIT_NOFILE");
    assert!(
        target >= want,
        "the hard open-file limit {target} is below {want}"
    );
}
