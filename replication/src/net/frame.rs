//! The frame codec: what one message looks like on a peer connection.
//!
//! ```text
//! /* body length */ u32 big-endian | /* flags */ u8 | body
//! ```
//!
//! Flag bit 0 says the body is zstd-compressed; other bits are reserved and
//! refused, so a later version can use them. The body (once decompressed)
//! is the MessagePack of an [`Envelope`]. Both the length on the wire and
//! the decompressed length are bounded by `max_frame`: a peer that lies
//! about either is disconnected before we allocate for it.

use super::NetOptions;
use super::error::FrameError;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::io::Read;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes before the body: the length (`u32`) and the flags (`u8`).
pub(crate) const HEADER: usize = 4 + 1;

/// Flag bit 0: the body is zstd-compressed.
const ZSTD: u8 = 0b0000_0001;

/// The zstd level of compressed bodies: fast (peer batches are compressed
/// on the publish path), still a good ratio on repetitive payloads.
const ZSTD_LEVEL: i32 = 1;

/// A message with the id that pairs a response with its request.
#[derive(Debug, Serialize, serde::Deserialize)]
pub(crate) struct Envelope<M> {
    /// Chosen by the requesting side, echoed by the response.
    pub(crate) id: u64,
    /// The request or response.
    pub(crate) msg: M,
}

/// The limits a codec enforces, taken from [`NetOptions`].
#[derive(Copy, Clone, Debug)]
pub(crate) struct Limits {
    /// The largest body, on the wire and decompressed.
    pub(crate) max_frame: usize,
    /// Bodies larger than this are compressed.
    pub(crate) compress_above: usize,
}

impl From<&NetOptions> for Limits {
    fn from(o: &NetOptions) -> Self {
        Limits {
            max_frame: o.max_frame,
            compress_above: o.compress_above,
        }
    }
}

/// The whole frame (header and body) of `envelope`.
pub(crate) fn encode<M: Serialize>(
    envelope: &Envelope<M>,
    limits: Limits,
) -> Result<Vec<u8>, FrameError> {
    let plain = rmp_serde::to_vec_named(envelope)?;
    check_len(plain.len(), limits.max_frame)?;
    if plain.len() > limits.compress_above {
        let packed = zstd::bulk::compress(&plain, ZSTD_LEVEL).map_err(FrameError::Compress)?;
        if packed.len() < plain.len() {
            return Ok(framed(ZSTD, &packed));
        }
    }
    Ok(framed(0, &plain))
}

/// `flags` and `body` behind their header.
fn framed(flags: u8, body: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(HEADER + body.len());
    // `body.len()` fits: it is at most `max_frame`, itself checked below.
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.push(flags);
    frame.extend_from_slice(body);
    frame
}

fn check_len(len: usize, max: usize) -> Result<(), FrameError> {
    if len > max || u32::try_from(len).is_err() {
        return Err(FrameError::TooLarge { len, max });
    }
    Ok(())
}

/// The message of a frame body read with its `flags`.
pub(crate) fn decode<M: DeserializeOwned>(
    flags: u8,
    body: &[u8],
    limits: Limits,
) -> Result<Envelope<M>, FrameError> {
    if flags & !ZSTD != 0 {
        return Err(FrameError::Flags(flags));
    }
    if flags & ZSTD == 0 {
        return Ok(rmp_serde::from_slice(body)?);
    }
    let plain = decompress(body, limits.max_frame)?;
    Ok(rmp_serde::from_slice(&plain)?)
}

/// `body` decompressed, refusing more than `max` bytes of output. Reads
/// through a bounded stream, so memory grows with the real output, not
/// with what the frame header claims.
fn decompress(body: &[u8], max: usize) -> Result<Vec<u8>, FrameError> {
    let decoder = zstd::stream::read::Decoder::with_buffer(body).map_err(FrameError::Decompress)?;
    let mut plain = Vec::with_capacity(body.len().saturating_mul(4).min(max));
    decoder
        .take(max as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(FrameError::Decompress)?;
    check_len(plain.len(), max)?;
    Ok(plain)
}

/// Split the first frame off `buf`: its flags, its body and the bytes it
/// took, or `None` while `buf` holds only part of it.
#[cfg(test)]
pub(crate) fn split(buf: &[u8], max: usize) -> Result<Option<Split<'_>>, FrameError> {
    let Some((len, flags)) = buf.first_chunk::<HEADER>().map(|h| parse_header(*h)) else {
        return Ok(None);
    };
    check_len(len, max)?;
    Ok(buf
        .get(HEADER..HEADER + len)
        .map(|body| (flags, body, HEADER + len)))
}

/// A frame split off a buffer: flags, body, bytes taken.
#[cfg(test)]
pub(crate) type Split<'a> = (u8, &'a [u8], usize);

