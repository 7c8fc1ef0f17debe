//! `wse cert ca|issue`: a certificate authority and the certificates it
//! signs, for TLS on the client port and mutual TLS between cluster nodes,
//! without openssl.
//!
//! - `wse cert ca --out-dir D` writes `D/ca.pem` and `D/ca.key.pem`;
//! - `wse cert issue --ca-dir D --out-dir O --san ...` writes `O/cert.pem`
//!   (the leaf certificate) and `O/key.pem`, signed by the CA in `D`.
//!
//! Every key is ECDSA P-256 (what rustls, browsers and the cluster link
//! all accept, and small). A leaf certificate is both a server and a client
//! certificate (extended key usage serverAuth and clientAuth), so one
//! command issues a node's certificate for both ends of an mTLS link. Key
//! files are created with mode 0600; nothing is overwritten without
//! `--force`. `--not-before` lets tests make a certificate that has already
//! expired. The file names are a contract: TLS tests and docs use them.

use std::fs;
use std::io::{self, Write as _};
use std::net::IpAddr;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, PublicKeyData as _, SanType,
};
use time::OffsetDateTime;

use crate::Run;
use crate::error::CliError;

/// The CA's certificate in `--out-dir` / `--ca-dir`.
pub(crate) const CA_CERT: &str = "ca.pem";
/// The CA's private key (mode 0600).
pub(crate) const CA_KEY: &str = "ca.key.pem";
/// An issued (leaf) certificate in `--out-dir`.
pub(crate) const LEAF_CERT: &str = "cert.pem";
/// An issued certificate's private key (mode 0600).
pub(crate) const LEAF_KEY: &str = "key.pem";

/// A day, as certificate lifetimes are counted.
const DAY: Duration = Duration::from_secs(86_400);

subcommands! {
    /// `wse cert ...`.
    pub(crate) enum CertCommand {
        /// Make a certificate authority: `<out-dir>/ca.pem` and
        /// `<out-dir>/ca.key.pem` (P-256).
        Ca(CaArgs),
        /// Issue a P-256 certificate signed by a CA (server and client
        /// use): `<out-dir>/cert.pem` and `<out-dir>/key.pem`.
        Issue(IssueArgs),
    }
}

/// Arguments of `wse cert ca`.
#[derive(Debug, clap::Args)]
pub(crate) struct CaArgs {
    /// Directory to write ca.pem and ca.key.pem to (created if missing).
    #[arg(long)]
    out_dir: PathBuf,
    /// The CA's common name.
    #[arg(long, default_value = "WSE test CA")]
    name: String,
    /// Days the CA certificate is valid, from now.
    #[arg(long, default_value_t = 3650)]
    days: u32,
    /// Replace ca.pem and ca.key.pem if they exist.
    #[arg(long)]
    force: bool,
}

/// Arguments of `wse cert issue`.
#[derive(Debug, clap::Args)]
pub(crate) struct IssueArgs {
    /// Directory holding the CA (ca.pem, ca.key.pem) made by `wse cert ca`.
    #[arg(long)]
    ca_dir: PathBuf,
    /// Directory to write cert.pem and key.pem to (created if missing).
    #[arg(long)]
    out_dir: PathBuf,
    /// A subject alternative name: an IP address if it parses as one, else
    /// a DNS name. Repeat for several.
    #[arg(long = "san", required = true, value_name = "NAME|IP")]
    sans: Vec<String>,
    /// The certificate's common name [default: the first --san].
    #[arg(long)]
    name: Option<String>,
    /// Days the certificate is valid, from --not-before.
    #[arg(long, default_value_t = 365)]
    days: u32,
    /// Start of validity, RFC 3339 (`2020-01-01T00:00:00Z`) [default: now].
    /// With a date in the past and few --days, the certificate has already
    /// expired (for tests).
    #[arg(long, value_name = "RFC3339")]
    not_before: Option<String>,
    /// Replace cert.pem and key.pem if they exist.
    #[arg(long)]
    force: bool,
}

