//! A connection as the rest of the server sees it: identity, ACL, what it
//! is subscribed to (a cursor per topic), the frames queued for it alone,
//! and the signal that wakes its task.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::sync::Notify;

use crate::budget::{Held, MemoryBudget};
use crate::e2e::E2eKey;
use crate::fanout::Channel;
use crate::metrics::Metrics;
use crate::rate_limit::TokenBucket;
use crate::topics::{TopicAcl, TopicPattern};

/// A connection id: a UUIDv7, shown in its hyphenated form.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u128);

impl ConnId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().as_u128())
    }
}

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        uuid::Uuid::from_u128(self.0).hyphenated().fmt(f)
    }
}

impl fmt::Debug for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnId({self})")
    }
}

impl FromStr for ConnId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        uuid::Uuid::parse_str(s).map(|u| Self(u.as_u128()))
    }
}

/// Why and how a connection should close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloseRequest {
    /// Close code; `None` sends a Close without status.
    pub code: Option<u16>,
    /// Close reason.
    pub reason: String,
    /// Send what is already queued first.
    pub flush: bool,
}

/// A subscription: the cursor of one connection in one topic.
pub struct Sub {
    /// The topic's channel.
    pub channel: Arc<Channel>,
    /// Offset of the next message to send.
    pub cursor: u64,
    /// The ring generation `cursor` counts in (see `FrameRing::generation`).
    pub generation: u64,
    /// Next presence event to send.
    pub presence_cursor: u64,
    /// A recovery replay in progress: the topic's head when it began. Until
    /// the cursor reaches it, the connection's own frames (the recovery
    /// reply among them) wait, so a reply never claims a position whose
    /// records the client has not been sent. Set for every recovery, even
    /// one with nothing to replay, and cleared by the gathering that finds
    /// the cursor there: if a reply is queued, live messages wait for the
    /// next round, so the reply precedes every live message.
    pub replay_until: Option<u64>,
    /// Created by a pattern subscription rather than by name.
    pub via_pattern: bool,
}

/// Bring a subscription's cursor (its `generation`, `cursor` and
/// `replay_until`) into `ring`'s generation; called under the connection's
/// outbox lock with the ring's lock held. After the topic's history was
/// deleted, a cursor of the old one starts the new history at offset 0, so
/// a live subscriber gets every message published since, and no replay of
/// the deleted history goes on. Fields rather than the `Sub`: the ring's
/// guard borrows the `Sub`'s channel meanwhile.
pub fn follow(
    ring: &crate::fanout::ring::FrameRing,
    generation: &mut u64,
    cursor: &mut u64,
    replay_until: &mut Option<u64>,
) {
    if *generation != ring.generation() {
        *generation = ring.generation();
        *cursor = 0;
        *replay_until = None;
    }
}

/// Replies to pings queued one after another before a newer one replaces
/// the last: a client that pings a few times and reads gets every answer
/// (Autobahn 2.10 sends ten pings and counts ten pongs), and one that
/// pings without reading holds at most this many.
pub const PONGS_QUEUED: usize = 10;

/// What a reply to a client's ping is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PongKind {
    /// A WebSocket Pong frame (to a Ping frame).
    Frame,
    /// The protocol's `PONG` text message (to a `ping` message).
    Text,
}

/// A frame queued for one connection.
pub struct Queued {
    /// The frame, sealed already if it is data on an encrypted connection.
    pub frame: Bytes,
    /// Data (may be held back during a replay), not a protocol frame.
    pub data: bool,
}

impl Outbox {
    /// Take the queued frames: all of them, or with `hold_data` only the
    /// protocol frames (data frames keep their order for later).
    pub fn take_queued(&mut self, hold_data: bool, out: &mut Vec<Bytes>) -> u64 {
        let before = out.len();
        self.pong_last = None;
        if hold_data {
            let mut kept = VecDeque::new();
            for q in self.queue.drain(..) {
                if q.data {
                    kept.push_back(q);
                } else {
                    self.queued_bytes -= q.frame.len();
                    out.push(q.frame);
                }
            }
            self.queue = kept;
        } else {
            out.extend(self.queue.drain(..).map(|q| q.frame));
            self.queued_bytes = 0;
        }
        (out.len() - before) as u64
    }
}

