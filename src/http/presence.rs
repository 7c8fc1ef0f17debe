//! `GET /v1/topics/{topic}/presence`: who is in a topic, as the Python
//! `presence()` and `presence_stats()` answer it.

use axum::Json;
use serde_json::{Map, Value, json};

use super::error::ApiError;
use super::target::TopicTarget;

/// The members of the topic's presence: `{user: {connections, data}}`
/// with the counts. A topic nobody joined has no members (presence has no
/// notion of a topic that does not exist). 409 `PRESENCE_DISABLED` when
/// the server runs without presence: an empty answer would read as
/// "nobody there".
pub(crate) async fn members(
    TopicTarget { server, topic }: TopicTarget,
) -> Result<Json<Value>, ApiError> {
    if !server.config().presence_enabled {
        return Err(ApiError::presence_disabled());
    }
    let (users, connections) = server.presence_stats(&topic);
    let members: Map<String, Value> = server
        .presence(&topic)
        .into_iter()
        .map(|(user, (n, data))| (user, json!({"connections": n, "data": data})))
        .collect();
    Ok(Json(json!({"topic": topic, "users": users,
        "connections": connections, "members": members})))
}
