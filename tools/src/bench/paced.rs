//! The publisher of the delivery benchmarks (`wse bench fanout`, the
//! delivery phases of `wse bench cluster`): one connection written from a
//! thread of its own (blocking writes, nothing to schedule), sending client
//! `publish` messages stamped with the time they were sent, in batches (one
//! write each), paced by a rate or by a window over the slowest subscriber;
//! a second thread counts the server's `error` replies (over TLS, where
//! one session cannot be read and written from two threads, the publishing
//! thread reads what has arrived after each write instead).
//!
//! Also the message both benchmarks publish, and the clock that stamps it.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::bench::scan;
use crate::bench::wire::{FrameBuf, OP_TEXT, StdStream, WsConn, text_frame};
use crate::error::CliError;

/// Most messages in one write.
const BATCH: u64 = 32;
/// Pause while the window is full.
const WINDOW_WAIT: Duration = Duration::from_micros(50);
/// A write that blocks this long means the server stopped reading.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// Nanoseconds since the Unix epoch (publisher and subscribers run on one
/// machine, so `ts` and the time of receipt share this clock).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The published message object: `{"t":"b","p":{"ts":<ns>,"pad":"..."}}`,
/// the padding words of text, so that a compressed message shrinks about
/// as much as real JSON does (a run of one letter would shrink to nothing).
fn message(ts: u64, pad: usize) -> String {
    format!(
        r#"{{"t":"b","p":{{"ts":{ts},"pad":"{}"}}}}"#,
        words(ts, pad)
    )
}

/// `len` bytes of lower-case words and spaces, varied by `seed`.
fn words(seed: u64, len: usize) -> String {
    const WORDS: [&str; 16] = [
        "price", "bid", "ask", "volume", "order", "filled", "market", "limit", "stop", "symbol",
        "buy", "sell", "open", "close", "high", "low",
    ];
    let mut out = String::with_capacity(len + 8);
    let mut x = seed | 1;
    while out.len() < len {
        // xorshift: cheap, and different for every message.
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.push_str(WORDS[(x & 15) as usize]);
        out.push(if x & 0x30 == 0 { ',' } else { ' ' });
        if x & 0x1c0 == 0 {
            out.push_str(&(x % 10_000).to_string());
            out.push(' ');
        }
    }
    out.truncate(len);
    out
}

/// Padding that makes a message object `size` bytes (at least the
/// smallest message).
pub fn pad_for(size: usize) -> usize {
    size.saturating_sub(message(now_ns(), 0).len())
}

/// The size of a message object with `pad` bytes of padding.
pub fn message_bytes(pad: usize) -> usize {
    message(now_ns(), pad).len()
}

/// A client `publish` frame of a message stamped `ts`, with an id when an
/// acknowledgement is wanted.
pub fn publish_frame(topic: &str, id: Option<&str>, ts: u64, pad: usize) -> Vec<u8> {
    let m = message(ts, pad);
    let text = match id {
        Some(id) => {
            format!(r#"{{"t":"publish","id":"{id}","p":{{"topic":"{topic}","message":{m}}}}}"#)
        }
        None => format!(r#"{{"t":"publish","p":{{"topic":"{topic}","message":{m}}}}}"#),
    };
    text_frame(text.as_bytes())
}

/// How fast to publish.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Pace {
    /// Messages per second, whatever the subscribers do.
    Rate(f64),
    /// As fast as the slowest subscriber keeps up: at most this many
    /// messages ahead of it (0: no limit).
    Window(u64),
}

/// The publishing connection.
pub struct PacedPublisher {
    stream: StdStream,
    /// How the server's `error` replies (a refused publish) are counted.
    reader: Reader,
    errors: Arc<AtomicU64>,
}

/// Who reads the publisher's connection.
enum Reader {
    /// A thread of its own, on a clone of the socket (plain TCP).
    Thread(JoinHandle<()>),
    /// The publishing thread, after each write, without waiting (TLS):
    /// what was read and not yet framed.
    Inline(FrameBuf),
}

impl PacedPublisher {
    /// Take over an open connection; a thread reads what the server says
    /// (over TLS, the publishing thread does).
    pub fn new(conn: WsConn) -> Result<Self, CliError> {
        let (stream, buf) = conn.into_std()?;
        stream
            .tcp()
            .set_write_timeout(Some(WRITE_TIMEOUT))
            .map_err(|e| CliError::io("set the publisher's write timeout", e))?;
        let errors = Arc::new(AtomicU64::new(0));
        let reader = match &stream {
            StdStream::Plain(s) => {
                let read_half = s
                    .try_clone()
                    .map_err(|e| CliError::io("clone the publisher's socket", e))?;
                let counter = errors.clone();
                Reader::Thread(
                    std::thread::Builder::new()
                        .name("wse-bench-publisher-reader".into())
                        .spawn(move || count_errors(read_half, buf, &counter))
                        .map_err(|e| CliError::io("start the publisher's reader", e))?,
                )
            }
            StdStream::Tls(_) => Reader::Inline(buf),
        };
        Ok(Self {
            stream,
            reader,
            errors,
        })
    }

    /// Over TLS: read what the server has sent so far, without waiting,
    /// and count its `error` replies.
    fn read_inline(&mut self) {
        let Reader::Inline(buf) = &mut self.reader else {
            return;
        };
        if self.stream.tcp().set_nonblocking(true).is_err() {
            return;
        }
        loop {
            count_frames(buf, &self.errors);
            match self.stream.read(buf.spare()) {
                Ok(n) if n > 0 => buf.filled(n),
                // Nothing more now (WouldBlock), closed, or failed: the
                // next write says which.
                _ => break,
            }
        }
        let _ = self.stream.tcp().set_nonblocking(false);
    }

    /// Publish messages padded by `pad` on `topic` at `pace` for
    /// `run_time`; `slowest` says how many messages the slowest subscriber
    /// has (asked only when the window is full). The number sent (their
    /// offsets are 0..n on a fresh topic).
    pub fn publish(
        &mut self,
        topic: &str,
        pad: usize,
        pace: Pace,
        run_time: Duration,
        slowest: impl Fn() -> Option<u64>,
    ) -> Result<u64, CliError> {
        let start = Instant::now();
        let deadline = start + run_time;
        let (mut published, mut behind) = (0u64, 0u64);
        let mut batch = Vec::new();
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(published);
            }
            let k = match pace {
                Pace::Window(0) => BATCH,
                Pace::Window(window) => {
                    if published - behind.min(published) >= window {
                        behind = slowest().unwrap_or(published);
                    }
                    let room = window.saturating_sub(published - behind.min(published));
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
            self.read_inline();
        }
    }

    /// Close the connection; how many publishes the server refused.
    pub fn finish(mut self) -> u64 {
        self.read_inline();
        let _ = self.stream.tcp().shutdown(Shutdown::Both);
        if let Reader::Thread(reader) = self.reader {
            let _ = reader.join();
        }
        self.errors.load(Relaxed)
    }
}

/// Read the publisher's socket until it closes, counting `error` frames.
fn count_errors(mut stream: TcpStream, mut buf: FrameBuf, errors: &AtomicU64) {
    loop {
        count_frames(&mut buf, errors);
        match stream.read(buf.spare()) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.filled(n),
        }
    }
}

/// Take the complete frames of `buf`, counting `error` frames.
fn count_frames(buf: &mut FrameBuf, errors: &AtomicU64) {
    while let Ok(Some(f)) = buf.next_frame() {
        if f.opcode == OP_TEXT && scan::find(f.payload, br#""t":"error""#).is_some() {
            errors.fetch_add(1, Relaxed);
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
