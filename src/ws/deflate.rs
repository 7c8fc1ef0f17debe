//! Per-message deflate (RFC 7692): compressing a message the server sends,
//! inflating one a client sent. Both sides work without context takeover
//! (see `extensions`), so each message is compressed and inflated on its
//! own: the compressor is reused per thread, never per connection.

use std::cell::RefCell;

use bytes::BytesMut;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::frame::FrameError;

/// The four bytes a sync flush ends with, which RFC 7692 §7.2.1 removes
/// from a compressed message and §7.2.2 puts back before inflating.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];

thread_local! {
    /// Raw deflate (no zlib header), fast level: compression runs once per
    /// broadcast on the thread of the first subscriber to send it.
    static COMPRESSOR: RefCell<Compress> =
        RefCell::new(Compress::new(Compression::fast(), false));
}

/// `payload` compressed as one message (the tail removed), or `None` when
/// that would not make it smaller.
pub fn compress(payload: &[u8]) -> Option<Vec<u8>> {
    COMPRESSOR.with(|c| {
        let mut c = c.borrow_mut();
        c.reset();
        // Deflate rarely grows data by more than a few bytes per block.
        let mut out = Vec::with_capacity(payload.len() + 64);
        let mut input = payload;
        loop {
            let before = c.total_in();
            if c.compress_vec(input, &mut out, FlushCompress::Sync)
                .is_err()
            {
                return None;
            }
            input = &input[(c.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if out.len() > payload.len() + 1024 {
                return None;
            }
            out.reserve(4096);
        }
        if !out.ends_with(&TAIL) {
            return None;
        }
        out.truncate(out.len() - TAIL.len());
        (out.len() < payload.len()).then_some(out)
    })
}

/// Inflates one compressed message, fragment by fragment, refusing more
/// than `limit` bytes of output (a small frame may inflate to gigabytes).
pub struct Inflater {
    inner: Decompress,
    limit: usize,
}

/// Output is produced this much at a time, so the limit stops a bomb after
/// at most this many bytes past it.
const CHUNK: usize = 16 * 1024;

impl Inflater {
    /// A fresh inflater for one message of at most `limit` bytes.
    pub fn new(limit: usize) -> Self {
        Self {
            inner: Decompress::new(false),
            limit,
        }
    }

    /// Inflate `input` (the next fragment's payload) onto `out`; `last`:
    /// the message ends with this fragment.
    pub fn push(&mut self, input: &[u8], last: bool, out: &mut BytesMut) -> Result<(), FrameError> {
        self.feed(input, out)?;
        if last {
            self.feed(&TAIL, out)?;
        }
        Ok(())
    }

    fn feed(&mut self, mut input: &[u8], out: &mut BytesMut) -> Result<(), FrameError> {
        let mut chunk = [0u8; CHUNK];
        loop {
            let (in0, out0) = (self.inner.total_in(), self.inner.total_out());
            let status = self
                .inner
                .decompress(input, &mut chunk, FlushDecompress::Sync)
                .map_err(|_| FrameError::BadCompression)?;
            let used = (self.inner.total_in() - in0) as usize;
            let made = (self.inner.total_out() - out0) as usize;
            input = &input[used..];
            if out.len() + made > self.limit {
                return Err(FrameError::TooBig((out.len() + made) as u64));
            }
            out.extend_from_slice(&chunk[..made]);
            match status {
                // A final block (a client may set BFINAL): nothing may follow
                // but the tail put back after it.
                Status::StreamEnd => return Ok(()),
                // A full chunk: more output may be waiting, with or without
                // input left (Autobahn 12.x found the second case: output
                // held back from the previous chunk comes out with no
                // input read, and stopping there dropped the rest).
                _ if made == CHUNK => {}
                _ if input.is_empty() => return Ok(()),
                // Neither input read nor output made: the data is broken.
                _ if used == 0 && made == 0 => return Err(FrameError::BadCompression),
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflate(compressed: &[u8], limit: usize) -> Result<Vec<u8>, FrameError> {
        let mut out = BytesMut::new();
        Inflater::new(limit).push(compressed, true, &mut out)?;
        Ok(out.to_vec())
    }

    #[test]
    fn round_trips_and_skips_what_does_not_shrink() {
        let text = br#"{"t":"price","p":{"symbol":"ABC","bid":101.25,"ask":101.5}}"#.repeat(20);
        let packed = compress(&text).unwrap();
        assert!(packed.len() < text.len() / 4, "{}", packed.len());
        assert_eq!(inflate(&packed, 1 << 20).unwrap(), text);
        // Random-looking bytes do not shrink: sent plain.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let noise: Vec<u8> = (0..512)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        assert_eq!(compress(&noise), None);
    }

    #[test]
    fn inflates_across_fragments() {
        let text = b"hello hello hello hello world".repeat(100);
        let packed = compress(&text).unwrap();
        let mut inf = Inflater::new(1 << 20);
        let mut out = BytesMut::new();
        let (a, b) = packed.split_at(packed.len() / 3);
        inf.push(a, false, &mut out).unwrap();
        inf.push(b, true, &mut out).unwrap();
        assert_eq!(&out[..], &text[..]);
    }

    #[test]
    fn inflates_large_messages_in_small_fragments() {
        // As Autobahn 12.x sends them: 128 KiB of text compressed, cut into
        // 1 KiB frames; a fragment whose output fills a whole chunk must not
        // lose the rest of its input.
        let text: Vec<u8> = (0..131_072u32)
            .map(|i| b"abcdefghij klmnop, qrstuv; wxyz"[(i as usize * 7 + i as usize / 13) % 31])
            .collect();
        let packed = compress(&text).unwrap();
        for size in [1024, 4096, 32_768] {
            let mut inf = Inflater::new(1 << 20);
            let mut out = BytesMut::new();
            let parts: Vec<&[u8]> = packed.chunks(size).collect();
            for (i, part) in parts.iter().enumerate() {
                inf.push(part, i + 1 == parts.len(), &mut out).unwrap();
            }
            assert_eq!(out.len(), text.len(), "fragments of {size}");
            assert_eq!(&out[..], &text[..]);
        }
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 10 << 20];
        let packed = compress(&zeros).unwrap();
        assert!(packed.len() < 64 * 1024, "{}", packed.len());
        assert!(matches!(
            inflate(&packed, 1 << 20),
            Err(FrameError::TooBig(n)) if n <= (1 << 20) + CHUNK as u64
        ));
    }

    #[test]
    fn garbage_is_an_error() {
        assert_eq!(
            inflate(&[0xff, 0xff, 0xff, 0xff, 0xff], 1 << 20),
            Err(FrameError::BadCompression)
        );
    }
}
