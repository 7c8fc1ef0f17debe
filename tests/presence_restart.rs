//! Presence after a crash: the entries of connections of a killed run are
//! removed when the node starts again, with one leave each, and only once.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::*;
use wse::{AppEvent, Server, ServerConfig};

const CHILD_ENV: &str = "WSE_PRESENCE_CHILD_DIR";

fn config(dir: &str) -> ServerConfig {
    ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        data_dir: Some(dir.into()),
        presence_enabled: true,
        presence_tick: Duration::from_millis(10),
        log: wse_log::LogConfig {
            durability: wse_log::Durability::Always,
            ..Default::default()
        },
        ..ServerConfig::default()
    }
}

/// Runs only in the child process: a server whose app joins every new
/// connection to `lobby`, until it is killed.
#[test]
fn presence_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let server = Server::new(config(&dir)).unwrap();
    let addr = server.start().unwrap();
    println!("PORT {}", addr.port());
    loop {
        for ev in server.drain_events(64, Duration::from_secs(1)) {
            if let AppEvent::Connect { conn, .. } = ev {
                let conn = conn.to_string();
                server
                    .subscribe_with_presence(
                        &conn,
                        &["lobby".into()],
                        None,
                        Some(&json!({"c": conn})),
                    )
                    .unwrap();
                server.log().unwrap().flush().unwrap();
                println!("JOINED {conn}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_leaves_no_ghosts() {
    let dir = tempfile::tempdir().unwrap();
    let dir_s = dir.path().to_str().unwrap().to_owned();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "presence_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &dir_s)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().unwrap().unwrap();
        // The harness prints "test presence_child ... " before our output.
        if let Some((_, p)) = line.split_once("PORT ") {
            break p.parse::<u16>().unwrap();
        }
    };
    let url = format!("ws://127.0.0.1:{port}/wse");
    let _a = Client::connect(&url, &[]).await;
    let _b = Client::connect(&url, &[]).await;
    let mut joined = Vec::new();
    while joined.len() < 2 {
        let line = lines.next().unwrap().unwrap();
        if let Some((_, c)) = line.split_once("JOINED ") {
            joined.push(c.to_owned());
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let server = Server::new(config(&dir_s)).unwrap();
    server.start().unwrap();
    let mut left: Vec<String> = server
        .drain_events(16, Duration::ZERO)
        .into_iter()
        .map(|e| match e {
            AppEvent::PresenceLeave {
                topic,
                user_id,
                data,
            } => {
                assert_eq!(topic, "lobby");
                assert_eq!(data, json!({"c": user_id}));
                user_id
            }
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    left.sort();
    joined.sort();
    assert_eq!(left, joined, "one leave per user of the killed run");
    assert!(server.presence("lobby").is_empty());
    server.stop().unwrap();

    // The cleanup was stored: the next start has nothing to clean.
    let server = Server::new(config(&dir_s)).unwrap();
    server.start().unwrap();
    assert!(server.drain_events(16, Duration::ZERO).is_empty());
    assert_eq!(server.presence_stats("lobby"), (0, 0));
    server.stop().unwrap();
}
