//! WebSocket frames: building server frames and parsing client frames.

use std::io::Cursor;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use tungstenite::protocol::frame::FrameHeader;
use tungstenite::protocol::frame::coding::{Control, Data, OpCode};

use super::deflate::Inflater;

/// Close codes the server uses, with why each was chosen (see
/// docs/PROTOCOL.md: both clients reconnect on every code except 1000,
/// 1001, 1005, 1008, 4401 and 4403).
pub mod close_code {
    /// The server stops or restarts: clients come back later.
    pub const SERVICE_RESTART: u16 = 1012;
    /// The connection's outbound backlog passed its limit (slow consumer):
    /// reconnect and recover from the log.
    pub const TRY_AGAIN_LATER: u16 = 1013;
    /// Nothing arrived for `idle_timeout`: a reconnect-inviting code.
    pub const IDLE_TIMEOUT: u16 = 4408;
    /// A frame or message above `max_message_size`.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// A text frame that is not UTF-8.
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// A frame that breaks RFC 6455.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// Authentication failed (CLIENT_PROTOCOL.md §2.3).
    pub const AUTH_FAILED: u16 = 4401;
    /// The token expired (`close_on_token_expiry`): the clients treat it
    /// as an authentication failure, the TypeScript one retrying with a
    /// refreshed token.
    pub const TOKEN_EXPIRED: u16 = AUTH_FAILED;
    /// The end-to-end key reached `e2e_rekey_interval`: reconnect for a
    /// fresh key (the clients reconnect on any code they do not know).
    pub const REKEY: u16 = 4000;
}

/// Bytes of the header of a server frame carrying `len` payload bytes.
pub fn header_len(len: usize) -> usize {
    match len {
        0..=125 => 2,
        126..=65535 => 4,
        _ => 10,
    }
}

/// Append the header of an unmasked, final frame of `opcode` with `len`
/// payload bytes.
pub fn put_header(out: &mut BytesMut, opcode: u8, len: usize) {
    put_header_bits(out, 0x80 | opcode, len);
}

/// Append the header of an unmasked, final frame of `opcode` whose `len`
/// payload bytes are a compressed message (RSV1 set, RFC 7692 §6).
pub fn put_compressed_header(out: &mut BytesMut, opcode: u8, len: usize) {
    put_header_bits(out, 0xC0 | opcode, len);
}

fn put_header_bits(out: &mut BytesMut, first: u8, len: usize) {
    out.put_u8(first);
    match len {
        0..=125 => out.put_u8(len as u8),
        126..=65535 => {
            out.put_u8(126);
            out.put_u16(len as u16);
        }
        _ => {
            out.put_u8(127);
            out.put_u64(len as u64);
        }
    }
}

/// The payload of a complete frame this server built (unmasked, final:
/// see [`put_header`]), without copying. Used to re-frame a shared
/// plaintext frame for one connection (end-to-end encryption).
pub fn payload_of(frame: &Bytes) -> Bytes {
    let start = match frame.get(1).map(|b| b & 0x7f) {
        None => return Bytes::new(),
        Some(126) => 4,
        Some(127) => 10,
        Some(_) => 2,
    };
    frame.slice(start.min(frame.len())..)
}

/// Opcode of a text frame.
pub const TEXT: u8 = 0x1;
/// Opcode of a binary frame.
pub const BINARY: u8 = 0x2;
const CLOSE: u8 = 0x8;
const PONG: u8 = 0xA;

/// A complete server frame of `opcode` around `payload`.
pub fn frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(header_len(payload.len()) + payload.len());
    put_header(&mut out, opcode, payload.len());
    out.extend_from_slice(payload);
    out.freeze()
}

/// A text frame.
pub fn text(payload: &[u8]) -> Bytes {
    frame(TEXT, payload)
}

/// A binary frame.
pub fn binary(payload: &[u8]) -> Bytes {
    frame(BINARY, payload)
}

/// A Pong answering a Ping with `payload`.
pub fn pong(payload: &[u8]) -> Bytes {
    frame(PONG, payload)
}

