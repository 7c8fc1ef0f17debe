//! End-to-end tests of the auth module: real tokens signed with HS256 and
//! with the RSA/EC fixtures in `tests/fixtures/jwt/`, through
//! [`JwtConfig::authenticate`] and the `encode`/`decode` helpers.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

use super::*;

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/jwt/",
            $name
        ))
    };
}

const SECRET: &[u8] = b"current-secret-0123456789abcdef-xyz";
const OLD_SECRET: &[u8] = b"previous-secret-0123456789abcdef-xyz";
const OTHER_SECRET: &[u8] = b"unrelated-secret-0123456789abcdef-xyz";
const RSA_A_PRIVATE: &[u8] = fixture!("rsa_a_private.pem");
const RSA_A_PUBLIC: &[u8] = fixture!("rsa_a_public.pem");
const RSA_B_PRIVATE: &[u8] = fixture!("rsa_b_private.pem");
const RSA_B_PUBLIC: &[u8] = fixture!("rsa_b_public.pem");
const EC_A_PRIVATE: &[u8] = fixture!("ec_a_private.pem");
const EC_A_PUBLIC: &[u8] = fixture!("ec_a_public.pem");
const EC_B_PUBLIC: &[u8] = fixture!("ec_b_public.pem");
const EC_A_PRIVATE_SEC1: &[u8] = fixture!("ec_a_private_sec1.pem");
const EC_P384_PRIVATE_SEC1: &[u8] = fixture!("ec_p384_private_sec1.pem");

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// `{"sub":"alice","exp":now+1h}` with `extra` merged in (`null` removes).
fn claims(extra: Value) -> Value {
    let mut c = json!({"sub": "alice", "exp": now() + 3600});
    if let (Some(map), Value::Object(extra)) = (c.as_object_mut(), extra) {
        for (k, v) in extra {
            if v.is_null() {
                map.remove(&k);
            } else {
                map.insert(k, v);
            }
        }
    }
    c
}

fn sign(alg: &str, key: &[u8], claims: &Value, kid: Option<&str>) -> String {
    encode(claims, key, alg, kid).unwrap_or_else(|e| unreachable!("signing failed: {e}"))
}

fn config(options: JwtOptions) -> JwtConfig {
    JwtConfig::new(options).unwrap_or_else(|e| unreachable!("config rejected: {e}"))
}

fn hs256() -> JwtConfig {
    config(JwtOptions::new(SECRET))
}

