//! The client text message classifier (JSON control messages and app
//! messages, with the legacy prefixes): any text is classified under the
//! document limits, never a panic, never a document past them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wse::protocol::bounded::DocLimits;
use wse::protocol::inbound::{TextInbound, classify_decrypted, classify_text};

const LIMITS: DocLimits = DocLimits {
    max_depth: 8,
    max_elements: 256,
};

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let TextInbound::Raw(raw) = classify_text(text, LIMITS) {
            assert_eq!(raw, text, "a raw message is the frame's text");
        }
    }
    let _ = classify_decrypted(data, LIMITS);
});