/// What a connection has queued and is subscribed to.
#[derive(Default)]
pub struct Outbox {
    /// Frames for this connection alone, in order: protocol frames
    /// (pongs, pings, hellos, protocol errors: never sealed, never held
    /// back) and data frames (replies, `send` output, queue-group
    /// deliveries: sealed on an end-to-end connection, and held back while
    /// a recovery replay is sent).
    pub queue: VecDeque<Queued>,
    /// Bytes in `queue`.
    pub queued_bytes: usize,
    /// The last frames of `queue` are this many replies to pings of this
    /// kind; past [`PONGS_QUEUED`] a newer reply of the same kind replaces
    /// the last.
    pub pong_last: Option<(PongKind, usize)>,
    /// Topic subscriptions by topic.
    pub subs: HashMap<Arc<str>, Sub>,
    /// Pattern subscriptions, by the pattern as written.
    pub patterns: HashMap<Box<str>, TopicPattern>,
    /// Queue-group memberships: (topic, group).
    pub groups: Vec<(Arc<str>, String)>,
    /// The connection is gone: nothing may subscribe it any more (set
    /// under this lock before its subscriptions are released, so a
    /// subscribe racing the disconnect cannot leak).
    pub closed: bool,
}

impl Outbox {
    /// Topics and patterns held, counting queue-group memberships (the
    /// unit `max_subscriptions_per_connection` counts).
    pub fn subscription_count(&self) -> usize {
        self.subs.values().filter(|s| !s.via_pattern).count()
            + self.patterns.len()
            + self.groups.len()
    }
}

/// The `send_event` rate limiter with its once-per-second notices.
pub struct SendLimiter {
    /// The bucket (1 token per `send_event`).
    pub bucket: TokenBucket,
    /// When the last `rate_limit_warning` went out.
    pub last_warning: Option<std::time::Instant>,
    /// When the last `RATE_LIMITED` error went out.
    pub last_error: Option<std::time::Instant>,
}

/// What [`Conn::push_data`] did with a frame (the caller counts it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pushed {
    /// Queued as it was.
    Plain,
    /// Sealed for the connection's end-to-end key, then queued.
    Sealed,
    /// Not queued: the connection is closing or its queue is full.
    Refused,
}

impl Pushed {
    /// Count it: sealed for an end-to-end key, or refused (a full queue, a
    /// closing connection).
    pub(crate) fn count(self, metrics: &Metrics) {
        match self {
            Pushed::Plain => {}
            Pushed::Sealed => Metrics::add(&metrics.frames_encrypted, 1),
            Pushed::Refused => Metrics::add(&metrics.slow_consumer_drops, 1),
        }
    }
}

/// One connection.
pub struct Conn {
    /// Its id.
    pub id: ConnId,
    /// The id as text (what the app sees).
    pub id_str: String,
    /// The JWT `sub`, when authenticated.
    pub user_id: Option<String>,
    /// Negotiated `format=msgpack`.
    pub msgpack: bool,
    /// Per-message deflate was agreed: the client may send compressed
    /// messages.
    pub(crate) inflate: bool,
    /// Broadcasts of at least this many bytes go to this client compressed
    /// (the shared compressed frames of `fanout::ring`); `None`: all plain.
    pub(crate) compress_from: Option<usize>,
    /// Topic ACL (`None` = everything allowed).
    pub acl: RwLock<Option<TopicAcl>>,
    /// Subscriptions and queued frames.
    pub outbox: Mutex<Outbox>,
    /// The bytes of this connection's frames counted in the server's
    /// memory budget: queued here, then gathered for its socket, until
    /// written (see `crate::budget`).
    pub(crate) held: Held,
    /// `send_event` rate limiting.
    pub limiter: Mutex<SendLimiter>,
    /// Last data frame from the client, ms since the server started.
    pub last_activity_ms: AtomicU64,
    /// The end-to-end key, once agreed (set once, under the outbox lock).
    e2e: OnceLock<E2eKey>,
    /// When the key was agreed, ms since the server started.
    pub e2e_since_ms: AtomicU64,
    /// When the connection's token expires, in seconds since the Unix
    /// epoch (0: no token, or no expiry); see `close_on_token_expiry`.
    pub token_expires_at: AtomicU64,
    /// Until then (ms since the server started) no topic data is sent:
    /// the client's `client_hello` may still ask for encryption (0: open).
    data_gate_ms: AtomicU64,
    close: Mutex<Option<CloseRequest>>,
    wake: Notify,
    signalled: AtomicBool,
    closing: AtomicBool,
}

