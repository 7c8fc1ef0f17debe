//! `RustWSEServer` sending: to one connection, broadcasts, publishes.

use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::config::seconds;
use crate::convert::{Style, dict_to_map};
use crate::errors::{not_running, server_error};

use super::RustWSEServer;

/// Payloads at least this large are sent with the GIL released.
const LARGE_PAYLOAD: usize = 16 * 1024;

// PyO3 hands arguments over as owned values (`Vec<String>`, `Bound`).
#[allow(clippy::needless_pass_by_value)]
#[pymethods]
impl RustWSEServer {
    /// Text frame to one connection, verbatim.
    fn send(&self, py: Python<'_>, conn_id: &str, data: &str) -> PyResult<()> {
        let run = || self.server.send(conn_id, data);
        let result = if data.len() >= LARGE_PAYLOAD {
            py.detach(run)
        } else {
            run()
        };
        result.map_err(|e| server_error(py, e))
    }

    /// Binary frame to one connection, verbatim.
    fn send_bytes(&self, py: Python<'_>, conn_id: &str, data: &[u8]) -> PyResult<()> {
        let run = || self.server.send_bytes(conn_id, data);
        let result = if data.len() >= LARGE_PAYLOAD {
            py.detach(run)
        } else {
            run()
        };
        result.map_err(|e| server_error(py, e))
    }

    /// The `send_event` pipeline (envelope, dedup by `id`, rate limit,
    /// msgpack or JSON, zlib above `compression_threshold`); returns the
    /// frame body's size, 0 when deduplicated or rate limited.
    #[pyo3(signature = (conn_id, event, compression_threshold=1024))]
    fn send_event(
        &self,
        py: Python<'_>,
        conn_id: &str,
        event: &Bound<'_, PyDict>,
        compression_threshold: usize,
    ) -> PyResult<usize> {
        let map = dict_to_map(event, Style::SEND)?;
        py.detach(|| self.server.send_event(conn_id, &map, compression_threshold))
            .map_err(|e| server_error(py, e))
    }

    /// Text to every connection (`c` injected).
    fn broadcast_all(&self, py: Python<'_>, data: &str) -> PyResult<()> {
        py.detach(|| self.server.broadcast_all(data))
            .map_err(|e| server_error(py, e))
    }

    /// Bytes to every connection.
    fn broadcast_all_bytes(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        py.detach(|| self.server.broadcast_all_bytes(data))
            .map_err(|e| server_error(py, e))
    }

    /// Publish on `topic`: appended to its log (stamped when recovery is
    /// on), then delivered to its subscribers, pattern subscribers and one
    /// member of each queue group.
    fn broadcast_local(&self, py: Python<'_>, topic: &str, data: &str) -> PyResult<()> {
        match py.detach(|| self.server.broadcast_local(topic, data)) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(not_running()),
            Err(e) => Err(server_error(py, e)),
        }
    }

    /// Publish on `topic` and return `(epoch, offset)` once the record is
    /// acknowledged: durable by the log's policy (`always`: fsynced;
    /// `interval`/`never`: written, so a crash of this process cannot take
    /// it back). The GIL is released while waiting; concurrent publishers
    /// share fsyncs.
    ///
    /// In a cluster the record is committed by a majority of the topic's
    /// shard first. With `id`, a publish whose id is already stored on the
    /// topic (within `cluster_dedup_window`) is not stored again and gets
    /// the first copy's position: after a `TimeoutError` (which may still
    /// commit), publish again with the same id.
    #[pyo3(signature = (topic, data, id=None))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: &str,
        data: &str,
        id: Option<&str>,
    ) -> PyResult<(String, u64)> {
        py.detach(|| self.server.publish_with_id(topic, data, id))
            .map(|p| (p.epoch.to_string(), p.offset))
            .map_err(|e| server_error(py, e))
    }

    /// Return once everything broadcast or published before this call is
    /// acknowledged (and, under `interval`, fsynced). `TimeoutError` after
    /// `timeout` seconds (`None`: no limit).
    #[pyo3(signature = (timeout=None))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        py.detach(|| self.server.flush(timeout))
            .map_err(|e| server_error(py, e))
    }

    /// `broadcast_local`, and (once clustering exists) to peers. Does
    /// nothing before `start()`.
    fn broadcast(&self, py: Python<'_>, topic: &str, data: &str) -> PyResult<()> {
        py.detach(|| self.server.broadcast_local(topic, data))
            .map(drop)
            .map_err(|e| server_error(py, e))
    }
}
