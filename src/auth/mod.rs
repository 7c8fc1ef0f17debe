//! JWT authentication at the WebSocket handshake (CLIENT_PROTOCOL.md §2).
//!
//! Authentication happens only when the server has a `jwt_secret`, and
//! only **after** the upgrade: a refused client still receives one error
//! frame and a Close 4401, never an HTTP error.
//!
//! How the pieces compose:
//!
//! - [`JwtOptions`] are the user's `jwt_*` settings; [`JwtConfig::new`]
//!   checks them once (key lengths, PEM parsing — [`ConfigError`]) and fixes
//!   the algorithm ([`JwtAlgorithm`]), so no token can choose it.
//! - [`token`] finds the token: the `jwt_cookie_name` cookie, then an
//!   `Authorization: Bearer` header.
//! - [`verify`] holds the validation rules shared by the handshake and the
//!   Python helpers: size limit, `kid`, signature with key rotation,
//!   `exp`/`nbf` with leeway, `iss`/`aud`.
//! - [`claims`] reads `sub` (the user id) and `wse_topics` (the topic ACL).
//! - [`JwtConfig::authenticate`] combines all of this into an
//!   [`AuthenticatedUser`] or an [`AuthError`], which knows its wire code,
//!   message and close code.
//! - [`encode`]/[`decode`] are the Rust side of `rust_jwt_encode` and
//!   `rust_jwt_decode`.

pub mod algorithm;
pub mod claims;
pub mod codec;
pub mod config;
pub mod error;
pub mod pem;
pub mod token;
pub mod verify;

#[cfg(test)]
mod tests;

pub use algorithm::{JwtAlgorithm, UnsupportedAlgorithm};
pub use claims::TOPIC_ACL_CLAIM;
pub use codec::{decode, encode};
pub use config::{AuthenticatedUser, JwtConfig, JwtOptions, algorithm_from_config};
pub use error::{AuthError, ConfigError, EncodeError, TokenError};
pub use token::{DEFAULT_COOKIE_NAME, bearer_token, cookie_token, extract_token};
pub use verify::{Claims, LEEWAY_SECS, MAX_TOKEN_LEN, MIN_HS256_KEY_LEN};
