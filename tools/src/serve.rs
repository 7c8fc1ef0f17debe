//! `wse serve`: the standalone server.
//!
//! Settings come from, in increasing priority: the built-in defaults
//! (`ServerConfig::standalone`), a TOML file (`--config`), `WSE_*`
//! environment variables, and flags. Without a Python app behind it the
//! server is still complete: it sends `server_ready`, answers clients'
//! `subscription_update` (subscribe, unsubscribe, recover) itself, and with
//! `--client-publish` lets clients publish to topics their ACL allows.
//!
//! Each setting is one field of [`Settings`]: its flag (`--max-connections`),
//! TOML key (`max_connections`) and variable (`WSE_MAX_CONNECTIONS`) are
//! derived from the field's name. Which option of `ServerConfig` it sets is
//! written once, in `settings_map!`; defaults are never written here (the
//! help shows those of `wse::config::options`), and the tests (`serve/tests.rs`) check
//! that every setting sets a documented option.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wse::auth::{DEFAULT_COOKIE_NAME, JwtConfig, JwtOptions, algorithm_from_config};
use wse::config::{ClusterConfig, SignatureKey, options};
use wse::http::AdminToken;
use wse::tls::TlsFiles;
use wse::{EventDelivery, Server, ServerConfig, SlowConsumerPolicy};
use wse_log::Durability;

use crate::Run;
use crate::error::CliError;

/// Flags of `wse serve` (each also read from its `WSE_*` variable).
#[derive(Debug, Default, clap::Args)]
pub struct ServeArgs {
    /// TOML file with any of the settings below (snake_case keys).
    #[arg(long, env = "WSE_CONFIG")]
    config: Option<PathBuf>,
    /// The settings given as flags or `WSE_*` variables.
    #[command(flatten)]
    settings: Settings,
    /// Run the counting app of `wse bench inbound` behind the server
    /// (events through the application queue).
    #[arg(long, hide = true)]
    bench_app: bool,
}

