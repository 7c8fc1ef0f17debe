//! The HTTP API of a cluster node: what the cluster does not replicate
//! (deleting a topic, a topic's retention) is refused with 409
//! `NOT_REPLICATED`, and nothing changes.

mod cluster_support;

use std::io::{Read, Write};
use std::net::TcpStream;

use cluster_support::{Cluster, free_port};
use serde_json::Value;

const TOKEN: &str = "cluster-admin-token";

/// One request with the admin token: the status and the body as JSON.
fn call(port: u16, method: &str, path: &str, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {TOKEN}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body.as_bytes()).unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_refuses_deletion_and_retention_with_409() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _cluster = Cluster::start_with_args(
        1,
        1,
        false,
        &["--http-listen", &listen, "--admin-token", TOKEN],
    );
    for (method, path, body) in [
        ("DELETE", "/v1/topics/news", ""),
        ("PUT", "/v1/topics/news/retention", r#"{"max_records": 1}"#),
    ] {
        let (status, reply) = tokio::task::spawn_blocking(move || call(port, method, path, body))
            .await
            .unwrap();
        assert_eq!(status, 409, "{method} {path}: {reply}");
        assert_eq!(reply["error"]["code"], "NOT_REPLICATED", "{reply}");
    }
    // Nothing was created or changed.
    let (status, list) = tokio::task::spawn_blocking(move || call(port, "GET", "/v1/topics", ""))
        .await
        .unwrap();
    assert_eq!(
        (status, list["topics"].as_array().map(Vec::len)),
        (200, Some(0)),
        "{list}"
    );
}
