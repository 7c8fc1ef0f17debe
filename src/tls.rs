//! TLS on the client port: the server's certificate chain and key, read
//! from PEM files and swapped in place on reload, and the acceptor that
//! runs each accepted socket's handshake.
//!
//! Why a certificate resolver rather than a fixed `rustls::ServerConfig`:
//! a reload then changes what the next handshakes present, without
//! rebuilding the acceptor the accept loop holds and without touching
//! established sessions (each keeps the keys it negotiated), so a
//! certificate is renewed with no connection dropped.
//!
//! Only TLS 1.2 and 1.3 are offered (rustls has nothing older), with the
//! `ring` provider's default suites, and ALPN `http/1.1` (a WebSocket
//! upgrade is an HTTP/1.1 request). A reload that fails (unreadable file,
//! no key, a key that does not fit the certificate) keeps the certificate
//! in force and says why; operators rotate cert and key one file at a
//! time, so a half-written pair is refused, then taken once the other file
//! lands.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use parking_lot::{Mutex, RwLock};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Why the certificate or key could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read the TLS {what} {}: {source}", path.display())]
    Read {
        /// `certificate` or `key`.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The certificate file holds no usable certificate.
    #[error("{}: no PEM certificate (-----BEGIN CERTIFICATE-----){}", path.display(), detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said, if it failed.
        detail: Option<String>,
    },
    /// The key file holds no usable private key.
    #[error("{}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {detail}", path.display())]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM parser said.
        detail: String,
    },
    /// The key is of a kind rustls cannot sign with, or does not belong
    /// to the certificate.
    #[error("the key in {} does not fit the certificate in {}: {source}", key.display(), cert.display())]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// rustls's judgement.
        #[source]
        source: rustls::Error,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[source] rustls::Error),
}

/// The PEM files a server's certificate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf.
    pub key: PathBuf,
}

/// TLS for the client port: the acceptor and the certificate it presents.
pub(crate) struct Tls {
    acceptor: TlsAcceptor,
    store: Arc<CertStore>,
}

impl Tls {
    /// Read the certificate and key of `files` and build the acceptor.
    pub(crate) fn load(files: &TlsFiles) -> Result<Self, TlsError> {
        // The `ring` provider builds with a C compiler alone (aws-lc needs
        // its own large C build); rustls marks it deprecated because it
        // has no post-quantum key exchange. Moving to aws-lc-rs is this
        // line and the crate features.
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let store = Arc::new(CertStore::load(files.clone(), provider.clone())?);
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(TlsError::Config)?
            .with_no_client_auth()
            .with_cert_resolver(store.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Self {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            store,
        })
    }

    /// Run the server side of the handshake on `tcp`.
    pub(crate) async fn accept(&self, tcp: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        self.acceptor.accept(tcp).await
    }

    /// Read the files again and present what they hold from the next
    /// handshake on; on error the certificate in force stays.
    pub(crate) fn reload(&self) -> Result<(), TlsError> {
        self.store.reload()
    }

    /// Reload if either file changed (modification time, size or inode)
    /// since the last attempt: `None` when neither did. A failed attempt
    /// is not repeated until a file changes again.
    pub(crate) fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        self.store.reload_if_changed()
    }
}

/// What identifies a version of a file without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

impl Stamp {
    fn of(path: &Path) -> Option<Self> {
        use std::os::unix::fs::MetadataExt;
        let m = std::fs::metadata(path).ok()?;
        Some(Self {
            modified: m.modified().ok(),
            len: m.len(),
            inode: m.ino(),
        })
    }
}

/// The certificate in force, handed to every handshake.
struct CertStore {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The files' stamps at the last load attempt.
    seen: Mutex<(Option<Stamp>, Option<Stamp>)>,
}

impl CertStore {
    fn load(files: TlsFiles, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let seen = (Stamp::of(&files.cert), Stamp::of(&files.key));
        let key = read_pair(&files, &provider)?;
        Ok(Self {
            files,
            provider,
            current: RwLock::new(Arc::new(key)),
            seen: Mutex::new(seen),
        })
    }

    fn reload(&self) -> Result<(), TlsError> {
        *self.seen.lock() = (Stamp::of(&self.files.cert), Stamp::of(&self.files.key));
        let key = read_pair(&self.files, &self.provider)?;
        *self.current.write() = Arc::new(key);
        Ok(())
    }

    fn reload_if_changed(&self) -> Option<Result<(), TlsError>> {
        let now = (Stamp::of(&self.files.cert), Stamp::of(&self.files.key));
        if *self.seen.lock() == now {
            return None;
        }
        Some(self.reload())
    }
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.read().clone())
    }
}

/// The chain and key of `files`, checked to belong together.
fn read_pair(files: &TlsFiles, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| TlsError::Read {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read("certificate", &files.cert)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: files.cert.clone(),
            detail: Some(e.to_string()),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: files.cert.clone(),
            detail: None,
        });
    }
    let key_pem = read("key", &files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: files.key.clone(),
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key, provider).map_err(|source| TlsError::Mismatch {
        cert: files.cert.clone(),
        key: files.key.clone(),
        source,
    })
}
