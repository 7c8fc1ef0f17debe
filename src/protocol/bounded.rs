//! Building a JSON value from an inbound document under a budget of shape:
//! how deep containers nest and how many values the document holds.
//!
//! # Why a budget while parsing, not a check after
//!
//! The size limit (`max_message_size`) bounds the bytes of a message, not
//! the work or memory of turning it into a value: a 1 MiB JSON array of
//! empty objects is 350,000 values, and a 1 MiB msgpack array of `0x80`
//! bytes is a million empty maps, each a 32-byte-or-more [`Value`]
//! (tens of MiB and tens of milliseconds on a shared worker, per
//! message). The seed here counts every value as it is created and stops
//! the parser at the first one past the budget, so a hostile document
//! costs at most the budget's worth of work before it is refused; a
//! document within the budget gives the same value the plain parsers do.
//!
//! The same seed serves JSON (serde_json) and MessagePack (rmp-serde). The
//! conversions that only MessagePack needs (binary and extension payloads
//! as hex, map keys that are not strings as their JSON text, non-finite
//! floats as `null`) never trigger for JSON input.

use std::cell::Cell;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// The shape an inbound document may have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocLimits {
    /// Deepest container nesting (a top-level object is depth 1).
    pub max_depth: usize,
    /// Most values in the document, counting every scalar, array and
    /// object (object keys are not counted; each key has a value).
    pub max_elements: usize,
}

impl DocLimits {
    /// No bound beyond the parsers' own (tests and trusted input).
    pub const UNBOUNDED: Self = Self {
        max_depth: 128,
        max_elements: usize::MAX,
    };
}

/// Why a document was refused for its shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ShapeError {
    /// Containers nest deeper than the limit.
    #[error("message nests deeper than {0} levels")]
    TooDeep(usize),
    /// The document holds more values than the limit.
    #[error("message holds more than {0} values")]
    TooManyElements(usize),
}

/// Marker of the custom error a seed raises when the budget runs out; the
/// budget itself records which limit it was.
pub(crate) const OVER_BUDGET: &str = "wse: message shape limit exceeded";

/// What is left of a document's budget while it is parsed.
pub(crate) struct Budget {
    limits: DocLimits,
    elements_left: Cell<usize>,
    exceeded: Cell<Option<ShapeError>>,
}

impl Budget {
    pub(crate) fn new(limits: DocLimits) -> Self {
        Self {
            limits,
            elements_left: Cell::new(limits.max_elements),
            exceeded: Cell::new(None),
        }
    }

    /// The seed for the top-level value.
    pub(crate) fn seed(&self) -> BoundedSeed<'_> {
        BoundedSeed {
            budget: self,
            depth_left: self.limits.max_depth,
        }
    }

    /// The limit that stopped the parser, if one did.
    pub(crate) fn exceeded(&self) -> Option<ShapeError> {
        self.exceeded.get()
    }

    fn take_element<E: de::Error>(&self) -> Result<(), E> {
        match self.elements_left.get().checked_sub(1) {
            Some(left) => {
                self.elements_left.set(left);
                Ok(())
            }
            None => self.fail(ShapeError::TooManyElements(self.limits.max_elements)),
        }
    }

    fn fail<T, E: de::Error>(&self, why: ShapeError) -> Result<T, E> {
        self.exceeded.set(Some(why));
        Err(E::custom(OVER_BUDGET))
    }
}

/// Parse one JSON document under `limits`. `Ok(None)`: not JSON (the
/// caller's fallback applies, as for any unparsable text).
///
/// # Errors
/// The limit the document exceeds.
pub fn parse_json(text: &str, limits: DocLimits) -> Result<Option<Value>, ShapeError> {
    let budget = Budget::new(limits);
    let mut de = serde_json::Deserializer::from_str(text);
    let parsed = budget.seed().deserialize(&mut de).and_then(|v| {
        de.end()?;
        Ok(v)
    });
    match (parsed, budget.exceeded()) {
        (_, Some(why)) => Err(why),
        (Ok(v), None) => Ok(Some(v)),
        (Err(_), None) => Ok(None),
    }
}

/// Deserialises any value within what is left of its budget.
#[derive(Clone, Copy)]
pub(crate) struct BoundedSeed<'b> {
    budget: &'b Budget,
    depth_left: usize,
}

impl BoundedSeed<'_> {
    fn enter<E: de::Error>(self) -> Result<Self, E> {
        match self.depth_left.checked_sub(1) {
            Some(depth_left) => Ok(Self { depth_left, ..self }),
            None => self
                .budget
                .fail(ShapeError::TooDeep(self.budget.limits.max_depth)),
        }
    }

    fn scalar<E: de::Error>(self, v: Value) -> Result<Value, E> {
        self.budget.take_element()?;
        Ok(v)
    }
}

impl<'de> DeserializeSeed<'de> for BoundedSeed<'_> {
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

