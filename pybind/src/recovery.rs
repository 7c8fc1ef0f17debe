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

use pyo3::prelude::*;
use pyo3::types::PyDict;
use wse::ops::recovery::{RecoveryReport, TopicRecovery};
use wse_log::TopicPosition;

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
pub fn not_recovered(topic: &str, position: Option<&TopicPosition>) -> TopicRecovery {
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
