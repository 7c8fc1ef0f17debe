//! Server configuration: every limit, with its default and why.
//!
//! Defaults follow the upstream Python API (PYTHON_API.md §2.1) so existing
//! apps behave the same; `wse serve` turns on the standalone features
//! (recovery, core subscriptions, `server_ready` without JWT).
//!
//! [`ServerConfig::default`] is the one place a default is written;
//! [`options::OPTIONS`] names and documents every option and reads its
//! value, and the other surfaces (`wse serve`, the Python constructor, the
//! docs) are derived from or tested against that table.

pub mod cluster;
pub mod options;

use std::path::PathBuf;
use std::time::Duration;

use wse_log::LogConfig;

use crate::auth::JwtConfig;
pub use cluster::ClusterConfig;

/// What happens to a connection whose unsent backlog passes
/// `max_outbound_bytes`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlowConsumerPolicy {
    /// Close it with 1013 (try again later): the client reconnects and
    /// recovers what it missed from the log.
    Disconnect,
    /// Skip it ahead to the newest messages: the next message it gets shows
    /// the gap, and the client's recovery request fills it from the log.
    Drop,
}

/// Where the events for the application go.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum EventDelivery {
    /// Into the bounded inbound queue the app drains (drain mode; the
    /// Python layer's callback mode drains it too).
    Queue,
    /// Nowhere: a standalone server without an app.
    Discard,
}

