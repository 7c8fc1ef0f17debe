//! Frames the core sends during a session: heartbeats (§8), the
//! key-exchange error (§13) and the `send_event` rate-limit notices (§15).
//!
//! Upstream wrote these from string templates, so their key order is
//! `c`, `t`, `p`, `v` rather than alphabetical, and it matters: the Python
//! client recognises `ping` and `PONG` only by finding `"t":"ping"` /
//! `"t":"PONG"` within the first 25 characters of a text frame and
//! reconnects when it has seen neither for 40 s. Every builder here is
//! pinned byte for byte by a test.

use std::fmt::Write as _;
use std::time::SystemTime;

use super::clock::{epoch_millis, push_rfc3339_millis};
use super::handshake::float_to_wire_int;

/// Opening of the server heartbeat; the timestamp and `"}}` follow.
const PING_HEAD: &str = r#"{"c":"WSE","t":"ping","p":{"server_time":""#;

/// The server heartbeat sent every `ping_interval`:
/// `{"c":"WSE","t":"ping","p":{"server_time":"<RFC 3339 ms Z>"}}` (no `v`).
#[must_use]
pub fn ping(now: SystemTime) -> String {
    let mut out = String::with_capacity(PING_HEAD.len() + 27);
    out.push_str(PING_HEAD);
    push_rfc3339_millis(&mut out, now);
    out.push_str("\"}}");
    out
}

/// The reply to a client `ping`:
/// `{"c":"WSE","t":"PONG","p":{"client_timestamp":C,"server_timestamp":S,"latency":L},"v":1}`
/// where `S` is `now` in epoch milliseconds and `L = max(0, S - C)`.
///
/// `client_timestamp` is the echoed `p.timestamp` (0 when it was not an
/// integer; see [`super::inbound::TextInbound::Ping`]).
#[must_use]
pub fn pong(client_timestamp: i64, now: SystemTime) -> String {
    let server = epoch_millis(now);
    let latency = server.saturating_sub(client_timestamp).max(0);
    let mut out = String::with_capacity(120);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        r#"{{"c":"WSE","t":"PONG","p":{{"client_timestamp":{client_timestamp},"server_timestamp":{server},"latency":{latency}}},"v":1}}"#
    );
    out
}

/// The error sent when a client's `encryption_public_key` is unusable; a
/// `server_hello` with `encryption:false` follows it.
///
/// `detail` is appended to `ECDH key exchange failed: ` and JSON-escaped.
#[must_use]
pub fn key_exchange_failed(detail: &str) -> String {
    let message = format!("ECDH key exchange failed: {detail}");
    let quoted = serde_json::to_string(&message).expect("a string always serialises");
    format!(
        r#"{{"c":"WSE","t":"error","p":{{"code":"KEY_EXCHANGE_FAILED","message":{quoted},"recoverable":true}}}}"#
    )
}

/// A core `error` frame with `code` and `message` (JSON-escaped);
/// `recoverable: true` because the connection stays open.
#[must_use]
pub fn error(code: &str, message: &str) -> String {
    serde_json::json!({
        "c": "WSE",
        "t": "error",
        "p": {"code": code, "message": message, "recoverable": true},
        "v": 1,
    })
    .to_string()
}

/// The error sent (at most once per second) when `send_event` finds the
/// connection's bucket empty.
pub const RATE_LIMITED: &str = r#"{"c":"WSE","t":"error","p":{"code":"RATE_LIMITED","message":"Rate limit exceeded","retry_after":1.0},"v":1}"#;

/// The warning sent (at most once per second) when `send_event` finds less
/// than 20 % of the bucket left. `capacity` and `tokens` are the bucket's
/// values before the call's token is taken; they are sent truncated to
/// integers: `current_rate = capacity - tokens`, `limit = capacity`,
/// `remaining = tokens`.
#[must_use]
pub fn rate_limit_warning(capacity: f64, tokens: f64) -> String {
    let current_rate = float_to_wire_int(capacity - tokens);
    let limit = float_to_wire_int(capacity);
    let remaining = float_to_wire_int(tokens);
    format!(
        r#"{{"c":"WSE","t":"rate_limit_warning","p":{{"current_rate":{current_rate},"limit":{limit},"remaining":{remaining},"retry_after":1.0}},"v":1}}"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::time::{Duration, UNIX_EPOCH};

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    fn parses(frame: &str) -> Value {
        serde_json::from_str(frame).unwrap_or_else(|e| unreachable!("{e}: {frame}"))
    }

    #[test]
    fn ping_is_byte_exact_and_detectable() {
        let frame = ping(at(1_795_756_556_316));
        assert_eq!(
            frame,
            r#"{"c":"WSE","t":"ping","p":{"server_time":"2026-11-27T05:15:56.316Z"}}"#
        );
        assert!(frame[..25].contains(r#""t":"ping""#));
        parses(&frame);
    }

    #[test]
    fn pong_is_byte_exact_and_detectable() {
        let frame = pong(1_795_756_556_316, at(1_795_756_556_321));
        assert_eq!(
            frame,
            r#"{"c":"WSE","t":"PONG","p":{"client_timestamp":1795756556316,"server_timestamp":1795756556321,"latency":5},"v":1}"#
        );
        assert!(frame[..25].contains(r#""t":"PONG""#));
        parses(&frame);
    }

    #[test]
    fn pong_latency_never_negative() {
        let v = parses(&pong(2_000, at(1_000)));
        assert_eq!(v["p"]["latency"], 0);
        let v = parses(&pong(0, at(1_000)));
        assert_eq!(v["p"]["client_timestamp"], 0);
        assert_eq!(v["p"]["latency"], 1_000);
        let v = parses(&pong(i64::MIN, at(1_000)));
        assert_eq!(v["p"]["latency"], i64::MAX);
    }

    #[test]
    fn key_exchange_failed_frame() {
        assert_eq!(
            key_exchange_failed("Invalid base64: bad"),
            r#"{"c":"WSE","t":"error","p":{"code":"KEY_EXCHANGE_FAILED","message":"ECDH key exchange failed: Invalid base64: bad","recoverable":true}}"#
        );
        let v = parses(&key_exchange_failed("quote \" and \\ and \n"));
        assert_eq!(
            v["p"]["message"],
            "ECDH key exchange failed: quote \" and \\ and \n"
        );
    }

    #[test]
    fn rate_limit_frames() {
        assert_eq!(parses(RATE_LIMITED)["p"]["retry_after"], 1.0);
        assert_eq!(
            rate_limit_warning(100_000.0, 19_999.7),
            r#"{"c":"WSE","t":"rate_limit_warning","p":{"current_rate":80000,"limit":100000,"remaining":19999,"retry_after":1.0},"v":1}"#
        );
        parses(&rate_limit_warning(10.0, 1.5));
    }
}
