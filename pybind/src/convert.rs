//! Python values to and from JSON values (`serde_json::Value`), the data
//! model of the Rust crates.
//!
//! JSON to Python is exact: objects become `dict`, arrays `list`, numbers
//! `int` (any 64-bit value, signed or not) or `float`, and so on.
//!
//! Python to JSON has to decide what to do with values JSON cannot carry.
//! Two [`Style`]s cover the rules of PYTHON_API.md:
//!
//! - [`Style::SEND`] (`send_event`, JWT claims, filters): `bytes` become a
//!   hex string, objects with `isoformat()` that string, anything else
//!   `str()` of it;
//! - [`Style::RICH`] (`rust_transform_event`, msgpack packing): UUIDs
//!   become their string, dates and times `isoformat()`, `Enum` members
//!   their value, plain objects their `__dict__`; `bytes` are hex
//!   ([`Style::RICH`]) or text ([`Style::TRANSFORM`]: UTF-8, else Latin-1).
//!
//! In every style `NaN` and infinities become `null`, tuples become lists,
//! integers beyond 64 bits become their decimal string, and dictionary keys
//! that are not strings become their JSON spelling (`1` → `"1"`,
//! `True` → `"true"`, `None` → `"null"`).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyByteArray, PyBytes, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple,
};
use serde_json::{Map, Number, Value};

/// Deepest nesting converted; deeper (or self-referencing) values raise
/// `ValueError` instead of overflowing the stack.
const MAX_DEPTH: usize = 128;

/// How `bytes` become JSON.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BytesAs {
    /// Lowercase hex digits.
    Hex,
    /// UTF-8 text when valid, else one Latin-1 character per byte.
    Text,
}

/// Rules for Python values JSON cannot carry (see the module docs).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Style {
    /// What `bytes` become.
    pub bytes: BytesAs,
    /// Recognise UUIDs, `Enum` members and plain objects (`__dict__`).
    pub rich: bool,
}

impl Style {
    /// `send_event`, JWT claims and filters.
    pub const SEND: Self = Self {
        bytes: BytesAs::Hex,
        rich: false,
    };
    /// msgpack packing of the compression manager.
    pub const RICH: Self = Self {
        bytes: BytesAs::Hex,
        rich: true,
    };
    /// `rust_transform_event`.
    pub const TRANSFORM: Self = Self {
        bytes: BytesAs::Text,
        rich: true,
    };
}

/// Convert any Python value to JSON under `style`.
pub fn to_json(obj: &Bound<'_, PyAny>, style: Style) -> PyResult<Value> {
    convert(obj, style, 0)
}

/// Convert a Python `dict` to a JSON object under `style`.
pub fn dict_to_map(dict: &Bound<'_, PyDict>, style: Style) -> PyResult<Map<String, Value>> {
    convert_dict(dict, style, 0)
}

fn convert(obj: &Bound<'_, PyAny>, style: Style, depth: usize) -> PyResult<Value> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(
            "value is nested too deeply (or contains itself) to convert to JSON",
        ));
    }
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if obj.is_instance_of::<PyInt>() {
        return Ok(int_to_json(obj));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(float_to_json(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::String(s.to_str()?.to_owned()));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::String(bytes_to_string(b.as_bytes(), style.bytes)));
    }
    if let Ok(b) = obj.cast::<PyByteArray>() {
        return Ok(Value::String(bytes_to_string(&b.to_vec(), style.bytes)));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return Ok(Value::Object(convert_dict(d, style, depth)?));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|item| convert(&item, style, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|item| convert(&item, style, depth + 1))
            .collect::<PyResult<Vec<_>>>()
            .map(Value::Array);
    }
    if style.rich {
        if is_uuid(obj) {
            return Ok(Value::String(obj.str()?.to_str()?.to_owned()));
        }
        if obj.hasattr("isoformat")? && obj.hasattr("year")? {
            return convert(&obj.call_method0("isoformat")?, style, depth + 1);
        }
        if obj.hasattr("value")? && obj.hasattr("name")? {
            return convert(&obj.getattr("value")?, style, depth + 1);
        }
        if let Ok(attrs) = obj.getattr("__dict__")
            && let Ok(d) = attrs.cast::<PyDict>()
        {
            return Ok(Value::Object(convert_dict(d, style, depth)?));
        }
    } else if obj.hasattr("isoformat")? {
        return convert(&obj.call_method0("isoformat")?, style, depth + 1);
    }
    Ok(Value::String(obj.str()?.to_str()?.to_owned()))
}

fn convert_dict(
    dict: &Bound<'_, PyDict>,
    style: Style,
    depth: usize,
) -> PyResult<Map<String, Value>> {
    let mut map = Map::new();
    for (k, v) in dict.iter() {
        map.insert(key_to_string(&k)?, convert(&v, style, depth + 1)?);
    }
    Ok(map)
}

/// A dictionary key as JSON spells it.
fn key_to_string(key: &Bound<'_, PyAny>) -> PyResult<String> {
    if let Ok(s) = key.cast::<PyString>() {
        return Ok(s.to_str()?.to_owned());
    }
    if key.is_none() {
        return Ok("null".to_owned());
    }
    if let Ok(b) = key.cast::<PyBool>() {
        return Ok(if b.is_true() { "true" } else { "false" }.to_owned());
    }
    Ok(key.str()?.to_str()?.to_owned())
}

/// A Python `int`: a JSON integer when it fits 64 bits, else its digits.
fn int_to_json(obj: &Bound<'_, PyAny>) -> Value {
    if let Ok(i) = obj.extract::<i64>() {
        return Value::from(i);
    }
    if let Ok(u) = obj.extract::<u64>() {
        return Value::from(u);
    }
    obj.str()
        .ok()
        .and_then(|s| s.to_str().ok().map(|s| Value::String(s.to_owned())))
        .unwrap_or(Value::Null)
}

/// A float, with `NaN` and infinities as `null`.
fn float_to_json(f: f64) -> Value {
    Number::from_f64(f).map_or(Value::Null, Value::Number)
}

fn bytes_to_string(data: &[u8], how: BytesAs) -> String {
    match how {
        BytesAs::Hex => data.iter().map(|b| format!("{b:02x}")).collect(),
        BytesAs::Text => wse::toolkit::event_transform::bytes_to_json_string(data),
    }
}

/// `uuid.UUID` (or anything shaped like it: a 32-character `hex` string).
fn is_uuid(obj: &Bound<'_, PyAny>) -> bool {
    obj.getattr("hex")
        .ok()
        .and_then(|h| h.extract::<String>().ok())
        .is_some_and(|h| h.len() == 32)
}

/// Convert a JSON value to the equivalent Python value.
pub fn to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Value::String(s) => PyString::new(py, s).into_any(),
        Value::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Object(map) => map_to_py(py, map)?.into_any(),
    })
}

/// Convert a JSON object to a Python `dict`.
pub fn map_to_py<'py>(py: Python<'py>, map: &Map<String, Value>) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (k, v) in map {
        dict.set_item(k, to_py(py, v)?)?;
    }
    Ok(dict)
}

/// Any serializable Rust value (statistics structs) as a Python value.
pub fn serialize_to_py<'py, T: serde::Serialize>(
    py: Python<'py>,
    value: &T,
) -> PyResult<Bound<'py, PyAny>> {
    let json = serde_json::to_value(value)
        .map_err(|e| pyo3::exceptions::PyRuntimeError::new_err(e.to_string()))?;
    to_py(py, &json)
}
