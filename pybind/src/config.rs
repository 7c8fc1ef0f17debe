//! The `RustWSEServer(...)` constructor arguments and how they map onto
//! `wse::ServerConfig` and `wse_log::LogConfig`.
//!
//! The 27 upstream parameters keep their meaning (PYTHON_API.md §2.1). The
//! upstream recovery ring settings map onto the log's memory tail, because
//! in WSE recovery reads the log (memory tail, then disk), not a ring:
//!
//! | upstream parameter | WSE setting |
//! |---|---|
//! | `recovery_buffer_size` (128) | `tail.records_per_topic`, raised to ≥ 16 and rounded up to a power of two as upstream, unless `tail_records_per_topic` is given |
//! | `recovery_ttl` (300 s) | `tail.idle_ttl` |
//! | `recovery_memory_budget` (256 MiB) | `tail.memory_budget`, unless `tail_memory_budget` is given |
//! | `recovery_max_messages` (500) | most messages one recovery request replays (a larger gap is not recovered) |
//! | `max_outbound_queue_bytes` | `max_outbound_bytes` |
//! | `max_inbound_queue_size` | `max_inbound_queue` |
//!
//! The keyword-only options are WSE's own (data directory, durability,
//! retention — 0 meaning unlimited, as upstream's limits —, slow
//! consumers, core subscription handling, client publish, worker threads,
//! ...).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use wse::auth::{JwtConfig, JwtOptions, algorithm_from_config};
use wse::config::{EventDelivery, SignatureKey};
use wse::{ServerConfig, SlowConsumerPolicy};
use wse_log::Durability;

