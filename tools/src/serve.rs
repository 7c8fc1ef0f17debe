//! `wse serve`: the standalone server.
//!
//! Settings come from, in increasing priority: the built-in defaults
//! (`ServerConfig::standalone`), a TOML file (`--config`), `WSE_*`
//! environment variables, and flags. Without a Python app behind it the
//! server is still complete: it sends `server_ready`, answers clients'
//! `subscription_update` (subscribe, unsubscribe, recover) itself, and with
//! `--client-publish` lets clients publish to topics their ACL allows.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use wse::auth::{JwtConfig, JwtOptions, algorithm_from_config};
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
    /// Address to listen on [default: 127.0.0.1].
    #[arg(long, env = "WSE_HOST")]
    host: Option<String>,
    /// Port to listen on [default: 5007].
    #[arg(long, env = "WSE_PORT")]
    port: Option<u16>,
    /// Data directory of the log [default: ./wse-data].
    #[arg(long, env = "WSE_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// fsync policy: always, interval, interval:<ms> or never [default: interval].
    #[arg(long, env = "WSE_DURABILITY")]
    durability: Option<String>,
    /// Enable JWT auth with this HS256 secret (≥ 32 bytes), or for RS256/ES256
    /// a PEM public key.
    #[arg(long, env = "WSE_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
    /// Read the JWT key from a file (a PEM for RS256/ES256).
    #[arg(long, env = "WSE_JWT_SECRET_FILE")]
    jwt_secret_file: Option<PathBuf>,
    /// JWT algorithm: HS256, RS256 or ES256 [default: HS256].
    #[arg(long, env = "WSE_JWT_ALGORITHM")]
    jwt_algorithm: Option<String>,
    /// Required `iss` claim.
    #[arg(long, env = "WSE_JWT_ISSUER")]
    jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long, env = "WSE_JWT_AUDIENCE")]
    jwt_audience: Option<String>,
    /// Cookie the token is read from [default: access_token].
    #[arg(long, env = "WSE_JWT_COOKIE_NAME")]
    jwt_cookie_name: Option<String>,
    /// The key being rotated out (same format as the JWT key), read from a
    /// file: tokens it signed stay valid until it is removed.
    #[arg(long, env = "WSE_JWT_PREVIOUS_SECRET_FILE")]
    jwt_previous_secret_file: Option<PathBuf>,
    /// Required header `kid` of tokens signed with the current key.
    #[arg(long, env = "WSE_JWT_KEY_ID")]
    jwt_key_id: Option<String>,
    /// Registered connections at most [default: 100000].
    #[arg(long, env = "WSE_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Largest inbound message in bytes [default: 1048576].
    #[arg(long, env = "WSE_MAX_MESSAGE_SIZE")]
    max_message_size: Option<usize>,
    /// Seconds between server pings [default: 25].
    #[arg(long, env = "WSE_PING_INTERVAL")]
    ping_interval: Option<u64>,
    /// Seconds without client data before a connection is closed [default: 60].
    #[arg(long, env = "WSE_IDLE_TIMEOUT")]
    idle_timeout: Option<u64>,
    /// Unsent bytes a connection may fall behind [default: 16777216].
    #[arg(long, env = "WSE_MAX_OUTBOUND_BYTES")]
    max_outbound_bytes: Option<usize>,
    /// What happens to a slow consumer: disconnect or drop [default: disconnect].
    #[arg(long, env = "WSE_SLOW_CONSUMER")]
    slow_consumer: Option<String>,
    /// Client messages per second per connection [default: 5000].
    #[arg(long, env = "WSE_INBOUND_RATE")]
    inbound_rate: Option<f64>,
    /// Burst of client messages per connection [default: 10000].
    #[arg(long, env = "WSE_INBOUND_BURST")]
    inbound_burst: Option<f64>,
    /// Most messages one recovery request replays; a larger gap is not
    /// recovered at all [default: 500].
    #[arg(long, env = "WSE_RECOVERY_MAX_MESSAGES")]
    recovery_max_messages: Option<u64>,
    /// Let clients publish with {"t":"publish","p":{"topic":..,"message":{..}}}.
    #[arg(long, env = "WSE_CLIENT_PUBLISH")]
    client_publish: Option<bool>,
    /// Bytes of log kept per topic, 0 for no limit [default: 1073741824].
    #[arg(long, env = "WSE_RETENTION_BYTES")]
    retention_bytes: Option<u64>,
    /// Seconds of log kept per topic, 0 for no limit [default: 604800].
    #[arg(long, env = "WSE_RETENTION_SECONDS")]
    retention_seconds: Option<u64>,
    /// Records kept per topic, 0 for no limit [default: 0].
    #[arg(long, env = "WSE_RETENTION_RECORDS")]
    retention_records: Option<u64>,
    /// A segment file is sealed and a new one started past this size
    /// [default: 67108864].
    #[arg(long, env = "WSE_SEGMENT_BYTES")]
    segment_bytes: Option<u64>,
    /// ... or when its first record is this many seconds old [default: 3600].
    #[arg(long, env = "WSE_SEGMENT_SECONDS")]
    segment_seconds: Option<u64>,
    /// Newest records kept in memory per topic [default: 1024].
    #[arg(long, env = "WSE_TAIL_RECORDS")]
    tail_records: Option<usize>,
    /// Bytes all topics' memory tails hold together [default: 268435456].
    #[arg(long, env = "WSE_TAIL_MEMORY_BUDGET")]
    tail_memory_budget: Option<usize>,
    /// Seconds a topic's memory tail lives unused [default: 300].
    #[arg(long, env = "WSE_TAIL_IDLE_SECONDS")]
    tail_idle_seconds: Option<u64>,
    /// Segment files kept open at once, however many topics [default: 256].
    #[arg(long, env = "WSE_MAX_OPEN_FILES")]
    max_open_files: Option<usize>,
    /// Tokio worker threads [default: 2].
    #[arg(long, env = "WSE_WORKER_THREADS")]
    worker_threads: Option<usize>,
    /// Microseconds topic messages may wait to share one write [default: 0].
    #[arg(long, env = "WSE_WRITE_COALESCE_US")]
    write_coalesce_us: Option<u64>,
    /// Sockets at most between accept and completed upgrade [default: 512].
    #[arg(long, env = "WSE_MAX_PENDING_HANDSHAKES")]
    max_pending_handshakes: Option<usize>,
    /// Seconds from accept to completed upgrade [default: 10].
    #[arg(long, env = "WSE_HANDSHAKE_TIMEOUT")]
    handshake_timeout: Option<u64>,
    /// Seconds a closing connection gets to take its last bytes [default: 10].
    #[arg(long, env = "WSE_CLOSE_GRACE")]
    close_grace: Option<u64>,
    /// Topics, patterns and groups per connection (0: unlimited) [default: 0].
    #[arg(long, env = "WSE_MAX_SUBSCRIPTIONS_PER_CONNECTION")]
    max_subscriptions_per_connection: Option<usize>,
    /// Longest topic name in bytes [default: 256].
    #[arg(long, env = "WSE_MAX_TOPIC_BYTES")]
    max_topic_bytes: Option<usize>,
    /// Framed messages kept in memory per subscribed topic [default: 1024].
    #[arg(long, env = "WSE_FANOUT_FRAMES_PER_TOPIC")]
    fanout_frames_per_topic: Option<usize>,
    /// Events the application queue holds (with --bench-app) [default: 131072].
    #[arg(long, env = "WSE_MAX_INBOUND_QUEUE")]
    max_inbound_queue: Option<usize>,
    /// Memory (estimated) the application queue's events hold [default: 67108864].
    #[arg(long, env = "WSE_MAX_INBOUND_QUEUE_BYTES")]
    max_inbound_queue_bytes: Option<usize>,
    /// Agree end-to-end encryption with clients that ask [default: true].
    #[arg(long, env = "WSE_ENCRYPTION")]
    encryption: Option<bool>,
    /// Seconds an end-to-end key lives before its connection is closed
    /// (4000 "rekey") so the client reconnects with a fresh one [default: none].
    #[arg(long, env = "WSE_E2E_REKEY_INTERVAL")]
    e2e_rekey_interval: Option<u64>,
    /// Milliseconds a new connection's topic data waits for its
    /// client_hello, so a client asking for encryption never gets it in
    /// clear; 0: no wait [default: 500].
    #[arg(long, env = "WSE_E2E_HELLO_WAIT_MS")]
    e2e_hello_wait_ms: Option<u64>,
    /// Verify the HMAC-SHA256 `sig` of every client message with the key in
    /// this file (its bytes as they are) [default: no check].
    #[arg(long, env = "WSE_SIGNATURE_KEY_FILE")]
    signature_key_file: Option<PathBuf>,
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
        macro_rules! pick {
            ($field:ident) => {
                self.settings.$field.clone().or(file.$field.clone())
            };
        }
        // `set!(c.target = setting)`: the setting, when given, replaces the
        // default; `via f` converts it first.
        macro_rules! set {
            (c.$($target:ident).+ = $field:ident) => {
                if let Some(v) = pick!($field) {
                    c.$($target).+ = v;
                }
            };
            (c.$($target:ident).+ = $field:ident via $f:expr) => {
                if let Some(v) = pick!($field) {
                    c.$($target).+ = $f(v);
                }
            };
        }
        set!(c.host = host);
        set!(c.port = port);
        set!(c.data_dir = data_dir via Some);
        if let Some(v) = pick!(durability) {
            c.log.durability = Durability::parse(&v).map_err(CliError::Config)?;
        }
        set!(c.max_connections = max_connections);
        set!(c.max_message_size = max_message_size);
        set!(c.ping_interval = ping_interval via Duration::from_secs);
        set!(c.idle_timeout = idle_timeout via Duration::from_secs);
        set!(c.max_outbound_bytes = max_outbound_bytes);
        if let Some(v) = pick!(slow_consumer) {
            c.slow_consumer = match v.as_str() {
                "disconnect" => SlowConsumerPolicy::Disconnect,
                "drop" => SlowConsumerPolicy::Drop,
                other => {
                    return Err(CliError::Config(format!(
                        "slow_consumer must be disconnect or drop, not {other:?}"
                    )));
                }
            };
        }
        set!(c.inbound_rate_refill = inbound_rate);
        set!(c.inbound_rate_capacity = inbound_burst);
        set!(c.recovery_max_messages = recovery_max_messages);
        set!(c.client_publish = client_publish);
        // 0 keeps history without a limit (as the Python options do).
        set!(c.log.retention.max_bytes = retention_bytes via |v: u64| (v > 0).then_some(v));
        set!(c.log.retention.max_age = retention_seconds
            via |v: u64| (v > 0).then(|| Duration::from_secs(v)));
        set!(c.log.retention.max_records = retention_records via |v: u64| (v > 0).then_some(v));
        set!(c.log.segment_max_bytes = segment_bytes);
        set!(c.log.segment_max_age = segment_seconds via Duration::from_secs);
        set!(c.log.tail.records_per_topic = tail_records);
        set!(c.log.tail.memory_budget = tail_memory_budget);
        set!(c.log.tail.idle_ttl = tail_idle_seconds via Duration::from_secs);
        set!(c.log.max_open_files = max_open_files);
        set!(c.worker_threads = worker_threads);
        set!(c.write_coalesce = write_coalesce_us via Duration::from_micros);
        set!(c.max_pending_handshakes = max_pending_handshakes);
        set!(c.handshake_timeout = handshake_timeout via Duration::from_secs);
        set!(c.close_grace = close_grace via Duration::from_secs);
        set!(c.max_subscriptions_per_connection = max_subscriptions_per_connection);
        set!(c.max_topic_bytes = max_topic_bytes);
        set!(c.fanout_frames_per_topic = fanout_frames_per_topic);
        set!(c.max_inbound_queue = max_inbound_queue);
        set!(c.max_inbound_queue_bytes = max_inbound_queue_bytes);
        set!(c.encryption = encryption);
        set!(c.e2e_rekey_interval = e2e_rekey_interval via |v| Some(Duration::from_secs(v)));
        set!(c.e2e_hello_wait = e2e_hello_wait_ms via Duration::from_millis);
        if let Some(path) = pick!(signature_key_file) {
            let key = std::fs::read(&path)
                .map_err(|e| CliError::io(format!("read {}", path.display()), e))?;
            c.signature_key = Some(wse::config::SignatureKey(key));
        }
        let key = match (pick!(jwt_secret), pick!(jwt_secret_file)) {
            (Some(s), _) => Some(s.into_bytes()),
            (None, Some(path)) => Some(
                std::fs::read(&path)
                    .map_err(|e| CliError::io(format!("read {}", path.display()), e))?,
            ),
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
                options.previous_secret = Some(
                    std::fs::read(&path)
                        .map_err(|e| CliError::io(format!("read {}", path.display()), e))?,
                );
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
            config.event_delivery = EventDelivery::Queue;
        }
        let dir = config.data_dir.clone().unwrap_or_default();
        let durability = config.log.durability.name();
        let auth = config.jwt.is_some();
        let publish = config.client_publish;
        let server = Arc::new(Server::new(config).map_err(|e| CliError::Config(e.to_string()))?);
        let addr = server.start()?;
        let app = if bench_app {
            Some(crate::serve_bench_app::spawn(server.clone())?)
        } else {
            None
        };
        println!(
            "WSE {} listening on ws://{addr}/wse (data: {}, durability: {durability})",
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
        println!("         e.g. `websocat ws://{addr}/wse`, then send");
        println!(
            r#"         {{"t":"subscription_update","p":{{"action":"subscribe","topics":["chat"]}}}}"#
        );
        if publish {
            println!(
                r#"publish: {{"t":"publish","p":{{"topic":"chat","message":{{"t":"chat_message","p":{{"text":"hi"}}}}}}}}"#
            );
        }
        println!(
            "inspect: wse log topics {}   (stop with Ctrl-C)",
            dir.display()
        );
        wait_for_shutdown_signal()?;
        println!("stopping: clients are told to reconnect later (close 1012)");
        server.stop()?;
        if let Some(app) = app {
            let _ = app.join();
        }
        Ok(0)
    }
}

