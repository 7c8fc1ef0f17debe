//! `RustWSEServer` receiving: drain mode, callbacks, the inbound queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::dispatcher::Callbacks;
use crate::events;

use super::RustWSEServer;

/// Longest pause of `drain_inbound` on a stopped server, whose queue
/// answers at once (keeps a polling loop from spinning).
const STOPPED_POLL: Duration = Duration::from_millis(50);

// PyO3 hands arguments over as owned values (`Vec<String>`, `Bound`).
#[allow(clippy::needless_pass_by_value)]
#[pymethods]
impl RustWSEServer {
    /// Deliver events through `drain_inbound` (wins over callbacks).
    fn enable_drain_mode(&self) {
        self.drain_mode.store(true, Ordering::Release);
    }

    /// Up to `max_count` events as `(kind, conn_id, data)` tuples, waiting
    /// up to `timeout_ms` (GIL released) for the first; `[]` on timeout.
    #[pyo3(signature = (max_count=256, timeout_ms=50))]
    fn drain_inbound<'py>(
        &self,
        py: Python<'py>,
        max_count: usize,
        timeout_ms: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        let timeout = Duration::from_millis(timeout_ms);
        let events = py.detach(|| {
            let started = Instant::now();
            let events = self.server.drain_events(max_count, timeout);
            if events.is_empty() && !self.server.is_running() {
                let left = timeout.saturating_sub(started.elapsed());
                std::thread::sleep(left.min(STOPPED_POLL));
            }
            events
        });
        let list = PyList::empty(py);
        for e in &events {
            list.append(events::to_tuple(py, e)?)?;
        }
        Ok(list)
    }

    /// Events waiting in the queue.
    fn inbound_queue_depth(&self) -> usize {
        self.server.inbound_queue_depth()
    }

    /// Events lost (only those arriving while stopped: a full queue makes
    /// clients wait instead of dropping).
    fn inbound_dropped_count(&self) -> u64 {
        self.server.inbound_dropped_count()
    }

    /// Callback mode: `on_connect(conn_id, cookies)`,
    /// `on_message(conn_id, data)`, `on_disconnect(conn_id)`, and (a WSE
    /// addition) `on_presence(event_type, {"topic", "user_id", "data"})`,
    /// called in order from one thread; exceptions are logged and
    /// swallowed.
    #[pyo3(signature = (on_connect, on_message, on_disconnect, on_presence=None))]
    fn set_callbacks(
        &self,
        on_connect: Bound<'_, PyAny>,
        on_message: Bound<'_, PyAny>,
        on_disconnect: Bound<'_, PyAny>,
        on_presence: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let presence_ok = on_presence.as_ref().is_none_or(|f| f.is_callable());
        if !(on_connect.is_callable()
            && on_message.is_callable()
            && on_disconnect.is_callable()
            && presence_ok)
        {
            return Err(PyRuntimeError::new_err("All callbacks must be callable"));
        }
        *self.callbacks.lock() = Some(Arc::new(Callbacks {
            on_connect: on_connect.unbind(),
            on_message: on_message.unbind(),
            on_disconnect: on_disconnect.unbind(),
            on_presence: on_presence.map(Bound::unbind),
        }));
        Ok(())
    }
}