/// Why `wse cert` failed.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// An output file exists and `--force` was not given.
    #[error("{} exists; pass --force to replace it", path.display())]
    Exists {
        /// The file.
        path: PathBuf,
    },
    /// A CA file could not be read.
    #[error(
        "cannot read the CA file {} (make a CA with `wse cert ca --out-dir {}`): {source}",
        path.display(),
        path.parent().unwrap_or(Path::new(".")).display()
    )]
    ReadCa {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The CA's key file is not a PEM private key rcgen can sign with.
    #[error("{} is not a usable PEM private key: {source}", path.display())]
    CaKey {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
    /// The CA's certificate file is not a PEM X.509 certificate.
    #[error("{} is not a PEM X.509 certificate: {source}", path.display())]
    CaCert {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
    /// The CA's key does not belong to its certificate: what it signed
    /// would not verify against the CA.
    #[error("{key} does not match the public key of {cert}", key = key.display(), cert = cert.display())]
    KeyMismatch {
        /// The key file.
        key: PathBuf,
        /// The certificate file.
        cert: PathBuf,
    },
    /// A `--san` that is neither an IP address nor a DNS name.
    #[error("--san {san:?} is neither an IP address nor a DNS name: {reason}")]
    San {
        /// The value given.
        san: String,
        /// What is wrong with it as a DNS name.
        reason: &'static str,
    },
    /// `--not-before` is not an RFC 3339 timestamp.
    #[error("--not-before {value:?} is not an RFC 3339 time (2020-01-01T00:00:00Z): {source}")]
    NotBefore {
        /// The value given.
        value: String,
        /// Why.
        #[source]
        source: humantime::TimestampError,
    },
    /// `--days 0`, or a validity that ends past what a certificate holds.
    #[error(
        "--days {days}: a certificate must be valid for at least a day, ending before year 10000"
    )]
    Days {
        /// The value given.
        days: u32,
    },
    /// Generating a key or signing failed.
    #[error("cannot {what}: {source}")]
    Generate {
        /// What was being done.
        what: &'static str,
        /// Why.
        #[source]
        source: rcgen::Error,
    },
    /// An output file or directory could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

impl Run for CaArgs {
    fn run(self) -> Result<u8, CliError> {
        let (cert, key) = (self.out_dir.join(CA_CERT), self.out_dir.join(CA_KEY));
        refuse_overwrite(&[&cert, &key], self.force)?;
        write_ca(&self.out_dir, &self.name, self.days)?;
        println!("{}", cert.display());
        println!("{}", key.display());
        Ok(0)
    }
}

/// Make a CA named `name`, valid `days` from now: `out_dir/ca.pem` and
/// `out_dir/ca.key.pem`, replacing them if they exist (what `wse cert ca`
/// does after its overwrite check; also the throwaway CA of
/// `wse bench fanout --tls`).
pub(crate) fn write_ca(out_dir: &Path, name: &str, days: u32) -> Result<(), CertError> {
    let (cert, key) = (out_dir.join(CA_CERT), out_dir.join(CA_KEY));
    let mut params = CertificateParams::default();
    params.distinguished_name = common_name(name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    (params.not_before, params.not_after) = validity(SystemTime::now(), days)?;
    let key_pair = generate_key()?;
    let ca = params
        .self_signed(&key_pair)
        .map_err(|source| CertError::Generate {
            what: "sign the CA certificate",
            source,
        })?;
    write_pair(out_dir, &cert, &ca.pem(), &key, &key_pair)
}

impl Run for IssueArgs {
    fn run(self) -> Result<u8, CliError> {
        let (cert, key) = (self.out_dir.join(LEAF_CERT), self.out_dir.join(LEAF_KEY));
        refuse_overwrite(&[&cert, &key], self.force)?;
        let start = match &self.not_before {
            Some(v) => humantime::parse_rfc3339_weak(v).map_err(|source| CertError::NotBefore {
                value: v.clone(),
                source,
            })?,
            None => SystemTime::now(),
        };
        write_leaf(
            &self.ca_dir,
            &self.out_dir,
            &self.sans,
            self.name.as_deref(),
            start,
            self.days,
        )?;
        println!("{}", cert.display());
        println!("{}", key.display());
        Ok(0)
    }
}

/// Issue a certificate for `sans` (at least one) signed by the CA in
/// `ca_dir`, valid `days` from `start`: `out_dir/cert.pem` and
/// `out_dir/key.pem`, replacing them if they exist (what `wse cert issue`
/// does after its checks; also the server certificate of
/// `wse bench fanout --tls`).
pub(crate) fn write_leaf(
    ca_dir: &Path,
    out_dir: &Path,
    sans: &[String],
    name: Option<&str>,
    start: SystemTime,
    days: u32,
) -> Result<(), CertError> {
    let (cert, key) = (out_dir.join(LEAF_CERT), out_dir.join(LEAF_KEY));
    let issuer = load_ca(ca_dir)?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = sans.iter().map(|s| san(s)).collect::<Result<_, _>>()?;
    let name = name
        .or(sans.first().map(String::as_str))
        .unwrap_or_default();
    params.distinguished_name = common_name(name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.use_authority_key_identifier_extension = true;
    (params.not_before, params.not_after) = validity(start, days)?;
    let key_pair = generate_key()?;
    let leaf = params
        .signed_by(&key_pair, &issuer)
        .map_err(|source| CertError::Generate {
            what: "sign the certificate",
            source,
        })?;
    write_pair(out_dir, &cert, &leaf.pem(), &key, &key_pair)
}

/// A distinguished name of just a common name.
fn common_name(name: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    dn
}

/// An IP address if `value` parses as one, else a DNS name (checked here:
/// rcgen writes any ASCII, and a name no client can match is a mistake
/// better reported now than as a failed handshake).
fn san(value: &str) -> Result<SanType, CertError> {
    if let Ok(ip) = value.parse::<IpAddr>() {
        return Ok(SanType::IpAddress(ip));
    }
    let bad = |reason| CertError::San {
        san: value.to_owned(),
        reason,
    };
    dns_name_problem(value).map_or(Ok(()), |r| Err(bad(r)))?;
    let name = value.to_owned().try_into().map_err(|_| bad("not ASCII"))?;
    Ok(SanType::DnsName(name))
}

/// What makes `name` no DNS name (RFC 1123 labels; a leading `*.`
/// wildcard allowed), or `None`.
fn dns_name_problem(name: &str) -> Option<&'static str> {
    let name = name.strip_prefix("*.").unwrap_or(name);
    let name = name.strip_suffix('.').unwrap_or(name);
    if name.is_empty() || name.len() > 253 {
        return Some("empty or longer than 253 bytes");
    }
    name.split('.').find_map(|label| {
        if label.is_empty() || label.len() > 63 {
            Some("a label is empty or longer than 63 bytes")
        } else if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            Some("only letters, digits, '-' and '.' are allowed")
        } else if label.starts_with('-') || label.ends_with('-') {
            Some("a label starts or ends with '-'")
        } else {
            None
        }
    })
}

/// `days` of validity from `start`.
fn validity(start: SystemTime, days: u32) -> Result<(OffsetDateTime, OffsetDateTime), CertError> {
    let end = DAY
        .checked_mul(days)
        .filter(|_| days > 0)
        .and_then(|d| start.checked_add(d))
        .map(OffsetDateTime::from)
        .filter(|end| end.year() < 10_000)
        .ok_or(CertError::Days { days })?;
    Ok((OffsetDateTime::from(start), end))
}

/// A fresh ECDSA P-256 key.
fn generate_key() -> Result<KeyPair, CertError> {
    KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(|source| CertError::Generate {
        what: "generate a P-256 key",
        source,
    })
}

/// The CA of `dir`, ready to sign: its key, and its certificate's subject
/// and key identifier (what a leaf's issuer fields must repeat).
fn load_ca(dir: &Path) -> Result<Issuer<'static, KeyPair>, CertError> {
    let (cert_path, key_path) = (dir.join(CA_CERT), dir.join(CA_KEY));
    let read = |path: &PathBuf| {
        fs::read_to_string(path).map_err(|source| CertError::ReadCa {
            path: path.clone(),
            source,
        })
    };
    let (cert_pem, key_pem) = (read(&cert_path)?, read(&key_path)?);
    let key = KeyPair::from_pem(&key_pem).map_err(|source| CertError::CaKey {
        path: key_path.clone(),
        source,
    })?;
    let garbled = |source| CertError::CaCert {
        path: cert_path.clone(),
        source,
    };
    let der = pem_der(&cert_pem).ok_or_else(|| garbled(rcgen::Error::CouldNotParseCertificate))?;
    // A certificate holds its subject's public key info verbatim: the key
    // belongs to it exactly when those bytes appear in it.
    let spki = key.subject_public_key_info();
    if !der.windows(spki.len()).any(|w| w == spki.as_slice()) {
        return Err(CertError::KeyMismatch {
            key: key_path,
            cert: cert_path.clone(),
        });
    }
    Issuer::from_ca_cert_der(&der.into(), key).map_err(garbled)
}

