//! One connection's task: upgrade, authentication, registration, then a
//! single loop that reads client frames, writes what the connection should
//! receive, and ends on a close request, a client close or an error.
//!
//! One task per connection (not a reader and a writer task) keeps an idle
//! connection small: it waits on socket readiness without holding a read
//! buffer, and its outbound state is a cursor per subscription.

mod acks;
mod catch_up;
mod reader;
mod transport;
mod writer;

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::auth::AuthenticatedUser;
use crate::budget::Held;
use crate::config::EventDelivery;
use crate::conn::{CloseRequest, Conn, ConnId};
use crate::events::{AppEvent, Reservation};
use crate::metrics::Metrics;
use crate::protocol::handshake::{ServerReady, server_ready};
use crate::rate_limit::TokenBucket;
use crate::state::ServerState;
use crate::state::handshakes::HandshakeSlot;
use crate::ws::extensions::{self, Deflate};
use crate::ws::frame::{self, FrameParser, close_code};
use crate::ws::handshake::{self, HandshakeError, UpgradeRequest};

pub use writer::OutQueue;

use transport::Transport;

/// Serve one accepted socket until it closes: the TLS handshake when the
/// server has TLS, then upgrade it, admit and authenticate the client,
/// register its connection, run the session, then clean up after it.
/// `slot` is its place among the pending handshakes, held until the client
/// has the upgrade response; `handshake_timeout` bounds all of it up to
/// the upgrade.
pub(crate) async fn serve(state: Arc<ServerState>, stream: TcpStream, slot: HandshakeSlot) {
    let _ = stream.set_nodelay(true);
    let deadline = tokio::time::Instant::now() + state.config.handshake_timeout;
    let Some(tls) = state.tls.clone() else {
        return serve_stream(state, stream, slot, deadline).await;
    };
    // Boxed: the TLS path's futures hold a rustls session inline, and
    // unboxed they would size every plain connection's task too (an idle
    // connection is mostly its task).
    Box::pin(serve_tls(state, tls, stream, slot, deadline)).await;
}

/// [`serve`] over TLS: the handshake, then the session on the TLS stream.
async fn serve_tls(
    state: Arc<ServerState>,
    tls: Arc<crate::tls::Tls>,
    stream: TcpStream,
    mut slot: HandshakeSlot,
    deadline: tokio::time::Instant,
) {
    let peer = stream.peer_addr().ok();
    let accepted = tokio::select! {
        r = tokio::time::timeout_at(deadline, tls.accept(stream)) => r,
        () = slot.evicted() => {
            Metrics::add(&state.metrics.connections_rejected, 1);
            return;
        }
    };
    match accepted {
        Ok(Ok(stream)) => serve_stream(state, stream, slot, deadline).await,
        Ok(Err(e)) => {
            Metrics::add(&state.metrics.connections_rejected, 1);
            Metrics::add(&state.metrics.tls_handshake_failures, 1);
            tracing::debug!(peer = ?peer, error = %e, "TLS handshake failed");
        }
        Err(_) => {
            Metrics::add(&state.metrics.connections_rejected, 1);
            Metrics::add(&state.metrics.tls_handshake_failures, 1);
        }
    }
}

/// A socket the session can run on: read and written with async calls
/// through the upgrade, then handed over as a [`Transport`].
trait Upgradable: AsyncRead + AsyncWrite + Unpin {
    fn into_transport(self) -> Transport;
}

impl Upgradable for TcpStream {
    fn into_transport(self) -> Transport {
        Transport::Plain(self)
    }
}

impl Upgradable for tokio_rustls::server::TlsStream<TcpStream> {
    fn into_transport(self) -> Transport {
        Transport::tls(self)
    }
}

