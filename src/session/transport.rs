//! The socket under a session: plain TCP, or TCP with a rustls session.
//!
//! A session is driven by readiness (it waits until the socket is
//! readable or writable, then reads and writes what it can without
//! blocking), so TLS is driven the same way: ciphertext moves between the
//! socket and rustls with non-blocking reads and writes, plaintext between
//! rustls and the session's buffers. tokio-rustls runs the handshake and
//! the upgrade exchange, then hands over its socket and rustls session
//! ([`Transport::tls`]); what it had read and not yet delivered is still
//! in the rustls session, so nothing is lost at the hand-over.
//!
//! rustls holds at most [`TLS_SEND_LIMIT`] bytes of records not yet
//! written to the socket: it takes plaintext only while it holds none, so
//! a client that does not read stops the session's writes as a plain
//! socket would (the frames wait in the session's queue, counted).

use std::io::{self, IoSlice, Read, Write};

use bytes::BytesMut;
use rustls::ServerConnection;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

/// Records rustls may hold for the socket (rustls's buffer limit): about
/// one vectored write's worth, so encryption runs ahead of the socket by
/// no more than that.
const TLS_SEND_LIMIT: usize = 64 * 1024;

/// Plaintext taken from rustls per read at most (the buffer is zeroed
/// first: rustls reads into initialised memory).
const TLS_READ_MAX: usize = 64 * 1024;

/// A session's socket.
pub(crate) enum Transport {
    /// Plain TCP.
    Plain(TcpStream),
    /// TCP carrying TLS (boxed: a rustls session is large, and most
    /// deployments with TLS terminate it at a proxy).
    Tls(Box<TlsConn>),
}

/// TCP with its rustls session.
pub(crate) struct TlsConn {
    tcp: TcpStream,
    tls: ServerConnection,
    /// rustls may have plaintext (or the peer's close) for the reader:
    /// read it before waiting for the socket.
    readable_now: bool,
}

impl Transport {
    /// The transport of a session whose handshake and upgrade went over
    /// TLS.
    pub(crate) fn tls(stream: TlsStream<TcpStream>) -> Self {
        let (tcp, mut tls) = stream.into_inner();
        tls.set_buffer_limit(Some(TLS_SEND_LIMIT));
        // tokio-rustls processes what it reads at once; this only asks
        // whether plaintext is waiting (an error shows at the first read).
        let readable_now = tls.process_new_packets().map_or(true, |s| {
            s.plaintext_bytes_to_read() > 0 || s.peer_has_closed()
        });
        Self::Tls(Box::new(TlsConn {
            tcp,
            tls,
            readable_now,
        }))
    }

    /// Wait until a read may make progress.
    pub(crate) async fn readable(&self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.readable().await,
            Self::Tls(t) if t.readable_now => Ok(()),
            Self::Tls(t) => t.tcp.readable().await,
        }
    }

    /// Wait until the socket takes bytes.
    pub(crate) async fn writable(&self) -> io::Result<()> {
        match self {
            Self::Plain(tcp) => tcp.writable().await,
            Self::Tls(t) => t.tcp.writable().await,
        }
    }

    /// Read what has arrived into `buf` (its spare capacity), without
    /// waiting: `Ok(0)` when the peer closed, `WouldBlock` when nothing
    /// has. A TLS protocol error is `InvalidData` (its alert is sent).
    pub(crate) fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.try_read_buf(buf),
            Self::Tls(t) => t.try_read_buf(buf),
        }
    }

    /// Write from `bufs` what the socket takes now; `WouldBlock` when it
    /// takes nothing. Over TLS, "written" means taken by rustls: its
    /// records go out now or at the next write (see
    /// [`Self::has_pending_writes`]).
    pub(crate) fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Self::Plain(tcp) => tcp.try_write_vectored(bufs),
            Self::Tls(t) => t.try_write_vectored(bufs),
        }
    }

    /// Whether bytes already taken wait for the socket (TLS records).
    pub(crate) fn has_pending_writes(&self) -> bool {
        match self {
            Self::Plain(_) => false,
            Self::Tls(t) => t.tls.wants_write(),
        }
    }

    /// Write the pending records the socket takes now.
    pub(crate) fn flush_pending(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(_) => Ok(()),
            Self::Tls(t) => t.flush_pending(),
        }
    }

    /// End the connection's sending side (over TLS, after a close_notify).
    pub(crate) async fn shutdown(&mut self) {
        match self {
            Self::Plain(tcp) => {
                let _ = tcp.shutdown().await;
            }
            Self::Tls(t) => {
                t.tls.send_close_notify();
                let _ = t.flush_pending();
                let _ = t.tcp.shutdown().await;
            }
        }
    }
}

