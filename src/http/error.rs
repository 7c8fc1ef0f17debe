//! Every error of the HTTP API as one JSON shape,
//! `{"error": {"code": "...", "message": "..."}}`, with a stable code a
//! backend can switch on and the HTTP status that goes with it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::cluster::PublishError;
use crate::ops::client::publish_error_code;
use crate::server::ServerError;

/// An error answer: status, stable code, and a message for people.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    /// Seconds to wait before asking again (`Retry-After`), for 429.
    retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 429: the client's address spent its request allowance; `Retry-After`
    /// says when one more request fits.
    pub(crate) fn rate_limited(wait: std::time::Duration) -> Self {
        // Whole seconds, rounded up: an earlier retry would be refused.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        Self {
            retry_after: Some(secs.max(1)),
            ..Self::new(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMITED",
                "too many requests from this address without the admin token; retry after the time in Retry-After",
            )
        }
    }

    /// 409: presence is off on this server.
    pub(crate) fn presence_disabled() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "PRESENCE_DISABLED",
            "presence is off on this server (option presence_enabled)",
        )
    }

    /// 422: a retention body that cannot be applied.
    pub(crate) fn invalid_retention(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "INVALID_RETENTION",
            message,
        )
    }

    /// 401: no token, or not the admin token.
    pub(crate) fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "UNAUTHORIZED",
            "this endpoint needs Authorization: Bearer <admin token>",
        )
    }

    /// 403: the server has no admin token, so nothing can authorize.
    pub(crate) fn no_admin_token() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "ADMIN_TOKEN_NOT_SET",
            "the server has no admin token (set --admin-token, --admin-token-file or WSE_ADMIN_TOKEN)",
        )
    }

    /// 404 for a path, topic or connection that does not exist.
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", what)
    }

    /// 422: the request is well-formed HTTP but its content is refused.
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_MESSAGE", message)
    }

    /// 400: a query or path value that cannot be read.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", message)
    }

    /// 413: the body is larger than the limit.
    pub(crate) fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "MESSAGE_TOO_LARGE",
            format!("the body is larger than {limit} bytes"),
        )
    }
}

impl From<PublishError> for ApiError {
    /// A publish that was taken but not acknowledged, or refused by the
    /// log: the same codes a WebSocket publisher gets.
    fn from(e: PublishError) -> Self {
        let (status, code) = match &e {
            PublishError::Log(log) => {
                let code = publish_error_code(log);
                (status_of(code), code)
            }
            PublishError::Unavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "CLUSTER_UNAVAILABLE")
            }
            PublishError::Timeout { .. } => (StatusCode::GATEWAY_TIMEOUT, "PUBLISH_TIMEOUT"),
            PublishError::Stopped => (StatusCode::SERVICE_UNAVAILABLE, "STORAGE_UNAVAILABLE"),
        };
        Self::new(status, code, e.to_string())
    }
}

impl From<ServerError> for ApiError {
    fn from(e: ServerError) -> Self {
        match e {
            ServerError::Publish(p) => p.into(),
            ServerError::Log(log) => PublishError::Log(log).into(),
            ServerError::NotRunning => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "NOT_RUNNING",
                "the server is stopping",
            ),
            e @ ServerError::NotReplicated(_) => {
                Self::new(StatusCode::CONFLICT, "NOT_REPLICATED", e.to_string())
            }
            other => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "INTERNAL",
                other.to_string(),
            ),
        }
    }
}

/// The status of a WebSocket publish error code.
fn status_of(code: &str) -> StatusCode {
    match code {
        "MESSAGE_TOO_LARGE" => StatusCode::PAYLOAD_TOO_LARGE,
        "INVALID_MESSAGE" => StatusCode::UNPROCESSABLE_ENTITY,
        "STORAGE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code, "message": self.message}});
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}