/// [`serve`] once the socket (plain or TLS) is ready for the upgrade.
async fn serve_stream<S: Upgradable>(
    state: Arc<ServerState>,
    mut stream: S,
    mut slot: HandshakeSlot,
    deadline: tokio::time::Instant,
) {
    let mut rbuf = BytesMut::new();
    let Some(req) = upgrade(&state, &mut stream, &mut rbuf, &mut slot, deadline).await else {
        return;
    };
    if !admit(&state) {
        return;
    }
    let deflate = req
        .extensions
        .as_deref()
        .filter(|_| state.config.permessage_deflate)
        .and_then(extensions::negotiate);
    let accept =
        handshake::accept_response(&req.key, deflate.as_ref().map(|d| d.response.as_str()));
    let Some(user) = authenticate(&state, &mut stream, &req, &accept).await else {
        return;
    };
    let conn = new_conn(&state, user.as_ref(), &req, deflate.as_ref());
    register(&state, &conn, req.cookie);
    // The connection is registered (and the app told) before the client
    // sees the upgrade: once a client is connected, the app knows it, and
    // clients that connect one after another are announced in that order.
    let upgraded = stream.write_all(&accept).await.is_ok() && stream.flush().await.is_ok();
    drop(slot);
    if upgraded {
        Session::new(state.clone(), conn.clone(), stream.into_transport(), rbuf)
            .run()
            .await;
    }
    if state.presence.is_some() && state.log.is_backlogged() {
        // Its presence leaves are appended to the log, which would wait
        // for room: not on a worker.
        let (s, c) = (state.clone(), conn.clone());
        let _ = tokio::task::spawn_blocking(move || cleanup(&s, &c)).await;
    } else {
        cleanup(&state, &conn);
    }
}

/// Read the HTTP upgrade request by `deadline`. A request
/// that is not a WebSocket upgrade gets a 400 (the peer is told why);
/// one that times out, is too large, fails on the socket, or whose place
/// a newer socket took before it was read is dropped.
async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    state: &ServerState,
    stream: &mut S,
    rbuf: &mut BytesMut,
    slot: &mut HandshakeSlot,
    deadline: tokio::time::Instant,
) -> Option<UpgradeRequest> {
    let read = tokio::select! {
        r = tokio::time::timeout_at(
            deadline,
            handshake::read_request(stream, rbuf, state.config.max_handshake_bytes),
        ) => r,
        () = slot.evicted() => {
            Metrics::add(&state.metrics.connections_rejected, 1);
            return None;
        }
    };
    match read {
        Ok(Ok(req)) if slot.request_read() => Some(req),
        Ok(Err(e @ (HandshakeError::Malformed(_) | HandshakeError::NotWebSocket(_)))) => {
            Metrics::add(&state.metrics.connections_rejected, 1);
            let _ = stream
                .write_all(&handshake::bad_request(&e.to_string()))
                .await;
            let _ = stream.flush().await;
            None
        }
        // Failed, timed out, or evicted as its request arrived.
        _ => {
            Metrics::add(&state.metrics.connections_rejected, 1);
            None
        }
    }
}

/// Take a connection slot, unless the server drains or is full (limits
/// and draining close the socket before any HTTP response).
fn admit(state: &ServerState) -> bool {
    if state.life.is_draining() || !state.conns.reserve_slot() {
        Metrics::add(&state.metrics.connections_rejected, 1);
        return false;
    }
    true
}

/// Authenticate the client when the server needs a JWT: `Some(None)`
/// without JWT, `Some(Some(user))` for a valid token. A refused client
/// still gets the upgrade, then one error frame and the Close
/// (CLIENT_PROTOCOL.md §2.3), and its slot is given back (`None`).
async fn authenticate<S: AsyncWrite + Unpin>(
    state: &ServerState,
    stream: &mut S,
    req: &UpgradeRequest,
    accept: &[u8],
) -> Option<Option<AuthenticatedUser>> {
    let Some(jwt) = &state.config.jwt else {
        return Some(None);
    };
    match jwt.authenticate(req.cookie.as_deref(), req.authorization.as_deref()) {
        Ok(user) => Some(Some(user)),
        Err(e) => {
            Metrics::add(&state.metrics.auth_failures, 1);
            let mut out = accept.to_vec();
            out.extend_from_slice(&frame::text(e.frame(SystemTime::now()).as_bytes()));
            out.extend_from_slice(&frame::close(Some(e.close_code()), "Authentication failed"));
            let _ = stream.write_all(&out).await;
            let _ = stream.shutdown().await;
            state.conns.release_slot();
            None
        }
    }
}