/// Every setting of `wse serve`: one struct for the flags (clap) and for the
/// keys of the `--config` TOML file (serde), so the two cannot drift apart.
#[derive(Debug, Default, clap::Args, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// Address to listen on.
    #[arg(long, env = "WSE_HOST")]
    host: Option<String>,
    /// Port to listen on.
    #[arg(long, env = "WSE_PORT")]
    port: Option<u16>,
    /// Data directory of the log.
    #[arg(long, env = "WSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// fsync policy: always, interval, interval:<ms> or never.
    #[arg(long, env = "WSE_DURABILITY")]
    durability: Option<String>,
    /// Enable JWT auth with this HS256 secret (≥ 32 bytes), or for RS256/ES256
    /// a PEM public key.
    #[arg(long, env = "WSE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Read the JWT key from a file (a PEM for RS256/ES256).
    #[arg(long, env = "WSE_JWT_SECRET_FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// JWT algorithm: HS256, RS256 or ES256.
    #[arg(long, env = "WSE_JWT_ALGORITHM")]
    jwt_algorithm: Option<String>,
    /// Required `iss` claim.
    #[arg(long, env = "WSE_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "WSE_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Cookie the token is read from.
    #[arg(long, env = "WSE_JWT_COOKIE_NAME")]
    jwt_cookie_name: Option<String>,
    /// The key being rotated out (same format as the JWT key), read from a
    /// file: tokens it signed stay valid until it is removed.
    #[arg(long, env = "WSE_JWT_PREVIOUS_SECRET_FILE")]
    jwt_previous_secret_file: Option<PathBuf>,
    /// Required header `kid` of tokens signed with the current key.
    #[arg(long, env = "WSE_JWT_KEY_ID")]
    jwt_key_id: Option<String>,
    /// Registered connections at most.
    #[arg(long, env = "WSE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Largest inbound message in bytes.
    #[arg(long, env = "WSE_MAX_MESSAGE_SIZE")]
    max_message_size: Option<usize>,
    /// Accept per-message deflate when a client offers it.
    #[arg(long, env = "WSE_PERMESSAGE_DEFLATE", num_args = 0..=1, default_missing_value = "true")]
    permessage_deflate: Option<bool>,
    /// Smallest broadcast in bytes compressed for clients that negotiated
    /// deflate.
    #[arg(long, env = "WSE_DEFLATE_MIN_SIZE")]
    deflate_min_size: Option<usize>,
    /// Seconds between server pings.
    #[arg(long, env = "WSE_PING_INTERVAL")]
    ping_interval: Option<u64>,
    /// Seconds without client data before a connection is closed.
    #[arg(long, env = "WSE_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
    /// Unsent bytes a connection may fall behind.
    #[arg(long, env = "WSE_MAX_OUTBOUND_BYTES")]
    max_outbound_bytes: Option<usize>,
    /// What happens to a slow consumer: disconnect or drop.
    #[arg(long, env = "WSE_SLOW_CONSUMER")]
    slow_consumer: Option<String>,
    /// Client messages per second per connection.
    #[arg(long, env = "WSE_INBOUND_RATE")]
    inbound_rate: Option<f64>,
    /// Burst of client messages per connection.
    #[arg(long, env = "WSE_INBOUND_BURST")]
    inbound_burst: Option<f64>,
    /// Client bytes per second per connection.
    #[arg(long, env = "WSE_INBOUND_BYTES_RATE")]
    inbound_bytes_rate: Option<usize>,
    /// Burst of client bytes per connection (at least max-message-size).
    #[arg(long, env = "WSE_INBOUND_BYTES_BURST")]
    inbound_bytes_burst: Option<usize>,
    /// Deepest nesting of a client's JSON or msgpack message.
    #[arg(long, env = "WSE_MAX_MESSAGE_DEPTH")]
    max_message_depth: Option<usize>,
    /// Most values in a client's JSON or msgpack message.
    #[arg(long, env = "WSE_MAX_MESSAGE_ELEMENTS")]
    max_message_elements: Option<usize>,
    /// Most messages one recovery request replays; a larger gap is not
    /// recovered at all.
    #[arg(long, env = "WSE_RECOVERY_MAX_MESSAGES")]
    recovery_max_messages: Option<u64>,
    /// Let clients publish with {"t":"publish","p":{"topic":..,"message":{..}}}.
    #[arg(long, env = "WSE_CLIENT_PUBLISH", num_args = 0..=1, default_missing_value = "true")]
    client_publish: Option<bool>,
    /// Bytes of log kept per topic, 0 for no limit.
    #[arg(long, env = "WSE_RETENTION_BYTES")]
    retention_bytes: Option<u64>,
    /// Seconds of log kept per topic, 0 for no limit.
    #[arg(long, env = "WSE_RETENTION_SECONDS")]
    retention_seconds: Option<u64>,
    /// Records kept per topic, 0 for no limit.
    #[arg(long, env = "WSE_RETENTION_RECORDS")]
    retention_records: Option<u64>,
    /// A segment file is sealed and a new one started past this size
    #[arg(long, env = "WSE_SEGMENT_BYTES")]
    segment_bytes: Option<u64>,
    /// ... or when its first record is this many seconds old.
    #[arg(long, env = "WSE_SEGMENT_SECONDS")]
    segment_seconds: Option<u64>,
    /// Newest records kept in memory per topic.
    #[arg(long, env = "WSE_TAIL_RECORDS")]
    tail_records: Option<usize>,
    /// Bytes all topics' memory tails hold together.
    #[arg(long, env = "WSE_TAIL_MEMORY_BUDGET")]
    tail_memory_budget: Option<usize>,
    /// Seconds a topic's memory tail lives unused.
    #[arg(long, env = "WSE_TAIL_IDLE_SECONDS")]
    tail_idle_seconds: Option<u64>,
    /// Segment files kept open at once, however many topics.
    #[arg(long, env = "WSE_MAX_OPEN_FILES")]
    max_open_files: Option<usize>,
    /// Tokio worker threads.
    #[arg(long, env = "WSE_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Microseconds topic messages may wait to share one write.
    #[arg(long, env = "WSE_WRITE_COALESCE_US")]
    write_coalesce_us: Option<u64>,
    /// Sockets at most between accept and completed upgrade.
    #[arg(long, env = "WSE_MAX_PENDING_HANDSHAKES")]
    max_pending_handshakes: Option<usize>,
    /// Sockets at most between accept and completed upgrade from one
    /// address (an IPv6 /64; 0: no cap).
    #[arg(long, env = "WSE_MAX_PENDING_HANDSHAKES_PER_IP")]
    max_pending_handshakes_per_ip: Option<usize>,
    /// Seconds from accept to completed upgrade.
    #[arg(long, env = "WSE_HANDSHAKE_TIMEOUT")]
    handshake_timeout: Option<u64>,
    /// Seconds a closing connection gets to take its last bytes.
    #[arg(long, env = "WSE_CLOSE_GRACE")]
    close_grace: Option<u64>,
    /// Topics, patterns and groups per connection (0: unlimited).
    #[arg(long, env = "WSE_MAX_SUBSCRIPTIONS_PER_CONNECTION")]
    max_subscriptions_per_connection: Option<usize>,
    /// Topic patterns per connection (0: unlimited).
    #[arg(long, env = "WSE_MAX_PATTERNS_PER_CONNECTION")]
    max_patterns_per_connection: Option<usize>,
    /// Longest topic name in bytes.
    #[arg(long, env = "WSE_MAX_TOPIC_BYTES")]
    max_topic_bytes: Option<usize>,
    /// Framed messages kept in memory per subscribed topic.
    #[arg(long, env = "WSE_FANOUT_FRAMES_PER_TOPIC")]
    fanout_frames_per_topic: Option<usize>,
    /// Events the application queue holds (with --bench-app).
    #[arg(long, env = "WSE_MAX_INBOUND_QUEUE")]
    max_inbound_queue: Option<usize>,
    /// Memory (estimated) the application queue's events hold.
    #[arg(long, env = "WSE_MAX_INBOUND_QUEUE_BYTES")]
    max_inbound_queue_bytes: Option<usize>,
    /// Bytes all connections' queues and read buffers hold together.
    #[arg(long, env = "WSE_QUEUE_MEMORY_BUDGET")]
    queue_memory_budget: Option<usize>,
    /// Track presence: who is subscribed to each topic. Without an app,
    /// each JWT-authenticated subscriber joins as its `sub`
    /// (docs/PROTOCOL.md, "Presence").
    #[arg(long, env = "WSE_PRESENCE", num_args = 0..=1, default_missing_value = "true")]
    presence: Option<bool>,
    /// Largest presence data of a user, bytes of JSON.
    #[arg(long, env = "WSE_PRESENCE_MAX_DATA_SIZE")]
    presence_max_data_size: Option<usize>,
    /// Users tracked per topic (0: unlimited); further subscribers are
    /// subscribed without presence.
    #[arg(long, env = "WSE_PRESENCE_MAX_MEMBERS")]
    presence_max_members: Option<usize>,
    /// Milliseconds over which presence changes are gathered into one
    /// send (a join and leave within it send nothing).
    #[arg(long, env = "WSE_PRESENCE_TICK_MS")]
    presence_tick_ms: Option<u64>,
    /// Agree end-to-end encryption with clients that ask.
    #[arg(long, env = "WSE_ENCRYPTION", num_args = 0..=1, default_missing_value = "true")]
    encryption: Option<bool>,
    /// Seconds an end-to-end key lives before its connection is closed
    /// (4000 "rekey") so the client reconnects with a fresh one.
    #[arg(long, env = "WSE_E2E_REKEY_INTERVAL")]
    e2e_rekey_interval: Option<u64>,
    /// Close a connection when its JWT's `exp` passes (4401 "Token
    /// expired").
    #[arg(long, env = "WSE_CLOSE_ON_TOKEN_EXPIRY", num_args = 0..=1, default_missing_value = "true")]
    close_on_token_expiry: Option<bool>,
    /// Milliseconds a new connection's topic data waits for its
    /// client_hello, so a client asking for encryption never gets it in
    /// clear; 0: no wait.
    #[arg(long, env = "WSE_E2E_HELLO_WAIT_MS")]
    e2e_hello_wait_ms: Option<u64>,
    /// Verify the HMAC-SHA256 `sig` of every client message with the key in
    /// this file (its bytes as they are).
    #[arg(long, env = "WSE_SIGNATURE_KEY_FILE")]
    signature_key_file: Option<PathBuf>,
    /// Serve `wss://` with this PEM certificate chain (leaf first); with
    /// --tls-key. Reloaded on SIGHUP and when the file changes.
    #[arg(long, env = "WSE_TLS_CERT")]
    tls_cert: Option<PathBuf>,
    /// The PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "WSE_TLS_KEY")]
    tls_key: Option<PathBuf>,
    /// Seconds between checks of the TLS files for a change (0: only on
    /// SIGHUP).
    #[arg(long, env = "WSE_TLS_RELOAD_INTERVAL")]
    tls_reload_interval: Option<u64>,
    /// Where the HTTP API listens (host:port), or `off`.
    #[arg(long, value_name = "ADDR|off", env = "WSE_HTTP_LISTEN")]
    http_listen: Option<String>,
    /// The bearer token the HTTP API asks for (publishing, topics,
    /// connections, metrics).
    #[arg(long, env = "WSE_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// A file holding the admin token (surrounding whitespace ignored).
    #[arg(long, env = "WSE_ADMIN_TOKEN_FILE")]
    admin_token_file: Option<PathBuf>,
    /// Largest body of an HTTP batch publish, in bytes.
    #[arg(long, env = "WSE_HTTP_MAX_BODY")]
    http_max_body: Option<usize>,
    /// Serve GET /metrics without the admin token.
    #[arg(long, env = "WSE_HTTP_PUBLIC_METRICS", num_args = 0..=1, default_missing_value = "true")]
    http_public_metrics: Option<bool>,
    /// HTTP requests a second per client address without the admin token
    /// (0: unlimited); past it 429 with Retry-After.
    #[arg(long, env = "WSE_HTTP_RATE_LIMIT")]
    http_rate_limit: Option<f64>,
    /// HTTP requests a client address without the admin token may make at
    /// once.
    #[arg(long, env = "WSE_HTTP_RATE_BURST")]
    http_rate_burst: Option<f64>,
    /// This node's id in a cluster (with --cluster-listen and
    /// --cluster-peers).
    #[arg(long, env = "WSE_NODE_ID")]
    node_id: Option<u64>,
    /// Address of the peer listener, host:port (never the client port).
    #[arg(long, env = "WSE_CLUSTER_LISTEN")]
    cluster_listen: Option<String>,
    /// Every member at the cluster's first start: id=host:port,...
    #[arg(long, env = "WSE_CLUSTER_PEERS")]
    cluster_peers: Option<String>,
    /// Run the peer link in plaintext (required until mutual TLS lands).
    #[arg(long, env = "WSE_CLUSTER_INSECURE", num_args = 0..=1, default_missing_value = "true")]
    cluster_insecure: Option<bool>,
    /// Shards (Raft groups) topics are hashed into; fixed for the
    /// cluster's life.
    #[arg(long, env = "WSE_CLUSTER_SHARDS")]
    cluster_shards: Option<u32>,
    /// Milliseconds between leader heartbeats.
    #[arg(long, env = "WSE_CLUSTER_HEARTBEAT_MS")]
    cluster_heartbeat_ms: Option<u64>,
    /// Milliseconds without a leader before a follower starts an election
    /// (randomised up to twice this).
    #[arg(long, env = "WSE_CLUSTER_ELECTION_TIMEOUT_MS")]
    cluster_election_timeout_ms: Option<u64>,
    /// Milliseconds a publish waits for its commit.
    #[arg(long, env = "WSE_CLUSTER_PUBLISH_TIMEOUT_MS")]
    cluster_publish_timeout_ms: Option<u64>,
    /// Publish ids remembered per shard: a publish whose id is already
    /// stored on its topic is not stored again.
    #[arg(long, env = "WSE_CLUSTER_DEDUP_WINDOW")]
    cluster_dedup_window: Option<usize>,
    /// Milliseconds a shard leader waits on a silent node before its
    /// users leave presence everywhere.
    #[arg(long, env = "WSE_CLUSTER_NODE_TIMEOUT_MS")]
    cluster_node_timeout_ms: Option<u64>,
    /// Join a running cluster at this node's first start (for a node
    /// added with `wse cluster add-node`) instead of founding one.
    #[arg(long, env = "WSE_CLUSTER_JOIN", num_args = 0..=1, default_missing_value = "true")]
    cluster_join: Option<bool>,
    /// Raft entries between two snapshots of a shard; the Raft log is
    /// purged behind each (0: never).
    #[arg(long, env = "WSE_CLUSTER_SNAPSHOT_EVERY")]
    cluster_snapshot_every: Option<u64>,
    /// Raft entries kept behind a snapshot, for followers slightly behind.
    #[arg(long, env = "WSE_CLUSTER_SNAPSHOT_KEEP")]
    cluster_snapshot_keep: Option<u64>,
}