fn parse_header(h: [u8; HEADER]) -> (usize, u8) {
    let len = u32::from_be_bytes([h[0], h[1], h[2], h[3]]);
    (len as usize, h[4])
}

/// Read one frame: its flags and body, or `None` if the stream ended
/// cleanly before it. The body is read as it arrives (not allocated at the
/// claimed length up front), and never past `max`.
pub(crate) async fn read<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Option<(u8, Vec<u8>)>, FrameError> {
    let mut header = [0u8; HEADER];
    let first = r.read(&mut header).await?;
    if first == 0 {
        return Ok(None);
    }
    r.read_exact(&mut header[first..]).await?;
    let (len, flags) = parse_header(header);
    check_len(len, max)?;
    let mut body = Vec::with_capacity(len.min(64 << 10));
    r.take(len as u64).read_to_end(&mut body).await?;
    if body.len() < len {
        return Err(FrameError::Truncated {
            len,
            got: body.len(),
        });
    }
    Ok(Some((flags, body)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const LIMITS: Limits = Limits {
        max_frame: 1 << 20,
        compress_above: 64,
    };

    fn roundtrip<M>(msg: &M) -> (u8, M)
    where
        M: Serialize + DeserializeOwned,
    {
        let frame = encode(&Envelope { id: 7, msg }, LIMITS).unwrap();
        let (flags, body, used) = split(&frame, LIMITS.max_frame).unwrap().unwrap();
        assert_eq!(used, frame.len());
        let back: Envelope<M> = decode(flags, body, LIMITS).unwrap();
        assert_eq!(back.id, 7);
        (flags, back.msg)
    }

    #[test]
    fn small_bodies_travel_plain_and_large_ones_compressed() {
        assert_eq!(roundtrip(&"hello".to_owned()), (0, "hello".to_owned()));
        let big = "abc".repeat(1000);
        assert_eq!(roundtrip(&big), (ZSTD, big));
    }

    #[test]
    fn large_bodies_that_do_not_shrink_travel_plain() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        let noise: Vec<u8> = (0..4000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let noise = bytes::Bytes::from(noise);
        assert_eq!(roundtrip(&noise), (0, noise));
    }

    #[test]
    fn a_length_over_the_limit_is_refused_before_reading_the_body() {
        let mut frame = (u32::MAX).to_be_bytes().to_vec();
        frame.push(0);
        let err = split(&frame, LIMITS.max_frame).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn reading_a_lying_length_fails_without_waiting_for_the_body() {
        let mut frame = ((LIMITS.max_frame + 1) as u32).to_be_bytes().to_vec();
        frame.push(0);
        let err = read(&mut frame.as_slice(), LIMITS.max_frame)
            .await
            .unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    #[tokio::test]
    async fn a_stream_that_ends_mid_frame_is_an_error_and_a_clean_end_is_not() {
        let frame = encode(&Envelope { id: 1, msg: "x" }, LIMITS).unwrap();
        let cut = &frame[..frame.len() - 1];
        assert!(read(&mut &cut[..], LIMITS.max_frame).await.is_err());
        assert!(read(&mut &cut[..2], LIMITS.max_frame).await.is_err());
        assert!(
            read(&mut &[][..], LIMITS.max_frame)
                .await
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_compression_bomb_is_refused() {
        let plain = vec![0u8; 4 << 20];
        let packed = zstd::bulk::compress(&plain, 3).unwrap();
        assert!(packed.len() < LIMITS.max_frame);
        let err = decode::<String>(ZSTD, &packed, LIMITS).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn unknown_flags_are_refused() {
        let err = decode::<String>(0b10, b"", LIMITS).unwrap_err();
        assert!(matches!(err, FrameError::Flags(2)), "{err}");
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(Some((flags, body, _))) = split(&bytes, LIMITS.max_frame) {
                let _ = decode::<(u64, Vec<String>)>(flags, body, LIMITS);
            }
            if bytes.len() > 1 {
                let _ = decode::<String>(bytes[0], &bytes[1..], LIMITS);
            }
        }

        #[test]
        fn valid_frames_round_trip(
            id in any::<u64>(),
            items in proptest::collection::vec(".{0,40}", 0..40),
            trailing in proptest::collection::vec(any::<u8>(), 0..16),
        ) {
            let mut frame = encode(&Envelope { id, msg: &items }, LIMITS).unwrap();
            let len = frame.len();
            frame.extend_from_slice(&trailing);
            let (flags, body, used) = split(&frame, LIMITS.max_frame).unwrap().unwrap();
            prop_assert_eq!(used, len);
            let back: Envelope<Vec<String>> = decode(flags, body, LIMITS).unwrap();
            prop_assert_eq!(back.id, id);
            prop_assert_eq!(back.msg, items);
        }
    }
}
