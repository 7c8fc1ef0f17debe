//! `wse serve --bench-app` (hidden): a minimal application behind the
//! server, for `wse bench inbound`.
//!
//! The server delivers events to its queue (`EventDelivery::Queue`, as
//! with a Python app), and one thread drains them the way an app does
//! (`drain_events`, up to 4096 at a time). It counts the client messages
//! of every connection, and answers `{"t":"bench_stats"}` with
//! `{"t":"bench_stats","p":{"received":<all>,"conn_received":<this one's>}}`
//! (the request itself is not counted). Because a connection's events
//! reach the app in order, the answer covers everything the client sent
//! before asking.
//!
//! It is also the app the cluster presence tests drive (presence is set by
//! an app, never by a client message): `{"t":"bench_join","p":{"topic":T,
//! "data":D}}` subscribes the asking connection to `T` with presence data
//! `D` and answers `{"t":"bench_joined"}`; `{"t":"bench_members","p":
//! {"topic":T}}` answers `{"t":"bench_members","p":{"users":{user:
//! {"connections":N,"data":D}}}}`, this node's view of `T`'s presence.

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::Value;
use wse::{AppEvent, ConnId, Server};

use crate::error::CliError;

/// Events taken per drain.
const DRAIN_MAX: usize = 4096;
/// Longest wait for the first event of a drain.
const DRAIN_WAIT: Duration = Duration::from_millis(50);

/// Start the app thread; it ends when the server stops.
pub fn spawn(server: Arc<Server>) -> Result<JoinHandle<()>, CliError> {
    std::thread::Builder::new()
        .name("wse-bench-app".into())
        .spawn(move || run(&server))
        .map_err(|e| CliError::io("start the bench app thread", e))
}

/// Drain and count until the server stops.
fn run(server: &Server) {
    let mut counts = Counts::default();
    while server.is_running() {
        for event in server.drain_events(DRAIN_MAX, DRAIN_WAIT) {
            let reply = match &event {
                AppEvent::Message { conn, value } => {
                    presence_command(server, *conn, value).map(|r| (*conn, r))
                }
                _ => None,
            };
            if let Some((conn, reply)) = reply.or_else(|| counts.handle(event))
                && server.send(&conn.to_string(), &reply).is_err()
            {
                return; // stopped meanwhile
            }
        }
    }
}

/// Carry out a presence command (see the module doc); its answer, or
/// `None` for a message that is not one.
fn presence_command(server: &Server, conn: ConnId, value: &Value) -> Option<String> {
    let topic = value
        .pointer("/p/topic")
        .and_then(Value::as_str)
        .unwrap_or("");
    match value.get("t").and_then(Value::as_str)? {
        "bench_join" => {
            let data = value.pointer("/p/data").cloned().unwrap_or(Value::Null);
            let done = server.subscribe_with_presence(
                &conn.to_string(),
                &[topic.to_owned()],
                None,
                Some(&data),
            );
            Some(match done {
                Ok(()) => r#"{"t":"bench_joined"}"#.to_owned(),
                Err(e) => serde_json::json!({"t": "bench_error", "p": {"error": e.to_string()}})
                    .to_string(),
            })
        }
        "bench_members" => {
            let users: serde_json::Map<String, Value> = server
                .presence(topic)
                .into_iter()
                .map(|(user, (connections, data))| {
                    (
                        user,
                        serde_json::json!({"connections": connections, "data": data}),
                    )
                })
                .collect();
            Some(serde_json::json!({"t": "bench_members", "p": {"users": users}}).to_string())
        }
        _ => None,
    }
}

/// Messages counted, in all and per connection.
#[derive(Default)]
struct Counts {
    total: u64,
    per_conn: HashMap<ConnId, u64>,
}

impl Counts {
    /// Count one event; the reply to send when it asks for the counts.
    fn handle(&mut self, event: AppEvent) -> Option<(ConnId, String)> {
        match event {
            AppEvent::Message { conn, value } => {
                if value.get("t").and_then(Value::as_str) == Some("bench_stats") {
                    let mine = self.per_conn.get(&conn).copied().unwrap_or(0);
                    let reply = format!(
                        r#"{{"t":"bench_stats","p":{{"received":{},"conn_received":{mine}}}}}"#,
                        self.total
                    );
                    return Some((conn, reply));
                }
                self.total += 1;
                *self.per_conn.entry(conn).or_default() += 1;
            }
            AppEvent::Raw { conn, .. } | AppEvent::Binary { conn, .. } => {
                self.total += 1;
                *self.per_conn.entry(conn).or_default() += 1;
            }
            AppEvent::Disconnect { conn } => {
                self.per_conn.remove(&conn);
            }
            _ => {}
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn counts_messages_per_connection_and_answers_the_asker() {
        let mut c = Counts::default();
        let (a, b) = (ConnId(1), ConnId(2));
        let msg = |conn, t: &str| AppEvent::Message {
            conn,
            value: json!({"t": t, "p": {}}),
        };
        for _ in 0..3 {
            assert!(c.handle(msg(a, "x")).is_none());
        }
        assert!(c.handle(msg(b, "x")).is_none());
        let (to, reply) = c.handle(msg(a, "bench_stats")).unwrap();
        assert_eq!(to, a);
        let v: Value = serde_json::from_str(&reply).unwrap();
        assert_eq!(
            v,
            json!({"t": "bench_stats", "p": {"received": 4, "conn_received": 3}})
        );
        assert!(c.handle(AppEvent::Disconnect { conn: a }).is_none());
        let (_, reply) = c.handle(msg(a, "bench_stats")).unwrap();
        assert!(reply.contains(r#""conn_received":0"#), "{reply}");
    }
}
