//! `/v1/connections`: who is connected, and closing one.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde_json::{Value, json};

use super::error::ApiError;
use super::{Api, auth};

/// `GET /v1/connections`: the count and the ids.
pub(crate) async fn list(
    State(api): State<Arc<Api>>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    auth::require(api.token.as_ref(), &headers)?;
    let ids = api.server()?.connections()?;
    Ok(Json(json!({"count": ids.len(), "connections": ids})))
}

/// `POST /v1/connections/{id}/disconnect`: close it (what was queued for
/// it is sent first); 404 for an id that is not connected.
pub(crate) async fn disconnect(
    State(api): State<Arc<Api>>,
    id: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    auth::require(api.token.as_ref(), &headers)?;
    let Path(id) = id.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let server = api.server()?;
    if !server.connections()?.contains(&id) {
        return Err(ApiError::not_found(format!("no connection {id:?}")));
    }
    server.disconnect(&id)?;
    Ok(Json(json!({"disconnected": id})))
}
