//! Clusters of real `wse serve` processes on 127.0.0.1 for the tests, and
//! the WebSocket publishers and subscribers that load them.
//!
//! Each node is a child process with its own data directory; its stderr
//! goes to `<dir>/node-<id>.log`, printed when a test fails. Nodes can be
//! killed with SIGKILL, paused with SIGSTOP and restarted on the same
//! files and ports.

#![allow(dead_code)] // each test binary uses part of it

pub mod load;
pub mod membership;
pub mod proxy;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use wse_log::{DirReader, ReadLimits};

/// Longest wait for something the cluster should do soon (an election,
/// a commit, a catch-up) before a test fails.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(30);

/// A port on 127.0.0.1 that was free a moment ago, below the kernel's
/// ephemeral range (32768 and up), so no outgoing connection of another
/// test takes it before the node binds it; each call of this process gets
/// another one.
pub fn free_port() -> u16 {
    static NEXT: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 500) as u16 * 20,
        std::sync::atomic::Ordering::SeqCst,
        std::sync::atomic::Ordering::SeqCst,
    );
    loop {
        let port = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        assert!(port < 32_000, "no free port below the ephemeral range");
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// One `wse serve` node of a test cluster.
pub struct NodeProc {
    pub id: u64,
    pub port: u16,
    pub peer_port: u16,
    pub data: PathBuf,
    log: PathBuf,
    child: Option<Child>,
}

impl NodeProc {
    /// The peer address (`--cluster-listen`).
    pub fn peer_addr(&self) -> String {
        format!("127.0.0.1:{}", self.peer_port)
    }

    /// The client WebSocket URL.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}/wse", self.port)
    }

    /// The process id while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// SIGKILL, and reap it.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM (a clean stop), and wait for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            signal(c.id(), "TERM");
            let _ = c.wait();
        }
    }

    /// SIGSTOP: the process stays but does nothing (a stalled node).
    pub fn pause(&self) {
        signal(self.pid().expect("running"), "STOP");
    }

    /// SIGCONT after [`NodeProc::pause`].
    pub fn resume(&self) {
        signal(self.pid().expect("running"), "CONT");
    }

    /// The node's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{name} {pid}");
}

/// A cluster of `wse serve` processes.
pub struct Cluster {
    pub dir: tempfile::TempDir,
    pub nodes: BTreeMap<u64, NodeProc>,
    peers: String,
    shards: u32,
    /// The links between nodes, when they go through proxies.
    pub links: Option<proxy::Links>,
    /// More `wse serve` arguments for every node.
    extra: Vec<String>,
}

impl Cluster {
    /// `n` nodes with `shards` shards, started and serving; fast elections
    /// (heartbeat 50 ms, election timeout 400-800 ms) for loopback.
    pub fn start(n: u64, shards: u32) -> Cluster {
        Self::launch(n, shards, false, &[])
    }

    /// As [`Cluster::start`] (through proxies with `proxies`, see
    /// [`Cluster::start_with_proxies`]), every node run with `extra`
    /// arguments too.
    pub fn start_with_args(n: u64, shards: u32, proxies: bool, extra: &[&str]) -> Cluster {
        Self::launch(n, shards, proxies, extra)
    }

    /// As [`Cluster::start`], with every peer link through a proxy the
    /// test controls ([`Cluster::links`]). Call inside a Tokio runtime.
    pub fn start_with_proxies(n: u64, shards: u32) -> Cluster {
        Self::launch(n, shards, true, &[])
    }

