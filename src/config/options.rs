//! Every option of [`ServerConfig`] declared once: its name, one line of
//! doc, and how its value reads as text.
//!
//! Why a table: an option used to be written in five to seven places (the
//! struct, the Python constructor, `wse serve`'s flags, TOML keys and
//! `WSE_*` variables, the docs), each with its own copy of the default.
//! Now [`ServerConfig::default`] is the only place a default value is
//! written; [`OPTIONS`] reads it (an entry holds a function that formats
//! the option's value, not a copy of the default), and every surface is
//! derived from or checked against this table:
//!
//! - the fields of `ServerConfig` and its `LogConfig` (a test lists them
//!   with a pattern that has no `..`, so a new field does not compile
//!   until it has an entry);
//! - `wse serve`'s settings (flag, TOML key and `WSE_*` variable are one
//!   field of `Settings`; `wse-tools` tests that each maps to an entry and
//!   puts the defaults of this table into `--help`);
//! - the Python constructor's keywords (`tests/python/test_options.py`);
//! - the option tables of docs/OPERATIONS.md (tests here and in the two
//!   crates above parse them with [`doc_rows`]).

use std::fmt::Display;
use std::path::Path;
use std::time::Duration;

use super::{EventDelivery, ServerConfig, SlowConsumerPolicy};

/// One option: a field of [`ServerConfig`], or a leaf of its `log`.
#[derive(Debug)]
pub struct OptionDoc {
    /// Where the option lives in `ServerConfig`, fields joined by dots:
    /// `max_connections`, `log.retention.max_bytes`.
    pub name: &'static str,
    /// What the option bounds or switches, in one line.
    pub doc: &'static str,
    /// The option's value in a configuration, as the docs and `--help`
    /// write it. A function rather than a stored default, so that the
    /// default has one source: `ServerConfig::default()`.
    pub show: fn(&ServerConfig) -> String,
}

impl OptionDoc {
    /// The default value, as text.
    #[must_use]
    pub fn default_text(&self) -> String {
        (self.show)(&ServerConfig::default())
    }
}

/// The entry called `name`.
#[must_use]
pub fn find(name: &str) -> Option<&'static OptionDoc> {
    OPTIONS.iter().find(|o| o.name == name)
}

