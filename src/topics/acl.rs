//! Per-connection topic access control.
//!
//! A connection may carry a [`TopicAcl`] (from the JWT claim
//! `wse_topics: {"allow": [...], "deny": [...]}` at connect, or from
//! `set_topic_acl` later). Subscriptions, recovery replays and publications
//! to that connection consult it. Rules (PYTHON_API.md §2.6):
//!
//! 1. a topic matching any `deny` pattern is refused (deny wins);
//! 2. otherwise an empty `allow` list allows every topic;
//! 3. otherwise the topic must match at least one `allow` pattern.

use super::pattern::TopicPattern;

/// Allow and deny lists of topic patterns for one connection.
///
/// Exists so the per-topic decision is one call with the patterns compiled
/// once, not re-parsed on every subscribe or replay.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TopicAcl {
    /// Topics the connection may use; empty means "all topics".
    allow: Vec<TopicPattern>,
    /// Topics the connection may never use, even when allowed.
    deny: Vec<TopicPattern>,
}

impl TopicAcl {
    /// Build an ACL from pattern strings (globs: `*` any run, `?` one char).
    #[must_use]
    pub fn new<A, D, S, T>(allow: A, deny: D) -> Self
    where
        A: IntoIterator<Item = S>,
        D: IntoIterator<Item = T>,
        S: AsRef<str>,
        T: AsRef<str>,
    {
        Self {
            allow: allow
                .into_iter()
                .map(|p| TopicPattern::new(p.as_ref()))
                .collect(),
            deny: deny
                .into_iter()
                .map(|p| TopicPattern::new(p.as_ref()))
                .collect(),
        }
    }

    /// The ACL that allows every topic (what a connection without one has).
    #[must_use]
    pub fn allow_all() -> Self {
        Self::default()
    }

    /// Whether the connection may use `topic` (a published name or the
    /// pattern string it subscribes with; a pattern is matched literally).
    #[must_use]
    pub fn is_allowed(&self, topic: &str) -> bool {
        if self.deny.iter().any(|p| p.matches(topic)) {
            return false;
        }
        self.allow.is_empty() || self.allow.iter().any(|p| p.matches(topic))
    }

    /// The allow patterns, in the order given.
    #[must_use]
    pub fn allow(&self) -> &[TopicPattern] {
        &self.allow
    }

    /// The deny patterns, in the order given.
    #[must_use]
    pub fn deny(&self) -> &[TopicPattern] {
        &self.deny
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: [&str; 0] = [];

    #[test]
    fn empty_acl_allows_everything() {
        let acl = TopicAcl::allow_all();
        assert!(acl.is_allowed("anything"));
        assert!(acl.is_allowed(""));
        assert_eq!(acl, TopicAcl::new(NONE, NONE));
    }

    #[test]
    fn allow_list_restricts() {
        let acl = TopicAcl::new(["chat.*", "news"], NONE);
        assert!(acl.is_allowed("chat.room1"));
        assert!(acl.is_allowed("news"));
        assert!(!acl.is_allowed("news.sport"));
        assert!(!acl.is_allowed("admin"));
    }

    #[test]
    fn deny_wins_over_allow() {
        let acl = TopicAcl::new(["chat.*"], ["chat.admin*"]);
        assert!(acl.is_allowed("chat.room1"));
        assert!(!acl.is_allowed("chat.admin"));
        assert!(!acl.is_allowed("chat.admins"));
    }

    #[test]
    fn deny_only_allows_the_rest() {
        let acl = TopicAcl::new(NONE, ["secret.?"]);
        assert!(acl.is_allowed("public"));
        assert!(!acl.is_allowed("secret.1"));
        assert!(acl.is_allowed("secret.12"));
    }

    #[test]
    fn keeps_patterns_in_order() {
        let acl = TopicAcl::new(vec!["b".to_string(), "a".to_string()], ["c"]);
        let allow: Vec<&str> = acl.allow().iter().map(TopicPattern::as_str).collect();
        assert_eq!(allow, ["b", "a"]);
        assert_eq!(acl.deny()[0].as_str(), "c");
    }
}
