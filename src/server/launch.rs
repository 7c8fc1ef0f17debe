//! Starting a server: bind, open the log and presence, start the cluster
//! node when the options name one, and spawn the server's tasks.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use wse_log::{AppendListener, Epoch, Log, Record};

use super::{Server, ServerError, accept, fd_limit, ticker};
use crate::budget::MemoryBudget;
use crate::fanout::Fanout;
use crate::fanout::feed::Feed;
use crate::metrics::Metrics;
use crate::ops;
use crate::ops::ledger::SendLedger;
use crate::ops::publish_ids::PublishIds;
use crate::presence::replicated::Replicated;
use crate::state::ServerState;
use crate::state::connections::Connections;
use crate::state::lifecycle::Lifecycle;

impl Server {
    /// Bind the listener (backlog 1024, so a burst of connects is not
    /// dropped), open the log and presence, and spawn the server's tasks.
    pub(super) fn launch(
        &self,
        runtime: &tokio::runtime::Runtime,
    ) -> Result<(Arc<ServerState>, SocketAddr, Option<tempfile::TempDir>), ServerError> {
        let addr_text = format!("{}:{}", self.config.host, self.config.port);
        let bind_err = |source| ServerError::Bind {
            addr: addr_text.clone(),
            source,
        };
        let wanted = (self.config.host.as_str(), self.config.port)
            .to_socket_addrs()
            .map_err(bind_err)?
            .next()
            .ok_or_else(|| bind_err(std::io::Error::other("the host resolves to no address")))?;
        let listener = {
            let _guard = runtime.enter();
            let socket = if wanted.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(bind_err)?;
            socket.set_reuseaddr(true).map_err(bind_err)?;
            socket.bind(wanted).map_err(bind_err)?;
            socket.listen(1024).map_err(bind_err)?
        };
        let addr = listener.local_addr().map_err(ServerError::Runtime)?;
        let (dir, tempdir) = match &self.config.data_dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("wse-data-")
                    .tempdir()
                    .map_err(ServerError::Runtime)?;
                (t.path().to_owned(), Some(t))
            }
        };
        let metrics = Arc::new(Metrics::default());
        let fanout = Arc::new(Fanout::new(
            self.config.fanout_frames_per_topic,
            self.config.max_outbound_bytes,
            metrics.clone(),
        ));
        let mut log_config = self.config.log.clone();
        // Presence streams are named after their topic plus a prefix.
        log_config.max_topic_bytes = log_config
            .max_topic_bytes
            .max(self.config.max_topic_bytes + crate::presence::stream::NAME_OVERHEAD);
        let feed = Feed::start(fanout.clone(), self.config.fanout_frames_per_topic)
            .map_err(ServerError::Runtime)?;
        // A cluster node's presence folds the replicated presence streams:
        // the log tells it which ones got records, as it tells fan-out.
        let replicated = self
            .config
            .presence_enabled
            .then(|| Replicated::new(&self.config.cluster))
            .flatten();
        let listeners: Arc<dyn AppendListener> = match &replicated {
            Some(r) => Arc::new(Listeners(vec![feed.clone(), r.watch()])),
            None => feed.clone(),
        };
        let mut builder = Log::builder(&dir).config(log_config).listener(listeners);
        if let Some(storage) = &self.log_storage {
            builder = builder.storage(storage.clone());
        }
        let log = Arc::new(builder.open()?);
        self.events.reopen();
        let (presence, cleanup) = if self.config.presence_enabled {
            let (p, cleanup) = crate::presence::Presence::load(&log, replicated)?;
            (Some(p), cleanup)
        } else {
            (None, Vec::new())
        };
        let cluster = self.start_cluster(runtime, &log)?;
        let mut config = self.config.clone();
        let fds = fd_limit::raise_soft_limit();
        if let Some(allowed) = fd_limit::connections_allowed(fds, config.log.max_open_files)
            && config.max_connections > allowed
        {
            tracing::warn!(
                max_connections = config.max_connections,
                allowed,
                open_file_limit = fds,
                "max_connections is above what the open-file limit allows; using {allowed}"
            );
            config.max_connections = allowed;
        }
        let tls = match &config.tls {
            Some(files) => Some(Arc::new(crate::tls::Tls::load(files)?)),
            None => None,
        };
        let budget = MemoryBudget::new(config.queue_memory_budget);
        let publish_ids = PublishIds::new(config.cluster.dedup_window);
        let state = Arc::new(ServerState {
            conns: Connections::new(
                config.max_connections,
                config.max_pending_handshakes,
                config.max_pending_handshakes_per_ip,
            ),
            config,
            log,
            fanout,
            feed,
            events: self.events.clone(),
            metrics,
            budget,
            life: Lifecycle::new(),
            sends: SendLedger::new(),
            publish_ids,
            presence,
            cluster,
            tls,
        });
        if let Some(p) = &state.presence {
            // Entries earlier runs of this node left behind: their leaves
            // are told once, now.
            for (topic, t) in cleanup {
                p.note_external(&topic, vec![t]);
            }
            p.flush(&state, None);
        }
        runtime.spawn(accept::run(state.clone(), listener));
        runtime.spawn(ticker::run(state.clone()));
        if state.presence.is_some() {
            runtime.spawn(ticker::presence(state.clone()));
        }
        if state.tls.is_some() && !state.config.tls_reload_interval.is_zero() {
            runtime.spawn(ticker::tls_files(state.clone()));
        }
        tracing::info!(%addr, data_dir = %dir.display(), tls = state.tls.is_some(), "WSE server started");
        Ok((state, addr, tempdir))
    }

    /// Start this node's part of the cluster the options name, on
    /// `runtime`, replicating into `log`. Waits for the start (opening the
    /// shards' files), not for elections: a publish before a leader is
    /// known waits for one, up to `cluster.publish_timeout`.
    fn start_cluster(
        &self,
        runtime: &tokio::runtime::Runtime,
        log: &Arc<Log>,
    ) -> Result<Option<Arc<dyn crate::cluster::Replicator>>, ServerError> {
        if !self.config.cluster.enabled() {
            return Ok(None);
        }
        let Some(starter) = &self.cluster else {
            return Err(ServerError::Cluster(
                "the options name a cluster node, but this server was built without replication"
                    .into(),
            ));
        };
        let encode = ops::broadcast::record_encoder(self.config.recovery_enabled);
        match wait_on(runtime.handle(), starter.start(log.clone(), encode), None) {
            Some(Ok(replicator)) => Ok(Some(replicator)),
            Some(Err(e)) => Err(ServerError::Cluster(e.to_string())),
            None => Err(ServerError::Cluster(
                "the cluster start was abandoned".into(),
            )),
        }
    }
}

/// Run `fut` on `runtime` and wait for it on this thread, at most `timeout`
/// (`None`: as long as it takes). `None` when it did not finish: the
/// deadline passed, or the runtime shut down. Callers may be on any thread,
/// async ones included, because the waiting is on a channel and the work on
/// the server's own runtime.
pub(super) fn wait_on<T: Send + 'static>(
    runtime: &tokio::runtime::Handle,
    fut: impl std::future::Future<Output = T> + Send + 'static,
    timeout: Option<Duration>,
) -> Option<T> {
    let (tx, rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let _ = tx.send(fut.await);
    });
    match timeout {
        Some(t) => rx.recv_timeout(t).ok(),
        None => rx.recv().ok(),
    }
}

/// Several listeners of the log, told in order.
struct Listeners(Vec<Arc<dyn AppendListener>>);

impl AppendListener for Listeners {
    fn on_visible(&self, topic: &str, epoch: Epoch, records: &[Record]) {
        for l in &self.0 {
            l.on_visible(topic, epoch, records);
        }
    }

    fn on_deleted(&self, topic: &str, epoch: Epoch) {
        for l in &self.0 {
            l.on_deleted(topic, epoch);
        }
    }
}
