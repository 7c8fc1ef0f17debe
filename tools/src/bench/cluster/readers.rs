//! Subscribers that count what they receive on one topic: a task per
//! connection reads frames, takes the offset `o` (every subscriber must see
//! 0..published once, in order: anything else is loss or a duplicate) and
//! the publisher's send time `ts` (latency) out of each by byte search, and
//! publishes its progress in atomics for the publisher's window.
//!
//! The same code counts for the cluster and for the single node it is
//! compared with, so the two differ only in the servers.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use crate::bench::hist::Histogram;
use crate::bench::paced::now_ns;
use crate::bench::scan;
use crate::bench::wire::{
    OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, PONG_TEXT, WsConn, is_server_ping, put_frame,
};

/// Latency histograms, shared by subscribers `i % SHARDS` (one lock per
/// read, rarely contended).
const SHARDS: usize = 64;

/// One subscriber's progress; a cache line each.
#[derive(Default)]
#[repr(align(64))]
struct Progress {
    /// The offset it expects next.
    next: AtomicU64,
    /// Messages received in order.
    delivered: AtomicU64,
    /// Offsets skipped.
    missing: AtomicU64,
    /// Offsets received again or out of order.
    duplicates: AtomicU64,
    /// The connection ended.
    ended: AtomicBool,
}

/// Deliveries, loss and disconnections over all subscribers.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Counts {
    /// Messages received, each offset once per subscriber.
    pub deliveries: u64,
    /// Offsets of 0..published some subscriber never received.
    pub loss: u64,
    /// Offsets received twice or out of order.
    pub duplicates: u64,
    /// Subscribers whose connection ended.
    pub disconnected: u64,
}

/// Every subscriber of a run.
pub struct Readers {
    progress: Arc<[Progress]>,
    latency: Arc<[Mutex<Histogram>]>,
}

impl Readers {
    /// Start a reading task per connection on `rt`, all subscribed to
    /// `topic`.
    pub fn spawn(rt: &tokio::runtime::Runtime, topic: &str, conns: Vec<WsConn>) -> Self {
        let progress: Arc<[Progress]> = conns.iter().map(|_| Progress::default()).collect();
        let latency: Arc<[Mutex<Histogram>]> = (0..SHARDS).map(|_| Mutex::default()).collect();
        let prefix: Arc<[u8]> = format!(r#"{{"tp":"{topic}","#).into_bytes().into();
        for (i, conn) in conns.into_iter().enumerate() {
            rt.spawn(receive(
                conn,
                prefix.clone(),
                progress.clone(),
                latency.clone(),
                i,
            ));
        }
        Self { progress, latency }
    }

    /// The smallest next-expected offset of the connected subscribers.
    pub fn slowest(&self) -> Option<u64> {
        self.progress
            .iter()
            .filter(|p| !p.ended.load(Relaxed))
            .map(|p| p.next.load(Relaxed))
            .min()
    }

    /// Wait until every connected subscriber has offset `published - 1`,
    /// or `timeout`; whether they all did.
    pub fn wait_delivered(&self, published: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.slowest().is_none_or(|s| s >= published) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// The counts against offsets 0..`published`.
    pub fn counts(&self, published: u64) -> Counts {
        let mut c = Counts::default();
        for p in self.progress.iter() {
            c.deliveries += p.delivered.load(Relaxed);
            c.loss += p.missing.load(Relaxed) + published.saturating_sub(p.next.load(Relaxed));
            c.duplicates += p.duplicates.load(Relaxed);
            c.disconnected += u64::from(p.ended.load(Relaxed));
        }
        c
    }

    /// Every latency recorded, nanoseconds.
    pub fn latency(&self) -> Histogram {
        let mut all = Histogram::default();
        for h in self.latency.iter() {
            all.merge(&h.lock());
        }
        all
    }
}

/// Read subscriber `i` until its connection ends (or the runtime is
/// dropped at the end of the run).
async fn receive(
    mut conn: WsConn,
    prefix: Arc<[u8]>,
    progress: Arc<[Progress]>,
    latency: Arc<[Mutex<Histogram>]>,
    i: usize,
) {
    let state = &progress[i];
    let hist = &latency[i % latency.len()];
    let (mut next, mut delivered, mut missing, mut duplicates) = (0u64, 0u64, 0u64, 0u64);
    loop {
        if !matches!(conn.fill().await, Ok(n) if n > 0) {
            break;
        }
        // One clock read per read: its frames arrived together.
        let now = now_ns();
        let mut replies = Vec::new();
        let mut ended = false;
        {
            let mut h = hist.lock();
            loop {
                let f = match conn.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(_) => {
                        ended = true;
                        break;
                    }
                };
                match f.opcode {
                    OP_TEXT if f.payload.starts_with(&prefix) => {
                        let head = &f.payload[..f.payload.len().min(96)];
                        let Some(o) = scan::number_after(head, br#""o":"#) else {
                            continue;
                        };
                        if o < next {
                            duplicates += 1;
                            continue;
                        }
                        missing += o - next;
                        next = o + 1;
                        delivered += 1;
                        if let Some(ts) = scan::number_after_last(f.payload, br#""ts":"#) {
                            h.record(now.saturating_sub(ts));
                        }
                    }
                    OP_TEXT if is_server_ping(f.payload) => {
                        put_frame(&mut replies, OP_TEXT, PONG_TEXT);
                    }
                    OP_PING => put_frame(&mut replies, OP_PONG, f.payload),
                    OP_CLOSE => {
                        ended = true;
                        break;
                    }
                    _ => {}
                }
            }
        }
        state.delivered.store(delivered, Relaxed);
        state.missing.store(missing, Relaxed);
        state.duplicates.store(duplicates, Relaxed);
        state.next.store(next, Relaxed);
        if ended || (!replies.is_empty() && conn.send(&replies).await.is_err()) {
            break;
        }
    }
    state.ended.store(true, Relaxed);
}
