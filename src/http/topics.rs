//! `/v1/topics`: publishing (acknowledged, as the Python `publish`),
//! listing topics and reading a topic's records.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};
use wse_log::{Position, ReadLimits};

use super::error::ApiError;
use super::{Api, auth};
use crate::ops::broadcast::{Broadcast, broadcast};
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
    topic: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    auth::require(api.token.as_ref(), &headers)?;
    let Path(topic) = topic.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let server = api.server()?;
    check_topic(&api, &topic)?;
    let body = api
        .read_body(body, server.config().max_message_size)
        .await?;
    let message = object(&body)?;
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let state = server.state()?;
    let taken = {
        let topic = topic.clone();
        // The append may wait for room in a backlogged log: not on a worker.
        tokio::task::spawn_blocking(move || broadcast(&state, &topic, &message, key.as_deref()))
            .await
            .map_err(|e| {
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string())
            })?
            .map_err(crate::cluster::PublishError::Log)?
    };
    let position = taken.acknowledged().await?;
    Ok(Json(
        json!({"topic": topic, "position": position_json(position)}),
    ))
}

/// `POST /v1/topics/{topic}/batch`: a JSON array of message objects,
/// published in order; the answer lists their positions once all are
/// acknowledged. Nothing is published when one of them is refused before
/// the log (not an object, too large).
pub(crate) async fn publish_batch(
    State(api): State<Arc<Api>>,
    topic: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    auth::require(api.token.as_ref(), &headers)?;
    let Path(topic) = topic.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let server = api.server()?;
    check_topic(&api, &topic)?;
    let body = api.read_body(body, api.max_body).await?;
    let Ok(Value::Array(items)) = serde_json::from_slice::<Value>(&body) else {
        return Err(ApiError::invalid(
            "the body must be a JSON array of message objects",
        ));
    };
    let limit = server.config().max_message_size;
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        if !item.is_object() {
            return Err(ApiError::invalid(format!("item {i} is not a JSON object")));
        }
        let text = item.to_string();
        if text.len() > limit {
            return Err(ApiError::invalid(format!(
                "item {i} is larger than max_message_size ({limit} bytes)"
            )));
        }
        messages.push(text);
    }
    let state = server.state()?;
    let taken: Vec<Broadcast> = {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || {
            messages
                .iter()
                .map(|m| broadcast(&state, &topic, m, None))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))?
        .map_err(crate::cluster::PublishError::Log)?
    };
    let mut positions = Vec::with_capacity(taken.len());
    for b in taken {
        positions.push(position_json(b.acknowledged().await?));
    }
    Ok(Json(json!({"topic": topic, "positions": positions})))
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
                "segments": t.segments, "bytes": t.bytes})
        })
        .collect();
    Ok(Json(json!({ "topics": topics })))
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
/// anything else as a string.
pub(crate) async fn records(
    State(api): State<Arc<Api>>,
    topic: Result<Path<String>, PathRejection>,
    query: Result<Query<ReadQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    auth::require(api.token.as_ref(), &headers)?;
    let Path(topic) = topic.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let Query(q) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = q.limit.unwrap_or(100);
    if limit > MAX_READ {
        return Err(ApiError::bad_request(format!(
            "limit is at most {MAX_READ}"
        )));
    }
    let server = api.server()?;
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
    let batch = tokio::task::spawn_blocking(move || {
        log.read(
            &topic_for_read,
            Position {
                epoch: at.epoch,
                offset: from,
            },
            ReadLimits::records(limit),
        )
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL", e.to_string()))?
    .map_err(crate::server::ServerError::Log)?;
    let records: Vec<Value> = batch
        .records
        .iter()
        .map(|r| {
            let payload = r.payload();
            let data = serde_json::from_slice::<Value>(&payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&payload).into_owned()));
            json!({"offset": r.offset(), "timestamp_us": r.timestamp_us(), "data": data})
        })
        .collect();
    Ok(Json(json!({"topic": topic, "epoch": at.epoch.to_string(),
        "first_offset": at.first_offset, "next_offset": batch.head,
        "records": records})))
}

/// A topic clients could publish to: valid, not a pattern, within
/// `max_topic_bytes`.
fn check_topic(api: &Api, topic: &str) -> Result<(), ApiError> {
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
