//! A minimal WebSocket client for load generation: the upgrade request,
//! the server's frames read in place out of one buffer, and client frames
//! with an all-zero masking key.
//!
//! Why not tokio-tungstenite: on two cores the load generator shares the
//! CPU with the server it measures, and a general client pays per message
//! (a message object, UTF-8 validation, a stream poll, a flush per send).
//! Here one read returns many frames, each looked at where it lies, and a
//! batch of client frames is one write. The zero masking key is legal
//! (RFC 6455 §5.3 requires the key to be unpredictable only to protect
//! intermediaries from browser scripts; the server unmasks every byte as
//! with any key), and it lets a batch of frames be built once and sent as
//! is. The client speaks only what the benchmarks need: text frames in
//! both directions, the server's JSON `ping` (answered with `PONG`, as the
//! real clients do), WebSocket Ping and Close, and (when it offers
//! per-message deflate) compressed server frames, which it marks for the
//! caller to inflate. Over TLS (`wse bench fanout --tls`) the same bytes
//! go through a tokio-rustls client session, which [`WsConn::into_std`]
//! hands over as a blocking `rustls::StreamOwned`.

use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_rustls::TlsConnector;

use super::scan;
use crate::error::CliError;

/// Opcode of a text frame.
pub const OP_TEXT: u8 = 0x1;
/// Opcode of a binary frame (end-to-end encrypted deliveries).
pub const OP_BINARY: u8 = 0x2;
/// Opcode of a Close frame.
pub const OP_CLOSE: u8 = 0x8;
/// Opcode of a WebSocket Ping.
pub const OP_PING: u8 = 0x9;
/// Opcode of a WebSocket Pong.
pub const OP_PONG: u8 = 0xA;

/// Largest frame accepted from the server (the benchmarks' frames are
/// small; this only bounds the buffer a broken stream could make us grow).
const MAX_FRAME: usize = 64 << 20;
/// Largest upgrade response.
const MAX_RESPONSE: usize = 16 * 1024;
/// Time allowed to open one connection and get its greeting.
const OPEN_TIMEOUT: Duration = Duration::from_secs(30);

/// The upgrade request (a fixed, valid 16-byte key: we do not check the
/// accept value).
const UPGRADE: &[u8] = b"GET /wse HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: d3NlLWJlbmNoLWtleS0wMQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// The same request offering per-message deflate as browsers do.
const UPGRADE_DEFLATE: &[u8] = b"GET /wse HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: d3NlLWJlbmNoLWtleS0wMQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

/// The reply to the server's JSON `ping` (the core swallows it; it counts
/// as activity for the idle timeout).
pub const PONG_TEXT: &[u8] = br#"{"c":"WSE","t":"PONG","p":{},"v":1}"#;

/// Why a connection failed.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: io::Error,
    },
    /// The server did not switch protocols.
    #[error("upgrade refused: {0}")]
    Upgrade(String),
    /// The server sent something that is not a WebSocket frame we accept.
    #[error("bad frame from the server: {0}")]
    Protocol(&'static str),
    /// The server closed the connection (with this close code, if any).
    #[error("the server closed the connection (code {0:?})")]
    Closed(Option<u16>),
    /// No answer in time.
    #[error("timed out: {0}")]
    Timeout(&'static str),
}

impl From<WireError> for CliError {
    fn from(e: WireError) -> Self {
        CliError::Bench(e.to_string())
    }
}

fn io_err(what: &'static str) -> impl FnOnce(io::Error) -> WireError {
    move |source| WireError::Io { what, source }
}

/// One server frame, borrowed from the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The opcode (continuation frames keep 0).
    pub opcode: u8,
    /// RSV1: the payload is a compressed message (per-message deflate).
    pub compressed: bool,
    /// The payload, unmasked (server frames are never masked).
    pub payload: &'a [u8],
}

impl Frame<'_> {
    /// The close code of a Close frame.
    pub fn close_code(&self) -> Option<u16> {
        (self.opcode == OP_CLOSE && self.payload.len() >= 2)
            .then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }
}

/// Bytes read from the server and not yet taken as frames.
#[derive(Debug)]
pub struct FrameBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl FrameBuf {
    /// An empty buffer that reads up to `size` bytes at a time (it grows
    /// for a larger frame).
    pub fn new(size: usize) -> Self {
        Self {
            buf: vec![0; size.max(256)],
            start: 0,
            end: 0,
        }
    }

    /// The bytes not yet taken.
    pub fn data(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Take `n` bytes without framing them (the upgrade response).
    fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
    }

