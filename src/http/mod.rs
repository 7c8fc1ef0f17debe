//! The HTTP API: a listener of its own (`http_listen`) for operators and
//! backends, built on axum (hyper underneath) and run on the server's
//! runtime.
//!
//! - `GET /health`, `GET /ready`: probes, open to anyone.
//! - `GET /metrics`: Prometheus text (admin token unless
//!   `http_public_metrics`).
//! - `/v1/...`: publishing, topics (list, records, presence, retention,
//!   deletion), connections (admin token).
//! - `GET /openapi.json`: the OpenAPI 3.1 document (docs/openapi.json).
//!
//! Every error is `{"error": {"code", "message"}}` ([`error`]). Requests
//! without the admin token are rate limited per client address
//! ([`limit`]). The API holds the server weakly: it answers 503 once the
//! server is gone, and stops with the server's runtime.

mod auth;
mod connections;
mod error;
mod limit;
mod monitor;
mod presence;
mod retention;
mod target;
mod topics;

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};

pub use auth::AdminToken;
use error::ApiError;

use crate::server::{Server, ServerError};

/// The OpenAPI document, served as is.
const OPENAPI: &str = include_str!("../../docs/openapi.json");

/// What every handler shares.
pub(crate) struct Api {
    server: Weak<Server>,
    token: Option<AdminToken>,
    public_metrics: bool,
    /// Largest body of a batch publish.
    max_body: usize,
    /// Per-address request limits (`None`: `http_rate_limit` is 0).
    limiter: Option<limit::Limiter>,
}

impl Api {
    /// The server, while it exists.
    fn server(&self) -> Result<Arc<Server>, ApiError> {
        self.server
            .upgrade()
            .ok_or_else(|| ServerError::NotRunning.into())
    }

    /// The request body, refused with 413 past `limit` bytes (read no
    /// further than that).
    async fn read_body(&self, body: Body, limit: usize) -> Result<Bytes, ApiError> {
        axum::body::to_bytes(body, limit)
            .await
            .map_err(|_| ApiError::too_large(limit))
    }
}

/// Start the HTTP API of a running `server` on `http_listen`, if set.
/// Returns the bound address. It runs until the server stops.
pub fn start(server: &Arc<Server>) -> Result<Option<SocketAddr>, ServerError> {
    let config = server.config();
    let Some(addr) = config.http_listen else {
        return Ok(None);
    };
    let api = Arc::new(Api {
        server: Arc::downgrade(server),
        token: config.admin_token.clone(),
        public_metrics: config.http_public_metrics,
        max_body: config.http_max_body,
        limiter: limit::Limiter::new(config.http_rate_limit, config.http_rate_burst),
    });
    let runtime = server.runtime_handle()?;
    let bind_error = |source| ServerError::Bind {
        addr: addr.to_string(),
        source,
    };
    // Bound here, so that a taken port is the caller's error, not a log line.
    let std_listener = std::net::TcpListener::bind(addr).map_err(bind_error)?;
    std_listener.set_nonblocking(true).map_err(bind_error)?;
    let bound = std_listener.local_addr().map_err(bind_error)?;
    let listener = {
        let _runtime = runtime.enter();
        tokio::net::TcpListener::from_std(std_listener).map_err(bind_error)?
    };
    // The peer's address reaches the rate limiter as `ConnectInfo`.
    let app = router(api).into_make_service_with_connect_info::<SocketAddr>();
    runtime.spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "the HTTP API stopped");
        }
    });
    server.set_http_addr(bound);
    tracing::info!(addr = %bound, "HTTP API listening");
    Ok(Some(bound))
}

fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/health", get(monitor::health))
        .route("/ready", get(monitor::ready))
        .route("/metrics", get(monitor::metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/topics", get(topics::list))
        .route("/v1/topics/{topic}/publish", post(topics::publish))
        .route("/v1/topics/{topic}/batch", post(topics::publish_batch))
        .route("/v1/topics/{topic}", delete(topics::delete))
        .route("/v1/topics/{topic}/records", get(topics::records))
        .route("/v1/topics/{topic}/presence", get(presence::members))
        .route("/v1/topics/{topic}/retention", put(retention::set))
        .route("/v1/connections", get(connections::list))
        .route(
            "/v1/connections/{id}/disconnect",
            post(connections::disconnect),
        )
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this endpoint does not take that method",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            api.clone(),
            limit::limit,
        ))
        .with_state(api)
}

async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI)
}
