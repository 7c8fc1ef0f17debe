//! MessagePack and JSON encodings of events.
//!
//! `send_event` on a `format=msgpack` connection sends `M:` + the msgpack
//! map of the envelope (CLIENT_PROTOCOL.md §7), and inbound binary frames on
//! such connections are decoded as raw msgpack with a nesting limit of 64
//! (§5.4). The Python `RustCompressionManager` exposes the same encodings
//! as `pack_msgpack`/`unpack_msgpack`/`pack_event`/`unpack_event`.
//!
//! Values are `serde_json::Value`, so maps have string keys; msgpack input
//! with non-string keys, binary or extension values is refused (the Python
//! binding converts such Python values before calling in).

use serde::Deserialize as _;
use serde_json::{Map, Value};

use crate::crypto::signing::to_hex;

/// Deepest nesting of arrays/maps accepted when decoding msgpack: 64 levels
/// are accepted, the 65th is refused.
pub const MSGPACK_MAX_DEPTH: usize = 64;

/// Why a msgpack operation failed (Python `RuntimeError` messages).
#[derive(Debug, thiserror::Error)]
pub enum MsgpackError {
    /// The value could not be encoded.
    #[error("msgpack packing failed: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    /// The bytes are not msgpack this module accepts (malformed, too deep,
    /// non-string keys, binary or extension values).
    #[error("msgpack unpacking failed: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
}

/// Why [`unpack_event`] gave up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnpackEventError {
    /// Neither msgpack nor JSON (UTF-8 or Latin-1) decoding worked.
    #[error("Failed to unpack event (tried msgpack + JSON)")]
    Undecodable,
}

/// Encodes a value as msgpack (maps with string keys, integers in their
/// smallest form, floats as f64).
pub fn pack_msgpack(value: &Value) -> Result<Vec<u8>, MsgpackError> {
    Ok(rmp_serde::to_vec(value)?)
}

/// Decodes the first msgpack value in `data` (trailing bytes are ignored,
/// as upstream does), refusing nesting deeper than [`MSGPACK_MAX_DEPTH`].
pub fn unpack_msgpack(data: &[u8]) -> Result<Value, MsgpackError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(data);
    // rmp-serde fails when its counter reaches zero on entering a container,
    // so N + 1 lets exactly N levels through.
    de.set_max_depth(MSGPACK_MAX_DEPTH + 1);
    Ok(Value::deserialize(&mut de)?)
}

/// `pack_event(event, use_msgpack)`: msgpack bytes, or compact JSON bytes
/// when `use_msgpack` is false or msgpack encoding fails.
pub fn pack_event(event: &Value, use_msgpack: bool) -> Vec<u8> {
    if use_msgpack && let Ok(packed) = pack_msgpack(event) {
        return packed;
    }
    // Serializing a `Value` cannot fail: its map keys are strings.
    serde_json::to_vec(event).unwrap_or_default()
}

/// `unpack_event(data, is_msgpack)` with the upstream fallbacks:
///
/// - `is_msgpack`: msgpack first, then JSON as UTF-8, then JSON as
///   Latin-1; if all fail, [`UnpackEventError::Undecodable`]. Note that
///   msgpack decoding of JSON text usually "succeeds" (`{` is the fixint
///   123), exactly as upstream.
/// - otherwise: JSON as UTF-8, then as Latin-1, else
///   `{"_raw_hex": <hex of data>, "_decode_error": true}`.
pub fn unpack_event(data: &[u8], is_msgpack: bool) -> Result<Value, UnpackEventError> {
    if is_msgpack {
        if let Ok(value) = unpack_msgpack(data) {
            return Ok(value);
        }
        return parse_json_any_encoding(data).ok_or(UnpackEventError::Undecodable);
    }
    Ok(parse_json_any_encoding(data).unwrap_or_else(|| {
        let mut fallback = Map::new();
        fallback.insert("_raw_hex".to_owned(), Value::String(to_hex(data)));
        fallback.insert("_decode_error".to_owned(), Value::Bool(true));
        Value::Object(fallback)
    }))
}

