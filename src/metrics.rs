//! Counters of a running server, the health snapshot and the Prometheus
//! text export (PYTHON_API.md §2.10, plus log figures).

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use dashmap::DashMap;

use crate::conn::Pushed;

/// Running totals since start.
#[derive(Default)]
pub struct Metrics {
    /// Client data messages received.
    pub messages_received: AtomicU64,
    /// `send_event` calls that sent something.
    pub messages_sent: AtomicU64,
    /// Bytes sent by `send_event`.
    pub bytes_sent: AtomicU64,
    /// Bytes received from clients.
    pub bytes_received: AtomicU64,
    /// Upgrades completed.
    pub connections_accepted: AtomicU64,
    /// Sockets closed before or at the upgrade (limits, draining, bad
    /// requests, timeouts).
    pub connections_rejected: AtomicU64,
    /// `accept` calls that failed (out of file descriptors, mostly).
    pub accept_failures: AtomicU64,
    /// Failed authentications.
    pub auth_failures: AtomicU64,
    /// `send_event` calls refused by the rate limiter.
    pub rate_limited: AtomicU64,
    /// Messages not delivered to slow consumers (skipped or refused).
    pub slow_consumer_drops: AtomicU64,
    /// Connections closed as slow consumers.
    pub slow_consumer_disconnects: AtomicU64,
    /// Broadcasts appended.
    pub broadcasts: AtomicU64,
    /// Frames written to sockets (every delivery).
    pub frames_sent: AtomicU64,
    /// Write system calls to sockets.
    pub socket_writes: AtomicU64,
    /// Recovery requests whose range started in the fan-out memory.
    pub recovery_from_memory: AtomicU64,
    /// Recovery requests whose range started before it (read from the log).
    pub recovery_from_disk: AtomicU64,
    /// Recovery requests answered "not recovered".
    pub recovery_not_recovered: AtomicU64,
    /// Messages replayed from the log to catch a subscriber up.
    pub replayed_from_log: AtomicU64,
    /// Connections closed for idleness.
    pub idle_timeouts: AtomicU64,
    /// Topic, presence and recovered frames sealed for end-to-end
    /// encrypted connections (the E2E cost of fan-out; frames queued for
    /// one connection, such as `send` output, are sealed when queued and
    /// not counted here).
    pub frames_encrypted: AtomicU64,
    /// Inbound `E:` frames that could not be opened (or arrived before a
    /// key exchange).
    pub decrypt_failures: AtomicU64,
    /// Inbound messages refused for a missing or bad `sig`.
    pub signature_failures: AtomicU64,
    /// Publications per topic.
    pub topic_messages: DashMap<Arc<str>, u64>,
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

