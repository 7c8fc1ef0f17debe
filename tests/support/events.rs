//! Waiting for application events (drain mode) from async tests.
//!
//! `Server::drain_events` blocks its thread, so it runs in
//! `block_in_place` (tests using this must run on the multi-thread
//! runtime). Events are buffered, so a test can take them one by one.

use std::collections::VecDeque;

use serde_json::Value;
use wse::{AppEvent, Server};

use super::WAIT;

/// The events of one server, one at a time.
pub struct Events<'a> {
    server: &'a Server,
    pending: VecDeque<AppEvent>,
}

impl<'a> Events<'a> {
    /// Read `server`'s events.
    pub fn new(server: &'a Server) -> Self {
        Self {
            server,
            pending: VecDeque::new(),
        }
    }

    /// The next event; panics when none arrives within [`WAIT`].
    pub async fn next(&mut self) -> AppEvent {
        if let Some(e) = self.pending.pop_front() {
            return e;
        }
        let server = self.server;
        let got = tokio::task::block_in_place(|| server.drain_events(1024, WAIT));
        assert!(!got.is_empty(), "no application event within {WAIT:?}");
        self.pending.extend(got);
        self.pending.pop_front().expect("just filled")
    }

    /// Events already queued, without waiting.
    pub fn ready(&mut self) -> Vec<AppEvent> {
        let server = self.server;
        let more = server.drain_events(usize::MAX, std::time::Duration::ZERO);
        self.pending.extend(more);
        self.pending.drain(..).collect()
    }

    /// The next event, which must be a `Connect`: (conn id, cookies).
    pub async fn connect(&mut self) -> (String, String) {
        match self.next().await {
            AppEvent::Connect { conn, cookies } => (conn.to_string(), cookies),
            other => panic!("expected Connect, got {other:?}"),
        }
    }

    /// The next event, which must be an `AuthConnect`: (conn id, user id).
    pub async fn auth_connect(&mut self) -> (String, String) {
        match self.next().await {
            AppEvent::AuthConnect { conn, user_id } => (conn.to_string(), user_id),
            other => panic!("expected AuthConnect, got {other:?}"),
        }
    }

    /// The next event, which must be a `Message` of `conn`: its value.
    pub async fn message(&mut self, conn: &str) -> Value {
        match self.next().await {
            AppEvent::Message { conn: c, value } if c.to_string() == conn => value,
            other => panic!("expected a Message of {conn}, got {other:?}"),
        }
    }

    /// The next event, which must be the `Disconnect` of `conn`.
    pub async fn disconnect(&mut self, conn: &str) {
        match self.next().await {
            AppEvent::Disconnect { conn: c } if c.to_string() == conn => {}
            other => panic!("expected the Disconnect of {conn}, got {other:?}"),
        }
    }
}

/// The connection an event is about (`None` for presence events).
pub fn event_conn(ev: &AppEvent) -> Option<String> {
    match ev {
        AppEvent::Connect { conn, .. }
        | AppEvent::AuthConnect { conn, .. }
        | AppEvent::Message { conn, .. }
        | AppEvent::Raw { conn, .. }
        | AppEvent::Binary { conn, .. }
        | AppEvent::Disconnect { conn } => Some(conn.to_string()),
        AppEvent::PresenceJoin { .. }
        | AppEvent::PresenceUpdate { .. }
        | AppEvent::PresenceLeave { .. } => None,
    }
}

/// Poll `cond` every 10 ms until it holds; panics after [`WAIT`]. Only for
/// states no event announces (a count dropping to 0 after many closes).
pub async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not reached within {WAIT:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