/// Everything a [`crate::Server`] can be configured with.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to bind (default `127.0.0.1`).
    pub host: String,
    /// Port to bind (default 5007; 0 picks a free port).
    pub port: u16,
    /// Registered connections at most (default 1000); further sockets are
    /// closed before the HTTP response.
    pub max_connections: usize,
    /// Sockets at most between accept and completed upgrade (default 512).
    /// When all are taken, a new socket takes the place of the oldest one
    /// still reading its request (closed), so that idle sockets cannot
    /// lock new clients out.
    pub max_pending_handshakes: usize,
    /// Pending sockets at most from one address, an IPv6 host counted by
    /// its /64 (default 16; 0 = no cap); a further one is closed at
    /// accept. Enough for a browser's parallel connects and a small NAT
    /// reconnecting at once; behind a reverse proxy that connects from a
    /// few addresses, or for a load generator on one host, set 0 (or
    /// more). Without it one host could take every pending place.
    pub max_pending_handshakes_per_ip: usize,
    /// Time from accept to completed upgrade (default 5 s). A client sends
    /// its request right after connecting, so a round trip or two is all
    /// it needs, even on a slow mobile link; every second more is a second
    /// an attacker's idle socket holds a pending place.
    pub handshake_timeout: Duration,
    /// Largest upgrade request (default 64 KiB: browsers send large
    /// `Cookie` headers, and a token is only judged after the upgrade).
    pub max_handshake_bytes: usize,
    /// JWT validation; `None` disables auth (the app authenticates).
    pub jwt: Option<std::sync::Arc<JwtConfig>>,
    /// Largest inbound frame and reassembled message (default 1 MiB).
    pub max_message_size: usize,
    /// TLS on the client port (`None`: plain `ws://`): the PEM certificate
    /// chain and key, both or neither. Reloaded on SIGHUP (`wse serve`),
    /// `Server::reload_tls`, and when the files change.
    pub tls: Option<crate::tls::TlsFiles>,
    /// How often the TLS files are checked for a change (default 10 s;
    /// zero: only on SIGHUP or `reload_tls`). A check reads the files'
    /// metadata only.
    pub tls_reload_interval: Duration,
    /// Where the HTTP API listens (`None`: no HTTP API; `wse serve`
    /// defaults to 127.0.0.1:5008). Started by [`crate::http::start`].
    pub http_listen: Option<std::net::SocketAddr>,
    /// The bearer token the HTTP API asks of writes and reads (`None`: the
    /// endpoints that need it answer 403).
    pub admin_token: Option<crate::http::AdminToken>,
    /// `GET /metrics` without the admin token (default off; `/health` and
    /// `/ready` are always open).
    pub http_public_metrics: bool,
    /// Largest body of an HTTP batch publish (default 16 MiB; a single
    /// publish is bounded by `max_message_size`).
    pub http_max_body: usize,
    /// HTTP requests a second per client address, for requests without
    /// the admin token (default 20; 0 = unlimited). Such requests are
    /// probes, scrapers of a public `/metrics` and guesses at the token:
    /// 20 a second is far more than probes need and keeps guessing slow.
    /// Requests with the admin token are never limited (the operator and
    /// backends are trusted with their own rate).
    pub http_rate_limit: f64,
    /// HTTP requests a client address may make at once before
    /// `http_rate_limit` paces it (default 40: two seconds' worth, for a
    /// dashboard or a few probes arriving together).
    pub http_rate_burst: f64,
    /// Accept per-message deflate (RFC 7692) when a client offers it
    /// (default on: browsers offer it on every connection). Each broadcast
    /// is compressed once and shared; clients' compressed messages are
    /// inflated up to `max_message_size`.
    pub permessage_deflate: bool,
    /// Broadcasts smaller than this go uncompressed even to clients that
    /// negotiated deflate (default 256 bytes): below it compression saves
    /// little and costs a compressor pass.
    pub deflate_min_size: usize,
    /// Server `ping` every this long (default 25 s; must stay under the
    /// clients' 40 s liveness check and under `idle_timeout`).
    pub ping_interval: Duration,
    /// Close a connection that sent nothing for this long (default 60 s).
    pub idle_timeout: Duration,
    /// `send_event` token bucket per connection: capacity (default 100,000).
    pub rate_limit_capacity: f64,
    /// `send_event` token bucket refill per second (default 10,000).
    pub rate_limit_refill: f64,
    /// Client messages per connection: burst (default 10,000). Past it the
    /// server stops reading from that client until tokens return, so one
    /// client cannot fill the inbound queue for everyone.
    pub inbound_rate_capacity: f64,
    /// Client messages per connection per second (default 5,000).
    pub inbound_rate_refill: f64,
    /// Client bytes per connection: burst (default 8 MiB; never less than
    /// `max_message_size`, so every allowed message can pass). Counted on
    /// each message as it is taken from the read buffer, before it is
    /// parsed; past it reading pauses until the bytes are earned back, so
    /// large messages cannot buy more parsing than small ones.
    pub inbound_bytes_capacity: usize,
    /// Client bytes per connection per second (default 4 MiB).
    pub inbound_bytes_refill: usize,
    /// Deepest nesting of a client's JSON or msgpack message (default 32,
    /// at most 128). A deeper message is refused with
    /// `MESSAGE_TOO_COMPLEX`; parsing stops at the limit.
    pub max_message_depth: usize,
    /// Most values in a client's JSON or msgpack message (default
    /// 100,000; every scalar, array and object counts one). A 1 MiB
    /// message of empty objects is 350,000 values and tens of MiB parsed;
    /// past the limit it is refused with `MESSAGE_TOO_COMPLEX`, parsed no
    /// further.
    pub max_message_elements: usize,
    /// Unsent bytes at most per connection (default 16 MiB; 0 = no limit).
    pub max_outbound_bytes: usize,
    /// What happens past `max_outbound_bytes` (default disconnect).
    pub slow_consumer: SlowConsumerPolicy,
    /// How long topic messages for a connection may wait so that one write
    /// carries several (default 0: write at once). A few milliseconds cut
    /// the server's CPU per delivery several times at moderate rates, at
    /// that much added latency; replies and the connection's own frames
    /// never wait.
    pub write_coalesce: Duration,
    /// How long a closing connection may take to accept its last bytes and
    /// the Close frame before its socket is dropped (default 10 s; a client
    /// that stopped reading only sees the Close once it reads again).
    pub close_grace: Duration,
    /// Inbound queue capacity in events (default 131,072). When full,
    /// readers wait (TCP back-pressure to the clients); nothing is dropped.
    pub max_inbound_queue: usize,
    /// Memory the queued events hold at most (default 64 MiB), estimated
    /// from each parsed message (`AppEvent::weight`), so that large or
    /// many messages cannot make the queue huge.
    pub max_inbound_queue_bytes: usize,
    /// Where application events go (default the queue).
    pub event_delivery: EventDelivery,
    /// Bytes all connections together may hold in their queues and read
    /// buffers (default 256 MiB; 0 = unlimited). Past it, a connection
    /// holding more than 16 KiB gets nothing more queued (as for a full
    /// queue: `slow_consumer` applies) and a read buffer may not grow
    /// past 16 KiB (reading from that client pauses until there is room): ten thousand clients
    /// that never read cannot hold ten thousand `max_outbound_bytes`.
    /// See `crate::budget`.
    pub queue_memory_budget: usize,
    /// Topics, patterns and queue groups at most per connection (default
    /// 1,024; 0 = unlimited, the Python module's default as upstream's).
    /// Each costs memory on the server (a cursor, a channel); without a
    /// cap one client could subscribe to every name it can make up.
    pub max_subscriptions_per_connection: usize,
    /// Patterns at most per connection (default 64; 0 = unlimited, the
    /// Python module's default). Patterns are matched against every topic
    /// that has no subscriber channel yet, so they cost more than names.
    pub max_patterns_per_connection: usize,
    /// Longest topic name in bytes (default 256).
    pub max_topic_bytes: usize,
    /// Stamp broadcasts with `tp`/`e`/`o` and serve recovery requests
    /// (default false, as upstream; `wse serve` turns it on).
    pub recovery_enabled: bool,
    /// Most messages one recovery request replays (default 500). A larger
    /// gap is not recovered at all (all or nothing, as upstream): the
    /// reply says `recovered: false` with the topic's position.
    pub recovery_max_messages: u64,
    /// The log's data directory; `None` uses a temporary directory removed
    /// at stop (history then lasts one run, as upstream's memory buffers).
    pub data_dir: Option<PathBuf>,
    /// The log's configuration (durability, retention, tail).
    pub log: LogConfig,
    /// Frames kept per topic, already framed, for live fan-out (default
    /// 1024). A subscriber further behind reads from the log.
    pub fanout_frames_per_topic: usize,
    /// Presence tracking (default false).
    pub presence_enabled: bool,
    /// Largest presence data per user, bytes of JSON (default 4096).
    pub presence_max_data_size: usize,
    /// Users per topic at most (default 0 = unlimited).
    pub presence_max_members: usize,
    /// Presence changes are sent once per tick (default 50 ms): a join and
    /// a leave of one user within a tick send nothing, and repeated
    /// updates send only the latest.
    pub presence_tick: Duration,
    /// Handle clients' `subscription_update` in the core (subscribe,
    /// unsubscribe, recover, reply) instead of forwarding it to the app
    /// (default false, so existing apps keep working).
    pub core_subscriptions: bool,
    /// Let clients publish with `{"t":"publish","p":{"topic":..,"data":..}}`
    /// to topics their ACL allows (default false; see docs/PROTOCOL.md).
    pub client_publish: bool,
    /// Send `server_ready` without JWT too (default false: without JWT the
    /// app sends it, as upstream; `wse serve` turns it on).
    pub server_ready_without_auth: bool,
    /// Agree end-to-end encryption with clients that ask for it in
    /// `client_hello` (default true; false answers `encryption:false`).
    pub encryption: bool,
    /// How long a new connection's topic data (live and replayed) waits
    /// for its `client_hello` (default 500 ms; zero: no wait). A client
    /// that asks for encryption then never receives topic data in clear,
    /// even if it subscribes or recovers before its hello (the TypeScript
    /// client does, while it generates its key). Clients that never send
    /// a hello get their topic data after this wait. Only with
    /// `encryption` on.
    pub e2e_hello_wait: Duration,
    /// Close end-to-end encrypted connections whose key is this old, with
    /// code 4000 (`rekey`), so that clients reconnect with a fresh key
    /// (default `None`: keys last as long as the connection). The clients
    /// cannot renegotiate a key on an open connection; they recover what
    /// they missed from the log after reconnecting.
    pub e2e_rekey_interval: Option<Duration>,
    /// Close a JWT-authenticated connection when its token's `exp` passes,
    /// with 4401 `Token expired` (default false: as upstream, a token is
    /// checked once, at the handshake). The TypeScript client retries with
    /// its token-refresh callback; the Python client treats 4401 as final.
    pub close_on_token_expiry: bool,
    /// Verify the HMAC-SHA256 `sig` of every client message with this key
    /// (default `None`: `sig` is passed through unchecked, as upstream).
    /// Messages without a valid `sig` are refused with an
    /// `INVALID_SIGNATURE` error (docs/PROTOCOL.md).
    pub signature_key: Option<SignatureKey>,
    /// Tokio worker threads (default 2).
    pub worker_threads: usize,
    /// This node's part in a cluster (default: none, a single node).
    pub cluster: ClusterConfig,
}

