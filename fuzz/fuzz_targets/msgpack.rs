//! The MessagePack path of a `format=msgpack` connection: any bytes decode
//! to one value within the document limits, are refused for their shape,
//! or are handed on as binary; never a panic, never a document past the
//! limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wse::protocol::bounded::DocLimits;
use wse::protocol::inbound::{BinaryInbound, classify_binary};
use wse::protocol::msgpack::decode_msgpack;

const LIMITS: DocLimits = DocLimits {
    max_depth: 8,
    max_elements: 256,
};

/// Depth and value count of a decoded document.
fn shape(v: &serde_json::Value) -> (usize, usize) {
    match v {
        serde_json::Value::Array(a) => a.iter().map(shape).fold((1, 1), |(d, n), (cd, cn)| {
            (d.max(cd + 1), n + cn)
        }),
        serde_json::Value::Object(o) => o.values().map(shape).fold((1, 1), |(d, n), (cd, cn)| {
            (d.max(cd + 1), n + cn)
        }),
        _ => (0, 1),
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(v) = decode_msgpack(data, LIMITS) {
        let (depth, count) = shape(&v);
        assert!(depth <= LIMITS.max_depth, "depth {depth}");
        assert!(count <= LIMITS.max_elements, "{count} values");
    }
    let _ = classify_binary(data, true, LIMITS);
});
