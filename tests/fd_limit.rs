//! File descriptors at start: the server raises the open-file soft limit
//! to the hard limit (a default soft limit of 1,024 is far below what a
//! server with 1,000 connections and 256 open segments needs), and admits
//! no more connections than the descriptors left after the log's share.

use std::process::Command;

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use wse::{Server, ServerConfig};

const CHILD: &str = "WSE_FD_LIMIT_CHILD";

/// Runs only in the child: soft limit 256 (hard 4096), start a server
/// that wants 100,000 connections, report the limits.
#[test]
fn fd_limit_child() {
    if std::env::var(CHILD).is_err() {
        return;
    }
    let hard = getrlimit(Resource::Nofile)
        .maximum
        .map_or(4096, |h| h.min(4096));
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(256),
            maximum: Some(hard),
        },
    )
    .unwrap();
    println!("HARD WAS {hard}");
    let dir = tempfile::tempdir().unwrap();
    let server = Server::new(ServerConfig {
        port: 0,
        data_dir: Some(dir.path().to_owned()),
        max_connections: 100_000,
        ..ServerConfig::default()
    })
    .unwrap();
    server.start().unwrap();
    let now = getrlimit(Resource::Nofile);
    println!("SOFT {:?} HARD {:?}", now.current, now.maximum);
    server.stop().unwrap();
}

#[test]
fn the_open_file_soft_limit_is_raised_to_the_hard_limit_at_start() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "fd_limit_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    let hard = stdout
        .split("HARD WAS ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .expect("the child reports its hard limit");
    assert!(
        stdout.contains(&format!("SOFT Some({hard}) HARD Some({hard})")),
        "limits after start: {stdout}"
    );
}
