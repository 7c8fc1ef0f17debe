//! Counters of a running server, the health snapshot and the Prometheus
//! text export (PYTHON_API.md §2.10, plus log figures).
//!
//! Every metric is declared once, in `metrics!` below: its key (the
//! [`Health`] field and the `health_snapshot()` key), its Prometheus name,
//! kind and help. The macro generates the [`Metrics`] counters, the
//! [`Health`] snapshot and the [`METRICS`] table; the Prometheus text
//! ([`prometheus`]) and the Python dict both iterate that table, and the
//! metrics table of docs/OPERATIONS.md is checked against it. The
//! snapshot-only figures (connections, the log's statistics, ...) are
//! filled by `Server::health`, by field name, so a declared figure that is
//! not filled does not compile... unless it keeps its default, which the
//! upstream `cluster_*` counters (messages, bytes, reconnects, dead
//! letters) do: the Raft peer link does not count them yet.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

/// Whether a metric is a running total or a level.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Only grows (Prometheus `counter`, names end in `_total`).
    Counter,
    /// Goes up and down (Prometheus `gauge`).
    Gauge,
}

impl Kind {
    /// The Prometheus `# TYPE` word.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Counter => "counter",
            Self::Gauge => "gauge",
        }
    }
}

/// When a metric is reported (beyond: a figure that is `None` in the
/// snapshot is left out everywhere, as upstream leaves out the presence
/// keys when presence is off).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Shown {
    /// Always.
    Always,
    /// In the snapshot always; in Prometheus only with recovery enabled
    /// (upstream's rule for the recovery figures).
    PrometheusWithRecovery,
}

/// A metric's value in a snapshot.
#[derive(Copy, Clone, Debug, PartialEq)]
pub enum Value {
    /// A count.
    U64(u64),
    /// A measure (seconds, a ratio).
    F64(f64),
    /// A flag (snapshot only: flags are not metrics in Prometheus).
    Bool(bool),
    /// Not reported in this snapshot (presence figures with presence off).
    Absent,
}

impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Self::U64(v)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Self::F64(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Bool(v)
    }
}

impl From<Option<u64>> for Value {
    fn from(v: Option<u64>) -> Self {
        v.map_or(Self::Absent, Self::U64)
    }
}

/// One metric: where it is found and how it is exported.
#[derive(Debug)]
pub struct MetricDoc {
    /// The [`Health`] field and `health_snapshot()` key.
    pub key: &'static str,
    /// The Prometheus name; `None` for snapshot-only figures (flags, and
    /// upstream keys upstream never exported).
    pub prometheus: Option<&'static str>,
    /// Counter or gauge.
    pub kind: Kind,
    /// When it is reported.
    pub shown: Shown,
    /// One line: the Prometheus `# HELP`.
    pub help: &'static str,
    /// Its value in a snapshot.
    pub read: fn(&Health) -> Value,
}

/// `prom!(_)` is no Prometheus name, `prom!("x")` is `x`.
macro_rules! prom {
    (_) => {
        None
    };
    ($name:literal) => {
        Some($name)
    };
}

