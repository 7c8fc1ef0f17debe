//! Frames of the session start: `server_ready` (§3.1), `server_hello`
//! (§3.3) and the authentication error (§2.3).
//!
//! These are the frames upstream built from JSON maps, so their keys are
//! in alphabetical order at every level. We serialise private structs whose
//! fields are declared in that order: the output is byte-identical to
//! upstream's and does not depend on serde_json's `preserve_order` feature.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use uuid::Uuid;

use super::clock::rfc3339_millis;

/// Highest protocol version the server negotiates: `server_hello` answers
/// `min(client protocol_version, MAX_PROTOCOL_VERSION)`.
pub const MAX_PROTOCOL_VERSION: u64 = 2;

/// Version of the upstream server this implementation is wire-compatible
/// with; the natural value for `server_hello.server_version`.
pub const COMPAT_SERVER_VERSION: &str = "2.5.1";

/// `p.message` of `server_ready`.
pub const SERVER_READY_MESSAGE: &str = "Connection established (Rust transport)";

/// Serialise a frame struct. Only used on structs of strings, integers and
/// booleans, for which serde_json cannot fail.
pub(crate) fn to_json<T: Serialize>(frame: &T) -> String {
    serde_json::to_string(frame).expect("frames hold only strings, integers and booleans")
}

/// Inputs of [`server_ready`].
#[derive(Clone, Copy, Debug)]
pub struct ServerReady<'a> {
    /// The connection id (a UUIDv7 string).
    pub connection_id: &'a str,
    /// The JWT `sub` of the connection.
    pub user_id: &'a str,
    /// Whether the server was built with `recovery_enabled`; clients only
    /// ever ask for recovery when this is true.
    pub recovery_enabled: bool,
}

#[derive(Serialize)]
struct ReadyFrame<'a> {
    c: &'static str,
    id: &'a str,
    p: ReadyPayload<'a>,
    seq: u32,
    t: &'static str,
    ts: &'a str,
    v: u32,
}

#[derive(Serialize)]
struct ReadyPayload<'a> {
    details: ReadyDetails<'a>,
    message: &'static str,
}

#[derive(Serialize)]
struct ReadyDetails<'a> {
    connection_id: &'a str,
    features: ReadyFeatures,
    server_time: &'a str,
    user_id: &'a str,
    version: u32,
}

#[derive(Serialize)]
struct ReadyFeatures {
    batching: bool,
    circuit_breaker: bool,
    compression: bool,
    encryption: bool,
    priority_queue: bool,
    recovery: bool,
    rust_jwt: bool,
    rust_transport: bool,
}

/// The `server_ready` frame sent first on a JWT-authenticated connection.
///
/// `message_id` must be a fresh UUIDv7 (`Uuid::now_v7()`); `now` becomes
/// both `ts` and `p.details.server_time`.
#[must_use]
pub fn server_ready(ready: &ServerReady<'_>, message_id: Uuid, now: SystemTime) -> String {
    let ts = rfc3339_millis(now);
    let mut id_buf = Uuid::encode_buffer();
    let id = message_id.hyphenated().encode_lower(&mut id_buf);
    to_json(&ReadyFrame {
        c: "WSE",
        id,
        p: ReadyPayload {
            details: ReadyDetails {
                connection_id: ready.connection_id,
                features: ReadyFeatures {
                    batching: true,
                    circuit_breaker: true,
                    compression: true,
                    encryption: false,
                    priority_queue: true,
                    recovery: ready.recovery_enabled,
                    rust_jwt: true,
                    rust_transport: true,
                },
                server_time: &ts,
                user_id: ready.user_id,
                version: 1,
            },
            message: SERVER_READY_MESSAGE,
        },
        seq: 1,
        t: "server_ready",
        ts: &ts,
        v: 1,
    })
}

/// Inputs of [`server_hello`].
#[derive(Clone, Copy, Debug)]
pub struct ServerHello<'a> {
    /// The connection id.
    pub connection_id: &'a str,
    /// `p.protocol_version` of the `client_hello` being answered.
    pub client_protocol_version: u64,
    /// Whether the server was built with `recovery_enabled`.
    pub recovery_enabled: bool,
    /// Whether this server is a cluster node (upstream: whether
    /// `connect_cluster()` has been called).
    pub cluster_enabled: bool,
    /// The server's base64 public key, only in the hello that completed a
    /// key exchange; `Some` also sets `features.encryption`.
    pub encryption_public_key: Option<&'a str>,
    /// Configured inbound `max_message_size`, in bytes.
    pub max_message_size: u64,
    /// Configured send_event bucket capacity (sent as an integer).
    pub rate_limit_capacity: f64,
    /// Configured send_event bucket refill per second (sent as an integer).
    pub rate_limit_refill: f64,
    /// Server ping interval (sent in milliseconds).
    pub ping_interval: Duration,
    /// `server_version` to report, usually [`COMPAT_SERVER_VERSION`].
    pub server_version: &'a str,
}

