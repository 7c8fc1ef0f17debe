//! Inbound MessagePack → JSON value, with a nesting limit (§5.4, §7).
//!
//! On a `format=msgpack` connection every binary frame that is not `E:` is
//! decoded as raw MessagePack and handed to the app as a JSON value. The
//! decoder refuses documents nested deeper than [`MAX_MSGPACK_DEPTH`] so a
//! small hostile frame cannot exhaust the stack. Types without a JSON
//! equivalent are mapped as upstream does: binary and extension payloads
//! become lowercase hex strings, non-finite floats become `null`, and map
//! keys that are not strings become their JSON text (`1`, `true`, ...).
//! The frame must hold exactly one value: trailing bytes make it
//! undecodable (so it reaches the app as `bin`, bytes intact, instead of
//! as whatever its first byte happens to decode to).

use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Deepest container nesting accepted in an inbound msgpack frame
/// (a top-level map or array is depth 1).
pub const MAX_MSGPACK_DEPTH: usize = 64;

/// Why an inbound msgpack frame could not be turned into a value.
#[derive(Debug, thiserror::Error)]
pub enum MsgpackError {
    /// Maps and arrays nest deeper than [`MAX_MSGPACK_DEPTH`].
    #[error("msgpack nesting deeper than {MAX_MSGPACK_DEPTH}")]
    TooDeep,
    /// The bytes are not valid MessagePack.
    #[error("invalid msgpack: {0}")]
    Invalid(String),
    /// A complete value is followed by more bytes: the frame is not one
    /// MessagePack document (for example a `C:` frame, whose first byte
    /// happens to be a valid positive fixint).
    #[error("{0} bytes after the msgpack value")]
    TrailingBytes(usize),
}

/// Decode one MessagePack value from `data` into a JSON value.
///
/// # Errors
/// [`MsgpackError::TooDeep`] past the nesting limit, [`MsgpackError::Invalid`]
/// for anything that is not MessagePack (truncated, reserved marker, ...).
pub fn decode_msgpack(data: &[u8]) -> Result<Value, MsgpackError> {
    let mut rest = data;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    // Our own limit (below) is the real one; this only keeps rmp-serde's
    // internal counter out of the way.
    de.set_max_depth(MAX_MSGPACK_DEPTH + 2);
    let seed = ValueSeed {
        depth_left: MAX_MSGPACK_DEPTH,
    };
    let value = seed.deserialize(&mut de).map_err(|e| match e {
        rmp_serde::decode::Error::Syntax(msg) if msg == TOO_DEEP => MsgpackError::TooDeep,
        other => MsgpackError::Invalid(other.to_string()),
    })?;
    drop(de);
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(MsgpackError::TrailingBytes(rest.len()))
    }
}

/// Marker text of the custom error raised when the depth limit is hit.
const TOO_DEEP: &str = "wse: msgpack nesting limit exceeded";

/// Deserialises any value, allowing `depth_left` more levels of containers.
#[derive(Clone, Copy)]
struct ValueSeed {
    depth_left: usize,
}

impl ValueSeed {
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(Self { depth_left }),
            None => Err(E::custom(TOO_DEEP)),
        }
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any MessagePack value")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f32<E>(self, v: f32) -> Result<Value, E> {
        Ok(Number::from_f64(f64::from(v)).map_or(Value::Null, Value::Number))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_bytes<E>(self, v: &[u8]) -> Result<Value, E> {
        Ok(Value::String(hex(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let inner = self.enter()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key_seed(inner)? {
            let key = match key {
                Value::String(s) => s,
                other => other.to_string(),
            };
            let value = access.next_value_seed(inner)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    /// rmp-serde reports an extension type as a newtype around
    /// `(tag: i8, data: bytes)`; keep the data as hex, drop the tag.
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ExtVisitor)
    }
}

/// Reads the `(tag, data)` pair of a msgpack extension.
struct ExtVisitor;

impl<'de> Visitor<'de> for ExtVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a MessagePack extension")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let _tag: Option<i8> = seq.next_element()?;
        let data: Option<serde_bytes_like::Bytes> = seq.next_element()?;
        Ok(Value::String(hex(&data.map(|b| b.0).unwrap_or_default())))
    }
}