/// The key inbound `sig`s are checked with (kept out of `Debug` output).
#[derive(Clone)]
pub struct SignatureKey(pub Vec<u8>);

impl std::fmt::Debug for SignatureKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignatureKey({} bytes)", self.0.len())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 5007,
            max_connections: 1000,
            max_pending_handshakes: 512,
            max_pending_handshakes_per_ip: 16,
            handshake_timeout: Duration::from_secs(5),
            max_handshake_bytes: 64 * 1024,
            jwt: None,
            max_message_size: 1 << 20,
            tls: None,
            tls_reload_interval: Duration::from_secs(10),
            http_listen: None,
            admin_token: None,
            http_public_metrics: false,
            http_max_body: 16 << 20,
            http_rate_limit: 20.0,
            http_rate_burst: 40.0,
            permessage_deflate: true,
            deflate_min_size: 256,
            ping_interval: Duration::from_secs(25),
            idle_timeout: Duration::from_secs(60),
            rate_limit_capacity: 100_000.0,
            rate_limit_refill: 10_000.0,
            inbound_rate_capacity: 10_000.0,
            inbound_rate_refill: 5_000.0,
            inbound_bytes_capacity: 8 << 20,
            inbound_bytes_refill: 4 << 20,
            max_message_depth: 32,
            max_message_elements: 100_000,
            max_outbound_bytes: 16 << 20,
            slow_consumer: SlowConsumerPolicy::Disconnect,
            write_coalesce: Duration::ZERO,
            close_grace: Duration::from_secs(10),
            max_inbound_queue: 131_072,
            max_inbound_queue_bytes: 64 << 20,
            event_delivery: EventDelivery::Queue,
            queue_memory_budget: 256 << 20,
            max_subscriptions_per_connection: 1024,
            max_patterns_per_connection: 64,
            max_topic_bytes: 256,
            recovery_enabled: false,
            recovery_max_messages: 500,
            data_dir: None,
            log: LogConfig::default(),
            fanout_frames_per_topic: 1024,
            presence_enabled: false,
            presence_max_data_size: 4096,
            presence_max_members: 0,
            presence_tick: Duration::from_millis(50),
            core_subscriptions: false,
            client_publish: false,
            server_ready_without_auth: false,
            encryption: true,
            e2e_hello_wait: Duration::from_millis(500),
            e2e_rekey_interval: None,
            close_on_token_expiry: false,
            signature_key: None,
            worker_threads: 2,
            cluster: ClusterConfig::default(),
        }
    }
}

