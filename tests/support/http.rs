//! The HTTP API from the tests: a server with its API listening, and raw
//! HTTP/1.1 requests over a real socket (the tests see exactly the bytes a
//! client gets, status line and headers included).

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wse::http::AdminToken;
use wse::{Server, ServerConfig};

use super::WAIT;

pub const TOKEN: &str = "s3cret-admin-token";

/// A running server with its HTTP API: (server, WebSocket address, HTTP
/// address, data directory).
pub fn start(
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
pub async fn request(
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
pub async fn request_with_head(
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
pub async fn call(addr: SocketAddr, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let (status, body) = request(addr, method, path, Some(TOKEN), body).await;
    let value = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, value)
}

/// The stable code of an error body.
pub fn code(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {body:?}"));
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}