/// Every option's value in `config`, in table order.
pub fn values(config: &ServerConfig) -> impl Iterator<Item = (&'static str, String)> + '_ {
    OPTIONS.iter().map(|o| (o.name, (o.show)(config)))
}

/// An entry: `option!(log.tail.idle_ttl, dur, "doc")` names the option by
/// its field path and shows it with `dur(&config.log.tail.idle_ttl)`.
macro_rules! option {
    ($first:ident $(. $rest:ident)*, $show:expr, $doc:literal) => {
        OptionDoc {
            name: concat!(stringify!($first) $(, ".", stringify!($rest))*),
            doc: $doc,
            show: |c| ($show)(&c.$first $(.$rest)*),
        }
    };
}

/// Every option, in the order of docs/OPERATIONS.md.
pub const OPTIONS: &[OptionDoc] = &[
    option!(host, plain, "address to bind"),
    option!(port, plain, "port to bind (0 picks a free port)"),
    option!(max_connections, count, "registered connections at most"),
    option!(
        max_pending_handshakes,
        count,
        "sockets between accept and completed upgrade (the oldest makes room)"
    ),
    option!(
        max_pending_handshakes_per_ip,
        count_or_unlimited,
        "pending sockets from one address (an IPv6 /64)"
    ),
    option!(handshake_timeout, dur, "accept to completed upgrade"),
    option!(max_handshake_bytes, bytes, "size of the upgrade request"),
    option!(
        max_message_size,
        bytes,
        "one inbound frame and one reassembled message"
    ),
    option!(
        tls,
        tls_files,
        "TLS certificate chain and key, PEM (none: plain ws://)"
    ),
    option!(
        tls_reload_interval,
        dur_or_off,
        "how often the TLS files are checked for a change"
    ),
    option!(
        http_listen,
        addr_or_off,
        "where the HTTP API listens (off: none)"
    ),
    option!(
        admin_token,
        set_or_unset,
        "bearer token of the HTTP API's protected endpoints"
    ),
    option!(
        http_public_metrics,
        plain,
        "GET /metrics without the admin token"
    ),
    option!(http_max_body, bytes, "largest HTTP batch publish body"),
    option!(
        http_rate_limit,
        per_second_or_unlimited,
        "HTTP requests per client address without the admin token: refill"
    ),
    option!(
        http_rate_burst,
        count,
        "HTTP requests per client address without the admin token: burst"
    ),
    option!(
        permessage_deflate,
        plain,
        "accept per-message deflate when a client offers it"
    ),
    option!(
        deflate_min_size,
        bytes,
        "smallest broadcast compressed for deflate clients"
    ),
    option!(ping_interval, dur, "server ping period"),
    option!(
        idle_timeout,
        dur,
        "a connection silent this long is closed with 4408"
    ),
    option!(
        rate_limit_capacity,
        count,
        "send_event token bucket per connection: burst"
    ),
    option!(
        rate_limit_refill,
        per_second,
        "send_event token bucket per connection: refill"
    ),
    option!(
        inbound_rate_capacity,
        count,
        "client messages per connection: burst"
    ),
    option!(
        inbound_rate_refill,
        per_second,
        "client messages per connection: refill"
    ),
    option!(
        inbound_bytes_capacity,
        bytes,
        "client bytes per connection: burst (at least max_message_size)"
    ),
    option!(
        inbound_bytes_refill,
        bytes_per_second,
        "client bytes per connection: refill"
    ),
    option!(
        max_message_depth,
        count,
        "deepest nesting of a client's JSON or msgpack message"
    ),
    option!(
        max_message_elements,
        count,
        "most values in a client's JSON or msgpack message"
    ),
    option!(
        max_outbound_bytes,
        bytes_or_unlimited,
        "unsent bytes per connection"
    ),
    option!(
        slow_consumer,
        slow_consumer,
        "past max_outbound_bytes: disconnect (1013) or drop"
    ),
    option!(
        close_grace,
        dur,
        "time a closing connection gets for its last bytes"
    ),
    option!(
        max_inbound_queue,
        count,
        "events in the app's queue; readers wait when full"
    ),
    option!(
        max_inbound_queue_bytes,
        bytes,
        "memory the queued events hold (estimated)"
    ),
    option!(
        queue_memory_budget,
        bytes_or_unlimited,
        "bytes all connections' queues and read buffers hold together"
    ),
    option!(
        event_delivery,
        event_delivery,
        "where application events go: the queue, or nowhere"
    ),
    option!(
        max_subscriptions_per_connection,
        count_or_unlimited,
        "topics, patterns and queue groups per connection"
    ),
    option!(
        max_patterns_per_connection,
        count_or_unlimited,
        "topic patterns per connection"
    ),
    option!(max_topic_bytes, bytes, "longest topic name clients use"),
    option!(
        recovery_enabled,
        plain,
        "stamp broadcasts and serve recovery requests"
    ),
    option!(
        recovery_max_messages,
        count,
        "messages one recovery request replays"
    ),
    option!(
        fanout_frames_per_topic,
        count,
        "framed messages kept in memory per subscribed topic"
    ),
    option!(
        write_coalesce,
        dur,
        "how long topic messages may wait to share one write"
    ),
    option!(presence_enabled, plain, "presence tracking"),
    option!(
        presence_max_data_size,
        bytes,
        "presence data per user (JSON)"
    ),
    option!(presence_max_members, count_or_unlimited, "users per topic"),
    option!(
        presence_tick,
        dur,
        "presence changes are sent once per tick"
    ),
    option!(
        core_subscriptions,
        plain,
        "the core answers subscription_update"
    ),
    option!(client_publish, plain, "clients may publish"),
    option!(
        server_ready_without_auth,
        plain,
        "send server_ready without JWT too"
    ),
    option!(encryption, plain, "agree end-to-end encryption"),
    option!(
        e2e_hello_wait,
        dur,
        "how long topic data waits for the client_hello"
    ),
    option!(
        e2e_rekey_interval,
        dur_or_none,
        "an E2E key this old closes its connection (4000)"
    ),
    option!(
        close_on_token_expiry,
        plain,
        "close a connection when its JWT expires (4401)"
    ),
    option!(
        signature_key,
        set_or_none,
        "verify the HMAC-SHA256 sig of client messages"
    ),
    option!(jwt, jwt, "JWT authentication of every connection"),
    option!(worker_threads, plain, "Tokio worker threads"),
    option!(data_dir, data_dir, "the log's data directory"),
    option!(log.durability, durability, "the log's fsync policy"),
    option!(
        log.retention.max_bytes,
        bytes_or_unlimited_opt,
        "log bytes kept per topic"
    ),
    option!(
        log.retention.max_age,
        dur_or_unlimited,
        "age of the log kept per topic"
    ),
    option!(
        log.retention.max_records,
        count_or_unlimited_opt,
        "records kept per topic at least"
    ),
    option!(
        log.segment_max_bytes,
        bytes,
        "a segment is sealed at this size"
    ),
    option!(
        log.segment_max_age,
        dur,
        "... or when its first record is this old"
    ),
    option!(
        log.tail.records_per_topic,
        count,
        "newest records kept in memory per topic"
    ),
    option!(
        log.tail.memory_budget,
        bytes,
        "memory of all topics' tails together"
    ),
    option!(
        log.tail.idle_ttl,
        dur,
        "a topic's tail is dropped after this long unused"
    ),
    option!(log.max_open_files, count, "segment files kept open"),
    option!(
        log.max_pending_bytes,
        bytes,
        "appended but unwritten bytes before appenders wait"
    ),
    option!(log.max_record_bytes, bytes, "largest payload of a record"),
    option!(
        log.max_topic_bytes,
        bytes,
        "longest topic name in the log (raised at start for presence)"
    ),
    option!(
        log.index_interval_bytes,
        bytes,
        "one sparse index entry per this many segment bytes"
    ),
    option!(
        log.maintenance_interval,
        dur,
        "how often retention and tail expiry run"
    ),
    option!(
        log.fault_retry_min,
        dur,
        "first wait before retrying failed storage"
    ),
    option!(
        log.fault_retry_max,
        dur,
        "longest wait between retries of failed storage"
    ),
    option!(
        log.boot_id_path,
        path,
        "where the kernel's boot id is read (tests override it)"
    ),
    option!(
        cluster.node_id,
        none_or,
        "this node's id in a cluster (none: a single node)"
    ),
    option!(cluster.listen, none_or, "address of the peer listener"),
    option!(
        cluster.peers,
        peers,
        "every member at the cluster's first start"
    ),
    option!(
        cluster.insecure,
        plain,
        "allow the peer link in plaintext (required until mTLS)"
    ),
    option!(
        cluster.shards,
        count,
        "Raft groups topics are hashed into (fixed for life)"
    ),
    option!(cluster.heartbeat, dur, "leader heartbeat period"),
    option!(
        cluster.election_timeout,
        dur,
        "silence before a follower starts an election (up to 2x)"
    ),
    option!(
        cluster.publish_timeout,
        dur,
        "a publish not committed this soon fails (it may commit later)"
    ),
    option!(
        cluster.dedup_window,
        count,
        "publish ids remembered per shard, or per topic on a single node (idempotent producer)"
    ),
    option!(
        cluster.node_timeout,
        dur,
        "silence after which a node's users leave presence everywhere"
    ),
    option!(
        cluster.join,
        plain,
        "join a running cluster at first start, never found one"
    ),
    option!(
        cluster.snapshot_every,
        count,
        "Raft entries between snapshots (0: never purge the Raft log)"
    ),
    option!(
        cluster.snapshot_keep,
        count,
        "Raft entries kept behind a snapshot for followers slightly behind"
    ),
];

// Formatters: how each kind of value reads in the docs and in `--help`.

/// As `Display` writes it.
fn plain<T: Display>(v: &T) -> String {
    v.to_string()
}

/// A value that may be absent.
fn none_or<T: Display>(v: &Option<T>) -> String {
    v.as_ref()
        .map_or_else(|| "none".into(), ToString::to_string)
}

/// A peer list as `--cluster-peers` takes it.
fn peers(p: &[(u64, String)]) -> String {
    if p.is_empty() {
        return "none".into();
    }
    let parts: Vec<String> = p.iter().map(|(id, a)| format!("{id}={a}")).collect();
    parts.join(",")
}

/// With thousands separators: `131,072`.
fn count<T: Display>(v: &T) -> String {
    let digits = v.to_string();
    if digits.contains(|c: char| !c.is_ascii_digit()) {
        return digits;
    }
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `count`, with 0 meaning no limit.
fn count_or_unlimited<T: Display>(v: &T) -> String {
    let text = count(v);
    if text == "0" {
        "unlimited".into()
    } else {
        text
    }
}

/// A limit that may be absent.
fn count_or_unlimited_opt(v: &Option<u64>) -> String {
    v.map_or_else(|| "unlimited".into(), |n| count(&n))
}

/// A rate per second.
fn per_second(v: &f64) -> String {
    format!("{}/s", count(v))
}

/// A rate per second, with 0 meaning no limit.
fn per_second_or_unlimited(v: &f64) -> String {
    if *v == 0.0 {
        "unlimited".into()
    } else {
        per_second(v)
    }
}

/// A byte rate: `4 MiB/s`.
fn bytes_per_second(v: &usize) -> String {
    format!("{}/s", bytes(v))
}

/// Bytes in the largest binary unit that divides them: `64 KiB`.
fn bytes<T: Copy + TryInto<u64>>(v: &T) -> String {
    let n: u64 = (*v).try_into().unwrap_or(u64::MAX);
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] {
        if n >= 1 << shift && n.is_multiple_of(1 << shift) {
            return format!("{} {unit}", count(&(n >> shift)));
        }
    }
    format!("{} B", count(&n))
}

/// An address, or `off` when none is set.
fn addr_or_off(v: &Option<std::net::SocketAddr>) -> String {
    v.map_or_else(|| "off".into(), |a| a.to_string())
}

/// A secret shown only as set or not.
fn set_or_unset<T>(v: &Option<T>) -> String {
    if v.is_some() { "set" } else { "unset" }.into()
}

/// `bytes`, with 0 meaning no limit.
fn bytes_or_unlimited<T: Copy + TryInto<u64>>(v: &T) -> String {
    let text = bytes(v);
    if text == "0 B" {
        "unlimited".into()
    } else {
        text
    }
}

/// A byte limit that may be absent.
fn bytes_or_unlimited_opt(v: &Option<u64>) -> String {
    v.map_or_else(|| "unlimited".into(), |n| bytes(&n))
}

/// A duration in the largest unit that divides it: `7 d`, `1 h`, `25 s`,
/// `50 ms`; zero is `0`.
fn dur(d: &Duration) -> String {
    let ms = d.as_millis();
    if ms == 0 {
        return "0".into();
    }
    for (unit, per) in [("d", 86_400_000), ("h", 3_600_000), ("s", 1000)] {
        if ms.is_multiple_of(per) {
            return format!("{} {unit}", count(&(ms / per)));
        }
    }
    format!("{} ms", count(&ms))
}

/// A duration that may be absent (no such bound).
fn dur_or_none(d: &Option<Duration>) -> String {
    d.as_ref().map_or_else(|| "none".into(), dur)
}

/// A time limit that may be absent.
fn dur_or_unlimited(d: &Option<Duration>) -> String {
    d.as_ref().map_or_else(|| "unlimited".into(), dur)
}

/// Whether a secret is set (never its bytes).
fn set_or_none<T>(v: &Option<T>) -> String {
    if v.is_some() { "set" } else { "none" }.into()
}

/// A path.
fn path(p: &impl AsRef<Path>) -> String {
    p.as_ref().display().to_string()
}

/// The TLS files, or `none`.
fn tls_files(t: &Option<crate::tls::TlsFiles>) -> String {
    t.as_ref().map_or_else(
        || "none".into(),
        |t| format!("{}, {}", path(&t.cert), path(&t.key)),
    )
}

/// A period, or `off` when zero.
fn dur_or_off(d: &Duration) -> String {
    if d.is_zero() { "off".into() } else { dur(d) }
}

/// The data directory, or what happens without one.
fn data_dir(d: &Option<std::path::PathBuf>) -> String {
    d.as_ref()
        .map_or_else(|| "temporary directory".into(), path)
}

/// The slow-consumer policy by its configuration name.
fn slow_consumer(p: &SlowConsumerPolicy) -> String {
    match p {
        SlowConsumerPolicy::Disconnect => "disconnect",
        SlowConsumerPolicy::Drop => "drop",
    }
    .into()
}

/// Where events go.
fn event_delivery(e: &EventDelivery) -> String {
    match e {
        EventDelivery::Queue => "queue",
        EventDelivery::Discard => "discard",
    }
    .into()
}

/// The durability policy by its configuration name.
fn durability(d: &wse_log::Durability) -> String {
    d.name().into()
}

/// JWT on (with its algorithm) or off.
fn jwt(j: &Option<std::sync::Arc<crate::auth::JwtConfig>>) -> String {
    j.as_ref().map_or_else(
        || "off".into(),
        |j| format!("on ({})", j.algorithm().as_str()),
    )
}

/// A row of an option table of docs/OPERATIONS.md: a table whose header
/// starts `| option | default |`, followed by the `wse serve` flags, the
/// Python keywords and the meaning. The tests of every crate that owns a
/// column parse the docs with this, so the format is defined once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocRow {
    /// The option's name (backticks removed).
    pub name: String,
    /// The default cell: the default, then `; \`wse serve\`: x` and
    /// `; Python: y` where those surfaces start from another value.
    pub default: String,
    /// The `wse serve` flags that set it (`--flag`, backticks removed).
    pub flags: Vec<String>,
    /// The Python constructor keywords that set it.
    pub keywords: Vec<String>,
}

