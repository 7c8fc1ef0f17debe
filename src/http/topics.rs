//! `/v1/topics`: publishing (acknowledged, as the Python `publish`),
//! listing topics, reading a topic's records, deleting its history.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};
use wse_log::{Position, ReadLimits};

use super::error::ApiError;
use super::target::TopicTarget;
use super::{Api, auth};
use crate::ops::broadcast::{Broadcast, broadcast};
use crate::server::Server;
use crate::topics::{is_pattern, is_valid_client_topic_with_limit};

/// Records one read returns at most.
const MAX_READ: usize = 1000;

/// `POST /v1/topics/{topic}/publish`: the body, a JSON object, becomes one
/// record; the answer (its position) comes once it is acknowledged:
/// durable by the log's policy, in a cluster committed by a majority. An
/// `Idempotency-Key` header makes a retry after a timeout safe in a
/// cluster (the same key is stored once).
pub(crate) async fn publish(
    State(api): State<Arc<Api>>,
    TopicTarget { server, topic }: TopicTarget,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = api
        .read_body(body, server.config().max_message_size)
        .await?;
    let message = object(&body)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut taken = take(&server, &topic, vec![(message, key)]).await?;
    let Some(one) = taken.pop() else {
        return Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "nothing taken",
        ));
    };
    let position = one.acknowledged().await?;
    Ok(Json(
        json!({"topic": topic, "position": position_json(position)}),
    ))
}

/// `POST /v1/topics/{topic}/batch`: message objects published in order;
/// the answer lists their positions once all are acknowledged. The body is
/// a JSON array of message objects, or `{"items": [{"message": {...},
/// "id": "..."}, ...]}` where an item may carry its publish id (as the
/// single publish's `Idempotency-Key`). Each message is stored as sent
/// (its text, not a re-encoding). Nothing is published when one of them is
/// refused before the log (not an object, too large).
pub(crate) async fn publish_batch(
    State(api): State<Arc<Api>>,
    TopicTarget { server, topic }: TopicTarget,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = api.read_body(body, api.max_body).await?;
    let items = batch_items(&body)?;
    let limit = server.config().max_message_size;
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let text = item.message.get();
        if !text.starts_with('{') {
            return Err(ApiError::invalid(format!("item {i} is not a JSON object")));
        }
        if text.len() > limit {
            return Err(ApiError::invalid(format!(
                "item {i} is larger than max_message_size ({limit} bytes)"
            )));
        }
        messages.push((text.to_owned(), item.id));
    }
    let taken = take(&server, &topic, messages).await?;
    let mut positions = Vec::with_capacity(taken.len());
    for b in taken {
        positions.push(position_json(b.acknowledged().await?));
    }
    Ok(Json(json!({"topic": topic, "positions": positions})))
}

/// One message of a batch: its exact text, and its publish id if any.
#[derive(Deserialize)]
struct BatchItem<'a> {
    /// The message as sent (a raw value: stored without re-encoding).
    #[serde(borrow)]
    message: &'a RawValue,
    /// The publish id: a second publish with it is not stored again.
    #[serde(default)]
    id: Option<String>,
}

/// The object form of a batch body.
#[derive(Deserialize)]
struct BatchItems<'a> {
    /// The messages with their ids.
    #[serde(borrow)]
    items: Vec<BatchItem<'a>>,
}

/// The items of a batch body in either form (a bare array of messages, or
/// `{"items": [...]}` with ids), or why it is not one. The form is told by
/// the first byte rather than by serde's `untagged`, which would buffer the
/// messages and lose their raw text.
fn batch_items(body: &[u8]) -> Result<Vec<BatchItem<'_>>, ApiError> {
    let refused = || {
        ApiError::invalid(
            "the body must be a JSON array of message objects, or \
             {\"items\": [{\"message\": {...}, \"id\": \"...\"}, ...]}",
        )
    };
    let text = std::str::from_utf8(body).map_err(|_| refused())?;
    if text.trim_start().starts_with('[') {
        let messages: Vec<&RawValue> = serde_json::from_str(text).map_err(|_| refused())?;
        return Ok(messages
            .into_iter()
            .map(|message| BatchItem { message, id: None })
            .collect());
    }
    let body: BatchItems<'_> = serde_json::from_str(text).map_err(|_| refused())?;
    Ok(body.items)
}

/// `GET /v1/topics`: every topic clients can see (internal ones, such as
/// presence streams, are left out) with its positions and size.
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    auth::require(api.token.as_ref(), &headers)?;
    let log = api.server()?.log()?;
    let topics: Vec<Value> = log
        .topics()
        .into_iter()
        .filter(|t| !t.name.starts_with('\u{1}'))
        .map(|t| {
            json!({"name": t.name, "epoch": t.epoch.to_string(),
                "first_offset": t.first_offset, "next_offset": t.next_offset,
                "segments": t.segments, "bytes": t.bytes,
                "retention": super::retention::to_json(&t.retention)})
        })
        .collect();
    Ok(Json(json!({ "topics": topics })))
}

