//! `rust_transform_event`: turns a raw application event into a WSE wire
//! envelope (PYTHON_API.md §3.5).
//!
//! Output keys: `c`, `t`, `id`, `ts`, `seq`, `p`, `v` (always 1), then when
//! they apply `original_event_type`, `latency_ms`, `cid`, `pri`,
//! `event_version` (always present, default 1) and `trace_id`. The rules
//! are upstream's, value for value:
//!
//! - **already an envelope**: an event with all of `v`, `t`, `p`, `id`,
//!   `ts` comes back unchanged, with `seq` added if it has none;
//! - **`t`**: `event_type`, else `type` (Python `str()` of it), else
//!   `"unknown"`; looked up in `event_type_map`, else lower-cased. When that
//!   changes it, the raw type is kept as `original_event_type`;
//! - **`id` / `ts`**: `_metadata.event_id` / `_metadata.timestamp`, else the
//!   event's `event_id` / `timestamp`, else a new UUIDv7 / the current time
//!   (RFC 3339, microseconds, `Z`);
//! - **`p`**: the event's `payload` object if it has one, else the event
//!   itself; `_metadata` removed; `event_type` copied from `type` when
//!   missing;
//! - **`c`**: the event's `c` if set; else `S` when `t` contains
//!   `_snapshot` or `snapshot_`; `WSE` for the system types listed in
//!   [`WSE_EVENT_TYPES`]; otherwise `U`. (This is the transformer's own
//!   rule; `send_event` recomputes `c` with the protocol's rule anyway.)
//! - **`latency_ms`**: now minus the metadata or event `timestamp`, when it
//!   parses (see [`super::timestamp`]);
//! - **`cid`, `trace_id`**: from `_metadata.correlation_id`/`trace_id`, else
//!   the event's non-empty `correlation_id`/`trace_id`;
//! - **`pri`**: `_metadata.priority`, else the event's `pri`, as given;
//! - **`event_version`**: the event's `version`, else `_metadata.version`,
//!   if it is an integer (a bool counts as 0/1, as in Python); else 1.
//!
//! "Absent" means missing or `null` throughout. Python-only values (UUID,
//! datetime, Enum, bytes, tuples, objects) must be made JSON-safe by the
//! caller before this runs; [`bytes_to_json_string`] gives the upstream
//! conversion of `bytes`.

use std::time::SystemTime;

use serde_json::{Map, Value};

use super::pyvalue::py_str;
use super::timestamp::{format_rfc3339_micros, latency_ms};

/// Event types the transformer marks with category `WSE`.
pub const WSE_EVENT_TYPES: [&str; 6] = [
    "server_ready",
    "snapshot_complete",
    "client_hello_ack",
    "connection_state_change",
    "error",
    "pong",
];

/// Keys whose joint presence means "already an envelope".
const ENVELOPE_KEYS: [&str; 5] = ["v", "t", "p", "id", "ts"];

/// `rust_transform_event(event, sequence, event_type_map)` at the current
/// time.
pub fn transform_event(
    event: &Map<String, Value>,
    sequence: i64,
    event_type_map: &Map<String, Value>,
) -> Map<String, Value> {
    transform_event_at(event, sequence, event_type_map, SystemTime::now())
}

/// [`transform_event`] with the clock passed in (default `ts` and
/// `latency_ms` are computed against `now`).
pub fn transform_event_at(
    event: &Map<String, Value>,
    sequence: i64,
    event_type_map: &Map<String, Value>,
    now: SystemTime,
) -> Map<String, Value> {
    if ENVELOPE_KEYS.iter().all(|k| event.contains_key(*k)) {
        let mut envelope = event.clone();
        envelope.entry("seq").or_insert(Value::from(sequence));
        return envelope;
    }

    let metadata = present(event, "_metadata").and_then(Value::as_object);
    let from_meta = |key: &str| metadata.and_then(|m| present(m, key));

    let raw_type = present(event, "event_type")
        .or_else(|| present(event, "type"))
        .map_or_else(|| "unknown".to_owned(), |v| py_str(v).into_owned());
    let ws_type = match event_type_map.get(&raw_type) {
        Some(mapped) => py_str(mapped).into_owned(),
        None => raw_type.to_lowercase(),
    };

    let timestamp = from_meta("timestamp")
        .or_else(|| present(event, "timestamp"))
        .map(|v| py_str(v).into_owned());
    let latency = timestamp.as_deref().and_then(|ts| latency_ms(ts, now));

    let id = from_meta("event_id")
        .or_else(|| present(event, "event_id"))
        .map_or_else(
            || uuid::Uuid::now_v7().to_string(),
            |v| py_str(v).into_owned(),
        );

    let category = present(event, "c")
        .cloned()
        .unwrap_or_else(|| Value::from(category_for(&ws_type)));

    let mut envelope = Map::new();
    envelope.insert("c".into(), category);
    envelope.insert("t".into(), Value::from(ws_type.as_str()));
    envelope.insert("id".into(), Value::from(id));
    envelope.insert(
        "ts".into(),
        Value::from(timestamp.unwrap_or_else(|| format_rfc3339_micros(now))),
    );
    envelope.insert("seq".into(), Value::from(sequence));
    envelope.insert("p".into(), Value::Object(payload_of(event)));
    envelope.insert("v".into(), Value::from(1));
    if raw_type != ws_type {
        envelope.insert("original_event_type".into(), Value::from(raw_type));
    }
    if let Some(ms) = latency {
        envelope.insert("latency_ms".into(), Value::from(ms));
    }
    if let Some(cid) = text_field(metadata, event, "correlation_id", "correlation_id") {
        envelope.insert("cid".into(), Value::from(cid));
    }
    if let Some(pri) = from_meta("priority").or_else(|| present(event, "pri")) {
        envelope.insert("pri".into(), pri.clone());
    }
    let version = present(event, "version")
        .or_else(|| from_meta("version"))
        .and_then(python_int)
        .unwrap_or(1);
    envelope.insert("event_version".into(), Value::from(version));
    if let Some(trace) = text_field(metadata, event, "trace_id", "trace_id") {
        envelope.insert("trace_id".into(), Value::from(trace));
    }
    envelope
}

