//! JWT helpers: tokens signed with `jsonwebtoken` directly (not with the
//! server's own helpers), hand-made `alg=none` tokens, and the key
//! fixtures of `tests/fixtures/jwt/`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wse::ServerConfig;
use wse::auth::{JwtConfig, JwtOptions};

/// The HS256 secret of the tests (≥ 32 bytes).
pub const SECRET: &[u8] = b"integration-test-secret-0123456789abcdef";
/// A second HS256 secret (rotation, wrong-key tests).
pub const OTHER_SECRET: &[u8] = b"another-integration-secret-0123456789abc";

/// A key file of `tests/fixtures/jwt/`.
pub fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// Seconds since the epoch.
pub fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// `{"sub": sub, "exp": now + 1 h}`.
pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "exp": now_secs() + 3600})
}

/// Sign `claims` with `alg` and `key` (HS secret or PEM private key).
pub fn sign(alg: Algorithm, key: &[u8], claims: &Value, kid: Option<&str>) -> String {
    let key = match alg {
        Algorithm::HS256 => EncodingKey::from_secret(key),
        Algorithm::RS256 => EncodingKey::from_rsa_pem(key).expect("RSA PEM"),
        Algorithm::ES256 => EncodingKey::from_ec_pem(key).expect("EC PEM"),
        other => panic!("unsupported in tests: {other:?}"),
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &key).expect("signing")
}

/// An HS256 token for `sub` signed with [`SECRET`].
pub fn hs256(sub: &str) -> String {
    sign(Algorithm::HS256, SECRET, &claims(sub), None)
}

/// An unsigned token: header `{"alg":"none","typ":"JWT"}`, empty signature.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{body}.")
}

/// The default test config with JWT `options`.
pub fn config(options: JwtOptions) -> ServerConfig {
    ServerConfig {
        jwt: Some(Arc::new(JwtConfig::new(options).expect("JWT config"))),
        ..ServerConfig::default()
    }
}

/// HS256 with [`SECRET`], everything else at its default.
pub fn hs256_config() -> ServerConfig {
    config(JwtOptions::new(SECRET))
}

/// `Cookie: access_token=<token>`.
pub fn cookie(token: &str) -> String {
    format!("access_token={token}")
}
