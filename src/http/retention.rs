//! `PUT /v1/topics/{topic}/retention`: a topic's own retention, which
//! overrides `log.retention` (the log keeps it in its metadata, so it
//! survives restarts), and how retention reads as JSON in `GET /v1/topics`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use wse_log::Retention;

use super::error::ApiError;
use super::target::TopicTarget;
use super::{Api, topics};

/// Largest retention body: a few numbers.
const MAX_BODY: usize = 4096;

/// Longest `max_age_seconds`, 100 years: the log compares ages in
/// microseconds in a `u64`, which a larger value would overflow.
const MAX_AGE_SECS: u64 = 100 * 365 * 24 * 3600;

/// The body: each limit a positive integer, or `null` (or left out) for
/// no limit of that kind; `{"clear": true}` alone drops the topic's own
/// retention, so `log.retention` applies again.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RetentionBody {
    max_bytes: Option<u64>,
    max_age_seconds: Option<u64>,
    max_records: Option<u64>,
    clear: Option<bool>,
}

/// `PUT /v1/topics/{topic}/retention`: set or clear, apply at once, and
/// answer the retention now in force. 404 for a topic without history,
/// 422 `INVALID_RETENTION` for a body that is not one, 409
/// `NOT_REPLICATED` on a cluster node.
pub(crate) async fn set(
    State(api): State<Arc<Api>>,
    TopicTarget { server, topic }: TopicTarget,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let body = api.read_body(body, MAX_BODY).await?;
    let wanted = parse(&body)?;
    let name = topic.clone();
    // The metadata store is written, and retention may delete segments.
    let now = topics::blocking(move || server.set_retention(&name, wanted)).await??;
    let Some(now) = now else {
        return Err(ApiError::not_found(format!("no topic {topic:?}")));
    };
    Ok(Json(json!({"topic": topic, "retention": to_json(&now)})))
}

/// The retention a body asks for (`None`: clear the topic's own).
fn parse(body: &[u8]) -> Result<Option<Retention>, ApiError> {
    let b: RetentionBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::invalid_retention(format!(
            "the body must be a JSON object with max_bytes, max_age_seconds and max_records (each a positive integer or null), or {{\"clear\": true}}: {e}"
        ))
    })?;
    match b.clear {
        Some(true)
            if b.max_bytes.is_none() && b.max_age_seconds.is_none() && b.max_records.is_none() =>
        {
            return Ok(None);
        }
        Some(true) => {
            return Err(ApiError::invalid_retention(
                "\"clear\": true comes alone (it drops the topic's own retention)",
            ));
        }
        Some(false) | None => {}
    }
    for (name, v) in [
        ("max_bytes", b.max_bytes),
        ("max_age_seconds", b.max_age_seconds),
        ("max_records", b.max_records),
    ] {
        if v == Some(0) {
            return Err(ApiError::invalid_retention(format!(
                "{name} must be at least 1 (null means no limit)"
            )));
        }
    }
    if b.max_age_seconds.is_some_and(|s| s > MAX_AGE_SECS) {
        return Err(ApiError::invalid_retention(format!(
            "max_age_seconds is at most {MAX_AGE_SECS} (100 years; null means no limit)"
        )));
    }
    Ok(Some(Retention {
        max_bytes: b.max_bytes,
        max_age: b.max_age_seconds.map(Duration::from_secs),
        max_records: b.max_records,
    }))
}

/// Retention as the API shows it: `null` for no limit.
pub(crate) fn to_json(r: &Retention) -> Value {
    json!({"max_bytes": r.max_bytes,
        "max_age_seconds": r.max_age.map(|a| a.as_secs()),
        "max_records": r.max_records})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_read_as_retention_or_are_refused() {
        let r = parse(br#"{"max_bytes": 1024, "max_age_seconds": null}"#).unwrap();
        assert_eq!(
            r,
            Some(Retention {
                max_bytes: Some(1024),
                max_age: None,
                max_records: None
            })
        );
        assert_eq!(parse(br#"{"clear": true}"#).unwrap(), None);
        assert_eq!(parse(b"{}").unwrap(), Some(Retention::unlimited()));
        for bad in [
            &b"[]"[..],
            b"",
            br#"{"max_bytes": 0}"#,
            br#"{"max_bytes": -1}"#,
            br#"{"max_bytes": 1.5}"#,
            br#"{"max_records": "7"}"#,
            br#"{"max_age": 7}"#,
            br#"{"clear": true, "max_bytes": 7}"#,
            br#"{"max_age_seconds": 18446744073709551615}"#,
        ] {
            assert!(parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
