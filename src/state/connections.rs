//! The registered connections and the admission of new ones: slots under
//! `max_connections`, the pending handshakes (`handshakes.rs`), and waiting
//! for them to go.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use dashmap::DashMap;
use parking_lot::{Condvar, Mutex};
use tokio::sync::Notify;

use super::handshakes::{Admission, Handshakes};
use crate::conn::{CloseRequest, Conn, ConnId};

/// Every connection of a running server.
pub(crate) struct Connections {
    /// Registered connections.
    map: DashMap<ConnId, Arc<Conn>>,
    /// Connections registered or being registered.
    slots: AtomicUsize,
    /// Most slots.
    max: usize,
    /// Woken whenever a connection goes away (async waiters: drain).
    gone: Notify,
    /// Woken whenever a connection goes away (blocking waiters: stop).
    gone_sync: (Mutex<()>, Condvar),
    /// Sockets between accept and completed upgrade, so that idle ones
    /// cannot lock clients out.
    handshakes: Arc<Handshakes>,
}

impl Connections {
    /// Room for `max` connections and `max_handshakes` upgrades at once,
    /// `max_handshakes_per_ip` of them from one address (0: no cap).
    pub(crate) fn new(max: usize, max_handshakes: usize, max_handshakes_per_ip: usize) -> Self {
        Self {
            map: DashMap::new(),
            slots: AtomicUsize::new(0),
            max,
            gone: Notify::new(),
            gone_sync: Default::default(),
            handshakes: Arc::new(Handshakes::new(max_handshakes, max_handshakes_per_ip)),
        }
    }

    /// The connection with `id`, if registered.
    pub(crate) fn get(&self, id: ConnId) -> Option<Arc<Conn>> {
        self.map.get(&id).map(|c| c.clone())
    }

    /// Registered connections.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Every registered connection, at one moment.
    pub(crate) fn all(&self) -> Vec<Arc<Conn>> {
        self.map.iter().map(|c| c.value().clone()).collect()
    }

    /// Run `f` on every registered connection (no lock is held across
    /// two connections, so `f` may take a connection's locks).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Arc<Conn>)) {
        for c in self.map.iter() {
            f(c.value());
        }
    }

    /// Register `conn` (its slot was reserved).
    pub(crate) fn register(&self, conn: Arc<Conn>) {
        self.map.insert(conn.id, conn);
    }

    /// Forget `id` and give back its slot.
    pub(crate) fn unregister(&self, id: ConnId) {
        self.map.remove(&id);
        self.release_slot();
    }

    /// A place for one upgrade in progress from `peer` (see
    /// [`Handshakes::admit`]).
    pub(crate) fn admit_handshake(&self, peer: IpAddr) -> Admission {
        self.handshakes.admit(peer)
    }

    /// Reserve a connection slot; false when `max_connections` is reached.
    pub(crate) fn reserve_slot(&self) -> bool {
        let prev = self.slots.fetch_add(1, Ordering::AcqRel);
        if prev >= self.max {
            self.slots.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Give back a slot (a reserved connection that never registered, or
    /// one that went away).
    pub(crate) fn release_slot(&self) {
        self.slots.fetch_sub(1, Ordering::AcqRel);
        self.gone.notify_waiters();
        let _g = self.gone_sync.0.lock();
        self.gone_sync.1.notify_all();
    }

    /// Connections registered or being registered.
    pub(crate) fn in_use(&self) -> usize {
        self.slots.load(Ordering::Acquire)
    }

    /// Ask every connection to close.
    pub(crate) fn close_all(&self, req: &CloseRequest) {
        self.for_each(|c| c.request_close(req.clone()));
    }

    /// Block until no connection is left or `deadline` passes.
    pub(crate) fn wait_all_gone(&self, deadline: Instant) {
        let mut g = self.gone_sync.0.lock();
        while self.in_use() > 0 {
            if self.gone_sync.1.wait_until(&mut g, deadline).timed_out() {
                return;
            }
        }
    }

    /// Wait until no connection is left or `deadline` passes; false when
    /// some are left.
    pub(crate) async fn all_gone_by(&self, deadline: tokio::time::Instant) -> bool {
        while self.in_use() > 0 {
            let gone = self.gone.notified();
            if self.in_use() == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, gone).await.is_err() {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_stop_at_the_limit_and_come_back() {
        let c = Connections::new(2, 1, 0);
        assert!(c.reserve_slot());
        assert!(c.reserve_slot());
        assert!(!c.reserve_slot(), "the third is refused");
        assert_eq!(c.in_use(), 2);
        c.release_slot();
        assert!(c.reserve_slot(), "a released slot is free again");
    }

    #[test]
    fn waiting_for_everyone_to_go_ends_at_the_deadline() {
        let c = Connections::new(4, 1, 0);
        assert!(c.reserve_slot());
        let start = Instant::now();
        c.wait_all_gone(start);
        assert_eq!(c.in_use(), 1, "still there: the wait gave up");
        c.release_slot();
        c.wait_all_gone(Instant::now() + std::time::Duration::from_secs(60));
        assert_eq!(c.in_use(), 0);
    }
}
