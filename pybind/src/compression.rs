//! zlib and msgpack helpers (PYTHON_API.md §3.3): `rust_compress`,
//! `rust_decompress`, `rust_should_compress` and `RustCompressionManager`.
//!
//! A level outside 1..=9 raises `ValueError`; decompression and msgpack
//! failures raise `RuntimeError` with upstream's message prefixes.
//! Python values given to the msgpack/event packers are made JSON-safe
//! first (UUID, datetime, Enum, bytes as hex, objects as their `__dict__`).

use parking_lot::Mutex;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict};
use serde_json::Value;
use wse::compression::{self, CompressError, CompressionManager, msgpack};

use crate::convert::{Style, dict_to_map, serialize_to_py, to_py};

fn compress_error(e: &CompressError) -> PyErr {
    match e {
        CompressError::InvalidLevel(_) => PyValueError::new_err(e.to_string()),
        CompressError::Io(_) => PyRuntimeError::new_err(e.to_string()),
    }
}

fn runtime(e: impl std::fmt::Display) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// zlib at `level` (1-9, required).
#[pyfunction]
pub fn rust_compress<'py>(
    py: Python<'py>,
    data: &[u8],
    level: i32,
) -> PyResult<Bound<'py, PyBytes>> {
    let out = py
        .detach(|| compression::compress(data, level))
        .map_err(|e| compress_error(&e))?;
    Ok(PyBytes::new(py, &out))
}

/// Inflate a zlib stream (output capped at 10 MiB).
#[pyfunction]
pub fn rust_decompress<'py>(py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
    let out = py
        .detach(|| compression::decompress(data))
        .map_err(runtime)?;
    Ok(PyBytes::new(py, &out))
}

/// `len(data) > threshold`.
#[pyfunction]
pub fn rust_should_compress(data: &[u8], threshold: usize) -> bool {
    compression::should_compress(data.len(), threshold)
}

/// zlib with a threshold, a default level and statistics; msgpack and
/// event (de)serialisation.
#[pyclass(frozen, module = "wse_server._wse_accel")]
pub struct RustCompressionManager {
    /// The manager; its counters change on every call.
    inner: Mutex<CompressionManager>,
}

#[pymethods]
impl RustCompressionManager {
    /// `RustCompressionManager(threshold=1024, compression_level=6)`.
    #[new]
    #[pyo3(signature = (threshold=1024, compression_level=6))]
    fn new(threshold: usize, compression_level: i32) -> Self {
        Self {
            inner: Mutex::new(CompressionManager::new(threshold, compression_level)),
        }
    }

    /// True when `data` is longer than the threshold.
    fn should_compress(&self, data: &[u8]) -> bool {
        self.inner.lock().should_compress(data)
    }

    /// zlib at `level`, or the manager's level.
    #[pyo3(signature = (data, level=None))]
    fn compress<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        level: Option<i32>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let out = self
            .inner
            .lock()
            .compress(data, level)
            .map_err(|e| compress_error(&e))?;
        Ok(PyBytes::new(py, &out))
    }

    /// Inflate a zlib stream (output capped at 10 MiB).
    fn decompress<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyBytes>> {
        let out = self.inner.lock().decompress(data).map_err(runtime)?;
        Ok(PyBytes::new(py, &out))
    }

    /// msgpack bytes of a dict.
    fn pack_msgpack<'py>(
        &self,
        py: Python<'py>,
        data: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let value = Value::Object(dict_to_map(data, Style::RICH)?);
        let out = msgpack::pack_msgpack(&value).map_err(runtime)?;
        Ok(PyBytes::new(py, &out))
    }

    /// The value msgpack bytes encode.
    fn unpack_msgpack<'py>(&self, py: Python<'py>, data: &[u8]) -> PyResult<Bound<'py, PyAny>> {
        let value = msgpack::unpack_msgpack(data).map_err(runtime)?;
        to_py(py, &value)
    }

    /// msgpack bytes of an event, or JSON bytes when `use_msgpack` is
    /// false.
    #[pyo3(signature = (event, use_msgpack=true))]
    fn pack_event<'py>(
        &self,
        py: Python<'py>,
        event: &Bound<'py, PyDict>,
        use_msgpack: bool,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let value = Value::Object(dict_to_map(event, Style::RICH)?);
        Ok(PyBytes::new(py, &msgpack::pack_event(&value, use_msgpack)))
    }

    /// Decode an event: msgpack then JSON (`is_msgpack`), or JSON with a
    /// `{"_raw_hex", "_decode_error"}` fallback.
    #[pyo3(signature = (data, is_msgpack=true))]
    fn unpack_event<'py>(
        &self,
        py: Python<'py>,
        data: &[u8],
        is_msgpack: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let value = msgpack::unpack_event(data, is_msgpack).map_err(runtime)?;
        to_py(py, &value)
    }

    /// Counters and rates.
    fn get_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stats = self.inner.lock().stats();
        serialize_to_py(py, &stats)
    }

    /// Zero the counters.
    fn reset_stats(&self) {
        self.inner.lock().reset_stats();
    }
}
