//! The JWT signing algorithms the server accepts.
//!
//! Exactly one algorithm is configured per server (HS256 by default). It is
//! never taken from the token: a token whose header names another algorithm
//! (including `none`, or HS256 presented to an RS256 server — the classic
//! "algorithm confusion" attack) is rejected before any key is used.

use std::fmt;
use std::str::FromStr;

/// A supported JWT algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with a shared secret of at least 32 bytes (the default).
    HS256,
    /// RSASSA-PKCS1-v1_5 SHA-256; verified with a PEM public key.
    RS256,
    /// ECDSA P-256 SHA-256; verified with a PEM public key.
    ES256,
}

/// The name given is not `HS256`, `RS256` or `ES256`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("Unsupported algorithm: {0}. Supported: HS256, RS256, ES256")]
pub struct UnsupportedAlgorithm(pub String);

impl JwtAlgorithm {
    /// The name used in configuration and in the JWT header.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::HS256 => "HS256",
            Self::RS256 => "RS256",
            Self::ES256 => "ES256",
        }
    }

    /// The matching `jsonwebtoken` algorithm.
    #[must_use]
    pub(crate) const fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Self::HS256 => jsonwebtoken::Algorithm::HS256,
            Self::RS256 => jsonwebtoken::Algorithm::RS256,
            Self::ES256 => jsonwebtoken::Algorithm::ES256,
        }
    }
}

impl FromStr for JwtAlgorithm {
    type Err = UnsupportedAlgorithm;

    /// Parse an exact (case-sensitive) algorithm name.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "HS256" => Ok(Self::HS256),
            "RS256" => Ok(Self::RS256),
            "ES256" => Ok(Self::ES256),
            other => Err(UnsupportedAlgorithm(other.to_owned())),
        }
    }
}

impl fmt::Display for JwtAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exact_names_only() {
        for alg in [
            JwtAlgorithm::HS256,
            JwtAlgorithm::RS256,
            JwtAlgorithm::ES256,
        ] {
            assert_eq!(alg.as_str().parse::<JwtAlgorithm>(), Ok(alg));
            assert_eq!(alg.to_string(), alg.as_str());
        }
        for bad in ["hs256", "none", "HS512", "", "PS256"] {
            assert_eq!(
                bad.parse::<JwtAlgorithm>(),
                Err(UnsupportedAlgorithm(bad.to_owned()))
            );
        }
        assert_eq!(
            UnsupportedAlgorithm("HS512".into()).to_string(),
            "Unsupported algorithm: HS512. Supported: HS256, RS256, ES256"
        );
    }
}