#[derive(Serialize)]
struct HelloFrame<'a> {
    c: &'static str,
    p: HelloPayload<'a>,
    t: &'static str,
    v: u32,
}

#[derive(Serialize)]
struct HelloPayload<'a> {
    connection_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_public_key: Option<&'a str>,
    features: HelloFeatures,
    limits: HelloLimits,
    ping_interval: u64,
    protocol_version: u64,
    server_time: &'a str,
    server_version: &'a str,
}

#[derive(Serialize)]
struct HelloFeatures {
    batching: bool,
    cluster: bool,
    compression: bool,
    encryption: bool,
    msgpack: bool,
    priority_queue: bool,
    recovery: bool,
}

#[derive(Serialize)]
struct HelloLimits {
    max_message_size: u64,
    rate_limit_capacity: u64,
    rate_limit_refill: u64,
}

/// Float configuration values are sent truncated to integers (negative and
/// NaN become 0, as Rust's saturating `as` does upstream).
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(crate) fn float_to_wire_int(value: f64) -> u64 {
    value as u64
}

/// The `server_hello` frame answering a `client_hello` (no `id`/`ts`/`seq`).
#[must_use]
pub fn server_hello(hello: &ServerHello<'_>, now: SystemTime) -> String {
    let server_time = rfc3339_millis(now);
    to_json(&HelloFrame {
        c: "WSE",
        p: HelloPayload {
            connection_id: hello.connection_id,
            encryption_public_key: hello.encryption_public_key,
            features: HelloFeatures {
                batching: true,
                cluster: hello.cluster_enabled,
                compression: true,
                encryption: hello.encryption_public_key.is_some(),
                msgpack: true,
                priority_queue: true,
                recovery: hello.recovery_enabled,
            },
            limits: HelloLimits {
                max_message_size: hello.max_message_size,
                rate_limit_capacity: float_to_wire_int(hello.rate_limit_capacity),
                rate_limit_refill: float_to_wire_int(hello.rate_limit_refill),
            },
            ping_interval: u64::try_from(hello.ping_interval.as_millis()).unwrap_or(u64::MAX),
            protocol_version: hello.client_protocol_version.min(MAX_PROTOCOL_VERSION),
            server_time: &server_time,
            server_version: hello.server_version,
        },
        t: "server_hello",
        v: 1,
    })
}

#[derive(Serialize)]
struct AuthErrorFrame<'a> {
    c: &'static str,
    p: AuthErrorPayload<'a>,
    t: &'static str,
    v: u32,
}

#[derive(Serialize)]
struct AuthErrorPayload<'a> {
    code: &'a str,
    message: &'a str,
    timestamp: &'a str,
}

