//! Slow consumers: a client that stops reading never makes the server
//! buffer without bound; by policy it is disconnected (1013, reconnect and
//! recover) or skipped ahead (recover the gap from the log), and healthy
//! subscribers of the same topic are unaffected.

mod support;

use serde_json::json;
use support::*;
use wse::{ServerConfig, SlowConsumerPolicy};

const N: u64 = 20_000;

fn config(policy: SlowConsumerPolicy) -> ServerConfig {
    ServerConfig {
        max_outbound_bytes: 1 << 20,
        slow_consumer: policy,
        // The gap a skipped client recovers is thousands of messages.
        recovery_max_messages: 100_000,
        ..standalone()
    }
}

fn payload(i: u64) -> String {
    format!(
        r#"{{"t":"bulk","p":{{"i":{i},"pad":"{}"}}}}"#,
        "x".repeat(1000)
    )
}

/// Offsets of the `bulk` messages a client reads until `last` or the end;
/// each offset is also reported on `progress`.
async fn read_offsets(c: &mut Client, last: u64) -> (Vec<u64>, Option<u16>) {
    read_reporting(c, last, None).await
}

async fn read_reporting(
    c: &mut Client,
    last: u64,
    progress: Option<tokio::sync::watch::Sender<u64>>,
) -> (Vec<u64>, Option<u16>) {
    let mut got = Vec::new();
    for v in c.take_backlog() {
        if v["t"] == "bulk" {
            got.push(v["o"].as_u64().unwrap());
        }
    }
    if got.last() == Some(&last) {
        return (got, None);
    }
    loop {
        match c.next().await {
            Some(tokio_tungstenite::tungstenite::Message::Text(t)) => {
                let v: serde_json::Value = serde_json::from_str(&t).unwrap();
                if v["t"] == "bulk" {
                    let o = v["o"].as_u64().unwrap();
                    got.push(o);
                    if let Some(p) = &progress {
                        let _ = p.send(o);
                    }
                    if o == last {
                        return (got, None);
                    }
                }
            }
            Some(tokio_tungstenite::tungstenite::Message::Close(f)) => {
                return (got, f.map(|f| u16::from(f.code)));
            }
            Some(_) => {}
            None => return (got, None),
        }
    }
}

/// Publish `N` messages in chunks, each after the healthy reader got the
/// previous one: the healthy client is never far behind; a client that
/// does not read falls ever further behind.
async fn publish_paced(ts: &TestServer, healthy: &mut tokio::sync::watch::Receiver<u64>) {
    const CHUNK: u64 = 200;
    for start in (0..N).step_by(CHUNK as usize) {
        for i in start..start + CHUNK {
            ts.server.broadcast_local("bulk", &payload(i)).unwrap();
        }
        let want = start + CHUNK - 1;
        tokio::time::timeout(WAIT, healthy.wait_for(|o| *o >= want))
            .await
            .expect("the healthy client keeps up")
            .unwrap();
    }
}

/// What a reader task returns: the offsets and the close code.
type ReadResult = (Vec<u64>, Option<u16>);

