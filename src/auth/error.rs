//! Errors of the auth module.
//!
//! - [`AuthError`]: why a handshake was refused, mapped 1:1 to what the
//!   client sees (error code, message, close code 4401).
//! - [`TokenError`]: why a token failed validation; detail for logs and
//!   metrics only — clients always see the generic `Authentication failed`.
//! - [`ConfigError`]: a JWT configuration that cannot be used; the texts are
//!   the `ValueError` messages of the Python constructor.
//! - [`EncodeError`]: failure of the `rust_jwt_encode` helper.

use std::time::SystemTime;

use crate::protocol;

/// Why the handshake refused a connection (CLIENT_PROTOCOL.md §2.3).
///
/// The connection gets one text frame ([`AuthError::frame`]) and then a
/// Close frame with [`AuthError::CLOSE_CODE`] and
/// [`AuthError::CLOSE_REASON`], whatever the variant.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No cookie and no bearer header carried a token.
    #[error("No JWT cookie or Authorization header")]
    MissingToken,
    /// The token failed validation (the detail is not sent to the client).
    #[error("Authentication failed: {0}")]
    InvalidToken(#[from] TokenError),
    /// The token is valid but `sub` is missing, not a string, or empty.
    #[error("Token missing user ID")]
    MissingUserId,
}

impl AuthError {
    /// WebSocket close code sent after the error frame.
    pub const CLOSE_CODE: u16 = 4401;
    /// WebSocket close reason sent after the error frame.
    pub const CLOSE_REASON: &'static str = "Authentication failed";

    /// `p.code` of the error frame: `AUTH_REQUIRED` or `AUTH_FAILED`.
    #[must_use]
    pub const fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "AUTH_REQUIRED",
            Self::InvalidToken(_) | Self::MissingUserId => "AUTH_FAILED",
        }
    }

    /// `p.message` of the error frame (never the validation detail).
    #[must_use]
    pub const fn message(&self) -> &'static str {
        match self {
            Self::MissingToken => "No JWT cookie or Authorization header",
            Self::InvalidToken(_) => "Authentication failed",
            Self::MissingUserId => "Token missing user ID",
        }
    }

    /// The close code for this error (always [`Self::CLOSE_CODE`]).
    #[must_use]
    pub const fn close_code(&self) -> u16 {
        Self::CLOSE_CODE
    }

    /// The exact error frame to send before closing.
    #[must_use]
    pub fn frame(&self, now: SystemTime) -> String {
        protocol::auth_error(self.code(), self.message(), now)
    }
}

/// Why a token did not validate.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Longer than [`super::MAX_TOKEN_LEN`] bytes.
    #[error("token exceeds the maximum size")]
    TooLarge,
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// The header has a `crit` parameter: it names extensions the
    /// recipient must understand, and this server understands none (RFC
    /// 7515 §4.1.11 says reject).
    #[error("token header has critical extensions (crit) this server does not support")]
    CriticalExtension,
    /// The header names an algorithm other than the configured one
    /// (including `none`).
    #[error("token algorithm is not the configured one")]
    WrongAlgorithm,
    /// A key id is configured and the header's `kid` is absent or different.
    #[error("invalid or mismatched key ID (kid)")]
    KeyIdMismatch,
    /// The signature does not verify with the key(s).
    #[error("invalid signature")]
    InvalidSignature,
    /// `exp` is more than the leeway in the past.
    #[error("token expired")]
    Expired,
    /// `nbf` is more than the leeway in the future.
    #[error("token not yet valid (nbf)")]
    NotYetValid,
    /// `iss` does not match the configured issuer.
    #[error("invalid issuer")]
    InvalidIssuer,
    /// `aud` (string or array) does not contain the configured audience.
    #[error("invalid audience")]
    InvalidAudience,
    /// A required claim is missing or has the wrong type (`exp`, `nbf`).
    #[error("invalid claims: {0}")]
    InvalidClaims(String),
    /// The verification key cannot be used.
    #[error("invalid key: {0}")]
    InvalidKey(String),
}

impl TokenError {
    /// Whether the previous (rotation) key should be tried after this error.
    #[must_use]
    pub(crate) const fn allows_previous_key(&self) -> bool {
        matches!(self, Self::InvalidSignature | Self::KeyIdMismatch)
    }
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::InvalidToken
            | ErrorKind::Base64(_)
            | ErrorKind::Utf8(_)
            | ErrorKind::Json(_) => Self::Malformed,
            ErrorKind::InvalidSignature => Self::InvalidSignature,
            ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidAlgorithmName
            | ErrorKind::MissingAlgorithm
            | ErrorKind::UnsupportedAlgorithm => Self::WrongAlgorithm,
            ErrorKind::ExpiredSignature => Self::Expired,
            ErrorKind::ImmatureSignature => Self::NotYetValid,
            ErrorKind::InvalidIssuer => Self::InvalidIssuer,
            ErrorKind::InvalidAudience => Self::InvalidAudience,
            ErrorKind::MissingRequiredClaim(_)
            | ErrorKind::InvalidClaimFormat(_)
            | ErrorKind::InvalidSubject => Self::InvalidClaims(e.to_string()),
            _ => Self::InvalidKey(e.to_string()),
        }
    }
}

