//! Log positions and records as Python dicts, shared by
//! `RustWSEServer.position/read` and `LogReader`.
//!
//! - position: `{"epoch": "6b238eba", "first_offset": 0, "next_offset": 42}`
//!   (`next_offset` is the offset the next record gets: newest + 1);
//! - record: `{"topic", "epoch", "offset", "timestamp_us", "kind", "data"}`,
//!   `kind` one of `"message"`, `"presence"`, `"control"`, and `data` the
//!   payload — for messages the stamped JSON text exactly as subscribers
//!   received it (`str`; `bytes` if it is not UTF-8).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString};
use wse_log::{Epoch, Record, RecordKind};

/// A topic's position.
pub fn position<'py>(
    py: Python<'py>,
    epoch: Epoch,
    first_offset: u64,
    next_offset: u64,
) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("epoch", epoch.to_string())?;
    d.set_item("first_offset", first_offset)?;
    d.set_item("next_offset", next_offset)?;
    Ok(d)
}

/// Records of `topic` as a list of dicts.
pub fn records<'py>(
    py: Python<'py>,
    topic: &str,
    records: &[Record],
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for r in records {
        let d = PyDict::new(py);
        d.set_item("topic", topic)?;
        d.set_item("epoch", r.epoch().to_string())?;
        d.set_item("offset", r.offset())?;
        d.set_item("timestamp_us", r.timestamp_us())?;
        d.set_item(
            "kind",
            match r.kind() {
                RecordKind::Message => "message",
                RecordKind::Presence => "presence",
                RecordKind::Control => "control",
            },
        )?;
        let payload = r.payload_ref();
        match std::str::from_utf8(payload) {
            Ok(text) => d.set_item("data", PyString::new(py, text))?,
            Err(_) => d.set_item("data", PyBytes::new(py, payload))?,
        }
        list.append(d)?;
    }
    Ok(list)
}

/// Parse an epoch as clients see it (1 to 8 hex digits).
pub fn parse_epoch(text: &str) -> PyResult<Epoch> {
    text.parse::<Epoch>()
        .map_err(|e| PyValueError::new_err(e.to_string()))
}
