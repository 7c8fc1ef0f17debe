//! Events for the application, and the bounded queue they wait in.
//!
//! Every event of every connection goes through one FIFO queue, so the
//! events of a connection keep their order. The queue is bounded: when it
//! is full, connection readers stop reading (TCP back-pressure reaches the
//! clients) instead of dropping events, and each connection's input is
//! also rate limited so one client cannot take the whole queue.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};
use serde_json::Value;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

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

/// Weight of an event without a payload (lifecycle, presence).
pub const SMALL_EVENT: usize = 64;

impl AppEvent {
    /// About how many bytes of memory the event holds: what the inbound
    /// queue's byte bound counts. A parsed message costs several times its
    /// JSON text (a 100-byte message is over 1 KiB of maps and strings),
    /// so the bound is on this estimate, not on the frame size.
    pub fn weight(&self) -> usize {
        let payload = match self {
            AppEvent::Message { value, .. } => value_weight(value),
            AppEvent::Raw { text, .. } => text.len(),
            AppEvent::Binary { data, .. } => data.len(),
            _ => 0,
        };
        SMALL_EVENT + payload
    }
}

/// Estimated heap bytes of a parsed JSON value, close to what the
/// allocator really hands out (serde_json with ordered maps): an object is
/// an index map with room for at least 4 entries of ~112 bytes and a hash
/// table; each key and string is an allocation of its own (~32 bytes of
/// overhead); an array holds ~80 bytes per element. Measured: a 100-byte
/// message parses into ~1.4 KiB.
fn value_weight(v: &Value) -> usize {
    match v {
        Value::Object(m) => {
            let slots = m.len().next_power_of_two().max(4);
            128 + slots * 112
                + m.iter()
                    .map(|(k, v)| 32 + k.len() + value_weight(v))
                    .sum::<usize>()
        }
        Value::Array(a) => 32 + a.capacity() * 80 + a.iter().map(value_weight).sum::<usize>(),
        Value::String(s) => 32 + s.len(),
        _ => 0,
    }
}

/// Bytes per permit of the queue's memory bound.
const WEIGHT_UNIT: usize = 64;

/// The bounded queue of application events, bounded in events and in the
/// memory they hold (their estimated [`AppEvent::weight`]), so large or
/// many messages cannot make it hold gigabytes.
///
/// Room is counted with two semaphores (event slots, memory units). A
/// reader that finds the queue full reserves room with [`reserve`]: the
/// semaphores hand freed room to waiting readers one by one, in the order
/// they asked, so a drain wakes only the readers it made room for (never
/// every waiting connection at once) and no connection waits forever
/// behind the others.
///
/// [`reserve`]: InboundQueue::reserve
pub struct InboundQueue {
    events: Mutex<VecDeque<Queued>>,
    gate: RwLock<Gate>,
    capacity: usize,
    room_units: u32,
    not_empty: Condvar,
    depth: AtomicUsize,
    closed: AtomicBool,
    /// Events refused because the queue was closed (a stopped server).
    dropped: AtomicU64,
}

/// An event in the queue and the room it holds.
struct Queued {
    event: AppEvent,
    /// Memory units held; 0 with `counted: false` (lifecycle events).
    units: u32,
    /// It holds an event slot.
    counted: bool,
}

/// The semaphores of one open period of the queue (closing closes them;
/// reopening starts new ones).
struct Gate {
    slots: Arc<Semaphore>,
    room: Arc<Semaphore>,
}

impl Gate {
    fn new(capacity: usize, room_units: u32) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(capacity)),
            room: Arc::new(Semaphore::new(room_units as usize)),
        }
    }
}

/// Room for one event, reserved ahead of [`InboundQueue::push_reserved`].
#[derive(Debug)]
pub struct Reservation {
    slot: OwnedSemaphorePermit,
    room: OwnedSemaphorePermit,
    units: u32,
}

