//! The publishers: connections that publish with an id and wait for each
//! `publish_ack` before the next (the acknowledged-publish workload), and
//! one connection that publishes without ids at a fixed rate or as fast as
//! the subscribers keep up (the delivery workloads). Every message carries
//! the time it was sent, `ts`, in nanoseconds since the Unix epoch (same
//! machine, same clock as the subscribers).

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::readers::Readers;
use crate::bench::hist::Histogram;
use crate::bench::scan;
use crate::bench::wire::{
    FrameBuf, OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, PONG_TEXT, WireError, WsConn, is_server_ping,
    put_frame, text_frame,
};
use crate::error::CliError;

/// Longest wait for one acknowledgement: beyond the server's publish
/// timeout (5 s), after which it answers with an error.
const ACK_TIMEOUT: Duration = Duration::from_secs(15);
/// Most messages in one write of the paced publisher.
const BATCH: u64 = 32;
/// Pause while the publisher's window is full.
const WINDOW_WAIT: Duration = Duration::from_micros(50);
/// A write blocked this long means the server stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Nanoseconds since the Unix epoch.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The published message object: `{"t":"b","p":{"ts":<ns>,"pad":"x..."}}`.
fn message(ts: u64, pad: usize) -> String {
    format!(
        r#"{{"t":"b","p":{{"ts":{ts},"pad":"{}"}}}}"#,
        "x".repeat(pad)
    )
}

/// Padding that makes a message object `size` bytes (at least the
/// smallest message).
pub fn pad_for(size: usize) -> usize {
    size.saturating_sub(message(now_ns(), 0).len())
}

/// The size of a message object with `pad` bytes of padding (the payload
/// byte count of write amplification).
pub fn message_bytes(pad: usize) -> usize {
    message(now_ns(), pad).len()
}