/// Block until SIGINT or SIGTERM.
fn wait_for_shutdown_signal() -> Result<(), CliError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::io("start the signal runtime", e))?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| CliError::io("listen for SIGTERM", e))?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.map_err(|e| CliError::io("listen for SIGINT", e)),
            _ = term.recv() => Ok(()),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Arguments with these settings as flags and no config file.
    fn with(settings: Settings) -> ServeArgs {
        ServeArgs {
            settings,
            ..Default::default()
        }
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_the_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wse.toml");
        std::fs::write(
            &path,
            "port = 6000\nhost = \"0.0.0.0\"\ndurability = \"always\"\n",
        )
        .unwrap();
        let c = ServeArgs {
            config: Some(path.clone()),
            settings: Settings {
                port: Some(7000),
                ..Default::default()
            },
            ..Default::default()
        }
        .config()
        .unwrap();
        assert_eq!((c.host.as_str(), c.port), ("0.0.0.0", 7000));
        assert_eq!(c.log.durability, Durability::Always);
        assert!(c.recovery_enabled && c.core_subscriptions && c.server_ready_without_auth);
        assert!(c.log.retention.max_bytes.is_some() && c.log.retention.max_age.is_some());
        std::fs::write(&path, "retention_bytes = 0\nretention_seconds = 0\n").unwrap();
        let unlimited = ServeArgs {
            config: Some(path.clone()),
            ..Default::default()
        }
        .config()
        .unwrap();
        assert_eq!(unlimited.log.retention.max_bytes, None);
        assert_eq!(unlimited.log.retention.max_age, None);
        std::fs::write(&path, "prot = 1\n").unwrap();
        let err = ServeArgs {
            config: Some(path),
            ..Default::default()
        }
        .config()
        .unwrap_err();
        assert!(err.to_string().contains("prot"), "{err}");
        let short = with(Settings {
            jwt_secret: Some("too short".into()),
            ..Default::default()
        })
        .config()
        .unwrap_err();
        assert!(short.to_string().contains("32"), "{short}");
    }

    #[test]
    fn log_settings_reach_the_log_and_bad_ones_are_refused() {
        let c = with(Settings {
            retention_records: Some(500),
            segment_bytes: Some(1 << 20),
            segment_seconds: Some(60),
            tail_records: Some(64),
            tail_memory_budget: Some(1 << 20),
            tail_idle_seconds: Some(5),
            max_open_files: Some(64),
            ..Default::default()
        })
        .config()
        .unwrap();
        let log = &c.log;
        assert_eq!(log.retention.max_records, Some(500));
        assert_eq!(log.segment_max_bytes, 1 << 20);
        assert_eq!(log.segment_max_age, Duration::from_secs(60));
        assert_eq!(log.tail.records_per_topic, 64);
        assert_eq!(log.tail.memory_budget, 1 << 20);
        assert_eq!(log.tail.idle_ttl, Duration::from_secs(5));
        assert_eq!(log.max_open_files, 64);
        for (bad, words) in [
            (
                Settings {
                    segment_bytes: Some(10),
                    ..Default::default()
                },
                "segment_max_bytes",
            ),
            (
                Settings {
                    segment_seconds: Some(0),
                    ..Default::default()
                },
                "segment_max_age",
            ),
            (
                Settings {
                    max_open_files: Some(1),
                    ..Default::default()
                },
                "max_open_files",
            ),
        ] {
            let err = with(bad).config().unwrap_err();
            assert!(err.to_string().contains(words), "{err}");
        }
    }

    #[test]
    fn rotation_accepts_the_previous_key_and_the_current_one_with_its_kid() {
        let dir = tempfile::tempdir().unwrap();
        let old = "o".repeat(32);
        let new = "n".repeat(32);
        let previous = dir.path().join("previous.key");
        std::fs::write(&previous, &old).unwrap();
        let c = with(Settings {
            jwt_secret: Some(new.clone()),
            jwt_previous_secret_file: Some(previous),
            jwt_key_id: Some("k2".into()),
            ..Default::default()
        })
        .config()
        .unwrap();
        let jwt = c.jwt.expect("auth is on");
        let claims = serde_json::json!({"sub": "alice", "exp": 4_000_000_000u64});
        let token = |key: &str, kid: Option<&str>| {
            let t = wse::auth::encode(&claims, key.as_bytes(), "HS256", kid).unwrap();
            format!("Bearer {t}")
        };
        assert!(
            jwt.authenticate(None, Some(&token(&new, Some("k2"))))
                .is_ok()
        );
        assert!(jwt.authenticate(None, Some(&token(&old, None))).is_ok());
        assert!(jwt.authenticate(None, Some(&token(&new, None))).is_err());
        assert!(
            jwt.authenticate(None, Some(&token(&"x".repeat(32), Some("k2"))))
                .is_err()
        );
        let missing = with(Settings {
            jwt_secret: Some(new),
            jwt_previous_secret_file: Some(dir.path().join("absent")),
            ..Default::default()
        })
        .config()
        .unwrap_err();
        assert!(missing.to_string().contains("absent"), "{missing}");
    }
}
