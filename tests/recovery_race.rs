//! Replay strictly precedes live delivery, whichever thread asks for the
//! recovery: the application's (`Server::subscribe_with_recovery` from
//! another thread while the topic is live, the way a Python app's event
//! loop calls it) or the connection's own (the core's handling of the
//! client's `subscription_update`). A thousand trials each, under a
//! running publisher: no duplicate, no reordering, no gap, and the reply
//! comes after every record it counts.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};
use support::*;
use wse::{AppEvent, Server, ServerConfig};

const TRIALS: usize = 1000;
const TOPIC: &str = "race";

fn msg(i: u64) -> String {
    format!(r#"{{"t":"tick","p":{{"i":{i}}}}}"#)
}

/// Publish on `TOPIC` from a thread of its own until `running` is cleared.
fn spawn_publisher(server: Arc<Server>, running: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut i = 0u64;
        while running.load(Ordering::Relaxed) {
            server.broadcast_local(TOPIC, &msg(i)).unwrap();
            i += 1;
            if i.is_multiple_of(32) {
                // A steady stream, not a flood: recovery, not
                // back-pressure, is what this test is about.
                std::thread::sleep(std::time::Duration::from_micros(500));
            }
        }
    })
}

/// Read `TOPIC` messages from `c` until the offset after `reply_at` has
/// arrived live; return every offset seen and the position of the
/// subscription reply among them (the index of the first message after it).
async fn read_around_reply(
    c: &mut Client,
    want_live_past: u64,
) -> (Vec<u64>, Option<usize>, Value) {
    let mut offsets = Vec::new();
    let mut reply_at = None;
    let mut reply = Value::Null;
    loop {
        let v = c.next_json().await;
        if v["t"] == "subscription_update" {
            reply_at = Some(offsets.len());
            reply = v;
            continue;
        }
        if v["tp"] != TOPIC {
            continue;
        }
        let o = v["o"].as_u64().unwrap();
        offsets.push(o);
        if reply_at.is_some() && o > want_live_past {
            return (offsets, reply_at, reply);
        }
    }
}

/// Check one trial: offsets from `first` on, dense and increasing; the
/// reply after every record it counts (`exact`: right after them, before
/// any live message), its offset the last of them.
fn check(
    trial: usize,
    first: u64,
    offsets: &[u64],
    reply_at: Option<usize>,
    reply: &Value,
    exact: bool,
) {
    let r = &reply["p"]["recovery"][TOPIC];
    assert_eq!(r["recovered"], true, "trial {trial}: {reply}");
    let expected: Vec<u64> = (first..first + offsets.len() as u64).collect();
    assert_eq!(
        offsets, expected,
        "trial {trial}: a duplicate, a gap or a reorder; reply at {reply_at:?}: {reply}"
    );
    let count = r["count"].as_u64().unwrap() as usize;
    let at = reply_at.expect("a reply");
    assert!(
        at >= count,
        "trial {trial}: the reply came after {at} of {count} replayed"
    );
    if exact {
        assert_eq!(
            at, count,
            "trial {trial}: live messages before the reply: first {first} count {count} offsets {offsets:?} reply {reply}"
        );
    }
    if count > 0 {
        assert_eq!(
            r["offset"].as_u64(),
            Some(offsets[count - 1]),
            "trial {trial}"
        );
    }
}

/// A server with 100 records of history on `TOPIC` and a publisher that
/// keeps appending until this is dropped.
struct Live {
    server: Arc<Server>,
    url: String,
    epoch: String,
    running: Arc<AtomicBool>,
    publisher: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Live {
    fn start(config: ServerConfig) -> Self {
        let ts = TestServer::start(config);
        let url = ts.url("");
        let server = Arc::new(ts.server);
        for i in 0..100 {
            server.broadcast_local(TOPIC, &msg(i)).unwrap();
        }
        server.log().unwrap().flush().unwrap();
        let epoch = server.position(TOPIC).unwrap().unwrap().epoch.to_string();
        let running = Arc::new(AtomicBool::new(true));
        let publisher = Some(spawn_publisher(server.clone(), running.clone()));
        Self {
            server,
            url,
            epoch,
            running,
            publisher,
            _dir: ts.dir,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.running.store(false, Ordering::Relaxed);
        if let Some(p) = self.publisher.take() {
            let _ = p.join();
        }
    }
}

fn server_config() -> ServerConfig {
    ServerConfig {
        recovery_max_messages: 1_000_000,
        fanout_frames_per_topic: 64,
        ..standalone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_asked_by_the_app_while_the_topic_is_live_never_duplicates() {
    let live = Live::start(ServerConfig {
        core_subscriptions: false,
        event_delivery: wse::EventDelivery::Queue,
        ..server_config()
    });
    let (server, epoch) = (&live.server, &live.epoch);
    let mut events = Events::new(server);
    for trial in 0..TRIALS {
        let mut c = Client::connect(&live.url, &[]).await;
        c.hello().await;
        let conn = loop {
            if let AppEvent::Connect { conn, .. } = events.next().await {
                break conn.to_string();
            }
        };
        // The client last saw an offset a little behind the head.
        let head = server.position(TOPIC).unwrap().unwrap().next_offset;
        let last_seen = head.saturating_sub(1 + (trial as u64 % 40));
        let report = server
            .subscribe_with_recovery(&conn, &[TOPIC.into()], true, Some(epoch), Some(last_seen))
            .unwrap();
        let t = &report.topics[0];
        let reply = json!({"c": "WSE", "t": "subscription_update", "p": {"recovery": {TOPIC: {
            "recovered": t.recovered, "count": t.count, "offset": t.offset}}}});
        server.send(&conn, &reply.to_string()).unwrap();
        let (offsets, reply_at, reply) = read_around_reply(&mut c, t.offset).await;
        // The app sends its reply when the call returns: live messages may
        // come first, but never before the replayed ones.
        check(trial, last_seen + 1, &offsets, reply_at, &reply, false);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_asked_by_the_client_while_the_topic_is_live_never_duplicates() {
    let live = Live::start(server_config());
    let (server, epoch) = (&live.server, &live.epoch);
    for trial in 0..TRIALS {
        let mut c = Client::connect(&live.url, &[]).await;
        c.hello().await;
        let head = server.position(TOPIC).unwrap().unwrap().next_offset;
        let last_seen = head.saturating_sub(1 + (trial as u64 % 40));
        c.send_json(&json!({"c": "WSE", "t": "subscription_update", "p": {
            "action": "subscribe", "topics": [TOPIC], "recover": true,
            "recovery": {TOPIC: {"epoch": epoch, "offset": last_seen}}}}))
            .await;
        let (offsets, reply_at, reply) = read_around_reply(&mut c, head).await;
        check(trial, last_seen + 1, &offsets, reply_at, &reply, true);
    }
}
