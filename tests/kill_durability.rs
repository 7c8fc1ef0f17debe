//! Acknowledged means durable, tried with kill -9: a child process runs a
//! server; the test publishes to it over WebSocket (`publish` with an `id`,
//! acknowledged by `publish_ack`) while the child's own threads publish
//! with `Server::publish` (the path of Python's `publish`). At a random
//! moment the child is SIGKILLed. Every acknowledged record must then be
//! in the log, at the acknowledged (epoch, offset), with its content. Fifty
//! kills per durability policy; the count of lost records must be zero.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use wse::{Server, ServerConfig};
use wse_log::{Durability, Epoch, Log, LogConfig, Position, ReadLimits};

const CHILD_DIR: &str = "WSE_KILL_CHILD_DIR";
const CHILD_POLICY: &str = "WSE_KILL_CHILD_POLICY";
const KILLS: usize = 50;
const TOPICS: usize = 3;

fn durability(name: &str) -> Durability {
    match name {
        "always" => Durability::Always,
        "interval" => Durability::Interval {
            max_delay: Duration::from_millis(100),
            max_bytes: 16 * 1024,
        },
        _ => Durability::Never,
    }
}

fn log_config(policy: &str) -> LogConfig {
    LogConfig {
        durability: durability(policy),
        segment_max_bytes: 32 * 1024,
        ..LogConfig::default()
    }
}

/// One acknowledged record: where it went and the marker its content has.
#[derive(Debug, Clone)]
struct Ack {
    topic: String,
    epoch: Epoch,
    offset: u64,
    marker: String,
}

impl Ack {
    /// `ACK <topic> <epoch> <offset> <marker>` as the child prints it.
    /// The first line may follow the test harness's `test kill_child ... `.
    fn parse(line: &str) -> Option<Self> {
        let mut p = line[line.find("ACK ")? + 4..].split(' ');
        Some(Self {
            topic: p.next()?.to_owned(),
            epoch: p.next()?.parse().ok()?,
            offset: p.next()?.parse().ok()?,
            marker: p.next()?.to_owned(),
        })
    }
}

/// Runs only inside the child process: a server that publishes with
/// `Server::publish` from two threads and prints every acknowledgement.
#[test]
fn kill_child() {
    let (Ok(dir), Ok(policy)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_POLICY)) else {
        return;
    };
    let server = Server::new(ServerConfig {
        host: "127.0.0.1".into(),
        port: 0,
        data_dir: Some(dir.into()),
        log: log_config(&policy),
        client_publish: true,
        presence_enabled: false,
        ..ServerConfig::standalone()
    })
    .unwrap();
    let addr = server.start().unwrap();
    println!("PORT {}", addr.port());
    let pid = std::process::id();
    std::thread::scope(|s| {
        for t in 0..2 {
            let server = &server;
            s.spawn(move || {
                for i in 0.. {
                    let topic = format!("t{}", (t + i) % TOPICS);
                    let marker = format!("py-{pid}-{t}-{i}");
                    let text = json!({"t": "m", "p": {"k": marker}}).to_string();
                    let pos = server.publish(&topic, &text).unwrap();
                    println!("ACK {topic} {} {} {marker}", pos.epoch, pos.offset);
                }
            });
        }
    });
}

/// Where the child of a round writes its stderr (shown when it fails).
fn child_stderr(dir: &Path) -> std::path::PathBuf {
    dir.with_extension("child-stderr")
}

/// The child for one round, and its stdout lines on a channel.
fn spawn_child(dir: &Path, policy: &str) -> (Child, std::sync::mpsc::Receiver<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["kill_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_DIR, dir)
        .env(CHILD_POLICY, policy)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(child_stderr(dir)).unwrap())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    (child, rx)
}

/// Publish over WebSocket with ids, a few in flight at a time, and send
/// each `publish_ack` to `acks` until the connection ends.
async fn publish_over_websocket(port: u16, round: usize, acks: mpsc::UnboundedSender<Ack>) {
    let url = format!("ws://127.0.0.1:{port}/wse");
    let Ok((ws, _)) = tokio_tungstenite::connect_async(url.as_str()).await else {
        return;
    };
    let (mut tx, mut rx) = ws.split();
    let mut markers: HashMap<String, String> = HashMap::new();
    let mut sent = 0usize;
    let mut in_flight = 0usize;
    loop {
        while in_flight < 8 {
            let marker = format!("ws-{round}-{sent}");
            let topic = format!("t{}", sent % TOPICS);
            let msg = json!({"t": "publish", "id": marker,
                "p": {"topic": topic, "message": {"t": "m", "p": {"k": marker}}}});
            if tx.send(Message::text(msg.to_string())).await.is_err() {
                return;
            }
            markers.insert(marker, topic);
            sent += 1;
            in_flight += 1;
        }
        let Some(Ok(Message::Text(t))) = rx.next().await else {
            return;
        };
        let v: Value = serde_json::from_str(&t).unwrap_or_default();
        if v["t"] == "error" {
            panic!("publish refused: {v}");
        }
        if v["t"] != "publish_ack" {
            continue;
        }
        in_flight -= 1;
        let p = &v["p"];
        let marker = p["id"].as_str().unwrap().to_owned();
        let topic = markers.remove(&marker).expect("an ack for a publish sent");
        assert_eq!(p["topic"], topic.as_str());
        let _ = acks.send(Ack {
            topic,
            epoch: p["epoch"].as_str().unwrap().parse().unwrap(),
            offset: p["offset"].as_u64().unwrap(),
            marker,
        });
    }
}

