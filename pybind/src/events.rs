//! Application events as the Python values of PYTHON_API.md §2.3.
//!
//! Drain mode returns `(kind, conn_id, data)` tuples:
//!
//! | `AppEvent` | tuple |
//! |---|---|
//! | `Connect` | `("connect", conn_id, cookie_header)` |
//! | `AuthConnect` | `("auth_connect", conn_id, user_id)` |
//! | `Message` | `("msg", conn_id, value)` (dict for JSON text; any value for msgpack) |
//! | `Raw` | `("raw", conn_id, text)` |
//! | `Binary` | `("bin", conn_id, bytes)` |
//! | `Disconnect` | `("disconnect", conn_id, None)` |
//! | `PresenceJoin` / `PresenceLeave` | `("presence_join"/"presence_leave", None, {"topic", "user_id", "data"})` |
//! | `PresenceUpdate` (the core's addition) | `("presence_update", None, {"topic", "user_id", "data"})` |
//!
//! Callback mode turns the same events into calls (see [`Callback`]).

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString, PyTuple};
use wse::AppEvent;

use crate::convert::to_py;

/// One event as the drain-mode tuple.
pub fn to_tuple<'py>(py: Python<'py>, event: &AppEvent) -> PyResult<Bound<'py, PyTuple>> {
    let none = || py.None().into_bound(py);
    let id = |c: &wse::ConnId| PyString::new(py, &c.to_string()).into_any();
    let (kind, conn, data) = match event {
        AppEvent::Connect { conn, cookies } => {
            ("connect", id(conn), PyString::new(py, cookies).into_any())
        }
        AppEvent::AuthConnect { conn, user_id } => (
            "auth_connect",
            id(conn),
            PyString::new(py, user_id).into_any(),
        ),
        AppEvent::Message { conn, value } => ("msg", id(conn), to_py(py, value)?),
        AppEvent::Raw { conn, text } => ("raw", id(conn), PyString::new(py, text).into_any()),
        AppEvent::Binary { conn, data } => ("bin", id(conn), PyBytes::new(py, data).into_any()),
        AppEvent::Disconnect { conn } => ("disconnect", id(conn), none()),
        AppEvent::PresenceJoin {
            topic,
            user_id,
            data,
        } => ("presence_join", none(), presence(py, topic, user_id, data)?),
        AppEvent::PresenceLeave {
            topic,
            user_id,
            data,
        } => (
            "presence_leave",
            none(),
            presence(py, topic, user_id, data)?,
        ),
        AppEvent::PresenceUpdate {
            topic,
            user_id,
            data,
        } => (
            "presence_update",
            none(),
            presence(py, topic, user_id, data)?,
        ),
    };
    PyTuple::new(py, [PyString::new(py, kind).into_any(), conn, data])
}

fn presence<'py>(
    py: Python<'py>,
    topic: &str,
    user_id: &str,
    data: &serde_json::Value,
) -> PyResult<Bound<'py, PyAny>> {
    let d = PyDict::new(py);
    d.set_item("topic", topic)?;
    d.set_item("user_id", user_id)?;
    d.set_item("data", to_py(py, data)?)?;
    Ok(d.into_any())
}

/// Which callback an event goes to, with its arguments.
pub enum Callback<'py> {
    /// `on_connect(conn_id, cookies)`.
    Connect(Bound<'py, PyTuple>),
    /// `on_message(conn_id, data)`.
    Message(Bound<'py, PyTuple>),
    /// `on_disconnect(conn_id)`.
    Disconnect(Bound<'py, PyTuple>),
    /// `on_presence(event_type, info)` with `info` = `{"topic", "user_id",
    /// "data"}` (a WSE addition: upstream had no presence in callback mode).
    Presence(Bound<'py, PyTuple>),
}

/// The callback call for `event` (presence events go to `on_presence`,
/// when one was given).
///
/// `on_connect` receives the raw Cookie header. For a JWT connection the
/// core's event carries the user id but not the header, so `""` is passed
/// (the user id is not delivered in callback mode, as upstream).
pub fn to_callback<'py>(py: Python<'py>, event: &AppEvent) -> PyResult<Option<Callback<'py>>> {
    let id = |c: &wse::ConnId| PyString::new(py, &c.to_string()).into_any();
    Ok(Some(match event {
        AppEvent::Connect { conn, cookies } => Callback::Connect(PyTuple::new(
            py,
            [id(conn), PyString::new(py, cookies).into_any()],
        )?),
        AppEvent::AuthConnect { conn, .. } => Callback::Connect(PyTuple::new(
            py,
            [id(conn), PyString::new(py, "").into_any()],
        )?),
        AppEvent::Message { conn, value } => {
            Callback::Message(PyTuple::new(py, [id(conn), to_py(py, value)?])?)
        }
        AppEvent::Raw { conn, text } => Callback::Message(PyTuple::new(
            py,
            [id(conn), PyString::new(py, text).into_any()],
        )?),
        AppEvent::Binary { conn, data } => Callback::Message(PyTuple::new(
            py,
            [id(conn), PyBytes::new(py, data).into_any()],
        )?),
        AppEvent::Disconnect { conn } => Callback::Disconnect(PyTuple::new(py, [id(conn)])?),
        AppEvent::PresenceJoin { .. }
        | AppEvent::PresenceLeave { .. }
        | AppEvent::PresenceUpdate { .. } => {
            let t = to_tuple(py, event)?;
            Callback::Presence(PyTuple::new(py, [t.get_item(0)?, t.get_item(2)?])?)
        }
    }))
}
