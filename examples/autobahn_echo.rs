//! An echo server for the Autobahn testsuite's fuzzingclient
//! (`scripts/autobahn/run.sh` builds and runs it).
//!
//! Every text message goes back as a text message and every binary
//! message as a binary message, byte for byte, through the public
//! [`Server`] API in drain mode: `raw` events carry the frame's text as
//! received and `bin` events its bytes, and `send` / `send_bytes` queue
//! them verbatim.
//!
//! Everything of the WSE protocol that would add frames or stand in the
//! way of 16 MiB messages is off or out of reach: no JWT, no server
//! `ping` (one a day, idle timeout two days), no E2E agreement, limits
//! well above Autobahn's largest case (9.1.6 and 9.2.6 send 16 MiB).
//!
//! Not byte exact, by design of the protocol: a text message that is a JSON
//! object (possibly behind a legacy `WSE`/`S`/`U` prefix) reaches the app
//! parsed (a `msg` event), and `client_hello`, `ping` and `pong` are
//! answered by the core. No Autobahn case sends a JSON object; should one
//! appear, the parsed value is sent back re-serialised and a warning is
//! printed. (With `encryption` off a binary message starting with `E:` is
//! the app's like any other: Autobahn's 12.3.3 and 12.3.4 send one.)
//!
//! Per-message deflate stays at its default (on), so cases 12 and 13
//! exercise it.
//!
//! ```text
//! WSE_PORT=0 cargo run --release --example autobahn_echo
//! # listening on ws://127.0.0.1:40123/wse
//! ```
//!
//! Environment: `WSE_PORT` (default 9001; 0 picks a free port),
//! `WSE_DATA_DIR` (the log's directory; default a temporary one).

use std::time::Duration;

use wse::{AppEvent, Server, ServerConfig, SlowConsumerPolicy};

/// Largest message accepted (and echoed): four times Autobahn's largest.
const MAX_MESSAGE: usize = 64 << 20;

/// The configuration: defaults with every limit Autobahn could meet
/// raised and every unsolicited frame turned off.
fn config() -> ServerConfig {
    let port = std::env::var("WSE_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9001);
    let day = Duration::from_secs(24 * 3600);
    ServerConfig {
        host: "127.0.0.1".into(),
        port,
        data_dir: std::env::var_os("WSE_DATA_DIR").map(Into::into),
        jwt: None,
        // A JSON `ping` text frame would be an unexpected message.
        ping_interval: day,
        idle_timeout: 2 * day,
        encryption: false,
        max_message_size: MAX_MESSAGE,
        // Room for the echo of the largest message, twice over.
        max_outbound_bytes: 2 * MAX_MESSAGE + 1024,
        slow_consumer: SlowConsumerPolicy::Disconnect,
        // Autobahn sends up to 1,000 messages back to back (9.7, 9.8) and
        // 16 MiB messages: no pausing for either.
        inbound_rate_capacity: 1e9,
        inbound_rate_refill: 1e9,
        inbound_bytes_capacity: 1 << 40,
        inbound_bytes_refill: 1 << 40,
        max_inbound_queue_bytes: 4 * MAX_MESSAGE,
        queue_memory_budget: 0,
        max_pending_handshakes_per_ip: 0,
        ..ServerConfig::default()
    }
}

/// Send one event's message back; counts what could not be echoed exactly.
fn echo(server: &Server, event: AppEvent, inexact: &mut u64) {
    let sent = match event {
        AppEvent::Raw { conn, text } => server.send(&conn.to_string(), &text),
        AppEvent::Binary { conn, data } => server.send_bytes(&conn.to_string(), &data),
        AppEvent::Message { conn, value } => {
            *inexact += 1;
            eprintln!(
                "warning: JSON message echoed re-serialised, not byte exact ({inexact} so far)"
            );
            server.send(&conn.to_string(), &value.to_string())
        }
        _ => Ok(()),
    };
    if let Err(e) = sent {
        eprintln!("warning: echo refused: {e}");
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let server = Server::new(config())?;
    let addr = server.start()?;
    println!("listening on ws://{addr}/wse");
    let mut inexact = 0;
    loop {
        for event in server.drain_events(256, Duration::from_millis(100)) {
            echo(&server, event, &mut inexact);
        }
    }
}
