//! The Rust side of the Python helpers `rust_jwt_encode` and
//! `rust_jwt_decode` (PYTHON_API.md §3.1), which apps use in their HTTP
//! routes to mint and check the same tokens the WebSocket handshake
//! accepts.
//!
//! `decode` applies exactly the handshake rules of [`super::verify`] except
//! the `sub` requirement, and reports every failure — including an unknown
//! algorithm name — as `None`, as upstream does. `encode` signs the claims
//! as given (it adds nothing, not even `exp`).

use jsonwebtoken::{EncodingKey, Header};
use serde_json::Value;

use super::algorithm::JwtAlgorithm;
use super::error::EncodeError;
use super::verify::{self, Claims, Key, MIN_HS256_KEY_LEN, Rules};

/// Sign `claims` with `algorithm` (`"HS256"`, `"RS256"` or `"ES256"`).
///
/// `key` is the HS256 secret (≥ 32 bytes) or a PEM private key (PKCS#8,
/// PKCS#1 for RSA, SEC1 for ES256). The header carries `kid` when `key_id` is given.
///
/// # Errors
/// [`EncodeError::UnsupportedAlgorithm`] for an unknown name (a Python
/// `ValueError`); [`EncodeError::Failed`] for a short secret, an unusable
/// PEM or a signing failure (a `RuntimeError`).
pub fn encode(
    claims: &Value,
    key: &[u8],
    algorithm: &str,
    key_id: Option<&str>,
) -> Result<String, EncodeError> {
    let algorithm: JwtAlgorithm = algorithm
        .parse()
        .map_err(|_| EncodeError::UnsupportedAlgorithm(algorithm.to_owned()))?;
    let encoding_key = match algorithm {
        JwtAlgorithm::HS256 => {
            if key.len() < MIN_HS256_KEY_LEN {
                return Err(EncodeError::Failed(
                    "Secret key too short (minimum 32 bytes for HS256)".to_owned(),
                ));
            }
            Ok(EncodingKey::from_secret(key))
        }
        JwtAlgorithm::RS256 => EncodingKey::from_rsa_pem(key).map_err(|e| e.to_string()),
        JwtAlgorithm::ES256 => super::pem::ec_private_key(key),
    }
    .map_err(|e| EncodeError::Failed(format!("Invalid key: {e}")))?;
    let mut header = Header::new(algorithm.to_jsonwebtoken());
    header.kid = key_id.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding_key)
        .map_err(|e| EncodeError::Failed(e.to_string()))
}

/// Validate `token` like the handshake does, without requiring `sub`, and
/// return its claims; `None` on any failure (bad algorithm name, unusable
/// key, invalid token).
///
/// `issuer`/`audience` are checked when given; `previous_key` is tried once
/// after a signature or `kid` failure; `key_id` is the required header `kid`
/// (not required on the previous-key attempt).
#[must_use]
pub fn decode(
    token: &str,
    key: &[u8],
    algorithm: &str,
    issuer: Option<&str>,
    audience: Option<&str>,
    previous_key: Option<&[u8]>,
    key_id: Option<&str>,
) -> Option<Claims> {
    let algorithm: JwtAlgorithm = algorithm.parse().ok()?;
    let validation = verify::validation(algorithm, issuer, audience);
    let rules = Rules {
        algorithm,
        validation: &validation,
        key_id,
    };
    verify::verify(token, rules, Key::Raw(key), previous_key.map(Key::Raw)).ok()
}
