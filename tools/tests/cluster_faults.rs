//! Faults under load on three `wse serve` processes: kill -9 of a shard
//! leader and its restart, SIGSTOP of a leader past the election timeout,
//! a partition that isolates the leader, and randomised schedules of all
//! three. After each: 0 acknowledged publishes lost, 0 stored twice, 0
//! positions that differ between nodes; a subscriber on a node that stayed
//! up received every committed record once, in log order.
//!
//! `WSE_CLUSTER_SEED` replays a randomised schedule; `WSE_CLUSTER_FAULTS`
//! sets its length (CI: 3).

mod cluster_support;

use std::time::Duration;

use cluster_support::load::{Load, Subscriber, check_histories, history};
use cluster_support::{Cluster, EVENT_TIMEOUT};
use rand::{Rng, SeedableRng};

/// Publishes per publisher (one publisher per node).
const COUNT: usize = 300;

/// Start 3 nodes of 2 shards; returns the cluster and the leader of shard 0.
async fn cluster(proxies: bool) -> (Cluster, u64) {
    let c = if proxies {
        Cluster::start_with_proxies(3, 2)
    } else {
        Cluster::start(3, 2)
    };
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    c.stable(&ids).await;
    let leader = c.leader(0, &ids).await;
    (c, leader)
}

/// The end of every fault test: publishers done, every node running and
/// caught up, then the checks.
async fn settle_and_check(mut c: Cluster, load: Load, mut sub: Subscriber, watched: u64) {
    let acks = load.finish().await;
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    c.converge(&ids).await;
    sub.check_received(&history(&c.node(watched).data)).await;
    c.stop_all();
    let (lost, dup, diff) = check_histories(&c, &acks);
    println!(
        "acked {}, lost {lost}, duplicated {dup}, differing {diff}",
        acks.len()
    );
    assert!(
        acks.len() > COUNT,
        "too few publishes acknowledged to mean anything"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_a_shard_leader_loses_nothing_and_it_catches_up_after_restart() {
    let (mut c, leader) = cluster(false).await;
    let watched = c.nodes.keys().copied().find(|&i| i != leader).unwrap();
    let sub = Subscriber::start(&c.node(watched).url()).await;
    let mut load = Load::start(&c, COUNT);
    load.acked_at_least(COUNT / 2).await;
    c.node_mut(leader).kill9();
    let rest: Vec<u64> = c.nodes.keys().copied().filter(|&i| i != leader).collect();
    let new_leader = c.leader(0, &rest).await;
    load.acked_at_least(COUNT).await;
    // The new leader reports how long the dead node has been behind, and
    // that it saw the leader change.
    let dead = leader.to_string();
    c.wait_status(new_leader, "lag of the dead node in seconds", |s| {
        let shard = &s["shards"][0];
        shard["lag_millis"][&dead].as_u64() >= Some(500)
            && shard["leader_changes"].as_u64() >= Some(1)
    })
    .await;
    c.start_node(leader);
    settle_and_check(c, load, sub, watched).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_paused_past_the_election_timeout_loses_nothing() {
    let (c, leader) = cluster(false).await;
    let watched = c.nodes.keys().copied().find(|&i| i != leader).unwrap();
    let sub = Subscriber::start(&c.node(watched).url()).await;
    let mut load = Load::start(&c, COUNT);
    load.acked_at_least(COUNT / 2).await;
    c.node(leader).pause();
    let rest: Vec<u64> = c.nodes.keys().copied().filter(|&i| i != leader).collect();
    c.leader(0, &rest).await;
    load.acked_at_least(COUNT).await;
    c.node(leader).resume();
    settle_and_check(c, load, sub, watched).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partition_that_isolates_the_leader_loses_nothing() {
    let (c, leader) = cluster(true).await;
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    let watched = ids.iter().copied().find(|&i| i != leader).unwrap();
    let sub = Subscriber::start(&c.node(watched).url()).await;
    let mut load = Load::start(&c, COUNT);
    load.acked_at_least(COUNT / 2).await;
    let links = c.links.clone().unwrap();
    links.isolate(leader, &ids);
    let rest: Vec<u64> = ids.iter().copied().filter(|&i| i != leader).collect();
    c.leader(0, &rest).await;
    load.acked_at_least(COUNT).await;
    links.heal();
    settle_and_check(c, load, sub, watched).await;
}

/// A fault of a randomised schedule.
#[derive(Debug, Clone, Copy)]
enum Fault {
    Kill,
    Pause,
    Isolate,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn randomised_fault_schedules_lose_nothing() {
    let seed: u64 = std::env::var("WSE_CLUSTER_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let faults: usize = std::env::var("WSE_CLUSTER_FAULTS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    println!("WSE_CLUSTER_SEED={seed} WSE_CLUSTER_FAULTS={faults}");
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let (mut c, _) = cluster(true).await;
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    // Node 1 is never faulted: its subscriber sees the whole history.
    let watched = 1;
    let sub = Subscriber::start(&c.node(watched).url()).await;
    let per_step = COUNT / 3;
    let mut load = Load::start(&c, per_step * (faults + 2));
    let links = c.links.clone().unwrap();
    let mut acked = per_step;
    load.acked_at_least(acked).await;
    for step in 0..faults {
        let victim = ids[rng.random_range(1..ids.len())];
        let fault = [Fault::Kill, Fault::Pause, Fault::Isolate][rng.random_range(0..3)];
        println!("step {step}: {fault:?} node {victim}");
        match fault {
            Fault::Kill => c.node_mut(victim).kill9(),
            Fault::Pause => c.node(victim).pause(),
            Fault::Isolate => links.isolate(victim, &ids),
        }
        let rest: Vec<u64> = ids.iter().copied().filter(|&i| i != victim).collect();
        for shard in 0..2 {
            c.leader(shard, &rest).await;
        }
        acked += per_step;
        let progress = load.acked_at_least(acked);
        if tokio::time::timeout(EVENT_TIMEOUT - Duration::from_secs(1), progress)
            .await
            .is_err()
        {
            // Keep what the nodes said: their directories go with the test.
            let dump = std::env::temp_dir().join(format!("wse-cluster-faults-{seed}.log"));
            let _ = std::fs::write(&dump, c.logs());
            panic!(
                "step {step}: fewer than {acked} publishes acknowledged in time; node logs in {}",
                dump.display()
            );
        }
        match fault {
            Fault::Kill => c.start_node(victim),
            Fault::Pause => c.node(victim).resume(),
            Fault::Isolate => links.heal(),
        }
    }
    settle_and_check(c, load, sub, watched).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rolling_restart_of_every_node_under_load_loses_nothing() {
    let (mut c, _) = cluster(false).await;
    let ids: Vec<u64> = c.nodes.keys().copied().collect();
    // Its node restarts too: it reconnects and recovers (guarantee 2).
    let watched = 1;
    let sub = Subscriber::start(&c.node(watched).url()).await;
    let per_step = COUNT / 3;
    let mut load = Load::start(&c, per_step * (ids.len() + 2));
    let mut acked = per_step;
    load.acked_at_least(acked).await;
    for &id in &ids {
        c.node_mut(id).stop();
        let rest: Vec<u64> = ids.iter().copied().filter(|&i| i != id).collect();
        for shard in 0..2 {
            c.leader(shard, &rest).await;
        }
        acked += per_step;
        load.acked_at_least(acked).await;
        c.start_node(id);
        c.stable(&ids).await;
    }
    settle_and_check(c, load, sub, watched).await;
}
