//! Acknowledgements of a connection's publishes.
//!
//! A client's `publish` with an `id` is acknowledged only once its record
//! is durable by the log's policy. The session must not wait for that (it
//! would stop reading and writing), so each publishing connection gets one
//! small task, started on its first acknowledged publish, that settles the
//! pending acks in the order they were asked for and queues the replies.
//! The task ends when the session drops its sender and the last pending
//! ack is settled.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::conn::Conn;
use crate::ops::client::PendingAck;
use crate::ops::send::send_text;
use crate::state::ServerState;

/// The session's end of its acknowledgement task (none until needed).
#[derive(Default)]
pub(super) struct Acks {
    tx: Option<mpsc::UnboundedSender<PendingAck>>,
}

impl Acks {
    /// Queue `ack`; its reply goes out once its record is durable, after
    /// the replies of every earlier publish of this connection.
    pub(super) fn push(&mut self, state: &Arc<ServerState>, conn: &Arc<Conn>, ack: PendingAck) {
        let tx = self.tx.get_or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(settle_in_order(state.clone(), conn.clone(), rx));
            tx
        });
        // The task lives as long as this sender: the send cannot fail.
        let _ = tx.send(ack);
    }
}

async fn settle_in_order(
    state: Arc<ServerState>,
    conn: Arc<Conn>,
    mut rx: mpsc::UnboundedReceiver<PendingAck>,
) {
    while let Some(ack) = rx.recv().await {
        let reply = ack.settle().await;
        send_text(&state, &conn, &reply.to_string());
    }
}