/// The connection of an admitted client (`deflate`: what was agreed in the
/// upgrade), with its first frames queued:
/// `server_ready` when the clients expect one, and, when the client may
/// still ask for encryption, no topic data until it has had the chance.
fn new_conn(
    state: &ServerState,
    user: Option<&AuthenticatedUser>,
    req: &UpgradeRequest,
    deflate: Option<&Deflate>,
) -> Arc<Conn> {
    let bucket = TokenBucket::new(
        state.config.rate_limit_capacity,
        state.config.rate_limit_refill,
    );
    let mut conn = Conn::new(
        ConnId::generate(),
        user.map(|u| u.user_id.clone()),
        req.wants_msgpack(),
        user.and_then(|u| u.topic_acl.clone()),
        bucket,
        state.now_ms(),
        state.budget.clone(),
    );
    conn.inflate = deflate.is_some();
    conn.compress_from = deflate
        .filter(|d| d.compress)
        .map(|_| state.config.deflate_min_size);
    let conn = Arc::new(conn);
    if let Some(exp) = user.and_then(|u| u.expires_at) {
        conn.token_expires_at.store(exp, Ordering::Relaxed);
    }
    if conn.user_id.is_some() || state.config.server_ready_without_auth {
        let ready = server_ready(
            &ServerReady {
                connection_id: &conn.id_str,
                user_id: conn.user_id.as_deref().unwrap_or("anonymous"),
                recovery_enabled: state.config.recovery_enabled,
            },
            uuid::Uuid::now_v7(),
            SystemTime::now(),
        );
        conn.push_control(frame::text(ready.as_bytes()), 0);
    }
    if state.config.encryption && !state.config.e2e_hello_wait.is_zero() {
        let wait = state.config.e2e_hello_wait.as_millis() as u64;
        conn.hold_data_until(state.now_ms() + wait);
    }
    conn
}

/// Make the connection known: to the registry (so sends and broadcasts
/// reach it), to the counters, and to the app (a connect event, with the
/// cookies of an anonymous client).
fn register(state: &ServerState, conn: &Arc<Conn>, cookie: Option<String>) {
    state.conns.register(conn.clone());
    Metrics::add(&state.metrics.connections_accepted, 1);
    if state.config.event_delivery == EventDelivery::Queue {
        state.events.push_lifecycle(match conn.user_id.clone() {
            Some(user_id) => AppEvent::AuthConnect {
                conn: conn.id,
                user_id,
            },
            None => AppEvent::Connect {
                conn: conn.id,
                cookies: cookie.unwrap_or_default(),
            },
        });
    }
}

/// Forget the connection: its subscriptions, its slot, then tell the app.
/// The slot is free before the app hears of the disconnect, so an app that
/// reconnects at once is not refused by `max_connections`.
fn cleanup(state: &ServerState, conn: &Arc<Conn>) {
    crate::ops::subscribe::unsubscribe_all(state, conn);
    state.conns.unregister(conn.id);
    if state.config.event_delivery == EventDelivery::Queue {
        state
            .events
            .push_lifecycle(AppEvent::Disconnect { conn: conn.id });
    }
}

