//! One outgoing peer connection: requests go out through a writer task in
//! the order they were queued, a reader task hands each response to the
//! request waiting for its id. Many requests are in flight at once.
//!
//! When the connection breaks (either task fails, or the peer closes), it
//! is marked broken with the reason, and every request still waiting
//! fails at once; [`super::peers`] then opens a new one.

use super::NetOptions;
use super::error::NetError;
use super::frame::{self, Envelope, Limits};
use super::handshake;
use super::message::{PeerRequest, PeerResponse};
use crate::types::NodeId;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::time::Instant;

/// Frames queued for the writer. Bounded, so a peer that stops reading
/// slows its senders down instead of filling our memory.
const OUTBOX: usize = 1024;

/// An open connection to one peer.
pub(crate) struct Connection {
    /// The peer's address, for errors.
    addr: String,
    /// Encoded frames for the writer task, which owns the write half.
    outbox: mpsc::Sender<Vec<u8>>,
    /// What the reader and writer tasks share with the callers.
    shared: Arc<Shared>,
    /// The id of the next request.
    next_id: AtomicU64,
    /// Frame limits.
    limits: Limits,
}

/// The requests waiting for their answer, and whether the connection broke.
struct Shared {
    /// Locked briefly by callers (register, forget), the reader (hand an
    /// answer over) and whoever sees the break; never across an await.
    state: Mutex<Waiting>,
    /// Wakes the writer task when the reader saw the connection break.
    broke: Notify,
}

#[derive(Default)]
struct Waiting {
    /// Each request's way back, by id. Dropping a sender fails its
    /// request with the reason in `broken`.
    answers: HashMap<u64, oneshot::Sender<PeerResponse>>,
    /// Why the connection broke; `None` while it is open.
    broken: Option<String>,
}

impl Shared {
    /// Mark the connection broken and fail every waiting request.
    fn break_with(&self, reason: String) {
        let dropped = {
            let mut s = self.state.lock();
            s.broken.get_or_insert(reason);
            std::mem::take(&mut s.answers)
        };
        drop(dropped);
        self.broke.notify_one();
    }
}

/// Forgets a request's way back when its caller stops waiting (timeout,
/// or openraft dropping the RPC future), so late answers are discarded.
struct Forget<'a> {
    shared: &'a Shared,
    id: u64,
}

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        self.shared.state.lock().answers.remove(&self.id);
    }
}

impl Connection {
    /// Connect to `addr`, introduce ourselves as `me`, and start the
    /// connection's tasks. Bounded by the caller (see `peers`).
    pub(crate) async fn open(
        addr: &str,
        me: NodeId,
        options: &NetOptions,
    ) -> Result<Connection, NetError> {
        let mut stream = TcpStream::connect(addr)
            .await
            .map_err(|source| NetError::Connect {
                addr: addr.to_owned(),
                source,
            })?;
        // Heartbeats and votes are small and latency-bound.
        let _ = stream.set_nodelay(true);
        let handshake = |source| NetError::Handshake {
            addr: addr.to_owned(),
            source,
        };
        handshake::offer(&mut stream, me, &options.cluster_name)
            .await
            .map_err(handshake)?
            .map_err(|reason| NetError::Refused {
                addr: addr.to_owned(),
                reason,
            })?;
        let (read, write) = stream.into_split();
        let (outbox, queued) = mpsc::channel(OUTBOX);
        let shared = Arc::new(Shared {
            state: Mutex::new(Waiting::default()),
            broke: Notify::new(),
        });
        let limits = Limits::from(options);
        tokio::spawn(write_loop(write, queued, shared.clone()));
        tokio::spawn(read_loop(read, shared.clone(), limits));
        Ok(Connection {
            addr: addr.to_owned(),
            outbox,
            shared,
            next_id: AtomicU64::new(1),
            limits,
        })
    }

    /// Whether the connection still works (as far as we know).
    pub(crate) fn is_open(&self) -> bool {
        self.shared.state.lock().broken.is_none()
    }

    /// Send `request` and wait for its answer until `deadline`.
    pub(crate) async fn call(
        &self,
        request: &PeerRequest,
        deadline: Instant,
    ) -> Result<PeerResponse, NetError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = frame::encode(&Envelope { id, msg: request }, self.limits)?;
        let answer = self.expect(id)?;
        let _forget = Forget {
            shared: &self.shared,
            id,
        };
        let started = Instant::now();
        let timeout = || NetError::Timeout(started.elapsed());
        tokio::time::timeout_at(deadline, self.outbox.send(frame))
            .await
            .map_err(|_| timeout())?
            .map_err(|_| self.lost())?;
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(_)) => Err(self.lost()),
            Err(_) => Err(timeout()),
        }
    }

    /// Register request `id`; fails if the connection is broken.
    fn expect(&self, id: u64) -> Result<oneshot::Receiver<PeerResponse>, NetError> {
        let mut s = self.shared.state.lock();
        if let Some(reason) = &s.broken {
            return Err(NetError::Lost {
                addr: self.addr.clone(),
                reason: reason.clone(),
            });
        }
        let (tx, rx) = oneshot::channel();
        s.answers.insert(id, tx);
        Ok(rx)
    }

    /// The error of a request whose connection broke.
    fn lost(&self) -> NetError {
        let reason = self.shared.state.lock().broken.clone();
        NetError::Lost {
            addr: self.addr.clone(),
            reason: reason.unwrap_or_else(|| "writer stopped".to_owned()),
        }
    }
}

/// Write queued frames, flushing whenever the queue is empty (so a burst
/// of requests shares system calls). Ends when the connection is dropped
/// (then closes our side) or breaks.
async fn write_loop(
    write: OwnedWriteHalf,
    mut queued: mpsc::Receiver<Vec<u8>>,
    shared: Arc<Shared>,
) {
    let mut w = BufWriter::new(write);
    loop {
        let frame = tokio::select! {
            frame = queued.recv() => frame,
            () = shared.broke.notified() => return,
        };
        let Some(frame) = frame else {
            let _ = w.shutdown().await;
            return;
        };
        let mut sent = w.write_all(&frame).await;
        if sent.is_ok() && queued.is_empty() {
            sent = w.flush().await;
        }
        if let Err(e) = sent {
            shared.break_with(format!("write: {e}"));
            return;
        }
    }
}

/// Hand each response to its request until the stream ends or fails.
async fn read_loop(read: OwnedReadHalf, shared: Arc<Shared>, limits: Limits) {
    let mut r = BufReader::new(read);
    let reason = loop {
        let (flags, body) = match frame::read(&mut r, limits.max_frame).await {
            Ok(Some(frame)) => frame,
            Ok(None) => break "closed by the peer".to_owned(),
            Err(e) => break format!("read: {e}"),
        };
        let envelope: Envelope<PeerResponse> = match frame::decode(flags, &body, limits) {
            Ok(envelope) => envelope,
            Err(e) => break format!("bad response: {e}"),
        };
        let waiting = shared.state.lock().answers.remove(&envelope.id);
        if let Some(tx) = waiting {
            let _ = tx.send(envelope.msg);
        }
    };
    tracing::debug!(%reason, "peer connection ended");
    shared.break_with(reason);
}