    fn launch(n: u64, shards: u32, proxies: bool, extra: &[&str]) -> Cluster {
        let dir = tempfile::tempdir().unwrap();
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            nodes.insert(
                id,
                NodeProc {
                    id,
                    port: free_port(),
                    peer_port: free_port(),
                    data: dir.path().join(format!("data-{id}")),
                    log: dir.path().join(format!("node-{id}.log")),
                    child: None,
                },
            );
        }
        let links = proxies.then(proxy::Links::default);
        let mut peers = Vec::new();
        for n in nodes.values() {
            let advertised = match &links {
                None => n.peer_addr(),
                Some(links) => {
                    // Peers reach this node through its proxy.
                    let listener = std::net::TcpListener::bind(("127.0.0.1", free_port())).unwrap();
                    listener.set_nonblocking(true).unwrap();
                    let addr = listener.local_addr().unwrap();
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let target = n.peer_addr().parse().unwrap();
                    tokio::spawn(proxy::run(listener, n.id, target, links.clone()));
                    addr.to_string()
                }
            };
            peers.push(format!("{}={advertised}", n.id));
        }
        let mut c = Cluster {
            dir,
            nodes,
            peers: peers.join(","),
            shards,
            links,
            extra: extra.iter().map(|a| (*a).to_owned()).collect(),
        };
        let ids: Vec<u64> = c.nodes.keys().copied().collect();
        for id in ids {
            c.start_node(id);
        }
        c
    }

    /// Start (or restart, on its files and ports) node `id`; returns once
    /// it serves clients.
    pub fn start_node(&mut self, id: u64) {
        let (peers, shards, extra) = (self.peers.clone(), self.shards, self.extra.clone());
        let node = self.nodes.get_mut(&id).unwrap();
        assert!(node.child.is_none(), "node {id} runs already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&node.log)
            .unwrap();
        // `WSE_BIN` runs another build of `wse` (a long run from copies of
        // the binaries, while the tree is rebuilt).
        let bin = std::env::var("WSE_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_wse").to_owned());
        // No HTTP API unless the test's own arguments ask for one.
        let http = if extra.iter().any(|a| a == "--http-listen") {
            &[][..]
        } else {
            &["--http-listen", "off"][..]
        };
        let mut child = Command::new(bin)
            .args(["serve", "--host", "127.0.0.1", "--client-publish", "true"])
            .args(http)
            .args(["--port", &node.port.to_string()])
            .arg("--data-dir")
            .arg(&node.data)
            .args(["--node-id", &id.to_string()])
            .args(["--cluster-listen", &node.peer_addr()])
            .args(["--cluster-peers", &peers])
            .args(["--cluster-shards", &shards.to_string()])
            .args(["--cluster-heartbeat-ms", "50"])
            .args(["--cluster-election-timeout-ms", "400"])
            .arg("--cluster-insecure")
            .args(&extra)
            .env("RUST_LOG", "warn,wse_replication=info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn wse serve");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            for line in lines.by_ref().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
            }
        });
        node.child = Some(child);
        if rx.recv_timeout(EVENT_TIMEOUT).is_err() {
            panic!("node {id} did not start:\n{}", node.log_text());
        }
    }

    pub fn node(&self, id: u64) -> &NodeProc {
        &self.nodes[&id]
    }

    pub fn node_mut(&mut self, id: u64) -> &mut NodeProc {
        self.nodes.get_mut(&id).unwrap()
    }

    /// The node's status (through its peer port), if it answers.
    pub async fn status(&self, id: u64) -> Option<Value> {
        let options = wse_replication::net::NetOptions::default();
        wse_replication::net::query_status(
            &self.node(id).peer_addr(),
            &options,
            Duration::from_secs(2),
        )
        .await
        .ok()
    }

    /// Wait until node `id`'s status satisfies `ok`.
    pub async fn wait_status(&self, id: u64, what: &str, ok: impl Fn(&Value) -> bool) {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            let status = self.status(id).await;
            if status.as_ref().is_some_and(&ok) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "node {id}: {what} never held; last status {status:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await; // polling a remote status
        }
    }

    /// The leader of `shard` that a node of `among` reports as leading
    /// itself; waits for one.
    pub async fn leader(&self, shard: u64, among: &[u64]) -> u64 {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            for &id in among {
                if let Some(s) = self.status(id).await
                    && s["shards"][shard as usize]["state"] == "leader"
                {
                    return id;
                }
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no leader of shard {shard} among {among:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await; // polling a remote status
        }
    }

    /// Wait until every node of `ids` names the same leader, in the same
    /// term, for every shard (the first elections are over).
    pub async fn stable(&self, ids: &[u64]) {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            let mut views = Vec::new();
            for &id in ids {
                views.push(self.status(id).await.map(|s| {
                    let shards = s["shards"].as_array().cloned().unwrap_or_default();
                    shards
                        .iter()
                        .map(|sh| (sh["leader"].clone(), sh["term"].clone()))
                        .collect::<Vec<_>>()
                }));
            }
            let agreed = views.iter().all(|v| {
                v.as_ref()
                    .is_some_and(|v| v.iter().all(|(l, _)| !l.is_null()))
            }) && views.windows(2).all(|w| w[0] == w[1]);
            if agreed {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no stable leaders: {views:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await; // polling a remote status
        }
    }

    /// Wait until every node of `ids` applied the same last entry on every
    /// shard (the cluster is quiet: nothing is being published).
    pub async fn converge(&self, ids: &[u64]) {
        let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
        loop {
            let mut applied = Vec::new();
            for &id in ids {
                let s = self.status(id).await;
                applied.push(s.map(|s| {
                    s["shards"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|sh| sh["applied"].clone())
                        .collect::<Vec<_>>()
                }));
            }
            if applied.iter().all(Option::is_some) && applied.windows(2).all(|w| w[0] == w[1]) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "nodes {ids:?} did not converge: {applied:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await; // polling a remote status
        }
    }

    /// Every node's stderr, for a failure message.
    pub fn logs(&self) -> String {
        self.nodes
            .values()
            .map(|n| format!("---- node {} ----\n{}", n.id, n.log_text()))
            .collect()
    }

    /// Stop every node cleanly.
    pub fn stop_all(&mut self) {
        for n in self.nodes.values_mut() {
            n.stop();
        }
    }
}

/// What a node's log holds for `topic`: (epoch, offset, payload) in order.
pub fn stored(data: &std::path::Path, topic: &str) -> Vec<(u32, u64, Value)> {
    let reader = DirReader::open(data).unwrap();
    let Some(t) = reader.topic(topic).unwrap() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut from = t.first_offset;
    loop {
        let records = reader.read(&t, from, ReadLimits::default()).unwrap();
        if records.is_empty() {
            return out;
        }
        for r in records {
            let v: Value = serde_json::from_slice(&r.payload()).unwrap_or(Value::Null);
            out.push((r.position().epoch.0, r.position().offset, v));
            from = r.position().offset + 1;
        }
    }
}

/// A WebSocket client of one node.
pub struct Client {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    /// Connect and wait for `server_ready`; `None` if the node does not
    /// answer (it is down or paused).
    pub async fn try_connect(url: &str) -> Option<Client> {
        let connect = tokio_tungstenite::connect_async(url);
        let (ws, _) = tokio::time::timeout(Duration::from_secs(2), connect)
            .await
            .ok()?
            .ok()?;
        let mut c = Client { ws };
        loop {
            let v = tokio::time::timeout(Duration::from_secs(2), c.next())
                .await
                .ok()??;
            if v["t"] == "server_ready" {
                c.hello().await;
                return Some(c);
            }
        }
    }

    /// Connect and wait for `server_ready`.
    pub async fn connect(url: &str) -> Client {
        let (ws, _) = tokio::time::timeout(EVENT_TIMEOUT, tokio_tungstenite::connect_async(url))
            .await
            .expect("connect timed out")
            .expect("connect");
        let mut c = Client { ws };
        c.expect("server_ready").await;
        c.hello().await;
        c
    }

    /// Say hello as the wse-client packages do (without encryption), so
    /// topic data flows at once rather than after the server's wait for a
    /// hello (`e2e_hello_wait`).
    async fn hello(&mut self) {
        self.send(
            &json!({"t":"client_hello","p":{"client_version":"cluster-test",
            "protocol_version":2,"features":{"encryption":false}}}),
        )
        .await;
    }

    pub async fn send(&mut self, v: &Value) {
        self.ws.send(Message::text(v.to_string())).await.unwrap();
    }

    /// The next JSON message (skipping heartbeats); `None` when the
    /// connection ended.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            match self.ws.next().await? {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).unwrap();
                    if v["t"] != "ping" {
                        return Some(v);
                    }
                    // Answer the server's heartbeat with one of ours, as
                    // the clients do: a client that only listens would
                    // otherwise be closed as idle (`idle_timeout`).
                    let ping = json!({"t":"ping","p":{"timestamp":0}}).to_string();
                    self.ws.send(Message::text(ping)).await.ok()?;
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// Skip to the next message of type `t`.
    pub async fn expect(&mut self, t: &str) -> Value {
        loop {
            let v = tokio::time::timeout(EVENT_TIMEOUT, self.next())
                .await
                .unwrap_or_else(|_| panic!("no {t} in time"))
                .unwrap_or_else(|| panic!("connection ended before {t}"));
            if v["t"] == t {
                return v;
            }
        }
    }

    /// Subscribe to `topics` (no recovery).
    pub async fn subscribe(&mut self, topics: &[String]) {
        self.send(&json!({"t":"subscription_update","p":{"action":"subscribe","topics":topics}}))
            .await;
        self.expect("subscription_update").await;
    }

    /// Subscribe to `topics`, recovering each topic of `from` after the
    /// (epoch, offset) given; panics unless every recovery succeeded.
    /// Returns the replayed messages, which come before the reply.
    pub async fn subscribe_recovering(
        &mut self,
        topics: &[String],
        from: &BTreeMap<String, (String, u64)>,
    ) -> Vec<Value> {
        let recovery: serde_json::Map<String, Value> = from
            .iter()
            .map(|(t, (e, o))| (t.clone(), json!({"epoch": e, "offset": o})))
            .collect();
        self.send(
            &json!({"t":"subscription_update","p":{"action":"subscribe","topics":topics,
            "recover":true,"recovery":recovery}}),
        )
        .await;
        let mut replayed = Vec::new();
        let reply = loop {
            let v = tokio::time::timeout(EVENT_TIMEOUT, self.next())
                .await
                .expect("no recovery reply in time")
                .expect("connection ended before the recovery reply");
            match v["t"].as_str() {
                Some("subscription_update") => break v,
                Some("m") => replayed.push(v),
                _ => {}
            }
        };
        for t in from.keys() {
            assert_eq!(
                reply["p"]["recovery"][t]["recovered"], true,
                "recovery of {t}: {reply}"
            );
        }
        replayed
    }

    /// Publish `marker` on `topic` and wait for its answer: the acknowledged
    /// (epoch, offset), or the error frame.
    pub async fn publish(&mut self, topic: &str, marker: &str) -> Result<(String, u64), Value> {
        let publish = json!({"t":"publish","id":marker,
            "p":{"topic":topic,"message":{"t":"m","p":{"k":marker}}}});
        // A node killed under us may fail the write itself (a broken
        // pipe) before any read says so: the connection ended.
        self.ws
            .send(Message::text(publish.to_string()))
            .await
            .map_err(|_| json!("connection ended"))?;
        loop {
            // Longer than the server's publish timeout (5 s): a live node
            // answers by then; a paused one does not.
            let v = tokio::time::timeout(Duration::from_secs(10), self.next())
                .await
                .map_err(|_| json!("no answer in time"))?
                .ok_or_else(|| json!("connection ended"))?;
            match v["t"].as_str() {
                Some("publish_ack") if v["p"]["id"] == marker => {
                    let epoch = v["p"]["epoch"].as_str().unwrap_or_default().to_owned();
                    return Ok((epoch, v["p"]["offset"].as_u64().unwrap()));
                }
                Some("error") if v["p"]["details"]["id"] == marker => return Err(v),
                _ => {}
            }
        }
    }
}
