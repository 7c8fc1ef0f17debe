//! Where a running server is in its life: since when it runs, whether it
//! drains (no new connections) or stops, and the signal that wakes its
//! background loops when it does.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use tokio::sync::Notify;

/// The life of a running server.
pub(crate) struct Lifecycle {
    started: Instant,
    draining: AtomicBool,
    stopping: AtomicBool,
    stop_signal: Notify,
}

impl Lifecycle {
    /// Started now.
    pub(crate) fn new() -> Self {
        Self {
            started: Instant::now(),
            draining: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            stop_signal: Notify::new(),
        }
    }

    /// When the server started (the time base of activity stamps).
    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    /// Milliseconds since start.
    pub(crate) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// New sockets are closed before their upgrade from now on.
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Are new sockets refused?
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// The server is stopping: wake the background loops.
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.stop_signal.notify_waiters();
    }

    /// Is the server stopping?
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Acquire)
    }

    /// Resolves when [`Lifecycle::stop`] is called after this was created
    /// (check [`Lifecycle::is_stopping`] too: a stop before it is missed).
    pub(crate) fn stopped(&self) -> tokio::sync::futures::Notified<'_> {
        self.stop_signal.notified()
    }
}
