//! Callback mode: one thread that drains the server's event queue and calls
//! the Python callbacks.
//!
//! One thread and one FIFO queue keep every connection's events in order
//! (upstream ran `on_message` on a worker pool, out of order). The thread
//! waits for events without the GIL and takes it once per batch. An
//! exception raised by a callback is logged to the `wse_server` logger (or
//! printed) and swallowed. When no callbacks are set and drain mode is off,
//! the thread drops the events, so a server nobody listens to never fills
//! its queue and stalls its clients. It stops when drain mode is turned on,
//! leaving the queue to `drain_inbound`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{JoinHandle, ThreadId};
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use wse::{AppEvent, Server};

use crate::events::{Callback, to_callback};

/// Events taken from the queue per batch.
const BATCH: usize = 256;
/// Longest wait for the first event of a batch (bounds how long `stop`
/// waits for the thread).
const WAIT: Duration = Duration::from_millis(50);

/// The three callbacks of `set_callbacks`.
pub struct Callbacks {
    /// `on_connect(conn_id, cookies)`.
    pub on_connect: Py<PyAny>,
    /// `on_message(conn_id, data)`.
    pub on_message: Py<PyAny>,
    /// `on_disconnect(conn_id)`.
    pub on_disconnect: Py<PyAny>,
    /// `on_presence(event_type, {"topic", "user_id", "data"})`, optional.
    pub on_presence: Option<Py<PyAny>>,
}

/// What the dispatcher shares with the server object.
#[derive(Clone)]
pub struct Shared {
    /// The server whose events are dispatched.
    pub server: Arc<Server>,
    /// The current callbacks (replaceable while running).
    pub callbacks: Arc<Mutex<Option<Arc<Callbacks>>>>,
    /// Drain mode: the dispatcher leaves the queue alone.
    pub drain_mode: Arc<AtomicBool>,
}

/// A running dispatcher thread.
pub struct Dispatcher {
    /// Asks the thread to finish.
    stop: Arc<AtomicBool>,
    /// The thread, joined by [`Dispatcher::stop`].
    handle: JoinHandle<()>,
}

impl Dispatcher {
    /// Start the thread.
    pub fn spawn(shared: Shared) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::Builder::new()
            .name("wse-callbacks".into())
            .spawn(move || run(&shared, &flag))?;
        Ok(Self { stop, handle })
    }

    /// The thread's id (a callback that stops the server runs on it).
    pub fn thread_id(&self) -> ThreadId {
        self.handle.thread().id()
    }

    /// Ask the thread to finish without waiting for it (it finishes within
    /// one batch wait, dropping its handle on the server).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Ask the thread to finish and wait for it (call without the GIL: the
    /// thread may be waiting for it to finish a batch). From the thread
    /// itself (a callback called `stop()`), only ask.
    pub fn stop(self) {
        self.stop.store(true, Ordering::Release);
        if std::thread::current().id() != self.thread_id() {
            let _ = self.handle.join();
        }
    }
}

fn run(shared: &Shared, stop: &AtomicBool) {
    while !stop.load(Ordering::Acquire) && !shared.drain_mode.load(Ordering::Acquire) {
        let events = shared.server.drain_events(BATCH, WAIT);
        if events.is_empty() {
            if !shared.server.is_running() {
                // A stopped server's queue answers at once: do not spin.
                std::thread::sleep(WAIT);
            }
            continue;
        }
        let callbacks = shared.callbacks.lock().clone();
        if let Some(callbacks) = callbacks {
            Python::attach(|py| dispatch(py, &callbacks, &events));
        }
    }
}

fn dispatch(py: Python<'_>, callbacks: &Callbacks, events: &[AppEvent]) {
    for event in events {
        let result = to_callback(py, event).and_then(|call| match call {
            Some(Callback::Connect(args)) => callbacks.on_connect.call1(py, args).map(drop),
            Some(Callback::Message(args)) => callbacks.on_message.call1(py, args).map(drop),
            Some(Callback::Disconnect(args)) => callbacks.on_disconnect.call1(py, args).map(drop),
            Some(Callback::Presence(args)) => match &callbacks.on_presence {
                Some(f) => f.call1(py, args).map(drop),
                None => Ok(()),
            },
            None => Ok(()),
        });
        if let Err(err) = result {
            report(py, &err);
        }
    }
}

/// Log a callback's exception to the `wse_server` logger, or print it.
fn report(py: Python<'_>, err: &PyErr) {
    let logged = (|| -> PyResult<()> {
        let logger = py
            .import("logging")?
            .call_method1("getLogger", ("wse_server",))?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("exc_info", err.value(py))?;
        logger.call_method(
            "error",
            ("wse_server: a callback raised an exception",),
            Some(&kwargs),
        )?;
        Ok(())
    })();
    if logged.is_err() {
        err.clone_ref(py).print(py);
    }
}
