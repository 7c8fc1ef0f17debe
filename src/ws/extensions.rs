//! Negotiating per-message deflate (RFC 7692) in the upgrade.
//!
//! The server's answer to an acceptable offer is always the same two
//! restrictions, and that is what keeps compression cheap:
//!
//! - `server_no_context_takeover`: the server compresses each message on
//!   its own, so a broadcast's compressed frame does not depend on what a
//!   connection was sent before and is built once, shared by every
//!   subscriber (see `fanout::ring`), like the plain frame.
//! - `client_no_context_takeover`: the client compresses each message on
//!   its own too (RFC 7692 §7.1.1.2 lets a server ask this of any client),
//!   so a connection keeps no inflate window between messages: an idle
//!   connection costs what it cost without compression.
//!
//! A client that limits the server's window (`server_max_window_bits`
//! below 15) is accepted with the value it asked for, and is then sent
//! every message uncompressed (a message may always go uncompressed): a
//! shared frame compressed with a 32 KiB window could reference bytes its
//! inflater no longer holds. Browsers never ask this.

/// What the server agreed to in the upgrade.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Deflate {
    /// Messages to this client may be compressed with a full (32 KiB)
    /// window; `false` when the client limited the server's window.
    pub compress: bool,
    /// The `Sec-WebSocket-Extensions` value of the 101 response.
    pub response: String,
}

/// The first acceptable `permessage-deflate` offer among the client's
/// `Sec-WebSocket-Extensions` (all its headers joined by commas). An offer
/// with an unknown or repeated parameter, or a bad value, is declined
/// (RFC 7692 §5: the server goes on to the next offer); other extensions
/// are ignored. `None`: nothing acceptable was offered.
pub fn negotiate(offers: &str) -> Option<Deflate> {
    offers.split(',').find_map(accept_offer)
}

/// The answer to one offer, if acceptable.
fn accept_offer(offer: &str) -> Option<Deflate> {
    let mut parts = offer.split(';').map(str::trim);
    if !parts.next()?.eq_ignore_ascii_case("permessage-deflate") {
        return None;
    }
    let mut seen: Vec<String> = Vec::new();
    let mut server_window: Option<u8> = None;
    for param in parts {
        let (name, value) = match param.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v.trim()))),
            None => (param, None),
        };
        let name = name.to_ascii_lowercase();
        if seen.contains(&name) {
            return None;
        }
        match (name.as_str(), value) {
            ("server_no_context_takeover" | "client_no_context_takeover", None) => {}
            ("server_max_window_bits", Some(v)) => server_window = Some(window_bits(v)?),
            // The client's own window: any size up to 15 inflates with
            // ours, so the answer does not name it.
            ("client_max_window_bits", None) => {}
            ("client_max_window_bits", Some(v)) => {
                window_bits(v)?;
            }
            _ => return None,
        }
        seen.push(name);
    }
    let mut response =
        String::from("permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    if let Some(bits) = server_window {
        // The server must answer with a window no larger than asked.
        response.push_str(&format!("; server_max_window_bits={bits}"));
    }
    Some(Deflate {
        compress: server_window.is_none_or(|b| b == 15),
        response,
    })
}

/// A window size parameter: 8 to 15, digits only (RFC 7692 §7.1.2).
fn window_bits(v: &str) -> Option<u8> {
    if v.is_empty() || v.len() > 2 || !v.bytes().all(|b| b.is_ascii_digit()) || v.starts_with('0') {
        return None;
    }
    v.parse().ok().filter(|b| (8..=15).contains(b))
}

/// A parameter value may be a quoted string (RFC 6455 §9.1).
fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOTH: &str = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";

    #[test]
    fn accepts_what_browsers_and_websockets_offer() {
        for offer in [
            "permessage-deflate",
            "permessage-deflate; client_max_window_bits",
            "permessage-deflate; client_max_window_bits=15",
            "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
            "PerMessage-Deflate; Server_No_Context_Takeover",
        ] {
            let d = negotiate(offer).unwrap_or_else(|| panic!("{offer}"));
            assert!(d.compress, "{offer}");
            assert_eq!(d.response, BOTH, "{offer}");
        }
    }

    #[test]
    fn a_limited_server_window_is_granted_and_messages_go_plain() {
        let d = negotiate("permessage-deflate; server_max_window_bits=10").unwrap();
        assert!(!d.compress);
        assert_eq!(d.response, format!("{BOTH}; server_max_window_bits=10"));
        let d = negotiate("permessage-deflate; server_max_window_bits=\"15\"").unwrap();
        assert!(d.compress);
    }

    #[test]
    fn declines_bad_offers_and_takes_the_next() {
        for bad in [
            "permessage-deflate; server_max_window_bits",
            "permessage-deflate; server_max_window_bits=7",
            "permessage-deflate; server_max_window_bits=16",
            "permessage-deflate; server_max_window_bits=09",
            "permessage-deflate; client_max_window_bits=abc",
            "permessage-deflate; server_no_context_takeover=1",
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            "permessage-deflate; unknown_param",
            "deflate-frame",
            "",
        ] {
            assert_eq!(negotiate(bad), None, "{bad}");
        }
        let d = negotiate(
            "permessage-deflate; server_max_window_bits=99, permessage-deflate; server_max_window_bits=12",
        )
        .unwrap();
        assert_eq!(d.response, format!("{BOTH}; server_max_window_bits=12"));
    }
}
