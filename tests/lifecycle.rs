//! Start, stop, drain, idle timeouts and health: the server's life.

mod support;

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::*;
use wse::{AppEvent, Server, ServerConfig, ServerError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_silent_clients_time_out_while_a_healthy_one_keeps_working() {
    let ts = TestServer::start(ServerConfig {
        ping_interval: Duration::from_millis(200),
        idle_timeout: Duration::from_millis(1500),
        max_connections: 1000,
        ..standalone()
    });
    let mut silent = Vec::new();
    for _ in 0..300 {
        silent.push(ts.client().await);
    }
    let mut healthy = ts.client().await;
    healthy.subscribe(&["t"], None).await;
    let keepalive = tokio::spawn(async move {
        // Talk often enough to never be idle, and check every PONG.
        let mut pongs = 0;
        while pongs < 40 {
            healthy
                .send_json(&json!({"c":"WSE","t":"ping","p":{"timestamp": pongs}}))
                .await;
            let v = healthy.expect_type("PONG").await;
            assert_eq!(v["p"]["client_timestamp"], pongs);
            pongs += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        healthy
    });
    for c in &mut silent {
        assert_eq!(
            c.close_code().await,
            Some(4408),
            "idle clients get a reconnect-inviting code"
        );
    }
    let mut healthy = keepalive.await.unwrap();
    ts.server
        .broadcast_local("t", r#"{"t":"still","p":{}}"#)
        .unwrap();
    assert_eq!(healthy.expect_type("still").await["tp"], "t");
    // New clients are still accepted.
    let mut late = ts.client().await;
    late.expect_type("server_ready").await;
    assert!(ts.server.health().idle_timeouts >= 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_closes_clients_with_a_restart_code_and_releases_a_blocked_drain() {
    let dir = tempfile::tempdir().unwrap();
    let server = Arc::new(
        Server::new(ServerConfig {
            port: 0,
            data_dir: Some(dir.path().to_owned()),
            ..ServerConfig::default()
        })
        .unwrap(),
    );
    let addr = server.start().unwrap();
    assert!(matches!(server.start(), Err(ServerError::AlreadyRunning)));
    let mut c = Client::connect(&format!("ws://{addr}/wse"), &[]).await;
    let mut events = Events::new(&server);
    events.connect().await;
    let drainer = {
        let server = server.clone();
        std::thread::spawn(move || server.drain_events(10, Duration::from_secs(3600)))
    };
    let stopper = {
        let server = server.clone();
        tokio::task::spawn_blocking(move || server.stop())
    };
    assert_eq!(c.close_code().await, Some(1012));
    stopper.await.unwrap().unwrap();
    let drained = drainer.join().unwrap();
    assert!(
        drained.len() <= 1,
        "only the disconnect may be left: {drained:?}"
    );
    assert!(!server.is_running());
    assert!(matches!(server.connections(), Err(ServerError::NotRunning)));
    // A stopped server starts again.
    let addr = server.start().unwrap();
    let mut c = Client::connect(&format!("ws://{addr}/wse"), &[]).await;
    c.send_json(&json!({"t":"ping","p":{"timestamp":1}})).await;
    c.expect_type("PONG").await;
    server.stop().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_in_use_is_an_error_not_a_silent_failure() {
    let ts = TestServer::start(ServerConfig::default());
    let other = Server::new(ServerConfig {
        port: ts.addr.port(),
        ..ServerConfig::default()
    })
    .unwrap();
    let err = other.start().unwrap_err();
    assert!(matches!(err, ServerError::Bind { .. }), "{err}");
    assert!(!other.is_running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_closes_clients_with_the_given_code_and_refuses_new_ones() {
    let ts = TestServer::start(standalone());
    let mut c = ts.client().await;
    c.expect_type("server_ready").await;
    ts.server
        .drain(4300, "maintenance", Duration::from_secs(5))
        .unwrap();
    assert_eq!(c.close_code().await, Some(4300));
    let refused = Client::try_connect(&ts.url(""), &[]).await;
    assert!(
        refused.is_err(),
        "draining servers close new sockets before the upgrade"
    );
    let stopped = Server::new(ServerConfig::default()).unwrap();
    assert!(matches!(
        stopped.drain(4300, "", Duration::from_secs(1)),
        Err(ServerError::NotRunning)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_report_the_log_and_the_connections() {
    let ts = TestServer::start(standalone());
    let before = Server::new(ServerConfig::default()).unwrap().health();
    assert_eq!(before.uptime_secs, 0.0);
    assert_eq!(before.connections, 0);
    let mut c = ts.client().await;
    c.subscribe(&["h"], None).await;
    for i in 0..10 {
        ts.server
            .broadcast_local("h", &format!(r#"{{"t":"x","p":{{"i":{i}}}}}"#))
            .unwrap();
    }
    for _ in 0..10 {
        c.expect_type("x").await;
    }
    let h = ts.server.health();
    assert_eq!(h.connections, 1);
    assert!(h.recovery_enabled);
    assert_eq!(h.log_appends, 10);
    assert!(h.frames_sent >= 10);
    assert!(h.uptime_secs > 0.0);
    assert_eq!(h.presence_topics, None, "presence keys only when enabled");
    let text = ts.server.prometheus_metrics();
    assert!(text.contains("wse_connections 1\n"), "{text}");
    assert!(
        text.contains("wse_topic_messages_total{topic=\"h\"} 10\n"),
        "{text}"
    );
    assert!(text.contains("wse_log_appends_total 10\n"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_upgrade_completed_is_already_known_to_the_app() {
    let ts = TestServer::start(ServerConfig::default());
    let mut events = Events::new(&ts.server);
    let mut clients = Vec::new();
    for i in 0..50 {
        clients.push(ts.client().await);
        // The client has its 101: the connection is registered and its
        // Connect queued, so connections are announced in the order they
        // were made.
        assert_eq!(ts.server.connection_count(), i + 1);
        let queued = events.ready();
        assert!(
            matches!(queued.as_slice(), [AppEvent::Connect { .. }]),
            "after connection {i}: {queued:?}"
        );
    }
}
