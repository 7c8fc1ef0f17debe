//! `LogReader`: read-only access to any WSE data directory from Python.
//!
//! It wraps `wse_log::DirReader`, which reads segment files directly,
//! takes no lock and never writes, so it works on the directory of a
//! running server (a record still being written is simply not there yet)
//! as well as on one left by a stopped or crashed server. Reads run with
//! the GIL released.

use std::path::PathBuf;

use pyo3::exceptions::{PyFileNotFoundError, PyLookupError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use wse_log::{
    DirReader, LogError, NotRecoverable, NotRecoverableReason, Position, ReadLimits, TopicSummary,
};

use crate::errors::{log_error, not_recoverable};
use crate::records;

/// Read-only view of a data directory: topics, positions and records.
#[pyclass(frozen, module = "wse_server._wse_accel")]
pub struct LogReader {
    /// The reader (its file-handle cache has its own lock).
    reader: DirReader,
    /// The directory, as given.
    dir: PathBuf,
}

impl LogReader {
    /// The stored topic `topic` (`LookupError` when there is none).
    fn stored(&self, py: Python<'_>, topic: &str) -> PyResult<TopicSummary> {
        py.detach(|| self.reader.topic(topic))
            .map_err(|e| log_error(py, e))?
            .ok_or_else(|| {
                PyLookupError::new_err(format!("no topic {topic:?} in {}", self.dir.display()))
            })
    }
}

#[pymethods]
impl LogReader {
    /// Open `data_dir` for reading (`FileNotFoundError` if it does not
    /// exist).
    #[new]
    fn new(py: Python<'_>, data_dir: PathBuf) -> PyResult<Self> {
        let reader = DirReader::open(&data_dir).map_err(|e| match e {
            LogError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
                PyFileNotFoundError::new_err(format!(
                    "no WSE data directory at {}",
                    data_dir.display()
                ))
            }
            other => log_error(py, other),
        })?;
        Ok(Self {
            reader,
            dir: data_dir,
        })
    }

    /// The data directory.
    #[getter]
    fn data_dir(&self) -> PathBuf {
        self.dir.clone()
    }

    /// Every topic, sorted by name: `{"name", "epoch", "first_offset",
    /// "next_offset", "bytes", "segments"}`.
    fn topics<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let (topics, _unreadable) = py
            .detach(|| self.reader.topics())
            .map_err(|e| log_error(py, e))?;
        let list = PyList::empty(py);
        for t in &topics {
            let d = records::position(py, t.epoch, t.first_offset, t.next_offset)?;
            d.set_item("name", &t.name)?;
            d.set_item("bytes", t.bytes)?;
            d.set_item("segments", t.segments.len())?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Where `topic` stands: `{"epoch", "first_offset", "next_offset"}`,
    /// or `None` when the directory has no such topic.
    fn position<'py>(&self, py: Python<'py>, topic: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let summary = py
            .detach(|| self.reader.topic(topic))
            .map_err(|e| log_error(py, e))?;
        summary
            .map(|t| records::position(py, t.epoch, t.first_offset, t.next_offset))
            .transpose()
    }

    /// The offset of the first record of `topic` appended at or after
    /// `timestamp_us` (microseconds since the Unix epoch); the topic's next
    /// offset when every record is older. `LookupError` for an unknown
    /// topic.
    fn offset_at_time(&self, py: Python<'_>, topic: &str, timestamp_us: u64) -> PyResult<u64> {
        let summary = self.stored(py, topic)?;
        py.detach(|| self.reader.offset_at_time(&summary, timestamp_us))
            .map_err(|e| log_error(py, e))
    }

    /// Up to `limit` records of `topic` from `offset` (inclusive). With
    /// `epoch`, the stored history must be that epoch, else
    /// `NotRecoverableError`; an unknown topic is a `LookupError`.
    #[pyo3(signature = (topic, epoch=None, offset=0, limit=100))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        topic: &str,
        epoch: Option<&str>,
        offset: u64,
        limit: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let wanted = epoch.map(records::parse_epoch).transpose()?;
        let summary = self.stored(py, topic)?;
        if let Some(e) = wanted
            && e != summary.epoch
        {
            return Err(not_recoverable(
                py,
                &NotRecoverable {
                    topic: topic.to_owned(),
                    requested: Position::new(e, offset),
                    reason: NotRecoverableReason::EpochMismatch,
                    epoch: summary.epoch,
                    first_offset: summary.first_offset,
                    next_offset: summary.next_offset,
                },
            ));
        }
        let found = py
            .detach(|| {
                self.reader
                    .read(&summary, offset, ReadLimits::records(limit))
            })
            .map_err(|e| log_error(py, e))?;
        records::records(py, topic, &found)
    }
}
