//! WSE: a real-time WebSocket server whose source of truth is a log.
//!
//! Every topic broadcast is appended to the topic's log (`wse-log`); fan-out,
//! recovery, presence and replication are readers of that log.
//!
//! # Layout
//!
//! - [`protocol`]: the client wire protocol (envelope and category rules,
//!   the exact frames the clients look for, inbound frame classification,
//!   the recovery stamp).
//! - [`auth`]: JWT validation at the handshake and the token sources.
//! - [`topics`]: topic patterns (globs) and per-connection topic ACLs.
//! - [`crypto`]: end-to-end encryption primitives (ECDH P-256, HKDF,
//!   AES-256-GCM) and the HMAC/SHA-256 signing helpers.
//! - [`compression`]: zlib and msgpack helpers of the `send_event` pipeline.
//! - [`rate_limit`]: the token bucket used for outbound and inbound limits.
//! - [`toolkit`]: utilities that Python apps call (priority queues,
//!   sequencers, event matching and transformation).

pub mod auth;
pub mod compression;
pub mod crypto;
pub mod protocol;
pub mod rate_limit;
pub mod toolkit;
pub mod topics;
