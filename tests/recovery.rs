//! Recovery from the log: replay under a running publisher, paging, disk
//! catch-up, restarts, and the cases that cannot be recovered.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use support::*;
use wse::{Server, ServerConfig};

fn msg(i: u64) -> String {
    format!(r#"{{"t":"tick","p":{{"i":{i}}}}}"#)
}

/// Read stamped messages of `topic` until offset `last`, returning their offsets.
async fn offsets_until(c: &mut Client, topic: &str, last: u64) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        let v = match tokio::time::timeout(std::time::Duration::from_secs(3), c.next_json()).await {
            Ok(v) => v,
            Err(_) => panic!("stuck after {:?}", got.last()),
        };
        if v["tp"] != topic {
            continue;
        }
        let o = v["o"].as_u64().unwrap();
        got.push(o);
        if o >= last {
            return got;
        }
    }
}

fn epoch_of(reply: &Value, topic: &str) -> String {
    reply["p"]["recovery"][topic]["epoch"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_and_live_form_one_gapless_stream_under_a_running_publisher() {
    let ts = TestServer::start(ServerConfig {
        fanout_frames_per_topic: 32,
        recovery_max_messages: 1_000_000,
        ..standalone()
    });
    let server = Arc::new(ts.server);
    // History before the client went away.
    for i in 0..500 {
        server.broadcast_local("race", &msg(i)).unwrap();
    }
    server.log().unwrap().flush().unwrap();
    let mut probe = Client::connect(&format!("ws://{}/wse", ts.addr), &[]).await;
    let epoch = epoch_of(&probe.subscribe(&["race"], None).await, "race");

    // A publisher keeps going while the client recovers.
    let running = Arc::new(AtomicBool::new(true));
    let publisher = {
        let (server, running) = (server.clone(), running.clone());
        std::thread::spawn(move || {
            let mut i = 500u64;
            while running.load(Ordering::Relaxed) || i < 3000 {
                server.broadcast_local("race", &msg(i)).unwrap();
                i += 1;
            }
            i - 1
        })
    };
    let mut c = Client::connect(&format!("ws://{}/wse", ts.addr), &[]).await;
    c.hello().await;
    let reply = c
        .subscribe(
            &["race"],
            Some(json!({"race": {"epoch": epoch, "offset": 99}})),
        )
        .await;
    assert_eq!(reply["p"]["recovery"]["race"]["recovered"], true, "{reply}");
    running.store(false, Ordering::Relaxed);
    let last = publisher.join().unwrap();
    let got = offsets_until(&mut c, "race", last).await;
    let expected: Vec<u64> = (100..=last).collect();
    assert_eq!(got.len(), expected.len(), "no gap, no duplicate");
    assert_eq!(got, expected);
    drop(probe);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_frames_are_byte_identical_to_live_ones() {
    let ts = TestServer::start(standalone());
    let mut live = ts.client().await;
    let epoch_reply = live.subscribe(&["t"], None).await;
    assert!(
        epoch_reply["p"]["recovery"]["t"]["epoch"].is_null(),
        "no history yet"
    );
    for i in 0..5 {
        ts.server.broadcast_local("t", &msg(i)).unwrap();
    }
    let mut live_frames = Vec::new();
    while live_frames.len() < 5 {
        if let Some(tokio_tungstenite::tungstenite::Message::Text(t)) = live.next().await
            && t.contains("\"tick\"")
        {
            live_frames.push(t.to_string());
        }
    }
    let epoch = serde_json::from_str::<Value>(&live_frames[0]).unwrap()["e"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut late = ts.client().await;
    late.send_json(
        &json!({"t":"subscription_update","p":{"action":"subscribe","topics":["t"],
        "recover":true,"recovery":{"t":{"epoch":epoch,"offset":0}}}}),
    )
    .await;
    let mut replayed = Vec::new();
    while replayed.len() < 4 {
        if let Some(tokio_tungstenite::tungstenite::Message::Text(t)) = late.next().await
            && t.contains("\"tick\"")
        {
            replayed.push(t.to_string());
        }
    }
    assert_eq!(replayed, live_frames[1..]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gap_over_the_cap_is_not_recovered_and_one_within_it_wholly() {
    let ts = TestServer::start(ServerConfig {
        recovery_max_messages: 10,
        ..standalone()
    });
    for i in 0..100 {
        ts.server.broadcast_local("p", &msg(i)).unwrap();
    }
    ts.server.log().unwrap().flush().unwrap();
    let mut c = ts.client().await;
    c.hello().await;
    let epoch = epoch_of(&c.subscribe(&["p"], None).await, "p");
    // 94 missed, the cap is 10: nothing is replayed, and the reply says so
    // (no partial replay that looks complete).
    let reply = c
        .subscribe(&["p"], Some(json!({"p": {"epoch": epoch, "offset": 5}})))
        .await;
    let r = &reply["p"]["recovery"]["p"];
    assert_eq!(
        (
            r["recovered"].as_bool(),
            r["count"].as_u64(),
            r["offset"].as_u64()
        ),
        (Some(false), Some(0), Some(99))
    );
    ts.server.broadcast_local("p", &msg(100)).unwrap();
    assert_eq!(offsets_until(&mut c, "p", 100).await, vec![100]);
    // 10 missed: all of them, then the reply, then live messages.
    let reply = c
        .subscribe(&["p"], Some(json!({"p": {"epoch": epoch, "offset": 90}})))
        .await;
    let r = &reply["p"]["recovery"]["p"];
    assert_eq!(
        (
            r["recovered"].as_bool(),
            r["count"].as_u64(),
            r["offset"].as_u64(),
            r["complete"].as_bool()
        ),
        (Some(true), Some(10), Some(100), Some(true))
    );
    let replayed_before_reply: Vec<u64> = c
        .take_backlog()
        .iter()
        .filter_map(|v| v["o"].as_u64())
        .collect();
    assert_eq!(replayed_before_reply, (91..=100).collect::<Vec<_>>());
    assert_eq!(ts.server.health().recovery_not_recovered, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_older_than_memory_is_read_back_from_disk() {
    let ts = TestServer::start(ServerConfig {
        fanout_frames_per_topic: 8,
        recovery_max_messages: 10_000,
        log: wse_log::LogConfig {
            durability: wse_log::Durability::Never,
            tail: wse_log::TailConfig {
                records_per_topic: 4,
                ..Default::default()
            },
            ..Default::default()
        },
        ..standalone()
    });
    let mut c = ts.client().await;
    let _ = c.subscribe(&["d"], None).await;
    let log = ts.server.log().unwrap();
    for i in 0..300 {
        ts.server.broadcast_local("d", &msg(i)).unwrap();
        if i % 5 == 4 {
            // Small batches, so the fan-out memory keeps only the newest.
            log.flush().unwrap();
        }
    }
    let got = offsets_until(&mut c, "d", 299).await;
    assert_eq!(got, (0..300).collect::<Vec<_>>());
    let epoch = ts.server.position("d").unwrap().unwrap().epoch.to_string();
    let mut late = ts.client().await;
    let reply = late
        .subscribe(&["d"], Some(json!({"d": {"epoch": epoch, "offset": 9}})))
        .await;
    assert_eq!(reply["p"]["recovery"]["d"]["count"], 290);
    assert_eq!(
        offsets_until(&mut late, "d", 299).await,
        (10..300).collect::<Vec<_>>()
    );
    let h = ts.server.health();
    assert!(h.recovery_from_disk >= 1, "{h:?}");
    assert!(h.log_disk_reads >= 1, "{h:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unrecoverable_requests_tell_the_client_where_the_topic_stands() {
    let ts = TestServer::start(standalone());
    for i in 0..3 {
        ts.server.broadcast_local("n", &msg(i)).unwrap();
    }
    ts.server.log().unwrap().flush().unwrap();
    let pos = ts.server.position("n").unwrap().unwrap();
    let mut c = ts.client().await;
    c.expect_type("server_ready").await;
    let reply = c
        .subscribe(
            &["n"],
            Some(json!({"n": {"epoch": "0badcafe", "offset": 1}})),
        )
        .await;
    let r = &reply["p"]["recovery"]["n"];
    assert_eq!(r["recovered"], false);
    assert_eq!(r["epoch"], pos.epoch.to_string());
    assert_eq!(r["offset"], 2);
    // Ahead of the topic: not recoverable either.
    let reply = c
        .subscribe(
            &["n"],
            Some(json!({"n": {"epoch": pos.epoch.to_string(), "offset": 50}})),
        )
        .await;
    assert_eq!(reply["p"]["recovery"]["n"]["recovered"], false);
    // The Rust API reports the same.
    let conn = ts.server.connections().unwrap()[0].clone();
    let report = ts.server.subscribe_with_recovery(
        &conn,
        &["n".into(), "empty".into()],
        true,
        Some("zz"),
        Some(1),
    );
    assert_eq!(
        report.unwrap_err().to_string(),
        "Invalid epoch hex string: zz"
    );
    let report = ts
        .server
        .subscribe_with_recovery(
            &conn,
            &["empty".into()],
            true,
            Some(&pos.epoch.to_string()),
            Some(1),
        )
        .unwrap();
    assert!(!report.recovered);
    assert_eq!(report.topics[0].epoch, None);
    assert!(!report.topics[0].recoverable);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acl_applies_to_recovery_too() {
    let ts = TestServer::start(standalone());
    for i in 0..3 {
        ts.server.broadcast_local("secret", &msg(i)).unwrap();
    }
    ts.server.log().unwrap().flush().unwrap();
    let epoch = ts
        .server
        .position("secret")
        .unwrap()
        .unwrap()
        .epoch
        .to_string();
    let mut c = ts.client().await;
    c.expect_type("server_ready").await;
    let conn = ts.server.connections().unwrap()[0].clone();
    ts.server
        .set_topic_acl(
            &conn,
            wse::topics::TopicAcl::new(Vec::<String>::new(), ["secret"]),
        )
        .unwrap();
    let report = ts
        .server
        .subscribe_with_recovery(&conn, &["secret".into()], true, Some(&epoch), Some(0))
        .unwrap();
    assert!(!report.recovered);
    assert!(!report.topics[0].recoverable);
    assert_eq!(report.topics[0].count, 0);
    assert_eq!(ts.server.subscriber_count("secret"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_recovers_what_it_missed_while_the_server_restarted() {
    let dir = tempfile::tempdir().unwrap();
    let config = ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        data_dir: Some(dir.path().to_owned()),
        ..standalone()
    };
    let server = Server::new(config.clone()).unwrap();
    let addr = server.start().unwrap();
    let mut c = Client::connect(&format!("ws://{addr}/wse"), &[]).await;
    let _ = c.subscribe(&["r"], None).await;
    for i in 0..10 {
        server.broadcast_local("r", &msg(i)).unwrap();
    }
    assert_eq!(offsets_until(&mut c, "r", 9).await.len(), 10);
    let epoch = server.position("r").unwrap().unwrap().epoch;
    // The client is away; more is published; the server restarts.
    drop(c);
    for i in 10..20 {
        server.broadcast_local("r", &msg(i)).unwrap();
    }
    server.stop().unwrap();
    let server = Server::new(config).unwrap();
    let addr = server.start().unwrap();
    assert_eq!(
        server.position("r").unwrap().unwrap().epoch,
        epoch,
        "same data, same epoch"
    );
    let mut c = Client::connect(&format!("ws://{addr}/wse"), &[]).await;
    let reply = c
        .subscribe(
            &["r"],
            Some(json!({"r": {"epoch": epoch.to_string(), "offset": 9}})),
        )
        .await;
    assert_eq!(reply["p"]["recovery"]["r"]["recovered"], true, "{reply}");
    assert_eq!(reply["p"]["recovery"]["r"]["count"], 10);
    assert_eq!(
        offsets_until(&mut c, "r", 19).await,
        (10..20).collect::<Vec<_>>()
    );
    server.stop().unwrap();
}
