//! `wse token`: mint a JWT that a `wse serve` with the same key accepts,
//! so the auth examples of docs/OPERATIONS.md can be pasted and tests need
//! no JWT library of their own.
//!
//! The claims are the ones the server reads (`wse::auth`): `sub` (the
//! user id), `exp` (always set: the server requires it), the topic ACL
//! claim [`wse::auth::TOPIC_ACL_CLAIM`] from `--allow`/`--deny`, and `iss`,
//! `aud` and the header `kid` when the server checks them. Signing is
//! `wse::auth::encode`, the helper Python apps use (`rust_jwt_encode`), so
//! what it accepts (key formats, the 32-byte HS256 minimum) is the same.
//! The token alone goes to stdout (`TOKEN=$(wse token ...)`).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use wse::auth::{EncodeError, JwtAlgorithm, TOPIC_ACL_CLAIM};

use crate::Run;
use crate::error::CliError;

/// Arguments of `wse token`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("signing").required(true).args(["secret", "secret_file", "key"])))]
pub(crate) struct TokenArgs {
    /// HS256: the server's `--jwt-secret` (32 bytes or more).
    #[arg(long)]
    secret: Option<String>,
    /// HS256: a file holding the secret, its bytes as they are (as
    /// `--jwt-secret-file` reads it).
    #[arg(long, value_name = "FILE")]
    secret_file: Option<PathBuf>,
    /// ES256 or RS256: the PEM private key whose public key the server was
    /// given (PKCS#8; also SEC1 for ES256, PKCS#1 for RS256).
    #[arg(long, value_name = "PEM")]
    key: Option<PathBuf>,
    /// The algorithm [default: HS256 with a secret, ES256 with --key].
    #[arg(long, value_parser = clap::value_parser!(JwtAlgorithmArg))]
    algorithm: Option<JwtAlgorithmArg>,
    /// The user id (`sub`).
    #[arg(long)]
    sub: String,
    /// A topic (or glob: `chat.*`) the connection may use; repeat for
    /// several. With --allow or --deny the token carries a topic ACL;
    /// without either, every topic is allowed.
    #[arg(long, value_name = "TOPIC")]
    allow: Vec<String>,
    /// A topic (or glob) the connection may not use; repeat for several.
    #[arg(long, value_name = "TOPIC")]
    deny: Vec<String>,
    /// Lifetime from now (`90s`, `15m`, `1h`, `7d`).
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    exp: Duration,
    /// Expiry as an RFC 3339 time instead of --exp (one in the past makes
    /// an expired token, for tests).
    #[arg(long, value_name = "RFC3339", conflicts_with = "exp")]
    expires_at: Option<String>,
    /// `iss`, for a server started with --jwt-issuer.
    #[arg(long)]
    iss: Option<String>,
    /// `aud`, for a server started with --jwt-audience.
    #[arg(long)]
    aud: Option<String>,
    /// Header `kid`, for a server started with --jwt-key-id.
    #[arg(long)]
    kid: Option<String>,
    /// Another claim, `name=value`: the value as JSON if it parses
    /// (`level=3`, `tags=["a"]`), else as a string. Repeat for several.
    #[arg(long, value_name = "NAME=VALUE", value_parser = parse_claim)]
    claim: Vec<(String, Value)>,
}

/// [`JwtAlgorithm`] as a clap value (clap needs `Clone + Send + Sync`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct JwtAlgorithmArg(JwtAlgorithm);

impl std::str::FromStr for JwtAlgorithmArg {
    type Err = wse::auth::UnsupportedAlgorithm;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(Self)
    }
}