/// The settings that map one-to-one onto an option, each written once as
/// `setting => c.option_path[, via|parse f]`. The one list yields both the
/// code that applies them ([`apply_settings`]) and the table saying which
/// option each sets ([`SETTING_OPTIONS`], used for `--help` defaults and
/// checked against `wse::config::options` and the docs), so the two
/// cannot disagree.
macro_rules! settings_map {
    ($( $field:ident => c.$first:ident $(.$rest:ident)* $(, $kind:ident $f:expr)? ;)*) => {
        /// Each setting and the option (`wse::config::options`) it sets.
        pub(crate) const SETTING_OPTIONS: &[(&str, &str)] = &[$(
            (stringify!($field), concat!(stringify!($first) $(, ".", stringify!($rest))*)),
        )*];

        /// Apply every setting given in `flags` (flags and `WSE_*`
        /// variables) or, failing that, in `file` to `c`.
        fn apply_settings(
            flags: &Settings,
            file: &Settings,
            c: &mut ServerConfig,
        ) -> Result<(), CliError> {
            $(
                if let Some(v) = flags.$field.clone().or_else(|| file.$field.clone()) {
                    c.$first $(.$rest)* = wse::option_value!(v $(, $kind $f)?);
                }
            )*
            Ok(())
        }
    };
}

