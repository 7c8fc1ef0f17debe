//! Unit tests of the outbound queue and of gathering: frames are never
//! torn, a recovery reply follows its replay, and live messages follow the
//! reply.

use std::sync::Arc;

use bytes::Bytes;

use super::*;
use crate::conn::{ConnId, Pushed};
use crate::fanout::Channel;
use crate::fanout::channel::{Joined, Start};
use crate::rate_limit::TokenBucket;
use crate::ws::frame;

const TOPIC: &str = "chat";

fn conn() -> Arc<Conn> {
    Arc::new(Conn::new(
        ConnId::generate(),
        None,
        false,
        None,
        TokenBucket::new(10.0, 10.0),
        0,
        crate::budget::MemoryBudget::unlimited(),
    ))
}

fn channel(head: u64) -> Arc<Channel> {
    Arc::new(Channel::new(TOPIC.into(), head, 64, 0))
}

/// Frame messages `first..` into the channel's ring, as one run.
fn publish(ch: &Channel, first: u64, payloads: &[&str]) {
    ch.ring
        .write()
        .push_text(first, payloads.iter().map(|p| p.as_bytes()));
}

/// The bytes of text frames carrying `payloads`, back to back.
fn frames(payloads: &[&str]) -> Vec<u8> {
    payloads
        .iter()
        .flat_map(|p| frame::text(p.as_bytes()).to_vec())
        .collect()
}

/// One gathering with `budget`; returns the bytes gathered and the
/// subscriptions found behind their ring.
fn gather_once(
    metrics: &Metrics,
    conn: &Arc<Conn>,
    budget: usize,
) -> (Vec<u8>, Vec<catch_up::Behind>) {
    let mut out = Vec::new();
    let mut behind = Vec::new();
    gather(metrics, conn, budget, &mut out, &mut behind);
    (out.concat(), behind)
}

fn cursor(conn: &Conn) -> (u64, Option<u64>) {
    let ob = conn.outbox.lock();
    let sub = &ob.subs[TOPIC];
    (sub.cursor, sub.replay_until)
}

#[test]
fn pushes_count_bytes_and_skip_empty_buffers() {
    let mut q = OutQueue::default();
    assert!(q.is_empty());
    q.push(Bytes::new());
    assert!(q.is_empty());
    q.push(Bytes::from_static(b"abc"));
    q.push_all(vec![Bytes::from_static(b"de"), Bytes::new()]);
    assert_eq!((q.bytes(), q.bufs.len()), (5, 2));
}

#[test]
fn a_partly_written_frame_is_kept_whole_when_the_rest_is_discarded() {
    let mut q = OutQueue::default();
    q.push(Bytes::from_static(b"0123456789"));
    q.push(Bytes::from_static(b"abcdefghij"));
    q.advance(4);
    assert_eq!(q.bytes(), 16);
    q.discard_unstarted();
    assert_eq!(Vec::from(q.bufs.clone()), [Bytes::from_static(b"456789")]);
    assert_eq!(q.bytes(), 6);
    // The remainder written, nothing is started: all of it may go.
    q.push(Bytes::from_static(b"next"));
    q.advance(6);
    assert!(!q.front_started);
    q.discard_unstarted();
    assert!(q.is_empty());
    assert_eq!(q.bytes(), 0);
}

#[test]
fn a_write_across_buffers_starts_the_one_it_ends_in() {
    let mut q = OutQueue::default();
    q.push(Bytes::from_static(b"012"));
    q.push(Bytes::from_static(b"abcdef"));
    q.push(Bytes::from_static(b"XYZ"));
    q.advance(5);
    q.discard_unstarted();
    assert_eq!(Vec::from(q.bufs.clone()), [Bytes::from_static(b"cdef")]);
    // Written up to a buffer's end: nothing is started.
    let mut q = OutQueue::default();
    q.push(Bytes::from_static(b"012"));
    q.push(Bytes::from_static(b"abc"));
    q.advance(3);
    q.discard_unstarted();
    assert!(q.is_empty());
}

#[test]
fn subscriptions_behind_are_taken_once_with_the_room_left() {
    let mut q = OutQueue::default();
    assert!(q.take_behind().is_none());
    let b = catch_up::Behind {
        topic: TOPIC.into(),
        from: 3,
        target: 9,
        generation: 0,
    };
    q.behind.push(b.clone());
    q.push(Bytes::from(vec![0; 1000]));
    assert_eq!(q.take_behind(), Some((vec![b.clone()], FILL_TARGET - 1000)));
    assert!(q.take_behind().is_none(), "taken");
    q.behind.push(b.clone());
    q.push(Bytes::from(vec![0; FILL_TARGET]));
    assert_eq!(
        q.take_behind(),
        Some((vec![b], 1)),
        "a full queue still reads"
    );
}

