//! Membership changes on `wse serve` processes through the `wse cluster`
//! command: a fourth node joins a running cluster of three, is added
//! (learner, caught up, voter) on every shard, holds the same records and
//! takes publishes; it is removed again. And a cluster that lost two of
//! three nodes, forced to the survivor: old positions are not recovered.

mod cluster_support;

use cluster_support::load::topics;
use cluster_support::membership::{arg, wse};
use cluster_support::{Client, Cluster, stored};
use serde_json::{Value, json};

/// Each shard's voters as node `id` reports them.
async fn voters(c: &Cluster, id: u64) -> Vec<Value> {
    let s = c.status(id).await.expect("status");
    let shards = s["shards"].as_array().unwrap();
    shards.iter().map(|sh| sh["voters"].clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_is_added_and_removed_with_the_cluster_command() {
    let mut c = Cluster::start(3, 2);
    c.stable(&[1, 2, 3]).await;
    let topics = topics();
    let mut first = Client::connect(&c.node(1).url()).await;
    for (i, topic) in topics.iter().enumerate() {
        first.publish(topic, &format!("before-{i}")).await.unwrap();
    }

    c.start_joining(4);
    let (peer, addr) = (c.node(2).peer_addr(), c.node(4).peer_addr());
    let add = [
        "cluster", "add-node", "--peer", &peer, "--id", "4", "--addr", &addr,
    ];
    let (code, out, err) = wse(&add);
    assert_eq!(code, 0, "{out}{err}\n{}", c.logs());
    assert!(out.contains("changed shards: 0,1"), "{out}");
    assert_eq!(voters(&c, 4).await, vec![json!([1, 2, 3, 4]); 2]);

    let mut fourth = Client::connect(&c.node(4).url()).await;
    for (i, topic) in topics.iter().enumerate() {
        fourth.publish(topic, &format!("on-4-{i}")).await.unwrap();
    }
    c.converge(&[1, 2, 3, 4]).await;
    for topic in &topics {
        let held = stored(&c.node(4).data, topic);
        assert_eq!(held.len(), 2, "{topic}");
        assert_eq!(held, stored(&c.node(1).data, topic), "{topic}");
    }

    let (code, again, err) = wse(&add);
    assert_eq!(code, 0, "{again}{err}");
    assert!(again.contains("unchanged shards: 0,1"), "{again}");

    let peer = c.node(1).peer_addr();
    let remove = ["cluster", "remove-node", "--peer", &peer, "--id", "4"];
    let (code, out, err) = wse(&remove);
    assert_eq!(code, 0, "{out}{err}\n{}", c.logs());
    assert_eq!(voters(&c, 1).await, vec![json!([1, 2, 3]); 2]);
    c.stop_all();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_membership_gives_old_positions_an_explicit_not_recovered() {
    let mut c = Cluster::start(3, 2);
    c.stable(&[1, 2, 3]).await;
    let topic = topics()[0].clone();
    let mut client = Client::connect(&c.node(1).url()).await;
    let mut last = None;
    for i in 0..3 {
        last = Some(client.publish(&topic, &format!("old-{i}")).await.unwrap());
    }
    let (old_epoch, old_offset) = last.unwrap();
    c.converge(&[1, 2, 3]).await;
    drop(client);

    // Nodes 2 and 3 are lost with their data; node 1 is forced alone.
    c.stop_all();
    for id in [2, 3] {
        std::fs::remove_dir_all(&c.node(id).data).unwrap();
    }
    let data = c.node(1).data.clone();
    let members = format!("1={}", c.node(1).peer_addr());
    let (code, out, err) = wse(&[
        "cluster",
        "force-membership",
        "--data-dir",
        arg(&data),
        "--node-id",
        "1",
        "--members",
        &members,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    c.start_node(1);
    for shard in 0..2 {
        c.leader(shard, &[1]).await;
    }

    c.applied_all(1).await;

    // The topic is gone: an old position is explicitly not recovered.
    let mut client = Client::connect(&c.node(1).url()).await;
    client
        .send(
            &json!({"t":"subscription_update","p":{"action":"subscribe","topics":[&topic],
            "recover":true,"recovery":{&topic:{"epoch":old_epoch,"offset":old_offset}}}}),
        )
        .await;
    let answer = client.expect("subscription_update").await;
    let recovery = &answer["p"]["recovery"][&topic];
    assert_eq!(recovery["recovered"], false, "{answer}");
    // New publishes start a new epoch at offset 0.
    let (epoch, offset) = client.publish(&topic, "new-0").await.unwrap();
    assert_ne!(epoch, old_epoch, "a new epoch");
    assert_eq!(offset, 0, "the new history starts at 0");
    c.stop_all();
}
