//! `RustWSEServer` under inspection: health, metrics, options, and the
//! log (positions, reads).

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use wse_log::Position;

use crate::errors::server_error;
use crate::{health, records};

use super::RustWSEServer;

// PyO3 hands arguments over as owned values (`Vec<String>`, `Bound`).
#[allow(clippy::needless_pass_by_value)]
#[pymethods]
impl RustWSEServer {
    /// Health figures (upstream keys first, then WSE's log figures).
    fn health_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        health::to_dict(py, &self.server.health())
    }

    /// Prometheus text exposition.
    fn prometheus_metrics(&self) -> String {
        self.server.prometheus_metrics()
    }

    /// Every option's value, as `wse::config::options` shows it (private:
    /// `tests/python/test_options.py` checks the constructor's defaults
    /// and keywords with it).
    fn _options(&self) -> Vec<(&'static str, String)> {
        wse::config::options::values(self.server.config()).collect()
    }

    // ---- the log ---------------------------------------------------------

    /// Where `topic` stands in the log: `{"epoch", "first_offset",
    /// "next_offset"}`, or `None` when it has no history.
    fn position<'py>(&self, py: Python<'py>, topic: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let pos = self
            .server
            .position(topic)
            .map_err(|e| server_error(py, e))?;
        pos.map(|p| records::position(py, p.epoch, p.first_offset, p.next_offset))
            .transpose()
    }

    /// Up to `limit` records of `topic` from `(epoch, offset)` inclusive,
    /// from memory or disk. Raises `NotRecoverableError` for a position in
    /// another epoch, removed by retention, or past the head.
    #[pyo3(signature = (topic, epoch, offset, limit=100))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        topic: &str,
        epoch: &str,
        offset: u64,
        limit: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let from = Position::new(records::parse_epoch(epoch)?, offset);
        let batch = py
            .detach(|| self.server.read(topic, from, limit))
            .map_err(|e| server_error(py, e))?;
        records::records(py, topic, &batch.records)
    }
}
