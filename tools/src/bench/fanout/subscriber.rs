//! The fan-out benchmark's subscribers: one task per connection that reads
//! frames, takes the offset `o` (loss and duplicates: every subscriber must
//! see the offsets 0..published once, in order) and the send time `ts`
//! (latency) out of each by byte search, and publishes its progress in
//! atomics for the publisher's window and the final count.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU16, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::Serialize;

use super::TOPIC;
use crate::bench::hist::Histogram;
use crate::bench::paced::now_ns;
use crate::bench::scan;
use crate::bench::wire::{
    OP_BINARY, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, PONG_TEXT, WsConn, is_server_ping, put_frame,
};

/// Latency histograms, shared by subscribers `i % SHARDS`: one lock per
/// read, rarely contended, in a fixed 1 MiB whatever the subscriber count.
const SHARDS: usize = 64;

/// A subscriber still reading.
const RUNNING: u8 = 0;
/// The server closed the connection (slow consumer, stop).
const CLOSED: u8 = 1;
/// The socket failed or the server sent a bad frame.
const FAILED: u8 = 2;

/// What one subscriber has seen so far. One cache line each, so that
/// subscribers on different threads never write to the same line.
#[derive(Default)]
#[repr(align(64))]
struct SubState {
    /// The offset it expects next: every offset below has been passed.
    next: AtomicU64,
    /// Messages received in order (each offset once).
    delivered: AtomicU64,
    /// Offsets skipped (never received).
    missing: AtomicU64,
    /// Offsets received again, or out of order.
    duplicates: AtomicU64,
    /// [`RUNNING`], [`CLOSED`] or [`FAILED`].
    end: AtomicU8,
    /// The close code the server sent, 0 for none.
    close_code: AtomicU16,
}

/// Loss, duplicates and disconnections over all subscribers.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Totals {
    /// Messages received, each offset counted once per subscriber.
    pub deliveries: u64,
    /// Offsets some subscriber never received (of 0..published).
    pub loss: u64,
    /// Offsets received more than once or out of order.
    pub duplicates: u64,
    /// Subscribers whose connection ended during the run.
    pub disconnected: u64,
    /// Their close codes (0: the socket failed without a Close) and how
    /// many got each.
    pub close_codes: BTreeMap<u16, u64>,
}

/// Every subscriber's progress and the latency histograms.
pub struct Subscribers {
    states: Arc<[SubState]>,
    latency: Arc<[Mutex<Histogram>]>,
}

impl Subscribers {
    /// Start one reading task per connection on `rt`.
    pub fn spawn(rt: &tokio::runtime::Runtime, conns: Vec<WsConn>) -> Self {
        let states: Arc<[SubState]> = conns.iter().map(|_| SubState::default()).collect();
        let latency: Arc<[Mutex<Histogram>]> = (0..SHARDS).map(|_| Mutex::default()).collect();
        for (i, conn) in conns.into_iter().enumerate() {
            rt.spawn(receive(conn, states.clone(), latency.clone(), i));
        }
        Self { states, latency }
    }

    /// The smallest next-expected offset of the subscribers still
    /// connected; `None` when none is.
    pub fn slowest(&self) -> Option<u64> {
        self.states
            .iter()
            .filter(|s| s.end.load(Relaxed) == RUNNING)
            .map(|s| s.next.load(Relaxed))
            .min()
    }

    /// Wait until every connected subscriber has passed offset
    /// `published - 1`, or until `timeout`; whether they all did.
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

    /// The counts, against offsets 0..`published` for every subscriber.
    pub fn totals(&self, published: u64) -> Totals {
        let mut t = Totals::default();
        for s in self.states.iter() {
            t.deliveries += s.delivered.load(Relaxed);
            t.loss += s.missing.load(Relaxed) + published.saturating_sub(s.next.load(Relaxed));
            t.duplicates += s.duplicates.load(Relaxed);
            if s.end.load(Relaxed) != RUNNING {
                t.disconnected += 1;
                *t.close_codes.entry(s.close_code.load(Relaxed)).or_default() += 1;
            }
        }
        t
    }

