//! Token validation rules shared by the handshake ([`super::JwtConfig`])
//! and the `rust_jwt_decode` helper ([`super::decode`])
//! (CLIENT_PROTOCOL.md §2.2):
//!
//! 1. tokens longer than [`MAX_TOKEN_LEN`] bytes are refused unread;
//! 2. if a key id is configured, the header `kid` must equal it — checked
//!    from the header alone, before any signature work;
//! 3. the header algorithm must be the configured one; the signature must
//!    verify with the primary key;
//! 4. `exp` is required and, like `nbf` when present, gets
//!    [`LEEWAY_SECS`] of clock-skew leeway; `iss` and `aud` (string or
//!    array) are checked only when configured;
//! 5. when step 2 or 3 fails on the key id or the signature and a previous
//!    key is configured, steps 1-4 run once more with the previous key and
//!    no `kid` requirement (a token signed before a rotation carries the
//!    old key's id, or none).

use jsonwebtoken::{DecodingKey, Validation};
use serde_json::{Map, Value};

use super::algorithm::JwtAlgorithm;
use super::error::TokenError;

/// Largest token accepted, in bytes (bounds the work an anonymous client
/// can cause before authentication).
pub const MAX_TOKEN_LEN: usize = 8192;

/// Clock-skew leeway applied to `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 30;

/// Minimum HS256 secret length in bytes (RFC 7518 §3.2: a key of at least
/// the hash size).
pub const MIN_HS256_KEY_LEN: usize = 32;

/// Claims of a validated token.
pub type Claims = Map<String, Value>;

/// The `jsonwebtoken` validation settings for the rules above. Empty
/// `issuer`/`audience` strings are checked as given; callers that treat
/// "" as "not configured" pass `None`.
pub(crate) fn validation(
    algorithm: JwtAlgorithm,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Validation {
    let mut v = Validation::new(algorithm.to_jsonwebtoken());
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    // A configured issuer or audience is required, not only checked when
    // present: upstream let a token that omits the claim through, so a
    // token minted for another service with the same key was accepted.
    let mut required = vec!["exp"];
    if let Some(iss) = issuer {
        v.set_issuer(&[iss]);
        required.push("iss");
    }
    match audience {
        Some(aud) => {
            v.set_audience(&[aud]);
            required.push("aud");
        }
        // Without a configured audience, a token's `aud` is not checked.
        None => v.validate_aud = false,
    }
    v.set_required_spec_claims(&required);
    v
}

/// Build the verification key for `algorithm` from raw configuration
/// bytes: an HS256 secret (≥ [`MIN_HS256_KEY_LEN`] bytes) or a PEM public key.
pub(crate) fn decoding_key(algorithm: JwtAlgorithm, key: &[u8]) -> Result<DecodingKey, TokenError> {
    let built = match algorithm {
        JwtAlgorithm::HS256 => {
            if key.len() < MIN_HS256_KEY_LEN {
                return Err(TokenError::InvalidKey(
                    "Secret key too short (minimum 32 bytes for HS256)".to_owned(),
                ));
            }
            Ok(DecodingKey::from_secret(key))
        }
        JwtAlgorithm::RS256 => DecodingKey::from_rsa_pem(key),
        JwtAlgorithm::ES256 => DecodingKey::from_ec_pem(key),
    };
    built.map_err(|e| TokenError::InvalidKey(e.to_string()))
}

/// A verification key, either prepared once (server configuration) or
/// still raw (the one-shot decode helper, which only builds a key if the
/// checks before it pass — exactly like upstream).
#[derive(Clone, Copy)]
pub(crate) enum Key<'a> {
    /// Ready to use.
    Built(&'a DecodingKey),
    /// Raw bytes to turn into a key with [`decoding_key`].
    Raw(&'a [u8]),
}

/// What one verification run needs.
#[derive(Clone, Copy)]
pub(crate) struct Rules<'a> {
    /// The only algorithm accepted.
    pub algorithm: JwtAlgorithm,
    /// exp/nbf/iss/aud settings from [`validation`].
    pub validation: &'a Validation,
    /// Required header `kid` on the primary-key attempt.
    pub key_id: Option<&'a str>,
}

/// Validate `token` with the primary key and, on a key id or signature
/// failure, once with `previous` (see the module docs).
pub(crate) fn verify(
    token: &str,
    rules: Rules<'_>,
    primary: Key<'_>,
    previous: Option<Key<'_>>,
) -> Result<Claims, TokenError> {
    match verify_once(token, rules, primary, rules.key_id) {
        Err(e) if e.allows_previous_key() => match previous {
            Some(previous) => verify_once(token, rules, previous, None),
            None => Err(e),
        },
        other => other,
    }
}

/// Does the token's header carry `crit`? (`jsonwebtoken` ignores header
/// parameters it does not know, so this one is read here.)
fn has_critical_extensions(token: &str) -> Result<bool, TokenError> {
    use base64::Engine as _;
    let header = token.split('.').next().unwrap_or_default();
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| TokenError::Malformed)?;
    let value: serde_json::Value =
        serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)?;
    Ok(value.get("crit").is_some())
}

fn verify_once(
    token: &str,
    rules: Rules<'_>,
    key: Key<'_>,
    expected_kid: Option<&str>,
) -> Result<Claims, TokenError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::TooLarge);
    }
    if has_critical_extensions(token)? {
        return Err(TokenError::CriticalExtension);
    }
    if let Some(expected) = expected_kid {
        let header = jsonwebtoken::decode_header(token)?;
        if header.kid.as_deref() != Some(expected) {
            return Err(TokenError::KeyIdMismatch);
        }
    }
    let data = match key {
        Key::Built(key) => jsonwebtoken::decode::<Claims>(token, key, rules.validation)?,
        Key::Raw(bytes) => {
            let key = decoding_key(rules.algorithm, bytes)?;
            jsonwebtoken::decode::<Claims>(token, &key, rules.validation)?
        }
    };
    Ok(data.claims)
}
