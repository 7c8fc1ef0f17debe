//! Serving one accepted peer connection.
//!
//! Frames are read in order. Each request becomes a task of its own, so a
//! slow commit or a long fsync does not hold up the requests behind it;
//! but a forwarded batch's future is created (`PeerService::forward`
//! called) in the reading loop, in arrival order, so the service sees
//! batches in the order the peer sent them. Responses go back through the
//! connection's writer, in whatever order they complete: each carries its
//! request's id.
//!
//! Anything that does not decode ends the connection: after one bad frame
//! the stream cannot be trusted.
//!
//! AppendEntries of one shard are served one at a time, in arrival order,
//! and one that a newer request carrying entries overtook while it waited
//! is dropped unanswered. openraft has one AppendEntries in flight per
//! follower and sends the next only when the last was answered or timed
//! out, so an overtaken request is one its sender gave up on. Why it
//! matters: a node resumed after a pause (SIGSTOP, a long GC-like stall)
//! finds its socket full of requests the leader sent meanwhile, each a
//! retry of the last; served all, each with its fsync, they took longer
//! than the leader's timeout (one heartbeat interval) to clear while the
//! leader kept adding more, and the shard stopped committing for good
//! (found by the randomised fault schedule). Dropping a request is what a
//! lossy network does; Raft is safe under it.

use super::NetOptions;
use super::error::FrameError;
use super::frame::{self, Envelope, Limits};
use super::handshake;
use super::listener::PeerService;
use super::message::{PeerRequest, PeerResponse};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;

/// Responses queued for the writer.
const OUTBOX: usize = 1024;

/// Serve `stream` until it ends, fails, or the caller drops this future
/// (shutdown): the socket is closed with it.
pub(crate) async fn serve(
    mut stream: TcpStream,
    service: Arc<dyn PeerService>,
    options: Arc<NetOptions>,
) {
    let peer = stream.peer_addr().ok();
    let hello = tokio::time::timeout(
        options.connect_timeout,
        handshake::accept(&mut stream, &options.cluster_name),
    )
    .await;
    let node = match hello {
        Ok(Ok(node)) => node,
        Ok(Err(e)) => {
            tracing::warn!(?peer, error = %e, "peer handshake refused");
            return;
        }
        Err(_) => {
            tracing::warn!(?peer, "peer handshake timed out");
            return;
        }
    };
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let (outbox, queued) = mpsc::channel(OUTBOX);
    let limits = Limits::from(&*options);
    let ended = tokio::select! {
        r = read_loop(read, outbox, service, limits) => r,
        () = write_loop(write, queued) => Ok(()),
    };
    match ended {
        Ok(()) => tracing::debug!(?peer, node, "peer connection closed"),
        Err(e) => tracing::warn!(?peer, node, error = %e, "peer connection dropped"),
    }
}

/// Read and dispatch requests until the peer closes (`Ok`) or sends
/// something we cannot read (`Err`).
async fn read_loop(
    read: OwnedReadHalf,
    outbox: mpsc::Sender<Vec<u8>>,
    service: Arc<dyn PeerService>,
    limits: Limits,
) -> Result<(), FrameError> {
    let mut r = BufReader::new(read);
    let mut lanes = Lanes::default();
    while let Some((flags, body)) = frame::read(&mut r, limits.max_frame).await? {
        let envelope: Envelope<PeerRequest> = frame::decode(flags, &body, limits)?;
        let reply = Reply {
            id: envelope.id,
            outbox: outbox.clone(),
            limits,
        };
        dispatch(envelope.msg, &*service, reply, &mut lanes).await;
    }
    Ok(())
}

/// The AppendEntries lanes of one connection, by shard (see the module
/// doc).
#[derive(Default)]
struct Lanes {
    /// Requests read so far (a request's place in arrival order).
    read: u64,
    by_shard: HashMap<u32, Arc<Lane>>,
}

/// One shard's AppendEntries on one connection.
#[derive(Default)]
struct Lane {
    /// The arrival number of the newest request with entries.
    newest_with_entries: AtomicU64,
    /// Held while a request is served: one at a time.
    turn: tokio::sync::Mutex<()>,
}

impl Lanes {
    /// Note an AppendEntries of `shard` (with entries or not); its arrival
    /// number and its lane.
    fn arrive(&mut self, shard: u32, with_entries: bool) -> (u64, Arc<Lane>) {
        self.read += 1;
        let lane = self.by_shard.entry(shard).or_default().clone();
        if with_entries {
            lane.newest_with_entries.store(self.read, Ordering::Release);
        }
        (self.read, lane)
    }
}

