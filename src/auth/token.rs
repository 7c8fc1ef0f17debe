//! Where the handshake finds the JWT (CLIENT_PROTOCOL.md §2.1).
//!
//! In order: the cookie named `jwt_cookie_name` (default `access_token`),
//! then an `Authorization: Bearer <token>` header. There is no query-string
//! token. Browsers (the TS client) rely on the cookie; the Python client
//! sends both.

/// Cookie name used when `jwt_cookie_name` is not configured.
pub const DEFAULT_COOKIE_NAME: &str = "access_token";

/// The first usable value of cookie `name` in a raw `Cookie` header.
///
/// The header is split on `;`, each piece trimmed and matched against the
/// prefix `name=`; the value is trimmed. Empty values and the literal
/// strings `undefined` and `null` (what front-end code writes when a token
/// is missing) are skipped, and the search goes on.
#[must_use]
pub fn cookie_token<'a>(cookie_header: &'a str, name: &str) -> Option<&'a str> {
    cookie_header
        .split(';')
        .filter_map(|piece| piece.trim().strip_prefix(name)?.strip_prefix('='))
        .map(str::trim)
        .find(|value| !value.is_empty() && *value != "undefined" && *value != "null")
}

/// The token of an `Authorization` header whose first 7 characters are
/// `bearer ` in any letter case; everything after them, untrimmed.
///
/// `Bearer ` with nothing after it yields `Some("")`, which then fails
/// validation (`AUTH_FAILED`) rather than counting as "no token".
#[must_use]
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let scheme = authorization.as_bytes().get(..7)?;
    if scheme.eq_ignore_ascii_case(b"bearer ") {
        // The first 7 bytes are ASCII, so byte 7 is a character boundary.
        authorization.get(7..)
    } else {
        None
    }
}

/// The handshake token: the cookie first, then the bearer header.
///
/// `None` means "no token at all" (`AUTH_REQUIRED`).
#[must_use]
pub fn extract_token<'a>(
    cookie_header: Option<&'a str>,
    authorization: Option<&'a str>,
    cookie_name: &str,
) -> Option<&'a str> {
    cookie_header
        .and_then(|c| cookie_token(c, cookie_name))
        .or_else(|| authorization.and_then(bearer_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_named_cookie() {
        let h = "theme=dark; access_token=abc.def.ghi; other=1";
        assert_eq!(cookie_token(h, "access_token"), Some("abc.def.ghi"));
        assert_eq!(cookie_token(h, "theme"), Some("dark"));
        assert_eq!(cookie_token(h, "missing"), None);
        assert_eq!(
            cookie_token("access_token=  tok  ", "access_token"),
            Some("tok")
        );
        assert_eq!(cookie_token(";;access_token=x;", "access_token"), Some("x"));
    }

    #[test]
    fn skips_unusable_values() {
        let h = "access_token=; access_token=undefined; access_token=null; access_token=real";
        assert_eq!(cookie_token(h, "access_token"), Some("real"));
        for h in [
            "access_token=",
            "access_token=undefined",
            "access_token=null",
            "access_token = x",
            "xaccess_token=x",
            "access_tokenx=y",
            "access_token",
            "",
            ";;;",
            "=;=x",
        ] {
            assert_eq!(cookie_token(h, "access_token"), None, "{h:?}");
        }
        // Values keep inner '=' (base64 padding) and are otherwise verbatim.
        assert_eq!(cookie_token("t=a=b==", "t"), Some("a=b=="));
        assert_eq!(cookie_token("t=NULL", "t"), Some("NULL"));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bEaReR abc"), Some("abc"));
        assert_eq!(bearer_token("Bearer  abc"), Some(" abc"));
        assert_eq!(bearer_token("Bearer "), Some(""));
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer\tabc"), None);
        assert_eq!(bearer_token("Beaérer x"), None);
        assert_eq!(bearer_token(""), None);
    }

    #[test]
    fn cookie_wins_over_header() {
        let name = DEFAULT_COOKIE_NAME;
        assert_eq!(
            extract_token(Some("access_token=c"), Some("Bearer h"), name),
            Some("c")
        );
        assert_eq!(
            extract_token(Some("access_token=null"), Some("Bearer h"), name),
            Some("h")
        );
        assert_eq!(extract_token(None, Some("bearer h"), name), Some("h"));
        assert_eq!(extract_token(Some("x=1"), Some("Token h"), name), None);
        assert_eq!(extract_token(None, None, name), None);
        assert_eq!(extract_token(Some("jwt=j"), None, "jwt"), Some("j"));
    }
}
