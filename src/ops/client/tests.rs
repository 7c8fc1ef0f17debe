//! Unit tests of what a client's `publish` is told when it is refused:
//! the checks, their order, and the codes of the log's errors.

use std::io;
use std::path::PathBuf;

use serde_json::json;
use wse_log::{Log, LogConfig, RecordKind};

use super::*;
use crate::conn::ConnId;
use crate::rate_limit::TokenBucket;
use crate::topics::TopicAcl;

fn conn(acl: Option<TopicAcl>) -> Conn {
    Conn::new(
        ConnId::generate(),
        None,
        false,
        acl,
        TokenBucket::new(10.0, 10.0),
        0,
        crate::budget::MemoryBudget::unlimited(),
    )
}

fn publishing() -> ServerConfig {
    ServerConfig {
        client_publish: true,
        max_topic_bytes: 16,
        ..ServerConfig::default()
    }
}

fn payload(topic: &str) -> Value {
    json!({"topic": topic, "message": {"text": "hi"}})
}

#[test]
fn an_allowed_publish_gives_its_message() {
    let c = conn(None);
    let p = payload("chat");
    assert_eq!(
        admit_publish(&publishing(), &c, "chat", &p),
        Ok(&json!({"text": "hi"}))
    );
}

#[test]
fn publishing_disabled_is_said_before_anything_else() {
    let c = conn(Some(TopicAcl::new(["news"], ["chat"])));
    let p = json!({});
    let config = ServerConfig {
        client_publish: false,
        ..publishing()
    };
    let refused = admit_publish(&config, &c, "chat*", &p).unwrap_err();
    assert_eq!(refused, PublishRefused::Disabled);
    assert_eq!(refused.code(), "PUBLISH_DISABLED");
}

#[test]
fn a_topic_must_be_a_valid_name_without_wildcards() {
    let c = conn(None);
    for topic in [
        "",
        "chat*",
        "chat?",
        "a-name-above-16-bytes",
        "bad\ncontrol",
    ] {
        let refused = admit_publish(&publishing(), &c, topic, &payload(topic)).unwrap_err();
        assert_eq!(refused, PublishRefused::InvalidTopic, "{topic:?}");
        assert_eq!(refused.code(), "INVALID_MESSAGE");
    }
}

#[test]
fn the_acl_decides_before_the_message_is_looked_at() {
    let c = conn(Some(TopicAcl::new(["chat.*"], ["chat.admin"])));
    let no_message = json!({"topic": "chat.admin"});
    let refused = admit_publish(&publishing(), &c, "chat.admin", &no_message).unwrap_err();
    assert_eq!(refused, PublishRefused::Denied);
    assert_eq!(refused.code(), "PUBLISH_DENIED");
    assert_eq!(
        refused.message("chat.admin"),
        r#"not allowed to publish to "chat.admin""#
    );
    assert!(admit_publish(&publishing(), &c, "chat.room", &payload("chat.room")).is_ok());
}

#[test]
fn the_message_must_be_an_object() {
    let c = conn(None);
    for p in [
        json!({"topic": "chat"}),
        json!({"topic": "chat", "message": "text"}),
        json!({"topic": "chat", "message": [1]}),
    ] {
        let refused = admit_publish(&publishing(), &c, "chat", &p).unwrap_err();
        assert_eq!(refused, PublishRefused::NoMessage, "{p}");
        assert_eq!(refused.code(), "INVALID_MESSAGE");
    }
}

#[test]
fn errors_the_log_gives_map_to_their_codes() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        max_record_bytes: 64,
        ..LogConfig::default()
    };
    let log = Log::open(dir.path(), config).unwrap();
    let code = |r: Result<_, LogError>| publish_error_code(&r.unwrap_err());
    assert_eq!(
        code(log.append("chat", RecordKind::Message, &[b'x'; 65])),
        "MESSAGE_TOO_LARGE"
    );
    assert_eq!(
        code(log.append("", RecordKind::Message, b"x")),
        "INVALID_MESSAGE"
    );
    log.close().unwrap();
    assert_eq!(
        code(log.append("chat", RecordKind::Message, b"x")),
        "STORAGE_UNAVAILABLE"
    );
}

#[test]
fn storage_failures_are_unavailable_and_the_rest_failed() {
    let path = PathBuf::from("/data/seg");
    let unavailable = LogError::Unavailable {
        op: "write",
        path: path.clone(),
        source: io::Error::other("ENOSPC"),
    };
    let io = LogError::Io {
        op: "fsync",
        path,
        source: io::Error::other("EIO"),
    };
    assert_eq!(publish_error_code(&unavailable), "STORAGE_UNAVAILABLE");
    assert_eq!(publish_error_code(&io), "STORAGE_UNAVAILABLE");
    assert_eq!(
        publish_error_code(&LogError::UnknownTopic("chat".into())),
        "PUBLISH_FAILED"
    );
    assert_eq!(
        publish_error_code(&LogError::Config("bad".into())),
        "PUBLISH_FAILED"
    );
}

#[test]
fn a_publish_error_is_recoverable_and_names_the_publish() {
    let e = publish_error("PUBLISH_DENIED", "no", &json!("p-1"), "chat");
    assert_eq!(
        e,
        json!({"c": "WSE", "t": "error", "p": {"code": "PUBLISH_DENIED", "message": "no",
            "recoverable": true, "details": {"id": "p-1", "topic": "chat"}}, "v": 1})
    );
}
