//! Where replayed records go: a live server through the HTTP batch API or
//! a WebSocket client `publish`, or JSON lines on stdout or in a file.
//!
//! Records travel in [`Batch`]es, in source order. A destination takes a
//! batch ([`Destination::submit`]) and reports each batch it acknowledged
//! (stored at the destination) as an [`Acked`], in order; the checkpoint
//! advances only on those. How many batches may be unacknowledged at once
//! differs by destination, because the order must survive:
//!
//! - HTTP: one. The API appends concurrent requests in the order it takes
//!   them, not the order they were sent, so two batches in flight could
//!   land swapped. Reading, converting and pacing the next batches still
//!   overlap with the request in flight.
//! - WebSocket: up to `--in-flight` batches of publishes on one connection.
//!   A connection's publishes are appended, and acknowledged, in the order
//!   it sent them.
//! - Lines: none; a batch is acknowledged once written (and, with a
//!   checkpoint, fsynced).
//!
//! # Layout
//!
//! - `to_http`: `--to-http`, `POST /v1/topics/{topic}/batch` with ids.
//! - `to_ws`: `--to-ws`, client `publish` frames with ids, `publish_ack`s.
//! - `lines`: `--to-stdout` and `--to-file`.

mod lines;
mod to_http;
mod to_ws;

pub(crate) use lines::Lines;
pub(crate) use to_http::ToHttp;
pub(crate) use to_ws::ToWs;

use super::message::Item;
use crate::error::CliError;

/// Consecutive source records: those to publish and those skipped.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// The records to publish, in offset order.
    pub(crate) items: Vec<Item>,
    /// The source offset after the batch (every offset before it is
    /// dealt with once the batch is acknowledged).
    pub(crate) end: u64,
    /// Presence and control records skipped in its offsets.
    pub(crate) not_messages: u64,
    /// Messages skipped as not publishable.
    pub(crate) not_publishable: u64,
    /// Bytes of the items' texts, to bound a request.
    pub(crate) bytes: usize,
}

/// A batch the destination acknowledged (the batch without its records).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Acked {
    /// The source offset after the batch.
    pub(crate) end: u64,
    /// Records published.
    pub(crate) published: u64,
    /// Presence and control records skipped.
    pub(crate) not_messages: u64,
    /// Messages skipped as not publishable.
    pub(crate) not_publishable: u64,
}

impl Batch {
    /// What acknowledging this batch tells.
    pub(crate) fn acked(&self) -> Acked {
        Acked {
            end: self.end,
            published: self.items.len() as u64,
            not_messages: self.not_messages,
            not_publishable: self.not_publishable,
        }
    }
}

/// A destination.
pub(crate) enum Destination {
    /// The HTTP API of a server.
    Http(ToHttp),
    /// A WebSocket connection to a server.
    Ws(Box<ToWs>),
    /// JSON lines.
    Lines(Lines),
}

impl Destination {
    /// Hand `batch` over; batches acknowledged meanwhile are pushed to
    /// `acked`, oldest first. May wait for room (batches in flight).
    pub(crate) async fn submit(
        &mut self,
        batch: Batch,
        acked: &mut Vec<Acked>,
    ) -> Result<(), CliError> {
        if batch.items.is_empty() {
            // Nothing to send; acknowledged once everything before it is.
            return match self {
                Self::Ws(ws) => ws.submit(batch, acked).await,
                _ => {
                    acked.push(batch.acked());
                    Ok(())
                }
            };
        }
        match self {
            Self::Http(h) => h.submit(batch, acked).await,
            Self::Ws(ws) => ws.submit(batch, acked).await,
            Self::Lines(l) => l.submit(&batch, acked),
        }
    }

    /// Wait until every batch handed over is acknowledged.
    pub(crate) async fn finish(&mut self, acked: &mut Vec<Acked>) -> Result<(), CliError> {
        match self {
            Self::Http(_) => Ok(()),
            Self::Ws(ws) => ws.finish(acked).await,
            Self::Lines(l) => l.finish(),
        }
    }

    /// Does it take only JSON objects (a server)?
    pub(crate) fn objects_only(&self) -> bool {
        !matches!(self, Self::Lines(_))
    }
}
