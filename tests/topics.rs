//! Topics through real sockets (PYTHON_API.md §2.6, CLIENT_PROTOCOL.md
//! §9.3): app-driven subscriptions, exact delivery, wildcards, queue
//! groups, ACLs, limits and cleanup, and the core's `subscription_update`
//! and opt-in client `publish`.
//!
//! To show that a client did *not* get something: once a subscriber has
//! received a later message (so the publication was fanned out), the
//! other client is sent a marker with `send`; a connection writes its topic
//! frames before its own queue, so the marker must be its next frame.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Value, json};
use support::*;
use wse::ServerConfig;
use wse::topics::TopicAcl;

fn topics(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

/// `{"c":"U","t":"m","p":<p>}`: what `{"t":"m","p":<p>}` becomes.
fn msg(p: impl std::fmt::Display) -> (String, String) {
    (
        format!(r#"{{"t":"m","p":{p}}}"#),
        format!(r#"{{"c":"U","t":"m","p":{p}}}"#),
    )
}

/// `n` clients and their connection ids.
async fn clients(ts: &TestServer, events: &mut Events<'_>, n: usize) -> Vec<(Client, String)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let c = ts.client().await;
        let id = events.connect().await.0;
        out.push((c, id));
    }
    out
}

/// Nothing is waiting for `c`: a marker sent now is its next frame.
async fn nothing_pending(ts: &TestServer, c: &mut Client, id: &str) {
    ts.server.send(id, "marker").unwrap();
    assert_eq!(c.next_text().await, "marker", "something was pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_local_reaches_exactly_the_subscribers() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut cs = clients(&ts, &mut events, 3).await;
    let ids: Vec<String> = cs.iter().map(|(_, id)| id.clone()).collect();
    ts.server
        .subscribe(&ids[0], &topics(&["room"]), None)
        .unwrap();
    ts.server
        .subscribe(&ids[1], &topics(&["room", "room"]), None)
        .unwrap();
    ts.server
        .subscribe(&ids[1], &topics(&["room"]), None)
        .unwrap(); // idempotent
    ts.server
        .subscribe(&ids[2], &topics(&["other"]), None)
        .unwrap();
    assert_eq!(ts.server.subscriber_count("room"), 2);
    assert_eq!(ts.server.subscriber_count("other"), 1);
    assert_eq!(ts.server.subscriber_count("nobody"), 0);

    let (sent, seen) = msg(1);
    ts.server.broadcast_local("room", &sent).unwrap();
    assert_eq!(cs[0].0.next_text().await, seen);
    assert_eq!(
        cs[1].0.next_text().await,
        seen,
        "one copy despite the repeats"
    );
    nothing_pending(&ts, &mut cs[1].0, &ids[1]).await;
    nothing_pending(&ts, &mut cs[2].0, &ids[2]).await;

    // Unsubscribed: no more messages.
    ts.server
        .unsubscribe(&ids[1], Some(&topics(&["room", "never-subscribed"])))
        .unwrap();
    assert_eq!(ts.server.subscriber_count("room"), 1);
    let (sent, seen) = msg(2);
    ts.server.broadcast_local("room", &sent).unwrap();
    assert_eq!(cs[0].0.next_text().await, seen);
    nothing_pending(&ts, &mut cs[1].0, &ids[1]).await;
    // Subscribing again starts at the newest message.
    ts.server
        .subscribe(&ids[1], &topics(&["room"]), None)
        .unwrap();
    let (sent, seen) = msg(3);
    ts.server.broadcast_local("room", &sent).unwrap();
    assert_eq!(cs[1].0.next_text().await, seen);
    assert_eq!(cs[0].0.next_text().await, seen);
    // Unknown connections are ignored.
    ts.server
        .subscribe("not-an-id", &topics(&["room"]), None)
        .unwrap();
    ts.server
        .unsubscribe("0190f3a4-0000-7000-8000-000000000000", None)
        .unwrap();
    assert_eq!(ts.server.subscriber_count("room"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wildcard_subscriptions_match_published_topic_names() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut cs = clients(&ts, &mut events, 3).await;
    let (wild, q, reference) = (cs[0].1.clone(), cs[1].1.clone(), cs[2].1.clone());
    ts.server
        .subscribe(&wild, &topics(&["news.*"]), None)
        .unwrap();
    ts.server.subscribe(&q, &topics(&["room?"]), None).unwrap();
    let all = topics(&[
        "sports",
        "news",
        "news.sport",
        "news.a.b",
        "room1",
        "room12",
        "room",
    ]);
    ts.server.subscribe(&reference, &all, None).unwrap();

    for (i, topic) in all.iter().enumerate() {
        ts.server.broadcast_local(topic, &msg(i).0).unwrap();
    }
    // The reference subscriber gets all of them, so all were fanned out.
    let mut got = BTreeSet::new();
    for _ in 0..all.len() {
        got.insert(cs[2].0.next_text().await);
    }
    assert_eq!(got.len(), all.len());
    let news: BTreeSet<String> = [msg(2).1, msg(3).1].into_iter().collect();
    let mut wild_got = BTreeSet::new();
    for _ in 0..2 {
        wild_got.insert(cs[0].0.next_text().await);
    }
    assert_eq!(wild_got, news, "news.* gets news.sport and news.a.b only");
    nothing_pending(&ts, &mut cs[0].0, &wild).await;
    assert_eq!(cs[1].0.next_text().await, msg(4).1, "room? gets room1");
    nothing_pending(&ts, &mut cs[1].0, &q).await;
    assert_eq!(ts.server.subscriber_count("news.sport"), 2);

    // A topic that did not exist when the pattern was subscribed.
    ts.server.broadcast_local("news.fresh", &msg(10).0).unwrap();
    assert_eq!(cs[0].0.next_text().await, msg(10).1);
    // Unsubscribing the pattern ends it.
    ts.server
        .unsubscribe(&wild, Some(&topics(&["news.*"])))
        .unwrap();
    assert_eq!(ts.server.subscriber_count("news.sport"), 1);
    ts.server.broadcast_local("news.sport", &msg(11).0).unwrap();
    assert_eq!(cs[2].0.next_text().await, msg(11).1);
    nothing_pending(&ts, &mut cs[0].0, &wild).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_group_gives_each_message_to_one_member_in_turn() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut cs = clients(&ts, &mut events, 4).await;
    for (_, id) in &cs[..3] {
        ts.server
            .subscribe(id, &topics(&["jobs"]), Some("workers"))
            .unwrap();
        ts.server
            .subscribe(id, &topics(&["jobs"]), Some("workers"))
            .unwrap(); // idempotent
    }
    ts.server
        .subscribe(&cs[3].1, &topics(&["jobs"]), None)
        .unwrap();
    assert_eq!(
        ts.server.queue_group_info("jobs"),
        BTreeMap::from([("workers".to_string(), 3)])
    );
    assert_eq!(
        ts.server.subscriber_count("jobs"),
        1,
        "members are not subscribers"
    );

    for i in 0..9 {
        ts.server.broadcast_local("jobs", &msg(i).0).unwrap();
    }
    // The plain subscriber gets all nine, in order.
    for i in 0..9 {
        assert_eq!(cs[3].0.next_text().await, msg(i).1);
    }
    let mut seen = BTreeSet::new();
    let mut residues = BTreeSet::new();
    for (c, id) in cs[..3].iter_mut() {
        let mut mine = Vec::new();
        for _ in 0..3 {
            let v: Value = serde_json::from_str(&c.next_text().await).unwrap();
            mine.push(v["p"].as_i64().unwrap());
        }
        // Round robin: a member gets every third message.
        assert!(mine[1] == mine[0] + 3 && mine[2] == mine[1] + 3, "{mine:?}");
        residues.insert(mine[0] % 3);
        seen.extend(mine);
        nothing_pending(&ts, c, id).await;
    }
    assert_eq!(
        seen,
        (0..9).collect::<BTreeSet<i64>>(),
        "each message exactly once"
    );
    assert_eq!(residues.len(), 3);

    // A member that leaves is skipped; the others share the work.
    let (mut gone, gone_id) = cs.remove(0);
    gone.ws.close(None).await.unwrap();
    events.disconnect(&gone_id).await;
    assert_eq!(
        ts.server.queue_group_info("jobs"),
        BTreeMap::from([("workers".to_string(), 2)])
    );
    for i in 100..104 {
        ts.server.broadcast_local("jobs", &msg(i).0).unwrap();
    }
    let mut seen = BTreeSet::new();
    for (c, _) in cs[..2].iter_mut() {
        for _ in 0..2 {
            let v: Value = serde_json::from_str(&c.next_text().await).unwrap();
            seen.insert(v["p"].as_i64().unwrap());
        }
    }
    assert_eq!(seen, (100..104).collect::<BTreeSet<i64>>());
    for (c, id) in cs[..2].iter_mut() {
        nothing_pending(&ts, c, id).await;
    }
    ts.server.unsubscribe(&cs[0].1, None).unwrap();
    ts.server
        .unsubscribe(&cs[1].1, Some(&topics(&["jobs"])))
        .unwrap();
    assert!(ts.server.queue_group_info("jobs").is_empty());
    assert_eq!(ts.server.subscriber_count("jobs"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_group_message_no_member_can_take_is_counted_as_dropped() {
    // Each member's own queue holds 64 bytes: a larger message fits nowhere.
    let ts = TestServer::start(ServerConfig {
        max_outbound_bytes: 64,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut cs = clients(&ts, &mut events, 1).await;
    ts.server
        .subscribe(&cs[0].1, &topics(&["jobs"]), Some("workers"))
        .unwrap();
    let big = format!("\"{}\"", "x".repeat(200));
    ts.server.broadcast_local("jobs", &msg(big).0).unwrap();
    ts.server.broadcast_local("jobs", &msg(1).0).unwrap();
    // Records are fanned out in order: once the small one arrives, the big
    // one has been refused.
    assert_eq!(cs[0].0.next_text().await, msg(1).1);
    assert_eq!(ts.server.health().slow_consumer_drops, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_topic_acl_denies_first_and_an_empty_allow_list_allows_all() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut cs = clients(&ts, &mut events, 2).await;
    let (a, b) = (cs[0].1.clone(), cs[1].1.clone());
    ts.server
        .set_topic_acl(
            &a,
            TopicAcl::new(["chat.*", "admin.*"], ["admin.*", "chat.secret"]),
        )
        .unwrap();
    ts.server
        .set_topic_acl(&b, TopicAcl::new(Vec::<&str>::new(), ["secret.*"]))
        .unwrap();
    ts.server
        .set_topic_acl("not-an-id", TopicAcl::allow_all())
        .unwrap();
    let wanted = topics(&[
        "chat.room",
        "chat.secret",
        "admin.panel",
        "news",
        "secret.x",
    ]);
    ts.server.subscribe(&a, &wanted, None).unwrap();
    ts.server.subscribe(&b, &wanted, None).unwrap();
    for (topic, n) in [
        ("chat.room", 2),
        ("chat.secret", 1),
        ("admin.panel", 1),
        ("news", 1),
        ("secret.x", 0),
    ] {
        assert_eq!(ts.server.subscriber_count(topic), n, "{topic}");
    }
    // Group joins obey the ACL too.
    ts.server
        .subscribe(&a, &topics(&["news"]), Some("g"))
        .unwrap();
    assert!(ts.server.queue_group_info("news").is_empty());

    ts.server.broadcast_local("chat.secret", &msg(1).0).unwrap();
    assert_eq!(cs[1].0.next_text().await, msg(1).1);
    nothing_pending(&ts, &mut cs[0].0, &a).await;

    // A new ACL replaces the old one for later subscriptions.
    ts.server.set_topic_acl(&a, TopicAcl::allow_all()).unwrap();
    ts.server
        .subscribe(&a, &topics(&["secret.x"]), None)
        .unwrap();
    assert_eq!(ts.server.subscriber_count("secret.x"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsubscribe_all_and_disconnect_leave_no_subscriber_behind() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut cs = clients(&ts, &mut events, 3).await;
    let names = topics(&["t1", "t2", "t3"]);
    for (_, id) in &cs {
        ts.server.subscribe(id, &names, None).unwrap();
    }
    ts.server
        .subscribe(&cs[0].1, &topics(&["t*"]), None)
        .unwrap();
    ts.server
        .subscribe(&cs[1].1, &topics(&["t1"]), Some("grp"))
        .unwrap();
    for t in &names {
        assert_eq!(ts.server.subscriber_count(t), 3, "{t}");
    }

    // unsubscribe(None): everything, patterns and groups too.
    ts.server.unsubscribe(&cs[0].1, None).unwrap();
    for t in &names {
        assert_eq!(ts.server.subscriber_count(t), 2, "{t}");
    }
    ts.server.broadcast_local("t9", &msg(9).0).unwrap();
    ts.server.broadcast_local("t1", &msg(1).0).unwrap();
    assert_eq!(cs[2].0.next_text().await, msg(1).1);
    let id0 = cs[0].1.clone();
    nothing_pending(&ts, &mut cs[0].0, &id0).await;

    // A client that closes, and one the server disconnects.
    let (mut c1, id1) = cs.remove(1);
    c1.ws.close(None).await.unwrap();
    events.disconnect(&id1).await;
    assert!(ts.server.queue_group_info("t1").is_empty());
    let (mut c2, id2) = cs.remove(1);
    ts.server.disconnect(&id2).unwrap();
    assert_eq!(c2.close_frame().await, Some(None), "a Close without status");
    events.disconnect(&id2).await;
    for t in &names {
        assert_eq!(ts.server.subscriber_count(t), 0, "{t}");
    }
    assert_eq!(ts.server.connection_count(), 1);
    ts.server.disconnect("not-an-id").unwrap();
    assert!(ts.server.prometheus_metrics().contains("\nwse_topics 0\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_subscriptions_per_connection_truncates_then_errors() {
    let ts = TestServer::start(ServerConfig {
        max_subscriptions_per_connection: 3,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let cs = clients(&ts, &mut events, 2).await;
    let (a, b) = (cs[0].1.clone(), cs[1].1.clone());
    ts.server.subscribe(&a, &topics(&["a", "b"]), None).unwrap();
    ts.server
        .subscribe(&a, &topics(&["c", "d", "e"]), None)
        .unwrap();
    let counts: Vec<usize> = ["a", "b", "c", "d", "e"]
        .iter()
        .map(|t| ts.server.subscriber_count(t))
        .collect();
    assert_eq!(counts, vec![1, 1, 1, 0, 0], "cut to the one free slot");
    let err = ts.server.subscribe(&a, &topics(&["f"]), None).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Connection {a} reached max subscriptions (3)")
    );
    assert_eq!(ts.server.subscriber_count("f"), 0);
    // After an unsubscribe there is room again.
    ts.server.unsubscribe(&a, Some(&topics(&["a"]))).unwrap();
    ts.server.subscribe(&a, &topics(&["f", "g"]), None).unwrap();
    assert_eq!(
        (
            ts.server.subscriber_count("f"),
            ts.server.subscriber_count("g")
        ),
        (1, 0)
    );

    // Queue-group memberships and patterns count too.
    ts.server
        .subscribe(&b, &topics(&["x"]), Some("grp"))
        .unwrap();
    ts.server
        .subscribe(&b, &topics(&["y.*", "z"]), None)
        .unwrap();
    let err = ts
        .server
        .subscribe(&b, &topics(&["w"]), Some("grp"))
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("Connection {b} reached max subscriptions (3)")
    );
    assert!(ts.server.queue_group_info("w").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_core_answers_subscription_update_when_configured() {
    let ts = TestServer::start(ServerConfig {
        core_subscriptions: true,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let id = events.connect().await.0;
    ts.server
        .set_topic_acl(&id, TopicAcl::new(Vec::<&str>::new(), ["denied.*"]))
        .unwrap();
    let reply = c
        .subscribe(&["chat", "denied.x", "bad\u{1}name", "alerts"], None)
        .await;
    assert_eq!(reply["c"], "WSE");
    let p = &reply["p"];
    assert_eq!(p["action"], "subscribe");
    assert_eq!(p["success"], false);
    assert_eq!(p["success_topics"], json!(["chat", "alerts"]));
    assert_eq!(p["failed_topics"], json!(["denied.x", "bad\u{1}name"]));
    assert!(p["recovery"].get("chat").is_some(), "{reply}");
    assert_eq!(ts.server.subscriber_count("chat"), 1);
    assert_eq!(ts.server.subscriber_count("denied.x"), 0);
    ts.server.broadcast_local("chat", &msg(1).0).unwrap();
    assert_eq!(c.next_text().await, msg(1).1);

    let all_ok = c.subscribe(&["more"], None).await;
    assert_eq!(all_ok["p"]["success"], true);
    assert_eq!(all_ok["p"]["failed_topics"], json!([]));

    c.send_json(&json!({"c": "WSE", "t": "subscription_update",
                        "p": {"action": "unsubscribe", "topics": ["chat", "more"]}}))
        .await;
    let reply = c.next_text_json().await;
    assert_eq!(reply["t"], "subscription_update");
    assert_eq!(reply["p"]["action"], "unsubscribe");
    assert_eq!(reply["p"]["success"], true);
    assert_eq!(reply["p"]["success_topics"], json!(["chat", "more"]));
    assert_eq!(ts.server.subscriber_count("chat"), 0);
    assert_eq!(ts.server.subscriber_count("alerts"), 1);
    // None of it reached the app.
    c.send_json(&json!({"t": "marker"})).await;
    assert_eq!(events.message(&id).await, json!({"t": "marker"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_publish_delivers_allowed_topics_and_denies_the_rest() {
    let ts = TestServer::start(ServerConfig {
        client_publish: true,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut cs = clients(&ts, &mut events, 2).await;
    let (p_id, s_id) = (cs[0].1.clone(), cs[1].1.clone());
    ts.server
        .set_topic_acl(&p_id, TopicAcl::new(["public.*"], Vec::<&str>::new()))
        .unwrap();
    ts.server
        .subscribe(&s_id, &topics(&["public.chat", "private.x"]), None)
        .unwrap();
    let publish = |id: Option<&str>, topic: &str, text: &str| {
        let mut m = json!({"c": "U", "t": "publish",
                           "p": {"topic": topic, "message": {"t": "chat", "p": {"text": text}}}});
        if let Some(id) = id {
            m["id"] = json!(id);
        }
        m
    };

    cs[0]
        .0
        .send_json(&publish(Some("m1"), "public.chat", "hi"))
        .await;
    // The message is re-serialised: compare values, not bytes.
    assert_eq!(
        cs[1].0.next_text_json().await,
        json!({"c": "U", "t": "chat", "p": {"text": "hi"}})
    );
    let ack = cs[0].0.next_text_json().await;
    assert_eq!(ack["t"], "publish_ack", "{ack}");
    assert_eq!(ack["p"]["id"], "m1");
    assert_eq!(ack["p"]["topic"], "public.chat");
    assert_eq!(ack["p"]["offset"], 0);
    assert_eq!(ack["p"]["epoch"].as_str().unwrap().len(), 8);

    // Without an id there is no ack: the next frame is the ack of m2.
    cs[0]
        .0
        .send_json(&publish(None, "public.chat", "quiet"))
        .await;
    cs[0]
        .0
        .send_json(&publish(Some("m2"), "public.chat", "again"))
        .await;
    let ack = cs[0].0.next_text_json().await;
    assert_eq!(
        (
            ack["t"].as_str(),
            ack["p"]["id"].as_str(),
            ack["p"]["offset"].as_u64()
        ),
        (Some("publish_ack"), Some("m2"), Some(2))
    );
    assert_eq!(cs[1].0.next_text_json().await["p"]["text"], "quiet");
    assert_eq!(cs[1].0.next_text_json().await["p"]["text"], "again");

    // Denied by the ACL: an error to the publisher, nothing published.
    cs[0]
        .0
        .send_json(&publish(Some("m3"), "private.x", "leak"))
        .await;
    let err = cs[0].0.next_text_json().await;
    assert_eq!(err["t"], "error");
    assert_eq!(err["p"]["code"], "PUBLISH_DENIED");
    assert_eq!(
        err["p"]["details"],
        json!({"id": "m3", "topic": "private.x"})
    );
    assert!(
        ts.server.position("private.x").unwrap().is_none(),
        "nothing appended"
    );
    ts.server.broadcast_local("private.x", &msg(0).0).unwrap();
    assert_eq!(
        cs[1].0.next_text().await,
        msg(0).1,
        "the denied message never came"
    );

    // Malformed publishes.
    for bad in [
        json!({"t": "publish", "p": {"topic": "public.*", "message": {"t": "x"}}}),
        json!({"t": "publish", "p": {"topic": "public.chat", "message": "text"}}),
        json!({"t": "publish", "p": {"message": {"t": "x"}}}),
    ] {
        cs[0].0.send_json(&bad).await;
        assert_eq!(
            cs[0].0.next_text_json().await["p"]["code"],
            "INVALID_MESSAGE",
            "{bad}"
        );
    }
    // None of it reached the app.
    cs[0].0.send_json(&json!({"t": "marker"})).await;
    assert_eq!(events.message(&p_id).await, json!({"t": "marker"}));

    // Off by default: a publish is just a message for the app.
    let off = TestServer::start(ServerConfig::default());
    let mut off_events = Events::new(&off.server);
    let mut c = off.client().await;
    let id = off_events.connect().await.0;
    let m = publish(Some("m9"), "public.chat", "hi");
    c.send_json(&m).await;
    assert_eq!(off_events.message(&id).await, m);
    assert!(off.server.position("public.chat").unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wildcard_subscription_does_not_deliver_topics_the_acl_denies() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut cs = clients(&ts, &mut events, 2).await;
    let (limited, witness) = (cs[0].1.clone(), cs[1].1.clone());
    ts.server
        .set_topic_acl(
            &limited,
            TopicAcl::new(Vec::<&str>::new(), ["chat.secret*"]),
        )
        .unwrap();
    // `chat.secret` has a channel before the pattern subscription;
    // `chat.secret.new` gets one when it is first published.
    ts.server
        .subscribe(&witness, &topics(&["chat.*", "chat.secret"]), None)
        .unwrap();
    ts.server
        .subscribe(&limited, &topics(&["chat.*"]), None)
        .unwrap();
    assert_eq!(ts.server.subscriber_count("chat.secret"), 1);
    let published = ["chat.secret", "chat.secret.new", "chat.room"];
    for (i, topic) in published.iter().enumerate() {
        ts.server.broadcast_local(topic, &msg(i).0).unwrap();
    }
    let mut got = BTreeSet::new();
    for _ in 0..published.len() {
        got.insert(cs[1].0.next_text().await);
    }
    assert_eq!(got.len(), published.len());
    assert_eq!(
        cs[0].0.next_text().await,
        msg(2).1,
        "denied topics must not arrive"
    );
    nothing_pending(&ts, &mut cs[0].0, &limited).await;
    assert_eq!(ts.server.subscriber_count("chat.secret.new"), 1);
}

/// The app subscribes connections on their Connect event while their
/// clients are already going: nothing may stay subscribed once they are
/// gone. (A `subscribe` that looked the connection up just before its
/// session ended adds the subscriptions after the session's cleanup ran.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_made_while_a_connection_closes_are_released() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let names: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
    for _ in 0..100 {
        let mut raws = Vec::new();
        for _ in 0..10 {
            raws.push(RawWs::connect(ts.addr, "/wse", &[]).await);
        }
        let mut ids = Vec::new();
        while ids.len() < 10 {
            if let wse::AppEvent::Connect { conn, .. } = events.next().await {
                ids.push(conn.to_string());
            }
        }
        // The clients go while the app subscribes them.
        let closer = tokio::spawn(async move { drop(raws) });
        for id in &ids {
            ts.server.subscribe(id, &names, None).unwrap();
        }
        closer.await.unwrap();
    }
    wait_until("all connections gone", || ts.server.connection_count() == 0).await;
    let left: usize = names.iter().map(|t| ts.server.subscriber_count(t)).sum();
    assert_eq!(left, 0, "subscriptions of connections that are gone");
}