/// `bytes` made JSON-safe the upstream way: UTF-8 text when valid, else
/// each byte as one Latin-1 character.
pub fn bytes_to_json_string(bytes: &[u8]) -> String {
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

/// The value under `key` unless it is missing or `null`.
fn present<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).filter(|v| !v.is_null())
}

/// `str()` of the metadata field, else of the event field if non-empty.
fn text_field(
    metadata: Option<&Map<String, Value>>,
    event: &Map<String, Value>,
    meta_key: &str,
    event_key: &str,
) -> Option<String> {
    metadata
        .and_then(|m| present(m, meta_key))
        .map(|v| py_str(v).into_owned())
        .or_else(|| {
            present(event, event_key)
                .map(|v| py_str(v).into_owned())
                .filter(|s| !s.is_empty())
        })
}

/// What Python's `int` extraction accepts: integers in i64, and bools.
fn python_int(v: &Value) -> Option<i64> {
    match v {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64(),
        _ => None,
    }
}

fn category_for(ws_type: &str) -> &'static str {
    if ws_type.contains("_snapshot") || ws_type.contains("snapshot_") {
        "S"
    } else if WSE_EVENT_TYPES.contains(&ws_type) {
        "WSE"
    } else {
        "U"
    }
}

/// The envelope's `p`: the `payload` object, or the event itself, without
/// `_metadata`, with `event_type` filled from `type`.
fn payload_of(event: &Map<String, Value>) -> Map<String, Value> {
    let source = match present(event, "payload") {
        Some(Value::Object(payload)) => payload,
        _ => event,
    };
    let mut payload: Map<String, Value> = source
        .iter()
        .filter(|(k, _)| k.as_str() != "_metadata")
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !payload.contains_key("event_type")
        && let Some(t) = present(&payload, "type").cloned()
    {
        payload.insert("event_type".into(), t);
    }
    payload
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::{Duration, UNIX_EPOCH};

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => unreachable!("test input is an object"),
        }
    }

    fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(1_714_564_800_500)
    }

    fn run(event: Value, map: Value) -> Map<String, Value> {
        transform_event_at(&obj(event), 42, &obj(map), now())
    }

    #[test]
    fn full_event_with_metadata() {
        let out = run(
            json!({
                "event_type": "OrderPlaced",
                "order_id": 5,
                "correlation_id": "",
                "_metadata": {
                    "event_id": "e-1",
                    "timestamp": "2024-05-01T12:00:00Z",
                    "correlation_id": "c-1",
                    "priority": 8,
                    "trace_id": "tr-1",
                    "version": 3
                }
            }),
            json!({"OrderPlaced": "order_placed"}),
        );
        assert_eq!(
            Value::Object(out),
            json!({
                "c": "U",
                "t": "order_placed",
                "id": "e-1",
                "ts": "2024-05-01T12:00:00Z",
                "seq": 42,
                "p": {"event_type": "OrderPlaced", "order_id": 5, "correlation_id": ""},
                "v": 1,
                "original_event_type": "OrderPlaced",
                "latency_ms": 500,
                "cid": "c-1",
                "pri": 8,
                "event_version": 3,
                "trace_id": "tr-1"
            })
        );
    }

    #[test]
    fn bare_event_gets_defaults() {
        let out = run(json!({"x": 1}), json!({}));
        assert_eq!(out["t"], "unknown");
        assert_eq!(out["c"], "U");
        assert_eq!(out["v"], 1);
        assert_eq!(out["event_version"], 1);
        assert_eq!(out["p"], json!({"x": 1}));
        assert_eq!(out["ts"], "2024-05-01T12:00:00.500000Z");
        let id = uuid::Uuid::parse_str(out["id"].as_str().unwrap()).unwrap();
        assert_eq!(id.get_version_num(), 7);
        for absent in [
            "original_event_type",
            "latency_ms",
            "cid",
            "pri",
            "trace_id",
        ] {
            assert!(!out.contains_key(absent), "{absent}");
        }
    }

    #[test]
    fn type_resolution_and_lowercasing() {
        let out = run(json!({"type": "UserJoined", "event_type": null}), json!({}));
        assert_eq!(out["t"], "userjoined");
        assert_eq!(out["original_event_type"], "UserJoined");
        assert_eq!(
            out["p"]["event_type"],
            Value::Null,
            "present as null: not filled"
        );
        let out = run(json!({"type": "UserJoined"}), json!({}));
        assert_eq!(out["p"]["event_type"], "UserJoined");

        let out = run(json!({"event_type": "chat", "type": "Other"}), json!({}));
        assert_eq!(out["t"], "chat");
        assert!(!out.contains_key("original_event_type"));

        let out = run(json!({"event_type": 7}), json!({"7": "seven"}));
        assert_eq!(out["t"], "seven");
        assert_eq!(out["original_event_type"], "7");

        let out = run(json!({"event_type": "x"}), json!({"x": null}));
        assert_eq!(out["t"], "None", "str(None), as upstream");
    }

    #[test]
    fn categories() {
        let cat = |t: &str| run(json!({"event_type": t}), json!({}))["c"].clone();
        assert_eq!(cat("price_snapshot"), "S");
        assert_eq!(cat("snapshot_complete"), "S");
        assert_eq!(cat("get_snapshot_now"), "S");
        assert_eq!(cat("error"), "WSE");
        assert_eq!(cat("pong"), "WSE");
        assert_eq!(cat("server_hello"), "U", "not in the transformer's list");
        assert_eq!(cat("trade"), "U");
        let out = run(json!({"event_type": "error", "c": "X"}), json!({}));
        assert_eq!(out["c"], "X");
    }

    #[test]
    fn payload_selection() {
        let out = run(
            json!({"type": "t", "payload": {"a": 1, "_metadata": {"x": 1}}, "other": 2}),
            json!({}),
        );
        assert_eq!(out["p"], json!({"a": 1}), "nested _metadata dropped too");
        let out = run(json!({"type": "t", "payload": [1, 2]}), json!({}));
        assert_eq!(
            out["p"],
            json!({"type": "t", "payload": [1, 2], "event_type": "t"})
        );
    }

    #[test]
    fn event_level_fallbacks() {
        let out = run(
            json!({
                "event_type": "a",
                "event_id": 99,
                "timestamp": "2024-05-01T12:00:01Z",
                "correlation_id": "c-2",
                "pri": 10,
                "trace_id": "",
                "version": true,
                "_metadata": "not an object"
            }),
            json!({}),
        );
        assert_eq!(out["id"], "99");
        assert_eq!(out["ts"], "2024-05-01T12:00:01Z");
        assert_eq!(out["latency_ms"], -500);
        assert_eq!(out["cid"], "c-2");
        assert_eq!(out["pri"], 10);
        assert_eq!(out["event_version"], 1, "True is int 1");
        assert!(
            !out.contains_key("trace_id"),
            "empty event trace_id ignored"
        );
    }

    #[test]
    fn version_precedence_and_non_integers() {
        let v = |ev: Value| run(ev, json!({}))["event_version"].clone();
        assert_eq!(v(json!({"version": 2, "_metadata": {"version": 5}})), 2);
        assert_eq!(v(json!({"_metadata": {"version": 5}})), 5);
        assert_eq!(v(json!({"version": 2.5})), 1);
        assert_eq!(v(json!({"version": "3"})), 1);
        assert_eq!(v(json!({"version": u64::MAX})), 1);
        assert_eq!(v(json!({"version": false})), 0);
    }

    #[test]
    fn unparsable_timestamp_is_kept_without_latency() {
        let out = run(json!({"timestamp": "yesterday"}), json!({}));
        assert_eq!(out["ts"], "yesterday");
        assert!(!out.contains_key("latency_ms"));
    }

    #[test]
    fn existing_envelopes_pass_through() {
        let env = json!({"v": 1, "t": "x", "p": {}, "id": "i", "ts": "now", "extra": true});
        let out = run(env.clone(), json!({}));
        let mut expected = env;
        expected["seq"] = json!(42);
        assert_eq!(Value::Object(out), expected);

        let with_seq = json!({"v": 1, "t": "x", "p": {}, "id": "i", "ts": "now", "seq": 1});
        assert_eq!(Value::Object(run(with_seq.clone(), json!({}))), with_seq);

        // Presence is enough, even as null.
        let nulls = json!({"v": null, "t": null, "p": null, "id": null, "ts": null});
        assert_eq!(run(nulls, json!({}))["seq"], 42);
    }

    #[test]
    fn bytes_conversion() {
        assert_eq!(bytes_to_json_string(b"caf\xc3\xa9"), "café");
        assert_eq!(bytes_to_json_string(b"caf\xe9"), "café");
        assert_eq!(bytes_to_json_string(b""), "");
    }
}
