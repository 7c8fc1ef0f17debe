//! A small HTTP/1.1 client for the WSE HTTP API, the source
//! (`--source-http`) and the destination (`--to-http`) of a replay.
//!
//! hyper's client connection (the same hyper the server's axum runs on),
//! one keep-alive connection per client, requests one after another. Only
//! `http://`: the API is served plainly (behind a TLS proxy in production,
//! which a replay reaches from inside the network).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::error::ReplayError;

/// Longest wait for a connection to open.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// A client of one server.
pub(crate) struct HttpClient {
    /// The URL as given, for messages.
    url: String,
    /// `host:port`, to connect to and for the `Host` header.
    authority: String,
    /// The path the URL names, without a trailing `/`, put before every
    /// request's path (a server mounted under a prefix by a proxy).
    prefix: String,
    /// `Authorization: Bearer ...`, when a token is given.
    bearer: Option<String>,
    /// The open connection, reused between requests.
    conn: Option<SendRequest<Full<Bytes>>>,
}

impl HttpClient {
    /// A client of the server at `url` (`http://host:port[/prefix]`),
    /// sending `token` as a bearer token. `arg` names the flag, for errors.
    pub(crate) fn new(
        arg: &'static str,
        url: &str,
        token: Option<&str>,
    ) -> Result<Self, ReplayError> {
        let bad = |why: &str| ReplayError::BadUrl {
            arg,
            url: url.to_owned(),
            why: why.to_owned(),
        };
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| bad("only http:// URLs are served by the WSE HTTP API"))?;
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        if authority.is_empty() || authority.contains('@') {
            return Err(bad("expected http://host:port"));
        }
        let authority = if authority.contains(':') && !authority.ends_with(']') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            url: url.trim_end_matches('/').to_owned(),
            authority,
            prefix: path.trim_end_matches('/').to_owned(),
            bearer: token.map(|t| format!("Bearer {t}")),
            conn: None,
        })
    }

    /// The URL as given.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    /// `method path` with `body` (JSON when not empty); the status and the
    /// body of the answer. A connection the server closed while idle is
    /// opened again once; any other failure is [`ReplayError::Unreachable`].
    pub(crate) async fn request(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ReplayError> {
        let reused = self.conn.is_some();
        match self.send(method.clone(), path, body.clone()).await {
            Ok(answer) => Ok(answer),
            // Requests here are safe to send again: reads, and publishes
            // whose ids the destination deduplicates.
            Err(_) if reused => self.send(method, path, body).await,
            Err(e) => Err(e),
        }
    }

    /// [`HttpClient::request`], with a 2xx answer's body parsed as JSON and
    /// any other status as [`ReplayError::Http`].
    pub(crate) async fn json(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<serde_json::Value, ReplayError> {
        let (status, bytes) = self.request(method, path, body).await?;
        if !status.is_success() {
            return Err(ReplayError::Http {
                url: self.url.clone(),
                path: path.to_owned(),
                status: status.as_u16(),
                body: String::from_utf8_lossy(&bytes).into_owned(),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| ReplayError::Protocol {
            url: self.url.clone(),
            why: format!("{path}: not JSON: {e}"),
        })
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        body: Bytes,
    ) -> Result<(StatusCode, Bytes), ReplayError> {
        let unreachable = |why: String| ReplayError::Unreachable {
            what: "talk to",
            url: self.url.clone(),
            why,
        };
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.prefix))
            .header(header::HOST, &self.authority);
        if !body.is_empty() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        if let Some(b) = &self.bearer {
            request = request.header(header::AUTHORIZATION, b);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| unreachable(e.to_string()))?;
        let conn = match self.conn.as_mut() {
            Some(c) if !c.is_closed() => c,
            _ => self.conn.insert(self.connect().await?),
        };
        let result = async {
            conn.ready().await?;
            let answer = conn.send_request(request).await?;
            let status = answer.status();
            let body = answer.into_body().collect().await?.to_bytes();
            Ok::<_, hyper::Error>((status, body))
        }
        .await;
        result.map_err(|e| {
            self.conn = None;
            unreachable(e.to_string())
        })
    }

    /// Open a connection; its driver runs as a task of its own.
    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, ReplayError> {
        let unreachable = |why: String| ReplayError::Unreachable {
            what: "connect to",
            url: self.url.clone(),
            why,
        };
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.authority))
            .await
            .map_err(|_| unreachable("timed out".into()))?
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(async move {
            // Ends when the server or `send` closes the connection; a
            // request in flight sees the error itself.
            let _ = conn.await;
        });
        Ok(send)
    }
}

/// `segment` as one path segment: everything but unreserved characters
/// percent-encoded (topic names may hold `/`, spaces, `?`, anything).
pub(crate) fn path_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_segments() {
        let c = HttpClient::new("--to-http", "http://127.0.0.1:5008/", None).unwrap();
        assert_eq!(
            (c.authority.as_str(), c.prefix.as_str()),
            ("127.0.0.1:5008", "")
        );
        let c = HttpClient::new("--to-http", "http://wse.internal/api", None).unwrap();
        assert_eq!(
            (c.authority.as_str(), c.prefix.as_str()),
            ("wse.internal:80", "/api")
        );
        assert!(HttpClient::new("--to-http", "https://x:1", None).is_err());
        assert!(HttpClient::new("--to-http", "http:///v1", None).is_err());
        assert_eq!(path_segment("chat/room 1é"), "chat%2Froom%201%C3%A9");
    }
}
