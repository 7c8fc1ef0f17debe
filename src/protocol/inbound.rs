//! Classification of client frames (CLIENT_PROTOCOL.md §5.4).
//!
//! The core answers three message types itself (`client_hello`, `ping`,
//! `pong`/`PONG`) and hands everything else to the app as `msg` (a parsed
//! and key-normalised JSON value), `raw` (text that is not a JSON object)
//! or `bin` (bytes). Which of these a frame becomes depends on how it
//! arrived:
//!
//! - a **text** frame: [`classify_text`];
//! - a **binary** frame: [`classify_binary`] — `E:` frames are returned for
//!   decryption (not done here), msgpack connections decode MessagePack;
//! - the plaintext of a decrypted `E:` frame: [`classify_decrypted`], which
//!   never produces core messages: an encrypted `ping` or `client_hello`
//!   reaches the app as `msg` and gets no reply.
//!
//! `raw` and `bin` borrow the caller's buffer, so classifying a frame never
//! copies it; only `msg` allocates (the parsed value).

use serde_json::Value;

use super::bounded::{DocLimits, ShapeError, parse_json};
use super::envelope::{normalize_keys, strip_legacy_prefix};
use super::msgpack::{MsgpackError, decode_msgpack};

/// Protocol version assumed when `client_hello` carries none (or not an
/// unsigned integer).
pub const DEFAULT_CLIENT_PROTOCOL_VERSION: u64 = 1;

/// What the core reads from a `client_hello` (§3.2); everything else in it
/// is ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHello {
    /// `p.protocol_version`, or [`DEFAULT_CLIENT_PROTOCOL_VERSION`].
    pub protocol_version: u64,
    /// `p.features.encryption == true`: the client asks for E2E encryption.
    pub encryption_requested: bool,
    /// `p.encryption_public_key` when it is a string (base64 SEC1 point).
    /// Only meaningful when `encryption_requested` is set.
    pub encryption_public_key: Option<String>,
}

impl ClientHello {
    /// Extract the fields from a parsed `client_hello` message.
    #[must_use]
    pub fn from_message(message: &Value) -> Self {
        let p = message.get("p");
        let field = |name: &str| p.and_then(|p| p.get(name));
        Self {
            protocol_version: field("protocol_version")
                .and_then(Value::as_u64)
                .unwrap_or(DEFAULT_CLIENT_PROTOCOL_VERSION),
            encryption_requested: field("features")
                .and_then(|f| f.get("encryption"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
            encryption_public_key: field("encryption_public_key")
                .and_then(Value::as_str)
                .map(str::to_owned),
        }
    }
}

/// What a client text frame is.
#[derive(Clone, Debug, PartialEq)]
pub enum TextInbound<'a> {
    /// `t == "client_hello"`: the core answers with `server_hello`.
    ClientHello(ClientHello),
    /// `t == "ping"`: the core answers with `PONG`.
    Ping {
        /// `p.timestamp` when it is an integer that fits `i64`, else 0;
        /// echoed as `client_timestamp`.
        client_timestamp: i64,
    },
    /// `t == "pong"` or `"PONG"`: swallowed (it only counts as activity).
    Pong,
    /// Any other JSON object, keys normalised: the app's `msg` event.
    Msg(Value),
    /// Not a JSON object (after prefix strip) or not parseable: the app's
    /// `raw` event with the **original** frame text (prefix included).
    Raw(&'a str),
    /// A JSON object past the document limits: refused (the client is
    /// told), never handed on, parsed no further than the limit.
    Refused(ShapeError),
}

/// Classify a client text frame (§5.4, text rules 1-4), parsing it under
/// `limits`.
#[must_use]
pub fn classify_text(text: &str, limits: DocLimits) -> TextInbound<'_> {
    let value = match parse_object(text, limits) {
        Ok(Some(value)) => value,
        Ok(None) => return TextInbound::Raw(text),
        Err(why) => return TextInbound::Refused(why),
    };
    match value.get("t").and_then(Value::as_str) {
        Some("client_hello") => return TextInbound::ClientHello(ClientHello::from_message(&value)),
        Some("ping") => {
            let client_timestamp = value
                .get("p")
                .and_then(|p| p.get("timestamp"))
                .and_then(Value::as_i64)
                .unwrap_or(0);
            return TextInbound::Ping { client_timestamp };
        }
        Some("pong" | "PONG") => return TextInbound::Pong,
        _ => {}
    }
    let mut value = value;
    normalize_keys(&mut value);
    TextInbound::Msg(value)
}

/// Strip a legacy prefix, require a `{`, and parse under `limits`.
fn parse_object(text: &str, limits: DocLimits) -> Result<Option<Value>, ShapeError> {
    let json = strip_legacy_prefix(text);
    if !json.starts_with('{') {
        return Ok(None);
    }
    parse_json(json, limits)
}

/// What the plaintext of a decrypted `E:` frame is.
#[derive(Clone, Debug, PartialEq)]
pub enum DecryptedInbound<'a> {
    /// A JSON object, keys normalised (`ping`/`client_hello` included: the
    /// core does not handle encrypted protocol messages).
    Msg(Value),
    /// UTF-8 text that does not start with `{` (after prefix strip): a
    /// `raw` event in drain mode; callback mode drops it.
    Raw(&'a str),
    /// Invalid UTF-8 or invalid JSON: dropped silently.
    Drop,
    /// A JSON object past the document limits: refused.
    Refused(ShapeError),
}

/// Classify the plaintext of a decrypted client `E:` frame (§5.4 binary
/// rule 1), parsing it under `limits`.
#[must_use]
pub fn classify_decrypted(plaintext: &[u8], limits: DocLimits) -> DecryptedInbound<'_> {
    let Ok(text) = std::str::from_utf8(plaintext) else {
        return DecryptedInbound::Drop;
    };
    let json = strip_legacy_prefix(text);
    if !json.starts_with('{') {
        return DecryptedInbound::Raw(text);
    }
    match parse_json(json, limits) {
        Ok(Some(mut value)) => {
            normalize_keys(&mut value);
            DecryptedInbound::Msg(value)
        }
        Ok(None) => DecryptedInbound::Drop,
        Err(why) => DecryptedInbound::Refused(why),
    }
}

