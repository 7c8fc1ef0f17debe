//! Reading from the log for a subscriber whose cursor is older than its
//! topic's framed ring (a recovery replay from disk, a consumer that fell
//! behind).
//!
//! The read may touch the disk, so it never runs on a Tokio worker: the
//! connection's task hands the topics that are behind to a blocking-pool
//! thread ([`read`]) and goes on serving everything else; when the pages
//! come back it frames them ([`apply`]) and moves each cursor past them,
//! unless the cursor moved meanwhile (the slow-consumer policy skipped it
//! ahead). One read is in flight per connection; a subscription whose
//! cursor is behind sends nothing else until the read returns, so its
//! order is kept.

use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use wse_log::{Log, LogError, Position, ReadLimits, Record};

use crate::conn::Conn;
use crate::metrics::Metrics;
use crate::ws::frame;

/// Records per log read and topic.
const LOG_PAGE: usize = 256;

/// A subscription whose cursor is older than its topic's ring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Behind {
    /// The topic.
    pub topic: Arc<str>,
    /// Its cursor: the first offset it needs.
    pub from: u64,
    /// Where the read stops (the replay's end, or the ring's head).
    pub target: u64,
    /// The ring generation of `from`: a page read for an older generation
    /// (the topic was deleted meanwhile) is dropped, whatever it holds.
    pub generation: u64,
}

/// What a read found for one [`Behind`].
#[derive(Debug)]
pub(crate) struct Page {
    behind: Behind,
    found: Found,
}

#[derive(Debug)]
enum Found {
    /// Records from the cursor on.
    Records(Vec<Record>),
    /// Nothing readable at the cursor: move it to this offset (removed by
    /// retention, damaged on disk, or the topic is gone).
    Skip(u64),
}

/// Read one page for each subscription behind, at most `budget` bytes in
/// all. Blocking: runs on the blocking pool.
pub(crate) fn read(log: &Log, behind: Vec<Behind>, budget: usize) -> Vec<Page> {
    let share = (budget / behind.len().max(1)).max(1);
    behind
        .into_iter()
        .map(|b| {
            let found = read_one(log, &b, share);
            Page { behind: b, found }
        })
        .collect()
}

fn read_one(log: &Log, b: &Behind, budget: usize) -> Found {
    let Some(pos) = log.position(&b.topic) else {
        return Found::Skip(b.target);
    };
    let limits = ReadLimits {
        max_records: LOG_PAGE
            .min(b.target.saturating_sub(b.from) as usize)
            .max(1),
        max_bytes: budget,
    };
    match log.read(&b.topic, Position::new(pos.epoch, b.from), limits) {
        Ok(batch) if batch.records.is_empty() => Found::Skip(batch.next_offset),
        Ok(batch) => Found::Records(batch.records),
        Err(LogError::NotRecoverable(nr)) => Found::Skip(nr.first_offset.max(b.from)),
        Err(LogError::Damaged(d)) => {
            // What cannot be read is skipped, never sent as data: the
            // client sees the gap in offsets, and a recovery over it is
            // answered not-recovered (the log counts and logs the damage).
            Found::Skip(d.resume_at.unwrap_or(b.target).max(b.from + 1))
        }
        Err(e) => {
            tracing::warn!(topic = %b.topic, error = %e,
                "catch-up read failed; skipping to the newest messages");
            Found::Skip(b.target)
        }
    }
}

/// Frame what the read found into `out` and move each cursor past it,
/// if the cursor is still where the read started. Returns the frames
/// added.
pub(crate) fn apply(metrics: &Metrics, conn: &Conn, pages: Vec<Page>, out: &mut Vec<Bytes>) -> u64 {
    let e2e = conn.e2e();
    let mut frames = 0;
    let mut ob = conn.outbox.lock();
    for Page { behind, found } in pages {
        let Some(sub) = ob.subs.get_mut(&behind.topic) else {
            continue;
        };
        // The generation is checked against the ring itself: a deletion
        // restarts the ring before its next history exists, so a page
        // that found records of that history never passes.
        if sub.cursor != behind.from
            || sub.generation != behind.generation
            || sub.channel.ring.read().generation() != behind.generation
        {
            continue;
        }
        let records = match found {
            Found::Skip(next) => {
                sub.cursor = next.max(behind.from);
                continue;
            }
            Found::Records(records) => records,
        };
        let n = records.len() as u64;
        let mut buf = BytesMut::new();
        match e2e {
            Some(key) => {
                key.seal_payloads_into(&mut buf, records.iter().map(|r| r.payload_ref()));
                Metrics::add(&metrics.frames_encrypted, n);
            }
            None => {
                for r in &records {
                    frame::put_header(&mut buf, frame::TEXT, r.payload_len());
                    buf.extend_from_slice(r.payload_ref());
                }
            }
        }
        out.push(buf.freeze());
        sub.cursor = records.last().map_or(behind.from, |r| r.offset() + 1);
        Metrics::add(&metrics.replayed_from_log, n);
        frames += n;
    }
    frames
}

#[cfg(test)]
mod tests;