/// A JWT configuration the server cannot start with. The messages are
/// those of upstream's `ValueError`s (PYTHON_API.md §2.1).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// `jwt_algorithm` is not HS256, RS256 or ES256.
    #[error("Unsupported jwt_algorithm: {0}. Supported: HS256, RS256, ES256")]
    UnsupportedAlgorithm(String),
    /// HS256 `jwt_secret` shorter than 32 bytes.
    #[error("jwt_secret must be at least 32 bytes (RFC 7518 HS256 minimum)")]
    SecretTooShort,
    /// HS256 `jwt_previous_secret` shorter than 32 bytes.
    #[error("jwt_previous_secret must be at least 32 bytes")]
    PreviousSecretTooShort,
    /// RS256/ES256 `jwt_secret` is not a usable PEM public key.
    #[error("Invalid {algorithm} public key PEM: {detail}")]
    InvalidPublicKey {
        /// The configured algorithm.
        algorithm: &'static str,
        /// What the PEM parser said.
        detail: String,
    },
    /// RS256/ES256 `jwt_previous_secret` is not a usable PEM public key.
    #[error("Invalid {algorithm} jwt_previous_secret PEM: {detail}")]
    InvalidPreviousKey {
        /// The configured algorithm.
        algorithm: &'static str,
        /// What the PEM parser said.
        detail: String,
    },
    /// RS256/ES256 `jwt_private_key` is not a usable PEM private key.
    #[error("Invalid {algorithm} jwt_private_key PEM: {detail}")]
    InvalidPrivateKey {
        /// The configured algorithm.
        algorithm: &'static str,
        /// What the PEM parser said.
        detail: String,
    },
}

/// Failure of [`super::encode`]. The texts are those of
/// `rust_jwt_encode` (PYTHON_API.md §3.1): the first variant is a Python
/// `ValueError`, the second a `RuntimeError`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// The algorithm name is not HS256, RS256 or ES256.
    #[error("Unsupported algorithm: {0}. Supported: HS256, RS256, ES256")]
    UnsupportedAlgorithm(String),
    /// Short HS256 key, bad PEM private key, or a signing failure.
    #[error("JWT encode error: {0}")]
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn wire_mapping() {
        let cases = [
            (
                AuthError::MissingToken,
                "AUTH_REQUIRED",
                "No JWT cookie or Authorization header",
            ),
            (
                AuthError::InvalidToken(TokenError::Expired),
                "AUTH_FAILED",
                "Authentication failed",
            ),
            (
                AuthError::MissingUserId,
                "AUTH_FAILED",
                "Token missing user ID",
            ),
        ];
        for (err, code, message) in cases {
            assert_eq!(err.code(), code);
            assert_eq!(err.message(), message);
            assert_eq!(err.close_code(), 4401);
        }
        assert_eq!(AuthError::CLOSE_REASON, "Authentication failed");
        // The log text carries the detail; the wire message does not.
        let err = AuthError::from(TokenError::KeyIdMismatch);
        assert!(err.to_string().contains("kid"));
        assert!(!err.message().contains("kid"));
    }

    #[test]
    fn frame_is_the_protocol_frame() {
        let now = UNIX_EPOCH + Duration::from_millis(1_795_756_218_348);
        assert_eq!(
            AuthError::MissingUserId.frame(now),
            r#"{"c":"WSE","p":{"code":"AUTH_FAILED","message":"Token missing user ID","timestamp":"2026-11-27T05:10:18.348Z"},"t":"error","v":1}"#
        );
    }

    #[test]
    fn only_signature_and_kid_failures_retry() {
        assert!(TokenError::InvalidSignature.allows_previous_key());
        assert!(TokenError::KeyIdMismatch.allows_previous_key());
        for e in [
            TokenError::Expired,
            TokenError::Malformed,
            TokenError::WrongAlgorithm,
            TokenError::TooLarge,
            TokenError::InvalidAudience,
        ] {
            assert!(!e.allows_previous_key(), "{e}");
        }
    }

    #[test]
    fn config_messages() {
        assert_eq!(
            ConfigError::UnsupportedAlgorithm("HS512".into()).to_string(),
            "Unsupported jwt_algorithm: HS512. Supported: HS256, RS256, ES256"
        );
        assert_eq!(
            ConfigError::InvalidPublicKey {
                algorithm: "RS256",
                detail: "x".into()
            }
            .to_string(),
            "Invalid RS256 public key PEM: x"
        );
        assert_eq!(
            EncodeError::Failed("boom".into()).to_string(),
            "JWT encode error: boom"
        );
    }
}
