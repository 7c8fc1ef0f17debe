//! `subscribe_with_recovery` results as the dict of PYTHON_API.md §2.7:
//!
//! ```python
//! {"recovered": True,
//!  "topics": {"room": {"epoch": "3855177d", "offset": 2, "recoverable": True,
//!                      "recovered": True, "count": 2, "complete": True}}}
//! ```
//!
//! `complete` is WSE's addition (docs/PROTOCOL.md): true when the whole
//! gap is replayed. Recovery is all or nothing, so it equals `recovered`;
//! it stays for apps written when gaps were paged. Apps may pass the
//! entries to the client's `subscription_update` reply unchanged.

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wse::Server;
use wse::{RecoveryError, RecoveryReport, TopicRecovery};
use wse_log::TopicPosition;

use crate::errors::{not_running, server_error};

/// The arguments of `subscribe_with_recovery`.
pub struct Request<'a> {
    /// The connection.
    pub conn_id: &'a str,
    /// Topics to subscribe to.
    pub topics: &'a [String],
    /// Replay what was missed.
    pub recover: bool,
    /// The client's epoch.
    pub epoch: Option<&'a str>,
    /// The last offset the client accepted.
    pub offset: Option<u64>,
}

/// `subscribe_with_recovery` as upstream answers it: before `start()` a
/// report of nothing (or `RuntimeError("Not running")` when recovering);
/// for an unknown connection where each topic stands (after the epoch is
/// checked); otherwise the server's report. The GIL is released while the
/// server subscribes and queues the replay.
pub fn subscribe_with_recovery<'py>(
    py: Python<'py>,
    server: &Server,
    r: &Request<'_>,
) -> PyResult<Bound<'py, PyDict>> {
    if !server.is_running() {
        if r.recover {
            return Err(not_running());
        }
        return report_to_dict(py, &unrecovered(r.topics, |_| None));
    }
    let report = py
        .detach(|| {
            server.subscribe_with_recovery(r.conn_id, r.topics, r.recover, r.epoch, r.offset)
        })
        .map_err(|e| server_error(py, e))?;
    if report.topics.is_empty() && !r.topics.is_empty() {
        // Unknown connection: nothing subscribed or replayed.
        if let (true, Some(e), Some(_)) = (r.recover, r.epoch, r.offset)
            && e.parse::<wse_log::Epoch>().is_err()
        {
            return Err(PyRuntimeError::new_err(
                RecoveryError::InvalidEpoch(e.to_owned()).to_string(),
            ));
        }
        let report = unrecovered(r.topics, |t| server.position(t).ok().flatten());
        return report_to_dict(py, &report);
    }
    report_to_dict(py, &report)
}

/// A report recovering nothing, each topic at `position(topic)`.
fn unrecovered(
    topics: &[String],
    position: impl Fn(&str) -> Option<TopicPosition>,
) -> RecoveryReport {
    RecoveryReport {
        recovered: false,
        topics: topics
            .iter()
            .map(|t| not_recovered(t, position(t).as_ref()))
            .collect(),
    }
}

/// The report as the Python dict.
pub fn report_to_dict<'py>(
    py: Python<'py>,
    report: &RecoveryReport,
) -> PyResult<Bound<'py, PyDict>> {
    let topics = PyDict::new(py);
    for t in &report.topics {
        topics.set_item(&t.topic, entry(py, t)?)?;
    }
    let d = PyDict::new(py);
    d.set_item("recovered", report.recovered)?;
    d.set_item("topics", topics)?;
    Ok(d)
}

fn entry<'py>(py: Python<'py>, t: &TopicRecovery) -> PyResult<Bound<'py, PyDict>> {
    let e = PyDict::new(py);
    e.set_item("epoch", t.epoch.map(|e| e.to_string()))?;
    e.set_item("offset", t.offset)?;
    e.set_item("recoverable", t.recoverable)?;
    e.set_item("recovered", t.recovered)?;
    e.set_item("count", t.count)?;
    e.set_item("complete", t.complete)?;
    Ok(e)
}

/// The entry of a topic that was not recovered (unknown connection, or a
/// server that is not running): its current position, if any.
fn not_recovered(topic: &str, position: Option<&TopicPosition>) -> TopicRecovery {
    TopicRecovery {
        topic: topic.to_owned(),
        epoch: position.map(|p| p.epoch),
        offset: position.and_then(|p| p.last_offset()).unwrap_or(0),
        recoverable: position.is_some(),
        recovered: false,
        count: 0,
        complete: false,
    }
}