/// Every constructor argument, as given.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Bind address.
    pub host: String,
    /// Bind port (0 picks a free one).
    pub port: u16,
    /// Registered connections at most.
    pub max_connections: usize,
    /// HS256 secret or RS256/ES256 PEM public key; enables auth.
    pub jwt_secret: Option<Vec<u8>>,
    /// Required `iss`.
    pub jwt_issuer: Option<String>,
    /// Required `aud`.
    pub jwt_audience: Option<String>,
    /// Cookie carrying the token.
    pub jwt_cookie_name: Option<String>,
    /// Rotation key.
    pub jwt_previous_secret: Option<Vec<u8>>,
    /// Required header `kid`.
    pub jwt_key_id: Option<String>,
    /// `HS256`, `RS256` or `ES256`.
    pub jwt_algorithm: Option<String>,
    /// PEM private key, validated then discarded.
    pub jwt_private_key: Option<Vec<u8>>,
    /// Inbound event queue capacity.
    pub max_inbound_queue_size: usize,
    /// Stamp broadcasts and serve recovery.
    pub recovery_enabled: bool,
    /// Upstream ring size: the default memory tail size.
    pub recovery_buffer_size: usize,
    /// Upstream ring idle lifetime: the tail's idle TTL (seconds).
    pub recovery_ttl: u64,
    /// Messages one recovery request replays.
    pub recovery_max_messages: u64,
    /// Upstream ring memory budget: the default tail memory budget.
    pub recovery_memory_budget: usize,
    /// Presence tracking (the CRDT kept in the topic logs).
    pub presence_enabled: bool,
    /// Largest presence data per user.
    pub presence_max_data_size: usize,
    /// Users per topic at most.
    pub presence_max_members: usize,
    /// `send_event` bucket capacity.
    pub rate_limit_capacity: f64,
    /// `send_event` bucket refill per second.
    pub rate_limit_refill: f64,
    /// Largest inbound frame and message.
    pub max_message_size: usize,
    /// Seconds between server pings.
    pub ping_interval: u64,
    /// Seconds of client silence before a close.
    pub idle_timeout: u64,
    /// Unsent bytes per connection (0 = unlimited).
    pub max_outbound_queue_bytes: usize,
    /// Topics per connection (0 = unlimited).
    pub max_subscriptions_per_connection: usize,
    /// The log's directory (`None`: a temporary directory per run).
    pub data_dir: Option<PathBuf>,
    /// `always`, `interval`, `interval:<ms>` or `never`.
    pub durability: String,
    /// Bytes of log kept per topic (0 = unlimited).
    pub retention_max_bytes: u64,
    /// Seconds of log kept per topic (0 = unlimited).
    pub retention_max_age: u64,
    /// Records kept per topic (0 = no record limit).
    pub retention_max_records: u64,
    /// Newest records kept in memory per topic (`None`: from
    /// `recovery_buffer_size`).
    pub tail_records_per_topic: Option<usize>,
    /// Bytes of all memory tails (`None`: `recovery_memory_budget`).
    pub tail_memory_budget: Option<usize>,
    /// `disconnect` or `drop`.
    pub slow_consumer: String,
    /// The core answers `subscription_update`.
    pub core_subscriptions: bool,
    /// Clients may publish.
    pub client_publish: bool,
    /// Tokio worker threads.
    pub worker_threads: usize,
    /// Send `server_ready` without JWT too.
    pub server_ready_without_auth: bool,
    /// Queue events for the app (false: a standalone server drops them).
    pub app_events: bool,
    /// Client messages per connection: burst.
    pub inbound_rate_capacity: f64,
    /// Client messages per connection per second.
    pub inbound_rate_refill: f64,
    /// Memory the queued events hold at most (estimated).
    pub max_inbound_queue_bytes: usize,
    /// Agree end-to-end encryption with clients that ask.
    pub encryption: bool,
    /// Seconds an end-to-end key may live before its connection is closed
    /// for a rekey (`None`: as long as the connection).
    pub e2e_rekey_interval: Option<f64>,
    /// Verify inbound `sig`s with this HMAC key.
    pub signature_key: Option<Vec<u8>>,
    /// Sockets between accept and completed upgrade.
    pub max_pending_handshakes: usize,
    /// Seconds from accept to completed upgrade.
    pub handshake_timeout: f64,
    /// Seconds a closing connection gets for its last bytes and the Close.
    pub close_grace: f64,
    /// Longest topic name in bytes.
    pub max_topic_bytes: usize,
    /// Framed messages kept in memory per subscribed topic.
    pub fanout_frames_per_topic: usize,
    /// Seconds topic messages may wait to share one write (0: at once).
    pub write_coalesce: f64,
    /// A log segment is sealed past this many bytes.
    pub segment_max_bytes: u64,
    /// ... or when its first record is this many seconds old.
    pub segment_max_age: u64,
    /// Segment files the log keeps open at once.
    pub max_open_files: usize,
}