    /// Count a frame queued for one connection: sealed for its end-to-end
    /// key, or refused (a full queue, a closing connection).
    pub fn count_push(&self, pushed: Pushed) {
        match pushed {
            Pushed::Plain => {}
            Pushed::Sealed => Self::add(&self.frames_encrypted, 1),
            Pushed::Refused => Self::add(&self.slow_consumer_drops, 1),
        }
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

/// A health snapshot: the upstream keys, in upstream order, then WSE's own.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub struct Health {
    /// Registered connections.
    pub connections: u64,
    /// Events waiting in the inbound queue.
    pub inbound_queue_depth: u64,
    /// Events lost by the inbound queue.
    pub inbound_dropped: u64,
    /// Cluster: at least one peer link up (no clustering yet: false).
    pub cluster_connected: bool,
    /// Cluster peers.
    pub cluster_peer_count: u64,
    /// Seconds since start (0.0 before start).
    pub uptime_secs: f64,
    /// Recovery (stamping) enabled.
    pub recovery_enabled: bool,
    /// Topics in the log.
    pub recovery_topic_count: u64,
    /// Bytes of the log's memory tails.
    pub recovery_total_bytes: u64,
    /// Presence enabled.
    pub presence_enabled: bool,
    /// Topics with presence state (only reported when enabled).
    pub presence_topics: Option<u64>,
    /// Users summed over topics (only reported when enabled).
    pub presence_total_users: Option<u64>,
    /// Records appended to the log.
    pub log_appends: u64,
    /// Bytes appended to the log.
    pub log_append_bytes: u64,
    /// fsync calls of the log.
    pub log_fsyncs: u64,
    /// Writes and fsyncs of the log that failed (storage faults: the
    /// affected publishes were refused).
    pub log_write_failures: u64,
    /// Share of log reads answered from memory.
    pub log_tail_hit_ratio: f64,
    /// Log reads that went to disk.
    pub log_disk_reads: u64,
    /// Recovery requests that started in memory.
    pub recovery_from_memory: u64,
    /// Recovery requests that started before the memory (log reads).
    pub recovery_from_disk: u64,
    /// Recovery requests answered not-recovered (another epoch, removed,
    /// over `recovery_max_messages`).
    pub recovery_not_recovered: u64,
    /// Frames written to sockets.
    pub frames_sent: u64,
    /// Write system calls to sockets.
    pub socket_writes: u64,
    /// Messages skipped or refused for slow consumers.
    pub slow_consumer_drops: u64,
    /// Connections closed as slow consumers.
    pub slow_consumer_disconnects: u64,
    /// Connections closed for idleness.
    pub idle_timeouts: u64,
    /// Topic, presence and recovered frames sealed for E2E connections.
    pub frames_encrypted: u64,
    /// Inbound encrypted frames that could not be opened.
    pub decrypt_failures: u64,
    /// Inbound messages refused for a missing or bad `sig`.
    pub signature_failures: u64,
}

/// Render the Prometheus text exposition.
pub fn prometheus(m: &Metrics, h: &Health, topics: usize) -> String {
    let mut out = String::new();
    let mut gauge = |name: &str, help: &str, v: String| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
    };
    gauge(
        "wse_connections",
        "Active WebSocket connections",
        h.connections.to_string(),
    );
    gauge(
        "wse_inbound_queue_depth",
        "Events waiting in the inbound queue",
        h.inbound_queue_depth.to_string(),
    );
    gauge(
        "wse_uptime_seconds",
        "Seconds since the server started",
        format!("{:.1}", h.uptime_secs),
    );
    gauge("wse_topics", "Topics with subscribers", topics.to_string());
    gauge(
        "wse_cluster_peers",
        "Connected cluster peers",
        h.cluster_peer_count.to_string(),
    );
    if h.recovery_enabled {
        gauge(
            "wse_recovery_topics",
            "Topics in the log",
            h.recovery_topic_count.to_string(),
        );
        gauge(
            "wse_recovery_bytes",
            "Bytes of the log's memory tails",
            h.recovery_total_bytes.to_string(),
        );
    }
    if h.presence_enabled {
        gauge(
            "wse_presence_topics",
            "Topics with presence",
            h.presence_topics.unwrap_or(0).to_string(),
        );
        gauge(
            "wse_presence_users",
            "Users present, summed over topics",
            h.presence_total_users.unwrap_or(0).to_string(),
        );
    }
    let counters: [(&str, &str, u64); 28] = [
        (
            "wse_frames_encrypted_total",
            "Frames sealed for end-to-end encrypted connections",
            Metrics::get(&m.frames_encrypted),
        ),
        (
            "wse_decrypt_failures_total",
            "Inbound encrypted frames that could not be opened",
            Metrics::get(&m.decrypt_failures),
        ),
        (
            "wse_signature_failures_total",
            "Inbound messages refused for a missing or bad signature",
            Metrics::get(&m.signature_failures),
        ),
        (
            "wse_messages_received_total",
            "Client messages received",
            Metrics::get(&m.messages_received),
        ),
        (
            "wse_messages_sent_total",
            "Messages sent with send_event",
            Metrics::get(&m.messages_sent),
        ),
        (
            "wse_bytes_sent_total",
            "Bytes sent with send_event",
            Metrics::get(&m.bytes_sent),
        ),
        (
            "wse_connections_accepted_total",
            "Connections accepted",
            Metrics::get(&m.connections_accepted),
        ),
        (
            "wse_connections_rejected_total",
            "Connections rejected",
            Metrics::get(&m.connections_rejected),
        ),
        (
            "wse_accept_failures_total",
            "Failed accept calls (out of file descriptors, mostly)",
            Metrics::get(&m.accept_failures),
        ),
        (
            "wse_bytes_received_total",
            "Bytes received from clients",
            Metrics::get(&m.bytes_received),
        ),
        (
            "wse_auth_failures_total",
            "Failed authentications",
            Metrics::get(&m.auth_failures),
        ),
        (
            "wse_rate_limited_total",
            "send_event calls refused by the rate limiter",
            Metrics::get(&m.rate_limited),
        ),
        (
            "wse_inbound_dropped_total",
            "Inbound events dropped",
            h.inbound_dropped,
        ),
        (
            "wse_slow_consumer_drops_total",
            "Messages not delivered to slow consumers",
            Metrics::get(&m.slow_consumer_drops),
        ),
        (
            "wse_cluster_messages_sent_total",
            "Messages sent to cluster peers",
            0,
        ),
        (
            "wse_cluster_messages_delivered_total",
            "Messages delivered from cluster peers",
            0,
        ),
        (
            "wse_cluster_messages_dropped_total",
            "Cluster messages dropped",
            0,
        ),
        (
            "wse_cluster_bytes_sent_total",
            "Bytes sent to cluster peers",
            0,
        ),
        (
            "wse_cluster_bytes_received_total",
            "Bytes received from cluster peers",
            0,
        ),
        ("wse_cluster_reconnects_total", "Cluster reconnects", 0),
        (
            "wse_log_appends_total",
            "Records appended to the log",
            h.log_appends,
        ),
        (
            "wse_log_fsyncs_total",
            "fsync calls of the log",
            h.log_fsyncs,
        ),
        (
            "wse_log_write_failures_total",
            "Failed writes and fsyncs of the log (publishes refused)",
            h.log_write_failures,
        ),
        (
            "wse_frames_sent_total",
            "Frames written to sockets",
            h.frames_sent,
        ),
        (
            "wse_socket_writes_total",
            "Write system calls to sockets",
            h.socket_writes,
        ),
        (
            "wse_recovery_from_memory_total",
            "Recovery requests starting in memory",
            h.recovery_from_memory,
        ),
        (
            "wse_recovery_from_disk_total",
            "Recovery requests starting in the log",
            h.recovery_from_disk,
        ),
        (
            "wse_recovery_not_recovered_total",
            "Recovery requests answered not-recovered",
            h.recovery_not_recovered,
        ),
    ];
    for (name, help, v) in counters {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    }
    let mut busiest: Vec<(Arc<str>, u64)> = m
        .topic_messages
        .iter()
        .map(|e| (e.key().clone(), *e.value()))
        .collect();
    if !busiest.is_empty() {
        busiest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let _ = writeln!(
            out,
            "# HELP wse_topic_messages_total Publications per topic (50 busiest)\n# TYPE wse_topic_messages_total counter"
        );
        for (topic, n) in busiest.into_iter().take(50) {
            let _ = writeln!(
                out,
                "wse_topic_messages_total{{topic=\"{}\"}} {n}",
                escape_label(&topic)
            );
        }
    }
    out
}

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
mod tests {
    use super::*;

    #[test]
    fn exports_every_metric_with_escaped_topic_labels() {
        let m = Metrics::default();
        m.count_topic("a\"b\\c\nd");
        m.count_topic("plain");
        m.count_topic("plain");
        let text = prometheus(&m, &Health::default(), 2);
        assert!(text.contains("# TYPE wse_connections gauge\nwse_connections 0\n"));
        assert!(text.contains("wse_uptime_seconds 0.0\n"));
        assert!(text.contains("wse_slow_consumer_drops_total 0\n"));
        assert!(text.contains("wse_topic_messages_total{topic=\"plain\"} 2\n"));
        assert!(text.contains("wse_topic_messages_total{topic=\"a\\\"b\\\\c\\nd\"} 1\n"));
        assert!(!text.contains("wse_recovery_topics"));
    }
}