/// The running state of one connection's task.
struct Session {
    state: Arc<ServerState>,
    conn: Arc<Conn>,
    stream: Transport,
    /// Bytes read and not yet parsed (released when empty, so an idle
    /// connection holds no buffer).
    rbuf: BytesMut,
    /// `rbuf`'s capacity, counted in the memory budget.
    rbuf_held: Held,
    parser: FrameParser,
    out: OutQueue,
    /// Events read but not yet queued (the inbound queue was full): no
    /// more reading until they are.
    held: VecDeque<(AppEvent, usize)>,
    /// The place in line for room in the inbound queue for the first held
    /// event; kept across wake-ups so the connection does not lose it.
    waiting_for_room: Option<RoomWait>,
    /// Client messages per second.
    inbound: TokenBucket,
    /// Client bytes per second, charged as each message is taken from the
    /// read buffer, before it is parsed.
    inbound_bytes: TokenBucket,
    /// Reading pauses until then (inbound rate limits).
    throttled_until: Option<Instant>,
    /// The read buffer holds frames not yet handled because the task used
    /// up its share of work: it yields to the others, then goes on.
    parse_more: bool,
    /// The work done since the task last gave way.
    share: reader::WorkShare,
    /// Publishes waiting for their record to be durable before their ack.
    acks: acks::Acks,
    /// The log read in flight for subscriptions behind their ring.
    reading: Option<tokio::task::JoinHandle<Vec<catch_up::Page>>>,
    /// A client message whose handling may block (see `reader::CoreJob`),
    /// running on the blocking pool; nothing more is read until it is done.
    core_job: Option<reader::CoreJob>,
}

/// A pending [`crate::events::InboundQueue::reserve`].
type RoomWait = Pin<Box<dyn Future<Output = Option<Reservation>> + Send>>;

/// The room `wait` waits for; never ready without one.
async fn room(wait: &mut Option<RoomWait>) -> Option<Reservation> {
    match wait {
        Some(w) => w.await,
        None => std::future::pending().await,
    }
}

/// The pages of the log read in flight; never ready without one.
async fn pages(
    reading: &mut Option<tokio::task::JoinHandle<Vec<catch_up::Page>>>,
) -> Vec<catch_up::Page> {
    match reading {
        // A read that panicked gives nothing; the cursors stay, and the
        // next gathering asks again.
        Some(r) => r.await.unwrap_or_default(),
        None => std::future::pending().await,
    }
}

/// How a session ends.
enum End {
    /// The peer closed or the socket failed.
    Gone,
    /// Close with this request.
    Close(CloseRequest),
}

impl Session {
    /// The session of an upgraded connection; `rbuf` holds what arrived
    /// with the upgrade request.
    fn new(state: Arc<ServerState>, conn: Arc<Conn>, stream: Transport, rbuf: BytesMut) -> Self {
        let inbound = TokenBucket::new(
            state.config.inbound_rate_capacity,
            state.config.inbound_rate_refill,
        );
        // Every message the size limit allows must be able to pass.
        let bytes_burst = state
            .config
            .inbound_bytes_capacity
            .max(state.config.max_message_size);
        let inbound_bytes =
            TokenBucket::new(bytes_burst as f64, state.config.inbound_bytes_refill as f64);
        Self {
            parser: if conn.inflate {
                FrameParser::with_inflate(state.config.max_message_size)
            } else {
                FrameParser::new(state.config.max_message_size)
            },
            rbuf_held: Held::new(state.budget.clone()),
            state,
            conn,
            stream,
            rbuf,
            out: OutQueue::default(),
            reading: None,
            core_job: None,
            held: VecDeque::new(),
            waiting_for_room: None,
            inbound,
            inbound_bytes,
            throttled_until: None,
            parse_more: false,
            share: reader::WorkShare::default(),
            acks: acks::Acks::default(),
        }
    }

