//! The outbound side of a connection: gathering what it should receive
//! (its topic cursors, then its own queue) and writing it with vectored
//! writes, many frames per system call.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::net::TcpStream;
use wse_log::{LogError, Position, ReadLimits};

use crate::config::SlowConsumerPolicy;
use crate::conn::Conn;
use crate::fanout::ring::{Behind, FrameRing};
use crate::metrics::Metrics;
use crate::server::state::ServerState;
use crate::ws::frame;

/// Gather until this many bytes wait for the socket.
const FILL_TARGET: usize = 256 * 1024;
/// Slices per vectored write (below the kernel's IOV_MAX of 1024).
const MAX_IOV: usize = 512;
/// Records per log read when a subscriber is behind the fan-out memory.
const LOG_PAGE: usize = 256;

/// The connection's backlog went past `max_outbound_bytes` and the policy
/// is to disconnect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlowConsumer;

/// Bytes gathered for the socket but not yet written.
#[derive(Default)]
pub struct OutQueue {
    bufs: VecDeque<Bytes>,
    bytes: usize,
    /// The last flush left data because the socket was full: the client is
    /// not keeping up right now.
    blocked: bool,
    /// The front buffer was partly written: it must be finished before
    /// anything else goes out, or the client would see a torn frame.
    front_started: bool,
}

impl OutQueue {
    /// Nothing waits to be written.
    pub fn is_empty(&self) -> bool {
        self.bufs.is_empty()
    }

