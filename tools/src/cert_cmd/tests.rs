//! `wse cert`: what it writes verifies as rustls (webpki) verifies a peer,
//! for the names asked and no others, as server and as client; expired
//! certificates, other CAs, garbled or mismatched CA files and overwrites
//! are refused.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::ServerCertVerifier as _;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, Error as TlsError, RootCertStore};

use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn ca(dir: &Path, force: bool) -> Result<u8, CliError> {
    CaArgs {
        out_dir: dir.to_path_buf(),
        // Each its own name, as real CAs have.
        name: format!("test CA {}", dir.display()),
        days: 30,
        force,
    }
    .run()
}

fn issue(
    ca_dir: &Path,
    out: &Path,
    sans: &[&str],
    not_before: Option<&str>,
    days: u32,
) -> Result<u8, CliError> {
    IssueArgs {
        ca_dir: ca_dir.to_path_buf(),
        out_dir: out.to_path_buf(),
        sans: sans.iter().map(|s| s.to_string()).collect(),
        name: None,
        days,
        not_before: not_before.map(str::to_owned),
        force: false,
    }
    .run()
}

fn cert(path: &Path) -> CertificateDer<'static> {
    CertificateDer::from_pem_file(path).unwrap()
}

fn roots(ca_dir: &Path) -> Arc<RootCertStore> {
    let mut roots = RootCertStore::empty();
    roots.add(cert(&ca_dir.join(CA_CERT))).unwrap();
    Arc::new(roots)
}

/// ring's provider (the workspace builds rustls on ring, not aws-lc-rs).
/// Deprecated for lacking post-quantum key exchange, which certificate
/// verification does not use.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Verify `leaf` as rustls verifies a server named `name` at `now`.
fn verify_server(ca_dir: &Path, leaf: &Path, name: &str, now: UnixTime) -> Result<(), TlsError> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca_dir), provider())
        .build()
        .unwrap();
    let name = ServerName::try_from(name.to_owned()).unwrap();
    verifier
        .verify_server_cert(&cert(leaf), &[], &name, &[], now)
        .map(drop)
}

fn invalid(e: TlsError) -> CertificateError {
    match e {
        TlsError::InvalidCertificate(c) => c,
        other => panic!("not a certificate error: {other:?}"),
    }
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn an_issued_certificate_verifies_for_its_names_as_server_and_client() {
    let dir = tempfile::tempdir().unwrap();
    let (ca_dir, node) = (dir.path().join("ca"), dir.path().join("node1"));
    ca(&ca_dir, false).unwrap();
    issue(&ca_dir, &node, &["localhost", "127.0.0.1", "::1"], None, 1).unwrap();
    assert_eq!(mode(&ca_dir.join(CA_KEY)), 0o600);
    assert_eq!(mode(&node.join(LEAF_KEY)), 0o600);
    let leaf = node.join(LEAF_CERT);
    for name in ["localhost", "127.0.0.1", "::1"] {
        verify_server(&ca_dir, &leaf, name, UnixTime::now())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for name in ["example.com", "127.0.0.2"] {
        let e = verify_server(&ca_dir, &leaf, name, UnixTime::now()).unwrap_err();
        assert!(
            matches!(
                invalid(e),
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. }
            ),
            "{name}"
        );
    }
    // The same certificate is a client certificate (cluster mTLS).
    let client = WebPkiClientVerifier::builder_with_provider(roots(&ca_dir), provider())
        .build()
        .unwrap();
    client
        .verify_client_cert(&cert(&leaf), &[], UnixTime::now())
        .unwrap();
    // Its key is a P-256 key rustls can sign with.
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(node.join(LEAF_KEY)).unwrap();
    let signer = provider().key_provider.load_private_key(key).unwrap();
    assert_eq!(signer.algorithm(), rustls::SignatureAlgorithm::ECDSA);
}

#[test]
fn a_certificate_of_another_ca_or_already_expired_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, ca2) = (dir.path().join("ca1"), dir.path().join("ca2"));
    ca(&ca1, false).unwrap();
    ca(&ca2, false).unwrap();
    let (stranger, expired) = (dir.path().join("stranger"), dir.path().join("expired"));
    issue(&ca2, &stranger, &["localhost"], None, 1).unwrap();
    let e = verify_server(
        &ca1,
        &stranger.join(LEAF_CERT),
        "localhost",
        UnixTime::now(),
    )
    .unwrap_err();
    assert_eq!(invalid(e), CertificateError::UnknownIssuer);

    issue(
        &ca1,
        &expired,
        &["localhost"],
        Some("2020-01-01T00:00:00Z"),
        1,
    )
    .unwrap();
    let leaf = expired.join(LEAF_CERT);
    let e = verify_server(&ca1, &leaf, "localhost", UnixTime::now()).unwrap_err();
    assert!(
        matches!(
            invalid(e),
            CertificateError::Expired | CertificateError::ExpiredContext { .. }
        ),
        "expired"
    );
    // The validity is what was asked: 2020-01-01 for a day (a trust
    // anchor's own dates are not checked, so the chain verifies then).
    let at = |secs| UnixTime::since_unix_epoch(Duration::from_secs(secs));
    let new_year_2020 = 1_577_836_800;
    verify_server(&ca1, &leaf, "localhost", at(new_year_2020 + 3_600)).unwrap();
    let e = verify_server(&ca1, &leaf, "localhost", at(new_year_2020 + 86_400 + 1)).unwrap_err();
    assert!(matches!(
        invalid(e),
        CertificateError::Expired | CertificateError::ExpiredContext { .. }
    ));
    let e = verify_server(&ca1, &leaf, "localhost", at(new_year_2020 - 1)).unwrap_err();
    assert!(matches!(
        invalid(e),
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. }
    ));
}

