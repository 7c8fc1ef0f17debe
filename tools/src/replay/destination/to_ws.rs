//! `--to-ws ws://host:port/path [--ws-token JWT]`: records as client
//! `publish` messages with an `id` on one WebSocket connection
//! (docs/PROTOCOL.md, "Client publish"; the server must run with
//! `client_publish`). The server answers each with a `publish_ack` once the
//! record is durable, in the order of the publishes, or an `error` frame
//! naming the id. The `id` is also the publish id the server deduplicates
//! by, so a record sent again after a crash is stored once.
//!
//! The server parses a client's message and stores it re-encoded (members
//! in its own order), so text replayed this way is equal as JSON, not byte
//! for byte; the HTTP destination stores the exact text.

use std::collections::VecDeque;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::{Acked, Batch};
use crate::error::CliError;
use crate::replay::error::ReplayError;

/// A `client_hello` without encryption, as the wse-client packages send.
const HELLO: &str = r#"{"c":"WSE","t":"client_hello","p":{"client_version":"wse-replay","protocol_version":1,"features":{"encryption":false}},"v":1}"#;
/// The answer to the server's JSON heartbeat.
const PONG: &str = r#"{"c":"WSE","t":"PONG","p":{},"v":1}"#;

/// A batch whose publishes are sent and not all acknowledged.
struct InFlight {
    /// What acknowledging it tells.
    acked: Acked,
    /// Ids still waiting for their ack, in order, with source offsets.
    ids: VecDeque<(String, u64)>,
}

/// A WebSocket connection as the destination.
pub(crate) struct ToWs {
    /// The URL, for messages.
    url: String,
    /// The connection.
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The destination topic.
    topic: String,
    /// Batches sent and not acknowledged, oldest first.
    in_flight: VecDeque<InFlight>,
    /// How many of them may be.
    max_in_flight: usize,
}

