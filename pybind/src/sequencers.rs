//! `RustSequencer` and `RustEventSequencer` (PYTHON_API.md §3.4): sequence
//! counters, dedup windows and per-topic reordering of Python objects.

use parking_lot::Mutex;
use pyo3::prelude::*;
use wse::toolkit::{EventSequencer, Sequencer};

use crate::convert::serialize_to_py;

/// Sequence counter (first value 1) with a FIFO dedup window of ids.
#[pyclass(frozen, module = "wse_server._wse_accel")]
pub struct RustSequencer {
    /// The sequencer.
    inner: Mutex<Sequencer>,
}

#[pymethods]
impl RustSequencer {
    /// `RustSequencer(window_size)`.
    #[new]
    fn new(window_size: usize) -> Self {
        Self {
            inner: Mutex::new(Sequencer::new(window_size)),
        }
    }

    /// Increment and return the counter.
    fn next_seq(&self) -> u64 {
        self.inner.lock().next_seq()
    }

    /// The last value `next_seq` returned (0 before the first call).
    fn get_current_seq(&self) -> u64 {
        self.inner.lock().current_seq()
    }

    /// True if `event_id` is in the window; otherwise remember it.
    fn is_duplicate(&self, event_id: &str) -> bool {
        self.inner.lock().is_duplicate(event_id)
    }

    /// Forget ids older than `max_age_secs`.
    fn cleanup(&self, max_age_secs: f64) {
        self.inner.lock().cleanup(max_age_secs);
    }

    /// Ids in the window.
    fn seen_count(&self) -> usize {
        self.inner.lock().seen_count()
    }
}

/// Dedup window plus per-topic in-order delivery with a bounded reorder
/// buffer.
#[pyclass(frozen, module = "wse_server._wse_accel")]
pub struct RustEventSequencer {
    /// The sequencer of Python objects.
    inner: Mutex<EventSequencer<Py<PyAny>>>,
}

#[pymethods]
impl RustEventSequencer {
    /// `RustEventSequencer(window_size=10000, max_out_of_order=100)`.
    #[new]
    #[pyo3(signature = (window_size=10000, max_out_of_order=100))]
    fn new(window_size: usize, max_out_of_order: u64) -> Self {
        Self {
            inner: Mutex::new(EventSequencer::new(window_size, max_out_of_order)),
        }
    }

    /// Increment and return the global counter.
    fn next_seq(&self) -> u64 {
        self.inner.lock().next_seq()
    }

    /// The last value `next_seq` returned.
    fn get_current_sequence(&self) -> u64 {
        self.inner.lock().current_sequence()
    }

    /// True (and counted) if `event_id` is in the window; otherwise
    /// remember it.
    fn is_duplicate(&self, event_id: &str) -> bool {
        self.inner.lock().is_duplicate(event_id)
    }

    /// Feed one event of `topic`: the events now deliverable in order, or
    /// None when it was buffered or dropped.
    fn process_sequenced_event(
        &self,
        topic: &str,
        sequence: u64,
        event: Py<PyAny>,
    ) -> Option<Vec<Py<PyAny>>> {
        self.inner
            .lock()
            .process_sequenced_event(topic, sequence, event)
    }

    /// Forget one topic's ordering state, or every topic's.
    #[pyo3(signature = (topic=None))]
    fn reset_sequence(&self, topic: Option<&str>) {
        self.inner.lock().reset_sequence(topic);
    }

    /// Drop buffered events older than 5 minutes and forget idle topics.
    fn cleanup(&self) {
        self.inner.lock().cleanup();
    }

    /// Buffered events per topic.
    fn get_buffer_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stats = self.inner.lock().buffer_stats();
        serialize_to_py(py, &stats)
    }

    /// Counters and per-topic ordering state.
    fn get_sequence_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let stats = self.inner.lock().sequence_stats();
        serialize_to_py(py, &stats)
    }
}
