//! The fan-out benchmark's publisher: one connection on a thread of its
//! own (blocking writes, nothing to schedule), sending client `publish`
//! messages stamped with the time they were sent, in batches (one write
//! each), paced by a rate or by a window over the slowest subscriber.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::TOPIC;
use super::subscriber::{Subscribers, now_ns};
use crate::bench::scan;
use crate::bench::wire::{FrameBuf, OP_TEXT, WsConn, text_frame};
use crate::error::CliError;

/// Most messages in one write.
const BATCH: u64 = 32;
/// Pause while the window is full.
const WINDOW_WAIT: Duration = Duration::from_micros(50);
/// A write that blocks this long means the server stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// How fast to publish.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// As fast as the subscribers keep up (bounded by the window).
    Max,
    /// This many messages per second, whatever the subscribers do.
    PerSecond(f64),
}

impl Rate {
    /// `max` or a positive number.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s == "max" {
            return Ok(Self::Max);
        }
        match s.parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => Ok(Self::PerSecond(r)),
            _ => Err(format!(
                "--rate takes `max` or messages per second > 0, not {s:?}"
            )),
        }
    }
}

impl Serialize for Rate {
    /// `"max"` or the number of messages per second.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Max => s.serialize_str("max"),
            Self::PerSecond(r) => s.serialize_f64(*r),
        }
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Max => f.write_str("max"),
            Self::PerSecond(r) => write!(f, "{r}/s"),
        }
    }
}

/// What to publish, how fast, how long.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// The pace.
    pub rate: Rate,
    /// With [`Rate::Max`]: messages the publisher may be ahead of the
    /// slowest connected subscriber (0: no limit).
    pub window: u64,
    /// Target size of the `message` object, bytes.
    pub size: usize,
    /// How long to publish.
    pub run_time: Duration,
}

/// The publishing connection.
pub struct Publisher {
    stream: TcpStream,
    /// Counts the server's `error` replies (a refused publish).
    reader: JoinHandle<()>,
    errors: Arc<AtomicU64>,
}

impl Publisher {
    /// Take over an open connection; a thread reads what the server says.
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

    /// Publish by `plan`; the number of messages sent (their offsets are
    /// 0..n on a fresh topic).
    pub fn publish(&mut self, plan: &Plan, subs: &Subscribers) -> Result<u64, CliError> {
        let pad = plan.size.saturating_sub(message(now_ns(), 0).len());
        let start = Instant::now();
        let deadline = start + plan.run_time;
        let mut published = 0u64;
        let mut slowest = 0u64;
        let mut batch = Vec::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(published);
            }
            let k = match plan.rate {
                Rate::Max if plan.window == 0 => BATCH,
                Rate::Max => {
                    if published - slowest.min(published) >= plan.window {
                        slowest = subs.slowest().unwrap_or(published);
                    }
                    let room = plan
                        .window
                        .saturating_sub(published - slowest.min(published));
                    if room == 0 {
                        std::thread::sleep(WINDOW_WAIT);
                        continue;
                    }
                    room.min(BATCH)
                }
                Rate::PerSecond(r) => {
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
            let frame = publish_frame(now_ns(), pad);
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

/// The published message: `{"t":"b","p":{"ts":<ns>,"pad":"x..."}}`.
fn message(ts: u64, pad: usize) -> String {
    format!(
        r#"{{"t":"b","p":{{"ts":{ts},"pad":"{}"}}}}"#,
        "x".repeat(pad)
    )
}

/// The client frame publishing it on the bench topic.
fn publish_frame(ts: u64, pad: usize) -> Vec<u8> {
    let m = message(ts, pad);
    text_frame(format!(r#"{{"t":"publish","p":{{"topic":"{TOPIC}","message":{m}}}}}"#).as_bytes())
}

/// The size of the published message at `size`.
pub fn message_bytes(size: usize) -> usize {
    let min = message(now_ns(), 0).len();
    size.max(min)
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
    fn rates_parse_and_messages_have_the_asked_size() {
        assert_eq!(Rate::parse("max"), Ok(Rate::Max));
        assert_eq!(Rate::parse("5000"), Ok(Rate::PerSecond(5000.0)));
        for bad in ["0", "-1", "fast", "inf", "NaN"] {
            assert!(Rate::parse(bad).is_err(), "{bad}");
        }
        let pad = 100 - message(now_ns(), 0).len();
        let m = message(now_ns(), pad);
        assert_eq!(m.len(), 100);
        let v: serde_json::Value = serde_json::from_str(&m).unwrap();
        assert!(v["p"]["ts"].as_u64().unwrap() > 1_600_000_000_000_000_000);
        assert_eq!(message_bytes(10), message(0, 0).len() + 18);
    }
}
