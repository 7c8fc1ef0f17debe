//! The server's clock: pings every `ping_interval`, the idle timeout, token
//! expiry (`close_on_token_expiry`), and the end-to-end rekey interval.
//!
//! One task for all connections (no timer per connection). Closing an idle
//! connection is a request the connection's own task carries out, so no
//! lock is held across the close (upstream deadlocks here).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::time::{Interval, MissedTickBehavior};

use crate::conn::CloseRequest;
use crate::metrics::Metrics;
use crate::protocol::control;
use crate::state::ServerState;
use crate::ws::frame::{self, close_code};

/// Tick until the server stops.
pub async fn run(state: Arc<ServerState>) {
    let cfg = &state.config;
    let tick = (cfg.idle_timeout / 8)
        .min(cfg.e2e_rekey_interval.map_or(Duration::MAX, |d| d / 4))
        .clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut interval = ticks(tick);
    let mut next_ping = tokio::time::Instant::now() + cfg.ping_interval;
    let idle_ms = cfg.idle_timeout.as_millis() as u64;
    let rekey_ms = cfg.e2e_rekey_interval.map(|d| d.as_millis() as u64);
    while next_tick(&state, &mut interval).await {
        let now_ms = state.now_ms();
        let unix_now = SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let ping = (tokio::time::Instant::now() >= next_ping).then(|| {
            next_ping += cfg.ping_interval;
            frame::text(control::ping(SystemTime::now()).as_bytes())
        });
        state.conns.for_each(|c| {
            let last = c.last_activity_ms.load(Ordering::Relaxed);
            if now_ms.saturating_sub(last) > idle_ms {
                if !c.is_closing() {
                    Metrics::add(&state.metrics.idle_timeouts, 1);
                    c.request_close(CloseRequest {
                        code: Some(close_code::IDLE_TIMEOUT),
                        reason: "idle timeout".into(),
                        flush: false,
                    });
                }
                return;
            }
            let expires = c.token_expires_at.load(Ordering::Relaxed);
            if cfg.close_on_token_expiry && expires > 0 && unix_now >= expires && !c.is_closing() {
                Metrics::add(&state.metrics.tokens_expired, 1);
                c.request_close(CloseRequest {
                    code: Some(close_code::TOKEN_EXPIRED),
                    reason: "Token expired".into(),
                    flush: true,
                });
                return;
            }
            if let Some(rekey) = rekey_ms
                && c.e2e().is_some()
                && !c.is_closing()
                && now_ms.saturating_sub(c.e2e_since_ms.load(Ordering::Relaxed)) >= rekey
            {
                // The clients cannot renegotiate a key on an open
                // connection: they reconnect (and recover) for a new one.
                c.request_close(CloseRequest {
                    code: Some(close_code::REKEY),
                    reason: "rekey".into(),
                    flush: true,
                });
                return;
            }
            if let Some(p) = &ping {
                // A connection whose queue is full is skipped.
                c.push_control(p.clone(), cfg.max_outbound_bytes);
            }
        });
    }
}

/// Send presence changes once per `presence_tick` until the server stops.
pub async fn presence(state: Arc<ServerState>) {
    let mut interval = ticks(state.config.presence_tick);
    while next_tick(&state, &mut interval).await {
        if let Some(p) = &state.presence {
            if p.is_replicated() {
                // Folding reads the log: on the blocking pool.
                let s = state.clone();
                let _ = tokio::task::spawn_blocking(move || {
                    if let Some(p) = &s.presence {
                        p.sync(&s);
                    }
                })
                .await;
            }
            p.flush(&state, None);
            if p.wants_trim() {
                let s = state.clone();
                let trimmed = tokio::task::spawn_blocking(move || {
                    if let Some(p) = &s.presence {
                        p.trim(&s.log);
                    }
                });
                // One trim at a time; the tick waits for it.
                let _ = trimmed.await;
            }
        }
    }
}

/// Reload the TLS certificate when its files change, checking every
/// `tls_reload_interval`, until the server stops.
pub async fn tls_files(state: Arc<ServerState>) {
    let Some(tls) = state.tls.clone() else { return };
    let mut interval = ticks(state.config.tls_reload_interval);
    interval.reset();
    while next_tick(&state, &mut interval).await {
        // Metadata only, unless a file changed: on the worker.
        if let Some(result) = tls.reload_if_changed() {
            super::tls_reload::note_tls_reload(&state, &result);
        }
    }
}

/// An interval that, when the runtime falls behind, delays the next tick
/// instead of firing a burst of missed ones.
fn ticks(period: Duration) -> Interval {
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(MissedTickBehavior::Delay);
    interval
}

/// Wait for the next tick; false once the server is stopping.
async fn next_tick(state: &ServerState, interval: &mut Interval) -> bool {
    tokio::select! {
        _ = interval.tick() => {}
        () = state.life.stopped() => return false,
    }
    !state.life.is_stopping()
}
