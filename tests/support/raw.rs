//! Raw sockets: a hand-made WebSocket upgrade over a plain `TcpStream`, so
//! a test can send bytes no WebSocket library would (unmasked frames,
//! reserved bits, invalid UTF-8, lying length headers), and read the
//! server's frames exactly as they are on the wire.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::WAIT;

/// Opcodes of RFC 6455.
pub mod op {
    /// Continuation frame.
    pub const CONT: u8 = 0x0;
    /// Text frame.
    pub const TEXT: u8 = 0x1;
    /// Binary frame.
    pub const BINARY: u8 = 0x2;
    /// Close frame.
    pub const CLOSE: u8 = 0x8;
    /// Ping frame.
    pub const PING: u8 = 0x9;
    /// Pong frame.
    pub const PONG: u8 = 0xA;
}

/// The mask every raw client frame uses (any key works).
pub const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// An upgrade request for `path` (with its query) and extra headers.
pub fn upgrade_request(path: &str, headers: &[(&str, &str)]) -> String {
    let mut req = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    req
}

/// A client frame: `first` is the first header byte (FIN, RSV bits and
/// opcode), `mask` `None` sends it unmasked (a protocol violation).
pub fn client_frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut out = vec![first];
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=65535 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked, final client frame of `opcode`.
pub fn masked(opcode: u8, payload: &[u8]) -> Vec<u8> {
    client_frame(0x80 | opcode, payload, Some(MASK))
}

/// A frame from the server, as read off the socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// FIN bit.
    pub fin: bool,
    /// RSV1: a compressed message (per-message deflate).
    pub compressed: bool,
    /// Opcode.
    pub opcode: u8,
    /// Payload (server frames are never masked).
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The close code of a Close frame (`None` without a status).
    pub fn close_code(&self) -> Option<u16> {
        assert_eq!(self.opcode, op::CLOSE, "not a Close frame: {self:?}");
        (self.payload.len() >= 2).then(|| u16::from_be_bytes([self.payload[0], self.payload[1]]))
    }

    /// The payload as text.
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.payload).expect("UTF-8 payload")
    }
}

/// A WebSocket connection driven by hand over a plain TCP socket.
pub struct RawWs {
    /// The socket.
    pub stream: TcpStream,
    /// Bytes read and not yet parsed.
    pub buf: Vec<u8>,
}