settings_map! {
    host => c.host;
    port => c.port;
    data_dir => c.data_dir, via Some;
    durability => c.log.durability, parse |v: String| Durability::parse(&v).map_err(CliError::Config);
    max_connections => c.max_connections;
    max_message_size => c.max_message_size;
    permessage_deflate => c.permessage_deflate;
    deflate_min_size => c.deflate_min_size;
    ping_interval => c.ping_interval, via Duration::from_secs;
    idle_timeout => c.idle_timeout, via Duration::from_secs;
    max_outbound_bytes => c.max_outbound_bytes;
    slow_consumer => c.slow_consumer, parse |v: String| parse_slow_consumer(&v);
    inbound_rate => c.inbound_rate_refill;
    inbound_burst => c.inbound_rate_capacity;
    inbound_bytes_rate => c.inbound_bytes_refill;
    inbound_bytes_burst => c.inbound_bytes_capacity;
    max_message_depth => c.max_message_depth;
    max_message_elements => c.max_message_elements;
    recovery_max_messages => c.recovery_max_messages;
    client_publish => c.client_publish;
    // 0 keeps history without a limit (as the Python options do).
    retention_bytes => c.log.retention.max_bytes, via |v: u64| (v > 0).then_some(v);
    retention_seconds => c.log.retention.max_age,
        via |v: u64| (v > 0).then(|| Duration::from_secs(v));
    retention_records => c.log.retention.max_records, via |v: u64| (v > 0).then_some(v);
    segment_bytes => c.log.segment_max_bytes;
    segment_seconds => c.log.segment_max_age, via Duration::from_secs;
    tail_records => c.log.tail.records_per_topic;
    tail_memory_budget => c.log.tail.memory_budget;
    tail_idle_seconds => c.log.tail.idle_ttl, via Duration::from_secs;
    max_open_files => c.log.max_open_files;
    worker_threads => c.worker_threads;
    write_coalesce_us => c.write_coalesce, via Duration::from_micros;
    max_pending_handshakes => c.max_pending_handshakes;
    max_pending_handshakes_per_ip => c.max_pending_handshakes_per_ip;
    handshake_timeout => c.handshake_timeout, via Duration::from_secs;
    close_grace => c.close_grace, via Duration::from_secs;
    max_subscriptions_per_connection => c.max_subscriptions_per_connection;
    max_patterns_per_connection => c.max_patterns_per_connection;
    max_topic_bytes => c.max_topic_bytes;
    fanout_frames_per_topic => c.fanout_frames_per_topic;
    max_inbound_queue => c.max_inbound_queue;
    max_inbound_queue_bytes => c.max_inbound_queue_bytes;
    queue_memory_budget => c.queue_memory_budget;
    presence => c.presence_enabled;
    presence_max_data_size => c.presence_max_data_size;
    presence_max_members => c.presence_max_members;
    presence_tick_ms => c.presence_tick, via Duration::from_millis;
    encryption => c.encryption;
    e2e_rekey_interval => c.e2e_rekey_interval, via |v| Some(Duration::from_secs(v));
    close_on_token_expiry => c.close_on_token_expiry;
    e2e_hello_wait_ms => c.e2e_hello_wait, via Duration::from_millis;
    signature_key_file => c.signature_key,
        parse |path: PathBuf| read_file(&path).map(|key| Some(SignatureKey(key)));
    tls_reload_interval => c.tls_reload_interval, via Duration::from_secs;
    http_listen => c.http_listen, parse |v: String| parse_http_listen(&v);
    admin_token => c.admin_token, via |v: String| AdminToken::new(&v);
    admin_token_file => c.admin_token,
        parse |path: PathBuf| read_file(&path).map(|t| AdminToken::new(&String::from_utf8_lossy(&t)));
    http_public_metrics => c.http_public_metrics;
    http_max_body => c.http_max_body;
    http_rate_limit => c.http_rate_limit;
    http_rate_burst => c.http_rate_burst;
    node_id => c.cluster.node_id, via Some;
    cluster_listen => c.cluster.listen, via Some;
    cluster_peers => c.cluster.peers,
        parse |v: String| ClusterConfig::parse_peers(&v).map_err(|e| CliError::Config(e.to_string()));
    cluster_insecure => c.cluster.insecure;
    cluster_shards => c.cluster.shards;
    cluster_heartbeat_ms => c.cluster.heartbeat, via Duration::from_millis;
    cluster_election_timeout_ms => c.cluster.election_timeout, via Duration::from_millis;
    cluster_publish_timeout_ms => c.cluster.publish_timeout, via Duration::from_millis;
    cluster_dedup_window => c.cluster.dedup_window;
    cluster_node_timeout_ms => c.cluster.node_timeout, via Duration::from_millis;
    cluster_join => c.cluster.join;
    cluster_snapshot_every => c.cluster.snapshot_every;
    cluster_snapshot_keep => c.cluster.snapshot_keep;
}

