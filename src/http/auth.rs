//! The admin token: what authorizes writes (and, unless opened, reads) of
//! the HTTP API.

use std::fmt;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;

use super::error::ApiError;

/// The bearer token operators and backends present. Never printed: its
/// `Debug` shows only that it is set.
#[derive(Clone, PartialEq, Eq)]
pub struct AdminToken(String);

impl AdminToken {
    /// A token; `None` for an empty one (an empty token would let an empty
    /// `Authorization: Bearer ` through).
    #[must_use]
    pub fn new(token: &str) -> Option<Self> {
        let token = token.trim();
        (!token.is_empty()).then(|| Self(token.to_owned()))
    }

    /// Does `presented` equal the token? Compared in time that does not
    /// depend on where they differ, so response times do not leak it.
    fn matches(&self, presented: &[u8]) -> bool {
        let want = self.0.as_bytes();
        let mut diff = want.len() ^ presented.len();
        for (i, &w) in want.iter().enumerate() {
            diff |= usize::from(w ^ presented.get(i).copied().unwrap_or(!w));
        }
        diff == 0
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AdminToken(<set>)")
    }
}

/// Does the request carry the admin token? (What exempts it from the
/// rate limit; see `limit`.)
pub(crate) fn is_admin(token: Option<&AdminToken>, headers: &HeaderMap) -> bool {
    require(token, headers).is_ok()
}

/// Let a request through if it carries the admin token.
pub(crate) fn require(token: Option<&AdminToken>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(token) = token else {
        return Err(ApiError::no_admin_token());
    };
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
        .ok_or_else(ApiError::unauthorized)?;
    if token.matches(presented) {
        Ok(())
    } else {
        Err(ApiError::unauthorized())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_token_matches() {
        let t = AdminToken::new(" s3cret ").unwrap();
        assert!(t.matches(b"s3cret"));
        for bad in [&b""[..], b"s3cre", b"s3cret!", b"S3cret", b"s3cres"] {
            assert!(!t.matches(bad), "{bad:?}");
        }
        assert_eq!(AdminToken::new("  "), None);
        assert_eq!(format!("{t:?}"), "AdminToken(<set>)");
    }
}
