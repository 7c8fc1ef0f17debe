"""WSE: a log-centric real-time WebSocket server, driven from Python.

Code written against the upstream ``RustWSEServer`` API runs unchanged;
new code also gets the log: every topic broadcast is an append to the
topic's durable log, clients recover across restarts, and
``server.position()``, ``server.read()``, :class:`LogReader` and
:func:`read_range` read it.

Layout (as upstream):

- ``wse_server._wse_accel``: the native module (server, log reader and the
  utility toolkit);
- ``wse_server.core.filters``: :class:`EventFilter`;
- ``wse_server.core.types``: :class:`EventPriority`,
  :class:`DeliveryGuarantee`.

``python -m wse_server serve`` runs the standalone server (``wse serve``).
"""

from ._wse_accel import (
    LogReader,
    NotRecoverableError,
    RustCompressionManager,
    RustEventSequencer,
    RustPriorityMessageQueue,
    RustPriorityQueue,
    RustSequencer,
    RustTokenBucket,
    RustWSEServer,
    __version__,
    rust_aes_gcm_decrypt,
    rust_aes_gcm_encrypt,
    rust_compress,
    rust_decompress,
    rust_ecdh_derive_shared_secret,
    rust_ecdh_generate_keypair,
    rust_hmac_sha256,
    rust_jwt_decode,
    rust_jwt_encode,
    rust_match_event,
    rust_sha256,
    rust_should_compress,
    rust_sign_message,
    rust_transform_event,
)
from .core.filters import EventFilter
from .history import read_range
from .core.types import DeliveryGuarantee, EventPriority

__all__ = [
    "RustWSEServer",
    "RustCompressionManager",
    "RustEventSequencer",
    "RustPriorityMessageQueue",
    "RustPriorityQueue",
    "RustSequencer",
    "RustTokenBucket",
    "rust_jwt_encode",
    "rust_jwt_decode",
    "rust_aes_gcm_encrypt",
    "rust_aes_gcm_decrypt",
    "rust_ecdh_generate_keypair",
    "rust_ecdh_derive_shared_secret",
    "rust_hmac_sha256",
    "rust_sha256",
    "rust_compress",
    "rust_decompress",
    "rust_should_compress",
    "rust_sign_message",
    "rust_match_event",
    "rust_transform_event",
    "EventFilter",
    "EventPriority",
    "DeliveryGuarantee",
    "__version__",
    # WSE additions: the log.
    "LogReader",
    "NotRecoverableError",
    "read_range",
]