impl TlsConn {
    fn try_read_buf(&mut self, buf: &mut BytesMut) -> io::Result<usize> {
        loop {
            if self.readable_now {
                let start = buf.len();
                let room = (buf.capacity() - start).clamp(1, TLS_READ_MAX);
                buf.resize(start + room, 0);
                let read = self.tls.reader().read(&mut buf[start..]);
                buf.truncate(start + *read.as_ref().unwrap_or(&0));
                match read {
                    Ok(0) => return Ok(0),
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.readable_now = false,
                    Err(e) => return Err(e),
                }
            }
            match self.tls.read_tls(&mut SocketIo(&self.tcp)) {
                Ok(0) => return Ok(0),
                Ok(_) => {}
                Err(e) => return Err(e),
            }
            match self.tls.process_new_packets() {
                Ok(state) => {
                    self.readable_now =
                        state.plaintext_bytes_to_read() > 0 || state.peer_has_closed();
                }
                Err(e) => {
                    // Send the alert rustls queued, then fail the session.
                    let _ = self.flush_pending();
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            }
            // Records the peer's messages asked for (a key update's reply).
            self.flush_pending()?;
        }
    }

    fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.flush_pending()?;
        if self.tls.wants_write() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = self.tls.writer().write_vectored(bufs)?;
        self.flush_pending()?;
        Ok(n)
    }

    /// Write pending records until the socket takes no more.
    fn flush_pending(&mut self) -> io::Result<()> {
        while self.tls.wants_write() {
            match self.tls.write_tls(&mut SocketIo(&self.tcp)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// The socket as blocking-style `Read`/`Write` for rustls, by its
/// non-blocking calls (`WouldBlock` when it has nothing or takes nothing;
/// tokio's readiness is cleared then, so the session waits again).
struct SocketIo<'a>(&'a TcpStream);

impl Read for SocketIo<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Write for SocketIo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use rcgen::{CertificateParams, KeyPair};
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpSocket;

    use super::*;
    use crate::tls::{Tls, TlsFiles};

    /// A client that stops reading fills the socket; rustls then holds the
    /// records it encrypted. The session must see them as pending (so it
    /// waits for the socket to take them) and write them once the client
    /// reads, or the last message would sit in rustls until some other
    /// event: with `has_pending_writes` answering false, this fails.
    #[tokio::test]
    async fn tls_records_the_socket_did_not_take_are_pending_until_the_peer_reads() {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let files = TlsFiles {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&files.cert, cert.pem()).unwrap();
        std::fs::write(&files.key, key.serialize_pem()).unwrap();
        let tls = Tls::load(&files).unwrap();

        // Small buffers on both ends: the socket fills after a few KiB.
        let listen = TcpSocket::new_v4().unwrap();
        listen.set_send_buffer_size(4096).unwrap();
        listen.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let listener = listen.listen(1).unwrap();
        let dial = TcpSocket::new_v4().unwrap();
        dial.set_recv_buffer_size(4096).unwrap();
        let (client_tcp, accepted) = tokio::join!(
            dial.connect(listener.local_addr().unwrap()),
            listener.accept()
        );
        let mut roots = rustls::RootCertStore::empty();
        roots.add(cert.der().clone()).unwrap();
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
        let (client, server) = tokio::join!(
            connector.connect(name, client_tcp.unwrap()),
            tls.accept(accepted.unwrap().0)
        );
        let mut client = client.unwrap();
        let mut transport = Transport::tls(server.unwrap());

        let chunk = vec![7u8; 64 * 1024];
        let mut sent = 0usize;
        loop {
            match transport.try_write_vectored(&[IoSlice::new(&chunk)]) {
                Ok(n) => sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("write: {e}"),
            }
            assert!(sent < 64 << 20, "the socket never filled");
        }
        assert!(
            transport.has_pending_writes(),
            "records the socket did not take are pending"
        );

        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; 64 * 1024];
            let mut got = 0usize;
            while got < sent {
                let n = client.read(&mut buf).await.unwrap();
                assert!(n > 0, "closed after {got} of {sent} bytes");
                assert!(buf[..n].iter().all(|&b| b == 7));
                got += n;
            }
            got
        });
        while transport.has_pending_writes() {
            transport.writable().await.unwrap();
            transport.flush_pending().unwrap();
        }
        assert_eq!(reader.await.unwrap(), sent, "every byte taken arrives");
    }
}
