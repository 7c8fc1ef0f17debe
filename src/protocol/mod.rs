//! The client wire protocol (CLIENT_PROTOCOL.md), as pure functions.
//!
//! Nothing here touches a socket: the session code feeds frames in and
//! sends the strings and bytes that come out. The pieces, in the order a
//! connection meets them:
//!
//! - [`handshake`]: `server_ready`, `server_hello` and the authentication
//!   error frame, byte-identical to upstream (alphabetical keys).
//! - [`inbound`]: what a client frame is — `client_hello`, `ping`, `pong`
//!   (answered or swallowed by the core) or an app event (`msg`, `raw`,
//!   `bin`), plus the `E:` hand-off for decryption. Uses [`envelope`]
//!   (legacy prefixes, `type`/`payload` renaming), [`bounded`] (parsing
//!   under limits of depth and element count) and [`msgpack`] (MessagePack
//!   decoding through the same bounds).
//! - [`control`]: heartbeats (`ping`, `PONG`), `KEY_EXCHANGE_FAILED`,
//!   `RATE_LIMITED`, `rate_limit_warning`, in upstream's template key order.
//! - [`category`]: the `c` rule and its textual injection into broadcasts,
//!   built on the allocation-free top-level key scanner in [`scan`].
//! - [`stamp`]: the recovery stamp (`tp`/`e`/`o`) written straight into the
//!   stored record's buffer.
//! - [`clock`]: timestamp formats and an injectable clock.
//!
//! Map-built frames rely on field order of private serde structs, never on
//! `serde_json::Map` ordering, so enabling serde_json's `preserve_order`
//! anywhere in the build cannot change the bytes.

pub mod bounded;
pub mod category;
pub mod clock;
pub mod control;
pub mod envelope;
pub mod handshake;
pub mod inbound;
pub mod msgpack;
pub mod scan;
pub mod stamp;

pub use bounded::{DocLimits, ShapeError, parse_json};
pub use category::{
    Category, CategoryInsertion, category_for, category_insertion, inject_category,
};
pub use clock::{Clock, FixedClock, SystemClock, epoch_millis, rfc3339_millis};
pub use control::{RATE_LIMITED, key_exchange_failed, ping, pong, rate_limit_warning};
pub use envelope::{normalize_keys, strip_legacy_prefix};
pub use handshake::{
    COMPAT_SERVER_VERSION, MAX_PROTOCOL_VERSION, ServerHello, ServerReady, auth_error,
    server_hello, server_ready,
};
pub use inbound::{
    BinaryInbound, ClientHello, DecryptedInbound, TextInbound, classify_binary, classify_decrypted,
    classify_text,
};
pub use msgpack::{MsgpackError, decode_msgpack};
pub use stamp::{
    StampedAt, read_stamp, write_stamped, write_stamped_with_category, write_stored_message,
};
