//! The upgrade request parser: any bytes give a request, "more bytes
//! needed" or an error, never a panic; an accepted request has a key that
//! is 16 bytes in base64, and its bytes (only) are consumed.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wse::ws::handshake::{accept_response, parse_request};

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    if let Ok(Some(req)) = parse_request(&mut buf) {
        assert!(buf.len() < data.len(), "nothing consumed");
        assert_eq!(&data[data.len() - buf.len()..], &buf[..], "not a prefix consumed");
        let response = accept_response(&req.key);
        assert!(response.starts_with(b"HTTP/1.1 101"));
    }
});
