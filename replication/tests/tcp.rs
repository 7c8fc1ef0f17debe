//! The cluster scenarios over the TCP peer transport (real sockets on
//! 127.0.0.1), two shards per node sharing each node's connections; plus
//! forwarding, a peer that goes away and comes back, peers that lie, and
//! the status query.

mod common;

use common::tcp::{SHARDS, TcpCluster};
use common::{EVENT_TIMEOUT, assert_identical_logs, fast_options, publish_many};
use openraft::error::RPCError;
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::VoteRequest;
use openraft::{BasicNode, Vote};
use parking_lot::Mutex;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use wse_log::Position;
use wse_replication::net::BoxFuture;
use wse_replication::{
    ForwardError, ForwardRefused, NetError, NetOptions, NodeId, PeerListener, PeerService, Peers,
    Publish, Raft, ShardOptions, query_status,
};

/// The topics of `shard` (topics of different shards never mix).
fn topics(shard: u32) -> [&'static str; 2] {
    match shard {
        0 => ["s0/a", "s0/b"],
        _ => ["s1/a", "s1/b"],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_hold_the_same_records_over_tcp() {
    let c = TcpCluster::start(3).await;
    let mut runs = Vec::new();
    for shard in 0..SHARDS {
        let leader = c.leader(shard, &c.ids).await;
        let s = c.node(leader).shards[shard as usize].clone();
        runs.push(tokio::spawn(async move {
            let acked = publish_many(&s, &topics(shard), "m", 300, 10).await;
            (shard, leader, acked)
        }));
    }
    for run in runs {
        let (shard, leader, acked) = run.await.unwrap();
        assert_eq!(acked.len(), 300);
        c.converge(shard, leader, &c.ids).await;
        assert_identical_logs(&c.logs(&c.ids), &topics(shard), &acked);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_failure_loses_nothing_and_a_restarted_node_catches_up_over_tcp() {
    let mut c = TcpCluster::start(3).await;
    let old = c.leader(0, &c.ids).await;
    let mut acked = Vec::new();
    for shard in 0..SHARDS {
        let leader = c.leader(shard, &c.ids).await;
        let s = &c.node(leader).shards[shard as usize];
        acked.push(publish_many(s, &topics(shard), "before", 100, 10).await);
    }

    c.stop_node(old).await;
    let rest: Vec<NodeId> = c.ids.iter().copied().filter(|&i| i != old).collect();
    for shard in 0..SHARDS {
        let new = c.leader(shard, &rest).await;
        assert_ne!(new, old);
        let s = &c.node(new).shards[shard as usize];
        let after = publish_many(s, &topics(shard), "after", 100, 10).await;
        acked[shard as usize].extend(after);
        c.converge(shard, new, &rest).await;
        assert_identical_logs(&c.logs(&rest), &topics(shard), &acked[shard as usize]);
    }

    c.start_node(old).await;
    for shard in 0..SHARDS {
        let leader = c.leader(shard, &rest).await;
        c.converge(shard, leader, &c.ids).await;
        assert_identical_logs(&c.logs(&c.ids), &topics(shard), &acked[shard as usize]);
    }
}

/// A node stopped while shard 0's leader purged its Raft log past the
/// node's entries catches up by installing a snapshot, fetching the
/// records with `ReadRecords` over the peer link.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_stopped_during_purges_fetches_the_records_over_tcp() {
    let options = ShardOptions {
        snapshot_every: 50,
        snapshot_keep: 20,
        ..fast_options()
    };
    let mut c = TcpCluster::start_with(3, options).await;
    let leader = c.leader(0, &c.ids).await;
    let s = c.node(leader).shards[0].clone();
    let mut acked = publish_many(&s, &topics(0), "before", 100, 10).await;
    let stopped = c.ids.iter().copied().find(|&i| i != leader).unwrap();
    c.converge(0, leader, &c.ids).await;
    let had = c.node(stopped).shards[0].metrics().last_log_index.unwrap();
    c.stop_node(stopped).await;
    acked.extend(publish_many(&s, &topics(0), "during", 400, 10).await);
    c.raft(leader, 0)
        .wait(Some(EVENT_TIMEOUT))
        .metrics(
            |m| m.purged.is_some_and(|p| p.index > had),
            "the leader purged past the stopped node's log",
        )
        .await
        .unwrap();

    c.start_node(stopped).await;
    c.converge(0, leader, &c.ids).await;
    let m = c.node(stopped).shards[0].metrics();
    assert!(
        m.snapshot.is_some_and(|l| l.index > had),
        "node {stopped} installed a snapshot: {m:?}"
    );
    assert_identical_logs(&c.logs(&c.ids), &topics(0), &acked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forwarded_publish_is_committed_by_the_leader_and_refused_by_a_follower() {
    let c = TcpCluster::start(3).await;
    let leader = c.leader(0, &c.ids).await;
    let followers: Vec<NodeId> = c.ids.iter().copied().filter(|&i| i != leader).collect();
    let (from, other) = (followers[0], followers[1]);
    c.raft(other, 0)
        .wait(Some(EVENT_TIMEOUT))
        .metrics(
            |m| m.current_leader == Some(leader),
            "follower knows the leader",
        )
        .await
        .unwrap();
    let peers = &c.node(from).peers;
    let addr = |id: NodeId| c.addrs[&id].to_string();
    let batch = vec![Publish::new("s0/a", "one"), Publish::new("s0/a", "two")];

    let positions = peers
        .forward(leader, &addr(leader), 0, batch.clone(), EVENT_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(positions.len(), 2);
    assert_eq!(positions[1].offset, positions[0].offset + 1);
    c.converge(0, leader, &c.ids).await;
    let held = common::log_contents(&c.node(from).log, "s0/a");
    assert!(
        held.contains(&(positions[1].offset, "two".into())),
        "{held:?}"
    );

    let refused = peers
        .forward(other, &addr(other), 0, batch.clone(), EVENT_TIMEOUT)
        .await;
    assert!(
        matches!(
            refused,
            Err(ForwardError::Refused(ForwardRefused::NotLeader { leader: Some(l) })) if l == leader
        ),
        "{refused:?}"
    );

    let no_shard = peers
        .forward(leader, &addr(leader), 7, batch, EVENT_TIMEOUT)
        .await;
    assert!(
        matches!(
            no_shard,
            Err(ForwardError::Refused(ForwardRefused::Unavailable(_)))
        ),
        "{no_shard:?}"
    );

    let status = query_status(&addr(leader), &c.net, EVENT_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(status["node"], leader);
    assert_eq!(status["leaders"][0], leader);
}

/// A vote request that changes nothing on its receiver (term 0 is below
/// every vote), to probe whether a peer answers.
async fn probe(peers: &Peers, from: NodeId, to: NodeId, addr: SocketAddr) -> Result<(), String> {
    let mut link = peers
        .network(0)
        .new_client(to, &BasicNode::new(addr.to_string()))
        .await;
    let request = VoteRequest::new(Vote::new(0, from), None);
    let option = RPCOption::new(Duration::from_secs(2));
    match link.vote(request, option).await {
        Ok(answer) if !answer.vote_granted => Ok(()),
        Ok(answer) => panic!("a term-0 vote was granted: {answer:?}"),
        Err(RPCError::Unreachable(e)) => Err(e.to_string()),
        Err(e) => panic!("expected Unreachable, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_peer_that_goes_away_is_unreachable_and_reconnected_when_it_returns() {
    let mut c = TcpCluster::start(3).await;
    let leader = c.leader(0, &c.ids).await;
    let gone = *c.ids.iter().find(|&&i| i != leader).unwrap();
    let peers = c.node(leader).peers.clone();
    let addr = c.addrs[&gone];
    probe(&peers, leader, gone, addr).await.unwrap();

    c.stop_node(gone).await;
    let t = Instant::now();
    let err = probe(&peers, leader, gone, addr).await.unwrap_err();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert!(err.contains(&addr.to_string()), "{err}");
    let forwarded = peers
        .forward(
            gone,
            &addr.to_string(),
            0,
            vec![Publish::new("s0/a", "x")],
            EVENT_TIMEOUT,
        )
        .await;
    assert!(
        matches!(forwarded, Err(ForwardError::Unreachable(_))),
        "{forwarded:?}"
    );

    // Back on the same port: the leader's Raft reconnects (the node
    // catches up), and so does any other caller after the backoff.
    c.start_node(gone).await;
    let s = c.node(leader).shards[0].clone();
    let acked = publish_many(&s, &topics(0), "back", 20, 2).await;
    c.converge(0, leader, &c.ids).await;
    assert_identical_logs(&c.logs(&c.ids), &topics(0), &acked);
    let until = Instant::now() + EVENT_TIMEOUT;
    // No event tells when this caller's backoff is over: retry at its pace.
    while let Err(e) = probe(&peers, leader, gone, addr).await {
        assert!(Instant::now() < until, "not reconnected: {e}");
        tokio::time::sleep(NetOptions::default().reconnect_backoff).await;
    }
}

/// A service with no shards that records the forwarded batches it is
/// given, in order, and answers them when `answer` says so.
struct Recorder {
    seen: Mutex<Vec<String>>,
    arrived: Notify,
    answer: bool,
}

impl PeerService for Recorder {
    fn raft(&self, _shard: u32) -> Option<Raft> {
        None
    }

    fn forward(
        &self,
        _shard: u32,
        batch: Vec<Publish>,
    ) -> BoxFuture<'static, Result<Vec<Position>, ForwardRefused>> {
        self.seen.lock().push(batch[0].topic.clone());
        self.arrived.notify_one();
        if self.answer {
            Box::pin(async { Ok(Vec::new()) })
        } else {
            Box::pin(std::future::pending())
        }
    }

    fn status(&self) -> serde_json::Value {
        serde_json::json!({ "recorder": true })
    }
}

async fn recorder(answer: bool) -> (Arc<Recorder>, SocketAddr, wse_replication::ListenerHandle) {
    let service = Arc::new(Recorder {
        seen: Mutex::new(Vec::new()),
        arrived: Notify::new(),
        answer,
    });
    let listener = PeerListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (service.clone(), addr, listener.serve(service))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forwards_sent_one_after_another_reach_the_service_in_order() {
    let (service, addr, _listener) = recorder(true).await;
    let peers = Peers::new(1, NetOptions::default());
    let addr = addr.to_string();
    let send = |i: usize| {
        let batch = vec![Publish::new(format!("t{i}"), "x")];
        Box::pin(peers.forward(9, &addr, 0, batch, EVENT_TIMEOUT))
    };
    send(0).await.unwrap(); // connected
    // Queue 100 more without waiting for answers: polled once each, in
    // order, each is on the wire before the next is created (an answer
    // may even be back by then).
    let mut pending: Vec<_> = (1..=100).map(|i| (send(i), None)).collect();
    std::future::poll_fn(|cx| {
        for (p, answer) in &mut pending {
            if let Poll::Ready(a) = p.as_mut().poll(cx) {
                *answer = Some(a);
            }
        }
        Poll::Ready(())
    })
    .await;
    for (p, answer) in pending {
        match answer {
            Some(a) => a.unwrap(),
            None => p.await.unwrap(),
        };
    }
    let expected: Vec<String> = (0..=100).map(|i| format!("t{i}")).collect();
    assert_eq!(*service.seen.lock(), expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_in_flight_fail_at_once_when_the_connection_breaks() {
    let (service, addr, listener) = recorder(false).await;
    let peers = Peers::new(1, NetOptions::default());
    let waiting = {
        let addr = addr.to_string();
        let peers = peers.clone();
        tokio::spawn(async move {
            let batch = vec![Publish::new("t", "x")];
            peers
                .forward(9, &addr, 0, batch, Duration::from_secs(30))
                .await
        })
    };
    service.arrived.notified().await;
    let t = Instant::now();
    listener.shutdown().await;
    let failed = waiting.await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "took {:?}",
        t.elapsed()
    );
    assert!(
        matches!(
            failed,
            Err(ForwardError::Unreachable(NetError::Lost { .. }))
        ),
        "{failed:?}"
    );
}

/// Connect and introduce ourselves properly; the accepting side's answer
/// must be "ok".
async fn handshaken(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"WSEPEER").await.unwrap();
    s.write_all(&1u16.to_be_bytes()).await.unwrap();
    s.write_all(&42u64.to_be_bytes()).await.unwrap();
    s.write_all(&3u16.to_be_bytes()).await.unwrap();
    s.write_all(b"wse").await.unwrap();
    let mut answer = [0u8; 3];
    s.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, [0, 0, 0], "handshake accepted");
    s
}

/// Whether the listener closes `s` (EOF or reset), in time, without
/// answering anything.
async fn closed_by_peer(mut s: TcpStream) -> bool {
    let mut rest = Vec::new();
    match tokio::time::timeout(EVENT_TIMEOUT, s.read_to_end(&mut rest)).await {
        Ok(Ok(_)) => rest.is_empty(),
        Ok(Err(_)) => true,
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lying_peers_are_disconnected_and_the_listener_serves_others() {
    let (_service, addr, _listener) = recorder(true).await;
    let options = NetOptions::default();
    let good = Peers::new(1, options.clone());
    let target = addr.to_string();
    let forward = || good.forward(9, &target, 0, vec![Publish::new("t", "x")], EVENT_TIMEOUT);
    forward().await.unwrap();

    let mut wrong_magic = TcpStream::connect(addr).await.unwrap();
    wrong_magic
        .write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_peer(wrong_magic).await, "wrong magic");

    let mut huge = handshaken(addr).await;
    huge.write_all(&[0xff, 0xff, 0xff, 0xff, 0]).await.unwrap();
    assert!(closed_by_peer(huge).await, "huge length");

    let mut garbage = handshaken(addr).await;
    garbage.write_all(&[0, 0, 0, 8, 0]).await.unwrap();
    garbage.write_all(&[0xc1; 8]).await.unwrap();
    assert!(closed_by_peer(garbage).await, "garbage body");

    let mut bad_zstd = handshaken(addr).await;
    bad_zstd
        .write_all(&[0, 0, 0, 4, 1, 1, 2, 3, 4])
        .await
        .unwrap();
    assert!(closed_by_peer(bad_zstd).await, "bad zstd body");

    let mut unknown_flag = handshaken(addr).await;
    unknown_flag
        .write_all(&[0, 0, 0, 1, 0x80, 0])
        .await
        .unwrap();
    assert!(closed_by_peer(unknown_flag).await, "unknown flag");

    // The connection opened before them still works; so do new ones.
    forward().await.unwrap();
    let status = query_status(&addr.to_string(), &options, EVENT_TIMEOUT)
        .await
        .unwrap();
    assert_eq!(status["recorder"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_cluster_or_version_is_refused_with_a_reason() {
    let (_service, addr, _listener) = recorder(true).await;
    let other = NetOptions {
        cluster_name: "other".to_owned(),
        ..NetOptions::default()
    };
    let refused = query_status(&addr.to_string(), &other, EVENT_TIMEOUT).await;
    match refused {
        Err(NetError::Refused { reason, .. }) => assert!(reason.contains("\"other\""), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"WSEPEER").await.unwrap();
    s.write_all(&2u16.to_be_bytes()).await.unwrap();
    assert_eq!(s.read_u8().await.unwrap(), 1, "refused");
    let len = s.read_u16().await.unwrap();
    let mut reason = vec![0u8; usize::from(len)];
    s.read_exact(&mut reason).await.unwrap();
    let reason = String::from_utf8(reason).unwrap();
    assert!(reason.contains("version 2"), "{reason}");
    assert!(closed_by_peer(s).await, "closed after the refusal");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_the_shard_is_unreachable_for_it() {
    let (_service, addr, _listener) = recorder(true).await;
    let peers = Peers::new(1, NetOptions::default());
    let err = probe(&peers, 1, 9, addr).await.unwrap_err();
    assert!(err.contains("no shard 0"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_larger_than_a_frame_asks_openraft_for_fewer_entries() {
    use openraft::raft::AppendEntriesRequest;
    use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};
    use wse_replication::Request;

    let (_service, addr, _listener) = recorder(true).await;
    let options = NetOptions {
        max_frame: 16 << 10,
        ..NetOptions::default()
    };
    let peers = Peers::new(1, options);
    let mut link = peers
        .network(0)
        .new_client(9, &BasicNode::new(addr.to_string()))
        .await;
    // Incompressible payloads, so zstd cannot bring them under the limit.
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    let entries: Vec<Entry<_>> = (1..=8)
        .map(|index| {
            let payload: Vec<u8> = (0..4096)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            Entry {
                log_id: LogId::new(CommittedLeaderId::new(1, 1), index),
                payload: EntryPayload::Normal(Request::new(vec![Publish::new("t", payload)])),
            }
        })
        .collect();
    let request = AppendEntriesRequest {
        vote: Vote::new_committed(1, 1),
        prev_log_id: None,
        leader_commit: None,
        entries,
    };
    let option = RPCOption::new(Duration::from_secs(2));
    match link.append_entries(request, option).await {
        Err(RPCError::PayloadTooLarge(e)) => assert_eq!(e.entries_hint(), 4),
        other => panic!("expected PayloadTooLarge, got {other:?}"),
    }
}