    /// Room to read into: moves what is left to the front when the tail
    /// is short, and grows for a frame larger than the buffer.
    pub fn spare(&mut self) -> &mut [u8] {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
        let need = match header(self.data()) {
            Ok(Some((_, h, len))) => h + len,
            _ => 0,
        };
        let cap = self.buf.len();
        if self.start > 0 && (cap - self.end < cap / 4 || self.start + need > cap) {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if need > self.buf.len() || self.end == self.buf.len() {
            let len = need.max(self.buf.len() * 2);
            self.buf.resize(len, 0);
        }
        &mut self.buf[self.end..]
    }

    /// `n` bytes were read into [`FrameBuf::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// The next complete frame, if the buffer holds one.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, WireError> {
        let Some((first, h, len)) = header(self.data())? else {
            return Ok(None);
        };
        let from = self.start + h;
        self.start = from + len;
        Ok(Some(Frame {
            opcode: first & 0x0f,
            compressed: first & 0x40 != 0,
            payload: &self.buf[from..from + len],
        }))
    }
}

/// `(first header byte, header length, payload length)` of the frame at
/// the start of `b`, when all of it is there. RSV1 is allowed (a
/// compressed message, when deflate was agreed); RSV2 and RSV3 are not.
fn header(b: &[u8]) -> Result<Option<(u8, usize, usize)>, WireError> {
    if b.len() < 2 {
        return Ok(None);
    }
    if b[0] & 0x30 != 0 {
        return Err(WireError::Protocol("reserved bits set"));
    }
    if b[1] & 0x80 != 0 {
        return Err(WireError::Protocol("masked server frame"));
    }
    let (h, len) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (4, u64::from(u16::from_be_bytes([b[2], b[3]]))),
        127 if b.len() >= 10 => {
            let mut n = [0; 8];
            n.copy_from_slice(&b[2..10]);
            (10, u64::from_be_bytes(n))
        }
        126 | 127 => return Ok(None),
        n => (2, u64::from(n)),
    };
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= MAX_FRAME)
        .ok_or(WireError::Protocol("frame larger than 64 MiB"))?;
    Ok((b.len() >= h + len).then_some((b[0], h, len)))
}

/// Append a final client frame (masked with the zero key) to `out`.
pub fn put_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    out.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n <= 0xffff => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(payload);
}

/// A text frame of `payload`.
pub fn text_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    put_frame(&mut out, OP_TEXT, payload);
    out
}

/// Is this text the server's JSON `ping`? (The clients look for the
/// substring in the first 25 characters, and so do we.)
pub fn is_server_ping(text: &[u8]) -> bool {
    scan::find(&text[..text.len().min(25)], br#""t":"ping""#).is_some()
}

/// How to open TLS connections: a rustls client that trusts one CA, and
/// the server name to check the certificate against.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// A client (TLS 1.2 and 1.3, the `ring` provider, ALPN `http/1.1` as
    /// the server offers) that trusts the PEM certificates of `ca_pem` and
    /// expects `name` (an IP address or a DNS name) in the server's.
    pub fn trusting(ca_pem: &Path, name: &str) -> Result<Self, CliError> {
        let bad = |what: String| CliError::Bench(format!("TLS client: {what}"));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(ca_pem)
            .map_err(|e| bad(format!("{}: {e}", ca_pem.display())))?
        {
            let cert = cert.map_err(|e| bad(format!("{}: {e}", ca_pem.display())))?;
            roots
                .add(cert)
                .map_err(|e| bad(format!("{}: {e}", ca_pem.display())))?;
        }
        // `ring`, as the server (src/tls.rs says why; rustls marks it
        // deprecated for want of post-quantum key exchange).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| bad(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name = ServerName::try_from(name.to_owned())
            .map_err(|e| bad(format!("server name {name:?}: {e}")))?;
        Ok(Self {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }
}

/// The socket of a [`WsConn`]: plain TCP or a TLS session over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Stream {
    async fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf).await,
            Self::Tls(s) => s.read(buf).await,
        }
    }

    async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.write_all(bytes).await,
            // tokio-rustls buffers what it encrypts: flush sends it.
            Self::Tls(s) => {
                s.write_all(bytes).await?;
                s.flush().await
            }
        }
    }
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Plain(_) => "Stream::Plain",
            Self::Tls(_) => "Stream::Tls",
        })
    }
}

/// A connection handed over to a thread of its own: blocking reads and
/// writes through `Read` and `Write`.
pub enum StdStream {
    /// Plain TCP.
    Plain(std::net::TcpStream),
    /// TLS, the session's buffered bytes included.
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, std::net::TcpStream>>),
}

