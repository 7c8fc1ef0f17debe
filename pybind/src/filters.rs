//! Event helpers (PYTHON_API.md §3.5): `rust_match_event` (MongoDB-style
//! filters) and `rust_transform_event` (the envelope builder).

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use serde_json::Value;
use wse::toolkit::{MatchError, transform_event, try_match_event};

use crate::convert::{Style, dict_to_map, map_to_py};

/// True when `event` satisfies `criteria`. Raises where Python's own
/// comparison would (`TypeError` for incomparable or wrongly typed
/// operands, `ValueError` for an invalid `$regex`).
#[pyfunction]
pub fn rust_match_event(event: &Bound<'_, PyDict>, criteria: &Bound<'_, PyDict>) -> PyResult<bool> {
    let event = Value::Object(dict_to_map(event, Style::SEND)?);
    let criteria = Value::Object(dict_to_map(criteria, Style::SEND)?);
    try_match_event(&event, &criteria).map_err(|e| match e {
        MatchError::InvalidRegex { .. } => PyValueError::new_err(e.to_string()),
        MatchError::WrongType { .. } | MatchError::Incomparable { .. } => {
            PyTypeError::new_err(e.to_string())
        }
    })
}

/// The WSE envelope `{c, t, id, ts, seq, p, v, ...}` of a raw event;
/// UUID, datetime, Enum and bytes values are made JSON-safe first. An event
/// that already is an envelope comes back as is, with `seq` added.
#[pyfunction]
pub fn rust_transform_event<'py>(
    py: Python<'py>,
    event: &Bound<'py, PyDict>,
    sequence: i64,
    event_type_map: &Bound<'py, PyDict>,
) -> PyResult<Bound<'py, PyDict>> {
    let event = dict_to_map(event, Style::TRANSFORM)?;
    let map = dict_to_map(event_type_map, Style::TRANSFORM)?;
    map_to_py(py, &transform_event(&event, sequence, &map))
}