/// What a client binary frame is.
#[derive(Clone, Debug, PartialEq)]
pub enum BinaryInbound<'a> {
    /// `E:` prefix: the bytes after it (IV ‖ ciphertext ‖ tag) must be
    /// decrypted with the connection key and passed to
    /// [`classify_decrypted`]; without a key, or on a bad tag, the frame is
    /// dropped.
    Encrypted(&'a [u8]),
    /// Msgpack connection, and the frame is exactly one MessagePack value
    /// within the document limits: the app's `msg` event (any JSON value,
    /// maps key-normalised).
    Msg(Value),
    /// Msgpack connection, and the MessagePack value is past the document
    /// limits: refused, decoded no further than the limit.
    Refused(ShapeError),
    /// Anything else: the app's `bin` event with the frame bytes
    /// (`C:` frames are not decompressed).
    Bin(&'a [u8]),
}

/// Classify a client binary frame (§5.4 binary rules). `msgpack` says
/// whether the connection was opened with `format=msgpack`; its documents
/// are decoded under `limits`.
#[must_use]
pub fn classify_binary(data: &[u8], msgpack: bool, limits: DocLimits) -> BinaryInbound<'_> {
    if let Some(sealed) = data.strip_prefix(b"E:") {
        return BinaryInbound::Encrypted(sealed);
    }
    if msgpack {
        match decode_msgpack(data, limits) {
            Ok(mut value) => {
                normalize_keys(&mut value);
                return BinaryInbound::Msg(value);
            }
            Err(MsgpackError::Shape(why)) => return BinaryInbound::Refused(why),
            Err(_) => {}
        }
    }
    BinaryInbound::Bin(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const L: DocLimits = DocLimits::UNBOUNDED;

    #[test]
    fn client_hello_fields() {
        let text = r#"{"c":"WSE","t":"client_hello","p":{"client_version":"2.0.7","protocol_version":2,
            "features":{"compression":true,"encryption":true},"encryption_public_key":"BASE64"},"v":1}"#;
        assert_eq!(
            classify_text(text, L),
            TextInbound::ClientHello(ClientHello {
                protocol_version: 2,
                encryption_requested: true,
                encryption_public_key: Some("BASE64".into()),
            })
        );
    }

    #[test]
    fn client_hello_defaults() {
        for p in [
            "{}",
            r#"{"protocol_version":-1}"#,
            r#"{"protocol_version":1.5}"#,
            r#"{"protocol_version":"2"}"#,
            r#"{"features":{"encryption":"yes"},"encryption_public_key":5}"#,
        ] {
            let text = format!(r#"{{"t":"client_hello","p":{p}}}"#);
            assert_eq!(
                classify_text(&text, L),
                TextInbound::ClientHello(ClientHello {
                    protocol_version: 1,
                    encryption_requested: false,
                    encryption_public_key: None,
                }),
                "{p}"
            );
        }
        assert!(matches!(
            classify_text(r#"{"t":"client_hello"}"#, L),
            TextInbound::ClientHello(ClientHello {
                protocol_version: 1,
                ..
            })
        ));
    }

    #[test]
    fn ping_pong() {
        let ping = r#"{"c":"WSE","t":"ping","p":{"timestamp":1795756556316},"v":1}"#;
        assert_eq!(
            classify_text(ping, L),
            TextInbound::Ping {
                client_timestamp: 1_795_756_556_316
            }
        );
        for p in [r#"{"timestamp":"x"}"#, r#"{"timestamp":1.5}"#, "{}", "7"] {
            let text = format!(r#"{{"t":"ping","p":{p}}}"#);
            assert_eq!(
                classify_text(&text, L),
                TextInbound::Ping {
                    client_timestamp: 0
                }
            );
        }
        assert_eq!(classify_text(r#"{"t":"pong"}"#, L), TextInbound::Pong);
        assert_eq!(
            classify_text(r#"WSE{"t":"PONG","p":{}}"#, L),
            TextInbound::Pong
        );
        // Case matters, and the long key is not consulted for core messages.
        assert!(matches!(
            classify_text(r#"{"t":"PING"}"#, L),
            TextInbound::Msg(_)
        ));
        assert_eq!(
            classify_text(r#"{"type":"ping"}"#, L),
            TextInbound::Msg(json!({"t": "ping"}))
        );
    }

    #[test]
    fn messages_are_normalised() {
        assert_eq!(
            classify_text(r#"U{"type":"chat","payload":{"x":1}}"#, L),
            TextInbound::Msg(json!({"t": "chat", "p": {"x": 1}}))
        );
        assert_eq!(
            classify_text(r#"{"t":7}"#, L),
            TextInbound::Msg(json!({"t": 7}))
        );
    }

    #[test]
    fn raw_text_keeps_the_original() {
        for text in [
            "PONG:1795756556316",
            "WSE:PING:1",
            " {\"t\":\"x\"}",
            "[1,2]",
            "{not json",
            r#"WSE{"t":"x""#,
            "",
        ] {
            assert_eq!(classify_text(text, L), TextInbound::Raw(text), "{text:?}");
        }
    }

    #[test]
    fn decrypted_plaintext() {
        assert_eq!(
            classify_decrypted(br#"{"t":"ping","p":{"timestamp":1}}"#, L),
            DecryptedInbound::Msg(json!({"t": "ping", "p": {"timestamp": 1}}))
        );
        assert_eq!(
            classify_decrypted(br#"S{"type":"client_hello"}"#, L),
            DecryptedInbound::Msg(json!({"t": "client_hello"}))
        );
        assert_eq!(
            classify_decrypted(b"PONG:5", L),
            DecryptedInbound::Raw("PONG:5")
        );
        assert_eq!(classify_decrypted(b"{oops", L), DecryptedInbound::Drop);
        assert_eq!(classify_decrypted(b"\xff{}", L), DecryptedInbound::Drop);
        // An `M:` payload inside `E:` is not JSON: raw text when UTF-8, else dropped.
        assert_eq!(classify_decrypted(b"M:x", L), DecryptedInbound::Raw("M:x"));
        assert_eq!(classify_decrypted(b"M:\x80", L), DecryptedInbound::Drop);
    }

    #[test]
    fn binary_frames() {
        assert_eq!(
            classify_binary(b"E:abc", false, L),
            BinaryInbound::Encrypted(b"abc")
        );
        assert_eq!(
            classify_binary(b"E:abc", true, L),
            BinaryInbound::Encrypted(b"abc")
        );
        assert_eq!(
            classify_binary(b"C:x", false, L),
            BinaryInbound::Bin(b"C:x")
        );
        assert_eq!(
            classify_binary(b"\x01\x02", false, L),
            BinaryInbound::Bin(b"\x01\x02")
        );
        // {"type":"x"} as msgpack → normalised
        let packed = [0x81, 0xa4, b't', b'y', b'p', b'e', 0xa1, b'x'];
        assert_eq!(
            classify_binary(&packed, true, L),
            BinaryInbound::Msg(json!({"t": "x"}))
        );
        assert_eq!(
            classify_binary(&packed, false, L),
            BinaryInbound::Bin(&packed)
        );
        // A scalar is a message too; garbage is bin.
        assert_eq!(
            classify_binary(&[0x2a], true, L),
            BinaryInbound::Msg(json!(42))
        );
        assert_eq!(
            classify_binary(&[0xc1], true, L),
            BinaryInbound::Bin(&[0xc1])
        );
        assert_eq!(classify_binary(b"C:x", true, L), BinaryInbound::Bin(b"C:x"));
    }
}
