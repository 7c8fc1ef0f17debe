//! The opening every `/v1/topics/{topic}/...` handler shares, as an
//! extractor: the caller is authorized (before anything of the request is
//! looked at), the path's topic is one clients could use, and the server
//! is running.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;

use super::error::ApiError;
use super::{Api, auth, topics};
use crate::server::Server;

/// An authorized request about one client topic of the running server.
pub(crate) struct TopicTarget {
    /// The running server.
    pub(crate) server: Arc<Server>,
    /// The topic named by the path: valid, not a pattern.
    pub(crate) topic: String,
}

impl FromRequestParts<Arc<Api>> for TopicTarget {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<Self, ApiError> {
        auth::require(api.token.as_ref(), &parts.headers)?;
        let Path(topic) = Path::<String>::from_request_parts(parts, api)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        topics::check_topic(api, &topic)?;
        Ok(Self {
            server: api.server()?,
            topic,
        })
    }
}
