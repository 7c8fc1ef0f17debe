//! Topic names, topic patterns and per-connection topic ACLs.
//!
//! A *topic* is the name a message is published under (`chat.room1`). A
//! subscription or an ACL rule may instead name a *pattern*: any topic name
//! containing `*` (any run of characters, including none) or `?` (exactly one
//! character) is a glob (PYTHON_API.md §2.6).
//!
//! - [`TopicPattern`] compiles such a string once and matches published
//!   topic names against it without backtracking blow-ups (see
//!   [`pattern`] for the complexity bound).
//! - [`TopicAcl`] is the allow/deny list a connection gets from the JWT
//!   `wse_topics` claim or from `set_topic_acl`: deny wins, an empty allow
//!   list allows everything.
//! - [`is_valid_client_topic`] is the check applied to topic names a client
//!   asks to subscribe to.

pub mod acl;
pub mod name;
pub mod pattern;

pub use acl::TopicAcl;
pub use name::{DEFAULT_MAX_TOPIC_LEN, is_valid_client_topic, is_valid_client_topic_with_limit};
pub use pattern::{TopicPattern, glob_match, is_pattern};