/// A Close frame; `None` sends no status code (clients observe 1005).
pub fn close(code: Option<u16>, reason: &str) -> Bytes {
    let mut payload = BytesMut::new();
    if let Some(code) = code {
        payload.put_u16(code);
        // Control frames carry at most 125 bytes.
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        payload.extend_from_slice(&reason.as_bytes()[..end]);
    }
    frame(CLOSE, &payload)
}

/// A complete message or control frame from a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message (valid UTF-8).
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A Ping (answered with a Pong carrying the same payload).
    Ping(Bytes),
    /// A Pong (ignored).
    Pong,
    /// A Close, with its status code if it had one.
    Close(Option<u16>),
}

impl Incoming {
    /// Payload bytes (0 for Pong and Close).
    #[must_use]
    pub fn len(&self) -> usize {
        match self {
            Self::Text(b) | Self::Binary(b) | Self::Ping(b) => b.len(),
            Self::Pong | Self::Close(_) => 0,
        }
    }

    /// No payload.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Why a client's frames end the connection, with the close code to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The frame breaks RFC 6455 (unmasked, reserved bits, bad fragments...).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A frame or message is larger than the limit.
    #[error("message of {0} bytes exceeds the limit")]
    TooBig(u64),
    /// A text message is not UTF-8.
    #[error("text message is not valid UTF-8")]
    InvalidUtf8,
    /// A compressed message (per-message deflate) is not valid deflate
    /// data.
    #[error("compressed message is not valid deflate data")]
    BadCompression,
}

impl FrameError {
    /// The close code the server answers with.
    pub fn close_code(&self) -> u16 {
        match self {
            Self::Protocol(_) => close_code::PROTOCOL_ERROR,
            Self::TooBig(_) => close_code::MESSAGE_TOO_BIG,
            Self::InvalidUtf8 | Self::BadCompression => close_code::INVALID_PAYLOAD,
        }
    }
}

/// Parses client frames out of a read buffer, reassembling fragmented
/// messages. `max_message` bounds one frame and one reassembled message;
/// a frame that is too big is refused from its header, before its payload
/// is buffered.
pub struct FrameParser {
    max_message: usize,
    /// Per-message deflate was negotiated: the first frame of a message may
    /// set RSV1, meaning the message is compressed (RFC 7692 §6).
    inflate: bool,
    /// Payload bytes of the text frame still arriving known to be valid
    /// UTF-8 (see [`FrameParser::check_arrived_text`]).
    early_checked: usize,
    /// A fragmented message being reassembled.
    partial: Option<Partial>,
}

/// A fragmented message so far.
struct Partial {
    text: bool,
    /// The message so far (inflated, for a compressed one).
    bytes: BytesMut,
    /// A compressed message's inflater.
    inflater: Option<Box<Inflater>>,
    /// For text: bytes known to be valid UTF-8 (a character split across
    /// fragments waits for the rest), so invalid text fails at the
    /// fragment that breaks it, not at the end of the message.
    checked: usize,
}

impl Partial {
    /// Check the bytes added since the last check; a sequence cut off at
    /// the end is fine unless `last`.
    fn check_utf8(&mut self, last: bool) -> Result<(), FrameError> {
        if !self.text {
            return Ok(());
        }
        match std::str::from_utf8(&self.bytes[self.checked..]) {
            Ok(_) => self.checked = self.bytes.len(),
            Err(e) if e.error_len().is_none() && !last => self.checked += e.valid_up_to(),
            Err(_) => return Err(FrameError::InvalidUtf8),
        }
        Ok(())
    }
}

/// Is `code` one a peer may send in a Close frame (RFC 6455 §7.4, and the
/// IANA registry's 1012-1014)? 1004-1006 and 1015 are reserved, never sent;
/// 3000-4999 are for libraries and applications.
fn valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// The status code of a client's Close payload: none (empty), or a valid
/// code followed by a UTF-8 reason.
fn close_status(payload: &[u8]) -> Result<Option<u16>, FrameError> {
    match payload {
        [] => Ok(None),
        [_] => Err(FrameError::Protocol("close frame with a 1-byte payload")),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            if !valid_close_code(code) {
                return Err(FrameError::Protocol("close frame with an invalid code"));
            }
            std::str::from_utf8(reason).map_err(|_| FrameError::InvalidUtf8)?;
            Ok(Some(code))
        }
    }
}