    /// Every latency recorded, in nanoseconds.
    pub fn latency(&self) -> Histogram {
        let mut all = Histogram::default();
        for shard in self.latency.iter() {
            all.merge(&shard.lock());
        }
        all
    }
}

/// Read subscriber `i`'s connection until it ends (the runtime is dropped
/// at the end of a run, which ends the task).
async fn receive(
    mut conn: WsConn,
    states: Arc<[SubState]>,
    latency: Arc<[Mutex<Histogram>]>,
    i: usize,
) {
    let state = &states[i];
    let key = conn.e2e.take();
    // A deflate subscriber inflates each compressed message on its own
    // (the server agreed no context takeover).
    let mut inflater = flate2::Decompress::new(false);
    let mut inflated = Vec::new();
    let hist = &latency[i % latency.len()];
    // What a delivery on the bench topic starts with (the recovery stamp).
    let delivery = format!(r#"{{"tp":"{TOPIC}","#).into_bytes();
    let (mut next, mut delivered, mut missing, mut duplicates) = (0u64, 0u64, 0u64, 0u64);
    let (end, code) = loop {
        match conn.fill().await {
            Ok(0) => break (CLOSED, 0),
            Ok(_) => {}
            Err(_) => break (FAILED, 0),
        }
        // One clock read per read: the frames in it arrived together.
        let now = now_ns();
        let mut replies = Vec::new();
        let mut ended = None;
        {
            let mut h = hist.lock();
            loop {
                let f = match conn.next_frame() {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(_) => {
                        ended = Some((FAILED, 0));
                        break;
                    }
                };
                // An E2E subscriber opens each sealed frame first; a
                // compressed one is inflated.
                let opened;
                let (opcode, payload) = match &key {
                    _ if f.compressed => {
                        if inflate(&mut inflater, f.payload, &mut inflated).is_err() {
                            ended = Some((FAILED, 0));
                            break;
                        }
                        (f.opcode, inflated.as_slice())
                    }
                    Some(k) if f.opcode == OP_BINARY && f.payload.starts_with(b"E:") => {
                        match k.open(f.payload) {
                            Ok(plain) => opened = plain,
                            Err(_) => {
                                ended = Some((FAILED, 0));
                                break;
                            }
                        }
                        (OP_TEXT, opened.as_slice())
                    }
                    _ => (f.opcode, f.payload),
                };
                match opcode {
                    OP_TEXT if payload.starts_with(&delivery) => {
                        let head = &payload[..payload.len().min(64)];
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
                        if let Some(ts) = scan::number_after_last(payload, br#""ts":"#) {
                            h.record(now.saturating_sub(ts));
                        }
                    }
                    OP_TEXT if is_server_ping(payload) => {
                        put_frame(&mut replies, OP_TEXT, PONG_TEXT);
                    }
                    OP_PING => put_frame(&mut replies, OP_PONG, payload),
                    OP_CLOSE => {
                        ended = Some((CLOSED, f.close_code().unwrap_or(0)));
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
        if let Some(e) = ended {
            break e;
        }
        if !replies.is_empty() && conn.send(&replies).await.is_err() {
            break (FAILED, 0);
        }
    };
    state.close_code.store(code, Relaxed);
    state.end.store(end, Relaxed);
}

/// `payload`, a compressed message, inflated into `out` (RFC 7692: the
/// tail the sender removed is put back).
fn inflate(
    d: &mut flate2::Decompress,
    payload: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), flate2::DecompressError> {
    d.reset(false);
    out.clear();
    for input in [payload, &[0, 0, 0xff, 0xff][..]] {
        let mut input = input;
        loop {
            out.reserve(input.len() * 4 + 256);
            let before = d.total_in();
            d.decompress_vec(input, out, flate2::FlushDecompress::Sync)?;
            input = &input[(d.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
    }
    Ok(())
}
