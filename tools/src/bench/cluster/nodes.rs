//! The cluster under test: `wse serve` processes on 127.0.0.1, each with
//! its own client port, peer port and data directory under one scratch
//! directory. A node can be stopped (SIGTERM or SIGKILL) and started again
//! on the same ports and files; its status comes from its peer port, its
//! CPU time and disk writes from /proc.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};
use serde::Serialize;
use serde_json::Value;
use wse_replication::net::{NetOptions, query_status};

use crate::bench::proc_stats;
use crate::bench::server_process::{Setup, free_port, serve_command, tail};
use crate::error::CliError;

/// How long a node may take to accept connections.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long it may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a status query may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(2);
/// Between two polls of the nodes' status.
pub const POLL: Duration = Duration::from_millis(50);

/// How a node is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StopSignal {
    /// SIGTERM: the node's normal shutdown.
    Term,
    /// SIGKILL: a crash.
    Kill,
}

/// One node: where it listens, where its files are, its process if it runs.
struct Node {
    id: u64,
    client: SocketAddr,
    peer: SocketAddr,
    data: PathBuf,
    /// Its stderr, appended to by every life of the node.
    stderr: PathBuf,
    child: Option<Child>,
}

/// CPU time, memory and disk writes of one node's process at one moment.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct NodeSample {
    /// User + system CPU time, seconds.
    pub cpu_seconds: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Bytes the process caused to be written to storage (`write_bytes`
    /// of /proc/<pid>/io; 0 where the kernel does not count them).
    pub write_bytes: u64,
}

/// Bytes of a node's data directory, by part.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct DiskUse {
    /// `<data>/cluster/`: the shards' Raft logs and markers.
    pub raft_bytes: u64,
    /// `<data>/topics/`: the topic logs.
    pub topic_bytes: u64,
    /// Everything else (metadata).
    pub other_bytes: u64,
}

/// The running cluster.
pub struct ClusterProcs {
    setup: Setup,
    /// Flags every node gets (cluster membership, shards, durability).
    common: Vec<String>,
    nodes: Vec<Node>,
    /// Holds every node's data directory and stderr; removed at the end.
    scratch: Option<tempfile::TempDir>,
}

impl ClusterProcs {
    /// Start `n` nodes with `shards` shards and log durability
    /// `durability`, and wait until each accepts connections.
    pub fn start(setup: &Setup, n: usize, shards: u32, durability: &str) -> Result<Self, CliError> {
        let base = setup.dir.clone().unwrap_or_else(|| PathBuf::from("."));
        let scratch = tempfile::Builder::new()
            .prefix("wse-bench-cluster-")
            .tempdir_in(&base)
            .map_err(|e| CliError::io(format!("create a directory in {}", base.display()), e))?;
        let mut nodes = Vec::with_capacity(n);
        for id in 1..=n as u64 {
            nodes.push(Node {
                id,
                client: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
                peer: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
                data: scratch.path().join(format!("node-{id}")),
                stderr: scratch.path().join(format!("node-{id}.stderr")),
                child: None,
            });
        }
        let peers: Vec<String> = nodes
            .iter()
            .map(|n| format!("{}={}", n.id, n.peer))
            .collect();
        let common = vec![
            "--cluster-peers".to_owned(),
            peers.join(","),
            "--cluster-insecure".to_owned(),
            "--cluster-shards".to_owned(),
            shards.to_string(),
            "--durability".to_owned(),
            durability.to_owned(),
        ];
        let mut cluster = Self {
            setup: setup.clone(),
            common,
            nodes,
            scratch: Some(scratch),
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        for i in 0..n {
            cluster.wait_accepting(i)?;
        }
        Ok(cluster)
    }

    /// Node count.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Node `i`'s id (index `i` + 1).
    pub fn id(&self, i: usize) -> u64 {
        self.nodes[i].id
    }

    /// Node `i`'s client address.
    pub fn client_addr(&self, i: usize) -> SocketAddr {
        self.nodes[i].client
    }

    /// Start node `i`'s process on its ports and files.
    fn spawn(&mut self, i: usize) -> Result<(), CliError> {
        let node = &self.nodes[i];
        let err_file = File::options()
            .create(true)
            .append(true)
            .open(&node.stderr)
            .map_err(|e| CliError::io(format!("open {}", node.stderr.display()), e))?;
        let mut cmd = serve_command(&self.setup)?;
        cmd.args(["--port", &node.client.port().to_string()])
            .arg("--data-dir")
            .arg(&node.data)
            .args(["--node-id", &node.id.to_string()])
            .args(["--cluster-listen", &node.peer.to_string()])
            .args(&self.common)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err_file);
        let child = cmd
            .spawn()
            .map_err(|e| CliError::io(format!("start node {}", node.id), e))?;
        self.nodes[i].child = Some(child);
        Ok(())
    }

