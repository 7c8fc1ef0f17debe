//! The HTTP upgrade: reading the client's request, answering 101 (or 400).
//!
//! Only what the server needs is kept from the request: the path and the
//! query (`format=msgpack`), the `Cookie` and `Authorization` headers (the
//! JWT sources) and the key. Any bytes the client sent after the request
//! stay in the buffer for the frame parser.

use base64::Engine as _;
use bytes::{Buf, BytesMut};
use tokio::io::AsyncReadExt;

/// Most headers accepted in one upgrade request.
const MAX_HEADERS: usize = 64;

/// What the server keeps of an upgrade request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UpgradeRequest {
    /// The request path without the query.
    pub path: String,
    /// The raw query string (after `?`), possibly empty.
    pub query: String,
    /// The raw `Cookie` header.
    pub cookie: Option<String>,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    /// `Sec-WebSocket-Key`.
    pub key: String,
    /// Every `Sec-WebSocket-Extensions` header, joined by commas (the
    /// client's extension offers, in its order of preference).
    pub extensions: Option<String>,
}

impl UpgradeRequest {
    /// Upstream's rule: the raw query contains `format=msgpack`.
    pub fn wants_msgpack(&self) -> bool {
        self.query.contains("format=msgpack")
    }
}

/// Why an upgrade failed.
#[derive(Debug, thiserror::Error)]
pub enum HandshakeError {
    /// The socket failed or closed.
    #[error("socket error during the upgrade: {0}")]
    Io(#[from] std::io::Error),
    /// The client closed before sending a whole request.
    #[error("connection closed before the upgrade request was complete")]
    Closed,
    /// The request is larger than the limit.
    #[error("upgrade request larger than {0} bytes")]
    TooLarge(usize),
    /// Not a valid HTTP request.
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
    /// A valid HTTP request that is not a WebSocket upgrade.
    #[error("not a WebSocket upgrade: {0}")]
    NotWebSocket(&'static str),
}

/// Read and parse the upgrade request from `stream` into `buf` (at most
/// `max_bytes`). On success the request's bytes are consumed from `buf`.
pub async fn read_request<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    max_bytes: usize,
) -> Result<UpgradeRequest, HandshakeError> {
    loop {
        if let Some(req) = parse_request(buf)? {
            return Ok(req);
        }
        if buf.len() >= max_bytes {
            return Err(HandshakeError::TooLarge(max_bytes));
        }
        buf.reserve(1024.min(max_bytes - buf.len()).max(256));
        if stream.read_buf(buf).await? == 0 {
            return Err(HandshakeError::Closed);
        }
    }
}

/// Parse a complete request at the start of `buf`, consuming it (`None`:
/// more bytes are needed). Public for the fuzz targets.
pub fn parse_request(buf: &mut BytesMut) -> Result<Option<UpgradeRequest>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
    };
    if req.method != Some("GET") {
        return Err(HandshakeError::NotWebSocket("method is not GET"));
    }
    // RFC 6455 §4.2.1: an HTTP/1.1 (or later) GET with a Host.
    if req.version != Some(1) {
        return Err(HandshakeError::NotWebSocket("not HTTP/1.1"));
    }
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::to_owned)
    };
    let has_token = |name: &str, token: &str| {
        header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", "websocket") {
        return Err(HandshakeError::NotWebSocket("no Upgrade: websocket"));
    }
    if !has_token("connection", "upgrade") {
        return Err(HandshakeError::NotWebSocket("no Connection: upgrade"));
    }
    if header("sec-websocket-version").as_deref().map(str::trim) != Some("13") {
        return Err(HandshakeError::NotWebSocket(
            "Sec-WebSocket-Version is not 13",
        ));
    }
    if header("host").is_none_or(|h| h.trim().is_empty()) {
        return Err(HandshakeError::NotWebSocket("no Host"));
    }
    let key = header("sec-websocket-key")
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .ok_or(HandshakeError::NotWebSocket("no Sec-WebSocket-Key"))?;
    // The key is a base64-encoded 16-byte nonce.
    if base64::engine::general_purpose::STANDARD
        .decode(&key)
        .map_or(true, |nonce| nonce.len() != 16)
    {
        return Err(HandshakeError::NotWebSocket(
            "Sec-WebSocket-Key is not 16 bytes in base64",
        ));
    }
    let target = req.path.unwrap_or("/");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let out = UpgradeRequest {
        path: path.to_owned(),
        query: query.to_owned(),
        cookie: header("cookie"),
        authorization: header("authorization"),
        key,
        extensions: {
            let offers: Vec<&str> = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("sec-websocket-extensions"))
                .filter_map(|h| std::str::from_utf8(h.value).ok())
                .collect();
            (!offers.is_empty()).then(|| offers.join(", "))
        },
    };
    buf.advance(len);
    Ok(Some(out))
}

/// The 101 response accepting the upgrade (no subprotocol), with the
/// `Sec-WebSocket-Extensions` value agreed, if any.
pub fn accept_response(key: &str, extensions: Option<&str>) -> Vec<u8> {
    let extensions = extensions
        .map(|e| format!("Sec-WebSocket-Extensions: {e}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {}\r\n{extensions}\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    )
    .into_bytes()
}

/// A 400 response for a request that is not a valid upgrade.
pub fn bad_request(why: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{why}",
        why.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &str = "GET /wse?client_version=2&format=msgpack HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: keep-alive, Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nCookie: a=1; access_token=tok\r\nAuthorization: Bearer tok\r\n\r\n";

    #[tokio::test]
    async fn parses_an_upgrade_and_keeps_trailing_bytes() {
        let mut input = REQ.as_bytes().to_vec();
        input.extend_from_slice(b"\x81\x80rest");
        let mut stream = &input[..];
        let mut buf = BytesMut::new();
        let req = read_request(&mut stream, &mut buf, 8192).await.unwrap();
        assert_eq!(req.path, "/wse");
        assert!(req.wants_msgpack());
        assert_eq!(req.cookie.as_deref(), Some("a=1; access_token=tok"));
        assert_eq!(req.authorization.as_deref(), Some("Bearer tok"));
        assert_eq!(&buf[..], b"\x81\x80rest");
        let resp = String::from_utf8(accept_response(&req.key, None)).unwrap();
        // RFC 6455's example key and accept value.
        assert!(resp.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    }

    #[tokio::test]
    async fn refuses_what_is_not_an_upgrade() {
        for (req, bad) in [
            ("POST / HTTP/1.1\r\n\r\n", "GET"),
            ("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "Upgrade"),
            (
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: x\r\n\r\n",
                "13",
            ),
            ("\x16\x03\x01 not http\r\n\r\n", "malformed"),
            // RFC 6455 §4.2.1, to the letter.
            (
                "GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                "HTTP/1.1",
            ),
            (
                "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                "Host",
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: c2hvcnQ=\r\n\r\n",
                "16 bytes",
            ),
            (
                "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: not base64!\r\n\r\n",
                "16 bytes",
            ),
        ] {
            let mut stream = req.as_bytes();
            let err = read_request(&mut stream, &mut BytesMut::new(), 8192)
                .await
                .unwrap_err();
            assert!(err.to_string().contains(bad), "{err}");
        }
        let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(10_000));
        let mut stream = huge.as_bytes();
        assert!(matches!(
            read_request(&mut stream, &mut BytesMut::new(), 8192).await,
            Err(HandshakeError::TooLarge(8192))
        ));
        let mut stream = &b"GET / HTTP/1.1\r\n"[..];
        assert!(matches!(
            read_request(&mut stream, &mut BytesMut::new(), 8192).await,
            Err(HandshakeError::Closed)
        ));
    }
}
