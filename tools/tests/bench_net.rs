//! Smoke runs of the connection benchmarks (`wse bench fanout`, `inbound`,
//! `idle`), each against a real `wse serve` process it starts: short and
//! small, they check that every figure is reported and that nothing is
//! lost, not how large the figures are.

use std::process::{Command, Output};

use serde_json::Value;

/// Run `wse bench <args> --json --dir <tmp>`; the JSON it printed.
fn bench(args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("tempdir");
    let o = Command::new(env!("CARGO_BIN_EXE_wse"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("run wse bench");
    assert!(
        o.status.success(),
        "wse bench {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stderr),
        String::from_utf8_lossy(&o.stdout)
    );
    // The server's scratch directory is gone.
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    serde_json::from_slice(&o.stdout).expect("one JSON document")
}

fn u(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} is not a count in {v}"))
}

fn f(v: &Value, key: &str) -> f64 {
    v[key]
        .as_f64()
        .unwrap_or_else(|| panic!("{key} is not a number in {v}"))
}

#[test]
fn fanout_delivers_every_offset_to_every_subscriber_once() {
    let report = bench(&["fanout", "--subscribers", "20", "--seconds", "1"]);
    assert_eq!(
        report["machine"]["nproc"].as_u64().map(|n| n > 0),
        Some(true)
    );
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(u(r, "subscribers"), 20);
    assert_eq!(r["durability"], "interval");
    assert_eq!(r["tls"], false);
    let published = u(r, "published");
    assert!(published > 0, "{r}");
    assert_eq!(u(r, "deliveries"), published * 20, "{r}");
    for zero in ["loss", "duplicates", "disconnected", "publish_errors"] {
        assert_eq!(u(r, zero), 0, "{zero}: {r}");
    }
    assert_eq!(r["drained"], true);
    assert!(f(r, "deliveries_per_sec") > 0.0 && f(r, "published_per_sec") > 0.0);
    let lat = &r["latency"];
    assert_eq!(u(lat, "count"), published * 20);
    let (p50, p99, max) = (f(lat, "p50_us"), f(lat, "p99_us"), f(lat, "max_us"));
    assert!(0.0 < p50 && p50 <= p99 && p99 <= max, "{lat}");
    assert!(f(r, "server_cpu_seconds") >= 0.0 && f(r, "generator_cpu_seconds") >= 0.0);
    assert!(f(r, "server_cpu_ns_per_delivery") >= 0.0);
    assert!(u(r, "server_rss_bytes") > 0 && u(r, "server_peak_rss_bytes") > 0);
}

#[test]
fn fanout_at_a_fixed_rate_under_each_durability() {
    let report = bench(&[
        "fanout",
        "--subscribers",
        "5",
        "--seconds",
        "1",
        "--rate",
        "500",
        "--durability",
        "always,never",
    ]);
    let runs = report["runs"].as_array().expect("runs");
    let policies: Vec<&str> = runs
        .iter()
        .filter_map(|r| r["durability"].as_str())
        .collect();
    assert_eq!(policies, ["always", "never"]);
    for r in runs {
        let published = u(r, "published");
        // 500/s for 1 s (pacing, not a race: a loaded machine sends late,
        // never early).
        assert!((250..=501).contains(&published), "{r}");
        assert_eq!(u(r, "deliveries"), published * 5, "{r}");
        assert_eq!(u(r, "loss"), 0, "{r}");
    }
}

#[test]
fn fanout_over_tls_delivers_every_offset() {
    let report = bench(&["fanout", "--tls", "--subscribers", "2", "--seconds", "1"]);
    let runs = report["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 1);
    let r = &runs[0];
    assert_eq!(r["tls"], true, "{r}");
    let published = u(r, "published");
    assert!(published > 0, "{r}");
    assert_eq!(u(r, "deliveries"), published * 2, "{r}");
    for zero in ["loss", "duplicates", "disconnected", "publish_errors"] {
        assert_eq!(u(r, zero), 0, "{zero}: {r}");
    }
    assert_eq!(r["drained"], true);
}

#[test]
fn inbound_loses_no_message() {
    let report = bench(&["inbound", "--clients", "5", "--seconds", "1"]);
    let r = &report["runs"][0];
    assert_eq!(u(r, "clients"), 5);
    let sent = u(r, "sent");
    assert!(sent > 0, "{r}");
    assert_eq!(u(r, "received"), sent, "{r}");
    assert_eq!(u(r, "loss"), 0, "{r}");
    assert_eq!(u(r, "unanswered"), 0, "{r}");
    // Every client got to send (they start together).
    assert!(u(r, "sent_per_client_min") > 0, "{r}");
    assert!(u(r, "sent_per_client_max") >= u(r, "sent_per_client_min"));
    assert!(f(r, "received_per_sec") > 0.0);
    assert!(f(r, "server_cpu_ns_per_message") > 0.0, "{r}");
    assert!(u(r, "server_rss_bytes") > 0);
    assert!(f(r, "generator_cpu_seconds") >= 0.0);
}

#[test]
fn idle_reports_memory_per_connection() {
    let r = bench(&["idle", "--connections", "50"]);
    assert_eq!(u(&r, "connections"), 50);
    let (before, connected) = (u(&r, "rss_before_bytes"), u(&r, "rss_connected_bytes"));
    assert!(before > 0 && connected > 0, "{r}");
    assert!(f(&r, "bytes_per_connection") >= 0.0);
    assert!(u(&r, "rss_after_close_bytes") > 0);
    assert!(f(&r, "returned_percent") >= 0.0);
    assert!(u(&r, "rss_reopened_bytes") > 0);
    assert!(f(&r, "regrowth_bytes_per_connection") >= 0.0);
}

#[test]
fn nonsense_arguments_are_usage_errors() {
    let run = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_wse"))
            .arg("bench")
            .args(args)
            .output()
            .expect("run wse bench")
    };
    for args in [
        &["fanout", "--subscribers", "0"][..],
        &["fanout", "--rate", "fast"],
        &["fanout", "--seconds", "-1"],
        &["fanout", "--durability", "sometimes"],
        &["inbound", "--clients", "0"],
        &["idle", "--connections", "0"],
        &["idle", "--server-threads", "0"],
    ] {
        let o = run(args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert!(!o.stderr.is_empty(), "{args:?}");
    }
}
