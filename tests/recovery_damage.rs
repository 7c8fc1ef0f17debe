//! Damage never looks like success, seen from a client: after a byte of a
//! stored record flips on disk, a recovery whose missed range crosses it is
//! answered not-recovered (and counted), while one that starts after it
//! still gets every record, in order, byte for byte.

mod support;

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use support::*;
use wse::ServerConfig;

const TOPIC: &str = "dmg";
const N: u64 = 200;

fn msg(i: u64) -> String {
    format!(r#"{{"t":"tick","p":{{"mark":"m{i:05}"}}}}"#)
}

/// Every file under `dir`.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Flip a byte inside the stored payload of the record marked `mark`.
fn flip_record(dir: &Path, mark: &str) {
    for f in files(dir) {
        let mut bytes = std::fs::read(&f).unwrap();
        if let Some(at) = bytes.windows(mark.len()).position(|w| w == mark.as_bytes()) {
            bytes[at + 1] ^= 0x01;
            std::fs::write(&f, bytes).unwrap();
            return;
        }
    }
    panic!("no stored record holds {mark}");
}

async fn recover(url: &str, epoch: &str, last_seen: u64) -> (Client, Value) {
    let mut c = Client::connect(url, &[]).await;
    c.expect_type("server_ready").await;
    c.send_json(&json!({"c": "WSE", "t": "subscription_update", "p": {
        "action": "subscribe", "topics": [TOPIC], "recover": true,
        "recovery": {TOPIC: {"epoch": epoch, "offset": last_seen}}}}))
        .await;
    let reply = c.expect_type("subscription_update").await;
    (c, reply["p"]["recovery"][TOPIC].clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_across_a_damaged_record_is_not_recovered_and_one_after_it_is() {
    let mut config = ServerConfig {
        recovery_max_messages: 1_000,
        fanout_frames_per_topic: 16,
        ..standalone()
    };
    config.log.segment_max_bytes = 4096;
    let ts = TestServer::start(config);
    for i in 0..N {
        ts.server.publish(TOPIC, &msg(i)).unwrap();
    }
    let epoch = ts
        .server
        .position(TOPIC)
        .unwrap()
        .unwrap()
        .epoch
        .to_string();
    ts.server.stop().unwrap();
    flip_record(&ts.dir.path().join("data"), "m00050");
    let url = format!("ws://{}/wse", ts.server.start().unwrap());

    // Missed 41..: the range holds the damaged record 50.
    let (_c, r) = recover(&url, &epoch, 40).await;
    assert_eq!(r["recovered"], false, "{r}");
    assert_eq!(r["count"], 0, "{r}");
    assert_eq!(r["offset"], N - 1, "told where the topic stands: {r}");
    let health = ts.server.health();
    assert_eq!(health.recovery_not_recovered, 1);
    assert!(health.log_damaged_reads >= 1, "{health:?}");

    // Missed 61..: intact, replayed whole from disk.
    let (mut c, r) = recover(&url, &epoch, 60).await;
    assert_eq!(r["recovered"], true, "{r}");
    assert_eq!(r["count"], N - 61, "{r}");
    for i in 61..N {
        let v = c.next_json().await;
        assert_eq!(v["o"], i, "{v}");
        assert_eq!(v["p"]["mark"], format!("m{i:05}"));
    }
}