/// A client `publish` frame, with an id when acknowledged.
fn publish_frame(topic: &str, id: Option<&str>, ts: u64, pad: usize) -> Vec<u8> {
    let m = message(ts, pad);
    let text = match id {
        Some(id) => {
            format!(r#"{{"t":"publish","id":"{id}","p":{{"topic":"{topic}","message":{m}}}}}"#)
        }
        None => format!(r#"{{"t":"publish","p":{{"topic":"{topic}","message":{m}}}}}"#),
    };
    text_frame(text.as_bytes())
}

/// What the acknowledged publishers did, counted as it happens.
#[derive(Debug, Default)]
pub struct AckCounts {
    /// Publishes acknowledged.
    pub acked: AtomicU64,
    /// Publishes answered with an error (or not answered in time).
    pub errors: AtomicU64,
}

/// One publisher: publish on `topic` with ids `<tag>-<n>`, each after the
/// previous one's ack, until `stop`; the ack latencies.
pub async fn acked_publisher(
    mut conn: WsConn,
    topic: String,
    tag: String,
    pad: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<AckCounts>,
) -> Result<Histogram, WireError> {
    let mut latency = Histogram::default();
    let mut n = 0u64;
    while !stop.load(Relaxed) {
        let id = format!("{tag}-{n}");
        n += 1;
        let sent = Instant::now();
        conn.send(&publish_frame(&topic, Some(&id), now_ns(), pad))
            .await?;
        match tokio::time::timeout(ACK_TIMEOUT, answer(&mut conn)).await {
            Ok(Ok(true)) => {
                latency.record(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
                counts.acked.fetch_add(1, Relaxed);
            }
            Ok(Ok(false)) => {
                counts.errors.fetch_add(1, Relaxed);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                // No answer: the connection's state is unknown; stop here.
                counts.errors.fetch_add(1, Relaxed);
                return Ok(latency);
            }
        }
    }
    Ok(latency)
}

/// Read until the answer to the one outstanding publish: `true` for a
/// `publish_ack`, `false` for an `error`. Answers pings on the way.
async fn answer(conn: &mut WsConn) -> Result<bool, WireError> {
    loop {
        let mut replies = Vec::new();
        while let Some(f) = conn.next_frame()? {
            match f.opcode {
                OP_TEXT if scan::find(f.payload, br#""t":"publish_ack""#).is_some() => {
                    return Ok(true);
                }
                OP_TEXT if scan::find(f.payload, br#""t":"error""#).is_some() => return Ok(false),
                OP_TEXT if is_server_ping(f.payload) => put_frame(&mut replies, OP_TEXT, PONG_TEXT),
                OP_PING => put_frame(&mut replies, OP_PONG, f.payload),
                OP_CLOSE => return Err(WireError::Closed(f.close_code())),
                _ => {}
            }
        }
        if !replies.is_empty() {
            conn.send(&replies).await?;
        }
        if conn.fill().await? == 0 {
            return Err(WireError::Closed(None));
        }
    }
}

/// How fast the delivery workloads publish.
#[derive(Clone, Copy, Debug)]
pub enum Pace {
    /// Messages per second, whatever the subscribers do.
    Rate(f64),
    /// As fast as the slowest subscriber keeps up: at most this many
    /// messages ahead of it.
    Window(u64),
}

/// The publisher of the delivery workloads: one connection written from a
/// thread of its own (blocking writes, nothing to schedule), the server's
/// replies counted by another.
pub struct PacedPublisher {
    stream: TcpStream,
    reader: std::thread::JoinHandle<()>,
    /// The server's `error` replies (refused publishes).
    errors: Arc<AtomicU64>,
}

impl PacedPublisher {
    /// Take over an open connection.
    pub fn new(conn: WsConn) -> Result<Self, CliError> {
        let (stream, buf) = conn.into_std()?;
        stream
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(|e| CliError::io("set the publisher's write timeout", e))?;
        let read_half = stream
            .try_clone()
            .map_err(|e| CliError::io("clone the publisher's socket", e))?;
        let errors = Arc::new(AtomicU64::new(0));
        let counter = errors.clone();
        let reader = std::thread::Builder::new()
            .name("wse-bench-publisher-reader".into())
            .spawn(move || count_errors(read_half, buf, &counter))
            .map_err(|e| CliError::io("start the publisher's reader", e))?;
        Ok(Self {
            stream,
            reader,
            errors,
        })
    }

    /// Publish on `topic` at `pace` for `run_time`; messages sent.
    pub fn publish(
        &mut self,
        topic: &str,
        pad: usize,
        pace: Pace,
        run_time: Duration,
        readers: &Readers,
    ) -> Result<u64, CliError> {
        let start = Instant::now();
        let deadline = start + run_time;
        let (mut published, mut slowest) = (0u64, 0u64);
        let mut batch = Vec::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(published);
            }
            let k = match pace {
                Pace::Window(window) => {
                    if published - slowest.min(published) >= window {
                        slowest = readers.slowest().unwrap_or(published);
                    }
                    let room = window.saturating_sub(published - slowest.min(published));
                    if room == 0 {
                        std::thread::sleep(WINDOW_WAIT);
                        continue;
                    }
                    room.min(BATCH)
                }
                Pace::Rate(r) => {
                    // Message i is due at i / r seconds.
                    let due = ((now - start).as_secs_f64() * r) as u64 + 1;
                    if due <= published {
                        let at = start + Duration::from_secs_f64(published as f64 / r);
                        std::thread::sleep(at.min(deadline).saturating_duration_since(now));
                        continue;
                    }
                    (due - published).min(BATCH)
                }
            };
            let frame = publish_frame(topic, None, now_ns(), pad);
            batch.clear();
            for _ in 0..k {
                batch.extend_from_slice(&frame);
            }
            self.stream
                .write_all(&batch)
                .map_err(|e| CliError::io("publish", e))?;
            published += k;
        }
    }

    /// Close the connection; how many publishes the server refused.
    pub fn finish(self) -> u64 {
        let _ = self.stream.shutdown(Shutdown::Both);
        let _ = self.reader.join();
        self.errors.load(Relaxed)
    }
}

/// Read the publisher's socket until it closes, counting `error` frames.
fn count_errors(mut stream: TcpStream, mut buf: FrameBuf, errors: &AtomicU64) {
    loop {
        while let Ok(Some(f)) = buf.next_frame() {
            if f.opcode == OP_TEXT && scan::find(f.payload, br#""t":"error""#).is_some() {
                errors.fetch_add(1, Relaxed);
            }
        }
        match stream.read(buf.spare()) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.filled(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_have_the_asked_size_and_frames_parse() {
        let pad = pad_for(100);
        assert_eq!(message_bytes(pad), 100);
        assert_eq!(pad_for(1), 0);
        // The payload after the 2..4-byte header and the 4-byte mask.
        let body = |f: &[u8]| {
            if f[1] & 0x7f == 126 {
                f[8..].to_vec()
            } else {
                f[6..].to_vec()
            }
        };
        let f = publish_frame("t-1", Some("a-7"), 42, 3);
        let v: serde_json::Value = serde_json::from_slice(&body(&f)).unwrap();
        assert_eq!(v["id"], "a-7");
        assert_eq!(v["p"]["topic"], "t-1");
        assert_eq!(v["p"]["message"]["p"]["ts"], 42);
        let f = publish_frame("t", None, 1, 0);
        let v: serde_json::Value = serde_json::from_slice(&body(&f)).unwrap();
        assert!(v.get("id").is_none());
    }
}
