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
//! - [`e2e`]: end-to-end encryption of a connection (key agreement,
//!   sealing its frames at send time, opening what it sends).
//! - [`compression`]: zlib and msgpack helpers of the `send_event` pipeline.
//! - [`rate_limit`]: the token bucket used for outbound and inbound limits.
//! - [`toolkit`]: utilities that Python apps call (priority queues,
//!   sequencers, event matching and transformation).
//! - [`config`]: every server limit with its default; `config::options`
//!   names and documents each option once for every surface.
//! - [`server`]: the [`Server`] handle (start, stop, operations), its
//!   shared state, the accept loop and the ping/idle ticker.
//! - [`ws`]: the WebSocket upgrade and frame codec.
//! - [`session`]: one connection's task (read, route, write).
//! - [`conn`]: a connection as the rest of the server sees it.
//! - [`fanout`]: from a visible log record to subscribers (framed rings,
//!   channels, queue groups, patterns).
//! - [`ops`]: subscribe, recover, send, broadcast, and the client messages
//!   the core answers.
//! - [`events`]: application events and their bounded queue.
//! - [`cluster`]: the seam a cluster plugs into (a replicated publish
//!   path); the replication crate implements it.
//! - [`metrics`]: every metric declared once (`metrics!`): the counters,
//!   the health snapshot, Prometheus text.

pub mod auth;
pub(crate) mod budget;
pub mod cluster;
pub mod compression;
pub mod config;
pub(crate) mod conn;
pub mod crypto;
pub mod e2e;
pub mod events;
pub(crate) mod fanout;
pub mod http;
pub mod metrics;
pub(crate) mod ops;
pub mod presence;
pub mod protocol;
pub mod rate_limit;
pub mod server;
pub(crate) mod session;
mod state;
pub mod tls;
pub mod toolkit;
pub mod topics;
pub mod ws;

pub use cluster::PublishError;
pub use config::{ClusterConfig, EventDelivery, ServerConfig, SlowConsumerPolicy};
pub use conn::ConnId;
pub use events::AppEvent;
pub use metrics::Health;
pub use ops::recovery::{RecoveryError, RecoveryReport, TopicRecovery};
pub use ops::send::SendError;
pub use server::{Server, ServerError};
