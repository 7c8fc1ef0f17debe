//! The inbound side of a connection: reading, parsing frames, and routing
//! each message to the core (hello, ping, core subscriptions, publish) or
//! to the application.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use serde_json::Value;

use super::{End, Session};
use crate::config::EventDelivery;
use crate::conn::{CloseRequest, Conn, PongKind};
use crate::crypto::signing::{SignatureError, verify_signed_json};
use crate::e2e;
use crate::events::AppEvent;
use crate::metrics::Metrics;
use crate::ops::client::{PendingAck, Published, publish};
use crate::ops::send::send_text;
use crate::protocol::bounded::{DocLimits, ShapeError};
use crate::protocol::control;
use crate::protocol::handshake::{COMPAT_SERVER_VERSION, ServerHello, server_hello};
use crate::protocol::inbound::{
    BinaryInbound, ClientHello, TextInbound, classify_binary, classify_text,
};
use crate::state::ServerState;
use crate::ws::frame::{self, FrameParser, Incoming};

/// Smallest read.
const READ_CHUNK: usize = 4096;

/// How long reading pauses when the read buffer needs to grow and the
/// memory budget has no room (see `crate::budget`).
const BUDGET_RETRY: Duration = Duration::from_millis(20);

/// Messages a connection's task handles at most before it gives way to
/// the other tasks of its worker thread, so that a client sending many
/// messages at once cannot hold a worker that other connections'
/// deliveries wait for.
const SHARE_MESSAGES: usize = 64;

/// Message bytes handled at most before the task gives way (a share
/// always holds at least one message).
const SHARE_BYTES: usize = 256 * 1024;

/// Time spent handling messages at most before the task gives way: what
/// bounds the share when each message is costly (a subscription update
/// of a thousand patterns takes milliseconds), where counts would not.
const SHARE_BUSY: Duration = Duration::from_millis(1);

/// The work a connection's task did since it last gave way. Counted
/// across wake-ups: a task whose socket is always readable is never made
/// to wait by the runtime, so only this makes it yield.
#[derive(Default)]
pub(super) struct WorkShare {
    messages: usize,
    bytes: usize,
    busy: Duration,
}

impl WorkShare {
    fn used_up(&self) -> bool {
        self.messages >= SHARE_MESSAGES || self.bytes >= SHARE_BYTES || self.busy >= SHARE_BUSY
    }

    fn add(&mut self, bytes: usize, busy: Duration) {
        self.messages += 1;
        self.bytes += bytes;
        self.busy += busy;
    }
}

/// A client message the core handles on the blocking pool because it may
/// block: a publish whose append must create its topic or wait for room in
/// the log's backlog, a subscription update that recovers history (a log
/// read). The session reads nothing more until it is done, so the client's
/// messages keep their order; its result is the publish's pending ack.
pub(super) type CoreJob = tokio::task::JoinHandle<Option<PendingAck>>;

/// The result of the core job in flight; never ready without one.
pub(super) async fn core_job_done(job: &mut Option<CoreJob>) -> Option<PendingAck> {
    match job {
        // A job that panicked acknowledges nothing (the client's ack
        // times out, as for a lost connection).
        Some(j) => j.await.ok().flatten(),
        None => std::future::pending().await,
    }
}

