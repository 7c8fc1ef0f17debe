//! HMAC-SHA256 and SHA-256 helpers: the Python signing utilities and the
//! `sig` field of client messages.
//!
//! - `rust_hmac_sha256`, `rust_sha256`, `rust_sign_message` (PYTHON_API.md
//!   §3.2) are [`hmac_sha256`], [`sha256_hex`] and [`sign_message`].
//! - A client `sig` (CLIENT_PROTOCOL.md §14) is
//!   `base64(HMAC-SHA256(key, UTF-8 JSON of the message without "sig"))`;
//!   [`message_signature`] builds one and [`verify_message_signature`]
//!   checks one in constant time. How the unsigned JSON is serialized is
//!   the signer's choice, so both take the exact bytes that were signed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// Length of an HMAC-SHA256 tag and of a SHA-256 digest.
pub const SHA256_LEN: usize = 32;

/// Why a `sig` was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The `sig` value is not standard base64.
    #[error("invalid signature encoding: {0}")]
    Encoding(base64::DecodeError),
    /// The signature does not match the message under this key.
    #[error("signature mismatch")]
    Mismatch,
    /// The message is not a JSON object with a string `sig` at its top
    /// level (unsigned, or not JSON at all: raw text, binary, msgpack).
    #[error("message is not signed: a JSON object with a string \"sig\" is required")]
    Missing,
    /// The `sig` member could not be told apart from an identical one
    /// nested in the message, so the signed bytes are unknown.
    #[error("ambiguous signature: the sig member appears more than once")]
    Ambiguous,
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC hashes long keys and pads short ones: every length is valid, so
    // the error branch of `new_from_slice` is unreachable for HMAC.
    HmacSha256::new_from_slice(key).expect("HMAC-SHA256 accepts keys of any length")
}

/// `rust_hmac_sha256`: the raw 32-byte HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; SHA256_LEN] {
    let mut mac = keyed(key);
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Checks `expected` against the HMAC-SHA256 of `data` in constant time (a
/// wrong-length `expected` is simply false).
pub fn verify_hmac_sha256(key: &[u8], data: &[u8], expected: &[u8]) -> bool {
    let mut mac = keyed(key);
    mac.update(data);
    mac.verify_slice(expected).is_ok()
}

/// `rust_sha256`: lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    to_hex(&Sha256::digest(data))
}

/// `rust_sign_message`: `hex(HMAC-SHA256(secret, hex(SHA-256(payload_json))))`.
///
/// The HMAC input is the 64-character lowercase hex digest as ASCII, not the
/// raw digest; that is the upstream scheme apps rely on.
pub fn sign_message(payload_json: &str, secret: &[u8]) -> String {
    let digest_hex = sha256_hex(payload_json.as_bytes());
    to_hex(&hmac_sha256(secret, digest_hex.as_bytes()))
}

/// A client-style `sig`: standard base64 (with padding) of the HMAC-SHA256
/// of the message JSON serialized without its `sig` key.
pub fn message_signature(key: &[u8], unsigned_json: &[u8]) -> String {
    BASE64.encode(hmac_sha256(key, unsigned_json))
}

/// Verifies a client `sig` against the message bytes it claims to sign, in
/// constant time.
pub fn verify_message_signature(
    key: &[u8],
    unsigned_json: &[u8],
    sig: &str,
) -> Result<(), SignatureError> {
    let tag = BASE64.decode(sig).map_err(SignatureError::Encoding)?;
    if verify_hmac_sha256(key, unsigned_json, &tag) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Checks the `sig` of a client message as it arrived on the wire.
///
/// The signer computed `sig` over its JSON serialization of the message
/// without `sig`, then added `sig`; serializers keep the other members and
/// their spacing, so the signed bytes are the received text with the `sig`
/// member (and one separating comma) cut out. No re-serialization is
/// involved, so the check does not depend on how we would format numbers
/// or order keys.
pub fn verify_signed_json(key: &[u8], raw: &str) -> Result<(), SignatureError> {
    let (unsigned, sig) = unsigned_form(raw)?;
    verify_message_signature(key, unsigned.as_bytes(), &sig)
}

/// The text `raw` had before its top-level `sig` was added, and the `sig`.
pub fn unsigned_form(raw: &str) -> Result<(String, String), SignatureError> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|_| SignatureError::Missing)?;
    let sig = value
        .get("sig")
        .and_then(serde_json::Value::as_str)
        .ok_or(SignatureError::Missing)?
        .to_owned();
    // The member as text: `"sig"`, optional spaces, `:`, spaces, and the
    // value. A base64 value holds no characters JSON would escape.
    let quoted = format!("\"{sig}\"");
    let mut found = None;
    let mut from = 0;
    while let Some(i) = raw[from..].find("\"sig\"") {
        let start = from + i;
        let after_key = skip_ws(raw, start + 5);
        from = start + 5;
        if !raw[after_key..].starts_with(':') {
            continue;
        }
        let value_at = skip_ws(raw, after_key + 1);
        if raw[value_at..].starts_with(&quoted) {
            if found.is_some() {
                return Err(SignatureError::Ambiguous);
            }
            found = Some((start, value_at + quoted.len()));
        }
    }
    let (start, end) = found.ok_or(SignatureError::Missing)?;
    // Cut one separator: the comma before the member, else the one after.
    let before = raw[..start].trim_end();
    let unsigned = if let Some(head) = before.strip_suffix(',') {
        format!("{head}{}", &raw[end..])
    } else {
        let rest = raw[end..].trim_start();
        match rest.strip_prefix(',') {
            Some(tail) => format!("{}{}", &raw[..start], tail.trim_start()),
            None => format!("{}{rest}", &raw[..start]),
        }
    };
    Ok((unsigned, sig))
}

