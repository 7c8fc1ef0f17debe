//! The server's JWT configuration, checked and prepared once at startup,
//! and the handshake check built on it.
//!
//! [`JwtConfig::new`] validates the keys the way the Python constructor
//! does (short HS256 secrets and unusable PEMs are configuration errors,
//! not per-connection failures), parses the PEM keys once, and fixes the
//! algorithm: nothing in a token can change which algorithm or key is used.
//! [`JwtConfig::authenticate`] is then the whole §2 handshake decision.

use std::fmt;

use jsonwebtoken::{DecodingKey, EncodingKey, Validation};

use super::algorithm::JwtAlgorithm;
use super::claims;
use super::error::{AuthError, ConfigError, TokenError};
use super::token::{DEFAULT_COOKIE_NAME, extract_token};
use super::verify::{self, Claims, Key, MIN_HS256_KEY_LEN, Rules};
use crate::topics::TopicAcl;

/// The JWT settings of a server, as given by the user (the `jwt_*`
/// constructor parameters). Turned into a [`JwtConfig`] by
/// [`JwtConfig::new`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct JwtOptions {
    /// The one algorithm tokens must use (`jwt_algorithm`, default HS256).
    pub algorithm: Option<JwtAlgorithm>,
    /// `jwt_secret`: the HS256 secret, or the RS256/ES256 PEM public key.
    pub secret: Vec<u8>,
    /// `jwt_previous_secret`: the key being rotated out, same format.
    pub previous_secret: Option<Vec<u8>>,
    /// `jwt_private_key`: validated as a PEM private key for RS256/ES256,
    /// then discarded (the server never signs).
    pub private_key: Option<Vec<u8>>,
    /// `jwt_key_id`: when set, tokens must carry this header `kid`.
    pub key_id: Option<String>,
    /// `jwt_issuer`: required `iss` when set and non-empty.
    pub issuer: Option<String>,
    /// `jwt_audience`: required member of `aud` when set and non-empty.
    pub audience: Option<String>,
    /// `jwt_cookie_name`: cookie holding the token (default `access_token`).
    pub cookie_name: Option<String>,
}

impl JwtOptions {
    /// Options with just a key; everything else at its default.
    #[must_use]
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            secret: secret.into(),
            ..Self::default()
        }
    }
}

impl fmt::Debug for JwtOptions {
    /// Key material is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtOptions")
            .field("algorithm", &self.algorithm)
            .field("has_previous_secret", &self.previous_secret.is_some())
            .field("key_id", &self.key_id)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

/// Parse the `jwt_algorithm` parameter: `None` means HS256.
///
/// Separate from [`JwtConfig::new`] because upstream rejects an unknown
/// name even when no `jwt_secret` is given (and auth stays off).
///
/// # Errors
/// [`ConfigError::UnsupportedAlgorithm`] for any other name.
pub fn algorithm_from_config(name: Option<&str>) -> Result<JwtAlgorithm, ConfigError> {
    name.map_or(Ok(JwtAlgorithm::HS256), |n| {
        n.parse()
            .map_err(|_| ConfigError::UnsupportedAlgorithm(n.to_owned()))
    })
}

/// Who a validated handshake token belongs to.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthenticatedUser {
    /// The `sub` claim: the connection's `user_id`.
    pub user_id: String,
    /// The `wse_topics` claim, if the token has one.
    pub topic_acl: Option<TopicAcl>,
    /// The `exp` claim: when the token expires, in seconds since the Unix
    /// epoch (`close_on_token_expiry` closes the connection then).
    pub expires_at: Option<u64>,
    /// All claims of the token.
    pub claims: Claims,
}

/// A usable JWT configuration: keys parsed, rules fixed.
pub struct JwtConfig {
    /// The only algorithm accepted.
    algorithm: JwtAlgorithm,
    /// Verification key (`jwt_secret`).
    key: DecodingKey,
    /// Rotation key (`jwt_previous_secret`), tried once after a signature
    /// or `kid` failure.
    previous_key: Option<DecodingKey>,
    /// Required header `kid` for the primary key.
    key_id: Option<String>,
    /// exp/nbf leeway, iss and aud settings.
    validation: Validation,
    /// Cookie that carries the token.
    cookie_name: String,
}

