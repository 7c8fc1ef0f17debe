//! Unit tests of a connection's queue: what is held, taken, refused and
//! sealed, which the session's writer relies on.

use super::*;
use crate::crypto::KeyPair;
use crate::ws::frame;

fn conn() -> Conn {
    Conn::new(
        ConnId::generate(),
        None,
        false,
        None,
        TokenBucket::new(10.0, 10.0),
        0,
        crate::budget::MemoryBudget::unlimited(),
    )
}

fn key() -> E2eKey {
    crate::e2e::agree(&KeyPair::generate().public_key_base64())
        .unwrap()
        .key
}

/// Frames from static text.
fn bytes(frames: &[&'static str]) -> Vec<Bytes> {
    frames
        .iter()
        .map(|f| Bytes::from_static(f.as_bytes()))
        .collect()
}

fn queued(c: &Conn) -> Vec<(Bytes, bool)> {
    let ob = c.outbox.lock();
    ob.queue.iter().map(|q| (q.frame.clone(), q.data)).collect()
}

/// The payload a sealed data frame carries, opened with the
/// connection's key.
fn opened(c: &Conn, sealed: &Bytes) -> Vec<u8> {
    c.e2e().unwrap().open(&frame::payload_of(sealed)).unwrap()
}

fn outbox(frames: &[(&'static str, bool)]) -> Outbox {
    let mut ob = Outbox::default();
    for (f, data) in frames {
        ob.queued_bytes += f.len();
        ob.queue.push_back(Queued {
            frame: Bytes::from_static(f.as_bytes()),
            data: *data,
        });
    }
    ob
}

#[test]
fn holding_data_takes_protocol_frames_and_keeps_data_in_order() {
    let mut ob = outbox(&[("d1", true), ("p1", false), ("d22", true), ("p22", false)]);
    let mut out = vec![Bytes::from_static(b"earlier")];
    assert_eq!(ob.take_queued(true, &mut out), 2);
    assert_eq!(out, bytes(&["earlier", "p1", "p22"]));
    let kept: Vec<_> = ob.queue.iter().map(|q| (q.frame.clone(), q.data)).collect();
    assert_eq!(
        kept,
        [
            (Bytes::from_static(b"d1"), true),
            (Bytes::from_static(b"d22"), true)
        ]
    );
    assert_eq!(ob.queued_bytes, 5, "the bytes of the data kept");

    // Released: the data goes, in its order.
    let mut out = Vec::new();
    assert_eq!(ob.take_queued(false, &mut out), 2);
    assert_eq!(out, bytes(&["d1", "d22"]));
    assert!(ob.queue.is_empty());
    assert_eq!(ob.queued_bytes, 0);
}

#[test]
fn taking_everything_keeps_the_queue_order() {
    let mut ob = outbox(&[("d1", true), ("p1", false), ("d2", true)]);
    let mut out = Vec::new();
    assert_eq!(ob.take_queued(false, &mut out), 3);
    assert_eq!(out, bytes(&["d1", "p1", "d2"]));
    assert_eq!(ob.queued_bytes, 0);
}

#[test]
fn pushes_are_refused_past_the_byte_limit_and_fit_up_to_it() {
    let c = conn();
    assert_eq!(c.push_data(Bytes::from_static(b"12345"), 8), Pushed::Plain);
    assert_eq!(
        c.push_data(Bytes::from_static(b"6789"), 8),
        Pushed::Refused,
        "5 + 4 bytes pass the limit of 8"
    );
    assert!(!c.push_control(Bytes::from_static(b"6789"), 8));
    assert!(c.push_control(Bytes::from_static(b"678"), 8), "exactly 8");
    assert_eq!(c.outbox.lock().queued_bytes, 8);
    assert_eq!(
        queued(&c),
        [
            (Bytes::from_static(b"12345"), true),
            (Bytes::from_static(b"678"), false)
        ]
    );
    // No limit.
    assert_eq!(c.push_data(Bytes::from(vec![0; 100]), 0), Pushed::Plain);
    assert!(c.push_control(Bytes::from(vec![0; 100]), 0));
    assert_eq!(c.outbox.lock().queued_bytes, 208);
}

#[test]
fn a_closing_connection_queues_nothing() {
    let c = conn();
    c.request_close(CloseRequest {
        code: Some(1000),
        reason: "bye".into(),
        flush: true,
    });
    assert_eq!(c.push_data(Bytes::from_static(b"x"), 0), Pushed::Refused);
    assert!(!c.push_control(Bytes::from_static(b"x"), 0));
    assert!(queued(&c).is_empty());
    assert_eq!(c.outbox.lock().queued_bytes, 0);
}

#[test]
fn pushes_signal_the_connection() {
    let c = conn();
    c.clear_signal();
    assert!(c.push_control(Bytes::from_static(b"p"), 0));
    assert!(c.signalled.load(Ordering::Acquire));
    c.clear_signal();
    assert_eq!(c.push_data(Bytes::from_static(b"d"), 0), Pushed::Plain);
    assert!(c.signalled.load(Ordering::Acquire));
    c.clear_signal();
    assert_eq!(c.push_data(Bytes::from_static(b"d"), 1), Pushed::Refused);
    assert!(!c.signalled.load(Ordering::Acquire), "nothing queued");
}

#[test]
fn data_is_held_until_released_and_release_wakes_once() {
    let c = conn();
    assert_eq!(c.data_held_until(), None);
    c.hold_data_until(1500);
    assert_eq!(c.data_held_until(), Some(1500));
    c.clear_signal();
    c.release_data();
    assert_eq!(c.data_held_until(), None);
    assert!(c.signalled.load(Ordering::Acquire), "woken to send data");
    c.clear_signal();
    c.release_data();
    assert!(
        !c.signalled.load(Ordering::Acquire),
        "releasing what is not held wakes nobody"
    );
}

#[test]
fn enabling_e2e_returns_earlier_protocol_frames_and_seals_data_in_place() {
    let c = conn();
    assert!(c.push_control(Bytes::from_static(b"pong"), 0));
    assert_eq!(c.push_data(frame::text(b"reply 1"), 0), Pushed::Plain);
    assert!(c.push_control(Bytes::from_static(b"ping"), 0));
    assert_eq!(c.push_data(frame::text(b"reply 2"), 0), Pushed::Plain);

    let early = c.enable_e2e(key(), 42).expect("first key");
    assert_eq!(early, bytes(&["pong", "ping"]));
    assert_eq!(c.e2e_since_ms.load(Ordering::Relaxed), 42);
    let q = queued(&c);
    assert_eq!(q.len(), 2);
    assert!(q.iter().all(|(_, data)| *data));
    assert_eq!(opened(&c, &q[0].0), b"reply 1");
    assert_eq!(opened(&c, &q[1].0), b"reply 2");
    let bytes: usize = q.iter().map(|(f, _)| f.len()).sum();
    assert_eq!(c.outbox.lock().queued_bytes, bytes);

    // Once only; and data pushed later is sealed, protocol frames not.
    assert!(c.enable_e2e(key(), 43).is_none());
    assert_eq!(c.push_data(frame::text(b"reply 3"), 0), Pushed::Sealed);
    assert!(c.push_control(Bytes::from_static(b"pong"), 0));
    let q = queued(&c);
    assert_eq!(opened(&c, &q[2].0), b"reply 3");
    assert_eq!(q[3], (Bytes::from_static(b"pong"), false));
}

#[test]
fn the_limit_counts_the_sealed_size() {
    let c = conn();
    c.enable_e2e(key(), 0).unwrap();
    let plain = frame::text(b"hello");
    let sealed_len = c.e2e().unwrap().seal_frame(&plain).len();
    assert!(sealed_len > plain.len());
    assert_eq!(c.push_data(plain.clone(), sealed_len - 1), Pushed::Refused);
    assert_eq!(c.push_data(plain, sealed_len), Pushed::Sealed);
    assert_eq!(c.outbox.lock().queued_bytes, sealed_len);
}

#[test]
fn pongs_queue_up_to_a_bound_then_the_newest_replaces_the_last() {
    use crate::conn::PONGS_QUEUED;
    let pong = |i: usize| Bytes::from(format!("p{i}"));
    let c = conn();
    for i in 0..PONGS_QUEUED {
        assert!(c.push_pong(pong(i), PongKind::Frame, 0));
    }
    // Every ping so far has its own answer; past the bound the newest
    // replaces the last.
    assert!(c.push_pong(Bytes::from_static(b"newest"), PongKind::Frame, 0));
    let got: Vec<Bytes> = queued(&c).into_iter().map(|(f, _)| f).collect();
    let mut want: Vec<Bytes> = (0..PONGS_QUEUED - 1).map(pong).collect();
    want.push(Bytes::from_static(b"newest"));
    assert_eq!(got, want);
    let bytes: usize = want.iter().map(Bytes::len).sum();
    assert_eq!(c.outbox.lock().queued_bytes, bytes);
    // A text PONG is another kind, and another frame in between starts a
    // new run: each is queued after what is there.
    assert!(c.push_pong(Bytes::from_static(b"T1"), PongKind::Text, 0));
    assert!(c.push_control(Bytes::from_static(b"err"), 0));
    assert!(c.push_pong(Bytes::from_static(b"p-after"), PongKind::Frame, 0));
    let tail: Vec<Bytes> = queued(&c)
        .into_iter()
        .rev()
        .take(3)
        .map(|(f, _)| f)
        .collect();
    assert_eq!(tail, [&b"p-after"[..], b"err", b"T1"]);
    // Once taken, pongs are queued anew; the limit counts a replacement's
    // size.
    let mut out = Vec::new();
    c.outbox.lock().take_queued(false, &mut out);
    for i in 0..PONGS_QUEUED {
        assert!(
            c.push_pong(Bytes::from_static(b"p6"), PongKind::Frame, 0),
            "{i}"
        );
    }
    let limit = PONGS_QUEUED * 2;
    assert!(!c.push_pong(Bytes::from_static(b"p777"), PongKind::Frame, limit));
    assert!(c.push_pong(Bytes::from_static(b"p7"), PongKind::Frame, limit));
}
