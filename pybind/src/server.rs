//! `RustWSEServer`: the Python face of `wse::Server` (PYTHON_API.md §2).
//!
//! The class is `frozen`: every method takes `&self`, and all state lives
//! behind the Rust server's own locks or in atomics here, so two Python
//! threads can call methods at the same time (upstream raised "Already
//! borrowed" when `stop()` met a thread blocked in `drain_inbound`). Calls
//! that wait or do I/O run with the GIL released: `start`, `stop`,
//! `drain`, `drain_inbound`, broadcasts, subscriptions, recovery, log
//! reads, and sends of large payloads.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::{PyNotImplementedError, PyRuntimeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use wse::topics::TopicAcl;
use wse::{Server, ServerError};
use wse_log::Position;

use crate::config::{ServerOptions, seconds};
use crate::convert::{Style, dict_to_map};
use crate::dispatcher::{Callbacks, Dispatcher, Shared};
use crate::errors::{not_running, server_error};
use crate::{events, health, records, recovery};

/// Payloads at least this large are sent with the GIL released.
const LARGE_PAYLOAD: usize = 16 * 1024;

/// Longest pause of `drain_inbound` on a stopped server, whose queue
/// answers at once (keeps a polling loop from spinning).
const STOPPED_POLL: Duration = Duration::from_millis(50);

/// The message of `connect_cluster` and `reload_cluster_tls`.
const NO_CLUSTER: &str = "connect_cluster and cluster TLS are not available yet: \
     make the server a node of a Raft-replicated cluster with node_id=, cluster_listen=, \
     cluster_peers= and cluster_insecure=True (docs/OPERATIONS.md, Cluster)";

/// Standalone Rust WebSocket server controlled from Python.
///
/// All transport (accept, WebSocket frames, JWT, compression, heartbeats,
/// fan-out, the log) runs in Rust on its own threads. Python handles
/// application logic through drain mode (`enable_drain_mode` +
/// `drain_inbound`) or callbacks (`set_callbacks`).
#[pyclass(frozen, module = "wse_server._wse_accel")]
pub struct RustWSEServer {
    /// The server, shared with the callback dispatcher.
    server: Arc<Server>,
    /// Callbacks of callback mode.
    callbacks: Arc<Mutex<Option<Arc<Callbacks>>>>,
    /// Drain mode is on (it wins over callbacks).
    drain_mode: Arc<AtomicBool>,
    /// The callback dispatcher while running outside drain mode.
    dispatcher: Mutex<Option<Dispatcher>>,
}

impl RustWSEServer {
    fn shared(&self) -> Shared {
        Shared {
            server: self.server.clone(),
            callbacks: self.callbacks.clone(),
            drain_mode: self.drain_mode.clone(),
        }
    }
}

impl Drop for RustWSEServer {
    /// A server object that Python collects while running: tell the
    /// dispatcher thread to finish (it holds the server too, and must not
    /// be joined here, where the GIL may be held). The last handle to the
    /// server stops it.
    fn drop(&mut self) {
        if let Some(d) = self.dispatcher.get_mut().take() {
            d.request_stop();
        }
    }
}

