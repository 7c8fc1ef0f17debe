//! `wse token`: what it mints passes the server's own check
//! (`JwtConfig::authenticate_token`) for the key, algorithm, issuer,
//! audience and key id the server is given, with the claims asked for;
//! expired tokens and mismatched keys do not.

use clap::Parser as _;
use wse::auth::{AuthError, JwtConfig, JwtOptions, TokenError as Invalid};

use super::*;

/// `wse token` arguments as a command line.
#[derive(clap::Parser)]
struct Cmd {
    #[command(flatten)]
    args: TokenArgs,
}

fn args(argv: &[&str]) -> TokenArgs {
    Cmd::try_parse_from(std::iter::once("token").chain(argv.iter().copied()))
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
        .args
}

fn mint(argv: &[&str]) -> String {
    args(argv).mint(SystemTime::now()).unwrap()
}

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn server(options: JwtOptions) -> JwtConfig {
    JwtConfig::new(options).unwrap()
}

#[test]
fn an_hs256_token_carries_sub_acl_and_expiry_the_server_reads() {
    let jwt = server(JwtOptions::new(SECRET));
    let token = mint(&[
        "--secret",
        SECRET,
        "--sub",
        "alice",
        "--allow",
        "chat.*",
        "--deny",
        "chat.admin",
        "--exp",
        "10m",
    ]);
    let user = jwt.authenticate_token(&token).unwrap();
    assert_eq!(user.user_id, "alice");
    let acl = user.topic_acl.expect("an ACL");
    assert!(
        acl.is_allowed("chat.room") && !acl.is_allowed("chat.admin") && !acl.is_allowed("news")
    );
    let now = unix_seconds(SystemTime::now());
    let exp = user.expires_at.unwrap();
    assert!((now + 590..=now + 600).contains(&exp), "{exp} vs {now}");
    // Without --allow/--deny: no ACL claim, every topic allowed.
    let open = jwt
        .authenticate_token(&mint(&["--secret", SECRET, "--sub", "bob"]))
        .unwrap();
    assert_eq!(open.topic_acl, None);
    // Another secret's token is refused.
    let other = mint(&["--secret", &"x".repeat(32), "--sub", "alice"]);
    assert!(jwt.authenticate_token(&other).is_err());
}

#[test]
fn a_secret_file_is_read_as_the_server_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    std::fs::write(&path, format!("{SECRET}\n")).unwrap();
    let jwt = server(JwtOptions::new(std::fs::read(&path).unwrap()));
    let token = mint(&["--secret-file", path.to_str().unwrap(), "--sub", "alice"]);
    assert!(jwt.authenticate_token(&token).is_ok());
    let e = args(&["--secret-file", "/nonexistent/secret", "--sub", "a"])
        .mint(SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(e, TokenError::Read { .. }) && e.to_string().contains("/nonexistent/secret"),
        "{e}"
    );
}

#[test]
fn an_es256_key_signs_for_a_server_holding_its_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let key = dir.path().join("key.pem");
    std::fs::write(&key, pair.serialize_pem()).unwrap();
    let mut options = JwtOptions::new(pair.public_key_pem());
    options.algorithm = Some(JwtAlgorithm::ES256);
    options.issuer = Some("https://issuer.example".into());
    options.audience = Some("wse".into());
    options.key_id = Some("k1".into());
    let jwt = server(options);
    let key = key.to_str().unwrap();
    let full = [
        "--key",
        key,
        "--sub",
        "alice",
        "--iss",
        "https://issuer.example",
        "--aud",
        "wse",
        "--kid",
        "k1",
    ];
    assert!(jwt.authenticate_token(&mint(&full)).is_ok());
    // Each of iss, aud, kid is checked: leaving one out is refused.
    for skip in ["--iss", "--aud", "--kid"] {
        let i = full.iter().position(|a| *a == skip).unwrap();
        let mut argv = full.to_vec();
        argv.remove(i);
        argv.remove(i);
        assert!(
            jwt.authenticate_token(&mint(&argv)).is_err(),
            "without {skip}"
        );
    }
    // The key is not an HS256 secret, nor a secret an ES256 key.
    let e = args(&["--key", key, "--algorithm", "HS256", "--sub", "a"])
        .mint(SystemTime::now())
        .unwrap_err();
    assert!(matches!(e, TokenError::WrongKey { .. }), "{e}");
    let e = args(&["--secret", SECRET, "--algorithm", "ES256", "--sub", "a"])
        .mint(SystemTime::now())
        .unwrap_err();
    assert!(matches!(e, TokenError::WrongKey { .. }), "{e}");
}

