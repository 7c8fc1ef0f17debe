//! Helpers for membership tests: a node that joins a running cluster, and
//! the `wse cluster` command run as a process.

use std::path::Path;
use std::process::Command;

use super::{Cluster, NodeProc, free_port};

impl Cluster {
    /// Start a new node `id` that joins the running cluster: its peer list
    /// is the cluster's plus itself (which the running nodes' shards do not
    /// name, so it initializes nothing and waits for `add-node`). Later
    /// (re)starts of any node use the longer list too.
    pub fn start_joining(&mut self, id: u64) {
        let node = NodeProc {
            id,
            port: free_port(),
            peer_port: free_port(),
            data: self.dir.path().join(format!("data-{id}")),
            log: self.dir.path().join(format!("node-{id}.log")),
            child: None,
        };
        self.peers = format!("{},{id}={}", self.peers, node.peer_addr());
        self.nodes.insert(id, node);
        self.start_node(id);
    }
}

/// Run `wse <args>`: its exit code, stdout and stderr.
pub fn wse(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_wse"))
        .args(args)
        .output()
        .expect("run wse");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The path as an argument.
pub fn arg(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

impl Cluster {
    /// Wait until node `id` applied every shard's whole log.
    pub async fn applied_all(&self, id: u64) {
        let deadline = tokio::time::Instant::now() + super::EVENT_TIMEOUT;
        loop {
            if let Some(s) = self.status(id).await {
                let shards = s["shards"].as_array().cloned().unwrap_or_default();
                let done = shards
                    .iter()
                    .all(|sh| !sh["applied"].is_null() && sh["applied"] == sh["last_log_index"]);
                if !shards.is_empty() && done {
                    return;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {id} did not apply its logs"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await; // polling a remote status
        }
    }
}