fn skip_ws(s: &str, at: usize) -> usize {
    at + s[at..].len() - s[at..].trim_start().len()
}

/// Lowercase hex of `bytes` (also used for `unpack_event`'s `_raw_hex`).
pub(crate) fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_hex as hex;

    /// RFC 4231 test cases 1, 2, 6 and 7 (short key, "Jefe", and keys longer
    /// than the block size).
    #[test]
    fn rfc4231_vectors() {
        let cases: [(Vec<u8>, &[u8], &str); 4] = [
            (
                vec![0x0b; 20],
                b"Hi There",
                "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7",
            ),
            (
                b"Jefe".to_vec(),
                b"what do ya want for nothing?",
                "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            ),
            (
                vec![0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First",
                "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
            ),
            (
                vec![0xaa; 131],
                b"This is a test using a larger than block-size key and a larger than block-size data. The key needs to be hashed before being used by the HMAC algorithm.",
                "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
            ),
        ];
        for (key, data, expected) in cases {
            assert_eq!(hmac_sha256(&key, data).to_vec(), hex(expected));
            assert!(verify_hmac_sha256(&key, data, &hex(expected)));
        }
    }

    #[test]
    fn sha256_hex_known_answers() {
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    /// Expected value from Python:
    /// `hmac.new(b"secret", sha256(b'{"a":1}').hexdigest().encode(), sha256).hexdigest()`.
    #[test]
    fn sign_message_hashes_then_macs_the_hex_digest() {
        assert_eq!(
            sign_message(r#"{"a":1}"#, b"secret"),
            "2c13798b62219c41b7c6fef258737bd01847771a9010ca4a792c0616ceffd5a2"
        );
    }

    #[test]
    fn unsigned_form_cuts_the_sig_member_wherever_it_is() {
        let key = b"shared-key";
        for unsigned in [r#"{"t":"x","p":{"a":1}}"#, r#"{"t": "x", "p": {"a": 1}}"#] {
            let sig = message_signature(key, unsigned.as_bytes());
            let compact = unsigned.contains("\":\"");
            let sep = if compact { "," } else { ", " };
            let colon = if compact { ":" } else { ": " };
            let last = format!(
                "{}{sep}\"sig\"{colon}\"{sig}\"}}",
                &unsigned[..unsigned.len() - 1]
            );
            let first = format!("{{\"sig\"{colon}\"{sig}\"{sep}{}", &unsigned[1..]);
            for signed in [last, first] {
                assert_eq!(unsigned_form(&signed).unwrap().0, unsigned, "{signed}");
                assert_eq!(verify_signed_json(key, &signed), Ok(()));
                assert_eq!(
                    verify_signed_json(b"other", &signed),
                    Err(SignatureError::Mismatch)
                );
            }
        }
        let only = format!(r#"{{"sig":"{}"}}"#, message_signature(key, b"{}"));
        assert_eq!(verify_signed_json(key, &only), Ok(()));
    }

    #[test]
    fn unsigned_and_ambiguous_messages_are_refused() {
        assert_eq!(
            verify_signed_json(b"k", "not json"),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signed_json(b"k", r#"{"t":"x"}"#),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signed_json(b"k", r#"{"p":{"sig":"QQ=="},"t":"x"}"#),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            unsigned_form(r#"{"p":{"sig":"QQ=="},"sig":"QQ=="}"#),
            Err(SignatureError::Ambiguous)
        );
        // A tampered body fails even with the original sig.
        let sig = message_signature(b"k", br#"{"t":"x"}"#);
        let tampered = format!(r#"{{"t":"y","sig":"{sig}"}}"#);
        assert_eq!(
            verify_signed_json(b"k", &tampered),
            Err(SignatureError::Mismatch)
        );
    }

    /// Expected value from Python:
    /// `b64encode(hmac.new(b"k" * 32, b'{"t":"x"}', sha256).digest())`.
    #[test]
    fn client_sig_round_trip_and_rejections() {
        let key = [b'k'; 32];
        let msg = br#"{"t":"x"}"#;
        let sig = message_signature(&key, msg);
        assert_eq!(sig, "2seYjjk+mCE3Uz06/eHX4YDid7wHEyAF/+KCUy0dWCk=");
        assert_eq!(verify_message_signature(&key, msg, &sig), Ok(()));
        assert_eq!(
            verify_message_signature(&key, br#"{"t":"y"}"#, &sig),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_message_signature(&[0u8; 32], msg, &sig),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify_message_signature(&key, msg, "***"),
            Err(SignatureError::Encoding(_))
        ));
        // A truncated tag is a mismatch, never a partial match.
        let short = BASE64.encode(&hmac_sha256(&key, msg)[..16]);
        assert_eq!(
            verify_message_signature(&key, msg, &short),
            Err(SignatureError::Mismatch)
        );
    }
}