impl StdStream {
    /// The TCP socket under it.
    pub fn tcp(&self) -> &std::net::TcpStream {
        match self {
            Self::Plain(s) => s,
            Self::Tls(s) => &s.sock,
        }
    }
}

impl Read for StdStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.read(buf),
            Self::Tls(s) => s.read(buf),
        }
    }
}

impl Write for StdStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Self::Plain(s) => s.write(buf),
            Self::Tls(s) => s.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.write_all(buf),
            Self::Tls(s) => s.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Self::Plain(s) => s.flush(),
            Self::Tls(s) => s.flush(),
        }
    }
}

/// One client connection after a completed upgrade.
#[derive(Debug)]
pub struct WsConn {
    stream: Stream,
    buf: FrameBuf,
    /// The end-to-end key, when the connection agreed one.
    pub e2e: Option<wse::e2e::E2eKey>,
}

impl WsConn {
    /// Connect to `addr` and upgrade; reads `buf_size` bytes at a time.
    pub async fn connect(addr: SocketAddr, buf_size: usize) -> Result<Self, WireError> {
        Self::connect_with(addr, buf_size, false, None).await
    }

    /// [`WsConn::connect`], offering per-message deflate when `deflate`,
    /// over TLS when `tls` is given.
    pub async fn connect_with(
        addr: SocketAddr,
        buf_size: usize,
        deflate: bool,
        tls: Option<&ClientTls>,
    ) -> Result<Self, WireError> {
        let tcp = TcpStream::connect(addr).await.map_err(io_err("connect"))?;
        tcp.set_nodelay(true).map_err(io_err("set TCP_NODELAY"))?;
        let mut stream = match tls {
            None => Stream::Plain(tcp),
            Some(t) => Stream::Tls(Box::new(
                t.connector
                    .connect(t.name.clone(), tcp)
                    .await
                    .map_err(io_err("TLS handshake"))?,
            )),
        };
        stream
            .write_all(if deflate { UPGRADE_DEFLATE } else { UPGRADE })
            .await
            .map_err(io_err("send the upgrade request"))?;
        let mut buf = FrameBuf::new(buf_size);
        loop {
            let n = stream
                .read(buf.spare())
                .await
                .map_err(io_err("read the upgrade response"))?;
            if n == 0 {
                return Err(WireError::Upgrade("connection closed".into()));
            }
            buf.filled(n);
            if let Some(at) = scan::find(buf.data(), b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf.data()[..at]).into_owned();
                let status = head.lines().next().unwrap_or_default();
                if !status.starts_with("HTTP/1.1 101") {
                    return Err(WireError::Upgrade(status.to_owned()));
                }
                if deflate
                    && !head
                        .to_ascii_lowercase()
                        .contains("sec-websocket-extensions: permessage-deflate")
                {
                    return Err(WireError::Upgrade(
                        "per-message deflate offered but not agreed".into(),
                    ));
                }
                buf.consume(at + 4);
                return Ok(Self {
                    stream,
                    buf,
                    e2e: None,
                });
            }
            if buf.data().len() > MAX_RESPONSE {
                return Err(WireError::Upgrade("response too long".into()));
            }
        }
    }

    /// Read what the socket has (waiting for something); `Ok(0)` when the
    /// server closed the connection.
    pub async fn fill(&mut self) -> Result<usize, WireError> {
        let n = self
            .stream
            .read(self.buf.spare())
            .await
            .map_err(io_err("read"))?;
        self.buf.filled(n);
        Ok(n)
    }

    /// The next complete frame already read.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, WireError> {
        self.buf.next_frame()
    }

    /// Write ready-made frames.
    pub async fn send(&mut self, frames: &[u8]) -> Result<(), WireError> {
        self.stream.write_all(frames).await.map_err(io_err("send"))
    }

    /// Send one text frame.
    pub async fn send_text(&mut self, payload: &[u8]) -> Result<(), WireError> {
        self.send(&text_frame(payload)).await
    }

    /// Read until a text frame containing `needle` arrives; its payload.
    /// Answers pings on the way; other frames are skipped.
    pub async fn wait_for_text(&mut self, needle: &[u8]) -> Result<Vec<u8>, WireError> {
        loop {
            let mut replies = Vec::new();
            while let Some(f) = self.next_frame()? {
                match f.opcode {
                    OP_TEXT if scan::find(f.payload, needle).is_some() => {
                        return Ok(f.payload.to_vec());
                    }
                    OP_TEXT if is_server_ping(f.payload) => {
                        put_frame(&mut replies, OP_TEXT, PONG_TEXT);
                    }
                    OP_PING => put_frame(&mut replies, OP_PONG, f.payload),
                    OP_CLOSE => return Err(WireError::Closed(f.close_code())),
                    _ => {}
                }
            }
            if !replies.is_empty() {
                self.send(&replies).await?;
            }
            if self.fill().await? == 0 {
                return Err(WireError::Closed(None));
            }
        }
    }

    /// The connection as a blocking `std` stream (for a dedicated thread),
    /// and what was read but not yet taken. A TLS session goes along with
    /// its socket, plaintext it has decrypted but not yet given out
    /// included.
    pub fn into_std(self) -> Result<(StdStream, FrameBuf), WireError> {
        let detach = |s: TcpStream| {
            let s = s.into_std().map_err(io_err("detach the socket"))?;
            s.set_nonblocking(false)
                .map_err(io_err("make the socket blocking"))?;
            Ok::<_, WireError>(s)
        };
        let s = match self.stream {
            Stream::Plain(s) => StdStream::Plain(detach(s)?),
            Stream::Tls(s) => {
                let (tcp, session) = s.into_inner();
                StdStream::Tls(Box::new(rustls::StreamOwned::new(session, detach(tcp)?)))
            }
        };
        Ok((s, self.buf))
    }
}

