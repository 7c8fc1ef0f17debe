//! TLS for the connection benchmarks (`wse bench fanout --tls`): a
//! throwaway CA and a server certificate for 127.0.0.1, made with the
//! functions behind `wse cert ca|issue` in a temporary directory, the
//! `wse serve` flags that serve them, and the load generator's client that
//! trusts that CA.

use std::path::PathBuf;
use std::time::SystemTime;

use super::wire::ClientTls;
use crate::cert_cmd::{self, CA_CERT, LEAF_CERT, LEAF_KEY};
use crate::error::CliError;

/// The address the server listens on and its certificate names.
const SERVER_NAME: &str = "127.0.0.1";

/// A CA, a server certificate signed by it, and a client that trusts it;
/// the files are removed on drop.
pub struct BenchTls {
    /// Holds ca.pem, cert.pem and the keys.
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
    client: ClientTls,
}

impl BenchTls {
    /// Make the CA and the certificate (P-256, valid for a day).
    pub fn make() -> Result<Self, CliError> {
        let dir = tempfile::Builder::new()
            .prefix("wse-bench-tls-")
            .tempdir()
            .map_err(|e| CliError::io("create a directory for the TLS certificates", e))?;
        let (ca, leaf) = (dir.path().join("ca"), dir.path().join("server"));
        cert_cmd::write_ca(&ca, "wse bench CA", 1)?;
        cert_cmd::write_leaf(
            &ca,
            &leaf,
            &[SERVER_NAME.to_owned()],
            None,
            SystemTime::now(),
            1,
        )?;
        let client = ClientTls::trusting(&ca.join(CA_CERT), SERVER_NAME)?;
        Ok(Self {
            cert: leaf.join(LEAF_CERT),
            key: leaf.join(LEAF_KEY),
            _dir: dir,
            client,
        })
    }

    /// `wse serve` flags that serve the certificate.
    pub fn serve_args(&self) -> Vec<String> {
        vec![
            "--tls-cert".into(),
            self.cert.display().to_string(),
            "--tls-key".into(),
            self.key.display().to_string(),
        ]
    }

    /// The client side.
    pub fn client(&self) -> &ClientTls {
        &self.client
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read as _;
    use std::sync::Arc;

    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    use super::*;
    use crate::bench::wire::{StdStream, WsConn};

    /// A server frame of text (unmasked).
    fn text(payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x81, payload.len() as u8];
        f.extend_from_slice(payload);
        f
    }

    /// A TLS server on the pair that answers one upgrade with 101 and
    /// two text frames in one write; a client that trusts the CA reads
    /// the first frame asynchronously and the second through the blocking
    /// stream `into_std` hands over (the session's buffered bytes go
    /// along), and the files are gone on drop.
    #[test]
    fn a_client_trusting_the_ca_upgrades_and_hands_over_the_session() {
        let tls = BenchTls::make().unwrap();
        let args = tls.serve_args();
        let certs: Vec<_> = CertificateDer::pem_file_iter(&args[1])
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(&args[3]).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut s = acceptor.accept(tcp).await.unwrap();
            let mut request = Vec::new();
            let mut b = [0; 1024];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut b).await.unwrap();
                assert!(n > 0);
                request.extend_from_slice(&b[..n]);
            }
            let mut reply = b"HTTP/1.1 101 Switching Protocols\r\n\r\n".to_vec();
            reply.extend(text(b"first"));
            reply.extend(text(b"second"));
            s.write_all(&reply).await.unwrap();
            s.flush().await.unwrap();
            // Keep the session open until the client is done.
            let _ = s.read(&mut b).await;
        });
        let conn = rt.block_on(async {
            let mut c = WsConn::connect_with(addr, 4096, false, Some(tls.client()))
                .await
                .unwrap();
            assert_eq!(c.wait_for_text(b"first").await.unwrap(), b"first");
            c
        });
        let (mut stream, mut buf) = conn.into_std().unwrap();
        assert!(matches!(stream, StdStream::Tls(_)));
        let got = loop {
            if let Some(f) = buf.next_frame().unwrap() {
                break f.payload.to_vec();
            }
            let n = stream.read(buf.spare()).unwrap();
            assert!(n > 0, "closed before the second frame");
            buf.filled(n);
        };
        assert_eq!(got, b"second");
        let dir = PathBuf::from(&args[1]);
        let dir = dir.parent().unwrap().parent().unwrap().to_owned();
        drop(tls);
        assert!(!dir.exists());
    }
}
