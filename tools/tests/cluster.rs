//! A cluster of three `wse serve` processes on 127.0.0.1: publishers and
//! subscribers on every node, and a checker of the guarantees of
//! docs/OPERATIONS.md § Cluster from what publishers saw acknowledged,
//! what subscribers received and what each node's log holds.
//!
//! `WSE_CLUSTER_MESSAGES` sets the publishes per publisher (CI: 200; the
//! documented long run: 100,000 in total).

mod cluster_support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use cluster_support::load::{AckMap, check_histories, topics};
use cluster_support::{Client, Cluster, EVENT_TIMEOUT};
use parking_lot::Mutex;
use serde_json::Value;

const PUBLISHERS_PER_NODE: usize = 2;

fn messages_per_publisher() -> usize {
    std::env::var("WSE_CLUSTER_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// What publishers saw acknowledged, shared by them.
type Acks = Arc<Mutex<AckMap>>;

/// What a subscriber received, per topic: (epoch, offset, marker) in order.
type Received = BTreeMap<String, Vec<(String, u64, String)>>;

/// Publish `count` messages from one client of `url`, round-robin over the
/// topics, one at a time; record each acknowledgement. Returns the failures.
async fn publisher(url: String, name: String, count: usize, acks: Acks) -> Vec<Value> {
    let mut c = Client::connect(&url).await;
    let topics = topics();
    let mut failed = Vec::new();
    for i in 0..count {
        let topic = &topics[i % topics.len()];
        let marker = format!("{name}-{i}");
        match c.publish(topic, &marker).await {
            Ok((epoch, offset)) => {
                acks.lock().insert(marker, (topic.clone(), epoch, offset));
            }
            Err(e) => failed.push(e),
        }
    }
    failed
}

/// Receive until `total` messages arrived on a subscriber of `url`.
async fn subscriber(mut c: Client, total: usize) -> Received {
    let mut got: Received = BTreeMap::new();
    let mut n = 0;
    while n < total {
        let v = tokio::time::timeout(EVENT_TIMEOUT, c.next())
            .await
            .unwrap_or_else(|_| panic!("subscriber stalled after {n} of {total}"))
            .expect("subscriber connection ended");
        if v["t"] != "m" {
            continue;
        }
        let topic = v["tp"].as_str().unwrap().to_owned();
        let entry = (
            v["e"].as_str().unwrap().to_owned(),
            v["o"].as_u64().unwrap(),
            v["p"]["k"].as_str().unwrap().to_owned(),
        );
        got.entry(topic).or_default().push(entry);
        n += 1;
    }
    got
}

/// Guarantee 1 for live delivery: every subscriber got every acknowledged
/// publish exactly once, at its acknowledged position, and all got the
/// same sequence per topic.
fn check_delivery(acks: &AckMap, received: &[Received]) {
    for (i, r) in received.iter().enumerate() {
        let mut seen = BTreeSet::new();
        for (topic, msgs) in r {
            for w in msgs.windows(2) {
                assert!(
                    w[0].1 < w[1].1,
                    "subscriber {i}: {topic} out of order: {w:?}"
                );
            }
            for (epoch, offset, marker) in msgs {
                assert!(
                    seen.insert(marker.clone()),
                    "subscriber {i}: {marker} twice"
                );
                if let Some(a) = acks.get(marker) {
                    assert_eq!(
                        a,
                        &(topic.clone(), epoch.clone(), *offset),
                        "subscriber {i}: {marker}"
                    );
                }
            }
        }
        let lost: Vec<&String> = acks.keys().filter(|m| !seen.contains(*m)).collect();
        assert!(
            lost.is_empty(),
            "subscriber {i} lost {} acked publishes: {:?}",
            lost.len(),
            &lost[..lost.len().min(5)]
        );
        assert_eq!(
            r, &received[0],
            "subscriber {i} saw another order than subscriber 0"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_deliver_every_acknowledged_publish_once_in_one_order() {
    let mut cluster = Cluster::start(3, 2);
    let ids: Vec<u64> = cluster.nodes.keys().copied().collect();
    cluster.stable(&ids).await;

    let per = messages_per_publisher();
    let total = ids.len() * PUBLISHERS_PER_NODE * per;
    let mut subs = Vec::new();
    for &id in &ids {
        let mut c = Client::connect(&cluster.node(id).url()).await;
        c.subscribe(&topics()).await;
        subs.push(tokio::spawn(subscriber(c, total)));
    }
    let acks: Acks = Arc::default();
    let mut pubs = Vec::new();
    for &id in &ids {
        for p in 0..PUBLISHERS_PER_NODE {
            let url = cluster.node(id).url();
            pubs.push(tokio::spawn(publisher(
                url,
                format!("n{id}p{p}"),
                per,
                acks.clone(),
            )));
        }
    }
    for p in pubs {
        let failed = p.await.unwrap();
        assert!(
            failed.is_empty(),
            "publishes failed without faults: {failed:?}\n{}",
            cluster.logs()
        );
    }
    let mut received = Vec::new();
    for s in subs {
        received.push(s.await.unwrap());
    }
    let acks = acks.lock().clone();
    assert_eq!(acks.len(), total);
    check_delivery(&acks, &received);
    for &id in &ids {
        // Each node led a shard or forwarded publishes to a leader: it
        // has an open link by now (health's `cluster_peer_count`).
        let status = cluster.status(id).await.unwrap();
        assert!(
            !status["connected_peers"].as_array().unwrap().is_empty(),
            "node {id} reports no peer link: {status}"
        );
    }
    cluster.converge(&ids).await;
    cluster.stop_all();
    check_histories(&cluster, &acks);
}
