//! Events for the application, and the bounded queue they wait in.
//!
//! Every event of every connection goes through one FIFO queue, so the
//! events of a connection keep their order. The queue is bounded: when it
//! is full, connection readers stop reading (TCP back-pressure reaches the
//! clients) instead of dropping events, and each connection's input is
//! also rate limited so one client cannot take the whole queue.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex};
use serde_json::Value;
use tokio::sync::Notify;

use crate::conn::ConnId;

/// Something the application hears about.
#[derive(Clone, Debug, PartialEq)]
pub enum AppEvent {
    /// A connection was accepted without JWT (raw `Cookie` header, or "").
    Connect {
        /// The connection.
        conn: ConnId,
        /// The raw `Cookie` header.
        cookies: String,
    },
    /// A connection authenticated with a JWT (after `server_ready`).
    AuthConnect {
        /// The connection.
        conn: ConnId,
        /// The JWT `sub`.
        user_id: String,
    },
    /// A JSON message (keys normalised), or any msgpack value.
    Message {
        /// The connection.
        conn: ConnId,
        /// The parsed message.
        value: Value,
    },
    /// Text that is not a JSON object.
    Raw {
        /// The connection.
        conn: ConnId,
        /// The text as received.
        text: String,
    },
    /// A binary frame the core does not interpret.
    Binary {
        /// The connection.
        conn: ConnId,
        /// The bytes.
        data: Bytes,
    },
    /// A connection is gone.
    Disconnect {
        /// The connection.
        conn: ConnId,
    },
    /// A user's first connection joined a topic with presence.
    PresenceJoin {
        /// The topic.
        topic: String,
        /// The user.
        user_id: String,
        /// The user's presence data.
        data: Value,
    },
    /// A present user's data changed (`update_presence`, or a subscribe
    /// that replaced it).
    PresenceUpdate {
        /// The topic.
        topic: String,
        /// The user.
        user_id: String,
        /// The new data.
        data: Value,
    },
    /// A user's last connection left a topic.
    PresenceLeave {
        /// The topic.
        topic: String,
        /// The user.
        user_id: String,
        /// The user's last presence data.
        data: Value,
    },
}

/// Weight of an event without a frame behind it (lifecycle, presence).
pub const SMALL_EVENT: usize = 64;

/// The bounded queue of application events, bounded in events and in
/// bytes (the frames they came from), so large messages cannot make it
/// hold gigabytes.
pub struct InboundQueue {
    events: Mutex<VecDeque<(AppEvent, usize)>>,
    capacity: usize,
    max_bytes: usize,
    bytes: AtomicUsize,
    not_empty: Condvar,
    space: Notify,
    depth: AtomicUsize,
    closed: AtomicBool,
    /// Events refused because the queue was closed (a stopped server).
    dropped: AtomicU64,
}

