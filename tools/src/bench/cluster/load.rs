//! The acknowledged publishers: connections that publish with an id and
//! wait for each `publish_ack` before the next. (The delivery workloads
//! publish with [`crate::bench::paced::PacedPublisher`].) Every message
//! carries the time it was sent, `ts` ([`crate::bench::paced::now_ns`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use crate::bench::hist::Histogram;
use crate::bench::paced::{now_ns, publish_frame};
use crate::bench::scan;
use crate::bench::wire::{
    OP_CLOSE, OP_PING, OP_PONG, OP_TEXT, PONG_TEXT, WireError, WsConn, is_server_ping, put_frame,
};

/// Longest wait for one acknowledgement: beyond the server's publish
/// timeout (5 s), after which it answers with an error.
const ACK_TIMEOUT: Duration = Duration::from_secs(15);

/// What the acknowledged publishers did, counted as it happens.
#[derive(Debug, Default)]
pub struct AckCounts {
    /// Publishes acknowledged.
    pub acked: AtomicU64,
    /// Publishes answered with an error (or not answered in time).
    pub errors: AtomicU64,
}

/// One publisher: publish on `topic` with ids `<tag>-<n>`, each after the
/// previous one's ack, until `stop`; the ack latencies.
pub async fn acked_publisher(
    mut conn: WsConn,
    topic: String,
    tag: String,
    pad: usize,
    stop: Arc<AtomicBool>,
    counts: Arc<AckCounts>,
) -> Result<Histogram, WireError> {
    let mut latency = Histogram::default();
    let mut n = 0u64;
    while !stop.load(Relaxed) {
        let id = format!("{tag}-{n}");
        n += 1;
        let sent = Instant::now();
        conn.send(&publish_frame(&topic, Some(&id), now_ns(), pad))
            .await?;
        match tokio::time::timeout(ACK_TIMEOUT, answer(&mut conn)).await {
            Ok(Ok(true)) => {
                latency.record(u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX));
                counts.acked.fetch_add(1, Relaxed);
            }
            Ok(Ok(false)) => {
                counts.errors.fetch_add(1, Relaxed);
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {
                // No answer: the connection's state is unknown; stop here.
                counts.errors.fetch_add(1, Relaxed);
                return Ok(latency);
            }
        }
    }
    Ok(latency)
}

/// Read until the answer to the one outstanding publish: `true` for a
/// `publish_ack`, `false` for an `error`. Answers pings on the way.
async fn answer(conn: &mut WsConn) -> Result<bool, WireError> {
    loop {
        let mut replies = Vec::new();
        while let Some(f) = conn.next_frame()? {
            match f.opcode {
                OP_TEXT if scan::find(f.payload, br#""t":"publish_ack""#).is_some() => {
                    return Ok(true);
                }
                OP_TEXT if scan::find(f.payload, br#""t":"error""#).is_some() => return Ok(false),
                OP_TEXT if is_server_ping(f.payload) => put_frame(&mut replies, OP_TEXT, PONG_TEXT),
                OP_PING => put_frame(&mut replies, OP_PONG, f.payload),
                OP_CLOSE => return Err(WireError::Closed(f.close_code())),
                _ => {}
            }
        }
        if !replies.is_empty() {
            conn.send(&replies).await?;
        }
        if conn.fill().await? == 0 {
            return Err(WireError::Closed(None));
        }
    }
}