impl DocRow {
    /// The part of the default cell after `label: `, if any.
    #[must_use]
    pub fn default_for(&self, label: &str) -> Option<&str> {
        self.default
            .split("; ")
            .skip(1)
            .find_map(|part| part.strip_prefix(label)?.strip_prefix(": "))
    }

    /// The default cell's first part: `ServerConfig::default()`'s value.
    #[must_use]
    pub fn base_default(&self) -> &str {
        self.default.split("; ").next().unwrap_or_default()
    }
}

/// The header that starts an option table.
const TABLE_HEADER: &str = "| option | default | `wse serve` | Python | meaning |";

/// The rows of every option table in `markdown`.
#[must_use]
pub fn doc_rows(markdown: &str) -> Vec<DocRow> {
    let mut rows = Vec::new();
    let mut in_table = false;
    for line in markdown.lines().map(str::trim) {
        if line == TABLE_HEADER {
            in_table = true;
        } else if !line.starts_with('|') {
            in_table = false;
        } else if in_table && !line.starts_with("|---") {
            rows.push(doc_row(line));
        }
    }
    rows
}

/// One table line: cells split on `|`, backticks removed from names.
fn doc_row(line: &str) -> DocRow {
    let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
    let cell = |i: usize| cells.get(i).copied().unwrap_or_default();
    let names = |i: usize| -> Vec<String> {
        cell(i)
            .split(", ")
            .map(|s| s.trim_matches('`').to_owned())
            .filter(|s| !s.is_empty() && s != "—")
            .collect()
    };
    DocRow {
        name: cell(0).trim_matches('`').to_owned(),
        default: cell(1).to_owned(),
        flags: names(2),
        keywords: names(3),
    }
}

/// `option_value!(v)`, `option_value!(v, via f)` or `option_value!(v, parse
/// f)`: a surface's value for an option as is, converted, or converted by a
/// fallible `f` (its error returned with `?`). Shared by the lists that map
/// `wse serve` settings and Python keywords onto options.
#[doc(hidden)]
#[macro_export]
macro_rules! option_value {
    ($v:expr) => {
        $v
    };
    ($v:expr, via $f:expr) => {
        ($f)($v)
    };
    ($v:expr, parse $f:expr) => {
        ($f)($v)?
    };
}

#[cfg(test)]
mod tests;
