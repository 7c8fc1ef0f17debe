//! `RustPriorityQueue` and `RustPriorityMessageQueue` (PYTHON_API.md §3.4):
//! the toolkit's queues holding Python objects.

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyTuple};
use wse::toolkit::message_queue::PriorityCounts;
use wse::toolkit::{PriorityMessageQueue, PriorityQueue};

/// Bounded priority queue: highest priority first, FIFO within a
/// priority; pushing into a full queue is refused.
#[pyclass(frozen, module = "wse_server._wse_accel")]
pub struct RustPriorityQueue {
    /// The queue of Python objects.
    inner: Mutex<PriorityQueue<Py<PyAny>>>,
}

#[pymethods]
impl RustPriorityQueue {
    /// `RustPriorityQueue(max_size)`.
    #[new]
    fn new(max_size: usize) -> Self {
        Self {
            inner: Mutex::new(PriorityQueue::new(max_size)),
        }
    }

    /// Queue `message`; False when full.
    fn push(&self, priority: i32, message: Py<PyAny>) -> bool {
        self.inner.lock().push(priority, message).is_ok()
    }

    /// The highest-priority, oldest message, or None.
    fn pop(&self) -> Option<Py<PyAny>> {
        self.inner.lock().pop()
    }

    /// Up to `max_count` messages in `pop` order.
    fn drain(&self, max_count: usize) -> Vec<Py<PyAny>> {
        self.inner.lock().drain(max_count)
    }

    /// Messages queued.
    fn len(&self) -> usize {
        self.inner.lock().len()
    }

    /// Messages queued (`len(queue)`).
    fn __len__(&self) -> usize {
        self.inner.lock().len()
    }

    /// True when a push would be refused.
    fn is_full(&self) -> bool {
        self.inner.lock().is_full()
    }

    /// Drop every message.
    fn clear(&self) {
        self.inner.lock().clear();
    }
}

/// Five-level queue (CRITICAL 10, HIGH 8, NORMAL 5, LOW 3, BACKGROUND 1)
/// with batch dequeue and a drop policy that sacrifices low priorities.
#[pyclass(frozen, module = "wse_server._wse_accel")]
pub struct RustPriorityMessageQueue {
    /// The queue of Python objects.
    inner: Mutex<PriorityMessageQueue<Py<PyAny>>>,
}

/// `{10: n, 8: n, 5: n, 3: n, 1: n}` with integer keys.
fn counts<'py>(py: Python<'py>, c: &PriorityCounts) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (level, n) in c.iter() {
        d.set_item(level, n)?;
    }
    Ok(d)
}

#[pymethods]
impl RustPriorityMessageQueue {
    /// `RustPriorityMessageQueue(max_size=1000, batch_size=10)`.
    #[new]
    #[pyo3(signature = (max_size=1000, batch_size=10))]
    fn new(max_size: usize, batch_size: usize) -> Self {
        Self {
            inner: Mutex::new(PriorityMessageQueue::new(max_size, batch_size)),
        }
    }

    /// Queue `message` at `priority` (snapped to 1/3/5/8/10); False when
    /// full of HIGH/CRITICAL messages.
    #[pyo3(signature = (message, priority=5))]
    fn enqueue(&self, message: Py<PyAny>, priority: i32) -> bool {
        self.inner.lock().enqueue(message, priority).is_ok()
    }

    /// Up to `batch_size` `(priority, message)` pairs, highest first.
    fn dequeue_batch<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let batch = self.inner.lock().dequeue_batch();
        let list = PyList::empty(py);
        for (level, message) in batch {
            list.append(PyTuple::new(
                py,
                [level.into_pyobject(py)?.into_any(), message.into_bound(py)],
            )?)?;
        }
        Ok(list)
    }

    /// Messages queued.
    #[getter]
    fn size(&self) -> usize {
        self.inner.lock().size()
    }

    /// Size, capacity, per-level counts and drops, back-pressure flag.
    fn get_stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.inner.lock().stats();
        let d = PyDict::new(py);
        d.set_item("size", s.size)?;
        d.set_item("capacity", s.capacity)?;
        d.set_item("utilization_percent", s.utilization_percent)?;
        d.set_item(
            "priority_distribution",
            counts(py, &s.priority_distribution)?,
        )?;
        let depths = PyDict::new(py);
        for (level, n) in s.priority_queue_depths.0.iter() {
            depths.set_item(format!("priority_{level}_depth"), n)?;
        }
        d.set_item("priority_queue_depths", depths)?;
        d.set_item("dropped_by_priority", counts(py, &s.dropped_by_priority)?)?;
        d.set_item("total_dropped", s.total_dropped)?;
        d.set_item("backpressure", s.backpressure)?;
        d.set_item("oldest_message_age", s.oldest_message_age)?;
        d.set_item("processing_rate", s.processing_rate)?;
        Ok(d)
    }

    /// Drop every message.
    fn clear(&self) {
        self.inner.lock().clear();
    }
}