fn spawn_reader(
    mut c: Client,
) -> (
    tokio::task::JoinHandle<ReadResult>,
    tokio::sync::watch::Receiver<u64>,
) {
    let (tx, rx) = tokio::sync::watch::channel(0);
    (
        tokio::spawn(async move { read_reporting(&mut c, N - 1, Some(tx)).await }),
        rx,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_disconnected_with_a_reconnect_code() {
    let ts = TestServer::start(config(SlowConsumerPolicy::Disconnect));
    let mut healthy = ts.client().await;
    let mut slow = ts.client().await;
    healthy.subscribe(&["bulk"], None).await;
    slow.subscribe(&["bulk"], None).await;
    // The healthy client reads concurrently; the slow one does not read.
    let (reader, mut progress) = spawn_reader(healthy);
    publish_paced(&ts, &mut progress).await;
    let (got, code) = reader.await.unwrap();
    assert_eq!(code, None);
    assert!(
        got.iter().copied().eq(0..N),
        "the healthy client got everything in order"
    );
    let (slow_got, code) = read_offsets(&mut slow, N - 1).await;
    assert_eq!(
        code,
        Some(1013),
        "closed as a slow consumer after {} messages",
        slow_got.len()
    );
    assert!((slow_got.len() as u64) < N);
    // What it did get is in order and without holes.
    assert!(slow_got.windows(2).all(|w| w[1] == w[0] + 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_drop_policy_a_slow_client_skips_ahead_and_recovers_the_gap() {
    let ts = TestServer::start(config(SlowConsumerPolicy::Drop));
    let mut healthy = ts.client().await;
    let mut slow = ts.client().await;
    healthy.subscribe(&["bulk"], None).await;
    slow.subscribe(&["bulk"], None).await;
    let (reader, mut progress) = spawn_reader(healthy);
    publish_paced(&ts, &mut progress).await;
    assert_eq!(reader.await.unwrap().0.len() as u64, N);
    let (got, code) = match tokio::time::timeout(
        std::time::Duration::from_secs(5),
        read_offsets(&mut slow, N - 1),
    )
    .await
    {
        Ok(r) => r,
        Err(_) => panic!("stuck; health {:?}", ts.server.health()),
    };
    assert_eq!(code, None, "not disconnected");
    assert_eq!(*got.last().unwrap(), N - 1);
    let hole = got
        .windows(2)
        .find(|w| w[1] != w[0] + 1)
        .expect("messages were skipped");
    assert!(ts.server.health().slow_consumer_drops > 0);
    // The client fills the hole from the log.
    let epoch = ts
        .server
        .position("bulk")
        .unwrap()
        .unwrap()
        .epoch
        .to_string();
    let reply = slow
        .subscribe(
            &["bulk"],
            Some(json!({"bulk": {"epoch": epoch, "offset": hole[0]}})),
        )
        .await;
    assert_eq!(reply["p"]["recovery"]["bulk"]["recovered"], true, "{reply}");
    let want = reply["p"]["recovery"]["bulk"]["offset"].as_u64().unwrap();
    let (refill, _) = read_offsets(&mut slow, want).await;
    assert!(
        refill.iter().copied().eq(hole[0] + 1..=want),
        "the gap {hole:?} was refilled in order: got {} messages, first {:?}, last {:?}, want up to {want}",
        refill.len(),
        refill.first(),
        refill.last()
    );
}

/// An app's `send` to a client that does not read: a frame larger than the
/// whole outbound queue is refused with an error at once (it could never
/// go); frames that stop fitting behind the unread ones meet the policy.
async fn app_sends_to_a_client_that_never_reads(
    policy: SlowConsumerPolicy,
) -> (TestServer, Client) {
    let ts = TestServer::start(ServerConfig {
        max_outbound_bytes: 64 << 10,
        ..config(policy)
    });
    let mut slow = ts.client().await;
    // Data flows once the client said hello, as the clients do.
    slow.hello().await;
    let id = ts.server.connections().unwrap().pop().unwrap();
    let err = ts.server.send(&id, &"x".repeat(65 << 10)).unwrap_err();
    assert!(
        matches!(err, wse::ServerError::Send(wse::SendError::TooLarge { .. })),
        "{err}"
    );
    assert!(err.to_string().contains("max_outbound_bytes"), "{err}");
    // Fill the socket buffers and then the queue: until the policy acts.
    let frame = "y".repeat(8 << 10);
    for _ in 0..100_000 {
        ts.server.send(&id, &frame).unwrap();
        let h = ts.server.health();
        if h.slow_consumer_disconnects > 0 || h.slow_consumer_drops > 0 {
            break;
        }
    }
    (ts, slow)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_send_that_can_never_fit_errors_and_one_behind_a_full_queue_closes_with_1013() {
    let (ts, mut slow) =
        app_sends_to_a_client_that_never_reads(SlowConsumerPolicy::Disconnect).await;
    assert_eq!(ts.server.health().slow_consumer_disconnects, 1);
    let close = slow.close_frame().await;
    assert_eq!(close, Some(Some((1013, "slow consumer".into()))));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_drop_policy_an_app_send_behind_a_full_queue_is_dropped_and_counted() {
    let (ts, mut slow) = app_sends_to_a_client_that_never_reads(SlowConsumerPolicy::Drop).await;
    assert_eq!(ts.server.health().slow_consumer_disconnects, 0);
    assert!(ts.server.health().slow_consumer_drops >= 1);
    // The connection stays: what was queued arrives, then later sends.
    let id = ts.server.connections().unwrap().pop().unwrap();
    ts.server.send(&id, "after").unwrap();
    let mut queued = 0;
    loop {
        let t = slow.next_text().await;
        if t == "after" {
            break;
        }
        assert!(t.starts_with('y'), "{t}");
        queued += 1;
    }
    assert!(queued > 0, "the frames queued before the drop arrive");
}
