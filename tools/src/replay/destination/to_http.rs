//! `--to-http URL --token TOKEN`: batches through `POST
//! /v1/topics/{topic}/batch` in its `{"items": [{"message", "id"}]}` form,
//! so every record carries its publish id and is stored as sent. The answer
//! comes once the whole batch is acknowledged (durable by the server's
//! policy), one position per record; a record whose id the server's window
//! holds is answered with its first copy's position and not stored again.

use bytes::Bytes;
use hyper::Method;

use super::{Acked, Batch};
use crate::error::CliError;
use crate::replay::error::ReplayError;
use crate::replay::http::{HttpClient, path_segment};

/// A server's HTTP API as the destination.
pub(crate) struct ToHttp {
    /// The client, with the admin token.
    client: HttpClient,
    /// `/v1/topics/{topic}/batch`, the topic encoded.
    path: String,
}

impl ToHttp {
    /// Publish to `topic` through the API at `url`, checking that it
    /// answers (`GET /ready`) before anything is read.
    pub(crate) async fn connect(
        url: &str,
        token: Option<&str>,
        topic: &str,
    ) -> Result<Self, CliError> {
        let mut client = HttpClient::new("--to-http", url, token)?;
        client.json(Method::GET, "/ready", Bytes::new()).await?;
        Ok(Self {
            client,
            path: format!("/v1/topics/{}/batch", path_segment(topic)),
        })
    }

    /// Publish `batch` and wait for its acknowledgement.
    pub(crate) async fn submit(
        &mut self,
        batch: Batch,
        acked: &mut Vec<Acked>,
    ) -> Result<(), CliError> {
        let body = body(&batch);
        let answer = match self.client.json(Method::POST, &self.path, body).await {
            Err(ReplayError::Http { status, body, .. }) if status == 422 || status == 413 => {
                return Err(refused(&batch, status, &body).into());
            }
            other => other?,
        };
        let positions = answer["positions"].as_array().map_or(0, Vec::len);
        if positions != batch.items.len() {
            return Err(ReplayError::Protocol {
                url: self.client.url().to_owned(),
                why: format!(
                    "{} positions for a batch of {}",
                    positions,
                    batch.items.len()
                ),
            }
            .into());
        }
        acked.push(batch.acked());
        Ok(())
    }
}

/// `{"items":[{"id":"...","message":<text>},...]}`, each message's text
/// put in as it is (it is a JSON object: [`super::super::message`] checked).
fn body(batch: &Batch) -> Bytes {
    let mut out = String::with_capacity(batch.bytes + batch.items.len() * 64 + 16);
    out.push_str(r#"{"items":["#);
    for (i, item) in batch.items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(r#"{"id":"#);
        // A string always encodes.
        out.push_str(&serde_json::to_string(&item.id).unwrap_or_default());
        out.push_str(r#","message":"#);
        out.push_str(&item.text);
        out.push('}');
    }
    out.push_str("]}");
    Bytes::from(out)
}

/// The server refused the batch (a record too large, a body over
/// `http_max_body`): which offsets, and what it said.
fn refused(batch: &Batch, status: u16, body: &str) -> ReplayError {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let code = v["error"]["code"].as_str().unwrap_or("REFUSED").to_owned();
    let mut message = v["error"]["message"].as_str().unwrap_or(body).to_owned();
    if status == 413 {
        message.push_str(" (a smaller --batch or --batch-bytes fits the server's http_max_body)");
    }
    ReplayError::Refused {
        offset: batch.items.first().map_or(batch.end, |i| i.offset),
        code,
        message,
    }
}