#[test]
fn a_reply_waits_for_its_replay_then_goes_before_live_messages() {
    let metrics = Metrics::default();
    let ch = channel(0);
    publish(&ch, 0, &["m0", "m1"]);
    publish(&ch, 2, &["m2"]);
    let c = conn();
    let joined = ch.subscribe(&c, false, Start::Replay { from: 0, cap: 10 });
    assert_eq!(
        joined,
        Joined::Replaying {
            from: 0,
            to: 3,
            in_memory: true
        }
    );
    // Published after the recovery began: live.
    publish(&ch, 3, &["m3", "m4"]);
    assert_eq!(c.push_data(frame::text(b"reply"), 0), Pushed::Plain);
    assert!(c.push_control(frame::text(b"pong"), 0));

    // A small budget: one run of the replay; the reply waits, the
    // protocol frame does not.
    let (got, _) = gather_once(&metrics, &c, 1);
    assert_eq!(got, [frames(&["m0", "m1"]), frames(&["pong"])].concat());
    assert_eq!(cursor(&c), (2, Some(3)));
    // The replay's end, then the reply; no live message yet.
    let (got, _) = gather_once(&metrics, &c, 1 << 20);
    assert_eq!(got, frames(&["m2", "reply"]));
    assert_eq!(cursor(&c), (3, Some(3)));
    // Live messages.
    let (got, _) = gather_once(&metrics, &c, 1 << 20);
    assert_eq!(got, frames(&["m3", "m4"]));
    assert_eq!(cursor(&c), (5, None));
    assert_eq!(Metrics::get(&metrics.frames_sent), 7);
}

#[test]
fn a_reply_behind_a_replay_from_the_log_waits_for_the_log_read() {
    let metrics = Metrics::default();
    // The ring starts at 5: offsets 0..5 are only in the log.
    let ch = channel(5);
    let c = conn();
    let joined = ch.subscribe(&c, false, Start::Replay { from: 0, cap: 10 });
    assert_eq!(
        joined,
        Joined::Replaying {
            from: 0,
            to: 5,
            in_memory: false
        }
    );
    publish(&ch, 5, &["m5", "m6"]);
    assert_eq!(c.push_data(frame::text(b"reply"), 0), Pushed::Plain);

    let (got, behind) = gather_once(&metrics, &c, 1 << 20);
    assert!(got.is_empty(), "neither live messages nor the reply");
    let wanted = catch_up::Behind {
        topic: TOPIC.into(),
        from: 0,
        target: 5,
        generation: 0,
    };
    assert_eq!(behind, [wanted]);
    // Asked again, the same: nothing overtakes the replay.
    let (got, _) = gather_once(&metrics, &c, 1 << 20);
    assert!(got.is_empty());

    // The log read sent 0..5 (see catch_up::apply): the cursor is at the
    // replay's end. The reply goes, live messages wait a round.
    c.outbox.lock().subs.get_mut(TOPIC).unwrap().cursor = 5;
    let (got, behind) = gather_once(&metrics, &c, 1 << 20);
    assert_eq!(got, frames(&["reply"]));
    assert!(behind.is_empty());
    assert_eq!(cursor(&c), (5, None));
    let (got, _) = gather_once(&metrics, &c, 1 << 20);
    assert_eq!(got, frames(&["m5", "m6"]));
}

#[test]
fn an_empty_replay_still_puts_the_reply_before_live_messages() {
    let metrics = Metrics::default();
    let ch = channel(0);
    publish(&ch, 0, &["m0"]);
    let c = conn();
    // The client has everything: nothing to replay.
    ch.subscribe(&c, false, Start::Replay { from: 1, cap: 10 });
    publish(&ch, 1, &["m1"]);
    assert_eq!(c.push_data(frame::text(b"reply"), 0), Pushed::Plain);
    let (got, _) = gather_once(&metrics, &c, 1 << 20);
    assert_eq!(got, frames(&["reply"]));
    let (got, _) = gather_once(&metrics, &c, 1 << 20);
    assert_eq!(got, frames(&["m1"]));
}

#[test]
fn held_data_keeps_topic_messages_back_until_released() {
    let metrics = Metrics::default();
    let ch = channel(0);
    let c = conn();
    ch.subscribe(&c, false, Start::Live { from: 0 });
    publish(&ch, 0, &["m0"]);
    c.hold_data_until(1000);
    let (got, _) = gather_once(&metrics, &c, 1 << 20);
    assert!(got.is_empty());
    assert_eq!(cursor(&c), (0, None));
    c.release_data();
    let (got, _) = gather_once(&metrics, &c, 1 << 20);
    assert_eq!(got, frames(&["m0"]));
}

#[test]
fn an_encrypted_connection_gets_each_topic_message_sealed() {
    let metrics = Metrics::default();
    let ch = channel(0);
    let c = conn();
    ch.subscribe(&c, false, Start::Live { from: 0 });
    let pair = crate::crypto::KeyPair::generate();
    let key = crate::e2e::agree(&pair.public_key_base64()).unwrap().key;
    c.enable_e2e(key, 0).unwrap();
    publish(&ch, 0, &["m0", "m1"]);
    let mut out = Vec::new();
    let mut behind = Vec::new();
    gather(&metrics, &c, 1 << 20, &mut out, &mut behind);
    assert_eq!(out.len(), 1, "sealed into one buffer");
    assert_eq!(Metrics::get(&metrics.frames_encrypted), 2);
    // Two binary frames, each opening to its message.
    let key = c.e2e().unwrap();
    let mut rest = out[0].clone();
    for want in ["m0", "m1"] {
        let len = frame::header_len(0) + 2 + crate::crypto::MIN_SEALED_LEN + want.len();
        let one = rest.split_to(len);
        assert_eq!(key.open(&frame::payload_of(&one)).unwrap(), want.as_bytes());
    }
    assert!(rest.is_empty());
}