    async fn run(mut self) {
        // Frames that arrived with the upgrade request.
        if let Err(end) = self.process_buffer() {
            return self.finish(end).await;
        }
        let linger = self.state.config.write_coalesce;
        // With `write_coalesce`, topic messages wait until then, so that
        // one write carries all that arrived meanwhile.
        let mut flush_at: Option<Instant> = None;
        loop {
            if let Some(req) = self.conn.close_request() {
                return self.finish(End::Close(req)).await;
            }
            if flush_at.is_none_or(|t| Instant::now() >= t) {
                if flush_at.take().is_some() {
                    // Signals were left pending while lingering (so they
                    // did not wake this task again): take them now.
                    self.conn.clear_signal();
                }
                if let Err(end) = self.write_what_is_due() {
                    return self.finish(end).await;
                }
            }
            let ready_to_parse =
                self.held.is_empty() && self.throttled_until.is_none() && self.core_job.is_none();
            if ready_to_parse && self.parse_more {
                // A share of work is done: let the worker's other tasks
                // run before the next. Awaited here, not as a branch of
                // the select below, which a ready write or signal would
                // win every time, so that the task never gave way.
                tokio::task::yield_now().await;
                self.share = reader::WorkShare::default();
                if let Err(end) = self.process_buffer() {
                    return self.finish(end).await;
                }
                continue;
            }
            let can_read = ready_to_parse && !self.parse_more;
            let want_write = !self.out.is_empty() || self.stream.has_pending_writes();
            let throttle = self.throttled_until;
            let data_held = self
                .conn
                .data_held_until()
                .map(|ms| self.state.life.started() + std::time::Duration::from_millis(ms));
            if let Some((_, weight)) = self.held.front()
                && self.waiting_for_room.is_none()
            {
                self.waiting_for_room = Some(Box::pin(self.state.events.reserve(*weight)));
            }
            let end = tokio::select! {
                _ = self.conn.signalled() => {
                    if !linger.is_zero()
                        && flush_at.is_none()
                        && self.out.is_empty()
                        && self.conn.outbox.lock().queued_bytes == 0
                    {
                        // Linger: leave the signal set, so that messages
                        // arriving meanwhile do not wake this task again.
                        flush_at = Some(Instant::now() + linger);
                    } else {
                        self.conn.clear_signal();
                    }
                    Ok(())
                }
                () = sleep_until(flush_at), if flush_at.is_some() => Ok(()),
                r = self.stream.readable(), if can_read => match r {
                    Ok(()) => self.read_some(),
                    Err(_) => Err(End::Gone),
                },
                r = self.stream.writable(), if want_write => r.map_err(|_| End::Gone),
                r = room(&mut self.waiting_for_room), if self.waiting_for_room.is_some() => {
                    self.waiting_for_room = None;
                    self.release_held(r);
                    self.process_buffer()
                }
                ack = reader::core_job_done(&mut self.core_job), if self.core_job.is_some() => {
                    self.core_job = None;
                    if let Some(ack) = ack {
                        self.acks.push(&self.state, &self.conn, ack);
                    }
                    self.process_buffer()
                }
                pages = pages(&mut self.reading), if self.reading.is_some() => {
                    self.reading = None;
                    let mut frames = Vec::new();
                    let n = catch_up::apply(&self.state.metrics, &self.conn, pages, &mut frames);
                    Metrics::add(&self.state.metrics.frames_sent, n);
                    // Read for this connection alone: counted until written.
                    self.conn.held.charge(frames.iter().map(Bytes::len).sum());
                    self.out.push_all(frames);
                    Ok(())
                }
                () = sleep_until(data_held), if data_held.is_some() => {
                    // No client_hello in time: topic data flows in clear.
                    self.conn.release_data();
                    Ok(())
                }
                () = sleep_until(throttle), if throttle.is_some() => {
                    self.throttled_until = None;
                    self.process_buffer()
                }
            };
            if let Err(end) = end {
                return self.finish(end).await;
            }
        }
    }