impl JwtConfig {
    /// Validate `options` and prepare the keys.
    ///
    /// # Errors
    /// HS256 secrets shorter than 32 bytes, PEM keys that do not parse for
    /// the configured algorithm (public, previous or private), with the
    /// messages of PYTHON_API.md §2.1.
    pub fn new(options: JwtOptions) -> Result<Self, ConfigError> {
        let algorithm = options.algorithm.unwrap_or(JwtAlgorithm::HS256);
        let alg_name = algorithm.as_str();
        let (key, previous_key) = match algorithm {
            JwtAlgorithm::HS256 => {
                if options.secret.len() < MIN_HS256_KEY_LEN {
                    return Err(ConfigError::SecretTooShort);
                }
                if options
                    .previous_secret
                    .as_ref()
                    .is_some_and(|p| p.len() < MIN_HS256_KEY_LEN)
                {
                    return Err(ConfigError::PreviousSecretTooShort);
                }
                (
                    DecodingKey::from_secret(&options.secret),
                    options
                        .previous_secret
                        .as_deref()
                        .map(DecodingKey::from_secret),
                )
            }
            JwtAlgorithm::RS256 | JwtAlgorithm::ES256 => {
                let key = pem_public_key(algorithm, &options.secret).map_err(|detail| {
                    ConfigError::InvalidPublicKey {
                        algorithm: alg_name,
                        detail,
                    }
                })?;
                let previous = options
                    .previous_secret
                    .as_deref()
                    .map(|p| pem_public_key(algorithm, p))
                    .transpose()
                    .map_err(|detail| ConfigError::InvalidPreviousKey {
                        algorithm: alg_name,
                        detail,
                    })?;
                if let Some(private) = options.private_key.as_deref() {
                    check_pem_private_key(algorithm, private).map_err(|detail| {
                        ConfigError::InvalidPrivateKey {
                            algorithm: alg_name,
                            detail,
                        }
                    })?;
                }
                (key, previous)
            }
        };
        let non_empty =
            |s: &Option<String>| s.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
        let issuer = non_empty(&options.issuer);
        let audience = non_empty(&options.audience);
        Ok(Self {
            algorithm,
            key,
            previous_key,
            key_id: options.key_id,
            validation: verify::validation(algorithm, issuer.as_deref(), audience.as_deref()),
            cookie_name: options
                .cookie_name
                .unwrap_or_else(|| DEFAULT_COOKIE_NAME.to_owned()),
        })
    }

    /// The configured algorithm.
    #[must_use]
    pub fn algorithm(&self) -> JwtAlgorithm {
        self.algorithm
    }

    /// The cookie the handshake reads the token from.
    #[must_use]
    pub fn cookie_name(&self) -> &str {
        &self.cookie_name
    }

    /// The required header `kid`, if any.
    #[must_use]
    pub fn key_id(&self) -> Option<&str> {
        self.key_id.as_deref()
    }

    /// Validate a token (size, `kid`, algorithm, signature with key
    /// rotation, `exp`/`nbf`/`iss`/`aud`) and return its claims. Does not
    /// look at `sub`.
    ///
    /// # Errors
    /// The first rule the token breaks, as a [`TokenError`].
    pub fn validate(&self, token: &str) -> Result<Claims, TokenError> {
        let rules = Rules {
            algorithm: self.algorithm,
            validation: &self.validation,
            key_id: self.key_id.as_deref(),
        };
        verify::verify(
            token,
            rules,
            Key::Built(&self.key),
            self.previous_key.as_ref().map(Key::Built),
        )
    }

    /// The handshake decision for a token that was found: valid, with a
    /// non-empty string `sub`.
    ///
    /// # Errors
    /// [`AuthError::InvalidToken`] or [`AuthError::MissingUserId`].
    pub fn authenticate_token(&self, token: &str) -> Result<AuthenticatedUser, AuthError> {
        let claims = self.validate(token)?;
        let user_id = claims::user_id(&claims)
            .ok_or(AuthError::MissingUserId)?
            .to_owned();
        Ok(AuthenticatedUser {
            user_id,
            topic_acl: claims::topic_acl(&claims),
            expires_at: claims
                .get("exp")
                .and_then(serde_json::Value::as_f64)
                .map(|e| e.max(0.0) as u64),
            claims,
        })
    }

    /// The whole handshake decision from the raw `Cookie` and
    /// `Authorization` header values (CLIENT_PROTOCOL.md §2).
    ///
    /// # Errors
    /// [`AuthError::MissingToken`] when neither header yields a token, else
    /// as [`Self::authenticate_token`].
    pub fn authenticate(
        &self,
        cookie_header: Option<&str>,
        authorization: Option<&str>,
    ) -> Result<AuthenticatedUser, AuthError> {
        let token = extract_token(cookie_header, authorization, &self.cookie_name)
            .ok_or(AuthError::MissingToken)?;
        self.authenticate_token(token)
    }
}

impl fmt::Debug for JwtConfig {
    /// Key material is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtConfig")
            .field("algorithm", &self.algorithm)
            .field("has_previous_key", &self.previous_key.is_some())
            .field("key_id", &self.key_id)
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .field("cookie_name", &self.cookie_name)
            .finish_non_exhaustive()
    }
}

/// Parse a PEM public key for an asymmetric algorithm.
fn pem_public_key(algorithm: JwtAlgorithm, pem: &[u8]) -> Result<DecodingKey, String> {
    let parsed = match algorithm {
        JwtAlgorithm::ES256 => DecodingKey::from_ec_pem(pem),
        _ => DecodingKey::from_rsa_pem(pem),
    };
    parsed.map_err(|e| e.to_string())
}

/// Check that a PEM private key parses for an asymmetric algorithm.
fn check_pem_private_key(algorithm: JwtAlgorithm, pem: &[u8]) -> Result<(), String> {
    match algorithm {
        JwtAlgorithm::ES256 => super::pem::ec_private_key(pem).map(drop),
        _ => EncodingKey::from_rsa_pem(pem)
            .map(drop)
            .map_err(|e| e.to_string()),
    }
}
