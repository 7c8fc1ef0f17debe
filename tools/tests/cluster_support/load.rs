//! Load for fault tests: publishers on every node that keep going through
//! faults (reconnecting when their node goes away), and the checker of
//! what they saw acknowledged against what the nodes' logs hold.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use serde_json::Value;
use tokio::sync::watch;

use super::{Client, Cluster, stored};

/// Times a publisher sends one message before it gives up on it.
const ATTEMPTS: usize = 3;

/// What publishers saw acknowledged: marker → (topic, epoch, offset).
pub type AckMap = BTreeMap<String, (String, String, u64)>;

/// Publishers running against a cluster.
pub struct Load {
    acks: Arc<Mutex<AckMap>>,
    /// Publishes given up after every attempt failed (their fate is
    /// unknown: they may be committed, never twice).
    pub failed: Arc<AtomicUsize>,
    acked: watch::Receiver<usize>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// A client of `url`, waiting for its node while it is down or paused (a
/// real client's reconnect loop), up to the event timeout.
async fn connect_when_back(url: &str) -> Option<Client> {
    let deadline = tokio::time::Instant::now() + super::EVENT_TIMEOUT;
    while tokio::time::Instant::now() < deadline {
        if let Some(c) = Client::try_connect(url).await {
            return Some(c);
        }
        // Reconnect backoff, as clients do; nothing to await instead.
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    None
}

/// The topics the load publishes on.
pub fn topics() -> Vec<String> {
    (0..4).map(|i| format!("room/{i}")).collect()
}

impl Load {
    /// One publisher per node of `cluster`, each publishing `count`
    /// messages one at a time, round-robin over [`topics`], each with a
    /// unique id, sent again with that id when it fails.
    pub fn start(cluster: &Cluster, count: usize) -> Load {
        let acks = Arc::new(Mutex::new(AckMap::new()));
        let failed = Arc::new(AtomicUsize::new(0));
        let (tx, acked) = watch::channel(0usize);
        let tx = Arc::new(tx);
        let tasks = cluster
            .nodes
            .values()
            .map(|n| {
                let (url, name) = (n.url(), format!("n{}", n.id));
                let (acks, failed, tx) = (acks.clone(), failed.clone(), tx.clone());
                tokio::spawn(async move {
                    let topics = topics();
                    let mut client: Option<Client> = None;
                    for i in 0..count {
                        let topic = &topics[i % topics.len()];
                        let marker = format!("{name}-{i}");
                        // A failed publish is sent again with the same id
                        // (guarantee 4: never stored twice), a few times.
                        let mut acked = None;
                        for _ in 0..ATTEMPTS {
                            let c = match client.as_mut() {
                                Some(c) => c,
                                None => match connect_when_back(&url).await {
                                    Some(c) => client.insert(c),
                                    None => continue,
                                },
                            };
                            match c.publish(topic, &marker).await {
                                Ok(position) => {
                                    acked = Some(position);
                                    break;
                                }
                                // No frame: the connection ended or hung.
                                Err(e) if !e.is_object() => client = None,
                                Err(_) => {}
                            }
                        }
                        let Some((epoch, offset)) = acked else {
                            failed.fetch_add(1, Ordering::Relaxed);
                            continue;
                        };
                        let n = {
                            let mut a = acks.lock();
                            a.insert(marker, (topic.clone(), epoch, offset));
                            a.len()
                        };
                        tx.send_replace(n);
                    }
                })
            })
            .collect();
        Load {
            acks,
            failed,
            acked,
            tasks,
        }
    }

    /// Wait until `n` publishes were acknowledged in all.
    pub async fn acked_at_least(&mut self, n: usize) {
        let wait = self.acked.wait_for(|&a| a >= n);
        tokio::time::timeout(super::EVENT_TIMEOUT, wait)
            .await
            .unwrap_or_else(|_| panic!("fewer than {n} publishes acknowledged in time"))
            .unwrap();
    }

    /// Wait for every publisher to finish; what they saw acknowledged.
    pub async fn finish(self) -> AckMap {
        for t in self.tasks {
            t.await.unwrap();
        }
        self.acks.lock().clone()
    }
}

/// What one node's log holds of the load's topics.
pub type History = BTreeMap<String, Vec<(u32, u64, Value)>>;

/// A node's history of the load's topics (works beside a running node).
pub fn history(data: &std::path::Path) -> History {
    topics()
        .into_iter()
        .map(|t| (t.clone(), stored(data, &t)))
        .collect()
}

/// The guarantees from the logs: each node's history is the same (same
/// records at the same positions), no marker is stored twice, and every
/// acknowledged publish is stored at its acknowledged position. Returns
/// (lost, duplicated, differing positions) for the report; panics with
/// the details when any is not zero.
pub fn check_histories(cluster: &Cluster, acks: &AckMap) -> (usize, usize, usize) {
    let mut lost = 0;
    let mut duplicated = 0;
    let mut differing = 0;
    let mut first: Option<History> = None;
    let mut report = String::new();
    for node in cluster.nodes.values() {
        let h = history(&node.data);
        let mut at = BTreeMap::new();
        for (topic, records) in &h {
            for (epoch, offset, v) in records {
                let marker = v["p"]["k"].as_str().unwrap_or_default().to_owned();
                if at
                    .insert(
                        marker.clone(),
                        (topic.clone(), format!("{epoch:08x}"), *offset),
                    )
                    .is_some()
                {
                    duplicated += 1;
                    report.push_str(&format!("node {}: {marker} stored twice\n", node.id));
                }
            }
        }
        for (m, a) in acks {
            if at.get(m) != Some(a) {
                lost += 1;
                report.push_str(&format!(
                    "node {}: acked {m} {a:?} stored as {:?}\n",
                    node.id,
                    at.get(m)
                ));
            }
        }
        match &first {
            None => first = Some(h),
            Some(f) => {
                for (topic, records) in f {
                    let theirs = &h[topic];
                    let same = records.iter().zip(theirs).filter(|(a, b)| a == b).count();
                    let diff = records.len().max(theirs.len()) - same;
                    if diff > 0 {
                        differing += diff;
                        report.push_str(&format!(
                            "node {}: {topic}: {diff} positions differ from node 1\n",
                            node.id
                        ));
                    }
                }
            }
        }
    }
    assert!(
        lost + duplicated + differing == 0,
        "lost {lost}, duplicated {duplicated}, differing {differing}:\n{report}\n{}",
        cluster.logs()
    );
    (lost, duplicated, differing)
}

/// A subscriber to the load's topics on one node, collecting what it gets.
/// When its node goes away it connects again (to the same node, once it is
/// back) and recovers from the last position it got on each topic, so what
/// it collects must still be the log exactly (guarantees 1 and 2).
pub struct Subscriber {
    got: Arc<Mutex<History>>,
    count: watch::Receiver<usize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Subscriber {
    /// Subscribe on `url`.
    pub async fn start(url: &str) -> Subscriber {
        let mut first = Client::connect(url).await;
        first.subscribe(&topics()).await;
        let got = Arc::new(Mutex::new(History::new()));
        let (tx, count) = watch::channel(0usize);
        let (g, url) = (got.clone(), url.to_owned());
        let task = tokio::spawn(async move {
            let record = |v: Value| {
                let topic = v["tp"].as_str().unwrap_or_default().to_owned();
                let epoch =
                    u32::from_str_radix(v["e"].as_str().unwrap_or_default(), 16).unwrap_or(0);
                let offset = v["o"].as_u64().unwrap_or(u64::MAX);
                let mut g = g.lock();
                g.entry(topic).or_default().push((epoch, offset, v));
                tx.send_replace(g.values().map(Vec::len).sum());
            };
            let mut client = Some(first);
            loop {
                let mut c = match client.take() {
                    Some(c) => c,
                    None => match connect_when_back(&url).await {
                        Some(mut c) => {
                            let from = last_positions(&g.lock());
                            for v in c.subscribe_recovering(&topics(), &from).await {
                                record(v);
                            }
                            c
                        }
                        None => continue,
                    },
                };
                while let Some(v) = c.next().await {
                    if v["t"] == "m" {
                        record(v);
                    }
                }
            }
        });
        Subscriber {
            got,
            count,
            _task: task,
        }
    }

    /// Wait until it received as many messages as `history` holds, then
    /// check it received exactly that history: every committed record
    /// once, in log order, at its position (guarantee 1, live).
    pub async fn check_received(&mut self, history: &History) {
        let total: usize = history.values().map(Vec::len).sum();
        let wait = self.count.wait_for(|&n| n >= total);
        if tokio::time::timeout(super::EVENT_TIMEOUT, wait)
            .await
            .is_err()
        {
            let got = self.got.lock().clone();
            let n: usize = got.values().map(Vec::len).sum();
            let mut missing = Vec::new();
            for (topic, records) in history {
                let have: std::collections::BTreeSet<u64> = got
                    .get(topic)
                    .map(|r| r.iter().map(|x| x.1).collect())
                    .unwrap_or_default();
                let gaps: Vec<u64> = records
                    .iter()
                    .map(|r| r.1)
                    .filter(|o| !have.contains(o))
                    .collect();
                missing.push(format!(
                    "{topic}: {} missing from {:?}",
                    gaps.len(),
                    gaps.first()
                ));
            }
            panic!("the subscriber got {n} of {total} committed records: {missing:?}");
        }
        let got = self.got.lock().clone();
        for (topic, records) in history {
            let mine: Vec<(u32, u64, &Value)> = got
                .get(topic)
                .map(|r| r.iter().map(|(e, o, v)| (*e, *o, &v["p"])).collect())
                .unwrap_or_default();
            let stored: Vec<(u32, u64, &Value)> =
                records.iter().map(|(e, o, v)| (*e, *o, &v["p"])).collect();
            assert_eq!(
                mine, stored,
                "{topic}: the subscriber's stream differs from the log"
            );
        }
    }
}

/// The last (epoch, offset) received on each topic, as a recovery request
/// names them.
fn last_positions(got: &History) -> BTreeMap<String, (String, u64)> {
    got.iter()
        .filter_map(|(t, r)| {
            r.last()
                .map(|(e, o, _)| (t.clone(), (format!("{e:08x}"), *o)))
        })
        .collect()
}
