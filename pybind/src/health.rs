//! `health_snapshot()`: every metric of `wse::metrics::METRICS`, in its
//! order, which starts with the upstream keys in upstream order
//! (PYTHON_API.md §2.10) and goes on with WSE's own.
//!
//! The keys, their order and their types come from that one declaration;
//! this file only converts the values. Clustering does not exist yet, so
//! every `cluster_*` figure is 0 and `cluster_connected` is false.
//! `presence_topics` and `presence_total_users` are present only when
//! presence is enabled, as upstream (their value is then `Absent`).

use pyo3::prelude::*;
use pyo3::types::PyDict;
use wse::Health;
use wse::metrics::{METRICS, Value};

/// The snapshot as a dict.
pub fn to_dict<'py>(py: Python<'py>, h: &Health) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for metric in METRICS {
        match (metric.read)(h) {
            Value::U64(v) => d.set_item(metric.key, v)?,
            Value::F64(v) => d.set_item(metric.key, v)?,
            Value::Bool(v) => d.set_item(metric.key, v)?,
            Value::Absent => {}
        }
    }
    Ok(d)
}
