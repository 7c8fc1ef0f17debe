//! Unit tests of the `send_event` pieces that need no server: the
//! envelope and the rate limit with its once-per-second notices.

use serde_json::json;

use super::*;
use crate::conn::ConnId;
use crate::rate_limit::TokenBucket;

fn conn(capacity: f64) -> Conn {
    // No refill: the bucket holds `capacity` tokens for the whole test.
    Conn::new(
        ConnId::generate(),
        None,
        false,
        None,
        TokenBucket::new(capacity, 0.0),
        0,
        crate::budget::MemoryBudget::unlimited(),
    )
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object"),
    }
}

/// The protocol frames queued for `c`, as text.
fn control_frames(c: &Conn) -> Vec<String> {
    let ob = c.outbox.lock();
    assert!(ob.queue.iter().all(|q| !q.data), "only protocol frames");
    ob.queue
        .iter()
        .map(|q| String::from_utf8(frame::payload_of(&q.frame).to_vec()).unwrap())
        .collect()
}

#[test]
fn the_envelope_computes_c_sets_v_and_fills_what_is_missing() {
    let sends = SendLedger::new();
    let event = object(json!({"t": "order_snapshot", "c": "X", "v": 7, "p": {"a": 1}}));
    let env = envelope(&sends, &event);
    assert_eq!(env["c"], category_for(Some("order_snapshot")).as_str());
    assert_eq!(env["v"], 1);
    assert_eq!(env["p"], json!({"a": 1}));
    assert_eq!(env["seq"], 0);
    let id = env["id"].as_str().unwrap();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{id}");
    assert!(
        env["ts"].as_str().is_some_and(|ts| ts.ends_with('Z')),
        "{}",
        env["ts"]
    );
    assert_eq!(envelope(&sends, &event)["seq"], 1, "numbered in order");
}

#[test]
fn the_envelope_keeps_the_events_own_id_seq_and_ts() {
    let sends = SendLedger::new();
    let event = object(json!({"t": "x", "id": "e-1", "seq": 42, "ts": "then"}));
    let env = envelope(&sends, &event);
    assert_eq!(
        (&env["id"], &env["seq"], &env["ts"]),
        (&json!("e-1"), &json!(42), &json!("then"))
    );
    assert_eq!(sends.next_seq(), 0, "no number taken");
}

#[test]
fn the_rate_limit_warns_once_then_refuses_with_one_error_per_second() {
    let metrics = Metrics::default();
    let c = conn(5.0);
    for _ in 0..4 {
        assert!(take_token(&metrics, 0, &c));
    }
    assert!(
        control_frames(&c).is_empty(),
        "1 token of 5 left: no warning"
    );
    // The last token: less than 20 % left.
    assert!(take_token(&metrics, 0, &c));
    let frames = control_frames(&c);
    assert_eq!(frames, [control::rate_limit_warning(5.0, 0.0)]);
    // Refused, with one error frame within the second.
    assert!(!take_token(&metrics, 0, &c));
    assert!(!take_token(&metrics, 0, &c));
    assert_eq!(Metrics::get(&metrics.rate_limited), 2);
    let frames = control_frames(&c);
    assert_eq!(frames[1..], [control::RATE_LIMITED]);
}

#[test]
fn a_notice_the_queue_has_no_room_for_is_counted_dropped() {
    let metrics = Metrics::default();
    let c = conn(0.0);
    assert!(!take_token(&metrics, 1, &c));
    assert!(control_frames(&c).is_empty());
    assert_eq!(Metrics::get(&metrics.slow_consumer_drops), 1);
    assert_eq!(Metrics::get(&metrics.rate_limited), 1);
}