/// `host:port`, or `off` for no HTTP API.
fn parse_http_listen(v: &str) -> Result<Option<std::net::SocketAddr>, CliError> {
    if v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    v.parse().map(Some).map_err(|_| {
        CliError::Config(format!(
            "http_listen must be host:port (an IP address) or off, not {v:?}"
        ))
    })
}

/// `disconnect` or `drop`.
fn parse_slow_consumer(v: &str) -> Result<SlowConsumerPolicy, CliError> {
    match v {
        "disconnect" => Ok(SlowConsumerPolicy::Disconnect),
        "drop" => Ok(SlowConsumerPolicy::Drop),
        other => Err(CliError::Config(format!(
            "slow_consumer must be disconnect or drop, not {other:?}"
        ))),
    }
}

/// A key file's bytes.
fn read_file(path: &std::path::Path) -> Result<Vec<u8>, CliError> {
    std::fs::read(path).map_err(|e| CliError::io(format!("read {}", path.display()), e))
}

/// `wse serve`'s command with each mapped setting's default (that of
/// `ServerConfig::standalone`, as `wse::config::options` shows it) added
/// to its help, so `--help` never states a default of its own.
pub(crate) fn with_defaults_in_help(mut cmd: clap::Command) -> clap::Command {
    let standalone = ServerConfig::standalone();
    for (setting, option) in SETTING_OPTIONS {
        let Some(doc) = options::find(option) else {
            continue;
        };
        let default = (doc.show)(&standalone);
        cmd = add_default(cmd, setting, &default);
    }
    // The JWT rules' defaults, from the auth module that applies them.
    let algorithm = algorithm_from_config(None).map_or("HS256", |a| a.as_str());
    cmd = add_default(cmd, "jwt_algorithm", algorithm);
    add_default(cmd, "jwt_cookie_name", DEFAULT_COOKIE_NAME)
}

