//! Client messages the core answers itself when configured to: the
//! clients' `subscription_update` (subscribe, unsubscribe, recover) and
//! `publish` (docs/PROTOCOL.md). A standalone server needs no app for them,
//! and, with presence on and no app to decide it, it tracks the presence
//! of authenticated subscribers itself ([`join_presence`]).

use std::sync::Arc;

use serde_json::{Map, Value, json};

use wse_log::LogError;

use super::broadcast::{Broadcast, broadcast};
use super::recovery::{RecoveryError, subscribe_with_recovery};
use super::send::send_text;
use super::subscribe::unsubscribe;
use crate::cluster::PublishError;
use crate::config::{EventDelivery, ServerConfig};
use crate::conn::Conn;
use crate::metrics::Metrics;
use crate::state::ServerState;
use crate::topics::{is_pattern, is_valid_client_topic_with_limit};

/// Handle a client's `subscription_update` and send the reply the clients
/// expect (CLIENT_PROTOCOL.md §9.3).
pub fn subscription_update(state: &ServerState, conn: &Arc<Conn>, msg: &Value) {
    let p = msg.get("p").unwrap_or(&Value::Null);
    let action = p
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or("subscribe");
    let topics: Vec<String> = p
        .get("topics")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    let reply = if action == "unsubscribe" {
        unsubscribe(state, conn, &topics);
        json!({"c": "WSE", "t": "subscription_update", "p": {
            "action": "unsubscribe", "success": true,
            "success_topics": topics, "failed_topics": []}, "v": 1})
    } else {
        let recover = p.get("recover").and_then(Value::as_bool).unwrap_or(false);
        let positions = p.get("recovery").and_then(Value::as_object);
        let mut ok = Vec::new();
        let mut failed = Vec::new();
        let mut recovery = Map::new();
        for topic in &topics {
            let pos = positions.and_then(|m| m.get(topic));
            let epoch = pos.and_then(|v| v.get("epoch")).and_then(Value::as_str);
            let offset = pos.and_then(|v| v.get("offset")).and_then(Value::as_u64);
            let usable = conn.allows(topic)
                && is_valid_client_topic_with_limit(topic, state.config.max_topic_bytes);
            let one = std::slice::from_ref(topic);
            match subscribe_with_recovery(state, conn, one, recover, epoch, offset) {
                Ok(r) if usable => {
                    ok.push(topic.clone());
                    if let Some(t) = r.topics.first() {
                        recovery.insert(
                            topic.clone(),
                            json!({
                                "epoch": t.epoch.map(|e| e.to_string()),
                                "offset": t.offset,
                                "recovered": t.recovered,
                                "count": t.count,
                                "complete": t.complete,
                            }),
                        );
                    }
                }
                Ok(_) | Err(RecoveryError::Limit(_)) => failed.push(topic.clone()),
                Err(RecoveryError::InvalidEpoch(_)) => {
                    // Subscribed, but the position is unusable: tell the
                    // client where the topic stands.
                    ok.push(topic.clone());
                    if let Ok(r) = subscribe_with_recovery(state, conn, one, false, None, None)
                        && let Some(t) = r.topics.first()
                    {
                        recovery.insert(
                            topic.clone(),
                            json!({
                            "epoch": t.epoch.map(|e| e.to_string()),
                            "offset": t.offset, "recovered": false, "count": 0}),
                        );
                    }
                }
            }
        }
        join_presence(state, conn, &ok);
        json!({"c": "WSE", "t": "subscription_update", "p": {
            "action": "subscribe", "success": failed.is_empty(),
            "success_topics": ok, "failed_topics": failed, "recovery": recovery}, "v": 1})
    };
    send_text(state, conn, &reply.to_string());
}

/// Join `conn`'s user to the presence of the `topics` it just subscribed
/// by name, when the server tracks presence and has no app to decide who
/// is present (`event_delivery` discard, as `wse serve` runs): an app sets
/// presence itself (`subscribe_connection(..., presence_data)`), and
/// joining on its behalf would announce users it chose not to. Only
/// authenticated connections join, as their JWT `sub`: an anonymous
/// connection has no user to show, and letting anyone appear under a
/// name of their choosing is what auth exists to prevent. Leaves need
/// nothing here: unsubscribe and disconnect remove a connection's entries
/// whoever made them.
fn join_presence(state: &ServerState, conn: &Arc<Conn>, topics: &[String]) {
    let Some(presence) = &state.presence else {
        return;
    };
    if state.config.event_delivery != EventDelivery::Discard || conn.user_id.is_none() {
        return;
    }
    // Nothing but being there: the token's claims are not kept past the
    // handshake.
    let data = Value::Object(Map::new());
    for topic in topics.iter().filter(|t| !is_pattern(t)) {
        if let Err(e) = presence.join(state, conn, topic, &data) {
            Metrics::add(&state.metrics.presence_refused, 1);
            tracing::warn!(conn = %conn.id_str, topic, error = %e, "subscribed without presence");
        }
    }
}

/// What became of a client's `publish`.
pub enum Published {
    /// Answered at once: an error, or nothing (no `id`, no ack wanted).
    Reply(Option<Value>),
    /// Appended; the client asked for an ack, which follows once the
    /// record is durable ([`PendingAck::settle`]).
    Pending(PendingAck),
}

/// A publish whose acknowledgement waits for its record to be durable.
pub struct PendingAck {
    id: Value,
    topic: String,
    broadcast: Broadcast,
}