impl InboundQueue {
    /// A queue holding at most `capacity` ordinary events of at most
    /// `max_bytes` together (one event is always let in when the queue is
    /// empty, whatever its size).
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            events: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            max_bytes: max_bytes.max(1),
            bytes: AtomicUsize::new(0),
            not_empty: Condvar::new(),
            space: Notify::new(),
            depth: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queue `event` (of `weight` bytes), waiting while the queue is full.
    pub async fn push(&self, event: AppEvent, weight: usize) {
        let mut event = Some(event);
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Err(e) = self.try_push(event.take().expect("event is present"), weight) {
                event = Some(e);
            } else {
                return;
            }
            notified.await;
        }
    }

    /// Queue `event` (of `weight` bytes: the frame it came from) if there
    /// is room; gives it back when the queue is full.
    pub fn try_push(&self, event: AppEvent, weight: usize) -> Result<(), AppEvent> {
        if self.closed.load(Ordering::Acquire) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let mut q = self.events.lock();
        let bytes = self.bytes.load(Ordering::Relaxed);
        if q.len() >= self.capacity || (!q.is_empty() && bytes + weight > self.max_bytes) {
            return Err(event);
        }
        q.push_back((event, weight));
        self.bytes.store(bytes + weight, Ordering::Relaxed);
        self.depth.store(q.len(), Ordering::Relaxed);
        drop(q);
        self.not_empty.notify_one();
        Ok(())
    }

    /// Queue a connection's lifecycle event (`connect`, `disconnect`,
    /// presence) even when the queue is full: they are bounded by the
    /// number of connections, and losing one would leave the app with a
    /// connection it never hears the end of.
    pub fn push_lifecycle(&self, event: AppEvent) {
        if self.closed.load(Ordering::Acquire) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let mut q = self.events.lock();
        q.push_back((event, SMALL_EVENT));
        self.bytes.fetch_add(SMALL_EVENT, Ordering::Relaxed);
        self.depth.store(q.len(), Ordering::Relaxed);
        drop(q);
        self.not_empty.notify_one();
    }

    /// Wait until the queue has room (or is closed).
    pub async fn wait_for_space(&self) {
        loop {
            let notified = self.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.has_space() || self.closed.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    fn has_space(&self) -> bool {
        self.depth.load(Ordering::Relaxed) < self.capacity
            && self.bytes.load(Ordering::Relaxed) < self.max_bytes
    }

    /// Take up to `max` events, waiting up to `timeout` for the first one.
    /// Returns at once (possibly empty) when the queue is closed.
    pub fn drain(&self, max: usize, timeout: Duration) -> Vec<AppEvent> {
        let deadline = Instant::now() + timeout;
        let mut q = self.events.lock();
        while q.is_empty() && !self.closed.load(Ordering::Acquire) {
            if self.not_empty.wait_until(&mut q, deadline).timed_out() {
                break;
            }
        }
        let n = q.len().min(max);
        let mut freed = 0;
        let out: Vec<AppEvent> = q
            .drain(..n)
            .map(|(e, w)| {
                freed += w;
                e
            })
            .collect();
        self.bytes.fetch_sub(freed, Ordering::Relaxed);
        self.depth.store(q.len(), Ordering::Relaxed);
        drop(q);
        if !out.is_empty() {
            self.space.notify_waiters();
        }
        out
    }

    /// Events waiting.
    pub fn depth(&self) -> usize {
        self.depth.load(Ordering::Relaxed)
    }

    /// Events lost (only ever those arriving after `close`).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Wake every waiter; later pushes are discarded, drains return at once.
    pub fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let _g = self.events.lock();
        self.not_empty.notify_all();
        self.space.notify_waiters();
    }

    /// Accept events again (a restarted server), keeping nothing old.
    pub fn reopen(&self) {
        let mut q = self.events.lock();
        q.clear();
        self.bytes.store(0, Ordering::Relaxed);
        self.depth.store(0, Ordering::Relaxed);
        self.closed.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ev(n: u128) -> AppEvent {
        AppEvent::Disconnect { conn: ConnId(n) }
    }

    #[test]
    fn drain_waits_for_the_first_event_and_keeps_order() {
        let q = Arc::new(InboundQueue::new(10, 1 << 20));
        assert!(q.drain(10, Duration::from_millis(1)).is_empty());
        let q2 = q.clone();
        let t = std::thread::spawn(move || q2.drain(10, Duration::from_secs(30)));
        q.try_push(ev(1), 1).unwrap();
        let got = t.join().unwrap();
        assert_eq!(got, vec![ev(1)]);
        for i in 0..5 {
            q.try_push(ev(i), 1).unwrap();
        }
        assert_eq!(q.drain(3, Duration::ZERO), vec![ev(0), ev(1), ev(2)]);
        assert_eq!(q.depth(), 2);
    }

    #[tokio::test]
    async fn a_full_queue_makes_producers_wait_instead_of_dropping() {
        let q = Arc::new(InboundQueue::new(2, 1 << 20));
        q.push(ev(0), 1).await;
        q.push(ev(1), 1).await;
        assert!(q.try_push(ev(2), 1).is_err());
        let q2 = q.clone();
        let producer = tokio::spawn(async move { q2.push(ev(2), 1).await });
        tokio::task::yield_now().await;
        assert!(!producer.is_finished());
        let drained = tokio::task::spawn_blocking({
            let q = q.clone();
            move || q.drain(1, Duration::ZERO)
        })
        .await
        .unwrap();
        assert_eq!(drained, vec![ev(0)]);
        producer.await.unwrap();
        assert_eq!(q.drain(10, Duration::ZERO), vec![ev(1), ev(2)]);
        assert_eq!(q.dropped(), 0);
    }

    #[test]
    fn the_byte_bound_holds_back_large_events_but_never_a_lone_one() {
        let q = InboundQueue::new(100, 1000);
        q.try_push(ev(1), 5000).unwrap();
        assert!(q.try_push(ev(2), 10).is_err(), "over the byte bound");
        assert_eq!(q.drain(10, Duration::ZERO).len(), 1);
        q.try_push(ev(2), 600).unwrap();
        assert!(q.try_push(ev(3), 600).is_err());
        q.try_push(ev(3), 300).unwrap();
    }

    #[test]
    fn close_releases_a_blocked_drain() {
        let q = Arc::new(InboundQueue::new(2, 1 << 20));
        let q2 = q.clone();
        let t = std::thread::spawn(move || q2.drain(10, Duration::from_secs(3600)));
        // Close until the drainer is released (it may not be waiting yet).
        while !t.is_finished() {
            q.close();
            std::thread::yield_now();
        }
        assert!(t.join().unwrap().is_empty());
    }
}