/// `DELETE /v1/topics/{topic}`: delete the topic's history (see
/// `Server::delete_topic`): its next publish starts a new epoch, clients
/// recovering from the old one are answered not-recovered, and
/// subscribers stay subscribed. Answers the deleted epoch; 404 for a
/// topic without history, 409 `NOT_REPLICATED` on a cluster node.
pub(crate) async fn delete(
    TopicTarget { server, topic }: TopicTarget,
) -> Result<Json<Value>, ApiError> {
    let name = topic.clone();
    // Directories are removed and the metadata store written.
    let Some(epoch) = blocking(move || server.delete_topic(&name)).await?? else {
        return Err(ApiError::not_found(format!("no topic {topic:?}")));
    };
    Ok(Json(
        json!({"topic": topic, "deleted": true, "epoch": epoch.to_string()}),
    ))
}

/// The query of `GET /v1/topics/{topic}/records`.
#[derive(Deserialize)]
pub(crate) struct ReadQuery {
    /// First offset (default: the oldest stored).
    from: Option<u64>,
    /// Records at most (default 100, at most 1,000).
    limit: Option<usize>,
}

/// `GET /v1/topics/{topic}/records?from=&limit=`: records of the topic's
/// current history, oldest first; a payload that is JSON is shown as JSON,
/// anything else as a string (`data`), and, for tools that copy history
/// exactly (`wse replay`), as the exact stored text (`text`, when it is
/// UTF-8) with the record's kind.
pub(crate) async fn records(
    TopicTarget { server, topic }: TopicTarget,
    query: Result<Query<ReadQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if limit > MAX_READ {
        return Err(ApiError::bad_request(format!(
            "limit is at most {MAX_READ}"
        )));
    }
    let Some(at) = server.position(&topic)? else {
        return Err(ApiError::not_found(format!("no topic {topic:?}")));
    };
    let from = q.from.unwrap_or(at.first_offset).max(at.first_offset);
    if from >= at.next_offset || limit == 0 {
        // Nothing there yet: an empty page, where the next one starts.
        return Ok(Json(json!({"topic": topic, "epoch": at.epoch.to_string(),
            "first_offset": at.first_offset, "next_offset": at.next_offset,
            "records": []})));
    }
    let log = server.log()?;
    let topic_for_read = topic.clone();
    // A read may touch the disk: not on a worker.
    let batch = blocking(move || {
        log.read(
            &topic_for_read,
            Position {
                epoch: at.epoch,
                offset: from,
            },
            ReadLimits::records(limit),
        )
    })
    .await?
    .map_err(crate::server::ServerError::Log)?;
    let records: Vec<Value> = batch
        .records
        .iter()
        .map(|r| {
            let payload = r.payload();
            let data = serde_json::from_slice::<Value>(&payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&payload).into_owned()));
            let mut one = json!({"offset": r.offset(), "timestamp_us": r.timestamp_us(),
                "kind": r.kind().as_str(), "data": data});
            if let Ok(text) = std::str::from_utf8(&payload) {
                one["text"] = Value::String(text.to_owned());
            }
            one
        })
        .collect();
    Ok(Json(json!({"topic": topic, "epoch": at.epoch.to_string(),
        "first_offset": at.first_offset, "next_offset": batch.head,
        "records": records})))
}

/// Hand `messages` (text, idempotency key) to the log in order, on the
/// blocking pool: an append may wait for room in a backlogged log, which
/// a worker must not. The log's first refusal ends it with that error; the
/// messages before the refused one stay published.
async fn take(
    server: &Server,
    topic: &str,
    messages: Vec<(String, Option<String>)>,
) -> Result<Vec<Broadcast>, ApiError> {
    let state = server.state()?;
    let topic = topic.to_owned();
    blocking(move || {
        messages
            .iter()
            .map(|(m, key)| broadcast(&state, &topic, m, key.as_deref()))
            .collect::<Result<Vec<_>, _>>()
    })
    .await?
    .map_err(|e| crate::cluster::PublishError::Log(e).into())
}

/// Run `f` on the blocking pool.
pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))
}

/// A topic clients could publish to: valid, not a pattern, within
/// `max_topic_bytes`.
pub(super) fn check_topic(api: &Api, topic: &str) -> Result<(), ApiError> {
    let max = api.server()?.config().max_topic_bytes;
    if !is_valid_client_topic_with_limit(topic, max) || is_pattern(topic) {
        return Err(ApiError::invalid(format!(
            "{topic:?} is not a topic name (at most {max} bytes, no wildcards)"
        )));
    }
    Ok(())
}

/// The body, which must be a JSON object, as it was sent.
fn object(body: &[u8]) -> Result<String, ApiError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(_)) => Ok(String::from_utf8_lossy(body).trim().to_owned()),
        _ => Err(ApiError::invalid("the body must be a JSON object")),
    }
}

fn position_json(p: Position) -> Value {
    json!({"epoch": p.epoch.to_string(), "offset": p.offset})
}
