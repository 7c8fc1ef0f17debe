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
//!
//! Which option of `ServerConfig` each keyword sets is written once, in
//! `keywords_map!` (or `COMBINED_KEYWORDS` for the keywords applied
//! together); `tests/python/test_options.py` checks it against the
//! constructor's signature, `wse::config::options` and the option tables
//! of docs/OPERATIONS.md, and checks the signature's defaults against
//! `ServerConfig::default()`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use wse::auth::{JwtConfig, JwtOptions, algorithm_from_config};
use wse::config::{ClusterConfig, EventDelivery, SignatureKey};
use wse::http::AdminToken;
use wse::tls::TlsFiles;
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
    /// Client bytes per connection: burst.
    pub inbound_bytes_capacity: usize,
    /// Client bytes per connection per second.
    pub inbound_bytes_refill: usize,
    /// Deepest nesting of a client message.
    pub max_message_depth: usize,
    /// Most values in a client message.
    pub max_message_elements: usize,
    /// Topic patterns per connection (0: unlimited).
    pub max_patterns_per_connection: usize,
    /// Memory the queued events hold at most (estimated).
    pub max_inbound_queue_bytes: usize,
    /// Bytes all connections' queues and read buffers hold together.
    pub queue_memory_budget: usize,
    /// TLS certificate chain (PEM file), with `tls_key`.
    pub tls_cert: Option<String>,
    /// TLS private key (PEM file), with `tls_cert`.
    pub tls_key: Option<String>,
    /// Seconds between checks of the TLS files (0: only `reload_tls()`).
    pub tls_reload_interval: u64,
    /// Where the HTTP API listens (`host:port`; `None`: no HTTP API).
    pub http_listen: Option<String>,
    /// The HTTP API's bearer token.
    pub admin_token: Option<String>,
    /// `GET /metrics` without the admin token.
    pub http_public_metrics: bool,
    /// Largest HTTP batch publish body.
    pub http_max_body: usize,
    /// HTTP requests a second per address without the admin token (0:
    /// unlimited).
    pub http_rate_limit: f64,
    /// HTTP requests an address without the admin token may make at once.
    pub http_rate_burst: f64,
    /// Accept per-message deflate when a client offers it.
    pub permessage_deflate: bool,
    /// Smallest broadcast compressed for deflate clients.
    pub deflate_min_size: usize,
    /// Agree end-to-end encryption with clients that ask.
    pub encryption: bool,
    /// Seconds an end-to-end key may live before its connection is closed
    /// for a rekey (`None`: as long as the connection).
    pub e2e_rekey_interval: Option<f64>,
    /// Close a connection when its JWT expires (4401).
    pub close_on_token_expiry: bool,
    /// Seconds a new connection's topic data waits for its `client_hello`.
    pub e2e_hello_wait: f64,
    /// Verify inbound `sig`s with this HMAC key.
    pub signature_key: Option<Vec<u8>>,
    /// Sockets between accept and completed upgrade.
    pub max_pending_handshakes: usize,
    /// Sockets between accept and completed upgrade from one address (0:
    /// no cap).
    pub max_pending_handshakes_per_ip: usize,
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
    /// This node's id in a cluster (none: a single node).
    pub node_id: Option<u64>,
    /// The peer listener's address, `host:port`.
    pub cluster_listen: Option<String>,
    /// Every member at the cluster's first start, `id=host:port,...`.
    pub cluster_peers: Option<String>,
    /// Run the peer link in plaintext (required until mTLS).
    pub cluster_insecure: bool,
    /// Raft groups topics are hashed into.
    pub cluster_shards: u32,
    /// Seconds between leader heartbeats.
    pub cluster_heartbeat: f64,
    /// Seconds without a leader before an election.
    pub cluster_election_timeout: f64,
    /// Seconds a publish waits for its commit.
    pub cluster_publish_timeout: f64,
    /// Publish ids remembered per shard.
    pub cluster_dedup_window: usize,
    /// Seconds of silence after which a node's users leave presence.
    pub cluster_node_timeout: f64,
    /// Join a running cluster at first start instead of founding one.
    pub cluster_join: bool,
    /// Raft entries between two snapshots of a shard (0: never).
    pub cluster_snapshot_every: u64,
    /// Raft entries kept behind a snapshot.
    pub cluster_snapshot_keep: u64,
}

