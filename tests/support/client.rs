//! More of the tokio-tungstenite [`Client`]: connections that may fail,
//! exact frames (text or binary, not parsed) and Close details.

use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use super::{Client, WAIT};

/// What a connection attempt came to.
pub type ConnectResult = Result<Client, tokio_tungstenite::tungstenite::Error>;

impl Client {
    /// Connect to `url` with extra headers; the error when the handshake
    /// fails (panics only on timeout).
    pub async fn try_connect(url: &str, headers: &[(&str, &str)]) -> ConnectResult {
        let mut req = url.into_client_request().unwrap();
        for (k, v) in headers {
            req.headers_mut().insert(
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        let r = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(req))
            .await
            .expect("connect timed out");
        r.map(|(ws, _)| Self::from_ws(ws))
    }

    /// The next text or binary message, skipping WebSocket Ping/Pong and
    /// the server's `ping` heartbeats; panics when the connection ends.
    pub async fn next_data(&mut self) -> Message {
        loop {
            match self.next().await {
                Some(Message::Text(t)) if t.starts_with(r#"{"c":"WSE","t":"ping""#) => {}
                Some(m @ (Message::Text(_) | Message::Binary(_))) => return m,
                Some(Message::Ping(_) | Message::Pong(_)) => {}
                other => panic!("expected a data message, got {other:?}"),
            }
        }
    }

    /// The next data message, which must be a text frame.
    pub async fn next_text(&mut self) -> String {
        match self.next_data().await {
            Message::Text(t) => t.to_string(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// The next data message, which must be a binary frame.
    pub async fn next_binary(&mut self) -> Vec<u8> {
        match self.next_data().await {
            Message::Binary(b) => b.to_vec(),
            other => panic!("expected a binary frame, got {other:?}"),
        }
    }

    /// The next data message, which must be a JSON text frame.
    pub async fn next_text_json(&mut self) -> Value {
        let t = self.next_text().await;
        serde_json::from_str(&t).unwrap_or_else(|e| panic!("not JSON ({e}): {t}"))
    }

    /// The Close that ends the connection, skipping anything before it:
    /// `Some(None)` for a Close without status, `Some(Some((code,
    /// reason)))` otherwise; `None` when the connection ended without one.
    pub async fn close_frame(&mut self) -> Option<Option<(u16, String)>> {
        loop {
            match self.next().await {
                Some(Message::Close(f)) => {
                    return Some(f.map(|f| (u16::from(f.code), f.reason.to_string())));
                }
                Some(_) => continue,
                None => return None,
            }
        }
    }

    /// True when nothing but the end of the stream follows.
    pub async fn ended(&mut self) -> bool {
        self.next().await.is_none()
    }
}