impl Session {
    /// Read what the socket has, then handle the complete frames.
    pub(super) fn read_some(&mut self) -> Result<(), End> {
        let want = FrameParser::wanted(&self.rbuf).max(READ_CHUNK);
        let want = want.min(self.state.config.max_message_size + 16);
        // A buffer growing past the budget's floor needs room in it: a
        // partial message waits there, and ten thousand clients each
        // sending most of a large message would otherwise hold that much.
        // Without room, reading pauses (TCP back-pressure, nothing lost)
        // and tries again shortly.
        let grows = (self.rbuf.len() + want).saturating_sub(self.rbuf.capacity());
        if grows > 0 && !self.rbuf_held.has_room(grows) {
            Metrics::add(&self.state.metrics.memory_budget_waits, 1);
            self.throttled_until = Some(Instant::now() + BUDGET_RETRY);
            return Ok(());
        }
        self.rbuf.reserve(want);
        self.rbuf_held.set(self.rbuf.capacity());
        match self.stream.try_read_buf(&mut self.rbuf) {
            Ok(0) => return Err(End::Gone),
            Ok(n) => {
                Metrics::add(&self.state.metrics.bytes_received, n as u64);
                // Liveness counts bytes, not messages: a client whose
                // reply to the server's ping sits behind a large message
                // it is still sending is not idle.
                self.conn
                    .last_activity_ms
                    .store(self.state.now_ms(), std::sync::atomic::Ordering::Relaxed);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return Ok(()),
            Err(_) => return Err(End::Gone),
        }
        self.process_buffer()
    }

    /// Handle the complete frames in the read buffer, pausing when the
    /// inbound queue is full or the connection's rate limits are reached,
    /// and stopping once the task's share of work ([`WorkShare`]) is used
    /// up, with `parse_more` set.
    pub(super) fn process_buffer(&mut self) -> Result<(), End> {
        self.parse_more = false;
        while self.held.is_empty() && self.throttled_until.is_none() && self.core_job.is_none() {
            if self.share.used_up() {
                self.parse_more = true;
                break;
            }
            match self.parser.next(&mut self.rbuf) {
                Ok(Some(msg)) => {
                    let (len, t0) = (msg.len(), Instant::now());
                    let handled = self.handle(msg);
                    self.share.add(len, t0.elapsed());
                    handled?;
                }
                Ok(None) => break,
                Err(e) => {
                    return Err(End::Close(CloseRequest {
                        code: Some(e.close_code()),
                        reason: e.to_string(),
                        flush: true,
                    }));
                }
            }
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > 0 {
            // Idle connections hold no read buffer.
            self.rbuf = BytesMut::new();
            self.rbuf_held.set(0);
        }
        Ok(())
    }

    fn handle(&mut self, msg: Incoming) -> Result<(), End> {
        let limit = self.state.config.max_outbound_bytes;
        match msg {
            Incoming::Ping(p) => {
                // Pings cost bytes too (not messages: they never reach
                // the app); their replies are coalesced.
                self.charge_bytes(p.len(), Instant::now());
                self.conn.push_pong(frame::pong(&p), PongKind::Frame, limit);
            }
            Incoming::Pong => {}
            Incoming::Close(code) => {
                return Err(End::Close(CloseRequest {
                    code: code.or(Some(1000)),
                    reason: String::new(),
                    flush: false,
                }));
            }
            Incoming::Text(bytes) => {
                self.count_message(bytes.len());
                self.handle_text(&bytes);
            }
            Incoming::Binary(bytes) => {
                self.count_message(bytes.len());
                self.handle_binary(bytes);
            }
        }
        Ok(())
    }

    /// Metrics, and the inbound rate limits: messages, and `len` bytes (charged before the message is
    /// parsed; a debt pauses reading until it is paid back).
    fn count_message(&mut self, len: usize) {
        Metrics::add(&self.state.metrics.messages_received, 1);
        let now = Instant::now();
        if !self.inbound.acquire_at(1.0, now) {
            let wait = Duration::from_secs_f64(1.0 / self.inbound.refill_rate());
            self.throttle_for(wait, now);
        }
        self.charge_bytes(len, now);
    }

    /// Charge `len` bytes to the byte budget; a debt pauses reading.
    fn charge_bytes(&mut self, len: usize, now: Instant) {
        if let Some(debt) = self.inbound_bytes.charge_at(len as f64, now) {
            self.throttle_for(debt, now);
        }
    }

    /// Read nothing more for `wait` (or longer, if already paused so).
    fn throttle_for(&mut self, wait: Duration, now: Instant) {
        let until = now + wait;
        self.throttled_until = Some(self.throttled_until.map_or(until, |t| t.max(until)));
    }

    /// The shape a client's message may have.
    fn doc_limits(&self) -> DocLimits {
        DocLimits {
            max_depth: self.state.config.max_message_depth,
            max_elements: self.state.config.max_message_elements,
        }
    }

    /// A message past the document limits: refused, counted.
    fn refuse_shape(&mut self, why: ShapeError) {
        Metrics::add(&self.state.metrics.messages_too_complex, 1);
        self.refuse("MESSAGE_TOO_COMPLEX", &format!("message refused: {why}"));
    }

    fn handle_text(&mut self, bytes: &Bytes) {
        // The frame parser validated UTF-8.
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        self.handle_text_str(text);
    }

    fn handle_text_str(&mut self, text: &str) {
        let limit = self.state.config.max_outbound_bytes;
        match classify_text(text, self.doc_limits()) {
            TextInbound::ClientHello(hello) => self.answer_hello(&hello),
            TextInbound::Ping { client_timestamp } => {
                let reply = control::pong(client_timestamp, SystemTime::now());
                self.conn
                    .push_pong(frame::text(reply.as_bytes()), PongKind::Text, limit);
            }
            TextInbound::Pong => {}
            TextInbound::Msg(value) => {
                if self.signature_ok(Some(text)) {
                    self.handle_message(value);
                }
            }
            TextInbound::Refused(why) => self.refuse_shape(why),
            TextInbound::Raw(raw) => {
                if self.signature_ok(None) {
                    self.emit(AppEvent::Raw {
                        conn: self.conn.id,
                        text: raw.to_owned(),
                    });
                }
            }
        }
    }

    /// Answer `client_hello` with `server_hello`, agreeing on an end-to-end
    /// key first when the client asks for one (once per connection).
    fn answer_hello(&mut self, hello: &ClientHello) {
        let limit = self.state.config.max_outbound_bytes;
        let wants_key =
            hello.encryption_requested && self.state.config.encryption && self.conn.e2e().is_none();
        let agreement = if wants_key {
            let key = hello.encryption_public_key.as_deref().unwrap_or_default();
            match e2e::agree(key) {
                Ok(a) => Some(a),
                Err(e) => {
                    let f = control::key_exchange_failed(&e.to_string());
                    self.conn.push_control(frame::text(f.as_bytes()), limit);
                    None
                }
            }
        } else {
            None
        };
        let reply = server_hello(
            &ServerHello {
                connection_id: &self.conn.id_str,
                client_protocol_version: hello.protocol_version,
                recovery_enabled: self.state.config.recovery_enabled,
                cluster_enabled: self.state.cluster.is_some(),
                encryption_public_key: agreement.as_ref().map(|a| a.server_public_key.as_str()),
                max_message_size: self.state.config.max_message_size as u64,
                rate_limit_capacity: self.state.config.rate_limit_capacity,
                rate_limit_refill: self.state.config.rate_limit_refill,
                ping_interval: self.state.config.ping_interval,
                server_version: COMPAT_SERVER_VERSION,
            },
            SystemTime::now(),
        );
        let reply = frame::text(reply.as_bytes());
        let Some(agreement) = agreement else {
            self.conn.push_control(reply, limit);
            self.conn.release_data();
            return;
        };
        // What was due before the key exchange goes out plaintext, then
        // server_hello (which gives the client its key), then only sealed
        // data: the client can open every E: frame it receives.
        self.out.fill(&self.state.metrics, &self.conn);
        let now = self.state.now_ms();
        if let Some(early) = self.conn.enable_e2e(agreement.key, now) {
            for f in early {
                self.out.push(f);
            }
        }
        self.out.push(reply);
        // Topic data held for the hello flows now, sealed.
        self.conn.release_data();
    }

    fn handle_binary(&mut self, bytes: Bytes) {
        match classify_binary(&bytes, self.conn.msgpack, self.doc_limits()) {
            // With encryption off no prefix is reserved: a binary message
            // that happens to start with `E:` is the app's (Autobahn 12.3.3
            // echoes text that does).
            BinaryInbound::Encrypted(_) if self.state.config.encryption => {
                self.handle_encrypted(&bytes);
            }
            BinaryInbound::Refused(why) => self.refuse_shape(why),
            BinaryInbound::Msg(value) => {
                if self.signature_ok(None) {
                    self.handle_message(value);
                }
            }
            BinaryInbound::Encrypted(_) | BinaryInbound::Bin(_) => {
                if self.signature_ok(None) {
                    self.emit(AppEvent::Binary {
                        conn: self.conn.id,
                        data: bytes,
                    });
                }
            }
        }
    }

    /// An `E:` frame: opened with the connection's key and handled as the
    /// text it seals; refused with an error frame when it cannot be.
    fn handle_encrypted(&mut self, frame_bytes: &[u8]) {
        let opened = match self.conn.e2e() {
            None => Err((
                "ENCRYPTION_NOT_NEGOTIATED".to_owned(),
                "encrypted frame received before an end-to-end key was agreed in client_hello"
                    .to_owned(),
            )),
            Some(key) => match key.open(frame_bytes) {
                Err(e) => Err((
                    "DECRYPTION_FAILED".to_owned(),
                    format!("encrypted frame could not be opened: {e}"),
                )),
                Ok(plain) => String::from_utf8(plain).map_err(|_| {
                    (
                        "DECRYPTION_FAILED".to_owned(),
                        "encrypted frame does not hold UTF-8 text".to_owned(),
                    )
                }),
            },
        };
        match opened {
            Ok(text) => self.handle_text_str(&text),
            Err((code, message)) => {
                Metrics::add(&self.state.metrics.decrypt_failures, 1);
                self.refuse(&code, &message);
            }
        }
    }

    /// With `signature_key` configured, is this message's `sig` valid?
    /// (`raw`: the JSON text as received; `None` for messages that cannot
    /// carry a signature.) Refuses the message with an error otherwise.
    fn signature_ok(&mut self, raw: Option<&str>) -> bool {
        let Some(key) = &self.state.config.signature_key else {
            return true;
        };
        let checked = match raw {
            Some(raw) => verify_signed_json(&key.0, raw),
            None => Err(SignatureError::Missing),
        };
        match checked {
            Ok(()) => true,
            Err(e) => {
                Metrics::add(&self.state.metrics.signature_failures, 1);
                self.refuse("INVALID_SIGNATURE", &format!("message refused: {e}"));
                false
            }
        }
    }

    /// Tell the client a message was refused (the connection stays open).
    fn refuse(&mut self, code: &str, message: &str) {
        let f = control::error(code, message);
        self.conn.push_control(
            frame::text(f.as_bytes()),
            self.state.config.max_outbound_bytes,
        );
    }

    /// A JSON (or msgpack) message: the core's own, or the app's.
    fn handle_message(&mut self, value: Value) {
        let t = value.get("t").and_then(Value::as_str);
        let config = &self.state.config;
        if config.core_subscriptions && t == Some("subscription_update") {
            if recovers(&value) {
                self.run_core_job(move |state, conn| {
                    crate::ops::client::subscription_update(state, conn, &value);
                    None
                });
            } else {
                crate::ops::client::subscription_update(&self.state, &self.conn, &value);
            }
            return;
        }
        // A standalone server (no app to hand messages to) answers every
        // publish; with an app, only when clients may publish.
        if t == Some("publish")
            && (config.client_publish || config.event_delivery == EventDelivery::Discard)
        {
            let topic = value["p"]["topic"].as_str().unwrap_or_default();
            if self.state.log.append_may_block(topic) {
                self.run_core_job(move |state, conn| settle_publish(state, conn, &value));
            } else if let Some(ack) = settle_publish(&self.state, &self.conn, &value) {
                self.acks.push(&self.state, &self.conn, ack);
            }
            return;
        }
        self.emit(AppEvent::Message {
            conn: self.conn.id,
            value,
        });
    }

    /// Run `job` on the blocking pool; reading pauses until it is done.
    fn run_core_job(
        &mut self,
        job: impl FnOnce(&ServerState, &Arc<Conn>) -> Option<PendingAck> + Send + 'static,
    ) {
        let (state, conn) = (self.state.clone(), self.conn.clone());
        self.core_job = Some(tokio::task::spawn_blocking(move || job(&state, &conn)));
    }

    /// Queue an event for the app (holding it, and pausing reads, while
    /// the queue is full).
    fn emit(&mut self, ev: AppEvent) {
        if self.state.config.event_delivery == EventDelivery::Discard {
            return;
        }
        let weight = ev.weight();
        if !self.held.is_empty() {
            self.held.push_back((ev, weight));
            return;
        }
        if let Err(ev) = self.state.events.try_push(ev, weight) {
            self.held.push_back((ev, weight));
        }
    }
}

/// Publish for the client: an immediate reply is queued, an ack to settle
/// once the record is durable is returned.
fn settle_publish(state: &ServerState, conn: &Arc<Conn>, value: &Value) -> Option<PendingAck> {
    match publish(state, conn, value) {
        Published::Reply(Some(reply)) => {
            send_text(state, conn, &reply.to_string());
            None
        }
        Published::Reply(None) => None,
        Published::Pending(ack) => Some(ack),
    }
}

/// Does a `subscription_update` ask to recover history (which reads the
/// log, perhaps from disk)?
fn recovers(value: &Value) -> bool {
    value["p"]["recover"].as_bool() == Some(true)
}