/// `setting`'s help with ` [default: ...]` appended.
fn add_default(cmd: clap::Command, setting: &str, default: &str) -> clap::Command {
    cmd.mut_arg(setting, |arg| {
        let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
        arg.help(format!("{help} [default: {default}]"))
    })
}

impl ServeArgs {
    /// The server configuration these settings describe.
    pub fn config(self) -> Result<ServerConfig, CliError> {
        let file: Settings = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| CliError::io(format!("read {}", path.display()), e))?;
                toml::from_str(&text)
                    .map_err(|e| CliError::Config(format!("{}: {e}", path.display())))?
            }
            None => Settings::default(),
        };
        let mut c = ServerConfig::standalone();
        apply_settings(&self.settings, &file, &mut c)?;
        macro_rules! pick {
            ($field:ident) => {
                self.settings.$field.clone().or(file.$field.clone())
            };
        }
        c.tls = match (pick!(tls_cert), pick!(tls_key)) {
            (Some(cert), Some(key)) => Some(TlsFiles { cert, key }),
            (None, None) => None,
            _ => {
                return Err(CliError::Config(
                    "tls_cert and tls_key go together (the certificate chain and its key)".into(),
                ));
            }
        };
        let key = match (pick!(jwt_secret), pick!(jwt_secret_file)) {
            (Some(s), _) => Some(s.into_bytes()),
            (None, Some(path)) => Some(read_file(&path)?),
            (None, None) => None,
        };
        if let Some(key) = key {
            let algorithm = algorithm_from_config(pick!(jwt_algorithm).as_deref())
                .map_err(|e| CliError::Config(e.to_string()))?;
            let mut options = JwtOptions::new(key);
            options.algorithm = Some(algorithm);
            options.issuer = pick!(jwt_issuer);
            options.audience = pick!(jwt_audience);
            if let Some(name) = pick!(jwt_cookie_name) {
                options.cookie_name = Some(name);
            }
            if let Some(path) = pick!(jwt_previous_secret_file) {
                options.previous_secret = Some(read_file(&path)?);
            }
            options.key_id = pick!(jwt_key_id);
            let jwt = JwtConfig::new(options).map_err(|e| CliError::Config(e.to_string()))?;
            c.jwt = Some(Arc::new(jwt));
            c.server_ready_without_auth = false;
        }
        c.validate().map_err(|e| CliError::Config(e.to_string()))?;
        Ok(c)
    }
}