/// Why `wse token` could not mint a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The secret or key file could not be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A secret was given for RS256/ES256, or a key for HS256.
    #[error("{algorithm} needs {needs}")]
    WrongKey {
        /// The algorithm.
        algorithm: JwtAlgorithm,
        /// What it needs.
        needs: &'static str,
    },
    /// `--expires-at` is not an RFC 3339 time.
    #[error("--expires-at {value:?} is not an RFC 3339 time (2020-01-01T00:00:00Z): {source}")]
    ExpiresAt {
        /// The value given.
        value: String,
        /// Why.
        #[source]
        source: humantime::TimestampError,
    },
    /// Signing failed: a short secret, an unusable PEM.
    #[error("cannot sign the token: {0}")]
    Sign(#[from] EncodeError),
}

/// `name=value`, the value as JSON when it parses as JSON.
fn parse_claim(s: &str) -> Result<(String, Value), String> {
    let (name, value) = s
        .split_once('=')
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| format!("{s:?} is not name=value"))?;
    let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_owned()));
    Ok((name.to_owned(), value))
}

impl Run for TokenArgs {
    fn run(self) -> Result<u8, CliError> {
        println!("{}", self.mint(SystemTime::now())?);
        Ok(0)
    }
}

impl TokenArgs {
    /// The signed token, as of `now`.
    fn mint(&self, now: SystemTime) -> Result<String, TokenError> {
        let (algorithm, key) = self.signing_key()?;
        let claims = self.claims(now)?;
        Ok(wse::auth::encode(
            &claims,
            &key,
            algorithm.as_str(),
            self.kid.as_deref(),
        )?)
    }

    /// The algorithm and the key bytes it signs with.
    fn signing_key(&self) -> Result<(JwtAlgorithm, Vec<u8>), TokenError> {
        let asymmetric = self.key.is_some();
        let algorithm = self.algorithm.map_or(
            if asymmetric {
                JwtAlgorithm::ES256
            } else {
                JwtAlgorithm::HS256
            },
            |a| a.0,
        );
        if asymmetric != (algorithm != JwtAlgorithm::HS256) {
            let needs = if asymmetric {
                "--secret or --secret-file, not --key"
            } else {
                "--key (a PEM private key), not a secret"
            };
            return Err(TokenError::WrongKey { algorithm, needs });
        }
        let key = match (&self.secret, &self.secret_file, &self.key) {
            (Some(secret), _, _) => secret.as_bytes().to_vec(),
            (None, Some(path), _) | (None, None, Some(path)) => read(path)?,
            // clap's "signing" group requires one of the three.
            (None, None, None) => Vec::new(),
        };
        Ok((algorithm, key))
    }

    /// The claims: `sub`, `iat`, `exp`, the topic ACL, `iss`, `aud`, and
    /// the `--claim`s (which may override any of them).
    fn claims(&self, now: SystemTime) -> Result<Value, TokenError> {
        let expires = match &self.expires_at {
            Some(v) => {
                humantime::parse_rfc3339_weak(v).map_err(|source| TokenError::ExpiresAt {
                    value: v.clone(),
                    source,
                })?
            }
            None => now + self.exp,
        };
        let mut claims = Map::new();
        claims.insert("sub".into(), json!(self.sub));
        claims.insert("iat".into(), json!(unix_seconds(now)));
        claims.insert("exp".into(), json!(unix_seconds(expires)));
        if !self.allow.is_empty() || !self.deny.is_empty() {
            claims.insert(
                TOPIC_ACL_CLAIM.into(),
                json!({"allow": self.allow, "deny": self.deny}),
            );
        }
        if let Some(iss) = &self.iss {
            claims.insert("iss".into(), json!(iss));
        }
        if let Some(aud) = &self.aud {
            claims.insert("aud".into(), json!(aud));
        }
        for (name, value) in &self.claim {
            claims.insert(name.clone(), value.clone());
        }
        Ok(Value::Object(claims))
    }
}

/// Seconds since the Unix epoch (0 before it).
fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A key file's bytes, as they are.
fn read(path: &Path) -> Result<Vec<u8>, TokenError> {
    std::fs::read(path).map_err(|source| TokenError::Read {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
