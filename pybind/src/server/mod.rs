//! `RustWSEServer`: the Python face of `wse::Server` (PYTHON_API.md §2).
//!
//! The class is `frozen`: every method takes `&self`, and all state lives
//! behind the Rust server's own locks or in atomics here, so two Python
//! threads can call methods at the same time (upstream raised "Already
//! borrowed" when `stop()` met a thread blocked in `drain_inbound`). Calls
//! that wait or do I/O run with the GIL released: `start`, `stop`,
//! `drain`, `drain_inbound`, broadcasts, subscriptions, recovery, log
//! reads, and sends of large payloads.
//!
//! The methods are grouped by concern, one `#[pymethods]` block per file
//! (pyo3's `multiple-pymethods`): here the constructor and the lifecycle;
//! `receiving` (drain mode, callbacks), `sending`, `topics` (connections,
//! subscriptions, presence), `cluster`, `inspect` (health, metrics, the
//! log).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use wse::Server;

use crate::config::ServerOptions;
use crate::dispatcher::{Callbacks, Dispatcher, Shared};
use crate::errors::server_error;

mod cluster;
mod inspect;
mod receiving;
mod sending;
mod topics;

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
        tls_cert=None,
        tls_key=None,
        tls_reload_interval=10,
        http_listen=None,
        admin_token=None,
        http_public_metrics=false,
        http_max_body=16777216,
        http_rate_limit=20.0,
        http_rate_burst=40.0,
        permessage_deflate=true,
        deflate_min_size=256,
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
        tls_cert: Option<String>,
        tls_key: Option<String>,
        tls_reload_interval: u64,
        http_listen: Option<String>,
        admin_token: Option<String>,
        http_public_metrics: bool,
        http_max_body: usize,
        http_rate_limit: f64,
        http_rate_burst: f64,
        permessage_deflate: bool,
        deflate_min_size: usize,
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
            tls_cert,
            tls_key,
            tls_reload_interval,
            http_listen,
            admin_token,
            http_public_metrics,
            http_max_body,
            http_rate_limit,
            http_rate_burst,
            permessage_deflate,
            deflate_min_size,
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
        if let Err(e) = wse::http::start(&self.server) {
            let _ = py.detach(|| self.server.stop());
            return Err(server_error(py, e));
        }
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

    /// The HTTP API's bound port while running with one (`http_listen`),
    /// else `None`.
    fn local_http_port(&self) -> Option<u16> {
        self.server.http_addr().map(|a| a.port())
    }

    /// Read `tls_cert` and `tls_key` again and present them from the next
    /// handshake on; connections stay. `ValueError` (naming the file)
    /// when they cannot be used, and the certificate in force stays;
    /// `RuntimeError` without TLS or before `start()`.
    fn reload_tls(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.server.reload_tls())
            .map_err(|e| server_error(py, e))
    }
}