#[test]
fn existing_files_are_kept_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    ca(dir.path(), false).unwrap();
    let before = fs::read(dir.path().join(CA_CERT)).unwrap();
    let e = ca(dir.path(), false).unwrap_err();
    assert!(matches!(e, CliError::Cert(CertError::Exists { .. })), "{e}");
    assert!(e.to_string().contains("--force"), "{e}");
    assert_eq!(fs::read(dir.path().join(CA_CERT)).unwrap(), before);
    fs::set_permissions(dir.path().join(CA_KEY), fs::Permissions::from_mode(0o644)).unwrap();
    ca(dir.path(), true).unwrap();
    assert_ne!(fs::read(dir.path().join(CA_CERT)).unwrap(), before);
    assert_eq!(
        mode(&dir.path().join(CA_KEY)),
        0o600,
        "a replaced key is private again"
    );
}

#[test]
fn a_missing_garbled_or_mismatched_ca_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let (ca1, ca2, out) = (
        dir.path().join("ca1"),
        dir.path().join("ca2"),
        dir.path().join("out"),
    );
    let e = issue(&ca1, &out, &["localhost"], None, 1).unwrap_err();
    assert!(
        matches!(&e, CliError::Cert(CertError::ReadCa { .. })),
        "{e}"
    );
    assert!(e.to_string().contains("wse cert ca"), "{e}");

    ca(&ca1, false).unwrap();
    ca(&ca2, false).unwrap();
    fs::copy(ca2.join(CA_KEY), ca1.join(CA_KEY)).unwrap();
    let e = issue(&ca1, &out, &["localhost"], None, 1).unwrap_err();
    assert!(
        matches!(&e, CliError::Cert(CertError::KeyMismatch { .. })),
        "{e}"
    );

    fs::write(
        ca2.join(CA_CERT),
        "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let e = issue(&ca2, &out, &["localhost"], None, 1).unwrap_err();
    assert!(
        matches!(&e, CliError::Cert(CertError::CaCert { .. })),
        "{e}"
    );
    fs::write(ca2.join(CA_KEY), "garbage").unwrap();
    let e = issue(&ca2, &out, &["localhost"], None, 1).unwrap_err();
    assert!(matches!(&e, CliError::Cert(CertError::CaKey { .. })), "{e}");
    assert!(e.to_string().contains(CA_KEY), "{e}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn bad_dates_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    ca(dir.path(), false).unwrap();
    let out = dir.path().join("out");
    let e = issue(dir.path(), &out, &["localhost"], Some("yesterday"), 1).unwrap_err();
    assert!(
        matches!(&e, CliError::Cert(CertError::NotBefore { .. })),
        "{e}"
    );
    let e = issue(dir.path(), &out, &["localhost"], None, 0).unwrap_err();
    assert!(
        matches!(&e, CliError::Cert(CertError::Days { days: 0 })),
        "{e}"
    );
    let e = issue(dir.path(), &out, &["bad name!"], None, 1).unwrap_err();
    assert!(matches!(&e, CliError::Cert(CertError::San { .. })), "{e}");
}
