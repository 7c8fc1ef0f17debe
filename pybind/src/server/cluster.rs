//! `RustWSEServer` and its cluster: status, membership changes, and the
//! upstream cluster calls this build does not serve.

use pyo3::exceptions::PyNotImplementedError;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::config::seconds;
use crate::errors::server_error;

use super::RustWSEServer;

/// The message of `connect_cluster` and `reload_cluster_tls`.
const NO_CLUSTER: &str = "connect_cluster and cluster TLS are not available yet: \
     make the server a node of a Raft-replicated cluster with node_id=, cluster_listen=, \
     cluster_peers= and cluster_insecure=True (docs/OPERATIONS.md, Cluster)";

// PyO3 hands arguments over as owned values (`Vec<String>`, `Bound`).
#[allow(clippy::needless_pass_by_value)]
#[pymethods]
impl RustWSEServer {
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
}
