//! `health_snapshot()`: the upstream keys in upstream order (PYTHON_API.md
//! §2.10), then WSE's log and delivery figures.
//!
//! Clustering does not exist yet, so every `cluster_*` figure is 0 and
//! `cluster_connected` is false. `presence_topics` and
//! `presence_total_users` are present only when presence is enabled, as
//! upstream.

use pyo3::prelude::*;
use pyo3::types::PyDict;
use wse::Health;

/// The snapshot as a dict.
pub fn to_dict<'py>(py: Python<'py>, h: &Health) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("connections", h.connections)?;
    d.set_item("inbound_queue_depth", h.inbound_queue_depth)?;
    d.set_item("inbound_dropped", h.inbound_dropped)?;
    d.set_item("cluster_connected", h.cluster_connected)?;
    d.set_item("cluster_peer_count", h.cluster_peer_count)?;
    for key in [
        "cluster_messages_sent",
        "cluster_messages_delivered",
        "cluster_messages_dropped",
        "cluster_bytes_sent",
        "cluster_bytes_received",
        "cluster_reconnect_count",
        "cluster_unknown_message_types",
        "cluster_dlq_size",
    ] {
        d.set_item(key, 0u64)?;
    }
    d.set_item("uptime_secs", h.uptime_secs)?;
    d.set_item("recovery_enabled", h.recovery_enabled)?;
    d.set_item("recovery_topic_count", h.recovery_topic_count)?;
    d.set_item("recovery_total_bytes", h.recovery_total_bytes)?;
    d.set_item("presence_enabled", h.presence_enabled)?;
    if h.presence_enabled {
        d.set_item("presence_topics", h.presence_topics.unwrap_or(0))?;
        d.set_item("presence_total_users", h.presence_total_users.unwrap_or(0))?;
    }
    d.set_item("log_appends", h.log_appends)?;
    d.set_item("log_append_bytes", h.log_append_bytes)?;
    d.set_item("log_fsyncs", h.log_fsyncs)?;
    d.set_item("log_write_failures", h.log_write_failures)?;
    d.set_item("log_tail_hit_ratio", h.log_tail_hit_ratio)?;
    d.set_item("log_disk_reads", h.log_disk_reads)?;
    d.set_item("recovery_from_memory", h.recovery_from_memory)?;
    d.set_item("recovery_from_disk", h.recovery_from_disk)?;
    d.set_item("recovery_not_recovered", h.recovery_not_recovered)?;
    d.set_item("frames_sent", h.frames_sent)?;
    d.set_item("socket_writes", h.socket_writes)?;
    d.set_item("slow_consumer_drops", h.slow_consumer_drops)?;
    d.set_item("slow_consumer_disconnects", h.slow_consumer_disconnects)?;
    d.set_item("idle_timeouts", h.idle_timeouts)?;
    d.set_item("frames_encrypted", h.frames_encrypted)?;
    d.set_item("decrypt_failures", h.decrypt_failures)?;
    d.set_item("signature_failures", h.signature_failures)?;
    Ok(d)
}
