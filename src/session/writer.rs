//! The outbound side of a connection: gathering what it should receive
//! (its topic cursors, then its own queue) and writing it with vectored
//! writes, many frames per system call.

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;

use super::catch_up;
use super::transport::Transport;
use crate::config::SlowConsumerPolicy;
use crate::conn::{Conn, follow};
use crate::fanout::ring::{Behind, FrameRing};
use crate::metrics::Metrics;
use crate::state::ServerState;
use bytes::{Bytes, BytesMut};

/// Gather until this many bytes wait for the socket.
const FILL_TARGET: usize = 256 * 1024;
/// Slices per vectored write (below the kernel's IOV_MAX of 1024).
const MAX_IOV: usize = 512;

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
    /// Subscriptions the last gathering found behind their ring: they
    /// need a log read (see [`catch_up`]).
    behind: Vec<catch_up::Behind>,
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

    /// The subscriptions the last `fill` found behind their ring, and the
    /// bytes a log read for them may bring.
    pub(crate) fn take_behind(&mut self) -> Option<(Vec<catch_up::Behind>, usize)> {
        if self.behind.is_empty() {
            return None;
        }
        let budget = FILL_TARGET.saturating_sub(self.bytes).max(1);
        Some((std::mem::take(&mut self.behind), budget))
    }

    /// Add frames read from the log (see [`catch_up::apply`]).
    pub(crate) fn push_all(&mut self, frames: Vec<Bytes>) {
        for b in frames {
            self.push(b);
        }
    }

    /// The socket is not taking data right now.
    pub fn is_blocked(&self) -> bool {
        self.blocked
    }

    /// Gather from the connection until about `FILL_TARGET` bytes wait.
    /// Returns whether anything was gathered.
    /// Subscriptions behind their ring are noted for a log read
    /// ([`OutQueue::take_behind`]).
    pub fn fill(&mut self, metrics: &Metrics, conn: &Arc<Conn>) -> bool {
        let start = self.bytes;
        self.behind.clear();
        while self.bytes < FILL_TARGET {
            let before = self.bytes;
            let mut out = Vec::new();
            self.behind.clear();
            gather(
                metrics,
                conn,
                FILL_TARGET - self.bytes,
                &mut out,
                &mut self.behind,
            );
            for b in out {
                self.push(b);
            }
            if self.bytes == before {
                break;
            }
        }
        self.bytes > start
    }

    /// Write as much as the socket takes now (first what the transport
    /// holds from earlier writes). Returns the bytes written; `WouldBlock`
    /// is not an error (the rest waits).
    pub fn flush(&mut self, stream: &mut Transport, metrics: &Metrics) -> io::Result<usize> {
        stream.flush_pending()?;
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
/// head (slices of the shared ring; a cursor older than the ring is noted
/// in `behind` for a log read), then the connection's own queue (replies,
/// `send` output), whose data frames wait while a recovery replay is being
/// sent, so a recovery reply never overtakes its replay. Nothing of any
/// topic before the client's hello (see `Conn::hold_data_until`). A
/// subscription further than `max_outbound_bytes` behind its
/// topic's head while the socket is not taking data (`blocked`) is a slow
/// consumer: disconnected or skipped ahead, by policy.
///
/// On an end-to-end encrypted connection the shared plaintext frames are
/// taken one by one and sealed after the locks are released.
fn gather(
    metrics: &Metrics,
    conn: &Arc<Conn>,
    budget: usize,
    out: &mut Vec<Bytes>,
    behind: &mut Vec<catch_up::Behind>,
) {
    let mut frames = 0u64;
    let e2e = conn.e2e();
    let start = out.len();
    // Before the client's hello (or the end of its wait), no topic data.
    let held = conn.data_held_until().is_some();
    if !held {
        // Sealed one by one, compressed (shared), or plain (shared).
        let framing = match (&e2e, conn.compress_from) {
            (Some(_), _) => Framing::OneByOne,
            (None, Some(min)) => Framing::Shared(Some(min)),
            (None, None) => Framing::Shared(None),
        };
        let mut ob = conn.outbox.lock();
        let reply_waiting = ob.queue.iter().any(|q| q.data);
        for (topic, sub) in ob.subs.iter_mut() {
            frames += gather_presence(sub, budget, e2e.is_some(), out);
            let ring = sub.channel.ring.read();
            follow(
                &ring,
                &mut sub.generation,
                &mut sub.cursor,
                &mut sub.replay_until,
            );
            if sub.replay_until.is_some_and(|until| sub.cursor >= until) {
                // The replay is out (or was empty): what was queued behind
                // it (the reply) goes next, below, and live messages from
                // the next round.
                sub.replay_until = None;
                if reply_waiting {
                    continue;
                }
            }
            // A replay stops at its end: the reply queued behind it goes
            // next, then live messages.
            let target = sub.replay_until.unwrap_or_else(|| ring.head());
            if sub.cursor >= target {
                continue;
            }
            match collect(&ring, sub.cursor, target, budget, framing, out) {
                Ok(reached) => {
                    frames += reached - sub.cursor;
                    sub.cursor = reached;
                }
                Err(Behind) => behind.push(catch_up::Behind {
                    topic: topic.clone(),
                    from: sub.cursor,
                    target,
                    generation: sub.generation,
                }),
            }
        }
    }
    if let Some(key) = e2e
        && out.len() > start
    {
        let mut sealed = BytesMut::new();
        key.seal_frames_into(&mut sealed, &out[start..]);
        Metrics::add(&metrics.frames_encrypted, (out.len() - start) as u64);
        out.truncate(start);
        out.push(sealed.freeze());
    }
    // The connection's own frames go after its topic frames, and wait
    // while a recovery replay is being sent: the reply to a recovery
    // request follows every record it counts.
    let mut ob = conn.outbox.lock();
    if !ob.queue.is_empty() {
        let hold_data = replaying(&ob);
        frames += ob.take_queued(hold_data, out);
    }
    Metrics::add(&metrics.frames_sent, frames);
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
        follow(
            &ring,
            &mut sub.generation,
            &mut sub.cursor,
            &mut sub.replay_until,
        );
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
    let framing = if one_by_one {
        Framing::OneByOne
    } else {
        Framing::Shared(None)
    };
    match collect(&ring, from, ring.head(), budget, framing, out) {
        Ok(reached) => {
            sub.presence_cursor = reached;
            reached - from
        }
        Err(_) => 0,
    }
}

/// How a connection takes a ring's frames.
#[derive(Clone, Copy)]
enum Framing {
    /// Slices of whole runs, the compressed form for frames of at least
    /// this many bytes when set (per-message deflate).
    Shared(Option<usize>),
    /// One slice per frame, plain (for connections that seal each frame).
    OneByOne,
}

/// Frames `from..to` of a ring, as `framing` says.
fn collect(
    ring: &FrameRing,
    from: u64,
    to: u64,
    budget: usize,
    framing: Framing,
    out: &mut Vec<Bytes>,
) -> Result<u64, Behind> {
    if let Framing::Shared(compress_from) = framing {
        return ring.collect(from, to, budget, compress_from, out);
    }
    let frames = ring.frames(from, to, budget)?;
    let reached = from + frames.len() as u64;
    out.extend(frames);
    Ok(reached)
}

#[cfg(test)]
mod tests;