impl FrameParser {
    /// A parser with the given message size limit.
    pub fn new(max_message: usize) -> Self {
        Self {
            max_message,
            inflate: false,
            early_checked: 0,
            partial: None,
        }
    }

    /// A parser that also takes compressed messages (per-message deflate
    /// negotiated); `max_message` bounds them inflated too.
    pub fn with_inflate(max_message: usize) -> Self {
        Self {
            inflate: true,
            ..Self::new(max_message)
        }
    }

    /// Check the part of a text frame's payload that has arrived (`arrived`,
    /// still masked) as far as it goes, so that a large frame with invalid
    /// UTF-8 early on fails when those bytes come (Autobahn 6.4.3), not
    /// once the whole frame is in. Only new bytes are looked at: a frame
    /// arriving in many reads is checked once over, plus a character split
    /// across reads.
    fn check_arrived_text(&mut self, arrived: &[u8], mask: [u8; 4]) -> Result<(), FrameError> {
        let start = self.early_checked.min(arrived.len());
        if start == arrived.len() {
            return Ok(());
        }
        let mut plain = arrived[start..].to_vec();
        // The mask's phase at `start`: `unmask` starts at key byte 0.
        let phase = start % 4;
        let shifted = [
            mask[phase],
            mask[(phase + 1) % 4],
            mask[(phase + 2) % 4],
            mask[(phase + 3) % 4],
        ];
        unmask(&mut plain, shifted);
        match std::str::from_utf8(&plain) {
            Ok(_) => self.early_checked = arrived.len(),
            Err(e) if e.error_len().is_none() => self.early_checked = start + e.valid_up_to(),
            Err(_) => return Err(FrameError::InvalidUtf8),
        }
        Ok(())
    }

    /// Bytes the next frame needs before it can be parsed, beyond what
    /// `buf` holds (a hint for the reader's buffer size).
    pub fn wanted(buf: &[u8]) -> usize {
        let mut cur = Cursor::new(buf);
        match FrameHeader::parse(&mut cur) {
            Ok(Some((_, len))) => {
                // Saturating: a header may claim a length near 2^64.
                (cur.position() as usize)
                    .saturating_add(usize::try_from(len).unwrap_or(usize::MAX))
                    .saturating_sub(buf.len())
            }
            _ => 14usize.saturating_sub(buf.len()),
        }
    }