impl ToWs {
    /// Connect to `url` (with `token` as `Authorization: Bearer`), wait for
    /// `server_ready` and say hello.
    pub(crate) async fn connect(
        url: &str,
        token: Option<&str>,
        topic: &str,
        max_in_flight: usize,
    ) -> Result<Self, CliError> {
        let bad = |why: String| ReplayError::BadUrl {
            arg: "--to-ws",
            url: url.to_owned(),
            why,
        };
        if !url.starts_with("ws://") {
            return Err(bad(
                "only ws:// URLs (use the server's plain port, or its HTTP API)".into(),
            )
            .into());
        }
        let mut request = url.into_client_request().map_err(|e| bad(e.to_string()))?;
        if let Some(t) = token {
            let value = HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| bad("the token is not a valid header value".into()))?;
            request.headers_mut().insert("authorization", value);
        }
        let (ws, _) = tokio_tungstenite::connect_async(request)
            .await
            .map_err(|e| ReplayError::Unreachable {
                what: "connect to",
                url: url.to_owned(),
                why: e.to_string(),
            })?;
        let mut me = Self {
            url: url.to_owned(),
            ws,
            topic: topic.to_owned(),
            in_flight: VecDeque::new(),
            max_in_flight: max_in_flight.max(1),
        };
        loop {
            let v = me.next_message().await?;
            match v["t"].as_str() {
                Some("server_ready") => break,
                Some("error") => return Err(me.server_error(&v, 0).into()),
                _ => {}
            }
        }
        me.send(HELLO.to_owned()).await?;
        Ok(me)
    }

    /// Send `batch`'s publishes, after waiting for room.
    pub(crate) async fn submit(
        &mut self,
        batch: Batch,
        acked: &mut Vec<Acked>,
    ) -> Result<(), CliError> {
        while self.in_flight.len() >= self.max_in_flight {
            self.settle_oldest(acked).await?;
        }
        let mut ids = VecDeque::with_capacity(batch.items.len());
        for item in &batch.items {
            let id = serde_json::to_string(&item.id).unwrap_or_default();
            let topic = serde_json::to_string(&self.topic).unwrap_or_default();
            let frame = format!(
                r#"{{"t":"publish","id":{id},"p":{{"topic":{topic},"message":{}}}}}"#,
                item.text
            );
            self.ws
                .feed(Message::text(frame))
                .await
                .map_err(|e| self.broken(&e))?;
            ids.push_back((item.id.clone(), item.offset));
        }
        self.ws.flush().await.map_err(|e| self.broken(&e))?;
        self.in_flight.push_back(InFlight {
            acked: batch.acked(),
            ids,
        });
        // Batches with nothing to send are acknowledged in their turn.
        while self.in_flight.front().is_some_and(|b| b.ids.is_empty()) {
            self.settle_oldest(acked).await?;
        }
        Ok(())
    }

    /// Wait for every ack.
    pub(crate) async fn finish(&mut self, acked: &mut Vec<Acked>) -> Result<(), CliError> {
        while !self.in_flight.is_empty() {
            self.settle_oldest(acked).await?;
        }
        let _ = self.ws.close(None).await;
        Ok(())
    }

    /// Read acks until the oldest batch is acknowledged.
    async fn settle_oldest(&mut self, acked: &mut Vec<Acked>) -> Result<(), CliError> {
        loop {
            let Some(oldest) = self.in_flight.front_mut() else {
                return Ok(());
            };
            let Some((want, offset)) = oldest.ids.front().cloned() else {
                acked.push(oldest.acked);
                self.in_flight.pop_front();
                return Ok(());
            };
            let v = self.next_message().await?;
            match v["t"].as_str() {
                Some("publish_ack") if v["p"]["id"].as_str() == Some(want.as_str()) => {
                    if let Some(b) = self.in_flight.front_mut() {
                        b.ids.pop_front();
                    }
                }
                Some("publish_ack") => {
                    return Err(ReplayError::Protocol {
                        url: self.url.clone(),
                        why: format!("an ack for {} while waiting for {want}", v["p"]["id"]),
                    }
                    .into());
                }
                Some("error") => return Err(self.server_error(&v, offset).into()),
                _ => {}
            }
        }
    }

    /// The next JSON text message, answering heartbeats on the way.
    async fn next_message(&mut self) -> Result<Value, CliError> {
        loop {
            let frame = self
                .ws
                .next()
                .await
                .ok_or_else(|| ReplayError::Unreachable {
                    what: "the connection to",
                    url: self.url.clone(),
                    why: "closed by the server".into(),
                })?;
            let text = match frame.map_err(|e| self.broken(&e))? {
                Message::Text(t) => t,
                Message::Close(c) => {
                    return Err(ReplayError::Unreachable {
                        what: "the connection to",
                        url: self.url.clone(),
                        why: format!("closed by the server: {c:?}"),
                    }
                    .into());
                }
                _ => continue,
            };
            let Ok(v) = serde_json::from_str::<Value>(&text) else {
                continue;
            };
            if v["t"] == "ping" {
                self.send(PONG.to_owned()).await?;
                continue;
            }
            return Ok(v);
        }
    }

    async fn send(&mut self, text: String) -> Result<(), CliError> {
        self.ws
            .send(Message::text(text))
            .await
            .map_err(|e| self.broken(&e).into())
    }

    fn broken(&self, e: &tokio_tungstenite::tungstenite::Error) -> ReplayError {
        ReplayError::Unreachable {
            what: "the connection to",
            url: self.url.clone(),
            why: e.to_string(),
        }
    }

    /// An `error` frame as a refusal of the record at `offset`.
    fn server_error(&self, v: &Value, offset: u64) -> ReplayError {
        ReplayError::Refused {
            offset,
            code: v["p"]["code"].as_str().unwrap_or("ERROR").to_owned(),
            message: v["p"]["message"].as_str().unwrap_or_default().to_owned(),
        }
    }
}