/// Start serving one request.
async fn dispatch(
    request: PeerRequest,
    service: &dyn PeerService,
    reply: Reply,
    lanes: &mut Lanes,
) {
    let no_shard = |shard| PeerResponse::Failed(format!("no shard {shard} on this node"));
    match request {
        PeerRequest::AppendEntries(shard, req) => match service.raft(shard) {
            Some(raft) => {
                let (arrived, lane) = lanes.arrive(shard, !req.entries.is_empty());
                reply.spawn_unless_overtaken(async move {
                    let _turn = lane.turn.lock().await;
                    if lane.newest_with_entries.load(Ordering::Acquire) > arrived {
                        return None;
                    }
                    Some(PeerResponse::AppendEntries(raft.append_entries(req).await))
                });
            }
            None => reply.send(no_shard(shard)).await,
        },
        PeerRequest::Vote(shard, req) => match service.raft(shard) {
            Some(raft) => reply.spawn(async move { PeerResponse::Vote(raft.vote(req).await) }),
            None => reply.send(no_shard(shard)).await,
        },
        PeerRequest::InstallSnapshot(shard, req) => match service.raft(shard) {
            Some(raft) => reply.spawn(async move {
                PeerResponse::InstallSnapshot(raft.install_snapshot(req).await)
            }),
            None => reply.send(no_shard(shard)).await,
        },
        PeerRequest::Forward(shard, batch) => {
            // Created here, in arrival order; awaited in its own task.
            let forwarded = service.forward(shard, batch);
            reply.spawn(async move { PeerResponse::Forward(forwarded.await) });
        }
        PeerRequest::Status => reply.send(PeerResponse::Status(service.status())).await,
        PeerRequest::Membership { change, timeout_ms } => {
            let changing = service.change_membership(change, Duration::from_millis(timeout_ms));
            reply.spawn(async move { PeerResponse::Membership(changing.await) });
        }
        PeerRequest::ShardMembership {
            shard,
            change,
            timeout_ms,
        } => {
            let timeout = Duration::from_millis(timeout_ms);
            let changing = service.change_shard_membership(shard, change, timeout);
            reply.spawn(async move { PeerResponse::ShardMembership(changing.await) });
        }
        PeerRequest::ReadRecords { topic, from } => {
            let reading = service.read_records(topic, from);
            reply.spawn(async move { PeerResponse::Records(reading.await) });
        }
    }
}

/// The way back for one request's response.
struct Reply {
    /// The request's id, echoed.
    id: u64,
    /// The connection's writer.
    outbox: mpsc::Sender<Vec<u8>>,
    /// Frame limits.
    limits: Limits,
}

impl Reply {
    /// Answer with what `work` gives, from a task of its own.
    fn spawn(self, work: impl Future<Output = PeerResponse> + Send + 'static) {
        tokio::spawn(async move { self.send(work.await).await });
    }

    /// Answer with what `work` gives, if anything (`None`: a request
    /// overtaken by a newer one, left unanswered), from a task of its own.
    fn spawn_unless_overtaken(
        self,
        work: impl Future<Output = Option<PeerResponse>> + Send + 'static,
    ) {
        tokio::spawn(async move {
            if let Some(response) = work.await {
                self.send(response).await;
            }
        });
    }

    /// Answer with `response` (a failure if it cannot be framed). A
    /// connection that closed meanwhile takes no answer.
    async fn send(self, response: PeerResponse) {
        let frame = frame::encode(
            &Envelope {
                id: self.id,
                msg: &response,
            },
            self.limits,
        )
        .or_else(|e| {
            let failed = PeerResponse::Failed(format!("response not sent: {e}"));
            frame::encode(
                &Envelope {
                    id: self.id,
                    msg: &failed,
                },
                self.limits,
            )
        });
        match frame {
            Ok(frame) => {
                let _ = self.outbox.send(frame).await;
            }
            Err(e) => tracing::error!(error = %e, "peer response cannot be encoded"),
        }
    }
}

/// Write queued responses, flushing whenever the queue is empty.
async fn write_loop(write: OwnedWriteHalf, mut queued: mpsc::Receiver<Vec<u8>>) {
    let mut w = BufWriter::new(write);
    while let Some(frame) = queued.recv().await {
        let mut sent = w.write_all(&frame).await;
        if sent.is_ok() && queued.is_empty() {
            sent = w.flush().await;
        }
        if let Err(e) = sent {
            tracing::debug!(error = %e, "peer connection write failed");
            return;
        }
    }
}
