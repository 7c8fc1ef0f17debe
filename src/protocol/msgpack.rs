//! Inbound MessagePack → JSON value, within the document limits (§5.4, §7).
//!
//! On a `format=msgpack` connection every binary frame that is not `E:` is
//! decoded as raw MessagePack and handed to the app as a JSON value. The
//! value is built under [`DocLimits`] (see [`super::bounded`]): a small
//! hostile frame can neither exhaust the stack nor make a million values.
//! Types without a JSON equivalent are mapped as upstream does: binary and
//! extension payloads become lowercase hex strings, non-finite floats
//! become `null`, and map keys that are not strings become their JSON text
//! (`1`, `true`, ...). The frame must hold exactly one value: trailing
//! bytes make it undecodable (so it reaches the app as `bin`, bytes intact,
//! instead of as whatever its first byte happens to decode to).

use serde::de::DeserializeSeed;
use serde_json::Value;

use super::bounded::{Budget, DocLimits, ShapeError};

/// Why an inbound msgpack frame could not be turned into a value.
#[derive(Debug, thiserror::Error)]
pub enum MsgpackError {
    /// The document is past a limit of [`DocLimits`].
    #[error(transparent)]
    Shape(#[from] ShapeError),
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
/// [`MsgpackError::Shape`] past a limit, [`MsgpackError::Invalid`] for
/// anything that is not MessagePack (truncated, reserved marker, ...).
pub fn decode_msgpack(data: &[u8], limits: DocLimits) -> Result<Value, MsgpackError> {
    let mut rest = data;
    let mut de = rmp_serde::Deserializer::new(&mut rest);
    // Our own limit is the real one; this only keeps rmp-serde's internal
    // counter out of the way.
    de.set_max_depth(limits.max_depth.saturating_add(2));
    let budget = Budget::new(limits);
    let decoded = budget.seed().deserialize(&mut de);
    drop(de);
    if let Some(why) = budget.exceeded() {
        return Err(MsgpackError::Shape(why));
    }
    let value = decoded.map_err(|e| MsgpackError::Invalid(e.to_string()))?;
    if rest.is_empty() {
        Ok(value)
    } else {
        Err(MsgpackError::TrailingBytes(rest.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MAX_DEPTH: usize = 64;
    const L: DocLimits = DocLimits {
        max_depth: MAX_DEPTH,
        max_elements: 1000,
    };

    fn pack<T: serde::Serialize>(v: &T) -> Vec<u8> {
        rmp_serde::to_vec_named(v).unwrap_or_else(|e| unreachable!("{e}"))
    }

    #[test]
    fn decodes_maps_and_scalars() {
        let v =
            json!({"t": "chat", "p": {"n": 1, "f": 1.5, "ok": true, "none": null, "l": [1, -2]}});
        assert_eq!(decode_msgpack(&pack(&v), L).ok(), Some(v));
        assert_eq!(decode_msgpack(&pack(&42u8), L).ok(), Some(json!(42)));
        assert_eq!(decode_msgpack(&pack(&"hi"), L).ok(), Some(json!("hi")));
        assert_eq!(decode_msgpack(&[0xc0], L).ok(), Some(Value::Null));
    }

    #[test]
    fn binary_ext_and_odd_keys() {
        // bin8 of [0xde, 0xad]
        assert_eq!(
            decode_msgpack(&[0xc4, 2, 0xde, 0xad], L).ok(),
            Some(json!("dead"))
        );
        // fixext1: tag 5, data 0xff
        assert_eq!(decode_msgpack(&[0xd4, 5, 0xff], L).ok(), Some(json!("ff")));
        // {1: "a", true: "b"}
        let data = [0x82, 0x01, 0xa1, b'a', 0xc3, 0xa1, b'b'];
        assert_eq!(
            decode_msgpack(&data, L).ok(),
            Some(json!({"1": "a", "true": "b"}))
        );
        // NaN float64 → null
        let mut nan = vec![0xcb];
        nan.extend_from_slice(&f64::NAN.to_be_bytes());
        assert_eq!(decode_msgpack(&nan, L).ok(), Some(Value::Null));
    }

    fn nested_arrays(depth: usize) -> Vec<u8> {
        let mut data = vec![0x91; depth - 1]; // fixarray of 1 element
        data.push(0x90); // innermost: empty array
        data
    }

    #[test]
    fn depth_limit() {
        assert!(decode_msgpack(&nested_arrays(MAX_DEPTH), L).is_ok());
        assert!(matches!(
            decode_msgpack(&nested_arrays(MAX_DEPTH + 1), L),
            Err(MsgpackError::Shape(ShapeError::TooDeep(MAX_DEPTH)))
        ));
        assert!(matches!(
            decode_msgpack(&nested_arrays(100_000), L),
            Err(MsgpackError::Shape(ShapeError::TooDeep(MAX_DEPTH)))
        ));
        let mut maps = vec![0x81, 0xa1, b'k']; // {"k": ...
        for _ in 0..MAX_DEPTH {
            maps.extend_from_slice(&[0x81, 0xa1, b'k']);
        }
        maps.push(0x01);
        assert!(matches!(
            decode_msgpack(&maps, L),
            Err(MsgpackError::Shape(ShapeError::TooDeep(MAX_DEPTH)))
        ));
    }

    #[test]
    fn a_million_empty_maps_stop_at_the_element_limit() {
        // array32 of 1,000,000 fixmaps of size 0: one byte per value.
        let mut data = vec![0xdd];
        data.extend_from_slice(&1_000_000u32.to_be_bytes());
        data.resize(data.len() + 1_000_000, 0x80);
        assert!(matches!(
            decode_msgpack(&data, L),
            Err(MsgpackError::Shape(ShapeError::TooManyElements(1000)))
        ));
        // Map keys are not counted; their values are.
        let small = pack(&json!({"a": 1, "b": [1, 2]}));
        let tight = DocLimits {
            max_depth: 8,
            max_elements: 5,
        };
        assert!(decode_msgpack(&small, tight).is_ok());
        let tighter = DocLimits {
            max_elements: 4,
            ..tight
        };
        assert!(decode_msgpack(&small, tighter).is_err());
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
                matches!(decode_msgpack(data, L), Err(MsgpackError::Invalid(_))),
                "{data:?}"
            );
        }
        assert!(matches!(
            decode_msgpack(b"C:x\x9c", L),
            Err(MsgpackError::TrailingBytes(3))
        ));
        assert!(matches!(
            decode_msgpack(&[0x01, 0x02], L),
            Err(MsgpackError::TrailingBytes(1))
        ));
    }
}