    /// Bytes waiting.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Add bytes to write after everything gathered so far.
    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.bytes += b.len();
            self.bufs.push_back(b);
        }
    }

    /// Forget everything not yet started (a partly written buffer is kept:
    /// its frame must be completed).
    pub fn discard_unstarted(&mut self) {
        let keep = if self.front_started {
            self.bufs.pop_front()
        } else {
            None
        };
        self.bufs.clear();
        self.bytes = 0;
        if let Some(front) = keep {
            self.push(front);
        }
    }

    /// The socket is not taking data right now.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// Gather from the connection until about `FILL_TARGET` bytes wait.
    /// Returns whether anything was gathered.
    pub fn fill(&mut self, state: &ServerState, conn: &Arc<Conn>) -> bool {
        let start = self.bytes;
        while self.bytes < FILL_TARGET {
            let before = self.bytes;
            let mut out = Vec::new();
            gather(state, conn, FILL_TARGET - self.bytes, &mut out);
            for b in out {
                self.push(b);
            }
            if self.bytes == before {
                break;
            }
        }
        self.bytes > start
    }

    /// Write as much as the socket takes now. Returns frames... bytes
    /// written; `WouldBlock` is not an error (the rest waits).
    pub fn flush(&mut self, stream: &TcpStream, metrics: &Metrics) -> io::Result<usize> {
        let mut written = 0;
        while !self.bufs.is_empty() {
            let iov: Vec<IoSlice<'_>> = self
                .bufs
                .iter()
                .take(MAX_IOV)
                .map(|b| IoSlice::new(b))
                .collect();
            match stream.try_write_vectored(&iov) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    Metrics::add(&metrics.socket_writes, 1);
                    written += n;
                    self.advance(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
        self.blocked = !self.bufs.is_empty();
        Ok(written)
    }

    fn advance(&mut self, mut n: usize) {
        self.bytes -= n;
        while n > 0 {
            let Some(front) = self.bufs.front_mut() else {
                return;
            };
            if front.len() <= n {
                n -= front.len();
                self.bufs.pop_front();
                self.front_started = false;
            } else {
                let _ = front.split_to(n);
                self.front_started = true;
                n = 0;
            }
        }
    }
}

/// Collect what `conn` should receive next, up to about `budget` bytes:
/// for each subscription the frames between its cursor and the topic's
/// head (slices of the shared ring, or read from the log when the cursor
/// is older than the ring), then the connection's own queue (replies,
/// `send` output), whose data frames wait while a recovery replay is being
/// sent, so a recovery reply never overtakes its replay. Nothing of any
/// topic before the client's hello (see `Conn::hold_data_until`). A
/// subscription further than `max_outbound_bytes` behind its
/// topic's head while the socket is not taking data (`blocked`) is a slow
/// consumer: disconnected or skipped ahead, by policy.
///
/// On an end-to-end encrypted connection the shared plaintext frames are
/// taken one by one and sealed after the locks are released.
fn gather(state: &ServerState, conn: &Arc<Conn>, budget: usize, out: &mut Vec<Bytes>) {
    let mut behind = Vec::new();
    let mut frames = 0u64;
    let e2e = conn.e2e();
    let start = out.len();
    // Before the client's hello (or the end of its wait), no topic data.
    let held = conn.data_held_until().is_some();
    if !held {
        let mut ob = conn.outbox.lock();
        for (topic, sub) in ob.subs.iter_mut() {
            frames += gather_presence(sub, budget, e2e.is_some(), out);
            let ring = sub.channel.ring.read();
            if sub.replay_until.is_some_and(|until| sub.cursor >= until) {
                // The replay and what was queued behind it are out.
                sub.replay_until = None;
            }
            // A replay stops at its end: the reply queued behind it goes
            // next, then live messages.
            let target = sub.replay_until.unwrap_or_else(|| ring.head());
            if sub.cursor >= target {
                continue;
            }
            match collect(&ring, sub.cursor, target, budget, e2e.is_some(), out) {
                Ok(reached) => {
                    frames += reached - sub.cursor;
                    sub.cursor = reached;
                }
                Err(_) => behind.push((topic.clone(), sub.cursor, target)),
            }
        }
    }
    if let Some(key) = e2e
        && out.len() > start
    {
        let mut sealed = BytesMut::new();
        key.seal_frames_into(&mut sealed, &out[start..]);
        Metrics::add(&state.metrics.frames_encrypted, (out.len() - start) as u64);
        out.truncate(start);
        out.push(sealed.freeze());
    }
    for (topic, from, target) in behind {
        frames += catch_up_from_log(state, conn, &topic, from, target, budget, out);
    }
    // The connection's own frames go after its topic frames, and wait
    // while a recovery replay is being sent: the reply to a recovery
    // request follows every record it counts.
    let mut ob = conn.outbox.lock();
    if !ob.queue.is_empty() {
        let hold_data = replaying(&ob);
        frames += ob.take_queued(hold_data, out);
    }
    Metrics::add(&state.metrics.frames_sent, frames);
}

/// Is a recovery replay still being sent? Checked under the same lock as
/// the queue is taken, so a reply queued by another thread right after its
/// replay began is held too.
fn replaying(ob: &crate::conn::Outbox) -> bool {
    ob.subs
        .values()
        .any(|s| s.replay_until.is_some_and(|until| s.cursor < until))
}

/// A connection whose socket is not taking data and whose subscription is
/// further than `max_outbound_bytes` behind the topic's head is a slow
/// consumer: disconnected, or skipped ahead to the newest message (which
/// shows the client the gap at once, so it recovers it from the log), by
/// policy.
pub fn apply_slow_consumer_policy(state: &ServerState, conn: &Conn) -> Result<(), SlowConsumer> {
    let limit = state.config.max_outbound_bytes as u64;
    if limit == 0 {
        return Ok(());
    }
    let mut ob = conn.outbox.lock();
    for sub in ob.subs.values_mut() {
        if sub.replay_until.is_some() {
            // A replay is bounded by `recovery_max_messages`; it is not
            // skipped ahead.
            continue;
        }
        let ring = sub.channel.ring.read();
        if ring.lag_bytes(sub.cursor) <= limit {
            continue;
        }
        match state.config.slow_consumer {
            SlowConsumerPolicy::Disconnect => return Err(SlowConsumer),
            SlowConsumerPolicy::Drop => {
                let newest = ring.head().saturating_sub(1).max(sub.cursor);
                Metrics::add(&state.metrics.slow_consumer_drops, newest - sub.cursor);
                sub.cursor = newest;
            }
        }
    }
    Ok(())
}

/// Presence frames of one subscription since its presence cursor (a
/// subscriber too far behind skips to the oldest still held: presence is
/// state, and the next change brings it up to date). Returns the frames.
fn gather_presence(
    sub: &mut crate::conn::Sub,
    budget: usize,
    one_by_one: bool,
    out: &mut Vec<Bytes>,
) -> u64 {
    let ring = sub.channel.presence.read();
    if sub.presence_cursor >= ring.head() {
        return 0;
    }
    let from = sub.presence_cursor.max(ring.first());
    match collect(&ring, from, ring.head(), budget, one_by_one, out) {
        Ok(reached) => {
            sub.presence_cursor = reached;
            reached - from
        }
        Err(_) => 0,
    }
}

/// Frames `from..to` of a ring: slices of whole runs, or (`one_by_one`,
/// for connections that seal each frame) one slice per frame.
fn collect(
    ring: &FrameRing,
    from: u64,
    to: u64,
    budget: usize,
    one_by_one: bool,
    out: &mut Vec<Bytes>,
) -> Result<u64, Behind> {
    if !one_by_one {
        return ring.collect(from, to, budget, out);
    }
    let frames = ring.frames(from, to, budget)?;
    let reached = from + frames.len() as u64;
    out.extend(frames);
    Ok(reached)
}

/// Frame records `from..target` of `topic` read from the log, and move the
/// subscription's cursor past them (unless it moved meanwhile). Returns
/// the number of frames added.
fn catch_up_from_log(
    state: &ServerState,
    conn: &Arc<Conn>,
    topic: &Arc<str>,
    from: u64,
    target: u64,
    budget: usize,
    out: &mut Vec<Bytes>,
) -> u64 {
    let Some(pos) = state.log.position(topic) else {
        return 0;
    };
    let limits = ReadLimits {
        max_records: LOG_PAGE.min((target - from) as usize).max(1),
        max_bytes: budget.max(1),
    };
    let (next, framed) = match state
        .log
        .read(topic, Position::new(pos.epoch, from), limits)
    {
        Ok(batch) => {
            let n = batch.records.len() as u64;
            let mut framed = Vec::new();
            if let Some(key) = conn.e2e() {
                let mut sealed = BytesMut::new();
                key.seal_payloads_into(&mut sealed, batch.records.iter().map(|r| r.payload_ref()));
                framed.push(sealed.freeze());
                Metrics::add(&state.metrics.frames_encrypted, n);
            } else {
                let mut buf = BytesMut::new();
                for r in &batch.records {
                    frame::put_header(&mut buf, frame::TEXT, r.payload_len());
                    buf.extend_from_slice(r.payload_ref());
                }
                framed.push(buf.freeze());
            }
            Metrics::add(&state.metrics.replayed_from_log, n);
            (batch.next_offset, Some((framed, n)))
        }
        Err(LogError::NotRecoverable(nr)) => (nr.first_offset.max(from), None),
        Err(e) => {
            tracing::warn!(topic = %topic, error = %e, "catch-up read failed; skipping to the newest messages");
            (target, None)
        }
    };
    let mut ob = conn.outbox.lock();
    let Some(sub) = ob.subs.get_mut(topic) else {
        return 0;
    };
    if sub.cursor != from {
        return 0;
    }
    sub.cursor = next.max(from);
    match framed {
        Some((framed, n)) => {
            out.extend(framed);
            n
        }
        None => 0,
    }
}
