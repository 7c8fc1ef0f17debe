//! Properties of the decoders that read what clients send, checked on
//! random input in CI (the fuzz targets under `fuzz/` check the same
//! properties for longer, outside CI): any bytes give a value, "more
//! needed" or a clear error, never a panic, never a value past the
//! limits, and the way bytes arrive does not change what they mean.

mod support;

use bytes::BytesMut;
use proptest::prelude::*;
use serde_json::Value;
use wse::protocol::bounded::DocLimits;
use wse::protocol::inbound::{TextInbound, classify_binary, classify_decrypted, classify_text};
use wse::protocol::msgpack::decode_msgpack;
use wse::ws::frame::{FrameError, FrameParser, Incoming};
use wse::ws::handshake::parse_request;

use support::raw::client_frame;

const MAX: usize = 4096;

const LIMITS: DocLimits = DocLimits {
    max_depth: 8,
    max_elements: 256,
};

/// Every message of `chunks` fed one after another, up to the first error.
fn parse_frames(chunks: &[&[u8]]) -> (Vec<Incoming>, Option<FrameError>) {
    let mut parser = FrameParser::new(MAX);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        let _ = FrameParser::wanted(&buf);
        loop {
            match parser.next(&mut buf) {
                Ok(Some(m)) => out.push(m),
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

/// Depth and value count of a decoded document.
fn shape(v: &Value) -> (usize, usize) {
    let children = |it: &mut dyn Iterator<Item = &Value>| {
        it.map(shape)
            .fold((1, 1), |(d, n), (cd, cn)| (d.max(cd + 1), n + cn))
    };
    match v {
        Value::Array(a) => children(&mut a.iter()),
        Value::Object(o) => children(&mut o.values()),
        _ => (0, 1),
    }
}

/// Random JSON documents, nested up to 10 levels.
fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z]{0,8}".prop_map(Value::from),
    ];
    leaf.prop_recursive(10, 300, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn frames_mean_the_same_in_any_chunks(
        stream in prop::collection::vec(any::<u8>(), 0..2048),
        size in 1usize..64,
    ) {
        let whole = parse_frames(&[&stream]);
        for m in &whole.0 {
            prop_assert!(m.len() <= MAX);
            if let Incoming::Text(t) = m {
                prop_assert!(std::str::from_utf8(t).is_ok());
            }
        }
        let chunks: Vec<&[u8]> = stream.chunks(size).collect();
        prop_assert_eq!(parse_frames(&chunks), whole);
    }

    #[test]
    fn masked_messages_come_out_as_sent_however_fragmented(
        payload in prop::collection::vec(any::<u8>(), 0..3000),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        key in any::<[u8; 4]>(),
        size in 1usize..512,
    ) {
        let mut at: Vec<usize> = cuts.iter().map(|i| i.index(payload.len() + 1)).collect();
        at.sort_unstable();
        at.dedup();
        let mut bounds = vec![0];
        bounds.extend(at.into_iter().filter(|&a| a > 0 && a < payload.len()));
        bounds.push(payload.len());
        let mut stream = Vec::new();
        let pieces = bounds.len() - 1;
        for (i, w) in bounds.windows(2).enumerate() {
            let opcode = if i == 0 { 2 } else { 0 };
            let fin = if i + 1 == pieces { 0x80 } else { 0 };
            stream.extend(client_frame(fin | opcode, &payload[w[0]..w[1]], Some(key)));
        }
        let chunks: Vec<&[u8]> = stream.chunks(size).collect();
        let (messages, error) = parse_frames(&chunks);
        prop_assert_eq!(error, None);
        prop_assert_eq!(messages, vec![Incoming::Binary(payload.into())]);
    }

    #[test]
    fn any_bytes_before_an_upgrade_are_parsed_or_refused(
        data in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut buf = BytesMut::from(&data[..]);
        if let Ok(Some(_)) = parse_request(&mut buf) {
            prop_assert!(buf.len() < data.len());
        }
    }

    #[test]
    fn any_text_is_classified_within_the_limits(text in ".{0,300}") {
        match classify_text(&text, LIMITS) {
            TextInbound::Raw(raw) => prop_assert_eq!(raw, text.as_str()),
            TextInbound::Msg(v) => {
                let (depth, count) = shape(&v);
                prop_assert!(depth <= LIMITS.max_depth && count <= LIMITS.max_elements);
            }
            _ => {}
        }
        let _ = classify_decrypted(text.as_bytes(), LIMITS);
    }

    #[test]
    fn json_documents_are_accepted_or_refused_by_their_shape(doc in json()) {
        let (depth, count) = shape(&doc);
        let text = serde_json::json!({"t": "m", "p": doc}).to_string();
        let within = depth < LIMITS.max_depth && count + 2 <= LIMITS.max_elements;
        match classify_text(&text, LIMITS) {
            TextInbound::Msg(_) => prop_assert!(within, "accepted: depth {depth}, {count} values"),
            TextInbound::Refused(_) => prop_assert!(!within, "refused: depth {depth}, {count} values"),
            other => prop_assert!(false, "{other:?}"),
        }
    }

    #[test]
    fn any_msgpack_bytes_decode_within_the_limits(
        data in prop::collection::vec(any::<u8>(), 0..512),
    ) {
        if let Ok(v) = decode_msgpack(&data, LIMITS) {
            let (depth, count) = shape(&v);
            prop_assert!(depth <= LIMITS.max_depth && count <= LIMITS.max_elements);
        }
        let _ = classify_binary(&data, true, LIMITS);
    }

    #[test]
    fn msgpack_documents_decode_to_what_was_encoded(doc in json()) {
        let bytes = rmp_serde::to_vec(&doc).unwrap();
        let (depth, count) = shape(&doc);
        match decode_msgpack(&bytes, LIMITS) {
            Ok(v) => {
                prop_assert!(depth <= LIMITS.max_depth && count <= LIMITS.max_elements);
                prop_assert_eq!(v, doc);
            }
            Err(_) => prop_assert!(depth > LIMITS.max_depth || count > LIMITS.max_elements),
        }
    }
}