#[test]
fn expires_at_in_the_past_makes_a_token_the_server_refuses() {
    let jwt = server(JwtOptions::new(SECRET));
    let token = mint(&[
        "--secret",
        SECRET,
        "--sub",
        "alice",
        "--expires-at",
        "2020-01-01T00:00:00Z",
    ]);
    assert_eq!(
        jwt.authenticate_token(&token),
        Err(AuthError::InvalidToken(Invalid::Expired))
    );
    let e = args(&["--secret", SECRET, "--sub", "a", "--expires-at", "soon"])
        .mint(SystemTime::now())
        .unwrap_err();
    assert!(matches!(e, TokenError::ExpiresAt { .. }), "{e}");
    // --exp and --expires-at are one setting, given one way.
    let both = Cmd::try_parse_from([
        "token",
        "--secret",
        SECRET,
        "--sub",
        "a",
        "--exp",
        "1h",
        "--expires-at",
        "2020-01-01T00:00:00Z",
    ]);
    assert!(both.is_err());
}

#[test]
fn extra_claims_are_json_when_they_parse_and_one_key_source_is_required() {
    let token = mint(&[
        "--secret",
        SECRET,
        "--sub",
        "alice",
        "--claim",
        "level=3",
        "--claim",
        "name=Alice Smith",
        "--claim",
        "tags=[\"a\"]",
    ]);
    let claims = server(JwtOptions::new(SECRET)).validate(&token).unwrap();
    assert_eq!(claims["level"], json!(3));
    assert_eq!(claims["name"], json!("Alice Smith"));
    assert_eq!(claims["tags"], json!(["a"]));
    assert!(
        Cmd::try_parse_from(["token", "--sub", "a"]).is_err(),
        "no key"
    );
    assert!(
        Cmd::try_parse_from(["token", "--secret", SECRET, "--key", "k.pem", "--sub", "a"]).is_err(),
        "two keys"
    );
    assert!(
        Cmd::try_parse_from([
            "token", "--secret", SECRET, "--sub", "a", "--claim", "novalue"
        ])
        .is_err()
    );
    let e = args(&["--secret", "short", "--sub", "a"])
        .mint(SystemTime::now())
        .unwrap_err();
    assert!(
        matches!(e, TokenError::Sign(_)) && e.to_string().contains("32"),
        "{e}"
    );
}

/// The `wse` commands of the sh blocks of docs/OPERATIONS.md's
/// "Authentication" and "Certificates" sections, continuation lines
/// joined, variables and command substitutions taken as they are written.
fn documented_commands() -> Vec<Vec<String>> {
    let doc = include_str!("../../../docs/OPERATIONS.md");
    let mut commands = Vec::new();
    for title in ["## Authentication (JWT)", "## Certificates (`wse cert`)"] {
        let section = doc
            .split(title)
            .nth(1)
            .unwrap()
            .split("\n## ")
            .next()
            .unwrap();
        let block = section
            .split("```sh\n")
            .nth(1)
            .unwrap()
            .split("```")
            .next()
            .unwrap();
        for line in block.replace("\\\n", " ").lines() {
            let line = line
                .split(" #")
                .next()
                .unwrap()
                .trim()
                .trim_end_matches('&')
                .trim();
            let line = line
                .strip_prefix("TOKEN=$(")
                .map_or(line, |l| l.trim_end_matches(')'));
            if line.starts_with("wse ") {
                commands.push(shell_words(line));
            }
        }
    }
    commands
}

/// Split a command line as sh does for these simple lines (quotes, no
/// expansion).
fn shell_words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut started) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, started) = (Some(c), true),
            (Some(q), c) if c == q => quote = None,
            (None, c) if c.is_whitespace() => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            (_, c) => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[test]
fn the_documented_commands_parse() {
    use clap::CommandFactory as _;
    let commands = documented_commands();
    let count = |sub: &str| commands.iter().filter(|c| c[1] == sub).count();
    assert!(
        count("token") >= 2 && count("serve") >= 2 && count("cert") >= 2,
        "{commands:?}"
    );
    for argv in &commands {
        let parsed = crate::Cli::command().try_get_matches_from(argv);
        assert!(parsed.is_ok(), "{argv:?}: {}", parsed.unwrap_err());
    }
}
