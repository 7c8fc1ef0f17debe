//! A presence storm: 5,000 connections join one topic within about a
//! second, while another client keeps measuring that its pings are
//! answered.

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::*;
use wse::{AppEvent, ServerConfig};

const JOINERS: usize = 5000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_joining_at_once_leave_the_server_responsive() {
    raise_open_files(2 * JOINERS as u64 + 1024);
    let ts = TestServer::start(ServerConfig {
        presence_enabled: true,
        presence_tick: Duration::from_millis(50),
        max_connections: JOINERS + 100,
        // Every socket comes from 127.0.0.1, many at once.
        max_pending_handshakes_per_ip: 0,
        ..ServerConfig::default()
    });
    let mut events = Events::new(&ts.server);
    let mut probe = ts.client().await;
    probe.hello().await;
    let (probe_id, _) = events.connect().await;
    ts.server
        .subscribe(&probe_id, &["storm".into()], None)
        .unwrap();

    // The probe pings continuously and records round trips, reading the
    // presence frames that arrive in between.
    let pinger = tokio::spawn(async move {
        let mut rtts = Vec::new();
        let mut joins = 0usize;
        let mut i = 0i64;
        while joins < JOINERS {
            let sent = Instant::now();
            probe
                .send_json(&json!({"t": "ping", "p": {"timestamp": i}}))
                .await;
            loop {
                let v = probe.next_json().await;
                match v["t"].as_str() {
                    Some("PONG") if v["p"]["client_timestamp"] == i => break,
                    Some("presence_join") => joins += 1,
                    _ => {}
                }
            }
            rtts.push(sent.elapsed());
            i += 1;
        }
        (rtts, joins)
    });

    // Connect the joiners (they never read) in waves of 250.
    let url = ts.url("");
    let mut joiners = Vec::with_capacity(JOINERS);
    let started = Instant::now();
    for wave in 0..JOINERS / 250 {
        let batch: Vec<_> = (0..250)
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move { Client::connect(&url, &[]).await })
            })
            .collect();
        for t in batch {
            joiners.push(t.await.unwrap());
        }
        // The app joins everyone who connected so far.
        let mut joined = 0;
        while joined < 250 {
            if let AppEvent::Connect { conn, .. } = events.next().await {
                ts.server
                    .subscribe_with_presence(
                        &conn.to_string(),
                        &["storm".into()],
                        None,
                        Some(&json!({"w": wave})),
                    )
                    .unwrap();
                joined += 1;
            }
        }
    }
    let join_time = started.elapsed();
    let (rtts, joins) = pinger.await.unwrap();
    assert_eq!(joins, JOINERS, "the probe saw every join");
    assert!(!rtts.is_empty(), "pings were answered throughout");
    assert_eq!(ts.server.presence_stats("storm"), (JOINERS, JOINERS));
    let max = rtts.iter().max().unwrap();
    let mut sorted = rtts.clone();
    sorted.sort();
    eprintln!(
        "{JOINERS} joins in {join_time:?}; {} pings answered, median {:?}, max {max:?}",
        rtts.len(),
        sorted[sorted.len() / 2]
    );
    drop(joiners);
    wait_until("everyone left", || {
        ts.server.presence_stats("storm") == (0, 0)
    })
    .await;
}
