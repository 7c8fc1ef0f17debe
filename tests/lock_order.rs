//! The documented lock order (docs/ARCHITECTURE.md) under stress: threads
//! join and leave queue groups, subscribe and unsubscribe, recover and
//! publish on one topic while its connections come and go. Joining a
//! queue group used to take a connection's outbox lock and then the
//! channel's groups lock, while a publish takes the groups lock and then
//! (delivering to a member) the outbox lock: the two could deadlock and
//! freeze the log's writer thread. A watchdog turns a deadlock into a
//! failure.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use support::*;
use wse::{Server, ServerConfig};

const TOPIC: &str = "hot";
const RUN: Duration = Duration::from_millis(1500);

/// Run `f` repeatedly on a thread of its own until `stop` is set.
fn churn(stop: &Arc<AtomicBool>, f: impl Fn(u64) + Send + 'static) -> std::thread::JoinHandle<()> {
    let stop = stop.clone();
    std::thread::spawn(move || {
        let mut i = 0;
        while !stop.load(Ordering::Relaxed) {
            f(i);
            i += 1;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_subscriptions_publishes_and_disconnects_never_deadlock() {
    let ts = TestServer::start(ServerConfig {
        recovery_enabled: true,
        max_outbound_bytes: 64 * 1024,
        ..ServerConfig::default()
    });
    let url = ts.url("");
    let server: Arc<Server> = Arc::new(ts.server);
    let mut events = Events::new(&server);
    let mut clients = Vec::new();
    let mut ids = Vec::new();
    for _ in 0..8 {
        clients.push(Client::connect(&url, &[]).await);
        ids.push(events.connect().await.0);
    }
    let ids = Arc::new(ids);
    let stop = Arc::new(AtomicBool::new(false));
    let epoch = {
        server.broadcast_local(TOPIC, r#"{"t":"x"}"#).unwrap();
        server.log().unwrap().flush().unwrap();
        server.position(TOPIC).unwrap().unwrap().epoch.to_string()
    };
    let mut threads = Vec::new();
    let s = server.clone();
    threads.push(churn(&stop, move |_| {
        let _ = s.broadcast_local(TOPIC, r#"{"t":"m"}"#);
    }));
    for group in ["a", "b"] {
        let (s, ids) = (server.clone(), ids.clone());
        threads.push(churn(&stop, move |i| {
            let id = &ids[i as usize % ids.len()];
            let _ = s.subscribe(id, &[TOPIC.into()], Some(group));
            let _ = s.unsubscribe(id, Some(&[TOPIC.into()]));
        }));
    }
    let (s, ids) = (server.clone(), ids.clone());
    threads.push(churn(&stop, move |i| {
        let id = &ids[i as usize % ids.len()];
        let _ = s.subscribe_with_recovery(id, &[TOPIC.into()], true, Some(&epoch), Some(0));
        let _ = s.subscribe(id, &["other".into(), TOPIC.into()], None);
    }));
    // Whoever is connected joins a group, on a thread of its own (a
    // deadlock must not stop this test's own task, or the watchdog below).
    let s = server.clone();
    threads.push(churn(&stop, move |i| {
        let conns = s.connections().unwrap_or_default();
        if let Some(id) = conns.get(i as usize % conns.len().max(1)) {
            let _ = s.subscribe(id, &[TOPIC.into()], Some("a"));
        }
    }));
    // Connections come and go meanwhile.
    let deadline = Instant::now() + RUN;
    while Instant::now() < deadline {
        drop(Client::connect(&url, &[]).await);
    }
    stop.store(true, Ordering::Relaxed);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for t in threads {
            t.join().unwrap();
        }
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(20))
        .expect("every thread finished: no deadlock");
    // The writer is alive: a publish is still acknowledged.
    server.publish(TOPIC, r#"{"t":"end"}"#).unwrap();
    drop(clients);
}