    /// Wait until node `i` accepts client connections.
    fn wait_accepting(&mut self, i: usize) -> Result<(), CliError> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            self.check_alive(i)?;
            let node = &self.nodes[i];
            if TcpStream::connect_timeout(&node.client, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(CliError::Bench(format!(
                    "node {} did not accept connections within {} s: {}",
                    node.id,
                    START_TIMEOUT.as_secs(),
                    tail(&node.stderr)
                )));
            }
            std::thread::sleep(POLL);
        }
    }

    /// An error if node `i` is not running.
    fn check_alive(&mut self, i: usize) -> Result<(), CliError> {
        let node = &mut self.nodes[i];
        let Some(child) = node.child.as_mut() else {
            return Err(CliError::Bench(format!("node {} is stopped", node.id)));
        };
        match child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(CliError::Bench(format!(
                "node {} exited ({status}): {}",
                node.id,
                tail(&node.stderr)
            ))),
            Err(e) => Err(CliError::io(format!("check on node {}", node.id), e)),
        }
    }

    /// Stop node `i` with `signal` and reap it (SIGTERM: killed after a
    /// while if it does not exit).
    pub fn stop_node(&mut self, i: usize, signal: StopSignal) -> Result<(), CliError> {
        self.check_alive(i)?;
        let node = &mut self.nodes[i];
        let Some(mut child) = node.child.take() else {
            return Ok(());
        };
        let sig = match signal {
            StopSignal::Term => Signal::TERM,
            StopSignal::Kill => Signal::KILL,
        };
        kill_process(Pid::from_child(&child), sig)
            .map_err(|e| CliError::io(format!("signal node {}", node.id), e.into()))?;
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match child.try_wait() {
                Ok(Some(_)) => return Ok(()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    eprintln!("warning: node {} ignored SIGTERM; killed", node.id);
                    let _ = child.kill();
                    let _ = child.wait();
                    return Ok(());
                }
                Err(e) => return Err(CliError::io(format!("wait for node {}", node.id), e)),
            }
        }
    }

    /// Start node `i` again on its ports and files; returns once it
    /// accepts client connections.
    pub fn restart_node(&mut self, i: usize) -> Result<(), CliError> {
        self.spawn(i)?;
        self.wait_accepting(i)
    }

    /// Node `i`'s CPU time, memory and disk writes now.
    pub fn sample(&mut self, i: usize) -> Result<NodeSample, CliError> {
        self.check_alive(i)?;
        let pid = self.nodes[i].child.as_ref().map_or(0, Child::id);
        let s = proc_stats::sample(Some(pid))?;
        Ok(NodeSample {
            cpu_seconds: s.cpu_seconds,
            rss_bytes: s.rss_bytes,
            write_bytes: write_bytes(pid).unwrap_or(0),
        })
    }

    /// Every node's sample, in node order.
    pub fn sample_all(&mut self) -> Result<Vec<NodeSample>, CliError> {
        (0..self.len()).map(|i| self.sample(i)).collect()
    }

    /// The bytes of node `i`'s data directory, by part.
    pub fn disk_use(&self, i: usize) -> Result<DiskUse, CliError> {
        let data = &self.nodes[i].data;
        let raft = dir_bytes(&data.join("cluster"))?;
        let topics = dir_bytes(&data.join("topics"))?;
        let all = dir_bytes(data)?;
        Ok(DiskUse {
            raft_bytes: raft,
            topic_bytes: topics,
            other_bytes: all.saturating_sub(raft + topics),
        })
    }

    /// Node `i`'s status through its peer port; `None` if it does not
    /// answer.
    pub async fn status(&self, i: usize) -> Option<Status> {
        let addr = self.nodes[i].peer.to_string();
        let v = query_status(&addr, &NetOptions::default(), STATUS_TIMEOUT)
            .await
            .ok()?;
        Status::from_json(&v)
    }

    /// Wait until every node answers and names the same leader, in the
    /// same term, for every shard (elections are over); that view.
    pub async fn wait_stable(&self, timeout: Duration) -> Result<Vec<Status>, CliError> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut views = Vec::new();
            for i in 0..self.len() {
                views.push(self.status(i).await);
            }
            let views: Option<Vec<Status>> = views.into_iter().collect();
            if let Some(views) = views
                && views.iter().all(Status::all_led)
                && views.windows(2).all(|w| w[0].leaders() == w[1].leaders())
            {
                return Ok(views);
            }
            if Instant::now() >= deadline {
                return Err(CliError::Bench(format!(
                    "the nodes did not agree on a leader per shard within {} s",
                    timeout.as_secs()
                )));
            }
            tokio::time::sleep(POLL).await; // polling a remote status
        }
    }

    /// SIGTERM every node, wait for them, and remove the scratch directory.
    pub fn stop_all(mut self) -> Result<(), CliError> {
        for i in 0..self.len() {
            if self.nodes[i].child.is_some() {
                self.stop_node(i, StopSignal::Term)?;
            }
        }
        if let Some(scratch) = self.scratch.take() {
            let path = scratch.path().to_owned();
            scratch
                .close()
                .map_err(|e| CliError::io(format!("remove {}", path.display()), e))?;
        }
        Ok(())
    }
}

