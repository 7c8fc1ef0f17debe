//! The peer port: accepting connections from other nodes and serving them
//! with this node's [`PeerService`].
//!
//! Bind first ([`PeerListener::bind`], so the address, and a port 0's real
//! port, is known before the shards' memberships are built), then
//! [`PeerListener::serve`]. The returned [`ListenerHandle`] stops the
//! accept loop and closes every accepted connection, on
//! [`ListenerHandle::shutdown`] or when dropped.

use super::error::ForwardRefused;
use super::{BoxFuture, NetOptions, inbound};
use crate::membership::{MembershipChange, MembershipError, Outcome, Report, ShardError};
use crate::transfer::FetchedRecord;
use crate::types::{Publish, Raft};
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, ToSocketAddrs};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use wse_log::Position;

/// What a node offers its peers: its shards' Rafts, its publish path, its
/// status. Implemented by the server (and by tests).
pub trait PeerService: Send + Sync + 'static {
    /// The Raft of `shard` on this node; `None` if the node has no such
    /// shard (the peer is told so, and treats this node as unreachable
    /// for that shard).
    fn raft(&self, shard: u32) -> Option<Raft>;

    /// A publish batch forwarded by a node that does not lead `shard`.
    /// Called in the order batches arrive on a connection; the returned
    /// future is then awaited in a task of its own, so it should not wait
    /// before starting the publish.
    fn forward(
        &self,
        shard: u32,
        batch: Vec<Publish>,
    ) -> BoxFuture<'static, Result<Vec<Position>, ForwardRefused>>;

    /// This node's status (members, shards), for `wse cluster status`.
    fn status(&self) -> serde_json::Value;

    /// Apply `change` to every shard within `timeout` (a tool asked:
    /// `wse cluster add-node` / `remove-node`). By default the node does
    /// not take such requests.
    fn change_membership(
        &self,
        change: MembershipChange,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Report, MembershipError>> {
        let _ = (change, timeout);
        let why = MembershipError::Invalid("this node does not change memberships".into());
        Box::pin(async move { Err(why) })
    }

    /// Apply `change` to `shard`, which this node should lead, within
    /// `timeout`. By default the node does not take such requests.
    fn change_shard_membership(
        &self,
        shard: u32,
        change: MembershipChange,
        timeout: Duration,
    ) -> BoxFuture<'static, Result<Outcome, ShardError>> {
        let _ = (shard, change, timeout);
        let why = ShardError::Unavailable("this node does not change memberships".into());
        Box::pin(async move { Err(why) })
    }

    /// Records of `topic` from `from`, for a peer installing a snapshot
    /// (see [`crate::transfer::read_records`], to be run on the blocking
    /// pool). By default the node serves none.
    fn read_records(
        &self,
        topic: String,
        from: Position,
    ) -> BoxFuture<'static, Result<Vec<FetchedRecord>, String>> {
        let _ = from;
        let why = format!("this node does not serve records of {topic:?}");
        Box::pin(async move { Err(why) })
    }
}

/// A bound peer port, not yet accepting.
pub struct PeerListener {
    /// The socket, listening.
    listener: TcpListener,
    /// Cluster name, limits and handshake timeout of accepted connections.
    options: NetOptions,
}

impl PeerListener {
    /// Bind the peer port at `addr` (port 0 picks a free one), with the
    /// default [`NetOptions`].
    pub async fn bind(addr: impl ToSocketAddrs) -> io::Result<PeerListener> {
        Ok(PeerListener {
            listener: TcpListener::bind(addr).await?,
            options: NetOptions::default(),
        })
    }

    /// Use `options` for the connections accepted (the cluster name must
    /// match the peers').
    pub fn with_options(mut self, options: NetOptions) -> PeerListener {
        self.options = options;
        self
    }

    /// The address bound (with the real port when 0 was asked).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accept connections and serve them with `service`, until the handle
    /// is shut down or dropped.
    pub fn serve(self, service: Arc<dyn PeerService>) -> ListenerHandle {
        let (stop, stopped) = watch::channel(false);
        let accepting = tokio::spawn(accept_loop(self, service, stopped));
        ListenerHandle {
            stop,
            accepting: Some(accepting),
        }
    }
}

/// A serving peer listener. Dropping it stops the listener too (without
/// waiting for it).
pub struct ListenerHandle {
    /// Set to `true` (or dropped) to stop the accept loop.
    stop: watch::Sender<bool>,
    /// The accept loop, which owns the socket and the connections.
    accepting: Option<JoinHandle<()>>,
}

impl ListenerHandle {
    /// Stop accepting, close every accepted connection, and return once
    /// the port is free again.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(accepting) = self.accepting.take() {
            let _ = accepting.await;
        }
    }
}

impl Drop for ListenerHandle {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// Accept until stopped; each connection served by a task of the set, so
/// stopping closes them all.
async fn accept_loop(
    listener: PeerListener,
    service: Arc<dyn PeerService>,
    mut stopped: watch::Receiver<bool>,
) {
    let options = Arc::new(listener.options);
    let mut connections = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.listener.accept() => accepted,
            _ = stopped.wait_for(|stop| *stop) => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        match accepted {
            Ok((stream, _)) => {
                connections.spawn(inbound::serve(stream, service.clone(), options.clone()));
            }
            // E.g. out of file descriptors: keep the listener, slow down.
            Err(e) => {
                tracing::warn!(error = %e, "peer accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener.listener);
    connections.shutdown().await;
}
