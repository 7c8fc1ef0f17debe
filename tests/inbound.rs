//! Inbound messages: a full queue pushes back on clients instead of
//! dropping, order is kept, and one flooding client cannot starve others.

mod support;

use serde_json::json;
use support::*;
use wse::{AppEvent, ServerConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_holds_clients_back_and_loses_nothing() {
    let ts = TestServer::start(ServerConfig {
        max_inbound_queue: 64,
        inbound_rate_capacity: 1e9,
        inbound_rate_refill: 1e9,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let (conn, _) = events.connect().await;
    const N: u64 = 5000;
    // The app does not drain while the client sends far more than fits.
    let sender = tokio::spawn(async move {
        for i in 0..N {
            c.send_json(&json!({"t": "m", "p": {"i": i}})).await;
        }
        c
    });
    let mut got = Vec::new();
    while got.len() < N as usize {
        match events.next().await {
            AppEvent::Message { value, conn: from } => {
                assert_eq!(from.to_string(), conn);
                got.push(value["p"]["i"].as_u64().unwrap());
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(ts.server.inbound_queue_depth() <= 64);
    }
    let _c = sender.await.unwrap();
    assert!(got.iter().copied().eq(0..N), "every message, in order");
    assert_eq!(ts.server.inbound_dropped_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooding_client_is_rate_limited_so_others_get_through() {
    let ts = TestServer::start(ServerConfig {
        inbound_rate_capacity: 20.0,
        inbound_rate_refill: 20.0,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut flood = ts.client().await;
    let (flooder, _) = events.connect().await;
    let mut quiet = ts.client().await;
    let (quiet_id, _) = events.connect().await;
    let sender = tokio::spawn(async move {
        for i in 0..2000 {
            flood.send_json(&json!({"t": "flood", "p": {"i": i}})).await;
        }
        flood
    });
    // Once the flood is under way, the quiet client says one thing.
    let mut seen_flood = 0;
    while seen_flood < 10 {
        if let AppEvent::Message { conn, .. } = events.next().await {
            assert_eq!(conn.to_string(), flooder);
            seen_flood += 1;
        }
    }
    quiet.send_json(&json!({"t": "hello"})).await;
    loop {
        match events.next().await {
            AppEvent::Message { conn, value } if conn.to_string() == quiet_id => {
                assert_eq!(value["t"], "hello");
                break;
            }
            AppEvent::Message { .. } => seen_flood += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        seen_flood < 500,
        "the quiet client waited behind {seen_flood} flood messages"
    );
    drop(sender);
}