/// A configuration that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl ServerConfig {
    /// The standalone defaults of `wse serve`: recovery, core subscription
    /// handling and `server_ready` without JWT, data in `./wse-data`.
    pub fn standalone() -> Self {
        Self {
            recovery_enabled: true,
            core_subscriptions: true,
            server_ready_without_auth: true,
            event_delivery: EventDelivery::Discard,
            data_dir: Some("wse-data".into()),
            max_connections: 100_000,
            http_listen: Some(std::net::SocketAddr::from(([127, 0, 0, 1], 5008))),
            ..Self::default()
        }
    }

    /// Check that the values can work together.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ping_interval >= self.idle_timeout {
            return Err(ConfigError(format!(
                "ping_interval ({}s) must be less than idle_timeout ({}s)",
                self.ping_interval.as_secs(),
                self.idle_timeout.as_secs()
            )));
        }
        if self.ping_interval.is_zero() {
            return Err(ConfigError("ping_interval must be positive".into()));
        }
        if self.max_message_size == 0 {
            return Err(ConfigError("max_message_size must be positive".into()));
        }
        if self.max_inbound_queue == 0 {
            return Err(ConfigError("max_inbound_queue must be positive".into()));
        }
        if self.max_inbound_queue_bytes == 0 {
            return Err(ConfigError(
                "max_inbound_queue_bytes must be positive".into(),
            ));
        }
        if self.e2e_rekey_interval.is_some_and(|d| d.is_zero()) {
            return Err(ConfigError(
                "e2e_rekey_interval must be positive when set".into(),
            ));
        }
        if self.signature_key.as_ref().is_some_and(|k| k.0.is_empty()) {
            return Err(ConfigError("signature_key must not be empty".into()));
        }
        if self.worker_threads == 0 {
            return Err(ConfigError("worker_threads must be positive".into()));
        }
        // Zero here would make the server refuse every client.
        if self.max_pending_handshakes == 0 {
            return Err(ConfigError(
                "max_pending_handshakes must be positive".into(),
            ));
        }
        if self.handshake_timeout.is_zero() {
            return Err(ConfigError("handshake_timeout must be positive".into()));
        }
        if self.max_topic_bytes == 0 {
            return Err(ConfigError("max_topic_bytes must be positive".into()));
        }
        if self.fanout_frames_per_topic == 0 {
            return Err(ConfigError(
                "fanout_frames_per_topic must be positive".into(),
            ));
        }
        if self.rate_limit_capacity < 0.0
            || self.rate_limit_refill < 0.0
            || self.inbound_rate_capacity <= 0.0
            || self.inbound_rate_refill <= 0.0
        {
            return Err(ConfigError("rate limits must be positive".into()));
        }
        if !self.http_rate_limit.is_finite() || self.http_rate_limit < 0.0 {
            return Err(ConfigError(
                "http_rate_limit must be 0 (unlimited) or positive".into(),
            ));
        }
        if self.http_rate_limit > 0.0
            && (self.http_rate_burst.is_nan() || self.http_rate_burst < 1.0)
        {
            return Err(ConfigError(
                "http_rate_burst must be at least 1 when http_rate_limit is set".into(),
            ));
        }
        if self.inbound_bytes_capacity == 0 || self.inbound_bytes_refill == 0 {
            return Err(ConfigError(
                "inbound_bytes_capacity and inbound_bytes_refill must be positive".into(),
            ));
        }
        // serde_json stops at 128 levels whatever we allow.
        if !(1..=128).contains(&self.max_message_depth) {
            return Err(ConfigError(
                "max_message_depth must be between 1 and 128".into(),
            ));
        }
        if self.max_message_elements == 0 {
            return Err(ConfigError("max_message_elements must be positive".into()));
        }
        self.cluster.validate()?;
        self.log.validate().map_err(ConfigError)
    }
}