impl Conn {
    /// A connection with the given identity.
    pub fn new(
        id: ConnId,
        user_id: Option<String>,
        msgpack: bool,
        acl: Option<TopicAcl>,
        bucket: TokenBucket,
        now_ms: u64,
        budget: Arc<MemoryBudget>,
    ) -> Self {
        Self {
            id,
            id_str: id.to_string(),
            user_id,
            msgpack,
            inflate: false,
            compress_from: None,
            acl: RwLock::new(acl),
            outbox: Mutex::new(Outbox::default()),
            held: Held::new(budget),
            limiter: Mutex::new(SendLimiter {
                bucket,
                last_warning: None,
                last_error: None,
            }),
            last_activity_ms: AtomicU64::new(now_ms),
            e2e: OnceLock::new(),
            e2e_since_ms: AtomicU64::new(0),
            token_expires_at: AtomicU64::new(0),
            data_gate_ms: AtomicU64::new(0),
            close: Mutex::new(None),
            wake: Notify::new(),
            signalled: AtomicBool::new(false),
            closing: AtomicBool::new(false),
        }
    }

    /// Wake the connection's task (cheap when a wake is already pending).
    pub fn signal(&self) {
        if !self.signalled.swap(true, Ordering::AcqRel) {
            self.wake.notify_one();
        }
    }

    /// Wait for a signal (the connection task).
    pub async fn signalled(&self) {
        self.wake.notified().await;
    }

    /// Mark the pending signal as seen, before looking for work.
    pub fn clear_signal(&self) {
        self.signalled.store(false, Ordering::Release);
    }

    /// Queue a protocol frame (pong, `server_hello`, ping, protocol
    /// errors) for this connection alone; these are never encrypted.
    /// Returns false (and queues nothing) when its queued bytes would pass
    /// `limit` (0 = no limit).
    pub fn push_control(&self, frame: Bytes, limit: usize) -> bool {
        if self.is_closing() {
            return false;
        }
        {
            let mut ob = self.outbox.lock();
            if !Self::fits(&ob, &frame, limit) || !self.held.admit(frame.len()) {
                return false;
            }
            ob.queued_bytes += frame.len();
            ob.queue.push_back(Queued { frame, data: false });
            ob.pong_last = None;
        }
        self.signal();
        true
    }

    /// Queue the reply to a client's ping: like [`Conn::push_control`],
    /// except that past [`PONGS_QUEUED`] replies waiting at the end of the
    /// queue it replaces the last. RFC 6455 §5.5.3 allows answering only
    /// the most recent Ping; without this, a client that sends pings and
    /// never reads would make its queue grow by a pong per ping, up to
    /// `limit`.
    pub fn push_pong(&self, frame: Bytes, kind: PongKind, limit: usize) -> bool {
        if self.is_closing() {
            return false;
        }
        {
            let mut ob = self.outbox.lock();
            let run = match ob.pong_last {
                Some((k, n)) if k == kind => n,
                _ => 0,
            };
            if run >= PONGS_QUEUED {
                let old = ob.queue.back().map_or(0, |q| q.frame.len());
                if limit != 0 && ob.queued_bytes - old + frame.len() > limit {
                    return false;
                }
                ob.queued_bytes = ob.queued_bytes - old + frame.len();
                self.held.replace(old, frame.len());
                if let Some(q) = ob.queue.back_mut() {
                    q.frame = frame;
                }
                return true;
            }
            if !Self::fits(&ob, &frame, limit) || !self.held.admit(frame.len()) {
                return false;
            }
            ob.queued_bytes += frame.len();
            ob.queue.push_back(Queued { frame, data: false });
            ob.pong_last = Some((kind, run + 1));
        }
        self.signal();
        true
    }

