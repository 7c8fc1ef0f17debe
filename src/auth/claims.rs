//! The claims the server itself reads from a validated token.
//!
//! - `sub`: the connection's user id; must be a non-empty string.
//! - `wse_topics`: optional `{"allow": [glob...], "deny": [glob...]}`,
//!   the connection's topic ACL (PYTHON_API.md §2.6).
//!
//! Every other claim is the app's business.

use serde_json::Value;

use super::verify::Claims;
use crate::topics::TopicAcl;

/// Name of the claim that carries a connection's topic ACL.
pub const TOPIC_ACL_CLAIM: &str = "wse_topics";

/// The `sub` claim when it is a non-empty string.
#[must_use]
pub fn user_id(claims: &Claims) -> Option<&str> {
    claims
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
}

/// The topic ACL of the `wse_topics` claim.
///
/// `None` when the claim is absent or not an object (the connection then
/// has no ACL: every topic allowed). A missing or non-array `allow`/`deny`
/// counts as empty, and entries that are not strings are skipped, as
/// upstream does.
#[must_use]
pub fn topic_acl(claims: &Claims) -> Option<TopicAcl> {
    let obj = claims.get(TOPIC_ACL_CLAIM)?.as_object()?;
    let patterns = |name: &str| {
        obj.get(name)
            .and_then(Value::as_array)
            .map(|items| items.iter().filter_map(Value::as_str).collect::<Vec<_>>())
            .unwrap_or_default()
    };
    Some(TopicAcl::new(patterns("allow"), patterns("deny")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(v: Value) -> Claims {
        match v {
            Value::Object(m) => m,
            _ => Claims::new(),
        }
    }

    #[test]
    fn sub_must_be_a_non_empty_string() {
        assert_eq!(user_id(&claims(json!({"sub": "alice"}))), Some("alice"));
        for bad in [
            json!({}),
            json!({"sub": ""}),
            json!({"sub": 42}),
            json!({"sub": null}),
        ] {
            assert_eq!(user_id(&claims(bad.clone())), None, "{bad}");
        }
    }

    #[test]
    fn topic_acl_claim() {
        let acl = topic_acl(&claims(json!({
            "wse_topics": {"allow": ["chat.*", 5, "news"], "deny": ["chat.admin"]}
        })));
        let Some(acl) = acl else {
            unreachable!("claim present");
        };
        assert!(acl.is_allowed("chat.room"));
        assert!(acl.is_allowed("news"));
        assert!(!acl.is_allowed("chat.admin"));
        assert!(!acl.is_allowed("other"));
        assert_eq!(acl.allow().len(), 2);

        let deny_only = topic_acl(&claims(json!({"wse_topics": {"deny": ["x"]}})));
        assert_eq!(deny_only, Some(TopicAcl::new(Vec::<&str>::new(), ["x"])));
        let odd = topic_acl(&claims(json!({"wse_topics": {"allow": "chat.*"}})));
        assert_eq!(odd, Some(TopicAcl::allow_all()));
        assert_eq!(topic_acl(&claims(json!({"wse_topics": ["a"]}))), None);
        assert_eq!(topic_acl(&claims(json!({"sub": "a"}))), None);
    }
}