impl Run for Box<ServeArgs> {
    fn run(self) -> Result<u8, CliError> {
        let bench_app = self.bench_app;
        let mut config = (*self).config()?;
        if bench_app {
            // The app drives presence too (the cluster presence tests).
            config.event_delivery = EventDelivery::Queue;
            config.presence_enabled = true;
        }
        let dir = config.data_dir.clone().unwrap_or_default();
        let durability = config.log.durability.name();
        let auth = config.jwt.is_some();
        let publish = config.client_publish;
        let admin_token = config.admin_token.is_some();
        let cluster = config.cluster.clone();
        let scheme = if config.tls.is_some() { "wss" } else { "ws" };
        let mut server = Server::new(config).map_err(|e| CliError::Config(e.to_string()))?;
        if cluster.enabled() {
            server = server.with_cluster(Arc::new(wse_replication::Starter::new(cluster.clone())));
        }
        let server = Arc::new(server);
        let addr = server.start()?;
        let http = wse::http::start(&server)?;
        let app = if bench_app {
            Some(crate::serve_bench_app::spawn(server.clone())?)
        } else {
            None
        };
        println!(
            "WSE {} listening on {scheme}://{addr}/wse (data: {}, durability: {durability})",
            env!("CARGO_PKG_VERSION"),
            dir.display()
        );
        if !auth {
            eprintln!(
                "warning: no authentication; anyone who can reach {addr} may connect \
                 (set --jwt-secret or WSE_JWT_SECRET)"
            );
        }
        println!("connect: the wse-client packages (Python, TypeScript) or any WebSocket client,");
        println!("         e.g. `websocat {scheme}://{addr}/wse`, then send");
        println!(
            r#"         {{"t":"subscription_update","p":{{"action":"subscribe","topics":["chat"]}}}}"#
        );
        if publish {
            println!(
                r#"publish: {{"t":"publish","p":{{"topic":"chat","message":{{"t":"chat_message","p":{{"text":"hi"}}}}}}}}"#
            );
        }
        if let Some(http) = http {
            println!("HTTP API on http://{http} (health: /health, docs: /openapi.json)");
            println!(
                "         publish: curl -H \"Authorization: Bearer $WSE_ADMIN_TOKEN\" \
                 -d '{{\"t\":\"chat_message\",\"p\":{{\"text\":\"hi\"}}}}' \
                 http://{http}/v1/topics/chat/publish"
            );
            if !admin_token {
                eprintln!(
                    "warning: no admin token: the HTTP API answers 403 but for /health and /ready \
                     (set --admin-token, --admin-token-file or WSE_ADMIN_TOKEN)"
                );
            }
        }
        if let (Some(id), Some(listen)) = (cluster.node_id, &cluster.listen) {
            println!(
                "cluster: node {id}, peers on {listen}, {} shards (status: wse cluster status {listen})",
                cluster.shards
            );
        }
        println!(
            "inspect: wse log topics {}   (stop with Ctrl-C)",
            dir.display()
        );
        wait_for_shutdown_signal(&server)?;
        println!("stopping: clients are told to reconnect later (close 1012)");
        server.stop()?;
        if let Some(app) = app {
            let _ = app.join();
        }
        Ok(0)
    }
}

/// Block until SIGINT or SIGTERM; on SIGHUP, reload the TLS certificate
/// (a refused reload is logged and counted; the certificate in force
/// stays).
fn wait_for_shutdown_signal(server: &Server) -> Result<(), CliError> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("start the signal runtime", e))?;
    rt.block_on(async {
        let mut term =
            signal(SignalKind::terminate()).map_err(|e| CliError::io("listen for SIGTERM", e))?;
        let mut hup =
            signal(SignalKind::hangup()).map_err(|e| CliError::io("listen for SIGHUP", e))?;
        loop {
            tokio::select! {
                r = tokio::signal::ctrl_c() => {
                    return r.map_err(|e| CliError::io("listen for SIGINT", e));
                }
                _ = term.recv() => return Ok(()),
                _ = hup.recv() => match server.reload_tls() {
                    // The server logs and counts the outcome.
                    Ok(()) | Err(wse::ServerError::Tls(_)) => {}
                    Err(e) => tracing::warn!(error = %e, "SIGHUP: nothing to reload"),
                },
            }
        }
    })
}

#[cfg(test)]
mod deploy_tests;
#[cfg(test)]
mod tests;
