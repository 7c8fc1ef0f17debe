//! Micro-benchmarks of the server's per-message work, the pieces that
//! `wse bench fanout` and `wse bench inbound` measure together over real
//! sockets:
//!
//! - `stamp`: a broadcast becoming its log record (`tp`/`e`/`o` stamp);
//! - `frame`: the WebSocket text frame built once per broadcast;
//! - `seal`: sealing a gathered batch for one end-to-end connection;
//! - `parse`: a masked client frame parsed and UTF-8 checked;
//! - `pattern`: a wildcard subscription matched against a topic.
//!
//! Run with `cargo bench -p wse --bench hot_paths`.

use bytes::{BufMut, BytesMut};
use criterion::{Criterion, Throughput, criterion_main};
use wse::crypto::KeyPair;
use wse::e2e;
use wse::protocol::stamp::write_stamped;
use wse::topics::pattern::TopicPattern;
use wse::ws::frame::{self, FrameParser, Incoming};

/// A chat message of about 100 bytes, as apps broadcast them.
const MESSAGE: &str = r#"{"t":"chat_message","p":{"room":"lobby","user":"alice","text":"hello, everyone in the lobby!"}}"#;

fn stamp(c: &mut Criterion) {
    let mut g = c.benchmark_group("stamp");
    g.throughput(Throughput::Elements(1));
    let mut out = BytesMut::with_capacity(256);
    g.bench_function("100B", |b| {
        b.iter(|| {
            out.clear();
            write_stamped(&mut out, MESSAGE, "chat.lobby", 0x1234_abcd, 123_456)
        })
    });
    g.finish();
}

fn build_frame(c: &mut Criterion) {
    let mut g = c.benchmark_group("frame");
    for size in [100usize, 4096] {
        let payload = vec![b'x'; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("text {size}B"), |b| {
            b.iter(|| frame::text(&payload))
        });
    }
    g.finish();
}

fn seal(c: &mut Criterion) {
    let client = KeyPair::generate();
    let agreement = e2e::agree(&client.public_key_base64()).expect("agree");
    let payloads: Vec<&[u8]> = vec![MESSAGE.as_bytes(); 64];
    let mut g = c.benchmark_group("seal");
    g.throughput(Throughput::Elements(payloads.len() as u64));
    let mut out = BytesMut::new();
    g.bench_function("64 x 100B", |b| {
        b.iter(|| {
            out.clear();
            agreement
                .key
                .seal_payloads_into(&mut out, payloads.iter().copied());
        })
    });
    g.finish();
}

/// A client frame: FIN + text, masked as RFC 6455 requires of clients.
fn masked_text(payload: &[u8]) -> BytesMut {
    let mask = [0x37u8, 0xfa, 0x21, 0x3d];
    let mut out = BytesMut::new();
    out.put_u8(0x81);
    match payload.len() {
        n if n < 126 => out.put_u8(0x80 | n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.put_u8(0x80 | 126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(0x80 | 127);
            out.put_u64(n as u64);
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for size in [100usize, 4096] {
        let text = "y".repeat(size);
        let wire = masked_text(text.as_bytes());
        let mut parser = FrameParser::new(1 << 20);
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function(format!("masked text {size}B"), |b| {
            b.iter(|| {
                let mut buf = wire.clone();
                match parser.next(&mut buf) {
                    Ok(Some(Incoming::Text(t))) => t,
                    other => panic!("not a text message: {:?}", other.map(|_| ())),
                }
            })
        });
    }
    g.finish();
}

fn pattern(c: &mut Criterion) {
    let glob = TopicPattern::new("chat.*.messages");
    let mut g = c.benchmark_group("pattern");
    g.throughput(Throughput::Elements(2));
    g.bench_function("glob match + miss", |b| {
        b.iter(|| {
            (
                glob.matches("chat.lobby.messages"),
                glob.matches("news.lobby.messages"),
            )
        })
    });
    g.finish();
}

/// The benchmark group (criterion's macro makes an undocumented function).
#[allow(missing_docs)]
mod group {
    use super::{build_frame, parse, pattern, seal, stamp};
    criterion::criterion_group!(benches, stamp, build_frame, seal, parse, pattern);
}
criterion_main!(group::benches);