/// How many of `acks` the log in `dir` does not hold as acknowledged.
fn count_lost(dir: &Path, policy: &str, acks: &[Ack]) -> usize {
    let log = Log::open(dir, log_config(policy)).unwrap();
    let mut lost = 0;
    for a in acks {
        let found = log
            .read(
                &a.topic,
                Position::new(a.epoch, a.offset),
                ReadLimits::records(1),
            )
            .ok()
            .and_then(|b| b.records.into_iter().next());
        let intact = found.is_some_and(|r| {
            r.offset() == a.offset
                && std::str::from_utf8(r.payload_ref())
                    .is_ok_and(|s| s.contains(&format!("\"k\":\"{}\"", a.marker)))
        });
        if !intact {
            eprintln!("lost: {a:?}");
            lost += 1;
        }
    }
    lost
}

/// Fifty rounds of: start the child, publish from both sides, kill -9 it
/// after a random number of acknowledgements, count the acknowledged
/// records the log no longer has.
fn kill_loop(policy: &str) {
    // One policy at a time: a child forked by one test thread inherits,
    // until it execs, whatever lock file another thread has open (the
    // log's LOCK while it counts), which then looks held to the next
    // child of that thread.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut rng = rand::rng();
    let mut all: Vec<Ack> = Vec::new();
    for round in 0..KILLS {
        let (mut child, lines) = spawn_child(dir.path(), policy);
        let port: u16 = loop {
            let line = lines.recv_timeout(support::WAIT).unwrap_or_else(|e| {
                let err = std::fs::read_to_string(child_stderr(dir.path())).unwrap_or_default();
                panic!("{policy}, round {round}: the child did not start its server ({e}):\n{err}")
            });
            if let Some(at) = line.find("PORT ") {
                break line[at + 5..].trim().parse().unwrap();
            }
        };
        let kill_after = rng.random_range(1..120);
        let (tx, mut ws_acks) = mpsc::unbounded_channel();
        let publisher = rt.spawn(publish_over_websocket(port, round, tx));
        let mut acks: Vec<Ack> = Vec::new();
        let deadline = std::time::Instant::now() + support::WAIT;
        while acks.len() < kill_after {
            assert!(
                std::time::Instant::now() < deadline,
                "{policy}, round {round}: {} of {kill_after} acknowledgements",
                acks.len()
            );
            // Server::publish acks from the child, then WebSocket acks.
            while let Ok(line) = lines.try_recv() {
                acks.extend(Ack::parse(&line));
            }
            rt.block_on(async {
                if let Ok(Some(a)) =
                    tokio::time::timeout(Duration::from_millis(5), ws_acks.recv()).await
                {
                    acks.push(a);
                }
            });
        }
        child.kill().unwrap();
        child.wait().unwrap();
        rt.block_on(async {
            let _ = publisher.await;
            while let Ok(a) = ws_acks.try_recv() {
                acks.push(a);
            }
        });
        while let Ok(line) = lines.recv_timeout(Duration::from_millis(200)) {
            acks.extend(Ack::parse(&line));
        }
        assert_eq!(
            count_lost(dir.path(), policy, &acks),
            0,
            "{policy}, round {round}: acknowledged records lost after kill -9"
        );
        all.extend(acks);
    }
    // Nothing acknowledged in an earlier round went missing later either.
    assert_eq!(
        count_lost(dir.path(), policy, &all),
        0,
        "{policy}: lost overall"
    );
    let over_ws = all.iter().filter(|a| a.marker.starts_with("ws-")).count();
    assert!(
        over_ws > 0 && over_ws < all.len(),
        "{policy}: both paths acknowledged ({over_ws} of {} over WebSocket)",
        all.len()
    );
}

#[test]
fn acknowledged_publishes_survive_kill_9_under_always() {
    kill_loop("always");
}

#[test]
fn acknowledged_publishes_survive_kill_9_under_interval() {
    kill_loop("interval");
}

#[test]
fn acknowledged_publishes_survive_kill_9_under_never() {
    kill_loop("never");
}
