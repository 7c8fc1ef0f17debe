//! End-to-end encryption through real sockets (CLIENT_PROTOCOL.md §13,
//! docs/PROTOCOL.md): the key exchange, every kind of data frame sealed
//! for E2E connections (and untouched for the others), sealed inbound
//! messages, refusals, rekeying, and inbound signature checks.

mod support;

use std::time::Duration;

use futures_util::SinkExt;
use serde_json::{Map, Value, json};
use support::e2e::{E2eClient, client_hello};
use support::*;
use tokio_tungstenite::tungstenite::Message;
use wse::config::SignatureKey;
use wse::{AppEvent, EventDelivery, ServerConfig};

fn msg(i: u64) -> String {
    format!(r#"{{"t":"tick","p":{{"i":{i}}}}}"#)
}

/// Standalone, with the app's events queued (to learn connection ids).
fn with_events() -> ServerConfig {
    ServerConfig {
        event_delivery: EventDelivery::Queue,
        ..standalone()
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_are_sealed_for_e2e_subscribers_and_plain_for_the_others() {
    let ts = TestServer::start(standalone());
    let mut plain = ts.client().await;
    plain.subscribe(&["news"], None).await;
    let mut e = E2eClient::connect(&ts.url("")).await;
    let (reply, _) = e.subscribe(&["news"], None).await;
    assert_eq!(reply["p"]["success"], true, "{reply}");
    for i in 0..5 {
        ts.server.broadcast_local("news", &msg(i)).unwrap();
    }
    for _ in 0..5 {
        // Both see the same stored JSON; only the framing differs.
        let clear = plain.next_text().await;
        let opened = e.next_sealed().await;
        assert_eq!(opened, clear.as_bytes());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_after_reconnect_replays_sealed_from_memory_and_disk() {
    // A fan-out memory of 4 frames: most of the gap is read from the log.
    let ts = TestServer::start(ServerConfig {
        fanout_frames_per_topic: 4,
        ..standalone()
    });
    let mut e = E2eClient::connect(&ts.url("")).await;
    e.subscribe(&["orders"], None).await;
    ts.server.broadcast_local("orders", &msg(0)).unwrap();
    let first = e.next_sealed_json().await;
    let epoch = first["e"].as_str().unwrap().to_owned();
    assert_eq!(first["o"], 0);
    drop(e);

    for i in 1..=40 {
        ts.server.broadcast_local("orders", &msg(i)).unwrap();
    }
    // A new connection, a new key: the gap comes back sealed with it.
    let mut again = E2eClient::connect(&ts.url("")).await;
    let (reply, mut got) = again
        .subscribe(
            &["orders"],
            Some(json!({"orders": {"epoch": epoch, "offset": 0}})),
        )
        .await;
    assert_eq!(
        reply["p"]["recovery"]["orders"]["recovered"], true,
        "{reply}"
    );
    while got.len() < 40 {
        got.push(again.next_sealed_json().await);
    }
    let offsets: Vec<u64> = got.iter().map(|v| v["o"].as_u64().unwrap()).collect();
    assert_eq!(offsets, (1..=40).collect::<Vec<_>>());
    // And live messages continue sealed after the replay.
    ts.server.broadcast_local("orders", &msg(41)).unwrap();
    assert_eq!(again.next_sealed_json().await["o"], 41);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_send_bytes_send_event_and_broadcast_all_are_sealed() {
    let ts = TestServer::start(with_events());
    let mut events = Events::new(&ts.server);
    let mut e = E2eClient::connect(&ts.url("")).await;
    let id = events.connect().await.0;

    ts.server.send(&id, "not even json").unwrap();
    assert_eq!(e.next_sealed().await, b"not even json");
    ts.server.send_bytes(&id, &[0, 1, 2, 255]).unwrap();
    assert_eq!(e.next_sealed().await, [0, 1, 2, 255]);
    let big = "x".repeat(4000);
    // A low compression threshold: sealed frames are never compressed.
    let n = ts
        .server
        .send_event(&id, &obj(json!({"t": "note", "p": {"text": big}})), 16)
        .unwrap();
    let v = e.next_sealed_json().await;
    assert_eq!(
        (v["t"].as_str(), v["p"]["text"].as_str()),
        (Some("note"), Some(big.as_str()))
    );
    assert!(n > 4000, "send_event returns the sealed body's size: {n}");
    ts.server.broadcast_all(r#"{"t":"all"}"#).unwrap();
    assert_eq!(e.next_sealed_json().await["t"], "all");
    ts.server.broadcast_all_bytes(b"raw").unwrap();
    assert_eq!(e.next_sealed().await, b"raw");
    // Each of the five, sealed for this connection alone, is counted.
    assert_eq!(ts.server.health().frames_encrypted, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_msgpack_connection_gets_json_inside_its_sealed_frames() {
    let ts = TestServer::start(with_events());
    let mut events = Events::new(&ts.server);
    let mut e = E2eClient::connect(&ts.url("?format=msgpack")).await;
    let id = events.connect().await.0;
    ts.server
        .send_event(&id, &obj(json!({"t": "m", "p": {"k": 1}})), 0)
        .unwrap();
    // The clients parse E: plaintext as JSON text (an M: payload inside
    // would be dropped by the Python client).
    let v = e.next_sealed_json().await;
    assert_eq!(
        (v["t"].clone(), v["p"]["k"].clone()),
        (json!("m"), json!(1))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sealed_messages_reach_the_app_and_bad_frames_get_clear_errors() {
    let ts = TestServer::start(with_events());
    let mut events = Events::new(&ts.server);
    let mut e = E2eClient::connect(&ts.url("")).await;
    let id = events.connect().await.0;

    e.send_sealed(r#"{"t":"chat","p":{"text":"hi"}}"#).await;
    let v = events.message(&id).await;
    assert_eq!(v["p"]["text"], "hi");

    // A flipped tag bit: refused, connection kept.
    let mut bad = e.seal(br#"{"t":"chat","p":{"text":"evil"}}"#);
    let last = bad.len() - 1;
    bad[last] ^= 1;
    e.c.ws.send(Message::binary(bad)).await.unwrap();
    let err = e.next_plain_json().await;
    assert_eq!(err["p"]["code"], "DECRYPTION_FAILED", "{err}");
    // Too short to hold an IV and a tag.
    e.c.ws
        .send(Message::binary(b"E:short".to_vec()))
        .await
        .unwrap();
    assert_eq!(e.next_plain_json().await["p"]["code"], "DECRYPTION_FAILED");
    // Still usable, and nothing of the bad frames reached the app.
    e.send_sealed(r#"{"t":"chat","p":{"text":"again"}}"#).await;
    assert_eq!(events.message(&id).await["p"]["text"], "again");
    assert_eq!(ts.server.health().decrypt_failures, 2);

    // An E: frame on a connection that never agreed on a key.
    let mut plain = ts.client().await;
    let _ = events.connect().await;
    plain
        .ws
        .send(Message::binary(vec![b'E', b':', 0, 0]))
        .await
        .unwrap();
    let err = plain.expect_type("error").await;
    assert_eq!(err["p"]["code"], "ENCRYPTION_NOT_NEGOTIATED", "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_encryption_off_an_e_prefix_is_just_binary() {
    // No prefix is reserved when the server never agrees encryption: the
    // app gets the bytes as they were sent (Autobahn 12.3.3 echoes a
    // binary message that starts with "E:").
    let ts = TestServer::start(ServerConfig {
        encryption: false,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let (id, _) = events.connect().await;
    c.ws.send(Message::binary(b"E:\n  Gretchen".to_vec()))
        .await
        .unwrap();
    match events.next().await {
        wse::AppEvent::Binary { conn, data } => {
            assert_eq!(conn.to_string(), id);
            assert_eq!(&data[..], b"E:\n  Gretchen");
        }
        other => panic!("expected the binary message, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presence_and_queue_group_deliveries_are_sealed() {
    let ts = TestServer::start(ServerConfig {
        presence_enabled: true,
        presence_tick: Duration::from_millis(20),
        jwt: support::jwt::hs256_config().jwt,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let bearer = |user: &str| format!("Bearer {}", support::jwt::hs256(user));
    let mut watcher =
        E2eClient::connect_with(&ts.url(""), &[("Authorization", &bearer("watcher"))]).await;
    let watcher_id = events.auth_connect().await.0;
    ts.server
        .subscribe(&watcher_id, &["room".into()], None)
        .unwrap();
    ts.server
        .subscribe(&watcher_id, &["jobs".into()], Some("workers"))
        .unwrap();
    let mut alice = Client::connect(&ts.url(""), &[("Authorization", &bearer("alice"))]).await;
    alice.expect_type("server_ready").await;
    let alice_id = events.auth_connect().await.0;
    ts.server
        .subscribe_with_presence(&alice_id, &["room".into()], None, Some(&json!({"s": 1})))
        .unwrap();
    let join = loop {
        let v = watcher.next_sealed_json().await;
        if v["t"] == "presence_join" {
            break v;
        }
    };
    assert_eq!(join["p"]["user_id"], "alice", "{join}");
    // The only member of the queue group gets the job, sealed.
    ts.server.broadcast_local("jobs", &msg(9)).unwrap();
    let job = loop {
        let v = watcher.next_sealed_json().await;
        if v["t"] == "tick" {
            break v;
        }
    };
    assert_eq!(job["p"]["i"], 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_client_key_gets_key_exchange_failed_and_a_plain_session() {
    let ts = TestServer::start(standalone());
    for key in ["not base64!", "AAAA", ""] {
        let mut c = ts.client().await;
        c.expect_type("server_ready").await;
        c.send_json(&client_hello(key)).await;
        let err = c.expect_type("error").await;
        assert_eq!(err["p"]["code"], "KEY_EXCHANGE_FAILED", "{err}");
        let hello = c.expect_type("server_hello").await;
        assert_eq!(hello["p"]["features"]["encryption"], false);
        assert!(hello["p"].get("encryption_public_key").is_none());
        // The session goes on in plaintext.
        c.subscribe(&["t"], None).await;
        ts.server.broadcast_local("t", &msg(1)).unwrap();
        assert_eq!(c.next_text_json().await["t"], "tick");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_is_agreed_once_per_connection() {
    let ts = TestServer::start(standalone());
    let mut e = E2eClient::connect(&ts.url("")).await;
    // A second hello (even with a new key) keeps the first key in force.
    let other = support::e2e::client_hello(e.hello["p"]["encryption_public_key"].as_str().unwrap());
    e.send_sealed(&other.to_string()).await;
    let again = e.next_plain_json().await;
    assert_eq!(again["t"], "server_hello");
    assert_eq!(again["p"]["features"]["encryption"], false);
    assert!(again["p"].get("encryption_public_key").is_none());
    e.subscribe(&["t"], None).await;
    ts.server.broadcast_local("t", &msg(7)).unwrap();
    assert_eq!(e.next_sealed_json().await["p"]["i"], 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_due_before_the_key_exchange_go_out_plain_before_server_hello() {
    let ts = TestServer::start(with_events());
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let id = events.connect().await.0;
    c.expect_type("server_ready").await;
    // The app subscribes the connection and messages flow before (and
    // while) the client asks for encryption.
    ts.server
        .subscribe(&id, &["live".to_owned()], None)
        .unwrap();
    for i in 0..200 {
        ts.server.broadcast_local("live", &msg(i)).unwrap();
    }
    let secretless = E2eClient::agree(c).await;
    let mut e = secretless;
    for i in 200..300 {
        ts.server.broadcast_local("live", &msg(i)).unwrap();
    }
    // Everything before server_hello was plaintext (kept by expect_type),
    // everything after it sealed; nothing lost, nothing twice.
    let mut seen: Vec<u64> =
        e.c.take_backlog()
            .iter()
            .filter(|v| v["t"] == "tick")
            .map(|v| v["o"].as_u64().unwrap())
            .collect();
    while seen.len() < 300 {
        let v = e.next_sealed_json().await;
        seen.push(v["o"].as_u64().unwrap());
    }
    assert_eq!(seen, (0..300).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rekey_interval_closes_e2e_connections_with_4000_and_leaves_the_others() {
    let ts = TestServer::start(ServerConfig {
        e2e_rekey_interval: Some(Duration::from_millis(300)),
        ..standalone()
    });
    let mut plain = ts.client().await;
    plain.subscribe(&["t"], None).await;
    let mut e = E2eClient::connect(&ts.url("")).await;
    let close = e.c.close_frame().await;
    assert_eq!(close, Some(Some((4000, "rekey".to_owned()))));
    ts.server.broadcast_local("t", &msg(1)).unwrap();
    assert_eq!(plain.next_text_json().await["t"], "tick");
    // A reconnect gets a fresh key.
    let again = E2eClient::connect(&ts.url("")).await;
    assert_ne!(
        again.hello["p"]["encryption_public_key"],
        e.hello["p"]["encryption_public_key"]
    );
}

/// `sig` as a client with the shared key computes it.
fn signed(key: &[u8], unsigned: &Value) -> String {
    use base64::Engine as _;
    use hmac::Mac as _;
    let text = unsigned.to_string();
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(text.as_bytes());
    let sig = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!(r#"{},"sig":"{sig}"}}"#, &text[..text.len() - 1])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_signature_key_only_correctly_signed_messages_get_through() {
    let key = b"a key shared with trusted clients".to_vec();
    let ts = TestServer::start(ServerConfig {
        signature_key: Some(SignatureKey(key.clone())),
        ..with_events()
    });
    let mut events = Events::new(&ts.server);
    let mut c = ts.client().await;
    let id = events.connect().await.0;

    let good = signed(&key, &json!({"t": "order", "p": {"qty": 1}}));
    c.send_text(good).await;
    assert_eq!(events.message(&id).await["p"]["qty"], 1);

    let refused = [
        json!({"t": "order", "p": {"qty": 2}}).to_string(),
        signed(b"some other key", &json!({"t": "order", "p": {"qty": 3}})),
        signed(&key, &json!({"t": "order", "p": {"qty": 4}})).replace("\"qty\":4", "\"qty\":400"),
        "plain text".to_owned(),
    ];
    for text in refused {
        c.send_text(text.clone()).await;
        let err = c.expect_type("error").await;
        assert_eq!(err["p"]["code"], "INVALID_SIGNATURE", "{text} -> {err}");
    }
    // Core messages are checked too; a signed subscription works.
    let sub = json!({"c": "WSE", "t": "subscription_update",
        "p": {"action": "subscribe", "topics": ["s"]}});
    c.send_text(signed(&key, &sub)).await;
    assert_eq!(
        c.expect_type("subscription_update").await["p"]["success"],
        true
    );
    // Handshake and heartbeat messages need no signature.
    c.send_json(&json!({"t": "ping", "p": {"timestamp": 1}}))
        .await;
    c.expect_type("PONG").await;
    assert!(
        events
            .ready()
            .iter()
            .all(|e| !matches!(e, AppEvent::Message { .. })),
        "no refused message reached the app"
    );
    assert_eq!(ts.server.health().signature_failures, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_asked_before_client_hello_is_replayed_sealed_then_its_reply() {
    // The TypeScript client sends its recovery request while it generates
    // its key, before its client_hello: the history must not go out in
    // clear meanwhile, and the reply must follow the replayed records.
    let ts = TestServer::start(ServerConfig {
        fanout_frames_per_topic: 4,
        ..standalone()
    });
    for i in 0..30 {
        ts.server.broadcast_local("orders", &msg(i)).unwrap();
    }
    ts.server.log().unwrap().flush().unwrap();
    let epoch = ts.server.position("orders").unwrap().unwrap().epoch;
    let mut c = Client::connect(&ts.url(""), &[]).await;
    c.expect_type("server_ready").await;
    c.send_json(&json!({"c": "WSE", "t": "subscription_update", "p": {
        "action": "subscribe", "topics": ["orders"], "recover": true,
        "recovery": {"orders": {"epoch": epoch.to_string(), "offset": 9}}}}))
        .await;
    // Key generation takes a while; a live message is published meanwhile.
    wait_until("subscribed", || ts.server.subscriber_count("orders") == 1).await;
    ts.server.broadcast_local("orders", &msg(30)).unwrap();
    ts.server.log().unwrap().flush().unwrap();
    let mut e = E2eClient::agree(c).await;
    // Everything before server_hello was plaintext protocol (checked by
    // `expect_type`, which kept it); none of it was topic data.
    let early = e.c.take_backlog();
    assert!(
        early
            .iter()
            .all(|v| v["tp"].is_null() && v["t"] != "subscription_update"),
        "nothing of the topic before the key: {early:?}"
    );
    let mut offsets = Vec::new();
    let reply = loop {
        let v = e.next_sealed_json().await;
        if v["t"] == "subscription_update" {
            break v;
        }
        offsets.push(v["o"].as_u64().unwrap());
    };
    let r = &reply["p"]["recovery"]["orders"];
    assert_eq!(
        (r["recovered"].as_bool(), r["count"].as_u64()),
        (Some(true), Some(20)),
        "{reply}"
    );
    assert_eq!(
        offsets,
        (10..30).collect::<Vec<_>>(),
        "the replay, then the reply"
    );
    assert_eq!(e.next_sealed_json().await["o"], 30, "then live, sealed");
}