impl<'de> Visitor<'de> for BoundedSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON or MessagePack value")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.scalar(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.scalar(Value::Null)
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Value, E> {
        self.scalar(Value::Bool(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Value, E> {
        self.scalar(Value::from(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Value, E> {
        self.scalar(Value::from(v))
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<Value, E> {
        self.visit_f64(f64::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        self.scalar(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.scalar(Value::String(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.scalar(Value::String(v))
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Value, E> {
        self.scalar(Value::String(hex(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        self.budget.take_element()?;
        let inner = self.enter()?;
        // A declared length is the sender's claim, not an allocation.
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element_seed(inner)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        self.budget.take_element()?;
        let inner = self.enter()?;
        let mut map = Map::new();
        while let Some(key) = access.next_key_seed(KeySeed(inner))? {
            let value = access.next_value_seed(inner)?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }

    /// rmp-serde reports an extension type as a newtype around
    /// `(tag: i8, data: bytes)`; keep the data as hex, drop the tag.
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.budget.take_element()?;
        d.deserialize_any(ExtVisitor)
    }
}

/// A map key: a string, or (MessagePack) any value as its JSON text. A key
/// is not counted as a value, but a container used as a key is bounded
/// like any other.
struct KeySeed<'b>(BoundedSeed<'b>);

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = String;

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map key")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }

    fn visit_unit<E: de::Error>(self) -> Result<String, E> {
        Ok(Value::Null.to_string())
    }

    fn visit_none<E: de::Error>(self) -> Result<String, E> {
        self.visit_unit()
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_f32<E: de::Error>(self, v: f32) -> Result<String, E> {
        self.visit_f64(f64::from(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        Ok(Number::from_f64(v)
            .map_or(Value::Null, Value::Number)
            .to_string())
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<String, E> {
        Ok(hex(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<String, A::Error> {
        self.0.visit_seq(seq).map(|v| v.to_string())
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<String, A::Error> {
        self.0.visit_map(access).map(|v| v.to_string())
    }

    /// An extension used as a key: its payload's hex, as for a value.
    fn visit_newtype_struct<D: de::Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        match self.0.visit_newtype_struct(d)? {
            Value::String(s) => Ok(s),
            other => Ok(other.to_string()),
        }
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

/// A stand-in for `serde_bytes` so an extension payload is read as bytes
/// rather than as a sequence of integers.
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

    const L: DocLimits = DocLimits {
        max_depth: 4,
        max_elements: 10,
    };

    #[test]
    fn a_document_within_the_limits_parses_as_serde_json_does() {
        let text = r#"{"t":"chat","p":{"n":1,"f":-1.5e3,"s":"\u00e9","l":[true,null]},"t":"last"}"#;
        let plain: Value = serde_json::from_str(text).unwrap_or_default();
        assert_eq!(parse_json(text, L), Ok(Some(plain)));
        assert_eq!(
            parse_json(r#"{"a":[1,2,3]}"#, L),
            Ok(Some(json!({"a": [1, 2, 3]})))
        );
    }

    #[test]
    fn not_json_is_none_and_trailing_text_too() {
        assert_eq!(parse_json("{nope", L), Ok(None));
        assert_eq!(parse_json("{} {}", L), Ok(None));
        assert_eq!(parse_json("", L), Ok(None));
    }

    #[test]
    fn depth_and_element_limits_refuse() {
        // Depth 4 is allowed, 5 is not.
        assert!(parse_json(r#"{"a":{"b":{"c":[1]}}}"#, L).is_ok_and(|v| v.is_some()));
        assert_eq!(
            parse_json(r#"{"a":{"b":{"c":[[1]]}}}"#, L),
            Err(ShapeError::TooDeep(4))
        );
        // Ten values (the object, its array and eight numbers) pass; eleven do not.
        assert!(parse_json(r#"{"a":[1,2,3,4,5,6,7,8]}"#, L).is_ok_and(|v| v.is_some()));
        assert_eq!(
            parse_json(r#"{"a":[1,2,3,4,5,6,7,8,9]}"#, L),
            Err(ShapeError::TooManyElements(10))
        );
        // A deep document is refused before it could exhaust the stack.
        let deep = "[".repeat(100_000);
        assert_eq!(parse_json(&deep, L), Err(ShapeError::TooDeep(4)));
    }

    #[test]
    fn a_megabyte_of_empty_objects_stops_at_the_budget() {
        let mut text = String::from("[");
        while text.len() < 1 << 20 {
            text.push_str("{},");
        }
        text.push_str("{}]");
        let limits = DocLimits {
            max_depth: 64,
            max_elements: 100_000,
        };
        assert_eq!(
            parse_json(&text, limits),
            Err(ShapeError::TooManyElements(100_000))
        );
        assert!(parse_json(&text, DocLimits::UNBOUNDED).is_ok_and(|v| v.is_some()));
    }
}