/// JSON from UTF-8, else from Latin-1 (every byte is one code point; this
/// also stands in for upstream's cp1252 attempt, which it implements the
/// same way).
fn parse_json_any_encoding(data: &[u8]) -> Option<Value> {
    if let Ok(value) = serde_json::from_slice(data) {
        return Some(value);
    }
    let latin1: String = data.iter().map(|&b| char::from(b)).collect();
    serde_json::from_str(&latin1).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn nested(depth: usize) -> Value {
        let mut v = json!(1);
        for _ in 0..depth {
            v = json!([v]);
        }
        v
    }

    #[test]
    fn envelope_round_trip() {
        let env = json!({"c": "U", "t": "x", "p": {"a": [1, -2, 3.5, null, true, "s"]}, "seq": 7, "v": 1});
        let packed = pack_msgpack(&env).unwrap();
        assert_eq!(packed[0] & 0xf0, 0x80, "a fixmap");
        assert_eq!(unpack_msgpack(&packed).unwrap(), env);
    }

    /// Python: `msgpack.packb({"a": 1})` == `81 a1 61 01`.
    #[test]
    fn matches_the_reference_encoding() {
        assert_eq!(
            pack_msgpack(&json!({"a": 1})).unwrap(),
            [0x81, 0xa1, b'a', 0x01]
        );
        assert_eq!(
            unpack_msgpack(&[0x81, 0xa1, b'a', 0x01]).unwrap(),
            json!({"a": 1})
        );
        assert_eq!(pack_msgpack(&json!(u64::MAX)).unwrap()[0], 0xcf);
        assert_eq!(pack_msgpack(&json!(-1)).unwrap(), [0xff]);
    }

    #[test]
    fn depth_limit_is_64() {
        let ok = pack_msgpack(&nested(MSGPACK_MAX_DEPTH)).unwrap();
        assert_eq!(unpack_msgpack(&ok).unwrap(), nested(MSGPACK_MAX_DEPTH));
        let too_deep = pack_msgpack(&nested(MSGPACK_MAX_DEPTH + 1)).unwrap();
        let err = unpack_msgpack(&too_deep).unwrap_err();
        assert_eq!(
            err.to_string(),
            "msgpack unpacking failed: depth limit exceeded"
        );
        // A hostile 100 000-deep input fails fast instead of overflowing the stack.
        assert!(unpack_msgpack(&vec![0x91; 100_000]).is_err());
    }

    #[test]
    fn malformed_and_unsupported_input_is_an_error() {
        for bad in [
            &[][..],
            &[0xc1][..],                         // never-used marker
            &[0x92, 0x01][..],                   // array of 2 with 1 element
            &[0xdd, 0xff, 0xff, 0xff, 0xff][..], // huge array, no data
            &[0x81, 0x01, 0x02][..],             // integer key
            &[0xc4, 0x01, 0x00][..],             // binary
            &[0xa2, 0xff, 0xfe][..],             // invalid UTF-8 string
        ] {
            assert!(unpack_msgpack(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn pack_event_chooses_the_encoding() {
        let ev = json!({"t": "x", "p": {}});
        assert_eq!(pack_event(&ev, true), pack_msgpack(&ev).unwrap());
        assert_eq!(pack_event(&ev, false), br#"{"p":{},"t":"x"}"#);
    }

    #[test]
    fn unpack_event_fallbacks() {
        let ev = json!({"t": "x"});
        assert_eq!(unpack_event(&pack_msgpack(&ev).unwrap(), true).unwrap(), ev);
        assert_eq!(unpack_event(br#"{"t":"x"}"#, false).unwrap(), ev);
        // Upstream quirk kept: JSON text read as msgpack is the fixint 123.
        assert_eq!(unpack_event(br#"{"t":"x"}"#, true).unwrap(), json!(123));
        // Latin-1 fallback for non-UTF-8 JSON.
        assert_eq!(unpack_event(b"\"caf\xe9\"", false).unwrap(), json!("café"));
        assert_eq!(
            unpack_event(b"\xc1\"x\"", true).unwrap_err(),
            UnpackEventError::Undecodable
        );
        assert_eq!(
            unpack_event(b"\xc1\x00", false).unwrap(),
            json!({"_raw_hex": "c100", "_decode_error": true})
        );
        assert_eq!(
            UnpackEventError::Undecodable.to_string(),
            "Failed to unpack event (tried msgpack + JSON)"
        );
    }
}