    /// Queue a data frame (a reply, `send*` output, a queue-group message)
    /// for this connection alone: sealed first when the connection is
    /// end-to-end encrypted. Refused (nothing queued) when closing or when
    /// its queued bytes would pass `limit` (0 = no limit).
    pub fn push_data(&self, frame: Bytes, limit: usize) -> Pushed {
        if self.is_closing() {
            return Pushed::Refused;
        }
        // Seal outside the lock; the key is set under it, so a frame
        // sealed (or not) here is re-checked there.
        let sealed = self.e2e.get().map(|k| k.seal_frame(&frame));
        let pushed = {
            let mut ob = self.outbox.lock();
            let (f, pushed) = match (sealed, self.e2e.get()) {
                (Some(f), _) => (f, Pushed::Sealed),
                (None, Some(k)) => (k.seal_frame(&frame), Pushed::Sealed),
                (None, None) => (frame, Pushed::Plain),
            };
            if !Self::fits(&ob, &f, limit) || !self.held.admit(f.len()) {
                return Pushed::Refused;
            }
            ob.queued_bytes += f.len();
            ob.pong_last = None;
            ob.queue.push_back(Queued {
                frame: f,
                data: true,
            });
            pushed
        };
        self.signal();
        pushed
    }

    fn fits(ob: &Outbox, frame: &Bytes, limit: usize) -> bool {
        limit == 0 || ob.queued_bytes + frame.len() <= limit
    }

    /// The end-to-end key, when the connection is encrypted.
    pub fn e2e(&self) -> Option<&E2eKey> {
        self.e2e.get()
    }

    /// Turn end-to-end encryption on (once; `None` if it already was).
    /// Returns the protocol frames queued before, which must go out
    /// plaintext ahead of the `server_hello` that hands the client its
    /// key. Data frames still queued are sealed now and go out after it,
    /// in their place (a recovery reply waiting for its replay stays
    /// behind it); every data frame queued after this call is sealed.
    pub fn enable_e2e(&self, key: E2eKey, now_ms: u64) -> Option<Vec<Bytes>> {
        let mut ob = self.outbox.lock();
        self.e2e.set(key).ok()?;
        self.e2e_since_ms.store(now_ms, Ordering::Relaxed);
        let key = self.e2e.get()?;
        let mut early = Vec::new();
        let mut data = VecDeque::new();
        ob.pong_last = None;
        for q in ob.queue.drain(..) {
            if q.data {
                let frame = key.seal_frame(&q.frame);
                data.push_back(Queued { frame, data: true });
            } else {
                early.push(q.frame);
            }
        }
        let before = ob.queued_bytes;
        ob.queued_bytes = data.iter().map(|q| q.frame.len()).sum();
        // Sealed data frames are longer; the early frames stay held until
        // the caller's writes give them back.
        let early_bytes: usize = early.iter().map(Bytes::len).sum();
        self.held.replace(before, ob.queued_bytes + early_bytes);
        ob.queue = data;
        Some(early)
    }

    /// Send no topic data (live or replayed) before `until_ms` unless
    /// the client's `client_hello` is handled first: a client that asks
    /// for encryption then never receives topic data in clear.
    pub fn hold_data_until(&self, until_ms: u64) {
        self.data_gate_ms.store(until_ms, Ordering::Release);
    }

    /// The `client_hello` was handled (or the wait is over): topic data
    /// may flow.
    pub fn release_data(&self) {
        if self.data_gate_ms.swap(0, Ordering::AcqRel) != 0 {
            self.signal();
        }
    }

    /// When topic data may flow (ms since the server started), if it is
    /// held.
    pub fn data_held_until(&self) -> Option<u64> {
        match self.data_gate_ms.load(Ordering::Acquire) {
            0 => None,
            t => Some(t),
        }
    }

    /// Is this topic allowed by the connection's ACL?
    pub fn allows(&self, topic: &str) -> bool {
        self.acl
            .read()
            .as_ref()
            .is_none_or(|acl| acl.is_allowed(topic))
    }

    /// Ask the connection to close (idempotent: the first request wins).
    pub fn request_close(&self, req: CloseRequest) {
        {
            let mut c = self.close.lock();
            if c.is_none() {
                *c = Some(req);
            }
        }
        self.closing.store(true, Ordering::Release);
        self.signal();
    }

    /// The pending close request, if any.
    pub fn close_request(&self) -> Option<CloseRequest> {
        self.close.lock().clone()
    }

    /// True once a close was requested.
    pub fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests;
