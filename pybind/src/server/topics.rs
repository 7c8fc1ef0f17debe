//! `RustWSEServer` and its connections: listing and closing them, their
//! subscriptions and ACLs, presence.

use std::collections::BTreeMap;

use pyo3::prelude::*;
use pyo3::types::PyDict;
use wse::ServerError;
use wse::topics::TopicAcl;

use crate::errors::server_error;
use crate::recovery;

use super::RustWSEServer;

// PyO3 hands arguments over as owned values (`Vec<String>`, `Bound`).
#[allow(clippy::needless_pass_by_value)]
#[pymethods]
impl RustWSEServer {
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
}