impl RawWs {
    /// Connect to `addr`, send an upgrade request for `path` with `headers`
    /// and read the response head; panics unless it is a 101.
    pub async fn connect(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Self {
        Self::connect_with(addr, upgrade_request(path, headers).as_bytes()).await
    }

    /// Connect and send `first` (an upgrade request, possibly followed by
    /// frames in the same write); panics unless the answer is a 101.
    pub async fn connect_with(addr: SocketAddr, first: &[u8]) -> Self {
        let stream = TcpStream::connect(addr).await.expect("TCP connect");
        Self::upgrade(stream, first).await
    }

    /// Send `first` (an upgrade request, possibly with frames after it) on
    /// an open socket; panics unless the answer is a 101.
    pub async fn upgrade(stream: TcpStream, first: &[u8]) -> Self {
        Self::upgrade_head(stream, first).await.0
    }

    /// [`RawWs::connect`], also returning the response head (its headers).
    pub async fn connect_head(
        addr: SocketAddr,
        path: &str,
        headers: &[(&str, &str)],
    ) -> (Self, String) {
        let stream = TcpStream::connect(addr).await.expect("TCP connect");
        Self::upgrade_head(stream, upgrade_request(path, headers).as_bytes()).await
    }

    async fn upgrade_head(mut stream: TcpStream, first: &[u8]) -> (Self, String) {
        stream.write_all(first).await.expect("write the upgrade");
        let mut ws = Self {
            stream,
            buf: Vec::new(),
        };
        let head = ws.read_response_head().await;
        assert!(
            head.starts_with("HTTP/1.1 101 "),
            "expected 101 Switching Protocols, got {head:?}"
        );
        (ws, head)
    }

    async fn read_response_head(&mut self) -> String {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end + 4]).into_owned();
                self.buf.drain(..end + 4);
                return head;
            }
            let n = self.read_more().await;
            assert!(n > 0, "connection closed before the response head");
        }
    }

    /// Read more bytes into the buffer; 0 at EOF (or reset).
    async fn read_more(&mut self) -> usize {
        self.buf.reserve(16 * 1024);
        match tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(_)) => 0,
            Err(_) => panic!("nothing read within {WAIT:?}"),
        }
    }

    /// Write raw bytes.
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Write bytes, ignoring errors (the server may already have closed).
    pub async fn send_lenient(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes).await;
    }

    /// Send a masked, final frame.
    pub async fn send_frame(&mut self, opcode: u8, payload: &[u8]) {
        self.send(&masked(opcode, payload)).await;
    }

    /// The next server frame; `None` when the connection ended first.
    pub async fn read_frame(&mut self) -> Option<RawFrame> {
        loop {
            if let Some((frame, used)) = parse_server_frame(&self.buf) {
                self.buf.drain(..used);
                return Some(frame);
            }
            if self.read_more().await == 0 {
                return None;
            }
        }
    }

    /// Read frames until a Close; returns it (panics if the connection
    /// ends without one). Data frames before it are returned too.
    pub async fn read_until_close(&mut self) -> (Vec<RawFrame>, RawFrame) {
        let mut before = Vec::new();
        loop {
            match self.read_frame().await {
                Some(f) if f.opcode == op::CLOSE => return (before, f),
                Some(f) => before.push(f),
                None => panic!("connection ended without a Close frame; frames: {before:?}"),
            }
        }
    }

    /// True when the server closes the TCP connection (EOF or reset)
    /// after whatever frames are still in flight.
    pub async fn ends(&mut self) -> bool {
        while self.read_frame().await.is_some() {}
        true
    }
}

/// Parse one unmasked server frame from the start of `buf`.
pub fn parse_server_frame(buf: &[u8]) -> Option<(RawFrame, usize)> {
    if buf.len() < 2 {
        return None;
    }
    assert_eq!(buf[1] & 0x80, 0, "server frames must not be masked");
    let (len, at) = match buf[1] & 0x7f {
        126 => {
            if buf.len() < 4 {
                return None;
            }
            (u16::from_be_bytes([buf[2], buf[3]]) as usize, 4)
        }
        127 => {
            if buf.len() < 10 {
                return None;
            }
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[2..10]);
            (u64::from_be_bytes(b) as usize, 10)
        }
        n => (n as usize, 2),
    };
    if buf.len() < at + len {
        return None;
    }
    Some((
        RawFrame {
            fin: buf[0] & 0x80 != 0,
            compressed: buf[0] & 0x40 != 0,
            opcode: buf[0] & 0x0f,
            payload: buf[at..at + len].to_vec(),
        },
        at + len,
    ))
}

/// Send `request` on a fresh socket and read everything the server writes
/// until it closes the connection.
pub async fn http_exchange(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.expect("TCP connect");
    stream.write_all(request).await.expect("write");
    read_to_close(&mut stream).await
}

/// Everything until EOF (a reset ends it too); panics after [`WAIT`].
pub async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return out,
            Ok(Ok(n)) => out.extend_from_slice(&chunk[..n]),
            Err(_) => panic!("the server did not close the connection within {WAIT:?}"),
        }
    }
}

/// How long the server takes to close a socket on which the client sends
/// `bytes` (possibly nothing), and what it wrote before closing.
pub async fn time_to_close(addr: SocketAddr, bytes: &[u8]) -> (Duration, Vec<u8>) {
    let mut stream = TcpStream::connect(addr).await.expect("TCP connect");
    let start = std::time::Instant::now();
    if !bytes.is_empty() {
        stream.write_all(bytes).await.expect("write");
    }
    let got = read_to_close(&mut stream).await;
    (start.elapsed(), got)
}