    /// The next complete message or control frame in `buf` (consumed), or
    /// `None` when more bytes are needed.
    pub fn next(&mut self, buf: &mut BytesMut) -> Result<Option<Incoming>, FrameError> {
        loop {
            let mut cur = Cursor::new(&buf[..]);
            let (header, len) = match FrameHeader::parse(&mut cur) {
                Ok(Some(h)) => h,
                Ok(None) => return Ok(None),
                Err(_) => return Err(FrameError::Protocol("malformed frame header")),
            };
            let header_len = cur.position() as usize;
            if header.rsv2 || header.rsv3 {
                return Err(FrameError::Protocol("reserved bits set"));
            }
            let compressed = header.rsv1;
            if compressed
                && !(self.inflate
                    && matches!(header.opcode, OpCode::Data(Data::Text | Data::Binary)))
            {
                // RSV1 is per-message deflate's mark, on a message's first
                // frame only, and only once negotiated.
                return Err(FrameError::Protocol("reserved bit 1 set"));
            }
            let Some(mask) = header.mask else {
                return Err(FrameError::Protocol("client frame is not masked"));
            };
            let is_control = matches!(header.opcode, OpCode::Control(_));
            if is_control && (len > 125 || !header.is_final) {
                return Err(FrameError::Protocol("control frame too long or fragmented"));
            }
            // Saturating: a continuation frame may claim a length near
            // 2^64, and the sum wrapped past the limit check (the fuzz
            // target `frames` found it: a panic in `split_to`).
            let so_far = self.partial.as_ref().map_or(0, |p| p.bytes.len() as u64);
            let total = so_far.saturating_add(len);
            if !is_control && total > self.max_message as u64 {
                return Err(FrameError::TooBig(total));
            }
            if buf.len() < header_len + len as usize {
                let text_from_boundary = !compressed
                    && match (header.opcode, &self.partial) {
                        (OpCode::Data(Data::Text), None) => true,
                        (OpCode::Data(Data::Continue), Some(p)) => {
                            p.text && p.inflater.is_none() && p.checked == p.bytes.len()
                        }
                        _ => false,
                    };
                if text_from_boundary {
                    self.check_arrived_text(&buf[header_len..], mask)?;
                }
                return Ok(None);
            }
            self.early_checked = 0;
            buf.advance(header_len);
            let mut payload = buf.split_to(len as usize);
            unmask(&mut payload, mask);
            match header.opcode {
                OpCode::Control(Control::Ping) => {
                    return Ok(Some(Incoming::Ping(payload.freeze())));
                }
                OpCode::Control(Control::Pong) => return Ok(Some(Incoming::Pong)),
                OpCode::Control(Control::Close) => {
                    return Ok(Some(Incoming::Close(close_status(&payload)?)));
                }
                OpCode::Control(_) => return Err(FrameError::Protocol("reserved control opcode")),
                OpCode::Data(Data::Text | Data::Binary) if self.partial.is_some() => {
                    return Err(FrameError::Protocol("new message inside a fragmented one"));
                }
                OpCode::Data(Data::Text) | OpCode::Data(Data::Binary) => {
                    let text = header.opcode == OpCode::Data(Data::Text);
                    if header.is_final && !compressed {
                        return finish(text, payload).map(Some);
                    }
                    let mut partial = Partial {
                        text,
                        bytes: BytesMut::new(),
                        inflater: None,
                        checked: 0,
                    };
                    if compressed {
                        let mut inflater = Inflater::new(self.max_message);
                        inflater.push(&payload, header.is_final, &mut partial.bytes)?;
                        if header.is_final {
                            return finish(text, partial.bytes).map(Some);
                        }
                        partial.inflater = Some(Box::new(inflater));
                    } else {
                        partial.bytes = payload;
                    }
                    partial.check_utf8(false)?;
                    self.partial = Some(partial);
                }
                OpCode::Data(Data::Continue) => {
                    let Some(mut partial) = self.partial.take() else {
                        return Err(FrameError::Protocol("continuation without a message"));
                    };
                    match &mut partial.inflater {
                        Some(inflater) => {
                            inflater.push(&payload, header.is_final, &mut partial.bytes)?;
                        }
                        None => partial.bytes.extend_from_slice(&payload),
                    }
                    partial.check_utf8(header.is_final)?;
                    if header.is_final {
                        return Ok(Some(if partial.text {
                            Incoming::Text(partial.bytes.freeze())
                        } else {
                            Incoming::Binary(partial.bytes.freeze())
                        }));
                    }
                    self.partial = Some(partial);
                }
                OpCode::Data(_) => return Err(FrameError::Protocol("reserved data opcode")),
            }
        }
    }
}

fn finish(text: bool, payload: BytesMut) -> Result<Incoming, FrameError> {
    if text {
        std::str::from_utf8(&payload).map_err(|_| FrameError::InvalidUtf8)?;
        Ok(Incoming::Text(payload.freeze()))
    } else {
        Ok(Incoming::Binary(payload.freeze()))
    }
}