    /// Gather what the connection should receive and write what the
    /// socket takes now.
    fn write_what_is_due(&mut self) -> Result<(), End> {
        loop {
            if self.out.is_blocked()
                && writer::apply_slow_consumer_policy(&self.state, &self.conn).is_err()
            {
                Metrics::add(&self.state.metrics.slow_consumer_disconnects, 1);
                self.discard_unstarted();
                return Err(End::Close(CloseRequest {
                    code: Some(close_code::TRY_AGAIN_LATER),
                    reason: "slow consumer".into(),
                    flush: false,
                }));
            }
            // While a core job runs (a recovery placing cursors and then
            // queueing its reply, on another thread), nothing is gathered:
            // its reply must go before the live messages that follow it.
            let paused = self.core_job.is_some();
            let tried = self.out.bytes() < 64 * 1024 && !paused;
            let gathered = tried && self.out.fill(&self.state.metrics, &self.conn);
            self.read_behind();
            self.flush_out().map_err(|_| End::Gone)?;
            // Gathering stops at a budget: while the socket takes everything,
            // go on until there is nothing left to gather.
            if !self.out.is_empty() || paused || (tried && !gathered) {
                return Ok(());
            }
        }
    }

    /// Write what the socket takes now; what was written no longer counts
    /// in the memory budget. (Broadcast frames are not counted, so this
    /// may give back a connection's count before its own frames are out:
    /// exact for a client that does not read, which is what the budget is
    /// for.)
    fn flush_out(&mut self) -> std::io::Result<()> {
        let written = self.out.flush(&mut self.stream, &self.state.metrics)?;
        self.conn.held.release(written);
        Ok(())
    }

    /// Drop what was gathered and not started; the budget keeps counting
    /// only what is still queued or gathered.
    fn discard_unstarted(&mut self) {
        self.out.discard_unstarted();
        let kept = self.conn.outbox.lock().queued_bytes + self.out.bytes();
        if self.conn.held.bytes() > kept {
            self.conn.held.set(kept);
        }
    }

    /// Start a log read for the subscriptions the last gathering found
    /// behind their ring, unless one is in flight (see [`catch_up`]).
    fn read_behind(&mut self) {
        if self.reading.is_some() {
            return;
        }
        if let Some((behind, budget)) = self.out.take_behind() {
            let log = self.state.log.clone();
            self.reading = Some(tokio::task::spawn_blocking(move || {
                catch_up::read(&log, behind, budget)
            }));
        }
    }

    /// Queue the held events as far as the queue takes them, the first in
    /// the room reserved for it (`None`: the queue closed, and discards).
    fn release_held(&mut self, reserved: Option<Reservation>) {
        if let Some((ev, weight)) = self.held.pop_front() {
            match reserved {
                Some(r) => self.state.events.push_reserved(ev, r),
                None => {
                    let _ = self.state.events.try_push(ev, weight);
                }
            }
        }
        while let Some((ev, weight)) = self.held.pop_front() {
            if let Err(ev) = self.state.events.try_push(ev, weight) {
                self.held.push_front((ev, weight));
                return;
            }
        }
    }

    /// Close: optionally send what is queued, then the Close frame, within
    /// a grace period; then drop the socket.
    async fn finish(mut self, end: End) {
        let End::Close(req) = end else { return };
        if req.flush {
            self.out.fill(&self.state.metrics, &self.conn);
        } else {
            self.discard_unstarted();
        }
        self.out.push(frame::close(req.code, &req.reason));
        let deadline = tokio::time::Instant::now() + self.state.config.close_grace;
        while !self.out.is_empty() || self.stream.has_pending_writes() {
            if self.flush_out().is_err() {
                return;
            }
            if self.out.is_empty() && !self.stream.has_pending_writes() {
                break;
            }
            match tokio::time::timeout_at(deadline, self.stream.writable()).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        self.stream.shutdown().await;
    }
}

async fn sleep_until(at: Option<Instant>) {
    if let Some(at) = at {
        tokio::time::sleep_until(at.into()).await;
    }
}
