//! Presence through real sockets: joins and leaves per user, data updates,
//! limits, coalescing, and cleanup after a restart.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use support::*;
use wse::{AppEvent, ServerConfig};

fn config() -> ServerConfig {
    ServerConfig {
        presence_enabled: true,
        presence_tick: Duration::from_millis(20),
        ..ServerConfig::default()
    }
}

fn jwt_config() -> ServerConfig {
    ServerConfig {
        jwt: support::jwt::hs256_config().jwt,
        ..config()
    }
}

/// A client of `user` whose connection id the app learned.
async fn join_as(ts: &TestServer, events: &mut Events<'_>, user: &str) -> (Client, String) {
    let token = support::jwt::hs256(user);
    let mut c = Client::connect(
        &ts.url(""),
        &[("Authorization", &format!("Bearer {token}"))],
    )
    .await;
    c.expect_type("server_ready").await;
    let (conn, who) = events.auth_connect().await;
    assert_eq!(who, user);
    (c, conn)
}

/// The next presence event of the app (other events skipped).
async fn next_presence(events: &mut Events<'_>) -> (String, String, String, Value) {
    loop {
        match events.next().await {
            AppEvent::PresenceJoin {
                topic,
                user_id,
                data,
            } => return ("join".into(), topic, user_id, data),
            AppEvent::PresenceLeave {
                topic,
                user_id,
                data,
            } => return ("leave".into(), topic, user_id, data),
            AppEvent::PresenceUpdate {
                topic,
                user_id,
                data,
            } => return ("update".into(), topic, user_id, data),
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_join_and_one_leave_per_user_however_many_connections() {
    let ts = TestServer::start(jwt_config());
    let mut events = Events::new(&ts.server);
    let (mut watcher, watcher_id) = join_as(&ts, &mut events, "watcher").await;
    ts.server
        .subscribe(&watcher_id, &["room".into()], None)
        .unwrap();
    let (a1, a1_id) = join_as(&ts, &mut events, "alice").await;
    let (a2, a2_id) = join_as(&ts, &mut events, "alice").await;
    let data = json!({"status": "online"});
    ts.server
        .subscribe_with_presence(&a1_id, &["room".into()], None, Some(&data))
        .unwrap();
    assert_eq!(
        next_presence(&mut events).await,
        ("join".into(), "room".into(), "alice".into(), data.clone())
    );
    let frame = watcher.expect_type("presence_join").await;
    assert_eq!(
        frame,
        json!({"c":"WSE","p":{"data":{"status":"online"},"user_id":"alice"},"t":"presence_join"})
    );
    ts.server
        .subscribe_with_presence(&a2_id, &["room".into()], None, Some(&data))
        .unwrap();
    assert_eq!(ts.server.presence_stats("room"), (1, 2));
    let members = ts.server.presence("room");
    assert_eq!(members["alice"], (2, data.clone()));
    drop(a1);
    // The first connection's leave is not the user's: no event. The second is.
    drop(a2);
    loop {
        match events.next().await {
            AppEvent::PresenceLeave {
                user_id,
                topic,
                data: d,
            } => {
                assert_eq!(
                    (user_id.as_str(), topic.as_str(), &d),
                    ("alice", "room", &data)
                );
                break;
            }
            AppEvent::PresenceJoin { .. } => panic!("no second join"),
            _ => {}
        }
    }
    let frame = watcher.expect_type("presence_leave").await;
    assert_eq!(frame["p"]["user_id"], "alice");
    assert_eq!(ts.server.presence_stats("room"), (0, 0));
    let h = ts.server.health();
    assert_eq!(h.presence_total_users, Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_joins_subscribe_without_presence_and_updates_reach_everyone() {
    let ts = TestServer::start(ServerConfig {
        presence_max_data_size: 64,
        presence_max_members: 1,
        ..jwt_config()
    });
    let mut events = Events::new(&ts.server);
    let (mut a, a_id) = join_as(&ts, &mut events, "alice").await;
    let (_b, b_id) = join_as(&ts, &mut events, "bob").await;
    // As upstream: data over the limit or a full topic subscribes without
    // presence (counted), not an error.
    let big = json!({"blob": "x".repeat(100)});
    ts.server
        .subscribe_with_presence(&a_id, &["big".into()], None, Some(&big))
        .unwrap();
    assert!(ts.server.presence("big").is_empty(), "not tracked");
    assert_eq!(ts.server.subscriber_count("big"), 1, "but subscribed");
    ts.server
        .subscribe_with_presence(&a_id, &["t".into()], None, Some(&json!({"s": 1})))
        .unwrap();
    ts.server
        .subscribe_with_presence(&b_id, &["t".into()], None, Some(&json!({"s": 1})))
        .unwrap();
    assert_eq!(
        ts.server.subscriber_count("t"),
        2,
        "the subscriptions themselves stand"
    );
    assert_eq!(ts.server.presence("t").len(), 1, "the topic is full");
    assert_eq!(ts.server.health().presence_refused, 2);
    assert_eq!(
        a.expect_type("presence_join").await["p"]["data"],
        json!({"s": 1})
    );
    ts.server.update_presence(&a_id, &json!({"s": 2})).unwrap();
    assert_eq!(
        a.expect_type("presence_update").await["p"]["data"],
        json!({"s": 2})
    );
    loop {
        if let AppEvent::PresenceUpdate { data, .. } = events.next().await {
            assert_eq!(data, json!({"s": 2}));
            break;
        }
    }
    assert!(
        ts.server.update_presence(&b_id, &json!({})).is_err(),
        "bob tracks no presence"
    );
    assert!(
        ts.server
            .update_presence("no-such-conn", &json!({}))
            .is_err()
    );
    assert!(ts.server.update_presence(&a_id, &big).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_and_leave_within_one_tick_send_nothing_and_updates_coalesce() {
    let ts = TestServer::start(ServerConfig {
        presence_tick: Duration::from_millis(400),
        ..jwt_config()
    });
    let mut events = Events::new(&ts.server);
    let (mut w, w_id) = join_as(&ts, &mut events, "watcher").await;
    ts.server.subscribe(&w_id, &["t".into()], None).unwrap();
    let (_q, q_id) = join_as(&ts, &mut events, "quick").await;
    let (_s, s_id) = join_as(&ts, &mut events, "steady").await;
    // Within one tick: quick joins and leaves; steady joins and updates twice.
    ts.server
        .subscribe_with_presence(&q_id, &["t".into()], None, Some(&json!(1)))
        .unwrap();
    ts.server.unsubscribe(&q_id, Some(&["t".into()])).unwrap();
    ts.server
        .subscribe_with_presence(&s_id, &["t".into()], None, Some(&json!("a")))
        .unwrap();
    ts.server.update_presence(&s_id, &json!("b")).unwrap();
    ts.server.update_presence(&s_id, &json!("c")).unwrap();
    let frame = w.expect_type("presence_join").await;
    assert_eq!(
        frame["p"],
        json!({"data": "c", "user_id": "steady"}),
        "one join, latest data"
    );
    // Nothing else came: a marker sent now is the next frame.
    ts.server.send(&w_id, r#"{"t":"marker"}"#).unwrap();
    assert_eq!(w.next_json().await["t"], "marker");
    assert_eq!(
        next_presence(&mut events).await,
        ("join".into(), "t".into(), "steady".into(), json!("c"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_jwt_each_connection_is_its_own_user() {
    let ts = TestServer::start(config());
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let (conn, _) = events.connect().await;
    ts.server
        .subscribe_with_presence(&conn, &["t".into()], None, Some(&json!({"n": 1})))
        .unwrap();
    let f = c.expect_type("presence_join").await;
    assert_eq!(f["p"]["user_id"], conn.as_str());
    assert_eq!(next_presence(&mut events).await.2, conn);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_events_are_not_messages_and_disconnect_comes_after_the_leave() {
    let ts = TestServer::start(ServerConfig {
        recovery_enabled: true,
        ..jwt_config()
    });
    let mut events = Events::new(&ts.server);
    let (c, id) = join_as(&ts, &mut events, "u").await;
    ts.server
        .subscribe_with_presence(&id, &["t".into()], None, Some(&json!({})))
        .unwrap();
    assert_eq!(next_presence(&mut events).await.0, "join");
    drop(c);
    let mut order = Vec::new();
    while order.len() < 2 {
        match events.next().await {
            AppEvent::PresenceLeave { .. } => order.push("leave"),
            AppEvent::Disconnect { .. } => order.push("disconnect"),
            _ => {}
        }
    }
    assert_eq!(order, ["leave", "disconnect"]);
    // The topic's message history holds no presence.
    assert!(ts.server.position("t").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_compact_the_presence_stream() {
    let mut cfg = jwt_config();
    cfg.log.segment_max_bytes = 4096;
    let ts = TestServer::start(cfg);
    let mut events = Events::new(&ts.server);
    let (_a, a_id) = join_as(&ts, &mut events, "alice").await;
    ts.server
        .subscribe_with_presence(&a_id, &["t".into()], None, Some(&json!({"n": 0})))
        .unwrap();
    // Two snapshots (one per 1,024 operations): everything before the
    // first is redundant, and the presence tick deletes it.
    for n in 1..=2100 {
        ts.server.update_presence(&a_id, &json!({"n": n})).unwrap();
    }
    let stream = wse::presence::stream::stream_name("t");
    let log = ts.server.log().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while log.position(&stream).unwrap().first_offset == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the presence stream was never trimmed"
        );
        // No event marks a trim: look again after a presence tick.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let members = ts.server.presence("t");
    assert_eq!(members["alice"].1, json!({"n": 2100}), "{members:?}");
}
