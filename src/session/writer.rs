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

    /// Forget everything not yet written.
    pub fn clear(&mut self) {
        self.bufs.clear();
        self.bytes = 0;
    }

    /// Gather from the connection until about `FILL_TARGET` bytes wait.
    pub fn fill(&mut self, state: &ServerState, conn: &Arc<Conn>) -> Result<(), SlowConsumer> {
        while self.bytes < FILL_TARGET {
            let before = self.bytes;
            let mut out = Vec::new();
            gather(state, conn, FILL_TARGET - self.bytes, self.bytes, &mut out)?;
            for b in out {
                self.push(b);
            }
            if self.bytes == before {
                break;
            }
        }
        Ok(())
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
            } else {
                let _ = front.split_to(n);
                n = 0;
            }
        }
    }
}

/// Collect what `conn` should receive next, up to about `budget` bytes:
/// for each subscription the frames between its cursor and the topic's
/// head (slices of the shared ring, or read from the log when the cursor
/// is older than the ring), then the connection's own queue.
fn gather(
    state: &ServerState,
    conn: &Arc<Conn>,
    budget: usize,
    already_waiting: usize,
    out: &mut Vec<Bytes>,
) -> Result<(), SlowConsumer> {
    let limit = state.config.max_outbound_bytes as u64;
    let mut behind = Vec::new();
    let mut frames = 0u64;
    {
        let mut ob = conn.outbox.lock();
        for (topic, sub) in ob.subs.iter_mut() {
            let ring = sub.channel.ring.read();
            if let Some((stop, resume)) = sub.replay
                && sub.cursor >= stop
            {
                sub.cursor = sub.cursor.max(resume);
                sub.replay = None;
            }
            let target = sub.replay.map_or(ring.head(), |(stop, _)| stop);
            if sub.cursor >= target {
                continue;
            }
            if limit > 0
                && sub.replay.is_none()
                && ring.lag_bytes(sub.cursor) + already_waiting as u64 > limit
            {
                match state.config.slow_consumer {
                    SlowConsumerPolicy::Disconnect => return Err(SlowConsumer),
                    SlowConsumerPolicy::Drop => {
                        Metrics::add(&state.metrics.slow_consumer_drops, ring.head() - sub.cursor);
                        sub.cursor = ring.head();
                        continue;
                    }
                }
            }
            match ring.collect(sub.cursor, target, budget, out) {
                Ok(reached) => {
                    frames += reached - sub.cursor;
                    sub.cursor = reached;
                }
                Err(_) => behind.push((topic.clone(), sub.cursor, target)),
            }
        }
        if !ob.control.is_empty() {
            frames += ob.control.len() as u64;
            out.extend(ob.control.drain(..));
            ob.control_bytes = 0;
        }
    }
    for (topic, from, target) in behind {
        frames += catch_up_from_log(state, conn, &topic, from, target, budget, out);
    }
    Metrics::add(&state.metrics.frames_sent, frames);
    Ok(())
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
            let mut buf = BytesMut::new();
            let n = batch.records.len() as u64;
            for r in &batch.records {
                frame::put_header(&mut buf, frame::TEXT, r.payload_len());
                buf.extend_from_slice(r.payload_ref());
            }
            Metrics::add(&state.metrics.replayed_from_log, n);
            (batch.next_offset, Some((buf.freeze(), n)))
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
        Some((bytes, n)) => {
            out.push(bytes);
            n
        }
        None => 0,
    }
}
