//! The state shared by everything that runs while the server is started.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Instant;

use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::sync::{Notify, Semaphore};
use wse_log::Log;

use crate::config::ServerConfig;
use crate::conn::{CloseRequest, Conn, ConnId};
use crate::events::InboundQueue;
use crate::fanout::Fanout;
use crate::metrics::Metrics;

/// `send_event` deduplication: the last (connection, id) pairs sent.
pub struct DedupWindow {
    seen: std::collections::HashSet<(ConnId, String)>,
    order: VecDeque<(ConnId, String)>,
    capacity: usize,
}

impl DedupWindow {
    /// A window of `capacity` pairs.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Default::default(),
            order: VecDeque::new(),
            capacity,
        }
    }

    /// Record the pair; false when it was already in the window.
    pub fn insert(&mut self, conn: ConnId, id: &str) -> bool {
        let key = (conn, id.to_owned());
        if self.seen.contains(&key) {
            return false;
        }
        if self.order.len() >= self.capacity
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.seen.insert(key.clone());
        self.order.push_back(key);
        true
    }
}

/// Everything a running server shares.
pub struct ServerState {
    /// Configuration.
    pub config: ServerConfig,
    /// The log every broadcast goes to.
    pub log: Arc<Log>,
    /// Topic channels and pattern subscriptions.
    pub fanout: Arc<Fanout>,
    /// The fan-out thread, fed by the log's writer thread.
    pub(crate) feed: Arc<crate::fanout::feed::Feed>,
    /// Registered connections.
    pub conns: DashMap<ConnId, Arc<Conn>>,
    /// Connections registered or being registered (for `max_connections`).
    pub conn_slots: AtomicUsize,
    /// Woken whenever a connection goes away (async waiters: drain).
    pub conn_gone: Notify,
    /// Woken whenever a connection goes away (blocking waiters: stop).
    pub conn_gone_sync: (parking_lot::Mutex<()>, parking_lot::Condvar),
    /// Events for the application.
    pub events: Arc<InboundQueue>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// New sockets are closed before their upgrade.
    pub draining: AtomicBool,
    /// The server is stopping.
    pub stopping: AtomicBool,
    /// Wakes the accept loop and the ticker when stopping.
    pub stop_signal: Notify,
    /// Sockets between accept and completed upgrade.
    pub handshakes: Arc<Semaphore>,
    /// `send_event` deduplication window (50,000 pairs).
    pub dedup: Mutex<DedupWindow>,
    /// `send_event` sequence numbers (from 0).
    pub seq: AtomicU64,
    /// When the server started.
    pub started: Instant,
    /// Presence, when enabled.
    pub presence: Option<crate::presence::Presence>,
}

impl ServerState {
    /// Milliseconds since start (the time base of activity stamps).
    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// The connection with `id`, if registered.
    pub fn conn(&self, id: ConnId) -> Option<Arc<Conn>> {
        self.conns.get(&id).map(|c| c.clone())
    }

    /// Reserve a connection slot; false when `max_connections` is reached.
    pub fn reserve_slot(&self) -> bool {
        let prev = self.conn_slots.fetch_add(1, Ordering::AcqRel);
        if prev >= self.config.max_connections {
            self.conn_slots.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Give back a slot (a reserved connection that never registered, or
    /// one that went away).
    pub fn release_slot(&self) {
        self.conn_slots.fetch_sub(1, Ordering::AcqRel);
        self.conn_gone.notify_waiters();
        let _g = self.conn_gone_sync.0.lock();
        self.conn_gone_sync.1.notify_all();
    }

    /// Block until no connection is left or `deadline` passes.
    pub fn wait_all_gone(&self, deadline: std::time::Instant) {
        let mut g = self.conn_gone_sync.0.lock();
        while self.conn_slots.load(Ordering::Acquire) > 0 {
            if self
                .conn_gone_sync
                .1
                .wait_until(&mut g, deadline)
                .timed_out()
            {
                return;
            }
        }
    }

    /// Ask every connection to close.
    pub fn close_all(&self, req: &CloseRequest) {
        for c in self.conns.iter() {
            c.request_close(req.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedup_window_forgets_the_oldest_pairs() {
        let mut w = DedupWindow::new(2);
        assert!(w.insert(ConnId(1), "a"));
        assert!(!w.insert(ConnId(1), "a"));
        assert!(w.insert(ConnId(2), "a"));
        assert!(w.insert(ConnId(1), "b"));
        assert!(w.insert(ConnId(1), "a"), "the oldest pair left the window");
    }
}