/// The keywords that map one-to-one onto an option, each written once as
/// `keyword => c.option_path[, via|parse f]`. The one list yields the code
/// that applies them ([`apply_keywords`]) and the table of which option
/// each sets ([`KEYWORD_OPTIONS`], which `tests/python/test_options.py`
/// checks against the constructor's signature and docs/OPERATIONS.md).
macro_rules! keywords_map {
    ($( $field:ident => c.$first:ident $(.$rest:ident)* $(, $kind:ident $f:expr)? ;)*) => {
        /// Each one-to-one keyword and the option it sets.
        const SIMPLE_KEYWORDS: &[(&str, &str)] = &[$(
            (stringify!($field), concat!(stringify!($first) $(, ".", stringify!($rest))*)),
        )*];

        /// Apply the one-to-one keywords of `o` to `c`.
        fn apply_keywords(o: &ServerOptions, c: &mut ServerConfig) -> PyResult<()> {
            $( c.$first $(.$rest)* = wse::option_value!(o.$field.clone() $(, $kind $f)?); )*
            Ok(())
        }
    };
}

keywords_map! {
    host => c.host;
    port => c.port;
    max_connections => c.max_connections;
    max_message_size => c.max_message_size;
    tls_reload_interval => c.tls_reload_interval, via Duration::from_secs;
    http_listen => c.http_listen, parse |v: Option<String>| v.map(|a| a.parse().map_err(|_| {
        PyValueError::new_err(format!("http_listen must be host:port (an IP address), not {a:?}"))
    })).transpose();
    admin_token => c.admin_token, via |t: Option<String>| t.and_then(|t| AdminToken::new(&t));
    http_public_metrics => c.http_public_metrics;
    http_max_body => c.http_max_body;
    http_rate_limit => c.http_rate_limit;
    http_rate_burst => c.http_rate_burst;
    permessage_deflate => c.permessage_deflate;
    deflate_min_size => c.deflate_min_size;
    ping_interval => c.ping_interval, via Duration::from_secs;
    idle_timeout => c.idle_timeout, via Duration::from_secs;
    rate_limit_capacity => c.rate_limit_capacity;
    rate_limit_refill => c.rate_limit_refill;
    inbound_rate_capacity => c.inbound_rate_capacity;
    inbound_rate_refill => c.inbound_rate_refill;
    inbound_bytes_capacity => c.inbound_bytes_capacity;
    inbound_bytes_refill => c.inbound_bytes_refill;
    max_message_depth => c.max_message_depth;
    max_message_elements => c.max_message_elements;
    max_patterns_per_connection => c.max_patterns_per_connection;
    max_inbound_queue_bytes => c.max_inbound_queue_bytes;
    queue_memory_budget => c.queue_memory_budget;
    max_outbound_queue_bytes => c.max_outbound_bytes;
    slow_consumer => c.slow_consumer, parse |v: String| parse_slow_consumer(&v);
    max_inbound_queue_size => c.max_inbound_queue;
    app_events => c.event_delivery, via |queue: bool| if queue {
        EventDelivery::Queue
    } else {
        EventDelivery::Discard
    };
    max_subscriptions_per_connection => c.max_subscriptions_per_connection;
    recovery_enabled => c.recovery_enabled;
    recovery_max_messages => c.recovery_max_messages;
    data_dir => c.data_dir;
    presence_enabled => c.presence_enabled;
    presence_max_data_size => c.presence_max_data_size;
    presence_max_members => c.presence_max_members;
    core_subscriptions => c.core_subscriptions;
    client_publish => c.client_publish;
    server_ready_without_auth => c.server_ready_without_auth;
    worker_threads => c.worker_threads;
    encryption => c.encryption;
    e2e_rekey_interval => c.e2e_rekey_interval,
        parse |s: Option<f64>| s.map(|s| seconds("e2e_rekey_interval", s)).transpose();
    close_on_token_expiry => c.close_on_token_expiry;
    e2e_hello_wait => c.e2e_hello_wait, parse |s| seconds("e2e_hello_wait", s);
    signature_key => c.signature_key, via |k: Option<Vec<u8>>| k.map(SignatureKey);
    max_pending_handshakes => c.max_pending_handshakes;
    max_pending_handshakes_per_ip => c.max_pending_handshakes_per_ip;
    handshake_timeout => c.handshake_timeout, parse |s| seconds("handshake_timeout", s);
    close_grace => c.close_grace, parse |s| seconds("close_grace", s);
    max_topic_bytes => c.max_topic_bytes;
    fanout_frames_per_topic => c.fanout_frames_per_topic;
    write_coalesce => c.write_coalesce, parse |s| seconds("write_coalesce", s);
    durability => c.log.durability,
        parse |d: String| Durability::parse(&d).map_err(PyValueError::new_err);
    // 0 means no limit, as upstream's limits.
    retention_max_bytes => c.log.retention.max_bytes, via limit;
    retention_max_age => c.log.retention.max_age, via |v| limit(v).map(Duration::from_secs);
    retention_max_records => c.log.retention.max_records, via limit;
    recovery_ttl => c.log.tail.idle_ttl, via Duration::from_secs;
    segment_max_bytes => c.log.segment_max_bytes;
    segment_max_age => c.log.segment_max_age, via Duration::from_secs;
    max_open_files => c.log.max_open_files;
    node_id => c.cluster.node_id;
    cluster_listen => c.cluster.listen;
    cluster_peers => c.cluster.peers, parse parse_peers;
    cluster_insecure => c.cluster.insecure;
    cluster_shards => c.cluster.shards;
    cluster_heartbeat => c.cluster.heartbeat, parse |s| seconds("cluster_heartbeat", s);
    cluster_election_timeout => c.cluster.election_timeout,
        parse |s| seconds("cluster_election_timeout", s);
    cluster_publish_timeout => c.cluster.publish_timeout,
        parse |s| seconds("cluster_publish_timeout", s);
    cluster_dedup_window => c.cluster.dedup_window;
    cluster_node_timeout => c.cluster.node_timeout, parse |s| seconds("cluster_node_timeout", s);
    cluster_join => c.cluster.join;
    cluster_snapshot_every => c.cluster.snapshot_every;
    cluster_snapshot_keep => c.cluster.snapshot_keep;
}

