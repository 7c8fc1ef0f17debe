//! Sending: to one connection (`send`, `send_bytes`, `send_event`) and to
//! all (`broadcast_all`). A broadcast to a topic is an append to its log:
//! see [`super::broadcast`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::SlowConsumerPolicy;
use crate::compression::{msgpack, zlib};
use crate::conn::{CloseRequest, Conn, Pushed};
use crate::crypto::{ENCRYPTED_FRAME_PREFIX, MIN_SEALED_LEN};
use crate::metrics::Metrics;
use crate::ops::ledger::SendLedger;
use crate::protocol::category::{category_for, inject_category};
use crate::protocol::clock::rfc3339_millis;
use crate::protocol::control;
use crate::state::ServerState;
use crate::ws::frame;
use crate::ws::frame::close_code;

/// Queue a text frame, verbatim, for one connection (sealed into an `E:`
/// frame on an end-to-end encrypted connection, like all data).
pub fn send_text(state: &ServerState, conn: &Conn, text: &str) {
    queue(state, conn, frame::text(text.as_bytes()));
}

/// Why an app's `send` / `send_bytes` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// The frame is larger than the connection's whole outbound queue: it
    /// could never be sent, however long the app waits.
    #[error(
        "a frame of {size} bytes can never be sent: the outbound queue holds at most {limit} bytes (max_outbound_bytes)"
    )]
    TooLarge {
        /// The frame's size.
        size: usize,
        /// `max_outbound_bytes`.
        limit: usize,
    },
}

/// Queue an app's text frame (`Server::send`); see [`send_app`].
pub fn send_app_text(state: &ServerState, conn: &Conn, text: &str) -> Result<(), SendError> {
    send_app(state, conn, frame::text(text.as_bytes()))
}

/// Queue an app's binary frame (`Server::send_bytes`); see [`send_app`].
pub fn send_app_binary(state: &ServerState, conn: &Conn, data: &[u8]) -> Result<(), SendError> {
    send_app(state, conn, frame::binary(data))
}

/// Queue a frame the app sends to one connection. A frame larger than the
/// whole outbound queue (`max_outbound_bytes`) is refused with an error,
/// since it could never go. One that does not fit now, behind what the
/// client has not read yet, meets the slow-consumer policy, as topic
/// messages do: `disconnect` closes the connection with 1013 (counted in
/// `slow_consumer_disconnects`), `drop` drops the frame (counted in
/// `slow_consumer_drops`).
fn send_app(state: &ServerState, conn: &Conn, f: Bytes) -> Result<(), SendError> {
    let limit = state.config.max_outbound_bytes;
    if limit > 0 && f.len() > limit {
        return Err(SendError::TooLarge {
            size: f.len(),
            limit,
        });
    }
    match conn.push_data(f, limit) {
        Pushed::Refused if !conn.is_closing() => match state.config.slow_consumer {
            SlowConsumerPolicy::Disconnect => {
                Metrics::add(&state.metrics.slow_consumer_disconnects, 1);
                conn.request_close(CloseRequest {
                    code: Some(close_code::TRY_AGAIN_LATER),
                    reason: "slow consumer".into(),
                    flush: false,
                });
            }
            SlowConsumerPolicy::Drop => Metrics::add(&state.metrics.slow_consumer_drops, 1),
        },
        pushed => pushed.count(&state.metrics),
    }
    Ok(())
}

/// Queue a data frame (sealed for E2E connections).
fn queue(state: &ServerState, conn: &Conn, f: Bytes) {
    conn.push_data(f, state.config.max_outbound_bytes)
        .count(&state.metrics);
}

/// Queue a protocol frame (rate-limit errors and warnings: plaintext);
/// one the queue has no room for is counted as dropped.
fn queue_control(metrics: &Metrics, limit: usize, conn: &Conn, f: Bytes) {
    if !conn.push_control(f, limit) {
        Metrics::add(&metrics.slow_consumer_drops, 1);
    }
}

