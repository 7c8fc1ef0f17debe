//! The WebSocket frame decoder: any bytes, delivered in any chunks, give
//! complete messages within the size limit (text always UTF-8) or an
//! error, never a panic; the chunking does not change the outcome.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wse::ws::frame::{FrameError, FrameParser, Incoming};

/// The limit the targets parse under: small, so that the limit's paths are
/// reached too.
const MAX: usize = 4096;

/// Every message in `chunks` fed one after another, up to the first error.
fn parse(chunks: &[&[u8]]) -> (Vec<Incoming>, Option<FrameError>) {
    let mut parser = FrameParser::new(MAX);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        let _ = FrameParser::wanted(&buf);
        loop {
            match parser.next(&mut buf) {
                Ok(Some(m)) => {
                    assert!(m.len() <= MAX, "a message over the limit");
                    if let Incoming::Text(t) = &m {
                        assert!(std::str::from_utf8(t).is_ok(), "text that is not UTF-8");
                    }
                    out.push(m);
                }
                Ok(None) => break,
                Err(e) => return (out, Some(e)),
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks a chunk size, the rest is the stream.
    let Some((&size, stream)) = data.split_first() else {
        return;
    };
    let whole = parse(&[stream]);
    let chunks: Vec<&[u8]> = stream.chunks(usize::from(size).max(1)).collect();
    assert_eq!(parse(&chunks), whole, "the chunking changed the outcome");
});