/// Declares every metric once. `snapshot` figures are computed when a
/// snapshot is taken (`Server::health`); `counters` are running totals
/// kept in [`Metrics`] (an `AtomicU64` each) and copied into the snapshot
/// by [`Health::with_counters`]. Each entry: `key: type, Kind, prometheus
/// name or _, Shown, "help"` (counters are `u64` counters).
macro_rules! metrics {
    (
        snapshot {
            $( $(#[doc = $sdoc:literal])* $skey:ident: $sty:ty, $skind:ident, $sprom:tt, $sshown:ident, $shelp:literal; )*
        }
        counters {
            $( $(#[doc = $cdoc:literal])* $ckey:ident, $cprom:tt, $chelp:literal; )*
        }
    ) => {
        /// Running totals since start (one per counter of [`METRICS`]).
        #[derive(Default)]
        pub struct Metrics {
            $( $(#[doc = $cdoc])* pub $ckey: AtomicU64, )*
            /// Publications per topic (exported per topic, as labels).
            pub topic_messages: DashMap<Arc<str>, u64>,
        }

        /// A health snapshot: every metric of [`METRICS`], in its order
        /// (the upstream keys, in upstream order, then WSE's own).
        #[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
        pub struct Health {
            $( $(#[doc = $sdoc])* pub $skey: $sty, )*
            $( $(#[doc = $cdoc])* pub $ckey: u64, )*
        }

        impl Health {
            /// The snapshot with every counter of `m` copied in.
            #[must_use]
            pub fn with_counters(mut self, m: &Metrics) -> Self {
                $( self.$ckey = Metrics::get(&m.$ckey); )*
                self
            }
        }

        /// Every metric, in snapshot order.
        pub const METRICS: &[MetricDoc] = &[
            $( MetricDoc {
                key: stringify!($skey),
                prometheus: prom!($sprom),
                kind: Kind::$skind,
                shown: Shown::$sshown,
                help: $shelp,
                read: |h| Value::from(h.$skey),
            }, )*
            $( MetricDoc {
                key: stringify!($ckey),
                prometheus: prom!($cprom),
                kind: Kind::Counter,
                shown: Shown::Always,
                help: $chelp,
                read: |h| Value::U64(h.$ckey),
            }, )*
        ];
    };
}

metrics! {
    snapshot {
        /// Registered connections.
        connections: u64, Gauge, "wse_connections", Always, "Active WebSocket connections";
        /// Events waiting in the inbound queue.
        inbound_queue_depth: u64, Gauge, "wse_inbound_queue_depth", Always,
            "Events waiting in the inbound queue";
        /// Events lost by the inbound queue.
        inbound_dropped: u64, Counter, "wse_inbound_dropped_total", Always,
            "Inbound events dropped";
        /// Cluster: at least one peer link up (false on a single node).
        cluster_connected: bool, Gauge, _, Always, "At least one cluster peer link is up";
        /// Cluster peers this node has an open link to.
        cluster_peer_count: u64, Gauge, "wse_cluster_peers", Always, "Connected cluster peers";
        /// Messages sent to cluster peers (no clustering yet: 0).
        cluster_messages_sent: u64, Counter, "wse_cluster_messages_sent_total", Always,
            "Messages sent to cluster peers";
        /// Messages delivered from cluster peers.
        cluster_messages_delivered: u64, Counter, "wse_cluster_messages_delivered_total", Always,
            "Messages delivered from cluster peers";
        /// Cluster messages dropped.
        cluster_messages_dropped: u64, Counter, "wse_cluster_messages_dropped_total", Always,
            "Cluster messages dropped";
        /// Bytes sent to cluster peers.
        cluster_bytes_sent: u64, Counter, "wse_cluster_bytes_sent_total", Always,
            "Bytes sent to cluster peers";
        /// Bytes received from cluster peers.
        cluster_bytes_received: u64, Counter, "wse_cluster_bytes_received_total", Always,
            "Bytes received from cluster peers";
        /// Cluster reconnects.
        cluster_reconnect_count: u64, Counter, "wse_cluster_reconnects_total", Always,
            "Cluster reconnects";
        /// Cluster messages of an unknown type (upstream never exported it).
        cluster_unknown_message_types: u64, Counter, _, Always,
            "Cluster messages of an unknown type";
        /// Cluster dead-letter queue size (upstream never exported it).
        cluster_dlq_size: u64, Gauge, _, Always, "Undelivered cluster messages kept";
        /// Seconds since start (0.0 before start).
        uptime_secs: f64, Gauge, "wse_uptime_seconds", Always, "Seconds since the server started";
        /// Recovery (stamping) enabled.
        recovery_enabled: bool, Gauge, _, Always, "Recovery is enabled";
        /// Topics in the log (0 with recovery off).
        recovery_topic_count: u64, Gauge, "wse_recovery_topics", PrometheusWithRecovery,
            "Topics in the log";
        /// Bytes of the log's memory tails (0 with recovery off).
        recovery_total_bytes: u64, Gauge, "wse_recovery_bytes", PrometheusWithRecovery,
            "Bytes of the log's memory tails";
        /// Presence enabled.
        presence_enabled: bool, Gauge, _, Always, "Presence is enabled";
        /// Topics with presence state (only reported when enabled).
        presence_topics: Option<u64>, Gauge, "wse_presence_topics", Always,
            "Topics with presence";
        /// Users summed over topics (only reported when enabled).
        presence_total_users: Option<u64>, Gauge, "wse_presence_users", Always,
            "Users present, summed over topics";
        /// Records appended to the log.
        log_appends: u64, Counter, "wse_log_appends_total", Always, "Records appended to the log";
        /// Bytes appended to the log.
        log_append_bytes: u64, Counter, "wse_log_append_bytes_total", Always,
            "Bytes appended to the log";
        /// fsync calls of the log.
        log_fsyncs: u64, Counter, "wse_log_fsyncs_total", Always, "fsync calls of the log";
        /// Writes and fsyncs of the log that failed (storage faults: the
        /// affected publishes were refused).
        log_write_failures: u64, Counter, "wse_log_write_failures_total", Always,
            "Failed writes and fsyncs of the log (publishes refused)";
        /// Share of log reads answered from memory.
        log_tail_hit_ratio: f64, Gauge, "wse_log_tail_hit_ratio", Always,
            "Share of log reads answered from memory";
        /// Log reads that went to disk.
        log_disk_reads: u64, Counter, "wse_log_disk_reads_total", Always,
            "Log reads that went to disk";
        /// Log reads that met damaged records (a catch-up skipped them, a
        /// recovery over them was refused; `wse log verify` locates them).
        log_damaged_reads: u64, Counter, "wse_log_damaged_reads_total", Always,
            "Log reads that met damaged records";
        /// Topics with subscribers.
        topics: u64, Gauge, "wse_topics", Always, "Topics with subscribers";
        /// Bytes the connections' queues and read buffers hold, as the
        /// memory budget counts them (`queue_memory_budget`).
        queue_memory_bytes: u64, Gauge, "wse_queue_memory_bytes", Always,
            "Bytes held by connection queues and read buffers";
    }
    counters {
        /// Recovery requests whose range started in the fan-out memory.
        recovery_from_memory, "wse_recovery_from_memory_total", "Recovery requests starting in memory";
        /// Recovery requests whose range started before it (read from the log).
        recovery_from_disk, "wse_recovery_from_disk_total", "Recovery requests starting in the log";
        /// Recovery requests answered "not recovered" (another epoch,
        /// removed, over `recovery_max_messages`).
        recovery_not_recovered, "wse_recovery_not_recovered_total",
            "Recovery requests answered not-recovered";
        /// Frames written to sockets (every delivery).
        frames_sent, "wse_frames_sent_total", "Frames written to sockets";
        /// Write system calls to sockets.
        socket_writes, "wse_socket_writes_total", "Write system calls to sockets";
        /// Messages not delivered to slow consumers (skipped or refused).
        slow_consumer_drops, "wse_slow_consumer_drops_total",
            "Messages not delivered to slow consumers";
        /// Connections closed as slow consumers.
        slow_consumer_disconnects, "wse_slow_consumer_disconnects_total",
            "Connections closed as slow consumers";
        /// Reads paused because a connection's read buffer could not grow
        /// within `queue_memory_budget`.
        memory_budget_waits, "wse_memory_budget_waits_total",
            "Reads paused because the queue memory budget was exhausted";
        /// Connections closed for idleness.
        idle_timeouts, "wse_idle_timeouts_total", "Connections closed for idleness";
        /// Connections closed because their JWT expired
        /// (`close_on_token_expiry`).
        tokens_expired, "wse_tokens_expired_total", "Connections closed at their token's expiry";
        /// Topic, presence and recovered frames sealed for end-to-end
        /// encrypted connections (the E2E cost of fan-out; frames queued for
        /// one connection, such as `send` output, are sealed when queued and
        /// not counted here).
        frames_encrypted, "wse_frames_encrypted_total",
            "Frames sealed for end-to-end encrypted connections";
        /// Inbound `E:` frames that could not be opened (or arrived before a
        /// key exchange).
        decrypt_failures, "wse_decrypt_failures_total",
            "Inbound encrypted frames that could not be opened";
        /// Inbound messages refused for a missing or bad `sig`.
        signature_failures, "wse_signature_failures_total",
            "Inbound messages refused for a missing or bad signature";
        /// Inbound messages refused for their shape (`max_message_depth`,
        /// `max_message_elements`): `MESSAGE_TOO_COMPLEX`.
        messages_too_complex, "wse_messages_too_complex_total",
            "Inbound messages refused for nesting or values past the limits";
        /// Client data messages received.
        messages_received, "wse_messages_received_total", "Client messages received";
        /// `send_event` calls that sent something.
        messages_sent, "wse_messages_sent_total", "Messages sent with send_event";
        /// Bytes sent by `send_event`.
        bytes_sent, "wse_bytes_sent_total", "Bytes sent with send_event";
        /// Bytes received from clients.
        bytes_received, "wse_bytes_received_total", "Bytes received from clients";
        /// Upgrades completed.
        connections_accepted, "wse_connections_accepted_total", "Connections accepted";
        /// Sockets closed before or at the upgrade (limits, draining, bad
        /// requests, timeouts).
        connections_rejected, "wse_connections_rejected_total", "Connections rejected";
        /// `accept` calls that failed (out of file descriptors, mostly).
        accept_failures, "wse_accept_failures_total",
            "Failed accept calls (out of file descriptors, mostly)";
        /// Sockets closed at accept by the pending-handshake limits: their
        /// address had `max_pending_handshakes_per_ip` pending (or every
        /// pending socket was past its request). Also in
        /// `connections_rejected`.
        handshakes_refused, "wse_handshakes_refused_total",
            "Sockets closed at accept by the pending-handshake limits";
        /// Pending sockets closed to make room for a newer one
        /// (`max_pending_handshakes` reached: the oldest still reading its
        /// request goes). Also in `connections_rejected`.
        handshakes_evicted, "wse_handshakes_evicted_total",
            "Pending handshakes closed to make room for a newer socket";
        /// TLS handshakes that failed or timed out (a client that does not
        /// trust the certificate, plain HTTP on the TLS port, a scanner).
        /// Also in `connections_rejected`.
        tls_handshake_failures, "wse_tls_handshake_failures_total",
            "TLS handshakes that failed or timed out";
        /// Certificate reloads that took (SIGHUP, `reload_tls`, a file
        /// change).
        tls_reloads, "wse_tls_reloads_total", "TLS certificate reloads that took";
        /// Certificate reloads refused (unreadable file, no key, a key
        /// that does not fit): the certificate in force stays.
        tls_reload_failures, "wse_tls_reload_failures_total",
            "TLS certificate reloads refused (the certificate in force stays)";
        /// Failed authentications.
        auth_failures, "wse_auth_failures_total", "Failed authentications";
        /// `send_event` calls refused by the rate limiter.
        rate_limited, "wse_rate_limited_total", "send_event calls refused by the rate limiter";
        /// Broadcasts appended.
        broadcasts, "wse_broadcasts_total", "Broadcasts appended";
        /// Publishes not stored because their id was in the topic's
        /// window (single node; a cluster's shards do this themselves).
        publish_duplicates, "wse_publish_duplicates_total",
            "Publishes not stored again: their id was already stored (single node)";
        /// Messages replayed from the log to catch a subscriber up.
        replayed_from_log, "wse_replayed_from_log_total",
            "Messages replayed from the log to catch a subscriber up";
        /// Presence joins not tracked (data over `presence_max_data_size`,
        /// topic at `presence_max_members`): subscribed without presence.
        presence_refused, "wse_presence_refused_total",
            "Presence joins not tracked (data too large, topic full)";
    }
}

impl Metrics {
    /// Add `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Read a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Count one publication on `topic` (at most 10,000 distinct topics
    /// are tracked, so hostile topic names cannot grow this without bound).
    pub fn count_topic(&self, topic: &str) {
        if let Some(mut n) = self.topic_messages.get_mut(topic) {
            *n += 1;
        } else if self.topic_messages.len() < 10_000 {
            *self.topic_messages.entry(Arc::from(topic)).or_insert(0) += 1;
        }
    }
}

/// Render the Prometheus text exposition of `h` (every metric of
/// [`METRICS`] that has a Prometheus name and is reported) and `m`'s
/// per-topic publications.
#[must_use]
pub fn prometheus(m: &Metrics, h: &Health) -> String {
    let mut out = String::new();
    for metric in METRICS {
        let Some(name) = metric.prometheus else {
            continue;
        };
        if metric.shown == Shown::PrometheusWithRecovery && !h.recovery_enabled {
            continue;
        }
        let value = match (metric.read)(h) {
            Value::U64(v) => v.to_string(),
            // Seconds with one decimal, as upstream writes its uptime.
            Value::F64(v) if name.ends_with("_seconds") => format!("{v:.1}"),
            Value::F64(v) => v.to_string(),
            Value::Bool(v) => u8::from(v).to_string(),
            Value::Absent => continue,
        };
        let _ = writeln!(
            out,
            "# HELP {name} {}\n# TYPE {name} {}\n{name} {value}",
            metric.help,
            metric.kind.as_str()
        );
    }
    write_topic_messages(&mut out, m);
    out
}

/// `wse_topic_messages_total{topic=..}` for the 50 busiest topics.
fn write_topic_messages(out: &mut String, m: &Metrics) {
    let mut busiest: Vec<(Arc<str>, u64)> = m
        .topic_messages
        .iter()
        .map(|e| (e.key().clone(), *e.value()))
        .collect();
    if busiest.is_empty() {
        return;
    }
    busiest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let _ = writeln!(
        out,
        "# HELP {TOPIC_MESSAGES} Publications per topic (50 busiest)\n# TYPE {TOPIC_MESSAGES} counter"
    );
    for (topic, n) in busiest.into_iter().take(50) {
        let _ = writeln!(
            out,
            "{TOPIC_MESSAGES}{{topic=\"{}\"}} {n}",
            escape_label(&topic)
        );
    }
}

/// The one labelled metric (per topic), outside [`METRICS`] because it has
/// no single value.
pub const TOPIC_MESSAGES: &str = "wse_topic_messages_total";

/// Escape a Prometheus label value (backslash, quote, newline).
fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod names_used;

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Snapshot keys with no Prometheus metric, and why.
    const SNAPSHOT_ONLY: &[&str] = &[
        // Flags, not measurements.
        "cluster_connected",
        "recovery_enabled",
        "presence_enabled",
        // Upstream keys upstream never exported (PYTHON_API.md §5).
        "cluster_unknown_message_types",
        "cluster_dlq_size",
    ];

    /// A snapshot in which every metric is reported.
    fn everything() -> Health {
        Health {
            recovery_enabled: true,
            presence_enabled: true,
            presence_topics: Some(2),
            presence_total_users: Some(3),
            ..Health::default()
        }
    }

    #[test]
    fn every_metric_is_exported_once_with_help_and_type() {
        let text = prometheus(&Metrics::default(), &everything());
        for metric in METRICS {
            let Some(name) = metric.prometheus else {
                assert!(
                    SNAPSHOT_ONLY.contains(&metric.key),
                    "{} has no name",
                    metric.key
                );
                continue;
            };
            let help = format!("# HELP {name} {}\n", metric.help);
            let kind = format!("# TYPE {name} {}\n", metric.kind.as_str());
            assert_eq!(text.matches(&help).count(), 1, "{name}");
            assert_eq!(text.matches(&kind).count(), 1, "{name}");
            let samples = text.lines().filter(|l| l.split(' ').next() == Some(name));
            assert_eq!(samples.count(), 1, "{name}");
            assert_eq!(
                metric.kind == Kind::Counter,
                name.ends_with("_total"),
                "{name}"
            );
        }
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        let exported = METRICS.iter().filter(|m| m.prometheus.is_some()).count();
        assert_eq!(
            samples, exported,
            "a sample not declared in METRICS:\n{text}"
        );
    }

    #[test]
    fn keys_and_names_are_unique_and_snapshot_only_keys_are_declared() {
        let keys: BTreeSet<_> = METRICS.iter().map(|m| m.key).collect();
        assert_eq!(keys.len(), METRICS.len());
        let names: BTreeSet<_> = METRICS.iter().filter_map(|m| m.prometheus).collect();
        assert_eq!(names.len() + SNAPSHOT_ONLY.len(), METRICS.len());
        assert!(SNAPSHOT_ONLY.iter().all(|k| keys.contains(k)));
    }

    #[test]
    fn counters_reach_the_snapshot_and_its_export() {
        let m = Metrics::default();
        Metrics::add(&m.idle_timeouts, 4);
        Metrics::add(&m.frames_sent, 7);
        let h = Health::default().with_counters(&m);
        assert_eq!((h.idle_timeouts, h.frames_sent), (4, 7));
        let read = |key: &str| METRICS.iter().find(|d| d.key == key).map(|d| (d.read)(&h));
        assert_eq!(read("idle_timeouts"), Some(Value::U64(4)));
        let text = prometheus(&m, &h);
        assert!(text.contains("\nwse_idle_timeouts_total 4\n"), "{text}");
    }

    #[test]
    fn conditional_metrics_follow_their_rules() {
        let text = prometheus(&Metrics::default(), &Health::default());
        assert!(text.contains("# TYPE wse_connections gauge\nwse_connections 0\n"));
        assert!(text.contains("wse_uptime_seconds 0.0\n"));
        assert!(
            !text.contains("wse_recovery_topics"),
            "recovery figures need recovery"
        );
        assert!(
            !text.contains("wse_presence_users"),
            "presence figures need presence"
        );
        let all = prometheus(&Metrics::default(), &everything());
        assert!(all.contains("wse_recovery_topics 0\n") && all.contains("wse_presence_users 3\n"));
    }

    #[test]
    fn the_docs_list_every_metric() {
        let docs = include_str!("../docs/OPERATIONS.md");
        let rows: Vec<Vec<&str>> = docs
            .lines()
            .skip_while(|l| l.trim() != METRICS_TABLE_HEADER)
            .skip(2)
            .take_while(|l| l.starts_with('|'))
            .map(|l| {
                l.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().trim_matches('`'))
                    .collect()
            })
            .collect();
        let listed: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[0], r[1], r[2])).collect();
        let declared: Vec<(&str, &str, &str)> = METRICS
            .iter()
            .map(|m| (m.key, m.prometheus.unwrap_or("—"), m.kind.as_str()))
            .collect();
        assert_eq!(listed, declared);
    }

    /// The header of the metrics table of docs/OPERATIONS.md.
    const METRICS_TABLE_HEADER: &str = "| key | Prometheus | kind | meaning |";

    #[test]
    fn topic_labels_are_escaped() {
        let m = Metrics::default();
        m.count_topic("a\"b\\c\nd");
        m.count_topic("plain");
        m.count_topic("plain");
        let text = prometheus(&m, &Health::default());
        assert!(text.contains("wse_topic_messages_total{topic=\"plain\"} 2\n"));
        assert!(text.contains("wse_topic_messages_total{topic=\"a\\\"b\\\\c\\nd\"} 1\n"));
    }
}
