//! Guarantee 5 of docs/OPERATIONS.md § Cluster: presence converges on
//! every node, and a dead node's users leave everywhere.
//!
//! Three `wse serve` processes run the app of `--bench-app` (presence is
//! set by an app): a client asks it to join a topic with presence data,
//! and a probe client on each node asks it for that node's view of the
//! topic's members. Users are connections (no JWT), tagged with the node
//! they joined on.

mod cluster_support;

use std::collections::BTreeMap;
use std::time::Duration;

use cluster_support::{Client, Cluster, EVENT_TIMEOUT};
use serde_json::{Value, json};

const ROOM: &str = "room";

/// Per node tag (the node a user joined on), how many users a node sees.
type View = BTreeMap<u64, usize>;

/// A client of node `id` that joins the room's presence, tagged `id`.
async fn member(cluster: &Cluster, id: u64) -> Client {
    let mut c = Client::connect(&cluster.node(id).url()).await;
    c.send(&json!({"t":"bench_join","p":{"topic":ROOM,"data":{"node":id}}}))
        .await;
    c.expect("bench_joined").await;
    c
}

/// Node `probe`'s client's view of the room: users per tag.
async fn view(probe: &mut Client) -> View {
    probe
        .send(&json!({"t":"bench_members","p":{"topic":ROOM}}))
        .await;
    let v = probe.expect("bench_members").await;
    let mut tags = View::new();
    for (_, u) in v["p"]["users"].as_object().unwrap() {
        assert_eq!(u["connections"], 1, "one connection per user: {u}");
        *tags.entry(u["data"]["node"].as_u64().unwrap()).or_default() += 1;
    }
    tags
}

/// Wait until every probe's node sees `want`.
async fn converge(cluster: &Cluster, probes: &mut BTreeMap<u64, Client>, want: &[(u64, usize)]) {
    let want: View = want.iter().copied().filter(|(_, n)| *n > 0).collect();
    let deadline = tokio::time::Instant::now() + EVENT_TIMEOUT;
    loop {
        let mut views = BTreeMap::new();
        for (id, probe) in probes.iter_mut() {
            views.insert(*id, view(probe).await);
        }
        if views.values().all(|v| *v == want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "presence did not converge to {want:?}: {views:?}\n{}",
            cluster.logs()
        );
        // Polling the nodes' state: there is no event for "converged".
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A probe client on each of `ids` (not a member itself).
async fn probes(cluster: &Cluster, ids: &[u64]) -> BTreeMap<u64, Client> {
    let mut probes = BTreeMap::new();
    for &id in ids {
        probes.insert(id, Client::connect(&cluster.node(id).url()).await);
    }
    probes
}

/// Members on every node of `ids`, `per_node` each.
async fn members(cluster: &Cluster, ids: &[u64], per_node: usize) -> BTreeMap<u64, Vec<Client>> {
    let mut all = BTreeMap::new();
    for &id in ids {
        let mut on = Vec::new();
        for _ in 0..per_node {
            on.push(member(cluster, id).await);
        }
        all.insert(id, on);
    }
    all
}

/// Receive on `c` until `n` `presence_leave` frames of users tagged `tag`.
async fn leaves_of(c: &mut Client, tag: u64, n: usize) {
    let mut seen = 0;
    while seen < n {
        let v: Value = c.expect("presence_leave").await;
        if v["p"]["data"]["node"] == tag {
            seen += 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn presence_converges_and_a_killed_nodes_users_leave_everywhere() {
    let mut cluster = Cluster::start_with_args(
        3,
        2,
        false,
        &["--bench-app", "--cluster-node-timeout-ms", "1500"],
    );
    let ids = [1, 2, 3];
    cluster.stable(&ids).await;
    let mut probes = probes(&cluster, &ids).await;
    let mut on = members(&cluster, &ids, 3).await;
    converge(&cluster, &mut probes, &[(1, 3), (2, 3), (3, 3)]).await;

    // A user leaves: everywhere.
    drop(on.get_mut(&2).unwrap().pop());
    converge(&cluster, &mut probes, &[(1, 3), (2, 2), (3, 3)]).await;

    // Node 3 dies with its users connected: a leader removes them, and
    // the members on node 1 are told.
    cluster.node_mut(3).kill9();
    probes.remove(&3);
    on.remove(&3);
    let watcher = &mut on.get_mut(&1).unwrap()[0];
    leaves_of(watcher, 3, 3).await;
    converge(&cluster, &mut probes, &[(1, 3), (2, 2)]).await;

    // Back on its files: no ghost of its old users; new ones join.
    cluster.start_node(3);
    probes.insert(3, Client::connect(&cluster.node(3).url()).await);
    let back = vec![member(&cluster, 3).await, member(&cluster, 3).await];
    converge(&cluster, &mut probes, &[(1, 3), (2, 2), (3, 2)]).await;
    drop(back);
    converge(&cluster, &mut probes, &[(1, 3), (2, 2)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_restarted_at_once_removes_the_users_of_its_previous_run() {
    // No leader would judge node 2 dead in this test's time: the entries
    // of its previous run go because node 2 removes them itself.
    let mut cluster = Cluster::start_with_args(
        3,
        2,
        false,
        &["--bench-app", "--cluster-node-timeout-ms", "600000"],
    );
    let ids = [1, 2, 3];
    cluster.stable(&ids).await;
    let mut probes = probes(&cluster, &ids).await;
    let on = members(&cluster, &ids, 2).await;
    converge(&cluster, &mut probes, &[(1, 2), (2, 2), (3, 2)]).await;

    cluster.node_mut(2).kill9();
    probes.remove(&2);
    cluster.start_node(2);
    probes.insert(2, Client::connect(&cluster.node(2).url()).await);
    let again = member(&cluster, 2).await;
    converge(&cluster, &mut probes, &[(1, 2), (2, 1), (3, 2)]).await;
    drop((on, again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cut_off_nodes_users_leave_and_join_again_when_it_is_back() {
    let cluster = Cluster::start_with_args(
        3,
        2,
        true,
        &["--bench-app", "--cluster-node-timeout-ms", "1500"],
    );
    let ids = [1, 2, 3];
    cluster.stable(&ids).await;
    let mut probes = probes(&cluster, &ids).await;
    let mut on = members(&cluster, &ids, 2).await;
    converge(&cluster, &mut probes, &[(1, 2), (2, 2), (3, 2)]).await;

    // Node 3 is cut off from both others: the majority takes it for dead.
    let links = cluster.links.clone().unwrap();
    links.isolate(3, &[1, 2]);
    let mut minority = probes.split_off(&3);
    converge(&cluster, &mut probes, &[(1, 2), (2, 2)]).await;
    // A join on the cut-off node cannot commit yet.
    on.get_mut(&3).unwrap().push(member(&cluster, 3).await);

    // Back: its users (the new one too) join again, on every node.
    links.heal();
    probes.append(&mut minority);
    converge(&cluster, &mut probes, &[(1, 2), (2, 2), (3, 3)]).await;
    drop(on);
}