/// A tiny stand-in for `serde_bytes` so the extension payload is read as
/// bytes rather than as a sequence of integers.
mod serde_bytes_like {
    use serde::de::{self, Deserialize, Deserializer, Visitor};
    use std::fmt;

    pub(super) struct Bytes(pub(super) Vec<u8>);

    impl<'de> Deserialize<'de> for Bytes {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Bytes;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("bytes")
                }
                fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
                    Ok(Bytes(v.to_vec()))
                }
            }
            d.deserialize_bytes(V)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pack<T: serde::Serialize>(v: &T) -> Vec<u8> {
        rmp_serde::to_vec_named(v).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn decodes_maps_and_scalars() {
        let v =
            json!({"t": "chat", "p": {"n": 1, "f": 1.5, "ok": true, "none": null, "l": [1, -2]}});
        assert_eq!(decode_msgpack(&pack(&v)).ok(), Some(v));
        assert_eq!(decode_msgpack(&pack(&42u8)).ok(), Some(json!(42)));
        assert_eq!(decode_msgpack(&pack(&"hi")).ok(), Some(json!("hi")));
        assert_eq!(decode_msgpack(&[0xc0]).ok(), Some(Value::Null));
    }

    #[test]
    fn binary_ext_and_odd_keys() {
        // bin8 of [0xde, 0xad]
        assert_eq!(
            decode_msgpack(&[0xc4, 2, 0xde, 0xad]).ok(),
            Some(json!("dead"))
        );
        // fixext1: tag 5, data 0xff
        assert_eq!(decode_msgpack(&[0xd4, 5, 0xff]).ok(), Some(json!("ff")));
        // {1: "a", true: "b"}
        let data = [0x82, 0x01, 0xa1, b'a', 0xc3, 0xa1, b'b'];
        assert_eq!(
            decode_msgpack(&data).ok(),
            Some(json!({"1": "a", "true": "b"}))
        );
        // NaN float64 → null
        let mut nan = vec![0xcb];
        nan.extend_from_slice(&f64::NAN.to_be_bytes());
        assert_eq!(decode_msgpack(&nan).ok(), Some(Value::Null));
    }

    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut data = vec![0x91; depth - 1]; // fixarray of 1 element
        data.push(0x90); // innermost: empty array
        data
    }

    #[test]
    fn depth_limit() {
        assert!(decode_msgpack(&nested_arrays(MAX_MSGPACK_DEPTH)).is_ok());
        assert!(matches!(
            decode_msgpack(&nested_arrays(MAX_MSGPACK_DEPTH + 1)),
            Err(MsgpackError::TooDeep)
        ));
        assert!(matches!(
            decode_msgpack(&nested_arrays(100_000)),
            Err(MsgpackError::TooDeep)
        ));
        let mut maps = vec![0x81, 0xa1, b'k']; // {"k": ...
        for _ in 0..MAX_MSGPACK_DEPTH {
            maps.extend_from_slice(&[0x81, 0xa1, b'k']);
        }
        maps.push(0x01);
        assert!(matches!(decode_msgpack(&maps), Err(MsgpackError::TooDeep)));
    }

    #[test]
    fn garbage_is_invalid() {
        for data in [
            &[][..],
            &[0xc1],
            &[0x92, 0x01],
            &[0xa5, b'a'],
            &[0xdc, 0xff, 0xff],
        ] {
            assert!(
                matches!(decode_msgpack(data), Err(MsgpackError::Invalid(_))),
                "{data:?}"
            );
        }
        assert!(matches!(
            decode_msgpack(b"C:x\x9c"),
            Err(MsgpackError::TrailingBytes(3))
        ));
        assert!(matches!(
            decode_msgpack(&[0x01, 0x02]),
            Err(MsgpackError::TrailingBytes(1))
        ));
    }
}