impl PendingAck {
    /// Wait until the record is durable by the policy (in a cluster:
    /// committed by a majority), then give the `publish_ack` (or the error
    /// saying why it is not acknowledged).
    pub async fn settle(self) -> Value {
        match self.broadcast.acknowledged().await {
            Ok(pos) => {
                json!({"c": "WSE", "t": "publish_ack", "p": {"id": self.id, "topic": self.topic,
                    "epoch": pos.epoch.to_string(), "offset": pos.offset}, "v": 1})
            }
            Err(e) => publish_error(
                acknowledgement_error_code(&e),
                &e.to_string(),
                &self.id,
                &self.topic,
            ),
        }
    }
}

/// The error code a client sees when its publish was taken but is not
/// acknowledged.
fn acknowledgement_error_code(e: &PublishError) -> &'static str {
    match e {
        PublishError::Log(e) => publish_error_code(e),
        PublishError::Unavailable { .. } => "CLUSTER_UNAVAILABLE",
        PublishError::Timeout { .. } => "PUBLISH_TIMEOUT",
        PublishError::Stopped => "STORAGE_UNAVAILABLE",
    }
}

/// The error code a client sees when the log refused or failed its publish.
pub fn publish_error_code(e: &LogError) -> &'static str {
    match e {
        LogError::RecordTooLarge { .. } => "MESSAGE_TOO_LARGE",
        LogError::InvalidTopic(_) => "INVALID_MESSAGE",
        LogError::Unavailable { .. }
        | LogError::Io { .. }
        | LogError::Meta(_)
        | LogError::Closed => "STORAGE_UNAVAILABLE",
        _ => "PUBLISH_FAILED",
    }
}

/// The `error` frame for a publish (`recoverable`: the client may retry).
fn publish_error(code: &str, message: &str, id: &Value, topic: &str) -> Value {
    json!({"c": "WSE", "t": "error", "p": {"code": code, "message": message,
        "recoverable": true, "details": {"id": id, "topic": topic}}, "v": 1})
}

/// Handle a client's `publish`: `{"t":"publish","p":{"topic":..,"message":{..}}}`
/// broadcasts `message` on `topic` if the server lets clients publish
/// (`client_publish`) and the connection's ACL allows the topic. With an
/// `id`, the client gets a `publish_ack` carrying the position once the
/// record is durable, or an error saying why it is not.
pub fn publish(state: &ServerState, conn: &Conn, msg: &Value) -> Published {
    let p = msg.get("p").unwrap_or(&Value::Null);
    let id = msg.get("id").cloned().unwrap_or(Value::Null);
    let topic = p.get("topic").and_then(Value::as_str).unwrap_or_default();
    let error = |code: &str, message: &str| {
        Published::Reply(Some(publish_error(code, message, &id, topic)))
    };
    let message = match admit_publish(&state.config, conn, topic, p) {
        Ok(message) => message,
        Err(refused) => return error(refused.code(), &refused.message(topic)),
    };
    let key = match &id {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match broadcast(state, topic, &message.to_string(), key.as_deref()) {
        // Without an `id` no ack is wanted; a replicated publish is still
        // handed on (dropping its future does not cancel it).
        Ok(_) if id.is_null() => Published::Reply(None),
        Ok(broadcast) => Published::Pending(PendingAck {
            id,
            topic: topic.to_owned(),
            broadcast,
        }),
        Err(e) => error(publish_error_code(&e), &e.to_string()),
    }
}

/// Why a client's `publish` is refused before it reaches the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PublishRefused {
    /// The server does not let clients publish (`client_publish`).
    Disabled,
    /// No topic, an invalid one, or a pattern.
    InvalidTopic,
    /// The connection's ACL does not allow the topic.
    Denied,
    /// No `p.message` object.
    NoMessage,
}

impl PublishRefused {
    /// The error code the client sees.
    fn code(self) -> &'static str {
        match self {
            Self::Disabled => "PUBLISH_DISABLED",
            Self::InvalidTopic | Self::NoMessage => "INVALID_MESSAGE",
            Self::Denied => "PUBLISH_DENIED",
        }
    }

    /// The error message the client sees.
    fn message(self, topic: &str) -> String {
        match self {
            Self::Disabled => "this server does not let clients publish".into(),
            Self::InvalidTopic => "publish needs p.topic, a topic name without wildcards".into(),
            Self::Denied => format!("not allowed to publish to {topic:?}"),
            Self::NoMessage => "publish needs p.message, a JSON object".into(),
        }
    }
}

/// The message of a publish to `topic` (its payload `p`) that the options
/// and the connection's ACL allow, checked in the order the client is
/// told: publishing enabled, a valid topic, allowed, a message object.
fn admit_publish<'a>(
    config: &ServerConfig,
    conn: &Conn,
    topic: &str,
    p: &'a Value,
) -> Result<&'a Value, PublishRefused> {
    if !config.client_publish {
        return Err(PublishRefused::Disabled);
    }
    if !is_valid_client_topic_with_limit(topic, config.max_topic_bytes) || is_pattern(topic) {
        return Err(PublishRefused::InvalidTopic);
    }
    if !conn.allows(topic) {
        return Err(PublishRefused::Denied);
    }
    match p.get("message") {
        Some(message @ Value::Object(_)) => Ok(message),
        _ => Err(PublishRefused::NoMessage),
    }
}

#[cfg(test)]
mod tests;