/// The `send_event` pipeline (CLIENT_PROTOCOL.md §5.3): dedup, rate limit,
/// envelope, msgpack / zlib, binary frame. Returns the bytes of the frame
/// body, 0 when deduplicated or rate limited. An unknown connection still
/// gets the byte count (the message is dropped), as upstream.
pub fn send_event(
    state: &ServerState,
    conn: Option<&Arc<Conn>>,
    conn_id: crate::conn::ConnId,
    event: &Map<String, Value>,
    compression_threshold: usize,
) -> usize {
    if let Some(Value::String(id)) = event.get("id")
        && !state.sends.first_time(conn_id, id)
    {
        return 0;
    }
    if let Some(conn) = conn
        && !take_token(&state.metrics, state.config.max_outbound_bytes, conn)
    {
        return 0;
    }
    let envelope = envelope(&state.sends, event);
    let msgpack = conn.is_some_and(|c| c.msgpack);
    let e2e = conn.is_some_and(|c| c.e2e().is_some());
    let body: Vec<u8> = if e2e {
        // The clients read only JSON inside `E:` (an `M:` payload would be
        // dropped), and sealed frames are never compressed; `queue` seals.
        serde_json::to_vec(&envelope).unwrap_or_default()
    } else if msgpack {
        let mut b = b"M:".to_vec();
        b.extend(msgpack::pack_msgpack(&envelope).unwrap_or_default());
        b
    } else {
        let json = serde_json::to_vec(&envelope).unwrap_or_default();
        if compression_threshold > 0 && json.len() > compression_threshold {
            let mut b = b"C:".to_vec();
            b.extend(zlib::compress(&json, zlib::SEND_EVENT_LEVEL).unwrap_or(json));
            b
        } else {
            json
        }
    };
    let len = if e2e {
        ENCRYPTED_FRAME_PREFIX.len() + MIN_SEALED_LEN + body.len()
    } else {
        body.len()
    };
    if let Some(conn) = conn {
        queue(state, conn, frame::binary(&body));
        Metrics::add(&state.metrics.messages_sent, 1);
        Metrics::add(&state.metrics.bytes_sent, len as u64);
    }
    len
}

/// The envelope: `c` computed from `t`, the event's keys (but `c`/`v`),
/// `id`/`seq`/`ts` when absent, and `v: 1`.
fn envelope(sends: &SendLedger, event: &Map<String, Value>) -> Value {
    let mut env = Map::new();
    let t = event.get("t").and_then(Value::as_str);
    env.insert("c".into(), Value::from(category_for(t).as_str()));
    for (k, v) in event {
        if k != "c" && k != "v" {
            env.insert(k.clone(), v.clone());
        }
    }
    env.entry("id")
        .or_insert_with(|| Value::from(uuid::Uuid::now_v7().to_string()));
    env.entry("seq")
        .or_insert_with(|| Value::from(sends.next_seq()));
    env.entry("ts")
        .or_insert_with(|| Value::from(rfc3339_millis(std::time::SystemTime::now())));
    env.insert("v".into(), Value::from(1));
    Value::Object(env)
}

/// One token from the connection's `send_event` bucket, with the
/// once-per-second warning and error frames (protocol frames, queued
/// within `limit` bytes).
fn take_token(metrics: &Metrics, limit: usize, conn: &Conn) -> bool {
    let now = Instant::now();
    let second = Duration::from_secs(1);
    let mut l = conn.limiter.lock();
    let capacity = l.bucket.capacity();
    if !l.bucket.acquire_at(1.0, now) {
        Metrics::add(&metrics.rate_limited, 1);
        if l.last_error.is_none_or(|t| now - t >= second) {
            l.last_error = Some(now);
            drop(l);
            queue_control(
                metrics,
                limit,
                conn,
                frame::text(control::RATE_LIMITED.as_bytes()),
            );
        }
        return false;
    }
    let tokens = l.bucket.tokens_at(now);
    if tokens < capacity * 0.2 && l.last_warning.is_none_or(|t| now - t >= second) {
        l.last_warning = Some(now);
        drop(l);
        let warning = control::rate_limit_warning(capacity, tokens);
        queue_control(metrics, limit, conn, frame::text(warning.as_bytes()));
    }
    true
}

/// Text to every connection (`c` injected; not stored in any log).
pub fn broadcast_all(state: &ServerState, text: &str) {
    let f = frame::text(inject_category(text).as_bytes());
    state.conns.for_each(|c| queue(state, c, f.clone()));
}

/// Bytes to every connection.
pub fn broadcast_all_bytes(state: &ServerState, data: &[u8]) {
    let f = frame::binary(data);
    state.conns.for_each(|c| queue(state, c, f.clone()));
}

#[cfg(test)]
mod tests;