/// The DER bytes of the first PEM block, if it is one.
fn pem_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let mut lines = pem.lines().skip_while(|l| !l.starts_with("-----BEGIN "));
    lines.next()?;
    let body: String = lines.take_while(|l| !l.starts_with("-----END ")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body.trim())
        .ok()
        .filter(|der| !der.is_empty())
}

/// Fail before writing anything if an output file exists (unless `force`).
fn refuse_overwrite(paths: &[&Path], force: bool) -> Result<(), CertError> {
    match paths.iter().find(|p| p.exists()) {
        Some(path) if !force => Err(CertError::Exists {
            path: path.to_path_buf(),
        }),
        _ => Ok(()),
    }
}

/// Write a certificate (mode 0644) and its key (mode 0600) into `dir`.
fn write_pair(
    dir: &Path,
    cert: &Path,
    cert_pem: &str,
    key: &Path,
    key_pair: &KeyPair,
) -> Result<(), CertError> {
    fs::create_dir_all(dir).map_err(|source| CertError::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    // The key first: a certificate without its key is of no use.
    write_file(key, key_pair.serialize_pem().as_bytes(), 0o600)?;
    write_file(cert, cert_pem.as_bytes(), 0o644)
}

/// Write `bytes` to `path` with `mode`, which is set even on a file being
/// replaced (a key must never stay readable by others).
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<(), CertError> {
    let err = |source| CertError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .map_err(err)?;
    file.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)
}

#[cfg(test)]
mod tests;
