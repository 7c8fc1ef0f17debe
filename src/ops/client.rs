//! Client messages the core answers itself when configured to: the
//! clients' `subscription_update` (subscribe, unsubscribe, recover) and
//! `publish` (docs/PROTOCOL.md). A standalone server needs no app for them.

use std::sync::Arc;

use serde_json::{Map, Value, json};

use super::recovery::{RecoveryError, subscribe_with_recovery};
use super::send::{broadcast_local, send_text};
use super::subscribe::unsubscribe;
use crate::conn::Conn;
use crate::server::state::ServerState;
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
        json!({"c": "WSE", "t": "subscription_update", "p": {
            "action": "subscribe", "success": failed.is_empty(),
            "success_topics": ok, "failed_topics": failed, "recovery": recovery}, "v": 1})
    };
    send_text(state, conn, &reply.to_string());
}

/// Handle a client's `publish`: `{"t":"publish","p":{"topic":..,"message":{..}}}`
/// broadcasts `message` on `topic` if the connection's ACL allows it.
/// With an `id`, the client gets a `publish_ack` carrying the position.
pub fn publish(state: &ServerState, conn: &Arc<Conn>, msg: &Value) {
    let p = msg.get("p").unwrap_or(&Value::Null);
    let id = msg.get("id").cloned();
    let topic = p.get("topic").and_then(Value::as_str).unwrap_or_default();
    let error = |code: &str, message: String| {
        json!({"c": "WSE", "t": "error", "p": {"code": code, "message": message,
            "recoverable": true, "details": {"id": id, "topic": topic}}, "v": 1})
    };
    let reply = if !is_valid_client_topic_with_limit(topic, state.config.max_topic_bytes)
        || is_pattern(topic)
    {
        Some(error(
            "INVALID_MESSAGE",
            "publish needs p.topic, a topic name without wildcards".into(),
        ))
    } else if !conn.allows(topic) {
        Some(error(
            "PUBLISH_DENIED",
            format!("not allowed to publish to {topic:?}"),
        ))
    } else {
        match p.get("message") {
            Some(message @ Value::Object(_)) => match broadcast_local(state, topic, &message.to_string()) {
                Ok(a) => id.map(|id| {
                    json!({"c": "WSE", "t": "publish_ack", "p": {"id": id, "topic": topic,
                        "epoch": a.position.epoch.to_string(), "offset": a.position.offset}, "v": 1})
                }),
                Err(e) => Some(error("PUBLISH_FAILED", e.to_string())),
            },
            _ => Some(error("INVALID_MESSAGE", "publish needs p.message, a JSON object".into())),
        }
    };
    if let Some(r) = reply {
        send_text(state, conn, &r.to_string());
    }
}
