//! Loading EC private keys for ES256 signing.
//!
//! `jsonwebtoken` reads EC private keys only as PKCS#8 (`BEGIN PRIVATE
//! KEY`), but `openssl ecparam -genkey` and many key stores write SEC1
//! (`BEGIN EC PRIVATE KEY`). Rather than make operators convert keys, a
//! SEC1 P-256 key is re-encoded as PKCS#8 here, once, when it is loaded.

use jsonwebtoken::EncodingKey;
use p256::pkcs8::EncodePrivateKey;

/// PEM label of a SEC1 EC private key.
const SEC1_LABEL: &str = "-----BEGIN EC PRIVATE KEY-----";

/// An ES256 signing key from a PKCS#8 or SEC1 PEM.
///
/// # Errors
/// A readable reason when the PEM is neither a PKCS#8 EC key nor a SEC1
/// P-256 key.
pub fn ec_private_key(pem: &[u8]) -> Result<EncodingKey, String> {
    let is_sec1 = std::str::from_utf8(pem).is_ok_and(|s| s.contains(SEC1_LABEL));
    if !is_sec1 {
        return EncodingKey::from_ec_pem(pem).map_err(|e| e.to_string());
    }
    let text = std::str::from_utf8(pem).map_err(|e| e.to_string())?;
    let key = p256::SecretKey::from_sec1_pem(text)
        .map_err(|e| format!("not a SEC1 P-256 private key: {e}"))?;
    let der = key
        .to_pkcs8_der()
        .map_err(|e| format!("cannot re-encode the SEC1 key as PKCS#8: {e}"))?;
    Ok(EncodingKey::from_ec_der(der.as_bytes()))
}