impl Drop for ClusterProcs {
    /// A run that failed half-way leaves no node behind.
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut c) = node.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
}

/// One shard as a node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardView {
    /// The leader's id, if the node knows one.
    pub leader: Option<u64>,
    /// The term.
    pub term: u64,
    /// The node leads the shard.
    pub leading: bool,
    /// The last entry in its Raft log.
    pub last_log_index: u64,
    /// The last entry it applied to its topic logs.
    pub applied: u64,
}

/// What `wse cluster status` reports, the parts the benchmark uses.
#[derive(Clone, Debug)]
pub struct Status {
    /// Per shard, in shard order.
    pub shards: Vec<ShardView>,
}

impl Status {
    /// The fields of a status answer (`None` if it has no shards).
    fn from_json(v: &Value) -> Option<Self> {
        let shards: Vec<ShardView> = v["shards"]
            .as_array()?
            .iter()
            .map(|s| ShardView {
                leader: s["leader"].as_u64(),
                term: s["term"].as_u64().unwrap_or(0),
                leading: s["state"] == "leader",
                last_log_index: s["last_log_index"].as_u64().unwrap_or(0),
                applied: s["applied"].as_u64().unwrap_or(0),
            })
            .collect();
        (!shards.is_empty()).then_some(Self { shards })
    }

    /// Every shard has a leader.
    fn all_led(&self) -> bool {
        self.shards.iter().all(|s| s.leader.is_some())
    }

    /// (leader, term) per shard.
    fn leaders(&self) -> Vec<(Option<u64>, u64)> {
        self.shards.iter().map(|s| (s.leader, s.term)).collect()
    }

    /// Shards this node leads.
    pub fn led(&self) -> usize {
        self.shards.iter().filter(|s| s.leading).count()
    }
}

/// `write_bytes` of /proc/<pid>/io.
fn write_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
}

/// Total length of the files under `dir` (0 if it does not exist).
fn dir_bytes(dir: &Path) -> Result<u64, CliError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(CliError::io(format!("list {}", dir.display()), e)),
    };
    let mut total = 0;
    for entry in entries {
        let entry = entry.map_err(|e| CliError::io(format!("list {}", dir.display()), e))?;
        let path = entry.path();
        // A file may vanish between listing and stat (a segment deleted,
        // a marker renamed over): it counts as 0.
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            total += dir_bytes(&path)?;
        } else {
            total += meta.len();
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_answers_are_read() {
        let v = serde_json::json!({"node_id": 2, "members": {}, "shards": [
            {"shard":0,"state":"leader","leader":2,"term":3,"last_log_index":10,"applied":9,"lag":{}},
            {"shard":1,"state":"follower","leader":null,"term":1,"last_log_index":null,"applied":null,"lag":null}
        ]});
        let s = Status::from_json(&v).unwrap();
        assert_eq!(s.led(), 1);
        assert!(!s.all_led());
        assert_eq!(s.shards[0].applied, 9);
        assert_eq!(s.shards[1].last_log_index, 0);
        assert!(Status::from_json(&serde_json::json!({"shards": []})).is_none());
    }

    #[test]
    fn directory_sizes_add_up() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/x"), [0u8; 10]).unwrap();
        std::fs::write(dir.path().join("a/b/y"), [0u8; 5]).unwrap();
        assert_eq!(dir_bytes(dir.path()).unwrap(), 15);
        assert_eq!(dir_bytes(&dir.path().join("missing")).unwrap(), 0);
        assert!(write_bytes(std::process::id()).is_some());
    }
}
