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

use super::NetOptions;
use super::error::FrameError;
use super::frame::{self, Envelope, Limits};
use super::handshake;
use super::listener::PeerService;
use super::message::{PeerRequest, PeerResponse};
use std::sync::Arc;
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
    while let Some((flags, body)) = frame::read(&mut r, limits.max_frame).await? {
        let envelope: Envelope<PeerRequest> = frame::decode(flags, &body, limits)?;
        let reply = Reply {
            id: envelope.id,
            outbox: outbox.clone(),
            limits,
        };
        dispatch(envelope.msg, &*service, reply).await;
    }
    Ok(())
}

/// Start serving one request.
async fn dispatch(request: PeerRequest, service: &dyn PeerService, reply: Reply) {
    let no_shard = |shard| PeerResponse::Failed(format!("no shard {shard} on this node"));
    match request {
        PeerRequest::AppendEntries(shard, req) => match service.raft(shard) {
            Some(raft) => reply
                .spawn(async move { PeerResponse::AppendEntries(raft.append_entries(req).await) }),
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