fn with_alg(alg: JwtAlgorithm, public: &[u8]) -> JwtOptions {
    JwtOptions {
        algorithm: Some(alg),
        ..JwtOptions::new(public)
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn token_error(cfg: &JwtConfig, token: &str) -> Option<TokenError> {
    match cfg.authenticate_token(token) {
        Err(AuthError::InvalidToken(e)) => Some(e),
        _ => None,
    }
}

#[test]
fn good_tokens_for_each_algorithm() {
    let cases = [
        (hs256(), "HS256", SECRET),
        (
            config(with_alg(JwtAlgorithm::RS256, RSA_A_PUBLIC)),
            "RS256",
            RSA_A_PRIVATE,
        ),
        (
            config(with_alg(JwtAlgorithm::ES256, EC_A_PUBLIC)),
            "ES256",
            EC_A_PRIVATE,
        ),
    ];
    for (cfg, alg, key) in cases {
        let token = sign(alg, key, &claims(json!({"role": "admin"})), None);
        let cookie = format!("theme=dark; access_token={token}");
        let user = cfg
            .authenticate(Some(&cookie), None)
            .unwrap_or_else(|e| unreachable!("{alg}: {e}"));
        assert_eq!(user.user_id, "alice");
        assert_eq!(user.topic_acl, None);
        assert_eq!(user.claims.get("role"), Some(&json!("admin")));
        // The bearer header works as well.
        let via_header = cfg.authenticate(None, Some(&bearer(&token)));
        assert_eq!(via_header.map(|u| u.user_id).ok().as_deref(), Some("alice"));
    }
}

#[test]
fn exp_is_required_and_has_leeway() {
    let cfg = hs256();
    let within = sign("HS256", SECRET, &claims(json!({"exp": now() - 10})), None);
    assert!(cfg.authenticate_token(&within).is_ok());
    let beyond = sign("HS256", SECRET, &claims(json!({"exp": now() - 60})), None);
    assert_eq!(token_error(&cfg, &beyond), Some(TokenError::Expired));
    let missing = sign("HS256", SECRET, &claims(json!({"exp": null})), None);
    assert!(matches!(
        token_error(&cfg, &missing),
        Some(TokenError::InvalidClaims(_))
    ));
    let not_a_number = sign("HS256", SECRET, &claims(json!({"exp": "soon"})), None);
    assert!(matches!(
        token_error(&cfg, &not_a_number),
        Some(TokenError::InvalidClaims(_))
    ));
}

#[test]
fn nbf_is_checked_with_leeway() {
    let cfg = hs256();
    let soon = sign("HS256", SECRET, &claims(json!({"nbf": now() + 10})), None);
    assert!(cfg.authenticate_token(&soon).is_ok());
    let future = sign("HS256", SECRET, &claims(json!({"nbf": now() + 120})), None);
    assert_eq!(token_error(&cfg, &future), Some(TokenError::NotYetValid));
    let past = sign("HS256", SECRET, &claims(json!({"nbf": now() - 120})), None);
    assert!(cfg.authenticate_token(&past).is_ok());
}

#[test]
fn issuer_and_audience() {
    let cfg = config(JwtOptions {
        issuer: Some("wse".into()),
        audience: Some("api".into()),
        ..JwtOptions::new(SECRET)
    });
    let check = |extra: Value| {
        let token = sign("HS256", SECRET, &claims(extra), None);
        cfg.authenticate_token(&token).map(|_| ())
    };
    assert_eq!(check(json!({"iss": "wse", "aud": "api"})), Ok(()));
    assert_eq!(check(json!({"iss": "wse", "aud": ["web", "api"]})), Ok(()));
    assert_eq!(
        check(json!({"iss": "evil", "aud": "api"})),
        Err(AuthError::InvalidToken(TokenError::InvalidIssuer))
    );
    assert_eq!(
        check(json!({"iss": "wse", "aud": "web"})),
        Err(AuthError::InvalidToken(TokenError::InvalidAudience))
    );
    assert_eq!(
        check(json!({"iss": "wse", "aud": ["web", "mobile"]})),
        Err(AuthError::InvalidToken(TokenError::InvalidAudience))
    );
    // Unlike upstream, a configured iss/aud is required, not skipped when
    // the token leaves it out.
    for partial in [json!({}), json!({"iss": "wse"}), json!({"aud": "api"})] {
        assert!(
            matches!(
                check(partial.clone()),
                Err(AuthError::InvalidToken(TokenError::InvalidClaims(_)))
            ),
            "{partial}"
        );
    }

    // Not configured (or configured empty): any iss/aud is fine.
    for (iss, aud) in [(None, None), (Some(String::new()), Some(String::new()))] {
        let open = config(JwtOptions {
            issuer: iss,
            audience: aud,
            ..JwtOptions::new(SECRET)
        });
        let token = sign(
            "HS256",
            SECRET,
            &claims(json!({"iss": "x", "aud": ["y"]})),
            None,
        );
        assert!(open.authenticate_token(&token).is_ok());
    }
}

#[test]
fn key_id_and_previous_key() {
    let rotating = config(JwtOptions {
        key_id: Some("k-new".into()),
        previous_secret: Some(OLD_SECRET.to_vec()),
        ..JwtOptions::new(SECRET)
    });
    let c = claims(json!({}));
    let ok = |t: &str| rotating.authenticate_token(t).is_ok();
    assert!(ok(&sign("HS256", SECRET, &c, Some("k-new"))));
    // Old tokens: any kid (or none), verified by the previous key.
    assert!(ok(&sign("HS256", OLD_SECRET, &c, Some("k-old"))));
    assert!(ok(&sign("HS256", OLD_SECRET, &c, None)));
    // Wrong kid with the current key: the retry uses the old key and fails.
    assert_eq!(
        token_error(&rotating, &sign("HS256", SECRET, &c, Some("k-old"))),
        Some(TokenError::InvalidSignature)
    );
    assert_eq!(
        token_error(&rotating, &sign("HS256", OTHER_SECRET, &c, Some("k-new"))),
        Some(TokenError::InvalidSignature)
    );
    // The previous key does not rescue non-signature failures.
    let expired = claims(json!({"exp": now() - 3600}));
    assert_eq!(
        token_error(&rotating, &sign("HS256", OLD_SECRET, &expired, None)),
        Some(TokenError::Expired)
    );

    // Without a previous key a kid mismatch is final.
    let strict = config(JwtOptions {
        key_id: Some("k-new".into()),
        ..JwtOptions::new(SECRET)
    });
    assert_eq!(
        token_error(&strict, &sign("HS256", SECRET, &c, Some("k-old"))),
        Some(TokenError::KeyIdMismatch)
    );
    assert_eq!(
        token_error(&strict, &sign("HS256", SECRET, &c, None)),
        Some(TokenError::KeyIdMismatch)
    );

    // Rotation works the same with RSA keys.
    let rsa = config(JwtOptions {
        previous_secret: Some(RSA_B_PUBLIC.to_vec()),
        ..with_alg(JwtAlgorithm::RS256, RSA_A_PUBLIC)
    });
    assert!(
        rsa.authenticate_token(&sign("RS256", RSA_B_PRIVATE, &c, None))
            .is_ok()
    );
    assert!(
        rsa.authenticate_token(&sign("RS256", RSA_A_PRIVATE, &c, None))
            .is_ok()
    );
}

/// A token with `"alg":"none"` and no signature.
fn unsigned_token(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

#[test]
fn alg_none_is_rejected() {
    let token = unsigned_token(&claims(json!({})));
    let configs = [
        hs256(),
        config(with_alg(JwtAlgorithm::RS256, RSA_A_PUBLIC)),
        config(with_alg(JwtAlgorithm::ES256, EC_A_PUBLIC)),
        config(JwtOptions {
            key_id: Some("k".into()),
            previous_secret: Some(OLD_SECRET.to_vec()),
            ..JwtOptions::new(SECRET)
        }),
    ];
    for cfg in &configs {
        assert!(matches!(
            cfg.authenticate_token(&token),
            Err(AuthError::InvalidToken(_))
        ));
    }
    assert_eq!(
        decode(&token, SECRET, "HS256", None, None, None, None),
        None
    );
}

#[test]
fn algorithm_confusion_is_rejected() {
    let rs = config(with_alg(JwtAlgorithm::RS256, RSA_A_PUBLIC));
    // The classic attack: HMAC keyed with the server's public key.
    let forged = sign("HS256", RSA_A_PUBLIC, &claims(json!({})), None);
    assert_eq!(token_error(&rs, &forged), Some(TokenError::WrongAlgorithm));
    let es_token = sign("ES256", EC_A_PRIVATE, &claims(json!({})), None);
    assert_eq!(
        token_error(&rs, &es_token),
        Some(TokenError::WrongAlgorithm)
    );
    let rs_token = sign("RS256", RSA_A_PRIVATE, &claims(json!({})), None);
    assert_eq!(
        token_error(&hs256(), &rs_token),
        Some(TokenError::WrongAlgorithm)
    );
    // Also with a previous key configured (the retry path).
    let rotating = config(JwtOptions {
        previous_secret: Some(RSA_B_PUBLIC.to_vec()),
        ..with_alg(JwtAlgorithm::RS256, RSA_A_PUBLIC)
    });
    assert!(rotating.authenticate_token(&forged).is_err());
}

#[test]
fn size_limit() {
    let cfg = hs256();
    let c = claims(json!({}));
    let base_len = sign("HS256", SECRET, &c, None).len();
    // Pad a claim so the token lands exactly on either side of the limit
    // (4 base64 chars per 3 payload bytes; search for the exact padding).
    let token_of_len = |target: usize| {
        (0..target)
            .map(|n| {
                sign(
                    "HS256",
                    SECRET,
                    &claims(json!({"pad": "x".repeat(n)})),
                    None,
                )
            })
            .find(|t| t.len() >= target)
            .unwrap_or_default()
    };
    let at_limit = token_of_len(MAX_TOKEN_LEN - 2);
    assert!(at_limit.len() <= MAX_TOKEN_LEN && at_limit.len() > base_len);
    assert!(cfg.authenticate_token(&at_limit).is_ok());
    let over = token_of_len(MAX_TOKEN_LEN + 1);
    assert!(over.len() > MAX_TOKEN_LEN);
    assert_eq!(token_error(&cfg, &over), Some(TokenError::TooLarge));
    assert_eq!(
        token_error(&cfg, &"a".repeat(100_000)),
        Some(TokenError::TooLarge)
    );
    assert_eq!(decode(&over, SECRET, "HS256", None, None, None, None), None);
}

#[test]
fn subject_is_required_for_the_handshake_only() {
    let cfg = hs256();
    for extra in [json!({"sub": null}), json!({"sub": ""}), json!({"sub": 42})] {
        let token = sign("HS256", SECRET, &claims(extra.clone()), None);
        let err = cfg.authenticate_token(&token).err();
        assert_eq!(err, Some(AuthError::MissingUserId), "{extra}");
        assert_eq!(err.map(|e| e.message()), Some("Token missing user ID"));
        // The decode helper does not require it.
        assert!(decode(&token, SECRET, "HS256", None, None, None, None).is_some());
    }
}

#[test]
fn cookie_and_header_edge_cases() {
    let cfg = hs256();
    let token = sign("HS256", SECRET, &claims(json!({})), None);
    let missing = [
        (None, None),
        (Some("access_token=undefined"), None),
        (Some("access_token=null; access_token="), None),
        (Some(";;; ;"), None),
        (Some("access_token"), Some("Token abc")),
        (Some(""), Some("Bearer")),
    ];
    for (cookie, auth) in missing {
        assert_eq!(
            cfg.authenticate(cookie, auth).err(),
            Some(AuthError::MissingToken),
            "{cookie:?} {auth:?}"
        );
    }
    let failed = [
        (Some("access_token=not-a-jwt"), None),
        (Some("access_token=a.b.c"), None),
        (None, Some("Bearer ")),
        (None, Some("bearer %%%.%%%.%%%")),
    ];
    for (cookie, auth) in failed {
        let err = cfg.authenticate(cookie, auth).err();
        assert_eq!(
            err.as_ref().map(AuthError::code),
            Some("AUTH_FAILED"),
            "{cookie:?}"
        );
    }
    // An unusable cookie value falls through to the header.
    let header = bearer(&token);
    assert!(
        cfg.authenticate(Some("access_token=null"), Some(&header))
            .is_ok()
    );
    // A present but invalid cookie wins over a valid header (upstream order).
    assert!(
        cfg.authenticate(Some("access_token=bad"), Some(&header))
            .is_err()
    );
    // Custom cookie name.
    let custom = config(JwtOptions {
        cookie_name: Some("jwt".into()),
        ..JwtOptions::new(SECRET)
    });
    assert_eq!(custom.cookie_name(), "jwt");
    let cookie = format!("access_token=bad; jwt={token}");
    assert!(custom.authenticate(Some(&cookie), None).is_ok());
}

#[test]
fn tampered_token_fails_signature() {
    let cfg = hs256();
    let token = sign("HS256", SECRET, &claims(json!({})), None);
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    parts[1] = URL_SAFE_NO_PAD.encode(claims(json!({"sub": "mallory"})).to_string());
    let tampered = parts.join(".");
    assert_eq!(
        token_error(&cfg, &tampered),
        Some(TokenError::InvalidSignature)
    );
}

#[test]
fn topic_acl_from_the_token() {
    let cfg = hs256();
    let token = sign(
        "HS256",
        SECRET,
        &claims(json!({"wse_topics": {"allow": ["chat.*"], "deny": ["chat.admin"]}})),
        None,
    );
    let user = cfg
        .authenticate_token(&token)
        .unwrap_or_else(|e| unreachable!("{e}"));
    let Some(acl) = user.topic_acl else {
        unreachable!("claim present")
    };
    assert!(acl.is_allowed("chat.lobby"));
    assert!(!acl.is_allowed("chat.admin"));
    assert!(!acl.is_allowed("news"));
}

#[test]
fn configuration_errors() {
    assert_eq!(
        JwtConfig::new(JwtOptions::new(&b"short"[..])).err(),
        Some(ConfigError::SecretTooShort)
    );
    assert_eq!(
        JwtConfig::new(JwtOptions {
            previous_secret: Some(b"short".to_vec()),
            ..JwtOptions::new(SECRET)
        })
        .err(),
        Some(ConfigError::PreviousSecretTooShort)
    );
    let message = |options: JwtOptions| JwtConfig::new(options).err().map(|e| e.to_string());
    let bad_rsa = message(with_alg(JwtAlgorithm::RS256, b"not a pem"));
    assert!(bad_rsa.is_some_and(|m| m.starts_with("Invalid RS256 public key PEM: ")));
    // An RSA key is not an EC key.
    let rsa_as_ec = message(with_alg(JwtAlgorithm::ES256, RSA_A_PUBLIC));
    assert!(rsa_as_ec.is_some_and(|m| m.starts_with("Invalid ES256 public key PEM: ")));
    let bad_previous = message(JwtOptions {
        previous_secret: Some(b"junk".to_vec()),
        ..with_alg(JwtAlgorithm::ES256, EC_A_PUBLIC)
    });
    assert!(bad_previous.is_some_and(|m| m.starts_with("Invalid ES256 jwt_previous_secret PEM: ")));
    let bad_private = message(JwtOptions {
        private_key: Some(b"junk".to_vec()),
        ..with_alg(JwtAlgorithm::RS256, RSA_A_PUBLIC)
    });
    assert!(bad_private.is_some_and(|m| m.starts_with("Invalid RS256 jwt_private_key PEM: ")));
    // Good private keys are accepted (and discarded); HS256 ignores it.
    assert!(
        JwtConfig::new(JwtOptions {
            private_key: Some(EC_A_PRIVATE.to_vec()),
            previous_secret: Some(EC_B_PUBLIC.to_vec()),
            ..with_alg(JwtAlgorithm::ES256, EC_A_PUBLIC)
        })
        .is_ok()
    );
    assert!(
        JwtConfig::new(JwtOptions {
            private_key: Some(b"ignored".to_vec()),
            ..JwtOptions::new(SECRET)
        })
        .is_ok()
    );
    // Algorithm names.
    assert_eq!(algorithm_from_config(None), Ok(JwtAlgorithm::HS256));
    assert_eq!(
        algorithm_from_config(Some("ES256")),
        Ok(JwtAlgorithm::ES256)
    );
    assert_eq!(
        algorithm_from_config(Some("none")).map_err(|e| e.to_string()),
        Err("Unsupported jwt_algorithm: none. Supported: HS256, RS256, ES256".to_owned())
    );
}

#[test]
fn debug_output_hides_keys() {
    let cfg = hs256();
    let printed = format!("{cfg:?} {:?}", JwtOptions::new(SECRET));
    assert!(!printed.contains("current-secret"), "{printed}");
    assert!(printed.contains("HS256"));
    assert_eq!(cfg.algorithm(), JwtAlgorithm::HS256);
    assert_eq!(cfg.key_id(), None);
}

#[test]
fn encode_helper() {
    let c = claims(json!({}));
    let token = sign("HS256", SECRET, &c, Some("k1"));
    let header = jsonwebtoken::decode_header(&token).unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(header.kid.as_deref(), Some("k1"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::HS256);
    // Claims are signed as given: nothing added.
    let decoded = decode(&token, SECRET, "HS256", None, None, None, Some("k1"));
    assert_eq!(decoded.map(Value::Object), Some(c.clone()));

    assert_eq!(
        encode(&c, SECRET, "HS512", None).map_err(|e| e.to_string()),
        Err("Unsupported algorithm: HS512. Supported: HS256, RS256, ES256".to_owned())
    );
    assert_eq!(
        encode(&c, b"short", "HS256", None).map_err(|e| e.to_string()),
        Err("JWT encode error: Secret key too short (minimum 32 bytes for HS256)".to_owned())
    );
    let bad_pem = encode(&c, b"junk", "RS256", None).map_err(|e| e.to_string());
    assert!(matches!(bad_pem, Err(m) if m.starts_with("JWT encode error: Invalid key")));
    // A public key cannot sign.
    assert!(encode(&c, EC_A_PUBLIC, "ES256", None).is_err());
}

#[test]
fn decode_helper() {
    let c = claims(json!({"iss": "wse", "aud": ["api"]}));
    let hs = sign("HS256", SECRET, &c, None);
    let es = sign("ES256", EC_A_PRIVATE, &c, Some("k2"));
    assert!(decode(&hs, SECRET, "HS256", Some("wse"), Some("api"), None, None).is_some());
    assert!(decode(&es, EC_A_PUBLIC, "ES256", None, None, None, Some("k2")).is_some());
    // Rotation: old key, wrong kid, no kid check on the retry.
    assert!(
        decode(
            &hs,
            OTHER_SECRET,
            "HS256",
            None,
            None,
            Some(SECRET),
            Some("kx")
        )
        .is_some()
    );
    assert!(
        decode(
            &es,
            EC_B_PUBLIC,
            "ES256",
            None,
            None,
            Some(EC_A_PUBLIC),
            None
        )
        .is_some()
    );
    // Every failure is None.
    let none_cases = [
        decode(&hs, SECRET, "HS384", None, None, None, None),
        decode(&hs, SECRET, "hs256", None, None, None, None),
        decode(&hs, b"short", "HS256", None, None, None, None),
        decode(&hs, OTHER_SECRET, "HS256", None, None, None, None),
        decode(&hs, OTHER_SECRET, "HS256", None, None, Some(b"short"), None),
        decode(&hs, SECRET, "HS256", Some("other"), None, None, None),
        decode(&hs, SECRET, "HS256", None, Some("web"), None, None),
        decode(&hs, SECRET, "HS256", None, None, None, Some("k1")),
        decode(&hs, EC_A_PUBLIC, "ES256", None, None, None, None),
        decode(&es, b"junk", "ES256", None, None, None, None),
        decode("", SECRET, "HS256", None, None, None, None),
        decode("a.b", SECRET, "HS256", None, None, None, None),
    ];
    for (i, result) in none_cases.iter().enumerate() {
        assert_eq!(result, &None, "case {i}");
    }
    let expired = sign("HS256", SECRET, &claims(json!({"exp": now() - 100})), None);
    assert_eq!(
        decode(&expired, SECRET, "HS256", None, None, None, None),
        None
    );
    // A bad primary key is still rescued by the previous one on a kid
    // mismatch, because the kid check comes first (upstream order).
    assert!(decode(&hs, b"short", "HS256", None, None, Some(SECRET), Some("kx")).is_some());
}

#[test]
fn es256_signs_with_a_sec1_key_and_refuses_other_curves() {
    let cfg = config(with_alg(JwtAlgorithm::ES256, EC_A_PUBLIC));
    let token = sign("ES256", EC_A_PRIVATE_SEC1, &claims(json!({})), None);
    let user = cfg
        .authenticate(None, Some(&bearer(&token)))
        .unwrap_or_else(|e| unreachable!("SEC1-signed token refused: {e}"));
    assert_eq!(user.user_id, "alice");

    let err = encode(&claims(json!({})), EC_P384_PRIVATE_SEC1, "ES256", None)
        .err()
        .map(|e| e.to_string());
    assert!(
        err.as_deref()
            .is_some_and(|m| m.contains("not a SEC1 P-256 private key")),
        "{err:?}"
    );
    let refused = JwtConfig::new(JwtOptions {
        private_key: Some(EC_P384_PRIVATE_SEC1.to_vec()),
        ..with_alg(JwtAlgorithm::ES256, EC_A_PUBLIC)
    })
    .err()
    .map(|e| e.to_string());
    assert!(
        refused
            .as_deref()
            .is_some_and(|m| m.starts_with("Invalid ES256 jwt_private_key PEM: ")),
        "{refused:?}"
    );
}

#[test]
fn a_token_with_critical_extensions_is_refused_even_when_its_signature_holds() {
    // RFC 7515 §4.1.11: a recipient that does not understand an extension
    // listed in `crit` must reject the token. A genuine HS256 signature
    // over a header with `crit`:
    let header =
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT","crit":["x-bind"],"x-bind":1}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(json!({"exp": now() + 600})).to_string());
    let signing_input = format!("{header}.{payload}");
    let sig = URL_SAFE_NO_PAD.encode(crate::crypto::signing::hmac_sha256(
        SECRET,
        signing_input.as_bytes(),
    ));
    let token = format!("{signing_input}.{sig}");
    assert_eq!(
        hs256().validate(&token).unwrap_err(),
        TokenError::CriticalExtension
    );
    // The same claims without `crit` pass.
    let plain = sign("HS256", SECRET, &claims(json!({"exp": now() + 600})), None);
    assert!(hs256().validate(&plain).is_ok());
}