/// `id=host:port,...` as the cluster's peer list (`ValueError` otherwise).
fn parse_peers(text: Option<String>) -> PyResult<Vec<(u64, String)>> {
    match text {
        Some(t) => ClusterConfig::parse_peers(&t).map_err(|e| PyValueError::new_err(e.0)),
        None => Ok(Vec::new()),
    }
}

/// The keywords applied together by [`ServerOptions::into_config`] rather
/// than one-to-one, and the option they set: the JWT settings make one
/// `jwt`; the upstream ring settings give the memory tail's defaults,
/// which the `tail_*` keywords override.
const COMBINED_KEYWORDS: &[(&str, &str)] = &[
    ("jwt_secret", "jwt"),
    ("jwt_issuer", "jwt"),
    ("jwt_audience", "jwt"),
    ("jwt_cookie_name", "jwt"),
    ("jwt_previous_secret", "jwt"),
    ("jwt_key_id", "jwt"),
    ("jwt_algorithm", "jwt"),
    ("jwt_private_key", "jwt"),
    ("tls_cert", "tls"),
    ("tls_key", "tls"),
    ("recovery_buffer_size", "log.tail.records_per_topic"),
    ("tail_records_per_topic", "log.tail.records_per_topic"),
    ("recovery_memory_budget", "log.tail.memory_budget"),
    ("tail_memory_budget", "log.tail.memory_budget"),
];

/// Every constructor keyword and the option (`wse::config::options`) it
/// sets, for `_wse_accel._KEYWORD_OPTIONS`.
pub fn keyword_options() -> impl Iterator<Item = (&'static str, &'static str)> {
    SIMPLE_KEYWORDS.iter().chain(COMBINED_KEYWORDS).copied()
}

/// A limit where 0 means none.
fn limit(v: u64) -> Option<u64> {
    (v > 0).then_some(v)
}

/// `disconnect` or `drop` (`ValueError` otherwise).
fn parse_slow_consumer(v: &str) -> PyResult<SlowConsumerPolicy> {
    match v {
        "disconnect" => Ok(SlowConsumerPolicy::Disconnect),
        "drop" => Ok(SlowConsumerPolicy::Drop),
        other => Err(PyValueError::new_err(format!(
            "slow_consumer must be 'disconnect' or 'drop', not {other:?}"
        ))),
    }
}

impl ServerOptions {
    /// The server configuration, validated as upstream validates (errors
    /// are `ValueError`s with upstream's messages).
    pub fn into_config(self) -> PyResult<ServerConfig> {
        let value_error = |e: &dyn std::fmt::Display| PyValueError::new_err(e.to_string());
        // Upstream rejects an unknown algorithm even without a secret.
        let algorithm =
            algorithm_from_config(self.jwt_algorithm.as_deref()).map_err(|e| value_error(&e))?;
        let mut config = ServerConfig::default();
        apply_keywords(&self, &mut config)?;
        config.jwt = match self.jwt_secret {
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
        config.tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: cert.into(),
                key: key.into(),
            }),
            (None, None) => None,
            _ => {
                return Err(PyValueError::new_err(
                    "tls_cert and tls_key go together (the certificate chain and its key)",
                ));
            }
        };
        let tail = &mut config.log.tail;
        tail.records_per_topic = self
            .tail_records_per_topic
            .unwrap_or_else(|| ring_size(self.recovery_buffer_size));
        tail.memory_budget = self
            .tail_memory_budget
            .unwrap_or(self.recovery_memory_budget);
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