impl InboundQueue {
    /// A queue holding at most `capacity` ordinary events of at most
    /// `max_bytes` together (an event larger than `max_bytes` takes all
    /// the room: it is let in alone).
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        let room_units = u32::try_from(max_bytes.div_ceil(WEIGHT_UNIT))
            .unwrap_or(u32::MAX)
            .max(1);
        Self {
            events: Mutex::new(VecDeque::new()),
            gate: RwLock::new(Gate::new(capacity, room_units)),
            capacity,
            room_units,
            not_empty: Condvar::new(),
            depth: AtomicUsize::new(0),
            closed: AtomicBool::new(false),
            dropped: AtomicU64::new(0),
        }
    }

    fn units(&self, weight: usize) -> u32 {
        u32::try_from(weight.div_ceil(WEIGHT_UNIT))
            .unwrap_or(u32::MAX)
            .clamp(1, self.room_units)
    }

    /// Queue `event` (of `weight` bytes), waiting while the queue is full.
    pub async fn push(&self, event: AppEvent, weight: usize) {
        match self.reserve(weight).await {
            Some(r) => self.push_reserved(event, r),
            None => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Wait for room for an event of `weight` bytes and hold it; `None`
    /// once the queue is closed. Dropping the future or the reservation
    /// gives the room back.
    ///
    /// The future does not borrow the queue, so a waiting reader can keep
    /// it across other wake-ups and keep its place in line: the room goes
    /// to readers in the order they first asked.
    pub fn reserve(
        &self,
        weight: usize,
    ) -> impl Future<Output = Option<Reservation>> + Send + 'static {
        let units = self.units(weight);
        let (slots, room) = {
            let g = self.gate.read();
            (g.slots.clone(), g.room.clone())
        };
        async move {
            let slot = slots.acquire_owned().await.ok()?;
            let room = room.acquire_many_owned(units).await.ok()?;
            Some(Reservation { slot, room, units })
        }
    }

    /// Queue `event` in the room `r` holds.
    pub fn push_reserved(&self, event: AppEvent, r: Reservation) {
        // Room reserved before a close (and a reopen) belongs to the old
        // gate: the event is from the stopped run.
        let current = Arc::ptr_eq(r.slot.semaphore(), &self.gate.read().slots);
        if self.closed.load(Ordering::Acquire) || !current {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        r.slot.forget();
        r.room.forget();
        self.enqueue(Queued {
            event,
            units: r.units,
            counted: true,
        });
    }

    /// Queue `event` (of `weight` bytes: see [`AppEvent::weight`]) if there
    /// is room; gives it back when the queue is full.
    pub fn try_push(&self, event: AppEvent, weight: usize) -> Result<(), AppEvent> {
        if self.closed.load(Ordering::Acquire) {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let units = self.units(weight);
        {
            let g = self.gate.read();
            let Ok(slot) = g.slots.try_acquire() else {
                return Err(event);
            };
            let Ok(room) = g.room.try_acquire_many(units) else {
                return Err(event);
            };
            slot.forget();
            room.forget();
        }
        self.enqueue(Queued {
            event,
            units,
            counted: true,
        });
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
        self.enqueue(Queued {
            event,
            units: 0,
            counted: false,
        });
    }

    fn enqueue(&self, item: Queued) {
        let mut q = self.events.lock();
        q.push_back(item);
        self.depth.store(q.len(), Ordering::Relaxed);
        drop(q);
        self.not_empty.notify_one();
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
        let (mut slots, mut units) = (0usize, 0usize);
        let out: Vec<AppEvent> = q
            .drain(..n)
            .map(|item| {
                slots += usize::from(item.counted);
                units += item.units as usize;
                item.event
            })
            .collect();
        self.depth.store(q.len(), Ordering::Relaxed);
        // Give the room back before letting go of the queue: `reopen` takes
        // the queue lock first, so room taken under one gate cannot be
        // returned to the next one.
        let g = self.gate.read();
        g.slots.add_permits(slots);
        g.room.add_permits(units);
        drop(g);
        drop(q);
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
        {
            let g = self.gate.read();
            g.slots.close();
            g.room.close();
        }
        let _q = self.events.lock();
        self.not_empty.notify_all();
    }

    /// Accept events again (a restarted server), keeping nothing old.
    pub fn reopen(&self) {
        let mut q = self.events.lock();
        q.clear();
        *self.gate.write() = Gate::new(self.capacity, self.room_units);
        self.depth.store(0, Ordering::Relaxed);
        self.closed.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn a_parsed_message_weighs_what_it_holds_not_its_text() {
        let v: Value = serde_json::from_str(r#"{"t":"chat","p":{"text":"hello","n":1}}"#).unwrap();
        let small = AppEvent::Message {
            conn: ConnId(1),
            value: v,
        };
        // Two maps: over 1 KiB however short the text.
        assert!(small.weight() > 1000, "{}", small.weight());
        let big = AppEvent::Raw {
            conn: ConnId(1),
            text: "x".repeat(10_000),
        };
        assert!(big.weight() >= 10_000);
        assert_eq!(ev(1).weight(), SMALL_EVENT);
    }

    #[tokio::test]
    async fn waiting_readers_get_room_in_the_order_they_asked() {
        let q = Arc::new(InboundQueue::new(1, 1 << 20));
        q.try_push(ev(0), 1).unwrap();
        let mut waiters = Vec::new();
        for i in 1..=3u128 {
            let q = q.clone();
            waiters.push(tokio::spawn(async move { q.push(ev(i), 1).await }));
            // Each asks (and queues on the semaphore) before the next.
            tokio::task::yield_now().await;
        }
        let mut got = Vec::new();
        while got.len() < 4 {
            let q2 = q.clone();
            got.extend(
                tokio::task::spawn_blocking(move || q2.drain(10, Duration::from_secs(5)))
                    .await
                    .unwrap(),
            );
        }
        assert_eq!(got, vec![ev(0), ev(1), ev(2), ev(3)]);
        for w in waiters {
            w.await.unwrap();
        }
    }

    #[tokio::test]
    async fn close_releases_waiting_readers_and_reopen_starts_empty() {
        let q = Arc::new(InboundQueue::new(1, 1 << 20));
        q.try_push(ev(0), 1).unwrap();
        let q2 = q.clone();
        let waiter = tokio::spawn(async move { q2.reserve(1).await.is_none() });
        tokio::task::yield_now().await;
        q.close();
        assert!(waiter.await.unwrap(), "a closed queue gives no room");
        q.reopen();
        assert_eq!(q.depth(), 0);
        q.try_push(ev(1), 1).unwrap();
        assert!(q.try_push(ev(2), 1).is_err(), "capacity 1 again");
    }

    #[tokio::test]
    async fn room_reserved_before_a_restart_is_not_spent_after_it() {
        let q = InboundQueue::new(1, 1 << 20);
        let old = q.reserve(1).await.expect("room");
        q.close();
        q.reopen();
        q.push_reserved(ev(0), old);
        assert_eq!((q.depth(), q.dropped()), (0, 1));
        q.try_push(ev(1), 1).unwrap();
        assert_eq!(q.drain(10, Duration::ZERO), vec![ev(1)]);
        q.try_push(ev(2), 1).unwrap();
        assert!(q.try_push(ev(3), 1).is_err(), "still capacity 1");
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