/// The single text frame sent before closing a connection that failed
/// authentication (§2.3); `code` is `AUTH_REQUIRED` or `AUTH_FAILED`.
///
/// `crate::auth::AuthError` knows its code and message; this only lays out
/// the bytes.
#[must_use]
pub fn auth_error(code: &str, message: &str, now: SystemTime) -> String {
    let timestamp = rfc3339_millis(now);
    to_json(&AuthErrorFrame {
        c: "WSE",
        p: AuthErrorPayload {
            code,
            message,
            timestamp: &timestamp,
        },
        t: "error",
        v: 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::time::UNIX_EPOCH;

    fn at(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    /// Re-serialising through `serde_json::Value` (a sorted map) must not
    /// change a map-built frame: proves the keys are alphabetical.
    fn assert_alphabetical(frame: &str) {
        let value: Value = serde_json::from_str(frame).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(value.to_string(), frame);
    }

    fn uuid(s: &str) -> Uuid {
        Uuid::parse_str(s).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn server_ready_matches_the_capture() {
        let frame = server_ready(
            &ServerReady {
                connection_id: "01a21b6e-78cc-7873-ba73-2129043bfd6f",
                user_id: "alice",
                recovery_enabled: false,
            },
            uuid("01a21b6e-78d2-7303-a219-48e6ad4d82ed"),
            at(1_795_756_554_450),
        );
        let want = concat!(
            r#"{"c":"WSE","id":"01a21b6e-78d2-7303-a219-48e6ad4d82ed","p":{"details":{"#,
            r#""connection_id":"01a21b6e-78cc-7873-ba73-2129043bfd6f","#,
            r#""features":{"batching":true,"circuit_breaker":true,"compression":true,"#,
            r#""encryption":false,"priority_queue":true,"recovery":false,"#,
            r#""rust_jwt":true,"rust_transport":true},"#,
            r#""server_time":"2026-11-27T05:15:54.450Z","user_id":"alice","version":1},"#,
            r#""message":"Connection established (Rust transport)"},"#,
            r#""seq":1,"t":"server_ready","ts":"2026-11-27T05:15:54.450Z","v":1}"#
        );
        assert_eq!(frame, want);
        assert_alphabetical(&frame);
    }

    #[test]
    fn server_ready_escapes_the_user_id_and_reports_recovery() {
        let frame = server_ready(
            &ServerReady {
                connection_id: "c",
                user_id: "a\"b\\c\u{1}",
                recovery_enabled: true,
            },
            Uuid::now_v7(),
            at(0),
        );
        let v: Value = serde_json::from_str(&frame).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(v["p"]["details"]["user_id"], "a\"b\\c\u{1}");
        assert_eq!(v["p"]["details"]["features"]["recovery"], true);
        let id = v["id"].as_str().unwrap_or_default();
        assert_eq!(uuid(id).get_version_num(), 7);
        assert_alphabetical(&frame);
    }

    fn hello() -> ServerHello<'static> {
        ServerHello {
            connection_id: "01a21b6e-78cc-7873-ba73-2129043bfd6f",
            client_protocol_version: 1,
            recovery_enabled: true,
            cluster_enabled: false,
            encryption_public_key: None,
            max_message_size: 1_048_576,
            rate_limit_capacity: 100_000.0,
            rate_limit_refill: 10_000.0,
            ping_interval: Duration::from_secs(25),
            server_version: COMPAT_SERVER_VERSION,
        }
    }

    #[test]
    fn server_hello_matches_the_capture() {
        let frame = server_hello(&hello(), at(1_795_756_554_450));
        let want = concat!(
            r#"{"c":"WSE","p":{"connection_id":"01a21b6e-78cc-7873-ba73-2129043bfd6f","#,
            r#""features":{"batching":true,"cluster":false,"compression":true,"#,
            r#""encryption":false,"msgpack":true,"priority_queue":true,"recovery":true},"#,
            r#""limits":{"max_message_size":1048576,"rate_limit_capacity":100000,"#,
            r#""rate_limit_refill":10000},"ping_interval":25000,"protocol_version":1,"#,
            r#""server_time":"2026-11-27T05:15:54.450Z","server_version":"2.5.1"},"#,
            r#""t":"server_hello","v":1}"#
        );
        assert_eq!(frame, want);
        assert_alphabetical(&frame);
    }

    #[test]
    fn server_hello_with_key_and_version_cap() {
        let frame = server_hello(
            &ServerHello {
                client_protocol_version: 7,
                cluster_enabled: true,
                encryption_public_key: Some("BPUB=="),
                rate_limit_capacity: 99.9,
                rate_limit_refill: -3.0,
                ..hello()
            },
            at(0),
        );
        let v: Value = serde_json::from_str(&frame).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(v["p"]["protocol_version"], 2);
        assert_eq!(v["p"]["encryption_public_key"], "BPUB==");
        assert_eq!(v["p"]["features"]["encryption"], true);
        assert_eq!(v["p"]["features"]["cluster"], true);
        assert_eq!(v["p"]["limits"]["rate_limit_capacity"], 99);
        assert_eq!(v["p"]["limits"]["rate_limit_refill"], 0);
        assert_alphabetical(&frame);
        let zero = server_hello(
            &ServerHello {
                client_protocol_version: 0,
                ..hello()
            },
            at(0),
        );
        assert!(zero.contains(r#""protocol_version":0,"#));
    }

    #[test]
    fn auth_error_matches_the_capture() {
        let frame = auth_error(
            "AUTH_REQUIRED",
            "No JWT cookie or Authorization header",
            at(1_795_756_218_348),
        );
        assert_eq!(
            frame,
            concat!(
                r#"{"c":"WSE","p":{"code":"AUTH_REQUIRED","#,
                r#""message":"No JWT cookie or Authorization header","#,
                r#""timestamp":"2026-11-27T05:10:18.348Z"},"t":"error","v":1}"#
            )
        );
        assert_alphabetical(&frame);
    }
}
