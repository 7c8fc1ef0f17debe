//! Unit tests of the catch-up read with a real log: pages are framed and
//! move the cursor, a cursor moved meanwhile is left alone, and what the
//! log cannot read is skipped, never sent.

use std::path::Path;
use std::sync::Arc;

use wse_log::record::HEADER_LEN;
use wse_log::{DirReader, Durability, LogConfig, RecordKind, SegmentSummary};

use super::*;
use crate::conn::ConnId;
use crate::fanout::Channel;
use crate::fanout::channel::Start;
use crate::rate_limit::TokenBucket;

const TOPIC: &str = "chat";
/// Payload bytes of every record, so a record's place in its segment
/// follows from its offset.
const PAYLOAD: usize = 40;

fn config() -> LogConfig {
    LogConfig {
        durability: Durability::Never,
        segment_max_bytes: 1024,
        index_interval_bytes: 256,
        ..LogConfig::default()
    }
}

fn payload(offset: u64) -> Vec<u8> {
    let mut p = format!("record {offset}:").into_bytes();
    p.resize(PAYLOAD, b'a' + (offset % 26) as u8);
    p
}

/// A log holding records `0..n` of `TOPIC`.
fn log_with(dir: &Path, n: u64) -> Log {
    let log = Log::open(dir, config()).unwrap();
    for o in 0..n {
        assert_eq!(
            log.append(TOPIC, RecordKind::Message, &payload(o))
                .unwrap()
                .offset,
            o
        );
    }
    log
}

/// A connection recovering `TOPIC` from offset 0; its ring starts at
/// `head`, so everything before comes from the log.
fn recovering(head: u64) -> Arc<Conn> {
    let conn = Arc::new(Conn::new(
        ConnId::generate(),
        None,
        false,
        None,
        TokenBucket::new(10.0, 10.0),
        0,
        crate::budget::MemoryBudget::unlimited(),
    ));
    let ch = Arc::new(Channel::new(TOPIC.into(), head, 64, 0));
    ch.subscribe(&conn, false, Start::Replay { from: 0, cap: 1000 });
    conn
}

fn cursor(conn: &Conn) -> u64 {
    conn.outbox.lock().subs[TOPIC].cursor
}

fn behind(from: u64, target: u64) -> Behind {
    Behind {
        topic: TOPIC.into(),
        from,
        target,
        generation: 0,
    }
}

/// One read and apply for the connection's cursor up to `target`; returns
/// the frames added and their bytes.
fn catch_up(log: &Log, conn: &Conn, target: u64, metrics: &Metrics) -> (u64, Vec<u8>) {
    let pages = read(log, vec![behind(cursor(conn), target)], 1 << 20);
    let mut out = Vec::new();
    let n = apply(metrics, conn, pages, &mut out);
    (n, out.concat())
}

fn frames(offsets: impl Iterator<Item = u64>) -> Vec<u8> {
    offsets
        .flat_map(|o| frame::text(&payload(o)).to_vec())
        .collect()
}

#[test]
fn a_page_is_framed_and_moves_the_cursor_up_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 10);
    let conn = recovering(10);
    let metrics = Metrics::default();
    assert_eq!(catch_up(&log, &conn, 4, &metrics), (4, frames(0..4)));
    assert_eq!(cursor(&conn), 4);
    assert_eq!(catch_up(&log, &conn, 10, &metrics), (6, frames(4..10)));
    assert_eq!(cursor(&conn), 10);
    assert_eq!(Metrics::get(&metrics.replayed_from_log), 10);
}

#[test]
fn a_page_stops_at_the_byte_budget() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 10);
    let conn = recovering(10);
    let pages = read(&log, vec![behind(0, 10)], 3 * PAYLOAD);
    let mut out = Vec::new();
    let n = apply(&Metrics::default(), &conn, pages, &mut out);
    assert!((1..10).contains(&n), "{n} records");
    assert_eq!(cursor(&conn), n);
    assert_eq!(out.concat(), frames(0..n));
}

#[test]
fn a_cursor_moved_during_the_read_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = log_with(dir.path(), 10);
    let conn = recovering(10);
    let pages = read(&log, vec![behind(0, 10)], 1 << 20);
    // The slow-consumer policy skipped it ahead meanwhile.
    conn.outbox.lock().subs.get_mut(TOPIC).unwrap().cursor = 7;
    let metrics = Metrics::default();
    let mut out = Vec::new();
    assert_eq!(apply(&metrics, &conn, pages, &mut out), 0);
    assert!(out.is_empty());
    assert_eq!(cursor(&conn), 7);
    assert_eq!(Metrics::get(&metrics.replayed_from_log), 0);
}

#[test]
fn a_topic_the_log_does_not_have_skips_to_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(dir.path(), config()).unwrap();
    let conn = recovering(6);
    assert_eq!(catch_up(&log, &conn, 6, &Metrics::default()), (0, vec![]));
    assert_eq!(cursor(&conn), 6);
}

/// Byte position of the record of `offset` in `seg` (records of one size).
fn record_at(seg: &SegmentSummary, offset: u64) -> u64 {
    let record = (HEADER_LEN + PAYLOAD) as u64;
    let header = seg.bytes - (seg.end_offset - seg.base_offset) * record;
    header + (offset - seg.base_offset) * record
}

#[test]
fn a_damaged_record_is_skipped_never_sent() {
    const N: u64 = 60;
    let dir = tempfile::tempdir().unwrap();
    log_with(dir.path(), N).close().unwrap();
    let segs = DirReader::open(dir.path())
        .unwrap()
        .topic(TOPIC)
        .unwrap()
        .unwrap()
        .segments;
    assert!(segs.len() >= 3, "{} segments", segs.len());
    let seg = &segs[1];
    let bad = seg.base_offset + 2;
    let mut bytes = std::fs::read(&seg.path).unwrap();
    bytes[(record_at(seg, bad) + HEADER_LEN as u64 + 5) as usize] ^= 0x40;
    std::fs::write(&seg.path, bytes).unwrap();
    let log = Log::open(dir.path(), config()).unwrap();

    let conn = recovering(N);
    let metrics = Metrics::default();
    // Up to the damage, then past it with nothing sent, then the rest.
    assert_eq!(catch_up(&log, &conn, N, &metrics), (bad, frames(0..bad)));
    assert_eq!(catch_up(&log, &conn, N, &metrics), (0, vec![]));
    assert_eq!(cursor(&conn), bad + 1);
    let (n, got) = catch_up(&log, &conn, N, &metrics);
    assert_eq!((n, got), (N - bad - 1, frames(bad + 1..N)));
    assert_eq!(cursor(&conn), N);
    assert_eq!(log.stats().damaged_reads, 1);
}
