//! Probes and metrics: `/health` (the process answers), `/ready` (it can
//! take publishes: the log is open, and in a cluster every shard knows a
//! leader), `/metrics` (Prometheus text from the one metrics registry).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::ApiError;
use super::{Api, auth};

/// `GET /health`: alive. Open to anyone (a probe carries no token).
pub(crate) async fn health(State(api): State<Arc<Api>>) -> Response {
    let running = api.server().is_ok_and(|s| s.is_running());
    let status = if running {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"status": if running { "ok" } else { "stopping" }})),
    )
        .into_response()
}

/// `GET /ready`: alive, and able to acknowledge a publish. Open to anyone.
pub(crate) async fn ready(State(api): State<Arc<Api>>) -> Response {
    let Ok(server) = api.server() else {
        return not_ready("stopping");
    };
    if server.log().is_err() {
        return not_ready("the log is not open");
    }
    if let Some(cluster) = server.cluster_status() {
        let leaderless: Vec<u32> = cluster
            .shards
            .iter()
            .filter(|s| s.leader.is_none())
            .map(|s| s.shard)
            .collect();
        if !leaderless.is_empty() {
            return not_ready(&format!("shards without a leader: {leaderless:?}"));
        }
    }
    (StatusCode::OK, Json(json!({"status": "ready"}))).into_response()
}

fn not_ready(why: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(json!({"status": "not_ready", "reason": why})),
    )
        .into_response()
}

/// `GET /metrics`: the Prometheus text exposition. Needs the admin token
/// unless `http_public_metrics`.
pub(crate) async fn metrics(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !api.public_metrics {
        auth::require(api.token.as_ref(), &headers)?;
    }
    let text = api.server()?.prometheus_metrics();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}