// PyO3 hands arguments over as owned values (`Vec<String>`, `Bound`).
#[allow(clippy::needless_pass_by_value)]
#[pymethods]
impl RustWSEServer {
    /// See PYTHON_API.md §2.1 for the positional parameters and
    /// `_wse_accel.pyi` for the keyword-only WSE options.
    #[new]
    #[pyo3(signature = (
        host,
        port,
        max_connections=1000,
        jwt_secret=None,
        jwt_issuer=None,
        jwt_audience=None,
        jwt_cookie_name=None,
        jwt_previous_secret=None,
        jwt_key_id=None,
        jwt_algorithm=None,
        jwt_private_key=None,
        max_inbound_queue_size=131072,
        recovery_enabled=false,
        recovery_buffer_size=128,
        recovery_ttl=300,
        recovery_max_messages=500,
        recovery_memory_budget=268435456,
        presence_enabled=false,
        presence_max_data_size=4096,
        presence_max_members=0,
        rate_limit_capacity=100000.0,
        rate_limit_refill=10000.0,
        max_message_size=1048576,
        ping_interval=25,
        idle_timeout=60,
        max_outbound_queue_bytes=16777216,
        max_subscriptions_per_connection=0,
        *,
        data_dir=None,
        durability="interval",
        retention_max_bytes=1073741824,
        retention_max_age=604800,
        retention_max_records=0,
        tail_records_per_topic=None,
        tail_memory_budget=None,
        slow_consumer="disconnect",
        core_subscriptions=false,
        client_publish=false,
        worker_threads=2,
        server_ready_without_auth=false,
        app_events=true,
        inbound_rate_capacity=10000.0,
        inbound_rate_refill=5000.0,
        inbound_bytes_capacity=8388608,
        inbound_bytes_refill=4194304,
        max_message_depth=32,
        max_message_elements=100000,
        max_patterns_per_connection=0,
        max_inbound_queue_bytes=67108864,
        queue_memory_budget=268435456,
        encryption=true,
        e2e_rekey_interval=None,
        close_on_token_expiry=false,
        e2e_hello_wait=0.5,
        signature_key=None,
        max_pending_handshakes=512,
        max_pending_handshakes_per_ip=16,
        handshake_timeout=5.0,
        close_grace=10.0,
        max_topic_bytes=256,
        fanout_frames_per_topic=1024,
        write_coalesce=0.0,
        segment_max_bytes=67108864,
        segment_max_age=3600,
        max_open_files=256,
        node_id=None,
        cluster_listen=None,
        cluster_peers=None,
        cluster_insecure=false,
        cluster_shards=16,
        cluster_heartbeat=0.15,
        cluster_election_timeout=1.0,
        cluster_publish_timeout=5.0,
        cluster_dedup_window=10000,
        cluster_node_timeout=3.0,
        cluster_join=false,
        cluster_snapshot_every=20000,
        cluster_snapshot_keep=1000,
    ))]
    #[allow(clippy::too_many_arguments)] // the upstream constructor, parameter for parameter
    fn new(
        host: String,
        port: u16,
        max_connections: usize,
        jwt_secret: Option<Vec<u8>>,
        jwt_issuer: Option<String>,
        jwt_audience: Option<String>,
        jwt_cookie_name: Option<String>,
        jwt_previous_secret: Option<Vec<u8>>,
        jwt_key_id: Option<String>,
        jwt_algorithm: Option<String>,
        jwt_private_key: Option<Vec<u8>>,
        max_inbound_queue_size: usize,
        recovery_enabled: bool,
        recovery_buffer_size: usize,
        recovery_ttl: u64,
        recovery_max_messages: u64,
        recovery_memory_budget: usize,
        presence_enabled: bool,
        presence_max_data_size: usize,
        presence_max_members: usize,
        rate_limit_capacity: f64,
        rate_limit_refill: f64,
        max_message_size: usize,
        ping_interval: u64,
        idle_timeout: u64,
        max_outbound_queue_bytes: usize,
        max_subscriptions_per_connection: usize,
        data_dir: Option<PathBuf>,
        durability: &str,
        retention_max_bytes: u64,
        retention_max_age: u64,
        retention_max_records: u64,
        tail_records_per_topic: Option<usize>,
        tail_memory_budget: Option<usize>,
        slow_consumer: &str,
        core_subscriptions: bool,
        client_publish: bool,
        worker_threads: usize,
        server_ready_without_auth: bool,
        app_events: bool,
        inbound_rate_capacity: f64,
        inbound_rate_refill: f64,
        inbound_bytes_capacity: usize,
        inbound_bytes_refill: usize,
        max_message_depth: usize,
        max_message_elements: usize,
        max_patterns_per_connection: usize,
        max_inbound_queue_bytes: usize,
        queue_memory_budget: usize,
        encryption: bool,
        e2e_rekey_interval: Option<f64>,
        close_on_token_expiry: bool,
        e2e_hello_wait: f64,
        signature_key: Option<Vec<u8>>,
        max_pending_handshakes: usize,
        max_pending_handshakes_per_ip: usize,
        handshake_timeout: f64,
        close_grace: f64,
        max_topic_bytes: usize,
        fanout_frames_per_topic: usize,
        write_coalesce: f64,
        segment_max_bytes: u64,
        segment_max_age: u64,
        max_open_files: usize,
        node_id: Option<u64>,
        cluster_listen: Option<String>,
        cluster_peers: Option<String>,
        cluster_insecure: bool,
        cluster_shards: u32,
        cluster_heartbeat: f64,
        cluster_election_timeout: f64,
        cluster_publish_timeout: f64,
        cluster_dedup_window: usize,
        cluster_node_timeout: f64,
        cluster_join: bool,
        cluster_snapshot_every: u64,
        cluster_snapshot_keep: u64,
    ) -> PyResult<Self> {
        let config = ServerOptions {
            host,
            port,
            max_connections,
            jwt_secret,
            jwt_issuer,
            jwt_audience,
            jwt_cookie_name,
            jwt_previous_secret,
            jwt_key_id,
            jwt_algorithm,
            jwt_private_key,
            max_inbound_queue_size,
            recovery_enabled,
            recovery_buffer_size,
            recovery_ttl,
            recovery_max_messages,
            recovery_memory_budget,
            presence_enabled,
            presence_max_data_size,
            presence_max_members,
            rate_limit_capacity,
            rate_limit_refill,
            max_message_size,
            ping_interval,
            idle_timeout,
            max_outbound_queue_bytes,
            max_subscriptions_per_connection,
            data_dir,
            durability: durability.to_owned(),
            retention_max_bytes,
            retention_max_age,
            retention_max_records,
            tail_records_per_topic,
            tail_memory_budget,
            slow_consumer: slow_consumer.to_owned(),
            core_subscriptions,
            client_publish,
            worker_threads,
            server_ready_without_auth,
            app_events,
            inbound_rate_capacity,
            inbound_rate_refill,
            inbound_bytes_capacity,
            inbound_bytes_refill,
            max_message_depth,
            max_message_elements,
            max_patterns_per_connection,
            max_inbound_queue_bytes,
            queue_memory_budget,
            encryption,
            e2e_rekey_interval,
            close_on_token_expiry,
            e2e_hello_wait,
            signature_key,
            max_pending_handshakes,
            max_pending_handshakes_per_ip,
            handshake_timeout,
            close_grace,
            max_topic_bytes,
            fanout_frames_per_topic,
            write_coalesce,
            segment_max_bytes,
            segment_max_age,
            max_open_files,
            node_id,
            cluster_listen,
            cluster_peers,
            cluster_insecure,
            cluster_shards,
            cluster_heartbeat,
            cluster_election_timeout,
            cluster_publish_timeout,
            cluster_dedup_window,
            cluster_node_timeout,
            cluster_join,
            cluster_snapshot_every,
            cluster_snapshot_keep,
        }
        .into_config()?;
        let cluster = config.cluster.clone();
        let mut server =
            Server::new(config).map_err(|e| pyo3::exceptions::PyValueError::new_err(e.0))?;
        if cluster.enabled() {
            server = server.with_cluster(Arc::new(wse_replication::Starter::new(cluster)));
        }
        Ok(Self {
            server: Arc::new(server),
            callbacks: Arc::new(Mutex::new(None)),
            drain_mode: Arc::new(AtomicBool::new(false)),
            dispatcher: Mutex::new(None),
        })
    }

    // ---- lifecycle -------------------------------------------------------

    /// Bind, open the log and serve; returns once the socket is bound.
    /// Raises `RuntimeError("Server is already running")` on a running
    /// server and `OSError` when the address cannot be bound.
    fn start(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.server.start())
            .map_err(|e| server_error(py, e))?;
        if !self.drain_mode.load(Ordering::Acquire) {
            let mut slot = self.dispatcher.lock();
            if slot.is_none() {
                match Dispatcher::spawn(self.shared()) {
                    Ok(d) => *slot = Some(d),
                    Err(e) => {
                        drop(slot);
                        let _ = py.detach(|| self.server.stop());
                        return Err(PyRuntimeError::new_err(format!(
                            "cannot start the callback thread: {e}"
                        )));
                    }
                }
            }
        }
        Ok(())
    }

    /// Stop: every client gets Close 1012 (reconnect later), the log is
    /// flushed and closed. A no-op when not running. Safe while another
    /// thread waits in `drain_inbound`.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        let dispatcher = self.dispatcher.lock().take();
        py.detach(|| {
            let stopped = self.server.stop();
            if let Some(d) = dispatcher {
                d.stop();
            }
            stopped
        })
        .map_err(|e| server_error(py, e))
    }

    /// Close every client with `close_code`/`close_reason` and refuse new
    /// connections; connections get `timeout` seconds to go (nothing is
    /// forced). Call `stop()` afterwards.
    #[pyo3(signature = (close_code=4300, close_reason="", timeout=30))]
    fn drain(
        &self,
        py: Python<'_>,
        close_code: u16,
        close_reason: &str,
        timeout: u64,
    ) -> PyResult<()> {
        py.detach(|| {
            self.server
                .drain(close_code, close_reason, Duration::from_secs(timeout))
        })
        .map_err(|e| server_error(py, e))
    }

    /// True between a successful `start()` and `stop()`.
    fn is_running(&self) -> bool {
        self.server.is_running()
    }

    /// The bound port while running (useful with `port=0`), else `None`.
    fn local_port(&self) -> Option<u16> {
        self.server.local_addr().map(|a| a.port())
    }

    // ---- receiving events ------------------------------------------------

    /// Deliver events through `drain_inbound` (wins over callbacks).
    fn enable_drain_mode(&self) {
        self.drain_mode.store(true, Ordering::Release);
    }

    /// Up to `max_count` events as `(kind, conn_id, data)` tuples, waiting
    /// up to `timeout_ms` (GIL released) for the first; `[]` on timeout.
    #[pyo3(signature = (max_count=256, timeout_ms=50))]
    fn drain_inbound<'py>(
        &self,
        py: Python<'py>,
        max_count: usize,
        timeout_ms: u64,
    ) -> PyResult<Bound<'py, PyList>> {
        let timeout = Duration::from_millis(timeout_ms);
        let events = py.detach(|| {
            let started = Instant::now();
            let events = self.server.drain_events(max_count, timeout);
            if events.is_empty() && !self.server.is_running() {
                let left = timeout.saturating_sub(started.elapsed());
                std::thread::sleep(left.min(STOPPED_POLL));
            }
            events
        });
        let list = PyList::empty(py);
        for e in &events {
            list.append(events::to_tuple(py, e)?)?;
        }
        Ok(list)
    }

    /// Events waiting in the queue.
    fn inbound_queue_depth(&self) -> usize {
        self.server.inbound_queue_depth()
    }

    /// Events lost (only those arriving while stopped: a full queue makes
    /// clients wait instead of dropping).
    fn inbound_dropped_count(&self) -> u64 {
        self.server.inbound_dropped_count()
    }

    /// Callback mode: `on_connect(conn_id, cookies)`,
    /// `on_message(conn_id, data)`, `on_disconnect(conn_id)`, and (a WSE
    /// addition) `on_presence(event_type, {"topic", "user_id", "data"})`,
    /// called in order from one thread; exceptions are logged and
    /// swallowed.
    #[pyo3(signature = (on_connect, on_message, on_disconnect, on_presence=None))]
    fn set_callbacks(
        &self,
        on_connect: Bound<'_, PyAny>,
        on_message: Bound<'_, PyAny>,
        on_disconnect: Bound<'_, PyAny>,
        on_presence: Option<Bound<'_, PyAny>>,
    ) -> PyResult<()> {
        let presence_ok = on_presence.as_ref().is_none_or(|f| f.is_callable());
        if !(on_connect.is_callable()
            && on_message.is_callable()
            && on_disconnect.is_callable()
            && presence_ok)
        {
            return Err(PyRuntimeError::new_err("All callbacks must be callable"));
        }
        *self.callbacks.lock() = Some(Arc::new(Callbacks {
            on_connect: on_connect.unbind(),
            on_message: on_message.unbind(),
            on_disconnect: on_disconnect.unbind(),
            on_presence: on_presence.map(Bound::unbind),
        }));
        Ok(())
    }

    // ---- sending ---------------------------------------------------------

    /// Text frame to one connection, verbatim.
    fn send(&self, py: Python<'_>, conn_id: &str, data: &str) -> PyResult<()> {
        let run = || self.server.send(conn_id, data);
        let result = if data.len() >= LARGE_PAYLOAD {
            py.detach(run)
        } else {
            run()
        };
        result.map_err(|e| server_error(py, e))
    }

    /// Binary frame to one connection, verbatim.
    fn send_bytes(&self, py: Python<'_>, conn_id: &str, data: &[u8]) -> PyResult<()> {
        let run = || self.server.send_bytes(conn_id, data);
        let result = if data.len() >= LARGE_PAYLOAD {
            py.detach(run)
        } else {
            run()
        };
        result.map_err(|e| server_error(py, e))
    }

    /// The `send_event` pipeline (envelope, dedup by `id`, rate limit,
    /// msgpack or JSON, zlib above `compression_threshold`); returns the
    /// frame body's size, 0 when deduplicated or rate limited.
    #[pyo3(signature = (conn_id, event, compression_threshold=1024))]
    fn send_event(
        &self,
        py: Python<'_>,
        conn_id: &str,
        event: &Bound<'_, PyDict>,
        compression_threshold: usize,
    ) -> PyResult<usize> {
        let map = dict_to_map(event, Style::SEND)?;
        py.detach(|| self.server.send_event(conn_id, &map, compression_threshold))
            .map_err(|e| server_error(py, e))
    }

    /// Text to every connection (`c` injected).
    fn broadcast_all(&self, py: Python<'_>, data: &str) -> PyResult<()> {
        py.detach(|| self.server.broadcast_all(data))
            .map_err(|e| server_error(py, e))
    }

    /// Bytes to every connection.
    fn broadcast_all_bytes(&self, py: Python<'_>, data: &[u8]) -> PyResult<()> {
        py.detach(|| self.server.broadcast_all_bytes(data))
            .map_err(|e| server_error(py, e))
    }

    /// Publish on `topic`: appended to its log (stamped when recovery is
    /// on), then delivered to its subscribers, pattern subscribers and one
    /// member of each queue group.
    fn broadcast_local(&self, py: Python<'_>, topic: &str, data: &str) -> PyResult<()> {
        match py.detach(|| self.server.broadcast_local(topic, data)) {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(not_running()),
            Err(e) => Err(server_error(py, e)),
        }
    }

    /// Publish on `topic` and return `(epoch, offset)` once the record is
    /// acknowledged: durable by the log's policy (`always`: fsynced;
    /// `interval`/`never`: written, so a crash of this process cannot take
    /// it back). The GIL is released while waiting; concurrent publishers
    /// share fsyncs.
    ///
    /// In a cluster the record is committed by a majority of the topic's
    /// shard first. With `id`, a publish whose id is already stored on the
    /// topic (within `cluster_dedup_window`) is not stored again and gets
    /// the first copy's position: after a `TimeoutError` (which may still
    /// commit), publish again with the same id.
    #[pyo3(signature = (topic, data, id=None))]
    fn publish(
        &self,
        py: Python<'_>,
        topic: &str,
        data: &str,
        id: Option<&str>,
    ) -> PyResult<(String, u64)> {
        py.detach(|| self.server.publish_with_id(topic, data, id))
            .map(|p| (p.epoch.to_string(), p.offset))
            .map_err(|e| server_error(py, e))
    }

    /// Return once everything broadcast or published before this call is
    /// acknowledged (and, under `interval`, fsynced). `TimeoutError` after
    /// `timeout` seconds (`None`: no limit).
    #[pyo3(signature = (timeout=None))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<()> {
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        py.detach(|| self.server.flush(timeout))
            .map_err(|e| server_error(py, e))
    }

    /// `broadcast_local`, and (once clustering exists) to peers. Does
    /// nothing before `start()`.
    fn broadcast(&self, py: Python<'_>, topic: &str, data: &str) -> PyResult<()> {
        py.detach(|| self.server.broadcast_local(topic, data))
            .map(drop)
            .map_err(|e| server_error(py, e))
    }

    // ---- connections -----------------------------------------------------

    /// Registered connections.
    fn get_connection_count(&self) -> usize {
        self.server.connection_count()
    }

    /// Ids of the registered connections.
    fn get_connections(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.server.connections().map_err(|e| server_error(py, e))
    }

    /// Close a connection (Close frame without status); unknown ids are
    /// ignored.
    fn disconnect(&self, py: Python<'_>, conn_id: &str) -> PyResult<()> {
        self.server
            .disconnect(conn_id)
            .map_err(|e| server_error(py, e))
    }

    // ---- subscriptions ---------------------------------------------------

    /// Replace a connection's topic ACL (globs; deny wins; empty allow =
    /// all). Unknown ids are ignored.
    #[pyo3(signature = (conn_id, allow=None, deny=None))]
    fn set_topic_acl(
        &self,
        py: Python<'_>,
        conn_id: &str,
        allow: Option<Vec<String>>,
        deny: Option<Vec<String>>,
    ) -> PyResult<()> {
        let acl = TopicAcl::new(allow.unwrap_or_default(), deny.unwrap_or_default());
        match self.server.set_topic_acl(conn_id, acl) {
            Ok(()) | Err(ServerError::NotRunning) => Ok(()),
            Err(e) => Err(server_error(py, e)),
        }
    }

    /// Subscribe a connection to topics (patterns with `*`/`?` allowed),
    /// or join `queue_group` of each. With `presence_data` (and presence
    /// enabled) the connection's user joins each topic's presence; a
    /// refused join (data too large, topic full) raises after the
    /// subscriptions were made.
    #[pyo3(signature = (conn_id, topics, presence_data=None, queue_group=None))]
    fn subscribe_connection(
        &self,
        py: Python<'_>,
        conn_id: &str,
        topics: Vec<String>,
        presence_data: Option<Bound<'_, PyAny>>,
        queue_group: Option<String>,
    ) -> PyResult<()> {
        let presence = match presence_data {
            Some(d) if !d.is_none() => {
                Some(crate::convert::to_json(&d, crate::convert::Style::SEND)?)
            }
            _ => None,
        };
        py.detach(|| {
            self.server.subscribe_with_presence(
                conn_id,
                &topics,
                queue_group.as_deref(),
                presence.as_ref(),
            )
        })
        .map_err(|e| server_error(py, e))
    }

    /// Unsubscribe from `topics`, or from every topic and group (`None`).
    #[pyo3(signature = (conn_id, topics=None))]
    fn unsubscribe_connection(
        &self,
        py: Python<'_>,
        conn_id: &str,
        topics: Option<Vec<String>>,
    ) -> PyResult<()> {
        py.detach(|| self.server.unsubscribe(conn_id, topics.as_deref()))
            .map_err(|e| server_error(py, e))
    }

    /// Fan-out subscribers of exactly `topic` (queue-group members not
    /// counted).
    fn get_topic_subscriber_count(&self, topic: &str) -> usize {
        self.server.subscriber_count(topic)
    }

    /// `{group_name: member_count}` of `topic`.
    fn get_queue_group_info(&self, topic: &str) -> BTreeMap<String, usize> {
        self.server.queue_group_info(topic)
    }

    /// Subscribe, and replay what the client missed since
    /// `(epoch, offset)` (queued before this returns).
    #[pyo3(signature = (conn_id, topics, recover=false, epoch=None, offset=None))]
    fn subscribe_with_recovery<'py>(
        &self,
        py: Python<'py>,
        conn_id: &str,
        topics: Vec<String>,
        recover: bool,
        epoch: Option<String>,
        offset: Option<u64>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let request = recovery::Request {
            conn_id,
            topics: &topics,
            recover,
            epoch: epoch.as_deref(),
            offset,
        };
        recovery::subscribe_with_recovery(py, &self.server, &request)
    }

    // ---- presence --------------------------------------------------------

    /// `{user_id: {"data": ..., "connections": n}}` of a topic (`{}` when
    /// presence is disabled).
    fn presence<'py>(&self, py: Python<'py>, topic: &str) -> PyResult<Bound<'py, PyDict>> {
        let d = PyDict::new(py);
        for (user, (connections, data)) in self.server.presence(topic) {
            let entry = PyDict::new(py);
            entry.set_item("data", crate::convert::to_py(py, &data)?)?;
            entry.set_item("connections", connections)?;
            d.set_item(user, entry)?;
        }
        Ok(d)
    }

    /// `{"num_users", "num_connections"}` of a topic, in O(1) (zeros when
    /// presence is disabled).
    fn presence_stats<'py>(&self, py: Python<'py>, topic: &str) -> PyResult<Bound<'py, PyDict>> {
        let (users, connections) = self.server.presence_stats(topic);
        let d = PyDict::new(py);
        d.set_item("num_users", users)?;
        d.set_item("num_connections", connections)?;
        Ok(d)
    }

    /// Set the data of a connection's user in every topic where the
    /// connection has presence; subscribers get `presence_update`. A no-op
    /// when presence is disabled.
    fn update_presence(
        &self,
        py: Python<'_>,
        conn_id: &str,
        data: Bound<'_, PyDict>,
    ) -> PyResult<()> {
        let data = crate::convert::to_json(data.as_any(), crate::convert::Style::SEND)?;
        match py.detach(|| self.server.update_presence(conn_id, &data)) {
            Ok(()) | Err(ServerError::NotRunning) => Ok(()),
            Err(e) => Err(server_error(py, e)),
        }
    }

    // ---- cluster ---------------------------------------------------------

    /// This node's view of its cluster, as `wse cluster status --json`
    /// shows it (members, per shard role, leader, term, indexes, followers'
    /// lag); `None` on a single node or before `start()`.
    fn cluster_status<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        match self.server.cluster_status() {
            Some(status) => crate::convert::serialize_to_py(py, &status).map(Some),
            None => Ok(None),
        }
    }

    /// Make node `node_id` (its peer listener at `addr`, started with
    /// `cluster_join=True`) a voter of every shard: a learner first,
    /// promoted once caught up. Returns the shards that changed.
    /// `RuntimeError` on a single node or when some shard failed (asking
    /// again finishes the rest), `TimeoutError` after `timeout` seconds.
    #[pyo3(signature = (node_id, addr, timeout=60.0))]
    fn add_node(
        &self,
        py: Python<'_>,
        node_id: u64,
        addr: &str,
        timeout: f64,
    ) -> PyResult<Vec<u32>> {
        let timeout = seconds("timeout", timeout)?;
        py.detach(|| self.server.add_node(node_id, addr, timeout))
            .map_err(|e| server_error(py, e))
    }

    /// Take node `node_id` out of every shard's membership; the shards
    /// that changed. Errors as `add_node`.
    #[pyo3(signature = (node_id, timeout=60.0))]
    fn remove_node(&self, py: Python<'_>, node_id: u64, timeout: f64) -> PyResult<Vec<u32>> {
        let timeout = seconds("timeout", timeout)?;
        py.detach(|| self.server.remove_node(node_id, timeout))
            .map_err(|e| server_error(py, e))
    }

    /// Join a cluster after start, as upstream. Not available yet
    /// (`NotImplementedError`): a server becomes a cluster node through its
    /// constructor's `node_id=`, `cluster_listen=`, `cluster_peers=`.
    #[pyo3(signature = (
        peers,
        tls_cert=None,
        tls_key=None,
        tls_ca=None,
        cluster_port=None,
        seeds=None,
        cluster_addr=None,
    ))]
    #[allow(clippy::too_many_arguments)] // the upstream signature
    fn connect_cluster(
        &self,
        peers: Vec<String>,
        tls_cert: Option<String>,
        tls_key: Option<String>,
        tls_ca: Option<String>,
        cluster_port: Option<u16>,
        seeds: Option<Vec<String>>,
        cluster_addr: Option<String>,
    ) -> PyResult<()> {
        let _ = (
            peers,
            tls_cert,
            tls_key,
            tls_ca,
            cluster_port,
            seeds,
            cluster_addr,
        );
        Err(PyNotImplementedError::new_err(NO_CLUSTER))
    }

    /// True when at least one peer link is up (false on a single node).
    fn cluster_connected(&self) -> bool {
        self.server.health().cluster_connected
    }

    /// Peers this node has an open link to (0 on a single node).
    fn cluster_peers_count(&self) -> usize {
        self.server.health().cluster_peer_count as usize
    }

    /// Peer links: always `[]` (no clustering yet).
    fn cluster_info<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        PyList::empty(py)
    }

    /// Reload the cluster TLS files. Clustering is not implemented yet:
    /// `NotImplementedError`.
    fn reload_cluster_tls(&self, cert_path: &str, key_path: &str, ca_path: &str) -> PyResult<()> {
        let _ = (cert_path, key_path, ca_path);
        Err(PyNotImplementedError::new_err(NO_CLUSTER))
    }

    /// Undelivered cluster messages: always `[]` (no clustering yet).
    fn get_cluster_dlq_entries<'py>(&self, py: Python<'py>) -> Bound<'py, PyList> {
        PyList::empty(py)
    }

    // ---- monitoring ------------------------------------------------------

    /// Health figures (upstream keys first, then WSE's log figures).
    fn health_snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        health::to_dict(py, &self.server.health())
    }

    /// Prometheus text exposition.
    fn prometheus_metrics(&self) -> String {
        self.server.prometheus_metrics()
    }

    /// Every option's value, as `wse::config::options` shows it (private:
    /// `tests/python/test_options.py` checks the constructor's defaults
    /// and keywords with it).
    fn _options(&self) -> Vec<(&'static str, String)> {
        wse::config::options::values(self.server.config()).collect()
    }

    // ---- the log ---------------------------------------------------------

    /// Where `topic` stands in the log: `{"epoch", "first_offset",
    /// "next_offset"}`, or `None` when it has no history.
    fn position<'py>(&self, py: Python<'py>, topic: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let pos = self
            .server
            .position(topic)
            .map_err(|e| server_error(py, e))?;
        pos.map(|p| records::position(py, p.epoch, p.first_offset, p.next_offset))
            .transpose()
    }

    /// Up to `limit` records of `topic` from `(epoch, offset)` inclusive,
    /// from memory or disk. Raises `NotRecoverableError` for a position in
    /// another epoch, removed by retention, or past the head.
    #[pyo3(signature = (topic, epoch, offset, limit=100))]
    fn read<'py>(
        &self,
        py: Python<'py>,
        topic: &str,
        epoch: &str,
        offset: u64,
        limit: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let from = Position::new(records::parse_epoch(epoch)?, offset);
        let batch = py
            .detach(|| self.server.read(topic, from, limit))
            .map_err(|e| server_error(py, e))?;
        records::records(py, topic, &batch.records)
    }
}
