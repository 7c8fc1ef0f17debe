//! Inbound envelope compatibility rules: legacy text prefixes (§4.2) and
//! key normalisation (§4).
//!
//! Older clients prefixed JSON text with its category (`WSE{...}`,
//! `S{...}`, `U{...}`) and some send `type`/`payload` instead of `t`/`p`.
//! The core accepts both before the app sees a message, so apps only ever
//! deal with the short keys.

use serde_json::Value;

/// Strip a legacy category prefix from inbound text.
///
/// `WSE{` loses its first 3 bytes, `S{` and `U{` their first byte; any other
/// text is returned as is. Only prefixes followed by `{` count, so a text
/// such as `Sorry` is untouched.
#[must_use]
pub fn strip_legacy_prefix(text: &str) -> &str {
    if text.starts_with("WSE{") {
        &text[3..]
    } else if text.starts_with("S{") || text.starts_with("U{") {
        &text[1..]
    } else {
        text
    }
}

/// Rename `type` to `t` and `payload` to `p` in a top-level object, each
/// only when the short key is absent. Non-objects are left alone.
///
/// Applied to every inbound message the app receives (JSON text, decrypted
/// text and msgpack).
pub fn normalize_keys(value: &mut Value) {
    let Value::Object(map) = value else {
        return;
    };
    for (long, short) in [("type", "t"), ("payload", "p")] {
        if !map.contains_key(short)
            && let Some(v) = map.remove(long)
        {
            map.insert(short.to_owned(), v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strips_only_known_prefixes() {
        assert_eq!(strip_legacy_prefix(r#"WSE{"t":"a"}"#), r#"{"t":"a"}"#);
        assert_eq!(strip_legacy_prefix(r#"S{"t":"a"}"#), r#"{"t":"a"}"#);
        assert_eq!(strip_legacy_prefix(r#"U{"t":"a"}"#), r#"{"t":"a"}"#);
        assert_eq!(strip_legacy_prefix(r#"{"t":"a"}"#), r#"{"t":"a"}"#);
        for text in [
            "WSE[1]",
            "S[1]",
            "Sorry",
            "WSE:PING:1",
            "PONG:1",
            "",
            "W",
            "u{}",
        ] {
            assert_eq!(strip_legacy_prefix(text), text);
        }
    }

    #[test]
    fn normalises_long_keys() {
        let mut v = json!({"type": "chat", "payload": {"x": 1}, "id": "a"});
        normalize_keys(&mut v);
        assert_eq!(v, json!({"t": "chat", "p": {"x": 1}, "id": "a"}));
    }

    #[test]
    fn short_keys_win() {
        let mut v = json!({"t": "a", "type": "b", "payload": 2});
        normalize_keys(&mut v);
        assert_eq!(v, json!({"t": "a", "type": "b", "p": 2}));
    }

    #[test]
    fn non_objects_untouched() {
        for mut v in [json!(1), json!(["type"]), json!(null), json!("payload")] {
            let before = v.clone();
            normalize_keys(&mut v);
            assert_eq!(v, before);
        }
    }
}