/// Remove a client's masking (XOR with the 4-byte key), 8 bytes at a time.
fn unmask(buf: &mut [u8], mask: [u8; 4]) {
    let wide = u64::from_ne_bytes([
        mask[0], mask[1], mask[2], mask[3], mask[0], mask[1], mask[2], mask[3],
    ]);
    let mut chunks = buf.chunks_exact_mut(8);
    for c in &mut chunks {
        let v = u64::from_ne_bytes(c.try_into().expect("8 bytes")) ^ wide;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_of_reads_every_header_size() {
        for len in [0usize, 1, 125, 126, 65535, 65536] {
            let payload = vec![7u8; len];
            assert_eq!(payload_of(&text(&payload)), payload, "len {len}");
        }
        assert!(payload_of(&Bytes::new()).is_empty());
    }

    /// A masked client frame.
    fn client(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mask = [0x12, 0x34, 0x56, 0x78];
        let mut out = vec![(if fin { 0x80 } else { 0 }) | opcode];
        match payload.len() {
            n @ 0..=125 => out.push(0x80 | n as u8),
            n @ 126..=65535 => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn parse_all(bytes: &[u8], max: usize) -> Result<Vec<Incoming>, FrameError> {
        let mut p = FrameParser::new(max);
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = p.next(&mut buf)? {
            out.push(m);
        }
        Ok(out)
    }

    #[test]
    fn close_frames_are_validated_to_the_letter() {
        let close_with = |payload: &[u8]| parse_all(&client(0x8, true, payload), 100);
        assert!(matches!(
            close_with(b"").unwrap()[..],
            [Incoming::Close(None)]
        ));
        for code in [1000u16, 1001, 1003, 1007, 1011, 1012, 1014, 3000, 4999] {
            let mut p = code.to_be_bytes().to_vec();
            p.extend_from_slice("bye é".as_bytes());
            assert!(
                matches!(close_with(&p).unwrap()[..], [Incoming::Close(Some(c))] if c == code),
                "{code}"
            );
        }
        assert_eq!(
            close_with(&[0x03]).unwrap_err().close_code(),
            1002,
            "1 byte"
        );
        for code in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            let err = close_with(&code.to_be_bytes()).unwrap_err();
            assert_eq!(err.close_code(), 1002, "code {code}");
        }
        let bad_reason = [0x03, 0xe8, 0xce, 0xba, 0xe1, 0xbd, 0xb9, 0xce, 0xbc, 0xff];
        assert_eq!(close_with(&bad_reason).unwrap_err().close_code(), 1007);
    }

    #[test]
    fn fragmented_text_fails_at_the_fragment_that_breaks_utf8() {
        // A character split across fragments is fine.
        let euro = "€".as_bytes();
        let mut ok = client(0x1, false, &euro[..1]);
        ok.extend(client(0x0, false, &euro[1..2]));
        ok.extend(client(0x0, true, &euro[2..]));
        assert!(matches!(&parse_all(&ok, 100).unwrap()[..], [Incoming::Text(t)] if &t[..] == euro));
        // An invalid byte fails at once, before the final fragment arrives.
        let mut p = FrameParser::new(100);
        let mut buf = BytesMut::from(&client(0x1, false, b"ok \xff")[..]);
        assert_eq!(p.next(&mut buf).unwrap_err(), FrameError::InvalidUtf8);
        // A sequence still cut off at the end of the message is invalid.
        let mut cut = client(0x1, false, b"a");
        cut.extend(client(0x0, true, &euro[..2]));
        assert_eq!(parse_all(&cut, 100).unwrap_err(), FrameError::InvalidUtf8);
    }

    #[test]
    fn a_continuation_claiming_a_length_near_2_pow_64_is_too_big() {
        // Found by the `frames` fuzz target: the message's length so far
        // plus such a length wrapped past the limit check.
        let mut bytes = client(0x2, false, b"abc");
        bytes.extend_from_slice(&[0x80, 0x80 | 127]);
        bytes.extend_from_slice(&u64::MAX.to_be_bytes());
        bytes.extend_from_slice(&[1, 2, 3, 4, 0, 0]);
        assert!(matches!(parse_all(&bytes, 100), Err(FrameError::TooBig(_))));
        assert!(FrameParser::wanted(&bytes[9..]) > 1 << 60, "no overflow");
    }

    #[test]
    fn server_frames_have_minimal_headers() {
        assert_eq!(&text(b"hi")[..], b"\x81\x02hi");
        assert_eq!(text(&[b'a'; 126])[..4], [0x81, 126, 0, 126]);
        assert_eq!(binary(&[0; 70_000])[..2], [0x82, 127]);
        assert_eq!(&close(Some(1012), "bye")[..], b"\x88\x05\x03\xf4bye");
        assert_eq!(&close(None, "ignored")[..], b"\x88\x00");
        for n in [0, 125, 126, 65535, 65536] {
            assert_eq!(text(&vec![b'x'; n]).len(), header_len(n) + n);
        }
    }

    #[test]
    fn parses_masked_messages_fragments_and_control_frames() {
        let mut bytes = client(0x1, true, "héllo".as_bytes());
        bytes.extend(client(0x2, false, b"ab"));
        bytes.extend(client(0x9, true, b"ping!"));
        bytes.extend(client(0x0, false, b"cd"));
        bytes.extend(client(0x0, true, &[7; 300]));
        bytes.extend(client(0x8, true, &[0x03, 0xe8]));
        let got = parse_all(&bytes, 1 << 20).unwrap();
        let mut joined = b"abcd".to_vec();
        joined.extend([7; 300]);
        assert_eq!(
            got,
            vec![
                Incoming::Text(Bytes::from("héllo")),
                Incoming::Ping(Bytes::from_static(b"ping!")),
                Incoming::Binary(Bytes::from(joined)),
                Incoming::Close(Some(1000)),
            ]
        );
    }

    #[test]
    fn partial_input_waits_for_more() {
        let bytes = client(0x1, true, &[b'x'; 1000]);
        let mut p = FrameParser::new(1 << 20);
        let mut buf = BytesMut::new();
        for chunk in bytes.chunks(7) {
            buf.extend_from_slice(chunk);
            if let Some(m) = p.next(&mut buf).unwrap() {
                assert_eq!(m, Incoming::Text(Bytes::from(vec![b'x'; 1000])));
                assert!(buf.is_empty());
                return;
            }
        }
        panic!("message never completed");
    }

    #[test]
    fn bad_frames_are_refused_with_the_right_code() {
        let unmasked = [0x81u8, 0x02, b'h', b'i'];
        assert_eq!(parse_all(&unmasked, 100).unwrap_err().close_code(), 1002);
        let mut rsv = client(0x1, true, b"x");
        rsv[0] |= 0x40;
        assert_eq!(parse_all(&rsv, 100).unwrap_err().close_code(), 1002);
        // Too big: refused from the header alone, before the payload arrives.
        let big = client(0x2, true, &[0; 2000]);
        let mut p = FrameParser::new(1000);
        let mut buf = BytesMut::from(&big[..10]);
        assert_eq!(p.next(&mut buf), Err(FrameError::TooBig(2000)));
        // Fragments add up against the limit.
        let mut frags = client(0x2, false, &[0; 600]);
        frags.extend(client(0x0, true, &[0; 600]));
        assert_eq!(parse_all(&frags, 1000).unwrap_err().close_code(), 1009);
        assert_eq!(
            parse_all(&client(0x1, true, &[0xff, 0xfe]), 100)
                .unwrap_err()
                .close_code(),
            1007
        );
        assert_eq!(
            parse_all(&client(0x0, true, b"x"), 100)
                .unwrap_err()
                .close_code(),
            1002
        );
        assert_eq!(
            parse_all(&client(0x9, false, b"x"), 100)
                .unwrap_err()
                .close_code(),
            1002
        );
        assert_eq!(
            parse_all(&client(0x3, true, b"x"), 100)
                .unwrap_err()
                .close_code(),
            1002
        );
    }

    #[test]
    fn unmask_matches_bytewise_xor() {
        let mask = [1, 2, 3, 4];
        for n in 0..40 {
            let data: Vec<u8> = (0..n as u8).collect();
            let mut fast = data.clone();
            unmask(&mut fast, mask);
            let slow: Vec<u8> = data
                .iter()
                .enumerate()
                .map(|(i, b)| b ^ mask[i % 4])
                .collect();
            assert_eq!(fast, slow);
        }
    }

    /// A client frame with RSV1 set (a compressed message's first frame).
    fn client_rsv1(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = client(opcode, fin, payload);
        f[0] |= 0x40;
        f
    }

    #[test]
    fn compressed_messages_are_inflated_once_negotiated() {
        let text = "caf\u{e9} au lait ".repeat(50);
        let packed = crate::ws::deflate::compress(text.as_bytes()).unwrap();
        let mut p = FrameParser::with_inflate(1 << 20);
        let mut buf = BytesMut::from(&client_rsv1(0x1, true, &packed)[..]);
        assert_eq!(
            p.next(&mut buf).unwrap(),
            Some(Incoming::Text(Bytes::from(text.clone())))
        );
        // Fragmented: RSV1 on the first frame only.
        let (a, b) = packed.split_at(packed.len() / 2);
        let mut bytes = client_rsv1(0x2, false, a);
        bytes.extend(client(0x0, true, b));
        let mut buf = BytesMut::from(&bytes[..]);
        assert_eq!(
            p.next(&mut buf).unwrap(),
            Some(Incoming::Binary(Bytes::from(text)))
        );
        // Plain messages still pass.
        let mut buf = BytesMut::from(&client(0x1, true, b"plain")[..]);
        assert_eq!(
            p.next(&mut buf).unwrap(),
            Some(Incoming::Text(Bytes::from_static(b"plain")))
        );
    }

    #[test]
    fn rsv1_is_refused_where_deflate_does_not_allow_it() {
        let packed = crate::ws::deflate::compress(&[b'a'; 300]).unwrap();
        // Not negotiated.
        assert_eq!(
            parse_all(&client_rsv1(0x1, true, &packed), 1 << 20),
            Err(FrameError::Protocol("reserved bit 1 set"))
        );
        let with = |bytes: &[u8]| {
            let mut p = FrameParser::with_inflate(1 << 20);
            let mut buf = BytesMut::from(bytes);
            let mut out = Vec::new();
            while let Some(m) = p.next(&mut buf)? {
                out.push(m);
            }
            Ok::<_, FrameError>(out)
        };
        // On a control frame, or a continuation.
        assert!(matches!(
            with(&client_rsv1(0x9, true, b"")),
            Err(FrameError::Protocol(_))
        ));
        let mut bytes = client(0x1, false, b"a");
        bytes.extend(client_rsv1(0x0, true, b"b"));
        assert!(matches!(with(&bytes), Err(FrameError::Protocol(_))));
        // Not deflate data; text that inflates to bad UTF-8; a bomb.
        assert_eq!(
            with(&client_rsv1(0x1, true, &[0xff; 8])),
            Err(FrameError::BadCompression)
        );
        let bad = crate::ws::deflate::compress(&[0xff; 300]).unwrap();
        assert_eq!(
            with(&client_rsv1(0x1, true, &bad)),
            Err(FrameError::InvalidUtf8)
        );
        let bomb = crate::ws::deflate::compress(&vec![b'a'; 4 << 20]).unwrap();
        assert!(matches!(
            with(&client_rsv1(0x2, true, &bomb)),
            Err(FrameError::TooBig(_))
        ));
    }

    #[test]
    fn invalid_utf8_fails_while_the_frame_is_still_arriving() {
        // Autobahn 6.4.3: one text frame sent in pieces; the invalid bytes
        // are in the second piece, the frame's end never comes.
        let payload = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80edited";
        let frame = client(0x1, true, payload);
        let mut p = FrameParser::new(1 << 20);
        let mut buf = BytesMut::from(&frame[..8]);
        assert_eq!(p.next(&mut buf), Ok(None), "valid so far");
        buf.extend_from_slice(&frame[8..frame.len() - 4]);
        assert_eq!(p.next(&mut buf), Err(FrameError::InvalidUtf8));
        // Valid text split inside a character and across reads is fine.
        let text = "κόσμε ".repeat(50);
        let frame = client(0x1, true, text.as_bytes());
        let mut p = FrameParser::new(1 << 20);
        let mut buf = BytesMut::new();
        let mut got = None;
        for piece in frame.chunks(7) {
            buf.extend_from_slice(piece);
            if let Some(m) = p.next(&mut buf).unwrap() {
                got = Some(m);
            }
        }
        assert_eq!(got, Some(Incoming::Text(Bytes::from(text))));
    }
}