/// What a freshly opened connection waits for before it counts as open.
#[derive(Clone, Copy, Debug)]
pub enum Greeting {
    /// The server's `server_ready`.
    ServerReady,
    /// Subscribe to the topic and wait for the successful reply.
    Subscribe(&'static str),
    /// Subscribe, then agree an end-to-end key (everything after arrives
    /// sealed).
    SubscribeEncrypted(&'static str),
    /// Subscribe on a connection that agreed per-message deflate.
    SubscribeDeflate(&'static str),
}

/// Open `n` connections to `addr`, at most `parallel` at a time (the server
/// bounds pending handshakes too), each greeted as asked. Fails with the
/// first connection that fails.
pub async fn open_many(
    addr: SocketAddr,
    n: usize,
    buf_size: usize,
    greeting: Greeting,
    parallel: usize,
) -> Result<Vec<WsConn>, WireError> {
    open_many_with(addr, None, n, buf_size, greeting, parallel).await
}

/// [`open_many`], over TLS when `tls` is given.
pub async fn open_many_with(
    addr: SocketAddr,
    tls: Option<&ClientTls>,
    n: usize,
    buf_size: usize,
    greeting: Greeting,
    parallel: usize,
) -> Result<Vec<WsConn>, WireError> {
    let permits = Arc::new(Semaphore::new(parallel.max(1)));
    let mut tasks = JoinSet::new();
    for _ in 0..n {
        let permits = permits.clone();
        let tls = tls.cloned();
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            tokio::time::timeout(
                OPEN_TIMEOUT,
                open_one(addr, tls.as_ref(), buf_size, greeting),
            )
            .await
            .map_err(|_| WireError::Timeout("opening a connection"))?
        });
    }
    let mut conns = Vec::with_capacity(n);
    while let Some(done) = tasks.join_next().await {
        let conn = done.map_err(|e| WireError::Io {
            what: "join a connecting task",
            source: io::Error::other(e),
        })??;
        conns.push(conn);
    }
    Ok(conns)
}

async fn open_one(
    addr: SocketAddr,
    tls: Option<&ClientTls>,
    buf_size: usize,
    greeting: Greeting,
) -> Result<WsConn, WireError> {
    let deflate = matches!(greeting, Greeting::SubscribeDeflate(_));
    let mut conn = WsConn::connect_with(addr, buf_size, deflate, tls).await?;
    match greeting {
        Greeting::ServerReady => {
            conn.wait_for_text(br#""t":"server_ready""#).await?;
        }
        Greeting::Subscribe(topic)
        | Greeting::SubscribeEncrypted(topic)
        | Greeting::SubscribeDeflate(topic) => {
            if !matches!(greeting, Greeting::SubscribeEncrypted(_)) {
                // A plain hello, as the wse-client packages send on
                // connecting: the server holds topic data until then.
                conn.send_text(PLAIN_HELLO).await?;
                conn.wait_for_text(br#""t":"server_hello""#).await?;
            }
            let request = format!(
                r#"{{"t":"subscription_update","p":{{"action":"subscribe","topics":["{topic}"]}}}}"#
            );
            conn.send_text(request.as_bytes()).await?;
            let reply = conn.wait_for_text(br#""t":"subscription_update""#).await?;
            if scan::find(&reply, br#""success":true"#).is_none() {
                return Err(WireError::Upgrade(format!(
                    "subscribing to {topic:?} failed: {}",
                    String::from_utf8_lossy(&reply)
                )));
            }
            if matches!(greeting, Greeting::SubscribeEncrypted(_)) {
                agree_key(&mut conn).await?;
            }
        }
    }
    Ok(conn)
}

/// A `client_hello` that does not ask for encryption.
const PLAIN_HELLO: &[u8] = br#"{"c":"WSE","t":"client_hello","p":{"client_version":"wse-bench","protocol_version":1,"features":{"encryption":false}},"v":1}"#;

/// `client_hello` with a fresh P-256 key, then the key from `server_hello`.
async fn agree_key(conn: &mut WsConn) -> Result<(), WireError> {
    let pair = wse::crypto::KeyPair::generate();
    let hello = format!(
        r#"{{"c":"WSE","t":"client_hello","p":{{"client_version":"wse-bench","protocol_version":1,"features":{{"encryption":true}},"encryption_public_key":"{}"}},"v":1}}"#,
        pair.public_key_base64()
    );
    conn.send_text(hello.as_bytes()).await?;
    let reply = conn.wait_for_text(br#""t":"server_hello""#).await?;
    let refused = || WireError::Upgrade(format!("no key in {}", String::from_utf8_lossy(&reply)));
    let v: serde_json::Value = serde_json::from_slice(&reply).map_err(|_| refused())?;
    let server_key = v["p"]["encryption_public_key"]
        .as_str()
        .ok_or_else(refused)?;
    let peer = wse::crypto::PeerPublicKey::from_base64(server_key).map_err(|_| refused())?;
    conn.e2e = Some(wse::e2e::E2eKey::from_aes_key(&pair.derive_aes_key(&peer)));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A server frame (unmasked).
    fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0x80 | opcode];
        match payload.len() {
            n if n < 126 => out.push(n as u8),
            n if n <= 0xffff => {
                out.push(126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(payload);
        out
    }

    /// Feed `bytes` into `buf` in pieces of `step`, collecting frames.
    fn feed(buf: &mut FrameBuf, bytes: &[u8], step: usize) -> Vec<(u8, Vec<u8>)> {
        let mut got = Vec::new();
        for piece in bytes.chunks(step) {
            let mut rest = piece;
            while !rest.is_empty() {
                let spare = buf.spare();
                let n = spare.len().min(rest.len());
                spare[..n].copy_from_slice(&rest[..n]);
                buf.filled(n);
                rest = &rest[n..];
                while let Some(f) = buf.next_frame().unwrap() {
                    got.push((f.opcode, f.payload.to_vec()));
                }
            }
        }
        got
    }

    #[test]
    fn frames_come_out_whole_however_the_bytes_arrive() {
        let big = vec![b'z'; 70_000];
        let mid = vec![b'm'; 300];
        let mut stream = Vec::new();
        let mut want = Vec::new();
        for i in 0..50 {
            let p: &[u8] = match i % 4 {
                0 => b"{\"o\":1}",
                1 => &mid,
                2 if i == 10 => &big,
                _ => b"",
            };
            stream.extend(server_frame(OP_TEXT, p));
            want.push((OP_TEXT, p.to_vec()));
        }
        stream.extend(server_frame(OP_CLOSE, &1013u16.to_be_bytes()));
        want.push((OP_CLOSE, 1013u16.to_be_bytes().to_vec()));
        for step in [1, 3, 100, 4096, stream.len()] {
            let mut buf = FrameBuf::new(256);
            assert_eq!(feed(&mut buf, &stream, step), want, "step {step}");
        }
    }

    #[test]
    fn bad_frames_are_refused() {
        let mut buf = FrameBuf::new(256);
        buf.spare()[..2].copy_from_slice(&[0x81, 0x81]);
        buf.filled(2);
        assert!(matches!(buf.next_frame(), Err(WireError::Protocol(_))));
        let mut buf = FrameBuf::new(256);
        buf.spare()[..10].copy_from_slice(&[0x81, 127, 0xff, 0, 0, 0, 0, 0, 0, 0]);
        buf.filled(10);
        assert!(matches!(buf.next_frame(), Err(WireError::Protocol(_))));
    }

    #[test]
    fn client_frames_are_masked_with_the_zero_key() {
        assert_eq!(text_frame(b"hi"), [0x81, 0x82, 0, 0, 0, 0, b'h', b'i']);
        let long = text_frame(&[b'a'; 200]);
        assert_eq!(&long[..8], &[0x81, 0x80 | 126, 0, 200, 0, 0, 0, 0]);
        assert_eq!(long.len(), 208);
        assert!(is_server_ping(br#"{"c":"WSE","t":"ping","p":{}}"#));
        assert!(!is_server_ping(br#"{"c":"WSE","t":"PONG","p":{}}"#));
    }
}