impl ServerOptions {
    /// The server configuration, validated as upstream validates (errors
    /// are `ValueError`s with upstream's messages).
    pub fn into_config(self) -> PyResult<ServerConfig> {
        let value_error = |e: &dyn std::fmt::Display| PyValueError::new_err(e.to_string());
        // Upstream rejects an unknown algorithm even without a secret.
        let algorithm =
            algorithm_from_config(self.jwt_algorithm.as_deref()).map_err(|e| value_error(&e))?;
        let jwt = match self.jwt_secret {
            Some(secret) => {
                let options = JwtOptions {
                    algorithm: Some(algorithm),
                    secret,
                    previous_secret: self.jwt_previous_secret,
                    private_key: self.jwt_private_key,
                    key_id: self.jwt_key_id,
                    issuer: self.jwt_issuer,
                    audience: self.jwt_audience,
                    cookie_name: self.jwt_cookie_name,
                };
                Some(Arc::new(
                    JwtConfig::new(options).map_err(|e| value_error(&e))?,
                ))
            }
            None => None,
        };
        let slow_consumer = match self.slow_consumer.as_str() {
            "disconnect" => SlowConsumerPolicy::Disconnect,
            "drop" => SlowConsumerPolicy::Drop,
            other => {
                return Err(PyValueError::new_err(format!(
                    "slow_consumer must be 'disconnect' or 'drop', not {other:?}"
                )));
            }
        };
        let mut config = ServerConfig {
            host: self.host,
            port: self.port,
            max_connections: self.max_connections,
            jwt,
            max_message_size: self.max_message_size,
            ping_interval: Duration::from_secs(self.ping_interval),
            idle_timeout: Duration::from_secs(self.idle_timeout),
            rate_limit_capacity: self.rate_limit_capacity,
            rate_limit_refill: self.rate_limit_refill,
            inbound_rate_capacity: self.inbound_rate_capacity,
            max_inbound_queue_bytes: self.max_inbound_queue_bytes,
            inbound_rate_refill: self.inbound_rate_refill,
            max_outbound_bytes: self.max_outbound_queue_bytes,
            slow_consumer,
            max_inbound_queue: self.max_inbound_queue_size,
            event_delivery: if self.app_events {
                EventDelivery::Queue
            } else {
                EventDelivery::Discard
            },
            max_subscriptions_per_connection: self.max_subscriptions_per_connection,
            recovery_enabled: self.recovery_enabled,
            recovery_max_messages: self.recovery_max_messages,
            data_dir: self.data_dir,
            presence_enabled: self.presence_enabled,
            presence_max_data_size: self.presence_max_data_size,
            presence_max_members: self.presence_max_members,
            core_subscriptions: self.core_subscriptions,
            client_publish: self.client_publish,
            server_ready_without_auth: self.server_ready_without_auth,
            worker_threads: self.worker_threads,
            encryption: self.encryption,
            e2e_rekey_interval: self
                .e2e_rekey_interval
                .map(|s| seconds("e2e_rekey_interval", s))
                .transpose()?,
            signature_key: self.signature_key.map(SignatureKey),
            max_pending_handshakes: self.max_pending_handshakes,
            handshake_timeout: seconds("handshake_timeout", self.handshake_timeout)?,
            close_grace: seconds("close_grace", self.close_grace)?,
            max_topic_bytes: self.max_topic_bytes,
            fanout_frames_per_topic: self.fanout_frames_per_topic,
            write_coalesce: seconds("write_coalesce", self.write_coalesce)?,
            ..ServerConfig::default()
        };
        let log = &mut config.log;
        log.durability = Durability::parse(&self.durability).map_err(PyValueError::new_err)?;
        let limit = |v: u64| (v > 0).then_some(v);
        log.retention.max_bytes = limit(self.retention_max_bytes);
        log.retention.max_age = limit(self.retention_max_age).map(Duration::from_secs);
        log.retention.max_records = limit(self.retention_max_records);
        log.tail.records_per_topic = self
            .tail_records_per_topic
            .unwrap_or_else(|| ring_size(self.recovery_buffer_size));
        log.tail.memory_budget = self
            .tail_memory_budget
            .unwrap_or(self.recovery_memory_budget);
        log.tail.idle_ttl = Duration::from_secs(self.recovery_ttl);
        log.segment_max_bytes = self.segment_max_bytes;
        log.segment_max_age = Duration::from_secs(self.segment_max_age);
        log.max_open_files = self.max_open_files;
        config.validate().map_err(|e| PyValueError::new_err(e.0))?;
        Ok(config)
    }
}

/// A duration given in (fractional) seconds; `ValueError` when negative
/// or not finite.
pub(crate) fn seconds(name: &str, secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs).map_err(|_| {
        PyValueError::new_err(format!(
            "{name} must be a non-negative number of seconds, not {secs}"
        ))
    })
}

/// Upstream's ring size rule: at least 16, rounded up to a power of two.
pub fn ring_size(requested: usize) -> usize {
    requested
        .max(16)
        .checked_next_power_of_two()
        .unwrap_or(usize::MAX)
}
